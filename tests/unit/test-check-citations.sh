#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# .ci/check-citations can fail: its self-test plants each kind of bad citation (a document kept
# outside the repository, a missing section, a missing file) in a temporary git repository and
# expects each refused with its file and line, and a clean tree to pass. .ci/run checks this tree.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v git >/dev/null || { echo "SKIP: git is not installed"; exit 77; }
exec "$top_srcdir/.ci/check-citations" --self-test
