/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-osboot.h"
#include "ade-tab.h"
#include "ade-test.h"
#include "ade-util.h"

#define PARTUUID "5e1a7c3b-02"
#define LUKS "0b2b5f4e-5d1c-4c4e-9d4f-0a3c2b1d9e8f"
#define HEADER "/boot/luks/" LUKS ".header"
#define LINE "ade-root PARTUUID=" PARTUUID " none luks,header=" HEADER

static const AdeOsbootRoot root = {.partuuid = PARTUUID, .header = HEADER};

#define CRYPTTAB_DATA "# <target name> <source device> <key file> <options>\nade-1111 UUID=1111 none luks,nofail\n"
#define FSTAB                                                                                                          \
        "# /etc/fstab: static file system information.\n"                                                              \
        "UUID=6a1f3c2e-9b8d-4e7f-a1b2-c3d4e5f60718 /               ext4    errors=remount-ro 0       1\n"              \
        "UUID=77aa-bb88 /boot ext4 defaults 0 2\n"                                                                     \
        "/swapfile none swap sw 0 0\n"
#define FSTAB_AFTER                                                                                                    \
        "# /etc/fstab: static file system information.\n"                                                              \
        "# ade: ade-root was: UUID=6a1f3c2e-9b8d-4e7f-a1b2-c3d4e5f60718 /               ext4    errors=remount-ro "    \
        "0       1\n"                                                                                                  \
        "/dev/mapper/ade-root /               ext4    errors=remount-ro 0       1\n"                                   \
        "UUID=77aa-bb88 /boot ext4 defaults 0 2\n"                                                                     \
        "/swapfile none swap sw 0 0\n"

static char template[] = "/tmp/ade-test-osboot.XXXXXX";
static char dir[sizeof(template)];

static char *at(const char *name) {
        static char paths[4][512];
        static unsigned next;
        char *p = paths[next++ % 4];

        snprintf(p, sizeof(paths[0]), "%s%s", dir, name);
        return p;
}

