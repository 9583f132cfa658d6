/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* IMDS client against the emulator's IMDS (plain http on loopback): instance metadata, managed
 * identity tokens for each selector, the token cache, and IMDS' retry rules. One emulator serves the
 * whole suite; faults and the request log are cleared before each test. */
#include <curl/curl.h>

#include "ade-imds.h"
#include "ade-json.h"
#include "ade-test.h"
#include "ade-jwt.h"
#include "emu-harness.h"

/* IMDS' own retry window (70 s for 410) stays: the tests below measure it. */
static AdeImds *imds_new(void) {
        AdeHttpOptions o;
        AdeImds *i = NULL;

        ade_emulator_http_options(NULL, 3, &o);
        o.backoff_max_ms = 100;
        o.imds_gone_max_ms = 0;
        ck_assert_int_eq(ade_imds_new(ade_emulator_suite->imds_url, &o, &i), 0);
        return i;
}

START_TEST(test_instance_metadata) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *m = NULL;

        ck_assert_int_eq(ade_imds_get_instance(i, &m, NULL), 0);
        ck_assert_str_eq(m->location, "westeurope");
        ck_assert_str_eq(m->subscription_id, ade_emulator_suite->subscription_id);
        ck_assert_str_eq(m->resource_group, "ade-rg");
        ck_assert_str_eq(m->vm_name, "ade-test-vm");
        ck_assert_uint_eq(strlen(m->vm_id), 36);
        ck_assert_str_eq(m->os_disk.name, "ade-test-vm_OsDisk");
        ck_assert_ptr_nonnull(strstr(m->os_disk.managed_disk_id, "/resourceGroups/ade-rg/"));
        ck_assert_uint_eq(m->n_data_disks, 2);
        ck_assert_int_eq(m->data_disks[0].lun, 0);
        ck_assert_int_eq(m->data_disks[1].lun, 1);
        ck_assert_str_eq(m->data_disks[1].name, "ade-test-vm_DataDisk_1");
        ck_assert_ptr_nonnull(m->data_disks[1].managed_disk_id);
}
END_TEST

static void check_token_for(AdeImdsIdentity kind, const char *id, const char *expect_oid) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_secret_ AdeSecret *t = NULL;
        _cleanup_json_ json_object *claims = NULL;
        uint64_t exp = 0;
        const char *s;

        ck_assert_int_eq(ade_imds_get_token(i, "https://vault.azure.net", kind, id, &t, &exp, NULL), 0);
        ck_assert_uint_gt(exp, (uint64_t)time(NULL));
        ck_assert_int_eq(ade_jwt_get_claims((char *)t->data, t->size, &claims), 0);
        ck_assert_int_eq(ade_json_get_string(claims, "aud", &s), 0);
        ck_assert_str_eq(s, "https://vault.azure.net");
        if (expect_oid) {
                ck_assert_int_eq(ade_json_get_string(claims, "oid", &s), 0);
                ck_assert_str_eq(s, expect_oid);
        }
}

START_TEST(test_token_system_identity) {
        check_token_for(ADE_IMDS_IDENTITY_SYSTEM, NULL, "9d8c7b6a-1111-4f3e-8d2c-1b0a9f8e7d01");
}
END_TEST

START_TEST(test_token_by_client_id) {
        check_token_for(ADE_IMDS_IDENTITY_CLIENT_ID, "3e4f5a6b-2222-4c2d-8e9f-0a1b2c3d4e02",
                "9d8c7b6a-2222-4f3e-8d2c-1b0a9f8e7d02");
}
END_TEST

START_TEST(test_token_by_object_id) {
        check_token_for(ADE_IMDS_IDENTITY_OBJECT_ID, "9d8c7b6a-2222-4f3e-8d2c-1b0a9f8e7d02",
                "9d8c7b6a-2222-4f3e-8d2c-1b0a9f8e7d02");
}
END_TEST

START_TEST(test_token_by_msi_res_id) {
        _cleanup_free_ char *id = NULL;

        ck_assert_int_ge(asprintf(&id,
                                 "/subscriptions/%s/resourcegroups/ade-rg/providers/Microsoft.ManagedIdentity/"
                                 "userAssignedIdentities/ade-test-identity",
                                 ade_emulator_suite->subscription_id),
                0);
        check_token_for(ADE_IMDS_IDENTITY_MSI_RES_ID, id, "9d8c7b6a-2222-4f3e-8d2c-1b0a9f8e7d02");
}
END_TEST

