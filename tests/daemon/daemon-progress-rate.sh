#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Progress everywhere: while an encryption runs, Show gives its rate (bytes per second, as aded
# measures it) and the seconds left at that rate, in --json ("rate", "etaSeconds") and in adectl's
# table; the bytes done never go back between two Shows; once the job is over neither is there.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
make_volume 1536
start_emulator
write_config
start_aded

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$VOLUME"
last=0 seen= t0=$(date +%s)
for i in $(seq 1 600); do
        adectl --json show >"$WORK/show.json" 2>/dev/null || fail "show failed"
        read -r state done total rate eta < <(jq -r --arg d "$VOLUME" \
                '.volumes[] | select(.device == $d) | "\(.state) \(.bytesDone) \(.bytesTotal) \(.rate) \(.etaSeconds)"' "$WORK/show.json")
        [ "$state" = EncryptionInProgress ] || break
        [ "$done" -ge "$last" ] || fail "bytesDone went back from $last to $done"
        last=$done
        if [ "$rate" != null ]; then
                [ "$rate" -gt 0 ] || fail "rate $rate is not positive"
                [ "$eta" != null ] && [ "$eta" -ge 0 ] || fail "a rate ($rate) without etaSeconds ($eta)"
                # The seconds left agree with the bytes left at that rate (rounded up).
                want=$(( (total - done + rate - 1) / rate ))
                [ "$eta" = "$want" ] || fail "etaSeconds $eta, but $((total - done)) bytes left at $rate B/s is $want s"
                adectl show >"$WORK/table" 2>&1 || fail "adectl show failed"
                grep -qE "^    rate: +[0-9.]+ [KMG]?i?B/s, ETA [0-9]+:[0-9]{2}" "$WORK/table" ||
                        fail "the table shows no rate and ETA: $(cat "$WORK/table")"
                seen=yes
                break
        fi
        # aded measures from its first report of the run, once reports span a second.
        [ $(( $(date +%s) - t0 )) -lt 4 ] || fail "no rate in Show after 4 s of encryption: $(cat "$WORK/show.json")"
        sleep 0.1
done
[ -n "$seen" ] || skip "the encryption ended (state $state) before aded had measured a rate"
echo "ok: rate $rate B/s, etaSeconds $eta, in --json and the table"

wait_for_state "$VOLUME" Encrypted 300
adectl --json show >"$WORK/show.json" || fail "show failed"
jq -e --arg d "$VOLUME" '.volumes[] | select(.device == $d) | has("rate") or has("etaSeconds") | not' \
        "$WORK/show.json" >/dev/null || fail "a finished volume still has a rate or an ETA: $(cat "$WORK/show.json")"
adectl show | grep -q '^    rate:' && fail "the table shows a rate for a finished volume"
echo "ok: no rate and no ETA once Encrypted"
pass
