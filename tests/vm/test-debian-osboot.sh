#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The encrypted root opened in the initramfs from Key Vault (docs/architecture.md §9), on a real
# Debian 12 guest (tests/vm/README.md, "The Debian guest": separate ext4 /boot, ext4 root, grub-pc)
# with ade's .deb installed: its initramfs-tools hook and boot scripts and ade-resolve-key.
#
# aded's Enable of the OS volume is not this test's subject: the setup prepares the root as that
# Enable will (docs/architecture.md §9 lists what it writes), with stock tools, which are the
# independent judges here: a key file escrowed in the emulator's Key Vault in ADE's format (the
# secret, and the key file wrapped by the KEK, by curl against the emulator); what "cryptsetup
# reencrypt --encrypt --init-only" does, on the MOUNTED root partition with a detached header in
# /boot/luks/, plus ade's token (tests/vm/osboot-init-only.py: libcryptsetup through python's ctypes,
# since the CLI refuses "token import" into a header marked for reencryption); the crypttab line,
# the fstab line, the grub drop-in; update-initramfs -u and update-grub.
#
# Then: a reboot opens the root as /dev/mapper/ade-root from Key Vault over the initramfs's network
# (DHCP, IMDS's managed identity, the KEK's unwrapkey); the initramfs holds no copy of the header
# (the header it opens with is the live one on /boot); stock "cryptsetup reencrypt --resume-only"
# finishes the encryption of the mounted root, every file of /usr intact; update-initramfs -u and a
# reboot still open it; with Key Vault unreachable and a BEK VOLUME disk (vfat, its
# LinuxPassPhraseFileName the key file) the boot opens the root from it after the 60 s budget; with
# neither, the serial console shows the passphrase prompt (then the guest is powered off).
#
# Skips (77) without root, qemu, mmdebstrap, dpkg-buildpackage and the build dependencies, the
# built emulator, or with ADE_HEAVY_TESTS=no.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/debian-lib.sh"
dvm_require
dvm_require_deb
dvm_new_run
t_start=$(date +%s)
dvm_image || fail "the Debian image could not be built"
dvm_build_deb || fail "dpkg-buildpackage failed on the tree under test"
dvm_start_emulator

# ---- the escrow, as aded's Enable writes it (docs/architecture.md §3), by curl ----
vault=https://contoso.vault.azure.net
kv() { # kv METHOD PATH BODY: a Key Vault call to the emulator, by the vault's own name.
        curl -sf --cacert "$EMU_CA" --resolve "contoso.vault.azure.net:$HTTPS_PORT:127.0.0.1" -X "$1" \
                -H "Authorization: Bearer $kv_token" -H 'Content-Type: application/json' --data-binary "$3" \
                "https://contoso.vault.azure.net:$HTTPS_PORT$2?api-version=7.4"
}
kv_token=$(curl -sf -H Metadata:true \
        "http://127.0.0.1:$HTTP_PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net" |
        jq -r .access_token) || fail "no token from the emulator's IMDS"
kek_version=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .version')
[ -n "$kek_version" ] || fail "the emulator has no key named kek"
kek_url=$vault/keys/kek/$kek_version
# The key file: the base64 text of 127 random bytes, 172 characters, no newline.
head -c 127 /dev/urandom | base64 -w0 >"$DVM_RUN/root.key"
chmod 600 "$DVM_RUN/root.key"
[ "$(wc -c <"$DVM_RUN/root.key")" = 172 ] || fail "bad key file"
b64url_key=$(basenc --base64url -w0 <"$DVM_RUN/root.key" | tr -d =)
wrapped=$(kv POST "/keys/kek/$kek_version/wrapkey" "{\"alg\":\"RSA-OAEP\",\"value\":\"$b64url_key\"}" | jq -r .value)
[ -n "$wrapped" ] && [ "$wrapped" != null ] || fail "the emulator did not wrap the key file"
secret_name=$(python3 -c 'import uuid; print(uuid.uuid4())')
secret_version=$(kv PUT "/secrets/$secret_name" "$(jq -nc --arg v "$wrapped" --arg k "$kek_url" \
        '{value: $v, contentType: "Wrapped BEK", tags: {DiskEncryptionKeyFileName: "LinuxPassPhraseFileName",
          DiskEncryptionKeyEncryptionAlgorithm: "RSA-OAEP", DiskEncryptionKeyEncryptionKeyURL: $k}}')" |
        jq -r '.id | split("/") | last')
