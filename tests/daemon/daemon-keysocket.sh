#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The key socket: systemd-cryptsetup's AF_UNIX key-file protocol. The key that comes back opens the
# volume (stock cryptsetup judges); stock systemd-cryptsetup reaches aded with its own address; a
# volume without our token, a name that is not ours, a peer that is not root, garbage and a peer
# that leaves mid-answer are refused or dropped, with aded unaffected and no key in its log; one
# volume held back by Key Vault does not hold up another; a request made while Key Vault is down
# is answered once it is back.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "python3 not found"
CLIENT=$top_srcdir/tests/daemon/keysocket-client.py
make_volume 200
A=$VOLUME
make_volume 200
B=$VOLUME
start_emulator
write_config
KEYSOCK=$WORK/run/key.socket
ADED_LOG_LEVEL=debug start_aded
[ -S "$KEYSOCK" ] || fail "aded does not listen on $KEYSOCK"
adectl enable --volume-type DATA >"$WORK/out" 2>&1 || fail "enable failed: $(cat "$WORK/out")"
uuid_a=$(cryptsetup luksUUID "$A") || fail "no LUKS header on $A"
uuid_b=$(cryptsetup luksUUID "$B") || fail "no LUKS header on $B"

# ask VOLUME [client options]: the client's exit status; the key lands in $WORK/key.
ask() {
        rm -f "$WORK/key"
        python3 "$CLIENT" "$KEYSOCK" "$@" --out "$WORK/key" >/dev/null 2>"$WORK/client.err"
}

# The key opens the volume, as stock cryptsetup sees it.
ask "ade-$uuid_a" || fail "no key for ade-$uuid_a (client exit $?): $(tail -n 5 "$WORK/aded.log")"
cryptsetup open --test-passphrase --key-file "$WORK/key" "$A" || fail "the key from the socket does not open $A"
cp "$WORK/key" "$WORK/key-a"
ask "ade-$uuid_b" || fail "no key for ade-$uuid_b"
cryptsetup open --test-passphrase --key-file "$WORK/key" "$B" || fail "the key from the socket does not open $B"
cmp -s "$WORK/key" "$WORK/key-a" && fail "two volumes got the same key"
# Upper-case UUIDs name the same volume (blkid and crypttab may write either).
ask "ade-${uuid_a^^}" || fail "no key for the upper-case name"

# Stock systemd-cryptsetup as the client: it reaches aded with its own address and gets the key.
# Without device-mapper its activation fails after that; with it the volume opens and is closed.
if [ -x /lib/systemd/systemd-cryptsetup ]; then
        : >"$WORK/aded.log.mark"
        before=$(grep -c "delivered the key of ade-$uuid_a" "$WORK/aded.log")
        timeout 60 /lib/systemd/systemd-cryptsetup attach "ade-$uuid_a" "$A" "$KEYSOCK" luks,headless=true,tries=1 \
                >"$WORK/sdc.out" 2>&1
        sdc=$?
        after=$(grep -c "delivered the key of ade-$uuid_a" "$WORK/aded.log")
        [ "$after" -gt "$before" ] || fail "systemd-cryptsetup got no key from aded: $(cat "$WORK/sdc.out")"
        if [ $sdc = 0 ]; then
                /lib/systemd/systemd-cryptsetup detach "ade-$uuid_a" || true
        else
                grep -q "Operation not permitted" "$WORK/sdc.out" && fail "systemd-cryptsetup found the key wrong"
        fi
fi

# A LUKS volume that is not ade's, under an ade-style name: nothing.
make_volume 64
C=$VOLUME
printf 'not-ours' >"$WORK/pass-c"
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$C" "$WORK/pass-c" ||
        fail "luksFormat failed"
uuid_c=$(cryptsetup luksUUID "$C")
ask "ade-$uuid_c"
[ $? = 2 ] || fail "a volume without ade's token got a key"
grep -q "refused the key of ade-$uuid_c: $C carries no ade token" "$WORK/aded.log" ||
        fail "the refusal does not say why: $(grep "ade-$uuid_c" "$WORK/aded.log")"

# Names that are not ade's, or no volume at all.
for name in data "ade-not-a-uuid" "ade-$uuid_a-x" "ade-00000000-0000-4000-8000-000000000000"; do
        ask "$name"
        [ $? = 2 ] || fail "the name '$name' got a key"
done
grep -q "refused the key of ade-00000000-0000-4000-8000-000000000000: no device with the LUKS UUID" \
        "$WORK/aded.log" || fail "an absent volume's refusal does not say why"

