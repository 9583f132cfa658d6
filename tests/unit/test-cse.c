/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Client-side encryption v2 (lib/ade-cse.h): the region format at its edges, and every kind of
 * tampering refused. The KEK here is a local AES key wrap (RFC 3394, an SDK algorithm too), so an
 * edited EncryptedKey fails to unwrap as it would in Key Vault. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "ade-base64.h"
#include "ade-cse.h"
#include "ade-json.h"
#include "ade-test.h"

#define KEK_ID "https://kv.example/keys/kek/0123456789abcdef"
#define KEK_ALG "A256KW"
#define MIB (1024U * 1024U)

static const uint8_t kek_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
        24, 25, 26, 27, 28, 29, 30, 31, 32};
static unsigned unwrap_calls;

static int aes_wrap(bool enc, const uint8_t *in, size_t n, uint8_t *out, int *ret_len) {
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int len = 0, fin = 0, ok;

        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap(), NULL, kek_key, NULL, enc) == 1 &&
             EVP_CipherUpdate(c, out, &len, in, (int)n) == 1 && EVP_CipherFinal_ex(c, out + len, &fin) == 1;
        EVP_CIPHER_CTX_free(c);
        *ret_len = len + fin;
        return ok ? 0 : -EBADMSG;
}

static int fake_wrap(void *userdata, const char *key_id, const char *alg, const AdeSecret *plain, char **ret_wrapped,
        AdeCloudError *ret_error) {
        uint8_t out[128];
        int len, r;

        (void)userdata;
        (void)ret_error;
        ck_assert_str_eq(key_id, KEK_ID);
        ck_assert_str_eq(alg, KEK_ALG);
        r = aes_wrap(true, plain->data, plain->size, out, &len);
        if (r < 0)
                return r;
        /* Key Vault answers in base64url without padding. */
        *ret_wrapped = ade_base64url_encode(out, (size_t)len);
        return *ret_wrapped ? 0 : -ENOMEM;
}

/* The resolver: knows one KEK, by its id, for one algorithm. */
static int fake_unwrap(void *userdata, const char *key_id, const char *alg, const char *wrapped, AdeSecret **ret_plain,
        AdeCloudError *ret_error) {
        _cleanup_free_ void *raw = NULL;
        uint8_t out[128];
        size_t raw_size;
        int len, r;

        (void)userdata;
        (void)ret_error;
        unwrap_calls++;
        if (!streq(key_id, KEK_ID))
                return -ENOKEY;
        if (!streq(alg, KEK_ALG))
                return -EINVAL;
        r = ade_base64_decode(wrapped, strlen(wrapped), &raw, &raw_size);
        if (r < 0)
                return r;
        if (raw_size > sizeof(out))
                return -EBADMSG;
        r = aes_wrap(false, raw, raw_size, out, &len);
        if (r < 0)
                return r;
        return ade_secret_new_from(out, (size_t)len, ret_plain);
}

static const AdeCseKek test_kek = {.key_id = KEK_ID, .algorithm = KEK_ALG, .wrap = fake_wrap};

static uint8_t *pattern(size_t n) {
        uint8_t *p = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(p);
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(i * 131 + (i >> 20));
        return p;
}

typedef struct Blob {
        uint8_t *plain;
        size_t plain_size;
        uint8_t *body;
        size_t size;
        char *metadata;
} Blob;

static void blob_make(Blob *b, size_t n) {
        void *body;
        int r;

        b->plain = pattern(n);
        b->plain_size = n;
        r = ade_cse_encrypt(b->plain, n, &test_kek, &body, &b->size, &b->metadata, NULL);
        ck_assert_int_eq(r, 0);
        b->body = body;
}

static void blob_done(Blob *b) {
        free(b->plain);
        free(b->body);
        free(b->metadata);
}

static int blob_decrypt(const Blob *b, const void *body, size_t size, const char *metadata, size_t expected) {
        void *plain = NULL;
        size_t plain_size = 0;
        int r;

        r = ade_cse_decrypt(body, size, metadata, fake_unwrap, NULL, expected, &plain, &plain_size, NULL);
        if (r == 0) {
                ck_assert_uint_eq(plain_size, b->plain_size);
                ck_assert_int_eq(memcmp(plain, b->plain, plain_size), 0);
                free(plain);
        } else
                ck_assert_ptr_null(plain);
        return r;
}

