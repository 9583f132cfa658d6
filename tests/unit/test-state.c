/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "ade-state.h"
#include "ade-test.h"

static char *make_dir(void) {
        char *d = strdup("/tmp/ade-test-state-XXXXXX");
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static void remove_dir(char *d) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
        ck_assert_int_eq(system(cmd), 0);
        free(d);
}

static void write_state(const char *dir, const char *text) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/" ADE_STATE_FILE_NAME, dir);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_missing_file_is_empty_state) {
        char *dir = make_dir();
        AdeState *s = NULL;

        ck_assert_int_eq(ade_state_load(dir, &s, NULL), 0);
        ck_assert_uint_eq(s->n_volumes, 0);
        ade_state_free(s);
        remove_dir(dir);
}
END_TEST

START_TEST(test_round_trip) {
        char *dir = make_dir();
        AdeState *s = NULL, *back = NULL;
        AdeStateVolume *v;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/disk/azure/scsi1/lun0", "/dev/loop7", ADE_JOB_ENCRYPT, &v), 0);
        ck_assert_int_eq(ade_strdup_to(&v->secret_url, "https://localhost:8443/secrets/abc/0123"), 0);
        ck_assert_int_eq(ade_strdup_to(&v->header_path, "/var/lib/ade/headers/x.hdr"), 0);
        ck_assert_int_eq(ade_strdup_to(&v->volume_type, "Data"), 0);
        v->detached = true;
        v->skip_snapshot_check = true;
        ade_state_volume_set_step(v, ADE_STEP_ESCROW);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop8", "/dev/loop8", ADE_JOB_DECRYPT, NULL), 0);
        ck_assert_int_eq(ade_state_save(s), 0);

        ck_assert_int_eq(ade_state_load(dir, &back, NULL), 0);
        ck_assert_uint_eq(back->n_volumes, 2);
        ck_assert_int_eq(back->loaded_version, ADE_STATE_VERSION);
        /* The key is the stable id, never the /dev name. */
        ck_assert_ptr_null(ade_state_find(back, "/dev/loop7"));
        v = ade_state_find(back, "/dev/disk/azure/scsi1/lun0");
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v->device, "/dev/loop7");
        ck_assert_int_eq(v->kind, ADE_JOB_ENCRYPT);
        ck_assert_int_eq(v->step, ADE_STEP_ESCROW);
        ck_assert_str_eq(v->secret_url, "https://localhost:8443/secrets/abc/0123");
        ck_assert_str_eq(v->device_id, "/dev/disk/azure/scsi1/lun0");
        ck_assert_str_eq(v->header_path, "/var/lib/ade/headers/x.hdr");
        ck_assert_str_eq(v->volume_type, "Data");
        ck_assert(v->detached);
        ck_assert(v->skip_snapshot_check);
        ck_assert_ptr_null(v->kek_url);
        ck_assert_int_eq(ade_state_find(back, "/dev/loop8")->kind, ADE_JOB_DECRYPT);
        ade_state_free(s);
        ade_state_free(back);
        remove_dir(dir);
}
END_TEST

