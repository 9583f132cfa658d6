/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The preconditions end to end against the emulator: real IMDS, ARM and Key Vault answers over
 * HTTPS, one scenario per failure of issue 6. */
#include <fcntl.h>

#include "ade-keyfile.h"
#include "ade-precheck.h"
#include "ade-test.h"
#include "emu-harness.h"

typedef struct Run {
        AdeEmulator *emu;
        AdeConfig *config;
        AdeCheckList list;
} Run;

/* Retries stay on, but short, so a fault that never ends costs little time (the CA is ade.conf's). */
static AdeHttpOptions fast_http(void) {
        AdeHttpOptions o;

        ade_emulator_http_options(NULL, 2, &o);
        return o;
}

static void run_done(Run *r) {
        ade_check_list_done(&r->list);
        ade_config_free(r->config);
        ade_emulator_stop(r->emu);
}

/* Starts an emulator with @overlay, writes ade.conf (+@extra), runs the checks for the data
 * volumes with the KEK at @kek_url (NULL: the emulator's kek; "" no KEK). */
static void run_checks(Run *r, const char *overlay, const char *extra, const char *kek_url, bool skip_snapshot) {
        AdeHttpOptions http = fast_http();
        AdePrecheckRequest req;

        *r = (Run){};
        ck_assert_int_eq(ade_emulator_start(overlay, &r->emu), 0);
        ck_assert_int_eq(ade_emulator_load_config(r->emu, NULL, extra, &r->config), 0);

        req = (AdePrecheckRequest){
                .config = r->config,
                .vault_url = r->emu->vault_url,
                .vault_resource_id = r->emu->vault_resource_id,
                .kek_url = kek_url ? (*kek_url ? kek_url : NULL) : r->emu->kek_url,
                .kek_algorithm = "RSA-OAEP",
                .scope_data = true,
                .skip_snapshot_check = skip_snapshot,
                .http = &http,
        };
        ck_assert_int_eq(ade_precheck_run(&req, &r->list, NULL), 0);
}

static const AdeCheck *find(const Run *r, const char *name) {
        for (size_t i = 0; i < r->list.n; i++)
                if (streq(r->list.checks[i].name, name))
                        return &r->list.checks[i];
        return NULL;
}

static void expect_failure(
        const char *overlay, const char *extra, const char *kek_url, const char *check, const char *needle) {
        _cleanup_(run_done) Run r;
        const AdeCheck *c;

        run_checks(&r, overlay, extra, kek_url, false);
        c = ade_check_list_first_failure(&r.list);
        ck_assert_msg(c, "no check failed");
        ck_assert_str_eq(c->name, check);
        ck_assert_msg(strstr(c->reason, needle), "reason '%s' lacks '%s'", c->reason, needle);
}

START_TEST(test_default_scenario_passes) {
        _cleanup_(run_done) Run r;

        run_checks(&r, NULL, NULL, NULL, false);
        ck_assert_msg(!ade_check_list_first_failure(&r.list), "%s", ade_check_list_first_failure(&r.list)->reason);
        ck_assert_int_eq(find(&r, "same-region")->verdict, ADE_VERDICT_OK);
        ck_assert_int_eq(find(&r, "kek-valid")->verdict, ADE_VERDICT_OK);
        ck_assert_int_eq(find(&r, "snapshot")->verdict, ADE_VERDICT_OK);
}
END_TEST

START_TEST(test_region_case_and_space_variant_passes) {
        _cleanup_(run_done) Run r;

        run_checks(&r, "{\"vm\":{\"location\":\"West Europe\"}}", NULL, NULL, false);
        ck_assert_ptr_null(ade_check_list_first_failure(&r.list));
}
END_TEST