static void round_trip(size_t n, unsigned regions) {
        Blob b;

        blob_make(&b, n);
        ck_assert_uint_eq(b.size, n + regions * 28);
        ck_assert_uint_eq(ade_cse_body_size(n, ADE_CSE_REGION_SIZE), b.size);
        /* Region i starts with its nonce, i as a 12-byte big-endian number. */
        for (unsigned i = 0; i < regions; i++) {
                uint8_t want[12] = {0};
                want[11] = (uint8_t)i;
                ck_assert_int_eq(memcmp(b.body + (size_t)i * (ADE_CSE_REGION_SIZE + 28), want, 12), 0);
        }
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), 0);
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, n), 0);
        blob_done(&b);
}

START_TEST(test_empty) {
        round_trip(0, 0);
}
END_TEST

START_TEST(test_one_byte) {
        round_trip(1, 1);
}
END_TEST

START_TEST(test_exactly_one_region) {
        round_trip(4 * MIB, 1);
}
END_TEST

START_TEST(test_one_region_and_a_byte) {
        round_trip(4 * MIB + 1, 2);
}
END_TEST

START_TEST(test_many_regions) {
        round_trip(5 * 4 * MIB + 7, 6);
}
END_TEST

START_TEST(test_luks_header_size) {
        round_trip(16 * MIB, 4);
}
END_TEST

/* GCM's own output, independent of the region code: region 0 of "abc" is the nonce 0, then
 * AES-256-GCM("abc") under the CEK with that nonce. */
START_TEST(test_region_is_plain_gcm) {
        _cleanup_secret_ AdeSecret *cek = NULL;
        _cleanup_free_ void *body = NULL;
        uint8_t ct[3], tag[16], nonce[12] = {0};
        EVP_CIPHER_CTX *c;
        size_t size;
        int len, fin;

        ck_assert_int_eq(ade_secret_new_random(32, &cek), 0);
        ck_assert_int_eq(ade_cse_seal(cek, "abc", 3, &body, &size), 0);
        ck_assert_uint_eq(size, 3 + 28);
        c = EVP_CIPHER_CTX_new();
        ck_assert_int_eq(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, cek->data, nonce), 1);
        ck_assert_int_eq(EVP_EncryptUpdate(c, ct, &len, (const uint8_t *)"abc", 3), 1);
        ck_assert_int_eq(EVP_EncryptFinal_ex(c, ct + len, &fin), 1);
        ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
        EVP_CIPHER_CTX_free(c);
        ck_assert_int_eq(memcmp(body, nonce, 12), 0);
        ck_assert_int_eq(memcmp((uint8_t *)body + 12, ct, 3), 0);
        ck_assert_int_eq(memcmp((uint8_t *)body + 15, tag, 16), 0);
}
END_TEST

START_TEST(test_metadata_as_the_sdks_write_it) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ void *raw = NULL;
        const char *s;
        int64_t v;
        size_t raw_size;
        Blob b;

        blob_make(&b, 10);
        /* The fields in the SDKs' order. */
        ck_assert_ptr_nonnull(
                strstr(b.metadata, "{\"WrappedContentKey\":{\"KeyId\":\"" KEK_ID "\",\"EncryptedKey\":\""));
        ck_assert_ptr_nonnull(strstr(b.metadata,
                "\"Algorithm\":\"A256KW\"},\"EncryptionAgent\":{\"Protocol\":\"2.0\",\"EncryptionAlgorithm\":"
                "\"AES_GCM_256\"},\"EncryptedRegionInfo\":{\"DataLength\":4194304,\"NonceLength\":12},"
                "\"KeyWrappingMetadata\":{\"EncryptionLibrary\":\"ade "));
        ck_assert_ptr_nonnull(strstr(b.metadata, "\"},\"EncryptionMode\":\"FullBlob\"}"));
        ck_assert_int_eq(ade_json_parse(b.metadata, strlen(b.metadata), &o), 0);
        ck_assert_int_eq(ade_json_get_path_string(o, &s, "WrappedContentKey", "EncryptedKey", NULL), 0);
        /* Standard base64 with padding (40 bytes wrapped by AES-KW are 48: "...=" not needed, but no
         * base64url characters). */
        ck_assert_ptr_null(strpbrk(s, "-_"));
        ck_assert_uint_eq(strlen(s) % 4, 0);
        ck_assert_int_eq(ade_base64_decode(s, strlen(s), &raw, &raw_size), 0);
        ck_assert_uint_eq(raw_size, 48);
        ck_assert_int_eq(ade_json_get_int64(json_object_object_get(o, "EncryptedRegionInfo"), "DataLength", &v), 0);
        ck_assert_int_eq(v, 4 * MIB);
        blob_done(&b);
}
END_TEST

