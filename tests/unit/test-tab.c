/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-tab.h"
#include "ade-test.h"

#define UUID "0b2b5f4e-5d1c-4c4e-9d4f-0a3c2b1d9e8f"
#define FSUUID "6a1f3c2e-9b8d-4e7f-a1b2-c3d4e5f60718"
#define NAME "ade-" UUID
#define KEY "/run/ade/key.socket"
#define OPTS "luks,_netdev,nofail,headless=true,tries=3"

static char template[] = "/tmp/ade-test-tab.XXXXXX";
static char dir[sizeof(template)], tab[sizeof(template) + 16];
static const AdeFsId fs = {.devnum = 0, .uuid = FSUUID, .label = "data"};

static char *read_file(const char *path) {
        static char buf[8192];
        FILE *f = fopen(path, "re");
        size_t n;

        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

/* How many backups ("<tab>.ade-*") the folder holds. */
static int backups(void) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                n += strncmp(e->d_name, "tab.ade-", 8) == 0;
        closedir(d);
        return n;
}

static void setup(void) {
        memcpy(dir, template, sizeof(template));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(tab, sizeof(tab), "%s/tab", dir);
}

static void teardown(void) {
        DIR *d = opendir(dir);
        struct dirent *e;

        while (d && (e = readdir(d)))
                if (e->d_name[0] != '.' || strlen(e->d_name) > 2) {
                        char p[sizeof(dir) + 300];

                        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                        unlink(p);
                }
        if (d)
                closedir(d);
        rmdir(dir);
}

START_TEST(test_crypttab_new_file) {
        _cleanup_free_ char *backup = NULL, *why = NULL;

        ck_assert_int_eq(ade_crypttab_set(tab, NAME, "UUID=" UUID, KEY, OPTS, &backup, &why), 1);
        ck_assert_str_eq(read_file(tab), NAME " UUID=" UUID " " KEY " " OPTS "\n");
        ck_assert_ptr_null(backup); /* nothing to back up */
        ck_assert_int_eq(ade_crypttab_set(tab, NAME, "UUID=" UUID, KEY, OPTS, NULL, &why), 0);
        ck_assert_int_eq(backups(), 0);
}
END_TEST

/* Whether a line names the mapping: reads only, and says which line of a malformed table. */
START_TEST(test_crypttab_has) {
        _cleanup_free_ char *why = NULL;

        ck_assert_int_eq(ade_crypttab_has(tab, NAME, &why), 0); /* no file: an empty table */
        ade_test_write_file(tab, "# " NAME " in a comment\nhome UUID=1111 none luks\n", 0644);
        ck_assert_int_eq(ade_crypttab_has(tab, NAME, &why), 0);
        ck_assert_int_eq(ade_crypttab_set(tab, NAME, "UUID=" UUID, KEY, OPTS, NULL, &why), 1);
        ck_assert_int_eq(ade_crypttab_has(tab, NAME, &why), 1);
        ck_assert_int_eq(ade_crypttab_has(tab, "home", &why), 1);
        ck_assert_int_eq(backups(), 1);
        ade_test_write_file(tab, "onefield\n", 0644);
        ck_assert_int_eq(ade_crypttab_has(tab, NAME, &why), -EBADMSG);
        ck_assert_ptr_nonnull(why);
        ck_assert_ptr_nonnull(strstr(why, ":1:"));
}
END_TEST

/* Jobs of several volumes edit one crypttab at once (aded runs a job per volume, each in its own
 * thread): no edit may be lost to another's read, modify and write. */
#define EDITORS 4
#define ROUNDS 25

static void *editor(void *p) {
        long n = (long)p;
        char name[32];

        snprintf(name, sizeof(name), "vol%ld", n);
        for (int i = 0; i < ROUNDS; i++) {
                _cleanup_free_ char *why = NULL, *why2 = NULL;

                if (ade_crypttab_set(tab, name, "/dev/null", KEY, OPTS, NULL, &why) < 0 ||
                        ade_crypttab_has(tab, name, &why) != 1)
                        return (void *)1;
                if (i < ROUNDS - 1 &&
                        (ade_crypttab_remove(tab, name, NULL, &why2) < 0 || ade_crypttab_has(tab, name, &why2) != 0))
                        return (void *)1;
        }
        return NULL;
}

