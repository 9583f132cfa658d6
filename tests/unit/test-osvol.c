/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-osvol.h"
#include "ade-test.h"

/* The OS volume's eligibility: the pure judgement on a table of machines, then the gatherer on a
 * folder laid out like a machine (proc/1/mountinfo, sys/dev/block, usr/sbin), so nothing needs root
 * or a real disk. */

#define MIB (1024ULL * 1024ULL)

/* Debian's Azure image: root on sda1 (ext4), the EFI system partition on sda15, managed identity. */
static AdeOsvolFacts azure_image(void) {
        return (AdeOsvolFacts){
                .root_source = (char *)"/dev/sda1",
                .root_fstype = (char *)"ext4",
                .root_name = (char *)"sda1",
                .root_partition = true,
                .root_partnum = 1,
                .root_disk = (char *)"sda",
                .esp = {.mounted = true, .fstype = (char *)"vfat", .disk = (char *)"sda", .free_bytes = 100 * MIB},
                .initramfs_tools = true,
                .cryptsetup_initramfs = true,
                .grub = true,
                .ade_initramfs = true,
                .identity_managed = true,
        };
}

/* A separate /boot (sda2, ext4) beside root on sda3 (XFS), and an ESP too: /boot wins. */
static AdeOsvolFacts boot_layout(void) {
        AdeOsvolFacts f = azure_image();

        f.root_source = (char *)"/dev/sda3";
        f.root_fstype = (char *)"xfs";
        f.root_name = (char *)"sda3";
        f.root_partnum = 3;
        f.boot = (AdeOsvolPlace){
                .mounted = true, .fstype = (char *)"ext4", .disk = (char *)"sda", .free_bytes = 400 * MIB};
        return f;
}

typedef struct Row {
        const char *what;
        AdeOsvolFacts facts;
        AdeOsvolPath path;
        const char *failed; /* the check that fails, NULL when none does */
        const char *says;   /* a piece of its reason */
} Row;

static void judge(const Row *row) {
        _cleanup_(ade_check_list_done) AdeCheckList list = {};
        const AdeCheck *fail;
        AdeOsvolPath path = _ADE_OSVOL_PATH_INVALID;

        /* A failed check of someone else's before ours decides nothing for the OS volume. */
        ck_assert_int_eq(ade_check_list_add(&list, "vault-reachable", NULL, ADE_VERDICT_FAIL, "elsewhere"), 0);
        ck_assert_int_eq(ade_osvol_evaluate(&row->facts, &list, &path), 0);
        ck_assert_msg(path == row->path, "%s: path %s, expected %s", row->what, ade_osvol_path_to_string(path),
                ade_osvol_path_to_string(row->path));
        fail = NULL;
        for (size_t i = 1; i < list.n; i++)
                if (list.checks[i].verdict == ADE_VERDICT_FAIL) {
                        fail = &list.checks[i];
                        break;
                }
        if (!row->failed) {
                ck_assert_msg(!fail, "%s: %s failed: %s", row->what, fail ? fail->name : "", fail ? fail->reason : "");
                return;
        }
        ck_assert_msg(fail, "%s: nothing failed", row->what);
        ck_assert_msg(streq(fail->name, row->failed), "%s: %s failed, expected %s (%s)", row->what, fail->name,
                row->failed, fail->reason);
        ck_assert_msg(
                strstr(fail->reason, row->says), "%s: '%s' does not say '%s'", row->what, fail->reason, row->says);
}

