/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ade-adopt.h"
#include "ade-test.h"

/* Adoption of ADE's data volumes: the pure judgement on a table of crypttab lines and device facts,
 * then the gatherer on crypttab files whose devices are not block devices (no root, no disk). */

#define SOCKET "/run/ade/key.socket"
#define BEK0 "/mnt/azure_bek_disk/LinuxPassPhraseFileName_1_0"
#define DEV "/dev/sdc"

/* ADE's line for a LUKS2 data disk, as ADE writes it, and the device found. */
static AdeAdoptFacts ade_luks2(void) {
        return (AdeAdoptFacts){
                .name = "f1c2e0a8-5b5e-4d8e-9f3a-0c5a2b8e6d11",
                .source = "/dev/disk/azure/scsi1/lun0",
                .key = BEK0,
                .options = "luks,nofail",
                .device = DEV,
                .luks_version = 2,
                .luks_uuid = "3f1e2d4c-0000-4000-8000-000000000001",
                .key_socket = SOCKET,
        };
}

/* A line of ADE's azure_crypt_mount: no crypttab line, ADE's extension opened it. */
static AdeAdoptFacts ade_legacy(void) {
        return (AdeAdoptFacts){
                .name = "8e4f3a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
                .source = "/dev/disk/azure/scsi1/lun3",
                .device = "/dev/sdf",
                .luks_version = 2,
                .luks_uuid = "3f1e2d4c-0000-4000-8000-000000000003",
                .key_socket = SOCKET,
                .mount_point = "/data/legacy",
                .fs_type = "ext4",
                .bek_file_name = "LinuxPassPhraseFileName",
        };
}

static AdeAdoptFacts ade_luks1(void) {
        AdeAdoptFacts f = ade_luks2();

        f.luks_version = 1;
        return f;
}

typedef struct Row {
        const char *what;
        AdeAdoptFacts facts;
        int result; /* of ade_adopt_evaluate() */
        AdeAdoptAction action;
        bool add_token, add_record, switch_line;
        const char *key_file_name; /* expected, NULL for none */
        const char *reason_has;    /* a part of the reason */
} Row;

