/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>

#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-keyfile.h"
#include "ade-log.h"
#include "aded-backup.h"
#include "aded-boot.h"
#include "aded-encrypt.h"
#include "aded-job.h"
#include "aded-keys.h"
#include "aded-manager.h"
#include "aded-osroot.h"
#include "aded-reopen.h"
#include "aded-verify.h"
#include "aded-worker.h"

/* Enable's job (docs/architecture.md §4): every step is recorded in the state file before the next
 * begins, and nothing touches the disk before the key file is escrowed in Key Vault. A resumed job
 * (the record's step is ESCROW or later) fetches the escrowed key and never escrows again. */

/* A fresh record: what Enable asked for, and where the volume's filesystem belongs. */
typedef struct NewRecord {
        const AdeVolume *volume;
        const AdedEnableParams *params;
        const char *mount_point, *mount_options;
} NewRecord;

static void fill_new_record(AdeStateVolume *v, void *userdata) {
        const NewRecord *n = userdata;
        const AdedEnableParams *p = n->params;

        (void)ade_strdup_to(&v->volume_type, ade_volume_type_to_string(n->volume->type));
        (void)ade_strdup_to(&v->keyvault_url, p->keyvault_url);
        (void)ade_strdup_to(&v->keyvault_resource_id, p->keyvault_resource_id);
        (void)ade_strdup_to(&v->kek_url, p->kek_url);
        (void)ade_strdup_to(&v->kek_vault_resource_id, p->kek_vault_resource_id);
        (void)ade_strdup_to(&v->kek_algorithm, p->kek_url ? p->kek_algorithm : NULL);
        v->skip_snapshot_check = p->skip_snapshot_check;
        (void)ade_strdup_to(&v->error, NULL);
        (void)ade_strdup_to(&v->mount_point, n->mount_point);
        (void)ade_strdup_to(&v->mount_options, n->mount_options);
}

/* The escrow's record: the secret, and the UUID the header will take, both before anything is
 * written to the disk. */
typedef struct Escrowed {
        const char *secret_url, *uuid;
} Escrowed;

static void set_escrowed(AdeStateVolume *v, void *userdata) {
        const Escrowed *e = userdata;

        (void)ade_strdup_to(&v->secret_url, e->secret_url);
        (void)ade_strdup_to(&v->uuid, e->uuid);
        /* The key file's birth: the rotation schedule counts from here (aded-rotation.h). */
        v->rotated_usec = ade_now_realtime_usec();
}

static void clear_error(AdeStateVolume *v, void *userdata) {
        (void)userdata;
        v->error = mfree(v->error);
}

/* What the engine's hook needs: the job, and the plan the engine copies out before it writes. */
typedef struct EncryptHook {
        Job *job;
        AdeLuksPlan planned;
        int record_error; /* a step the state file could not take: the job's message says so already */
} EncryptHook;

/* The engine stops when the state file cannot follow it; the job's message is job_record_step()'s. */
static int hook_record(EncryptHook *h, AdeJobStep step, AdedStateUpdate update, void *userdata) {
        int r = job_record_step(h->job, step, update, userdata);

        if (r < 0)
                h->record_error = r;
        return r < 0 ? r : 0;
}

/* The engine tells us when it crossed a point of no return; the state file follows. */
static int encrypt_hook(AdeLuksStep step, void *userdata) {
        EncryptHook *h = userdata;
        Job *j = h->job;

        switch (step) {
        case ADE_LUKS_STEP_PLANNED:
                /* A detached header's path is known before the file exists: recorded first, so that
                 * no header of ours is ever on disk without the state file naming it. */
                if (h->planned.header != ADE_LUKS_HEADER_DETACHED || !h->planned.header_path)
                        return 0;
                return job_record_step(j, _ADE_JOB_STEP_INVALID, aded_state_set_header_path, h->planned.header_path) < 0
                               ? -EIO
                               : 0;
        case ADE_LUKS_STEP_SHRUNK:
                return hook_record(h, ADE_STEP_SHRINK, NULL, NULL);
        case ADE_LUKS_STEP_HEADER_WRITTEN:
                /* The OS volume's header alone does not open it at the next boot: ADE_STEP_HEADER waits
                 * for the boot files (aded-osroot.c). */
                if (job_volume(j)->type == ADE_VOLUME_OS)
                        return hook_record(h, ADE_STEP_SHRINK, NULL, NULL);
                job_set_phase(j, "encrypting");
                return hook_record(h, ADE_STEP_HEADER, NULL, NULL);
        default:
                return 0;
        }
}

