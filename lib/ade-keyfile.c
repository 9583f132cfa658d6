/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-base64.h"
#include "ade-keyfile.h"

int ade_keyfile_generate(AdeSecret **ret) {
        _cleanup_secret_ AdeSecret *raw = NULL;
        int r;

        r = ade_secret_new_random(ADE_KEYFILE_RAW_SIZE, &raw);
        if (r < 0)
                return r;
        return ade_base64_encode_secret(raw, /* url= */ false, ret);
}

bool ade_keyfile_is_valid(const AdeSecret *s) {
        _cleanup_secret_ AdeSecret *raw = NULL;

        if (!s || s->size != ADE_KEYFILE_SIZE)
                return false;
        for (size_t i = 0; i < s->size; i++)
                if (s->data[i] == '-' || s->data[i] == '_')
                        return false;
        if (ade_base64_decode_secret((const char *)s->data, s->size, &raw) < 0)
                return false;
        return raw->size == ADE_KEYFILE_RAW_SIZE;
}
