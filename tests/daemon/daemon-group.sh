#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Access: a member of [daemon] group gets Show and is refused Enable with PermissionDenied; a user
# outside the group cannot connect at all (the socket's folder is 0750 root:group, the socket 0660).
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_group_member adet
group=$GROUP member=$MEMBER outsider=adeto$$
useradd -M -N -g nogroup -s /usr/sbin/nologin "$outsider" || fail "useradd failed"
CLEANUPS=("userdel $outsider" "${CLEANUPS[@]}")

make_volume 200
start_emulator
write_config "$group"
chmod 755 "$WORK"
start_aded

as() {
        local user=$1
        shift
        setpriv --reuid "$user" --regid nogroup --init-groups env ADE_SOCKET="$SOCKET" "$ADECTL" "$@"
}

[ "$(stat -c '%a %G' "$(dirname "$SOCKET")")" = "750 $group" ] || fail "socket folder is $(stat -c '%a %G' "$(dirname "$SOCKET")")"
[ "$(stat -c '%a %G' "$SOCKET")" = "660 $group" ] || fail "socket is $(stat -c '%a %G' "$SOCKET")"

as "$member" show --json >"$WORK/member-show" 2>&1 || { cat "$WORK/member-show"; fail "the member cannot Show"; }
jq -e '.volumes | length == 1' "$WORK/member-show" >/dev/null || fail "the member's Show lacks the volume"

as "$member" enable --volume-type DATA >"$WORK/member-enable" 2>&1
rc=$?
[ $rc = 1 ] || fail "the member's enable exited $rc, expected 1"
grep -qi "permission denied" "$WORK/member-enable" || fail "no permission denied: $(cat "$WORK/member-enable")"
# The raw error name, too.
as "$member" --json enable --volume-type DATA >"$WORK/member-json" 2>/dev/null
jq -e '.error == "io.ade.DiskEncryption.PermissionDenied"' "$WORK/member-json" >/dev/null ||
        fail "the error is not io.ade.DiskEncryption.PermissionDenied: $(cat "$WORK/member-json")"
[ "$(secrets_count)" = 0 ] || fail "a secret was written for the member's enable"

as "$outsider" show >"$WORK/outsider" 2>&1
rc=$?
[ $rc = 4 ] || fail "the outsider's show exited $rc, expected 4 (cannot connect)"
grep -q "$SOCKET" "$WORK/outsider" || fail "the message does not name the socket"
pass
