#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# ade provisioned by cloud-init on a real Debian 12 guest (systemd as PID 1, booted by grub; see
# tests/vm/README.md, "The Debian guest"), and the same guest's life afterwards.
#
# First boot: a NoCloud seed holds the repository's example cloud-config, docs/cloud-init/ade.yaml,
# with only its <...> placeholders replaced by this test's values (the emulator's vault, KEK and
# resource ids; an apt repository served by the test and signed with a key made for the run). The
# seed's vendor-data is the test's machine, not ade's: it trusts the emulator's CA and names (the
# example's ade.conf has no ca-file: the system's trust store) and mounts two data disks through
# /etc/fstab (ext4 and XFS, made on the host with files). cloud-init installs the .deb of the tree
# under test from that repository, writes ade.conf, and its runcmd "adectl enable --volume-type
# DATA --no-wait" has the installed aded.service (started by its socket, in pid 1's mount
# namespace) encrypt both MOUNTED disks: both Encrypted, mounted from /dev/mapper for the system,
# every file intact, no error from aded in the journal.
#
# Then: crypttab and fstab name both volumes; a third disk with files, hot-plugged through QEMU's
# monitor, is encrypted by aded itself (the machine is enrolled). A reboot with Key Vault
# unreachable reaches multi-user.target degraded, the three volumes locked, their
# systemd-cryptsetup units failed, and adectl show says for each why; once Key Vault answers,
# adectl unlock opens them through those units and mounts them. A disable puts lun0's lines back,
# and the last reboot has systemd-cryptsetup open the other two through aded's key socket and mount
# lun1 where it was before multi-user.target, with lun0 mounted as plaintext. Then a volume laid out
# as Azure Disk Encryption lays one out (a LUKS1 disk keyed by a file on a "BEK VOLUME" disk, ADE's
# crypttab and fstab lines, its secret escrowed with ADE's tags) is taken over by "adectl adopt";
# the BEK VOLUME is removed and a reboot opens the volume through aded's key socket and mounts it.
# Neither a key file nor an escrowed secret's value is in the journal of any boot.
#
# A unit option that gives aded a mount namespace of its own (ProtectSystem=, ProtectHome=,
# PrivateTmp=, ProtectKernelLogs=, ProtectControlGroups=, ...) makes the online enable unmount the
# disks only in aded's copy of the mount table: the filesystems stay mounted for the system, e2fsck
# runs on a mounted ext4 and XFS is busy. This test fails on such a unit.
#
# Skips (77) without root, qemu, mmdebstrap, dpkg-buildpackage and the build dependencies, the
# built emulator, genisoimage, apt-ftparchive, gpg, or with ADE_HEAVY_TESTS=no.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$top_srcdir/tests/vm/debian-lib.sh"
dvm_require
dvm_require_deb
dvm_require_seed
dvm_new_run
t_start=$(date +%s)
dvm_image || fail "the Debian image could not be built"
dvm_build_deb || fail "dpkg-buildpackage failed on the tree under test"

# Sample files for the data disks (the same tree on each) and their checksums.
tree=$DVM_RUN/tree
mkdir -p "$tree/big" "$tree/small/a"
for i in 1 2 3 4 5 6; do head -c $((i * 1024 * 1024 + i * 777)) /dev/urandom >"$tree/big/f$i"; done
for i in $(seq 1 60); do head -c $((i * 97 + 1)) /dev/urandom >"$tree/small/a/s$i"; done
echo "hello from the data disk" >"$tree/hello.txt"
(cd "$tree" && find . -type f -printf '%P\0' | sort -z | xargs -0 sha256sum) >"$DVM_RUN/manifest"
truncate -s 256M "$DVM_RUN/lun0.img"
mkfs.ext4 -q -F -L data0 -d "$tree" "$DVM_RUN/lun0.img" || fail "mkfs.ext4 failed"
# XFS gets the files from a prototype file (mkfs.xfs(8) -p): the disks are ready before the first
# boot, as a VM's data disks are when cloud-init runs.
xfs_proto() {
        local e
        for e in "$1"/*; do
                if [ -d "$e" ]; then
                        echo "${e##*/} d--755 0 0"
                        xfs_proto "$e"
                        echo '$'
                else
                        echo "${e##*/} ---644 0 0 $e"
                fi
        done
}
{ echo /dev/null; echo '0 0'; echo 'd--755 0 0'; xfs_proto "$tree"; echo '$'; } >"$DVM_RUN/lun1.proto"
truncate -s 320M "$DVM_RUN/lun1.img"
dvm_require_check "the XFS disk is made with the files (mkfs.xfs -p)" \
        mkfs.xfs -q -L data1 -p "$DVM_RUN/lun1.proto" "$DVM_RUN/lun1.img"
# The disk attached later, while the guest runs.
truncate -s 256M "$DVM_RUN/lun2.img"
mkfs.ext4 -q -F -L data2 -d "$tree" "$DVM_RUN/lun2.img" || fail "mkfs.ext4 failed"

dvm_start_emulator
dvm_apt_repo "$DVM_DEB" || fail "cannot make or serve the apt repository"
kek_version=$(emulator_state | jq -r '.keys[] | select(.name == "kek") | .version')
[ -n "$kek_version" ] || fail "the emulator has no key named kek"

