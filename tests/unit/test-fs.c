/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <pthread.h>
#include <stdint.h>
#include <sched.h>
#include <sys/wait.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "ade-fs.h"
#include "ade-test.h"

/* ade-fs's mount helpers read fstab and mountinfo from files they are given: here temporary ones,
 * with made-up device numbers, so that nothing needs root or a block device. */

#define DATA_UUID "6c1f0f5e-4e4b-4c55-9a0a-2b1d1d6f0c11"
#define DATA_DEV makedev(8, 33)
#define MAPPER_DEV makedev(253, 4)
#define DATA_ID (&(const AdeFsId){.devnum = DATA_DEV, .uuid = DATA_UUID, .label = "data"})

static char template[] = "/tmp/ade-test-fs.XXXXXX";
static char dir[PATH_MAX], fstab[PATH_MAX + 16], mountinfo[PATH_MAX + 16]; /* dir: canonical, as mountinfo writes it */

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* A mountinfo line for @devnum mounted on @path (as mountinfo escapes it) with @options. */
static void mountinfo_add(dev_t devnum, const char *path, const char *options) {
        FILE *f = fopen(mountinfo, "ae");

        ck_assert_ptr_nonnull(f);
        fprintf(f, "%u 1 %u:%u / %s %s shared:1 - ext4 /dev/x rw\n", 100 + minor(devnum), major(devnum), minor(devnum),
                path, options);
        ck_assert_int_eq(fclose(f), 0);
}

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(template));
        ck_assert_ptr_nonnull(realpath(template, dir));
        snprintf(fstab, sizeof(fstab), "%s/fstab", dir);
        snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", dir);
        write_file(mountinfo, "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n"
                              "1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
        write_file(fstab, "# <file system> <mount point> <type> <options> <dump> <pass>\n"
                          "/dev/sda1 / ext4 errors=remount-ro 0 1\n");
}

static void teardown(void) {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
        strcpy(template, "/tmp/ade-test-fs.XXXXXX");
}

/* ---- fstab specs ---- */

START_TEST(test_spec_uuid_ignores_case) {
        ck_assert(ade_fs_spec_names("UUID=" DATA_UUID, DATA_ID));
        ck_assert(ade_fs_spec_names("UUID=6C1F0F5E-4E4B-4C55-9A0A-2B1D1D6F0C11", DATA_ID));
}
END_TEST

START_TEST(test_spec_other_uuid) {
        ck_assert(!ade_fs_spec_names("UUID=00000000-4e4b-4c55-9a0a-2b1d1d6f0c11", DATA_ID));
        ck_assert(!ade_fs_spec_names("UUID=" DATA_UUID, &(AdeFsId){.devnum = DATA_DEV}));
}
END_TEST

START_TEST(test_spec_label) {
        ck_assert(ade_fs_spec_names("LABEL=data", DATA_ID));
        ck_assert(!ade_fs_spec_names("LABEL=Data", DATA_ID));
        ck_assert(!ade_fs_spec_names("LABEL=data", &(AdeFsId){.devnum = DATA_DEV, .uuid = DATA_UUID}));
}
END_TEST

START_TEST(test_spec_paths_need_the_block_device) {
        /* /dev/null is a character device: never a filesystem's device. */
        ck_assert(!ade_fs_spec_names("/dev/null", DATA_ID));
        ck_assert(!ade_fs_spec_names("/nonexistent/device", DATA_ID));
        ck_assert(!ade_fs_spec_names("PARTUUID=0000-nonexistent", DATA_ID));
        ck_assert(!ade_fs_spec_names("PARTLABEL=nonexistent", DATA_ID));
        ck_assert(!ade_fs_spec_names("tmpfs", DATA_ID));
}
END_TEST

/* ---- mountinfo ---- */

START_TEST(test_mount_of_first_mount_and_options) {
        _cleanup_free_ char *path = NULL, *options = NULL;

        mountinfo_add(DATA_DEV, "/srv/data", "rw,noatime");
        mountinfo_add(DATA_DEV, "/srv/bind", "ro,relatime");
        ck_assert_int_eq(ade_fs_mount_of(mountinfo, DATA_DEV, &path, &options), 1);
        ck_assert_str_eq(path, "/srv/data");
        ck_assert_str_eq(options, "rw,noatime");
}
END_TEST

