/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ARM client against the emulator: vault properties, snapshots across pages, disks, restore point
 * collections, and the failures the precondition checks must report. */
#include <curl/curl.h>

#include "ade-arm.h"
#include "ade-imds.h"
#include "ade-json.h"
#include "ade-test.h"
#include "ade-url.h"
#include "emu-harness.h"

typedef struct Ctx {
        AdeEmulator *emu;
        AdeCredential *cred;
        AdeArm *arm;
} Ctx;

static Ctx shared;

static void ctx_done(Ctx *c) {
        ade_arm_free(c->arm);
        ade_credential_free(c->cred);
        ade_emulator_stop(c->emu);
        *c = (Ctx){};
}

static int ctx_start(Ctx *c, const char *overlay) {
        AdeHttpOptions o;
        int r;

        *c = (Ctx){};
        r = ade_emulator_start(overlay, &c->emu);
        if (r < 0)
                return r;
        ade_emulator_http_options(c->emu, 2, &o);
        r = ade_emulator_credential(c->emu, &o, &c->cred);
        if (r < 0)
                return r;
        return ade_arm_new(c->emu->arm_url, c->cred, NULL, &o, &c->arm);
}

static void suite_setup(void) {
        if (ctx_start(&shared, NULL) < 0) {
                fprintf(stderr, "Cannot start the emulator\n");
                exit(EXIT_FAILURE);
        }
}

static void suite_teardown(void) {
        ctx_done(&shared);
}

static void test_setup(void) {
        ck_assert_int_eq(ade_emulator_reset(shared.emu), 0);
}

START_TEST(test_get_vault) {
        _cleanup_(ade_arm_vault_freep) AdeArmVault *v = NULL;

        ck_assert_int_eq(ade_arm_get_vault(shared.arm, shared.emu->vault_resource_id, &v, NULL), 0);
        ck_assert_str_eq(v->name, "contoso");
        ck_assert_str_eq(v->location, "westeurope");
        ck_assert_str_eq(v->subscription_id, shared.emu->subscription_id);
        ck_assert(v->enabled_for_disk_encryption);
        ck_assert(v->soft_delete);
        ck_assert(v->purge_protection);
        ck_assert(!v->rbac);
        ck_assert_int_eq(v->soft_delete_retention_days, 90);
        ck_assert_ptr_nonnull(v->vault_uri);
}
END_TEST

START_TEST(test_get_vault_not_found) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *id = NULL;
        AdeArmVault *v = NULL;

        ck_assert_int_ge(
                asprintf(&id, "/subscriptions/%s/resourceGroups/ade-rg/providers/Microsoft.KeyVault/vaults/nope",
                        shared.emu->subscription_id),
                0);
        ck_assert_int_eq(ade_arm_get_vault(shared.arm, id, &v, &e), -ENOENT);
        ck_assert_int_eq(e.status, 404);
        ck_assert_str_eq(e.code, "ResourceNotFound");
        ck_assert_ptr_nonnull(strstr(e.url, "/vaults/nope"));
        ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_get_vault_bad_id_refused) {
        AdeArmVault *v = NULL;

        ck_assert_int_eq(ade_arm_get_vault(shared.arm, "/subscriptions/x/vaults/y", &v, NULL), -EINVAL);
        ck_assert_int_eq(ade_emulator_requests_to(shared.emu, "arm"), 0);
}
END_TEST

START_TEST(test_list_snapshots_follows_next_link) {
        _cleanup_(ade_arm_snapshot_list_freep) AdeArmSnapshotList *l = NULL;
        int64_t now = time(NULL);

        /* Three snapshots (one per disk), two per page. */
        ck_assert_int_eq(ade_arm_list_snapshots(shared.arm, shared.emu->subscription_id, "ade-rg", &l, NULL), 0);
        ck_assert_uint_eq(l->n, 3);
        ck_assert_int_eq(ade_emulator_requests_to(shared.emu, "arm"), 2);
        for (size_t i = 0; i < l->n; i++) {
                ck_assert_str_eq(l->items[i].provisioning_state, "Succeeded");
                ck_assert_ptr_nonnull(strstr(l->items[i].source_resource_id, "/providers/Microsoft.Compute/disks/"));
                ck_assert_int_gt(l->items[i].time_created, now - 2 * 3600);
                ck_assert_int_lt(l->items[i].time_created, now);
        }
}
END_TEST

