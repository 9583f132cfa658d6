# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced after daemon-lib.sh by the header backup tests (daemon-backup.sh, daemon-backup-retry.sh).
#
# backup_storage_start: skips (77) without cryptsetup, openssl, ade-blob-tool or Azurite (npm);
#   makes a 200 MiB volume, starts the Azure emulator and Azurite (tests/integration/azurite-lib.sh)
#   and creates the container "backups" with a Storage token from the emulator's IMDS. Sets tool
#   (ade-blob-tool), imds, ca, AZURITE_ACCOUNT and AZURITE_PID (stopped at cleanup).
# t ARGS...: ade-blob-tool on that container, straight to Azurite.
# backup_only_generation_1 UUID: the container holds one blob, generation 1 of the volume UUID of
#   this machine; sets name to it.

backup_storage_start() {
        local token rc
        command -v cryptsetup >/dev/null || skip "no cryptsetup"
        command -v openssl >/dev/null || skip "no openssl"
        srcdir=$top_srcdir
        builddir=$top_builddir
        tool=$builddir/tests/integration/ade-blob-tool
        [ -x "$tool" ] || skip "$tool is not built"
        . "$srcdir/tests/integration/azurite-lib.sh"
        azurite_install
        rc=$?
        [ $rc -eq 0 ] || exit $rc

        make_volume 200
        start_emulator
        azurite_start "$WORK/azurite" "$WORK/emu/ca.pem" "$WORK/emu/ca.key" || fail "Azurite did not start"
        CLEANUPS+=("kill $AZURITE_PID; wait $AZURITE_PID")
        imds=http://127.0.0.1:$HTTP_PORT
        ca=$WORK/emu/ca.pem
        token=$(curl -sSf --noproxy '*' -H 'Metadata: true' \
                "$imds/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F" |
                jq -r .access_token)
        azurite_create_container backups "$token" "$ca" || fail "cannot create the container"
}

t() {
        "$tool" --container "$AZURITE_ACCOUNT/backups" --imds "$imds" --ca "$ca" --vault "https://localhost:$HTTPS_PORT" \
                --vault-resource "$EMULATOR_KEYVAULT_RESOURCE" "$@"
}

backup_only_generation_1() {
        t list >"$WORK/list" || fail "cannot list the container"
        [ "$(wc -l <"$WORK/list")" = 1 ] || fail "not exactly one blob: $(cat "$WORK/list")"
        name=$(cut -d' ' -f1 "$WORK/list")
        case "$name" in
        "$(hostname)/$1/000001-"????????T??????Z) ;;
        *) fail "the blob's name does not say machine, volume and generation 1: $name" ;;
        esac
}