START_TEST(test_mount_of_unescapes_paths) {
        _cleanup_free_ char *path = NULL;

        mountinfo_add(DATA_DEV, "/srv/my\\040data\\011tab\\134back", "rw");
        ck_assert_int_eq(ade_fs_mount_of(mountinfo, DATA_DEV, &path, NULL), 1);
        ck_assert_str_eq(path, "/srv/my data\ttab\\back");
}
END_TEST

START_TEST(test_mount_of_not_mounted) {
        char *path = (char *)"untouched", *options = (char *)"untouched";

        ck_assert_int_eq(ade_fs_mount_of(mountinfo, DATA_DEV, &path, &options), 0);
        ck_assert_ptr_null(path);
        ck_assert_ptr_null(options);
}
END_TEST

START_TEST(test_mount_of_unreadable_mountinfo) {
        char *path = (char *)"untouched";

        ck_assert_int_eq(ade_fs_mount_of("/nonexistent/mountinfo", DATA_DEV, &path, NULL), -ENOENT);
        ck_assert_str_eq(path, "untouched");
}
END_TEST

START_TEST(test_mounted_on_reports_the_top_mount) {
        dev_t devnum = 0;

        mountinfo_add(DATA_DEV, "/srv/data", "rw");
        mountinfo_add(MAPPER_DEV, "/srv/data", "rw");
        ck_assert_int_eq(ade_fs_mounted_on(mountinfo, "/srv/data", &devnum), 1);
        ck_assert_uint_eq(devnum, MAPPER_DEV);
        ck_assert_int_eq(ade_fs_mounted_on(mountinfo, "/srv", &devnum), 0);
        ck_assert_int_eq(ade_fs_mounted_on(mountinfo, "/srv/data/", NULL), 0);
}
END_TEST

/* ---- where a filesystem belongs ---- */

static int target(char **ret_path, char **ret_options) {
        return ade_fs_mount_target(DATA_ID, fstab, mountinfo, ret_path, ret_options);
}

/* Two jobs look up their volumes' fstab lines at once (one thread each): each gets its own line,
 * never a field of the other's. */
#define LOOKUPS 2000

static void *look_up(void *p) {
        const char *uuid = p;
        const char *want = streq(uuid, DATA_UUID) ? "/srv/data" : "/srv/other";

        for (int i = 0; i < LOOKUPS; i++) {
                _cleanup_free_ char *path = NULL, *options = NULL;

                if (ade_fs_mount_target(&(const AdeFsId){.devnum = makedev(8, 99), .uuid = uuid}, fstab, mountinfo,
                            &path, &options) < 0 ||
                        !streq_ptr(path, want))
                        return (void *)1;
        }
        return NULL;
}

START_TEST(test_target_from_two_threads) {
        static const char other[] = "0c2d4e6f-1111-4222-8333-944455556666";
        pthread_t a, b;
        void *ra, *rb;

        write_file(fstab, "/dev/sda1 / ext4 errors=remount-ro 0 1\n"
                          "UUID=" DATA_UUID " /srv/data ext4 defaults,noatime 0 2\n"
                          "UUID=0c2d4e6f-1111-4222-8333-944455556666 /srv/other xfs defaults 0 2\n");
        ck_assert_int_eq(pthread_create(&a, NULL, look_up, (void *)DATA_UUID), 0);
        ck_assert_int_eq(pthread_create(&b, NULL, look_up, (void *)other), 0);
        ck_assert_int_eq(pthread_join(a, &ra), 0);
        ck_assert_int_eq(pthread_join(b, &rb), 0);
        ck_assert_msg(!ra && !rb, "a lookup got the other thread's line");
}
END_TEST

START_TEST(test_target_mounted_without_fstab_entry) {
        _cleanup_free_ char *path = NULL, *options = NULL;

        mountinfo_add(DATA_DEV, "/srv/data", "rw,noatime");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_str_eq(path, "/srv/data");
        ck_assert_str_eq(options, "rw,noatime");
}
END_TEST