START_TEST(test_crypttab_concurrent_edits) {
        pthread_t t[EDITORS];
        void *lost;

        ade_test_write_file(tab, "home UUID=1111 none luks\n", 0644);
        for (long i = 0; i < EDITORS; i++)
                ck_assert_int_eq(pthread_create(&t[i], NULL, editor, (void *)i), 0);
        for (int i = 0; i < EDITORS; i++) {
                ck_assert_int_eq(pthread_join(t[i], &lost), 0);
                ck_assert_msg(!lost, "an editor's own line came and went under it: an edit was lost");
        }
        ck_assert_int_eq(ade_crypttab_has(tab, "home", NULL), 1);
        for (long i = 0; i < EDITORS; i++) {
                char name[32];

                snprintf(name, sizeof(name), "vol%ld", i);
                ck_assert_msg(ade_crypttab_has(tab, name, NULL) == 1, "%s's line was lost", name);
        }
}
END_TEST

/* Other lines stay byte for byte; the old file is kept; the mode is kept. */
START_TEST(test_crypttab_keeps_others) {
        static const char before[] = "# <target name>\t<source device>\t\t<key file>\t<options>\n"
                                     "swap\t/dev/sdb2\t/dev/urandom\tswap,cipher=aes-xts-plain64\n"
                                     "\n"
                                     "home   UUID=1111   none   luks\n";
        _cleanup_free_ char *backup = NULL, *why = NULL;
        struct stat st;

        ade_test_write_file(tab, before, 0600);
        ck_assert_int_eq(ade_crypttab_set(tab, NAME, "UUID=" UUID, KEY, OPTS, &backup, &why), 1);
        ck_assert_str_eq(read_file(tab), "# <target name>\t<source device>\t\t<key file>\t<options>\n"
                                         "swap\t/dev/sdb2\t/dev/urandom\tswap,cipher=aes-xts-plain64\n"
                                         "\n"
                                         "home   UUID=1111   none   luks\n" NAME " UUID=" UUID " " KEY " " OPTS "\n");
        ck_assert_int_eq(stat(tab, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert_ptr_nonnull(backup);
        ck_assert_str_eq(read_file(backup), before);

        /* A changed line of ours is replaced in place; a second backup does not overwrite the first. */
        ck_assert_int_eq(
                ade_crypttab_set(tab, NAME, "/dev/disk/azure/scsi1/lun0", KEY, OPTS ",header=/h", NULL, &why), 1);
        ck_assert_ptr_nonnull(
                strstr(read_file(tab), "\n" NAME " /dev/disk/azure/scsi1/lun0 " KEY " " OPTS ",header=/h\n"));
        ck_assert_ptr_null(strstr(read_file(tab), "UUID=" UUID));
        ck_assert_int_eq(backups(), 2);

        ck_assert_int_eq(ade_crypttab_remove(tab, NAME, NULL, &why), 1);
        ck_assert_str_eq(read_file(tab), before);
        ck_assert_int_eq(ade_crypttab_remove(tab, NAME, NULL, &why), 0);
        ck_assert_int_eq(ade_crypttab_remove(tab, "home-not-there", NULL, &why), 0);
}
END_TEST

START_TEST(test_crypttab_read) {
        AdeCrypttabEntry *e = NULL;
        char *why = NULL;
        size_t n = 99;

        /* No file: no lines. */
        ck_assert_int_eq(ade_crypttab_read(tab, &e, &n, &why), 0);
        ck_assert_uint_eq(n, 0);
        ade_crypttab_entries_free(e, n);
        ade_test_write_file(tab,
                "# comment\n\n"
                "d1 /dev/disk/azure/scsi1/lun0 /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail\n"
                "  swap\t/dev/sdb2\n"
                "d3 UUID=" UUID " none\n",
                0644);
        ck_assert_int_eq(ade_crypttab_read(tab, &e, &n, &why), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(e[0].name, "d1");
        ck_assert_str_eq(e[0].source, "/dev/disk/azure/scsi1/lun0");
        ck_assert_str_eq(e[0].key, "/mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0");
        ck_assert_str_eq(e[0].options, "luks,nofail");
        ck_assert_str_eq(
                e[0].line, "d1 /dev/disk/azure/scsi1/lun0 /mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0 luks,nofail");
        ck_assert_str_eq(e[1].name, "swap");
        ck_assert_str_eq(e[1].source, "/dev/sdb2");
        ck_assert_ptr_null(e[1].key);
        ck_assert_ptr_null(e[1].options);
        ck_assert_str_eq(e[1].line, "  swap\t/dev/sdb2");
        ck_assert_str_eq(e[2].key, "none");
        ck_assert_ptr_null(e[2].options);
        ade_crypttab_entries_free(e, n);
        /* Malformed: refused, as by the editors. */
        ade_test_write_file(tab, "d1\n", 0644);
        ck_assert_int_eq(ade_crypttab_read(tab, &e, &n, &why), -EBADMSG);
        ck_assert_ptr_nonnull(why);
        free(why);
}
END_TEST

START_TEST(test_crypttab_malformed) {
        static const struct {
                const char *text;
                const char *where;
        } rows[] = {
                {"# c\nlonely\n", ":2: 1 fields"},
                {"a b c d e\n", ":1: 5 fields"},
                {"ok UUID=1 none luks\nx y z w v u t s\n", ":2: 7 fields"},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                _cleanup_free_ char *why = NULL;

                ade_test_write_file(tab, rows[i].text, 0644);
                ck_assert_int_eq(ade_crypttab_set(tab, NAME, "UUID=" UUID, KEY, OPTS, NULL, &why), -EBADMSG);
                ck_assert_ptr_nonnull(why);
                ck_assert_msg(strstr(why, tab) && strstr(why, rows[i].where), "row %zu: %s", i, why);
                ck_assert_str_eq(read_file(tab), rows[i].text);
        }
        ck_assert_int_eq(backups(), 0);
}
END_TEST

START_TEST(test_table_with_nul) {
        _cleanup_free_ char *why = NULL;
        FILE *f = fopen(tab, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite("ok UUID=1\nb\0d UUID=2\n", 1, 21, f), 21);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(ade_crypttab_remove(tab, "ok", NULL, &why), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(why, ":2: the line holds a NUL byte"));
}
END_TEST

static const char fstab_before[] = "# /etc/fstab: static file system information.\n"
                                   "UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1\n"
                                   "UUID=" FSUUID " /data ext4 defaults,noatime 0 2\n"
                                   "/dev/sdc1\t/srv\txfs\tdefaults\t0\t0\n";

START_TEST(test_fstab_repoint_and_restore) {
        _cleanup_free_ char *backup = NULL, *why = NULL;

        ade_test_write_file(tab, fstab_before, 0644);
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/data", NAME, "ext4", NULL, &backup, &why), 1);
        ck_assert_str_eq(read_file(tab),
                "# /etc/fstab: static file system information.\n"
                "UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1\n"
                "# ade: " NAME " was: UUID=" FSUUID " /data ext4 defaults,noatime 0 2\n"
                "/dev/mapper/" NAME
                " /data ext4 defaults,noatime,_netdev,nofail,x-systemd.before=multi-user.target 0 2\n"
                "/dev/sdc1\t/srv\txfs\tdefaults\t0\t0\n");
        ck_assert_str_eq(read_file(backup), fstab_before);
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/data", NAME, "ext4", NULL, NULL, &why), 0);

        ck_assert_int_eq(ade_fstab_restore(tab, NAME, NULL, &why), 1);
        ck_assert_str_eq(read_file(tab), fstab_before);
        ck_assert_int_eq(ade_fstab_restore(tab, NAME, NULL, &why), 0);
        ck_assert_int_eq(backups(), 2);
}
END_TEST

/* ADE's fstab line on its mapping gets the boot flags, ADE's line kept; restore puts it back. */
START_TEST(test_fstab_adopt) {
        static const char ade_fstab[] = "UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1\n"
                                        "/dev/mapper/" NAME " /data3 ext4 defaults,nofail 0 0\n"
                                        "LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0\n";
        _cleanup_free_ char *backup = NULL, *why = NULL;

        ade_test_write_file(tab, ade_fstab, 0644);
        ck_assert_int_eq(ade_fstab_adopt(tab, NAME, &backup, &why), 1);
        ck_assert_str_eq(read_file(tab),
                "UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1\n"
                "# ade: " NAME " was: /dev/mapper/" NAME " /data3 ext4 defaults,nofail 0 0\n"
                "/dev/mapper/" NAME " /data3 ext4 defaults,nofail,_netdev,x-systemd.before=multi-user.target 0 0\n"
                "LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0\n");
        ck_assert_str_eq(read_file(backup), ade_fstab);
        /* Twice: nothing to do. Another name: no line of its. */
        ck_assert_int_eq(ade_fstab_adopt(tab, NAME, NULL, &why), 0);
        ck_assert_int_eq(ade_fstab_adopt(tab, "ade-other", NULL, &why), 0);
        ck_assert_int_eq(ade_fstab_adopt(tab, "a/b", NULL, &why), -EINVAL);
        ck_assert_int_eq(ade_fstab_restore(tab, NAME, NULL, &why), 1);
        ck_assert_str_eq(read_file(tab), ade_fstab);
}
END_TEST

/* ADE's BEK mount gets a device timeout; one it has already, or another mount point, is left. */
START_TEST(test_fstab_add_option) {
        static const char before[] = "UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1\n"
                                     "LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0\n"
                                     "/dev/sdc1 /mnt/azure_bek_disk2 auto defaults 0 0\n";
        _cleanup_free_ char *why = NULL;

        ade_test_write_file(tab, before, 0644);
        ck_assert_int_eq(
                ade_fstab_add_option(tab, "/mnt/azure_bek_disk", "x-systemd.device-timeout=10s", "bek", NULL, &why), 1);
        ck_assert_str_eq(read_file(tab),
                "UUID=aaaa-bbbb / ext4 errors=remount-ro 0 1\n"
                "# ade: bek was: LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail 0 0\n"
                "LABEL=BEK\\040VOLUME /mnt/azure_bek_disk auto defaults,discard,nofail,x-systemd.device-timeout=10s 0 "
                "0\n"
                "/dev/sdc1 /mnt/azure_bek_disk2 auto defaults 0 0\n");
        /* Any value of that option counts: nothing to do. */
        ck_assert_int_eq(
                ade_fstab_add_option(tab, "/mnt/azure_bek_disk", "x-systemd.device-timeout=90s", "bek", NULL, &why), 0);
        ck_assert_int_eq(ade_fstab_add_option(tab, "/nowhere", "ro", "x", NULL, &why), 0);
        ck_assert_int_eq(ade_fstab_add_option(tab, "/mnt/azure_bek_disk", "a,b", "x", NULL, &why), -EINVAL);
}
END_TEST

/* Mounted today, not in fstab: a line is added, and removed again by restore. */
START_TEST(test_fstab_added_line) {
        _cleanup_free_ char *why = NULL;

        ade_test_write_file(tab, fstab_before, 0644);
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/mnt/my data", NAME, "xfs", "rw,relatime", NULL, &why), 1);
        ck_assert_str_eq(read_file(tab) + strlen(fstab_before),
                "# ade: " NAME " added\n/dev/mapper/" NAME
                " /mnt/my\\040data xfs rw,relatime,_netdev,nofail,x-systemd.before=multi-user.target 0 0\n");
        /* Found again through its escaped mount point: nothing to do. */
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/mnt/my data", NAME, "xfs", "rw,relatime", NULL, &why), 0);
        ck_assert_int_eq(ade_fstab_restore(tab, NAME, NULL, &why), 1);
        ck_assert_str_eq(read_file(tab), fstab_before);
}
END_TEST

START_TEST(test_fstab_new_file) {
        _cleanup_free_ char *why = NULL;

        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/data", NAME, "ext4", NULL, NULL, &why), 1);
        ck_assert_str_eq(read_file(tab),
                "# ade: " NAME " added\n/dev/mapper/" NAME
                " /data ext4 defaults,_netdev,nofail,x-systemd.before=multi-user.target 0 2\n");
}
END_TEST

/* Another filesystem at the mount point: refused, nothing changed. */
START_TEST(test_fstab_conflict) {
        _cleanup_free_ char *why = NULL;

        ade_test_write_file(tab, fstab_before, 0644);
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/srv", NAME, "xfs", NULL, NULL, &why), -EEXIST);
        ck_assert_ptr_nonnull(strstr(why, ":4 mounts /dev/sdc1 on /srv"));
        ck_assert_str_eq(read_file(tab), fstab_before);
        ck_assert_int_eq(backups(), 0);
}
END_TEST

/* A person removed nofail from ade's line: put back; a person repointed ade's line: restore refuses. */
START_TEST(test_fstab_edited_by_a_person) {
        _cleanup_free_ char *why = NULL;

        ade_test_write_file(tab,
                "# ade: " NAME " was: LABEL=data /data ext4 defaults 0 2\n"
                "/dev/mapper/" NAME " /data ext4 defaults,_netdev 0 2\n",
                0644);
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/data", NAME, "ext4", NULL, NULL, &why), 1);
        ck_assert_ptr_nonnull(strstr(read_file(tab),
                "\n/dev/mapper/" NAME " /data ext4 defaults,_netdev,nofail,x-systemd.before=multi-user.target 0 2\n"));

        ade_test_write_file(tab,
                "# ade: " NAME " was: LABEL=data /data ext4 defaults 0 2\n"
                "/dev/sdz /data ext4 defaults 0 2\n",
                0644);
        ck_assert_int_eq(ade_fstab_restore(tab, NAME, NULL, &why), -ESTALE);
        ck_assert_ptr_nonnull(strstr(why, ":1: the line after ade's note"));
}
END_TEST

START_TEST(test_fstab_malformed) {
        _cleanup_free_ char *why = NULL;

        ade_test_write_file(tab, "UUID=1 / ext4 defaults 0 1 extra\n", 0644);
        ck_assert_int_eq(ade_fstab_repoint(tab, &fs, "/data", NAME, "ext4", NULL, NULL, &why), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(why, ":1: 7 fields where fstab wants 2 to 6"));
        ck_assert_str_eq(read_file(tab), "UUID=1 / ext4 defaults 0 1 extra\n");
}
END_TEST

static Suite *tab_suite(void) {
        Suite *s = suite_create("tab");
        TCase *tc = ade_test_case("crypttab");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_crypttab_new_file);
        tcase_add_test(tc, test_crypttab_keeps_others);
        tcase_add_test(tc, test_crypttab_has);
        tcase_add_test(tc, test_crypttab_concurrent_edits);
        tcase_add_test(tc, test_crypttab_malformed);
        tcase_add_test(tc, test_crypttab_read);
        tcase_add_test(tc, test_table_with_nul);
        suite_add_tcase(s, tc);

        tc = ade_test_case("fstab");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_fstab_repoint_and_restore);
        tcase_add_test(tc, test_fstab_adopt);
        tcase_add_test(tc, test_fstab_add_option);
        tcase_add_test(tc, test_fstab_added_line);
        tcase_add_test(tc, test_fstab_new_file);
        tcase_add_test(tc, test_fstab_conflict);
        tcase_add_test(tc, test_fstab_edited_by_a_person);
        tcase_add_test(tc, test_fstab_malformed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(tab_suite());
}
