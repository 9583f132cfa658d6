/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-dm.h"
#include "ade-io.h"
#include "aded-backup.h"
#include "aded-boot.h"
#include "aded-decrypt.h"
#include "aded-job.h"
#include "aded-manager.h"
#include "aded-reopen.h"
#include "aded-verify.h"
#include "aded-worker.h"

/* The header of the volume and its status. An attached header exported for decryption (the
 * engine moves it off the device first) lives in header_dir under the LUKS UUID that the record
 * keeps. Returns 1 when there is something to decrypt, 0 when the volume is plaintext already. */
static int decrypt_find_header(Job *j, char **ret_header, AdeLuksStatus *ret_status) {
        Manager *m = job_manager(j);
        const char *device = job_device(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *header = NULL;
        AdeLuksStatus st;
        int r;

        (void)job_header(j, &header);
        r = ade_luks_status(device, header, &st);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "cannot read the LUKS header of %s: %s", device, strerror(-r));
        if (st.state == ADE_LUKS_STATE_NONE && !header) {
                (void)aded_state_get(m->state, job_key(j), &record);
                if (record && record->uuid &&
                        ade_luks_uuid_path(m->config->volumes.header_dir, record->uuid, ".decrypt-header", &header) < 0)
                        header = NULL;
                if (!header || ade_luks_status(device, header, &st) < 0 || st.state == ADE_LUKS_STATE_NONE)
                        return 0;
        }
        *ret_header = TAKE_PTR(header);
        *ret_status = st;
        return 1;
}

typedef struct DecryptRecord {
        const char *uuid, *header, *device_id, *mount_point, *mount_options;
} DecryptRecord;

static void fill_decrypt_record(AdeStateVolume *v, void *userdata) {
        const DecryptRecord *d = userdata;

        (void)ade_strdup_to(&v->uuid, d->uuid);
        aded_state_set_header_path(v, (void *)d->header);
        (void)ade_strdup_to(&v->device_id, d->device_id);
        (void)ade_strdup_to(&v->mount_point, d->mount_point);
        (void)ade_strdup_to(&v->mount_options, d->mount_options);
}

/* A decryption's record, unless one is there from an interrupted run. It keeps where the encryption's
 * record says the filesystem belongs: after a power cut the resume mounts it there again. */
