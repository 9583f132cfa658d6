#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A header backup that cannot be uploaded is retried, across a restart (docs/architecture.md §11).
# Azurite never fails, so aded talks to it through tests/integration/blob-fault-proxy.py, which
# answers 503 ServerBusy with Retry-After (or 401 for an expired token) when the test says so. Storage failing: the encryption still
# succeeds, the volume is Encrypted and its record (and Show) says the backup is pending and since
# when. aded restarted while it is pending, Storage back but answering one 503 with Retry-After:
# the retry at start waits it out and uploads generation 1; the backup is Current. A key rotation
# uploads generation 2, a disable generation 3 (the header it found; Storage first refuses the token
# as expired, and the request goes again with a new one), and with [backup] keep = 2 generation 1 is
# deleted; the finished disable marks generations 2 and 3 obsolete. A rotation while Storage fails leaves generation 2 pending, and aded's
# retry timer uploads it once Storage is back, without a restart.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
. "$(dirname "$0")/daemon-backup-lib.sh"
backup_storage_start

mode=$WORK/proxy.mode
echo fail >"$mode"
/usr/bin/python3 "$srcdir/tests/integration/blob-fault-proxy.py" "${AZURITE_ACCOUNT%/devstoreaccount1}" "$ca" \
        "$WORK/azurite/cert.pem" "$WORK/azurite/key.pem" "$mode" "$WORK/proxy.log" >"$WORK/proxy.out" 2>&1 &
proxy_pid=$!
CLEANUPS+=("kill $proxy_pid")
for _ in $(seq 100); do
        port=$(sed -n 's/^port //p' "$WORK/proxy.out")
        [ -n "$port" ] && break
        kill -0 "$proxy_pid" 2>/dev/null || { cat "$WORK/proxy.out"; fail "the fault proxy exited"; }
        sleep 0.1
done
[ -n "$port" ] || fail "the fault proxy did not listen"
container=https://127.0.0.1:$port/devstoreaccount1/backups

write_config
printf '\n[backup]\nurl = %s\nkeep = 2\n' "$container" >>"$WORK/ade.conf"
start_aded
kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")
record() {
        jq -r --arg d "$VOLUME" ".volumes[] | select(.device == \$d) | .$1" "$WORK/state/state.json"
}

# Storage answers 503 to everything: the encryption is not failed by it.
adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" --skip-snapshot-check \
        >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable failed while Storage answered 503"; }
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted"
grep -q "$VOLUME: the header backup was not uploaded to $container" "$WORK/aded.log" ||
        fail "the log does not say the backup failed: $(grep -i backup "$WORK/aded.log" | tail -n 5)"
grep -q " 503$" "$WORK/proxy.log" || fail "the proxy answered no 503"
[ "$(record backupPending)" = true ] || fail "the record does not say the backup is pending: $(cat "$WORK/state/state.json")"
since=$(record backupPendingSince)
[ "$since" -gt 0 ] 2>/dev/null || fail "no backupPendingSince: $since"
[ "$(record backupGeneration)" = null ] || fail "a generation is recorded without an upload"
[ "$(volume_field "$VOLUME" backup.state)" = Pending ] || fail "Show does not say Pending: $(volume_field "$VOLUME" backup)"
[ "$(volume_field "$VOLUME" backup.pendingSince)" = "$(date -u -d "@${since%??????}" +%Y-%m-%dT%H:%M:%SZ)" ] ||
        fail "Show's pendingSince is not the record's: $(volume_field "$VOLUME" backup)"
[ "$(volume_field "$VOLUME" backup.generation)" = null ] || fail "Show has a generation without an upload"
adectl show >"$WORK/table" || fail "adectl show failed"
grep -q "^    backup:  Pending since $(volume_field "$VOLUME" backup.pendingSince)$" "$WORK/table" ||
        fail "the table does not say the backup is pending: $(cat "$WORK/table")"
t list >"$WORK/list" || fail "cannot list the container"
[ -s "$WORK/list" ] && fail "a blob exists although every upload failed: $(cat "$WORK/list")"
check_files_encrypted "$VOLUME" "$MANIFEST"

# Restarted while pending; Storage back, with one 503 and Retry-After first.
stop_aded || fail "aded did not exit cleanly (status $?): $(tail -n 20 "$WORK/aded.log")"
echo 503-once >"$mode"
: >"$WORK/proxy.log"
start_aded
for _ in $(seq 600); do
        [ "$(record backupGeneration)" = 1 ] && break
        sleep 0.1
done
[ "$(record backupGeneration)" = 1 ] || fail "the pending backup did not catch up after the restart: $(tail -n 5 "$WORK/aded.log")"
[ "$(record backupPending)" = null ] || fail "still pending after the upload"
[ "$(head -n 1 "$WORK/proxy.log" | cut -d' ' -f3)" = 503 ] || fail "the first request was not answered 503: $(cat "$WORK/proxy.log")"
grep -q "^PUT .* 201$" "$WORK/proxy.log" || fail "no upload went through after the 503: $(cat "$WORK/proxy.log")"
uuid=$(cryptsetup luksUUID "$VOLUME") || fail "no LUKS UUID on $VOLUME"
backup_only_generation_1 "$uuid"
t get "$name" "$WORK/header.backup" >"$WORK/meta" || fail "ade cannot decrypt the backup"
cryptsetup luksHeaderBackup "$VOLUME" --header-backup-file "$WORK/stock.backup" || fail "luksHeaderBackup failed"
cmp -s "$WORK/header.backup" "$WORK/stock.backup" || fail "the uploaded header is not the volume's header"
[ "$(volume_field "$VOLUME" state)" = Encrypted ] || fail "not Encrypted after the retry"
[ "$(volume_field "$VOLUME" backup.state)" = Current ] || fail "Show does not say Current: $(volume_field "$VOLUME" backup)"
[ "$(volume_field "$VOLUME" backup.generation)" = 1 ] || fail "Show's generation is not 1"
[ "$(volume_field "$VOLUME" backup.pendingSince)" = null ] || fail "Show still has a pendingSince"
adectl show >"$WORK/table" || fail "adectl show failed"
grep -q "^    backup:  Current, generation 1$" "$WORK/table" || fail "the table does not say Current: $(cat "$WORK/table")"