[ -n "$secret_version" ] || fail "the emulator did not store the secret"
luks_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
header=/boot/luks/$luks_uuid.header
jq -nc --arg s "$vault/secrets/$secret_name/$secret_version" --arg k "$kek_url" --arg p "$wrapped" --arg v "$vault" \
        '{type: "Azure_Disk_Encryption", keyslots: ["0"], version: "1.0", KeyVaultURL: $v,
          KeyVaultResourceId: "/subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso",
          SecretURL: $s, KeyEncryptionKeyURL: $k,
          KekVaultResourceId: "/subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso",
          KeyEncryptionAlgorithm: "RSA-OAEP", VolumeType: "OS", Passphrase: $p}' >"$DVM_RUN/token.json"

# ---- first boot: ade installed, the root prepared ----
dvm_boot g || fail "QEMU did not start"
dvm_require_check "the guest boots" dvm_wait_boot g
dvm_trust_emulator g || fail "cannot trust the emulator in the guest"
dvm_require_check "ade's .deb installs" dvm_install_deb g
dvm_check "the package ships the initramfs hook and boot scripts" dvm_ssh g \
        'test -x /usr/share/initramfs-tools/hooks/ade && test -x /usr/share/initramfs-tools/scripts/local-top/ade &&
         test -x /usr/share/initramfs-tools/scripts/local-bottom/ade'
dvm_ssh g 'cat >/etc/ade/ade.conf' <<'EOF2'
[keyvault]
url = https://contoso.vault.azure.net
[identity]
type = managed
[azure]
ca-file = /usr/local/share/ca-certificates/ade-emulator.crt
EOF2
dvm_copy_in g "$DVM_RUN/root.key" /run/ade-test.key
dvm_copy_in g "$DVM_RUN/token.json" /run/ade-test-token.json
dvm_ssh g 'find /usr -xdev -type f -print0 | sort -z | xargs -0 sha256sum' >"$DVM_RUN/usr.manifest" ||
        fail "cannot make the manifest of /usr"
dvm_copy_in g "$DVM_RUN/usr.manifest" /var/tmp/usr.manifest
cat >"$DVM_RUN/prepare.sh" <<EOF2
set -e
root=\$(findmnt -n -o SOURCE /)
partuuid=\$(blkid -s PARTUUID -o value "\$root")
test -n "\$partuuid"
mkdir -p /boot/luks
dd if=/dev/zero of=$header bs=1M count=16 status=none
chmod 600 $header
python3 /root/osboot-init-only.py "\$root" $header $luks_uuid /run/ade-test.key /run/ade-test-token.json
cryptsetup luksDump $header | grep -q online-reencrypt
echo "ade-root PARTUUID=\$partuuid none luks,header=$header" >>/etc/crypttab
awk '\$2 == "/" { \$1 = "/dev/mapper/ade-root" } { print }' /etc/fstab >/etc/fstab.new && mv /etc/fstab.new /etc/fstab
mkdir -p /etc/default/grub.d
printf '%s\n' 'GRUB_DISABLE_LINUX_UUID=true' 'GRUB_DISABLE_LINUX_PARTUUID=true' 'GRUB_DEVICE=/dev/mapper/ade-root' \
        >/etc/default/grub.d/99-ade-root.cfg
EOF2
dvm_copy_in g "$DVM_RUN/prepare.sh" /root/prepare.sh
dvm_copy_in g "$top_srcdir/tests/vm/osboot-init-only.py" /root/osboot-init-only.py
dvm_require_check "the mounted root is prepared: init-only with the header on /boot, token, crypttab, fstab, grub" \
        dvm_ssh g 'sh /root/prepare.sh && cryptsetup token export --token-id 0 '"$header"' | grep -q Azure_Disk_Encryption'
t0=$(date +%s)
dvm_require_check "update-initramfs -u takes ade's hook" dvm_ssh g 'update-initramfs -u 2>&1'
echo "# figure debvm-update-initramfs $(($(date +%s) - t0)) s"
t0=$(date +%s)
dvm_require_check "update-grub" dvm_ssh g 'update-grub 2>&1'
echo "# figure debvm-update-grub $(($(date +%s) - t0)) s"
dvm_check "grub boots the kernel with root=/dev/mapper/ade-root, never root=UUID=" dvm_ssh g \
        'grep -E "^\s*linux\s" /boot/grub/grub.cfg; grep -qE "^\s*linux\s.*root=/dev/mapper/ade-root( |$)" /boot/grub/grub.cfg &&
         ! grep -qE "^\s*linux\s.*root=(PART)?UUID=" /boot/grub/grub.cfg'
