# SPDX-License-Identifier: LGPL-2.1-or-later
# The whole-system QEMU harness (bash), sourced by tests that need a real Debian 12 guest: systemd
# as PID 1 booted by grub from its own disk, ade installed from its .deb and run through its units.
# tests/vm/README.md, "The Debian guest", says how the image is built, cached and booted.
#
#   dvm_require                        exit 77 unless heavy tests, root, qemu, mmdebstrap, ssh, ...
#   dvm_require_deb                    exit 77 unless a .deb can be built here (dpkg-buildpackage)
#   dvm_new_run                        the run folder (DVM_RUN), and the clean-up on any exit
#   dvm_image                          the cached image for the current inputs, built when missing
#                                      (DVM_IMAGE: the read-only base disk, DVM_SSH_KEY)
#   dvm_build_deb                      ade_<version>_amd64.deb of the tree under test (DVM_DEB)
#   dvm_start_emulator [OVERLAY_JSON]  the Azure emulator on the host (HTTPS_PORT, HTTP_PORT, EMU_CA)
#   dvm_require_seed                   exit 77 unless a NoCloud seed and an apt repository can be made
#   dvm_apt_repo DEB                   a signed apt repository holding DEB, served to the guests
#                                      (DVM_APT_URL as the guest reaches it, DVM_APT_KEY: its key)
#   dvm_nocloud_seed ISO DIR           a NoCloud seed (iso9660 labelled cidata) of DIR's user-data,
#                                      meta-data and vendor-data
#   dvm_trust_script                   a shell script trusting the emulator's CA and names in a guest
#   dvm_boot VM [IMAGE:SERIAL[:ro] ...] starts QEMU on the overlay of VM (made on first use; kept
#                                      for later boots) with these extra virtio disks; waits for nothing
#   dvm_wait_boot VM [STATE]           until systemd says the boot is done and the system is STATE
#                                      (default "running"), 1 otherwise
#   dvm_ssh VM COMMAND                 runs COMMAND (a shell line) as root in the guest; its exit code
#   dvm_copy_in VM SRC DEST, dvm_copy_out VM SRC DEST
#   dvm_trust_emulator VM              the emulator's CA in the guest's trust store, its names in
#                                      /etc/hosts (10.0.2.100, forwarded to the host's emulator)
#   dvm_install_deb VM                 apt-get install /root/ade_*.deb in the guest (no network needed)
#   dvm_reboot VM [STATE]              a reboot asked by the guest, waited for (new boot id, STATE)
#   dvm_kill VM                        hard power-off (QEMU killed); dvm_boot VM boots it again
#   dvm_poweroff VM                    clean power-off, waited for
#   dvm_disk_add VM ID IMAGE SERIAL    hot-adds a virtio disk through QMP; dvm_disk_remove VM ID
#   dvm_collect VM                     journal and console tails (also done on any failing exit)
#
# QEMU's user networks are restricted: the guest reaches the emulator on the host's loopback only
# through forwarding rules (dvm_boot): Key Vault, ARM and Entra ID as https://<Azure name> (port 443
# in the guest), IMDS at 169.254.169.254:80, the apt repository of dvm_apt_repo at http://10.0.2.101.
# Every QEMU started here is killed, the repository's server stopped, and the run folder (overlays,
# logs) removed, on exit, INT or TERM.
#
# Environment: ADE_VM_CACHE (default /var/cache/ade-vm; the image is debian12-<key>/ there),
# ADE_VM_TIMEOUT (seconds a boot may take, default 600), ADE_VM_MEMORY (MiB, default 1024),
# ADE_VM_SMP (default 1), ADE_VM_KEEP=yes keeps the run folder, ADE_DEBVM_MIRROR and
# ADE_DEBVM_SECURITY_MIRROR (Debian mirrors for the image build).

dvm_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dvm_cache=${ADE_VM_CACHE:-/var/cache/ade-vm}
top_srcdir=${top_srcdir:-$dvm_top}
top_builddir=${top_builddir:-$top_srcdir/build}
# daemon-lib.sh: the emulator (start_emulator), the work folder and its clean-up, skip/fail. The
# guest reaches the emulator by Azure's own names (contoso.vault.azure.net), so it plays the public
# cloud's Key Vault resource.
EMULATOR_KEYVAULT_RESOURCE=https://vault.azure.net
. "$dvm_top/tests/daemon/daemon-lib.sh"

