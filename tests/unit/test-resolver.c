/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resolver's allow-list decision alone (docs/architecture.md §3): which vault origins a bearer
 * token may go to. Most rows are origins it must refuse. */
#include <errno.h>

#include "ade-config.h"
#include "ade-resolver.h"
#include "ade-test.h"

typedef struct Row {
        const char *url;
        int expected;
} Row;

/* What the configuration of a test names, as ade_url_origin() writes it, plus one vault a root
 * Enable named. */
static char *const trusted[] = {
        (char *)"https://contoso.vault.azure.net",
        (char *)"https://localhost:8443",
        (char *)"https://kek.example.test:9443",
        NULL,
};

static const Row rows[] = {
        /* the trusted origins, however they are written */
        {"https://contoso.vault.azure.net", 0},
        {"https://contoso.vault.azure.net/secrets/s/0123abcd", 0},
        {"HTTPS://Contoso.Vault.Azure.NET.:443/keys/k/1", 0},
        {"https://localhost:8443/secrets/s/1", 0},
        {"https://kek.example.test:9443/keys/kek/0123", 0},
        /* the same hosts on another port, or over plain http: another server */
        {"https://localhost:8444/secrets/s/1", -EPERM},
        {"https://localhost/secrets/s/1", -EPERM},
        {"https://kek.example.test/keys/kek/0123", -EPERM},
        {"https://contoso.vault.azure.net:8443/secrets/s/1", -EPERM},
        {"http://contoso.vault.azure.net/secrets/s/1", -EINVAL},
        {"http://localhost:8443/secrets/s/1", -EINVAL},
        /* the DNS suffix: vaults of the cloud, on 443 only */
        {"https://fabrikam.vault.azure.net/secrets/s/1", 0},
        {"https://fabrikam.vault.azure.net:443/secrets/s/1", 0},
        {"https://FABRIKAM.Vault.Azure.Net./keys/k/1", 0},
        {"https://a.b.vault.azure.net/keys/k/1", 0},
        {"https://fabrikam.vault.azure.net:8443/secrets/s/1", -EPERM},
        {"https://vault.azure.net/secrets/s/1", -EPERM},
        {"https://evilvault.azure.net/secrets/s/1", -EPERM},
        {"https://fabrikam.vault.azure.net.evil.example/secrets/s/1", -EPERM},
        {"https://fabrikam-vault.azure.net/secrets/s/1", -EPERM},
        {"https://fabrikam.vault.azure.cn/secrets/s/1", -EPERM},
        /* hosts nobody named */
        {"https://evil.example/secrets/s/1", -EPERM},
        {"https://127.0.0.1:8443/secrets/s/1", -EPERM},
        {"https://[::1]:8443/secrets/s/1", -EPERM},
        {"https://other.localhost:8443/secrets/s/1", -EPERM},
        {"https://localhost.:8443.evil/secrets/s/1", -EINVAL},
        /* what ade-url.h refuses never gets as far as a comparison */
        {"https://contoso.vault.azure.net@evil.example/secrets/s/1", -EINVAL},
        {"https://u:p@contoso.vault.azure.net/secrets/s/1", -EINVAL},
        {"https://%63ontoso.vault.azure.net/secrets/s/1", -EINVAL},
        {"https://contoso.vault.azure.net\\@evil.example/", -EINVAL},
        {"https://contoso..vault.azure.net/", -EINVAL},
        {"https:///secrets/s/1", -EINVAL},
        {"", -EINVAL},
        {NULL, -EINVAL},
};

START_TEST(test_allow_list_table) {
        const Row *row = &rows[_i];
        int r = ade_resolver_vault_allowed(trusted, ".vault.azure.net", row->url);

        ck_assert_msg(r == row->expected, "%s: %d, expected %d", strna(row->url), r, row->expected);
}
END_TEST

START_TEST(test_no_suffix_trusts_only_named_origins) {
        ck_assert_int_eq(ade_resolver_vault_allowed(trusted, NULL, "https://contoso.vault.azure.net/secrets/s/1"), 0);
        ck_assert_int_eq(
                ade_resolver_vault_allowed(trusted, NULL, "https://fabrikam.vault.azure.net/secrets/s/1"), -EPERM);
        ck_assert_int_eq(ade_resolver_vault_allowed(NULL, NULL, "https://contoso.vault.azure.net/secrets/s/1"), -EPERM);
}
END_TEST

