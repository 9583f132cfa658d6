#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Discovery with [volumes] data = explicit loop devices: each is described and classified (an
# eligible ext4, an XFS, one too small, a swap, a LUKS volume), in the order given; discovery
# without a configuration runs on this machine without error and lists no loop device of ours.
. "$(dirname "$0")/engine-lib.sh"

KEY="$WORK/key"; newkey "$KEY"
declare -A dev
for spec in ext4:200 xfs:320 small:100 swap:200 luks:200; do
        name=${spec%%:*}; size=${spec#*:}
        img=$(new_image "$name.img" "$size")
        l=$(attach "$img")
        case $name in
        ext4) make_fs ext4 "$l" mydata ;;
        xfs) make_fs xfs "$l" myxfs ;;
        small) make_fs ext4 "$l" small ;;
        swap) mkswap "$l" >/dev/null ;;
        luks) cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$KEY" "$l" ;;
        esac
        dev[$name]=$l
done

cat > "$WORK/ade.conf" <<CONF
[volumes]
data = ${dev[ext4]} ${dev[xfs]} ${dev[small]} ${dev[swap]} ${dev[luks]}
header-dir = $HDIR
CONF
"$TOOL" discover "$WORK/ade.conf" > "$WORK/out" || fail "discovery failed"

# field NAME KEY: the value of KEY in the block of the device named NAME
field() { awk -v d="${dev[$1]}" -v k="$2" 'BEGIN{RS=""; FS="\n"} { hit=0; for (i=1;i<=NF;i++) if ($i == "device=" d) hit=1; if (hit) for (i=1;i<=NF;i++) if (index($i, k "=") == 1) print substr($i, length(k)+2) }' "$WORK/out"; }

[ "$(field ext4 eligible)" = yes ] || fail "ext4 not eligible"
[ "$(field ext4 fstype)" = ext4 ] || fail "ext4 fstype is $(field ext4 fstype)"
[ "$(field ext4 label)" = mydata ] || fail "ext4 label is $(field ext4 label)"
[ "$(field ext4 type)" = Data ] || fail "ext4 type is $(field ext4 type)"
[ "$(field ext4 size)" = $((200 << 20)) ] || fail "ext4 size is $(field ext4 size)"
ok "ext4: eligible data volume, type, label and size read"

[ "$(field xfs eligible)" = yes ] && [ "$(field xfs fstype)" = xfs ] || fail "xfs misclassified"
ok "xfs: eligible"

[ "$(field small skip)" = too-small ] || fail "small: skip is $(field small skip)"
field small reason | grep -q '150 MiB' || fail "small: reason does not say the limit"
ok "100 MiB volume: too-small, with a reason naming the limit"

[ "$(field swap skip)" = swap ] || fail "swap: skip is $(field swap skip)"
ok "swap: skipped"

[ "$(field luks skip)" = luks ] || fail "luks: skip is $(field luks skip)"
ok "LUKS volume: skipped as already encrypted"

[ "$(grep -c '^device=' "$WORK/out")" -eq 5 ] || fail "not exactly the five configured volumes"
ok "[volumes] data replaces discovery: exactly the configured devices"

"$TOOL" discover - > "$WORK/out2" || fail "discovery without a configuration failed"
for d in "${dev[@]}"; do grep -q "^device=$d\$" "$WORK/out2" && fail "discovery lists our loop device $d"; done
ok "discovery without a configuration runs and lists none of our loop devices"