START_TEST(test_mount_point_round_trip) {
        char *dir = make_dir();
        AdeState *s = NULL, *back = NULL;
        AdeStateVolume *v;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop7", "/dev/loop7", ADE_JOB_ENCRYPT, &v), 0);
        ck_assert_int_eq(ade_strdup_to(&v->mount_point, "/srv/data dir"), 0);
        ck_assert_int_eq(ade_strdup_to(&v->mount_options, "rw,noatime,errors=remount-ro"), 0);
        ck_assert_int_eq(ade_strdup_to(&v->adopted_name, "f1c2e0a8-5b5e-4d8e-9f3a-0c5a2b8e6d11"), 0);
        v->rotated_usec = 1765132279123456ULL;
        v->backup_pending = true;
        v->backup_pending_usec = 1765132279654321ULL;
        v->backup_generation = 3;
        ck_assert_int_eq(ade_state_add(s, "/dev/loop8", "/dev/loop8", ADE_JOB_ENCRYPT, NULL), 0);
        ck_assert_int_eq(ade_state_save(s), 0);

        ck_assert_int_eq(ade_state_load(dir, &back, NULL), 0);
        v = ade_state_find(back, "/dev/loop7");
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(v->mount_point, "/srv/data dir");
        ck_assert_str_eq(v->mount_options, "rw,noatime,errors=remount-ro");
        /* Adopted from ADE: the mapping name the key socket is asked for. */
        ck_assert_str_eq(v->adopted_name, "f1c2e0a8-5b5e-4d8e-9f3a-0c5a2b8e6d11");
        /* The key's age too (scheduled rotation), and its copy. */
        ck_assert_uint_eq(v->rotated_usec, 1765132279123456ULL);
        /* The header backup's bookkeeping, which a retry after a restart depends on. */
        ck_assert(v->backup_pending);
        ck_assert_uint_eq(v->backup_pending_usec, 1765132279654321ULL);
        ck_assert_uint_eq(v->backup_generation, 3);
        {
                AdeStateVolume *c = NULL;
                ck_assert_int_eq(ade_state_volume_copy(v, &c), 0);
                ck_assert_uint_eq(c->rotated_usec, 1765132279123456ULL);
                ck_assert_str_eq(c->adopted_name, "f1c2e0a8-5b5e-4d8e-9f3a-0c5a2b8e6d11");
                ck_assert(c->backup_pending);
                ck_assert_uint_eq(c->backup_pending_usec, 1765132279654321ULL);
                ck_assert_uint_eq(c->backup_generation, 3);
                ade_state_volume_free(c);
        }
        /* A volume that was not mounted has no mount point: Unlock must not invent one. */
        v = ade_state_find(back, "/dev/loop8");
        ck_assert_ptr_null(v->mount_point);
        ck_assert_ptr_null(v->mount_options);
        ck_assert_ptr_null(v->adopted_name);
        ck_assert_uint_eq(v->rotated_usec, 0);
        ck_assert(!v->backup_pending);
        ck_assert_uint_eq(v->backup_pending_usec, 0);
        ck_assert_uint_eq(v->backup_generation, 0);
        ade_state_free(s);
        ade_state_free(back);
        remove_dir(dir);
}
END_TEST

/* A state file written by an aded that knew no mount points still loads, and says none. */
START_TEST(test_old_record_without_mount_point_loads) {
        char *dir = make_dir();
        AdeState *s = NULL;
        AdeStateVolume *v;
        char *err = NULL;

        write_state(dir, "{\"version\": 1, \"volumes\": [{\"device\": \"/dev/loop3\", \"job\": \"encrypt\", "
                         "\"step\": \"done\", \"uuid\": \"0b4e1a5c-1111-4222-8333-944455556666\", "
                         "\"detached\": false, \"skipSnapshotCheck\": false, \"updatedUsec\": 1700000000000000}]}");
        ck_assert_int_eq(ade_state_load(dir, &s, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_uint_eq(s->n_volumes, 1);
        v = ade_state_find(s, "/dev/loop3");
        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(v->step, ADE_STEP_DONE);
        ck_assert_str_eq(v->uuid, "0b4e1a5c-1111-4222-8333-944455556666");
        ck_assert_ptr_null(v->mount_point);
        ck_assert_ptr_null(v->mount_options);
        ade_state_free(s);
        remove_dir(dir);
}
END_TEST

START_TEST(test_mount_point_wrong_type_refused) {
        char *dir = make_dir();
        AdeState *s = NULL;
        char *err = NULL;

        write_state(dir, "{\"version\": 1, \"volumes\": [{\"device\":\"/dev/x\",\"job\":\"encrypt\","
                         "\"step\":\"done\",\"mountPoint\": [\"/data\"]}]}");
        ck_assert_int_eq(ade_state_load(dir, &s, &err), -EBADMSG);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, "record 0") != NULL, "message does not name the record: %s", err);
        free(err);
        remove_dir(dir);
}
END_TEST