START_TEST(test_token_scope_form_accepted) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_secret_ AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_imds_get_token(i, "https://management.azure.com/.default", ADE_IMDS_IDENTITY_SYSTEM, NULL,
                                 &t, &exp, NULL),
                0);
}
END_TEST

START_TEST(test_token_unknown_identity_refused_without_retry) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_imds_get_token(i, "https://vault.azure.net", ADE_IMDS_IDENTITY_CLIENT_ID,
                                 "00000000-0000-0000-0000-000000000000", &t, &exp, &e),
                -EINVAL);
        ck_assert_int_eq(e.status, 400);
        ck_assert_ptr_nonnull(e.code);
        ck_assert_ptr_nonnull(e.message);
        ck_assert_ptr_nonnull(strstr(e.url, "/metadata/identity/oauth2/token"));
        ck_assert_ptr_null(t);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "imds"), 1);
}
END_TEST

START_TEST(test_token_unknown_resource_refused) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(
                ade_imds_get_token(i, "https://example.com", ADE_IMDS_IDENTITY_SYSTEM, NULL, &t, &exp, &e), -EINVAL);
        ck_assert_str_eq(e.code, "invalid_resource");
}
END_TEST

START_TEST(test_credential_caches_per_resource) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        _cleanup_secret_ AdeSecret *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;

        ck_assert_int_eq(ade_imds_credential_new(i, false, ADE_IMDS_IDENTITY_SYSTEM, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://vault.azure.net", NULL, NULL, &t1, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://vault.azure.net", NULL, NULL, &t2, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://management.azure.com/", NULL, NULL, &t3, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://management.azure.com/", NULL, NULL, &t4, NULL), 0);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "imds"), 2);
}
END_TEST

START_TEST(test_gone_for_seconds_then_success) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *m = NULL;

        /* 410 is retried past max_retries (3) for up to 70 s: IMDS is being updated. */
        ck_assert_int_eq(
                ade_emulator_fault(ade_emulator_suite, "{\"route\":\"imds-instance\",\"status\":410,\"seconds\":2}"),
                0);
        ck_assert_int_eq(ade_imds_get_instance(i, &m, NULL), 0);
        ck_assert_uint_gt(ade_emulator_requests_to(ade_emulator_suite, "imds"), 4);
}
END_TEST

START_TEST(test_gone_past_window_fails) {
        _cleanup_(ade_imds_freep) AdeImds *i = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeImdsInstance *m = NULL;
        AdeHttpOptions o;

        ade_http_options_init(&o);
        o.backoff_initial_ms = 10;
        o.backoff_max_ms = 50;
        o.imds_gone_max_ms = 300; /* a short window instead of 70 s */
        ck_assert_int_eq(ade_imds_new(ade_emulator_suite->imds_url, &o, &i), 0);
        ck_assert_int_eq(
                ade_emulator_fault(ade_emulator_suite, "{\"route\":\"imds-instance\",\"status\":410,\"seconds\":60}"),
                0);
        ck_assert_int_eq(ade_imds_get_instance(i, &m, &e), -EAGAIN);
        ck_assert_int_eq(e.status, 410);
        ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_not_found_retried_then_success) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_secret_ AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(
                ade_emulator_fault(ade_emulator_suite, "{\"route\":\"imds-token\",\"status\":404,\"count\":2}"), 0);
        ck_assert_int_eq(
                ade_imds_get_token(i, "https://vault.azure.net", ADE_IMDS_IDENTITY_SYSTEM, NULL, &t, &exp, NULL), 0);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "imds"), 3);
}
END_TEST

START_TEST(test_throttled_then_success) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_secret_ AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_emulator_fault(ade_emulator_suite,
                                 "{\"route\":\"imds-token\",\"status\":429,\"retry_after\":1,\"count\":1}"),
                0);
        ck_assert_int_eq(
                ade_imds_get_token(i, "https://vault.azure.net", ADE_IMDS_IDENTITY_SYSTEM, NULL, &t, &exp, NULL), 0);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "imds"), 2);
}
END_TEST