DVM_RUN=
declare -A dvm_pid=() dvm_port=() dvm_disks=() dvm_booted=()
dvm_ssh_opts=()

dvm_log() {
        echo "ade-debvm: $*" >&2
}

dvm_require() {
        [ "${ADE_HEAVY_TESTS:-yes}" != no ] || skip "heavy tests are disabled (ADE_HEAVY_TESTS=no)"
        [ "$(id -u)" -eq 0 ] || skip "the Debian VM tests need root (the image is built as root)"
        command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (tools/setup-deps.sh)"
        local t
        for t in qemu-img mmdebstrap sfdisk mkfs.ext4 ssh ssh-keygen socat python3 jq flock timeout sha256sum; do
                command -v "$t" >/dev/null || skip "$t is missing (tools/setup-deps.sh installs it)"
        done
        losetup -f >/dev/null 2>&1 || skip "no free loop device (the image build mounts its /boot image read-only)"
        [ -x "$EMULATOR" ] || skip "the emulator is not built ($EMULATOR)"
}

dvm_require_deb() {
        local t
        for t in dpkg-buildpackage dh; do
                command -v "$t" >/dev/null || skip "$t is missing (tools/setup-deps.sh installs it)"
        done
        dpkg-checkbuilddeps "$top_srcdir/debian/control" >/dev/null 2>&1 ||
                skip "the package's build dependencies are missing: $(dpkg-checkbuilddeps "$top_srcdir/debian/control" 2>&1)"
}

dvm_new_run() {
        daemon_workdir
        DVM_RUN=$WORK
        CLEANUPS+=(dvm_cleanup)
        dvm_ssh_opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
                -o BatchMode=yes -o ConnectTimeout=60 -o ServerAliveInterval=15 -o ServerAliveCountMax=8)
}

# Runs from daemon-lib's exit trap (before the emulator is stopped and the work folder removed),
# which discards its stderr: what it shows goes to stdout. "rc" is daemon_cleanup's exit code.
dvm_cleanup() {
        local vm
        if [ -n "${dvm_apt_pid:-}" ]; then
                kill "$dvm_apt_pid" 2>/dev/null
                wait "$dvm_apt_pid" 2>/dev/null
        fi
        [ ! -d "$DVM_RUN/gnupg" ] || gpgconf --homedir "$DVM_RUN/gnupg" --kill all 2>/dev/null
        for vm in "${!dvm_pid[@]}"; do
                if [ "${DVM_FAILED:-0}" != 0 ] || { [ "${rc:-0}" != 0 ] && [ "${rc:-0}" != 77 ]; }; then
                        dvm_collect "$vm" 2>&1
                fi
                dvm_stop_qemu "$vm"
        done
        if [ "${ADE_VM_KEEP:-no}" = yes ] && [ -n "$DVM_RUN" ]; then
                # daemon_cleanup removes WORK: keep a copy of what matters.
                local keep
                keep=$(mktemp -d "/tmp/ade-debvm-kept.XXXXXX")
                cp -a "$DVM_RUN"/. "$keep"/ 2>/dev/null
                echo "ade-debvm: kept the run folder in $keep"
        fi
}

dvm_stop_qemu() {
        local pid=${dvm_pid[$1]:-}
        [ -n "$pid" ] || return 0
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        dvm_pid[$1]=
}

# The image's cache key: every file in tests/vm/debian/ (the build script, the package list, the
# udev rule, the provisioning init) and the mirrors, hashed.
dvm_image_key() {
        (
                cd "$dvm_top/tests/vm/debian" || exit 1
                for f in $(ls -1 | LC_ALL=C sort); do
                        printf '%s\n' "$f"
                        cat "$f"
                done
                echo "bookworm ${ADE_DEBVM_MIRROR:-} ${ADE_DEBVM_SECURITY_MIRROR:-}"
        ) | sha256sum | cut -c1-16
}

