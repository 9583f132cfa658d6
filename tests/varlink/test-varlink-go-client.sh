#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Conformance: varlink-go's certification client (Debian's varlink-go) drives ade's certification
# server; ade's server checks every value the Go client sends and answers End with all_ok.
set -u
. "$(dirname "$0")/varlink-certification-lib.sh"

"$prog" --server "$dir/ade.sock" --idl "$idl" &
pids+=($!)
wait_socket "$dir/ade.sock" || exit 1
out=$(timeout 60 "$go" -client -varlink "unix:$dir/ade.sock" 2>&1)
require_end_true "$out" "ade's varlink server certified by varlink-go's client"