START_TEST(test_wrap_input) {
        _cleanup_secret_ AdeSecret *cek = NULL, *in = NULL, *back = NULL, *bad = NULL, *out = NULL;

        ck_assert_int_eq(ade_secret_new_random(32, &cek), 0);
        ck_assert_int_eq(ade_cse_wrap_input(cek, &in), 0);
        ck_assert_uint_eq(in->size, 40);
        ck_assert_int_eq(memcmp(in->data, "2.0\0\0\0\0\0", 8), 0);
        ck_assert_int_eq(memcmp(in->data + 8, cek->data, 32), 0);
        ck_assert_int_eq(ade_cse_cek_from_unwrapped(in, &back), 0);
        ck_assert(ade_secret_equal(back, cek));
        /* Another protocol's prefix, a bare CEK (protocol 1.0 wraps it alone), a longer value. */
        ck_assert_int_eq(ade_secret_new(40, &bad), 0);
        memcpy(bad->data, "2.1", 3);
        ck_assert_int_eq(ade_cse_cek_from_unwrapped(bad, &out), -EBADMSG);
        ck_assert_int_eq(ade_cse_cek_from_unwrapped(cek, &out), -EBADMSG);
        ck_assert_ptr_null(out);
}
END_TEST

/* One flipped byte anywhere: in a nonce, a ciphertext, a tag, of the first, a middle or the last
 * region. */
START_TEST(test_flipped_byte_refused) {
        const size_t region = ADE_CSE_REGION_SIZE + 28;
        const size_t where[] = {0, 11, 12, 100, ADE_CSE_REGION_SIZE + 11, ADE_CSE_REGION_SIZE + 12, region - 1, region,
                region + 5, region + 12 + 77777, 2 * region - 16, 2 * region, 2 * region + 12, 2 * region + 12 + 4,
                2 * region + 12 + 5 + 15};
        Blob b;

        blob_make(&b, 2 * ADE_CSE_REGION_SIZE + 5);
        ck_assert_uint_eq(b.size, 2 * region + 5 + 28);
        for (size_t i = 0; i < ELEMENTSOF(where); i++) {
                ck_assert_uint_lt(where[i], b.size);
                b.body[where[i]] ^= 0x01;
                ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
                b.body[where[i]] ^= 0x01;
        }
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), 0);
        blob_done(&b);
}
END_TEST

START_TEST(test_wrong_tag_refused) {
        const size_t region = ADE_CSE_REGION_SIZE + 28;
        uint8_t saved[16];
        Blob b;

        blob_make(&b, ADE_CSE_REGION_SIZE + 100);
        /* A zero tag on region 0, then region 1's tag on region 0. */
        memcpy(saved, b.body + region - 16, 16);
        memset(b.body + region - 16, 0, 16);
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        memcpy(b.body + region - 16, b.body + b.size - 16, 16);
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        memcpy(b.body + region - 16, saved, 16);
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), 0);
        blob_done(&b);
}
END_TEST

