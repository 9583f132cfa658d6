#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Secrets hygiene: after an end-to-end enable, unlock, rotate and disable, neither key file (the
# first and the rotated one), nor a secret's value as Key Vault holds it, nor the application's
# client secret appears in aded's log (at debug level), in its state folder, in any reply adectl
# printed (every command's output and "show --json" after each step), or in the cores of the
# running aded taken with gcore after each step. aded declares itself not dumpable; gcore (root, CAP_SYS_PTRACE) can still
# take the core, which is the point: what an attacker with root's ptrace would read.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v gcore >/dev/null || skip "gcore (gdb) is not installed"
make_volume 200
start_emulator
write_config
ADED_LOG_LEVEL=debug start_aded
mkdir -p "$WORK/replies"
step=0
# run NAME ARGS...: adectl ARGS, its output and then Show's kept as replies.
run() {
        local name=$1
        shift
        step=$((step + 1))
        adectl "$@" >"$WORK/replies/$step-$name" 2>&1 || fail "adectl $* failed: $(cat "$WORK/replies/$step-$name")"
        adectl show --json >"$WORK/replies/$step-$name.show" 2>&1 || fail "show after $name failed"
        # A core of the running aded after each step: what a step leaves may be gone after the next.
        mkdir -p "$WORK/cores"
        gcore -o "$WORK/cores/$step-$name" "$ADED_PID" >"$WORK/gcore.log" 2>&1 ||
                fail "gcore failed: $(tail -3 "$WORK/gcore.log")"
        [ -s "$WORK/cores/$step-$name.$ADED_PID" ] || fail "gcore wrote no core"
}

run enable enable --volume-type DATA
# Not dumpable: asked inside aded itself (PR_GET_DUMPABLE is 3), as only the process can say.
d=$(gdb -p "$ADED_PID" -batch -ex 'print (int)prctl(3, 0, 0, 0, 0)' 2>/dev/null | sed -n 's/^\$1 = //p')
[ "$d" = 0 ] || fail "aded is dumpable (PR_GET_DUMPABLE says '$d')"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted after enable"
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/key1" "$VOLUME" 2>/dev/null || fail "cannot resolve the key"
if grep -qw device-mapper /proc/devices; then
        run unlock unlock
        mapper=$(volume_field "$VOLUME" mapper)
        [ -b "$mapper" ] || fail "unlock opened no mapping"
        cryptsetup close "$(basename "$mapper")" || fail "cannot close $mapper"
fi
run rotate rotate
"$RESOLVE" --config "$WORK/ade.conf" --output "$WORK/key2" "$VOLUME" 2>/dev/null || fail "cannot resolve the new key"
cmp -s "$WORK/key1" "$WORK/key2" && fail "rotate did not change the key file"
run disable disable --volume-type data
[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "not NotEncrypted after disable"
emulator_state | jq -r '.secrets[].value' >"$WORK/values"
[ "$(wc -l <"$WORK/values")" -ge 2 ] || fail "Key Vault holds fewer than two secrets"

stop_aded || fail "aded did not stop cleanly"

# needle NAME TEXT: TEXT must be nowhere.
found=""
needle() {
        local name=$1 text=$2 where
        [ ${#text} -ge 16 ] || fail "$name is too short to search for"
        for where in "$WORK/aded.log" "$WORK/state" "$WORK/replies" "$WORK"/cores/*; do
                if grep -rqaF -- "$text" "$where"; then
                        found+="$name in ${where#"$WORK"/}; "
                fi
        done
}
needle "the first key file" "$(cat "$WORK/key1")"
needle "the rotated key file" "$(cat "$WORK/key2")"
n=0
while read -r value; do
        n=$((n + 1))
        needle "secret value $n" "$value"
done <"$WORK/values"
needle "the client secret" "$(cat "$WORK/app-secret")"
[ -z "$found" ] || fail "secrets found: $found"
pass
