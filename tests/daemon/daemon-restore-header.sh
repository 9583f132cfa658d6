#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Header restore from Blob Storage (docs/architecture.md §11) with the rescue tool ade-restore-header,
# aded stopped. Two volumes enabled with a KEK upload their headers to Azurite: an ext4 one with its
# header attached and an XFS one with a detached header. The attached header is overwritten (the
# first 16 MiB zeroed): the tool finds the volume's generations by its stable id, refuses to write
# without --yes, writes nothing on --dry-run, and refuses a tampered blob (one byte flipped,
# re-uploaded as a newer generation), the blob of the other volume passed off as this one's, a blob
# cut at a region boundary and one whose KeyId names an untrusted vault, each time with the device's
# bytes unchanged. It restores generation
# 1: stock cryptsetup opens it with the escrowed key, every file is intact, and what the device held
# is kept in header-dir. The detached header file is deleted and restored from the newest generation
# of its device the same way. Then the same through aded (adectl restore-header, RestoreHeader): the
# newest generation refused, a dry run, an unknown generation and a device aded does not manage
# change nothing; while a restore runs nothing else starts (OperationInProgress names its device);
# generation 1 is restored and opens. A disable then marks the volume's generations
# obsolete, and a restore of any of them onto the plaintext device is refused.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v cryptsetup >/dev/null || skip "no cryptsetup"
command -v openssl >/dev/null || skip "no openssl"
command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs"
srcdir=$top_srcdir
builddir=$top_builddir
RESTORE=$builddir/tools/ade-restore-header
[ -x "$RESTORE" ] || skip "$RESTORE is not built"
. "$srcdir/tests/integration/azurite-lib.sh"
azurite_install
rc=$?
[ $rc -eq 0 ] || exit $rc

make_volume 160
attached=$VOLUME
attached_manifest=$MANIFEST
daemon_workdir
truncate -s 300M "$WORK/xfs.img"
mkfs.xfs -q "$WORK/xfs.img" || fail "mkfs.xfs failed"
detached=$(losetup -f --show "$WORK/xfs.img") || fail "losetup failed"
LOOPS+=("$detached")
detached_sum=$(sha256sum <"$detached")

start_emulator
azurite_start "$WORK/azurite" "$WORK/emu/ca.pem" "$WORK/emu/ca.key" || fail "Azurite did not start"
CLEANUPS+=("kill $AZURITE_PID; wait $AZURITE_PID")
ca=$WORK/emu/ca.pem
token=$(curl -sSf --noproxy '*' -H 'Metadata: true' \
        "http://127.0.0.1:$HTTP_PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F" |
        jq -r .access_token)
azurite_create_container backups "$token" "$ca" || fail "cannot create the container"
write_config
printf '\n[backup]\nurl = %s\n' "$AZURITE_ACCOUNT/backups" >>"$WORK/ade.conf"
start_aded
kek=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .kid')
vault_id=$(sed -n 's/^resource-id = //p' "$WORK/ade.conf")
adectl enable --volume-type data --kek-url "$kek" --kek-vault-resource-id "$vault_id" --skip-snapshot-check \
        >"$WORK/out" 2>&1 || { cat "$WORK/out"; fail "enable with a KEK failed"; }
[ "$(volume_field "$attached" state)" = Encrypted ] || fail "$attached is not Encrypted"
[ "$(volume_field "$detached" state)" = Encrypted ] || fail "$detached is not Encrypted"
[ "$(volume_field "$detached" header)" = Detached ] || fail "$detached's header is not Detached"
header=$(jq -r --arg d "$detached" '.volumes[] | select(.device == $d) | .headerPath' "$WORK/state/state.json")
[ -f "$header" ] || fail "the state file names no header file for $detached ('$header')"
uuid=$(cryptsetup luksUUID "$attached") || fail "no LUKS UUID on $attached"
other_uuid=$(cryptsetup luksUUID "$header") || fail "no LUKS UUID in $header"
stop_aded