/* Whole regions swapped or repeated carry valid tags: only their nonces give them away. */
START_TEST(test_swapped_regions_refused) {
        const size_t region = ADE_CSE_REGION_SIZE + 28;
        uint8_t *swapped;
        Blob b;

        blob_make(&b, 3 * ADE_CSE_REGION_SIZE);
        swapped = malloc(b.size);
        ck_assert_ptr_nonnull(swapped);
        memcpy(swapped, b.body + region, region);
        memcpy(swapped + region, b.body, region);
        memcpy(swapped + 2 * region, b.body + 2 * region, region);
        ck_assert_int_eq(blob_decrypt(&b, swapped, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        /* Region 0 twice. */
        memcpy(swapped, b.body, region);
        memcpy(swapped + region, b.body, region);
        ck_assert_int_eq(blob_decrypt(&b, swapped, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        /* The middle region dropped. */
        memcpy(swapped + region, b.body + 2 * region, region);
        ck_assert_int_eq(blob_decrypt(&b, swapped, 2 * region, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        free(swapped);
        blob_done(&b);
}
END_TEST

START_TEST(test_truncated_refused) {
        const size_t region = ADE_CSE_REGION_SIZE + 28;
        Blob b;

        blob_make(&b, 2 * ADE_CSE_REGION_SIZE + 1000);
        /* Cut inside the last region, inside its tag, inside a full region, to less than a nonce and a
         * tag. */
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size - 1, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size - 500, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, 2 * region + 28, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, 2 * region + 5, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, region + 100, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, 27, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        /* Cut at a region boundary: every remaining region is genuine, so only the known size tells. */
        ck_assert_int_eq(blob_decrypt(&b, b.body, 2 * region, b.metadata, b.plain_size), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, region, b.metadata, b.plain_size), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, 0, b.metadata, b.plain_size), -EBADMSG);
        /* One byte appended. */
        b.body = realloc(b.body, b.size + 1);
        ck_assert_ptr_nonnull(b.body);
        b.body[b.size] = 0;
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size + 1, b.metadata, ADE_CSE_SIZE_UNKNOWN), -EBADMSG);
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, b.plain_size), 0);
        blob_done(&b);
}
END_TEST

static char *replace(const char *s, const char *from, const char *to) {
        const char *at = strstr(s, from);
        char *out;

        ck_assert_msg(at, "%s not in %s", from, s);
        out = malloc(strlen(s) - strlen(from) + strlen(to) + 1);
        ck_assert_ptr_nonnull(out);
        memcpy(out, s, (size_t)(at - s));
        strcpy(out + (at - s), to);
        strcat(out, at + strlen(from));
        return out;
}

static void edited(const Blob *b, const char *from, const char *to, int want) {
        _cleanup_free_ char *m = replace(b->metadata, from, to);
        ck_assert_msg(blob_decrypt(b, b->body, b->size, m, ADE_CSE_SIZE_UNKNOWN) == want, "%s -> %s", from, to);
}

START_TEST(test_metadata_edits_refused) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *key = NULL;
        const char *s;
        Blob b;

        blob_make(&b, ADE_CSE_REGION_SIZE + 3);
        ck_assert_int_eq(ade_json_parse(b.metadata, strlen(b.metadata), &o), 0);
        ck_assert_int_eq(ade_json_get_path_string(o, &s, "WrappedContentKey", "EncryptedKey", NULL), 0);
        /* The wrapped key with one character changed. */
        key = strdup(s);
        key[5] = key[5] == 'A' ? 'B' : 'A';
        edited(&b, s, key, -EBADMSG);

        edited(&b, KEK_ID, KEK_ID "x", -ENOKEY);
        edited(&b, "\"A256KW\"", "\"A128KW\"", -EINVAL);
        edited(&b, "\"Protocol\":\"2.0\"", "\"Protocol\":\"1.0\"", -EOPNOTSUPP);
        edited(&b, "\"Protocol\":\"2.0\"", "\"Protocol\":\"2.1\"", -EOPNOTSUPP);
        edited(&b, "AES_GCM_256", "AES_CBC_256", -EOPNOTSUPP);
        edited(&b, "\"DataLength\":4194304", "\"DataLength\":4194303", -EBADMSG);
        edited(&b, "\"DataLength\":4194304", "\"DataLength\":8388608", -EBADMSG);
        edited(&b, "\"DataLength\":4194304", "\"DataLength\":0", -EBADMSG);
        edited(&b, "\"DataLength\":4194304", "\"DataLength\":-1", -EBADMSG);
        edited(&b, "\"DataLength\":4194304", "\"DataLength\":\"4x\"", -EBADMSG);
        edited(&b, "\"NonceLength\":12", "\"NonceLength\":16", -EBADMSG);
        edited(&b, "\"NonceLength\":12", "\"NonceLength\":12,\"TagLength\":12", -EBADMSG);
        edited(&b, "\"FullBlob\"", "\"Partial\"", -EBADMSG);
        edited(&b, "{\"WrappedContentKey\"", "{\"WrappedContentKeyX\"", -EBADMSG);
        edited(&b, "\"EncryptedRegionInfo\"", "\"EncryptedRegionInfoX\"", -EBADMSG);
        edited(&b, "{\"WrappedContentKey\"", "[{\"WrappedContentKey\"", -EBADMSG);
        /* A refused protocol never reaches the KEK. */
        unwrap_calls = 0;
        edited(&b, "\"Protocol\":\"2.0\"", "\"Protocol\":\"1.0\"", -EOPNOTSUPP);
        ck_assert_uint_eq(unwrap_calls, 0);
        /* The untouched metadata still works. */
        ck_assert_int_eq(blob_decrypt(&b, b.body, b.size, b.metadata, ADE_CSE_SIZE_UNKNOWN), 0);
        blob_done(&b);
}
END_TEST

