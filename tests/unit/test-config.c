/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "ade-config.h"
#include "ade-test.h"
#include "ade-url.h"

#define SUB "/subscriptions/0a1b2c3d-0000-4000-8000-000000000001"
#define VAULT_ID SUB "/resourceGroups/rg-1/providers/Microsoft.KeyVault/vaults/contoso"

/* docs/architecture.md §6's own example, with its ellipses filled in. */
static const char design_example[] =
        "[keyvault]\n"
        "url = https://contoso.vault.azure.net          ; KeyVaultURL\n"
        "resource-id = " VAULT_ID "\n"
        "kek-url = https://contoso.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef    ; optional\n"
        "kek-vault-resource-id = " VAULT_ID "\n"
        "kek-algorithm = RSA-OAEP\n"
        "\n"
        "[identity]\n"
        "type = managed                 ; managed | client-secret | client-certificate\n"
        "client-id =                    ; user-assigned identity or application id\n"
        "tenant-id =\n"
        "client-secret-file =\n"
        "client-certificate-file =\n"
        "\n"
        "[azure]                        ; endpoints, for sovereign clouds and for tests\n"
        "imds = http://169.254.169.254\n"
        "arm = https://management.azure.com\n"
        "authority = https://login.microsoftonline.com\n"
        "keyvault-resource = https://vault.azure.net\n"
        "arm-resource = https://management.azure.com/\n"
        "ca-file =                      ; extra PEM trust anchors; TLS is always verified\n"
        "keyvault-dns-suffix = .vault.azure.net   ; vault hosts a volume's token may name\n"
        "\n"
        "[preconditions]\n"
        "snapshot-max-age = 24h\n"
        "require-same-region = yes\n"
        "\n"
        "[volumes]\n"
        "os =                           ; explicit device, overrides discovery\n"
        "data =                         ; explicit devices, space separated, taken as given (mounted or not)\n"
        "header-dir = /var/lib/ade/headers\n"
        "\n"
        "[daemon]\n"
        "socket = /run/ade/io.ade.DiskEncryption\n"
        "group = ade                    ; may call Show and Watch (membership checked with SO_PEERGROUPS)\n"
        "key-socket = /run/ade/key.socket\n"
        "state-dir = /var/lib/ade\n";

static AdeConfig *parse_ok(const char *text) {
        _cleanup_free_ char *err = NULL;
        AdeConfig *c = NULL;
        int r = ade_config_parse(text, strlen(text), "test.conf", &c, &err);
        ck_assert_msg(r == 0, "parse failed: %s", err ?: "(no message)");
        ck_assert_ptr_nonnull(c);
        return c;
}

/* Asserts the text is refused, that nothing is returned, and that the message starts with @prefix
 * (file, line and key) and contains @needle. */
static void parse_bad(const char *text, size_t len, const char *prefix, const char *needle) {
        _cleanup_free_ char *err = NULL;
        AdeConfig *c = (AdeConfig *)0x1;
        int r = ade_config_parse(text, len, "test.conf", &c, &err);

        ck_assert_int_eq(r, -EINVAL);
        ck_assert_ptr_eq(c, (AdeConfig *)0x1);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", err, prefix);
        if (needle)
                ck_assert_msg(strstr(err, needle), "'%s' does not mention '%s'", err, needle);
}
#define BAD(text, prefix, needle) parse_bad((text), strlen(text), (prefix), (needle))

START_TEST(test_design_example_parses) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok(design_example);

        ck_assert_str_eq(c->keyvault.url, "https://contoso.vault.azure.net");
        ck_assert_str_eq(c->keyvault.resource_id, VAULT_ID);
        ck_assert_str_eq(
                c->keyvault.kek_url, "https://contoso.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef");
        ck_assert_str_eq(c->keyvault.kek_algorithm, "RSA-OAEP");
        ck_assert_int_eq(c->identity.type, ADE_IDENTITY_MANAGED);
        ck_assert_ptr_null(c->identity.client_id);
        ck_assert_ptr_null(c->azure.ca_file);
        ck_assert_str_eq(c->azure.keyvault_dns_suffix, ".vault.azure.net");
        ck_assert_uint_eq(c->preconditions.snapshot_max_age_sec, 86400);
        ck_assert(c->preconditions.require_same_region);
        ck_assert_ptr_null(c->volumes.os);
        ck_assert_ptr_null(c->volumes.data);
        ck_assert_str_eq(c->daemon.group, "ade");
        ck_assert(c->daemon.new_disks);
        ck_assert_uint_eq(c->daemon.new_disk_settle_sec, 30);
        ck_assert_ptr_null(c->metrics.path);
        ck_assert_str_eq(c->path, "test.conf");
}
END_TEST

