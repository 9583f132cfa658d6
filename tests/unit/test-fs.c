/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
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
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(fs_suite());
}
