#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Adopt (docs/architecture.md §12): volumes laid out as Azure Disk Encryption lays them out (stock
# cryptsetup luksFormat, LUKS2 and LUKS1, with key files from a vfat "BEK VOLUME", crypttab lines on
# /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_<lun>), their secrets escrowed in the emulated Key
# Vault as ADE escrows them (wrapped by a KEK, ADE's tags), one of them named by its disk's encryption
# settings in ARM. A dry run changes nothing; Adopt adds ade's token to the LUKS2 volume (stock
# cryptsetup reads it), records both, points their crypttab lines at the key socket with ADE's
# mapping names and keeps ADE's lines aside; a second Adopt changes nothing; the key socket serves
# both keys; a volume whose escrowed secret is another key is refused and left as it was. A legacy
# volume of ADE's azure_crypt_mount (no crypttab line, ADE's BekFileName from azure_crypt_config.ini)
# gets a crypttab line on the key socket and an fstab line. While ADE's encryption marker exists,
# every volume is refused and nothing is written.
. "$(dirname "$0")/daemon-lib.sh"
daemon_require_root
command -v python3 >/dev/null || skip "python3 not found"
command -v mkfs.vfat >/dev/null && command -v mcopy >/dev/null || skip "mkfs.vfat or mcopy not found (dosfstools, mtools)"
CLIENT=$top_srcdir/tests/daemon/keysocket-client.py

# ---- ADE's BEK VOLUME: a vfat image with one key file per data disk (127 random bytes, base64) ----
truncate -s 8M "$WORK/bek.img"
mkfs.vfat -n "BEK VOLUME" "$WORK/bek.img" >/dev/null || fail "mkfs.vfat failed"
[ "$(blkid -o value -s LABEL "$WORK/bek.img")" = "BEK VOLUME" ] || fail "the BEK image has no 'BEK VOLUME' label"
for lun in 0 1 2; do
        head -c 127 /dev/urandom | base64 -w0 >"$WORK/LinuxPassPhraseFileName_1_$lun"
        mcopy -i "$WORK/bek.img" "$WORK/LinuxPassPhraseFileName_1_$lun" ::/ || fail "mcopy failed"
        rm -f "$WORK/LinuxPassPhraseFileName_1_$lun"
done
# The key files as ADE's boot reads them: from the BEK volume.
for lun in 0 1 2; do
        mtype -i "$WORK/bek.img" "::/LinuxPassPhraseFileName_1_$lun" >"$WORK/bek$lun" || fail "mtype failed"
        [ "$(wc -c <"$WORK/bek$lun")" = 172 ] || fail "key file $lun is not 172 bytes"
done

# ---- the volumes: stock cryptsetup, as ADE formats them (A: LUKS2, B: LUKS1, C: LUKS2) ----
luks() { # luks TYPE KEYFILE: a volume of its own, luksFormatted; sets VOLUME
        make_volume 64
        cryptsetup luksFormat -q --type "$1" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$VOLUME" "$2" ||
                fail "luksFormat --type $1 failed"
}
luks luks2 "$WORK/bek0"
A=$VOLUME
luks luks1 "$WORK/bek1"
B=$VOLUME
luks luks2 "$WORK/bek2"
C=$VOLUME
# D: a legacy volume of ADE's azure_crypt_mount, its key file named by ADE's BekFileName.
head -c 127 /dev/urandom | base64 -w0 >"$WORK/bek3"
luks luks2 "$WORK/bek3"
D=$VOLUME
[ "$(cryptsetup luksDump "$B" | awk '/^Version:/ {print $2}')" = 1 ] || fail "$B is not LUKS1"

# ADE's mapping names are UUIDs of their own.
NA=$(python3 -c 'import uuid; print(uuid.uuid4())')
NB=$(python3 -c 'import uuid; print(uuid.uuid4())')
NC=$(python3 -c 'import uuid; print(uuid.uuid4())')
ND=$(python3 -c 'import uuid; print(uuid.uuid4())')
SA=$(python3 -c 'import uuid; print(uuid.uuid4())')

# ---- the emulator: disk LUN 0's encryption settings name A's secret (ADE sets them after escrow) ----
start_emulator "$(jq -nc --arg s "$SA" '{vm: {data_disks: [
        {name: "ade-test-vm_DataDisk_0", lun: 0, size_gb: 32, encryption_secret: $s},
        {name: "ade-test-vm_DataDisk_1", lun: 1, size_gb: 32}]}}')"
write_config
vault=https://localhost:$HTTPS_PORT
kv_token=$(curl -sf -H Metadata:true \
        "http://127.0.0.1:$HTTP_PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$EMULATOR_KEYVAULT_RESOURCE" |
        jq -r .access_token) || fail "no token from the emulator's IMDS"