START_TEST(test_empty_file_gives_defaults) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok("");

        ck_assert_ptr_null(c->keyvault.url);
        ck_assert_str_eq(c->keyvault.kek_algorithm, "RSA-OAEP");
        ck_assert_str_eq(c->azure.imds, "http://169.254.169.254");
        ck_assert_str_eq(c->azure.arm_resource, "https://management.azure.com/");
        ck_assert_str_eq(c->azure.keyvault_dns_suffix, ".vault.azure.net");
        ck_assert_str_eq(c->volumes.header_dir, "/var/lib/ade/headers");
        ck_assert_str_eq(c->daemon.socket, "/run/ade/io.ade.DiskEncryption");
        ck_assert_str_eq(c->daemon.state_dir, "/var/lib/ade");
        ck_assert_str_eq(c->daemon.key_socket, "/run/ade/key.socket");
        ck_assert_str_eq(c->daemon.crypttab, "/etc/crypttab");
        ck_assert_str_eq(c->daemon.fstab, "/etc/fstab");
        ck_assert_str_eq(c->daemon.ade_dir, "/var/lib/azure_disk_encryption_config");
        ck_assert_uint_eq(c->preconditions.snapshot_max_age_sec, 86400);
}
END_TEST

START_TEST(test_shipped_example_parses) {
        _cleanup_(ade_config_freep) AdeConfig *c = NULL;
        _cleanup_free_ char *path = NULL, *err = NULL;
        const char *top = getenv("top_srcdir") ?: ".";

        ck_assert_int_ge(asprintf(&path, "%s/docs/ade.conf.example", top), 0);
        ck_assert_msg(ade_config_load(path, &c, &err) == 0, "%s", err ?: "?");
        ck_assert_ptr_null(c->keyvault.url);
        ck_assert_str_eq(c->azure.authority, "https://login.microsoftonline.com");
}
END_TEST

START_TEST(test_comments_and_hash_in_url) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok("# a comment\n"
                                                            "  ; another, indented\n"
                                                            "[azure]\t# trailing comment on a section\n"
                                                            "arm = https://arm.example:9443/base ;comment\n");
        /* '#' without white space before it belongs to the value, and a URL fragment is refused */
        (void)c;
}
END_TEST

START_TEST(test_hash_without_space_is_part_of_value) {
        BAD("[azure]\narm = https://arm.example/#x\n", "test.conf:2: [azure] arm:", "query or fragment");
}
END_TEST

START_TEST(test_urls_with_ports) {
        _cleanup_(ade_config_freep) AdeConfig *c =
                parse_ok("[keyvault]\nurl = https://localhost:8443\n"
                         "[azure]\nimds = http://127.0.0.1:8080\narm = https://127.0.0.1:8443/arm\n");
        ck_assert_str_eq(c->keyvault.url, "https://localhost:8443");
        ck_assert_str_eq(c->azure.imds, "http://127.0.0.1:8080");
}
END_TEST

START_TEST(test_durations_and_booleans) {
        _cleanup_(ade_config_freep) AdeConfig *c =
                parse_ok("[preconditions]\nsnapshot-max-age = 1h30m\nrequire-same-region = No\n");
        ck_assert_uint_eq(c->preconditions.snapshot_max_age_sec, 5400);
        ck_assert(!c->preconditions.require_same_region);
}
END_TEST

START_TEST(test_new_disk_keys) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok("[daemon]\nnew-disks = no\nnew-disk-settle = 2m\n");
        ck_assert(!c->daemon.new_disks);
        ck_assert_uint_eq(c->daemon.new_disk_settle_sec, 120);
        BAD("[daemon]\nnew-disk-settle = 0\n", "test.conf:2: [daemon] new-disk-settle:", "positive duration");
        BAD("[daemon]\nnew-disks = sometimes\n", "test.conf:2: [daemon] new-disks:", "boolean");
}
END_TEST

