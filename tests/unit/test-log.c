/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdint.h>

#include "ade-log.h"
#include "ade-test.h"

static char last[512];
static int last_level = -1;
static int calls;
static const char *last_file, *last_func;
static int last_line;

static void capture(int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        snprintf(last, sizeof(last), "%s", message);
        last_level = level;
        last_file = file;
        last_line = line;
        last_func = func;
        calls++;
        (void)userdata;
}

static void setup(void) {
        last[0] = '\0';
        last_level = -1;
        last_file = last_func = NULL;
        last_line = -1;
        calls = 0;
        ade_log_set_callback(capture, NULL);
        ade_log_set_max_level(LOG_DEBUG);
}

START_TEST(test_callback_receives_message) {
        ade_log_info("device %s is %d%% done", "/dev/loop7", 42);
        ck_assert_int_eq(calls, 1);
        ck_assert_int_eq(last_level, LOG_INFO);
        ck_assert_str_eq(last, "device /dev/loop7 is 42% done");
}
END_TEST

START_TEST(test_errno_is_returned_negative_and_expanded) {
        int r = ade_log_debug_errno(ENOENT, "open %s: %m", "/x");
        ck_assert_int_eq(r, -ENOENT);
        ck_assert_str_eq(last, "open /x: No such file or directory");
        /* negative errors are accepted too, the way functions return them */
        ck_assert_int_eq(ade_log_debug_errno(-EACCES, "%m"), -EACCES);
        ck_assert_str_eq(last, "Permission denied");
}
END_TEST

/* Logs from a function of known name; returns the line it logged on. */
static int log_here(void) {
        int line = __LINE__ + 1;
        ade_log_warning("from a known place");
        return line;
}

static int log_errno_here(void) {
        int line = __LINE__ + 1;
        (void)ade_log_debug_errno(EIO, "from a known place: %m");
        return line;
}

START_TEST(test_callback_receives_caller_location) {
        int line = log_here();

        ck_assert_int_eq(calls, 1);
        ck_assert_ptr_nonnull(last_file);
        /* __FILE__ as the compiler saw it: relative to the build folder, or absolute. */
        ck_assert_msg(
                strlen(last_file) >= strlen("tests/unit/test-log.c") &&
                        streq(last_file + strlen(last_file) - strlen("tests/unit/test-log.c"), "tests/unit/test-log.c"),
                "file is %s", last_file);
        ck_assert_int_eq(last_line, line);
        ck_assert_str_eq(last_func, "log_here");
}
END_TEST

START_TEST(test_errno_callers_location_too) {
        int line = log_errno_here();

        ck_assert_int_eq(calls, 1);
        ck_assert_int_eq(last_line, line);
        ck_assert_str_eq(last_func, "log_errno_here");
        ck_assert_str_eq(last, "from a known place: Input/output error");
}
END_TEST

START_TEST(test_percent_m_without_error_is_not_success) {
        /* A message logged without an error has no errno to show: never "Success". */
        errno = 0;
        ade_log_error("mounting /dev/x on /mnt failed: %m");
        ck_assert_str_eq(last, "mounting /dev/x on /mnt failed: " ADE_LOG_NO_ERROR_TEXT);
        ck_assert_int_eq(ade_log_debug_errno(0, "%m; then %m"), 0);
        ck_assert_str_eq(last, ADE_LOG_NO_ERROR_TEXT "; then " ADE_LOG_NO_ERROR_TEXT);
        ck_assert_ptr_null(strstr(last, "Success"));
        /* a stale errno of the caller is not taken for the error either */
        errno = ENOENT;
        ade_log_info("%s: %m", "/dev/y");
        ck_assert_str_eq(last, "/dev/y: " ADE_LOG_NO_ERROR_TEXT);
        ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_percent_percent_m_stays_literal) {
        ade_log_info("100%%m of %s", "it");
        ck_assert_str_eq(last, "100%m of it");
        ck_assert_int_eq(ade_log_debug_errno(EPERM, "%%m %m"), -EPERM);
        ck_assert_str_eq(last, "%m Operation not permitted");
}
END_TEST