[ -n "$kv_token" ] && [ "$kv_token" != null ] || fail "no Key Vault token from the emulator's IMDS"
kv() { # kv METHOD PATH BODY
        curl -sf --cacert "$WORK/emu/ca.pem" -X "$1" -H "Authorization: Bearer $kv_token" \
                -H 'Content-Type: application/json' --data-binary "$3" "$vault$2?api-version=7.4"
}
vm_name=$(curl -sf -H Metadata:true "http://127.0.0.1:$HTTP_PORT/metadata/instance?api-version=2021-02-01" |
        jq -r .compute.name) || fail "no VM name from IMDS"
kek_version=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .version')
[ -n "$kek_version" ] || fail "the emulator has no key named kek"
kek_url=$vault/keys/kek/$kek_version
# escrow NAME KEYFILE FILENAME_TAG: the key file wrapped by the KEK, as ADE's secret.
escrow() {
        local wrapped
        wrapped=$(kv POST "/keys/kek/$kek_version/wrapkey" \
                "{\"alg\":\"RSA-OAEP\",\"value\":\"$(basenc --base64url -w0 <"$2" | tr -d =)\"}" | jq -r .value)
        [ -n "$wrapped" ] && [ "$wrapped" != null ] || fail "the emulator did not wrap $2"
        kv PUT "/secrets/$1" "$(jq -nc --arg v "$wrapped" --arg k "$kek_url" --arg f "$3" --arg m "$vm_name" \
                '{value: $v, contentType: "Wrapped BEK", tags: {DiskEncryptionKeyFileName: $f, MachineName: $m,
                  DiskEncryptionKeyEncryptionAlgorithm: "RSA-OAEP", DiskEncryptionKeyEncryptionKeyURL: $k}}')" |
                jq -r .id
}
# A: found through ARM only (its tags name another file, so Key Vault's tags would not find it).
escrow "$SA" "$WORK/bek0" LinuxPassPhraseFileName_9_9 >/dev/null || fail "escrow of A failed"
# B: found by ADE's tags.
escrow "$(python3 -c 'import uuid; print(uuid.uuid4())')" "$WORK/bek1" LinuxPassPhraseFileName_1_1 >/dev/null ||
        fail "escrow of B failed"
# D: by ADE's tags, with its BekFileName.
escrow "$(python3 -c 'import uuid; print(uuid.uuid4())')" "$WORK/bek3" LinuxPassPhraseFileName_legacy >/dev/null ||
        fail "escrow of D failed"
# C: its tags, but another key (A's): refused.
escrow "$(python3 -c 'import uuid; print(uuid.uuid4())')" "$WORK/bek0" LinuxPassPhraseFileName_1_2 >/dev/null ||
        fail "escrow of C failed"

# ---- crypttab as ADE writes it, beside a line of the operator's ----
cat >"$WORK/crypttab" <<EOF
# <target name> <source device> <key file> <options>
home /dev/disk/by-id/none-such /etc/home.key luks,nofail
$NA $A /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail
$NB $B /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_1 luks,nofail
$NC $C /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_2 luks,nofail
EOF
cp "$WORK/crypttab" "$WORK/crypttab.ade"
# fstab as ADE writes it: each filesystem on its mapping, nofail.
cat >"$WORK/fstab" <<EOF
UUID=0000-1111 / ext4 errors=remount-ro 0 1
/dev/mapper/$NA /data-a ext4 defaults,nofail 0 0
/dev/mapper/$NB /data-b xfs defaults,nofail 0 0
/dev/mapper/$NC /data-c ext4 defaults,nofail 0 0
LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0
EOF
cp "$WORK/fstab" "$WORK/fstab.ade"
# ADE's folder: its config (as Python's ConfigParser writes it: keys lower-cased), and D in its legacy
# table, beside a line whose mapper crypttab has (migrated to crypttab: that line counts).
ADE_DIR=$WORK/azure_disk_encryption_config
mkdir -p "$ADE_DIR"
printf '[azure_crypt_config]\nvolumetype = Data\nbekfilename = LinuxPassPhraseFileName_legacy\nsecretseqnum = 1\n' \
        >"$ADE_DIR/azure_crypt_config.ini"
printf '%s %s None /data-d ext4 False 0\n%s %s None /data-b xfs False 0\n' "$ND" "$D" "$NB" "$B" \
        >"$ADE_DIR/azure_crypt_mount"