START_TEST(test_ade_dir) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok("[daemon]\nazure-disk-encryption-dir = /tmp/ade-x/ade\n");
        ck_assert_str_eq(c->daemon.ade_dir, "/tmp/ade-x/ade");
        BAD("[daemon]\nazure-disk-encryption-dir = ade\n",
                "test.conf:2: [daemon] azure-disk-encryption-dir:", "absolute");
}
END_TEST

START_TEST(test_metrics_path) {
        _cleanup_(ade_config_freep) AdeConfig *c =
                parse_ok("[metrics]\npath = /var/lib/prometheus/node-exporter/ade.prom\n");
        ck_assert_str_eq(c->metrics.path, "/var/lib/prometheus/node-exporter/ade.prom");
        BAD("[metrics]\npath = ade.prom\n", "test.conf:2: [metrics] path:", "absolute");
        BAD("[metrics]\nport = 9100\n", "test.conf:2:", "unknown key");
}
END_TEST

START_TEST(test_rotation_keys) {
        _cleanup_(ade_config_freep) AdeConfig *d = parse_ok("");
        _cleanup_(ade_config_freep) AdeConfig *c =
                parse_ok("[rotation]\ninterval = 90d\nkek-follow-latest = yes\nkek-interval = 6h\n");
        ck_assert_uint_eq(d->rotation.interval_sec, 0);
        ck_assert(!d->rotation.kek_follow_latest);
        ck_assert_uint_eq(d->rotation.kek_interval_sec, 86400);
        ck_assert_uint_eq(c->rotation.interval_sec, 90ULL * 86400);
        ck_assert(c->rotation.kek_follow_latest);
        ck_assert_uint_eq(c->rotation.kek_interval_sec, 6 * 3600);
        BAD("[rotation]\ninterval = 0\n", "test.conf:2: [rotation] interval:", "positive duration");
        BAD("[rotation]\nkek-follow-latest = often\n", "test.conf:2: [rotation] kek-follow-latest:", "boolean");
}
END_TEST

START_TEST(test_duration_parser) {
        uint64_t v;

        ck_assert_int_eq(ade_parse_duration_sec("24h", &v), 0);
        ck_assert_uint_eq(v, 86400);
        ck_assert_int_eq(ade_parse_duration_sec("90m", &v), 0);
        ck_assert_uint_eq(v, 5400);
        ck_assert_int_eq(ade_parse_duration_sec("90min", &v), 0);
        ck_assert_uint_eq(v, 5400);
        ck_assert_int_eq(ade_parse_duration_sec("2d 12h", &v), 0);
        ck_assert_uint_eq(v, 216000);
        ck_assert_int_eq(ade_parse_duration_sec("1w", &v), 0);
        ck_assert_uint_eq(v, 604800);
        ck_assert_int_eq(ade_parse_duration_sec("3600", &v), 0);
        ck_assert_uint_eq(v, 3600);
}
END_TEST

START_TEST(test_duration_parser_refuses) {
        uint64_t v = 5;

        ck_assert_int_eq(ade_parse_duration_sec("", &v), -EINVAL);
        ck_assert_int_eq(ade_parse_duration_sec("0h", &v), -EINVAL);
        ck_assert_int_eq(ade_parse_duration_sec("h", &v), -EINVAL);
        ck_assert_int_eq(ade_parse_duration_sec("24x", &v), -EINVAL);
        ck_assert_int_eq(ade_parse_duration_sec("-1h", &v), -EINVAL);
        ck_assert_int_eq(ade_parse_duration_sec("1h 30", &v), -EINVAL);
        ck_assert_int_eq(ade_parse_duration_sec("99999999999999999999w", &v), -ERANGE);
        ck_assert_uint_eq(v, 5);
}
END_TEST

START_TEST(test_data_list) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok("[volumes]\ndata = /dev/loop3   /dev/loop4\t/dev/sdc\n");
        ck_assert_uint_eq(strv_length(c->volumes.data), 3);
        ck_assert_str_eq(c->volumes.data[0], "/dev/loop3");
        ck_assert_str_eq(c->volumes.data[2], "/dev/sdc");
}
END_TEST

START_TEST(test_client_secret_identity) {
        _cleanup_(ade_config_freep) AdeConfig *c =
                parse_ok("[identity]\ntype = client-secret\nclient-id = 535fb089-9ff3-47b6-9bfb-4f1264799865\n"
                         "tenant-id = contoso.onmicrosoft.com\nclient-secret-file = /etc/ade/secret\n");
        ck_assert_int_eq(c->identity.type, ADE_IDENTITY_CLIENT_SECRET);
        ck_assert_str_eq(c->identity.tenant_id, "contoso.onmicrosoft.com");
}
END_TEST