initramfs_checks() {
        dvm_check "the initramfs holds ade-resolve-key, the boot scripts, NSS's dns and files, the CA bundle, ade.conf and the ca-file" \
                dvm_ssh g 'l=$(lsinitramfs /boot/initrd.img-$(uname -r)) &&
                for f in usr/sbin/ade-resolve-key scripts/local-top/ade scripts/local-bottom/ade etc/ade/ade.conf \
                        etc/ade/root.conf etc/ade/ca-file.pem etc/ssl/certs/ca-certificates.crt etc/nsswitch.conf; do
                        echo "$l" | grep -qx "$f" || echo "$l" | grep -qx "sbin/${f##*/}" || { echo "missing $f"; exit 1; }
                done; echo "$l" | grep -q "libnss_dns.so.2" && echo "$l" | grep -q "libnss_files.so.2" &&
                echo "$l" | grep -q "virtio_net.ko" && echo "$l" | grep -q "dm-crypt.ko" && echo "$l" | grep -q "vfat.ko"'
        dvm_check "the initramfs's ade.conf holds only the managed identity, and cryptroot's table leaves ade-root to ade" \
                dvm_ssh g 'd=$(mktemp -d) && unmkinitramfs /boot/initrd.img-$(uname -r) "$d" && c=$(find "$d" -path "*etc/ade/ade.conf") &&
                cat "$c" && grep -qx "type = managed" "$c" && ! grep -q "secret\|certificate" "$c" &&
                { ! t=$(find "$d" -path "*cryptroot/crypttab" | head -n1) || [ -z "$t" ] || ! grep -q "^ade-root " "$t"; }; rm -rf "$d"'
        dvm_check "no copy of the header in the initramfs (no file starts with the LUKS magic)" \
                dvm_ssh g 'd=$(mktemp -d) && unmkinitramfs /boot/initrd.img-$(uname -r) "$d" &&
                ! find "$d" -type f -size +4k -exec sh -c "head -c 6 \"\$1\" | od -An -tx1 | grep -q \"4c 55 4b 53 ba be\" && echo \"\$1\"" _ {} \; | grep .;
                rc=$?; rm -rf "$d"; exit $rc'
}
initramfs_checks

on_mapper() {
        dvm_ssh g 'findmnt -n -o SOURCE /; test "$(findmnt -n -o SOURCE /)" = /dev/mapper/ade-root'
}

# ---- reboot: the initramfs opens the root from Key Vault ----
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/requests" >/dev/null
dvm_require_check "the guest reboots" dvm_reboot g
echo "# figure debvm-reboot-keyvault $DVM_BOOT_SECONDS s"
dvm_require_check "/ is mounted from /dev/mapper/ade-root" on_mapper
dvm_check "the console says the initramfs opened it with the key from Key Vault" \
        grep -a "ade-resolve-key: .* opened as /dev/mapper/ade-root" "$DVM_RUN/g.console"
dvm_check "the KEK unwrapped the key (the emulator's log: unwrapkey, with a bearer token)" bash -c \
        'curl -sf "http://127.0.0.1:$1/_emulator/requests" |
         jq -e "[.requests[] | select(.path | endswith(\"/unwrapkey\")) | select(.status == 200)] | length >= 1"' _ "$HTTP_PORT"
dvm_check "the initramfs's network is down before the system's own (no leftover /run/net-*.conf)" dvm_ssh g \
        '! ls /run/net-*.conf 2>/dev/null'
dvm_check "the system is running, /boot mounted by fstab (the initramfs unmounted it)" dvm_ssh g \
        'systemctl is-system-running && findmnt /boot'

# ---- the encryption finishes online (stock cryptsetup), files intact ----
dvm_copy_in g "$DVM_RUN/root.key" /run/ade-test.key
t0=$(date +%s)
dvm_require_check "cryptsetup reencrypt --resume-only --active-name ade-root finishes" dvm_ssh g \
        "cryptsetup reencrypt --resume-only --batch-mode --active-name ade-root --header $header --key-file /run/ade-test.key"
