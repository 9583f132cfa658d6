#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-holders.sh. /dev/vda is a GPT disk with one 200 MiB partition, /dev/vdb a
# whole-disk ext4. Something holds each in turn: a device-mapper linear target over the partition,
# an opened LUKS volume on it, the partition mounted, a linear target over the whole of /dev/vdb.
# ade's engine must classify the held disk as "holders" (probe and discovery, format-all or not),
# refuse to encrypt it in place or with format-all, leave it byte-identical, and stop saying
# "holders" once the holder is gone.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"

tool=$top_builddir/tests/integration/ade-engine-tool
hdir=/tmp/ade-headers
key=/tmp/key
mkdir -p "$hdir" /mnt/held
head -c 127 /dev/urandom | base64 -w0 >"$key"

# field DEVICE NAME: NAME's value in the engine's probe of DEVICE.
field() {
        "$tool" probe "$1" | sed -n "s/^$2=//p"
}

# is VALUE COMMAND...: COMMAND prints exactly VALUE (shown when it does not).
is() {
        local want=$1 got
        shift
        got=$("$@")
        [ "$got" = "$want" ] || { echo "expected '$want', got '$got'"; return 1; }
}

# linear NAME DEVICE: a device-mapper linear target over the whole of DEVICE.
linear() {
        dmsetup create "$1" --table "0 $(blockdev --getsz "$2") linear $2 0"
}

# refuses WHAT DEVICE: in place and format-all are both refused (exit 1, not a usage error), so is
# the read-only plan, and DEVICE is byte-identical afterwards.
refuses() {
        local what=$1 dev=$2 before rc
        before=$(sha256sum <"$dev")
        "$tool" --debug --quiet --header-dir "$hdir" encrypt "$dev" "$key" >/tmp/inplace.out 2>&1
        rc=$?
        check "$what: encrypting $dev in place is refused" sh -c "cat /tmp/inplace.out; test $rc -eq 1"
        check "$what: ... saying that it is in use by another device" grep -q "in use by another device" /tmp/inplace.out
        "$tool" --debug --quiet --header-dir "$hdir" --format-all --yes encrypt "$dev" "$key" >/tmp/format.out 2>&1
        rc=$?
        check "$what: format-all of $dev is refused" sh -c "cat /tmp/format.out; test $rc -eq 1"
        check_fails "$what: planning $dev is refused" "$tool" --header-dir "$hdir" plan "$dev"
        check "$what: $dev is byte-identical" is "$before" sh -c "sha256sum <$dev"
        check_fails "$what: $dev carries no LUKS header" cryptsetup isLuks "$dev"
}

require "ade-engine-tool is built" test -x "$tool"
require "device-mapper is present" test -e /dev/mapper/control
require "the kernel read the GPT: /dev/vda1 is there" test -b /dev/vda1
check "vda1 is the 200 MiB partition" is $((200 << 20)) blockdev --getsize64 /dev/vda1
require "ext4 on the partition" mkfs.ext4 -q -L held-part /dev/vda1

# Nothing holds anything yet: the partitioned disk is skipped for its partition table, not for
# holders; the partition and the whole ext4 disk are eligible.
check "free: /dev/vda is skipped as unknown-fs (a partition table)" is unknown-fs field /dev/vda skip
check "free: /dev/vda shows its partition table as gpt" is gpt field /dev/vda fstype
check "free: /dev/vda1 is eligible" is yes field /dev/vda1 eligible
check "free: /dev/vdb is eligible" is yes field /dev/vdb eligible

# 1. A linear target over the partition.
require "dm linear over /dev/vda1" linear ade-hold-part /dev/vda1
check "dm-part: /sys shows the holder of vda1" sh -c 'ls /sys/class/block/vda1/holders | grep -q .'
check "dm-part: probe classifies /dev/vda as holders" is holders field /dev/vda skip
check "dm-part: ... not eligible" is no field /dev/vda eligible
check "dm-part: probe classifies /dev/vda1 as holders" is holders field /dev/vda1 skip
refuses dm-part /dev/vda
refuses dm-part /dev/vda1
require "dm-part: remove the linear target" dmsetup remove ade-hold-part
check "dm-part gone: /dev/vda is no longer holders" is unknown-fs field /dev/vda skip
check "dm-part gone: /dev/vda1 is eligible again" is yes field /dev/vda1 eligible

# 2. The partition is a LUKS volume, opened.
require "luks-part: luksFormat /dev/vda1 (stock cryptsetup)" cryptsetup luksFormat -q --type luks2 \
        --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$key" /dev/vda1
require "luks-part: open it" cryptsetup open --key-file "$key" /dev/vda1 ade-hold-luks
check "luks-part: probe classifies /dev/vda as holders" is holders field /dev/vda skip
echo "# luks-part: /dev/vda1 itself: skip=$(field /dev/vda1 skip) (LUKS is reported before holders)"
refuses luks-part /dev/vda
require "luks-part: close it" cryptsetup close ade-hold-luks
check "luks-part closed: /dev/vda is no longer holders" is unknown-fs field /dev/vda skip

# 3. The partition is mounted (read-only, so that the disk's bytes cannot change under the test).
require "mounted-part: ext4 on /dev/vda1 again" sh -c 'wipefs -q -a /dev/vda1 && mkfs.ext4 -q -L held-part /dev/vda1'
require "mounted-part: mount /dev/vda1 read-only" mount -o ro /dev/vda1 /mnt/held
check "mounted-part: probe classifies /dev/vda as holders" is holders field /dev/vda skip
refuses mounted-part /dev/vda
require "mounted-part: unmount" umount /mnt/held
check "mounted-part gone: /dev/vda is no longer holders" is unknown-fs field /dev/vda skip

# 4. A linear target over the whole of /dev/vdb, and discovery of both held disks.
require "dm-whole: dm linear over /dev/vdb" linear ade-hold-whole /dev/vdb
require "dm-whole: and over /dev/vda1 again" linear ade-hold-part /dev/vda1
check "dm-whole: probe classifies /dev/vdb as holders" is holders field /dev/vdb skip
check "dm-whole: ... even with format-all" sh -c "'$tool' --format-all probe /dev/vdb | grep -qx skip=holders"
refuses dm-whole /dev/vdb
cat >/tmp/ade.conf <<CONF
[volumes]
data = /dev/vda /dev/vdb
header-dir = $hdir
CONF
# dfield FILE DEVICE NAME: NAME's value in DEVICE's block of a discovery's output.
dfield() {
        awk -v d="$2" -v k="$3" 'BEGIN { RS = ""; FS = "\n" }
                { hit = 0; for (i = 1; i <= NF; i++) if ($i == "device=" d) hit = 1
                  if (hit) for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }' "$1"
}
for fa in "" --format-all; do
        "$tool" $fa discover /tmp/ade.conf >/tmp/discover.out 2>&1
        check "discovery${fa:+ ($fa)}: /dev/vda skipped for holders" is holders dfield /tmp/discover.out /dev/vda skip
        check "discovery${fa:+ ($fa)}: /dev/vdb skipped for holders" is holders dfield /tmp/discover.out /dev/vdb skip
done
require "dm-whole: remove the linear targets" dmsetup remove ade-hold-whole ade-hold-part
check "dm-whole gone: /dev/vdb is eligible again" is eligible field /dev/vdb skip
before=$(sha256sum </dev/vdb)
check "dm-whole gone: planning /dev/vdb succeeds" "$tool" --header-dir "$hdir" plan /dev/vdb
check "dm-whole gone: the plan left /dev/vdb byte-identical" is "$before" sh -c "sha256sum </dev/vdb"
done_checks
