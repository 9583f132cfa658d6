/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "ade-utf8.h"

/* U+FFFD REPLACEMENT CHARACTER. */
#define REPLACEMENT "\xef\xbf\xbd"

static bool continuation(unsigned char c) {
        return (c & 0xc0) == 0x80;
}

size_t ade_utf8_sequence_length(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s;
        unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
        size_t n;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                n = 3;
                if (p[0] == 0xe0)
                        lo = 0xa0; /* overlong below */
                else if (p[0] == 0xed)
                        hi = 0x9f; /* surrogates above */
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                n = 4;
                if (p[0] == 0xf0)
                        lo = 0x90; /* overlong below */
                else if (p[0] == 0xf4)
                        hi = 0x8f; /* beyond U+10FFFF above */
        } else
                return 0; /* a continuation byte, an overlong lead (0xc0, 0xc1), or 0xf5..0xff */

        if (len < n)
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (!continuation(p[i]))
                        return 0;
        return n;
}

bool ade_utf8_valid(const char *s, size_t len) {
        for (size_t i = 0; i < len;) {
                size_t n = ade_utf8_sequence_length(s + i, len - i);

                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

char *ade_utf8_sanitize(const char *s, size_t len, size_t *ret_len) {
        size_t size = 0;
        char *out;

        /* Each invalid byte becomes three. */
        for (size_t i = 0; i < len;) {
                size_t n = ade_utf8_sequence_length(s + i, len - i);

                size += n ? n : sizeof(REPLACEMENT) - 1;
                i += n ? n : 1;
        }
        out = malloc(size + 1);
        if (!out)
                return NULL;
        size = 0;
        for (size_t i = 0; i < len;) {
                size_t n = ade_utf8_sequence_length(s + i, len - i);

                if (n == 0) {
                        memcpy(out + size, REPLACEMENT, sizeof(REPLACEMENT) - 1);
                        size += sizeof(REPLACEMENT) - 1;
                        i++;
                } else {
                        memcpy(out + size, s + i, n);
                        size += n;
                        i += n;
                }
        }
        out[size] = '\0';
        if (ret_len)
                *ret_len = size;
        return out;
}
