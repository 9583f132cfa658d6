/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ADE's escrow and key resolver against the emulator. The secret written is checked in the emulator's
 * state dump (not through ade's own reader), then resolved back. */
#include <curl/curl.h>

#include "ade-base64.h"
#include "ade-envelope.h"
#include "ade-imds.h"
#include "ade-json.h"
#include "ade-keyfile.h"
#include "ade-test.h"
#include "emu-harness.h"

typedef struct Ctx {
        AdeCredential *cred;
        AdeKeyVault *kv;
} Ctx;

static void ctx_done(Ctx *c) {
        ade_keyvault_free(c->kv);
        ade_credential_free(c->cred);
}

static void ctx_start(Ctx *c) {
        AdeHttpOptions o;

        *c = (Ctx){};
        ade_emulator_http_options(ade_emulator_suite, 2, &o);
        ck_assert_int_eq(ade_emulator_credential(ade_emulator_suite, &o, &c->cred), 0);
        ck_assert_int_eq(ade_keyvault_new(ade_emulator_suite->vault_url, c->cred, ade_emulator_suite->keyvault_resource,
                                 &o, &c->kv),
                0);
}

static AdeSecret *key_file(void) {
        AdeSecret *k = NULL;

        ck_assert_int_eq(ade_keyfile_generate(&k), 0);
        return k;
}

/* The latest version of secret @name in the emulator's state. */
static json_object *state_secret(const char *secret_url) {
        _cleanup_json_ json_object *state = NULL;
        json_object *secrets, *found = NULL;

        ck_assert_int_eq(ade_emulator_state(ade_emulator_suite, &state), 0);
        ck_assert_int_eq(ade_json_get_array(state, "secrets", &secrets), 0);
        for (size_t i = 0; i < json_object_array_length(secrets); i++) {
                json_object *s = json_object_array_get_idx(secrets, i);
                const char *id;

                if (ade_json_get_string(s, "id", &id) >= 0 && streq(id, secret_url))
                        found = s;
        }
        ck_assert_ptr_nonnull(found);
        return json_object_get(found);
}

static size_t count_secrets(void) {
        _cleanup_json_ json_object *state = NULL;
        json_object *secrets;

        ck_assert_int_eq(ade_emulator_state(ade_emulator_suite, &state), 0);
        ck_assert_int_eq(ade_json_get_array(state, "secrets", &secrets), 0);
        return json_object_array_length(secrets);
}

static const char *tag(json_object *secret, const char *name) {
        const char *s = NULL;

        if (ade_json_get_path_string(secret, &s, "tags", name, NULL) < 0)
                return NULL;
        return s;
}

START_TEST(test_escrow_without_kek_writes_bek) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file();
        _cleanup_free_ char *url = NULL, *wrapped = NULL;
        _cleanup_free_ void *raw = NULL;
        _cleanup_json_ json_object *s = NULL;
        const char *v;
        size_t size;

        ctx_start(&c);
        ck_assert_int_eq(ade_envelope_escrow(c.kv, NULL, k,
                                 &(AdeEnvelopeParams){
                                         .key_file_name = "LinuxPassPhraseFileName_0_0", .machine_name = "ade-test-vm"},
                                 &url, &wrapped, NULL),
                0);
        ck_assert_ptr_null(wrapped);
        s = state_secret(url);
        ck_assert_int_eq(ade_json_get_string(s, "contentType", &v), 0);
        ck_assert_str_eq(v, "BEK");
        ck_assert_str_eq(tag(s, "DiskEncryptionKeyFileName"), "LinuxPassPhraseFileName_0_0");
        ck_assert_str_eq(tag(s, "DiskEncryptionKeyEncryptionAlgorithm"), "RSA-OAEP");
        ck_assert_str_eq(tag(s, "MachineName"), "ade-test-vm");
        ck_assert_ptr_null(tag(s, "DiskEncryptionKeyEncryptionKeyURL"));
        ck_assert_int_eq(ade_json_get_string(s, "value", &v), 0);
        ck_assert_int_eq(ade_base64_decode(v, strlen(v), &raw, &size), 0);
        ck_assert_uint_eq(size, k->size);
        ck_assert_mem_eq(raw, k->data, size);
}
END_TEST