# A key rotation changes the header: generation 2. Storage fails again: the rotation succeeds, the
# backup is Pending with generation 1 uploaded; once Storage is back, aded's own retry (no restart,
# no job) uploads generation 2.
echo fail >"$mode"
adectl rotate >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "rotate failed while Storage answered 503"; }
[ "$(volume_field "$VOLUME" backup.state)" = Pending ] || fail "not Pending after a rotation that could not upload"
[ "$(volume_field "$VOLUME" backup.generation)" = 1 ] || fail "the uploaded generation is not 1 any more"
adectl show >"$WORK/table" || fail "adectl show failed"
grep -q "^    backup:  Pending since .* (an older generation is uploaded)$" "$WORK/table" ||
        fail "the table does not say Pending with an older generation: $(cat "$WORK/table")"
echo pass >"$mode"
# The first retry comes 30 s after the failure (aded-backup.h); 120 s is the bound, not a timing.
for _ in $(seq 1200); do
        [ "$(record backupGeneration)" = 2 ] && break
        sleep 0.1
done
[ "$(volume_field "$VOLUME" backup.generation)" = 2 ] || fail "no generation 2 after Storage came back: $(tail -n 5 "$WORK/aded.log")"
[ "$(volume_field "$VOLUME" backup.state)" = Current ] || fail "not Current after the retry"
t list >"$WORK/list" || fail "cannot list the container"
name2=$(grep "^$(hostname)/$uuid/000002-" "$WORK/list" | cut -d' ' -f1)
[ -n "$name2" ] || fail "no blob of generation 2: $(cat "$WORK/list")"
t get "$name2" "$WORK/header2.backup" >"$WORK/meta" || fail "ade cannot decrypt generation 2"
cryptsetup luksHeaderBackup "$VOLUME" --header-backup-file "$WORK/stock2.backup" || fail "luksHeaderBackup failed"
cmp -s "$WORK/header2.backup" "$WORK/stock2.backup" || fail "generation 2 is not the rotated header"

# A disable uploads the header as it found it (generation 3), then decrypts. Storage first refuses
# the token as expired: a new one is fetched and the same request sent again, within the upload.
echo expired-once >"$mode"
: >"$WORK/proxy.log"
logged=$(wc -l <"$WORK/aded.log")
adectl disable --volume-type data >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "disable failed"; }
[ "$(sed -n 1p "$WORK/proxy.log" | cut -d' ' -f3)" = 401 ] || fail "the first request was not refused 401: $(cat "$WORK/proxy.log")"
[ "$(sed -n 2p "$WORK/proxy.log" | cut -d' ' -f1,2)" = "$(sed -n 1p "$WORK/proxy.log" | cut -d' ' -f1,2)" ] &&
        sed -n 2p "$WORK/proxy.log" | grep -q ' 20[01]$' ||
        fail "the request refused for an expired token was not sent again with a new one: $(cat "$WORK/proxy.log")"
grep -q "^PUT .*/000003-.* 201$" "$WORK/proxy.log" || fail "generation 3 was not uploaded: $(cat "$WORK/proxy.log")"
tail -n +$((logged + 1)) "$WORK/aded.log" >"$WORK/disable.log"
grep -q "the header backup was not uploaded" "$WORK/disable.log" &&
        fail "the disable's upload failed after the expired token: $(cat "$WORK/disable.log")"
grep -q "2 header backup(s) of volume $uuid marked obsolete" "$WORK/disable.log" ||
        fail "generations 2 and 3 were not marked obsolete: $(cat "$WORK/disable.log")"
[ "$(volume_field "$VOLUME" state)" = NotEncrypted ] || fail "not NotEncrypted after disable"
t list >"$WORK/list" || fail "cannot list the container"
name3=$(grep "^$(hostname)/$uuid/000003-" "$WORK/list" | cut -d' ' -f1)
[ -n "$name3" ] || fail "no blob of generation 3 after the disable: $(cat "$WORK/list")"
t get "$name3" "$WORK/header3.backup" >"$WORK/meta" || fail "ade cannot decrypt generation 3"
cmp -s "$WORK/header3.backup" "$WORK/stock2.backup" || fail "generation 3 is not the header the disable found"
# [backup] keep = 2: generation 1 was deleted once generation 3 was uploaded.
grep -q "^$(hostname)/$uuid/000001-" "$WORK/list" && fail "generation 1 is still there with keep = 2: $(cat "$WORK/list")"
[ "$(grep -c "^$(hostname)/$uuid/" "$WORK/list")" = 2 ] || fail "not exactly generations 2 and 3: $(cat "$WORK/list")"
check_files_on_plain "$VOLUME" "$MANIFEST"
stop_aded || fail "aded did not exit cleanly (status $?): $(tail -n 20 "$WORK/aded.log")"
pass
