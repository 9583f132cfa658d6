#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# ade installed as a Debian package on a real Debian 12 guest (systemd as PID 1, booted by grub)
# and run through its units (tests/vm/README.md, "The Debian guest"): the .deb of the tree under
# test installs with apt, its units are enabled, aded is started by its socket and lives in pid 1's
# mount namespace, and "adectl enable --volume-type DATA" encrypts two MOUNTED data disks (ext4 and
# XFS, mounted through /etc/fstab) through the installed aded.service: both Encrypted, both mounted
# from /dev/mapper in the system's namespace, every file intact, no error from aded in the journal.
# Then the same guest's life goes on: crypttab and fstab name both volumes; a third disk with files,
# hot-plugged through QEMU's monitor, is encrypted by aded itself (the machine is enrolled); a reboot
# has systemd-cryptsetup open all three through aded's key socket and mounts the first two where
# they were before multi-user.target; a disable puts lun0's lines back, and the next boot mounts it
# as plaintext; the journal of every boot holds no secret.
#
# A unit option that gives aded a mount namespace of its own (ProtectSystem=, ProtectHome=,
# PrivateTmp=, ProtectKernelLogs=, ProtectControlGroups=, ...) makes the online enable unmount the
# disks only in aded's copy of the mount table: the filesystems stay mounted for the system, e2fsck
# runs on a mounted ext4 and XFS is busy. This test fails on such a unit.
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

# Sample files for the data disks (the same tree on both) and their checksums.
tree=$DVM_RUN/tree
mkdir -p "$tree/big" "$tree/small/a"
for i in 1 2 3 4 5 6; do head -c $((i * 1024 * 1024 + i * 777)) /dev/urandom >"$tree/big/f$i"; done
for i in $(seq 1 60); do head -c $((i * 97 + 1)) /dev/urandom >"$tree/small/a/s$i"; done
echo "hello from the data disk" >"$tree/hello.txt"
(cd "$tree" && find . -type f -printf '%P\0' | sort -z | xargs -0 sha256sum) >"$DVM_RUN/manifest"
truncate -s 256M "$DVM_RUN/lun0.img"
mkfs.ext4 -q -F -L data0 -d "$tree" "$DVM_RUN/lun0.img" || fail "mkfs.ext4 failed"
# XFS cannot be filled from a folder by this mkfs.xfs: the guest makes it and gets the files.
truncate -s 320M "$DVM_RUN/lun1.img"
# The disk attached later, while the guest runs.
truncate -s 256M "$DVM_RUN/lun2.img"
mkfs.ext4 -q -F -L data2 -d "$tree" "$DVM_RUN/lun2.img" || fail "mkfs.ext4 failed"

dvm_start_emulator
dvm_boot g "$DVM_RUN/lun0.img:lun0" "$DVM_RUN/lun1.img:lun1" || fail "QEMU did not start"
dvm_require_check "the guest boots to a running system (systemctl is-system-running)" dvm_wait_boot g
echo "# figure debvm-first-boot $DVM_BOOT_SECONDS s"

dvm_check "udev gives the OS and data disks their Azure-style links" dvm_ssh g \
        'test -b /dev/disk/azure/root && test -b /dev/disk/azure/root-part3 &&
         test "$(readlink -f /dev/disk/azure/scsi1/lun0)" = /dev/vdb &&
         test "$(readlink -f /dev/disk/azure/scsi1/lun1)" = /dev/vdc'
dvm_require_check "the XFS disk is made in the guest and gets the files" dvm_ssh g \
        'mkfs.xfs -q -L data1 /dev/disk/azure/scsi1/lun1 && mkdir -p /data0 /data1 &&
         mount /dev/disk/azure/scsi1/lun1 /data1 && tar -x -C /data1 && umount /data1' < <(cd "$tree" && tar -cf - .)
dvm_copy_in g "$DVM_RUN/manifest" /root/manifest
dvm_require_check "both data disks are mounted through /etc/fstab" dvm_ssh g \
        'printf "%s\n" "/dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" \
                "/dev/disk/azure/scsi1/lun1 /data1 xfs defaults,nofail 0 2" >>/etc/fstab &&
         systemctl daemon-reload && mount -a &&
         findmnt -n -o SOURCE,FSTYPE /data0 && findmnt -n -o SOURCE,FSTYPE /data1'