/* Where @v's filesystem belongs, so that Unlock and the fstab line can put it back after a reboot
 * (see ade_fs_mount_target(); @fstab is the configured one). Nothing found is not an error. */
static int volume_mount_target(const AdeVolume *v, const char *fstab, char **ret_path, char **ret_options) {
        struct stat st;

        if (stat(v->device, &st) < 0 || !S_ISBLK(st.st_mode)) {
                *ret_path = *ret_options = NULL;
                return 0;
        }
        return ade_fs_mount_target(&(AdeFsId){.devnum = st.st_rdev, .uuid = v->fs_uuid, .label = v->label}, fstab, NULL,
                ret_path, ret_options);
}

/* The first steps, up to the escrow: a fresh record, the preconditions, a new key file, and its
 * secret in Key Vault. Nothing has touched the disk nor Key Vault that a resume would need. */
static int encrypt_escrow(
        Job *j, const AdeLuksOptions *o, const char *uuid, AdeLuksToken **ret_token, AdeSecret **ret_keyfile) {
        Manager *m = job_manager(j);
        const AdeVolume *v = job_volume(j);
        const char *device = job_device(j);
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *mount_point = NULL, *mount_options = NULL, *engine_error = NULL;
        AdeLuksPlan plan = {};
        int r;

        r = volume_mount_target(v, m->config->daemon.fstab, &mount_point, &mount_options);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "cannot find where %s is mounted: %s", device, strerror(-r));
        r = aded_state_add(m->state, job_key(j), device, ADE_JOB_ENCRYPT, ADE_STEP_NONE, fill_new_record,
                &(NewRecord){.volume = v,
                        .params = job_params(j),
                        .mount_point = mount_point,
                        .mount_options = mount_options});
        if (r < 0)
                return job_fail(j, r, NULL, NULL,
                        "cannot save the state file in %s: %s; the encryption of %s did not start (nothing was "
                        "written): free space there or fix the folder, then run enable again",
                        m->config->daemon.state_dir, strerror(-r), device);

        job_set_phase(j, "preconditions");
        /* Online, the engine plans once the volume is unmounted (encrypt_online()). */
        r = m->dm && v->mountpoint && !o->running_root ? 0 : ade_luks_plan(v, o, &plan, &engine_error);
        ade_luks_plan_done(&plan);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "%s cannot be encrypted: %s", device,
                        v->reason ?: engine_error ?: strerror(-r));
        r = job_record_step(j, ADE_STEP_PRECONDITIONS, NULL, NULL);
        if (r < 0)
                return r;

        job_set_phase(j, "generating the key file");
        r = ade_keyfile_generate(&keyfile);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "cannot generate a key file for %s: %s", device, strerror(-r));
        r = job_record_step(j, ADE_STEP_KEYFILE, NULL, NULL);
        if (r < 0)
                return r;

        job_set_phase(j, "escrowing the key in Key Vault");
        r = aded_keys_escrow(m, job_params(j), v, keyfile, &token, &cerr);
        if (r < 0) {
                if (cerr.status != 0 || cerr.code)
                        return job_fail_cloud(j, r, &cerr, "escrowing the key file in Key Vault");
                return job_fail(
                        j, r, NULL, NULL, "escrowing the key file of %s in Key Vault failed: %s", device, strerror(-r));
        }
        r = job_record_step(j, ADE_STEP_WRAP, NULL, NULL);
        if (r < 0)
                return r;
        /* From here on the secret exists: a resume fetches it, it never escrows again. */
        r = job_record_step(
                j, ADE_STEP_ESCROW, set_escrowed, &(Escrowed){.secret_url = token->secret_url, .uuid = uuid});
        if (r < 0)
                return r;

        *ret_token = TAKE_PTR(token);
        *ret_keyfile = TAKE_PTR(keyfile);
        return 0;
}

/* A token from the state record, for an encryption whose secret is escrowed but whose header does
 * not exist yet (or was lost with a crash before it was written). */