# dvm_image: the image for the current inputs, built under the cache's lock when missing. A build
# goes to debian12-<key>.tmp.XXXXXX and is renamed to debian12-<key> only when complete, so no run
# ever sees a half-built image; a second run waits on the lock and then uses the finished one.
dvm_image() {
        local key dir tmp lockfd t0
        key=$(dvm_image_key) || return 1
        dir=$dvm_cache/debian12-$key
        mkdir -p "$dvm_cache" || skip "cannot create the cache folder $dvm_cache (set ADE_VM_CACHE)"
        exec {lockfd}>"$dvm_cache/debian12.lock"
        flock "$lockfd"
        if [ ! -f "$dir/disk.raw" ]; then
                # Under the lock, any temporary build folder belongs to a build that died.
                rm -rf "$dvm_cache"/debian12-*.tmp.*
                tmp=$(mktemp -d "$dir.tmp.XXXXXX")
                dvm_log "building the Debian 12 image $dir (once for these inputs; cached)"
                t0=$(date +%s)
                if ! "$dvm_top/tests/vm/debian/build-image.sh" "$tmp" "$dvm_cache/debian12-debs"; then
                        dvm_log "the image build failed; its logs are in $tmp"
                        flock -u "$lockfd"
                        return 1
                fi
                DVM_IMAGE_BUILD_SECONDS=$(($(date +%s) - t0))
                echo "# figure debvm-image-build $DVM_IMAGE_BUILD_SECONDS s"
                chmod a-w "$tmp/disk.raw"
                mv -T "$tmp" "$dir"
                # Images of other inputs go, once no run has used them for an hour.
                find "$dvm_cache" -maxdepth 1 -name 'debian12-*' ! -name 'debian12-debs' \
                        ! -name "debian12-$key" ! -name 'debian12-*.tmp.*' -type d -print |
                        while read -r old; do
                                [ -n "$(find "$old/last-used" -mmin -60 2>/dev/null)" ] || rm -rf "$old"
                        done
        fi
        touch "$dir/last-used"
        flock -u "$lockfd"
        DVM_IMAGE_DIR=$dir
        DVM_IMAGE=$dir/disk.raw
        DVM_SSH_KEY=$dir/id_ed25519
        # shellcheck disable=SC1091
        . "$dir/image.env"
}

# The files of the tree under test: what git knows (committed or not, ignored files left out), or,
# outside a git work tree, everything but the build folder.
dvm_source_files() {
        if git -C "$top_srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
                (cd "$top_srcdir" && git ls-files -z -co --exclude-standard) |
                        while IFS= read -r -d '' f; do [ -e "$top_srcdir/$f" ] && printf '%s\0' "$f"; done
        else
                local b
                b=$(cd "$top_builddir" 2>/dev/null && pwd)
                (cd "$top_srcdir" && find . \( -path ./.git -o -path "./${b#"$(pwd)"/}" -o -path ./debian/ade \) -prune \
                        -o -type f -printf '%P\0')
        fi
}

# dvm_build_deb: dpkg-buildpackage -b -us -uc in a clean copy of the tree under test (nocheck: make
# check runs the tests). The .deb is kept in the build tree under the hash of the sources, so a run
# on an unchanged tree reuses it. Sets DVM_DEB.
dvm_build_deb() {
        local hash dir src t0
        hash=$(dvm_source_files | (cd "$top_srcdir" && tar --null -T - -cf - --owner=0 --group=0 --mtime=@0 --sort=name) |
                sha256sum | cut -c1-16)
        dir=$top_builddir/tests/vm/debian-deb/$hash
        DVM_DEB=$(ls -1 "$dir"/ade_*_amd64.deb 2>/dev/null | head -n1)
        if [ -n "$DVM_DEB" ]; then
                dvm_log "reusing $DVM_DEB (sources unchanged)"
                return 0
        fi
        rm -rf "$top_builddir/tests/vm/debian-deb"
        mkdir -p "$dir/src" || return 1
        src=$dir/src
        dvm_source_files | (cd "$top_srcdir" && tar --null -T - -cf -) | tar -xf - -C "$src" || return 1
        dvm_log "dpkg-buildpackage -b -us -uc in $src (log: $dir/build.log)"
        t0=$(date +%s)
        if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc) >"$dir/build.log" 2>&1; then
                tail -n 40 "$dir/build.log" >&2
                dvm_log "dpkg-buildpackage failed"
                return 1
        fi
        echo "# figure debvm-deb-build $(($(date +%s) - t0)) s"
        rm -rf "$src"
        DVM_DEB=$(ls -1 "$dir"/ade_*_amd64.deb | head -n1)
        [ -f "$DVM_DEB" ]
}