START_TEST(test_file_mode_is_0600) {
        char *dir = make_dir(), path[512];
        AdeState *s = NULL;
        struct stat st;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop1", "/dev/loop1", ADE_JOB_ENCRYPT, NULL), 0);
        ck_assert_int_eq(ade_state_save(s), 0);
        snprintf(path, sizeof(path), "%s/" ADE_STATE_FILE_NAME, dir);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ade_state_free(s);
        remove_dir(dir);
}
END_TEST

START_TEST(test_atomic_replace_leaves_no_temporary) {
        char *dir = make_dir(), path[512];
        AdeState *s = NULL, *back = NULL;
        AdeStateVolume *v;
        struct stat before, after;
        int n = 0;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop1", "/dev/loop1", ADE_JOB_ENCRYPT, &v), 0);
        ck_assert_int_eq(ade_state_save(s), 0);
        snprintf(path, sizeof(path), "%s/" ADE_STATE_FILE_NAME, dir);
        ck_assert_int_eq(stat(path, &before), 0);

        ade_state_volume_set_step(v, ADE_STEP_HEADER);
        ck_assert_int_eq(ade_state_save(s), 0);
        ck_assert_int_eq(stat(path, &after), 0);
        /* A rename puts a new inode in place; an in-place rewrite would keep the old one. */
        ck_assert_uint_ne(before.st_ino, after.st_ino);

        ck_assert_int_eq(ade_state_load(dir, &back, NULL), 0);
        ck_assert_int_eq(ade_state_find(back, "/dev/loop1")->step, ADE_STEP_HEADER);

        /* Only state.json is left in the folder. */
        FILE *ls;
        char cmd[600], line[256];
        snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
        ls = popen(cmd, "r");
        while (fgets(line, sizeof(line), ls))
                n++;
        pclose(ls);
        ck_assert_int_eq(n, 1);
        ade_state_free(s);
        ade_state_free(back);
        remove_dir(dir);
}
END_TEST

START_TEST(test_remove_record) {
        char *dir = make_dir();
        AdeState *s = NULL;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop1", "/dev/loop1", ADE_JOB_ENCRYPT, NULL), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop2", "/dev/loop2", ADE_JOB_ENCRYPT, NULL), 0);
        ck_assert_int_eq(ade_state_remove(s, "/dev/loop1"), 0);
        ck_assert_ptr_null(ade_state_find(s, "/dev/loop1"));
        ck_assert_ptr_nonnull(ade_state_find(s, "/dev/loop2"));
        ck_assert_int_eq(ade_state_remove(s, "/dev/loop1"), -ENOENT);
        ade_state_free(s);
        remove_dir(dir);
}
END_TEST

START_TEST(test_add_replaces_existing_record) {
        AdeState *s = NULL;
        AdeStateVolume *v;

        ck_assert_int_eq(ade_state_new("/nonexistent", &s), 0);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop1", "/dev/loop1", ADE_JOB_ENCRYPT, &v), 0);
        ade_state_volume_set_step(v, ADE_STEP_DONE);
        ck_assert_int_eq(ade_state_add(s, "/dev/loop1", "/dev/loop1", ADE_JOB_DECRYPT, &v), 0);
        ck_assert_uint_eq(s->n_volumes, 1);
        ck_assert_int_eq(v->step, ADE_STEP_NONE);
        ade_state_free(s);
}
END_TEST