START_TEST(test_levels_above_max_are_dropped) {
        ade_log_set_max_level(LOG_WARNING);
        ade_log_debug("hidden");
        ade_log_info("hidden");
        ck_assert_int_eq(calls, 0);
        ade_log_error("shown");
        ck_assert_int_eq(calls, 1);
        ck_assert_int_eq(last_level, LOG_ERR);
}
END_TEST

START_TEST(test_no_callback_is_silent) {
        ade_log_set_callback(NULL, NULL);
        ck_assert_int_eq(ade_log_debug_errno(EIO, "nobody hears this"), -EIO);
        ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(test_level_names_round_trip) {
        ck_assert_int_eq(ade_log_level_from_string("debug"), LOG_DEBUG);
        ck_assert_int_eq(ade_log_level_from_string("WARNING"), LOG_WARNING);
        ck_assert_int_eq(ade_log_level_from_string("error"), LOG_ERR);
        ck_assert_int_eq(ade_log_level_from_string("3"), LOG_ERR);
        ck_assert_str_eq(ade_log_level_to_string(LOG_INFO), "info");
}
END_TEST

START_TEST(test_level_bad_names_refused) {
        ck_assert_int_eq(ade_log_level_from_string(""), -EINVAL);
        ck_assert_int_eq(ade_log_level_from_string(NULL), -EINVAL);
        ck_assert_int_eq(ade_log_level_from_string("verbose"), -EINVAL);
        ck_assert_int_eq(ade_log_level_from_string("8"), -EINVAL);
        ck_assert_ptr_null(ade_log_level_to_string(9));
}
END_TEST

/* The context is the thread's own: another thread sees none, and setting a volume clears the step. */
static void *context_in_other_thread(void *userdata) {
        (void)userdata;
        return (void *)(uintptr_t)(ade_log_context_volume() == NULL && ade_log_context_job() == NULL &&
                                   ade_log_context_step() == NULL);
}

START_TEST(test_context_is_per_thread) {
        pthread_t t;
        void *clean = NULL;

        ade_log_context_set("/dev/sdc", "encrypt");
        ade_log_context_set_step("escrow");
        ck_assert_str_eq(ade_log_context_volume(), "/dev/sdc");
        ck_assert_str_eq(ade_log_context_job(), "encrypt");
        ck_assert_str_eq(ade_log_context_step(), "escrow");
        ck_assert_int_eq(pthread_create(&t, NULL, context_in_other_thread, NULL), 0);
        ck_assert_int_eq(pthread_join(t, &clean), 0);
        ck_assert(clean != NULL);

        ade_log_context_set("/dev/sdd", "rotate");
        ck_assert_str_eq(ade_log_context_volume(), "/dev/sdd");
        ck_assert_ptr_null(ade_log_context_step());
        ade_log_context_set(NULL, "");
        ck_assert_ptr_null(ade_log_context_volume());
        ck_assert_ptr_null(ade_log_context_job());
}
END_TEST

int main(void) {
        Suite *s = suite_create("log");
        TCase *tc = ade_test_case("log");

        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_callback_receives_message);
        tcase_add_test(tc, test_errno_is_returned_negative_and_expanded);
        tcase_add_test(tc, test_callback_receives_caller_location);
        tcase_add_test(tc, test_errno_callers_location_too);
        tcase_add_test(tc, test_percent_m_without_error_is_not_success);
        tcase_add_test(tc, test_percent_percent_m_stays_literal);
        tcase_add_test(tc, test_levels_above_max_are_dropped);
        tcase_add_test(tc, test_no_callback_is_silent);
        tcase_add_test(tc, test_level_names_round_trip);
        tcase_add_test(tc, test_level_bad_names_refused);
        tcase_add_test(tc, test_context_is_per_thread);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