static int token_from_record(const AdeStateVolume *v, AdeLuksToken **ret) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;

        if (!v || !v->secret_url)
                return -ENOENT;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        if (ade_strdup_to(&t->version, ADE_LUKS_TOKEN_VERSION) < 0 ||
                ade_strdup_to(&t->key_vault_url, v->keyvault_url) < 0 ||
                ade_strdup_to(&t->key_vault_resource_id, v->keyvault_resource_id) < 0 ||
                ade_strdup_to(&t->secret_url, v->secret_url) < 0 || ade_strdup_to(&t->kek_url, v->kek_url) < 0 ||
                ade_strdup_to(&t->kek_vault_resource_id, v->kek_vault_resource_id) < 0 ||
                ade_strdup_to(&t->kek_algorithm, v->kek_algorithm) < 0 ||
                ade_strdup_to(&t->volume_type, v->volume_type) < 0 || ade_strdup_to(&t->device_id, v->device_id) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(t);
        return 0;
}

/* A resume past the escrow: the token from the header (or, before the header exists, from the
 * record), then the key file from Key Vault. */
static int encrypt_fetch(
        Job *j, const AdeStateVolume *record, const char *header, AdeLuksToken **ret_token, AdeSecret **ret_keyfile) {
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        int r;

        job_set_phase(j, "fetching the escrowed key");
        r = ade_luks_read_token(job_device(j), header, ret_token);
        if (r < 0) {
                r = token_from_record(record, ret_token);
                if (r < 0)
                        return job_fail(j, r, NULL, NULL,
                                "the state file says the key of %s is escrowed but names no secret", job_device(j));
        }
        r = aded_keys_resolve(job_manager(j), *ret_token, ret_keyfile, &cerr);
        if (r < 0)
                return job_fail_cloud(j, r, &cerr, "fetching the escrowed key file");
        return 0;
}

/* How long an online enable tries to unmount a busy filesystem. */
#define ADED_UNMOUNT_PATIENCE_USEC (5U * 1000U * 1000U)

/* Online (docs/architecture.md §4, ADE's flow), for a mounted volume when device-mapper is there:
 * unmount, write the header and activate (init_only), mount again from /dev/mapper, then reencrypt
 * underneath the mounted filesystem. Only after the key is escrowed: a refusal before leaves the
 * volume mounted. */
