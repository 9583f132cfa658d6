# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the tests that run npm packages (test-sdk-conformance.sh, tests/integration/
# blob-azurite.sh). npm_ci_cached SRC DEST installs the versions pinned in SRC/package.json and
# SRC/package-lock.json with "npm ci" into DEST (kept between runs, redone when either file changes;
# two runs sharing DEST wait for each other). Returns 0; 77 when the npm registry cannot be reached
# (the caller skips); 1 when npm ci failed otherwise (its log's tail is printed).
npm_ci_cached() {
        local src=$1 dest=$2 rc
        mkdir -p "$dest"
        (
                flock 9
                want=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
                if [ ! -d "$dest/node_modules" ] || [ "$(cat "$dest/.installed" 2>/dev/null)" != "$want" ]; then
                        cp "$src/package.json" "$src/package-lock.json" "$dest/"
                        rm -f "$dest/.installed"
                        if ! (cd "$dest" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts >npm.log 2>&1); then
                                if ! (cd "$dest" && timeout 60 npm ping >/dev/null 2>&1); then
                                        echo "SKIP: the npm registry cannot be reached"
                                        exit 77
                                fi
                                echo "ERROR: npm ci failed in $dest:"
                                tail -n 30 "$dest/npm.log"
                                exit 1
                        fi
                        echo "$want" >"$dest/.installed"
                fi
        ) 9>"$dest/.lock"
        rc=$?
        return $rc
}
