#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# "adectl show --json" prints {"os", "data", "volumes"} with docs/architecture.md §7's volume object, and --json is
# accepted before and after the verb with the same result.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 200
start_emulator
write_config
start_aded

before=$(adectl --json show) || fail "adectl --json show failed"
after=$(adectl show --json) || fail "adectl show --json failed"
[ "$before" = "$after" ] || fail "--json before and after the verb differ"
echo "$after" | jq -e '(.os | type == "string") and (.data | type == "string") and (.volumes | type == "array")' \
        >/dev/null || fail "top-level shape wrong: $after"
echo "$after" | jq -e --arg d "$VOLUME" '.volumes[] | select(.device == $d) |
        .type == "Data" and .state == "NotEncrypted" and (.progress | type == "number") and
        (.bytesDone | type == "number") and (.bytesTotal | type == "number") and (.unlocked == false)' \
        >/dev/null || fail "volume object wrong: $after"
[ "$(echo "$after" | jq -r .data)" = NotEncrypted ] || fail "data is not NotEncrypted"
pass
