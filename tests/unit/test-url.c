/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ade-url: origins decide where a bearer token goes, so most of these are hostile URLs. */
#include "ade-test.h"
#include "ade-url.h"

static char *origin_of(const char *url) {
        char *o = NULL;

        return ade_url_origin(url, &o) < 0 ? NULL : o;
}

#define ORIGIN_IS(url, expected)                                                                                       \
        do {                                                                                                           \
                _cleanup_free_ char *_o = origin_of(url);                                                              \
                ck_assert_msg(_o, "%s refused", url);                                                                  \
                ck_assert_str_eq(_o, expected);                                                                        \
        } while (0)

static void refused(const char *url, int expected) {
        AdeUrl *u = NULL;

        ck_assert_msg(ade_url_parse(url, ADE_URL_ALLOW_HTTP, &u) == expected, "%s: %d, expected %d", url,
                ade_url_parse(url, ADE_URL_ALLOW_HTTP, &u), expected);
        ck_assert_ptr_null(u);
        ck_assert(!ade_url_same_origin(url, url));
}

/* ---- good URLs ---- */

START_TEST(test_parse_fields) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;

        ck_assert_int_eq(ade_url_parse("HTTPS://Contoso.Vault.Azure.NET:8443/secrets/x?api-version=7.4", 0, &u), 0);
        ck_assert_str_eq(u->scheme, "https");
        ck_assert_str_eq(u->host, "contoso.vault.azure.net");
        ck_assert_uint_eq(u->port, 8443);
        ck_assert_str_eq(u->origin, "https://contoso.vault.azure.net:8443");
        ck_assert_str_eq(u->path, "/secrets/x");
        ck_assert_str_eq(u->query, "api-version=7.4");
        ck_assert_ptr_null(u->fragment);
}
END_TEST

START_TEST(test_default_port_is_no_port) {
        ORIGIN_IS("https://v.vault.azure.net:443/x", "https://v.vault.azure.net");
        ORIGIN_IS("http://127.0.0.1:80/metadata", "http://127.0.0.1");
        ck_assert(ade_url_same_origin(
                "https://management.azure.com:443/subscriptions/x?$skiptoken=1", "https://management.azure.com"));
}
END_TEST

START_TEST(test_other_port_is_other_origin) {
        /* A second server on the same host is another party. */
        ORIGIN_IS("https://v.vault.azure.net:8443/x", "https://v.vault.azure.net:8443");
        ck_assert(!ade_url_same_origin("https://v.vault.azure.net:8443/x", "https://v.vault.azure.net"));
        ck_assert(!ade_url_same_origin("https://localhost:8443/x", "https://localhost:8444/x"));
        ck_assert(!ade_url_same_origin("https://localhost:80/x", "http://localhost:80/x"));
        ck_assert(!ade_url_same_origin("https://localhost:443/", "http://localhost:443/"));
}
END_TEST

START_TEST(test_case_is_ignored) {
        ORIGIN_IS("HTTPS://V.VAULT.AZURE.NET/x", "https://v.vault.azure.net");
        ck_assert(ade_url_same_origin("https://Contoso.Vault.Azure.Net/keys/k", "https://contoso.vault.azure.net"));
}
END_TEST

START_TEST(test_trailing_dot_is_normalized) {
        ORIGIN_IS("https://v.vault.azure.net./x", "https://v.vault.azure.net");
        ck_assert(ade_url_same_origin("https://v.vault.azure.net.:443/x", "https://v.vault.azure.net/y"));
        refused("https://v.vault.azure.net../x", -EINVAL);
        refused("https://./x", -EDESTADDRREQ);
}
END_TEST

START_TEST(test_ipv6_literals) {
        ORIGIN_IS("https://[::1]:8443/x", "https://[::1]:8443");
        ORIGIN_IS("https://[FE80::1]/x", "https://[fe80::1]");
        ck_assert(!ade_url_same_origin("https://[::1]:8443/x", "https://[::2]:8443/x"));
        /* A zone id names an interface, never a vault; it is percent-encoded besides. */
        refused("https://[fe80::1%25eth0]/x", -EINVAL);
        refused("https://[::1/x", -EINVAL);
}
END_TEST

START_TEST(test_numeric_ipv4_as_libcurl_dials_it) {
        /* libcurl dials 0x7f.1 as 127.0.0.1; the origin says what is dialled. */
        ORIGIN_IS("https://0x7f.1/x", "https://127.0.0.1");
}
END_TEST

