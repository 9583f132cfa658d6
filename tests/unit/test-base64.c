/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-base64.h"
#include "ade-keyfile.h"
#include "ade-test.h"

START_TEST(test_encode_both_alphabets) {
        static const unsigned char d[] = {0xfb, 0xff, 0xbf, 0x41};
        _cleanup_free_ char *a = ade_base64_encode(d, sizeof(d));
        _cleanup_free_ char *b = ade_base64url_encode(d, sizeof(d));

        ck_assert_str_eq(a, "+/+/QQ==");
        ck_assert_str_eq(b, "-_-_QQ");
}
END_TEST

START_TEST(test_decode_accepts_all_forms) {
        /* Key Vault's "My Key" example, in the four forms a client may meet */
        static const char *const forms[] = {"TXkgS2V5", "TXkgS2V5", "+/+/QQ==", "-_-_QQ", "-_-_QQ==", "+/+/QQ"};
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                _cleanup_free_ void *p = NULL;
                size_t n;
                ck_assert_int_eq(ade_base64_decode(forms[i], strlen(forms[i]), &p, &n), 0);
                ck_assert_uint_eq(n, i < 2 ? 6 : 4);
        }
}
END_TEST

START_TEST(test_decode_refuses_garbage) {
        static const char *const bad[] = {"TXk gS2V5", "TXkg\nS2V5", "T", "TX===", "TXkgS2V5=", "T=Xk", "*abc"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                void *p = NULL;
                size_t n;
                ck_assert_msg(ade_base64_decode(bad[i], strlen(bad[i]), &p, &n) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(p);
        }
}
END_TEST

START_TEST(test_keyfile_shape) {
        _cleanup_secret_ AdeSecret *k = NULL, *raw = NULL;

        ck_assert_int_eq(ade_keyfile_generate(&k), 0);
        ck_assert_uint_eq(k->size, ADE_KEYFILE_SIZE);
        ck_assert_uint_eq(strlen((char *)k->data), 172);
        ck_assert_mem_eq(k->data + 170, "==", 2);
        ck_assert(ade_keyfile_is_valid(k));
        ck_assert_int_eq(ade_base64_decode_secret((char *)k->data, k->size, &raw), 0);
        ck_assert_uint_eq(raw->size, 127);
}
END_TEST

START_TEST(test_keyfile_invalid_shapes) {
        _cleanup_secret_ AdeSecret *k = NULL, *short_one = NULL;

        ck_assert_int_eq(ade_keyfile_generate(&k), 0);
        k->data[5] = '-'; /* a base64url character has no place in a key file */
        ck_assert(!ade_keyfile_is_valid(k));
        ck_assert_int_eq(ade_secret_new_from("QUJD", 4, &short_one), 0);
        ck_assert(!ade_keyfile_is_valid(short_one));
        ck_assert(!ade_keyfile_is_valid(NULL));
}
END_TEST

START_TEST(test_secret_round_trip_url) {
        _cleanup_secret_ AdeSecret *in = NULL, *enc = NULL, *back = NULL;

        ck_assert_int_eq(ade_secret_new_random(200, &in), 0);
        ck_assert_int_eq(ade_base64_encode_secret(in, true, &enc), 0);
        ck_assert_ptr_null(memchr(enc->data, '=', enc->size));
        ck_assert_int_eq(ade_base64_decode_secret((char *)enc->data, enc->size, &back), 0);
        ck_assert(ade_secret_equal(in, back));
}
END_TEST

int main(void) {
        Suite *s = suite_create("base64");
        TCase *tc = ade_test_case("base64");

        tcase_add_test(tc, test_encode_both_alphabets);
        tcase_add_test(tc, test_decode_accepts_all_forms);
        tcase_add_test(tc, test_decode_refuses_garbage);
        tcase_add_test(tc, test_keyfile_shape);
        tcase_add_test(tc, test_keyfile_invalid_shapes);
        tcase_add_test(tc, test_secret_round_trip_url);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
