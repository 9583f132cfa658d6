#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The offline crash matrix (docs/crash-matrix.md): aded, driven through adectl, killed with SIGKILL
# at every engine point (AdeLuksStep) and every state step (AdeJobStep, and RotateKey's records)
# of encrypt, decrypt and rotate, with the header attached and detached; each point is then
# resumed twice (killed again at the same point or a later one, then let finish) by
# crash-point.sh, which checks the end state and the data. Points run ADE_CRASH_JOBS at a time
# (default 2), each with its own loop device, emulator, aded and folders. Prints the table.
set -uo pipefail
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
export top_srcdir top_builddir
POINT_SCRIPT=$top_srcdir/tests/integration/crash-point.sh

[ "${ADE_HEAVY_TESTS:-yes}" = no ] && { echo "SKIP: ADE_HEAVY_TESTS=no"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for loop devices"; exit 77; }
[ -f "$top_builddir/tests/integration/crash-shim.so" ] || { echo "SKIP: the crash shim is not built"; exit 77; }

# The points of each operation in the order a run passes them.
encrypt_attached="state:encrypt:none state:encrypt:preconditions state:encrypt:keyfile state:encrypt:wrap
        state:encrypt:escrow engine:planned engine:shrunk state:encrypt:shrink engine:header-written
        state:encrypt:header state:encrypt:reencrypt state:encrypt:done"
encrypt_detached="state:encrypt:none state:encrypt:preconditions state:encrypt:keyfile state:encrypt:wrap
        state:encrypt:escrow engine:planned engine:header-written state:encrypt:header state:encrypt:reencrypt
        state:encrypt:done"
decrypt_attached="state:decrypt:preconditions engine:header-backed-up engine:decrypt-header-exported
        state:decrypt:header engine:decrypt-device-wiped state:decrypt:removed"
decrypt_detached="state:decrypt:preconditions engine:header-backed-up state:decrypt:removed"
rotate_attached="state:pending engine:header-backed-up engine:rotate-keyslot-added engine:rotate-token-swapped
        engine:rotate-old-removed state:secret"
rotate_detached=$rotate_attached

out=$(mktemp -d /tmp/ade-crash-matrix.XXXXXX)
trap 'rm -rf "$out"' EXIT

# A chain is one volume taken through an encrypt point, then a rotate point, then a decrypt point
# (each ends where the next begins): one volume and one emulator for three points.
chains=0 n=0
for kind in attached detached; do
        max=0
        for op in encrypt rotate decrypt; do
                list=${op}_$kind
                read -r -a pts <<<"$(echo ${!list})"
                [ ${#pts[@]} -gt $max ] && max=${#pts[@]}
        done
        for ((i = 0; i < max; i++)); do
                specs=()
                for op in encrypt rotate decrypt; do
                        list=${op}_$kind
                        read -r -a pts <<<"$(echo ${!list})"
                        [ $i -lt ${#pts[@]} ] || continue
                        later=$(IFS=,; echo "${pts[*]:$((i + 1))}")
                        specs+=("$op/${pts[$i]}/$later")
                        echo "$chains $op $kind ${pts[$i]}" >>"$out/points"
                        n=$((n + 1))
                done
                echo "$kind ${specs[*]}" >"$out/chain.$chains"
                chains=$((chains + 1))
        done
done

# Warm the emulator's keys once: making them is most of its start.
mkdir -p "$out/emu-keys"
"$top_builddir/tests/emulator/ade-emulator" --dir "$out/emu-keys" >"$out/emu-keys.log" 2>&1 &
emu=$!
for _ in $(seq 1 600); do [ -s "$out/emu-keys/ready.json" ] && break; sleep 0.1; done
kill "$emu" 2>/dev/null
wait "$emu" 2>/dev/null
export ADE_CRASH_EMU_KEYS=$out/emu-keys

started=$SECONDS
# shellcheck disable=SC2016
seq 0 $((chains - 1)) | xargs -P "${ADE_CRASH_JOBS:-2}" -I{} sh -c \
        '"$0" $(cat "$1/chain.$2") >"$1/$2.log" 2>&1; echo $? >"$1/$2.rc"' "$POINT_SCRIPT" "$out" {}
elapsed=$((SECONDS - started))

failed=0 skipped=0
echo "| operation | header | killed at | first run | second run | end | secrets | keyslots | s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
while read -r id op kind point; do
        rc=$(cat "$out/$id.rc" 2>/dev/null || echo 1)
        line=$(grep -F "$op|$kind|$point|" "$out/$id.log" | tail -n 1)
        if [ -n "$line" ]; then
                echo "| ${line//|/ | } |"
        elif [ "$rc" = 77 ]; then
                skipped=$((skipped + 1))
        else
                failed=$((failed + 1))
                echo "| $op | $kind | $point | FAILED (chain $id, exit $rc) | | | | | |"
                grep -q "^--- chain $id\$" "$out/failures" 2>/dev/null ||
                        { echo "--- chain $id"; tail -n 40 "$out/$id.log"; } >>"$out/failures"
        fi
done < <(sort -s -k2,3 "$out/points")
echo
echo "$n points in $chains chains, $failed failed, $skipped skipped, ${elapsed} s with ${ADE_CRASH_JOBS:-2} at a time"
[ -f "$out/failures" ] && cat "$out/failures"
[ $failed = 0 ] || exit 1
[ $skipped = "$n" ] && exit 77
exit 0