static int decrypt_record(Job *j, const char *header, const AdeLuksStatus *st) {
        Manager *m = job_manager(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        int r;

        r = aded_state_get(m->state, job_key(j), &record);
        if (r < 0)
                return r;
        if (record && record->kind == ADE_JOB_DECRYPT)
                return job_record_step(j, _ADE_JOB_STEP_INVALID, aded_state_set_device, (void *)job_device(j));
        return aded_state_add(m->state, job_key(j), job_device(j), ADE_JOB_DECRYPT, ADE_STEP_PRECONDITIONS,
                fill_decrypt_record,
                &(DecryptRecord){.uuid = st->uuid,
                        .header = header,
                        .device_id = job_volume(j)->stable_id,
                        .mount_point = record ? record->mount_point : NULL,
                        .mount_options = record ? record->mount_options : NULL});
}

/* The engine exported an attached header (with its decryption initialised) and is about to erase
 * the device's: the export's path goes into the record first. */
typedef struct DecryptHook {
        Job *job;
        int record_error; /* the state file could not take the step: the job's message says so */
} DecryptHook;

static int decrypt_hook(AdeLuksStep step, void *userdata) {
        DecryptHook *h = userdata;
        Job *j = h->job;
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *path = NULL;

        if (step != ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED)
                return 0;
        if (aded_state_get(job_manager(j)->state, job_key(j), &record) < 0 || !record || !record->uuid ||
                ade_luks_uuid_path(job_manager(j)->config->volumes.header_dir, record->uuid, ".decrypt-header", &path) <
                        0)
                return -EIO;
        /* On failure the job's message is job_record_step()'s; the engine stops with its error. */
        h->record_error = job_record_step(j, ADE_STEP_HEADER, aded_state_set_header_path, path);
        if (h->record_error < 0)
                return h->record_error;
        /* Before the device's header is erased: systemd must not lose the open volume with it. */
        aded_boot_detach(j, record->uuid, path);
        return 0;
}

int aded_decrypt_run(Job *j) {
        Manager *m = job_manager(j);
        const char *device = job_device(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_free_ char *header = NULL, *exported = NULL, *active = NULL;
        AdeLuksOptions o;
        AdeLuksStatus st = {};
        DecryptHook hook = {.job = j};
        bool plain;
        int r;

        job_engine_options(j, &o);
        o.hook = decrypt_hook;
        o.hook_userdata = &hook;
        r = decrypt_find_header(j, &header, &st);
        if (r < 0)
                return r;
        plain = r == 0;
        (void)aded_state_get(m->state, job_key(j), &record);
        /* Before anything is written (the record's removal included): is this the volume? */
        r = aded_verify_job(j, record, header);
        if (r < 0)
                return r;
        if (plain) {
                /* Finished before a crash or stop: its boot lines may still be there, and after a
                 * power cut the filesystem is mounted nowhere. */
                if (record && record->uuid) {
                        aded_boot_remove(j, record->uuid);
                        aded_backup_mark_obsolete(m, device, record->uuid);
                }
                aded_remount_plain(j, record);
                (void)aded_state_remove(m->state, job_key(j));
                return 0; /* plaintext already */
        }

        r = decrypt_record(j, header, &st);
        if (r < 0)
                return r;

        r = job_fetch_key(j, header, "the key file", &token, &keyfile);
        if (r < 0)
                return r;
        /* The header as the disable found it, the last one that opens the volume's ciphertext, goes off
         * the machine before the decryption changes it (docs/architecture.md §11); a resumed
         * decryption's header is mid-way and never a backup. A failure does not stop the disable. */
        if (st.state == ADE_LUKS_STATE_FINISHED && m->config->backup.url) {
                job_set_phase(j, "uploading the header backup");
                aded_backup_upload(m, device, header, job_key(j), token);
        }

        /* An active mapping (the volume is open, maybe mounted) is decrypted online, underneath it. */
        if (m->dm && ade_dm_find_crypt(device, &active) > 0)
                o.active_name = active;

        job_set_phase(j, "decrypting");
        if ((st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) &&
                st.operation != ADE_LUKS_OP_DECRYPT)
                /* Resuming here would continue the other operation, not decrypt. */
                return job_fail(j, -EBUSY, NULL, NULL,
                        "%s is in the middle of an interrupted encryption; let it finish (aded resumes it "
                        "at start, or run enable), then disable",
                        device);
        if (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) {
                /* Cut by a power loss or a reboot while online: nothing is open, nothing mounted.
                 * Opened and mounted where it was, as an encryption's resume does, it goes on online. */
                if (!active) {
                        record = ade_state_volume_free(record);
                        (void)aded_state_get(m->state, job_key(j), &record);
                        active = aded_reopen(j, record, header, st.uuid, keyfile);
                        o.active_name = active;
                        job_set_phase(j, "decrypting");
                }
                r = aded_worker_resume(device, header, keyfile, &o);
        } else
                r = aded_worker_decrypt(device, header, keyfile, &o, &exported);
        /* Stopped or failed half-way: the record names the export for the resume. Done: it is gone. */
        if (exported && r < 0 && access(exported, F_OK) == 0)
                (void)job_record_step(j, ADE_STEP_HEADER, aded_state_set_header_path, exported);
        if (r == -ECANCELED)
                return r;
        if (r < 0 && hook.record_error >= 0)
                return job_fail(j, r, NULL, NULL, "decrypting %s failed: %s", device, strerror(-r));
        if (r < 0)
                return r;

        /* The volume is plaintext: crypttab must not try to open it at the next boot, and fstab
         * mounts it as before. Then the record goes (a crash in between redoes this, idempotently). */
        aded_boot_remove(j, st.uuid[0] ? st.uuid : record ? record->uuid : NULL);
        aded_backup_mark_obsolete(m, device, st.uuid[0] ? st.uuid : record ? record->uuid : NULL);
        return aded_state_remove(m->state, job_key(j));
}
