/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ADE's secret, built without a vault: value encodings, content types and tags (docs/protocols.md §4.2). */
#include "ade-base64.h"
#include "ade-envelope.h"
#include "ade-keyfile.h"
#include "ade-test.h"

static const char *tag(char **tags, const char *name) {
        for (char **t = tags; t && t[0]; t += 2)
                if (streq(t[0], name))
                        return t[1];
        return NULL;
}

static AdeSecret *key_file(void) {
        AdeSecret *k = NULL;

        ck_assert_int_eq(ade_keyfile_generate(&k), 0);
        return k;
}

START_TEST(test_bek_value_is_base64_of_key_file) {
        _cleanup_secret_ AdeSecret *k = key_file(), *v = NULL;
        _cleanup_(strv_freep) char **tags = NULL;
        _cleanup_free_ void *back = NULL;
        const char *ct;
        size_t size;

        ck_assert_int_eq(
                ade_envelope_build_secret(k, NULL, &(AdeEnvelopeParams){.machine_name = "vm1"}, &v, &ct, &tags), 0);
        /* base64 of 172 bytes: 232 characters, as in the real secret docs/protocols.md §4.2 describes. */
        ck_assert_uint_eq(v->size, 232);
        ck_assert_int_eq(ade_base64_decode((char *)v->data, v->size, &back, &size), 0);
        ck_assert_uint_eq(size, ADE_KEYFILE_SIZE);
        ck_assert_mem_eq(back, k->data, size);
        ck_assert_str_eq(ct, "BEK");
}
END_TEST

START_TEST(test_bek_tags) {
        _cleanup_secret_ AdeSecret *k = key_file(), *v = NULL;
        _cleanup_(strv_freep) char **tags = NULL;
        const char *ct;

        ck_assert_int_eq(ade_envelope_build_secret(
                                 k, NULL, &(AdeEnvelopeParams){.machine_name = "ubuntu22-ade"}, &v, &ct, &tags),
                0);
        ck_assert_str_eq(tag(tags, "DiskEncryptionKeyFileName"), "LinuxPassPhraseFileName");
        ck_assert_str_eq(tag(tags, "DiskEncryptionKeyEncryptionAlgorithm"), "RSA-OAEP");
        ck_assert_str_eq(tag(tags, "MachineName"), "ubuntu22-ade");
        ck_assert_ptr_null(tag(tags, "DiskEncryptionKeyEncryptionKeyURL"));
}
END_TEST

START_TEST(test_wrapped_bek_value_and_tags) {
        _cleanup_secret_ AdeSecret *k = key_file(), *v = NULL;
        _cleanup_(strv_freep) char **tags = NULL;
        const char *ct, *kek = "https://contoso.vault.azure.net/keys/kek/0698c2156c1a4e1da5b6bab6f6422fd6";

        ck_assert_int_eq(ade_envelope_build_secret(k, "khwIe26N-_x",
                                 &(AdeEnvelopeParams){.kek_url = kek,
                                         .kek_algorithm = "RSA-OAEP-256",
                                         .key_file_name = "LinuxPassPhraseFileName_0_1",
                                         .machine_name = "vm1"},
                                 &v, &ct, &tags),
                0);
        ck_assert_str_eq((char *)v->data, "khwIe26N-_x");
        ck_assert_str_eq(ct, "Wrapped BEK");
        ck_assert_str_eq(tag(tags, "DiskEncryptionKeyEncryptionKeyURL"), kek);
        ck_assert_str_eq(tag(tags, "DiskEncryptionKeyEncryptionAlgorithm"), "RSA-OAEP-256");
        ck_assert_str_eq(tag(tags, "DiskEncryptionKeyFileName"), "LinuxPassPhraseFileName_0_1");
}
END_TEST

START_TEST(test_machine_name_with_dots_left_out) {
        _cleanup_secret_ AdeSecret *k = key_file(), *v = NULL;
        _cleanup_(strv_freep) char **tags = NULL;
        const char *ct;

        ck_assert_int_eq(ade_envelope_build_secret(
                                 k, NULL, &(AdeEnvelopeParams){.machine_name = "vm1.contoso.com"}, &v, &ct, &tags),
                0);
        ck_assert_ptr_null(tag(tags, "MachineName"));
}
END_TEST

START_TEST(test_not_a_key_file_refused) {
        _cleanup_secret_ AdeSecret *k = NULL;
        AdeSecret *v = NULL;
        char **tags = NULL;
        const char *ct = NULL;

        ck_assert_int_eq(ade_secret_new_from("short passphrase", 16, &k), 0);
        ck_assert_int_eq(ade_envelope_build_secret(k, NULL, &(AdeEnvelopeParams){}, &v, &ct, &tags), -EINVAL);
        ck_assert_ptr_null(v);
        ck_assert_ptr_null(tags);
}
END_TEST

START_TEST(test_wrapped_without_kek_url_refused) {
        _cleanup_secret_ AdeSecret *k = key_file();
        AdeSecret *v = NULL;
        char **tags = NULL;
        const char *ct = NULL;

        ck_assert_int_eq(ade_envelope_build_secret(k, "abc", &(AdeEnvelopeParams){}, &v, &ct, &tags), -EINVAL);
        ck_assert_int_eq(ade_envelope_build_secret(
                                 k, NULL, &(AdeEnvelopeParams){.kek_url = "https://v/keys/k/1"}, &v, &ct, &tags),
                -EINVAL);
        ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_unknown_algorithm_refused) {
        _cleanup_secret_ AdeSecret *k = key_file();
        AdeSecret *v = NULL;
        char **tags = NULL;
        const char *ct = NULL;

        ck_assert_int_eq(ade_envelope_build_secret(k, "abc",
                                 &(AdeEnvelopeParams){.kek_url = "https://v/keys/k/1", .kek_algorithm = "A256KW"}, &v,
                                 &ct, &tags),
                -EINVAL);
        ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_key_file_names) {
        _cleanup_free_ char *os = NULL, *data = NULL;
        char *bad = NULL;

        ck_assert_int_eq(ade_envelope_key_file_name(0, -1, &os), 0);
        ck_assert_str_eq(os, "LinuxPassPhraseFileName");
        ck_assert_int_eq(ade_envelope_key_file_name(1, 3, &data), 0);
        ck_assert_str_eq(data, "LinuxPassPhraseFileName_1_3");
        ck_assert_int_eq(ade_envelope_key_file_name(-1, 3, &bad), -EINVAL);
        ck_assert_ptr_null(bad);
}
END_TEST

int main(void) {
        Suite *s = suite_create("envelope");
        TCase *tc = ade_test_case("envelope");

        tcase_add_test(tc, test_bek_value_is_base64_of_key_file);
        tcase_add_test(tc, test_bek_tags);
        tcase_add_test(tc, test_wrapped_bek_value_and_tags);
        tcase_add_test(tc, test_machine_name_with_dots_left_out);
        tcase_add_test(tc, test_not_a_key_file_refused);
        tcase_add_test(tc, test_wrapped_without_kek_url_refused);
        tcase_add_test(tc, test_unknown_algorithm_refused);
        tcase_add_test(tc, test_key_file_names);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
