/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Azure_Disk_Encryption LUKS2 token (ade-luks.h), as a disk someone hands the VM may carry it:
 * any JSON text. A token that reads writes back to JSON that reads as the same token. */
#include <stdlib.h>
#include <string.h>

#include "ade-luks.h"
#include "fuzz.h"

static void same(const char *a, const char *b, const char *what) {
        FUZZ_ASSERT((!a && !b) || (a && b && strcmp(a, b) == 0), what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size), *json = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL, *back = NULL, *copy = NULL;
        int r;

        r = ade_luks_token_from_json(text, &t);
        FUZZ_ASSERT(r <= 0, "positive return");
        if (r < 0)
                return 0;
        FUZZ_ASSERT(t->version && t->secret_url, "token without version or SecretURL");

        FUZZ_ASSERT(ade_luks_token_copy(t, &copy) == 0, "copy failed");
        r = ade_luks_token_to_json(t, t->keyslot >= 0 ? t->keyslot : 0, &json);
        if (r < 0)
                return 0; /* a token that reads may still be one ade refuses to write */
        FUZZ_ASSERT(ade_luks_token_from_json(json, &back) == 0, "written token does not read back");
        same(t->version, back->version, "Version changed");
        same(t->key_vault_url, back->key_vault_url, "KeyVaultURL changed");
        same(t->key_vault_resource_id, back->key_vault_resource_id, "KeyVaultResourceId changed");
        same(t->secret_url, back->secret_url, "SecretURL changed");
        same(t->kek_url, back->kek_url, "KeyEncryptionKeyURL changed");
        same(t->kek_vault_resource_id, back->kek_vault_resource_id, "KekVaultResourceId changed");
        same(t->kek_algorithm, back->kek_algorithm, "KeyEncryptionAlgorithm changed");
        same(t->volume_type, back->volume_type, "VolumeType changed");
        same(t->passphrase, back->passphrase, "Passphrase changed");
        same(t->device_id, back->device_id, "DeviceId changed");
        same(t->secret_url, copy->secret_url, "copy differs");
        return 0;
}