START_TEST(test_vault_resource_id_parser) {
        _cleanup_free_ char *sub = NULL, *name = NULL;

        ck_assert_int_eq(
                ade_url_arm_vault_id(
                        "/SUBSCRIPTIONS/abc/resourcegroups/rg/providers/microsoft.keyvault/VAULTS/v-1/", &sub, &name),
                0);
        ck_assert_str_eq(sub, "abc");
        ck_assert_str_eq(name, "v-1");
        ck_assert_int_eq(ade_url_arm_vault_id("/subscriptions/abc/resourceGroups/rg", NULL, NULL), -EINVAL);
        ck_assert_int_eq(
                ade_url_arm_vault_id(
                        "/subscriptions/abc/resourceGroups/rg/providers/Microsoft.Compute/disks/d", NULL, NULL),
                -EINVAL);
}
END_TEST

/* ---- bad inputs ---- */

START_TEST(test_unknown_section) {
        BAD("[keyvault]\n\n[vault]\nurl = https://x\n", "test.conf:3:", "unknown section [vault]");
}
END_TEST

START_TEST(test_unknown_key) {
        BAD("[keyvault]\nurl = https://x.vault.azure.net\nkek = https://x\n",
                "test.conf:3: [keyvault] kek:", "unknown key");
}
END_TEST

START_TEST(test_key_in_wrong_section) {
        BAD("[azure]\nurl = https://x.vault.azure.net\n", "test.conf:2: [azure] url:", "unknown key");
}
END_TEST

START_TEST(test_duplicate_key) {
        BAD("[daemon]\ngroup = ade\n[keyvault]\n[daemon]\ngroup = wheel\n",
                "test.conf:5: [daemon] group:", "first set on line 2");
}
END_TEST

START_TEST(test_bad_duration) {
        BAD("[preconditions]\nsnapshot-max-age = 1 fortnight\n",
                "test.conf:2: [preconditions] snapshot-max-age:", "1 fortnight");
}
END_TEST

START_TEST(test_bad_boolean) {
        BAD("[preconditions]\nrequire-same-region = maybe\n",
                "test.conf:2: [preconditions] require-same-region:", "not a boolean");
}
END_TEST

START_TEST(test_http_keyvault_refused) {
        BAD("[keyvault]\nurl = http://contoso.vault.azure.net\n", "test.conf:2: [keyvault] url:", "https://");
}
END_TEST

START_TEST(test_url_with_credentials_refused) {
        BAD("[azure]\narm = https://user:pw@management.azure.com\n", "test.conf:2: [azure] arm:", "credentials");
}
END_TEST

START_TEST(test_garbage_url_refused) {
        BAD("[azure]\nauthority = login.microsoftonline.com\n", "test.conf:2: [azure] authority:", NULL);
        BAD("[azure]\nimds = ftp://169.254.169.254\n", "test.conf:2: [azure] imds:", "http");
}
END_TEST

START_TEST(test_overlong_line) {
        size_t n = ADE_CONFIG_LINE_MAX + 100;
        _cleanup_free_ char *t = malloc(n + 64);
        int k = sprintf(t, "[daemon]\ngroup = ");

        memset(t + k, 'a', n);
        t[k + n] = '\n';
        parse_bad(t, k + n + 1, "test.conf:2:", "longer than");
}
END_TEST

START_TEST(test_nul_byte) {
        static const char t[] = "[daemon]\ngroup = ade\0evil\n";
        parse_bad(t, sizeof(t) - 1, "test.conf:2:", "NUL");
}
END_TEST

START_TEST(test_key_outside_section) {
        BAD("url = https://x.vault.azure.net\n", "test.conf:1:", "outside of any section");
}
END_TEST

START_TEST(test_line_without_equals) {
        BAD("[keyvault]\nurl https://x\n", "test.conf:2:", "key = value");
        BAD("[keyvault\n", "test.conf:1:", "malformed section");
}
END_TEST

