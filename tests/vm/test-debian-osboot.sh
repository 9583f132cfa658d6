#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The encrypted root opened in the initramfs from Key Vault (docs/architecture.md §9), on a real
# Debian 12 guest (tests/vm/README.md, "The Debian guest": separate ext4 /boot, ext4 root, grub-pc)
# with ade's .deb installed: its initramfs-tools hook and boot scripts and ade-resolve-key.
#
# The setup is aded's own: "adectl enable --volume-type OS" in the guest escrows a new key file in
# the emulator's Key Vault (wrapped by the KEK), initialises the LUKS2 header of the MOUNTED root
# partition detached in /boot/luks/<LUKS UUID>.header with ade's token, writes the crypttab line, the
# fstab line and the grub drop-in, and runs update-initramfs -u and update-grub; Show then says
# VMRestartPending. The judges are stock tools: cryptsetup luksDump of the header (an online
# reencryption, not started), the three files' contents, grub.cfg, the initramfs's contents.
#
# Then: a reboot opens the root as /dev/mapper/ade-root from Key Vault over the initramfs's network
# (DHCP, IMDS's managed identity, the KEK's unwrapkey); the initramfs holds no copy of the header
# (the header it opens with is the live one on /boot); aded, started at boot, resumes the
# reencryption of the mounted root online and Show ends Encrypted, every file of /usr intact;
# update-initramfs -u and a reboot still open it; with Key Vault unreachable and a BEK VOLUME disk
# (vfat, its LinuxPassPhraseFileName the key file, read back from the emulator) the boot opens the
# root from it after the 60 s budget; with neither, the serial console shows the passphrase prompt
# (then the guest is powered off).
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

# ---- Key Vault, by curl: the KEK's version, and (later) the key file aded escrowed ----
vault=https://contoso.vault.azure.net
rg_vault=/subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso
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

# ---- first boot: ade installed, the root prepared ----
dvm_boot g || fail "QEMU did not start"
dvm_require_check "the guest boots" dvm_wait_boot g
dvm_trust_emulator g || fail "cannot trust the emulator in the guest"
dvm_require_check "ade's .deb installs" dvm_install_deb g
dvm_check "the package ships the initramfs hook and boot scripts" dvm_ssh g \
        'test -x /usr/share/initramfs-tools/hooks/ade && test -x /usr/share/initramfs-tools/scripts/local-top/ade &&
         test -x /usr/share/initramfs-tools/scripts/local-bottom/ade'
dvm_ssh g 'cat >/etc/ade/ade.conf' <<EOF2
[keyvault]
url = $vault
resource-id = $rg_vault
kek-url = $kek_url
kek-vault-resource-id = $rg_vault
[identity]
type = managed
[azure]
ca-file = /usr/local/share/ca-certificates/ade-emulator.crt
EOF2
dvm_ssh g 'find /usr -xdev -type f -print0 | sort -z | xargs -0 sha256sum' >"$DVM_RUN/usr.manifest" ||
        fail "cannot make the manifest of /usr"
dvm_copy_in g "$DVM_RUN/usr.manifest" /var/tmp/usr.manifest
dvm_ssh g 'cp /etc/fstab /var/tmp/fstab.before; findmnt -n -o SOURCE /' >"$DVM_RUN/root-source" ||
        fail "cannot read where / is mounted from"
root_dev=$(cat "$DVM_RUN/root-source")
partuuid=$(dvm_ssh g "blkid -s PARTUUID -o value $root_dev")
[ -n "$partuuid" ] || fail "the root partition $root_dev has no PARTUUID"

# show_os FIELD: the OS volume's FIELD in adectl show (read on the host: the guest has no jq).
show_os() {
        dvm_ssh g 'adectl show --json' >"$DVM_RUN/show.json" 2>&1 &&
                jq -r --arg f "$1" '.volumes[] | select(.type == "OS") | .[$f]' "$DVM_RUN/show.json"
}
t0=$(date +%s)
dvm_require_check "adectl enable --volume-type OS: escrow, the header initialised on the mounted root, the boot files" \
        dvm_ssh g 'adectl enable --volume-type OS --skip-snapshot-check 2>&1'
echo "# figure debvm-enable-os-to-restart-pending $(($(date +%s) - t0)) s"
# os_state_is STATE: adectl show's summary and the OS volume's object both say STATE.
os_state_is() {
        local state
        state=$(show_os state) && [ "$state" = "$1" ] && [ "$(jq -r .os "$DVM_RUN/show.json")" = "$1" ] ||
                { cat "$DVM_RUN/show.json"; return 1; }
}
dvm_check "adectl show: the OS volume is VMRestartPending" os_state_is VMRestartPending
luks_uuid=$(show_os uuid)
header=/boot/luks/$luks_uuid.header
dvm_ssh g 'journalctl -q --no-pager -u aded.service | tail -n 30'
dvm_require_check "the header /boot/luks/<LUKS UUID>.header: an online reencryption, not started (luksDump)" dvm_ssh g \
        "ls -l /boot/luks; cryptsetup luksDump $header | grep -q online-reencrypt &&
         cryptsetup luksDump $header | grep -q '^UUID:[[:space:]]*$luks_uuid\$'"