# The seed. user-data: the example, with its placeholders replaced and nothing else changed (a
# placeholder left, or one of these missing from the example, fails the test).
seed=$DVM_RUN/seed
mkdir -p "$seed"
KEK_VERSION=$kek_version APT_URL=$DVM_APT_URL python3 - "$top_srcdir/docs/cloud-init/ade.yaml" "$DVM_APT_KEY" \
        >"$seed/user-data" <<'EOF' || fail "cannot fill in docs/cloud-init/ade.yaml"
import os, re, sys
text = open(sys.argv[1]).read()
key = open(sys.argv[2]).read().rstrip("\n")
values = {
    "<https://packages.example.com/ade>": os.environ["APT_URL"],
    "<vault>": "contoso",
    "<subscription>": "0a1b2c3d-0000-4000-8000-000000000001",
    "<group>": "ade-rg",
    "<kek>": "kek",
    "<version>": os.environ["KEK_VERSION"],
}
for k, v in values.items():
    if k not in text:
        sys.exit("the example has no placeholder %s" % k)
    text = text.replace(k, v)
# The signing key's placeholder is a line of its own in a block scalar: the armored key goes there.
text, n = re.subn(r"^( *)<[^>\n]*SIGNING KEY[^>\n]*>$",
                  lambda m: "\n".join(m.group(1) + l if l else l for l in key.split("\n")), text, flags=re.M)
if n != 1:
    sys.exit("the example has no signing key placeholder")
left = [l for l in text.split("\n") if not re.match(r"\s*#", l) and re.search(r"<[^<>\s][^<>]*>", l)]
if left:
    sys.exit("placeholders left in the example: %s" % left)
sys.stdout.write(text)
EOF
cat >"$seed/meta-data" <<EOF
instance-id: ade-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
local-hostname: ade-guest
EOF
# vendor-data (below user-data; keys the example does not set): at every boot before the example's
# modules run, the emulator's CA and names, and the data disks in /etc/fstab, mounted.
{
        echo '#cloud-config'
        echo 'bootcmd:'
        echo '  - |'
        echo '    set -e'
        dvm_trust_script | sed 's/^/    /'
        cat <<'EOF'
    mkdir -p /data0 /data1
    grep -q ' /data0 ' /etc/fstab || echo '/dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2' >>/etc/fstab
    grep -q ' /data1 ' /etc/fstab || echo '/dev/disk/azure/scsi1/lun1 /data1 xfs defaults,nofail 0 2' >>/etc/fstab
    udevadm settle
    systemctl daemon-reload
    mount -a
EOF
} >"$seed/vendor-data"
dvm_nocloud_seed "$DVM_RUN/seed.iso" "$seed" || fail "genisoimage failed"

dvm_boot g "$DVM_RUN/lun0.img:lun0" "$DVM_RUN/lun1.img:lun1" "$DVM_RUN/seed.iso:cidata:ro" || fail "QEMU did not start"
dvm_require_check "the guest's first boot, with the NoCloud seed, ends with a running system" dvm_wait_boot g
echo "# figure debvm-first-boot-cloud-init $DVM_BOOT_SECONDS s"
dvm_ssh g 'systemd-analyze time | head -n1; systemd-analyze blame | head -n 8'
dvm_check "cloud-init ran from the NoCloud seed and is done without errors" dvm_ssh g \
        'cloud-init status --long; cloud-init status --long | grep -qx "status: done" &&
         cloud-init status --long | grep -q "DataSourceNoCloud" &&
         python3 -c "import json, sys; r = json.load(open(\"/run/cloud-init/result.json\"))[\"v1\"]; print(r); sys.exit(bool(r[\"errors\"]))"'
dvm_check "the seed's user-data is the cloud-config cloud-init used, and valid (cloud-init schema --system)" dvm_ssh g \
        'cloud-init schema --system'
dvm_copy_in g "$top_srcdir/docs/cloud-init/ade.yaml" /root/ade-cloud-config.yaml
dvm_check "the cloud-init example is valid for the guest's cloud-init (cloud-init schema)" dvm_ssh g \
        'cloud-init schema --config-file /root/ade-cloud-config.yaml'

dvm_check "udev gives the OS and data disks their Azure-style links" dvm_ssh g \
        'test -b /dev/disk/azure/root && test -b /dev/disk/azure/root-part3 &&
         test "$(readlink -f /dev/disk/azure/scsi1/lun0)" = /dev/vdb &&
         test "$(readlink -f /dev/disk/azure/scsi1/lun1)" = /dev/vdc'
dvm_copy_in g "$DVM_RUN/manifest" /root/manifest
dvm_check "both data disks were mounted through /etc/fstab" dvm_ssh g \
        'cat /etc/fstab; f=$(cat /etc/fstab /etc/fstab.ade-* 2>/dev/null);
         echo "$f" | grep -qx "/dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" &&
         echo "$f" | grep -qx "/dev/disk/azure/scsi1/lun1 /data1 xfs defaults,nofail 0 2" &&
         findmnt -n -o SOURCE,FSTYPE /data0 && findmnt -n -o SOURCE,FSTYPE /data1'
dvm_check "every file reads back on both disks at the first boot" dvm_ssh g \
        'cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest'

