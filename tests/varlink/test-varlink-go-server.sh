#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Conformance: ade's varlink client drives varlink-go's certification server (Debian's varlink-go),
# checking every reply; it prints "End: 'true'" only when all replies were right and the Go server's
# End said all_ok.
set -u
. "$(dirname "$0")/varlink-certification-lib.sh"

"$go" -varlink "unix:$dir/go.sock" &
pids+=($!)
wait_socket "$dir/go.sock" || exit 1
out=$(timeout 60 "$prog" --client "$dir/go.sock" 2>&1)
require_end_true "$out" "ade's varlink client certified against varlink-go's server"
