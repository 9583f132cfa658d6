/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-arm.h"
#include "ade-precheck.h"
#include "ade-test.h"
#include "ade-url.h"

#define SUB "0a1b2c3d-0000-4000-8000-000000000001"
#define RG "/subscriptions/" SUB "/resourceGroups/ade-rg/providers/"
#define VM_ID RG "Microsoft.Compute/virtualMachines/ade-test-vm"
#define DISK0 RG "Microsoft.Compute/disks/ade-test-vm_DataDisk_0"
#define DISK1 RG "Microsoft.Compute/disks/ade-test-vm_DataDisk_1"
#define NOW 1800000000

static const char *all_ops[] = {"encrypt", "decrypt", "wrapKey", "unwrapKey", NULL};
static const AdePrecheckDisk disks[] = {
        {"ade-test-vm_DataDisk_0", DISK0, 0},
        {"ade-test-vm_DataDisk_1", DISK1, 1},
};
static AdePrecheckSnapshot snaps[2];
static AdePrecheckFacts f;
static AdeCheckList list;

static void setup(void) {
        snaps[0] = (AdePrecheckSnapshot){"snap0", DISK0, "Succeeded", NOW - 3600};
        /* ARM's list sometimes drops the leading slash of sourceResourceId */
        snaps[1] = (AdePrecheckSnapshot){"snap1", DISK1 + 1, "Succeeded", NOW - 600};
        f = (AdePrecheckFacts){
                .now = NOW,
                .vm_location = "westeurope",
                .vm_subscription = SUB,
                .vm_resource_id = VM_ID,
                .disks = disks,
                .n_disks = 2,
                .vault_url = "https://contoso.vault.azure.net",
                .vault_resource_id = RG "Microsoft.KeyVault/vaults/contoso",
                .vault_location = "westeurope",
                .vault_enabled_for_disk_encryption = true,
                .vault_soft_delete = true,
                .vault_purge_protection = true,
                .kek_url = "https://contoso.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef",
                .kek_algorithm = "RSA-OAEP",
                .kek_kty = "RSA",
                .kek_enabled = true,
                .kek_ops = all_ops,
                .snapshots = snaps,
                .n_snapshots = 2,
                .snapshot_max_age_sec = 86400,
                .require_same_region = true,
        };
        list = (AdeCheckList){};
}

static void teardown(void) {
        ade_check_list_done(&list);
}

static const AdeCheck *find(const char *name, const char *target) {
        for (size_t i = 0; i < list.n; i++)
                if (streq(list.checks[i].name, name) && streq_ptr(list.checks[i].target, target))
                        return &list.checks[i];
        return NULL;
}

static const AdeCheck *evaluate_expect_failure(const char *name, const char *target, const char *needle) {
        const AdeCheck *c;

        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        c = ade_check_list_first_failure(&list);
        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(c->name, name);
        ck_assert(streq_ptr(c->target, target));
        ck_assert_msg(strstr(c->reason, needle), "reason '%s' lacks '%s'", c->reason, needle);
        return c;
}

START_TEST(test_all_good) {
        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ck_assert_int_eq(find("same-region", NULL)->verdict, ADE_VERDICT_OK);
        ck_assert_int_eq(find("kek-valid", NULL)->verdict, ADE_VERDICT_OK);
        ck_assert_int_eq(find("snapshot", "ade-test-vm_DataDisk_1")->verdict, ADE_VERDICT_OK);
        ck_assert_ptr_nonnull(find("vault-enabled-for-disk-encryption", NULL));
        ck_assert_ptr_nonnull(find("same-subscription", NULL));
}
END_TEST

START_TEST(test_region_ignores_case_and_spaces) {
        f.vm_location = "West Europe";
        f.vault_location = "WESTEUROPE";
        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ck_assert(ade_region_equal("East US", "eastus"));
        ck_assert(ade_region_equal(" eastus 2", "EastUS2"));
        ck_assert(!ade_region_equal("eastus", "eastus2"));
        ck_assert(!ade_region_equal(NULL, "eastus"));
}
END_TEST

