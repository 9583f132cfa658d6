/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Azure_Disk_Encryption token format and the engine's argument refusals: no root, no device. */
#include "ade-luks.h"
#include "../unit/ade-test.h"

#define SECRET "https://contoso.vault.azure.net/secrets/3f1c8e4a/0123456789abcdef"

static AdeLuksToken sample(void) {
        return (AdeLuksToken){
                .version = (char *)"1.0",
                .key_vault_url = (char *)"https://contoso.vault.azure.net",
                .key_vault_resource_id =
                        (char *)"/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso",
                .secret_url = (char *)SECRET,
                .kek_url = (char *)"https://contoso.vault.azure.net/keys/kek/abc",
                .kek_vault_resource_id =
                        (char *)"/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso",
                .kek_algorithm = (char *)"RSA-OAEP",
                .volume_type = (char *)"Data",
                .passphrase = (char *)"d3JhcHBlZA",
                .device_id = (char *)"/dev/disk/azure/scsi1/lun0",
        };
}

START_TEST(test_token_round_trip) {
        AdeLuksToken t = sample();
        _cleanup_(ade_luks_token_freep) AdeLuksToken *back = NULL;
        _cleanup_free_ char *json = NULL;

        ck_assert_int_eq(ade_luks_token_to_json(&t, 3, &json), 0);
        ck_assert_int_eq(ade_luks_token_from_json(json, &back), 0);
        ck_assert_str_eq(back->secret_url, SECRET);
        ck_assert_str_eq(back->kek_url, t.kek_url);
        ck_assert_str_eq(back->kek_algorithm, "RSA-OAEP");
        ck_assert_str_eq(back->volume_type, "Data");
        ck_assert_str_eq(back->passphrase, "d3JhcHBlZA");
        ck_assert_str_eq(back->device_id, t.device_id);
        ck_assert_int_eq(back->keyslot, 3);
}
END_TEST

START_TEST(test_token_json_has_type_and_keyslot) {
        AdeLuksToken t = sample();
        _cleanup_free_ char *json = NULL;

        ck_assert_int_eq(ade_luks_token_to_json(&t, 0, &json), 0);
        ck_assert_ptr_nonnull(strstr(json, "\"type\":\"Azure_Disk_Encryption\""));
        ck_assert_ptr_nonnull(strstr(json, "\"keyslots\":[\"0\"]"));
        ck_assert_ptr_nonnull(strstr(json, "\"KeyEncryptionKeyURL\":"));
}
END_TEST

START_TEST(test_token_without_kek_omits_kek_fields) {
        AdeLuksToken t = sample();
        _cleanup_free_ char *json = NULL;

        t.kek_url = t.kek_vault_resource_id = t.kek_algorithm = t.passphrase = NULL;
        ck_assert_int_eq(ade_luks_token_to_json(&t, 0, &json), 0);
        ck_assert_ptr_null(strstr(json, "KeyEncryptionKeyURL"));
        ck_assert_ptr_null(strstr(json, "Passphrase"));
}
END_TEST

START_TEST(test_token_other_type_refused) {
        AdeLuksToken *t = NULL;

        ck_assert_int_eq(ade_luks_token_from_json("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"0\"],\"version\":\"1.0\","
                                                  "\"SecretURL\":\"" SECRET "\"}",
                                 &t),
                -EBADMSG);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_token_without_secret_url_refused) {
        AdeLuksToken *t = NULL;

        ck_assert_int_eq(ade_luks_token_from_json(
                                 "{\"type\":\"Azure_Disk_Encryption\",\"keyslots\":[],\"version\":\"1.0\"}", &t),
                -EBADMSG);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_token_mistyped_field_refused) {
        AdeLuksToken *t = NULL;

        ck_assert_int_eq(
                ade_luks_token_from_json("{\"type\":\"Azure_Disk_Encryption\",\"keyslots\":[],\"version\":\"1.0\","
                                         "\"SecretURL\":42}",
                        &t),
                -EBADMSG);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_token_bad_keyslot_refused) {
        AdeLuksToken *t = NULL;

        ck_assert_int_eq(ade_luks_token_from_json("{\"type\":\"Azure_Disk_Encryption\",\"keyslots\":[\"x1\"],"
                                                  "\"version\":\"1.0\",\"SecretURL\":\"" SECRET "\"}",
                                 &t),
                -EBADMSG);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_token_garbage_refused) {
        AdeLuksToken *t = NULL;

        ck_assert_int_lt(ade_luks_token_from_json("{\"type\":", &t), 0);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_secret_url_versioned_accepted) {
        ck_assert(ade_secret_url_is_versioned(SECRET));
        ck_assert(ade_secret_url_is_versioned("https://localhost:8443/secrets/a/b"));
}
END_TEST

