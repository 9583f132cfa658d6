/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ade.conf (ade-config.h): any text, with its length (no NUL after it). A refusal comes with a
 * message that names the file; a success is a whole configuration. */
#include <string.h>

#include "ade-config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(ade_config_freep) AdeConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = ade_config_parse((const char *)data, size, "fuzz.conf", &c, &error);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENOMEM, "unexpected error");
        if (r == -EINVAL)
                FUZZ_ASSERT(error && strncmp(error, "fuzz.conf", strlen("fuzz.conf")) == 0,
                        "refusal without a message naming the file");
        if (r == 0) {
                FUZZ_ASSERT(c && !error, "success without a configuration, or with an error");
                FUZZ_ASSERT(
                        c->daemon.socket && c->daemon.state_dir && c->azure.imds && c->azure.arm, "defaults missing");
                FUZZ_ASSERT(!c->keyvault.kek_algorithm || ade_kek_algorithm_is_valid(c->keyvault.kek_algorithm),
                        "invalid KEK algorithm accepted");
        }
        return 0;
}