START_TEST(test_server_errors_until_retries_run_out) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeImdsInstance *m = NULL;

        ck_assert_int_eq(
                ade_emulator_fault(ade_emulator_suite, "{\"route\":\"imds-instance\",\"status\":500,\"count\":50}"), 0);
        ck_assert_int_eq(ade_imds_get_instance(i, &m, &e), -EAGAIN);
        ck_assert_int_eq(e.status, 500);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "imds"), 4);
}
END_TEST

START_TEST(test_malformed_token_answer_refused) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeSecret *t = NULL;
        uint64_t exp;

        ck_assert_int_eq(ade_emulator_fault(ade_emulator_suite,
                                 "{\"route\":\"imds-token\",\"body\":\"{\\\"access_token\\\":\\\"eyJ\"}"),
                0);
        ck_assert_int_eq(ade_imds_get_token(i, "https://vault.azure.net", ADE_IMDS_IDENTITY_SYSTEM, NULL, &t, &exp, &e),
                -EPROTO);
        ck_assert_str_eq(e.code, "MalformedReply");
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_instance_answer_without_compute_refused) {
        _cleanup_(ade_imds_freep) AdeImds *i = imds_new();
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeImdsInstance *m = NULL;

        ck_assert_int_eq(ade_emulator_fault(
                                 ade_emulator_suite, "{\"route\":\"imds-instance\",\"body\":\"{\\\"network\\\":{}}\"}"),
                0);
        ck_assert_int_eq(ade_imds_get_instance(i, &m, &e), -EPROTO);
        ck_assert_str_eq(e.code, "MalformedReply");
}
END_TEST

START_TEST(test_too_slow_times_out) {
        _cleanup_(ade_imds_freep) AdeImds *i = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeImdsInstance *m = NULL;
        AdeHttpOptions o;

        ade_http_options_init(&o);
        o.timeout_ms = 300;
        o.max_retries = 0;
        ck_assert_int_eq(ade_imds_new(ade_emulator_suite->imds_url, &o, &i), 0);
        ck_assert_int_eq(
                ade_emulator_fault(ade_emulator_suite, "{\"route\":\"imds-instance\",\"latency_ms\":2000}"), 0);
        ck_assert_int_eq(ade_imds_get_instance(i, &m, &e), -ETIMEDOUT);
        ck_assert_str_eq(e.code, "Timeout");
}
END_TEST

START_TEST(test_proxy_never_used) {
        _cleanup_(ade_imds_freep) AdeImds *i = NULL;
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *m = NULL;

        /* A proxy from the environment would answer for another machine (or nothing, here). */
        ck_assert_int_eq(setenv("http_proxy", "http://127.0.0.1:1", 1), 0);
        ck_assert_int_eq(setenv("HTTP_PROXY", "http://127.0.0.1:1", 1), 0);
        i = imds_new();
        ck_assert_int_eq(ade_imds_get_instance(i, &m, NULL), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("imds-ade_emulator_suite");
        TCase *tc = ade_test_case("imds-ade_emulator_suite");

        if (!ade_emulator_available())
                return 77;
        curl_global_init(CURL_GLOBAL_DEFAULT);

        tcase_add_unchecked_fixture(tc, ade_emulator_suite_setup, ade_emulator_suite_teardown);
        tcase_add_checked_fixture(tc, ade_emulator_test_setup, NULL);
        tcase_add_test(tc, test_instance_metadata);
        tcase_add_test(tc, test_token_system_identity);
        tcase_add_test(tc, test_token_by_client_id);
        tcase_add_test(tc, test_token_by_object_id);
        tcase_add_test(tc, test_token_by_msi_res_id);
        tcase_add_test(tc, test_token_scope_form_accepted);
        tcase_add_test(tc, test_token_unknown_identity_refused_without_retry);
        tcase_add_test(tc, test_token_unknown_resource_refused);
        tcase_add_test(tc, test_credential_caches_per_resource);
        tcase_add_test(tc, test_gone_for_seconds_then_success);
        tcase_add_test(tc, test_gone_past_window_fails);
        tcase_add_test(tc, test_not_found_retried_then_success);
        tcase_add_test(tc, test_throttled_then_success);
        tcase_add_test(tc, test_server_errors_until_retries_run_out);
        tcase_add_test(tc, test_malformed_token_answer_refused);
        tcase_add_test(tc, test_instance_answer_without_compute_refused);
        tcase_add_test(tc, test_too_slow_times_out);
        tcase_add_test(tc, test_proxy_never_used);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
