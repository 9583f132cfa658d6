/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Key Vault client parts that need no vault: the 401 challenge and object URLs. */
#include "ade-keyvault.h"
#include "ade-test.h"
#include "ade-url.h"

static void parse_ok(const char *header, AdeKvChallenge *c) {
        ck_assert_int_eq(ade_keyvault_parse_challenge(header, c), 0);
}

START_TEST(test_challenge_resource_form) {
        AdeKvChallenge c = {};

        parse_ok("Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", "
                 "resource=\"https://vault.azure.net\"",
                &c);
        ck_assert_str_eq(c.authorization, "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47");
        ck_assert_str_eq(c.tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        ck_assert_str_eq(c.resource, "https://vault.azure.net");
        ck_assert_ptr_null(c.scope);
        ade_kv_challenge_done(&c);
}
END_TEST

START_TEST(test_challenge_login_windows_net_scope_form) {
        AdeKvChallenge c = {};

        parse_ok("Bearer authorization=\"https://login.windows.net/OriginalTenantId\", "
                 "scope=\"https://test.vault.azure.net/.default\"",
                &c);
        ck_assert_str_eq(c.tenant, "OriginalTenantId");
        ck_assert_str_eq(c.scope, "https://test.vault.azure.net/.default");
        ck_assert_ptr_null(c.resource);
        ade_kv_challenge_done(&c);
}
END_TEST

START_TEST(test_challenge_authorization_uri_and_extra_params) {
        AdeKvChallenge c = {};

        parse_ok("Bearer realm=\"\", authorization_uri=\"https://localhost:8443/tid\", error=\"invalid_token\", "
                 "resource=\"https://vault.azure.net\"",
                &c);
        ck_assert_str_eq(c.authorization, "https://localhost:8443/tid");
        ck_assert_str_eq(c.tenant, "tid");
        ade_kv_challenge_done(&c);
}
END_TEST

START_TEST(test_challenge_unquoted_any_order_no_commas) {
        AdeKvChallenge c = {};

        parse_ok("bearer resource=https://vault.azure.net authorization=https://login.microsoftonline.com/t1", &c);
        ck_assert_str_eq(c.resource, "https://vault.azure.net");
        ck_assert_str_eq(c.tenant, "t1");
        ade_kv_challenge_done(&c);
}
END_TEST

START_TEST(test_challenge_authority_without_tenant) {
        AdeKvChallenge c = {};

        parse_ok("Bearer authorization_uri=\"https://login.windows.net/\", resource=\"https://management.azure.com/\"",
                &c);
        ck_assert_ptr_null(c.tenant);
        ade_kv_challenge_done(&c);
}
END_TEST

START_TEST(test_challenge_not_bearer_refused) {
        AdeKvChallenge c = {};

        ck_assert_int_eq(ade_keyvault_parse_challenge("Basic realm=\"x\"", &c), -EBADMSG);
        ck_assert_int_eq(
                ade_keyvault_parse_challenge("BearerX authorization=\"https://a/t\", resource=\"r\"", &c), -EBADMSG);
        ck_assert_int_eq(ade_keyvault_parse_challenge(NULL, &c), -EBADMSG);
        ck_assert_int_eq(ade_keyvault_parse_challenge("", &c), -EBADMSG);
        ck_assert_ptr_null(c.authorization);
}
END_TEST

START_TEST(test_challenge_without_authorization_refused) {
        AdeKvChallenge c = {};

        ck_assert_int_eq(ade_keyvault_parse_challenge("Bearer resource=\"https://vault.azure.net\"", &c), -EBADMSG);
        ck_assert_int_eq(
                ade_keyvault_parse_challenge("Bearer authorization=\"\", resource=\"https://vault.azure.net\"", &c),
                -EBADMSG);
}
END_TEST

START_TEST(test_challenge_without_resource_or_scope_refused) {
        AdeKvChallenge c = {};

        ck_assert_int_eq(
                ade_keyvault_parse_challenge("Bearer authorization=\"https://login.windows.net/t\"", &c), -EBADMSG);
}
END_TEST

START_TEST(test_challenge_unterminated_quote_refused) {
        AdeKvChallenge c = {};

        ck_assert_int_eq(
                ade_keyvault_parse_challenge("Bearer authorization=\"https://a/t, resource=\"r", &c), -EBADMSG);
        ck_assert_int_eq(ade_keyvault_parse_challenge("Bearer authorization", &c), -EBADMSG);
}
END_TEST

START_TEST(test_challenge_authorization_not_a_url_refused) {
        AdeKvChallenge c = {};

        ck_assert_int_eq(ade_keyvault_parse_challenge("Bearer authorization=\"tenant\", resource=\"r\"", &c), -EBADMSG);
}
END_TEST

START_TEST(test_key_url_versioned) {
        _cleanup_free_ char *origin = NULL, *name = NULL, *version = NULL;

        ck_assert_int_eq(
                ade_url_keyvault_object("https://contoso.vault.azure.net/keys/kek/0698c2156c1a4e1da5b6bab6f6422fd6",
                        "keys", true, &origin, &name, &version),
                0);
        ck_assert_str_eq(origin, "https://contoso.vault.azure.net");
        ck_assert_str_eq(name, "kek");
        ck_assert_str_eq(version, "0698c2156c1a4e1da5b6bab6f6422fd6");
}
END_TEST

START_TEST(test_secret_url_without_version) {
        _cleanup_free_ char *name = NULL;
        char *version = (char *)"untouched";

        ck_assert_int_eq(ade_url_keyvault_object("https://localhost:8443/secrets/8dd9285a-6848-401f-a392-8194d0e91188/",
                                 "secrets", false, NULL, &name, &version),
                0);
        ck_assert_str_eq(name, "8dd9285a-6848-401f-a392-8194d0e91188");
        ck_assert_ptr_null(version);
}
END_TEST

START_TEST(test_key_url_without_version_refused_when_required) {
        ck_assert_int_eq(
                ade_url_keyvault_object("https://v.vault.azure.net/keys/kek", "keys", true, NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_object_url_wrong_kind_refused) {
        ck_assert_int_eq(
                ade_url_keyvault_object("https://v.vault.azure.net/secrets/kek/1", "keys", false, NULL, NULL, NULL),
                -EINVAL);
}
END_TEST

START_TEST(test_object_url_bad_names_refused) {
        ck_assert_int_eq(ade_url_keyvault_object("https://v/keys/k_e_k/1", "keys", false, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(ade_url_keyvault_object("https://v/keys//1", "keys", false, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(ade_url_keyvault_object("https://v/keys/kek/1-2", "keys", false, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(
                ade_url_keyvault_object("https://v/keys/kek/1/wrapkey", "keys", false, NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_object_url_plain_http_refused) {
        ck_assert_int_eq(ade_url_keyvault_object("http://v/keys/kek/1", "keys", false, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(ade_url_keyvault_object(NULL, "keys", false, NULL, NULL, NULL), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("keyvault");
        TCase *tc = ade_test_case("keyvault");

        tcase_add_test(tc, test_challenge_resource_form);
        tcase_add_test(tc, test_challenge_login_windows_net_scope_form);
        tcase_add_test(tc, test_challenge_authorization_uri_and_extra_params);
        tcase_add_test(tc, test_challenge_unquoted_any_order_no_commas);
        tcase_add_test(tc, test_challenge_authority_without_tenant);
        tcase_add_test(tc, test_challenge_not_bearer_refused);
        tcase_add_test(tc, test_challenge_without_authorization_refused);
        tcase_add_test(tc, test_challenge_without_resource_or_scope_refused);
        tcase_add_test(tc, test_challenge_unterminated_quote_refused);
        tcase_add_test(tc, test_challenge_authorization_not_a_url_refused);
        tcase_add_test(tc, test_key_url_versioned);
        tcase_add_test(tc, test_secret_url_without_version);
        tcase_add_test(tc, test_key_url_without_version_refused_when_required);
        tcase_add_test(tc, test_object_url_wrong_kind_refused);
        tcase_add_test(tc, test_object_url_bad_names_refused);
        tcase_add_test(tc, test_object_url_plain_http_refused);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