dvm_check "every file reads back on both disks before ade" dvm_ssh g \
        'cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest'

dvm_copy_in g "$top_srcdir/docs/cloud-init/ade.yaml" /root/ade-cloud-config.yaml
dvm_check "the cloud-init example is valid for the guest's cloud-init (cloud-init schema)" dvm_ssh g \
        'cloud-init schema --config-file /root/ade-cloud-config.yaml'
dvm_require_check "the emulator's CA and names are trusted in the guest" dvm_trust_emulator g
dvm_require_check "apt-get installs $(basename "$DVM_DEB") (no network to Debian)" dvm_install_deb g
dvm_check "aded.socket and aded.service are enabled" dvm_ssh g \
        'test "$(systemctl is-enabled aded.socket)" = enabled && test "$(systemctl is-enabled aded.service)" = enabled'
dvm_check "aded.socket listens; aded.service waits for it (not started by the installation)" dvm_ssh g \
        'systemctl is-active aded.socket && test -S /run/ade/io.ade.DiskEncryption &&
         ! systemctl is-active aded.service'
dvm_check "the group ade exists (sysusers) and owns /run/ade (tmpfiles)" dvm_ssh g \
        'getent group ade && test "$(stat -c %G /run/ade)" = ade'

# The configuration for the emulator on the host: Key Vault, ARM and Entra ID under their Azure
# names (in the emulator's certificate; /etc/hosts and a forwarding rule lead them to the host), IMDS
# at its Azure address (a forwarding rule too), the managed identity; the data disks are found as
# on Azure (/dev/disk/azure/scsi1/lun*), and a disk attached later is looked at 5 s after it settles.
cat >"$DVM_RUN/ade.conf" <<EOF
[keyvault]
url = https://contoso.vault.azure.net
resource-id = /subscriptions/0a1b2c3d-0000-4000-8000-000000000001/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/contoso

[identity]
type = managed

[azure]
imds = http://169.254.169.254
arm = https://management.azure.com
authority = https://login.microsoftonline.com
ca-file = /usr/local/share/ca-certificates/ade-emulator.crt

[daemon]
new-disk-settle = 5s
EOF
dvm_copy_in g "$DVM_RUN/ade.conf" /etc/ade/ade.conf
dvm_check "aded --check-config accepts the configuration" dvm_ssh g 'aded --check-config'
dvm_require_check "adectl show answers: aded started by aded.socket" dvm_ssh g \
        'adectl show && systemctl is-active aded.service &&
         systemctl show -p TriggeredBy --value aded.service | grep -qw aded.socket'
dvm_check "aded lives in pid 1's mount namespace" dvm_ssh g \
        'pid=$(systemctl show -p MainPID --value aded.service); echo "pid 1: $(readlink /proc/1/ns/mnt), aded ($pid): $(readlink /proc/$pid/ns/mnt)";
         test "$(readlink /proc/1/ns/mnt)" = "$(readlink /proc/$pid/ns/mnt)"'

t0=$(date +%s)
dvm_check "adectl enable --volume-type DATA encrypts both mounted disks through aded.service" dvm_ssh g \
        'timeout 1200 adectl enable --volume-type DATA --skip-snapshot-check </dev/null'
echo "# figure debvm-enable $(($(date +%s) - t0)) s"
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show.json" 2>&1
dvm_check "adectl show --json: both data disks Encrypted" jq -e \
        '[.volumes[] | select(.device | test("lun[01]$|/dev/vd[bc]$")) | .state] | length == 2 and all(. == "Encrypted")' \
        "$DVM_RUN/show.json"
dvm_check "/data0 and /data1 are mounted from /dev/mapper for the system (findmnt)" dvm_ssh g \
        'findmnt -n -o SOURCE,FSTYPE /data0; findmnt -n -o SOURCE,FSTYPE /data1;
         findmnt -n -o SOURCE /data0 | grep -q "^/dev/mapper/" && findmnt -n -o SOURCE /data1 | grep -q "^/dev/mapper/"'
