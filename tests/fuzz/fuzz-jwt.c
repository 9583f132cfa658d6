/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A JWT's claims (ade-jwt.h), read without verification from a token a service handed out. The
 * input is the token, passed with its length and no NUL after it. */
#include <errno.h>
#include <json-c/json.h>

#include "ade-jwt.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *claims = NULL;
        int r;

        r = ade_jwt_get_claims((const char *)data, size, &claims);
        FUZZ_ASSERT(r == 0 || r == -EBADMSG, "unexpected error");
        FUZZ_ASSERT((r == 0) == (claims != NULL), "claims and result disagree");
        json_object_put(claims);
        return 0;
}