r() { "$RESTORE" --config "$WORK/ade.conf" "$@"; }
# Blob Storage's REST with a bearer token, for what a person with write access to the container can do.
storage() {
        curl -sSf --noproxy '*' --cacert "$ca" -H "Authorization: Bearer $token" -H 'x-ms-version: 2021-12-02' \
                -H "x-ms-date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')" "$@"
}
# reupload NAME BODY HEADERS NEW_NAME [META=VALUE]...: BODY as blob NEW_NAME, with the metadata of
# the GET answer HEADERS, META overridden.
reupload() {
        local body=$2 headers=$3 new=$4 line key value args=() o o_key
        shift 4
        while IFS= read -r line; do
                line=${line%$'\r'}
                case "${line,,}" in x-ms-meta-*) ;; *) continue ;; esac
                key=${line%%:*} value=${line#*: }
                for o in "$@"; do
                        o_key=${o%%=*}
                        [ "${key,,}" = "x-ms-meta-${o_key,,}" ] && value=${o#*=}
                done
                args+=(-H "$key: $value")
        done <"$headers"
        storage -o /dev/null -X PUT -H 'x-ms-blob-type: BlockBlob' "${args[@]}" --data-binary @"$body" \
                "$AZURITE_ACCOUNT/backups/$new" || fail "cannot upload $new"
}
device_sum() { head -c 20M "$attached" | sha256sum; }
kept_count() { find "$WORK/headers" -name '*.before-restore' | wc -l; }

# The intact volume: listed by its UUID; a dry run checks everything and writes nothing.
r --list "$attached" >"$WORK/list" || fail "--list failed on $attached"
[ "$(wc -l <"$WORK/list")" = 1 ] || fail "not one generation of $attached: $(cat "$WORK/list")"
read -r gen vol name _ <"$WORK/list"
[ "$gen" = 1 ] && [ "$vol" = "$uuid" ] || fail "the generation listed is not 1 of $uuid: $(cat "$WORK/list")"

# The attached header destroyed.
dd if=/dev/zero of="$attached" bs=1M count=16 conv=fsync status=none || fail "cannot overwrite $attached"
cryptsetup isLuks "$attached" && fail "$attached still has a LUKS header"
before=$(device_sum)
r --list "$attached" >"$WORK/list" || fail "--list by stable id failed on $attached"
[ "$(cut -d' ' -f1-3 "$WORK/list")" = "1 $uuid $name" ] || fail "--list by stable id: $(cat "$WORK/list")"
r "$attached" >"$WORK/out" 2>&1
[ $? = 2 ] || fail "a write without --yes was not refused: $(cat "$WORK/out")"
grep -q -- "--yes" "$WORK/out" || fail "the refusal does not say --yes: $(cat "$WORK/out")"
r --dry-run "$attached" >"$WORK/out" 2>&1 || fail "--dry-run failed: $(cat "$WORK/out")"
grep -q "generation 1 .* nothing was written" "$WORK/out" || fail "--dry-run says: $(cat "$WORK/out")"
[ "$(device_sum)" = "$before" ] || fail "--dry-run wrote to $attached"

# A tampered generation 2: one byte flipped in the body.
storage -o "$WORK/body" -D "$WORK/headers.txt" "$AZURITE_ACCOUNT/backups/$name" || fail "cannot download $name"
cp "$WORK/body" "$WORK/body.orig"
byte=$(od -An -tu1 -j 5000 -N 1 "$WORK/body" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 1)))" | dd of="$WORK/body" bs=1 seek=5000 conv=notrunc status=none
tampered=${name%/*}/000002-tampered
reupload "$name" "$WORK/body" "$WORK/headers.txt" "$tampered" AdeGeneration=2
r --yes "$attached" >"$WORK/out" 2>&1 && fail "a tampered blob was restored: $(cat "$WORK/out")"
grep -q "$tampered does not decrypt: it was tampered with" "$WORK/out" || fail "tampered blob: $(cat "$WORK/out")"
[ "$(device_sum)" = "$before" ] || fail "a tampered blob changed $attached"
[ "$(kept_count)" = 0 ] || fail "a refused restore kept a copy"

# Generation 3: the other volume's genuine blob, its metadata edited to name this volume.
other=$(r --list --header "$header" "$detached" | cut -d' ' -f3)
[ -n "$other" ] || fail "no generation of $detached"
storage -o "$WORK/other.body" -D "$WORK/other.headers" "$AZURITE_ACCOUNT/backups/$other" || fail "cannot download $other"
device_id=$(grep -i '^x-ms-meta-adedeviceid:' "$WORK/headers.txt" | cut -d' ' -f2- | tr -d '\r')
reupload "$other" "$WORK/other.body" "$WORK/other.headers" "${name%/*}/000003-other" AdeGeneration=3 \
        "AdeVolume=$uuid" "AdeDeviceId=$device_id"
r --list "$attached" | cut -d' ' -f1 | tr '\n' ' ' | grep -qx '1 2 3 ' || fail "not generations 1 2 3: $(r --list "$attached")"
r --yes "$attached" >"$WORK/out" 2>&1 && fail "another volume's header was restored: $(cat "$WORK/out")"
grep -q "holds the header of volume $other_uuid, not of $attached" "$WORK/out" || fail "other volume: $(cat "$WORK/out")"
[ "$(device_sum)" = "$before" ] || fail "another volume's blob changed $attached"
r --yes --generation 2 "$attached" >"$WORK/out" 2>&1 && fail "generation 2 (tampered) was restored"
# Generation 4: the genuine body cut after its first region; a whole region decrypts, to less than
# the header states.
head -c $((4194304 + 28)) "$WORK/body.orig" >"$WORK/cut.body"
reupload "$name" "$WORK/cut.body" "$WORK/headers.txt" "${name%/*}/000004-cut" AdeGeneration=4
r --yes "$attached" >"$WORK/out" 2>&1 && fail "a cut blob was restored: $(cat "$WORK/out")"
grep -q "000004-cut is not a whole LUKS2 header" "$WORK/out" || fail "cut blob: $(cat "$WORK/out")"
# Generation 5: the genuine blob, its metadata's KeyId edited to name a vault nobody trusts: no token
# goes there, nothing is written.
encryption_data=$(grep -i '^x-ms-meta-encryptiondata:' "$WORK/headers.txt" | cut -d' ' -f2- | tr -d '\r')
edited=$(jq -c '.WrappedContentKey.KeyId = "https://attacker.example/keys/kek/0123456789abcdef0123456789abcdef"' \
        <<<"$encryption_data") || fail "cannot edit the encryptiondata metadata: $encryption_data"
reupload "$name" "$WORK/body.orig" "$WORK/headers.txt" "${name%/*}/000005-keyid" AdeGeneration=5 \
        "encryptiondata=$edited"
r --yes "$attached" >"$WORK/out" 2>&1 && fail "a blob with an edited KeyId was restored: $(cat "$WORK/out")"
grep -q "Cannot decrypt .*000005-keyid with its key-encryption key" "$WORK/out" || fail "edited KeyId: $(cat "$WORK/out")"
grep -q "attacker.example" "$WORK/out" || fail "the refusal does not name the untrusted vault: $(cat "$WORK/out")"
[ "$(device_sum)" = "$before" ] || fail "generation 2 changed $attached"
[ "$(kept_count)" = 0 ] || fail "a refused restore kept a copy"

# Generation 1 restored: stock cryptsetup opens it with the escrowed key, every file is intact.
r --yes --generation 1 "$attached" >"$WORK/out" 2>&1 || fail "restore failed: $(cat "$WORK/out")"
grep -q "header restored from generation 1 .* of volume $uuid" "$WORK/out" || fail "restore says: $(cat "$WORK/out")"
[ "$(cryptsetup luksUUID "$attached")" = "$uuid" ] || fail "$attached does not have its UUID back"
kept=$(find "$WORK/headers" -name "$uuid.*.before-restore")
[ -n "$kept" ] && [ "$(kept_count)" = 1 ] || fail "no copy of what $attached held was kept"
cmp -s -n 16777216 "$kept" /dev/zero || fail "the copy kept is not what $attached held (zeros)"
check_files_encrypted "$attached" "$attached_manifest"

# The detached header deleted, restored from the newest generation of its device.
rm -f "$header"
r --yes --header "$header" "$detached" >"$WORK/out" 2>&1 || fail "detached restore failed: $(cat "$WORK/out")"
[ "$(stat -c %a "$header")" = 600 ] || fail "the restored header file is not 0600"
[ "$(cryptsetup luksUUID "$header")" = "$other_uuid" ] || fail "the restored header is not $other_uuid"
check_detached_copy "$detached" "$header" "$WORK/xfs.img" "$detached_sum"

# The same through aded: adectl restore-header (RestoreHeader). The newest generation is refused;
# generation 1 is restored.
dd if=/dev/zero of="$attached" bs=1M count=16 conv=fsync status=none || fail "cannot overwrite $attached"
before=$(device_sum)
rm -f "$WORK/headers/"*.before-restore
start_aded
adectl restore-header "$attached" >"$WORK/out" 2>&1
[ $? = 2 ] || fail "adectl restore-header without --yes was not refused: $(cat "$WORK/out")"
adectl restore-header --yes "$attached" >"$WORK/out" 2>&1
[ $? = 3 ] || fail "RestoreHeader of the newest (edited) generation was not refused: $(cat "$WORK/out")"
grep -q "restore-header refused: .*000005-keyid" "$WORK/out" || fail "RestoreHeader refusal: $(cat "$WORK/out")"
adectl restore-header --dry-run --generation 1 "$attached" >"$WORK/out" 2>&1 || fail "RestoreHeader dry run: $(cat "$WORK/out")"
grep -q "generation 1 .* nothing was written (dry run)" "$WORK/out" || fail "RestoreHeader dry run: $(cat "$WORK/out")"
adectl restore-header --generation 9 --dry-run "$attached" >"$WORK/out" 2>&1
[ $? = 3 ] && grep -q "no header backup generation 9" "$WORK/out" || fail "generation 9: $(cat "$WORK/out")"
adectl restore-header --dry-run /dev/null >"$WORK/out" 2>&1 && fail "RestoreHeader of /dev/null succeeded"
# While a restore runs (the emulator holds its Key Vault call), nothing else starts: a dry run of
# enable, a disable, a rotation and a second restore are refused with OperationInProgress naming
# the device; Show still answers.
held() { curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/faults" | jq -r .held; }
emulator_fault '{"route": "keyvault", "hang": true}' || fail "cannot add the hang fault"
adectl restore-header --dry-run --generation 1 "$attached" >"$WORK/held.out" 2>&1 &
restore_pid=$!
for _ in $(seq 600); do [ "$(held)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
[ "$(held)" -ge 1 ] 2>/dev/null || fail "the restore's Key Vault call was not held: $(cat "$WORK/held.out")"
for what in "enable --volume-type data --dry-run" "disable --volume-type data" rotate \
        "restore-header --dry-run --generation 1 $attached"; do
        adectl $what >"$WORK/out" 2>&1 && fail "adectl $what ran while a restore ran: $(cat "$WORK/out")"
        grep -q "refused: another job is running on $attached" "$WORK/out" ||
                fail "adectl $what while a restore ran: $(cat "$WORK/out")"
done
adectl show --json >"$WORK/out" 2>&1 || fail "Show does not answer while a restore runs: $(cat "$WORK/out")"
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
wait "$restore_pid"
grep -q "generation 1 .* nothing was written (dry run)" "$WORK/held.out" ||
        fail "the held restore did not finish once Key Vault answered: $(cat "$WORK/held.out")"
[ "$(device_sum)" = "$before" ] || fail "a refused or dry RestoreHeader changed $attached"
[ "$(kept_count)" = 0 ] || fail "a refused or dry RestoreHeader kept a copy"
adectl --json restore-header --yes --generation 1 "$attached" >"$WORK/out" 2>&1 || fail "RestoreHeader: $(cat "$WORK/out")"
[ "$(jq -r .volume "$WORK/out")" = "$uuid" ] && [ "$(jq -r .generation "$WORK/out")" = 1 ] ||
        fail "RestoreHeader's reply: $(cat "$WORK/out")"
[ -f "$(jq -r .kept "$WORK/out")" ] || fail "RestoreHeader names no copy kept: $(cat "$WORK/out")"
[ "$(cryptsetup luksUUID "$attached")" = "$uuid" ] || fail "$attached does not have its UUID back after RestoreHeader"
stop_aded
check_files_encrypted "$attached" "$attached_manifest"

# A finished disable marks every generation of the volume obsolete: the device then holds its
# filesystem where the header was, and a restore would overwrite it. Found by the device's stable id
# (no header to give a UUID), each is listed as obsolete and refused; the device is unchanged.
start_aded
adectl disable --volume-type data "$attached" >"$WORK/out" 2>&1 || fail "disable of $attached failed: $(cat "$WORK/out")"
stop_aded
grep -q "header backup(s) of volume $uuid marked obsolete in " "$WORK/aded.log" ||
        fail "aded does not say the backups were marked obsolete: $(grep -i backup "$WORK/aded.log" | tail -n 5)"
check_files_on_plain "$attached" "$attached_manifest"
r --list "$attached" >"$WORK/list" || fail "--list failed on the decrypted $attached"
[ "$(wc -l <"$WORK/list")" -ge 5 ] || fail "the generations of $attached are not listed: $(cat "$WORK/list")"
grep -v " obsolete 20[0-9-]*T[0-9:]*Z$" "$WORK/list" && fail "a generation is not marked obsolete: $(cat "$WORK/list")"
# The mark is added to the metadata; the rest stays (the content key's wrapping above all).
first=$(awk 'NR == 1 { print $3 }' "$WORK/list")
storage -o /dev/null -D "$WORK/marked.txt" "$AZURITE_ACCOUNT/backups/$first" || fail "cannot download $first"
for m in adeobsolete encryptiondata adevolume adegeneration adesecreturl; do
        grep -qi "^x-ms-meta-$m: ." "$WORK/marked.txt" || fail "$first has no metadata $m now: $(cat "$WORK/marked.txt")"
done
before=$(device_sum)
r --yes "$attached" >"$WORK/out" 2>&1 && fail "an obsolete generation was restored: $(cat "$WORK/out")"
grep -q "is obsolete: its volume $uuid was decrypted at .*nothing was written" "$WORK/out" ||
        fail "the refusal of an obsolete generation says: $(cat "$WORK/out")"
r --yes --generation 1 "$attached" >"$WORK/out" 2>&1 && fail "obsolete generation 1 was restored: $(cat "$WORK/out")"
[ "$(device_sum)" = "$before" ] || fail "a refused restore of an obsolete generation changed $attached"
check_files_on_plain "$attached" "$attached_manifest"
pass
