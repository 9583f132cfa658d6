#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest side of test-format-all.sh. /dev/vda is ext4 (label fa-ext4) holding the host's tree,
# /dev/vdb an empty XFS (label fa-xfs) that is filled here. Each is format-all'ed by ade's engine
# through ade-engine-tool: refused without the confirmation and while mounted (the device stays as
# it was), then done; stock cryptsetup proves the result: LUKS2, aes-xts-plain64, a PBKDF2 keyslot
# with 1000 iterations, our Azure_Disk_Encryption token, opens with the key file, and the mapper
# holds a new, empty filesystem of the same type and label. ext4 goes through the engine's own
# temporary mapping; XFS through an active name that the engine leaves open.
. "$top_srcdir/tests/vm/guest/guest-lib.sh"

tool=$top_builddir/tests/integration/ade-engine-tool
hdir=/tmp/ade-headers
key=/tmp/key
mkdir -p "$hdir" /mnt/fa
# A key file as ADE makes them: base64 of 127 random bytes.
head -c 127 /dev/urandom | base64 -w0 >"$key"
printf 'not-the-key' >/tmp/badkey

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

# refused DEVICE OUTFILE ARGS...: the tool fails (exit 1: refused, not a usage error). --debug
# puts the engine's reason in OUTFILE.
refused() {
        local out=$2 rc
        "$tool" --debug --quiet --header-dir "$hdir" "${@:3}" encrypt "$1" "$key" >"$out" 2>&1
        rc=$?
        cat "$out"
        [ $rc -eq 1 ] || { echo "exit code $rc, expected 1"; return 1; }
}

# jq_is DEVICE FILTER VALUE: FILTER over the LUKS2 JSON metadata of DEVICE gives VALUE.
jq_is() {
        local got
        got=$(cryptsetup luksDump --dump-json-metadata "$1" | jq -r "$2")
        [ "$got" = "$3" ] || { echo "expected '$3', got '$got'"; return 1; }
}

# only_new_fs MOUNT: nothing but what mkfs makes (lost+found on ext4, nothing on XFS).
only_new_fs() {
        local left
        left=$(find "$1" -mindepth 1 -maxdepth 1 ! -name lost+found)
        [ -z "$left" ] || { echo "left over: $left"; return 1; }
}

require "ade-engine-tool is built" test -x "$tool"
require "device-mapper is present" test -e /dev/mapper/control
require "xfs: mount the empty disk" mount /dev/vdb /mnt/fa
require "xfs: copy the tree onto it" cp -a "$ADE_VM_RUN/tree/." /mnt/fa/
require "xfs: unmount" umount /mnt/fa