START_TEST(test_target_mounted_where_fstab_says_takes_fstab_options) {
        _cleanup_free_ char *path = NULL, *options = NULL;

        mountinfo_add(DATA_DEV, "/srv/data", "rw,relatime");
        write_file(fstab, "UUID=" DATA_UUID " /srv/data ext4 noexec,nofail 0 2\n");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_str_eq(path, "/srv/data");
        ck_assert_str_eq(options, "noexec,nofail");
}
END_TEST

START_TEST(test_target_mounted_elsewhere_than_fstab_says) {
        _cleanup_free_ char *path = NULL, *options = NULL;

        mountinfo_add(DATA_DEV, "/mnt/now", "rw,relatime");
        write_file(fstab, "LABEL=data /srv/data ext4 noexec 0 2\n");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_str_eq(path, "/mnt/now");
        ck_assert_str_eq(options, "rw,relatime");
}
END_TEST

START_TEST(test_target_unmounted_from_fstab) {
        _cleanup_free_ char *path = NULL, *options = NULL;

        write_file(fstab, "/dev/sda1 / ext4 defaults 0 1\n"
                          "UUID=00000000-0000-0000-0000-000000000000 /srv/other ext4 defaults 0 2\n"
                          "UUID=" DATA_UUID " /srv/data ext4 defaults,noatime 0 2\n");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_str_eq(path, "/srv/data");
        ck_assert_str_eq(options, "defaults,noatime");
}
END_TEST

START_TEST(test_target_unmounted_noauto_is_nowhere) {
        char *path = (char *)"untouched", *options = (char *)"untouched";

        write_file(fstab, "UUID=" DATA_UUID " /srv/data ext4 noauto 0 2\n");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_ptr_null(path);
        ck_assert_ptr_null(options);
}
END_TEST

START_TEST(test_target_never_root_nor_swap) {
        char *path = (char *)"untouched", *options = (char *)"untouched";

        write_file(fstab, "UUID=" DATA_UUID " / ext4 defaults 0 1\n"
                          "UUID=" DATA_UUID " none swap sw 0 0\n"
                          "UUID=" DATA_UUID " /srv/swap swap sw 0 0\n");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_ptr_null(path);
        ck_assert_ptr_null(options);
}
END_TEST

START_TEST(test_target_without_fstab) {
        _cleanup_free_ char *path = NULL, *options = NULL;

        ck_assert_int_eq(unlink(fstab), 0);
        mountinfo_add(DATA_DEV, "/srv/data", "ro");
        ck_assert_int_eq(target(&path, &options), 0);
        ck_assert_str_eq(path, "/srv/data");
        ck_assert_str_eq(options, "ro");
}
END_TEST

START_TEST(test_target_unreadable_mountinfo) {
        char *path = (char *)"untouched", *options = (char *)"untouched";

        ck_assert_int_eq(unlink(mountinfo), 0);
        ck_assert_int_eq(target(&path, &options), -ENOENT);
        ck_assert_str_eq(path, "untouched");
        ck_assert_str_eq(options, "untouched");
}
END_TEST

/* ---- the mapper against its recorded mount point ---- */

/* Reads and judges the mapper's place against @mount_point; the sentence in *ret_why. */
static int check(const char *mount_point, char **ret_why) {
        _cleanup_(ade_fs_mount_check_done) AdeFsMountCheck c = {};

        ck_assert_int_eq(ade_fs_mount_check_read(MAPPER_DEV, mount_point, mountinfo, &c), 0);
        return ade_fs_mount_check_verdict(&c, "/dev/mapper/ade-x", mount_point, ret_why);
}

START_TEST(test_check_free_mount_point) {
        _cleanup_free_ char *why = NULL, *mp = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/mnt", dir), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        ck_assert_int_eq(check(mp, &why), 0);
        ck_assert_ptr_null(why);
}
END_TEST