START_TEST(test_restore_point_instead_of_snapshot) {
        static const AdePrecheckRestorePoint rp = {"rp1", VM_ID, "Succeeded", NOW - 7200, NULL, NULL};
        f.n_snapshots = 0;
        f.restore_points = &rp;
        f.n_restore_points = 1;
        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ck_assert_ptr_nonnull(strstr(find("snapshot", "ade-test-vm_DataDisk_0")->reason, "restore point rp1"));
}
END_TEST

START_TEST(test_soft_delete_off_is_a_warning) {
        f.vault_soft_delete = false;
        f.vault_purge_protection = false;
        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ck_assert_int_eq(find("soft-delete", NULL)->verdict, ADE_VERDICT_WARNING);
        ck_assert_int_eq(find("purge-protection", NULL)->verdict, ADE_VERDICT_WARNING);
}
END_TEST

START_TEST(test_region_mismatch_allowed_as_warning) {
        f.vault_location = "eastus";
        f.require_same_region = false;
        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ck_assert_int_eq(find("same-region", NULL)->verdict, ADE_VERDICT_WARNING);
}
END_TEST

START_TEST(test_skip_snapshot_is_a_recorded_warning) {
        f.n_snapshots = 0;
        f.skip_snapshot_check = true;
        ck_assert_int_eq(ade_precheck_evaluate(&f, &list), 0);
        ck_assert_ptr_null(ade_check_list_first_failure(&list));
        ck_assert_int_eq(find("snapshot", NULL)->verdict, ADE_VERDICT_WARNING);
}
END_TEST

START_TEST(test_region_mismatch) {
        const AdeCheck *c;
        f.vault_location = "East US";
        c = evaluate_expect_failure("same-region", NULL, "VM is in westeurope");
        ck_assert_ptr_nonnull(strstr(c->reason, "use a vault in westeurope"));
        ck_assert_int_eq(c->error, ADE_CHECK_ERROR_REGION);
        ck_assert_str_eq(c->error_arg1, "westeurope");
        ck_assert_str_eq(c->error_arg2, "East US");
}
END_TEST

START_TEST(test_no_snapshot) {
        const AdeCheck *c;
        f.n_snapshots = 1; /* only disk 0 has one */
        c = evaluate_expect_failure("snapshot", "ade-test-vm_DataDisk_1", "no snapshot of disk ade-test-vm_DataDisk_1");
        ck_assert_int_eq(c->error, ADE_CHECK_ERROR_SNAPSHOT);
        ck_assert_str_eq(c->error_arg1, "ade-test-vm_DataDisk_1");
}
END_TEST

START_TEST(test_snapshot_too_old) {
        snaps[0].created = NOW - 2 * 86400;
        evaluate_expect_failure("snapshot", "ade-test-vm_DataDisk_0", "older than snapshot-max-age");
}
END_TEST

START_TEST(test_snapshot_of_another_disk) {
        snaps[0].source_id = RG "Microsoft.Compute/disks/some-other-disk";
        evaluate_expect_failure("snapshot", "ade-test-vm_DataDisk_0", "no snapshot");
}
END_TEST

START_TEST(test_snapshot_failed_state) {
        snaps[1].state = "Failed";
        evaluate_expect_failure("snapshot", "ade-test-vm_DataDisk_1", "not Succeeded");
}
END_TEST

START_TEST(test_restore_point_excluding_disk_does_not_count) {
        static const char *excluded[] = {DISK1, NULL};
        static const AdePrecheckRestorePoint rp = {"rp1", VM_ID, "Succeeded", NOW - 60, NULL, excluded};
        f.n_snapshots = 1;
        f.restore_points = &rp;
        f.n_restore_points = 1;
        evaluate_expect_failure("snapshot", "ade-test-vm_DataDisk_1", "no snapshot");
}
END_TEST

START_TEST(test_snapshots_forbidden_names_role) {
        f.snapshot_error = -EACCES;
        f.snapshot_error_message = "ARM 403 AuthorizationFailed";
        evaluate_expect_failure("snapshot", NULL, "Reader role");
}
END_TEST

START_TEST(test_vault_not_enabled) {
        f.vault_enabled_for_disk_encryption = false;
        evaluate_expect_failure("vault-enabled-for-disk-encryption", NULL, "enabled-for-disk-encryption true");
}
END_TEST