START_TEST(test_list_snapshots_whole_subscription) {
        _cleanup_(ade_arm_snapshot_list_freep) AdeArmSnapshotList *l = NULL;

        ck_assert_int_eq(ade_arm_list_snapshots(shared.arm, shared.emu->subscription_id, NULL, &l, NULL), 0);
        ck_assert_uint_eq(l->n, 3);
}
END_TEST

START_TEST(test_get_disk) {
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *m = NULL;
        _cleanup_(ade_arm_disk_freep) AdeArmDisk *d = NULL;

        ck_assert_int_eq(ade_imds_new(shared.emu->imds_url, NULL, &imds), 0);
        ck_assert_int_eq(ade_imds_get_instance(imds, &m, NULL), 0);
        ck_assert_int_eq(ade_arm_get_disk(shared.arm, m->data_disks[0].managed_disk_id, &d, NULL), 0);
        ck_assert_str_eq(d->name, "ade-test-vm_DataDisk_0");
        ck_assert_str_eq(d->unique_id, "8a6c2f1e-0b7d-4c3e-9f5a-1d2e3f4a5b61");
        ck_assert(ade_url_arm_id_equal(d->id, m->data_disks[0].managed_disk_id));
        /* Not encrypted by ADE: no secret named. */
        ck_assert_ptr_null(d->secret_url);
        ck_assert_ptr_null(d->kek_url);
}
END_TEST

/* A disk ADE encrypted: its encryption settings name the secret (and the KEK), as adoption reads them. */
START_TEST(test_get_disk_encryption_settings) {
        _cleanup_(ctx_done) Ctx c = {};
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *m = NULL;
        _cleanup_(ade_arm_disk_freep) AdeArmDisk *d = NULL;

        ck_assert_int_eq(ctx_start(&c, "{\"vm\":{\"data_disks\":[{\"name\":\"ade-test-vm_DataDisk_0\",\"lun\":0,"
                                       "\"encryption_secret\":\"ade-sec\"}]},\"vault\":{\"secrets\":[{\"name\":"
                                       "\"ade-sec\",\"value\":\"v\",\"tags\":{\"DiskEncryptionKeyEncryptionKeyURL\":"
                                       "\"https://contoso.vault.azure.net/keys/kek/0123abcd\"}}]}}"),
                0);
        ck_assert_int_eq(ade_imds_new(c.emu->imds_url, NULL, &imds), 0);
        ck_assert_int_eq(ade_imds_get_instance(imds, &m, NULL), 0);
        ck_assert_int_eq(ade_arm_get_disk(c.arm, m->data_disks[0].managed_disk_id, &d, NULL), 0);
        ck_assert(d->encryption_settings_enabled);
        ck_assert_ptr_nonnull(d->secret_url);
        ck_assert_ptr_nonnull(strstr(d->secret_url, "/secrets/ade-sec/"));
        ck_assert_str_eq(d->kek_url, "https://contoso.vault.azure.net/keys/kek/0123abcd");
}
END_TEST

START_TEST(test_get_disk_not_found) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *id = NULL;
        AdeArmDisk *d = NULL;

        ck_assert_int_ge(asprintf(&id, "/subscriptions/%s/resourceGroups/ade-rg/providers/Microsoft.Compute/disks/nope",
                                 shared.emu->subscription_id),
                0);
        ck_assert_int_eq(ade_arm_get_disk(shared.arm, id, &d, &e), -ENOENT);
        ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_no_restore_point_collections) {
        _cleanup_(ade_arm_rpc_list_freep) AdeArmRestorePointCollectionList *l = NULL;

        ck_assert_int_eq(
                ade_arm_list_restore_point_collections(shared.arm, shared.emu->subscription_id, "ade-rg", &l, NULL), 0);
        ck_assert_uint_eq(l->n, 0);
}
END_TEST