# encrypted REGEX N: whether adectl show (read on the host: the guest has no jq) says the N volumes
# whose device matches REGEX are Encrypted.
encrypted() {
        dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-wait.json" 2>&1 &&
                jq -e --arg re "$1" --argjson n "$2" \
                        '[.volumes[] | select(.device | test($re)) | select(.state == "Encrypted")] | length == $n' \
                        "$DVM_RUN/show-wait.json" >/dev/null
}
wait_encrypted() {
        for _ in $(seq 1 600); do encrypted "$@" && return 0; sleep 2; done
        cat "$DVM_RUN/show-wait.json"
        dvm_ssh g 'journalctl -q --no-pager -u aded.service | tail -n 20'
        return 1
}
dvm_check "the example's runcmd (adectl enable --volume-type DATA --no-wait) encrypts both mounted disks" \
        wait_encrypted 'lun[01]$|/dev/vd[bc]$' 2
echo "# figure debvm-boot-to-both-encrypted $(awk -v a="${dvm_booted[g]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
dvm_check "cloud-init installed $(basename "$DVM_DEB") from the test's signed apt repository" dvm_ssh g \
        "test \"\$(dpkg-query -W -f '\${Version}' ade)\" = '$(dpkg-deb -f "$DVM_DEB" Version)' &&
         cat /etc/apt/sources.list.d/ade.list &&
         kf=\$(sed -n 's|^deb \\[signed-by=\\(/etc/apt/cloud-init.gpg.d/[^]]*\\)\\] $DVM_APT_URL bookworm main\$|\\1|p' /etc/apt/sources.list.d/ade.list) &&
         test -s \"\$kf\" && apt-cache policy ade | grep -F '$DVM_APT_URL bookworm/main amd64'"
dvm_check "the package came through the forwarding rule (the repository's server log)" \
        grep -q "GET /ade/pool/main/$(basename "$DVM_DEB") HTTP/1.1\" 200" "$DVM_RUN/apt-http.log"
dvm_check "aded.socket and aded.service are enabled" dvm_ssh g \
        'test "$(systemctl is-enabled aded.socket)" = enabled && test "$(systemctl is-enabled aded.service)" = enabled'
dvm_check "aded.socket listens; the installation did not start aded.service (its one start came after ade.conf)" dvm_ssh g \
        'systemctl is-active aded.socket && test -S /run/ade/io.ade.DiskEncryption &&
         first=$(journalctl -q --no-pager -o short-unix -u aded.service | grep -m1 " Started aded.service" | cut -d" " -f1) &&
         conf=$(stat -c %Y /etc/ade/ade.conf) && echo "aded.service first started at $first, ade.conf written at $conf" &&
         awk -v a="$first" -v c="$conf" "BEGIN { exit !(a >= c) }"'
# aded.service has started: RuntimeDirectory= in its unit gave /run/ade and the socket to root:root.
dvm_check "the group ade exists (sysusers) and owns /run/ade (tmpfiles) and the varlink socket, aded running" dvm_ssh g \
        'getent group ade && ls -ld /run/ade /run/ade/io.ade.DiskEncryption && systemctl is-active aded.service &&
         test "$(stat -c %G /run/ade)" = ade && test "$(stat -c %G /run/ade/io.ade.DiskEncryption)" = ade'
dvm_check "cloud-init wrote ade.conf as the example says (root:root, 0644)" dvm_ssh g \
        'cat /etc/ade/ade.conf; test "$(stat -c %U:%G:%a /etc/ade/ade.conf)" = root:root:644 &&
         python3 -c "import sys, yaml
d = yaml.safe_load(open(\"/var/lib/cloud/instance/user-data.txt\"))
want = [f[\"content\"] for f in d[\"write_files\"] if f[\"path\"] == \"/etc/ade/ade.conf\"]
sys.exit(want != [open(\"/etc/ade/ade.conf\").read()])" &&
         grep -qx "url = https://contoso.vault.azure.net" /etc/ade/ade.conf'
dvm_check "aded --check-config accepts the configuration" dvm_ssh g 'aded --check-config'
dvm_require_check "adectl show answers: aded started by aded.socket" dvm_ssh g \
        'adectl show && systemctl is-active aded.service &&
         systemctl show -p TriggeredBy --value aded.service | grep -qw aded.socket'
dvm_check "aded lives in pid 1's mount namespace" dvm_ssh g \
        'pid=$(systemctl show -p MainPID --value aded.service); echo "pid 1: $(readlink /proc/1/ns/mnt), aded ($pid): $(readlink /proc/$pid/ns/mnt)";
         test "$(readlink /proc/1/ns/mnt)" = "$(readlink /proc/$pid/ns/mnt)"'

dvm_check "aded ran the enable that cloud-init's runcmd asked for" dvm_ssh g \
        'tr -d "\"\047" </var/lib/cloud/instance/scripts/runcmd | grep -F "adectl enable --volume-type DATA --no-wait --skip-snapshot-check" &&
         journalctl -q --no-pager -u aded.service | grep "started encryption job on /dev/vd[bc]$"'
dvm_check "journalctl ADE_VOLUME=<disk> ADE_JOB=encrypt: each disk's history, from start to end" dvm_ssh g \
        'for d in $(journalctl -q --no-pager -u aded.service | sed -n "s/.*started encryption job on \(\/dev\/vd[bc]\)$/\1/p"); do
                 journalctl -q --no-pager ADE_VOLUME=$d ADE_JOB=encrypt | grep -F "started encryption job on $d" &&
                 journalctl -q --no-pager ADE_VOLUME=$d ADE_JOB=encrypt | grep -F "job on $d finished" || exit 1; done;
         test "$(journalctl -q --no-pager ADE_JOB=encrypt | grep -c "job on /dev/vd[bc] finished")" = 2'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show.json" 2>&1
dvm_check "adectl show --json: both data disks Encrypted" jq -e \
        '[.volumes[] | select(.device | test("lun[01]$|/dev/vd[bc]$")) | .state] | length == 2 and all(. == "Encrypted")' \
        "$DVM_RUN/show.json"
dvm_check "/data0 and /data1 are mounted from /dev/mapper for the system (findmnt)" dvm_ssh g \
        'findmnt -n -o SOURCE,FSTYPE /data0; findmnt -n -o SOURCE,FSTYPE /data1;
         findmnt -n -o SOURCE /data0 | grep -q "^/dev/mapper/" && findmnt -n -o SOURCE /data1 | grep -q "^/dev/mapper/"'
dvm_check "the data disks carry LUKS2 (stock cryptsetup)" dvm_ssh g \
        'cryptsetup isLuks --type luks2 /dev/disk/azure/scsi1/lun0 &&
         ls /var/lib/ade/headers/* >/dev/null && dmsetup table --target crypt | grep -c crypt | grep -qx 2'
dvm_check "every file is intact on both disks after the encryption" dvm_ssh g \
        'cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest'
dvm_check "the journal has no error from aded" dvm_ssh g \
        'out=$(journalctl -q --no-pager -p err -u aded.service -u aded.socket; journalctl -q --no-pager -p err _COMM=aded);
         [ -z "$out" ] || { echo "$out"; false; }'
# cloud-init has done its work (per instance); the next boots are ade's, and cloud-init's four
# stages would add minutes to each of them under TCG.
dvm_check "cloud-init is turned off for the next boots" dvm_ssh g 'touch /etc/cloud/cloud-init.disabled'

# ---- the same guest's next boots: crypttab, fstab and the key socket (docs/architecture.md §9) ----
# The mapping names, from the LUKS UUID of each header: lun0's is on the disk (ext4: shrunk, header
# in front), lun1's is the detached file its crypttab line names (XFS cannot shrink).
cat >"$DVM_RUN/boot-lib.sh" <<'EOF2'
lun0=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun0 2>/dev/null)
h1=$(sed -n 's|^ade-[^ ]* /dev/disk/azure/scsi1/lun1 .*header=\([^,]*\).*|\1|p' /etc/crypttab)
lun1=ade-$(cryptsetup luksUUID "$h1" 2>/dev/null)
EOF2
dvm_copy_in g "$DVM_RUN/boot-lib.sh" /root/boot-lib.sh
dvm_check "online enable names both mappings ade-<LUKS UUID>" dvm_ssh g \
        '. /root/boot-lib.sh; echo "$lun0 $lun1"; test "$lun0" != ade- && test "$lun1" != ade- &&
         test -b "/dev/mapper/$lun0" && test -b "/dev/mapper/$lun1"'
# The key files as systemd-cryptsetup gets them from aded's key socket (a client bound to an
# abstract name ".../cryptsetup/<volume>"), for the journal's check at the end.
cat >"$DVM_RUN/get-key.py" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0%s/cryptsetup/%s" % (os.urandom(8).hex(), sys.argv[1]))
s.connect("/run/ade/key.socket")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.write(data.decode() + "\n")
EOF
dvm_copy_in g "$DVM_RUN/get-key.py" /root/get-key.py
# key_files VARIABLE...: the key files of the mappings boot-lib.sh names, one a line (172 characters).
key_files() {
        local v
        for v in "$@"; do
                dvm_ssh g ". /root/boot-lib.sh; python3 /root/get-key.py \"\$$v\"" >>"$DVM_RUN/key-files" || return 1
        done
        awk 'length($0) != 172 { exit 1 }' "$DVM_RUN/key-files"
}
dvm_check "aded's key socket gives root the key files of lun0 and lun1" key_files lun0 lun1

dvm_check "crypttab: one line per volume, keyed to the key socket (UUID=, or the stable name and header=)" dvm_ssh g \
        '. /root/boot-lib.sh; cat /etc/crypttab;
         grep -qx "$lun0 UUID=${lun0#ade-} /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1" /etc/crypttab &&
         grep -q "^$lun1 /dev/disk/azure/scsi1/lun1 /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1,header=/var/lib/ade/headers/" /etc/crypttab &&
         test "$(grep -c "^ade-" /etc/crypttab)" = 2'
dvm_check "fstab: both lines point at the mappings with _netdev,nofail; the originals kept in comments" dvm_ssh g \
        '. /root/boot-lib.sh; cat /etc/fstab;
         grep -qx "/dev/mapper/$lun0 /data0 ext4 defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 2" /etc/fstab &&
         grep -qx "/dev/mapper/$lun1 /data1 xfs defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 2" /etc/fstab &&
         grep -qx "# ade: $lun0 was: /dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" /etc/fstab &&
         ls /etc/crypttab.ade-* /etc/fstab.ade-* >/dev/null'
dvm_check "remote-cryptsetup.target is enabled (Debian 12 leaves it disabled)" dvm_ssh g \
        'test "$(systemctl is-enabled remote-cryptsetup.target)" = enabled'
dvm_check "aded-key.socket listens on /run/ade/key.socket" dvm_ssh g \
        'systemctl is-active aded-key.socket && test -S /run/ade/key.socket'

dvm_check "adectl show: the machine is enrolled for DATA with the snapshot check skipped" jq -e \
        '.enrollment | .volumeType == "Data" and .skipSnapshotCheck' "$DVM_RUN/show.json"

# A new data disk with files, hot-plugged while the guest runs: aded sees udev's event and, once
# the disks settle, encrypts it by itself with the enrollment's choices.
dvm_require_check "QEMU hot-plugs a third data disk (lun2)" dvm_disk_add g lun2 "$DVM_RUN/lun2.img" lun2
t0=$(date +%s)
# lun2 is /dev/vde: the seed is /dev/vdd.
dvm_check "aded encrypts the hot-plugged lun2 by itself (udev event, no one asking)" wait_encrypted 'lun2$|/dev/vde$' 1
echo "# figure debvm-new-disk-encrypted $(($(date +%s) - t0)) s"
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-after-pass.json" 2>&1
dvm_check "no mapping is ever taken for a volume (fstab mounts them; a pass must not nest encryption)" jq -e \
        '[.volumes[].device | select(test("^/dev/(dm-|mapper/)"))] | length == 0' "$DVM_RUN/show-after-pass.json"
dvm_check "aded started exactly three encryption jobs, on the three disks" dvm_ssh g \
        'journalctl -q --no-pager -u aded.service | grep "started encryption job on"; 
         test "$(journalctl -q --no-pager -u aded.service | grep -c "started encryption job on /dev/vd[bce]$")" = 3 &&
         ! journalctl -q --no-pager -u aded.service | grep -q "started encryption job on /dev/dm-"'
dvm_check "lun2 has its crypttab line, keyed to the key socket" dvm_ssh g \
        'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2) &&
         grep -qx "$lun2 UUID=${lun2#ade-} /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1" /etc/crypttab'

echo 'lun2=ade-$(cryptsetup luksUUID /dev/disk/azure/scsi1/lun2 2>/dev/null)' >>"$DVM_RUN/boot-lib.sh"
dvm_copy_in g "$DVM_RUN/boot-lib.sh" /root/boot-lib.sh
dvm_check "aded's key socket gives root the key file of lun2" key_files lun2

# ---- a boot with Key Vault unreachable (every Key Vault connection dropped) ----
# systemd-cryptsetup asks the key socket for each volume; aded holds each request while it retries
# Key Vault, then closes it without a key: with crypttab's nofail, headless=true and tries=1 the
# units fail and the boot goes on without the volumes (their fstab lines are nofail too). A failed
# unit makes the system "degraded", which is what a person should see. adectl show says why each
# volume is locked; once Key Vault answers, adectl unlock opens them through the same units.
emulator_fault '{"route": "keyvault", "drop": true, "count": 1000000}' || fail "cannot make Key Vault unreachable"
t0=$(date +%s)
dvm_require_check "Key Vault unreachable: the guest reboots to multi-user.target, degraded" dvm_reboot g degraded
echo "# figure debvm-reboot-keyvault-unreachable $(($(date +%s) - t0)) s"
dvm_ssh g 'systemd-analyze time | head -n1; systemctl --failed --no-legend --plain'
dvm_check "multi-user.target is active; is-system-running says degraded" dvm_ssh g \
        'systemctl is-active multi-user.target && test "$(systemctl is-system-running)" = degraded'
dvm_check "systemctl --failed lists the three volumes' systemd-cryptsetup units, nothing else" dvm_ssh g \
        '. /root/boot-lib.sh; systemctl --failed --no-legend --plain;
         want=$(for v in "$lun0" "$lun1" "$lun2"; do echo "systemd-cryptsetup@$(systemd-escape "$v").service"; done | sort) &&
         test "$(systemctl --failed --no-legend --plain | cut -d" " -f1 | sort)" = "$want"'
dvm_check "the three volumes stay locked: no mapping, /data0 and /data1 not mounted" dvm_ssh g \
        '. /root/boot-lib.sh; for v in "$lun0" "$lun1" "$lun2"; do ! test -e "/dev/mapper/$v" || exit 1; done;
         ! findmnt /data0 && ! findmnt /data1'
dvm_check "aded refused each volume's key (journal)" dvm_ssh g \
        '. /root/boot-lib.sh; for v in "$lun0" "$lun1" "$lun2"; do
                 journalctl -b -q --no-pager -u aded.service | grep -F "refused the key of $v" || exit 1; done'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-locked.json" 2>&1
dvm_ssh g 'adectl show'
dvm_check "adectl show says for each of the three why it is locked (the key socket's error)" jq -e \
        '[.volumes[] | select(.device | test("lun[012]$|/dev/vd[bce]$")) | select(.state == "Encrypted" and .unlocked == false and
          (.message | startswith("locked: the key socket could not give systemd-cryptsetup its key")))] | length == 3' \
        "$DVM_RUN/show-locked.json"
curl -sf -X DELETE "http://127.0.0.1:$HTTP_PORT/_emulator/faults" >/dev/null || fail "cannot clear the faults"
dvm_check "Key Vault answers again: adectl unlock opens the three through their units, mounts /data0 and /data1" dvm_ssh g \
        '. /root/boot-lib.sh; timeout 600 adectl unlock </dev/null &&
         for v in "$lun0" "$lun1" "$lun2"; do
                 systemctl is-active "systemd-cryptsetup@$(systemd-escape "$v").service" && test -b "/dev/mapper/$v" &&
                 journalctl -b -q --no-pager -u aded.service | grep -F "opening $v through" || exit 1
         done &&
         test "$(findmnt -n -o SOURCE /data0)" = "/dev/mapper/$lun0" && test "$(findmnt -n -o SOURCE /data1)" = "/dev/mapper/$lun1"'
dvm_check "every file is intact on the three volumes after the unlock" dvm_ssh g \
        '. /root/boot-lib.sh; cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest &&
         mkdir -p /mnt/lun2 && mount -o ro "/dev/mapper/$lun2" /mnt/lun2 &&
         (cd /mnt/lun2 && sha256sum --quiet -c /root/manifest); rc=$?; umount /mnt/lun2; exit $rc'
dvm_check "systemctl --failed lists nothing once they are unlocked" dvm_ssh g \
        'out=$(systemctl --failed --no-legend --plain); [ -z "$out" ] || { echo "$out"; false; }'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-unlocked.json" 2>&1
dvm_check "adectl show: the three Encrypted and unlocked, no message left" jq -e \
        '[.volumes[] | select(.device | test("lun[012]$|/dev/vd[bce]$")) | select(.state == "Encrypted" and .unlocked and
          ((.message // "") | startswith("locked:") | not))] | length == 3' "$DVM_RUN/show-unlocked.json"

# Disable one volume (opened through its systemd-cryptsetup unit): its crypttab line goes, its fstab
# line comes back. The next boot mounts it as plaintext and has systemd-cryptsetup open the other
# two through the key socket.
dvm_check "adectl disable of lun0 decrypts it" dvm_ssh g \
        'timeout 1200 adectl disable --volume-type DATA /dev/disk/azure/scsi1/lun0 </dev/null'
dvm_check "its crypttab line is gone and its fstab line is what it was" dvm_ssh g \
        '. /root/boot-lib.sh; cat /etc/crypttab /etc/fstab; test "$(grep -c "^ade-" /etc/crypttab)" = 2 &&
         grep -q "^$lun1 " /etc/crypttab && grep -q "^$lun2 " /etc/crypttab &&
         grep -qx "/dev/disk/azure/scsi1/lun0 /data0 ext4 defaults,nofail 0 2" /etc/fstab && ! grep -q "# ade: ade-.* was: /dev/disk/azure/scsi1/lun0 " /etc/fstab'
t0=$(date +%s)
dvm_require_check "the guest reboots again (Key Vault reachable)" dvm_reboot g
echo "# figure debvm-reboot-with-two-volumes $(($(date +%s) - t0)) s"
dvm_ssh g 'systemd-analyze time | head -n1'
dvm_check "after the reboot systemd-cryptsetup opened lun1 and lun2 through the key socket" dvm_ssh g \
        '. /root/boot-lib.sh; systemctl is-active "systemd-cryptsetup@$(systemd-escape "$lun1").service" \
                 "systemd-cryptsetup@$(systemd-escape "$lun2").service" &&
         journalctl -b -q --no-pager -u aded.service | grep -F "key socket: delivered the key of $lun1" &&
         journalctl -b -q --no-pager -u aded.service | grep -F "key socket: delivered the key of $lun2"'
dvm_check "lun1 is mounted where it was and lun0 as plaintext, both before multi-user.target" dvm_ssh g \
        '. /root/boot-lib.sh; test "$(findmnt -n -o SOURCE /data0)" = /dev/vdb &&
         test "$(findmnt -n -o SOURCE /data1)" = "/dev/mapper/$lun1" &&
         mu=$(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target) &&
         for u in data0.mount data1.mount; do
                 t=$(systemctl show -p ActiveEnterTimestampMonotonic --value $u); echo "$u $t multi-user $mu";
                 [ "$t" -gt 0 ] && [ "$t" -le "$mu" ] || exit 1
         done'
dvm_check "every file is intact after the reboot (lun0 plaintext, lun1, lun2 mounted by hand)" dvm_ssh g \
        '. /root/boot-lib.sh; cd /data0 && sha256sum --quiet -c /root/manifest && cd /data1 && sha256sum --quiet -c /root/manifest &&
         mkdir -p /mnt/lun2 && mount -o ro "/dev/mapper/$lun2" /mnt/lun2 &&
         (cd /mnt/lun2 && sha256sum --quiet -c /root/manifest); rc=$?; umount /mnt/lun2; exit $rc'
dvm_check "systemctl --failed lists nothing" dvm_ssh g \
        'out=$(systemctl --failed --no-legend --plain); [ -z "$out" ] || { echo "$out"; false; }'
dvm_check "after a boot with aded running, the group ade still owns /run/ade and the varlink socket" dvm_ssh g \
        'ls -ld /run/ade /run/ade/io.ade.DiskEncryption && systemctl is-active aded.service &&
         test "$(stat -c %G:%a /run/ade)" = ade:750 && test "$(stat -c %G:%a /run/ade/io.ade.DiskEncryption)" = ade:660'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-boot.json" 2>&1
dvm_check "adectl show: lun1 and lun2 Encrypted and unlocked after the reboot, lun0 NotEncrypted" jq -e \
        '([.volumes[] | select(.device | test("lun[12]$|/dev/vd[ce]$")) | select(.state == "Encrypted" and .unlocked)] | length == 2) and
         ([.volumes[] | select(.device | test("lun0$|/dev/vdb$")) | select(.state == "NotEncrypted")] | length == 1)' \
        "$DVM_RUN/show-boot.json"

# ---- a volume that Azure Disk Encryption made, adopted (docs/architecture.md §12) ----
# Laid out as ADE lays one out: a key file (base64 of 127 random bytes) on a vfat disk labelled
# "BEK VOLUME" mounted on /mnt/azure_bek_disk; a LUKS1 data disk made with it by stock cryptsetup
# (a low PBKDF2 count: the guest runs under TCG); its crypttab line on that key file under a
# mapping name of its own (a UUID), its fstab line on the mapping; the key file escrowed in Key
# Vault wrapped by the KEK, with ADE's tags. adectl adopt; the BEK disk taken away; the next boot
# opens the volume through ade's key socket and mounts it, every file intact.
bek_file=LinuxPassPhraseFileName_1_3
head -c 127 /dev/urandom | base64 -w0 >"$DVM_RUN/$bek_file"
truncate -s 8M "$DVM_RUN/bek.img"
mkfs.vfat -n "BEK VOLUME" "$DVM_RUN/bek.img" >/dev/null || fail "mkfs.vfat failed"
mcopy -i "$DVM_RUN/bek.img" "$DVM_RUN/$bek_file" ::/ || fail "mcopy failed"
truncate -s 128M "$DVM_RUN/lun3.img"
cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 --key-file "$DVM_RUN/$bek_file" \
        "$DVM_RUN/lun3.img" || fail "luksFormat of lun3 failed"
# The escrow, by Key Vault's REST as ADE's extension does it.
vault=https://contoso.vault.azure.net
kv_token=$(curl -sf -H Metadata:true \
        "http://127.0.0.1:$HTTP_PORT/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net" |
        jq -r .access_token) || fail "no token from the emulator's IMDS"
kv() { # kv METHOD PATH BODY: a Key Vault call to the emulator, by the vault's own name.
        curl -sf --cacert "$EMU_CA" --resolve "contoso.vault.azure.net:$HTTPS_PORT:127.0.0.1" -X "$1" \
                -H "Authorization: Bearer $kv_token" -H 'Content-Type: application/json' --data-binary "$3" \
                "https://contoso.vault.azure.net:$HTTPS_PORT$2?api-version=7.4"
}
wrapped=$(kv POST "/keys/kek/$kek_version/wrapkey" \
        "{\"alg\":\"RSA-OAEP\",\"value\":\"$(basenc --base64url -w0 <"$DVM_RUN/$bek_file" | tr -d =)\"}" | jq -r .value)
[ -n "$wrapped" ] && [ "$wrapped" != null ] || fail "the emulator did not wrap the BEK file"
vm_name=$(curl -sf -H Metadata:true "http://127.0.0.1:$HTTP_PORT/metadata/instance?api-version=2021-02-01" | jq -r .compute.name)
kv PUT "/secrets/$(python3 -c 'import uuid; print(uuid.uuid4())')" "$(jq -nc --arg v "$wrapped" \
        --arg k "$vault/keys/kek/$kek_version" --arg f "$bek_file" --arg m "$vm_name" \
        '{value: $v, contentType: "Wrapped BEK", tags: {DiskEncryptionKeyFileName: $f, MachineName: $m,
          DiskEncryptionKeyEncryptionAlgorithm: "RSA-OAEP", DiskEncryptionKeyEncryptionKeyURL: $k}}')" >/dev/null ||
        fail "the emulator did not store ADE's secret"
ade_disks() { dvm_disk_add g bek "$DVM_RUN/bek.img" bek && dvm_disk_add g lun3 "$DVM_RUN/lun3.img" lun3; }
dvm_require_check "QEMU hot-plugs ADE's BEK VOLUME and an ADE-encrypted data disk (lun3)" ade_disks
dvm_require_check "the guest is laid out as ADE lays it out (BEK VOLUME, lun3 open with its key file, crypttab, fstab)" \
        dvm_ssh g 'set -e; udevadm settle; for _ in $(seq 60); do test -b /dev/disk/azure/scsi1/lun3 && break; sleep 1; done
         mkdir -p /mnt/azure_bek_disk /data3
         echo "LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0" >>/etc/fstab
         systemctl daemon-reload; mount /mnt/azure_bek_disk
         m=$(cat /proc/sys/kernel/random/uuid); echo "$m" >/root/ade-mapping
         cryptsetup open --key-file /mnt/azure_bek_disk/'"$bek_file"' /dev/disk/azure/scsi1/lun3 "$m"
         mkfs.ext4 -q "/dev/mapper/$m"; mount "/dev/mapper/$m" /data3; cp -a /data1/. /data3/; sync
         cd /data3 && sha256sum --quiet -c /root/manifest
         echo "$m /dev/disk/azure/scsi1/lun3 /mnt/azure_bek_disk/'"$bek_file"' luks,nofail" >>/etc/crypttab
         echo "/dev/mapper/$m /data3 ext4 defaults,nofail 0 0" >>/etc/fstab; systemctl daemon-reload; cat /etc/crypttab'
dvm_check "adectl adopt --dry-run names lun3 and changes nothing" dvm_ssh g \
        'before=$(sha256sum /etc/crypttab /etc/fstab); out=$(timeout 600 adectl adopt --dry-run </dev/null) || exit 1; echo "$out";
         echo "$out" | grep -q "$(cat /root/ade-mapping)" && test "$before" = "$(sha256sum /etc/crypttab /etc/fstab)" &&
         ! test -e /etc/crypttab.ade-backup'
dvm_check "adectl adopt: lun3's crypttab line on ade's key socket under ADE's mapping name, ADE's line kept aside" dvm_ssh g \
        'm=$(cat /root/ade-mapping); timeout 600 adectl adopt </dev/null && cat /etc/crypttab &&
         grep -q "^$m /dev/disk/azure/scsi1/lun3 /run/ade/key.socket luks,_netdev,nofail,headless=true,tries=1" /etc/crypttab &&
         grep -q "^$m /dev/disk/azure/scsi1/lun3 /mnt/azure_bek_disk/'"$bek_file"' luks,nofail" /etc/crypttab.ade-backup &&
         ! grep -q azure_bek_disk /etc/crypttab'
dvm_check "fstab: /data3 mounts after the network, ADE's BEK VOLUME waits 10 s at most for its disk" dvm_ssh g \
        'm=$(cat /root/ade-mapping); cat /etc/fstab;
         grep -qx "/dev/mapper/$m /data3 ext4 defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 0" /etc/fstab &&
         grep -q "^LABEL=BEK.040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail,x-systemd.device-timeout=10s 0 0$" /etc/fstab'
dvm_check "a second adectl adopt changes nothing" dvm_ssh g \
        'before=$(sha256sum /etc/crypttab /etc/crypttab.ade-backup /etc/fstab); timeout 600 adectl adopt </dev/null;
         test "$before" = "$(sha256sum /etc/crypttab /etc/crypttab.ade-backup /etc/fstab)"'
remove_bek() { dvm_ssh g 'umount /mnt/azure_bek_disk' && dvm_disk_remove g bek; }
dvm_check "ADE's BEK VOLUME is taken away" remove_bek
t0=$(date +%s)
dvm_require_check "the guest reboots without the BEK VOLUME" dvm_reboot g
echo "# figure debvm-reboot-adopted $(($(date +%s) - t0)) s"
dvm_check "no BEK VOLUME at this boot; systemd-cryptsetup opened lun3 through ade's key socket" dvm_ssh g \
        'm=$(cat /root/ade-mapping); ! blkid -L "BEK VOLUME" &&
         systemctl is-active "systemd-cryptsetup@$(systemd-escape "$m").service" && test -b "/dev/mapper/$m" &&
         journalctl -b -q --no-pager -u aded.service | grep -F "key socket: delivered the key of $m"'
dvm_check "lun3 is mounted on /data3 from its mapping, every file intact" dvm_ssh g \
        'm=$(cat /root/ade-mapping); test "$(findmnt -n -o SOURCE /data3)" = "/dev/mapper/$m" &&
         cd /data3 && sha256sum --quiet -c /root/manifest'
dvm_ssh g 'adectl show --json' >"$DVM_RUN/show-adopted.json" 2>&1
ade_mapping=$(dvm_ssh g 'cat /root/ade-mapping')
dvm_check "adectl show: lun3 Encrypted and unlocked, on ADE's mapping" jq -e --arg m "/dev/mapper/$ade_mapping" \
        '[.volumes[] | select(.mapper == $m) | select(.state == "Encrypted" and .unlocked)] | length == 1' \
        "$DVM_RUN/show-adopted.json"
dvm_check "systemctl --failed lists nothing" dvm_ssh g \
        'out=$(systemctl --failed --no-legend --plain); [ -z "$out" ] || { echo "$out"; false; }'
printf '%s\n' "$(cat "$DVM_RUN/$bek_file")" >>"$DVM_RUN/key-files"

# Secrets hygiene in the journal of every boot (the first, cloud-init's, included): neither a key
# file nor an escrowed secret's value appears.
emulator_state >"$DVM_RUN/emu-state.json" 2>/dev/null
jq -r '.secrets[].value' "$DVM_RUN/emu-state.json" >"$DVM_RUN/secret-values" 2>/dev/null
dvm_ssh g 'journalctl --no-pager -o cat' >"$DVM_RUN/journal.txt" 2>&1
dvm_check "the guest's journal (all boots) holds no secret value" bash -c \
        '[ -s "$1" ] && ! grep -F -f "$1" "$2"' _ "$DVM_RUN/secret-values" "$DVM_RUN/journal.txt"
dvm_check "the guest's journal (all boots) holds no key file" bash -c \
        '[ "$(wc -l <"$1")" = 4 ] && ! grep -F -f "$1" "$2"' _ "$DVM_RUN/key-files" "$DVM_RUN/journal.txt"
dvm_ssh g 'cat /var/log/cloud-init.log /var/log/cloud-init-output.log' >"$DVM_RUN/cloud-init-logs.txt" 2>&1
dvm_check "cloud-init's logs hold neither" bash -c \
        '! grep -F -f "$1" "$3" && ! grep -F -f "$2" "$3"' _ "$DVM_RUN/secret-values" "$DVM_RUN/key-files" "$DVM_RUN/cloud-init-logs.txt"
echo "# figure debvm-test-total $(($(date +%s) - t_start)) s"
dvm_finish
