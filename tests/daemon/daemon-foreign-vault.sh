#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A disk whose LUKS2 token names a vault nobody configured (a second server on the same host, as a
# disk an attacker hands the VM would): aded resuming its interrupted encryption at start, RotateKey,
# Disable, Unlock and ade-resolve-key all fail with an error naming that vault and what to
# configure, and no request carrying a bearer token (no request at all) reaches it. The same disk
# unlocks once root names the vault (ade-resolve-key --trust-vault).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
TOOL=$top_builddir/tests/integration/ade-engine-tool
[ -x "$TOOL" ] || skip "the engine tool is not built ($TOOL)"

start_emulator

# The foreign vault: another emulator on another port of localhost, in the same cloud (so the
# challenge rule alone would not stop a token), with its own request log.
mkdir -p "$WORK/foreign"
cp "$WORK/emu/ca.pem" "$WORK/emu/ca.key" "$WORK/foreign/" # the same test CA: TLS would not stop a token either
printf '{"keyvault":{"resource":"%s"}}' "$EMULATOR_KEYVAULT_RESOURCE" >"$WORK/foreign/overlay.json"
"$EMULATOR" --dir "$WORK/foreign" --config "$WORK/foreign/overlay.json" >"$WORK/foreign.log" 2>&1 &
FOREIGN_PID=$!
CLEANUPS+=("kill $FOREIGN_PID; wait $FOREIGN_PID")
for _ in $(seq 1 300); do [ -s "$WORK/foreign/ready.json" ] && break; sleep 0.1; done
[ -s "$WORK/foreign/ready.json" ] || fail "the foreign emulator did not get ready"
FOREIGN=https://localhost:$(jq -r .https_port "$WORK/foreign/ready.json")
FOREIGN_CONTROL=http://127.0.0.1:$(jq -r .http_port "$WORK/foreign/ready.json")
foreign_requests() {
        curl -sf "$FOREIGN_CONTROL/_emulator/requests" | jq '.requests | length'
}
foreign_token_requests() {
        curl -sf "$FOREIGN_CONTROL/_emulator/requests" | jq '[.requests[] | select(.authorization)] | length'
}

# Two disks whose tokens name the foreign vault, written by the engine alone (no vault involved):
# one encrypted to the end, one whose encryption was killed half-way (aded resumes it at start).
head -c 127 /dev/urandom | base64 -w0 >"$WORK/key"
secret=$FOREIGN/secrets/3f1c8e4a-0000-4000-8000-00000000f0e1/0123456789abcdef0123456789abcdef
kek=$FOREIGN/keys/kek/0123456789abcdef0123456789abcdef
make_volume 200
DONE=$VOLUME
"$TOOL" --quiet --header-dir "$WORK/headers" --secret-url "$secret" --kek-url "$kek" encrypt "$DONE" "$WORK/key" \
        >"$WORK/out" 2>&1 || fail "the engine could not encrypt $DONE: $(tail -3 "$WORK/out")"
make_volume 200
HALF=$VOLUME
rc=0
("$TOOL" --quiet --header-dir "$WORK/headers" --hotzone 16777216 --secret-url "$secret" --crash-at 50 encrypt "$HALF" \
        "$WORK/key" >"$WORK/out" 2>&1; exit $?) 2>/dev/null || rc=$?
[ $rc = 137 ] || fail "the engine was not killed half-way through $HALF (exit $rc): $(tail -3 "$WORK/out")"
"$TOOL" status "$HALF" | grep -Eq '^state=(crash|clean)$' || fail "$HALF is not an interrupted encryption: $("$TOOL" status "$HALF")"

write_config
start_aded

# 1. aded's own resume at start.
for _ in $(seq 1 100); do
        grep -q "resuming the encryption of $HALF" "$WORK/aded.log" && [ "$(volume_field "$HALF" state)" = Failed ] && break
        sleep 0.1
done
grep -q "resuming the encryption of $HALF" "$WORK/aded.log" || fail "aded did not try to resume $HALF"
[ "$(volume_field "$HALF" state)" = Failed ] || fail "the resume of $HALF did not fail: $(volume_field "$HALF" state)"
message=$(volume_field "$HALF" message)
case "$message" in *"$FOREIGN"*"[keyvault] url"*) ;; *) fail "the resume's error does not name the vault and what to configure: $message" ;; esac

# 2. RotateKey.
adectl rotate >"$WORK/out" 2>&1 && fail "rotate succeeded on a disk naming a foreign vault"
grep -q "$FOREIGN" "$WORK/out" || fail "rotate's error does not name the vault: $(cat "$WORK/out")"

# 3. Disable.
adectl disable --volume-type data >"$WORK/out" 2>&1 && fail "disable succeeded on a disk naming a foreign vault"
grep -q "$FOREIGN" "$WORK/out" || fail "disable's error does not name the vault: $(cat "$WORK/out")"
[ "$(volume_field "$DONE" state)" != NotEncrypted ] || fail "disable decrypted $DONE"

# 4. Unlock: it needs device-mapper, which is asked for before any key.
adectl unlock "$DONE" >"$WORK/out" 2>&1
rc=$?
if grep -qw device-mapper /proc/devices; then
        [ $rc != 0 ] || fail "unlock succeeded on a disk naming a foreign vault"
        grep -q "$FOREIGN" "$WORK/out" || fail "unlock's error does not name the vault: $(cat "$WORK/out")"
else
        [ $rc = 3 ] || fail "unlock without device-mapper exited $rc: $(cat "$WORK/out")"
fi

# 5. ade-resolve-key.
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/resolved" "$DONE" >"$WORK/out" 2>&1 &&
        fail "ade-resolve-key resolved a key through a foreign vault"
grep -q "no token is sent to $FOREIGN" "$WORK/out" || fail "ade-resolve-key's error does not say why: $(cat "$WORK/out")"
[ ! -e "$WORK/resolved" ] || fail "ade-resolve-key wrote a key file"

[ "$(foreign_token_requests)" = 0 ] || fail "$(foreign_token_requests) requests with a bearer token reached the foreign vault"
[ "$(foreign_requests)" = 0 ] || fail "$(foreign_requests) requests reached the foreign vault"

# Named by root, the vault is asked (its own Key Vault refuses our tenant's token, which is not ours
# to judge here): the door opens only when told to.
"$RESOLVE" --config "$WORK/ade.conf" --trust-vault "$FOREIGN" --output "$WORK/resolved" "$DONE" >"$WORK/out" 2>&1
[ "$(foreign_requests)" -gt 0 ] || fail "--trust-vault did not let ade-resolve-key ask $FOREIGN: $(cat "$WORK/out")"
pass