static const char *const algs[] = {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"};

START_TEST(test_escrow_with_kek_writes_wrapped_bek) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file(), *back = NULL;
        _cleanup_free_ char *url = NULL, *wrapped = NULL;
        _cleanup_json_ json_object *s = NULL;
        const char *v;

        ctx_start(&c);
        ck_assert_int_eq(
                ade_envelope_escrow(c.kv, NULL, k,
                        &(AdeEnvelopeParams){.kek_url = ade_emulator_suite->kek_url, .kek_algorithm = algs[_i]}, &url,
                        &wrapped, NULL),
                0);
        s = state_secret(url);
        ck_assert_int_eq(ade_json_get_string(s, "contentType", &v), 0);
        ck_assert_str_eq(v, "Wrapped BEK");
        ck_assert_str_eq(tag(s, "DiskEncryptionKeyEncryptionKeyURL"), ade_emulator_suite->kek_url);
        ck_assert_str_eq(tag(s, "DiskEncryptionKeyEncryptionAlgorithm"), algs[_i]);
        ck_assert_int_eq(ade_json_get_string(s, "value", &v), 0);
        ck_assert_str_eq(v, wrapped);

        ck_assert_int_eq(ade_envelope_resolve(c.kv, NULL, url, NULL, NULL, NULL, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, k));
}
END_TEST

START_TEST(test_escrow_reads_back_before_returning) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file();
        _cleanup_free_ char *url = NULL;
        _cleanup_json_ json_object *reqs = NULL;
        const char *m1, *m2;
        size_t n;

        ctx_start(&c);
        ck_assert_int_eq(ade_envelope_escrow(c.kv, NULL, k, &(AdeEnvelopeParams){}, &url, NULL, NULL), 0);
        ck_assert_int_eq(ade_emulator_requests(ade_emulator_suite, &reqs), 0);
        n = json_object_array_length(reqs);
        ck_assert_uint_ge(n, 2);
        ck_assert_int_eq(ade_json_get_string(json_object_array_get_idx(reqs, n - 2), "method", &m1), 0);
        ck_assert_int_eq(ade_json_get_string(json_object_array_get_idx(reqs, n - 1), "method", &m2), 0);
        ck_assert_str_eq(m1, "PUT");
        ck_assert_str_eq(m2, "GET");
}
END_TEST

START_TEST(test_resolve_bek) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file(), *back = NULL;
        _cleanup_free_ char *url = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_envelope_escrow(c.kv, NULL, k, &(AdeEnvelopeParams){}, &url, NULL, NULL), 0);
        ck_assert_int_eq(ade_envelope_resolve(c.kv, NULL, url, NULL, NULL, NULL, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, k));
}
END_TEST

START_TEST(test_resolve_from_token_passphrase_is_one_unwrap) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file(), *back = NULL;
        _cleanup_free_ char *url = NULL, *wrapped = NULL;
        _cleanup_json_ json_object *reqs = NULL;
        const char *path;

        ctx_start(&c);
        ck_assert_int_eq(ade_envelope_escrow(c.kv, NULL, k,
                                 &(AdeEnvelopeParams){.kek_url = ade_emulator_suite->kek_url}, &url, &wrapped, NULL),
                0);
        ck_assert_int_eq(ade_emulator_clear_requests(ade_emulator_suite), 0);
        ck_assert_int_eq(
                ade_envelope_resolve(c.kv, NULL, url, ade_emulator_suite->kek_url, "RSA-OAEP", wrapped, &back, NULL),
                0);
        ck_assert(ade_secret_equal(back, k));
        ck_assert_int_eq(ade_emulator_requests(ade_emulator_suite, &reqs), 0);
        ck_assert_uint_eq(json_object_array_length(reqs), 1);
        ck_assert_int_eq(ade_json_get_string(json_object_array_get_idx(reqs, 0), "path", &path), 0);
        ck_assert_ptr_nonnull(strstr(path, "/unwrapkey"));
}
END_TEST

START_TEST(test_resolve_not_a_key_file_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v = NULL;
        _cleanup_free_ char *id = NULL;
        AdeSecret *back = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("aGVsbG8=", 8, &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "notakey", v, "BEK", NULL, &id, NULL), 0);
        ck_assert_int_eq(ade_envelope_resolve(c.kv, NULL, id, NULL, NULL, NULL, &back, NULL), -EBADMSG);
        ck_assert_ptr_null(back);
}
END_TEST