/* What older SDK releases wrote: another name for the region length, a TagLength, lengths as text,
 * no EncryptionMode nor KeyWrappingMetadata. */
START_TEST(test_older_field_names_accepted) {
        _cleanup_(ade_cse_metadata_freep) AdeCseMetadata *m = NULL;
        Blob b;

        blob_make(&b, 77);
        edited(&b, "\"DataLength\":4194304,\"NonceLength\":12",
                "\"EncryptionRegionLength\":\"4194304\",\"NonceLength\":\"12\",\"TagLength\":\"16\"", 0);
        edited(&b, "\"DataLength\"", "\"EncryptedRegionDataLength\"", 0);
        edited(&b, "\"NonceLength\":12", "\"NonceLength\":12,\"TagLength\":16", 0);
        edited(&b, ",\"EncryptionMode\":\"FullBlob\"", "", 0);
        ck_assert_int_eq(ade_cse_metadata_parse(b.metadata, &m), 0);
        ck_assert_str_eq(m->key_id, KEK_ID);
        ck_assert_str_eq(m->algorithm, KEK_ALG);
        ck_assert_uint_eq(m->region_size, ADE_CSE_REGION_SIZE);
        ck_assert_ptr_nonnull(m->encryption_library);
        ck_assert_int_eq(strncmp(m->encryption_library, "ade ", 4), 0);
        blob_done(&b);
}
END_TEST

static int failing_wrap(void *userdata, const char *key_id, const char *alg, const AdeSecret *plain, char **ret_wrapped,
        AdeCloudError *ret_error) {
        (void)userdata;
        (void)alg;
        (void)plain;
        (void)ret_wrapped;
        return ade_cloud_error_set(ret_error, 403, "Forbidden", "no wrapKey permission", key_id) < 0 ? -ENOMEM
                                                                                                     : -EACCES;
}

START_TEST(test_wrap_failure_passed_on) {
        _cleanup_cloud_error_ AdeCloudError e = ADE_CLOUD_ERROR_NULL;
        AdeCseKek k = test_kek;
        void *body = NULL;
        char *md = NULL;
        size_t size;

        k.wrap = failing_wrap;
        ck_assert_int_eq(ade_cse_encrypt("x", 1, &k, &body, &size, &md, &e), -EACCES);
        ck_assert_ptr_null(body);
        ck_assert_ptr_null(md);
        ck_assert_str_eq(e.code, "Forbidden");
}
END_TEST

static Suite *cse_suite(void) {
        Suite *s = suite_create("cse");
        TCase *tc = ade_test_case("core");

        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_one_byte);
        tcase_add_test(tc, test_exactly_one_region);
        tcase_add_test(tc, test_one_region_and_a_byte);
        tcase_add_test(tc, test_many_regions);
        tcase_add_test(tc, test_luks_header_size);
        tcase_add_test(tc, test_region_is_plain_gcm);
        tcase_add_test(tc, test_metadata_as_the_sdks_write_it);
        tcase_add_test(tc, test_wrap_input);
        tcase_add_test(tc, test_flipped_byte_refused);
        tcase_add_test(tc, test_wrong_tag_refused);
        tcase_add_test(tc, test_swapped_regions_refused);
        tcase_add_test(tc, test_truncated_refused);
        tcase_add_test(tc, test_metadata_edits_refused);
        tcase_add_test(tc, test_older_field_names_accepted);
        tcase_add_test(tc, test_wrap_failure_passed_on);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(cse_suite());
}
