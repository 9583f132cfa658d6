# SPDX-License-Identifier: LGPL-2.1-or-later
# The QEMU harness, sourced by every tests/vm/test-*.sh (bash).
#
# A VM test is a guest script plus image files. The guest is Debian's own kernel (unpacked from the
# package fetched with "apt-get download", never installed) with a busybox initramfs that loads
# dm-crypt and friends, mounts this machine's root read-only over 9p, puts tmpfs where the guest
# writes, chroots into it and runs the guest script with the host's own bash, cryptsetup, mkfs and
# build artefacts. The script's output and exit code come back over a virtio serial port, between
# markers; the host enforces a timeout and fails loudly when the VM does not come back.
#
#   vm_require                     exit 77 unless root, qemu and ADE_HEAVY_TESTS allow a VM
#   vm_prepare                     kernel + initramfs in the cache (exit 77 if the kernel cannot be had)
#   vm_new_run                     a run folder in the build tree (VM_RUN), removed on exit
#   vm_image NAME SIZE             a sparse raw image in the run folder; prints its path
#   vm_make_tree [BIG]             sample files in $VM_RUN/tree, checksums in $VM_RUN/manifest
#   vm_ext4_image NAME SIZE        an ext4 image holding that tree; prints its path
#   vm_setenv NAME VALUE           exported to the guest script
#   vm_run SCRIPT [IMAGE[:SERIAL[:OPTS]]...]  boots, runs SCRIPT in the guest, returns its exit code
#                                  (VM_SECONDS: how long the VM ran)
#   VM_CUT_AT=LINE vm_run ...      a power cut: QEMU is killed (-9) once the guest prints LINE;
#                                  returns 0 then (the guest's checks until LINE decide the test)
#   vm_aded_prepare                the binaries, run folder and small tree of a test of aded
#   vm_power_cut_prepare           the same and aded's state disk, for a power-cut test
#   vm_power_cut_boots BOOTS ...   boots the same images BOOTS times, each but the last cut
#   vm_host_check NAME COMMAND...  a check on the host, after the boots
#
# Environment: ADE_VM_CACHE (default /var/cache/ade-vm), ADE_VM_TIMEOUT (seconds, default 900),
# ADE_VM_MEMORY (MiB, default 1024), ADE_VM_SMP (default 1: the machine's cores are shared),
# ADE_VM_KERNEL_PKG (default: what linux-image-amd64 depends on), ADE_VM_KEEP=yes keeps the run folder.

vm_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vm_cache=${ADE_VM_CACHE:-/var/cache/ade-vm}
VM_RUN=
vm_envfile=

# Modules the guest needs; their dependencies come from modules.dep. crc32c_generic first: ext4 and
# libcrc32c (xfs) ask the crypto API for crc32c when they load. xts(aes) needs ecb too (without it
# dm-crypt fails with "Error allocating crypto tfm (-ENOENT)"); aesni_intel works under "-cpu max".
vm_modules=(crc32c_generic virtio virtio_ring virtio_pci virtio_blk virtio_console virtio_rng
        9pnet_virtio 9p dm_mod dm_crypt ecb xts aesni_intel af_alg algif_skcipher sha512_generic
        loop ext4 xfs)

vm_log() {
        echo "ade-vm: $*" >&2
}

vm_skip() {
        echo "SKIP: $*"
        exit 77
}

# vm_require_built PATH...: skip unless these are built under top_builddir (the daemon's VM tests).
vm_require_built() {
        local p
        for p in "$@"; do
                [ -x "${top_builddir:-${top_srcdir:-$vm_top}}/$p" ] || vm_skip "$p is not built"
        done
}

# vm_check_summary RESULT RC: a Check-style line from the guest's ok/not ok lines in RESULT, so that
# tests/summarize.sh counts them one by one (a failed run with no "not ok" still counts one failure).
vm_check_summary() {
        local ok bad
        ok=$(grep -c '^ok ' "$1")
        bad=$(grep -c '^not ok ' "$1")
        [ "$2" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
        echo "$((ok * 100 / (ok + bad)))%: Checks: $((ok + bad)), Failures: $bad, Errors: 0"
}

vm_require() {
        [ "${ADE_HEAVY_TESTS:-yes}" != no ] || vm_skip "heavy tests are disabled (ADE_HEAVY_TESTS=no)"
        [ "$(id -u)" -eq 0 ] || vm_skip "VM tests need root (the guest chroots into / over 9p as root)"
        command -v qemu-system-x86_64 >/dev/null || vm_skip "qemu-system-x86_64 is not installed (tools/setup-deps.sh)"
        command -v busybox >/dev/null || vm_skip "busybox is not installed (busybox-static)"
        local t
        for t in cpio dpkg-deb depmod apt-get apt-cache flock timeout; do
                command -v "$t" >/dev/null || vm_skip "$t is missing"
        done
        case $vm_top in
        *[[:space:]]*) vm_skip "the source path '$vm_top' has spaces; the guest's kernel command line cannot carry it" ;;
        esac
        # The initramfs has no libc: busybox must be the static one.
        ! ldd "$(command -v busybox)" >/dev/null 2>&1 ||
                vm_skip "$(command -v busybox) is not static; install busybox-static"
}