static void assert_refused(const char *text, int expected, const char *needle) {
        char *dir = make_dir();
        AdeState *s = NULL;
        char *err = NULL;

        write_state(dir, text);
        ck_assert_int_eq(ade_state_load(dir, &s, &err), expected);
        ck_assert_ptr_null(s);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, dir) != NULL, "message does not name the file: %s", err);
        ck_assert_msg(strstr(err, needle) != NULL, "message lacks '%s': %s", needle, err);
        free(err);
        remove_dir(dir);
}

START_TEST(test_corrupt_file_refused) {
        assert_refused("{\"version\": 1, \"volumes\": [", -EBADMSG, "corrupt");
}
END_TEST

START_TEST(test_not_an_object_refused) {
        assert_refused("[1,2,3]", -EBADMSG, "corrupt");
}
END_TEST

START_TEST(test_unknown_version_refused) {
        assert_refused("{\"version\": 99, \"volumes\": []}", -EPROTONOSUPPORT, "version 99");
}
END_TEST

START_TEST(test_missing_version_refused) {
        assert_refused("{\"volumes\": []}", -EBADMSG, "version");
}
END_TEST

START_TEST(test_unknown_step_refused) {
        assert_refused(
                "{\"version\": 1, \"volumes\": [{\"device\":\"/dev/x\",\"job\":\"encrypt\",\"step\":\"teleport\"}]}",
                -EBADMSG, "record 0");
}
END_TEST

START_TEST(test_record_without_device_refused) {
        assert_refused(
                "{\"version\": 1, \"volumes\": [{\"job\":\"encrypt\",\"step\":\"done\"}]}", -EBADMSG, "record 0");
}
END_TEST

START_TEST(test_wrong_field_type_refused) {
        assert_refused("{\"version\": 1, \"volumes\": [{\"device\":\"/dev/x\",\"job\":\"encrypt\",\"step\":\"done\","
                       "\"secretUrl\": 5}]}",
                -EBADMSG, "record 0");
}
END_TEST

START_TEST(test_backup_fields_wrong_type_refused) {
        assert_refused("{\"version\": 1, \"volumes\": [{\"device\":\"/dev/x\",\"job\":\"encrypt\",\"step\":\"done\","
                       "\"backupPending\": \"yes\"}]}",
                -EBADMSG, "record 0");
        assert_refused("{\"version\": 1, \"volumes\": [{\"device\":\"/dev/x\",\"job\":\"encrypt\",\"step\":\"done\","
                       "\"backupGeneration\": -1}]}",
                -EBADMSG, "record 0");
}
END_TEST

/* Version 1 keyed records by /dev name: they load, keyed by their deviceId (or, without one, their
 * device), the version read is reported, and the old file can be kept beside the new one. */
