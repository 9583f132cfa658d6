/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Key Vault's answers (ade-keyvault.h) through the real client: the challenge, then the secret, key,
 * wrapkey/unwrapkey and set-secret replies, and the service's error bodies. The first byte picks
 * the call: s get a secret, k get a key, w wrap, u unwrap, p put a secret, c prepare (the challenge
 * alone), b a secret then a key on one client (a kept challenge); any other byte the same modulo 7. */
#include <stdlib.h>
#include <string.h>

#include "ade-keyvault.h"
#include "ade-url.h"
#include "fuzz-cloud.h"
#include "fuzz-http.h"
#include "fuzz.h"

#define VAULT "https://fuzz.vault.azure.net"
#define SECRET_URL VAULT "/secrets/disk-key/0123456789abcdef0123456789abcdef"
#define KEK_URL VAULT "/keys/kek/fedcba9876543210fedcba9876543210"

static int get_secret(AdeKeyVault *kv, AdeCloudError *e) {
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        int r;

        r = ade_keyvault_get_secret(kv, SECRET_URL, &s, e);
        if (r < 0)
                return r;
        FUZZ_ASSERT(s->id && s->name && s->version && s->value && s->tags, "secret without id, name, version or value");
        FUZZ_ASSERT(
                ade_url_keyvault_object(s->id, "secrets", true, NULL, NULL, NULL) == 0, "secret id is no secret URL");
        for (char **t = s->tags; *t; t += 2)
                FUZZ_ASSERT(t[1], "odd tag list");
        return 0;
}

static int get_key(AdeKeyVault *kv, AdeCloudError *e) {
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        int r;

        r = ade_keyvault_get_key(kv, KEK_URL, &k, e);
        if (r < 0)
                return r;
        FUZZ_ASSERT(k->kid && k->kty && k->key_ops, "key without kid, kty or key_ops");
        (void)ade_kv_key_allows(k, "wrapKey");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(ade_credential_freep) AdeCredential *cred = fuzz_credential_new();
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_secret_ AdeSecret *plain = NULL, *unwrapped = NULL;
        _cleanup_free_ char *wrapped = NULL, *id = NULL;
        AdeCloudError e = {};
        uint8_t op = fuzz_cloud_op(&data, &size);
        int r = 0;

        fuzz_http_begin(data, size);
        fuzz_http_set_only_origin(VAULT);
        fuzz_http_allow_token_origin(VAULT);
        if (ade_keyvault_new(VAULT, cred, NULL, fuzz_http_options(), &kv) < 0 ||
                ade_secret_new_from("0123456789abcdef", 16, &plain) < 0)
                abort();

        if (op == 0 || !strchr("skwupcb", op))
                op = "skwupcb"[op % 7];
        switch (op) {
        case 's':
                r = get_secret(kv, &e);
                break;
        case 'k':
                r = get_key(kv, &e);
                break;
        case 'w':
                r = ade_keyvault_wrap(kv, KEK_URL, "RSA-OAEP", plain, &wrapped, &e);
                FUZZ_ASSERT(r < 0 || (wrapped && *wrapped), "wrap without a value");
                break;
        case 'u':
                r = ade_keyvault_unwrap(kv, KEK_URL, "RSA-OAEP-256", "AAECAwQFBgcICQ", &unwrapped, &e);
                FUZZ_ASSERT(r < 0 || unwrapped, "unwrap without a value");
                break;
        case 'p':
                r = ade_keyvault_set_secret(kv, "disk-key", plain, "BEK",
                        (char *const[]){"DiskEncryptionKeyFileName", "LinuxPassPhraseFileName", NULL}, &id, &e);
                FUZZ_ASSERT(r < 0 || (id && *id), "set-secret without an id");
                break;
        case 'c':
                r = ade_keyvault_prepare(kv, &e);
                break;
        case 'b':
                r = get_secret(kv, &e);
                ade_cloud_error_done(&e);
                if (r >= 0)
                        r = get_key(kv, &e);
                break;
        }
        FUZZ_ASSERT(r <= 0, "positive return");
        fuzz_verbose(op, r, fuzz_http_requests());
        free(ade_cloud_error_to_string(&e, "Key Vault"));
        ade_cloud_error_done(&e);
        fuzz_http_end();
        return 0;
}