START_TEST(test_restore_points) {
        Ctx c;
        _cleanup_(ade_arm_rpc_list_freep) AdeArmRestorePointCollectionList *l = NULL, *one = NULL;

        ck_assert_int_eq(
                ctx_start(&c, "{\"restore_point_collections\":[{\"name\":\"rpc1\",\"restore_points\":"
                              "[{\"name\":\"rp1\",\"age_seconds\":600},{\"name\":\"rp2\",\"age_seconds\":7200}]}]}"),
                0);
        ck_assert_int_eq(ade_arm_list_restore_point_collections(c.arm, c.emu->subscription_id, "ade-rg", &l, NULL), 0);
        ck_assert_uint_eq(l->n, 1);
        ck_assert_str_eq(l->items[0].name, "rpc1");
        ck_assert_ptr_nonnull(strstr(l->items[0].source_id, "/virtualMachines/ade-test-vm"));
        ck_assert_uint_eq(l->items[0].n_points, 2);
        ck_assert_str_eq(l->items[0].points[0].name, "rp1");
        ck_assert_str_eq(l->items[0].points[0].provisioning_state, "Succeeded");
        ck_assert_int_gt(l->items[0].points[0].time_created, l->items[0].points[1].time_created);
        /* OS disk and both data disks */
        ck_assert_uint_eq(strv_length(l->items[0].points[0].disk_ids), 3);

        /* The same collection by id. */
        ck_assert_int_eq(ade_arm_get_restore_point_collection(c.arm, l->items[0].id, &one, NULL), 0);
        ck_assert_uint_eq(one->n, 1);
        ck_assert_str_eq(one->items[0].name, "rpc1");
        ck_assert_uint_eq(one->items[0].n_points, 2);
        ctx_done(&c);
}
END_TEST

START_TEST(test_get_restore_point_collection_not_found) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *id = NULL;
        AdeArmRestorePointCollectionList *l = NULL;

        ck_assert_int_ge(asprintf(&id,
                                 "/subscriptions/%s/resourceGroups/ade-rg/providers/Microsoft.Compute/"
                                 "restorePointCollections/nope",
                                 shared.emu->subscription_id),
                0);
        ck_assert_int_eq(ade_arm_get_restore_point_collection(shared.arm, id, &l, &e), -ENOENT);
        ck_assert_int_eq(e.status, 404);
        ck_assert_ptr_null(l);
}
END_TEST

START_TEST(test_get_restore_point_collection_bad_id_refused) {
        AdeArmRestorePointCollectionList *l = NULL;

        ck_assert_int_eq(
                ade_arm_get_restore_point_collection(shared.arm, "/subscriptions/x/disks/y", &l, NULL), -EINVAL);
        ck_assert_int_eq(ade_emulator_requests_to(shared.emu, "arm"), 0);
}
END_TEST

START_TEST(test_throttled_then_success) {
        _cleanup_(ade_arm_vault_freep) AdeArmVault *v = NULL;

        ck_assert_int_eq(ade_emulator_fault(shared.emu, "{\"route\":\"arm\",\"status\":429,\"retry_after\":1}"), 0);
        ck_assert_int_eq(ade_arm_get_vault(shared.arm, shared.emu->vault_resource_id, &v, NULL), 0);
        ck_assert_int_eq(ade_emulator_requests_to(shared.emu, "arm"), 2);
}
END_TEST

START_TEST(test_server_errors_until_retries_run_out) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeArmVault *v = NULL;

        ck_assert_int_eq(ade_emulator_fault(shared.emu, "{\"route\":\"arm\",\"status\":502,\"count\":20}"), 0);
        ck_assert_int_eq(ade_arm_get_vault(shared.arm, shared.emu->vault_resource_id, &v, &e), -EAGAIN);
        ck_assert_int_eq(e.status, 502);
        ck_assert_int_eq(ade_emulator_requests_to(shared.emu, "arm"), 3);
}
END_TEST

START_TEST(test_expired_token_refreshed_once) {
        Ctx c;
        _cleanup_(ade_arm_vault_freep) AdeArmVault *v = NULL;

        /* A fresh emulator, so that no token is cached. */
        ck_assert_int_eq(ctx_start(&c, NULL), 0);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"imds-token\",\"token\":\"expired\"}"), 0);
        ck_assert_int_eq(ade_arm_get_vault(c.arm, c.emu->vault_resource_id, &v, NULL), 0);
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 2);
        ctx_done(&c);
}
END_TEST