START_TEST(test_version_1_migrates) {
        char *dir = make_dir(), path[600];
        AdeState *s = NULL, *back = NULL;
        struct stat st;
        char *err = NULL;

        write_state(dir, "{\"version\": 1, \"volumes\": [{\"device\": \"/dev/sdc\", \"deviceId\": "
                         "\"/dev/disk/azure/scsi1/lun0\", \"job\": \"encrypt\", \"step\": \"escrow\"}, "
                         "{\"device\": \"/dev/loop3\", \"job\": \"decrypt\", \"step\": \"header\"}]}");
        ck_assert_int_eq(ade_state_load(dir, &s, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(s->loaded_version, 1);
        ck_assert_ptr_nonnull(ade_state_find(s, "/dev/disk/azure/scsi1/lun0"));
        ck_assert_str_eq(ade_state_find(s, "/dev/disk/azure/scsi1/lun0")->device, "/dev/sdc");
        ck_assert_str_eq(ade_state_find(s, "/dev/loop3")->device_id, "/dev/loop3");

        ck_assert_int_eq(ade_state_keep_old(s), 0);
        ck_assert_int_eq(ade_state_save(s), 0);
        snprintf(path, sizeof(path), "%s/" ADE_STATE_FILE_NAME ".v1", dir);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(ade_state_load(dir, &back, NULL), 0);
        ck_assert_int_eq(back->loaded_version, ADE_STATE_VERSION);
        ck_assert_uint_eq(back->n_volumes, 2);
        ade_state_free(s);
        ade_state_free(back);
        remove_dir(dir);
}
END_TEST

START_TEST(test_version_2_record_without_device_id_refused) {
        assert_refused("{\"version\": 2, \"volumes\": [{\"device\":\"/dev/x\",\"job\":\"encrypt\",\"step\":\"done\"}]}",
                -EBADMSG, "record 0");
}
END_TEST

START_TEST(test_two_records_of_one_volume_refused) {
        assert_refused("{\"version\": 2, \"volumes\": [{\"device\":\"/dev/x\",\"deviceId\":\"/dev/disk/by-id/a\","
                       "\"job\":\"encrypt\",\"step\":\"done\"},{\"device\":\"/dev/y\",\"deviceId\":"
                       "\"/dev/disk/by-id/a\",\"job\":\"encrypt\",\"step\":\"done\"}]}",
                -EBADMSG, "same device");
}
END_TEST

START_TEST(test_newer_version_refused) {
        assert_refused("{\"version\": 3, \"volumes\": []}", -EPROTONOSUPPORT, "version 3");
}
END_TEST

START_TEST(test_volume_copy_owns_every_field) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *c = NULL;
        AdeStateVolume v = {
                .device = (char *)"/dev/sdc",
                .device_id = (char *)"/dev/disk/azure/scsi1/lun0",
                .volume_type = (char *)"Data",
                .kind = ADE_JOB_DECRYPT,
                .step = ADE_STEP_HEADER,
                .keyvault_url = (char *)"https://v.vault.azure.net/",
                .keyvault_resource_id = (char *)"/subscriptions/s/v",
                .kek_url = (char *)"https://v.vault.azure.net/keys/k/1",
                .kek_vault_resource_id = (char *)"/subscriptions/s/k",
                .kek_algorithm = (char *)"RSA-OAEP-256",
                .secret_url = (char *)"https://v.vault.azure.net/secrets/s/1",
                .uuid = (char *)"0f7b2c57-2a4c-4a8e-9e2f-5a0c8a3f2b1d",
                .detached = true,
                .header_path = (char *)"/var/lib/ade/headers/x.header",
                .skip_snapshot_check = true,
                .mount_point = (char *)"/srv/data",
                .mount_options = (char *)"noatime",
                .error = (char *)"Key Vault said no",
                .updated_usec = 1234,
        };
        char *const *fields[] = {&v.device, &v.device_id, &v.volume_type, &v.keyvault_url, &v.keyvault_resource_id,
                &v.kek_url, &v.kek_vault_resource_id, &v.kek_algorithm, &v.secret_url, &v.uuid, &v.header_path,
                &v.mount_point, &v.mount_options, &v.error};

        ck_assert_int_eq(ade_state_volume_copy(&v, &c), 0);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                /* the same field in the copy */
                char *const *copied = (char *const *)((const char *)c + ((const char *)fields[i] - (const char *)&v));
                ck_assert_str_eq(*copied, *fields[i]);
                ck_assert_ptr_ne(*copied, *fields[i]);
        }
        ck_assert_int_eq(c->kind, ADE_JOB_DECRYPT);
        ck_assert_int_eq(c->step, ADE_STEP_HEADER);
        ck_assert(c->detached);
        ck_assert(c->skip_snapshot_check);
        ck_assert_uint_eq(c->updated_usec, 1234);
}
END_TEST

START_TEST(test_volume_copy_keeps_unset_fields_unset) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *c = NULL;
        AdeStateVolume v = {.device = (char *)"/dev/sdd", .kind = ADE_JOB_ENCRYPT};

        ck_assert_int_eq(ade_state_volume_copy(&v, &c), 0);
        ck_assert_str_eq(c->device, "/dev/sdd");
        ck_assert_ptr_null(c->secret_url);
        ck_assert_ptr_null(c->error);
        ck_assert_ptr_null(c->mount_point);
        ck_assert(!c->detached);
}
END_TEST