START_TEST(test_check_mounted_there_through_a_link) {
        _cleanup_free_ char *why = NULL, *mp = NULL, *link = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/mnt", dir), 0);
        ck_assert_int_ge(asprintf(&link, "%s/link", dir), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        ck_assert_int_eq(symlink(mp, link), 0);
        mountinfo_add(MAPPER_DEV, mp, "rw");
        ck_assert_int_eq(check(mp, &why), 1);
        ck_assert_int_eq(check(link, &why), 1);
        ck_assert_ptr_null(why);
}
END_TEST

/* Checked canonical, mounted by the recorded path: a link there (or swapped in) sent the mount
 * elsewhere (issue 11 item 7). */
START_TEST(test_check_free_mount_point_through_a_link_refused) {
        _cleanup_free_ char *why = NULL, *mp = NULL, *link = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/mnt", dir), 0);
        ck_assert_int_ge(asprintf(&link, "%s/link", dir), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        ck_assert_int_eq(symlink(mp, link), 0);
        ck_assert_int_eq(check(link, &why), -ELOOP);
        ck_assert_ptr_nonnull(strstr(why, link));
        ck_assert_ptr_nonnull(strstr(why, mp));
        ck_assert_ptr_nonnull(strstr(why, "symbolic link"));
}
END_TEST

START_TEST(test_mount_refuses_a_link_on_the_way) {
        _cleanup_free_ char *mp = NULL, *link = NULL, *below = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/mnt/d", dir), 0);
        ck_assert_int_ge(asprintf(&link, "%s/link", dir), 0);
        ck_assert_int_ge(asprintf(&below, "%s/link/d", dir), 0);
        ck_assert_int_eq(mkdir(dirname(strdupa(mp)), 0755), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        ck_assert_int_eq(symlink(dirname(strdupa(mp)), link), 0);
        /* The link as the last component, and further up: refused before mount(2) is tried. */
        ck_assert_int_eq(ade_fs_mount("/dev/null", link, "ext4", NULL), -ELOOP);
        ck_assert_int_eq(ade_fs_mount("/dev/null", below, "ext4", NULL), -ELOOP);
}
END_TEST

/* A failed mount is retried without what the kernel may refuse, never without what protects. */
START_TEST(test_options_security_kept) {
        _cleanup_free_ char *a = ade_fs_options_security("rw,nosuid,nodev,noexec,errors=remount-ro,noatime");
        _cleanup_free_ char *b = ade_fs_options_security("ro,data=journal,x-systemd.automount");
        _cleanup_free_ char *c = ade_fs_options_security(NULL);
        _cleanup_free_ char *d = ade_fs_options_security("suid,dev,exec");

        ck_assert_str_eq(a, "nosuid,nodev,noexec");
        ck_assert_str_eq(b, "ro");
        ck_assert_str_eq(c, "");
        ck_assert_str_eq(d, "");
}
END_TEST

START_TEST(test_check_mounted_elsewhere) {
        _cleanup_free_ char *why = NULL, *mp = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/mnt", dir), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        mountinfo_add(MAPPER_DEV, "/srv/elsewhere", "rw");
        ck_assert_int_eq(check(mp, &why), -EALREADY);
        ck_assert_ptr_nonnull(strstr(why, "/dev/mapper/ade-x is mounted on /srv/elsewhere, not on"));
        ck_assert_ptr_nonnull(strstr(why, mp));
}
END_TEST

START_TEST(test_check_missing_mount_point) {
        _cleanup_free_ char *why = NULL, *mp = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/missing", dir), 0);
        ck_assert_int_eq(check(mp, &why), -ENOENT);
        ck_assert_ptr_nonnull(strstr(why, "does not exist; create it"));
        ck_assert_ptr_nonnull(strstr(why, mp));
}
END_TEST

START_TEST(test_check_mount_point_not_a_directory) {
        _cleanup_free_ char *why = NULL, *mp = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/file", dir), 0);
        write_file(mp, "");
        ck_assert_int_eq(check(mp, &why), -ENOTDIR);
        ck_assert_ptr_nonnull(strstr(why, "is not a directory"));
}
END_TEST

START_TEST(test_check_busy_mount_point) {
        _cleanup_free_ char *why = NULL, *mp = NULL;

        ck_assert_int_ge(asprintf(&mp, "%s/mnt", dir), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        mountinfo_add(DATA_DEV, mp, "rw");
        ck_assert_int_eq(check(mp, &why), -EBUSY);
        ck_assert_ptr_nonnull(strstr(why, "is busy (device 8:33 is mounted there)"));
}
END_TEST

START_TEST(test_check_unreadable_mountinfo) {
        AdeFsMountCheck c = {.canonical = (char *)"untouched"};

        ck_assert_int_eq(ade_fs_mount_check_read(MAPPER_DEV, dir, "/nonexistent/mountinfo", &c), -ENOENT);
        ck_assert_str_eq(c.canonical, "untouched");
}
END_TEST

START_TEST(test_check_not_a_block_device) {
        char *why = (char *)"untouched";

        ck_assert_int_eq(ade_fs_mount_check("/dev/null", dir, &why), -ENODEV);
        ck_assert_ptr_null(why);
}
END_TEST

/* A process that made a mount namespace of its own is told so (issue 11 item 0). */
START_TEST(test_mount_namespace_of_its_own_is_not_the_system) {
        int status;
        pid_t pid;

        ck_assert_int_ge(ade_fs_mount_namespace_is_system(), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0)
                        _exit(77); /* not root: nothing to tell */
                _exit(ade_fs_mount_namespace_is_system() == 0 ? 0 : 1);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77);
}
END_TEST

/* Whether something is mounted on @mp (its device differs from its parent's). */
static bool mountpoint_busy(const char *mp) {
        _cleanup_free_ char *parent = NULL;
        struct stat a, b;

        ck_assert_int_ge(asprintf(&parent, "%s/..", mp), 0);
        ck_assert_int_eq(stat(mp, &a), 0);
        ck_assert_int_eq(stat(parent, &b), 0);
        return a.st_dev != b.st_dev;
}

/* A tmpfs of our own on dir/m (root only: false otherwise), used by a child that keeps a file in
 * it open until @hold is closed. */
static bool busy_tmpfs(char **ret_mp, pid_t *ret_child, int *ret_hold) {
        _cleanup_free_ char *mp = NULL, *file = NULL;
        int hold[2];
        pid_t pid;

        ck_assert_int_ge(asprintf(&mp, "%s/m", dir), 0);
        ck_assert_int_ge(asprintf(&file, "%s/m/f", dir), 0);
        ck_assert_int_eq(mkdir(mp, 0755), 0);
        if (mount("tmpfs", mp, "tmpfs", 0, "size=1m") < 0)
                return false;
        ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char c;
                int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

                close(hold[1]);
                (void)!read(hold[0], &c, 1);
                _exit(fd >= 0 ? 0 : 1);
        }
        close(hold[0]);
        /* The child has its file open once the file exists and it shows in the child's fds. */
        for (;;) {
                char link[64], target[PATH_MAX];
                bool found = false;

                for (int fd = 3; fd < 64 && !found; fd++) {
                        ssize_t n;

                        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)pid, fd);
                        n = readlink(link, target, sizeof(target) - 1);
                        if (n > 0) {
                                target[n] = '\0';
                                found = streq(target, file);
                        }
                }
                if (found)
                        break;
                sched_yield();
        }
        *ret_mp = TAKE_PTR(mp);
        *ret_child = pid;
        *ret_hold = hold[1];
        return true;
}