START_TEST(test_sovereign_suffix) {
        ck_assert_int_eq(
                ade_resolver_vault_allowed(NULL, ".vault.azure.cn", "https://fabrikam.vault.azure.cn/keys/k/1"), 0);
        ck_assert_int_eq(
                ade_resolver_vault_allowed(NULL, ".vault.azure.cn", "https://fabrikam.vault.azure.net/keys/k/1"),
                -EPERM);
        ck_assert_int_eq(ade_resolver_vault_allowed(
                                 NULL, ".vault.usgovcloudapi.net", "https://fabrikam.vault.usgovcloudapi.net/keys/k/1"),
                0);
}
END_TEST

START_TEST(test_configured_vaults_trusted_and_more_on_request) {
        _cleanup_(ade_config_freep) AdeConfig *c = NULL;
        _cleanup_(ade_resolver_freep) AdeResolver *r = NULL;
        _cleanup_free_ char *error = NULL;
        static const char text[] = "[keyvault]\n"
                                   "url = https://localhost:8443\n"
                                   "kek-url = https://kek.example.test:9443/keys/kek/0123abcd\n"
                                   "kek-vault-resource-id = /subscriptions/s/resourceGroups/g/providers/"
                                   "Microsoft.KeyVault/vaults/k\n"
                                   "[azure]\n"
                                   "keyvault-dns-suffix = .vault.example.test\n";
        AdeCloudError e = {};

        ck_assert_int_eq(ade_config_parse(text, strlen(text), "test.conf", &c, &error), 0);
        ck_assert_int_eq(ade_resolver_new(c, NULL, &r), 0);

        ck_assert_int_eq(ade_resolver_check_vault(r, "https://localhost:8443/secrets/a/1", NULL), 0);
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://kek.example.test:9443/keys/kek/1", NULL), 0);
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://v1.vault.example.test/keys/kek/1", NULL), 0);
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://v1.vault.azure.net/keys/kek/1", NULL), -EPERM);

        /* Refused with a message that names the vault and what to configure. */
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://localhost:9000/secrets/a/1", &e), -EPERM);
        ck_assert_str_eq(e.code, "VaultNotAllowed");
        ck_assert_str_eq(e.url, "https://localhost:9000/secrets/a/1");
        ck_assert_ptr_nonnull(strstr(e.message, "https://localhost:9000"));
        ck_assert_ptr_nonnull(strstr(e.message, "test.conf"));
        ck_assert_ptr_nonnull(strstr(e.message, "--keyvault-url"));
        ck_assert_ptr_nonnull(strstr(e.message, ".vault.example.test"));
        ade_cloud_error_done(&e);

        /* A vault a root Enable named is trusted from then on; its neighbour on another port is not. */
        ck_assert_int_eq(ade_resolver_trust_vault(r, "https://localhost:9000/keys/other/1"), 0);
        ck_assert_int_eq(ade_resolver_trust_vault(r, "https://localhost:9000"), 0);
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://localhost:9000/secrets/a/1", NULL), 0);
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://localhost:9001/secrets/a/1", NULL), -EPERM);
        ck_assert_int_eq(ade_resolver_trust_vault(r, NULL), 0);
        ck_assert_int_eq(ade_resolver_trust_vault(r, "http://localhost:9001"), -EINVAL);
        ck_assert_int_eq(ade_resolver_trust_vault(r, "https://u@localhost:9001"), -EINVAL);
        ck_assert_int_eq(ade_resolver_check_vault(r, "https://localhost:9001/secrets/a/1", NULL), -EPERM);

        ck_assert_int_eq(ade_resolver_check_vault(r, "https://u@localhost:8443/secrets/a/1", &e), -EINVAL);
        ck_assert_str_eq(e.code, "VaultNotAllowed");
        ade_cloud_error_done(&e);
}
END_TEST

int main(void) {
        Suite *s = suite_create("resolver");
        TCase *tc = ade_test_case("allow-list");

        tcase_add_loop_test(tc, test_allow_list_table, 0, (int)ELEMENTSOF(rows));
        tcase_add_test(tc, test_no_suffix_trusts_only_named_origins);
        tcase_add_test(tc, test_sovereign_suffix);
        tcase_add_test(tc, test_configured_vaults_trusted_and_more_on_request);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