START_TEST(test_step_names_round_trip) {
        for (int i = 0; i < _ADE_JOB_STEP_MAX; i++)
                ck_assert_int_eq(ade_job_step_from_string(ade_job_step_to_string(i)), i);
        ck_assert_int_eq(ade_job_step_from_string("Done"), -EINVAL);
        ck_assert_ptr_null(ade_job_step_to_string(_ADE_JOB_STEP_MAX));
}
END_TEST

START_TEST(test_enrollment_round_trip) {
        char *dir = make_dir();
        AdeState *s = NULL, *back = NULL;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_ptr_null(s->enrollment);
        ck_assert_int_eq(
                ade_state_set_enrollment(s, &(const AdeStateEnrollment){.volume_type = (char *)"Data",
                                                    .keyvault_url = (char *)"https://contoso.vault.azure.net/",
                                                    .kek_url = (char *)"https://contoso.vault.azure.net/keys/kek/1",
                                                    .kek_algorithm = (char *)"RSA-OAEP-256",
                                                    .skip_snapshot_check = true}),
                0);
        ck_assert_uint_gt(s->enrollment->updated_usec, 0);
        ck_assert_int_eq(ade_state_save(s), 0);

        ck_assert_int_eq(ade_state_load(dir, &back, NULL), 0);
        ck_assert_ptr_nonnull(back->enrollment);
        ck_assert_str_eq(back->enrollment->volume_type, "Data");
        ck_assert_str_eq(back->enrollment->keyvault_url, "https://contoso.vault.azure.net/");
        ck_assert_str_eq(back->enrollment->kek_url, "https://contoso.vault.azure.net/keys/kek/1");
        ck_assert_str_eq(back->enrollment->kek_algorithm, "RSA-OAEP-256");
        ck_assert_ptr_null(back->enrollment->keyvault_resource_id);
        ck_assert(back->enrollment->skip_snapshot_check);
        ck_assert(!back->enrollment->format_all);
        ck_assert_uint_eq(back->enrollment->updated_usec, s->enrollment->updated_usec);
        ade_state_free(s);
        ade_state_free(back);
        remove_dir(dir);
}
END_TEST

START_TEST(test_enrollment_replaced_and_required_type) {
        char *dir = make_dir();
        AdeState *s = NULL;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        ck_assert_int_eq(ade_state_set_enrollment(s, &(const AdeStateEnrollment){.volume_type = (char *)"All"}), 0);
        ck_assert_int_eq(ade_state_set_enrollment(s, &(const AdeStateEnrollment){.kek_url = (char *)"x"}), -EINVAL);
        ck_assert_str_eq(s->enrollment->volume_type, "All");
        ck_assert_int_eq(ade_state_set_enrollment(
                                 s, &(const AdeStateEnrollment){.volume_type = (char *)"Data", .format_all = true}),
                0);
        ck_assert_str_eq(s->enrollment->volume_type, "Data");
        ck_assert(s->enrollment->format_all);
        ade_state_free(s);
        remove_dir(dir);
}
END_TEST