/* A busy filesystem: the unmount tries for a bounded time, then says who holds it (issue 11 item 9). */
START_TEST(test_unmount_patiently_names_the_holders) {
        _cleanup_free_ char *mp = NULL, *holders = NULL, *expected = NULL;
        int hold, status;
        pid_t child;

        if (!busy_tmpfs(&mp, &child, &hold))
                return; /* not root */
        ck_assert_int_eq(ade_fs_unmount_patiently(mp, 300 * 1000, &holders), -EBUSY);
        ck_assert_int_ge(asprintf(&expected, "pid %d (", (int)child), 0);
        ck_assert_ptr_nonnull(holders);
        ck_assert_ptr_nonnull(strstr(holders, expected));
        ck_assert(mountpoint_busy(mp));

        close(hold);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(ade_fs_unmount_patiently(mp, 300 * 1000, NULL), 0);
        ck_assert(!mountpoint_busy(mp));
}
END_TEST

static void *run_cat(void *userdata) {
        char *argv[] = {(char *)"cat", userdata, NULL};

        return (void *)(intptr_t)ade_fs_run(argv, NULL);
}

/* A program that must finish is counted while it runs: a stopping aded extends systemd's stop
 * timeout for it (issue 11 item 10). */
START_TEST(test_programs_running_counted) {
        _cleanup_free_ char *fifo = NULL;
        pthread_t t;
        void *result;
        int fd;

        ck_assert_int_ge(asprintf(&fifo, "%s/fifo", dir), 0);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_uint_eq(ade_fs_programs_running(), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, run_cat, fifo), 0);
        /* cat waits in open() until a writer comes: it runs until then. */
        while (ade_fs_programs_running() == 0)
                sched_yield();
        fd = open(fifo, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(pthread_join(t, &result), 0);
        ck_assert_int_eq((int)(intptr_t)result, 0);
        ck_assert_uint_eq(ade_fs_programs_running(), 0);
}
END_TEST