START_TEST(test_secret_url_unversioned_refused) {
        ck_assert(!ade_secret_url_is_versioned("https://contoso.vault.azure.net/secrets/3f1c8e4a"));
        ck_assert(!ade_secret_url_is_versioned("https://contoso.vault.azure.net/secrets/3f1c8e4a/"));
}
END_TEST

START_TEST(test_secret_url_http_refused) {
        ck_assert(!ade_secret_url_is_versioned("http://contoso.vault.azure.net/secrets/a/b"));
}
END_TEST

START_TEST(test_secret_url_key_path_refused) {
        ck_assert(!ade_secret_url_is_versioned("https://contoso.vault.azure.net/keys/a/b"));
        ck_assert(!ade_secret_url_is_versioned("https://contoso.vault.azure.net/secrets/a/b/c"));
        ck_assert(!ade_secret_url_is_versioned(NULL));
}
END_TEST

START_TEST(test_step_names_round_trip) {
        for (int s = 0; s < _ADE_LUKS_STEP_MAX; s++)
                ck_assert_int_eq(ade_luks_step_from_string(ade_luks_step_to_string((AdeLuksStep)s)), s);
        ck_assert_int_eq(ade_luks_step_from_string("no-such-step"), -EINVAL);
}
END_TEST

START_TEST(test_volume_type_case_insensitive) {
        ck_assert_int_eq(ade_volume_type_from_string("DATA"), ADE_VOLUME_DATA);
        ck_assert_int_eq(ade_volume_type_from_string("os"), ADE_VOLUME_OS);
        ck_assert_int_eq(ade_volume_type_from_string("All"), -EINVAL);
}
END_TEST

START_TEST(test_encrypt_refused_without_escrow) {
        AdeLuksToken t = sample();
        AdeVolume v = {.device = (char *)"/nonexistent", .size = 1ULL << 30};
        AdeLuksOptions o = {.header_dir = "/nonexistent"};
        _cleanup_secret_ AdeSecret *key = NULL;

        ck_assert_int_eq(ade_secret_new_from("k", 1, &key), 0);
        ck_assert_int_eq(ade_luks_encrypt(&v, &t, key, &o, NULL, NULL), -EPERM);
}
END_TEST

START_TEST(test_encrypt_refused_with_unversioned_secret) {
        AdeLuksToken t = sample();
        AdeVolume v = {.device = (char *)"/nonexistent", .size = 1ULL << 30};
        AdeLuksOptions o = {.header_dir = "/nonexistent", .escrow_confirmed = true};
        _cleanup_secret_ AdeSecret *key = NULL;

        t.secret_url = (char *)"https://contoso.vault.azure.net/secrets/3f1c8e4a";
        ck_assert_int_eq(ade_secret_new_from("k", 1, &key), 0);
        ck_assert_int_eq(ade_luks_encrypt(&v, &t, key, &o, NULL, NULL), -EPERM);
}
END_TEST

START_TEST(test_plan_refuses_resilience_none) {
        AdeVolume v = {.device = (char *)"/dev/x", .size = 1ULL << 30, .fstype = (char *)"xfs"};
        AdeLuksOptions o = {.header_dir = "/tmp", .resilience = "none"};
        AdeLuksPlan p = {};

        ck_assert_int_eq(ade_luks_plan(&v, &o, &p, NULL), -EINVAL);
}
END_TEST

