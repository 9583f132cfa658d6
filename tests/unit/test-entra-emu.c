/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Entra ID client credentials against the emulator: a client secret and a certificate assertion
 * (PS256 and RS256) get tokens Key Vault accepts; bad credentials are refused with Entra's code;
 * ade.conf's [identity] builds the same credentials. One emulator for the suite. */
#include <sys/stat.h>
#include <curl/curl.h>

#include "ade-config.h"
#include "ade-entra.h"
#include "ade-identity.h"
#include "ade-jwt.h"
#include "ade-json.h"
#include "ade-keyvault.h"
#include "ade-test.h"
#include "emu-harness.h"

#define SECRET_APP "5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03"
#define SECRET_APP_SECRET "ade~emulator.Secret-0123456789"
#define CERT_APP "5f6a7b8c-4444-4d5e-9f0a-1b2c3d4e5f04"

static AdeHttpOptions opts(void) {
        AdeHttpOptions o;

        ade_emulator_http_options(ade_emulator_suite, 2, &o);
        return o;
}

static AdeEntra *secret_client(const char *secret) {
        _cleanup_secret_ AdeSecret *s = NULL;
        AdeHttpOptions o = opts();
        AdeEntra *e = NULL;

        ck_assert_int_eq(ade_secret_new_from(secret, strlen(secret), &s), 0);
        ck_assert_int_eq(ade_entra_new_secret(ade_emulator_suite->authority_url, ade_emulator_suite->tenant_id,
                                 SECRET_APP, s, &o, &e),
                0);
        return e;
}

static AdeEntra *cert_client(void) {
        _cleanup_free_ char *cert = NULL, *key = NULL;
        AdeHttpOptions o = opts();
        AdeEntra *e = NULL;

        ck_assert_int_ge(asprintf(&cert, "%s/app-cert.pem", ade_emulator_suite->dir), 0);
        ck_assert_int_ge(asprintf(&key, "%s/app-key.pem", ade_emulator_suite->dir), 0);
        ck_assert_int_eq(ade_entra_new_certificate(ade_emulator_suite->authority_url, ade_emulator_suite->tenant_id,
                                 CERT_APP, cert, key, &o, &e),
                0);
        return e;
}

/* The token must be one Key Vault takes: get the KEK through a client using this credential. */
static void key_vault_accepts(AdeCredential *cred) {
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        AdeHttpOptions o = opts();

        ck_assert_int_eq(
                ade_keyvault_new(ade_emulator_suite->vault_url, cred, ade_emulator_suite->keyvault_resource, &o, &kv),
                0);
        ck_assert_int_eq(ade_keyvault_get_key(kv, ade_emulator_suite->kek_url, &k, NULL), 0);
        ck_assert_str_eq(k->kty, "RSA");
}

START_TEST(test_client_secret_token) {
        _cleanup_(ade_entra_freep) AdeEntra *e = secret_client(SECRET_APP_SECRET);
        _cleanup_secret_ AdeSecret *t = NULL;
        _cleanup_json_ json_object *claims = NULL;
        uint64_t exp = 0;
        const char *s;

        ck_assert_int_eq(ade_entra_get_token(e, "https://vault.azure.net", NULL, &t, &exp, NULL), 0);
        ck_assert_uint_gt(exp, (uint64_t)time(NULL) + 600);
        ck_assert_int_eq(ade_jwt_get_claims((char *)t->data, t->size, &claims), 0);
        ck_assert_int_eq(ade_json_get_string(claims, "appid", &s), 0);
        ck_assert_str_eq(s, SECRET_APP);
}
END_TEST

START_TEST(test_client_secret_token_accepted_by_key_vault) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;

        ck_assert_int_eq(ade_entra_credential_new(secret_client(SECRET_APP_SECRET), true, &c), 0);
        key_vault_accepts(c);
}
END_TEST

START_TEST(test_certificate_ps256_token_accepted_by_key_vault) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;

        ck_assert_int_eq(ade_entra_credential_new(cert_client(), true, &c), 0);
        key_vault_accepts(c);
}
END_TEST