START_TEST(test_evaluate_table) {
        AdeOsvolFacts f;
        Row rows[32];
        size_t n = 0;

        rows[n++] = (Row){"Azure image: the header on the ESP", azure_image(), ADE_OSVOL_PATH_ESP, NULL, NULL};
        rows[n++] = (Row){"separate /boot: the header there", boot_layout(), ADE_OSVOL_PATH_BOOT, NULL, NULL};

        f = azure_image();
        f.error = -ENOENT;
        f.error_message = (char *)"/proc/1/mountinfo: nothing is mounted on /";
        rows[n++] = (Row){"no root", f, ADE_OSVOL_PATH_NONE, "os-root-found", "nothing is mounted on /"};

        f = azure_image();
        f.root_source = (char *)"/dev/mapper/vg-root";
        f.root_name = (char *)"dm-0";
        f.root_dm_uuid = (char *)"LVM-abcdef";
        f.root_dm_name = (char *)"vg-root";
        f.root_partition = false;
        rows[n++] = (Row){"LVM", f, ADE_OSVOL_PATH_NONE, "os-root-partition", "LVM logical volume vg-root"};

        f.root_dm_uuid = (char *)"CRYPT-LUKS2-0123-ade-root";
        f.root_dm_name = (char *)"ade-root";
        rows[n++] = (Row){"encrypted already", f, ADE_OSVOL_PATH_NONE, "os-root-partition", "already"};

        f.root_dm_uuid = (char *)"mpath-36001";
        f.root_dm_name = (char *)"mpatha";
        rows[n++] = (Row){"other device-mapper", f, ADE_OSVOL_PATH_NONE, "os-root-partition", "device-mapper device"};

        f = azure_image();
        f.root_source = (char *)"/dev/sdb";
        f.root_name = (char *)"sdb";
        f.root_partition = false;
        f.root_disk = NULL;
        rows[n++] = (Row){"whole disk", f, ADE_OSVOL_PATH_NONE, "os-root-partition", "not a partition"};

        f = azure_image();
        f.root_holder = (char *)"md0";
        rows[n++] = (Row){"held by md", f, ADE_OSVOL_PATH_NONE, "os-root-held", "held by md0"};

        f = azure_image();
        f.root_fstype = (char *)"btrfs";
        rows[n++] = (Row){"btrfs", f, ADE_OSVOL_PATH_NONE, "os-root-filesystem", "ext4 or XFS"};

        f = azure_image();
        f.root_fstype = (char *)"xfs";
        rows[n++] = (Row){"XFS root, ESP", f, ADE_OSVOL_PATH_ESP, NULL, NULL};

        f = azure_image();
        f.esp = (AdeOsvolPlace){};
        rows[n++] = (Row){"BIOS boot, no /boot", f, ADE_OSVOL_PATH_NONE, "os-header-place", "no separate /boot"};

        f = azure_image();
        f.esp.free_bytes = 40 * MIB;
        rows[n++] = (Row){"ESP too small", f, ADE_OSVOL_PATH_NONE, "os-header-place", "40 MiB free"};

        f = boot_layout();
        f.boot.free_bytes = ADE_OSVOL_HEADER_ROOM;
        rows[n++] = (Row){"/boot just big enough", f, ADE_OSVOL_PATH_BOOT, NULL, NULL};

        f = boot_layout();
        f.boot.disk = (char *)"sdc";
        rows[n++] =
                (Row){"/boot on another disk", f, ADE_OSVOL_PATH_NONE, "os-header-place", "travel with the OS disk"};

        f = boot_layout();
        f.boot.read_only = true;
        rows[n++] = (Row){"/boot read-only", f, ADE_OSVOL_PATH_NONE, "os-header-place", "read-only"};

        f = boot_layout();
        f.boot.fstype = (char *)"btrfs";
        rows[n++] = (Row){"/boot on btrfs", f, ADE_OSVOL_PATH_NONE, "os-header-place", "btrfs"};

        f = azure_image();
        f.cryptsetup_initramfs = false;
        rows[n++] = (Row){"no cryptsetup-initramfs", f, ADE_OSVOL_PATH_NONE, "os-boot-tools", "cryptsetup-initramfs"};

        f = boot_layout();
        f.ade_initramfs = false;
        rows[n++] = (Row){"no ade initramfs hook", f, ADE_OSVOL_PATH_NONE, "os-boot-unlock", "hooks/ade"};

        f = azure_image();
        f.identity_managed = false;
        rows[n++] = (Row){"client secret", f, ADE_OSVOL_PATH_NONE, "os-identity", "type = managed"};

        for (size_t i = 0; i < n; i++)
                judge(&rows[i]);
}
END_TEST