START_TEST(test_restore_point_instead_of_snapshot_passes) {
        _cleanup_(run_done) Run r;

        run_checks(&r,
                "{\"snapshots\":[],\"restore_point_collections\":[{\"name\":\"rpc1\","
                "\"restore_points\":[{\"name\":\"rp1\",\"age_seconds\":3600}]}]}",
                NULL, NULL, false);
        ck_assert_msg(!ade_check_list_first_failure(&r.list), "%s", ade_check_list_first_failure(&r.list)->reason);
        ck_assert_ptr_nonnull(strstr(find(&r, "snapshot")->reason, "restore point rp1"));
}
END_TEST

/* An expiry in the future is no defect: only a key outside its nbf/exp window is refused. */
START_TEST(test_kek_valid_window_passes) {
        _cleanup_(run_done) Run r;

        run_checks(&r,
                "{\"vault\":{\"keys\":[{\"name\":\"kek\",\"not_before_in_seconds\":-3600,"
                "\"expires_in_seconds\":86400}]}}",
                NULL, NULL, false);
        ck_assert_msg(!ade_check_list_first_failure(&r.list), "%s", ade_check_list_first_failure(&r.list)->reason);
        ck_assert_int_eq(find(&r, "kek-valid")->verdict, ADE_VERDICT_OK);
}
END_TEST

START_TEST(test_soft_delete_off_warns) {
        _cleanup_(run_done) Run r;

        run_checks(
                &r, "{\"vault\":{\"enable_soft_delete\":false,\"enable_purge_protection\":false}}", NULL, NULL, false);
        ck_assert_ptr_null(ade_check_list_first_failure(&r.list));
        ck_assert_int_eq(find(&r, "soft-delete")->verdict, ADE_VERDICT_WARNING);
}
END_TEST

START_TEST(test_skip_snapshot_check_overrides_only_snapshots) {
        _cleanup_(run_done) Run r;

        run_checks(&r, "{\"snapshots\":[],\"vm\":{\"location\":\"eastus\"}}", NULL, NULL, true);
        ck_assert_int_eq(find(&r, "snapshot")->verdict, ADE_VERDICT_WARNING);
        ck_assert_str_eq(ade_check_list_first_failure(&r.list)->name, "same-region");
}
END_TEST

START_TEST(test_region_mismatch) {
        expect_failure("{\"vm\":{\"location\":\"East US\"}}", NULL, NULL, "same-region", "use a vault in East US");
}
END_TEST

START_TEST(test_region_mismatch_warning_when_allowed) {
        _cleanup_(run_done) Run r;

        run_checks(
                &r, "{\"vm\":{\"location\":\"eastus\"}}", "[preconditions]\nrequire-same-region = no\n", NULL, false);
        ck_assert_ptr_null(ade_check_list_first_failure(&r.list));
        ck_assert_int_eq(find(&r, "same-region")->verdict, ADE_VERDICT_WARNING);
}
END_TEST

START_TEST(test_no_snapshot) {
        expect_failure("{\"snapshots\":[]}", NULL, NULL, "snapshot", "no snapshot of disk ade-test-vm_DataDisk_0");
}
END_TEST

START_TEST(test_snapshot_too_old) {
        expect_failure("{\"snapshots\":[{\"name\":\"s0\",\"disk\":\"ade-test-vm_DataDisk_0\",\"age_seconds\":172800},"
                       "{\"name\":\"s1\",\"disk\":\"ade-test-vm_DataDisk_1\"}]}",
                NULL, NULL, "snapshot", "older than snapshot-max-age");
}
END_TEST

START_TEST(test_snapshot_of_another_disk) {
        expect_failure("{\"snapshots\":[{\"name\":\"s0\",\"disk\":\"ade-test-vm_OsDisk\"},"
                       "{\"name\":\"s1\",\"disk\":\"ade-test-vm_DataDisk_1\"}]}",
                NULL, NULL, "snapshot", "no snapshot of disk ade-test-vm_DataDisk_0");
}
END_TEST