cp "$ADE_DIR/azure_crypt_mount" "$WORK/azure_crypt_mount.ade"
ADED_LOG_LEVEL=debug start_aded

sums() { sha256sum "$WORK/crypttab" "$WORK/fstab" "$A" "$B" "$C" "$D"; ls "$WORK/state" "$WORK/headers" 2>/dev/null; }

# ---- ADE's encryption marker: an operation of ADE's in progress; every volume refused, nothing written ----
printf '[azure_crypt_request_queue]\nencryptionoperation = EnableEncryption\nvolumetype = Data\n' \
        >"$ADE_DIR/azure_crypt_request_queue.ini"
sums >"$WORK/sums.before"
adectl --json adopt >"$WORK/marker.json" 2>"$WORK/marker.err"
[ $? = 3 ] || fail "adopt under ADE's marker did not exit 3: $(cat "$WORK/marker.err")"
sums >"$WORK/sums.after"
cmp -s "$WORK/sums.before" "$WORK/sums.after" ||
        fail "adopt under ADE's marker changed something: $(diff "$WORK/sums.before" "$WORK/sums.after")"
[ ! -e "$WORK/crypttab.ade-backup" ] || fail "adopt under ADE's marker wrote the backup file"
jq -e --arg m "$ADE_DIR/azure_crypt_request_queue.ini" '(.volumes | length == 4) and
        all(.volumes[]; .action == "refused" and (.reason | contains($m)) and (.reason | test("EnableEncryption")) and
        (.reason | test("let ADE finish")))' "$WORK/marker.json" >/dev/null ||
        fail "not every volume is refused for ADE's marker: $(cat "$WORK/marker.json")"
rm "$ADE_DIR/azure_crypt_request_queue.ini"

# ---- dry run: the plan, nothing written ----
sums >"$WORK/sums.before"
adectl --json adopt --dry-run >"$WORK/dry.json" 2>"$WORK/dry.err"
[ $? = 3 ] || fail "a dry run with a refused volume did not exit 3: $(cat "$WORK/dry.err")"
sums >"$WORK/sums.after"
cmp -s "$WORK/sums.before" "$WORK/sums.after" || fail "the dry run changed something: $(diff "$WORK/sums.before" "$WORK/sums.after")"
[ ! -e "$WORK/crypttab.ade-backup" ] || fail "the dry run wrote the backup file"
jq -e '.dryRun == true and (.volumes | length == 4)' "$WORK/dry.json" >/dev/null ||
        fail "the dry run's reply is not four volumes: $(cat "$WORK/dry.json")"
jq -e --arg n "$NA" --arg s "$vault/secrets/$SA/" '.volumes[] | select(.name == $n) |
        .action == "adopt" and .luksVersion == 2 and (.secretUrl | startswith($s)) and (.reason | test("found in arm"))' \
        "$WORK/dry.json" >/dev/null || fail "A's plan is wrong (or not from ARM): $(cat "$WORK/dry.json")"
jq -e --arg n "$NB" '.volumes[] | select(.name == $n) | .action == "adopt" and .luksVersion == 1 and
        (.reason | test("found in keyvault"))' "$WORK/dry.json" >/dev/null ||
        fail "B's plan is wrong (or not from Key Vault's tags): $(cat "$WORK/dry.json")"
jq -e --arg n "$NC" '.volumes[] | select(.name == $n) | .action == "refused" and (.reason | test("opens no keyslot"))' \
        "$WORK/dry.json" >/dev/null || fail "C is not refused for its wrong key: $(cat "$WORK/dry.json")"
jq -e --arg n "$ND" '.volumes[] | select(.name == $n) | .action == "adopt" and .luksVersion == 2 and
        (.reason | test("found in keyvault")) and (.reason | test("mounting it on /data-d"))' "$WORK/dry.json" >/dev/null ||
        fail "D's plan is wrong: $(cat "$WORK/dry.json")"

# ---- adopt ----
csum=$(sha256sum <"$C")
adectl adopt >"$WORK/adopt.out" 2>&1
[ $? = 3 ] || fail "adopt with a refused volume did not exit 3: $(cat "$WORK/adopt.out")"
grep -q "^$NA ($A, LUKS2): adopted" "$WORK/adopt.out" || fail "A not adopted: $(cat "$WORK/adopt.out")"
grep -q "^$NB ($B, LUKS1): adopted" "$WORK/adopt.out" || fail "B not adopted: $(cat "$WORK/adopt.out")"
grep -q "^$ND ($D, LUKS2): adopted" "$WORK/adopt.out" || fail "D not adopted: $(cat "$WORK/adopt.out")"
grep -q "^$NC ($C, LUKS2): refused: the key escrowed in .* opens no keyslot of $C" "$WORK/adopt.out" ||
        fail "C's refusal does not say why: $(cat "$WORK/adopt.out")"