echo "# figure debvm-root-reencrypt $(($(date +%s) - t0)) s"
dvm_check "the header says no reencryption is left" dvm_ssh g \
        "cryptsetup luksDump $header | grep -E '^Requirements|reencrypt'; ! cryptsetup luksDump $header | grep -q 'online-reencrypt'"
dvm_check "every file of /usr is intact" dvm_ssh g 'sync; echo 3 >/proc/sys/vm/drop_caches; sha256sum --quiet -c /var/tmp/usr.manifest'
dvm_check "the root partition holds no plaintext filesystem any more" dvm_ssh g \
        'root=$(cryptsetup status ade-root | awk "\$1 == \"device:\" { print \$2 }"); echo "$root";
         test -n "$root" && ! blkid -p "$root" | grep -q ext4'

# ---- update-initramfs -u, then a reboot: still opened from Key Vault ----
t0=$(date +%s)
dvm_require_check "update-initramfs -u in the encrypted guest" dvm_ssh g 'update-initramfs -u 2>&1'
echo "# figure debvm-update-initramfs-encrypted $(($(date +%s) - t0)) s"
initramfs_checks
dvm_require_check "the guest reboots after update-initramfs -u" dvm_reboot g
echo "# figure debvm-reboot-keyvault-2 $DVM_BOOT_SECONDS s"
dvm_require_check "/ is mounted from /dev/mapper/ade-root again" on_mapper
dvm_check "every file of /usr is intact after the reboot" dvm_ssh g 'sha256sum --quiet -c /var/tmp/usr.manifest'

# ---- Key Vault unreachable, a BEK VOLUME attached: the root opens from its key file ----
truncate -s 8M "$DVM_RUN/bek.img"
dvm_disk_add g bek "$DVM_RUN/bek.img" lun7 || fail "cannot attach the BEK disk"
dvm_copy_in g "$DVM_RUN/root.key" /run/ade-test.key
dvm_require_check "the BEK VOLUME is made (busybox mkdosfs, label \"BEK VOLUME\") with LinuxPassPhraseFileName" dvm_ssh g \
        'd=/dev/disk/azure/scsi1/lun7; udevadm settle; test -b $d && busybox mkdosfs -n "BEK VOLUME" $d >/dev/null &&
         udevadm settle && mkdir -p /mnt/bek && mount -t vfat $d /mnt/bek && cp /run/ade-test.key /mnt/bek/LinuxPassPhraseFileName &&
         umount /mnt/bek && blkid -s LABEL -o value $d'
emulator_fault '{"route": "keyvault", "drop": true, "count": 1000000}' || fail "cannot make Key Vault unreachable"
dvm_require_check "Key Vault unreachable, BEK VOLUME attached: the guest reboots" dvm_reboot g
echo "# figure debvm-reboot-bek $DVM_BOOT_SECONDS s"
dvm_require_check "/ is mounted from /dev/mapper/ade-root (the BEK VOLUME's key file)" on_mapper
dvm_check "the console says Key Vault failed within its budget and the BEK VOLUME opened it" bash -c \
        'grep -a "could not open ade-root from Key Vault within 60 s" "$1" && grep -a "opening ade-root with the key file of the BEK VOLUME" "$1"' \
        _ "$DVM_RUN/g.console"

# ---- neither: the passphrase prompt on the serial console ----
dvm_disk_remove g bek || fail "cannot detach the BEK disk"
prompts=$(grep -ac "Please unlock disk ade-root" "$DVM_RUN/g.console")
dvm_ssh g 'systemctl reboot' 2>/dev/null
deadline=$(($(date +%s) + ${ADE_VM_TIMEOUT:-600}))
prompt=
while [ "$(date +%s)" -lt "$deadline" ] && kill -0 "${dvm_pid[g]}" 2>/dev/null; do
        if [ "$(grep -ac "Please unlock disk ade-root" "$DVM_RUN/g.console")" -gt "$prompts" ]; then
                prompt=yes
                break
        fi
        sleep 2
done
dvm_check "neither Key Vault nor a BEK VOLUME: the serial console shows the passphrase prompt" test "$prompt" = yes
dvm_kill g
echo "# figure debvm-osboot-test-total $(($(date +%s) - t_start)) s"
dvm_finish
