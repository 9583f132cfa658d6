/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/evp.h>

#include "ade-base64.h"

static size_t encoded_size(size_t n) {
        return 4 * ((n + 2) / 3);
}

static char *encode(const void *data, size_t size, bool url) {
        char *out;
        size_t n;

        if (size > (size_t)INT32_MAX / 2)
                return NULL;
        out = malloc(encoded_size(size) + 1);
        if (!out)
                return NULL;
        n = (size_t)EVP_EncodeBlock((unsigned char *)out, data, (int)size);
        out[n] = '\0';
        if (url) {
                for (size_t i = 0; i < n; i++)
                        if (out[i] == '+')
                                out[i] = '-';
                        else if (out[i] == '/')
                                out[i] = '_';
                while (n > 0 && out[n - 1] == '=')
                        out[--n] = '\0';
        }
        return out;
}

char *ade_base64_encode(const void *data, size_t size) {
        return encode(data, size, false);
}

char *ade_base64url_encode(const void *data, size_t size) {
        return encode(data, size, true);
}

/* Rewrites @s into @buf in the standard alphabet with padding. Returns the padded length, or
 * -EINVAL. @buf must hold len + 3 bytes. */
static int normalize(const char *s, size_t len, char *buf, size_t *ret_pad) {
        size_t n = len, pad = 0;

        while (n > 0 && s[n - 1] == '=') {
                n--;
                pad++;
        }
        if (pad > 2)
                return -EINVAL;
        if (n % 4 == 1)
                return -EINVAL;
        if (pad > 0 && (n + pad) % 4 != 0)
                return -EINVAL;

        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '-')
                        c = '+';
                else if (c == '_')
                        c = '/';
                else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                                 c == '/'))
                        return -EINVAL;
                buf[i] = c;
        }
        pad = (4 - n % 4) % 4;
        for (size_t i = 0; i < pad; i++)
                buf[n + i] = '=';
        buf[n + pad] = '\0';
        *ret_pad = pad;
        if (n + pad > INT32_MAX)
                return -EINVAL;
        return (int)(n + pad);
}

static int decode_into(const char *s, size_t len, char *norm, unsigned char *out, size_t *ret_size) {
        size_t pad;
        int n, m;

        n = normalize(s, len, norm, &pad);
        if (n < 0)
                return n;
        if (n == 0) {
                *ret_size = 0;
                return 0;
        }
        m = EVP_DecodeBlock(out, (unsigned char *)norm, n);
        if (m < 0 || (size_t)m < pad)
                return -EINVAL;
        *ret_size = (size_t)m - pad;
        return 0;
}

int ade_base64_decode(const char *s, size_t len, void **ret, size_t *ret_size) {
        _cleanup_free_ char *norm = NULL;
        _cleanup_free_ unsigned char *out = NULL;
        size_t size;
        int r;

        if (!s || !ret || !ret_size)
                return -EINVAL;
        norm = malloc(len + 4);
        out = malloc(len + 4);
        if (!norm || !out)
                return -ENOMEM;
        r = decode_into(s, len, norm, out, &size);
        if (r < 0)
                return r;
        out[size] = 0;
        *ret = TAKE_PTR(out);
        *ret_size = size;
        return 0;
}

int ade_base64_encode_secret(const AdeSecret *in, bool url, AdeSecret **ret) {
        _cleanup_secret_ AdeSecret *out = NULL;
        size_t n;
        int r;

        if (!in || !ret || in->size > ADE_SECRET_SIZE_MAX / 2)
                return -EINVAL;
        r = ade_secret_new(encoded_size(in->size) + 1, &out);
        if (r < 0)
                return r;
        n = (size_t)EVP_EncodeBlock(out->data, in->data, (int)in->size);
        if (url) {
                for (size_t i = 0; i < n; i++)
                        if (out->data[i] == '+')
                                out->data[i] = '-';
                        else if (out->data[i] == '/')
                                out->data[i] = '_';
                while (n > 0 && out->data[n - 1] == '=')
                        n--;
        }
        r = ade_secret_truncate(out, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}

int ade_base64_decode_secret(const char *s, size_t len, AdeSecret **ret) {
        _cleanup_secret_ AdeSecret *norm = NULL, *out = NULL;
        size_t size;
        int r;

        if (!s || !ret || len == 0 || len > ADE_SECRET_SIZE_MAX - 4)
                return -EINVAL;
        r = ade_secret_new(len + 4, &norm);
        if (r < 0)
                return r;
        r = ade_secret_new(len + 4, &out);
        if (r < 0)
                return r;
        r = decode_into(s, len, (char *)norm->data, out->data, &size);
        if (r < 0)
                return r;
        if (size == 0)
                return -EINVAL;
        r = ade_secret_truncate(out, size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}