static Suite *fs_suite(void) {
        Suite *s = suite_create("fs");
        TCase *tc;

        tc = ade_test_case("fstab-spec");
        tcase_add_test(tc, test_spec_uuid_ignores_case);
        tcase_add_test(tc, test_spec_other_uuid);
        tcase_add_test(tc, test_spec_label);
        tcase_add_test(tc, test_spec_paths_need_the_block_device);
        suite_add_tcase(s, tc);

        tc = ade_test_case("mountinfo");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_mount_of_first_mount_and_options);
        tcase_add_test(tc, test_mount_of_unescapes_paths);
        tcase_add_test(tc, test_mount_of_not_mounted);
        tcase_add_test(tc, test_mount_of_unreadable_mountinfo);
        tcase_add_test(tc, test_mounted_on_reports_the_top_mount);
        suite_add_tcase(s, tc);

        tc = ade_test_case("mount-target");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_target_mounted_without_fstab_entry);
        tcase_add_test(tc, test_target_from_two_threads);
        tcase_add_test(tc, test_target_mounted_where_fstab_says_takes_fstab_options);
        tcase_add_test(tc, test_target_mounted_elsewhere_than_fstab_says);
        tcase_add_test(tc, test_target_unmounted_from_fstab);
        tcase_add_test(tc, test_target_unmounted_noauto_is_nowhere);
        tcase_add_test(tc, test_target_never_root_nor_swap);
        tcase_add_test(tc, test_target_without_fstab);
        tcase_add_test(tc, test_target_unreadable_mountinfo);
        suite_add_tcase(s, tc);

        tc = ade_test_case("mount-check");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_check_free_mount_point);
        tcase_add_test(tc, test_check_mounted_there_through_a_link);
        tcase_add_test(tc, test_check_mounted_elsewhere);
        tcase_add_test(tc, test_check_missing_mount_point);
        tcase_add_test(tc, test_check_mount_point_not_a_directory);
        tcase_add_test(tc, test_check_busy_mount_point);
        tcase_add_test(tc, test_check_unreadable_mountinfo);
        tcase_add_test(tc, test_check_not_a_block_device);
        tcase_add_test(tc, test_check_free_mount_point_through_a_link_refused);
        tcase_add_test(tc, test_mount_refuses_a_link_on_the_way);
        tcase_add_test(tc, test_options_security_kept);
        suite_add_tcase(s, tc);

        tc = ade_test_case("mount-namespace");
        tcase_add_test(tc, test_mount_namespace_of_its_own_is_not_the_system);
        suite_add_tcase(s, tc);

        tc = ade_test_case("unmount");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_unmount_patiently_names_the_holders);
        tcase_add_test(tc, test_programs_running_counted);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(fs_suite());
}