dvm_check "the data disks carry LUKS2 (stock cryptsetup)" dvm_ssh g \
        'cryptsetup isLuks --type luks2 /dev/disk/azure/scsi1/lun0 &&
         ls /var/lib/ade/headers/* >/dev/null && dmsetup table --target crypt | grep -c crypt | grep -qx 2'
dvm_check "every file is intact on both disks after the encryption" dvm_ssh g \
        'cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest'
dvm_check "the journal has no error from aded" dvm_ssh g \
        'out=$(journalctl -q --no-pager -p err -u aded.service -u aded.socket; journalctl -q --no-pager -p err _COMM=aded);
         [ -z "$out" ] || { echo "$out"; false; }'

# ---- the same guest's next boots: crypttab, fstab and the key socket (docs/architecture.md §9) ----
# The mapping names, from the LUKS UUID of each header: lun0's is on the disk (ext4: shrunk, header
# in front), lun1's is the detached file its crypttab line names (XFS cannot shrink).
cat >"$DVM_RUN/boot-lib.sh" <<'EOF2'
lun0=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun0 2>/dev/null)
h1=$(sed -n 's|^ade-[^ ]* /dev/disk/azure/scsi1/lun1 .*header=\([^,]*\).*|\1|p' /etc/crypttab)
lun1=ade-$(cryptsetup luksUUID "$h1" 2>/dev/null)
EOF2
dvm_copy_in g "$DVM_RUN/boot-lib.sh" /root/boot-lib.sh
dvm_check "online enable names both mappings ade-<LUKS UUID>" dvm_ssh g \
        '. /root/boot-lib.sh; echo "$lun0 $lun1"; test "$lun0" != ade- && test "$lun1" != ade- &&
         test -b "/dev/mapper/$lun0" && test -b "/dev/mapper/$lun1"'
dvm_check "crypttab: one line per volume, keyed to the key socket (UUID=, or the stable name and header=)" dvm_ssh g \
        '. /root/boot-lib.sh; cat /etc/crypttab;
         grep -qx "$lun0 UUID=${lun0#ade-} /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1" /etc/crypttab &&
         grep -q "^$lun1 /dev/disk/azure/scsi1/lun1 /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1,header=/var/lib/ade/headers/" /etc/crypttab &&
         test "$(grep -c "^ade-" /etc/crypttab)" = 2'
dvm_check "fstab: both lines point at the mappings with _netdev,nofail; the originals kept in comments" dvm_ssh g \
        '. /root/boot-lib.sh; cat /etc/fstab;
         grep -qx "/dev/mapper/$lun0 /data0 ext4 defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 2" /etc/fstab &&
         grep -qx "/dev/mapper/$lun1 /data1 xfs defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 2" /etc/fstab &&
         grep -qx "# ade: $lun0 was: /dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" /etc/fstab &&
         ls /etc/crypttab.ade-* /etc/fstab.ade-* >/dev/null'
dvm_check "remote-cryptsetup.target is enabled (Debian 12 leaves it disabled)" dvm_ssh g \
        'test "$(systemctl is-enabled remote-cryptsetup.target)" = enabled'
dvm_check "aded-key.socket listens on /run/ade/key.socket" dvm_ssh g \
        'systemctl is-active aded-key.socket && test -S /run/ade/key.socket'

dvm_check "adectl show: the machine is enrolled for DATA with the snapshot check skipped" jq -e \
        '.enrollment | .volumeType == "Data" and .skipSnapshotCheck' "$DVM_RUN/show.json"

# A new data disk with files, hot-plugged while the guest runs: aded sees udev's event and, once
# the disks settle, encrypts it by itself with the enrollment's choices.
dvm_require_check "QEMU hot-plugs a third data disk (lun2)" dvm_disk_add g lun2 "$DVM_RUN/lun2.img" lun2
t0=$(date +%s)
# lun2_encrypted: whether adectl show (read on the host: the guest has no jq) says lun2 is Encrypted.
lun2_encrypted() {
        dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-lun2.json" 2>&1 &&
                jq -e '.volumes[] | select(.device | test("lun2$|/dev/vdd$")) | .state == "Encrypted"' "$DVM_RUN/show-lun2.json" >/dev/null
}
wait_lun2_encrypted() {
        for _ in $(seq 1 300); do lun2_encrypted && return 0; sleep 2; done
        cat "$DVM_RUN/show-lun2.json"
        dvm_ssh g 'journalctl -q --no-pager -u aded.service | tail -n 20'
        return 1
}
dvm_check "aded encrypts the hot-plugged lun2 by itself (udev event, no one asking)" wait_lun2_encrypted
echo "# figure debvm-new-disk-encrypted $(($(date +%s) - t0)) s"
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-after-pass.json" 2>&1
dvm_check "no mapping is ever taken for a volume (fstab mounts them; a pass must not nest encryption)" jq -e \
        '[.volumes[].device | select(test("^/dev/(dm-|mapper/)"))] | length == 0' "$DVM_RUN/show-after-pass.json"
dvm_check "aded started exactly three encryption jobs, on the three disks" dvm_ssh g \
        'journalctl -q --no-pager -u aded.service | grep "started encryption job on"; 
         test "$(journalctl -q --no-pager -u aded.service | grep -c "started encryption job on /dev/vd[bcd]$")" = 3 &&
         ! journalctl -q --no-pager -u aded.service | grep -q "started encryption job on /dev/dm-"'
dvm_check "lun2 has its crypttab line, keyed to the key socket" dvm_ssh g \
        'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2) &&
         grep -qx "$lun2 UUID=${lun2#ade-} /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1" /etc/crypttab'

t0=$(date +%s)
dvm_require_check "the guest reboots" dvm_reboot g
echo "# figure debvm-reboot-with-two-volumes $(($(date +%s) - t0)) s"
dvm_check "after the reboot systemd-cryptsetup opened both volumes through the key socket" dvm_ssh g \
        '. /root/boot-lib.sh; systemctl is-active "systemd-cryptsetup@$(systemd-escape "$lun0").service" \
                 "systemd-cryptsetup@$(systemd-escape "$lun1").service" &&
         journalctl -b -q --no-pager -u aded.service | grep -F "key socket: delivered the key of $lun0" &&
         journalctl -b -q --no-pager -u aded.service | grep -F "key socket: delivered the key of $lun1"'
dvm_check "both are mounted where they were, before multi-user.target" dvm_ssh g \
        '. /root/boot-lib.sh; test "$(findmnt -n -o SOURCE /data0)" = "/dev/mapper/$lun0" &&
         test "$(findmnt -n -o SOURCE /data1)" = "/dev/mapper/$lun1" &&
         mu=$(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target) &&
         for u in data0.mount data1.mount; do
                 t=$(systemctl show -p ActiveEnterTimestampMonotonic --value $u); echo "$u $t multi-user $mu";
                 [ "$t" -gt 0 ] && [ "$t" -le "$mu" ] || exit 1
         done'
dvm_check "every file is intact after the reboot" dvm_ssh g \
        'cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest'
dvm_check "the hot-plugged lun2 was opened through crypttab and the key socket; its files are intact" dvm_ssh g \
        'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2) &&
         systemctl is-active "systemd-cryptsetup@$(systemd-escape "$lun2").service" &&
         journalctl -b -q --no-pager -u aded.service | grep -F "key socket: delivered the key of $lun2" &&
         mkdir -p /mnt/lun2 && mount -o ro "/dev/mapper/$lun2" /mnt/lun2 &&
         (cd /mnt/lun2 && sha256sum --quiet -c /root/manifest); rc=$?; umount /mnt/lun2; exit $rc'
dvm_check "systemctl --failed lists nothing" dvm_ssh g \
        'out=$(systemctl --failed --no-legend --plain); [ -z "$out" ] || { echo "$out"; false; }'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-boot.json" 2>&1
dvm_check "adectl show: both Encrypted and unlocked after the reboot" jq -e \
        '[.volumes[] | select(.device | test("lun[01]$|/dev/vd[bc]$")) | select(.state == "Encrypted" and .unlocked)] | length == 2' \
        "$DVM_RUN/show-boot.json"

# A volume closed by hand: Unlock opens it through its systemd-cryptsetup unit (which asks the key
# socket, as at boot), so that systemd's view and ade's agree, and mounts it where it was.
dvm_check "adectl unlock opens a closed volume through its systemd unit and mounts it" dvm_ssh g \
        '. /root/boot-lib.sh; u="systemd-cryptsetup@$(systemd-escape "$lun1").service";
         umount /data1 && systemctl stop "$u" && ! test -b "/dev/mapper/$lun1" &&
         timeout 300 adectl unlock /dev/disk/azure/scsi1/lun1 </dev/null &&
         systemctl is-active "$u" && test "$(findmnt -n -o SOURCE /data1)" = "/dev/mapper/$lun1" &&
         journalctl -q --no-pager -u aded.service | grep -F "opening $lun1 through" &&
         cd /data1 && sha256sum --quiet -c /root/manifest'

# Key Vault unreachable when systemd-cryptsetup asks for lun2's key, as at a boot with the vault
# down (every Key Vault connection dropped): aded holds the request, then fails it; the unit fails,
# the volume stays locked and adectl show says why. Once the vault answers, adectl unlock opens it
# through the same unit.
dvm_require_check "lun2 is closed, as before a boot" dvm_ssh g \
        'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2);
         systemctl stop "systemd-cryptsetup@$(systemd-escape "$lun2").service" && ! test -b "/dev/mapper/$lun2"'
emulator_fault '{"route": "keyvault", "drop": true, "count": 1000000}' || fail "cannot make Key Vault unreachable"
dvm_check "Key Vault unreachable: the unit fails once aded gave up on the key, lun2 stays locked" dvm_ssh g \
        'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2); u="systemd-cryptsetup@$(systemd-escape "$lun2").service";
         ! timeout 400 systemctl start "$u" && systemctl is-failed "$u" && ! test -b "/dev/mapper/$lun2" &&
         journalctl -q --no-pager -u aded.service | grep -F "refused the key of $lun2"'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-locked.json" 2>&1
dvm_check "adectl show says why lun2 is locked" jq -e \
        '.volumes[] | select(.device | test("lun2$|/dev/vdd$")) | .unlocked == false and
         (.message | startswith("locked: the key socket could not give systemd-cryptsetup its key"))' \
        "$DVM_RUN/show-locked.json"
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
dvm_check "Key Vault answers again: adectl unlock opens lun2 through its unit" dvm_ssh g \
        'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2); u="systemd-cryptsetup@$(systemd-escape "$lun2").service";
         timeout 300 adectl unlock /dev/disk/azure/scsi1/lun2 </dev/null && systemctl is-active "$u" &&
         test -b "/dev/mapper/$lun2"'

# Disable one volume: its crypttab line goes, its fstab line comes back; the next boot mounts it
# as plaintext.
dvm_check "adectl disable of lun0 decrypts it" dvm_ssh g \
        'timeout 1200 adectl disable --volume-type DATA /dev/disk/azure/scsi1/lun0 </dev/null'
dvm_check "its crypttab line is gone and its fstab line is what it was" dvm_ssh g \
        '. /root/boot-lib.sh; cat /etc/crypttab /etc/fstab; test "$(grep -c "^ade-" /etc/crypttab)" = 2 &&
         grep -q "^$lun1 " /etc/crypttab &&
         grep -qx "/dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" /etc/fstab && ! grep -q "# ade: ade-.* was: /dev/disk/azure/scsi1/lun0 " /etc/fstab'
dvm_require_check "the guest reboots again" dvm_reboot g
dvm_check "lun0 mounts as plaintext, lun1 still through the key socket; every file intact" dvm_ssh g \
        'test "$(findmnt -n -o SOURCE /data0)" = /dev/vdb && findmnt -n -o SOURCE /data1 | grep -q "^/dev/mapper/ade-" &&
         cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest'

# Secrets hygiene in the journal of every boot: neither escrowed secret's value appears.
emulator_state >"$DVM_RUN/emu-state.json" 2>/dev/null
jq -r '.secrets[].value' "$DVM_RUN/emu-state.json" >"$DVM_RUN/secret-values" 2>/dev/null
dvm_ssh g 'journalctl --no-pager -o cat' >"$DVM_RUN/journal.txt" 2>&1
dvm_check "the guest's journal (all boots) holds no secret value" bash -c \
        '[ -s "$1" ] && ! grep -F -f "$1" "$2"' _ "$DVM_RUN/secret-values" "$DVM_RUN/journal.txt"
echo "# figure debvm-test-total $(($(date +%s) - t_start)) s"
dvm_finish
