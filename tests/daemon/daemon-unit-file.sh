#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# aded.service: what it must have (descriptors for the varlink caps, a memory ceiling, the capability
# and system-call limits) and what it must not (any option that gives aded a mount namespace of its
# own: it would unmount and mount only for itself, issue 11 item 0). Reads the unit's source; needs
# neither root nor systemd.
set -uo pipefail
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
unit=$top_srcdir/systemd/aded.service.in
fail() {
        echo "FAIL: daemon-unit-file: $*"
        exit 1
}
[ -r "$unit" ] || fail "cannot read $unit"
# The settings, without comments.
settings=$(grep -v '^[[:space:]]*#' "$unit")

for key in ProtectSystem ProtectHome PrivateTmp PrivateDevices PrivateMounts PrivateNetwork PrivateIPC \
        ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectProc \
        ProcSubset ReadOnlyPaths ReadWritePaths InaccessiblePaths ExecPaths NoExecPaths TemporaryFileSystem \
        BindPaths BindReadOnlyPaths MountFlags RootDirectory RootImage MountAPIVFS PrivateUsers \
        NetworkNamespacePath IPCNamespacePath; do
        grep -q "^$key=" <<<"$settings" && fail "$key= gives aded a mount namespace of its own"
done
grep -q "^# .*mount namespace" "$unit" || grep -q "pid 1's mount namespace" "$unit" ||
        fail "the unit does not say why it has no mount-namespace option"

nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' <<<"$settings")
# 1024 connections at most, and 128 descriptors kept for aded itself (lib/ade-varlink.h).
[ -n "$nofile" ] && [ "$nofile" -ge $((1024 + 128)) ] || fail "LimitNOFILE= is '${nofile}', below 1152"
grep -q "^MemoryMax=[0-9]" <<<"$settings" || fail "no MemoryMax="
grep -q "^CapabilityBoundingSet=" <<<"$settings" || fail "no CapabilityBoundingSet="
grep -q "^SystemCallFilter=" <<<"$settings" || fail "no SystemCallFilter="
echo "PASS: daemon-unit-file"