START_TEST(test_resolve_wrapped_without_kek_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v = NULL;
        _cleanup_free_ char *id = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeSecret *back = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("abc_-", 5, &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "wrappednokek", v, "Wrapped BEK", NULL, &id, NULL), 0);
        ck_assert_int_eq(ade_envelope_resolve(c.kv, NULL, id, NULL, NULL, NULL, &back, &e), -EBADMSG);
        ck_assert_str_eq(e.code, "NoKekUrl");
}
END_TEST

START_TEST(test_resolve_missing_secret) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_free_ char *url = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeSecret *back = NULL;

        ctx_start(&c);
        ck_assert_int_ge(
                asprintf(&url, "%s/secrets/8dd9285a-6848-401f-a392-8194d0e91188", ade_emulator_suite->vault_url), 0);
        ck_assert_int_eq(ade_envelope_resolve(c.kv, NULL, url, NULL, NULL, NULL, &back, &e), -ENOENT);
        ck_assert_str_eq(e.code, "SecretNotFound");
}
END_TEST

START_TEST(test_escrow_not_a_key_file_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = NULL;
        char *url = NULL;
        size_t before;

        ctx_start(&c);
        before = count_secrets();
        ck_assert_int_eq(ade_secret_new_from("password", 8, &k), 0);
        ck_assert_int_eq(ade_envelope_escrow(c.kv, NULL, k, &(AdeEnvelopeParams){}, &url, NULL, NULL), -EINVAL);
        ck_assert_ptr_null(url);
        ck_assert_uint_eq(count_secrets(), before);
}
END_TEST

START_TEST(test_escrow_with_unknown_kek_writes_nothing) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file();
        _cleanup_free_ char *kek = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        char *url = NULL;
        size_t before;

        ctx_start(&c);
        before = count_secrets();
        ck_assert_int_ge(
                asprintf(&kek, "%s/keys/nokey/0123456789abcdef0123456789abcdef", ade_emulator_suite->vault_url), 0);
        ck_assert_int_eq(
                ade_envelope_escrow(c.kv, NULL, k, &(AdeEnvelopeParams){.kek_url = kek}, &url, NULL, &e), -ENOENT);
        ck_assert_str_eq(e.code, "KeyNotFound");
        ck_assert_ptr_null(url);
        ck_assert_uint_eq(count_secrets(), before);
}
END_TEST

START_TEST(test_escrow_throttled_then_success) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *k = key_file();
        _cleanup_free_ char *url = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(ade_emulator_suite,
                                 "{\"route\":\"keyvault\",\"status\":429,\"retry_after\":0,\"count\":2}"),
                0);
        ck_assert_int_eq(ade_envelope_escrow(c.kv, NULL, k,
                                 &(AdeEnvelopeParams){.kek_url = ade_emulator_suite->kek_url}, &url, NULL, NULL),
                0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("envelope-ade_emulator_suite");
        TCase *tc = ade_test_case("envelope-ade_emulator_suite");

        if (!ade_emulator_available())
                return 77;
        curl_global_init(CURL_GLOBAL_DEFAULT);

        tcase_add_unchecked_fixture(tc, ade_emulator_suite_setup, ade_emulator_suite_teardown);
        tcase_add_checked_fixture(tc, ade_emulator_test_setup, NULL);
        tcase_add_test(tc, test_escrow_without_kek_writes_bek);
        tcase_add_loop_test(tc, test_escrow_with_kek_writes_wrapped_bek, 0, (int)ELEMENTSOF(algs));
        tcase_add_test(tc, test_escrow_reads_back_before_returning);
        tcase_add_test(tc, test_resolve_bek);
        tcase_add_test(tc, test_resolve_from_token_passphrase_is_one_unwrap);
        tcase_add_test(tc, test_resolve_not_a_key_file_refused);
        tcase_add_test(tc, test_resolve_wrapped_without_kek_refused);
        tcase_add_test(tc, test_resolve_missing_secret);
        tcase_add_test(tc, test_escrow_not_a_key_file_refused);
        tcase_add_test(tc, test_escrow_with_unknown_kek_writes_nothing);
        tcase_add_test(tc, test_escrow_throttled_then_success);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