grep -q "az vm extension delete .* -n AzureDiskEncryptionForLinux" "$WORK/adopt.out" ||
        fail "adopt does not say to remove ADE's extension"
# A: ade's token, read by stock cryptsetup, bound to the keyslot ADE's key opens.
cryptsetup luksDump "$A" | grep -q "Azure_Disk_Encryption" || fail "no ade token on $A (luksDump)"
cryptsetup token export --token-id 0 "$A" >"$WORK/token-a.json" || fail "cannot export A's token"
jq -e --arg s "$vault/secrets/$SA/" --arg k "$kek_url" '.type == "Azure_Disk_Encryption" and .keyslots == ["0"] and
        (.SecretURL | startswith($s)) and .KeyEncryptionKeyURL == $k and .VolumeType == "Data" and
        (.Passphrase | length > 0)' "$WORK/token-a.json" >/dev/null || fail "A's token is wrong: $(cat "$WORK/token-a.json")"
# B stays LUKS1, unchanged on disk; C untouched.
[ "$(cryptsetup luksDump "$B" | awk '/^Version:/ {print $2}')" = 1 ] || fail "$B is no longer LUKS1"
grep -F "$B" "$WORK/sums.before" | cut -d' ' -f1 >"$WORK/b.before"
sha256sum "$B" | cut -d' ' -f1 | cmp -s - "$WORK/b.before" || fail "B's header was written"
[ "$(sha256sum <"$C")" = "$csum" ] || fail "C was written although refused"
# Records for both, under ADE's mapping names.
jq -e --arg a "$NA" --arg b "$NB" '[.volumes[] | .adoptedName] | (index($a) != null) and (index($b) != null)' \
        "$WORK/state/state.json" >/dev/null || fail "no adoption records: $(cat "$WORK/state/state.json")"
# crypttab: A's and B's lines on the key socket with ADE's names; C's and the operator's as they were.
KEYSOCK=$WORK/run/key.socket
grep -qx "$NA $A $KEYSOCK luks,_netdev,nofail,headless=true,tries=1" "$WORK/crypttab" ||
        fail "A's crypttab line: $(cat "$WORK/crypttab")"
grep -qx "$NB $B $KEYSOCK luks,_netdev,nofail,headless=true,tries=1" "$WORK/crypttab" ||
        fail "B's crypttab line: $(cat "$WORK/crypttab")"
grep -qx "$NC $C /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_2 luks,nofail" "$WORK/crypttab" ||
        fail "C's line changed"
grep -qx "home /dev/disk/by-id/none-such /etc/home.key luks,nofail" "$WORK/crypttab" || fail "the operator's line changed"
grep -qxF "$(grep "^$NA " "$WORK/crypttab.ade")" "$WORK/crypttab.ade-backup" || fail "ADE's line of A is not kept"
grep -qxF "$(grep "^$NB " "$WORK/crypttab.ade")" "$WORK/crypttab.ade-backup" || fail "ADE's line of B is not kept"
grep -q "^$NC " "$WORK/crypttab.ade-backup" && fail "C's line was moved aside"
# D, from azure_crypt_mount: a crypttab line on the key socket, an fstab line with the boot flags;
# ADE's table left as it was.
grep -qx "$ND $D $KEYSOCK luks,_netdev,nofail,headless=true,tries=1" "$WORK/crypttab" ||
        fail "D's crypttab line: $(cat "$WORK/crypttab")"
grep -q "^$ND " "$WORK/crypttab.ade-backup" && fail "D has a line in the backup file"
grep -qx "# ade: $ND added" "$WORK/fstab" &&
        grep -qx "/dev/mapper/$ND /data-d ext4 defaults,_netdev,nofail,x-systemd.before=multi-user.target 0 2" \
                "$WORK/fstab" || fail "D's fstab line: $(cat "$WORK/fstab")"
cryptsetup luksDump "$D" | grep -q "Azure_Disk_Encryption" || fail "no ade token on $D (luksDump)"
cmp -s "$ADE_DIR/azure_crypt_mount" "$WORK/azure_crypt_mount.ade" || fail "azure_crypt_mount was changed"
# fstab: A's and B's mounts wait for the network (the key socket opens them after it), ADE's lines
# kept in comments; C's and the rest as they were.
for v in "$NA /data-a ext4" "$NB /data-b xfs"; do
        set -- $v
        grep -qx "/dev/mapper/$1 $2 $3 defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 0" "$WORK/fstab" &&
                grep -qxF "# ade: $1 was: $(grep " $2 " "$WORK/fstab.ade")" "$WORK/fstab" ||
                fail "the fstab line of $2: $(cat "$WORK/fstab")"