# The kernel package to use: ADE_VM_KERNEL_PKG, or the one linux-image-amd64 depends on, or the
# newest one already in the cache when apt knows none (offline).
vm_kernel_package() {
        if [ -n "${ADE_VM_KERNEL_PKG:-}" ]; then
                echo "$ADE_VM_KERNEL_PKG"
                return 0
        fi
        local p
        p=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
        if [ -z "$p" ]; then
                p=$(ls -1 "$vm_cache"/linux-image-*/unpacked 2>/dev/null | sort -V | tail -n1)
                [ -z "$p" ] || p=$(basename "$(dirname "$p")")
        fi
        [ -n "$p" ] && echo "$p"
}

# Fetches and unpacks the kernel package into the cache once, runs depmod there (the package's
# postinst would), and (re)builds the initramfs when its inputs changed. Sets VM_KERNEL, VM_INITRD.
vm_prepare() {
        local pkg dir kver
        pkg=$(vm_kernel_package) || vm_skip "no Debian kernel package known (apt-cache depends linux-image-amd64 says nothing; set ADE_VM_KERNEL_PKG)"
        dir=$vm_cache/$pkg
        mkdir -p "$dir" || vm_skip "cannot create the cache folder $dir (set ADE_VM_CACHE)"
        exec {vm_lockfd}>"$vm_cache/.lock"
        flock "$vm_lockfd"

        if [ ! -f "$dir/unpacked" ]; then
                vm_log "fetching $pkg into $dir (once; cached)"
                rm -rf "$dir/root" "$dir"/*.deb
                if ! (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >download.log 2>&1); then
                        cat "$dir/download.log" >&2
                        flock -u "$vm_lockfd"
                        vm_skip "cannot fetch $pkg with apt-get download (offline?)"
                fi
                dpkg-deb -x "$dir"/"$pkg"_*.deb "$dir/root" || { flock -u "$vm_lockfd"; vm_log "dpkg-deb -x failed"; return 1; }
                rm -f "$dir"/*.deb
                touch "$dir/unpacked"
        fi

        kver=${pkg#linux-image-}
        VM_KERNEL=$dir/root/boot/vmlinuz-$kver
        local moddir=$dir/root/lib/modules/$kver
        [ -d "$moddir" ] || moddir=$dir/root/usr/lib/modules/$kver
        if [ ! -f "$VM_KERNEL" ] || [ ! -d "$moddir" ]; then
                flock -u "$vm_lockfd"
                vm_log "$pkg has no kernel or modules where expected ($VM_KERNEL, $moddir)"
                return 1
        fi
        if [ ! -s "$moddir/modules.dep" ]; then
                depmod -b "${moddir%/lib/modules/"$kver"}" "$kver" ||
                        { flock -u "$vm_lockfd"; vm_log "depmod failed for $moddir"; return 1; }
        fi

        # The initramfs is named after what goes into it, so an edited init is picked up at once.
        local sum
        sum=$( (cat "$vm_top/tests/vm/initramfs-init" "$(command -v busybox)"; echo "${vm_modules[*]}") | sha256sum | cut -c1-16)
        VM_INITRD=$dir/initramfs-$sum.cpio
        if [ ! -s "$VM_INITRD" ]; then
                # Old ones go, but not so soon that a run which has just picked one loses it.
                find "$dir" -maxdepth 1 -name 'initramfs-*.cpio' -mmin +60 -delete
                vm_build_initramfs "$moddir" "$VM_INITRD" || { flock -u "$vm_lockfd"; return 1; }
        fi
        flock -u "$vm_lockfd"
}

# Prints the modules.dep paths (relative to @moddir) of @name and its dependencies, dependencies
# first. Names match with "-" and "_" taken as the same; built-in modules print nothing.
vm_resolve_module() {
        local moddir=$1 name=${2//-/_} line path deps d
        line=$(awk -v n="$name" -F: '{
                        p = $1; sub(/.*\//, "", p); sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", p); gsub(/-/, "_", p)
                        if (p == n) { print; exit }
                }' "$moddir/modules.dep")
        if [ -z "$line" ]; then
                if awk -F/ '{ p = $NF; sub(/\.ko$/, "", p); gsub(/-/, "_", p); print p }' "$moddir/modules.builtin" |
                        grep -qx "$name"; then
                        return 0
                fi
                vm_log "module $2 is neither in modules.dep nor built in"
                return 1
        fi
        path=${line%%:*}
        deps=${line#*:}
        # modules.dep lists what a module needs; load those first, deepest first.
        for d in $deps; do
                d=${d##*/}
                d=${d%%.ko*}
                vm_resolve_module "$moddir" "$d" || return 1
        done
        echo "$path"
}