# dvm_start_emulator [OVERLAY_JSON]: the emulator on the host's loopback (daemon-lib's start_emulator).
dvm_start_emulator() {
        start_emulator "$@"
        EMU_CA=$WORK/emu/ca.pem
}

dvm_free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dvm_qmp() {
        local vm=$1
        shift
        python3 "$dvm_top/tests/vm/debian-qmp.py" "$DVM_RUN/$vm.qmp" "$@"
}

# dvm_boot VM [IMAGE:SERIAL ...]: QEMU on VM's overlay (created from the cached image on first use),
# the OS disk with serial "root", the extra disks in order with their serials (read-only with ":ro"
# after the serial), ssh forwarded from a free port on 127.0.0.1, the emulator's IMDS at
# 169.254.169.254:80 when it runs, the apt repository when served, QMP on a socket,
# the serial console appended to $DVM_RUN/VM.console. A later dvm_boot VM (after dvm_kill) boots
# the same overlay with the same disks. Returns once QEMU answers on QMP.
dvm_boot() {
        local vm=$1 overlay args spec img serial ro n=0 try
        shift
        overlay=$DVM_RUN/$vm.qcow2
        if [ ! -f "$overlay" ]; then
                qemu-img create -q -f qcow2 -b "$DVM_IMAGE" -F raw "$overlay" || return 1
                dvm_disks[$vm]="$*"
        fi
        [ -z "${dvm_pid[$vm]:-}" ] || { dvm_log "$vm is running already"; return 1; }
        args=(-accel tcg -cpu max -m "${ADE_VM_MEMORY:-1024}" -smp "${ADE_VM_SMP:-1}"
                -nodefaults -no-user-config -display none -name "ade-debvm-$vm"
                -drive "file=$overlay,format=qcow2,if=none,id=os,cache=unsafe"
                -device virtio-blk-pci,drive=os,serial=root,bootindex=0
                -device virtio-rng-pci
                -chardev "file,id=console,path=$DVM_RUN/$vm.console,append=on" -serial chardev:console
                -qmp "unix:$DVM_RUN/$vm.qmp,server=on,wait=off")
        for spec in ${dvm_disks[$vm]}; do
                img=${spec%%:*}
                serial=${spec#*:}
                ro=
                case $serial in *:ro) serial=${serial%:ro} ro=,readonly=on ;; esac
                args+=(-drive "file=$img,format=raw,if=none,id=d$n,cache=unsafe$ro"
                        -device "virtio-blk-pci,drive=d$n,serial=$serial")
                n=$((n + 1))
        done
        # Two user networks, both restricted: no packet from the guest leaves this machine; the
        # guest reaches only what a forwarding rule names. The first (10.0.2.0/24, DHCP): ssh from
        # the host, the emulator's HTTPS port as $dvm_emulator_ip:443, and dvm_apt_repo's server as
        # $dvm_apt_ip:80. The second
        # (169.254.169.0/24, a static address in the image): the emulator's IMDS as
        # 169.254.169.254:80, Azure's own address (a rule's address must be inside its network).
        # socat connects each guest connection to the host's loopback.
        local lan imds
        for try in 1 2 3; do
                dvm_port[$vm]=$(dvm_free_port) || return 1
                lan="user,id=lan,mac=52:54:00:12:34:56,model=virtio-net-pci,restrict=on"
                lan+=",hostfwd=tcp:127.0.0.1:${dvm_port[$vm]}-:22"
                [ -z "${HTTPS_PORT:-}" ] ||
                        lan+=",guestfwd=tcp:$dvm_emulator_ip:443-cmd:socat - TCP:127.0.0.1:$HTTPS_PORT"
                [ -z "${dvm_apt_port:-}" ] ||
                        lan+=",guestfwd=tcp:$dvm_apt_ip:80-cmd:socat - TCP:127.0.0.1:$dvm_apt_port"
                imds="user,id=imds,mac=52:54:00:a9:fe:fe,model=virtio-net-pci,restrict=on,net=169.254.169.0/24"
                [ -z "${HTTP_PORT:-}" ] ||
                        imds+=",guestfwd=tcp:169.254.169.254:80-cmd:socat - TCP:127.0.0.1:$HTTP_PORT"
                rm -f "$DVM_RUN/$vm.qmp"
                qemu-system-x86_64 "${args[@]}" -nic "$lan" -nic "$imds" </dev/null >>"$DVM_RUN/$vm.qemu.log" 2>&1 &
                dvm_pid[$vm]=$!
                dvm_booted[$vm]=$(date +%s.%N)
                local i
                for i in $(seq 1 100); do
                        if ! kill -0 "${dvm_pid[$vm]}" 2>/dev/null; then
                                break
                        fi
                        [ -S "$DVM_RUN/$vm.qmp" ] && dvm_qmp "$vm" query-status >/dev/null 2>&1 && return 0
                        sleep 0.1
                done
                dvm_stop_qemu "$vm"
                # Another process may have taken the port between the probe and QEMU's bind: retry.
                grep -q 'host forwarding' "$DVM_RUN/$vm.qemu.log" || break
        done
        dvm_log "QEMU did not start for $vm:"
        cat "$DVM_RUN/$vm.qemu.log" >&2
        return 1
}

