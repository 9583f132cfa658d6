#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Scheduled key rotation ([rotation] interval, here seconds): after an enable, Show says when the
# key was made and when it is rotated (lastRotated, nextRotation); aded then rotates it by itself
# (a new secret, the old one disabled, the new key opens the volume and the old one does not) and
# schedules the next. aded killed (-9) in the middle of a scheduled rotation: the next aded finishes
# it (one keyslot, the recorded secret's key opens the volume, no rotation left pending).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
cp "$WORK/ade.conf" "$WORK/ade.conf.base"
printf '\n[rotation]\ninterval = 6s\n' >>"$WORK/ade.conf"
start_aded

adectl enable --volume-type DATA >/dev/null 2>&1 || fail "enable failed"
first=$(volume_field "$VOLUME" secretUrl)
last=$(volume_field "$VOLUME" lastRotated)
next=$(volume_field "$VOLUME" nextRotation)
[ "$last" != null ] && [ "$next" != null ] || fail "Show gives no lastRotated/nextRotation: $(adectl --json show)"
[ $(( $(date -d "$next" +%s) - $(date -d "$last" +%s) )) = 6 ] || fail "nextRotation $next is not lastRotated $last + 6 s"
echo "ok: Show: lastRotated $last, nextRotation $next"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/first.key" "$VOLUME" 2>/dev/null || fail "cannot resolve the key"

for _ in $(seq 1 600); do
        now=$(volume_field "$VOLUME" secretUrl)
        [ "$now" != "$first" ] && [ "$(volume_field "$VOLUME" state)" = Encrypted ] && break
        sleep 0.1
done
[ "$now" != "$first" ] || fail "aded did not rotate the key by itself within 60 s"
wait_for_state "$VOLUME" Encrypted 60
grep -q "is due for rotation" "$WORK/aded.log" || fail "aded did not say why it rotated"
last2=$(volume_field "$VOLUME" lastRotated)
[ "$(date -d "$last2" +%s)" -ge "$(date -d "$next" +%s)" ] || fail "lastRotated $last2 is before the rotation was due ($next)"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/second.key" "$VOLUME" 2>/dev/null || fail "cannot resolve the new key"
cryptsetup open --test-passphrase --key-file "$WORK/second.key" "$VOLUME" || fail "the new key does not open the volume"
cryptsetup open --test-passphrase --key-file "$WORK/first.key" "$VOLUME" 2>/dev/null && fail "the old key still opens the volume"
[ "$(emulator_state | jq -r --arg v "${first##*/}" '.secrets[] | select(.version == $v) | .attributes.enabled')" = false ] ||
        fail "the old secret $first is still enabled"
echo "ok: rotated by itself ($first -> $now), the old key revoked, lastRotated $last2"

# The next one, killed once it has recorded its new secret: Key Vault answers slowly so that it
# is caught in the middle.
emulator_fault '{"route": "keyvault", "latency_ms": 1500, "count": 100000}' || fail "cannot add the fault"
pending=
for _ in $(seq 1 1200); do
        pending=$(jq -r --arg d "$VOLUME" '.volumes[] | select(.device == $d) | .pendingSecretUrl // empty' \
                "$WORK/state/state.json" 2>/dev/null)
        [ -n "$pending" ] && break
        sleep 0.05
done
[ -n "$pending" ] || fail "no scheduled rotation recorded a pending secret within 60 s"
kill -9 "$ADED_PID"
wait "$ADED_PID" 2>/dev/null
ADED_PID=
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
echo "ok: aded killed in a scheduled rotation, pending $pending"

# The next aded, with a schedule that is not due for an hour: what it does is the resume.
cp "$WORK/ade.conf.base" "$WORK/ade.conf"
printf '\n[rotation]\ninterval = 1h\n' >>"$WORK/ade.conf"
start_aded
for _ in $(seq 1 600); do
        left=$(jq -r --arg d "$VOLUME" '.volumes[] | select(.device == $d) | .pendingSecretUrl // empty' "$WORK/state/state.json")
        [ -z "$left" ] && [ "$(volume_field "$VOLUME" state)" = Encrypted ] && break
        sleep 0.1
done
[ -z "$left" ] || fail "the interrupted rotation is still pending after the restart"
[ "$(volume_field "$VOLUME" secretUrl)" = "$pending" ] || fail "the volume's secret is $(volume_field "$VOLUME" secretUrl), not the pending $pending"
[ "$(cryptsetup luksDump "$VOLUME" | grep -cE '^  [0-9]+: luks2')" = 1 ] || fail "not exactly one keyslot: $(cryptsetup luksDump "$VOLUME")"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/third.key" "$VOLUME" 2>/dev/null || fail "cannot resolve the key after the resume"
cryptsetup open --test-passphrase --key-file "$WORK/third.key" "$VOLUME" || fail "the recorded secret's key does not open the volume"
cryptsetup open --test-passphrase --key-file "$WORK/second.key" "$VOLUME" 2>/dev/null && fail "the key before the interrupted rotation still opens it"
[ $(( $(date -d "$(volume_field "$VOLUME" nextRotation)" +%s) - $(date -d "$(volume_field "$VOLUME" lastRotated)" +%s) )) = 3600 ] ||
        fail "the next rotation is not an hour after the last"
check_files_encrypted "$VOLUME" "$MANIFEST"
echo "ok: the next aded finished it: one keyslot, the recorded secret's key opens the volume, the next in an hour"
pass