START_TEST(test_kek_without_vault_id) {
        BAD("[keyvault]\nurl = https://c.vault.azure.net\nkek-url = https://c.vault.azure.net/keys/k/0123abcd\n",
                "test.conf:3: [keyvault] kek-url:", "kek-vault-resource-id");
        BAD("[keyvault]\nkek-vault-resource-id = " VAULT_ID "\n",
                "test.conf:2: [keyvault] kek-vault-resource-id:", "kek-url is not");
}
END_TEST

START_TEST(test_bad_kek) {
        BAD("[keyvault]\nkek-algorithm = RSA-PSS\n", "test.conf:2: [keyvault] kek-algorithm:", "RSA-OAEP-256");
        BAD("[keyvault]\nkek-url = https://c.vault.azure.net/secrets/s/1\n",
                "test.conf:2: [keyvault] kek-url:", "not a key URL");
}
END_TEST

START_TEST(test_bad_resource_id) {
        BAD("[keyvault]\nresource-id = /subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/\n",
                "test.conf:2: [keyvault] resource-id:", "not a Key Vault resource id");
}
END_TEST

START_TEST(test_relative_paths_refused) {
        BAD("[volumes]\nheader-dir = headers\n", "test.conf:2: [volumes] header-dir:", "absolute");
        BAD("[volumes]\ndata = /dev/loop3 loop4\n", "test.conf:2: [volumes] data:", "'loop4'");
        BAD("[volumes]\ndata = /dev/loop3 /dev/loop3\n", "test.conf:2: [volumes] data:", "twice");
}
END_TEST

START_TEST(test_incomplete_client_identity) {
        BAD("[identity]\ntype = client-certificate\nclient-id = abc\n",
                "test.conf:2: [identity] type:", "client-certificate-file");
        BAD("[identity]\ntype = robot\n", "test.conf:2: [identity] type:", "managed");
}
END_TEST

START_TEST(test_bad_group_name) {
        BAD("[daemon]\ngroup = Disk Admins\n", "test.conf:2: [daemon] group:", "group name");
}
END_TEST

START_TEST(test_missing_file) {
        _cleanup_free_ char *err = NULL;
        AdeConfig *c = NULL;

        ck_assert_int_eq(ade_config_load("/nonexistent/ade.conf", &c, &err), -ENOENT);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ade.conf"));
}
END_TEST

START_TEST(test_first_error_wins_and_no_partial_config) {
        /* two mistakes: the message is about the first, and nothing half-filled comes back */
        BAD("[daemon]\ngroup = ade\nsocket = relative\n[bogus]\n", "test.conf:3: [daemon] socket:", "absolute");
}
END_TEST

START_TEST(test_dns_suffix_sovereign) {
        _cleanup_(ade_config_freep) AdeConfig *c = parse_ok("[azure]\nkeyvault-dns-suffix = .Vault.Azure.CN\n");

        ck_assert_str_eq(c->azure.keyvault_dns_suffix, ".vault.azure.cn");
}
END_TEST

START_TEST(test_bad_dns_suffix) {
        BAD("[azure]\nkeyvault-dns-suffix = vault.azure.net\n",
                "test.conf:2: [azure] keyvault-dns-suffix:", "not a DNS suffix");
        BAD("[azure]\nkeyvault-dns-suffix = .net\n", "test.conf:2: [azure] keyvault-dns-suffix:", "top-level domain");
        BAD("[azure]\nkeyvault-dns-suffix = .vault..azure.net\n", "test.conf:2:", "not a DNS suffix");
        BAD("[azure]\nkeyvault-dns-suffix = .vault.azure.net.\n", "test.conf:2:", "not a DNS suffix");
        BAD("[azure]\nkeyvault-dns-suffix = .vault.azure.net/\n", "test.conf:2:", "not a DNS suffix");
        BAD("[azure]\nkeyvault-dns-suffix = .-vault.azure.net\n", "test.conf:2:", "not a DNS suffix");
        BAD("[azure]\nkeyvault-dns-suffix = .\n", "test.conf:2:", "not a DNS suffix");
}
END_TEST