# Uncompresses a module (busybox insmod wants a plain ELF) into @dest.
vm_copy_module() {
        local src=$1 dest=$2
        case $src in
        *.ko.xz) xz -dc "$src" >"$dest" ;;
        *.ko.zst) zstd -qdc "$src" >"$dest" ;;
        *.ko.gz) gzip -dc "$src" >"$dest" ;;
        *) cp "$src" "$dest" ;;
        esac
}

vm_build_initramfs() {
        local moddir=$1 out=$2 tree m p name
        tree=$(mktemp -d "${out%/*}/initramfs.XXXXXX") || return 1
        mkdir -p "$tree"/{bin,dev,proc,sys,host,lib/modules,tmp} || return 1
        cp "$(command -v busybox)" "$tree/bin/busybox" || return 1
        cp "$vm_top/tests/vm/initramfs-init" "$tree/init" && chmod 0755 "$tree/init" || return 1
        : >"$tree/modules.order"
        for m in "${vm_modules[@]}"; do
                p=$(vm_resolve_module "$moddir" "$m") || { rm -rf "$tree"; return 1; }
                for p in $p; do
                        name=${p##*/}
                        name=${name%%.ko*}
                        grep -qx "$name" "$tree/modules.order" && continue
                        vm_copy_module "$moddir/$p" "$tree/lib/modules/$name.ko" || { rm -rf "$tree"; return 1; }
                        echo "$name" >>"$tree/modules.order"
                done
        done
        (cd "$tree" && find . -print0 | cpio --null -o -H newc --quiet >"$out.tmp") || { rm -rf "$tree"; return 1; }
        mv "$out.tmp" "$out"
        rm -rf "$tree"
        vm_log "built $out ($(du -h "$out" | cut -f1))"
}

# A run folder for this test's images, output and guest environment. It lives in the build tree,
# not in /tmp: the guest sees the host's files over 9p but has its own tmpfs on /tmp.
vm_new_run() {
        local base=${top_builddir:-$vm_top}/tests/vm
        mkdir -p "$base" || return 1
        VM_RUN=$(mktemp -d "$base/run.XXXXXX") || return 1
        case $VM_RUN in
        *[[:space:]]*) vm_skip "the build path '$VM_RUN' has spaces" ;;
        esac
        vm_envfile=$VM_RUN/env
        : >"$vm_envfile"
        vm_setenv top_srcdir "${top_srcdir:-$vm_top}"
        vm_setenv top_builddir "${top_builddir:-$vm_top}"
        vm_setenv ADE_VM_RUN "$VM_RUN"
        trap vm_cleanup EXIT
}

vm_cleanup() {
        if [ "${ADE_VM_KEEP:-no}" = yes ]; then
                vm_log "kept $VM_RUN"
        elif [ -n "$VM_RUN" ]; then
                rm -rf "$VM_RUN"
        fi
}

vm_setenv() {
        printf 'export %s=%q\n' "$1" "$2" >>"$vm_envfile"
}

vm_image() {
        local path=$VM_RUN/$1.img
        rm -f "$path"
        truncate -s "$2" "$path" || return 1
        echo "$path"
}

