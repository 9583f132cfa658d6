/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "ade-dm.h"
#include "ade-test.h"

START_TEST(test_available_agrees_with_control_node) {
        bool control = access("/dev/mapper/control", R_OK | W_OK) == 0;

        /* The control node is the kernel's; without it libdevmapper cannot answer. */
        if (!control)
                ck_assert(!ade_dm_available());
}
END_TEST

START_TEST(test_list_without_dm_is_enodev) {
        AdeDmCrypt *l = NULL;
        size_t n = 99;

        if (ade_dm_available())
                return;
        ck_assert_int_eq(ade_dm_list_crypt(&l, &n), -ENODEV);
        ck_assert_ptr_null(l);
        ck_assert_uint_eq(n, 99);
}
END_TEST

START_TEST(test_find_crypt_refuses_non_block) {
        ck_assert_int_eq(ade_dm_find_crypt("/dev/null", NULL), -ENOTBLK);
}
END_TEST

START_TEST(test_find_crypt_missing_path) {
        ck_assert_int_eq(ade_dm_find_crypt("/nonexistent/device", NULL), -ENOENT);
}
END_TEST

START_TEST(test_backs_root_refuses_non_block) {
        ck_assert_int_eq(ade_dm_device_backs_root("/etc/hostname"), -ENOTBLK);
}
END_TEST

START_TEST(test_backs_root_missing_path) {
        ck_assert_int_eq(ade_dm_device_backs_root("/nonexistent/device"), -ENOENT);
}
END_TEST

static void *list_in_thread(void *userdata) {
        AdeDmCrypt *l = NULL;
        size_t n = 0;

        *(int *)userdata = ade_dm_list_crypt(&l, &n);
        ade_dm_crypt_free_many(l, n);
        return NULL;
}

START_TEST(test_lock_is_recursive_and_released) {
        AdeDmCrypt *l = NULL;
        size_t n = 0;
        pthread_t t;
        int r = 1;

        /* A caller holding the lock around a libcryptsetup activation may still list mappings. */
        ade_dm_lock();
        r = ade_dm_list_crypt(&l, &n);
        ade_dm_crypt_free_many(l, n);
        ck_assert(r == 0 || r == -ENODEV);
        ade_dm_unlock();

        /* Once it lets go, another thread gets in: a hold leaked by ade_dm_list_crypt() would hang the
         * thread below, and the test would fail at Check's timeout. */
        r = 1;
        ck_assert_int_eq(pthread_create(&t, NULL, list_in_thread, &r), 0);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert(r == 0 || r == -ENODEV);
}
END_TEST

int main(void) {
        Suite *s = suite_create("dm");
        TCase *tc = ade_test_case("dm");

        tcase_add_test(tc, test_available_agrees_with_control_node);
        tcase_add_test(tc, test_list_without_dm_is_enodev);
        tcase_add_test(tc, test_find_crypt_refuses_non_block);
        tcase_add_test(tc, test_find_crypt_missing_path);
        tcase_add_test(tc, test_backs_root_refuses_non_block);
        tcase_add_test(tc, test_backs_root_missing_path);
        tcase_add_test(tc, test_lock_is_recursive_and_released);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