dvm_ssh() {
        local vm=$1
        shift
        ssh "${dvm_ssh_opts[@]}" -i "$DVM_SSH_KEY" -p "${dvm_port[$vm]}" root@127.0.0.1 -- "$@"
}

# dvm_wait_boot VM [STATE]: waits for sshd, then for "systemctl is-system-running --wait"; 0 when
# the system is STATE ("running" unless told, e.g. "degraded" for a boot where units are meant to
# fail), 1 with the failed units (or the console's tail) otherwise. DVM_BOOT_SECONDS: from QEMU's
# start (or the reboot's request) to the end of the boot.
dvm_wait_boot() {
        local vm=$1 want=${2:-running} deadline state
        deadline=$(($(date +%s) + ${ADE_VM_TIMEOUT:-600}))
        until timeout 60 ssh "${dvm_ssh_opts[@]}" -o ConnectTimeout=20 -i "$DVM_SSH_KEY" -p "${dvm_port[$vm]}" \
                root@127.0.0.1 true 2>/dev/null; do
                if ! kill -0 "${dvm_pid[$vm]}" 2>/dev/null; then
                        dvm_log "$vm: QEMU exited during the boot; console tail:"
                        tail -n 40 "$DVM_RUN/$vm.console" >&2
                        return 1
                fi
                if [ "$(date +%s)" -ge "$deadline" ]; then
                        dvm_log "$vm: no ssh within ${ADE_VM_TIMEOUT:-600} s (ADE_VM_TIMEOUT); console tail:"
                        tail -n 40 "$DVM_RUN/$vm.console" >&2
                        return 1
                fi
                sleep 2
        done
        # sshd answers before the boot is done; ssh itself may time out on a loaded host: retry.
        until state=$(dvm_ssh "$vm" "timeout $((deadline - $(date +%s))) systemctl is-system-running --wait");
                [ -n "$state" ] || [ "$(date +%s)" -ge "$deadline" ]; do
                sleep 2
        done
        DVM_BOOT_SECONDS=$(awk -v a="${dvm_booted[$vm]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
        if [ "$state" != "$want" ]; then
                dvm_log "$vm: the system is '$state' after its boot, not '$want':"
                dvm_ssh "$vm" 'systemctl --failed --no-pager; journalctl -b -p err --no-pager | tail -n 30' >&2
                return 1
        fi
        dvm_log "$vm: booted in ${DVM_BOOT_SECONDS} s ($(dvm_ssh "$vm" 'systemd-analyze time | head -n1'))"
}

dvm_copy_in() {
        dvm_ssh "$1" "cat >$(printf %q "$3")" <"$2"
}

dvm_copy_out() {
        dvm_ssh "$1" "cat $(printf %q "$2")" >"$3"
}

# The names of the emulator's certificate (tests/emulator/README.md) that the guest uses, and the
# address they have in the guest's /etc/hosts: the emulator's HTTPS port, forwarded as port 443, so
# that the guest's URLs are Azure's own (https://contoso.vault.azure.net, no port).
dvm_emulator_names=(contoso.vault.azure.net management.azure.com login.microsoftonline.com login.windows.net)
dvm_emulator_ip=10.0.2.100

# dvm_trust_script: a shell script (sh -e) that trusts the emulator's CA in a guest and names the
# emulator's hosts in its /etc/hosts; run again, it changes nothing. The CA goes where
# update-ca-certificates would put one local certificate (/usr/local/share/ca-certificates, its
# link and hash link in /etc/ssl/certs, the bundle), so a later update-ca-certificates keeps it;
# running that here would rehash every certificate with openssl, which takes minutes under TCG.
dvm_trust_script() {
        echo 'mkdir -p /usr/local/share/ca-certificates'
        echo "cat >/usr/local/share/ca-certificates/ade-emulator.crt <<'ADE_EMULATOR_CA'"
        cat "$EMU_CA"
        echo 'ADE_EMULATOR_CA'
        echo 'cd /etc/ssl/certs'
        echo 'ln -sf /usr/local/share/ca-certificates/ade-emulator.crt ade-emulator.pem'
        echo 'ln -sf ade-emulator.pem "$(openssl x509 -hash -noout -in ade-emulator.pem)".0'
        echo 'grep -qxF "$(sed -n 2p ade-emulator.pem)" ca-certificates.crt || cat ade-emulator.pem >>ca-certificates.crt'
        echo "sed -i '/# ade-emulator\$/d' /etc/hosts"
        echo "echo '$dvm_emulator_ip ${dvm_emulator_names[*]} # ade-emulator' >>/etc/hosts"
}

# dvm_trust_emulator VM: dvm_trust_script, run over ssh.
dvm_trust_emulator() {
        dvm_trust_script | dvm_ssh "$1" 'sh -e'
}

# dvm_require_seed: exit 77 unless this machine can make a NoCloud seed and a signed apt repository.
dvm_require_seed() {
        local t
        for t in genisoimage apt-ftparchive gpg gpgconf gzip; do
                command -v "$t" >/dev/null || skip "$t is missing (tools/setup-deps.sh installs it)"
        done
}

# The guest's address of the apt repository's server (a forwarding rule to the host's loopback).
dvm_apt_ip=10.0.2.101
dvm_apt_port=
dvm_apt_pid=

# dvm_apt_repo DEB: an apt repository "bookworm main" holding DEB, its InRelease signed with a key
# made for this run (ed25519, in $DVM_RUN/gnupg), served over HTTP on the host's loopback by
# python's http.server and reached by the guests booted afterwards as http://$dvm_apt_ip/ade
# (DVM_APT_URL). DVM_APT_KEY: the armored public key. The server's log: $DVM_RUN/apt-http.log.
dvm_apt_repo() {
        local deb=$1 repo=$DVM_RUN/apt/ade fpr i
        local dist=$repo/dists/bookworm
        mkdir -p "$repo/pool/main" "$dist/main/binary-amd64" || return 1
        cp "$deb" "$repo/pool/main/" || return 1
        (cd "$repo" && apt-ftparchive packages pool/main) >"$dist/main/binary-amd64/Packages" || return 1
        gzip -9nk "$dist/main/binary-amd64/Packages" || return 1
        apt-ftparchive -o APT::FTPArchive::Release::Origin=ade-test -o APT::FTPArchive::Release::Suite=bookworm \
                -o APT::FTPArchive::Release::Codename=bookworm -o APT::FTPArchive::Release::Architectures=amd64 \
                -o APT::FTPArchive::Release::Components=main release "$dist" >"$DVM_RUN/apt/Release" || return 1
        mv "$DVM_RUN/apt/Release" "$dist/Release"
        mkdir -m 0700 "$DVM_RUN/gnupg" || return 1
        export GNUPGHOME=$DVM_RUN/gnupg
        gpg -q --batch --passphrase '' --quick-gen-key 'ade test repository <ade-test@localhost>' ed25519 sign never ||
                return 1
        fpr=$(gpg -q --batch --with-colons --list-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')
        gpg -q --batch --yes --local-user "$fpr" --clearsign -o "$dist/InRelease" "$dist/Release" || return 1
        DVM_APT_KEY=$DVM_RUN/apt-key.asc
        gpg --batch --armor --export "$fpr" >"$DVM_APT_KEY" || return 1
        unset GNUPGHOME
        dvm_apt_port=$(dvm_free_port) || return 1
        python3 -m http.server --bind 127.0.0.1 --directory "$DVM_RUN/apt" "$dvm_apt_port" \
                >"$DVM_RUN/apt-http.log" 2>&1 </dev/null &
        dvm_apt_pid=$!
        for i in $(seq 1 100); do
                curl -sf "http://127.0.0.1:$dvm_apt_port/ade/dists/bookworm/InRelease" >/dev/null && break
                kill -0 "$dvm_apt_pid" 2>/dev/null || { cat "$DVM_RUN/apt-http.log" >&2; return 1; }
                sleep 0.1
        done
        DVM_APT_URL=http://$dvm_apt_ip/ade
}

# dvm_nocloud_seed ISO DIR: cloud-init's NoCloud seed, an iso9660 image labelled cidata holding
# DIR's user-data, meta-data and vendor-data (those present). dvm_boot attaches it as a disk:
# virtio_blk is in the image's first initrd, so the disk is there when cloud-init's generator looks.
dvm_nocloud_seed() {
        local iso=$1 dir=$2 f files=()
        for f in user-data meta-data vendor-data; do
                [ ! -f "$dir/$f" ] || files+=("$dir/$f")
        done
        genisoimage -quiet -output "$iso" -volid cidata -joliet -rock "${files[@]}"
}

dvm_install_deb() {
        local vm=$1 name
        name=$(basename "$DVM_DEB")
        dvm_copy_in "$vm" "$DVM_DEB" "/root/$name" || return 1
        dvm_ssh "$vm" "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/$name" </dev/null
}

dvm_boot_id() {
        dvm_ssh "$1" 'cat /proc/sys/kernel/random/boot_id' 2>/dev/null
}

# dvm_reboot VM [STATE]: "systemctl reboot" in the guest (QEMU resets the machine, same process,
# same overlay), then waits for a new boot id and the end of the boot (dvm_wait_boot VM STATE).
dvm_reboot() {
        local vm=$1 want=${2:-running} old new deadline
        old=$(dvm_boot_id "$vm") || { dvm_log "$vm does not answer"; return 1; }
        dvm_booted[$vm]=$(date +%s.%N)
        dvm_ssh "$vm" 'systemctl reboot' 2>/dev/null
        deadline=$(($(date +%s) + ${ADE_VM_TIMEOUT:-600}))
        while :; do
                new=$(timeout 60 ssh "${dvm_ssh_opts[@]}" -o ConnectTimeout=20 -i "$DVM_SSH_KEY" -p "${dvm_port[$vm]}" \
                        root@127.0.0.1 cat /proc/sys/kernel/random/boot_id 2>/dev/null)
                [ -n "$new" ] && [ "$new" != "$old" ] && break
                kill -0 "${dvm_pid[$vm]}" 2>/dev/null || { dvm_log "$vm: QEMU exited during the reboot"; return 1; }
                [ "$(date +%s)" -lt "$deadline" ] || { dvm_log "$vm: did not come back from the reboot"; return 1; }
                sleep 2
        done
        dvm_wait_boot "$vm" "$want"
}

dvm_kill() {
        dvm_stop_qemu "$1"
}

dvm_poweroff() {
        local vm=$1 i
        dvm_ssh "$vm" 'systemctl poweroff' 2>/dev/null
        for i in $(seq 1 300); do
                kill -0 "${dvm_pid[$vm]}" 2>/dev/null || break
                sleep 1
        done
        kill -0 "${dvm_pid[$vm]}" 2>/dev/null && { dvm_log "$vm did not power off"; dvm_stop_qemu "$vm"; return 1; }
        wait "${dvm_pid[$vm]}" 2>/dev/null
        dvm_pid[$vm]=
}

# dvm_disk_add VM ID IMAGE SERIAL: a raw image hot-plugged as a virtio disk (QMP blockdev-add and
# device_add); the guest's udev gives it its /dev/disk/azure/scsi1/lun<N> link from SERIAL.
dvm_disk_add() {
        local vm=$1 id=$2 img=$3 serial=$4
        dvm_qmp "$vm" blockdev-add "{\"driver\": \"raw\", \"node-name\": \"$id\", \"cache\": {\"no-flush\": true},
                \"file\": {\"driver\": \"file\", \"filename\": \"$img\"}}" >/dev/null &&
                dvm_qmp "$vm" device_add "{\"driver\": \"virtio-blk-pci\", \"id\": \"$id\", \"drive\": \"$id\",
                        \"serial\": \"$serial\"}" >/dev/null
}

# dvm_disk_remove VM ID: device_del, waits until the guest has let the device go, then blockdev-del.
dvm_disk_remove() {
        local vm=$1 id=$2
        dvm_qmp "$vm" device_del "{\"id\": \"$id\"}" --wait-event "DEVICE_DELETED:$id" --timeout 120 >/dev/null &&
                dvm_qmp "$vm" blockdev-del "{\"node-name\": \"$id\"}" >/dev/null
}

# dvm_collect VM: the guest's journal (all boots) into $DVM_RUN/VM.journal when it still answers,
# and the tails of the journal and the console on stderr.
dvm_collect() {
        local vm=$1
        if [ -n "${dvm_pid[$vm]:-}" ] && kill -0 "${dvm_pid[$vm]}" 2>/dev/null; then
                timeout 60 ssh "${dvm_ssh_opts[@]}" -i "$DVM_SSH_KEY" -p "${dvm_port[$vm]}" root@127.0.0.1 \
                        journalctl --no-pager -o short-precise >"$DVM_RUN/$vm.journal" 2>&1
                echo "--- $vm: journal (tail)" >&2
                tail -n 60 "$DVM_RUN/$vm.journal" >&2
        fi
        echo "--- $vm: console (tail)" >&2
        tail -n 30 "$DVM_RUN/$vm.console" >&2 2>/dev/null
}

# Checks, counted like the other VM tests' so that tests/summarize.sh adds them up one by one:
# "ok N - what" / "not ok N - what" with the command's output, and a Check-style line at the end.
dvm_checks=0
dvm_failures=0

# dvm_check WHAT COMMAND...: passes when COMMAND succeeds.
dvm_check() {
        local what=$1 log rc
        shift
        log=$(mktemp "$DVM_RUN/check.XXXXXX")
        "$@" >"$log" 2>&1
        rc=$?
        dvm_checks=$((dvm_checks + 1))
        if [ $rc -eq 0 ]; then
                echo "ok $dvm_checks - $what"
        else
                dvm_failures=$((dvm_failures + 1))
                DVM_FAILED=1
                echo "not ok $dvm_checks - $what"
                sed 's/^/#   /' "$log"
        fi
        rm -f "$log"
        return $rc
}

# dvm_require_check WHAT COMMAND...: a check the rest depends on; the test ends when it fails.
dvm_require_check() {
        dvm_check "$@" && return 0
        echo "# stopping: the checks after this one depend on it"
        dvm_finish
}

# dvm_finish: the summary line, and the exit (0 when every check passed).
dvm_finish() {
        local pct=100
        [ "$dvm_checks" -eq 0 ] || pct=$(((dvm_checks - dvm_failures) * 100 / dvm_checks))
        echo "$pct%: Checks: $dvm_checks, Failures: $dvm_failures, Errors: 0"
        [ "$dvm_failures" -eq 0 ] || exit 1
        exit 0
}