# vm_make_tree [BIG]: a tree of files in $VM_RUN/tree for the data disks (about 100 MiB: 20 large
# random files, or BIG of them, many small ones, a plaintext marker file whose text must vanish from
# an encrypted disk) and its checksums in $VM_RUN/manifest, paths relative to the tree.
vm_make_tree() {
        local t=$VM_RUN/tree i
        mkdir -p "$t/big" "$t/small/a/b" || return 1
        for i in $(seq 1 "${1:-20}"); do
                head -c $(((i * 7 % 9 + 1) * 1024 * 1024 - i * 512)) /dev/urandom >"$t/big/f$i" || return 1
        done
        for i in $(seq 1 300); do
                head -c $((i * 13 % 8192 + 1)) /dev/urandom >"$t/small/a/b/s$i" || return 1
        done
        yes ADE-VM-PLAINTEXT-MARKER | head -n 20000 >"$t/marker.txt"
        (cd "$t" && find . -type f -printf '%P\0' | sort -z | xargs -0 sha256sum) >"$VM_RUN/manifest"
}

# vm_ext4_image NAME SIZE: an ext4 image holding $VM_RUN/tree (made with mkfs.ext4 -d, on the host,
# where it is fast). Prints its path.
vm_ext4_image() {
        local img
        img=$(vm_image "$1" "$2") || return 1
        mkfs.ext4 -q -F -L "$1" -d "$VM_RUN/tree" "$img" >&2 || return 1
        echo "$img"
}

# vm_run SCRIPT [IMAGE[:SERIAL[:DRIVE-OPTIONS]]...]: images become /dev/vda, /dev/vdb, ... in that
# order, and /dev/disk/by-id/virtio-SERIAL when a serial is given; DRIVE-OPTIONS go to QEMU's -drive
# (e.g. throttling.bps-total=8388608: a slower disk, so that a test can stop at a given point). Prints the guest's output and returns the
# guest script's exit code; 1 with a loud message and the console's tail when the VM does not come
# back (timeout, panic, no exit marker).
vm_run() {
        local script=$1 timeout=${ADE_VM_TIMEOUT:-900} out console rc start end n=0 spec img serial opts
        shift
        [ -n "$VM_RUN" ] || vm_new_run || return 1
        [ -f "$script" ] || { vm_log "no guest script $script"; return 1; }
        script=$(cd "$(dirname "$script")" && pwd)/$(basename "$script")
        vm_setenv ADE_VM_SCRIPT "$script"

        local args=(-accel tcg -cpu max -m "${ADE_VM_MEMORY:-1024}" -smp "${ADE_VM_SMP:-1}"
                -nodefaults -no-user-config -display none -no-reboot
                -kernel "$VM_KERNEL" -initrd "$VM_INITRD")
        for spec in "$@"; do
                img=${spec%%:*}
                serial=
                opts=
                [ "$img" = "$spec" ] || serial=${spec#*:}
                case $serial in
                *:*)
                        opts=,${serial#*:}
                        serial=${serial%%:*}
                        ;;
                esac
                args+=(-drive "file=$img,if=none,id=d$n,format=raw,cache=unsafe$opts"
                        -device "virtio-blk-pci,drive=d$n${serial:+,serial=$serial}")
                n=$((n + 1))
        done
        out=$VM_RUN/guest.out
        console=$VM_RUN/console.log
        : >"$out"
        args+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
                -device virtio-rng-pci
                -device virtio-serial-pci
                -chardev "file,id=out,path=$out" -device "virtserialport,chardev=out,name=ade.out"
                -serial "file:$console"
                -append "console=ttyS0 quiet panic=-1 ade.runner=$vm_top/tests/vm/guest-run.sh ade.job=$VM_RUN ade.disks=$n")

        start=$(date +%s.%N)
        local pid cut=no
        rm -f "$VM_RUN/qemu.pid"
        timeout -k 10 "$timeout" qemu-system-x86_64 "${args[@]}" -pidfile "$VM_RUN/qemu.pid" \
                </dev/null >"$VM_RUN/qemu.log" 2>&1 &
        pid=$!
        # The cut: QEMU itself killed, so the guest's page cache and unflushed writes are gone as in a
        # power loss (what QEMU had written to the image file stays: cache=unsafe only skips flushes).
        while [ -n "${VM_CUT_AT:-}" ] && kill -0 "$pid" 2>/dev/null; do
                if grep -aqxF -- "$VM_CUT_AT" "$out"; then
                        kill -KILL "$(cat "$VM_RUN/qemu.pid")" && cut=yes
                        break
                fi
                sleep 0.1
        done
        { wait "$pid"; } 2>/dev/null
        rc=$?
        end=$(date +%s.%N)
        VM_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

        # The guest's output, without the markers.
        sed -e '/^ADE-VM-BEGIN$/d' -e '/^ADE-VM-EXIT [0-9]*$/d' -e '/^ADE-VM-UPTIME /d' "$out"
        if [ $cut = yes ]; then
                vm_log "power cut: QEMU killed after ${VM_SECONDS}s, when the guest printed '$VM_CUT_AT'"
                return 0
        fi
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
                vm_log "FAILED: the VM did not come back within ${timeout}s (ADE_VM_TIMEOUT); console tail:"
                tail -n 40 "$console" >&2
                return 1
        fi
        if [ $rc -ne 0 ]; then
                vm_log "FAILED: qemu exited with $rc:"
                cat "$VM_RUN/qemu.log" >&2
                tail -n 40 "$console" >&2
                return 1
        fi
        local exitline
        exitline=$(grep -a '^ADE-VM-EXIT [0-9]*$' "$out" | tail -n1)
        if ! grep -aqx 'ADE-VM-BEGIN' "$out" || [ -z "$exitline" ]; then
                vm_log "FAILED: the VM powered off without reporting an exit code; console tail:"
                tail -n 40 "$console" >&2
                return 1
        fi
        vm_log "VM ran for ${VM_SECONDS}s; boot to script start $(sed -n 's/^ADE-VM-UPTIME //p' "$VM_RUN/guest.out" | head -n1)s"
        return "${exitline#ADE-VM-EXIT }"
}