START_TEST(test_enrollment_exclusions) {
        char *dir = make_dir();
        AdeState *s = NULL, *back = NULL;

        ck_assert_int_eq(ade_state_new(dir, &s), 0);
        /* Not enrolled: nothing to exclude from, nothing to drop. */
        ck_assert_int_eq(ade_state_exclude(s, "/dev/disk/azure/scsi1/lun0"), 0);
        ck_assert_int_eq(ade_state_unenroll(s), 0);
        ck_assert_int_eq(ade_state_set_enrollment(s, &(const AdeStateEnrollment){.volume_type = (char *)"Data"}), 0);
        ck_assert_int_eq(ade_state_exclude(s, "/dev/disk/azure/scsi1/lun0"), 1);
        ck_assert_int_eq(ade_state_exclude(s, "/dev/disk/azure/scsi1/lun0"), 0);
        ck_assert_int_eq(ade_state_exclude(s, "/dev/disk/azure/scsi1/lun1"), 1);
        ck_assert_int_eq(ade_state_save(s), 0);
        ck_assert_int_eq(ade_state_load(dir, &back, NULL), 0);
        ck_assert_uint_eq(strv_length(back->enrollment->excluded), 2);
        ck_assert(strv_contains(back->enrollment->excluded, "/dev/disk/azure/scsi1/lun1"));
        /* A new Enable starts over. */
        ck_assert_int_eq(ade_state_set_enrollment(s, back->enrollment), 0);
        ck_assert_ptr_null(s->enrollment->excluded);
        ck_assert_int_eq(ade_state_unenroll(s), 1);
        ck_assert_ptr_null(s->enrollment);
        ade_state_free(s);
        ade_state_free(back);
        remove_dir(dir);
}
END_TEST

START_TEST(test_enrollment_malformed_refused) {
        assert_refused(
                "{\"version\": 2, \"enrollment\": {\"kekUrl\": \"x\"}, \"volumes\": []}", -EBADMSG, "enrollment");
        assert_refused("{\"version\": 2, \"enrollment\": [], \"volumes\": []}", -EBADMSG, "enrollment");
        assert_refused("{\"version\": 2, \"enrollment\": {\"volumeType\": \"Data\", \"excluded\": [1]}, "
                       "\"volumes\": []}",
                -EBADMSG, "enrollment");
}
END_TEST

START_TEST(test_file_without_enrollment_loads) {
        char *dir = make_dir();
        AdeState *s = NULL;

        write_state(dir, "{\"version\": 2, \"volumes\": []}");
        ck_assert_int_eq(ade_state_load(dir, &s, NULL), 0);
        ck_assert_ptr_null(s->enrollment);
        ade_state_free(s);
        remove_dir(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("state");
        TCase *tc = ade_test_case("state");

        tcase_add_test(tc, test_missing_file_is_empty_state);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_mount_point_round_trip);
        tcase_add_test(tc, test_old_record_without_mount_point_loads);
        tcase_add_test(tc, test_mount_point_wrong_type_refused);
        tcase_add_test(tc, test_file_mode_is_0600);
        tcase_add_test(tc, test_atomic_replace_leaves_no_temporary);
        tcase_add_test(tc, test_remove_record);
        tcase_add_test(tc, test_add_replaces_existing_record);
        tcase_add_test(tc, test_corrupt_file_refused);
        tcase_add_test(tc, test_not_an_object_refused);
        tcase_add_test(tc, test_unknown_version_refused);
        tcase_add_test(tc, test_missing_version_refused);
        tcase_add_test(tc, test_unknown_step_refused);
        tcase_add_test(tc, test_record_without_device_refused);
        tcase_add_test(tc, test_wrong_field_type_refused);
        tcase_add_test(tc, test_step_names_round_trip);
        tcase_add_test(tc, test_volume_copy_owns_every_field);
        tcase_add_test(tc, test_volume_copy_keeps_unset_fields_unset);
        tcase_add_test(tc, test_version_1_migrates);
        tcase_add_test(tc, test_version_2_record_without_device_id_refused);
        tcase_add_test(tc, test_two_records_of_one_volume_refused);
        tcase_add_test(tc, test_newer_version_refused);
        tcase_add_test(tc, test_enrollment_round_trip);
        tcase_add_test(tc, test_enrollment_replaced_and_required_type);
        tcase_add_test(tc, test_enrollment_exclusions);
        tcase_add_test(tc, test_enrollment_malformed_refused);
        tcase_add_test(tc, test_file_without_enrollment_loads);
        tcase_add_test(tc, test_backup_fields_wrong_type_refused);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
