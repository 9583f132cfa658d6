#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Enable of the OS volume on this host (docs/architecture.md §9). The OS volume is judged by its
# named checks (ade-osvol): the dry run lists them and the path, or why none; "OS" is refused
# (exit 3) with the first failed check and nothing changes; "ALL" encrypts the data volume, says
# the OS volume is left plain and why, and exits 3. This host's root never qualifies (a whole disk,
# no initramfs-tools, nor ade's initramfs hook here), so the test asserts a failed os-* check, not
# which one; an eligible root's Enable is tests/vm/test-debian-osboot.sh's subject.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
ok() { echo "ok: $*"; }
make_volume 200
start_emulator
write_config
start_aded

sum=$(sha256sum <"$VOLUME")
adectl --json enable --volume-type os --dry-run >"$WORK/plan.json" 2>"$WORK/err"
rc=$?
[ $rc = 3 ] || fail "dry run of OS: exit status $rc, expected 3: $(cat "$WORK/err")"
jq -e '[.plan.checks[] | select(.name == "os-root-found")] | length == 1' "$WORK/plan.json" >/dev/null ||
        fail "the dry run does not judge where / is: $(cat "$WORK/plan.json")"
failed=$(jq -r '[.plan.checks[] | select((.name | startswith("os-")) and .passed == false and .fatal)][0].name' "$WORK/plan.json")
[ -n "$failed" ] && [ "$failed" != null ] || fail "no failed os-* check in the plan of an ineligible root"
jq -e '[.plan.checks[] | select(.message == null)] | length == 0' "$WORK/plan.json" >/dev/null ||
        fail "a check without a reason"
jq -e '[.plan.checks[] | select(.name == "volume-eligible")] | length == 0' "$WORK/plan.json" >/dev/null ||
        fail "an OS dry run judged data volumes"
ok "dry run of OS: the checks of the root, $failed failed, exit 3"

adectl enable --volume-type os >"$WORK/out" 2>&1
rc=$?
[ $rc = 3 ] || fail "exit status $rc, expected 3: $(cat "$WORK/out")"
grep -q "refused: $failed: " "$WORK/out" || fail "the refusal does not name the check $failed: $(cat "$WORK/out")"
[ "$(sha256sum <"$VOLUME")" = "$sum" ] || fail "the data volume changed"
[ "$(secrets_count)" = 0 ] || fail "a secret was written"
[ "$(adectl --json show | jq -r .os)" = NotEncrypted ] || fail "show does not say the OS volume is NotEncrypted"
jq -e '.enrollment == null' "$WORK/state/state.json" >/dev/null 2>&1 || [ ! -e "$WORK/state/state.json" ] ||
        fail "a refused Enable was enrolled"
ok "enable of OS: refused with $failed, exit 3, nothing written"

adectl --json enable --volume-type all --dry-run >"$WORK/plan.json" 2>"$WORK/err"
rc=$?
[ $rc = 3 ] || fail "dry run of ALL: exit status $rc, expected 3"
jq -e --arg d "$VOLUME" '[.plan.checks[] | select(.name == "volume-eligible" and .device == $d and .passed)] | length == 1' \
        "$WORK/plan.json" >/dev/null || fail "the ALL dry run does not judge the data volume eligible"
jq -e '[.plan.checks[] | select(.name == "os-root-found")] | length == 1' "$WORK/plan.json" >/dev/null ||
        fail "the ALL dry run does not judge the OS volume"
ok "dry run of ALL: the data volume eligible, the OS volume's checks, exit 3"

adectl enable --volume-type all >"$WORK/out" 2>&1
rc=$?
[ $rc = 3 ] || fail "enable ALL: exit status $rc, expected 3: $(cat "$WORK/out")"
grep -q "the OS volume .* is left plain: $failed: " "$WORK/out" || fail "enable ALL does not say why the OS volume is left plain: $(cat "$WORK/out")"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "enable ALL did not encrypt the data volume"
cryptsetup isLuks "$VOLUME" || fail "stock cryptsetup finds no LUKS header on the data volume"
[ "$(adectl --json show | jq -r .os)" = NotEncrypted ] || fail "show does not say the OS volume is NotEncrypted"
ok "enable ALL: the data volume Encrypted, the OS volume left plain with its reason, exit 3"
pass
