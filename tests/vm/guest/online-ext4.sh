#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-online-ext4.sh. /dev/vda and /dev/vdb are identical 300 MiB ext4 disks, mounted
# here like data disks in use.
#  - vda, the baseline: stock cryptsetup online (unmount, e2fsck + resize2fs -32 MiB,
#    "reencrypt --encrypt --init-only --reduce-device-size 32M", which activates it, mount from
#    /dev/mapper, then "--resume-only --active-name" in the background).
#  - vdb: ade's engine (tests/vm/ade-vm-online: ade_luks_encrypt with an active name; it shrinks,
#    writes the header, activates, and the mapper is mounted at its first progress report).
# Both while files are read and written; downtime is unmount to mounted again, shrink included,
# PBKDF2-SHA512 with 1000 iterations on both sides (docs/architecture.md §3).
. "$top_srcdir/tests/vm/guest/guest-lib.sh"
. "$top_srcdir/tests/vm/guest/online-lib.sh"

mkdir -p /mnt/cli /mnt/ade /tmp/ade-headers
make_keyfile /tmp/key

# --- the baseline: stock cryptsetup
dev=/dev/vda
require "the plaintext marker is on the disk before encryption" marker_on $dev
require "cli: mount the ext4 data disk" mount $dev /mnt/cli
require "cli: its files match the manifest" verify_tree /mnt/cli

t0=$(now)
echo "# cli: unmounting at $t0 (uptime)"
require "cli: unmount" umount /mnt/cli
require "cli: e2fsck -f before the shrink" e2fsck -f -y $dev
echo "# cli: e2fsck done at $(now)"
size=$(blockdev --getsize64 $dev)
require "cli: shrink the filesystem by 32 MiB" resize2fs -f $dev $(((size - 32 * 1024 * 1024) / 1024))K
echo "# cli: shrunk at $(now)"
require "cli: reencrypt --init-only (activates ade-cli)" \
        cryptsetup reencrypt --encrypt --init-only --type luks2 --reduce-device-size 32M \
        --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 --key-file /tmp/key $dev ade-cli
echo "# cli: initialised and active at $(now)"
require "cli: mount from /dev/mapper/ade-cli" mount /dev/mapper/ade-cli /mnt/cli
t1=$(now)
echo "# cli: mounted at $t1"
cli_down=$(elapsed "$t0" "$t1")
figure cli-downtime "$cli_down" s

cryptsetup reencrypt --resume-only --active-name ade-cli --key-file /tmp/key $dev >/tmp/cli.log 2>&1 &
during_reencryption cli /mnt/cli $! /tmp/cli.log
after_encryption cli $dev ade-cli /mnt/cli "e2fsck -fn"

# --- ade's engine, same disk, same VM
dev=/dev/vdb
tool=$top_builddir/tests/vm/ade-vm-online
require "ade's online driver is built" test -x "$tool"
require "ade: mount the ext4 data disk" mount $dev /mnt/ade
require "ade: its files match the manifest" verify_tree /mnt/ade

# The driver stands for aded, which is already running when an operator asks: it is started (its
# libraries loaded) before the unmount and begins when told to.
"$tool" --quiet --debug --start-on /tmp/ade-go --header-dir /tmp/ade-headers --mount /mnt/ade --fstype ext4 \
        encrypt $dev /tmp/key ade-data >/tmp/ade.log 2>&1 &
pid=$!
require "ade: the driver is loaded" wait_for_line /tmp/ade.log ready $pid
t0=$(now)
echo "# ade: unmounting at $t0 (uptime)"
require "ade: unmount" umount /mnt/ade
: >/tmp/ade-go
require "ade: shrunk, initialised, activated and mounted from /dev/mapper/ade-data" wait_for_line /tmp/ade.log mounted $pid
# When the driver's mount returned (uptime clock), not when this script noticed.
t1=$(sed -n 's/^mounted_at=//p' /tmp/ade.log)
echo "# ade: mounted at $t1"
ade_down=$(elapsed "$t0" "$t1")
figure ade-downtime "$ade_down" s
figure downtime-ratio "$(awk -v a="$ade_down" -v c="$cli_down" 'BEGIN { printf "%.2f", a / c }')" x
# Where ade's downtime went: the engine's debug log up to the mount, time-stamped.
sed -n '1,/^mounted$/p' /tmp/ade.log | sed 's/^/#   ade: /'
check "ade: the mapper is what is mounted" sh -c "findmnt -n -o SOURCE /mnt/ade | grep -qx /dev/mapper/ade-data"
check "ade: the header is attached (datashift, no header file)" test -z "$(ls -A /tmp/ade-headers | grep -v backup)"

during_reencryption ade /mnt/ade $pid /tmp/ade.log
check "ade: the volume carries our token" sh -c "cryptsetup luksDump $dev | grep -q Azure_Disk_Encryption"
after_encryption ade $dev ade-data /mnt/ade "e2fsck -fn"

# --- Disable: ade's engine decrypts the mounted attached-header volume online
require "disable: open with the key file" cryptsetup open --key-file /tmp/key $dev ade-data
require "disable: mount read-write from the mapper" mount /dev/mapper/ade-data /mnt/ade
"$tool" --quiet --debug --header-dir /tmp/ade-headers decrypt $dev /tmp/key ade-data >/tmp/disable.log 2>&1 &
pid=$!
during_reencryption disable /mnt/ade $pid /tmp/disable.log
check "disable: every file is identical, those written during encryption and decryption included" \
        verify_tree /mnt/ade ade disable
# What the decryption left active under the mount, for the report.
{ dmsetup info ade-data; dmsetup table ade-data; } 2>&1 | sed 's/^/#   after disable: /'
require "disable: unmount" umount /mnt/ade
# libcryptsetup may leave the finished mapping for deferred removal, gone with the last user.
dmsetup info ade-data >/dev/null 2>&1 && dmsetup remove ade-data
check_fails "disable: no mapping is left" dmsetup info ade-data
check "disable: the exported header is gone from header-dir" sh -c "! ls /tmp/ade-headers | grep -q decrypt-header"
check_fails "disable: no LUKS header is left on the disk" cryptsetup isLuks $dev
drop_caches
check "disable: the plaintext is back on the disk" marker_on $dev
check "disable: e2fsck -fn on the plain disk is clean" e2fsck -fn $dev
require "disable: mount the plain disk" mount -o ro $dev /mnt/ade
check "disable: on the plain disk every file is identical" verify_tree /mnt/ade ade disable
umount /mnt/ade
done_checks