START_TEST(test_snapshot_failed_state) {
        expect_failure("{\"snapshots\":[{\"name\":\"s0\",\"disk\":\"ade-test-vm_DataDisk_0\"},"
                       "{\"name\":\"s1\",\"disk\":\"ade-test-vm_DataDisk_1\",\"state\":\"Failed\"}]}",
                NULL, NULL, "snapshot", "not Succeeded");
}
END_TEST

START_TEST(test_vault_not_enabled_for_disk_encryption) {
        expect_failure("{\"vault\":{\"enabled_for_disk_encryption\":false}}", NULL, NULL,
                "vault-enabled-for-disk-encryption", "not enabled for disk encryption");
}
END_TEST

START_TEST(test_vault_in_another_subscription) {
        expect_failure("{\"vault\":{\"subscription_id\":\"ffffffff-0000-4000-8000-00000000000f\"}}", NULL, NULL,
                "same-subscription", "ffffffff-0000-4000-8000-00000000000f");
}
END_TEST

START_TEST(test_kek_unversioned) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *url = NULL;

        /* learn the emulator's kek URL, then drop its version */
        ck_assert_int_eq(ade_emulator_start(NULL, &e), 0);
        url = strdup(e->kek_url);
        *strrchr(url, '/') = '\0';
        expect_failure(NULL, NULL, url, "kek-valid", "no key version");
}
END_TEST

START_TEST(test_kek_disabled) {
        expect_failure(
                "{\"vault\":{\"keys\":[{\"name\":\"kek\",\"enabled\":false}]}}", NULL, NULL, "kek-valid", "disabled");
}
END_TEST

START_TEST(test_kek_expired) {
        expect_failure("{\"vault\":{\"keys\":[{\"name\":\"kek\",\"expires_in_seconds\":-3600}]}}", NULL, NULL,
                "kek-valid", "expired");
}
END_TEST

START_TEST(test_kek_not_valid_yet) {
        expect_failure("{\"vault\":{\"keys\":[{\"name\":\"kek\",\"not_before_in_seconds\":3600}]}}", NULL, NULL,
                "kek-valid", "not valid yet");
}
END_TEST

/* Every operation allowed, so the key type is the only defect. */
START_TEST(test_kek_ec_key) {
        expect_failure("{\"vault\":{\"keys\":[{\"name\":\"kek\",\"kty\":\"EC\",\"crv\":\"P-256\","
                       "\"key_ops\":[\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\"]}]}}",
                NULL, NULL, "kek-valid", "must be RSA");
}
END_TEST

START_TEST(test_kek_without_wrapkey) {
        expect_failure(
                "{\"vault\":{\"keys\":[{\"name\":\"kek\",\"key_ops\":[\"encrypt\",\"decrypt\",\"unwrapKey\"]}]}}", NULL,
                NULL, "kek-valid", "wrapKey");
}
END_TEST

START_TEST(test_imds_unreachable) {
        _cleanup_(run_done) Run r;
        const AdeCheck *c;

        /* every IMDS request dropped for ten minutes: retries run out */
        run_checks(&r, NULL, NULL, NULL, false);
        ade_check_list_done(&r.list);
        ck_assert_int_eq(ade_emulator_fault(r.emu, "{\"route\":\"imds-instance\",\"drop\":true,\"seconds\":600}"), 0);
        {
                AdeHttpOptions http = fast_http();
                AdePrecheckRequest req = {
                        .http = &http,
                        .config = r.config,
                        .vault_url = r.emu->vault_url,
                        .vault_resource_id = r.emu->vault_resource_id,
                        .scope_data = true,
                };
                ck_assert_int_eq(ade_precheck_run(&req, &r.list, NULL), 0);
        }
        c = ade_check_list_first_failure(&r.list);
        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(c->name, "vm-identity");
}
END_TEST

START_TEST(test_arm_403_names_reader_role) {
        expect_failure(
                "{\"identities\":{\"system\":{\"snapshot_reader\":false}}}", NULL, NULL, "snapshot", "Reader role");
}
END_TEST

