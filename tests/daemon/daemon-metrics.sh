#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Prometheus textfile-collector file ([metrics] path): written as soon as aded starts, judged by
# promtool (Debian's prometheus package, tools/setup-deps.sh) idle, during an encryption and after
# it; during the job its progress never goes back and never runs ahead of what Show says next;
# after it the volume is Encrypted in the file, the Key Vault calls are counted (a refusal by its
# kind), and no rate is left. The file is replaced whole (no temporary file is left beside it) and readable by the node
# exporter (0644). The rules of docs/prometheus/ade.rules.yml pass "promtool check rules".
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v promtool >/dev/null || skip "promtool is missing (tools/setup-deps.sh unpacks it from Debian's prometheus package)"
make_volume 1536
start_emulator
write_config
mkdir -p "$WORK/metrics"
METRICS=$WORK/metrics/ade.prom
printf '\n[metrics]\npath = %s\n' "$METRICS" >>"$WORK/ade.conf"
start_aded

# metric NAME [STATE]: the volume's sample of NAME (with state="STATE" when given), or nothing.
metric() {
        local sel="device=\"$VOLUME\",type=\"Data\""
        [ -n "${2:-}" ] && sel="$sel,state=\"$2\""
        sed -n "s|^$1{$sel} ||p" "$METRICS"
}
judge() {
        promtool check metrics <"$METRICS" >"$WORK/promtool.out" 2>&1 || fail "promtool finds problems ($1): $(cat "$WORK/promtool.out")"
        [ ! -s "$WORK/promtool.out" ] || fail "promtool has remarks ($1): $(cat "$WORK/promtool.out")"
}

for _ in $(seq 1 100); do [ -s "$METRICS" ] && break; sleep 0.1; done
[ -s "$METRICS" ] || fail "aded wrote no metrics file at $METRICS"
judge idle
[ "$(metric ade_volume_state NotEncrypted)" = 1 ] || fail "the idle volume is not NotEncrypted=1: $(cat "$METRICS")"
grep -q '^ade_build_info{version="[^"]*"} 1$' "$METRICS" || fail "no ade_build_info"
echo "ok: written at start, promtool finds nothing, the volume NotEncrypted"

adectl enable --volume-type DATA --no-wait >/dev/null 2>&1 || fail "enable --no-wait failed"
wait_for_progress "$VOLUME"
last=0 values=0 judged= t0=$(date +%s)
for i in $(seq 1 3000); do
        in_file=$(metric ade_volume_done_bytes)
        state=$(volume_field "$VOLUME" state)
        shown=$(volume_field "$VOLUME" bytesDone)
        [ "$state" = EncryptionInProgress ] || break
        [ -n "$in_file" ] || continue
        [ "$in_file" -ge "$last" ] || fail "the file's bytes done went back from $last to $in_file"
        [ "$in_file" -le "$shown" ] || fail "the file says $in_file bytes done, ahead of Show's $shown"
        [ "$in_file" -gt "$last" ] && values=$((values + 1))
        last=$in_file
        if [ -z "$judged" ] && [ "$(metric ade_volume_state EncryptionInProgress)" = 1 ]; then
                judge "during the encryption"
                judged=yes
        fi
        sleep 0.2
done
[ -n "$judged" ] || skip "the encryption ended before the file said EncryptionInProgress"
# aded rewrites the file every 2 s while a job runs: a job seen for 6 s or more shows it twice at
# least (a fast, idle machine can finish 1.5 GiB sooner; then the count says nothing).
if [ $(( $(date +%s) - t0 )) -ge 6 ]; then
        [ "$values" -ge 2 ] || fail "the file's progress changed $values time(s) during the encryption, not kept up to date"
fi
echo "ok: during the encryption: $values values of bytes done, never back, never ahead of Show; promtool finds nothing"

wait_for_state "$VOLUME" Encrypted 300
for _ in $(seq 1 100); do [ "$(metric ade_volume_state Encrypted)" = 1 ] && break; sleep 0.1; done
[ "$(metric ade_volume_state Encrypted)" = 1 ] || fail "the file does not say Encrypted after the job: $(cat "$METRICS")"
judge "after the encryption"
[ -z "$(metric ade_volume_rate_bytes_per_second)" ] || fail "a rate is left after the job"
ok=$(sed -n 's/^ade_keyvault_requests_succeeded_total //p' "$METRICS")
[ "${ok:-0}" -ge 1 ] || fail "no successful Key Vault call counted (the escrow): $ok"
grep -q '^ade_keyvault_last_success_timestamp_seconds [0-9]' "$METRICS" || fail "no time of the last Key Vault success"
[ "$(stat -c %a "$METRICS")" = 644 ] || fail "the file's mode is $(stat -c %a "$METRICS"), not 644"
[ "$(ls -A "$WORK/metrics")" = ade.prom ] || fail "left in the folder: $(ls -A "$WORK/metrics")"
echo "ok: after: Encrypted, $ok Key Vault call(s) counted, no rate, 0644, no temporary file"

# A failure is counted by its kind: Key Vault refuses (403) the key a rotation needs.
emulator_fault '{"route": "keyvault", "status": 403, "count": 1000}' || fail "cannot inject the fault"
adectl rotate >/dev/null 2>&1 && fail "rotate succeeded with Key Vault answering 403"
for _ in $(seq 1 100); do
        auth=$(sed -n 's/^ade_keyvault_requests_failed_total{kind="auth"} //p' "$METRICS")
        [ "${auth:-0}" -ge 1 ] && break
        sleep 0.1
done
[ "${auth:-0}" -ge 1 ] || fail "Key Vault's 403 is not counted as kind auth: $(grep failed_total "$METRICS")"
judge "after a failure"
promtool check rules "$top_srcdir/docs/prometheus/ade.rules.yml" >"$WORK/promtool.out" 2>&1 ||
        fail "promtool refuses docs/prometheus/ade.rules.yml: $(cat "$WORK/promtool.out")"
echo "ok: Key Vault's 403 counted as ade_keyvault_requests_failed_total{kind=\"auth\"} $auth"
pass