START_TEST(test_certificate_rs256_token) {
        _cleanup_(ade_entra_freep) AdeEntra *e = cert_client();
        _cleanup_secret_ AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_entra_set_assertion_alg(e, "RS256"), 0);
        ck_assert_int_eq(ade_entra_get_token(e, "https://management.azure.com/", NULL, &t, &exp, NULL), 0);
}
END_TEST

START_TEST(test_wrong_secret_refused) {
        _cleanup_(ade_entra_freep) AdeEntra *e = secret_client("not-the-secret");
        _cleanup_cloud_error_ AdeCloudError err = {};
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_entra_get_token(e, "https://vault.azure.net", NULL, &t, &exp, &err), -EACCES);
        ck_assert_ptr_null(t);
        ck_assert(err.status == 400 || err.status == 401);
        ck_assert_ptr_nonnull(err.code);
        ck_assert_ptr_nonnull(strstr(err.message, "AADSTS"));
        ck_assert_ptr_nonnull(strstr(err.url, "/oauth2/v2.0/token"));
}
END_TEST

START_TEST(test_certificate_of_another_app_refused) {
        _cleanup_free_ char *cert = NULL, *key = NULL;
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        _cleanup_cloud_error_ AdeCloudError err = {};
        AdeHttpOptions o = opts();
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_ge(asprintf(&cert, "%s/app-cert.pem", ade_emulator_suite->dir), 0);
        ck_assert_int_ge(asprintf(&key, "%s/app-key.pem", ade_emulator_suite->dir), 0);
        /* The secret app has no certificate registered. */
        ck_assert_int_eq(ade_entra_new_certificate(ade_emulator_suite->authority_url, ade_emulator_suite->tenant_id,
                                 SECRET_APP, cert, key, &o, &e),
                0);
        ck_assert_int_eq(ade_entra_get_token(e, "https://vault.azure.net", NULL, &t, &exp, &err), -EACCES);
        ck_assert_ptr_nonnull(err.code);
}
END_TEST

START_TEST(test_unknown_tenant_refused) {
        _cleanup_secret_ AdeSecret *s = NULL;
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        _cleanup_cloud_error_ AdeCloudError err = {};
        AdeHttpOptions o = opts();
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_secret_new_from(SECRET_APP_SECRET, strlen(SECRET_APP_SECRET), &s), 0);
        ck_assert_int_eq(ade_entra_new_secret(ade_emulator_suite->authority_url, "00000000-0000-0000-0000-00000000dead",
                                 SECRET_APP, s, &o, &e),
                0);
        ck_assert_int_lt(ade_entra_get_token(e, "https://vault.azure.net", NULL, &t, &exp, &err), 0);
        ck_assert_ptr_null(t);
        ck_assert_int_ge(err.status, 400);
}
END_TEST

START_TEST(test_throttled_then_success) {
        _cleanup_(ade_entra_freep) AdeEntra *e = secret_client(SECRET_APP_SECRET);
        _cleanup_secret_ AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(
                ade_emulator_fault(ade_emulator_suite, "{\"route\":\"entra\",\"status\":429,\"retry_after\":1}"), 0);
        ck_assert_int_eq(ade_entra_get_token(e, "https://vault.azure.net", NULL, &t, &exp, NULL), 0);
}
END_TEST

START_TEST(test_malformed_answer_refused) {
        _cleanup_(ade_entra_freep) AdeEntra *e = secret_client(SECRET_APP_SECRET);
        _cleanup_cloud_error_ AdeCloudError err = {};
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_emulator_fault(ade_emulator_suite,
                                 "{\"route\":\"entra\",\"body\":\"{\\\"token_type\\\":\\\"Bearer\\\"}\"}"),
                0);
        ck_assert_int_eq(ade_entra_get_token(e, "https://vault.azure.net", NULL, &t, &exp, &err), -EPROTO);
        ck_assert_str_eq(err.code, "MalformedReply");
}
END_TEST

