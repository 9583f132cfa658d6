/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Base64 (ade-base64.h): the decoders on any text (both alphabets, padded or not, nothing else),
 * plain and into a secret, and both encoders on any bytes. What is decoded encodes back to text
 * that decodes to the same bytes; what is encoded decodes back to the input. */
#include <stdlib.h>
#include <string.h>

#include "ade-base64.h"
#include "fuzz.h"

static void round_trip(const void *bytes, size_t size, bool url) {
        _cleanup_free_ char *text = url ? ade_base64url_encode(bytes, size) : ade_base64_encode(bytes, size);
        _cleanup_free_ void *back = NULL;
        _cleanup_secret_ AdeSecret *in = NULL, *enc = NULL, *dec = NULL;
        size_t back_size = 0;

        FUZZ_ASSERT(text, "encode failed");
        FUZZ_ASSERT(ade_base64_decode(text, strlen(text), &back, &back_size) == 0, "own encoding does not decode");
        FUZZ_ASSERT(back_size == size && (size == 0 || memcmp(back, bytes, size) == 0), "round trip changed the bytes");

        if (size == 0)
                return; /* a secret is never empty */
        if (ade_secret_new_from(bytes, size, &in) < 0 || ade_base64_encode_secret(in, url, &enc) < 0)
                abort();
        FUZZ_ASSERT(enc->size == strlen(text) && memcmp(enc->data, text, enc->size) == 0,
                "secret encoder differs from the plain one");
        FUZZ_ASSERT(ade_base64_decode_secret((const char *)enc->data, enc->size, &dec) == 0, "secret decode failed");
        FUZZ_ASSERT(ade_secret_equal(in, dec), "secret round trip changed the bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ void *out = NULL;
        _cleanup_secret_ AdeSecret *sec = NULL;
        size_t out_size = 0;
        int r, rs;

        r = ade_base64_decode((const char *)data, size, &out, &out_size);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENOMEM, "decode: unexpected error");
        rs = ade_base64_decode_secret((const char *)data, size, &sec);
        /* The secret decoder also refuses what decodes to nothing: a key is never empty. */
        FUZZ_ASSERT(rs == r || (r == 0 && out_size == 0 && rs == -EINVAL), "secret and plain decoders disagree");
        if (r == 0 && rs == 0) {
                FUZZ_ASSERT(sec->size == out_size && (out_size == 0 || memcmp(sec->data, out, out_size) == 0),
                        "secret and plain decoders give different bytes");
        }
        if (r == 0) {
                round_trip(out, out_size, false);
                round_trip(out, out_size, true);
        }
        round_trip(data, size, size % 2);
        return 0;
}