START_TEST(test_every_check_is_named_once) {
        _cleanup_(ade_check_list_done) AdeCheckList list = {};
        AdeOsvolFacts f = azure_image();
        static const char *const names[] = {"os-root-found", "os-root-partition", "os-root-held", "os-root-filesystem",
                "os-header-place", "os-boot-tools", "os-boot-unlock", "os-identity"};
        AdeOsvolPath path;

        ck_assert_int_eq(ade_osvol_evaluate(&f, &list, &path), 0);
        ck_assert_uint_eq(list.n, ELEMENTSOF(names));
        for (size_t i = 0; i < list.n; i++) {
                ck_assert_str_eq(list.checks[i].name, names[i]);
                ck_assert_str_eq(list.checks[i].target, "/dev/sda1");
                ck_assert(list.checks[i].reason && *list.checks[i].reason);
        }
}
END_TEST

/* ---- the gatherer on a machine laid out in a folder ---- */

static char root[] = "/tmp/ade-test-osvol.XXXXXX";

static void put(const char *path, const char *text) {
        char full[PATH_MAX];
        FILE *f;

        snprintf(full, sizeof(full), "%s/%s", root, path);
        for (char *p = strchr(full + strlen(root) + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                (void)mkdir(full, 0755);
                *p = '/';
        }
        f = fopen(full, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static void link_block(const char *devnum, const char *target) {
        char full[PATH_MAX];

        snprintf(full, sizeof(full), "%s/sys/dev/block/%s", root, devnum);
        ck_assert_int_eq(symlink(target, full), 0);
}

static void machine(void) {
        ck_assert_ptr_nonnull(mkdtemp(root));
        put("sys/devices/pci0/host0/block/sda/sda1/partition", "1\n");
        put("sys/devices/pci0/host0/block/sda/sda15/partition", "15\n");
        put("sys/devices/virtual/block/dm-0/dm/uuid", "LVM-Xyz\n");
        put("sys/devices/virtual/block/dm-0/dm/name", "vg-root\n");
        put("sys/dev/block/.keep", "");
        link_block("8:1", "../../devices/pci0/host0/block/sda/sda1");
        link_block("8:15", "../../devices/pci0/host0/block/sda/sda15");
        link_block("253:0", "../../devices/virtual/block/dm-0");
        put("boot/efi/.keep", "");
        put("usr/sbin/update-initramfs", "");
        put("usr/share/initramfs-tools/hook-functions", "");
        put("usr/share/initramfs-tools/hooks/cryptroot", "");
        put("usr/sbin/update-grub", "");
        put("usr/share/initramfs-tools/hooks/ade", "");
        put("usr/share/initramfs-tools/scripts/local-top/ade", "");
}

static void machine_gone(void) {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        ck_assert_int_eq(system(cmd), 0);
        strcpy(root, "/tmp/ade-test-osvol.XXXXXX");
}

START_TEST(test_gather_azure_image) {
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts f = {};
        _cleanup_(ade_check_list_done) AdeCheckList list = {};
        AdeOsvolPath path;

        put("proc/1/mountinfo", "20 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                                "30 20 8:15 / /boot/efi rw,relatime shared:9 - vfat /dev/sda15 rw,fmask=0077\n");
        ck_assert_int_eq(ade_osvol_gather(root, true, &f), 0);
        ck_assert_int_eq(f.error, 0);
        ck_assert_str_eq(f.root_source, "/dev/sda1");
        ck_assert_str_eq(f.root_fstype, "ext4");
        ck_assert_str_eq(f.root_name, "sda1");
        ck_assert(f.root_partition);
        ck_assert_uint_eq(f.root_partnum, 1);
        ck_assert_str_eq(f.root_disk, "sda");
        ck_assert_ptr_null(f.root_holder);
        ck_assert_ptr_null(f.root_dm_uuid);
        ck_assert(!f.boot.mounted);
        ck_assert(f.esp.mounted);
        ck_assert_str_eq(f.esp.fstype, "vfat");
        ck_assert_str_eq(f.esp.disk, "sda");
        ck_assert(f.initramfs_tools && f.cryptsetup_initramfs && f.grub && f.ade_initramfs && f.identity_managed);

        ck_assert_int_eq(ade_osvol_evaluate(&f, &list, &path), 0);
        /* The fixture's folder has this machine's free space: enough, or the place check says why. */
        if (f.esp.free_bytes >= ADE_OSVOL_HEADER_ROOM)
                ck_assert_int_eq(path, ADE_OSVOL_PATH_ESP);
}
END_TEST

START_TEST(test_gather_lvm_and_holders) {
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts f = {};
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts g = {};

        put("proc/1/mountinfo", "20 1 253:0 / / rw - xfs /dev/mapper/vg-root rw\n");
        ck_assert_int_eq(ade_osvol_gather(root, false, &f), 0);
        ck_assert_str_eq(f.root_name, "dm-0");
        ck_assert_str_eq(f.root_dm_uuid, "LVM-Xyz");
        ck_assert_str_eq(f.root_dm_name, "vg-root");
        ck_assert(!f.root_partition);
        ck_assert_ptr_null(f.root_disk);
        ck_assert(!f.esp.mounted);

        put("sys/devices/pci0/host0/block/sda/sda1/holders/md0", "");
        put("proc/1/mountinfo", "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
        ck_assert_int_eq(ade_osvol_gather(root, true, &g), 0);
        ck_assert_str_eq(g.root_holder, "md0");
}
END_TEST

START_TEST(test_gather_no_root) {
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts f = {};
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts g = {};

        put("proc/1/mountinfo", "30 20 8:15 / /boot/efi rw - vfat /dev/sda15 rw\n");
        ck_assert_int_eq(ade_osvol_gather(root, true, &f), 0);
        ck_assert_int_eq(f.error, -ENOENT);
        ck_assert(strstr(f.error_message, "nothing is mounted on /"));

        /* A root whose device sysfs does not know. */
        put("proc/1/mountinfo", "20 1 8:7 / / rw - ext4 /dev/sda7 rw\n");
        ck_assert_int_eq(ade_osvol_gather(root, true, &g), 0);
        ck_assert_int_lt(g.error, 0);
        ck_assert(strstr(g.error_message, "8:7"));
}
END_TEST

START_TEST(test_gather_ade_initramfs_half_installed) {
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts f = {};
        char full[PATH_MAX];

        /* The hook without its boot script builds an initramfs that never opens the root. */
        snprintf(full, sizeof(full), "%s/usr/share/initramfs-tools/scripts/local-top/ade", root);
        ck_assert_int_eq(unlink(full), 0);
        put("proc/1/mountinfo", "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
        ck_assert_int_eq(ade_osvol_gather(root, true, &f), 0);
        ck_assert(f.initramfs_tools && f.cryptsetup_initramfs && f.grub);
        ck_assert(!f.ade_initramfs);
}
END_TEST

/* What the OS volume's record asks for, at aded's start and in Show (docs/architecture.md §9). */
static const struct {
        const char *name;
        bool record;
        AdeJobKind kind;
        AdeJobStep step;
        bool on_mapper;
        AdeOsvolNext next;
} next_rows[] = {
        {"no record", false, ADE_JOB_ENCRYPT, ADE_STEP_NONE, false, ADE_OSVOL_NEXT_NOTHING},
        {"no record, on the mapper", false, ADE_JOB_ENCRYPT, ADE_STEP_NONE, true, ADE_OSVOL_NEXT_NOTHING},
        {"stopped before the escrow", true, ADE_JOB_ENCRYPT, ADE_STEP_KEYFILE, false, ADE_OSVOL_NEXT_NOTHING},
        {"escrowed, no header yet", true, ADE_JOB_ENCRYPT, ADE_STEP_ESCROW, false, ADE_OSVOL_NEXT_ENABLE},
        {"header written, boot files not yet", true, ADE_JOB_ENCRYPT, ADE_STEP_SHRINK, false, ADE_OSVOL_NEXT_ENABLE},
        {"boot files written, before the reboot", true, ADE_JOB_ENCRYPT, ADE_STEP_HEADER, false,
                ADE_OSVOL_NEXT_RESTART},
        {"after the reboot, on ade-root", true, ADE_JOB_ENCRYPT, ADE_STEP_HEADER, true, ADE_OSVOL_NEXT_RESUME},
        /* A crash after the boot files and before their step: the boot opened it all the same. */
        {"on ade-root, the step not recorded", true, ADE_JOB_ENCRYPT, ADE_STEP_SHRINK, true, ADE_OSVOL_NEXT_RESUME},
        {"reencryption ended, not recorded done", true, ADE_JOB_ENCRYPT, ADE_STEP_REENCRYPT, true,
                ADE_OSVOL_NEXT_RESUME},
        {"done", true, ADE_JOB_ENCRYPT, ADE_STEP_DONE, true, ADE_OSVOL_NEXT_NOTHING},
        {"done, off the mapper", true, ADE_JOB_ENCRYPT, ADE_STEP_DONE, false, ADE_OSVOL_NEXT_NOTHING},
        {"a decryption's record", true, ADE_JOB_DECRYPT, ADE_STEP_HEADER, true, ADE_OSVOL_NEXT_NOTHING},
};

START_TEST(test_next_table) {
        AdeStateVolume record = {.kind = next_rows[_i].kind, .step = next_rows[_i].step};
        AdeOsvolNext next = ade_osvol_next(next_rows[_i].record ? &record : NULL, next_rows[_i].on_mapper);

        ck_assert_msg(next == next_rows[_i].next, "%s: %s, want %s", next_rows[_i].name, ade_osvol_next_to_string(next),
                ade_osvol_next_to_string(next_rows[_i].next));
}
END_TEST

START_TEST(test_next_names) {
        ck_assert_str_eq(ade_osvol_next_to_string(ADE_OSVOL_NEXT_RESTART), "restart");
        ck_assert_str_eq(ade_osvol_next_to_string(ADE_OSVOL_NEXT_RESUME), "resume");
        ck_assert_ptr_null(ade_osvol_next_to_string(_ADE_OSVOL_NEXT_MAX));
        ck_assert_ptr_null(ade_osvol_next_to_string(_ADE_OSVOL_NEXT_INVALID));
}
END_TEST

static Suite *osvol_suite(void) {
        Suite *s = suite_create("osvol");
        TCase *tc = ade_test_case("evaluate");

        tcase_add_test(tc, test_evaluate_table);
        tcase_add_test(tc, test_every_check_is_named_once);
        tcase_add_loop_test(tc, test_next_table, 0, (int)ELEMENTSOF(next_rows));
        tcase_add_test(tc, test_next_names);
        suite_add_tcase(s, tc);
        tc = ade_test_case("gather");
        tcase_add_checked_fixture(tc, machine, machine_gone);
        tcase_add_test(tc, test_gather_azure_image);
        tcase_add_test(tc, test_gather_lvm_and_holders);
        tcase_add_test(tc, test_gather_no_root);
        tcase_add_test(tc, test_gather_ade_initramfs_half_installed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(osvol_suite());
}