# The encrypted-key forms and an unnamed peer: refused at the address.
python3 - "$KEYSOCK" "ade-$uuid_a" <<'EOF' || fail "an encrypted-key request got something"
import os, socket, sys
for infix in ("-pkcs11", "-fido2", "-tpm2"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0%x/cryptsetup%s/%s" % (int.from_bytes(os.urandom(8), "big"), infix, sys.argv[2]))
    s.connect(sys.argv[1])
    if s.recv(10):
        sys.exit(1)
EOF
ask "ade-$uuid_a" --unnamed
[ $? = 2 ] || fail "an unnamed peer got a key"
ask "ade-$uuid_a" --garbage && fail "a peer sending garbage got a key"
[ -e "$WORK/key" ] && fail "a peer sending garbage got a key"
grep -q "refused the key of ade-$uuid_a: the peer sent data" "$WORK/aded.log" || fail "the garbage is not logged"

# Not root: refused by aded itself (the socket is opened to everyone for this check only).
# /usr/bin/python3: another python3 on PATH may live where nobody may run it (pyenv under /root).
if command -v setpriv >/dev/null && [ -x /usr/bin/python3 ]; then
        chmod 0755 "$WORK" "$WORK/run"
        chmod 0666 "$KEYSOCK"
        setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 "$CLIENT" "$KEYSOCK" "ade-$uuid_a" >/dev/null 2>&1
        [ $? = 2 ] || fail "a peer that is not root got a key"
        chmod 0600 "$KEYSOCK"
        grep -q "key socket: refused a peer that is not root" "$WORK/aded.log" || fail "the non-root refusal is not logged"
fi

# One volume held back by Key Vault does not hold up another. The first request after the fault
# waits 10 s at the emulator; the second, made while the first waits there, is answered at once.
emulator_fault '{"route": "keyvault", "latency_ms": 10000}' || fail "cannot add the fault"
ask "ade-$uuid_a" &
held=$!
sleep 2
ask "ade-$uuid_b" || fail "no key for ade-$uuid_b while ade-$uuid_a was held"
kill -0 $held 2>/dev/null || fail "the held request had already finished: no concurrency shown"
wait $held || fail "the held request got no key"
cmp -s "$WORK/key" "$WORK/key-a" || fail "the held request got another key"

# A peer that leaves while its key is being fetched: logged, aded unaffected.
emulator_fault '{"route": "keyvault", "latency_ms": 3000}' || fail "cannot add the fault"
python3 - "$KEYSOCK" "ade-$uuid_b" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0%x/cryptsetup/%s" % (int.from_bytes(os.urandom(8), "big"), sys.argv[2]))
s.connect(sys.argv[1])
s.close()
EOF
for _ in $(seq 1 100); do
        grep -q "refused the key of ade-$uuid_b: systemd-cryptsetup went away" "$WORK/aded.log" && break
        sleep 0.1
done
grep -q "refused the key of ade-$uuid_b: systemd-cryptsetup went away" "$WORK/aded.log" ||
        fail "a peer that left is not logged"
kill -0 "$ADED_PID" || fail "aded died"
# Show says why the locked volume is locked, until a request for it succeeds.
volume_field "$B" message | grep -q "^locked: the key socket could not give systemd-cryptsetup its key: systemd-cryptsetup went away" ||
        fail "show does not say why $B is locked: $(volume_field "$B" message)"
ask "ade-$uuid_b" || fail "no key after a peer left"
[ "$(volume_field "$B" message)" = null ] || fail "show still reports an old failure for $B: $(volume_field "$B" message)"

# Key Vault down: the request is held, and answered once the emulator is back on its port.
kill "$EMU_PID"
wait "$EMU_PID" 2>/dev/null
ask "ade-$uuid_a" &
held=$!
# ade-http's own retries come first (about 20 s), then the key socket's backoff: a few seconds in, the
# request is still open and unanswered.
sleep 3
kill -0 $held 2>/dev/null || fail "the request was not held while Key Vault was down"
"$EMULATOR" --dir "$WORK/emu" --state "$WORK/emu/vault-state.json" --config "$WORK/emulator-overlay.json" \
        --https-port "$HTTPS_PORT" --http-port "$HTTP_PORT" >>"$WORK/emulator.log" 2>&1 &
EMU_PID=$!
wait $held || fail "the held request got no key once Key Vault was back"
cmp -s "$WORK/key" "$WORK/key-a" || fail "the held request got another key"

# Never a key in the log.
key_text=$(cat "$WORK/key-a")
grep -qF "$key_text" "$WORK/aded.log" && fail "the key file is in aded's log"
kill -0 "$ADED_PID" || fail "aded died"
pass
