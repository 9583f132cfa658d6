/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Instance Metadata Service's answers (ade-imds.h): the instance document and managed-identity
 * tokens, read by the parsers directly (i, t: the rest of the input is the body) and through the
 * client (I, T: the rest is fuzz-http.h's script, with IMDS' 404/410 rules); any other first byte
 * the same modulo 4. */
#include <stdlib.h>
#include <string.h>

#include "ade-imds.h"
#include "fuzz-cloud.h"
#include "fuzz-http.h"
#include "fuzz.h"

#define IMDS "http://169.254.169.254"

static void check_instance(const AdeImdsInstance *i) {
        FUZZ_ASSERT(i->location && i->subscription_id && i->resource_group && i->vm_name && i->vm_id,
                "instance without location, subscription, group, name or id");
        FUZZ_ASSERT(i->n_data_disks == 0 || i->data_disks, "data disks counted but not there");
        for (size_t k = 0; k < i->n_data_disks; k++)
                FUZZ_ASSERT(i->data_disks[k].lun >= 0 && i->data_disks[k].lun <= 255, "LUN out of range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *inst = NULL;
        _cleanup_secret_ AdeSecret *token = NULL;
        _cleanup_free_ char *text = NULL;
        AdeCloudError e = {};
        uint64_t expires_on = 0;
        uint8_t op = fuzz_cloud_op(&data, &size);
        int r = 0;

        if (op == 0 || !strchr("itIT", op))
                op = "itIT"[op % 4];
        switch (op) {
        case 'i':
                /* The parser takes a length: a copy of exactly that size lets ASan see an overread. */
                text = malloc(size ?: 1);
                if (!text)
                        abort();
                memcpy(text, data, size);
                r = ade_imds_parse_instance(text, size, &inst);
                if (r >= 0)
                        check_instance(inst);
                break;
        case 't':
                text = malloc(size ?: 1);
                if (!text)
                        abort();
                memcpy(text, data, size);
                r = ade_imds_parse_token(text, size, 1700000000, &token, &expires_on);
                FUZZ_ASSERT(r < 0 || (token && token->size > 0 && expires_on > 0), "token without value or expiry");
                break;
        case 'I':
        case 'T':
                fuzz_http_begin(data, size);
                fuzz_http_set_only_origin(IMDS);
                if (ade_imds_new(IMDS, fuzz_http_options(), &imds) < 0)
                        abort();
                if (op == 'I') {
                        r = ade_imds_get_instance(imds, &inst, &e);
                        if (r >= 0)
                                check_instance(inst);
                } else {
                        r = ade_imds_get_token(imds, "https://vault.azure.net", ADE_IMDS_IDENTITY_CLIENT_ID,
                                "11111111-2222-3333-4444-555555555555", &token, &expires_on, &e);
                        FUZZ_ASSERT(r < 0 || (token && token->size > 0), "token without value");
                }
                free(ade_cloud_error_to_string(&e, "IMDS"));
                ade_cloud_error_done(&e);
                fuzz_http_end();
                break;
        }
        FUZZ_ASSERT(r <= 0, "positive return");
        fuzz_verbose(op, r, fuzz_http_requests());
        return 0;
}
