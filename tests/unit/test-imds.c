/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* IMDS answers parsed without a server: every primitive is a string on the wire. */
#include "ade-imds.h"
#include "ade-test.h"

static const char instance_json[] =
        "{\"compute\":{\"location\":\"westeurope\",\"name\":\"vm1\",\"osType\":\"Linux\","
        "\"resourceGroupName\":\"rg\",\"resourceId\":\"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
        "virtualMachines/vm1\","
        "\"subscriptionId\":\"s\",\"vmId\":\"02aab8a4-74ef-476e-8182-f6d2ba4166a6\","
        "\"storageProfile\":{\"osDisk\":{\"name\":\"vm1_OsDisk\",\"managedDisk\":{\"id\":\"/subscriptions/s/"
        "resourceGroups/rg/providers/Microsoft.Compute/disks/vm1_OsDisk\"}},"
        "\"dataDisks\":[{\"lun\":\"0\",\"name\":\"d0\",\"managedDisk\":{\"id\":\"/x/d0\"}},"
        "{\"lun\":\"3\",\"name\":\"d3\",\"managedDisk\":{\"id\":\"\"}}]}}}";

static int parse(const char *s, AdeImdsInstance **ret) {
        return ade_imds_parse_instance(s, strlen(s), ret);
}

START_TEST(test_instance_fields) {
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *i = NULL;

        ck_assert_int_eq(parse(instance_json, &i), 0);
        ck_assert_str_eq(i->location, "westeurope");
        ck_assert_str_eq(i->subscription_id, "s");
        ck_assert_str_eq(i->resource_group, "rg");
        ck_assert_str_eq(i->vm_name, "vm1");
        ck_assert_str_eq(i->vm_id, "02aab8a4-74ef-476e-8182-f6d2ba4166a6");
        ck_assert_str_eq(i->os_type, "Linux");
}
END_TEST