START_TEST(test_checks_prepare_the_escrow) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_(ade_config_freep) AdeConfig *config = NULL;
        _cleanup_(ade_resolver_freep) AdeResolver *resolver = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_secret_ AdeSecret *key = NULL;
        AdeCheckList list = {};
        AdeHttpOptions http = fast_http();

        /* The reads run side by side over the resolver: one token per resource, and the vault's
         * challenge and token are ready when the escrow comes. */
        ck_assert_int_eq(ade_emulator_start(NULL, &e), 0);
        ck_assert_int_eq(ade_emulator_load_config(e, NULL, NULL, &config), 0);
        ck_assert_int_eq(ade_resolver_new(config, &http, &resolver), 0);
        ck_assert_int_eq(ade_precheck_run(
                                 &(AdePrecheckRequest){
                                         .config = config,
                                         .resolver = resolver,
                                         .vault_url = e->vault_url,
                                         .vault_resource_id = e->vault_resource_id,
                                         .kek_url = e->kek_url,
                                         .kek_algorithm = "RSA-OAEP",
                                         .scope_data = true,
                                 },
                                 &list, NULL),
                0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ade_check_list_done(&list);
        /* the instance, a token for ARM, a token for Key Vault */
        ck_assert_int_eq(ade_emulator_requests_to(e, "imds"), 3);

        ck_assert_int_eq(ade_emulator_clear_requests(e), 0);
        ck_assert_int_eq(ade_keyfile_generate(&key), 0);
        ck_assert_int_eq(
                ade_resolver_escrow(resolver,
                        &(AdeResolverEscrow){.vault_url = e->vault_url, .kek_url = e->kek_url, .volume_type = "Data"},
                        key, &t, NULL),
                0);
        /* wrapkey, set, get: no challenge, no token request */
        ck_assert_int_eq(ade_emulator_requests_to(e, "keyvault"), 3);
        ck_assert_int_eq(ade_emulator_requests_to(e, "imds"), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("precheck-emu");
        TCase *good = ade_test_case("good"), *bad = ade_test_case("bad");

        if (!getenv("top_builddir") && !getenv("ADE_EMULATOR"))
                return 77;

        tcase_set_timeout(good, 120);
        tcase_set_timeout(bad, 240);
        tcase_add_test(good, test_default_scenario_passes);
        tcase_add_test(good, test_region_case_and_space_variant_passes);
        tcase_add_test(good, test_restore_point_instead_of_snapshot_passes);
        tcase_add_test(good, test_kek_valid_window_passes);
        tcase_add_test(good, test_soft_delete_off_warns);
        tcase_add_test(good, test_skip_snapshot_check_overrides_only_snapshots);
        tcase_add_test(good, test_region_mismatch_warning_when_allowed);
        tcase_add_test(bad, test_region_mismatch);
        tcase_add_test(bad, test_no_snapshot);
        tcase_add_test(bad, test_snapshot_too_old);
        tcase_add_test(bad, test_snapshot_of_another_disk);
        tcase_add_test(bad, test_snapshot_failed_state);
        tcase_add_test(bad, test_vault_not_enabled_for_disk_encryption);
        tcase_add_test(bad, test_vault_in_another_subscription);
        tcase_add_test(bad, test_kek_unversioned);
        tcase_add_test(bad, test_kek_disabled);
        tcase_add_test(bad, test_kek_expired);
        tcase_add_test(bad, test_kek_not_valid_yet);
        tcase_add_test(bad, test_kek_ec_key);
        tcase_add_test(bad, test_kek_without_wrapkey);
        tcase_add_test(bad, test_imds_unreachable);
        tcase_add_test(bad, test_arm_403_names_reader_role);
        tcase_add_test(good, test_checks_prepare_the_escrow);
        suite_add_tcase(s, good);
        suite_add_tcase(s, bad);
        return ade_test_run(s);
}