# vm_aded_prepare: what a test of aded in the guest needs: a VM, aded, adectl and the emulator
# built, jq, and a run folder with a small tree (about 21 MiB: TCG encrypts slowly). Exits itself
# (77: cannot run here, 1: failed).
vm_aded_prepare() {
        vm_require
        vm_require_built daemon/aded tools/adectl tests/emulator/ade-emulator
        command -v jq >/dev/null || vm_skip "jq is missing"
        vm_prepare || exit 1
        vm_new_run || exit 1
        vm_make_tree 4 || exit 1
}

# vm_power_cut_prepare: vm_aded_prepare, and aded's persistent disk, ext4, in $VM_STATE_IMG, for a
# power-cut test.
vm_power_cut_prepare() {
        vm_aded_prepare
        VM_STATE_IMG=$(vm_image state 64M) || exit 1
        mkfs.ext4 -q -F "$VM_STATE_IMG" >&2 || exit 1
        : >"$VM_RUN/result"
}

# vm_host_check NAME COMMAND...: a check on the host after the boots: "ok - host: NAME" or "not ok",
# printed and appended to $VM_RUN/result. Returns COMMAND's verdict.
vm_host_check() {
        local name=$1
        shift
        if "$@"; then
                echo "ok - host: $name" | tee -a "$VM_RUN/result"
        else
                echo "not ok - host: $name" | tee -a "$VM_RUN/result"
                return 1
        fi
}

# vm_power_cut_boots BOOTS SCRIPT IMAGE...: boots the same images BOOTS times with vm_run, PL_BOOT
# set to the boot's number; every boot but the last is cut (QEMU killed, VM_CUT_AT) when the guest
# prints ADE-VM-CUT. Prints each boot's lines (ok / not ok as they are, the rest after "boot N: ")
# and its VM time, appends the ok / not ok lines to $VM_RUN/result; stops at the first boot that
# fails a check, does not come back or ends before its cut line. Returns 0 or 1.
vm_power_cut_boots() {
        local boots=$1 boot cut rc=0 total=0
        shift
        for boot in $(seq 1 "$boots"); do
                vm_setenv PL_BOOT "$boot"
                cut=
                [ "$boot" = "$boots" ] || cut=ADE-VM-CUT
                VM_CUT_AT=$cut vm_run "$@" >"$VM_RUN/result.$boot"
                rc=$?
                sed "s/^/boot $boot: /;s/^boot $boot: \(ok\|not ok\) /\1 /" "$VM_RUN/result.$boot"
                grep -e '^ok ' -e '^not ok ' "$VM_RUN/result.$boot" >>"$VM_RUN/result"
                echo "# figure vm-seconds-boot-$boot $VM_SECONDS s"
                total=$(awk -v a="$total" -v b="$VM_SECONDS" 'BEGIN { print a + b }')
                if [ $rc -eq 0 ] && [ -n "$cut" ] && ! grep -qx "$cut" "$VM_RUN/result.$boot"; then
                        rc=1
                fi
                if [ $rc -ne 0 ] || grep -q '^not ok ' "$VM_RUN/result.$boot"; then
                        rc=1
                        break
                fi
        done
        echo "# figure vm-seconds $total s"
        return $rc
}