static int encrypt_online(Job *j, const AdeLuksToken *token, const AdeSecret *keyfile, AdeLuksOptions *o,
        AdeLuksPlan *plan, char **engine_error) {
        Manager *m = job_manager(j);
        const AdeVolume *v = job_volume(j);
        const char *device = job_device(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *name = NULL, *mapper = NULL, *prepared = NULL, *holders = NULL;
        const char *base = strrchr(device, '/'), *mountpoint = v->mountpoint, *fstype = v->fstype, *options = NULL;
        /* ade-<LUKS UUID> from the first activation on, the name crypttab gives it at every boot
         * (docs/architecture.md §9). The UUID was chosen before the header exists (aded_encrypt_run()). */
        const char *tag = o->uuid ? o->uuid : base ? base + 1 : device;
        AdeVolume unmounted;
        int r;

        /* Without its type the filesystem could not be mounted again after the header is written. */
        if (!fstype)
                return job_fail(j, -EINVAL, NULL, NULL,
                        "%s is mounted on %s but its filesystem type is unknown; unmount it and run enable again",
                        device, mountpoint);
        /* The filesystem comes back with the options it had (ro, noexec, ...), not with defaults. */
        (void)aded_state_get(m->state, job_key(j), &record);
        if (record && streq_ptr(record->mount_point, mountpoint))
                options = record->mount_options;
        if (asprintf(&name, "ade-%s", tag) < 0 || asprintf(&mapper, "/dev/mapper/%s", name) < 0)
                return -ENOMEM;

        /* An ext filesystem most likely gets its header in front: build that header now, while the
         * volume is still in use, so that the downtime holds only the shrink, the move of the first
         * 16 MiB and the activation. Not fatal: the engine builds it itself otherwise. */
        if (ade_fs_is_ext(fstype)) {
                job_set_phase(j, "preparing the header");
                if (ade_luks_prepare_header(v, token, keyfile, o, &prepared) < 0)
                        prepared = mfree(prepared);
        }

        job_set_phase(j, "unmounting");
        /* Bounded: a reader that touches the mount now and then must not fail the enable at once. */
        r = ade_fs_unmount_patiently(mountpoint, ADED_UNMOUNT_PATIENCE_USEC, &holders);
        if (r < 0) {
                r = job_fail(j, r, NULL, NULL,
                        "cannot unmount %s from %s to encrypt it online: %s%s%s; stop what uses it and run "
                        "enable again",
                        device, mountpoint, r == -EBUSY ? "still in use after 5 s" : strerror(-r),
                        holders ? ", by " : "", strempty(holders));
                if (prepared)
                        (void)unlink(prepared);
                return r;
        }

        job_set_phase(j, "writing the header");
        /* The engine refuses a mounted volume: it gets the volume as it is now. */
        unmounted = *v;
        unmounted.mountpoint = NULL;
        o->active_name = name;
        o->init_only = true;
        o->prepared_header = prepared;
        r = ade_luks_encrypt(&unmounted, token, keyfile, o, plan, engine_error);
        o->init_only = false;
        o->prepared_header = NULL;
        if (prepared)
                (void)unlink(prepared); /* unused (a detached header after all): gone; used: gone already */
        if (r < 0) {
                /* Nothing was encrypted: give the operator the filesystem back where it was. */
                int k = ade_fs_mount_or_defaults(device, mountpoint, fstype, options);
                if (k < 0)
                        ade_log_error_errno(k, "%s: could not mount %s on %s again after a failed online start: %m",
                                device, device, mountpoint);
                return r;
        }

        job_set_mapper(j, name);

        job_set_phase(j, "mounting from the mapper");
        r = ade_fs_mount_or_defaults(mapper, mountpoint, fstype, options);
        if (r < 0)
                ade_log_error_errno(r, "%s: encryption continues, but mounting %s on %s failed: %m; mount it by hand",
                        device, mapper, mountpoint);

        job_set_phase(j, "encrypting");
        r = aded_worker_resume(device, plan->header_path, keyfile, o);
        o->active_name = NULL;
        return r;
}

/* Writes the header and encrypts, or continues what a header in progress says. */
static int encrypt_data(Job *j, const AdeStateVolume *record, const char *header, const AdeLuksToken *token,
        const AdeSecret *keyfile, AdeLuksOptions *o, AdeLuksPlan *plan, char **engine_error) {
        Manager *m = job_manager(j);
        const char *device = job_device(j);
        _cleanup_free_ char *active = NULL;
        AdeLuksStatus st;
        int r;

        job_set_phase(j, "encrypting");
        r = ade_luks_status(device, header, &st);
        if (r >= 0 && (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH)) {
                /* Still active from before a restart of aded: continue online under that name. */
                if (m->dm && ade_dm_find_crypt(device, &active) > 0)
                        o->active_name = active;
                else if ((active = aded_reopen(j, record, header, st.uuid, keyfile)))
                        o->active_name = active;
                job_set_phase(j, "encrypting");
                r = aded_worker_resume(device, header, keyfile, o);
                o->active_name = NULL;
                return r;
        }
        if (r >= 0 && st.state == ADE_LUKS_STATE_FINISHED) {
                /* Finished just before a power cut, before the state file said so: opened and mounted
                 * again all the same, as the resume would have left it. */
                if (!(m->dm && ade_dm_find_crypt(device, &active) > 0))
                        active = aded_reopen(j, record, header, st.uuid, keyfile);
                return 0;
        }
        if (m->dm && job_volume(j)->mountpoint)
                return encrypt_online(j, token, keyfile, o, plan, engine_error);
        return ade_luks_encrypt(job_volume(j), token, keyfile, o, plan, engine_error);
}

int aded_encrypt_run(Job *j) {
        const char *device = job_device(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_free_ char *engine_error = NULL;
        EncryptHook hook = {.job = j};
        char uuid[ADE_LUKS_UUID_SIZE] = "";
        const char *header = NULL;
        AdeLuksPlan plan = {};
        AdeLuksOptions o;
        AdeLuksStatus st;
        bool fresh, os = job_volume(j)->type == ADE_VOLUME_OS;
        _cleanup_free_ char *os_header_dir = NULL;
        int r;

        job_engine_options(j, &o);
        o.hook = encrypt_hook;
        o.hook_userdata = &hook;
        o.planned = &hook.planned;
        if (os && aded_osroot_on_mapper(device) <= 0) {
                /* The running root: its header goes where the initramfs reads it (§9), and the plan
                 * before the escrow is the running root's (detached, nothing written to it). */
                r = aded_osroot_header_dir(job_manager(j), &os_header_dir, &engine_error);
                if (r < 0)
                        return job_fail(j, r, NULL, NULL, "the OS volume %s cannot be encrypted: %s", device,
                                engine_error ?: strerror(-r));
                o.header_dir = os_header_dir;
                o.running_root = o.init_only = true;
        }

        r = aded_state_get(job_manager(j)->state, job_key(j), &record);
        if (r < 0)
                return r;
        /* A finished record on a volume that is to be encrypted again (it was decrypted behind ade's
         * back, or another disk took its place): a new job, a new key. */
        fresh = !record || record->step < ADE_STEP_ESCROW || record->step == ADE_STEP_DONE;
        if (!fresh) {
                header = record->header_path;
                /* Before anything is written: is this the volume the record is about? */
                r = aded_verify_job(j, record, header);
                if (r < 0)
                        return r;
                r = job_record_step(j, _ADE_JOB_STEP_INVALID, aded_state_set_device, (void *)device);
                if (r < 0)
                        return r;
        }

        /* The header's UUID is chosen and recorded with the escrow, before any header exists. An
         * older record without one gets it now, unless its header may exist already. */
        if (!fresh && record->uuid)
                snprintf(uuid, sizeof(uuid), "%s", record->uuid);
        else if (fresh || record->step < ADE_STEP_SHRINK) {
                r = ade_luks_uuid_new(uuid);
                if (r < 0)
                        return job_fail(j, r, NULL, NULL, "cannot make a UUID for %s: %s", device, strerror(-r));
                if (!fresh && (r = job_record_step(j, _ADE_JOB_STEP_INVALID, aded_state_set_uuid, uuid)) < 0)
                        return r;
        }
        o.uuid = uuid[0] ? uuid : NULL;

        if (fresh)
                r = encrypt_escrow(j, &o, o.uuid, &token, &keyfile);
        else
                r = encrypt_fetch(j, record, header, &token, &keyfile);
        if (r < 0)
                return r;

        if (os) {
                /* Resumed online once "/" is on ade-root; until then it waits for the reboot (1). */
                r = aded_osroot_encrypt(j, record, header, token, keyfile, &o, &plan, &engine_error);
                if (r > 0) {
                        ade_luks_plan_done(&hook.planned);
                        ade_luks_plan_done(&plan);
                        return 0;
                }
        } else
                r = encrypt_data(j, record, header, token, keyfile, &o, &plan, &engine_error);
        ade_luks_plan_done(&hook.planned);
        if (plan.header_path)
                (void)job_record_step(j, _ADE_JOB_STEP_INVALID, aded_state_set_header_path, plan.header_path);
        if (r == -ECANCELED || (r < 0 && hook.record_error < 0)) {
                ade_luks_plan_done(&plan);
                return r;
        }
        if (r < 0) {
                ade_luks_plan_done(&plan);
                return job_fail(j, r, NULL, NULL, "encrypting %s failed: %s%s%s", device, strerror(-r),
                        engine_error ? ": " : "", strempty(engine_error));
        }

        /* A detached header is known by its path only now, when the job did not start from one. */
        if (ade_luks_status(device, header ?: plan.header_path, &st) >= 0 && st.uuid[0])
                (void)job_record_step(j, ADE_STEP_REENCRYPT, aded_state_set_uuid, st.uuid);
        /* Before the last step: a crash in between writes the lines again (they are idempotent). */
        if (st.uuid[0] && !os) /* the OS volume's lines are the boot contract's (aded-osroot.c) */
                aded_boot_add(j, st.uuid, header ?: plan.header_path);
        /* An error of an earlier attempt is history now. */
        r = job_record_step(j, ADE_STEP_DONE, clear_error, NULL);
        if (r >= 0 && job_manager(j)->config->backup.url) {
                /* The header is final now; a backup taken mid-reencryption never is (§11). */
                job_set_phase(j, "uploading the header backup");
                aded_backup_upload(job_manager(j), device, header ?: plan.header_path, job_key(j), token);
        }
        ade_luks_plan_done(&plan);
        return r;
}