static char *read_file(const char *path) {
        static char bufs[2][8192];
        static unsigned next;
        char *buf = bufs[next++ % 2];
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(bufs[0]) - 1, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

static mode_t mode_of(const char *path) {
        struct stat st;

        ck_assert_int_eq(stat(path, &st), 0);
        return st.st_mode & 07777;
}

/* How many backups ("<name>.ade-*") the folder @sub holds. */
static int backups(const char *sub, const char *name) {
        DIR *d = opendir(at(sub));
        struct dirent *e;
        size_t len = strlen(name);
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                n += strncmp(e->d_name, name, len) == 0 && strncmp(e->d_name + len, ".ade-", 5) == 0;
        closedir(d);
        return n;
}

/* A stand-in for update-initramfs or update-grub: appends its name, its arguments and whether
 * crypttab names ade-root to the log, and exits with @status (printing "boom" when it fails). */
static void fake_program(const char *name, int status) {
        char text[1024];

        snprintf(text, sizeof(text),
                "#!/bin/sh\n"
                "if grep -q '^ade-root ' '%s/etc/crypttab' 2>/dev/null; then c=yes; else c=no; fi\n"
                "echo \"%s [$*] argc=$# crypttab-root=$c\" >>'%s/log'\n"
                "%s"
                "exit %d\n",
                dir, name, dir, status ? "echo boom\n" : "", status);
        ade_test_write_file(at(name[0] == 'i' ? "/bin/initramfs" : "/bin/grub"), text, 0755);
}

static void setup(void) {
        memcpy(dir, template, sizeof(template));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(mkdir(at("/etc"), 0755), 0);
        ck_assert_int_eq(mkdir(at("/etc/default"), 0755), 0);
        ck_assert_int_eq(mkdir(at("/bin"), 0755), 0);
        ade_test_write_file(at("/etc/crypttab"), CRYPTTAB_DATA, 0600);
        ade_test_write_file(at("/etc/fstab"), FSTAB, 0644);
        fake_program("initramfs", 0);
        fake_program("grub", 0);
}

static void teardown(void) {
        char cmd[sizeof(template) + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static AdeOsbootCommands commands(void) {
        static char initramfs[512], grub[512];

        snprintf(initramfs, sizeof(initramfs), "%s/bin/initramfs", dir);
        snprintf(grub, sizeof(grub), "%s/bin/grub", dir);
        return (AdeOsbootCommands){.update_initramfs = initramfs, .update_grub = grub};
}

START_TEST(test_crypttab_line) {
        _cleanup_free_ char *line = NULL;
        AdeOsbootRoot bad = root;

        ck_assert_int_eq(ade_osboot_crypttab_line(&root, &line), 0);
        ck_assert_str_eq(line, LINE);

        bad.partuuid = "5e1a 7c3b";
        ck_assert_int_eq(ade_osboot_crypttab_line(&bad, &line), -EINVAL);
        bad = root;
        bad.header = "boot/luks/x.header";
        ck_assert_int_eq(ade_osboot_crypttab_line(&bad, &line), -EINVAL);
        bad.header = "/boot/luks/a,b";
        ck_assert_int_eq(ade_osboot_crypttab_line(&bad, &line), -EINVAL);
        bad = root;
        bad.partuuid = NULL;
        ck_assert_int_eq(ade_osboot_crypttab_line(&bad, &line), -EINVAL);
        ck_assert_str_eq(line, LINE); /* untouched on failure */
}
END_TEST

START_TEST(test_render_crypttab) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;

        ck_assert_int_eq(ade_osboot_render_crypttab(NULL, &root, &a), 1);
        ck_assert_str_eq(a, LINE "\n");
        ck_assert_int_eq(ade_osboot_render_crypttab(CRYPTTAB_DATA, &root, &b), 1);
        ck_assert_str_eq(b, CRYPTTAB_DATA LINE "\n");
        /* A last line without its newline keeps its text; the new line goes on a line of its own. */
        ck_assert_int_eq(ade_osboot_render_crypttab("a UUID=1 none", &root, &c), 1);
        ck_assert_str_eq(c, "a UUID=1 none\n" LINE "\n");
        /* Our line with another header is replaced where it is; a second call changes nothing. */
        ck_assert_int_eq(
                ade_osboot_render_crypttab("x y\nade-root PARTUUID=1 none luks,header=/boot/old\nz w\n", &root, &d), 1);
        ck_assert_str_eq(d, "x y\n" LINE "\nz w\n");
        ck_assert_int_eq(ade_osboot_render_crypttab(d, &root, &e), 0);
        ck_assert_str_eq(e, d);
        free(e);
        e = NULL;
        ck_assert_int_eq(ade_osboot_render_crypttab("ade-root a\nade-root b\n", &root, &e), -EINVAL);
        ck_assert_ptr_null(e);
        /* A commented-out line of that name is someone's note, not a line. */
        ck_assert_int_eq(ade_osboot_render_crypttab("# ade-root PARTUUID=1 none\n", &root, &e), 1);
        ck_assert_str_eq(e, "# ade-root PARTUUID=1 none\n" LINE "\n");
}
END_TEST

START_TEST(test_render_fstab) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *why = NULL;

        ck_assert_int_eq(ade_osboot_render_fstab(FSTAB, &a, &why), 1);
        ck_assert_str_eq(a, FSTAB_AFTER);
        ck_assert_int_eq(ade_osboot_render_fstab(a, &b, &why), 0);
        ck_assert_str_eq(b, a);
        ck_assert_ptr_null(why);

        /* Tabs and a last line without a newline stay as they were around the device. */
        ck_assert_int_eq(ade_osboot_render_fstab("/dev/sda1\t/\txfs\tdefaults\t0\t0", &c, &why), 1);
        ck_assert_str_eq(c, "# ade: ade-root was: /dev/sda1\t/\txfs\tdefaults\t0\t0\n"
                            "/dev/mapper/ade-root\t/\txfs\tdefaults\t0\t0");
}
END_TEST

START_TEST(test_render_fstab_refusals) {
        _cleanup_free_ char *out = NULL, *why = NULL;

        ck_assert_int_eq(ade_osboot_render_fstab("UUID=1 /boot ext4 defaults 0 2\n", &out, &why), -ENOENT);
        ck_assert_ptr_null(out);
        ck_assert_ptr_nonnull(strstr(why, "no line that mounts /"));
        why = mfree(why);
        ck_assert_int_eq(ade_osboot_render_fstab("UUID=1 / ext4 defaults 0 1\nUUID=2 / xfs defaults 0 0\n", &out, &why),
                -EBADMSG);
        ck_assert_ptr_nonnull(strstr(why, "mounts / twice"));
        why = mfree(why);
        ck_assert_int_eq(ade_osboot_render_fstab("UUID=1 / ext4 defaults 0 1 extra\n", &out, &why), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(why, "line 1 has 7 fields"));
        why = mfree(why);
        ck_assert_int_eq(ade_osboot_render_fstab("#c\nlonely\nUUID=1 / ext4 defaults 0 1\n", &out, &why), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(why, "line 2 has 1 fields"));
        ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_render_fstab_undone_by_tab) {
        _cleanup_free_ char *after = NULL, *why = NULL;

        /* The repointed line carries ade-tab's mark, so that ade_fstab_restore() puts the original back. */
        ck_assert_int_eq(ade_osboot_render_fstab(FSTAB, &after, &why), 1);
        ade_test_write_file(at("/etc/fstab"), after, 0644);
        ck_assert_int_eq(ade_fstab_restore(at("/etc/fstab"), ADE_OSBOOT_NAME, NULL, &why), 1);
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB);
}
END_TEST