static Row *rows(size_t *ret_n) {
        static Row t[48];
        size_t n = 0;
        AdeAdoptFacts f;

        t[n++] = (Row){"ADE's LUKS2 volume", ade_luks2(), 0, ADE_ADOPT_ACTION_ADOPT, true, true, true,
                "LinuxPassPhraseFileName_1_0", "add ade's token"};
        t[n++] = (Row){"ADE's LUKS1 volume: no token, a record", ade_luks1(), 0, ADE_ADOPT_ACTION_ADOPT, false, true,
                true, "LinuxPassPhraseFileName_1_0", "LUKS1 has no token"};

        f = ade_luks2();
        f.key = "/mnt/azure_bek_disk/LinuxPassPhraseFileName";
        t[n++] = (Row){"the single-volume key file name", f, 0, ADE_ADOPT_ACTION_ADOPT, true, true, true,
                "LinuxPassPhraseFileName", NULL};

        f = ade_luks2();
        f.key = "none";
        f.options = "luks,discard,keyscript=/usr/sbin/azure_crypt_key.sh";
        t[n++] = (Row){"ADE's keyscript", f, 0, ADE_ADOPT_ACTION_ADOPT, true, true, true, NULL, NULL};

        f = ade_luks2();
        f.key = NULL;
        f.options = "keyscript=azure_crypt_key.sh";
        t[n++] = (Row){"ADE's keyscript by bare name, no key field", f, 0, ADE_ADOPT_ACTION_ADOPT, true, true, true,
                NULL, NULL};

        f = ade_luks2();
        f.key = "none";
        f.options = "luks,keyscript=/usr/sbin/not_azure_crypt_key.sh";
        t[n++] = (Row){"another keyscript whose name ends alike", f, -ENOENT, 0, false, false, false, NULL, NULL};

        f = ade_luks2();
        f.key = "/etc/keys/data.key";
        t[n++] = (Row){"a key file of the operator's", f, -ENOENT, 0, false, false, false, NULL, NULL};

        f = ade_luks2();
        f.key = "/mnt/azure_bek_disk/other.key";
        t[n++] = (Row){"another file on the BEK volume", f, -ENOENT, 0, false, false, false, NULL, NULL};

        f = ade_luks2();
        f.key = "/mnt/azure_bek_disk/sub/LinuxPassPhraseFileName";
        t[n++] = (Row){"ADE's name below a subfolder", f, -ENOENT, 0, false, false, false, NULL, NULL};

        f = ade_luks2();
        f.key = "/mnt/azure_bek_disk_evil/LinuxPassPhraseFileName";
        t[n++] = (Row){"a look-alike mount point", f, -ENOENT, 0, false, false, false, NULL, NULL};

        f = ade_luks2();
        f.key = SOCKET;
        f.has_token = true;
        t[n++] = (Row){
                "ade's own volume (key socket, no adoption record)", f, -ENOENT, 0, false, false, false, NULL, NULL};

        f = ade_luks2();
        f.key = SOCKET;
        f.has_token = true;
        f.recorded = true;
        t[n++] = (Row){"a LUKS2 volume adopted before", f, 0, ADE_ADOPT_ACTION_ADOPTED, false, false, false, NULL,
                "adopted already"};

        f = ade_luks1();
        f.key = SOCKET;
        f.recorded = true;
        t[n++] = (Row){"a LUKS1 volume adopted before", f, 0, ADE_ADOPT_ACTION_ADOPTED, false, false, false, NULL,
                "adopted already"};

        f = ade_luks2();
        f.has_token = true;
        t[n++] = (Row){"resumed: token written, no record yet", f, 0, ADE_ADOPT_ACTION_ADOPT, false, true, true,
                "LinuxPassPhraseFileName_1_0", NULL};

        f = ade_luks2();
        f.has_token = true;
        f.recorded = true;
        t[n++] = (Row){"resumed: token and record, crypttab not switched", f, 0, ADE_ADOPT_ACTION_ADOPT, false, false,
                true, "LinuxPassPhraseFileName_1_0", NULL};

        f = ade_luks2();
        f.key = SOCKET;
        f.recorded = true;
        t[n++] = (Row){"adopted, but its token was removed since", f, 0, ADE_ADOPT_ACTION_ADOPT, true, false, false,
                NULL, NULL};

        f = ade_luks2();
        f.name = "osencrypt";
        f.source = "/dev/sda1";
        f.key = "/mnt/azure_bek_disk/LinuxPassPhraseFileName";
        t[n++] = (Row){"ADE's OS volume", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL, "OS volume"};

        f = ade_luks2();
        f.device = NULL;
        f.device_error = -ENOENT;
        f.luks_version = 0;
        t[n++] = (Row){"its disk is gone", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false,
                "LinuxPassPhraseFileName_1_0", "attach the disk"};

        f = ade_luks2();
        f.luks_version = -EIO;
        t[n++] = (Row){"its header cannot be read", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL,
                "cannot read the LUKS header"};

        f = ade_luks2();
        f.luks_version = 0;
        t[n++] = (Row){
                "no LUKS header", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL, "carries no LUKS header"};

        f = ade_luks2();
        f.luks_version = 3;
        t[n++] = (Row){"a LUKS version ade does not know", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL,
                "unknown LUKS version"};

        f = ade_luks2();
        f.reencrypting = true;
        t[n++] = (Row){"a reencryption in progress", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL,
                "reencryption in progress"};

        f = ade_luks2();
        f.header = "/boot/luks/data.header";
        f.options = "luks,nofail,header=/boot/luks/data.header";
        t[n++] = (Row){"a detached header", f, 0, ADE_ADOPT_ACTION_ADOPT, true, true, true, NULL, NULL};

        f = ade_luks2();
        f.marker = "/var/lib/azure_disk_encryption_config/azure_crypt_request_queue.ini";
        t[n++] = (Row){"ADE's encryption marker: an operation in progress", f, 0, ADE_ADOPT_ACTION_REFUSED, false,
                false, false, "LinuxPassPhraseFileName_1_0", "azure_crypt_request_queue.ini says an operation"};

        f = ade_luks1();
        f.marker = "/x/azure_crypt_request_queue.ini";
        f.marker_operation = "EnableEncryption";
        t[n++] = (Row){"the marker names its operation", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL,
                "(EnableEncryption)"};

        f = ade_luks2();
        f.marker = "/x/azure_crypt_request_queue.ini";
        t[n++] = (Row){"the marker: the way out is said", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false, false, NULL,
                "let ADE finish, or, once ADE's extension is removed from the VM, remove the marker"};

        f = ade_luks2();
        f.key = SOCKET;
        f.has_token = true;
        f.recorded = true;
        f.marker = "/x/azure_crypt_request_queue.ini";
        t[n++] = (Row){"the marker refuses even a volume adopted before", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false,
                false, NULL, "in progress"};

        f = ade_luks2();
        f.key = "/etc/keys/data.key";
        f.marker = "/x/azure_crypt_request_queue.ini";
        t[n++] = (Row){
                "the marker leaves a line of the operator's alone", f, -ENOENT, 0, false, false, false, NULL, NULL};

        t[n++] = (Row){"ADE's azure_crypt_mount line (LUKS2)", ade_legacy(), 0, ADE_ADOPT_ACTION_ADOPT, true, true,
                true, "LinuxPassPhraseFileName", "an fstab line mounting it on /data/legacy"};

        f = ade_legacy();
        f.luks_version = 1;
        f.bek_file_name = "MyBekFile";
        t[n++] = (Row){"ADE's azure_crypt_mount line (LUKS1), BekFileName set", f, 0, ADE_ADOPT_ACTION_ADOPT, false,
                true, true, "MyBekFile", "azure_crypt_mount"};

        f = ade_legacy();
        f.header = "/var/lib/azure_disk_encryption_config/azureluksheader8e4f";
        t[n++] = (Row){"ADE's azure_crypt_mount line with a detached header", f, 0, ADE_ADOPT_ACTION_ADOPT, true, true,
                true, "LinuxPassPhraseFileName", NULL};

        f = ade_legacy();
        f.device = NULL;
        f.device_error = -ENOENT;
        f.luks_version = 0;
        t[n++] = (Row){"ADE's azure_crypt_mount line, its disk gone", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false,
                false, "LinuxPassPhraseFileName", "attach the disk"};

        f = ade_legacy();
        f.marker = "/x/azure_crypt_request_queue.ini";
        t[n++] = (Row){"ADE's azure_crypt_mount line under the marker", f, 0, ADE_ADOPT_ACTION_REFUSED, false, false,
                false, "LinuxPassPhraseFileName", "in progress"};

        *ret_n = n;
        return t;
}