START_TEST(test_instance_disks_with_string_luns) {
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *i = NULL;

        ck_assert_int_eq(parse(instance_json, &i), 0);
        ck_assert_str_eq(i->os_disk.name, "vm1_OsDisk");
        ck_assert_int_eq(i->os_disk.lun, -1);
        ck_assert_str_eq(i->os_disk.managed_disk_id,
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/vm1_OsDisk");
        ck_assert_uint_eq(i->n_data_disks, 2);
        ck_assert_int_eq(i->data_disks[0].lun, 0);
        ck_assert_str_eq(i->data_disks[0].managed_disk_id, "/x/d0");
        ck_assert_int_eq(i->data_disks[1].lun, 3);
        /* "missing values are an empty string": an unmanaged disk */
        ck_assert_ptr_null(i->data_disks[1].managed_disk_id);
}
END_TEST

START_TEST(test_instance_without_location_refused) {
        AdeImdsInstance *i = NULL;

        ck_assert_int_eq(parse("{\"compute\":{\"name\":\"vm\",\"subscriptionId\":\"s\",\"resourceGroupName\":\"r\","
                               "\"vmId\":\"v\"}}",
                                 &i),
                -EPROTO);
        ck_assert_int_eq(parse("{\"compute\":{\"location\":\"\",\"name\":\"vm\",\"subscriptionId\":\"s\","
                               "\"resourceGroupName\":\"r\",\"vmId\":\"v\"}}",
                                 &i),
                -EPROTO);
        ck_assert_ptr_null(i);
}
END_TEST

START_TEST(test_instance_bad_lun_refused) {
        AdeImdsInstance *i = NULL;

        ck_assert_int_eq(parse("{\"compute\":{\"location\":\"l\",\"name\":\"vm\",\"subscriptionId\":\"s\","
                               "\"resourceGroupName\":\"r\",\"vmId\":\"v\",\"storageProfile\":{\"dataDisks\":[{\"lun\":"
                               "\"zero\"}]}}}",
                                 &i),
                -EPROTO);
        ck_assert_ptr_null(i);
}
END_TEST

START_TEST(test_instance_not_json_refused) {
        AdeImdsInstance *i = NULL;

        ck_assert_int_eq(parse("{\"compute\":{\"location\":\"west", &i), -EPROTO);
        ck_assert_int_eq(parse("[]", &i), -EPROTO);
        ck_assert_ptr_null(i);
}
END_TEST

START_TEST(test_token_expires_on_string) {
        _cleanup_secret_ AdeSecret *t = NULL;
        const char *s =
                "{\"access_token\":\"eyJ0eXAi.x.y\",\"refresh_token\":\"\",\"expires_in\":\"3599\","
                "\"expires_on\":\"1506484173\",\"resource\":\"https://vault.azure.net\",\"token_type\":\"Bearer\"}";
        uint64_t exp = 0;

        ck_assert_int_eq(ade_imds_parse_token(s, strlen(s), 1000, &t, &exp), 0);
        ck_assert_str_eq((char *)t->data, "eyJ0eXAi.x.y");
        ck_assert_uint_eq(exp, 1506484173);
}
END_TEST

START_TEST(test_token_expires_in_only) {
        _cleanup_secret_ AdeSecret *t = NULL;
        const char *s = "{\"access_token\":\"tok\",\"expires_in\":3599}";
        uint64_t exp = 0;

        ck_assert_int_eq(ade_imds_parse_token(s, strlen(s), 1000, &t, &exp), 0);
        ck_assert_uint_eq(exp, 4599);
}
END_TEST

START_TEST(test_token_without_access_token_refused) {
        AdeSecret *t = NULL;
        uint64_t exp = 0;
        const char *s = "{\"expires_in\":\"3599\"}";

        ck_assert_int_eq(ade_imds_parse_token(s, strlen(s), 0, &t, &exp), -EPROTO);
        s = "{\"access_token\":\"\",\"expires_in\":\"3599\"}";
        ck_assert_int_eq(ade_imds_parse_token(s, strlen(s), 0, &t, &exp), -EPROTO);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_token_without_expiry_refused) {
        AdeSecret *t = NULL;
        uint64_t exp = 0;
        const char *s = "{\"access_token\":\"tok\",\"expires_in\":\"soon\"}";

        ck_assert_int_eq(ade_imds_parse_token(s, strlen(s), 0, &t, &exp), -EPROTO);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_token_truncated_refused) {
        AdeSecret *t = NULL;
        uint64_t exp = 0;
        const char *s = "{\"access_token\":\"eyJ0";

        ck_assert_int_eq(ade_imds_parse_token(s, strlen(s), 0, &t, &exp), -EPROTO);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_new_refuses_non_url) {
        AdeImds *i = NULL;

        ck_assert_int_eq(ade_imds_new("169.254.169.254", NULL, &i), -EINVAL);
        ck_assert_int_eq(ade_imds_new(NULL, NULL, &i), -EINVAL);
        ck_assert_ptr_null(i);
}
END_TEST

START_TEST(test_credential_refuses_selector_without_id) {
        _cleanup_(ade_imds_freep) AdeImds *i = NULL;
        AdeCredential *c = NULL;

        ck_assert_int_eq(ade_imds_new("http://127.0.0.1:1", NULL, &i), 0);
        ck_assert_int_eq(ade_imds_credential_new(i, false, ADE_IMDS_IDENTITY_CLIENT_ID, NULL, &c), -EINVAL);
        ck_assert_int_eq(ade_imds_credential_new(i, false, ADE_IMDS_IDENTITY_MSI_RES_ID, "", &c), -EINVAL);
        ck_assert_ptr_null(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("imds");
        TCase *tc = ade_test_case("imds");

        tcase_add_test(tc, test_instance_fields);
        tcase_add_test(tc, test_instance_disks_with_string_luns);
        tcase_add_test(tc, test_instance_without_location_refused);
        tcase_add_test(tc, test_instance_bad_lun_refused);
        tcase_add_test(tc, test_instance_not_json_refused);
        tcase_add_test(tc, test_token_expires_on_string);
        tcase_add_test(tc, test_token_expires_in_only);
        tcase_add_test(tc, test_token_without_access_token_refused);
        tcase_add_test(tc, test_token_without_expiry_refused);
        tcase_add_test(tc, test_token_truncated_refused);
        tcase_add_test(tc, test_new_refuses_non_url);
        tcase_add_test(tc, test_credential_refuses_selector_without_id);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