START_TEST(test_backup) {
        _cleanup_(ade_config_freep) AdeConfig *d = parse_ok("");
        _cleanup_(ade_config_freep) AdeConfig *c =
                parse_ok("[backup]\nurl = https://contoso.blob.core.windows.net/ade-headers\nkeep = 12\n");
        _cleanup_(ade_config_freep) AdeConfig *e =
                parse_ok("[backup]\nurl = https://127.0.0.1:10000/devstoreaccount1/backups ; Azurite\n");

        ck_assert_ptr_null(d->backup.url);
        ck_assert_uint_eq(d->backup.keep, ADE_BACKUP_KEEP_DEFAULT);
        ck_assert_str_eq(c->backup.url, "https://contoso.blob.core.windows.net/ade-headers");
        ck_assert_uint_eq(c->backup.keep, 12);
        ck_assert_str_eq(e->backup.url, "https://127.0.0.1:10000/devstoreaccount1/backups");
        ck_assert_uint_eq(e->backup.keep, ADE_BACKUP_KEEP_DEFAULT);
}
END_TEST

START_TEST(test_bad_backup) {
        BAD("[backup]\nurl = http://contoso.blob.core.windows.net/c1c\n", "test.conf:2: [backup] url:", "https://");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net\n", "test.conf:2: [backup] url:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/Headers\n", "test.conf:2:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/ab\n", "test.conf:2:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/a--b\n", "test.conf:2:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/-abc\n", "test.conf:2:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/abc/\n", "test.conf:2:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/a/b/abc\n", "test.conf:2:", "container");
        BAD("[backup]\nurl = https://contoso.blob.core.windows.net/abc?sv=1\n", "test.conf:2:", "query");
        BAD("[backup]\nurl = https://u:p@contoso.blob.core.windows.net/abc\n", "test.conf:2:", "credentials");
        BAD("[backup]\nkeep = 0\n", "test.conf:2: [backup] keep:", "from 1 to 1000");
        BAD("[backup]\nkeep = 1001\n", "test.conf:2: [backup] keep:", "from 1 to 1000");
        BAD("[backup]\nkeep = -3\n", "test.conf:2: [backup] keep:", NULL);
        BAD("[backup]\nkeep = 5x\n", "test.conf:2: [backup] keep:", NULL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("config");
        TCase *good = ade_test_case("good"), *bad = ade_test_case("bad");

        tcase_add_test(good, test_design_example_parses);
        tcase_add_test(good, test_empty_file_gives_defaults);
        tcase_add_test(good, test_shipped_example_parses);
        tcase_add_test(good, test_comments_and_hash_in_url);
        tcase_add_test(good, test_urls_with_ports);
        tcase_add_test(good, test_backup);
        tcase_add_test(bad, test_bad_backup);
        tcase_add_test(good, test_durations_and_booleans);
        tcase_add_test(good, test_new_disk_keys);
        tcase_add_test(good, test_ade_dir);
        tcase_add_test(good, test_metrics_path);
        tcase_add_test(good, test_rotation_keys);
        tcase_add_test(good, test_duration_parser);
        tcase_add_test(good, test_data_list);
        tcase_add_test(good, test_client_secret_identity);
        tcase_add_test(good, test_vault_resource_id_parser);
        tcase_add_test(good, test_dns_suffix_sovereign);
        suite_add_tcase(s, good);

        tcase_add_test(bad, test_hash_without_space_is_part_of_value);
        tcase_add_test(bad, test_duration_parser_refuses);
        tcase_add_test(bad, test_unknown_section);
        tcase_add_test(bad, test_unknown_key);
        tcase_add_test(bad, test_key_in_wrong_section);
        tcase_add_test(bad, test_duplicate_key);
        tcase_add_test(bad, test_bad_duration);
        tcase_add_test(bad, test_bad_boolean);
        tcase_add_test(bad, test_http_keyvault_refused);
        tcase_add_test(bad, test_url_with_credentials_refused);
        tcase_add_test(bad, test_garbage_url_refused);
        tcase_add_test(bad, test_overlong_line);
        tcase_add_test(bad, test_nul_byte);
        tcase_add_test(bad, test_key_outside_section);
        tcase_add_test(bad, test_line_without_equals);
        tcase_add_test(bad, test_kek_without_vault_id);
        tcase_add_test(bad, test_bad_kek);
        tcase_add_test(bad, test_bad_resource_id);
        tcase_add_test(bad, test_relative_paths_refused);
        tcase_add_test(bad, test_incomplete_client_identity);
        tcase_add_test(bad, test_bad_group_name);
        tcase_add_test(bad, test_bad_dns_suffix);
        tcase_add_test(bad, test_missing_file);
        tcase_add_test(bad, test_first_error_wins_and_no_partial_config);
        suite_add_tcase(s, bad);
        return ade_test_run(s);
}
