/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/crypto.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ade-secret.h"
#include "ade-test.h"

START_TEST(test_new_is_zeroed_and_terminated) {
        _cleanup_secret_ AdeSecret *s = NULL;

        ck_assert_int_eq(ade_secret_new(172, &s), 0);
        ck_assert_uint_eq(s->size, 172);
        for (size_t i = 0; i <= s->size; i++)
                ck_assert_uint_eq(s->data[i], 0);
}
END_TEST

START_TEST(test_new_from_copies) {
        _cleanup_secret_ AdeSecret *s = NULL;

        ck_assert_int_eq(ade_secret_new_from("hunter2", 7, &s), 0);
        ck_assert_mem_eq(s->data, "hunter2", 7);
        /* usable as a C string */
        ck_assert_str_eq((char *)s->data, "hunter2");
}
END_TEST

START_TEST(test_random_differs) {
        _cleanup_secret_ AdeSecret *a = NULL, *b = NULL;

        ck_assert_int_eq(ade_secret_new_random(127, &a), 0);
        ck_assert_int_eq(ade_secret_new_random(127, &b), 0);
        ck_assert(!ade_secret_equal(a, b));
}
END_TEST

START_TEST(test_locked_as_root) {
        _cleanup_secret_ AdeSecret *s = NULL;

        if (geteuid() != 0)
                return; /* the memlock limit of an unprivileged user may be 0 */
        ck_assert_int_eq(ade_secret_new(64, &s), 0);
        ck_assert(ade_secret_is_locked(s));
}
END_TEST

START_TEST(test_truncate_wipes_tail) {
        _cleanup_secret_ AdeSecret *s = NULL;

        ck_assert_int_eq(ade_secret_new_from("abcdef", 6, &s), 0);
        ck_assert_int_eq(ade_secret_truncate(s, 3), 0);
        ck_assert_uint_eq(s->size, 3);
        ck_assert_mem_eq(s->data, "abc\0\0\0", 6);
}
END_TEST

START_TEST(test_equal_compares_size_and_bytes) {
        _cleanup_secret_ AdeSecret *a = NULL, *b = NULL, *c = NULL;

        ck_assert_int_eq(ade_secret_new_from("key", 3, &a), 0);
        ck_assert_int_eq(ade_secret_new_from("key", 3, &b), 0);
        ck_assert_int_eq(ade_secret_new_from("keys", 4, &c), 0);
        ck_assert(ade_secret_equal(a, b));
        ck_assert(!ade_secret_equal(a, c));
        ck_assert(!ade_secret_equal(a, NULL));
}
END_TEST

START_TEST(test_not_inherited_by_fork) {
        _cleanup_secret_ AdeSecret *s = NULL;
        pid_t pid;
        int status;

        ck_assert_int_eq(ade_secret_new_from("top secret", 10, &s), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                /* MADV_WIPEONFORK: the child sees zeros where the key was */
                _exit(s->data[0] == 0 ? 0 : 1);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_mem_eq(s->data, "top secret", 10);
}
END_TEST

START_TEST(test_bad_sizes_refused) {
        AdeSecret *s = (AdeSecret *)0x1;

        ck_assert_int_eq(ade_secret_new(0, &s), -EINVAL);
        ck_assert_int_eq(ade_secret_new(ADE_SECRET_SIZE_MAX + 1, &s), -EINVAL);
        ck_assert_int_eq(ade_secret_new_random(0, &s), -EINVAL);
        ck_assert_int_eq(ade_secret_new_from(NULL, 5, &s), -EINVAL);
        ck_assert_ptr_eq(s, (AdeSecret *)0x1); /* untouched on failure */
}
END_TEST

START_TEST(test_truncate_cannot_grow) {
        _cleanup_secret_ AdeSecret *s = NULL;

        ck_assert_int_eq(ade_secret_new(8, &s), 0);
        ck_assert_int_eq(ade_secret_truncate(s, 9), -EINVAL);
        ck_assert_int_eq(ade_secret_truncate(NULL, 0), -EINVAL);
        ck_assert_uint_eq(s->size, 8);
}
END_TEST

START_TEST(test_read_fd) {
        _cleanup_secret_ AdeSecret *s = NULL;
        int p[2];

        /* Up to the limit: read whole, across short reads of a pipe. */
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(write(p[1], "0123456789", 10), 10);
        close(p[1]);
        ck_assert_int_eq(ade_secret_read_fd(p[0], 10, &s), 0);
        close(p[0]);
        ck_assert_uint_eq(s->size, 10);
        ck_assert_int_eq(memcmp(s->data, "0123456789", 10), 0);
        s = ade_secret_free(s);

        /* One byte over the limit, and nothing at all, are refused. */
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(write(p[1], "0123456789", 10), 10);
        close(p[1]);
        ck_assert_int_eq(ade_secret_read_fd(p[0], 9, &s), -EFBIG);
        close(p[0]);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(pipe(p), 0);
        close(p[1]);
        ck_assert_int_eq(ade_secret_read_fd(p[0], 9, &s), -EINVAL);
        close(p[0]);
        ck_assert_int_eq(ade_secret_read_fd(-1, 9, &s), -EBADF);
}
END_TEST

/* In a child, so that the test process itself stays as it was. */
START_TEST(test_protect_process) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                void *p;

                if (ade_secret_protect_process() != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
                        _exit(1);
                /* OpenSSL's allocations now go through the wiping functions. */
                p = OPENSSL_malloc(64);
                p = OPENSSL_realloc(p, 4096);
                OPENSSL_free(p);
                _exit(p ? 0 : 2);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A failed mlock is reported with mlock's reason; root has CAP_IPC_LOCK and no limit applies. */
START_TEST(test_check_lock) {
        pid_t pid;
        int status;

        ck_assert_int_eq(ade_secret_check_lock(4096), 0);
        if (geteuid() == 0)
                return;
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit rl = {0, 0};

                if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
                        _exit(3);
                _exit(ade_secret_check_lock(4096) < 0 ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_free_null_is_noop) {
        ck_assert_ptr_null(ade_secret_free(NULL));
        ck_assert_ptr_null(ade_erase_and_free(NULL));
        ade_memzero(NULL, 10);
}
END_TEST

int main(void) {
        Suite *s = suite_create("secret");
        TCase *tc = ade_test_case("secret");

        tcase_add_test(tc, test_new_is_zeroed_and_terminated);
        tcase_add_test(tc, test_new_from_copies);
        tcase_add_test(tc, test_random_differs);
        tcase_add_test(tc, test_locked_as_root);
        tcase_add_test(tc, test_truncate_wipes_tail);
        tcase_add_test(tc, test_equal_compares_size_and_bytes);
        tcase_add_test(tc, test_not_inherited_by_fork);
        tcase_add_test(tc, test_bad_sizes_refused);
        tcase_add_test(tc, test_truncate_cannot_grow);
        tcase_add_test(tc, test_free_null_is_noop);
        tcase_add_test(tc, test_read_fd);
        tcase_add_test(tc, test_protect_process);
        tcase_add_test(tc, test_check_lock);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