done
# ADE's BEK VOLUME mount waits at most 10 s for its disk (gone once ADE's settings are removed).
grep -qx 'LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail,x-systemd.device-timeout=10s 0 0' \
        "$WORK/fstab" || fail "the BEK VOLUME's fstab line: $(cat "$WORK/fstab")"
[ "$(grep -v -e "^# ade: " -e /data-a -e /data-b -e /data-d -e azure_bek_disk "$WORK/fstab")" = \
        "$(grep -v -e /data-a -e /data-b -e azure_bek_disk "$WORK/fstab.ade")" ] ||
        fail "other fstab lines changed: $(cat "$WORK/fstab")"

# ---- a second adopt changes nothing ----
sums >"$WORK/sums.before"
cp "$WORK/crypttab.ade-backup" "$WORK/backup.before"
adectl adopt >"$WORK/adopt2.out" 2>&1
[ $? = 3 ] || fail "the second adopt did not exit 3 (C stays refused): $(cat "$WORK/adopt2.out")"
grep -q "^$NA ($A, LUKS2): adopted: .* adopted already" "$WORK/adopt2.out" || fail "A: $(cat "$WORK/adopt2.out")"
grep -q "^$NB ($B, LUKS1): adopted: .* adopted already" "$WORK/adopt2.out" || fail "B: $(cat "$WORK/adopt2.out")"
grep -q "^$ND ($D, LUKS2): adopted: .* adopted already" "$WORK/adopt2.out" || fail "D: $(cat "$WORK/adopt2.out")"
sums >"$WORK/sums.after"
cmp -s "$WORK/sums.before" "$WORK/sums.after" || fail "the second adopt changed something: $(diff "$WORK/sums.before" "$WORK/sums.after")"
cmp -s "$WORK/crypttab.ade-backup" "$WORK/backup.before" || fail "the second adopt changed the backup file"
[ "$(cryptsetup luksDump "$A" | grep -c "Azure_Disk_Encryption")" = 1 ] || fail "a second token on A"

# ---- the key socket serves both, by ADE's mapping names (the LUKS1 one from its record) ----
ask() {
        rm -f "$WORK/key"
        python3 "$CLIENT" "$KEYSOCK" "$@" --out "$WORK/key" >/dev/null 2>"$WORK/client.err"
}
ask "$NA" || fail "no key for $NA: $(tail -n 5 "$WORK/aded.log")"
cryptsetup open --test-passphrase --key-file "$WORK/key" "$A" || fail "the key socket's key does not open $A"
cmp -s "$WORK/key" "$WORK/bek0" || fail "the key socket's key for $NA is not ADE's key file"
ask "$NB" || fail "no key for $NB: $(tail -n 5 "$WORK/aded.log")"
cryptsetup open --test-passphrase --key-file "$WORK/key" "$B" || fail "the key socket's key does not open $B"
cmp -s "$WORK/key" "$WORK/bek1" || fail "the key socket's key for $NB is not ADE's key file"
ask "$ND" || fail "no key for $ND: $(tail -n 5 "$WORK/aded.log")"
cmp -s "$WORK/key" "$WORK/bek3" || fail "the key socket's key for $ND is not ADE's key file"
ask "$NC"
[ $? = 2 ] || fail "the key socket served the refused $NC"
grep -q "key socket: delivered the key of $NB" "$WORK/aded.log" || fail "the LUKS1 delivery is not logged"
# Key Vault unwrapped with the KEK: the boot path, not the BEK file.
curl -sf "http://127.0.0.1:$HTTP_PORT/_emulator/requests" |
        jq -e '[.requests[] | select(.path | endswith("/unwrapkey")) | select(.status == 200)] | length >= 2' >/dev/null ||
        fail "no KEK unwrap in the emulator's log"
# Show: both encrypted, the LUKS1 one by its record, with the secret that was proven.
[ "$(volume_field "$A" state)" = Encrypted ] || fail "show: $A is $(volume_field "$A" state)"
[ "$(volume_field "$B" state)" = Encrypted ] || fail "show: $B is $(volume_field "$B" state)"
volume_field "$B" message | grep -q "adopted from ADE (LUKS1" || fail "show does not say $B was adopted"
[ "$(volume_field "$A" secretUrl)" = "$(jq -r .SecretURL "$WORK/token-a.json")" ] || fail "show: A's secret"
kill -0 "$ADED_PID" || fail "aded died"
pass
