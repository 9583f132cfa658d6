#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What two ade volumes cost a boot: the Debian 12 guest (tests/vm/README.md, "The Debian guest")
# booted to multi-user.target with and without them. Run by hand as root, never in CI (about 15 to
# 20 minutes under TCG):
#
#   tests/bench/debvm-boot-bench.sh            # ADE_BENCH_ROUNDS=3 by default
#
# Two guests from the cached image, each with ade's .deb installed and two ext4 data disks with
# files mounted through fstab: in "plain" the disks stay plain; in "ade" they are encrypted by
# "adectl enable --volume-type DATA" and opened at each boot by systemd-cryptsetup through aded's
# key socket, the key coming from the emulated Key Vault on the host. Then cold boots (QEMU
# started, the guest powered off after), alternating plain and ade and rotating which goes first
# each round. Per boot: systemd-analyze's time to multi-user.target (kernel, initrd and userspace)
# and the wall time from QEMU's start until "systemctl is-system-running" says running. Prints
# every boot, the medians, and ade's difference and ratio. The host is shared and noisy: compare
# the two columns of one run, not runs.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/debian-lib.sh"
dvm_require
dvm_require_deb
dvm_new_run
rounds=${ADE_BENCH_ROUNDS:-3}
dvm_image || fail "the Debian image could not be built"
dvm_build_deb || fail "dpkg-buildpackage failed"
dvm_start_emulator

tree=$DVM_RUN/tree
mkdir -p "$tree/d"
for i in 1 2 3 4; do head -c $((i * 1024 * 1024)) /dev/urandom >"$tree/d/f$i"; done
for vm in plain ade; do
        for lun in 0 1; do
                truncate -s 192M "$DVM_RUN/$vm-lun$lun.img"
                mkfs.ext4 -q -F -d "$tree" "$DVM_RUN/$vm-lun$lun.img" || fail "mkfs.ext4 failed"
        done
done

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
EOF

# set_up VM: first boot, the emulator trusted, ade installed and configured, both disks in fstab.
set_up() {
        local vm=$1
        dvm_boot "$vm" "$DVM_RUN/$vm-lun0.img:lun0" "$DVM_RUN/$vm-lun1.img:lun1" || fail "QEMU did not start"
        dvm_wait_boot "$vm" || fail "$vm: the first boot failed"
        dvm_trust_emulator "$vm" || fail "$vm: cannot trust the emulator"
        dvm_install_deb "$vm" >/dev/null || fail "$vm: apt-get cannot install the package"
        dvm_copy_in "$vm" "$DVM_RUN/ade.conf" /etc/ade/ade.conf || fail "$vm: cannot copy ade.conf"
        dvm_ssh "$vm" 'mkdir -p /data0 /data1 &&
                printf "%s\n" "/dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" \
                        "/dev/disk/azure/scsi1/lun1 /data1 ext4 defaults,nofail 0 2" >>/etc/fstab &&
                systemctl daemon-reload && mount -a && systemctl restart aded.service' ||
                fail "$vm: cannot mount the data disks"
}

set_up plain
set_up ade
dvm_ssh ade 'timeout 1200 adectl enable --volume-type DATA --skip-snapshot-check </dev/null' >/dev/null ||
        fail "ade: adectl enable failed"
dvm_ssh ade 'grep -c "^ade-" /etc/crypttab | grep -qx 2 && findmnt -n -o SOURCE /data0 | grep -q ^/dev/mapper/' ||
        fail "ade: the disks are not encrypted and mounted from the mapper"
for vm in plain ade; do
        dvm_poweroff "$vm" || fail "$vm: did not power off"
done

# measure VM: a cold boot; prints "VM systemd_seconds wall_seconds".
measure() {
        local vm=$1 line total
        dvm_boot "$vm" || fail "$vm: QEMU did not start"
        dvm_wait_boot "$vm" || fail "$vm: the boot failed"
        if [ "$vm" = ade ]; then
                dvm_ssh ade 'findmnt -n -o SOURCE /data0 | grep -q ^/dev/mapper/ &&
                        findmnt -n -o SOURCE /data1 | grep -q ^/dev/mapper/' ||
                        fail "ade: the volumes were not opened and mounted at boot"
        fi
        line=$(dvm_ssh "$vm" 'systemd-analyze time | head -n 1')
        # "Startup finished in 2.1s (kernel) + 3.4s (initrd) + 40.2s (userspace) = 45.7s": the total.
        total=$(echo "$line" | awk -F'= ' '{ t = $NF; m = 0
                if (t ~ /min/) { split(t, a, "min"); m = a[1]; t = a[2] }
                gsub(/[^0-9.]/, "", t); print m * 60 + t }')
        echo "$vm ${total:-?} $DVM_BOOT_SECONDS"
        dvm_poweroff "$vm" >/dev/null || fail "$vm: did not power off"
}

results=$DVM_RUN/results
: >"$results"
for r in $(seq 1 "$rounds"); do
        if [ $((r % 2)) = 1 ]; then order="plain ade"; else order="ade plain"; fi
        for vm in $order; do
                measure "$vm" | tee -a "$results"
        done
done

median() {
        sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
sp=$(awk '$1 == "plain" { print $2 }' "$results" | median)
sa=$(awk '$1 == "ade" { print $2 }' "$results" | median)
wp=$(awk '$1 == "plain" { print $3 }' "$results" | median)
wa=$(awk '$1 == "ade" { print $3 }' "$results" | median)
echo "median to multi-user.target (systemd-analyze): plain $sp s, ade $sa s," \
        "difference $(awk -v a="$sa" -v b="$sp" 'BEGIN { printf "%.1f s, ratio %.2f", a - b, a / b }')"
echo "median QEMU start to running: plain $wp s, ade $wa s," \
        "difference $(awk -v a="$wa" -v b="$wp" 'BEGIN { printf "%.1f s, ratio %.2f", a - b, a / b }')"