static AdeConfig *config_with(const char *identity) {
        _cleanup_free_ char *path = NULL;
        AdeConfig *c = NULL;

        ck_assert_int_ge(asprintf(&path, "%s/ade-%d.conf", ade_emulator_suite->dir, (int)getpid()), 0);
        ck_assert_int_eq(ade_emulator_write_config(ade_emulator_suite, path, identity), 0);
        ck_assert_int_eq(ade_config_load(path, &c, NULL), 0);
        unlink(path);
        return c;
}

START_TEST(test_config_client_secret_credential) {
        _cleanup_(ade_config_freep) AdeConfig *cfg = NULL;
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        _cleanup_free_ char *secret_file = NULL, *extra = NULL;
        AdeHttpOptions o = opts();
        FILE *f;

        ck_assert_int_ge(asprintf(&secret_file, "%s/secret-%d", ade_emulator_suite->dir, (int)getpid()), 0);
        f = fopen(secret_file, "we");
        ck_assert_ptr_nonnull(f);
        fputs(SECRET_APP_SECRET "\n", f);
        fclose(f);
        ck_assert_int_eq(chmod(secret_file, 0600), 0); /* ade refuses a secret others may read */
        ck_assert_int_ge(asprintf(&extra,
                                 "[identity]\ntype = client-secret\nclient-id = " SECRET_APP "\ntenant-id = %s\n"
                                 "client-secret-file = %s\n",
                                 ade_emulator_suite->tenant_id, secret_file),
                0);
        cfg = config_with(extra);
        ck_assert_int_eq(ade_identity_credential_new(cfg, &o, &c), 0);
        key_vault_accepts(c);
        unlink(secret_file);
}
END_TEST

START_TEST(test_config_managed_identity_credential) {
        _cleanup_(ade_config_freep) AdeConfig *cfg = config_with("[identity]\ntype = managed\n");
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        AdeHttpOptions o = opts();

        ck_assert_int_eq(ade_identity_credential_new(cfg, &o, &c), 0);
        key_vault_accepts(c);
}
END_TEST

START_TEST(test_config_client_secret_without_file_refused) {
        _cleanup_free_ char *extra = NULL;
        _cleanup_(ade_config_freep) AdeConfig *cfg = NULL;
        AdeCredential *c = NULL;
        AdeHttpOptions o = opts();

        ck_assert_int_ge(asprintf(&extra,
                                 "[identity]\ntype = client-secret\nclient-id = " SECRET_APP "\ntenant-id = %s\n"
                                 "client-secret-file = /nonexistent/secret\n",
                                 ade_emulator_suite->tenant_id),
                0);
        cfg = config_with(extra);
        ck_assert_int_eq(ade_identity_credential_new(cfg, &o, &c), -ENOENT);
        ck_assert_ptr_null(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("entra-ade_emulator_suite");
        TCase *tc = ade_test_case("entra-ade_emulator_suite");

        if (!ade_emulator_available())
                return 77;
        curl_global_init(CURL_GLOBAL_DEFAULT);

        tcase_add_unchecked_fixture(tc, ade_emulator_suite_setup, ade_emulator_suite_teardown);
        tcase_add_checked_fixture(tc, ade_emulator_test_setup, NULL);
        tcase_add_test(tc, test_client_secret_token);
        tcase_add_test(tc, test_client_secret_token_accepted_by_key_vault);
        tcase_add_test(tc, test_certificate_ps256_token_accepted_by_key_vault);
        tcase_add_test(tc, test_certificate_rs256_token);
        tcase_add_test(tc, test_wrong_secret_refused);
        tcase_add_test(tc, test_certificate_of_another_app_refused);
        tcase_add_test(tc, test_unknown_tenant_refused);
        tcase_add_test(tc, test_throttled_then_success);
        tcase_add_test(tc, test_malformed_answer_refused);
        tcase_add_test(tc, test_config_client_secret_credential);
        tcase_add_test(tc, test_config_managed_identity_credential);
        tcase_add_test(tc, test_config_client_secret_without_file_refused);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