START_TEST(test_plan_refuses_format_all_unconfirmed) {
        AdeVolume v = {.device = (char *)"/dev/x", .size = 1ULL << 30, .fstype = (char *)"ext4"};
        AdeLuksOptions o = {.header_dir = "/tmp", .format_all = true};
        AdeLuksPlan p = {};

        ck_assert_int_eq(ade_luks_plan(&v, &o, &p, NULL), -EPERM);
}
END_TEST

START_TEST(test_plan_refuses_mounted_offline) {
        AdeVolume v = {.device = (char *)"/dev/x",
                .size = 1ULL << 30,
                .fstype = (char *)"ext4",
                .mountpoint = (char *)"/data"};
        AdeLuksOptions o = {.header_dir = "/tmp"};
        AdeLuksPlan p = {};

        ck_assert_int_eq(ade_luks_plan(&v, &o, &p, NULL), -EBUSY);
}
END_TEST

START_TEST(test_plan_refuses_ineligible) {
        AdeVolume v = {.device = (char *)"/dev/x",
                .size = 1ULL << 20,
                .skip = ADE_VOLUME_SKIP_TOO_SMALL,
                .reason = (char *)"small"};
        AdeLuksOptions o = {.header_dir = "/tmp"};
        AdeLuksPlan p = {};

        ck_assert_int_eq(ade_luks_plan(&v, &o, &p, NULL), -EINVAL);
}
END_TEST

START_TEST(test_plan_xfs_is_detached) {
        AdeVolume v = {.device = (char *)"/dev/x",
                .stable_id = (char *)"/dev/disk/azure/scsi1/lun2",
                .size = 1ULL << 30,
                .fstype = (char *)"xfs"};
        AdeLuksOptions o = {.header_dir = "/var/lib/ade/headers"};
        AdeLuksPlan p = {};

        ck_assert_int_eq(ade_luks_plan(&v, &o, &p, NULL), 0);
        ck_assert_int_eq(p.header, ADE_LUKS_HEADER_DETACHED);
        ck_assert(!p.shrink);
        ck_assert_str_eq(p.header_path, "/var/lib/ade/headers/dev-disk-azure-scsi1-lun2.header");
        ade_luks_plan_done(&p);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("luks-token");
        TCase *tc = ade_test_case("token");

        tcase_add_test(tc, test_token_round_trip);
        tcase_add_test(tc, test_token_json_has_type_and_keyslot);
        tcase_add_test(tc, test_token_without_kek_omits_kek_fields);
        tcase_add_test(tc, test_token_other_type_refused);
        tcase_add_test(tc, test_token_without_secret_url_refused);
        tcase_add_test(tc, test_token_mistyped_field_refused);
        tcase_add_test(tc, test_token_bad_keyslot_refused);
        tcase_add_test(tc, test_token_garbage_refused);
        tcase_add_test(tc, test_secret_url_versioned_accepted);
        tcase_add_test(tc, test_secret_url_unversioned_refused);
        tcase_add_test(tc, test_secret_url_http_refused);
        tcase_add_test(tc, test_secret_url_key_path_refused);
        tcase_add_test(tc, test_step_names_round_trip);
        tcase_add_test(tc, test_volume_type_case_insensitive);
        tcase_add_test(tc, test_encrypt_refused_without_escrow);
        tcase_add_test(tc, test_encrypt_refused_with_unversioned_secret);
        tcase_add_test(tc, test_plan_refuses_resilience_none);
        tcase_add_test(tc, test_plan_refuses_format_all_unconfirmed);
        tcase_add_test(tc, test_plan_refuses_mounted_offline);
        tcase_add_test(tc, test_plan_refuses_ineligible);
        tcase_add_test(tc, test_plan_xfs_is_detached);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(suite());
}
