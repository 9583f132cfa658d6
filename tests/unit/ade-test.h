/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <stdlib.h>

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
