/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The response headers ade reads: Key Vault's 401 challenge (ade_keyvault_parse_challenge() over
 * ade_http_bearer_params()), the refused-token rule (ade_credential_token_refused()) and Retry-After
 * (ade_http_parse_retry_after()). The input is one header value. */
#include <stdlib.h>
#include <string.h>

#include "ade-credential.h"
#include "ade-http.h"
#include "ade-keyvault.h"
#include "fuzz.h"

typedef struct Count {
        unsigned n;
        size_t bytes;
} Count;

static int each_param(const char *key, size_t key_len, const char *value, size_t value_len, void *userdata) {
        Count *c = userdata;

        FUZZ_ASSERT(key && key_len > 0, "empty parameter name");
        FUZZ_ASSERT(value || value_len == 0, "value without text");
        /* Touch every byte, so that ASan sees a range that runs past the header. */
        for (size_t i = 0; i < key_len; i++)
                c->bytes += (unsigned char)key[i] != 0;
        for (size_t i = 0; i < value_len; i++)
                c->bytes += (unsigned char)value[i] != 0;
        c->n++;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *header = fuzz_strndup(data, size);
        AdeKvChallenge ch = {};
        Count count = {};
        uint64_t ms;
        int r;

        r = ade_http_bearer_params(header, each_param, &count);
        FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM, "bearer params: unexpected error");

        r = ade_keyvault_parse_challenge(header, &ch);
        FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM, "challenge: unexpected error");
        if (r == 0) {
                FUZZ_ASSERT(ch.authorization && *ch.authorization, "challenge without authorization");
                FUZZ_ASSERT(ch.resource || ch.scope, "challenge without resource or scope");
                FUZZ_ASSERT(!ch.resource || *ch.resource, "empty resource kept");
                FUZZ_ASSERT(!ch.scope || *ch.scope, "empty scope kept");
                ade_kv_challenge_done(&ch);
        }

        (void)ade_credential_token_refused(&(AdeHttpResponse){.status = 401, .www_authenticate = header});
        (void)ade_credential_token_refused(
                &(AdeHttpResponse){.status = 401, .body = header, .size = size, .capacity = size + 1});

        r = ade_http_parse_retry_after(header, 1700000000, &ms);
        FUZZ_ASSERT(r == 0 || r == -EINVAL, "retry-after: unexpected error");
        return 0;
}
