/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "ade-test.h"
#include "aded-worker.h"

/* Who counts as the reencryption worker of an earlier aded: only a process holding the device's
 * lock in the service's folder; a look-alike command line, whoever runs it, is not one (issue 11
 * item 5: any local user could stall every online job by running one). /dev/null stands for the
 * device: the lock goes by device number. */

#define DEVICE "/dev/null"

static char run_dir[] = "/tmp/ade-test-worker.XXXXXX";

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(run_dir));
}

static void teardown(void) {
        char cmd[PATH_MAX];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
        ck_assert_int_eq(system(cmd), 0);
        strcpy(run_dir, "/tmp/ade-test-worker.XXXXXX");
}

/* Whether /proc/@pid/cmdline starts with "aded\0--reencrypt-worker\0". */
static bool looks_like_worker(pid_t pid) {
        static const char want[] = "aded\0" ADED_WORKER_ARG;
        char path[64], buf[256];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf));
        close(fd);
        return n >= (ssize_t)sizeof(want) && memcmp(buf, want, sizeof(want)) == 0;
}

/* Starts this very program as "aded --reencrypt-worker resume DEVICE ..." under @uid: what a
 * worker's command line looks like, without its lock. */
static pid_t start_lookalike(uid_t uid) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char *argv[] = {(char *)"aded", (char *)ADED_WORKER_ARG, (char *)"resume", (char *)DEVICE, NULL};

                if (uid != 0 &&
                        (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(2);
                execv("/proc/self/exe", argv);
                _exit(3);
        }
        while (!looks_like_worker(pid)) {
                int status;

                ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0); /* it must not have died */
                usleep(1000);
        }
        return pid;
}

static void stop(pid_t pid) {
        int status;

        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

START_TEST(test_lookalike_of_another_user_is_no_worker) {
        pid_t pid;

        if (geteuid() != 0)
                return; /* needs another uid */
        pid = start_lookalike(65534);
        /* Before: waited for as long as the look-alike ran. */
        ck_assert_int_eq(aded_worker_wait_orphans(DEVICE, run_dir, 60U * 1000U * 1000U, NULL, NULL), 0);
        stop(pid);
}
END_TEST

START_TEST(test_lookalike_without_the_lock_is_no_worker) {
        pid_t pid = start_lookalike(geteuid());

        ck_assert_int_eq(aded_worker_wait_orphans(DEVICE, run_dir, 60U * 1000U * 1000U, NULL, NULL), 0);
        stop(pid);
}
END_TEST

static int always(void *userdata) {
        (*(unsigned *)userdata)++;
        return 1;
}

START_TEST(test_lock_holder_waited_for_bounded_and_cancellable) {
        int ready[2], hold[2], status;
        unsigned asked = 0;
        pid_t pid;
        char c;

        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd;

                close(ready[0]);
                close(hold[1]);
                if (aded_worker_lock(DEVICE, run_dir, false, &fd) < 0)
                        _exit(1);
                (void)!write(ready[1], "x", 1);
                (void)!read(hold[0], &c, 1);
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        ck_assert_int_eq(read(ready[0], &c, 1), 1);

        /* Held: a second lock is refused, a cancel ends the wait, and so does the bound. */
        {
                int fd;

                ck_assert_int_eq(aded_worker_lock(DEVICE, run_dir, false, &fd), -EBUSY);
        }
        ck_assert_int_eq(aded_worker_wait_orphans(DEVICE, run_dir, 60U * 1000U * 1000U, always, &asked), -ECANCELED);
        ck_assert_uint_eq(asked, 1);
        ck_assert_int_eq(aded_worker_wait_orphans(DEVICE, run_dir, 0, NULL, NULL), -ETIMEDOUT);

        /* Gone: free again. */
        close(hold[1]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(aded_worker_wait_orphans(DEVICE, run_dir, 0, NULL, NULL), 0);
        close(ready[0]);
}
END_TEST

START_TEST(test_lock_of_another_owner_is_refused) {
        char path[PATH_MAX];
        struct stat st;
        int fd;

        if (geteuid() != 0)
                return; /* needs another uid */
        ck_assert_int_eq(stat(DEVICE, &st), 0);
        snprintf(path, sizeof(path), "%s/worker-%u-%u.lock", run_dir, major(st.st_rdev), minor(st.st_rdev));
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fchown(fd, 65534, 65534), 0);
        close(fd);
        ck_assert_int_eq(aded_worker_lock(DEVICE, run_dir, false, &fd), -EPERM);
}
END_TEST

static Suite *worker_suite(void) {
        Suite *s = suite_create("worker");
        TCase *tc = ade_test_case("orphans");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_lookalike_of_another_user_is_no_worker);
        tcase_add_test(tc, test_lookalike_without_the_lock_is_no_worker);
        tcase_add_test(tc, test_lock_holder_waited_for_bounded_and_cancellable);
        tcase_add_test(tc, test_lock_of_another_owner_is_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char *argv[]) {
        /* Started as a look-alike by the tests above: wait to be killed. */
        if (argc > 1 && streq(argv[1], ADED_WORKER_ARG)) {
                for (;;)
                        pause();
        }
        return ade_test_run(worker_suite());
}