# format_all_case NAME DEVICE FSTYPE LABEL [ACTIVE-NAME]
format_all_case() {
        local n=$1 dev=$2 fs=$3 label=$4 active=${5:-} before uuid map=fa-$1 act=()
        [ -z "$active" ] || act=(--active-name "$active")

        check "$n: the engine sees $fs" is "$fs" field "$dev" fstype
        check "$n: the engine sees label $label" is "$label" field "$dev" label
        check "$n: eligible" is yes field "$dev" eligible
        before=$(sha256sum <"$dev")
        uuid=$(blkid -p -o value -s UUID "$dev")

        check "$n: format-all without --yes is refused" refused "$dev" "/tmp/$n-noyes.out" --format-all "${act[@]}"
        check "$n: ... saying that it needs confirmation" grep -qi confirm "/tmp/$n-noyes.out"
        check "$n: ... and the device is byte-identical" is "$before" sh -c "sha256sum <$dev"
        check_fails "$n: ... and carries no LUKS header" cryptsetup isLuks "$dev"

        # The engine never unmounts: a mounted volume is refused even with the confirmation.
        require "$n: mount the old filesystem" mount "$dev" /mnt/fa
        check "$n: format-all of the mounted volume is refused" \
                refused "$dev" "/tmp/$n-mounted.out" --format-all --yes "${act[@]}"
        check "$n: ... saying that it is mounted" grep -q "mounted on /mnt/fa" "/tmp/$n-mounted.out"
        check "$n: ... and the old files are still there" cmp "$ADE_VM_RUN/tree/dir/random" /mnt/fa/dir/random
        require "$n: unmount" umount /mnt/fa
        check_fails "$n: ... and it carries no LUKS header" cryptsetup isLuks "$dev"

        require "$n: format-all --yes succeeds" "$tool" --quiet --header-dir "$hdir" --format-all --yes "${act[@]}" \
                encrypt "$dev" "$key"
        "$tool" --quiet --header-dir "$hdir" probe "$dev" | sed 's/^/#   probe after: /'
        if [ -n "$active" ]; then
                check "$n: the engine left /dev/mapper/$active open" test -b "/dev/mapper/$active"
                check "$n: ... with $fs on it" is "$fs" blkid -p -o value -s TYPE "/dev/mapper/$active"
                require "$n: close it with stock cryptsetup" cryptsetup close "$active"
        else
                check "$n: the engine's temporary mapping is gone" sh -c '! dmsetup ls | grep -q ade-format-'
        fi

        # Stock cryptsetup's view of what the engine wrote.
        check "$n: stock cryptsetup sees LUKS2" cryptsetup isLuks --type luks2 "$dev"
        cryptsetup luksDump "$dev" >"/tmp/$n.dump" 2>&1
        check "$n: luksDump shows the Azure_Disk_Encryption token" grep -q 'Azure_Disk_Encryption' "/tmp/$n.dump"
        check "$n: luksDump shows aes-xts-plain64 data" grep -q 'cipher: aes-xts-plain64' "/tmp/$n.dump"
        check "$n: luksDump shows a PBKDF2 keyslot" grep -q 'PBKDF: *pbkdf2' "/tmp/$n.dump"
        check "$n: one keyslot" jq_is "$dev" '.keyslots | length' 1
        check "$n: the keyslot is PBKDF2 with 1000 iterations" \
                jq_is "$dev" '.keyslots[] | "\(.kdf.type) \(.kdf.iterations)"' "pbkdf2 1000"
        check "$n: the data segment is aes-xts-plain64" jq_is "$dev" '.segments["0"].encryption' aes-xts-plain64
        check "$n: the token names the keyslot" \
                jq_is "$dev" '.tokens[] | select(.type == "Azure_Disk_Encryption") | .keyslots[0]' \
                "$(cryptsetup luksDump --dump-json-metadata "$dev" | jq -r '.keyslots | keys[0]')"
        check "$n: the engine reads its token back" sh -c "'$tool' token '$dev' | grep -q '^SecretURL=https://contoso.vault.azure.net/secrets/'"

        check_fails "$n: a wrong key does not open it" cryptsetup open --key-file /tmp/badkey "$dev" "$map"
        require "$n: cryptsetup open --key-file opens it" cryptsetup open --key-file "$key" "$dev" "$map"
        check "$n: the mapper holds $fs" is "$fs" blkid -p -o value -s TYPE "/dev/mapper/$map"
        check "$n: ... labelled $label" is "$label" blkid -p -o value -s LABEL "/dev/mapper/$map"
        # fstab's UUID= lines go on working once the volume is unlocked.
        check "$n: ... with the old filesystem's UUID" is "$uuid" blkid -p -o value -s UUID "/dev/mapper/$map"
        require "$n: it mounts" mount "/dev/mapper/$map" /mnt/fa
        check "$n: the new filesystem is empty (format-all destroys the data)" only_new_fs /mnt/fa
        check "$n: it takes a new file" cp "$ADE_VM_RUN/tree/dir/random" /mnt/fa/new
        require "$n: unmount" umount /mnt/fa
        require "$n: close" cryptsetup close "$map"

        # A retried job must not destroy a second time: the engine finds its own finished volume.
        "$tool" --quiet --header-dir "$hdir" --format-all --yes encrypt "$dev" "$key" 2>&1 | sed 's/^/#   format-all again: /'
        require "$n: open again after a second format-all run" cryptsetup open --key-file "$key" "$dev" "$map"
        require "$n: mount again" mount -o ro "/dev/mapper/$map" /mnt/fa
        check "$n: the second run left the new file alone" cmp "$ADE_VM_RUN/tree/dir/random" /mnt/fa/new
        umount /mnt/fa
        cryptsetup close "$map"
}

format_all_case ext4 /dev/vda ext4 fa-ext4
format_all_case xfs /dev/vdb xfs fa-xfs ade-fa-xfs
done_checks