START_TEST(test_evaluate_table) {
        size_t n;
        Row *t = rows(&n);
        Row *row = &t[_i];
        AdeAdoptPlan p = {};
        int r;

        (void)n;
        r = ade_adopt_evaluate(&row->facts, &p);
        ck_assert_msg(r == row->result, "%s: %d, not %d", row->what, r, row->result);
        if (r < 0)
                return;
        ck_assert_msg(p.action == row->action, "%s: %s", row->what, ade_adopt_action_to_string(p.action));
        ck_assert_msg(p.add_token == row->add_token, "%s: add_token", row->what);
        ck_assert_msg(p.add_record == row->add_record, "%s: add_record", row->what);
        ck_assert_msg(p.switch_line == row->switch_line, "%s: switch_line", row->what);
        ck_assert_str_eq(p.name, row->facts.name);
        ck_assert_int_eq(p.luks_version, row->facts.luks_version);
        if (row->key_file_name)
                ck_assert_str_eq(p.key_file_name, row->key_file_name);
        else if (!row->facts.key || !strstr(row->facts.key, "LinuxPassPhraseFileName"))
                ck_assert_ptr_null(p.key_file_name);
        ck_assert_ptr_nonnull(p.reason);
        if (row->reason_has)
                ck_assert_msg(strstr(p.reason, row->reason_has), "%s: reason '%s' lacks '%s'", row->what, p.reason,
                        row->reason_has);
        if (row->facts.header)
                ck_assert_str_eq(p.header, row->facts.header);
        if (row->facts.mount_point) {
                ck_assert_str_eq(p.mount_point, row->facts.mount_point);
                ck_assert_str_eq(p.fs_type, row->facts.fs_type);
        } else
                ck_assert_ptr_null(p.mount_point);
        ade_adopt_plan_done(&p);
}
END_TEST

START_TEST(test_actions_named) {
        ck_assert_str_eq(ade_adopt_action_to_string(ADE_ADOPT_ACTION_ADOPT), "adopt");
        ck_assert_str_eq(ade_adopt_action_to_string(ADE_ADOPT_ACTION_ADOPTED), "adopted");
        ck_assert_str_eq(ade_adopt_action_to_string(ADE_ADOPT_ACTION_REFUSED), "refused");
        ck_assert_ptr_null(ade_adopt_action_to_string(_ADE_ADOPT_ACTION_MAX));
        ck_assert_int_eq(ade_adopt_evaluate(NULL, NULL), -EINVAL);
}
END_TEST

static char dir[] = "/tmp/ade-test-adopt-XXXXXX";
static char tab[sizeof(dir) + 16];
static char marker[sizeof(dir) + 48], config[sizeof(dir) + 48], mounts[sizeof(dir) + 48];