dvm_check "the header carries ade's token (Azure_Disk_Encryption, the KEK's URL)" dvm_ssh g \
        "cryptsetup token export --token-id 0 $header | grep -q Azure_Disk_Encryption &&
         cryptsetup token export --token-id 0 $header | grep -qF '$kek_url'"
dvm_check "the root partition itself carries no LUKS header (nothing written to it)" dvm_ssh g \
        "! cryptsetup isLuks $root_dev"
dvm_check "crypttab: ade-root PARTUUID=<the root's> none luks,header=<the header>" dvm_ssh g \
        "cat /etc/crypttab; grep -qx 'ade-root PARTUUID=$partuuid none luks,header=$header' /etc/crypttab"
dvm_check "fstab: the root line names /dev/mapper/ade-root, the rest of it and the other lines unchanged" dvm_ssh g \
        'cat /etc/fstab; diff <(awk "\$2 == \"/\" { \$1 = \"/dev/mapper/ade-root\" } { print }" /var/tmp/fstab.before | grep -v "^#") \
                <(awk "{ \$1 = \$1; print }" /etc/fstab | grep -v "^#") && ls /etc/fstab.ade-*'
dvm_check "grub's drop-in: the three lines" dvm_ssh g \
        'cat /etc/default/grub.d/99-ade-root.cfg; grep -qx GRUB_DISABLE_LINUX_UUID=true /etc/default/grub.d/99-ade-root.cfg &&
         grep -qx GRUB_DISABLE_LINUX_PARTUUID=true /etc/default/grub.d/99-ade-root.cfg &&
         grep -qx GRUB_DEVICE=/dev/mapper/ade-root /etc/default/grub.d/99-ade-root.cfg'
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

# ---- aded resumes the encryption online under ade-root, files intact ----
t0=$(date +%s)
os_encrypted() {
        local i
        for i in $(seq 1 900); do
                [ "$(show_os state)" = Encrypted ] && [ "$(jq -r .os "$DVM_RUN/show.json")" = Encrypted ] && return 0
                sleep 2
        done
        cat "$DVM_RUN/show.json"
        dvm_ssh g 'journalctl -q --no-pager -u aded.service | tail -n 30'
        return 1
}
os_resumed() {
        case $(show_os state) in EncryptionInProgress | Encrypted) return 0 ;; esac
        cat "$DVM_RUN/show.json"
        return 1
}
dvm_check "aded, started at boot, resumes the reencryption under ade-root (Show: EncryptionInProgress or Encrypted)" \
        os_resumed
dvm_require_check "adectl show: the OS volume ends Encrypted" os_encrypted
t1=$(($(date +%s) - t0))
root_bytes=$(dvm_ssh g "blockdev --getsize64 $root_dev")
echo "# figure debvm-root-reencrypt $t1 s from the end of the boot to Encrypted (aded's resume), $((root_bytes >> 20)) MiB, $((root_bytes / (t1 > 0 ? t1 : 1) >> 20)) MiB/s"
dvm_ssh g 'journalctl -q --no-pager -u aded.service | grep -E "resuming|OS volume|finished|Encrypted" | tail -n 10'
dvm_check "Show: the OS volume on /dev/mapper/ade-root, unlocked, its header detached" bash -c \
        'jq -e ".volumes[] | select(.type == \"OS\") | select(.mapper == \"/dev/mapper/ade-root\" and .unlocked and .header == \"Detached\")" "$1" ||
         { cat "$1"; exit 1; }' _ "$DVM_RUN/show.json"
# The key file aded escrowed, read back from the emulator (for the BEK VOLUME below).
secret_path=$(jq -r '.volumes[] | select(.type == "OS") | .secretUrl' "$DVM_RUN/show.json" | sed 's|^https://[^/]*||')
wrapped=$(kv GET "$secret_path" '' | jq -r .value)
unwrapped=$(kv POST "/keys/kek/$kek_version/unwrapkey" "{\"alg\":\"RSA-OAEP\",\"value\":\"$wrapped\"}" | jq -r .value)
pad=$(((4 - ${#unwrapped} % 4) % 4))
printf '%s%s' "$unwrapped" "$(head -c "$pad" /dev/zero | tr '\0' =)" | basenc --base64url -d >"$DVM_RUN/root.key"
chmod 600 "$DVM_RUN/root.key"
dvm_check "the escrowed key file (172 characters) reads back from Key Vault through the KEK" \
        test "$(wc -c <"$DVM_RUN/root.key")" = 172
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
