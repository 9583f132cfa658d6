/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "ade-base64.h"
#include "ade-json.h"
#include "ade-jwt.h"

int ade_jwt_get_claims(const char *jwt, size_t len, json_object **ret) {
        _cleanup_free_ void *payload = NULL;
        const char *dot1, *dot2, *end = jwt + len;
        size_t size;
        int r;

        assert(jwt);
        assert(ret);

        dot1 = memchr(jwt, '.', len);
        if (!dot1)
                return -EBADMSG;
        dot2 = memchr(dot1 + 1, '.', end - dot1 - 1);
        if (!dot2 || dot2 == dot1 + 1)
                return -EBADMSG;

        r = ade_base64_decode(dot1 + 1, dot2 - dot1 - 1, &payload, &size);
        if (r < 0)
                return -EBADMSG;
        r = ade_json_parse(payload, size, ret);
        return r < 0 ? -EBADMSG : 0;
}