static void tables(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(tab, sizeof(tab), "%s/crypttab", dir);
        snprintf(marker, sizeof(marker), "%s/" ADE_ADOPT_MARKER, dir);
        snprintf(config, sizeof(config), "%s/" ADE_ADOPT_CONFIG_INI, dir);
        snprintf(mounts, sizeof(mounts), "%s/" ADE_ADOPT_CRYPT_MOUNT, dir);
}

static void tables_gone(void) {
        unlink(tab);
        unlink(marker);
        unlink(config);
        unlink(mounts);
        rmdir(dir);
        strcpy(dir, "/tmp/ade-test-adopt-XXXXXX");
}

static void put_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
}

static void put(const char *text) {
        put_file(tab, text);
}

static bool recorded(const char *name, void *userdata) {
        return streq(name, (const char *)userdata);
}

START_TEST(test_gather_lines) {
        AdeAdoptPlanList l = {};
        char *why = NULL, line[512];

        snprintf(line, sizeof(line),
                "# ADE's lines, and others\n"
                "ade-3f1e2d4c-0000-4000-8000-000000000009 UUID=3f1e2d4c-0000-4000-8000-000000000009 " SOCKET " luks\n"
                "home /dev/sdz9 /etc/home.key luks\n"
                "d1 /dev/disk/azure/scsi1/lun9 " BEK0 " luks,nofail\n"
                "d2 %s " BEK0 " luks,nofail\n"
                "d3 UUID=00000000-0000-4000-8000-00000000dead none luks,keyscript=/usr/sbin/azure_crypt_key.sh\n"
                "d4 /dev/sdz8 " SOCKET " luks\n",
                tab);
        put(line);
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, NULL, recorded, (void *)"d4", &l, &why), 0);
        ck_assert_ptr_null(why);
        ck_assert_int_eq((int)l.n, 4);
        ck_assert_str_eq(l.plans[0].name, "d1");
        ck_assert_int_eq(l.plans[0].action, ADE_ADOPT_ACTION_REFUSED);
        ck_assert(strstr(l.plans[0].reason, "/dev/disk/azure/scsi1/lun9"));
        ck_assert_str_eq(l.plans[0].key_file_name, "LinuxPassPhraseFileName_1_0");
        ck_assert_str_eq(l.plans[1].name, "d2");
        ck_assert_int_eq(l.plans[1].action, ADE_ADOPT_ACTION_REFUSED); /* a regular file: not a disk */
        ck_assert(strstr(l.plans[1].reason, strerror(ENOTBLK)));
        ck_assert_str_eq(l.plans[2].name, "d3");
        ck_assert_int_eq(l.plans[2].action, ADE_ADOPT_ACTION_REFUSED);
        ck_assert_ptr_null(l.plans[2].key_file_name);
        ck_assert_str_eq(l.plans[3].name, "d4"); /* recorded: an adopted line whose disk is gone */
        ck_assert_int_eq(l.plans[3].action, ADE_ADOPT_ACTION_REFUSED);
        ade_adopt_plan_list_done(&l);
}
END_TEST

START_TEST(test_gather_empty_and_malformed) {
        AdeAdoptPlanList l = {};
        char *why = NULL;

        /* No crypttab at all: nothing of ADE's. */
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, NULL, NULL, NULL, &l, &why), 0);
        ck_assert_int_eq((int)l.n, 0);
        put("d1 /dev/sdz " BEK0 " luks nofail extra\n");
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, NULL, NULL, NULL, &l, &why), -EBADMSG);
        ck_assert_ptr_nonnull(why);
        ck_assert(strstr(why, ":1:"));
        free(why);
}
END_TEST

/* ADE's folder: the marker refuses every volume of crypttab and of azure_crypt_mount; the lines of
 * azure_crypt_mount with no crypttab line are volumes, with ADE's BekFileName. */
