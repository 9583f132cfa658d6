#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-smoke.sh: dm-crypt works in the VM. Stock cryptsetup formats a LUKS2 volume on
# /dev/vda, opens it, a filesystem is made and written through /dev/mapper, the volume is closed,
# opened again and the data read back.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"

echo "kernel $(uname -r), $(nproc) cpu"
check "device-mapper is present" test -e /dev/mapper/control
check "the data disk is there" test -b /dev/vda
check "the disk's serial gives a by-id link" test "$(readlink -f /dev/disk/by-id/virtio-smoke-data)" = /dev/vda
check "loopback is up" sh -c 'ip -o link show lo | grep -q "UP"'

printf 'smoke-test-passphrase' >/tmp/key
require "luksFormat (LUKS2, PBKDF2-1000)" cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
        --key-file /tmp/key /dev/vda
require "open through dm-crypt" cryptsetup open --key-file /tmp/key /dev/vda smoke
check "mapper device exists" test -b /dev/mapper/smoke
check "dm table is crypt" sh -c 'dmsetup table smoke 2>/dev/null | grep -q " crypt " || cryptsetup status smoke | grep -q "type: *LUKS2"'
require "mkfs.ext4 on the mapper" mkfs.ext4 -q /dev/mapper/smoke
mkdir -p /tmp/mnt
require "mount" mount /dev/mapper/smoke /tmp/mnt
head -c 4M /dev/urandom >/tmp/data
require "write 4 MiB" cp /tmp/data /tmp/mnt/data
check "write a plaintext marker" sh -c 'yes ADE-SMOKE-PLAINTEXT-MARKER | head -n 10000 >/tmp/mnt/marker'
require "umount" umount /tmp/mnt
require "close" cryptsetup close smoke
check "mapper device gone" test ! -e /dev/mapper/smoke
check "the plaintext is not on the disk" sh -c '! grep -qa ADE-SMOKE-PLAINTEXT-MARKER /dev/vda'
require "open again" cryptsetup open --key-file /tmp/key /dev/vda smoke
require "mount again" mount -o ro /dev/mapper/smoke /tmp/mnt
check "data read back identical" cmp /tmp/data /tmp/mnt/data
umount /tmp/mnt
cryptsetup close smoke
printf 'wrong' >/tmp/badkey
check_fails "a wrong key does not open" cryptsetup open --key-file /tmp/badkey /dev/vda smoke
done_checks
