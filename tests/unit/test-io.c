/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "ade-io.h"
#include "ade-test.h"

/* Everything a child wrote on the read end @fd, until it closes. */
static char *read_all(int fd) {
        static char buf[4096];
        size_t n = 0;
        ssize_t k;

        while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)k;
        buf[n] = 0;
        return buf;
}

/* Runs @argv with its stdout on a pipe; returns the output and the exit status in *ret_status. */
static char *run_captured(char *const argv[], const sigset_t *blocked, int *ret_status) {
        _cleanup_close_ int r = -EBADF, w = -EBADF;
        int p[2];
        pid_t pid;
        char *out;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        r = p[0];
        w = p[1];
        ck_assert_int_eq(ade_spawn(argv[0], argv, (const AdeSpawnFd[]){{w, STDOUT_FILENO}}, 1, blocked, &pid), 0);
        close(TAKE_FD(w));
        out = read_all(r);
        ck_assert_int_eq(ade_spawn_wait(pid, ret_status), 0);
        return out;
}

START_TEST(test_spawn_maps_descriptors) {
        _cleanup_close_ int out_r = -EBADF, out_w = -EBADF, three_r = -EBADF, three_w = -EBADF;
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"echo out; echo err >&2; echo three >&3", NULL};
        int p[2], status;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        out_r = p[0];
        out_w = p[1];
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        three_r = p[0];
        three_w = p[1];
        ck_assert_int_eq(ade_spawn("/bin/sh", argv,
                                 (const AdeSpawnFd[]){{out_w, STDOUT_FILENO}, {out_w, STDERR_FILENO}, {three_w, 3}}, 3,
                                 NULL, &pid),
                0);
        close(TAKE_FD(out_w));
        close(TAKE_FD(three_w));
        ck_assert_str_eq(read_all(out_r), "out\nerr\n");
        ck_assert_str_eq(read_all(three_r), "three\n");
        ck_assert_int_eq(ade_spawn_wait(pid, &status), 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_spawn_stdin_is_dev_null) {
        char *argv[] = {(char *)"/bin/readlink", (char *)"/proc/self/fd/0", NULL};
        int status;

        ck_assert_str_eq(run_captured(argv, NULL, &status), "/dev/null\n");
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_spawn_closes_cloexec_descriptors) {
        _cleanup_close_ int fd = -EBADF;
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"test -e /proc/self/fd/100", NULL};
        int status;

        fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
        ck_assert_int_eq(fd, 100);
        (void)run_captured(argv, NULL, &status);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 1);
}
END_TEST

/* The child's SigBlk line of /proc/self/status, as a number. */
static unsigned long long child_blocked(const sigset_t *blocked) {
        char *argv[] = {(char *)"/bin/grep", (char *)"^SigBlk:", (char *)"/proc/self/status", NULL};
        unsigned long long mask = ~0ULL;
        int status;
        char *out;

        out = run_captured(argv, blocked, &status);
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        ck_assert_int_eq(sscanf(out, "SigBlk: %llx", &mask), 1);
        return mask;
}

START_TEST(test_spawn_blocks_the_signals_asked) {
        sigset_t stop;

        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGHUP);
        ck_assert_uint_eq(child_blocked(&stop), 1ULL << (SIGTERM - 1) | 1ULL << (SIGINT - 1) | 1ULL << (SIGHUP - 1));
}
END_TEST

START_TEST(test_spawn_without_mask_inherits_the_callers) {
        sigset_t usr1, old;
        unsigned long long mask;

        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
        mask = child_blocked(NULL);
        ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
        ck_assert(mask & 1ULL << (SIGUSR1 - 1));
}
END_TEST

START_TEST(test_spawn_wait_returns_exit_status) {
        char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exit 7", NULL};
        int status;

        (void)run_captured(argv, NULL, &status);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 7);
}
END_TEST

START_TEST(test_spawn_missing_program) {
        char *argv[] = {(char *)"/nonexistent/program", NULL};
        pid_t pid = 4242;

        ck_assert_int_eq(ade_spawn(argv[0], argv, NULL, 0, NULL, &pid), -ENOENT);
        ck_assert_int_eq(pid, 4242);
}
END_TEST

static Suite *io_suite(void) {
        Suite *s = suite_create("io");
        TCase *tc = ade_test_case("spawn");

        tcase_add_test(tc, test_spawn_maps_descriptors);
        tcase_add_test(tc, test_spawn_stdin_is_dev_null);
        tcase_add_test(tc, test_spawn_closes_cloexec_descriptors);
        tcase_add_test(tc, test_spawn_blocks_the_signals_asked);
        tcase_add_test(tc, test_spawn_without_mask_inherits_the_callers);
        tcase_add_test(tc, test_spawn_wait_returns_exit_status);
        tcase_add_test(tc, test_spawn_missing_program);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(io_suite());
}
