#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs what ade needs to build and to run every test on Debian 12, with apt-get.
# Idempotent: when everything is present it prints nothing and changes nothing.
set -euo pipefail

packages=(
        # build
        build-essential autoconf automake libtool pkg-config
        libcryptsetup-dev libdevmapper-dev libcurl4-openssl-dev libsystemd-dev libssl-dev
        libjson-c-dev check libmicrohttpd-dev libblkid-dev
        # tests: real filesystems, stock cryptsetup as the independent judge, loop devices
        cryptsetup-bin e2fsprogs xfsprogs util-linux kmod openssl curl ca-certificates
        # tests: the BEK VOLUME (vfat) ADE keeps its key files on, written without a mount (daemon-adopt)
        dosfstools mtools
        # tests: the VM harness (Debian's kernel is fetched with apt-get download, not installed)
        qemu-system-x86 qemu-utils busybox-static cpio xz-utils zstd
        # the Debian package (debian/, dpkg-buildpackage) and its checker
        debhelper dpkg-dev lintian git
        # tests: the Debian 12 guest (tests/vm/debian-lib.sh): image build, disk layout, guest control
        mmdebstrap fdisk openssh-client socat
        # tests: the Debian guest's NoCloud seed and the signed apt repository cloud-init installs from
        genisoimage apt-utils gpg
        # tests: independent varlink judge, and the units' verifier
        varlink-go golang-github-varlink-go-dev systemd
        # tests: Microsoft's offline-unlock procedure (tests/integration/offline-unlock.sh) reads JSON with jq
        jq
        # tests: raw varlink clients (hostile and concurrent) against aded, tests/daemon/varlink-clients.py
        python3
        # tests: the fleet example's playbook (docs/fleet/ade.yml) is checked with ansible-playbook
        ansible-core
        # tests: Azure's Python SDK judges the header backups' client-side encryption
        # (tests/integration/blob-azurite.sh; azure.storage.blob 12.15 for /usr/bin/python3)
        python3-azure
        # CI: the formatting check pins Debian 12's clang-format (.ci/check-format)
        clang-format-14
        # CI: the libFuzzer targets (tests/fuzz/README.md) build with clang and its runtimes
        clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done

# The Azure SDK conformance test and Azurite (tests/integration/blob-azurite.sh) need Node.js 20 and
# npm; keep a Node that is already there. Those tests install their pinned npm packages themselves.
if ! command -v npm >/dev/null 2>&1; then
        missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
        echo "setup-deps: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests: the metrics file's judge, promtool, from Debian's prometheus package; the package is only
# unpacked (its server is never installed nor started) and promtool copied to /usr/local/bin.
if ! command -v promtool >/dev/null 2>&1; then
        echo "setup-deps: unpacking promtool from Debian's prometheus package"
        tmp=$(mktemp -d)
        chmod 0755 "$tmp" # apt's download user writes there
        (cd "$tmp" && apt-get download -qq prometheus >/dev/null && dpkg-deb -x prometheus_*.deb root) &&
                install -m 0755 "$tmp/root/usr/bin/promtool" /usr/local/bin/promtool
        rm -rf "$tmp"
fi
