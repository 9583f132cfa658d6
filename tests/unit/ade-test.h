/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Runs @suite and returns the process exit code automake expects; Check prints its own summary
 * line ("100%: Checks: N, Failures: 0, Errors: 0") which tests/run-all.sh adds up. */
static inline int ade_test_run(Suite *suite) {
        SRunner *sr = srunner_create(suite);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A test case with a generous timeout: sanitizer builds are slow. */
static inline TCase *ade_test_case(const char *name) {
        TCase *tc = tcase_create(name);
        tcase_set_timeout(tc, 60);
        return tc;
}

/* Writes @text to @path (created or truncated) and gives it @mode; any failure fails the test. */
static inline void ade_test_write_file(const char *path, const char *text, mode_t mode) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(text, f) >= 0, 1);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(chmod(path, mode), 0);
}