START_TEST(test_render_grub) {
        _cleanup_free_ char *text = NULL;

        ck_assert_int_eq(ade_osboot_render_grub(&text), 0);
        ck_assert_ptr_nonnull(strstr(text, "\nGRUB_DISABLE_LINUX_UUID=true\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nGRUB_DISABLE_LINUX_PARTUUID=true\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nGRUB_DEVICE=/dev/mapper/ade-root\n"));
        /* Every other line is a comment: grub's drop-ins are sourced by sh. */
        for (char *l = text; *l; l = strchr(l, '\n') + 1)
                ck_assert(l[0] == '#' || strncmp(l, "GRUB_", 5) == 0);
}
END_TEST

START_TEST(test_apply) {
        _cleanup_free_ char *why = NULL, *grub = NULL;
        AdeOsbootCommands cmds = commands();

        ck_assert_int_eq(ade_osboot_apply(dir, &root, &cmds, &why), 1);
        ck_assert_ptr_null(why);
        ck_assert_str_eq(read_file(at("/etc/crypttab")), CRYPTTAB_DATA LINE "\n");
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB_AFTER);
        ck_assert_int_eq(ade_osboot_render_grub(&grub), 0);
        ck_assert_str_eq(read_file(at(ADE_OSBOOT_GRUB_DROPIN)), grub);
        ck_assert_int_eq(mode_of(at("/etc/crypttab")), 0600);
        ck_assert_int_eq(mode_of(at(ADE_OSBOOT_GRUB_DROPIN)), 0644);
        /* Each changed file's old contents kept, with its mode (crypttab may name key files). */
        ck_assert_int_eq(backups("/etc", "crypttab"), 1);
        ck_assert_int_eq(backups("/etc", "fstab"), 1);
        ck_assert_int_eq(backups("/etc/default/grub.d", "99-ade-root.cfg"), 0);
        /* The programs ran after the files were written, in order, with "-u" and nothing else. */
        ck_assert_str_eq(read_file(at("/log")), "initramfs [-u] argc=1 crypttab-root=yes\n"
                                                "grub [] argc=0 crypttab-root=yes\n");

        /* Again: nothing to change and no new backup; the programs run again all the same (a crash
         * between the writes and them must not leave an initramfs without the root). */
        ck_assert_int_eq(ade_osboot_apply(dir, &root, &cmds, &why), 0);
        ck_assert_int_eq(backups("/etc", "crypttab"), 1);
        ck_assert_int_eq(backups("/etc", "fstab"), 1);
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB_AFTER);
        ck_assert_str_eq(read_file(at("/log")), "initramfs [-u] argc=1 crypttab-root=yes\n"
                                                "grub [] argc=0 crypttab-root=yes\n"
                                                "initramfs [-u] argc=1 crypttab-root=yes\n"
                                                "grub [] argc=0 crypttab-root=yes\n");

        /* A failure then puts back nothing it did not write: the files stay the contract. */
        fake_program("grub", 1);
        ck_assert_int_eq(ade_osboot_apply(dir, &root, &cmds, &why), -EIO);
        ck_assert_str_eq(read_file(at("/etc/crypttab")), CRYPTTAB_DATA LINE "\n");
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB_AFTER);
}
END_TEST

START_TEST(test_apply_grub_fails) {
        _cleanup_free_ char *why = NULL;
        AdeOsbootCommands cmds = commands();

        fake_program("grub", 1);
        ck_assert_int_eq(ade_osboot_apply(dir, &root, &cmds, &why), -EIO);
        ck_assert_ptr_nonnull(strstr(why, "grub exited with status 1"));
        ck_assert_ptr_nonnull(strstr(why, "boom"));
        /* Every file as it was, modes too; the drop-in and the folder made for it gone. */
        ck_assert_str_eq(read_file(at("/etc/crypttab")), CRYPTTAB_DATA);
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB);
        ck_assert_int_eq(mode_of(at("/etc/crypttab")), 0600);
        ck_assert_ptr_null(read_file(at(ADE_OSBOOT_GRUB_DROPIN)));
        ck_assert_int_eq(access(at("/etc/default/grub.d"), F_OK), -1);
        /* The initramfs built again from the files put back. */
        ck_assert_str_eq(read_file(at("/log")), "initramfs [-u] argc=1 crypttab-root=yes\n"
                                                "grub [] argc=0 crypttab-root=yes\n"
                                                "initramfs [-u] argc=1 crypttab-root=no\n");
}
END_TEST

