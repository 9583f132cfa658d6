/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Microsoft Entra ID's token answers (ade-entra.h) through the real client with a client secret,
 * and its refusals (invalid_client, AADSTS... bodies). The first byte picks the tenant: 't' the
 * configured one, 'o' another that a challenge named; any other byte the same modulo 2. The
 * client secret goes to the authority only. */
#include <stdlib.h>
#include <string.h>

#include "ade-entra.h"
#include "fuzz-cloud.h"
#include "fuzz-http.h"
#include "fuzz.h"

#define AUTHORITY "https://login.microsoftonline.com"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(ade_entra_freep) AdeEntra *entra = NULL;
        _cleanup_secret_ AdeSecret *secret = NULL, *token = NULL;
        AdeCloudError e = {};
        uint64_t expires_on = 0;
        uint8_t op = fuzz_cloud_op(&data, &size);
        int r;

        fuzz_http_begin(data, size);
        fuzz_http_set_only_origin(AUTHORITY);
        if (ade_secret_new_from("fuzz-client-secret", 18, &secret) < 0 ||
                ade_entra_new_secret(AUTHORITY, "72f988bf-86f1-41af-91ab-2d7cd011db47",
                        "11111111-2222-3333-4444-555555555555", secret, fuzz_http_options(), &entra) < 0)
                abort();

        if (op != 't' && op != 'o')
                op = "to"[op % 2];
        r = ade_entra_get_token(
                entra, "https://vault.azure.net", op == 'o' ? "other-tenant" : NULL, &token, &expires_on, &e);
        FUZZ_ASSERT(r <= 0, "positive return");
        fuzz_verbose(op, r, fuzz_http_requests());
        FUZZ_ASSERT(r < 0 || (token && token->size > 0 && expires_on > 0), "token without value or expiry");
        free(ade_cloud_error_to_string(&e, "Microsoft Entra ID"));
        ade_cloud_error_done(&e);
        fuzz_http_end();
        return 0;
}
