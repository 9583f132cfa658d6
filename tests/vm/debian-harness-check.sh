#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Debian guest's harness checked on itself (tests/vm/README.md, "The Debian guest"); run by hand
# when debian-lib.sh or the image changes (about 5 minutes from a warm cache; not part of make check,
# whose Debian test uses one boot only):
#   sudo top_builddir=$PWD/build tests/vm/debian-harness-check.sh
# One guest: commands and their exit codes, copies both ways, the emulator's IMDS and HTTPS through
# the forwarding rules, a guest-initiated reboot of the same overlay, a hot-added and hot-removed
# virtio disk with its Azure-style link, and a hard power-off followed by a boot of the same overlay.
# Boot times are printed as figures.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/debian-lib.sh"
dvm_require
dvm_new_run
dvm_image || fail "the Debian image could not be built"
dvm_start_emulator
truncate -s 64M "$DVM_RUN/hot.img"

dvm_boot g || fail "QEMU did not start"
dvm_require_check "first boot to a running system" dvm_wait_boot g
echo "# figure debvm-first-boot $DVM_BOOT_SECONDS s"
dvm_ssh g 'systemd-analyze time; systemd-analyze blame | head -n 12' | sed 's/^/# /'

exit_code_comes_back() {
        dvm_ssh g 'exit 7'
        test $? -eq 7
}
copy_round_trip() {
        head -c 3000000 /dev/urandom >"$DVM_RUN/blob"
        dvm_copy_in g "$DVM_RUN/blob" /root/blob && dvm_copy_out g /root/blob "$DVM_RUN/blob.back" &&
                cmp "$DVM_RUN/blob" "$DVM_RUN/blob.back"
}
dvm_check "a command's exit code comes back" exit_code_comes_back
dvm_check "its output comes back" test "$(dvm_ssh g 'echo hello; uname -s')" = "hello
Linux"
dvm_check "a file copied in and out is unchanged" copy_round_trip
dvm_check "systemd is PID 1, root and /boot are mounted from the disk" dvm_ssh g \
        'test "$(cat /proc/1/comm)" = systemd && findmnt -n -o SOURCE / | grep -qx /dev/vda3 &&
         findmnt -n -o SOURCE /boot | grep -qx /dev/vda2 && test -L /dev/disk/azure/root'
dvm_check "grub booted the kernel with the serial console" dvm_ssh g \
        'grep -q "BOOT_IMAGE=/vmlinuz" /proc/cmdline && grep -q console=ttyS0 /proc/cmdline'
dvm_check "the console is captured" grep -aq 'ade-guest login:' "$DVM_RUN/g.console"
dvm_check "initramfs-tools has MODULES=dep" dvm_ssh g 'grep -qx MODULES=dep /etc/initramfs-tools/initramfs.conf'
dvm_require_check "the emulator is trusted and named in the guest" dvm_trust_emulator g
dvm_check "IMDS answers at 169.254.169.254 (forwarded to the host's emulator)" dvm_ssh g \
        'python3 -c "import urllib.request as u; r = u.Request(\"http://169.254.169.254/metadata/instance?api-version=2021-02-01\", headers={\"Metadata\": \"true\"}); print(u.urlopen(r, timeout=30).read()[:200])"'
dvm_check "Key Vault answers at https://contoso.vault.azure.net with the emulator's certificate" dvm_ssh g \
        'python3 -c "
import urllib.request as u, urllib.error as e
try:
    u.urlopen(\"https://contoso.vault.azure.net/secrets?api-version=7.4\", timeout=30)
except e.HTTPError as x:
    assert x.code == 401, x.code
    print(\"401 challenge, TLS verified\")
"'
dvm_check "the host is not reachable otherwise: the networks are restricted" dvm_ssh g \
        "! timeout 20 bash -c 'exec 3<>/dev/tcp/10.0.2.2/$HTTPS_PORT' 2>/dev/null"

hot_add() {
        dvm_disk_add g hot5 "$DVM_RUN/hot.img" lun5 &&
                dvm_ssh g 'for i in $(seq 1 60); do test -b /dev/disk/azure/scsi1/lun5 && exit 0; sleep 1; done; exit 1'
}
hot_remove() {
        dvm_disk_remove g hot5 && dvm_ssh g 'udevadm settle; ! test -e /dev/disk/azure/scsi1/lun5'
}
dvm_check "a virtio disk hot-added through QMP gets /dev/disk/azure/scsi1/lun5" hot_add
dvm_check "hot-removed, the disk and its link are gone" hot_remove

dvm_ssh g 'echo survives >/root/marker && sync'
dvm_require_check "a guest-initiated reboot comes back on the same overlay" dvm_reboot g
echo "# figure debvm-reboot $DVM_BOOT_SECONDS s"
dvm_check "the file written before the reboot is there" dvm_ssh g 'grep -qx survives /root/marker'

dvm_ssh g 'echo written-not-synced >/root/unsynced'
qemu_pid=${dvm_pid[g]}
dvm_kill g
dvm_check "QEMU is gone after a hard power-off" bash -c "! kill -0 $qemu_pid 2>/dev/null"
dvm_boot g || fail "QEMU did not start again"
dvm_require_check "the same overlay boots again after the hard power-off" dvm_wait_boot g
echo "# figure debvm-boot-after-kill $DVM_BOOT_SECONDS s"
dvm_check "the file written before the reboot survived the power-off" dvm_ssh g 'grep -qx survives /root/marker'
dvm_require_check "a clean power-off ends QEMU" dvm_poweroff g
dvm_finish
