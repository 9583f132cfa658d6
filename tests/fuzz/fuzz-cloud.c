/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz-cloud.h"
#include "fuzz.h"

static int fetch(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        int r;

        FUZZ_ASSERT(resource && *resource, "token asked for no resource");
        r = ade_secret_new_from(FUZZ_TOKEN, strlen(FUZZ_TOKEN), ret_token);
        if (r < 0)
                return r;
        *ret_expires_on = (uint64_t)time(NULL) + 3600;
        return 0;
}

AdeCredential *fuzz_credential_new(void) {
        AdeCredential *c = NULL;

        if (ade_credential_new(fetch, NULL, NULL, &c) < 0)
                abort();
        return c;
}

const AdeHttpOptions *fuzz_http_options(void) {
        static AdeHttpOptions opts;
        static AdeHttpShare *share;

        if (!share) {
                if (ade_http_share_new(&share) < 0 || ade_http_share_load_trust(share, NULL) < 0)
                        abort();
                ade_http_options_init(&opts);
                opts.share = share;
        }
        return &opts;
}

uint8_t fuzz_cloud_op(const uint8_t **data, size_t *size) {
        uint8_t op;

        if (*size == 0)
                return 0;
        op = (*data)[0];
        (*data)++;
        (*size)--;
        if (*size > 0 && (*data)[0] == '\n') {
                (*data)++;
                (*size)--;
        }
        return op;
}

void fuzz_verbose(uint8_t op, int r, unsigned requests) {
        static int verbose = -1;

        if (verbose < 0)
                verbose = getenv("ADE_FUZZ_VERBOSE") != NULL;
        if (verbose)
                fprintf(stderr, "op '%c': %d (%s) after %u requests\n", op, r, r < 0 ? strerror(-r) : "ok", requests);
}