START_TEST(test_apply_initramfs_fails) {
        _cleanup_free_ char *why = NULL;
        AdeOsbootCommands cmds = commands();

        /* An older drop-in of ours and a neighbour in the folder: both stay as they were. */
        ck_assert_int_eq(mkdir(at("/etc/default/grub.d"), 0755), 0);
        ade_test_write_file(at(ADE_OSBOOT_GRUB_DROPIN), "GRUB_DEVICE=/dev/old\n", 0640);
        ade_test_write_file(at("/etc/default/grub.d/50-cloudimg.cfg"), "GRUB_TIMEOUT=1\n", 0644);
        fake_program("initramfs", 2);
        ck_assert_int_eq(ade_osboot_apply(dir, &root, &cmds, &why), -EIO);
        ck_assert_ptr_nonnull(strstr(why, "initramfs exited with status 2"));
        ck_assert_str_eq(read_file(at("/etc/crypttab")), CRYPTTAB_DATA);
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB);
        ck_assert_str_eq(read_file(at(ADE_OSBOOT_GRUB_DROPIN)), "GRUB_DEVICE=/dev/old\n");
        ck_assert_int_eq(mode_of(at(ADE_OSBOOT_GRUB_DROPIN)), 0640);
        ck_assert_str_eq(read_file(at("/etc/default/grub.d/50-cloudimg.cfg")), "GRUB_TIMEOUT=1\n");
        /* Not run again after it failed, and grub never. */
        ck_assert_str_eq(read_file(at("/log")), "initramfs [-u] argc=1 crypttab-root=yes\n");
}
END_TEST

START_TEST(test_apply_missing_program) {
        _cleanup_free_ char *why = NULL;
        AdeOsbootCommands cmds = commands();

        cmds.update_grub = "/nonexistent/update-grub";
        ck_assert_int_lt(ade_osboot_apply(dir, &root, &cmds, &why), 0);
        ck_assert_ptr_nonnull(strstr(why, "/nonexistent/update-grub"));
        ck_assert_str_eq(read_file(at("/etc/crypttab")), CRYPTTAB_DATA);
        ck_assert_str_eq(read_file(at("/etc/fstab")), FSTAB);
        ck_assert_ptr_null(read_file(at(ADE_OSBOOT_GRUB_DROPIN)));
}
END_TEST

START_TEST(test_apply_malformed_fstab) {
        _cleanup_free_ char *why = NULL;
        AdeOsbootCommands cmds = commands();

        ade_test_write_file(at("/etc/fstab"), "UUID=1 /boot ext4 defaults 0 2\n", 0644);
        ck_assert_int_eq(ade_osboot_apply(dir, &root, &cmds, &why), -ENOENT);
        ck_assert_ptr_nonnull(strstr(why, "no line that mounts /"));
        /* Nothing written, nothing backed up, nothing run. */
        ck_assert_str_eq(read_file(at("/etc/crypttab")), CRYPTTAB_DATA);
        ck_assert_int_eq(backups("/etc", "crypttab"), 0);
        ck_assert_int_eq(backups("/etc", "fstab"), 0);
        ck_assert_int_eq(access(at("/etc/default/grub.d"), F_OK), -1);
        ck_assert_ptr_null(read_file(at("/log")));
}
END_TEST

START_TEST(test_apply_no_crypttab) {
        _cleanup_free_ char *why = NULL;
        AdeOsbootCommands cmds = commands();
        char prefix[sizeof(template) + 1];

        /* A missing crypttab is an empty one; the prefix may end in a slash. */
        ck_assert_int_eq(unlink(at("/etc/crypttab")), 0);
        snprintf(prefix, sizeof(prefix), "%s/", dir);
        ck_assert_int_eq(ade_osboot_apply(prefix, &root, &cmds, &why), 1);
        ck_assert_str_eq(read_file(at("/etc/crypttab")), LINE "\n");
        ck_assert_int_eq(mode_of(at("/etc/crypttab")), 0644);
        ck_assert_int_eq(backups("/etc", "crypttab"), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("osboot");
        TCase *tc = ade_test_case("render");

        tcase_add_test(tc, test_crypttab_line);
        tcase_add_test(tc, test_render_crypttab);
        tcase_add_test(tc, test_render_fstab);
        tcase_add_test(tc, test_render_fstab_refusals);
        tcase_add_test(tc, test_render_grub);
        suite_add_tcase(s, tc);

        tc = ade_test_case("apply");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_render_fstab_undone_by_tab);
        tcase_add_test(tc, test_apply);
        tcase_add_test(tc, test_apply_grub_fails);
        tcase_add_test(tc, test_apply_initramfs_fails);
        tcase_add_test(tc, test_apply_missing_program);
        tcase_add_test(tc, test_apply_malformed_fstab);
        tcase_add_test(tc, test_apply_no_crypttab);
        suite_add_tcase(s, tc);

        return ade_test_run(s);
}
