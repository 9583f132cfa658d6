# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the two conformance tests with Debian's varlink-go (sourced, not run). Sets $go (the
# varlink-go-certification tool), $idl (org.varlink.certification.varlink), $prog (ade's certification
# program) and $dir (a temporary folder removed on exit with every process in $pids), or exits 77.
# The Go tool exits 0 even when a step fails: a run passes only when its output ends with the
# certification's "End: 'true'".

if [ "${ADE_HEAVY_TESTS:-yes}" = no ]; then
        echo "SKIP: ADE_HEAVY_TESTS=no"
        exit 77
fi
go=$(command -v varlink-go-certification) ||
        { echo "SKIP: varlink-go-certification not installed (apt-get install varlink-go)"; exit 77; }
idl=$(dpkg -L golang-github-varlink-go-dev 2>/dev/null | grep '/org.varlink.certification.varlink$' | head -n1)
if [ -z "$idl" ] || [ ! -r "$idl" ]; then
        echo "SKIP: org.varlink.certification.varlink not found (apt-get install golang-github-varlink-go-dev)"
        exit 77
fi
prog="${top_builddir:-.}/tests/varlink/ade-varlink-certification"
[ -x "$prog" ] || { echo "FAIL: $prog not built"; exit 1; }

dir=$(mktemp -d /tmp/ade-varlink-cert.XXXXXX)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        wait 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT

# Waits up to 20 s for the socket at $1 (its server is ready once it listens).
wait_socket() {
        for _ in $(seq 200); do
                [ -S "$1" ] && return 0
                sleep 0.1
        done
        echo "FAIL: no socket at $1"
        return 1
}

# Passes when the output in $1 ends with the certification's verdict "End: 'true'".
require_end_true() {
        printf '%s\n' "$1"
        if [ "$(printf '%s\n' "$1" | tail -n1)" = "End: 'true'" ]; then
                echo "PASS: $2"
                return 0
        fi
        echo "FAIL: $2: the run did not end with End: 'true'"
        return 1
}