START_TEST(test_vault_other_subscription) {
        f.vault_resource_id = "/subscriptions/ffffffff-0000-4000-8000-000000000009/resourceGroups/x/providers/"
                              "Microsoft.KeyVault/vaults/contoso";
        evaluate_expect_failure("same-subscription", NULL, "ffffffff-0000-4000-8000-000000000009");
}
END_TEST

START_TEST(test_vault_unreachable) {
        f.vault_error = -ENOENT;
        f.vault_error_message = "ARM 404 ResourceNotFound";
        evaluate_expect_failure("vault-reachable", NULL, "ResourceNotFound");
}
END_TEST

START_TEST(test_kek_unversioned) {
        f.kek_url = "https://contoso.vault.azure.net/keys/kek";
        evaluate_expect_failure("kek-valid", NULL, "no key version");
}
END_TEST

START_TEST(test_kek_disabled) {
        f.kek_enabled = false;
        evaluate_expect_failure("kek-valid", NULL, "disabled");
}
END_TEST

START_TEST(test_kek_expired) {
        f.kek_expires = NOW - 1;
        evaluate_expect_failure("kek-valid", NULL, "expired");
}
END_TEST

START_TEST(test_kek_ec_key) {
        f.kek_kty = "EC";
        evaluate_expect_failure("kek-valid", NULL, "must be RSA");
}
END_TEST

START_TEST(test_kek_without_wrap) {
        static const char *ops[] = {"encrypt", "decrypt", "unwrapKey", NULL};
        f.kek_ops = ops;
        evaluate_expect_failure("kek-valid", NULL, "wrapKey");
}
END_TEST

START_TEST(test_imds_unreachable) {
        f.vm_error = -ECONNREFUSED;
        f.vm_error_message = "http://169.254.169.254/metadata/instance: connection refused";
        evaluate_expect_failure("vm-identity", NULL, "connection refused");
        ck_assert_ptr_null(find("same-region", NULL));
}
END_TEST

START_TEST(test_resource_id_helpers) {
        _cleanup_free_ char *s = NULL;
        char *none = NULL;

        ck_assert_int_eq(ade_url_arm_id_subscription("subscriptions/abc/resourceGroups/x", &s), 0);
        ck_assert_str_eq(s, "abc");
        ck_assert_int_eq(ade_url_arm_id_subscription("/resourceGroups/x", &none), -EINVAL);
        ck_assert_ptr_null(none);
        ck_assert(ade_url_arm_id_equal("/Subscriptions/A/x", "subscriptions/a/X"));
        ck_assert(!ade_url_arm_id_equal("/subscriptions/a/x", "/subscriptions/a/y"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("precheck");
        TCase *good = ade_test_case("good"), *bad = ade_test_case("bad");

        tcase_add_checked_fixture(good, setup, teardown);
        tcase_add_checked_fixture(bad, setup, teardown);
        tcase_add_test(good, test_all_good);
        tcase_add_test(good, test_region_ignores_case_and_spaces);
        tcase_add_test(good, test_restore_point_instead_of_snapshot);
        tcase_add_test(good, test_soft_delete_off_is_a_warning);
        tcase_add_test(good, test_region_mismatch_allowed_as_warning);
        tcase_add_test(good, test_skip_snapshot_is_a_recorded_warning);
        tcase_add_test(good, test_resource_id_helpers);
        tcase_add_test(bad, test_region_mismatch);
        tcase_add_test(bad, test_no_snapshot);
        tcase_add_test(bad, test_snapshot_too_old);
        tcase_add_test(bad, test_snapshot_of_another_disk);
        tcase_add_test(bad, test_snapshot_failed_state);
        tcase_add_test(bad, test_restore_point_excluding_disk_does_not_count);
        tcase_add_test(bad, test_snapshots_forbidden_names_role);
        tcase_add_test(bad, test_vault_not_enabled);
        tcase_add_test(bad, test_vault_other_subscription);
        tcase_add_test(bad, test_vault_unreachable);
        tcase_add_test(bad, test_kek_unversioned);
        tcase_add_test(bad, test_kek_disabled);
        tcase_add_test(bad, test_kek_expired);
        tcase_add_test(bad, test_kek_ec_key);
        tcase_add_test(bad, test_kek_without_wrap);
        tcase_add_test(bad, test_imds_unreachable);
        suite_add_tcase(s, good);
        suite_add_tcase(s, bad);
        return ade_test_run(s);
}