START_TEST(test_gather_ade_dir) {
        AdeAdoptPlanList l = {};
        char *why = NULL;

        put("d1 /dev/sdz7 " BEK0 " luks,nofail\n"
            "migrated /dev/sdz6 " BEK0 " luks,nofail\n");
        put_file(mounts, "# ADE's\n"
                         "\n"
                         "legacy1 /dev/sdz5 None /data/one ext4 False 0\n"
                         "migrated /dev/sdz6 None /data/two ext4 False 0\n"
                         "legacy2 /dev/sdz4 /var/lib/azure_disk_encryption_config/azureluksheaderlegacy2 /data/three "
                         "xfs True 1\n");
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, dir, NULL, NULL, &l, &why), 0);
        ck_assert_ptr_null(why);
        ck_assert_int_eq((int)l.n, 4);
        ck_assert_str_eq(l.plans[0].name, "d1");
        ck_assert_ptr_null(l.plans[0].mount_point);
        ck_assert_str_eq(l.plans[1].name, "migrated");
        ck_assert_ptr_null(l.plans[1].mount_point); /* its crypttab line, not azure_crypt_mount's */
        ck_assert_str_eq(l.plans[2].name, "legacy1");
        ck_assert_str_eq(l.plans[2].source, "/dev/sdz5");
        ck_assert_str_eq(l.plans[2].mount_point, "/data/one");
        ck_assert_str_eq(l.plans[2].fs_type, "ext4");
        ck_assert_ptr_null(l.plans[2].header);
        ck_assert_ptr_null(l.plans[2].line);
        ck_assert_str_eq(l.plans[2].key_file_name, ADE_ADOPT_KEY_FILE_PREFIX); /* the default */
        ck_assert(strstr(l.plans[2].reason, "/dev/sdz5"));
        ck_assert_str_eq(l.plans[3].name, "legacy2");
        ck_assert_str_eq(l.plans[3].header, "/var/lib/azure_disk_encryption_config/azureluksheaderlegacy2");
        ck_assert_str_eq(l.plans[3].fs_type, "xfs");
        ade_adopt_plan_list_done(&l);

        /* ADE's BekFileName, as Python's ConfigParser writes it (lower-cased). */
        put_file(config, "[azure_crypt_config]\nvolumetype = Data\nbekfilename = LinuxPassPhraseFileName_0_0\n");
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, dir, NULL, NULL, &l, &why), 0);
        ck_assert_int_eq((int)l.n, 4);
        ck_assert_str_eq(l.plans[2].key_file_name, "LinuxPassPhraseFileName_0_0");
        ck_assert_str_eq(l.plans[0].key_file_name, "LinuxPassPhraseFileName_1_0"); /* crypttab's names its own */
        ade_adopt_plan_list_done(&l);

        /* The marker: every volume refused, naming it and its operation. */
        put_file(marker, "[azure_crypt_request_queue]\nencryptionoperation = EnableEncryption\nvolumetype = Data\n");
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, dir, NULL, NULL, &l, &why), 0);
        ck_assert_int_eq((int)l.n, 4);
        for (size_t i = 0; i < l.n; i++) {
                ck_assert_int_eq(l.plans[i].action, ADE_ADOPT_ACTION_REFUSED);
                ck_assert(strstr(l.plans[i].reason, marker));
                ck_assert(strstr(l.plans[i].reason, "(EnableEncryption)"));
        }
        ade_adopt_plan_list_done(&l);

        /* An empty marker is a marker still. */
        put_file(marker, "");
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, dir, NULL, NULL, &l, &why), 0);
        ck_assert_int_eq(l.plans[2].action, ADE_ADOPT_ACTION_REFUSED);
        ck_assert(strstr(l.plans[2].reason, "in progress:"));
        ade_adopt_plan_list_done(&l);
        unlink(marker);

        /* So are ADE's decryption marker and the item whose data ADE is copying. */
        for (size_t k = 0; k < 2; k++) {
                char other[sizeof(dir) + 48];

                snprintf(
                        other, sizeof(other), "%s/%s", dir, k == 0 ? ADE_ADOPT_DECRYPT_MARKER : ADE_ADOPT_ONGOING_ITEM);
                put_file(other, "[x]\nphase = copy\n");
                ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, dir, NULL, NULL, &l, &why), 0);
                for (size_t i = 0; i < l.n; i++) {
                        ck_assert_int_eq(l.plans[i].action, ADE_ADOPT_ACTION_REFUSED);
                        ck_assert(strstr(l.plans[i].reason, other));
                }
                ade_adopt_plan_list_done(&l);
                unlink(other);
        }
        put_file(marker, "");

        /* A malformed azure_crypt_mount refuses the whole run, naming the file and line. */
        put_file(mounts, "legacy1 /dev/sdz5 None /data/one ext4 False 0\nlegacy2 /dev/sdz4 None /data/two\n");
        ck_assert_int_eq(ade_adopt_gather(tab, SOCKET, dir, NULL, NULL, &l, &why), -EBADMSG);
        ck_assert_ptr_nonnull(why);
        ck_assert_msg(strstr(why, mounts) && strstr(why, ":2: "), "%s", why);
        free(why);
}
END_TEST