START_TEST(test_numeric_host_with_trailing_dot) {
        /* libcurl reads "888" as the address 0.0.3.120 but leaves "888." a name: with its dot
         * dropped, such a host would have an origin that names another host (found by fuzz-url). */
        refused("https://888./x", -EINVAL);
        refused("https://0x7f.1./x", -EINVAL);
        refused("https://127.1./x", -EINVAL);
        ck_assert(!ade_url_same_origin("https://888./x", "https://888/x"));
        /* An address already written as libcurl writes it keeps its meaning with the dot. */
        ORIGIN_IS("https://127.0.0.1./x", "https://127.0.0.1");
        ORIGIN_IS("https://888/x", "https://0.0.3.120");
}
END_TEST

/* ---- hostile URLs ---- */

START_TEST(test_userinfo_refused) {
        refused("https://v.vault.azure.net@evil.example/", -EPERM);
        refused("https://u:p@v.vault.azure.net/", -EPERM);
        refused("https://v.vault.azure.net:443@evil/", -EPERM);
        refused("https://@v.vault.azure.net/", -EPERM);
        ck_assert(!ade_url_same_origin("https://v.vault.azure.net@evil.example/", "https://evil.example/"));
}
END_TEST

START_TEST(test_backslashes_refused) {
        refused("https://v.vault.azure.net\\@evil.example/", -EINVAL);
        refused("https://v.vault.azure.net\\secrets\\x", -EINVAL);
        refused("https://v.vault.azure.net/secrets\\..\\keys", -EINVAL);
}
END_TEST

START_TEST(test_spaces_and_control_characters_refused) {
        refused("https://v.vault.azure.net /x", -EINVAL);
        refused(" https://v.vault.azure.net/x", -EINVAL);
        refused("https://v.vault.azure.net/a b", -EINVAL);
        refused("https://v.vault.azure.net/x\t", -EINVAL);
        refused("https://v.vault.azure.net/x\r\nHost: evil", -EINVAL);
        refused("https://v.vault.azure.net/\x7f", -EINVAL);
}
END_TEST

START_TEST(test_empty_or_missing_host_refused) {
        refused("https:///x", -EDESTADDRREQ);
        refused("https://", -EDESTADDRREQ);
        refused("https://:443/x", -EINVAL);
        refused("https://?x", -EDESTADDRREQ);
        refused("https://a..b/", -EINVAL);
        refused("https://.a/", -EINVAL);
}
END_TEST

START_TEST(test_percent_encoded_host_refused) {
        /* libcurl would decode "%76ault" to "vault": compared unlike what is dialled. */
        refused("https://%76.vault.azure.net/x", -EINVAL);
        refused("https://v.vault.azure.net%2eevil.example/x", -EINVAL);
}
END_TEST

START_TEST(test_bad_ports_refused) {
        refused("https://v:0/x", -EINVAL);
        refused("https://v:99999/x", -EINVAL);
        refused("https://v:-1/x", -EINVAL);
        refused("https://v:8443x/x", -EINVAL);
}
END_TEST

