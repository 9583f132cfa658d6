/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ARM helpers that need no server: ISO 8601 times and resource id comparison. */
#include "ade-arm.h"
#include "ade-test.h"
#include "ade-url.h"

START_TEST(test_time_with_fraction_and_offset) {
        int64_t t = 0;

        ck_assert_int_eq(ade_arm_parse_time("2016-12-28T04:41:35.079872+00:00", &t), 0);
        ck_assert_int_eq(t, 1482900095);
}
END_TEST

START_TEST(test_time_zulu_and_nonzero_offset) {
        int64_t a = 0, b = 0;

        ck_assert_int_eq(ade_arm_parse_time("2024-01-01T10:00:00Z", &a), 0);
        ck_assert_int_eq(ade_arm_parse_time("2024-01-01T12:00:00+02:00", &b), 0);
        ck_assert_int_eq(a, 1704103200);
        ck_assert_int_eq(a, b);
}
END_TEST

START_TEST(test_time_garbage_refused) {
        int64_t t = 7;

        ck_assert_int_eq(ade_arm_parse_time("yesterday", &t), -EINVAL);
        ck_assert_int_eq(ade_arm_parse_time("2024-01-01", &t), -EINVAL);
        ck_assert_int_eq(ade_arm_parse_time("2024-13-01T00:00:00Z", &t), -EINVAL);
        ck_assert_int_eq(ade_arm_parse_time("2024-01-01T00:00:00Zjunk", &t), -EINVAL);
        ck_assert_int_eq(ade_arm_parse_time("2024-01-01T00:00:00.+00:00", &t), -EINVAL);
        ck_assert_int_eq(ade_arm_parse_time(NULL, &t), -EINVAL);
        ck_assert_int_eq(t, 7);
}
END_TEST

START_TEST(test_resource_ids_equal_ignoring_case_and_slashes) {
        ck_assert(ade_url_arm_id_equal("/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/disks/d",
                "subscriptions/s/resourcegroups/rg/providers/microsoft.compute/disks/D/"));
}
END_TEST

START_TEST(test_resource_ids_differ) {
        ck_assert(!ade_url_arm_id_equal("/subscriptions/s/disks/d1", "/subscriptions/s/disks/d10"));
        ck_assert(!ade_url_arm_id_equal("/subscriptions/s/disks/d1", NULL));
        ck_assert(!ade_url_arm_id_equal("", "/x"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("arm");
        TCase *tc = ade_test_case("arm");

        tcase_add_test(tc, test_time_with_fraction_and_offset);
        tcase_add_test(tc, test_time_zulu_and_nonzero_offset);
        tcase_add_test(tc, test_time_garbage_refused);
        tcase_add_test(tc, test_resource_ids_equal_ignoring_case_and_slashes);
        tcase_add_test(tc, test_resource_ids_differ);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