static const struct {
        const char *text;
        const char *why; /* part of the refusal */
} bad_mounts[] = {
        {"m /dev/sdc None /data ext4 False\n", ":1: fewer than 7 fields"},
        {"# c\nm /dev/sdc None /data ext4 False 0 extra\n", ":2: more than 7 fields"},
        {"m/x /dev/sdc None /data ext4 False 0\n", ":1: the mapper name"},
        {"m sdc None /data ext4 False 0\n", ":1: the device"},
        {"m /dev/sdc hdr /data ext4 False 0\n", ":1: the header"},
        {"m /dev/sdc None data ext4 False 0\n", ":1: the mount point"},
        {"ok /dev/sdc None /data ext4 False 0\n\n\n.. /dev/sdd None /d ext4 False 0\n", ":4: the mapper name"},
};

START_TEST(test_crypt_mount_malformed) {
        AdeAdoptCryptMount *m = NULL;
        size_t n = 0;
        char *why = NULL;

        put_file(mounts, bad_mounts[_i].text);
        ck_assert_int_eq(ade_adopt_crypt_mount_read(mounts, &m, &n, &why), -EBADMSG);
        ck_assert_ptr_nonnull(why);
        ck_assert_msg(startswith(why, mounts) && strstr(why, bad_mounts[_i].why), "%s", why);
        ck_assert_ptr_null(m);
        free(why);
}
END_TEST

START_TEST(test_crypt_mount_read) {
        AdeAdoptCryptMount *m = NULL;
        size_t n = 7;
        char *why = NULL;

        /* None there: no lines. */
        ck_assert_int_eq(ade_adopt_crypt_mount_read(mounts, &m, &n, &why), 0);
        ck_assert_int_eq((int)n, 0);
        put_file(mounts, "  m1\t/dev/disk/azure/scsi1/lun0  None /data ext4 False 0  \n"
                         "m2 /dev/sdd /hdr/m2 /mnt/x xfs True 2");
        ck_assert_int_eq(ade_adopt_crypt_mount_read(mounts, &m, &n, &why), 0);
        ck_assert_int_eq((int)n, 2);
        ck_assert_str_eq(m[0].mapper, "m1");
        ck_assert_str_eq(m[0].device, "/dev/disk/azure/scsi1/lun0");
        ck_assert_ptr_null(m[0].header);
        ck_assert_str_eq(m[0].mount_point, "/data");
        ck_assert_str_eq(m[0].fs_type, "ext4");
        ck_assert_str_eq(m[1].header, "/hdr/m2");
        ck_assert_str_eq(m[1].fs_type, "xfs");
        ade_adopt_crypt_mounts_free(m, n);
}
END_TEST

START_TEST(test_ini_get) {
        char *v = NULL;

        ck_assert_int_eq(ade_adopt_ini_get(config, "BekFileName", &v), 0); /* no file */
        put_file(config, "; ADE's\n[azure_crypt_config]\nsecretseqnum = 3\n  BekFileName : Bek_1 \n");
        ck_assert_int_eq(ade_adopt_ini_get(config, "bekfilename", &v), 1);
        ck_assert_str_eq(v, "Bek_1");
        free(v);
        v = NULL;
        ck_assert_int_eq(ade_adopt_ini_get(config, "VolumeType", &v), 0);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(ade_adopt_ini_get(config, "SecretSeqNum", &v), 1);
        ck_assert_str_eq(v, "3");
        free(v);
}
END_TEST

static Suite *adopt_suite(void) {
        Suite *s = suite_create("adopt");
        TCase *tc = ade_test_case("evaluate");
        size_t n;

        (void)rows(&n);
        tcase_add_loop_test(tc, test_evaluate_table, 0, (int)n);
        tcase_add_test(tc, test_actions_named);
        suite_add_tcase(s, tc);
        tc = ade_test_case("gather");
        tcase_add_checked_fixture(tc, tables, tables_gone);
        tcase_add_test(tc, test_gather_lines);
        tcase_add_test(tc, test_gather_empty_and_malformed);
        tcase_add_test(tc, test_gather_ade_dir);
        tcase_add_loop_test(tc, test_crypt_mount_malformed, 0, (int)ELEMENTSOF(bad_mounts));
        tcase_add_test(tc, test_crypt_mount_read);
        tcase_add_test(tc, test_ini_get);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(adopt_suite());
}