START_TEST(test_schemes) {
        AdeUrl *u = NULL;

        ck_assert_int_eq(ade_url_parse("http://v.vault.azure.net/", 0, &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(ade_url_parse("ftp://v/", ADE_URL_ALLOW_HTTP, &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(ade_url_parse("file:///etc/passwd", ADE_URL_ALLOW_HTTP, &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(ade_url_parse("https:/v/x", ADE_URL_ALLOW_HTTP, &u), -EINVAL);
        ck_assert_int_eq(ade_url_parse("https:v/x", ADE_URL_ALLOW_HTTP, &u), -EINVAL);
        ck_assert_int_eq(ade_url_parse("//v/x", ADE_URL_ALLOW_HTTP, &u), -EINVAL);
        ck_assert_int_eq(ade_url_parse("v.vault.azure.net", ADE_URL_ALLOW_HTTP, &u), -EINVAL);
        ck_assert_int_eq(ade_url_parse(NULL, ADE_URL_ALLOW_HTTP, &u), -EINVAL);
        ck_assert_ptr_null(u);
        ck_assert(!ade_url_same_origin("http://localhost/x", "https://localhost"));
}
END_TEST

START_TEST(test_look_alike_hosts_differ) {
        ck_assert(
                !ade_url_same_origin("https://contoso.vault.azure.net.evil.com/x", "https://contoso.vault.azure.net"));
        ck_assert(!ade_url_same_origin("https://evilcontoso.vault.azure.net/", "https://contoso.vault.azure.net"));
        ck_assert(!ade_url_same_origin(NULL, "https://a"));
        ck_assert(!ade_url_same_origin("not a url", "not a url"));
}
END_TEST

START_TEST(test_query_and_fragment_kept_apart) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;

        /* "#@evil" is a fragment, not user information: the host stays the vault. */
        ck_assert_int_eq(ade_url_parse("https://v.vault.azure.net/x?a=b#@evil.example", 0, &u), 0);
        ck_assert_str_eq(u->origin, "https://v.vault.azure.net");
        ck_assert_str_eq(u->query, "a=b");
        ck_assert_str_eq(u->fragment, "@evil.example");
}
END_TEST

START_TEST(test_host_within) {
        ck_assert(ade_url_host_is_within("contoso.vault.azure.net", "vault.azure.net"));
        ck_assert(ade_url_host_is_within("vault.azure.net", "vault.azure.net"));
        ck_assert(ade_url_host_is_within("Contoso.Vault.Azure.Net.", "vault.azure.net"));
        ck_assert(!ade_url_host_is_within("evilvault.azure.net", "vault.azure.net"));
        ck_assert(!ade_url_host_is_within("vault.azure.net.evil.com", "vault.azure.net"));
        ck_assert(!ade_url_host_is_within("azure.net", "vault.azure.net"));
        ck_assert(!ade_url_host_is_within("", "vault.azure.net"));
        ck_assert(!ade_url_host_is_within("x", NULL));
}
END_TEST

/* ---- join ---- */

START_TEST(test_join) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        ck_assert_int_eq(ade_url_join("https://v.vault.azure.net/", "/secrets/x", &a), 0);
        ck_assert_str_eq(a, "https://v.vault.azure.net/secrets/x");
        ck_assert_int_eq(ade_url_join("https://localhost:8443", "keys/k/1/wrapkey", &b), 0);
        ck_assert_str_eq(b, "https://localhost:8443/keys/k/1/wrapkey");
        ck_assert_int_eq(ade_url_join("http://127.0.0.1:80", "/metadata/instance?api-version=2021-02-01", &c), 0);
        ck_assert_str_eq(c, "http://127.0.0.1:80/metadata/instance?api-version=2021-02-01");
}
END_TEST

START_TEST(test_join_refuses_escapes) {
        char *j = NULL;

        ck_assert_int_eq(ade_url_join("https://v", "secrets/../keys/k", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "../x", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "a/./b", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "a/..", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "secrets/%2e%2e/keys", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "secrets/a%2Fb", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "secrets/a%5cb", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "a\\b", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "a b", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v", "a#b", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://u@v", "a", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("https://v/?q", "a", &j), -EINVAL);
        ck_assert_int_eq(ade_url_join("v", "a", &j), -EINVAL);
        ck_assert_ptr_null(j);
}
END_TEST

START_TEST(test_join_dots_in_names_and_queries_allowed) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        ck_assert_int_eq(ade_url_join("https://v", "resourceGroups/rg.1/x", &a), 0);
        ck_assert_int_eq(ade_url_join("https://v", "x?next=../..", &b), 0);
}
END_TEST

/* ---- Key Vault object URLs ---- */

START_TEST(test_keyvault_object_versioned) {
        _cleanup_free_ char *origin = NULL, *name = NULL, *version = NULL;

        ck_assert_int_eq(ade_url_keyvault_object("https://Contoso.vault.azure.net:443/keys/kek/0698c2156c1a4e1d",
                                 "keys", true, &origin, &name, &version),
                0);
        ck_assert_str_eq(origin, "https://contoso.vault.azure.net");
        ck_assert_str_eq(name, "kek");
        ck_assert_str_eq(version, "0698c2156c1a4e1d");
}
END_TEST

START_TEST(test_keyvault_object_unversioned) {
        _cleanup_free_ char *name = NULL;
        char *version = (char *)"untouched";

        ck_assert_int_eq(
                ade_url_keyvault_object("https://localhost:8443/secrets/a-1/", "secrets", false, NULL, &name, &version),
                0);
        ck_assert_str_eq(name, "a-1");
        ck_assert_ptr_null(version);
        ck_assert_int_eq(ade_url_keyvault_object("https://v/secrets/a", "secrets", true, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(ade_url_keyvault_object("https://v/secrets/a/", "secrets", true, NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_keyvault_object_shapes_ade_luks_takes) {
        /* The versioned-SecretURL cases of test-luks-token, which ade-luks takes from here. */
        ck_assert_int_eq(
                ade_url_keyvault_object("https://localhost:8443/secrets/a/b", "secrets", true, NULL, NULL, NULL), 0);
        ck_assert_int_eq(
                ade_url_keyvault_object("https://localhost:8443/secrets/a/b/", "secrets", true, NULL, NULL, NULL), 0);
        ck_assert_int_eq(ade_url_keyvault_object(
                                 "http://contoso.vault.azure.net/secrets/a/b", "secrets", true, NULL, NULL, NULL),
                -EINVAL);
        ck_assert_int_eq(
                ade_url_keyvault_object("https://contoso.vault.azure.net/keys/a/b", "secrets", true, NULL, NULL, NULL),
                -EINVAL);
        ck_assert_int_eq(ade_url_keyvault_object(
                                 "https://contoso.vault.azure.net/secrets/a/b/c", "secrets", true, NULL, NULL, NULL),
                -EINVAL);
        ck_assert_int_eq(ade_url_keyvault_object(NULL, "secrets", true, NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_keyvault_object_hostile_paths) {
        static const char *const bad[] = {
                "https://v/secrets/../keys/k/1",
                "https://v/secrets/%2e%2e/keys/k/1",
                "https://v/secrets/a%2Fb/1",
                "https://v/secrets/a%2fb",
                "https://v/secrets/./a/1",
                "https://v/secrets//a/1",
                "https://v/secrets/a//1",
                "https://v/secrets/a/1//",
                "https://v//secrets/a/1",
                "https://v/secrets/a/1?api-version=7.4",
                "https://v/secrets/a/1#frag",
                "https://v/secrets/a/1#/../../keys/k",
                "https://v/secrets/a_b/1",
                "https://v/secrets/a/1-2",
                "https://v/secrets/a/1/wrapkey",
                "https://v/Secrets/a/1",
                "https://v/secretsx/a/1",
                "https://v/secrets",
                "https://v/",
                "https://u@v/secrets/a/1",
                "https://v.vault.azure.net@evil.example/secrets/a/1",
                "https://v\\secrets\\a\\1",
                "https://v/secrets/a b/1",
                "https:///secrets/a/1",
                "http://v/secrets/a/1",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(ade_url_keyvault_object(bad[i], "secrets", false, NULL, NULL, NULL) == -EINVAL,
                        "%s accepted", bad[i]);
}
END_TEST

START_TEST(test_keyvault_name_length) {
        char name[130];

        memset(name, 'a', 127);
        name[127] = 0;
        ck_assert(ade_url_keyvault_name_is_valid(name));
        name[127] = 'a';
        name[128] = 0;
        ck_assert(!ade_url_keyvault_name_is_valid(name));
        ck_assert(!ade_url_keyvault_name_is_valid(""));
        ck_assert(!ade_url_keyvault_name_is_valid(NULL));
        ck_assert(!ade_url_keyvault_name_is_valid("a.b"));
}
END_TEST

/* ---- ARM resource ids ---- */

#define VAULT_ID "/subscriptions/abc-1/resourceGroups/rg_(1).x/providers/Microsoft.KeyVault/vaults/v-1"

START_TEST(test_arm_id_parse) {
        AdeUrlArmId id = {};

        ck_assert_int_eq(
                ade_url_arm_id_parse("subscriptions/s/resourcegroups/g/providers/Microsoft.Compute/disks/d_1/", &id),
                0);
        ck_assert_str_eq(id.subscription, "s");
        ck_assert_str_eq(id.resource_group, "g");
        ck_assert_str_eq(id.provider, "Microsoft.Compute");
        ck_assert_str_eq(id.type, "disks");
        ck_assert_str_eq(id.name, "d_1");
        ade_url_arm_id_done(&id);
        ck_assert_ptr_null(id.name);
}
END_TEST

START_TEST(test_arm_id_parse_refuses) {
        static const char *const bad[] = {
                "",
                "/",
                "/subscriptions/s",
                "/subscriptions/s/resourceGroups/g",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d/extra",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d//",
                "/subscriptions//resourceGroups/g/providers/Microsoft.Compute/disks/d",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/a%2Fb",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/a b",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/a?x",
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/a\\b",
                "/tenants/s/resourceGroups/g/providers/Microsoft.Compute/disks/d",
        };
        AdeUrlArmId id = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(ade_url_arm_id_parse(bad[i], &id) == -EINVAL, "%s accepted", bad[i]);
        ck_assert_ptr_null(id.subscription);
}
END_TEST

START_TEST(test_arm_vault_id) {
        _cleanup_free_ char *sub = NULL, *name = NULL;

        ck_assert_int_eq(ade_url_arm_vault_id(VAULT_ID, &sub, &name), 0);
        ck_assert_str_eq(sub, "abc-1");
        ck_assert_str_eq(name, "v-1");
        ck_assert_int_eq(ade_url_arm_vault_id(VAULT_ID "/", NULL, NULL), 0);
        ck_assert_int_eq(ade_url_arm_vault_id(VAULT_ID + 1, NULL, NULL), 0);
        ck_assert_int_eq(
                ade_url_arm_vault_id(
                        "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/v_1", NULL, NULL),
                -EINVAL);
        ck_assert_int_eq(
                ade_url_arm_vault_id(
                        "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/managedHSMs/v", NULL, NULL),
                -EINVAL);
        ck_assert(ade_url_arm_id_is(VAULT_ID, "microsoft.keyvault", "VAULTS"));
        ck_assert(!ade_url_arm_id_is(VAULT_ID, "Microsoft.Compute", "vaults"));
}
END_TEST

START_TEST(test_arm_id_equal_and_subscription) {
        _cleanup_free_ char *s = NULL;
        char *none = NULL;

        ck_assert(ade_url_arm_id_equal(VAULT_ID, "subscriptions/ABC-1/resourcegroups/RG_(1).X/providers/"
                                                 "microsoft.keyvault/vaults/V-1/"));
        ck_assert(!ade_url_arm_id_equal(VAULT_ID, VAULT_ID "0"));
        ck_assert(!ade_url_arm_id_equal("/", "//"));
        ck_assert(!ade_url_arm_id_equal(NULL, NULL));
        ck_assert_int_eq(ade_url_arm_id_subscription(VAULT_ID, &s), 0);
        ck_assert_str_eq(s, "abc-1");
        ck_assert_int_eq(ade_url_arm_id_subscription("/subscriptions//x", &none), -EINVAL);
        ck_assert_int_eq(ade_url_arm_id_subscription(NULL, &none), -EINVAL);
        ck_assert_ptr_null(none);
}
END_TEST

int main(void) {
        Suite *s = suite_create("url");
        TCase *good = ade_test_case("good"), *bad = ade_test_case("hostile"), *kv = ade_test_case("keyvault"),
              *arm = ade_test_case("arm");

        tcase_add_test(good, test_parse_fields);
        tcase_add_test(good, test_default_port_is_no_port);
        tcase_add_test(good, test_other_port_is_other_origin);
        tcase_add_test(good, test_case_is_ignored);
        tcase_add_test(good, test_trailing_dot_is_normalized);
        tcase_add_test(good, test_ipv6_literals);
        tcase_add_test(good, test_numeric_ipv4_as_libcurl_dials_it);
        tcase_add_test(good, test_numeric_host_with_trailing_dot);
        tcase_add_test(good, test_host_within);
        tcase_add_test(good, test_join);
        tcase_add_test(good, test_join_dots_in_names_and_queries_allowed);
        tcase_add_test(bad, test_userinfo_refused);
        tcase_add_test(bad, test_backslashes_refused);
        tcase_add_test(bad, test_spaces_and_control_characters_refused);
        tcase_add_test(bad, test_empty_or_missing_host_refused);
        tcase_add_test(bad, test_percent_encoded_host_refused);
        tcase_add_test(bad, test_bad_ports_refused);
        tcase_add_test(bad, test_schemes);
        tcase_add_test(bad, test_look_alike_hosts_differ);
        tcase_add_test(bad, test_query_and_fragment_kept_apart);
        tcase_add_test(bad, test_join_refuses_escapes);
        tcase_add_test(kv, test_keyvault_object_versioned);
        tcase_add_test(kv, test_keyvault_object_unversioned);
        tcase_add_test(kv, test_keyvault_object_shapes_ade_luks_takes);
        tcase_add_test(kv, test_keyvault_object_hostile_paths);
        tcase_add_test(kv, test_keyvault_name_length);
        tcase_add_test(arm, test_arm_id_parse);
        tcase_add_test(arm, test_arm_id_parse_refuses);
        tcase_add_test(arm, test_arm_vault_id);
        tcase_add_test(arm, test_arm_id_equal_and_subscription);
        suite_add_tcase(s, good);
        suite_add_tcase(s, bad);
        suite_add_tcase(s, kv);
        suite_add_tcase(s, arm);
        return ade_test_run(s);
}
