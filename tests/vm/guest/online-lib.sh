# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the online-encryption guest scripts, after guest-lib.sh. The host made the data disks
# from one tree whose checksums are in $ADE_VM_RUN/manifest (paths relative to the filesystem's
# root); files written while a reencryption runs go to during-NAME/ and their checksums to
# /tmp/during-NAME.sha256.

# 172-character key file, as ADE makes them: base64 of 127 random bytes.
make_keyfile() {
        head -c 127 /dev/urandom | base64 -w0 >"$1"
}

# verify_tree MOUNT [NAME...]: every file of the manifest, and those written during the
# reencryptions NAME..., is identical.
verify_tree() {
        local mnt=$1 name
        shift
        (cd "$mnt" && sha256sum -c --quiet --strict "$ADE_VM_RUN/manifest") || return 1
        for name in "$@"; do
                [ -s "/tmp/during-$name.sha256" ] || continue
                (cd "$mnt" && sha256sum -c --quiet --strict "/tmp/during-$name.sha256") || return 1
        done
}

# background_io MOUNT NAME PID: while PID runs, writes a new 1 MiB file and reads back one file of
# the tree, in turns. Prints "written N read M errors E slowest S" (S: the longest write + read
# round, seconds: how long the filesystem was stalled at worst). Files written get their checksums
# recorded only once they are on disk (fsync), so the final comparison includes them all. With
# less than 48 MiB free it only reads, at about the pace a write would have set: a slow run (a
# loaded host under TCG) must neither fill the disk nor take the guest's CPU from the reencryption.
background_io() {
        local mnt=$1 name=$2 pid=$3 n=0 reads=0 errors=0 f i=0 t0 lat max=0
        local files
        mapfile -t files < <(sed 's/^[0-9a-f]*  //' "$ADE_VM_RUN/manifest")
        mkdir -p "$mnt/during-$name"
        : >"/tmp/during-$name.sha256"
        while kill -0 "$pid" 2>/dev/null; do
                t0=$(now)
                if [ "$(df --output=avail -k "$mnt" | tail -n 1)" -ge 49152 ]; then
                        n=$((n + 1))
                        f=during-$name/f$n
                        if head -c 1M /dev/urandom >"$mnt/$f" && sync "$mnt/$f"; then
                                (cd "$mnt" && sha256sum "$f") >>"/tmp/during-$name.sha256"
                        else
                                errors=$((errors + 1))
                        fi
                else
                        sleep 0.5
                fi
                f=${files[$((i % ${#files[@]}))]}
                i=$((i + 1))
                if grep -F "  $f" "$ADE_VM_RUN/manifest" | (cd "$mnt" && sha256sum -c --quiet --strict -) >/dev/null 2>&1; then
                        reads=$((reads + 1))
                else
                        echo "# read of $f failed during the reencryption"
                        errors=$((errors + 1))
                fi
                lat=$(elapsed "$t0" "$(now)")
                max=$(awk -v a="$lat" -v b="$max" 'BEGIN { print (a > b) ? a : b }')
        done
        echo "written $n read $reads errors $errors slowest $max"
}

drop_caches() {
        sync
        echo 3 >/proc/sys/vm/drop_caches
}

# The plaintext marker the host put in the tree is on DEV (1) or not (0).
marker_on() {
        grep -qa ADE-VM-PLAINTEXT-MARKER "$1"
}

# wait_for_line FILE LINE PID: until FILE has LINE, or PID is gone (then fails).
wait_for_line() {
        while ! grep -qx "$2" "$1" 2>/dev/null; do
                kill -0 "$3" 2>/dev/null || grep -qx "$2" "$1" || return 1
                sleep 0.02
        done
}

# during_reencryption NAME MOUNT PID LOG: reads and writes files on MOUNT while PID (a reencryption
# writing LOG) runs, then checks that it finished and nothing failed meanwhile.
during_reencryption() {
        local name=$1 mnt=$2 pid=$3 log=$4 io rc written reads errors t0
        t0=$(now)
        io=$(background_io "$mnt" "$name" "$pid")
        wait "$pid"
        rc=$?
        figure "$name-background" "$(elapsed "$t0" "$(now)")" s
        echo "# $name background io: $io"
        read -r _ written _ reads _ errors _ slowest <<<"$io"
        figure "$name-slowest-io-round" "${slowest:-?}" s
        check "$name: the reencryption finished" test "$rc" -eq 0 || sed 's/^/#   /' "$log"
        check "$name: files were written while it ran" test "${written:-0}" -gt 0
        check "$name: files were read back while it ran" test "${reads:-0}" -gt 0
        check "$name: no read or write failed while it ran" test "${errors:-1}" -eq 0
}

# after_encryption NAME DEV MAPPER MOUNT FSCK [HEADER]: the volume is fully encrypted, every file
# is identical (with those written during the reencryptions named in $during_names, default NAME),
# the plaintext is gone, and stock cryptsetup opens it again with the key file.
after_encryption() {
        local name=$1 dev=$2 mapper=$3 mnt=$4 fsck=$5 header=${6:-}
        local hdr=$dev names
        read -r -a names <<<"${during_names:-$name}"
        [ -z "$header" ] || hdr=$header
        check "$name: the header says no reencryption is left" sh -c "! cryptsetup luksDump $hdr | grep -q reencrypt"
        check "$name: every file is identical, those written during encryption included" verify_tree "$mnt" "${names[@]}"
        require "$name: unmount and close" sh -c "umount $mnt && cryptsetup close $mapper"
        drop_caches
        check_fails "$name: the plaintext marker is gone from the disk" marker_on "$dev"
        require "$name: stock cryptsetup opens it again with the key file" \
                cryptsetup open ${header:+--header "$header"} --key-file /tmp/key "$dev" "$mapper"
        check "$name: $fsck is clean" $fsck "/dev/mapper/$mapper"
        require "$name: mount again" mount -o ro "/dev/mapper/$mapper" "$mnt"
        check "$name: after reopening, every file is identical" verify_tree "$mnt" "${names[@]}"
        umount "$mnt"
        cryptsetup close "$mapper"
}
