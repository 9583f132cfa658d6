#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the Debian 12 test guest's disk image (tests/vm/README.md, "The Debian guest") into the
# folder OUT, which the caller has just made empty and renames into the cache once this succeeds
# (so a half-built image is never used). DEBS keeps the downloaded .debs between builds.
#
#   build-image.sh OUT DEBS
#
# OUT gets: disk.raw (GPT: 1 MiB BIOS boot partition, 512 MiB ext4 /boot, 4 GiB ext4 root; grub-pc
# in the MBR and the BIOS boot partition), id_ed25519{,.pub} (the harness's ssh key; root's
# authorized key in the image), image.env (kernel version, filesystem UUIDs) and mmdebstrap.log.
#
# The root tree comes from mmdebstrap (minbase plus ./packages) and is turned into filesystem images
# with mkfs.ext4 -d, put into a GPT image file with sfdisk and dd: the build host's kernel shows no
# partitions of loop devices. grub is installed on the host with the image's own grub tools
# (grub-mkimage, grub-bios-setup on the image file); no boot is needed to build the image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
debs=$2
mirror=${ADE_DEBVM_MIRROR:-http://deb.debian.org/debian}
security=${ADE_DEBVM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() {
        echo "build-image: $*" >&2
}

tree=$out/tree
boottree=$out/boottree
mkdir -p "$debs" "$boottree"

ssh-keygen -q -t ed25519 -N '' -C ade-vm-debian -f "$out/id_ed25519"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
boot_uuid=$(cat /proc/sys/kernel/random/uuid)

# The initrd made in the chroot (MODULES=dep cannot look at a chroot's devices, and most, Debian's
# default, took minutes here and half a minute of each boot): only what boots this guest. The
# image's initramfs.conf says MODULES=dep; the first update-initramfs in the guest uses it.
mkdir -p "$out/initrd/conf.d" "$out/initrd/modules.d"
echo MODULES=list >"$out/initrd/conf.d/ade-image-build"
printf '%s\n' virtio_pci virtio_blk crc32c_generic crc32c_intel ext4 >"$out/initrd/modules.d/ade-image-build"

pkgs=$(sed -e 's/#.*//' "$here/packages" | tr -s ' \t\n' ',' | sed -e 's/^,//' -e 's/,$//')
log "mmdebstrap bookworm (minbase + $(echo "$pkgs" | tr ',' '\n' | wc -l) packages); log: $out/mmdebstrap.log"
t0=$(date +%s)
# The .debs are synced in and out of DEBS (mmdebstrap's documented alternative to a caching proxy),
# so a rebuild after an edit of the inputs downloads only what changed upstream.
if ! mmdebstrap --mode=root --variant=minbase --include="$pkgs" \
        --aptopt='Acquire::Retries "3"' --dpkgopt=force-unsafe-io \
        --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
        --setup-hook="copy-in $out/initrd/conf.d/ade-image-build /etc/initramfs-tools/conf.d/" \
        --setup-hook="copy-in $out/initrd/modules.d/ade-image-build /usr/share/initramfs-tools/modules.d/" \
        --setup-hook="sync-in $debs /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $debs" \
        bookworm "$tree" \
        "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main" >"$out/mmdebstrap.log" 2>&1; then
        tail -n 40 "$out/mmdebstrap.log" >&2
        log "mmdebstrap failed"
        exit 1
fi
log "mmdebstrap took $(($(date +%s) - t0)) s"

# --- Configuration of the tree (on the host: nothing here needs the guest's kernel) ---
kver=$(basename "$(ls -1 "$tree"/boot/vmlinuz-* | sort -V | tail -n1)")
kver=${kver#vmlinuz-}

# MODULES=dep from now on: update-initramfs in the guest takes about 120 s under TCG with dep,
# over 400 s with most.
rm -f "$tree/etc/initramfs-tools/conf.d/ade-image-build" "$tree/usr/share/initramfs-tools/modules.d/ade-image-build"
sed -i 's/^MODULES=.*/MODULES=dep/' "$tree/etc/initramfs-tools/initramfs.conf"

# Under TCG on a loaded host udev may take minutes to announce a disk: systemd's default 90 s for a
# device left the root's fsck and remount undone (root stayed read-only). Ten minutes instead.
cat >"$tree/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$root_uuid / ext4 errors=remount-ro,x-systemd.device-timeout=10min 0 1
UUID=$boot_uuid /boot ext4 defaults,x-systemd.device-timeout=10min 0 2
EOF
mkdir -p "$tree/etc/systemd/system.conf.d"
cat >"$tree/etc/systemd/system.conf.d/50-ade-test-tcg.conf" <<'EOF'
[Manager]
DefaultTimeoutStartSec=10min
DefaultDeviceTimeoutSec=10min
EOF
echo ade-guest >"$tree/etc/hostname"
# The system's locale, as Debian's cloud images set it: without one, cloud-init's locale module asks
# for en_US.UTF-8, Debian's locale-gen ignores its argument (it builds what /etc/locale.gen lists:
# nothing), update-locale refuses the locale, and the first boot ends with cloud-config.service
# failed.
echo LANG=C.UTF-8 >"$tree/etc/default/locale"
cat >"$tree/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 ade-guest
::1 localhost ip6-localhost ip6-loopback
EOF
# A machine id of its own, so that no boot of an overlay is a "first boot" (systemd-firstboot).
tr -d '-' </proc/sys/kernel/random/uuid >"$tree/etc/machine-id"
# No DNS: QEMU's user networks are restricted (nothing leaves the machine), and the names the tests
# use are in /etc/hosts. Without a nameserver a lookup fails at once instead of timing out.
echo '# no DNS in the ade test guest: names come from /etc/hosts' >"$tree/etc/resolv.conf"

# Network (tests/vm/debian-lib.sh dvm_boot): the first NIC, DHCP from QEMU's user network 10.0.2.0/24
# (the host's servers through guestfwd rules); the second, 169.254.169.0/24 without a gateway, holds
# the Instance Metadata Service's address, 169.254.169.254, as on Azure.
mkdir -p "$tree/etc/systemd/network"
cat >"$tree/etc/systemd/network/50-ade-test-lan.network" <<'EOF'
[Match]
MACAddress=52:54:00:12:34:56

[Network]
DHCP=ipv4
LinkLocalAddressing=no
EOF
cat >"$tree/etc/systemd/network/51-ade-test-imds.network" <<'EOF'
[Match]
MACAddress=52:54:00:a9:fe:fe

[Link]
RequiredForOnline=no

[Network]
Address=169.254.169.15/24
LinkLocalAddressing=no
EOF
chroot "$tree" systemctl -q enable systemd-networkd.service
# Nothing scheduled may run during a test (apt has no network to Debian in the guest anyway).
chroot "$tree" systemctl -q mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
        e2scrub_reap.service fstrim.timer
# No display: no graphical target, no DRM module (logind asks for it; loading it took a minute of
# a loaded host's boot).
chroot "$tree" systemctl -q set-default multi-user.target
chroot "$tree" systemctl -q mask modprobe@drm.service

# cloud-init runs only at a boot with a NoCloud seed attached (a disk labelled cidata: a test's
# provisioning, as custom data is on Azure): without one, its generator's ds-identify finds no
# datasource and leaves cloud-init off. Two datasources, because ds-identify enables cloud-init
# without looking when the list holds a single one (besides None); ConfigDrive, like NoCloud, is a
# disk with a label, which no test attaches. The image's own systemd-networkd files configure both
# NICs (the second holds IMDS's address), root keeps the harness's key, and the host keys stay (the
# harness does not check them; making new ones takes long under TCG).
mkdir -p "$tree/etc/cloud/cloud.cfg.d"
cat >"$tree/etc/cloud/cloud.cfg.d/90-ade-test.cfg" <<'EOF'
datasource_list: [ NoCloud, ConfigDrive ]
network: {config: disabled}
disable_root: false
ssh_deletekeys: false
EOF

# The journal survives a reboot, for the tests that reboot and for the logs collected on failure.
mkdir -p "$tree/var/log/journal"

# grub: no menu delay; kernel and grub on the serial console, which QEMU writes to a file.
cat >"$tree/etc/default/grub.d/50-ade-test.cfg" <<'EOF'
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
GRUB_TERMINAL="serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF

install -m 0644 "$here/66-ade-test-azure-disks.rules" "$tree/etc/udev/rules.d/66-ade-test-azure-disks.rules"

install -d -m 0700 "$tree/root/.ssh"
install -m 0600 "$out/id_ed25519.pub" "$tree/root/.ssh/authorized_keys"
cat >"$tree/etc/ssh/sshd_config.d/ade-test.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOF

# --- /boot, with grub's files, as grub-install would leave it ---
shopt -s dotglob
mv "$tree"/boot/* "$boottree"/
shopt -u dotglob
grubdir=$tree/usr/lib/grub/i386-pc
mkdir -p "$boottree/grub/i386-pc"
cp "$grubdir"/*.mod "$grubdir"/*.lst "$grubdir/boot.img" "$boottree/grub/i386-pc/"
# core.img: grub's kernel with what it needs to read /boot (GPT partition 2 of the BIOS boot disk).
"$tree/usr/bin/grub-mkimage" -d "$grubdir" -O i386-pc -o "$boottree/grub/i386-pc/core.img" \
        -p '(hd0,gpt2)/grub' biosdisk part_gpt ext2
"$tree/usr/bin/grub-editenv" "$boottree/grub/grubenv" create
# The menu for the image's kernel, as update-grub would write it from /etc/default/grub.d above;
# update-grub in the guest (slow under TCG: minutes) replaces it when a test needs that.
cat >"$boottree/grub/grub.cfg" <<EOF
# Written by tests/vm/debian/build-image.sh; update-grub replaces it.
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $boot_uuid
menuentry 'Debian GNU/Linux 12' {
        linux /vmlinuz-$kver root=UUID=$root_uuid ro console=ttyS0,115200n8
        initrd /initrd.img-$kver
}
EOF

# --- Filesystems and the disk ---
mib=$((1024 * 1024))
boot_mib=512
root_mib=4096
truncate -s "${boot_mib}M" "$out/boot.img"
truncate -s "${root_mib}M" "$out/root.img"
mkfs.ext4 -q -F -L boot -U "$boot_uuid" -d "$boottree" "$out/boot.img"
mkfs.ext4 -q -F -L root -U "$root_uuid" -d "$tree" "$out/root.img"

# GPT: BIOS boot partition for grub's core.img at 1 MiB, /boot at 2 MiB, root after it.
boot_start=2
root_start=$((boot_start + boot_mib))
truncate -s $(((root_start + root_mib + 1) * mib)) "$out/disk.raw.tmp"
sfdisk -q "$out/disk.raw.tmp" <<EOF
label: gpt
start=$((1 * 2048)), size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios
start=$((boot_start * 2048)), size=$((boot_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=boot
start=$((root_start * 2048)), size=$((root_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
EOF
dd if="$out/boot.img" of="$out/disk.raw.tmp" bs=1M seek="$boot_start" conv=notrunc,sparse status=none
dd if="$out/root.img" of="$out/disk.raw.tmp" bs=1M seek="$root_start" conv=notrunc,sparse status=none

# grub's boot code: grub-bios-setup writes boot.img into the MBR and core.img into the BIOS boot
# partition of the image file (its device map names the file as hd0). It insists on finding the
# device that holds its boot folder: the /boot image, mounted read-only on a loop device of ours.
loop=
cleanup_loop() {
        mountpoint -q "$out/bootmnt" && umount "$out/bootmnt"
        [ -z "$loop" ] || losetup -d "$loop"
        loop=
}
trap cleanup_loop EXIT
loop=$(losetup -f --show -r "$out/boot.img")
mkdir -p "$out/bootmnt"
mount -o ro "$loop" "$out/bootmnt"
printf '(hd0) %s\n(hd1) %s\n' "$out/disk.raw.tmp" "$loop" >"$out/device.map"
"$grubdir/grub-bios-setup" -d "$out/bootmnt/grub/i386-pc" -m "$out/device.map" "$out/disk.raw.tmp"
cleanup_loop
trap - EXIT
rm -rf "$out/boot.img" "$out/root.img" "$out/bootmnt" "$out/device.map" "$out/initrd" "$tree" "$boottree"
mv "$out/disk.raw.tmp" "$out/disk.raw"

cat >"$out/image.env" <<EOF
DVM_KERNEL_VERSION=$kver
DVM_ROOT_UUID=$root_uuid
DVM_BOOT_UUID=$boot_uuid
EOF