START_TEST(test_wrong_audience_refused) {
        Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeArmVault *v = NULL;

        ck_assert_int_eq(ctx_start(&c, NULL), 0);
        ck_assert_int_eq(
                ade_emulator_fault(c.emu, "{\"route\":\"imds-token\",\"token\":\"wrong-audience\",\"count\":5}"), 0);
        ck_assert_int_eq(ade_arm_get_vault(c.arm, c.emu->vault_resource_id, &v, &e), -EACCES);
        ck_assert_int_eq(e.status, 401);
        ck_assert_ptr_nonnull(e.code);
        ctx_done(&c);
}
END_TEST

START_TEST(test_malformed_list_refused) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeArmSnapshotList *l = NULL;

        ck_assert_int_eq(ade_emulator_fault(shared.emu, "{\"route\":\"arm\",\"body\":\"{\\\"value\\\":{}}\"}"), 0);
        ck_assert_int_eq(ade_arm_list_snapshots(shared.arm, shared.emu->subscription_id, "ade-rg", &l, &e), -EPROTO);
        ck_assert_str_eq(e.code, "MalformedReply");
        ck_assert_ptr_null(l);
}
END_TEST

START_TEST(test_next_link_to_other_host_refused) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeArmSnapshotList *l = NULL;

        /* A token for ARM is never sent to a host a reply names. */
        ck_assert_int_eq(
                ade_emulator_fault(shared.emu, "{\"route\":\"arm\",\"body\":\"{\\\"value\\\":[],\\\"nextLink\\\":"
                                               "\\\"https://evil.example.com/page2\\\"}\"}"),
                0);
        ck_assert_int_eq(ade_arm_list_snapshots(shared.arm, shared.emu->subscription_id, "ade-rg", &l, &e), -EPROTO);
        ck_assert_int_eq(ade_emulator_requests_to(shared.emu, "arm"), 1);
        ck_assert_str_eq(e.code, "OriginNotAllowed");
        ck_assert_ptr_nonnull(strstr(e.message, "https://evil.example.com/page2"));
        ck_assert_ptr_nonnull(strstr(e.message, "[azure] arm"));
}
END_TEST

START_TEST(test_next_link_to_other_port_refused) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *other = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *fault = NULL;
        AdeArmSnapshotList *l = NULL;

        /* A second server on ARM's own host is another party too. */
        ck_assert_int_eq(ade_emulator_start(NULL, &other), 0);
        ck_assert_int_ge(asprintf(&fault,
                                 "{\"route\":\"arm\",\"body\":\"{\\\"value\\\":[],\\\"nextLink\\\":"
                                 "\\\"%s/subscriptions/x?page=2\\\"}\"}",
                                 other->arm_url),
                0);
        ck_assert_int_eq(ade_emulator_fault(shared.emu, fault), 0);
        ck_assert_int_eq(ade_arm_list_snapshots(shared.arm, shared.emu->subscription_id, "ade-rg", &l, &e), -EPROTO);
        ck_assert_str_eq(e.code, "OriginNotAllowed");
        ck_assert_int_eq(ade_emulator_requests_to(other, NULL), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("arm-emu");
        TCase *tc = ade_test_case("arm-emu");

        if (!ade_emulator_available())
                return 77;
        curl_global_init(CURL_GLOBAL_DEFAULT);

        tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
        tcase_add_checked_fixture(tc, test_setup, NULL);
        tcase_add_test(tc, test_get_vault);
        tcase_add_test(tc, test_next_link_to_other_port_refused);
        tcase_add_test(tc, test_get_vault_not_found);
        tcase_add_test(tc, test_get_vault_bad_id_refused);
        tcase_add_test(tc, test_list_snapshots_follows_next_link);
        tcase_add_test(tc, test_list_snapshots_whole_subscription);
        tcase_add_test(tc, test_get_disk);
        tcase_add_test(tc, test_get_disk_encryption_settings);
        tcase_add_test(tc, test_get_disk_not_found);
        tcase_add_test(tc, test_no_restore_point_collections);
        tcase_add_test(tc, test_restore_points);
        tcase_add_test(tc, test_get_restore_point_collection_not_found);
        tcase_add_test(tc, test_get_restore_point_collection_bad_id_refused);
        tcase_add_test(tc, test_throttled_then_success);
        tcase_add_test(tc, test_server_errors_until_retries_run_out);
        tcase_add_test(tc, test_expired_token_refreshed_once);
        tcase_add_test(tc, test_wrong_audience_refused);
        tcase_add_test(tc, test_malformed_list_refused);
        tcase_add_test(tc, test_next_link_to_other_host_refused);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
