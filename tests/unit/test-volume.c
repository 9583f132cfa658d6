/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "ade-test.h"
#include "ade-volume.h"

/* Which partition the OS volume is once the initramfs opened it as ade-root (docs/architecture.md
 * §9), on a folder laid out like sysfs: dev/block/MAJ:MIN links to the devices' folders, each with
 * its dev, a mapping's dm/name and slaves/ links. In the middle of an online reencryption
 * libcryptsetup stacks ade-root on helper mappings (ade-root-overlay, ade-root-hotzone-forward)
 * that all end on the partition: that partition is still the OS volume. */

static char sysfs[] = "/tmp/ade-test-volume.XXXXXX";

static void put(const char *path, const char *text) {
        char full[PATH_MAX];

        snprintf(full, sizeof(full), "%s/%s", sysfs, path);
        for (char *p = strchr(full + strlen(sysfs) + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                (void)mkdir(full, 0755);
                *p = '/';
        }
        ade_test_write_file(full, text, 0644);
}

static void link_to(const char *path, const char *target) {
        char full[PATH_MAX];

        snprintf(full, sizeof(full), "%s/%s", sysfs, path);
        ck_assert_int_eq(symlink(target, full), 0);
}

/* A block device @name (MAJ:MIN @devnum) under @folder, and its dev/block link. */
static void device(const char *folder, const char *name, const char *devnum) {
        char path[PATH_MAX], target[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s/dev", folder, name);
        put(path, devnum);
        snprintf(path, sizeof(path), "dev/block/%s", devnum);
        snprintf(target, sizeof(target), "../../%s/%s", folder, name);
        link_to(path, target);
}

/* A mapping dm-@n named @name. */
static void mapping(unsigned n, const char *name) {
        char dm[32], devnum[32], path[PATH_MAX];

        snprintf(dm, sizeof(dm), "dm-%u", n);
        snprintf(devnum, sizeof(devnum), "253:%u", n);
        device("devices/virtual/block", dm, devnum);
        snprintf(path, sizeof(path), "devices/virtual/block/%s/dm/name", dm);
        put(path, name);
        snprintf(path, sizeof(path), "devices/virtual/block/%s/slaves/.keep", dm);
        put(path, "");
}

/* dm-@upper sits on @lower ("dm-2", "vda3"), as the kernel links it. */
static void sits_on(unsigned upper, const char *lower, const char *lower_folder) {
        char path[PATH_MAX], target[PATH_MAX];

        snprintf(path, sizeof(path), "devices/virtual/block/dm-%u/slaves/%s", upper, lower);
        snprintf(target, sizeof(target), "../../../../../%s/%s", lower_folder, lower);
        link_to(path, target);
}

#define DISK "devices/pci0/virtio1/block/vda"

static void machine(void) {
        ck_assert_ptr_nonnull(mkdtemp(sysfs));
        put("dev/block/.keep", "");
        device(DISK, "vda2", "254:2\n");
        device(DISK, "vda3", "254:3\n");
        device("devices/pci0/virtio2/block", "vdb", "254:16\n");
}

static void machine_gone(void) {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sysfs);
        ck_assert_int_eq(system(cmd), 0);
        strcpy(sysfs, "/tmp/ade-test-volume.XXXXXX");
}

START_TEST(test_opened_by_the_initramfs) {
        dev_t d = 0;

        mapping(0, "ade-root\n");
        sits_on(0, "vda3", DISK);
        ck_assert_int_eq(ade_volume_mapping_backing(sysfs, makedev(253, 0), "ade-root", &d), 1);
        ck_assert_uint_eq(d, makedev(254, 3));
}
END_TEST

START_TEST(test_mid_reencryption_stack) {
        dev_t d = 0;

        /* ade-root -> ade-root-overlay -> { vda3, ade-root-hotzone-forward -> vda3 } */
        mapping(0, "ade-root\n");
        mapping(1, "ade-root-hotzone-forward\n");
        mapping(2, "ade-root-overlay\n");
        sits_on(0, "dm-2", "devices/virtual/block");
        sits_on(2, "vda3", DISK);
        sits_on(2, "dm-1", "devices/virtual/block");
        sits_on(1, "vda3", DISK);
        ck_assert_int_eq(ade_volume_mapping_backing(sysfs, makedev(253, 0), "ade-root", &d), 1);
        ck_assert_uint_eq(d, makedev(254, 3));
}
END_TEST

START_TEST(test_over_two_disks_is_not_the_root) {
        dev_t d = 77;

        mapping(0, "ade-root\n");
        sits_on(0, "vda3", DISK);
        sits_on(0, "vdb", "devices/pci0/virtio2/block");
        ck_assert_int_eq(ade_volume_mapping_backing(sysfs, makedev(253, 0), "ade-root", &d), 0);
        ck_assert_uint_eq(d, 77);
}
END_TEST

START_TEST(test_another_name_or_no_mapping) {
        dev_t d = 77;

        mapping(0, "vg-root\n");
        sits_on(0, "vda3", DISK);
        ck_assert_int_eq(ade_volume_mapping_backing(sysfs, makedev(253, 0), "ade-root", &d), 0);
        /* "/" on the partition itself. */
        ck_assert_int_eq(ade_volume_mapping_backing(sysfs, makedev(254, 3), "ade-root", &d), 0);
        ck_assert_uint_eq(d, 77);
}
END_TEST

START_TEST(test_this_machine_answers) {
        /* Whatever "/" is here, the question has an answer and not an error. */
        ck_assert_int_ge(ade_volume_root_mapper_backing("ade-root", NULL), 0);
}
END_TEST

static Suite *volume_suite(void) {
        Suite *s = suite_create("volume");
        TCase *tc = ade_test_case("root-mapper");

        tcase_add_checked_fixture(tc, machine, machine_gone);
        tcase_add_test(tc, test_opened_by_the_initramfs);
        tcase_add_test(tc, test_mid_reencryption_stack);
        tcase_add_test(tc, test_over_two_disks_is_not_the_root);
        tcase_add_test(tc, test_another_name_or_no_mapping);
        tcase_add_test(tc, test_this_machine_answers);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(volume_suite());
}
