/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <mntent.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-json.h"
#include "ade-keyfile.h"
#include "ade-log.h"
#include "aded.h"
#include "aded-keys.h"
#include "aded-worker.h"

/* Progress reaches the loop at most this often per job; the last update always does. */
#define PROGRESS_INTERVAL_USEC (100U * 1000U)

void aded_enable_params_done(AdedEnableParams *p) {
        free(p->keyvault_url);
        free(p->keyvault_resource_id);
        free(p->kek_url);
        free(p->kek_vault_resource_id);
        free(p->kek_algorithm);
        *p = (AdedEnableParams){};
}

/* libdevmapper keeps process-wide state (udev cookies, caches) and is not safe to enter from two
 * threads at once: every device-mapper query or activation in aded takes this lock. */
pthread_mutex_t aded_dm_lock = PTHREAD_MUTEX_INITIALIZER;

int aded_dm_find_crypt(const char *device, char **ret_name) {
        int r;

        pthread_mutex_lock(&aded_dm_lock);
        r = ade_dm_find_crypt(device, ret_name);
        pthread_mutex_unlock(&aded_dm_lock);
        return r;
}

static int params_copy(const AdedEnableParams *from, AdedEnableParams *to) {
        *to = (AdedEnableParams){.format_all = from->format_all, .skip_snapshot_check = from->skip_snapshot_check};
        if (ade_strdup_to(&to->keyvault_url, from->keyvault_url) < 0 ||
                ade_strdup_to(&to->keyvault_resource_id, from->keyvault_resource_id) < 0 ||
                ade_strdup_to(&to->kek_url, from->kek_url) < 0 ||
                ade_strdup_to(&to->kek_vault_resource_id, from->kek_vault_resource_id) < 0 ||
                ade_strdup_to(&to->kek_algorithm, from->kek_algorithm) < 0) {
                aded_enable_params_done(to);
                return -ENOMEM;
        }
        return 0;
}

static int volume_copy(const AdeVolume *v, AdeVolume **ret) {
        /* A job keeps its own description: the manager's list is refreshed while the job runs. */
        AdeVolume *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        *c = (AdeVolume){.size = v->size, .lun = v->lun, .type = v->type, .skip = v->skip};
        if (ade_strdup_to(&c->device, v->device) < 0 || ade_strdup_to(&c->stable_id, v->stable_id) < 0 ||
                ade_strdup_to(&c->fstype, v->fstype) < 0 || ade_strdup_to(&c->fs_uuid, v->fs_uuid) < 0 ||
                ade_strdup_to(&c->label, v->label) < 0 || ade_strdup_to(&c->mountpoint, v->mountpoint) < 0 ||
                ade_strdup_to(&c->reason, v->reason) < 0) {
                ade_volume_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int job_new(Manager *m, AdedJobType type, const AdeVolume *v, const AdedEnableParams *params, Job **ret) {
        Job *j;
        int r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->type = type;
        pthread_mutex_init(&j->lock, NULL);
        atomic_init(&j->cancel, false);
        r = volume_copy(v, &j->volume);
        if (r < 0)
                goto fail;
        j->device = strdup(v->device);
        if (!j->device) {
                r = -ENOMEM;
                goto fail;
        }
        if (params) {
                r = params_copy(params, &j->params);
                if (r < 0)
                        goto fail;
        }
        *ret = j;
        return 0;
fail:
        job_free(j);
        return r;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->thread_started)
                pthread_join(j->thread, NULL);
        ade_volume_free(j->volume);
        aded_enable_params_done(&j->params);
        free(j->device);
        free(j->rotate_kek_url);
        free(j->mounted_on);
        free(j->phase);
        free(j->error_name);
        free(j->message);
        json_object_put(j->error_parameters);
        pthread_mutex_destroy(&j->lock);
        free(j);
        return NULL;
}

void job_snapshot(
        Job *j, uint64_t *ret_done, uint64_t *ret_total, bool *ret_finished, int *ret_result, char **ret_phase) {
        pthread_mutex_lock(&j->lock);
        if (ret_done)
                *ret_done = j->done;
        if (ret_total)
                *ret_total = j->total;
        if (ret_finished)
                *ret_finished = j->finished;
        if (ret_result)
                *ret_result = j->result;
        if (ret_phase)
                *ret_phase = j->phase ? strdup(j->phase) : NULL;
        pthread_mutex_unlock(&j->lock);
}

static void job_signal(Job *j) {
        uint64_t one = 1;

        /* The eventfd counter only adds up; a full counter (never in practice) just means a wake-up is pending. */
        (void)!write(j->manager->event_fd, &one, sizeof(one));
}

static void job_set_phase(Job *j, const char *phase) {
        pthread_mutex_lock(&j->lock);
        free(j->phase);
        j->phase = phase ? strdup(phase) : NULL;
        pthread_mutex_unlock(&j->lock);
        job_signal(j);
}

static int job_progress(uint64_t done, uint64_t total, void *userdata) {
        Job *j = userdata;
        uint64_t now = ade_now_monotonic_usec();
        bool signal;

        pthread_mutex_lock(&j->lock);
        if (j->start_usec == 0) {
                j->start_usec = now;
                j->start_done = done;
        }
        j->done = done;
        j->total = total;
        signal = done >= total || now - j->last_signal_usec >= PROGRESS_INTERVAL_USEC;
        if (signal)
                j->last_signal_usec = now;
        pthread_mutex_unlock(&j->lock);
        if (signal)
                job_signal(j);

        /* Non-zero makes libcryptsetup stop at the next hotzone boundary: resumable. */
        return atomic_load(&j->cancel) ? 1 : 0;
}

/* Sets the varlink error the waiting callers get, and a message for Show and the log. */
static int job_fail(Job *j, int r, const char *error_name, json_object *parameters, const char *format, ...)
        _printf_(5, 6);
static int job_fail(Job *j, int r, const char *error_name, json_object *parameters, const char *format, ...) {
        va_list ap;
        char *msg = NULL;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);

        pthread_mutex_lock(&j->lock);
        free(j->message);
        j->message = msg;
        free(j->error_name);
        j->error_name = error_name ? strdup(error_name) : NULL;
        json_object_put(j->error_parameters);
        j->error_parameters = parameters;
        pthread_mutex_unlock(&j->lock);
        return r;
}

static json_object *keyvault_error_parameters(const AdeCloudError *e) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "status", json_object_new_int((int)e->status));
        json_object_object_add(o, "code", json_object_new_string(e->code ?: "Unknown"));
        json_object_object_add(o, "message", json_object_new_string(e->message ?: "no message"));
        return o;
}

static int job_fail_cloud(Job *j, int r, const AdeCloudError *e, const char *what) {
        _cleanup_free_ char *text = ade_cloud_error_to_string(e, "Key Vault");

        return job_fail(j, r, ADED_ERROR("KeyVaultError"), keyvault_error_parameters(e), "%s for %s failed: %s", what,
                j->device, text ?: strerror(-r));
}

/* Records the step of @device's job in the state file. Called from workers: takes state_lock. */
static int record_step(Job *j, AdeJobStep step, void (*update)(AdeStateVolume *v, void *userdata), void *userdata) {
        Manager *m = j->manager;
        AdeStateVolume *v;
        int r;

        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (!v) {
                pthread_mutex_unlock(&m->state_lock);
                return -ENOENT;
        }
        if (update)
                update(v, userdata);
        ade_state_volume_set_step(v, step);
        r = ade_state_save(m->state);
        pthread_mutex_unlock(&m->state_lock);
        if (r < 0)
                ade_log_error_errno(r, "cannot save the state file in %s: %m; the job on %s stops here",
                        m->config->daemon.state_dir, j->device);
        return r;
}

static int record_failure(Job *j, int r) {
        Manager *m = j->manager;
        AdeStateVolume *v;

        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (v) {
                pthread_mutex_lock(&j->lock);
                (void)ade_strdup_to(&v->error, j->message ?: strerror(-r));
                pthread_mutex_unlock(&j->lock);
                (void)ade_state_save(m->state);
        }
        pthread_mutex_unlock(&m->state_lock);
        return r;
}

/* A fresh record: what Enable asked for, and where the volume's filesystem belongs. */
typedef struct NewRecord {
        const Job *job;
        const char *mount_point, *mount_options;
} NewRecord;

static void fill_new_record(AdeStateVolume *v, void *userdata) {
        const NewRecord *n = userdata;
        const Job *j = n->job;

        (void)ade_strdup_to(&v->device_id, j->volume->stable_id);
        (void)ade_strdup_to(&v->volume_type, ade_volume_type_to_string(j->volume->type));
        (void)ade_strdup_to(&v->keyvault_url, j->params.keyvault_url);
        (void)ade_strdup_to(&v->keyvault_resource_id, j->params.keyvault_resource_id);
        (void)ade_strdup_to(&v->kek_url, j->params.kek_url);
        (void)ade_strdup_to(&v->kek_vault_resource_id, j->params.kek_vault_resource_id);
        (void)ade_strdup_to(&v->kek_algorithm, j->params.kek_url ? j->params.kek_algorithm : NULL);
        v->skip_snapshot_check = j->params.skip_snapshot_check;
        (void)ade_strdup_to(&v->error, NULL);
        (void)ade_strdup_to(&v->mount_point, n->mount_point);
        (void)ade_strdup_to(&v->mount_options, n->mount_options);
}

static void endmntentp(FILE **f) {
        if (*f)
                endmntent(*f);
}

/* Whether the fstab entry @me names the filesystem of @v (block device @devnum). */
static bool fstab_names_volume(const struct mntent *me, const AdeVolume *v, dev_t devnum) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        const char *p;

        if ((p = startswith(me->mnt_fsname, "UUID=")))
                return v->fs_uuid && strcaseeq(p, v->fs_uuid);
        if ((p = startswith(me->mnt_fsname, "LABEL=")))
                return streq_ptr(p, v->label);
        if ((p = startswith(me->mnt_fsname, "PARTUUID=")) && asprintf(&path, "/dev/disk/by-partuuid/%s", p) < 0)
                return false;
        if ((p = startswith(me->mnt_fsname, "PARTLABEL=")) && asprintf(&path, "/dev/disk/by-partlabel/%s", p) < 0)
                return false;
        if (me->mnt_fsname[0] == '/' && !(path = strdup(me->mnt_fsname)))
                return false;
        return path && stat(path, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == devnum;
}

/* Where @v's filesystem belongs, so that Unlock can put it back after a reboot: where it is mounted
 * now, with that mount's options (fstab's when fstab puts it there), else where fstab mounts it at
 * boot (not a "noauto" entry: nobody wants that one mounted unasked). Nothing found is not an error. */
static int volume_mount_target(const AdeVolume *v, char **ret_path, char **ret_options) {
        _cleanup_free_ char *path = NULL, *options = NULL;
        _cleanup_(endmntentp) FILE *fstab = NULL;
        struct mntent *me;
        struct stat st;
        int r;

        *ret_path = *ret_options = NULL;
        if (stat(v->device, &st) < 0 || !S_ISBLK(st.st_mode))
                return 0;
        r = ade_fs_mount_of(st.st_rdev, &path, &options);
        if (r < 0)
                return r;

        fstab = setmntent("/etc/fstab", "re");
        while (fstab && (me = getmntent(fstab))) {
                if (me->mnt_dir[0] != '/' || streq(me->mnt_dir, "/") || streq(me->mnt_type, "swap") ||
                        !fstab_names_volume(me, v, st.st_rdev))
                        continue;
                if (path && !streq(path, me->mnt_dir))
                        continue; /* mounted elsewhere today: where it is wins */
                if (!path && hasmntopt(me, "noauto"))
                        continue;
                if (ade_strdup_to(&path, me->mnt_dir) < 0 || ade_strdup_to(&options, me->mnt_opts) < 0)
                        return -ENOMEM;
                break;
        }
        *ret_path = TAKE_PTR(path);
        *ret_options = TAKE_PTR(options);
        return 0;
}

/* The mount point and options the state file keeps for @j's device (NULLs when none). */
static void record_mount(Job *j, char **ret_path, char **ret_options) {
        Manager *m = j->manager;
        AdeStateVolume *v;

        *ret_path = *ret_options = NULL;
        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (v && v->mount_point) {
                *ret_path = strdup(v->mount_point);
                *ret_options = v->mount_options ? strdup(v->mount_options) : NULL;
        }
        pthread_mutex_unlock(&m->state_lock);
}

static void set_secret_url(AdeStateVolume *v, void *userdata) {
        (void)ade_strdup_to(&v->secret_url, userdata);
}

static void clear_error(AdeStateVolume *v, void *userdata) {
        (void)userdata;
        v->error = mfree(v->error);
}

static void set_uuid(AdeStateVolume *v, void *userdata) {
        (void)ade_strdup_to(&v->uuid, userdata);
}

static void set_header_path(AdeStateVolume *v, void *userdata) {
        v->detached = userdata != NULL;
        (void)ade_strdup_to(&v->header_path, userdata);
}

static int engine_hook(AdeLuksStep step, void *userdata) {
        Job *j = userdata;

        /* The engine tells us when it crossed a point of no return; the state follows. */
        switch (step) {
        case ADE_LUKS_STEP_SHRUNK:
                return record_step(j, ADE_STEP_SHRINK, NULL, NULL) < 0 ? -EIO : 0;
        case ADE_LUKS_STEP_HEADER_WRITTEN:
                job_set_phase(j, j->type == ADED_JOB_ENCRYPT ? "encrypting" : "reencrypting");
                return record_step(j, ADE_STEP_HEADER, NULL, NULL) < 0 ? -EIO : 0;
        default:
                return 0;
        }
}

static void engine_options(Job *j, AdeLuksOptions *o) {
        *o = (AdeLuksOptions){
                .header_dir = j->manager->config->volumes.header_dir,
                .escrow_confirmed = true,
                .format_all = j->params.format_all,
                .format_all_confirmed = j->params.format_all,
                .progress = job_progress,
                .userdata = j,
                .hook = engine_hook,
                .hook_userdata = j,
        };
}

/* A token from the state record, for an encryption whose secret is escrowed but whose header does
 * not exist yet (or was lost with a crash before it was written). */
static int token_from_record(Job *j, AdeLuksToken **ret) {
        Manager *m = j->manager;
        AdeStateVolume *v;
        AdeLuksToken *t;
        int r = 0;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (!v || !v->secret_url)
                r = -ENOENT;
        else if (ade_strdup_to(&t->version, ADE_LUKS_TOKEN_VERSION) < 0 ||
                 ade_strdup_to(&t->key_vault_url, v->keyvault_url) < 0 ||
                 ade_strdup_to(&t->key_vault_resource_id, v->keyvault_resource_id) < 0 ||
                 ade_strdup_to(&t->secret_url, v->secret_url) < 0 || ade_strdup_to(&t->kek_url, v->kek_url) < 0 ||
                 ade_strdup_to(&t->kek_vault_resource_id, v->kek_vault_resource_id) < 0 ||
                 ade_strdup_to(&t->kek_algorithm, v->kek_algorithm) < 0 ||
                 ade_strdup_to(&t->volume_type, v->volume_type) < 0 || ade_strdup_to(&t->device_id, v->device_id) < 0)
                r = -ENOMEM;
        pthread_mutex_unlock(&m->state_lock);
        if (r < 0) {
                ade_luks_token_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

static AdeJobStep record_step_now(Job *j, char **ret_header) {
        Manager *m = j->manager;
        AdeStateVolume *v;
        AdeJobStep s = _ADE_JOB_STEP_INVALID;

        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (v) {
                s = v->step;
                if (ret_header)
                        *ret_header = v->header_path ? strdup(v->header_path) : NULL;
        }
        pthread_mutex_unlock(&m->state_lock);
        return s;
}

/* Online (docs/architecture.md §4, ADE's flow), for a mounted volume when device-mapper is there: unmount, write
 * the header and activate (init_only), mount again from /dev/mapper, then reencrypt underneath the
 * mounted filesystem. Only after the key is escrowed: a refusal before leaves the volume mounted. */
static int encrypt_online(Job *j, const AdeLuksToken *token, const AdeSecret *keyfile, AdeLuksOptions *o,
        AdeLuksPlan *plan, char **engine_error) {
        _cleanup_free_ char *mountpoint = NULL, *fstype = NULL, *name = NULL, *mapper = NULL;
        _cleanup_free_ char *recorded = NULL, *options = NULL, *prepared = NULL;
        const char *base = strrchr(j->device, '/');
        int r;

        /* The filesystem comes back with the options it had (ro, noexec, ...), not with defaults. */
        record_mount(j, &recorded, &options);
        if (!streq_ptr(recorded, j->volume->mountpoint))
                options = mfree(options);
        mountpoint = strdup(j->volume->mountpoint);
        fstype = j->volume->fstype ? strdup(j->volume->fstype) : NULL;
        if (!mountpoint || !fstype)
                return -ENOMEM;
        if (asprintf(&name, "ade-%s",
                    j->volume->fs_uuid
                            ?: base ? base + 1
                                    : j->device) < 0 ||
                asprintf(&mapper, "/dev/mapper/%s", name) < 0)
                return -ENOMEM;

        /* An ext filesystem most likely gets its header in front: build that header now, while the
         * volume is still in use, so that the downtime holds only the shrink, the move of the first
         * 16 MiB and the activation. Not fatal: the engine builds it itself otherwise. */
        if (ade_fs_is_ext(fstype)) {
                job_set_phase(j, "preparing the header");
                if (ade_luks_prepare_header(j->volume, token, keyfile, o, &prepared) < 0)
                        prepared = mfree(prepared);
        }

        job_set_phase(j, "unmounting");
        if (umount2(mountpoint, 0) < 0) {
                r = job_fail(j, -errno, NULL, NULL,
                        "cannot unmount %s from %s to encrypt it online: %m; stop what uses it and run enable "
                        "again",
                        j->device, mountpoint);
                if (prepared)
                        (void)unlink(prepared);
                return r;
        }
        j->volume->mountpoint = mfree(j->volume->mountpoint);

        job_set_phase(j, "writing the header");
        o->active_name = name;
        o->init_only = true;
        o->prepared_header = prepared;
        r = ade_luks_encrypt(j->volume, token, keyfile, o, plan, engine_error);
        o->init_only = false;
        o->prepared_header = NULL;
        if (prepared)
                (void)unlink(prepared); /* unused (a detached header after all): gone; used: gone already */
        if (r < 0) {
                /* Nothing was encrypted: give the operator the filesystem back where it was. */
                if (ade_fs_mount(j->device, mountpoint, fstype, options) < 0 &&
                        mount(j->device, mountpoint, fstype, 0, NULL) < 0)
                        ade_log_error("%s: could not mount %s on %s again after a failed online start: %m", j->device,
                                j->device, mountpoint);
                return r;
        }

        job_set_phase(j, "mounting from the mapper");
        if (ade_fs_mount(mapper, mountpoint, fstype, options) < 0 && mount(mapper, mountpoint, fstype, 0, NULL) < 0)
                ade_log_error("%s: encryption continues, but mounting %s on %s failed: %m; mount it by hand", j->device,
                        mapper, mountpoint);
        (void)ade_strdup_to(&j->volume->mountpoint, mountpoint);

        job_set_phase(j, "encrypting");
        r = aded_worker_resume(j->device, plan->header_path, keyfile, o);
        o->active_name = NULL;
        return r;
}

static int job_run_encrypt(Job *j) {
        Manager *m = j->manager;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *header = NULL, *engine_error = NULL, *active = NULL;
        AdeLuksPlan plan = {};
        AdeLuksOptions o;
        AdeLuksStatus st;
        AdeJobStep step;
        int r;

        engine_options(j, &o);
        step = record_step_now(j, &header);

        if (step < ADE_STEP_ESCROW) {
                _cleanup_free_ char *mount_point = NULL, *mount_options = NULL;

                r = volume_mount_target(j->volume, &mount_point, &mount_options);
                if (r < 0)
                        return job_fail(
                                j, r, NULL, NULL, "cannot find where %s is mounted: %s", j->device, strerror(-r));
                /* Nothing has touched the disk nor Key Vault that we would need: start afresh. */
                pthread_mutex_lock(&m->state_lock);
                r = ade_state_add(m->state, j->device, ADE_JOB_ENCRYPT, NULL);
                pthread_mutex_unlock(&m->state_lock);
                if (r < 0)
                        return r;
                r = record_step(j, ADE_STEP_NONE, fill_new_record,
                        &(NewRecord){.job = j, .mount_point = mount_point, .mount_options = mount_options});
                if (r < 0)
                        return r;

                job_set_phase(j, "preconditions");
                /* Online, the engine plans once the volume is unmounted (encrypt_online). */
                r = m->dm && j->volume->mountpoint ? 0 : ade_luks_plan(j->volume, &o, &plan, &engine_error);
                if (r < 0) {
                        ade_luks_plan_done(&plan);
                        return job_fail(j, r, NULL, NULL, "%s cannot be encrypted: %s", j->device,
                                        j->volume->reason ?: engine_error ?: strerror(-r));
                }
                ade_luks_plan_done(&plan);
                r = record_step(j, ADE_STEP_PRECONDITIONS, NULL, NULL);
                if (r < 0)
                        return r;

                job_set_phase(j, "generating the key file");
                r = ade_keyfile_generate(&keyfile);
                if (r < 0)
                        return job_fail(
                                j, r, NULL, NULL, "cannot generate a key file for %s: %s", j->device, strerror(-r));
                r = record_step(j, ADE_STEP_KEYFILE, NULL, NULL);
                if (r < 0)
                        return r;

                job_set_phase(j, "escrowing the key in Key Vault");
                r = aded_keys_escrow(m, &j->params, j->volume, keyfile, &token, &cerr);
                if (r < 0) {
                        if (cerr.status != 0 || cerr.code)
                                return job_fail_cloud(j, r, &cerr, "escrowing the key file in Key Vault");
                        return job_fail(j, r, NULL, NULL, "escrowing the key file of %s in Key Vault failed: %s",
                                j->device, strerror(-r));
                }
                r = record_step(j, ADE_STEP_WRAP, NULL, NULL);
                if (r < 0)
                        return r;
                /* From here on the secret exists: a resume fetches it, it never escrows again. */
                r = record_step(j, ADE_STEP_ESCROW, set_secret_url, token->secret_url);
                if (r < 0)
                        return r;
        } else {
                job_set_phase(j, "fetching the escrowed key");
                r = ade_luks_read_token(j->device, header, &token);
                if (r < 0) {
                        r = token_from_record(j, &token);
                        if (r < 0)
                                return job_fail(j, r, NULL, NULL,
                                        "the state file says the key of %s is escrowed but names no secret", j->device);
                }
                r = aded_keys_resolve(m, token, &keyfile, &cerr);
                if (r < 0)
                        return job_fail_cloud(j, r, &cerr, "fetching the escrowed key file");
        }

        job_set_phase(j, "encrypting");
        r = ade_luks_status(j->device, header, &st);
        if (r >= 0 && (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH)) {
                /* Still active from before a restart of aded: continue online under that name. */
                if (m->dm && aded_dm_find_crypt(j->device, &active) > 0)
                        o.active_name = active;
                r = aded_worker_resume(j->device, header, keyfile, &o);
        } else if (r >= 0 && st.state == ADE_LUKS_STATE_FINISHED)
                r = 0;
        else if (m->dm && j->volume->mountpoint)
                r = encrypt_online(j, token, keyfile, &o, &plan, &engine_error);
        else
                r = ade_luks_encrypt(j->volume, token, keyfile, &o, &plan, &engine_error);
        if (plan.header_path)
                (void)record_step(j, record_step_now(j, NULL), set_header_path, plan.header_path);
        ade_luks_plan_done(&plan);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "encrypting %s failed: %s%s%s", j->device, strerror(-r),
                        engine_error ? ": " : "", strempty(engine_error));

        if (ade_luks_status(j->device, header, &st) >= 0 && st.uuid[0])
                (void)record_step(j, ADE_STEP_REENCRYPT, set_uuid, st.uuid);
        /* An error of an earlier attempt is history now. */
        return record_step(j, ADE_STEP_DONE, clear_error, NULL);
}

/* The key file of a volume ade encrypted: its token, then Key Vault (and the KEK). @what names the
 * key in the job's phase and in the error a person reads. */
static int job_fetch_key(
        Job *j, const char *header, const char *what, AdeLuksToken **ret_token, AdeSecret **ret_keyfile) {
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *phase = NULL;
        int r;

        if (asprintf(&phase, "fetching %s", what) < 0)
                return -ENOMEM;
        job_set_phase(j, phase);
        r = ade_luks_read_token(j->device, header, ret_token);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "%s carries no Azure_Disk_Encryption token: ade did not encrypt it",
                        j->device);
        r = aded_keys_resolve(j->manager, *ret_token, ret_keyfile, &cerr);
        if (r < 0)
                return job_fail_cloud(j, r, &cerr, phase);
        return 0;
}

/* The header of a volume: the detached file the state knows, or the device itself (NULL). */
static int job_header(Job *j, char **ret) {
        Manager *m = j->manager;
        AdeStateVolume *v;
        char *h = NULL;

        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (v && v->header_path)
                h = strdup(v->header_path);
        pthread_mutex_unlock(&m->state_lock);
        if (!h && j->volume->stable_id &&
                ade_luks_find_header(m->config->volumes.header_dir, j->volume->stable_id, &h) < 0)
                h = NULL;
        *ret = h;
        return 0;
}

static int job_run_decrypt(Job *j) {
        Manager *m = j->manager;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_free_ char *header = NULL, *exported = NULL, *active = NULL;
        AdeLuksOptions o;
        AdeLuksStatus st;
        AdeStateVolume *v;
        int r;

        engine_options(j, &o);
        o.hook = NULL;
        (void)job_header(j, &header);

        r = ade_luks_status(j->device, header, &st);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "cannot read the LUKS header of %s: %s", j->device, strerror(-r));
        if (st.state == ADE_LUKS_STATE_NONE && !header) {
                /* An attached header exported for decryption lives in header_dir under the LUKS UUID. */
                pthread_mutex_lock(&m->state_lock);
                v = ade_state_find(m->state, j->device);
                if (v && v->uuid &&
                        asprintf(&header, "%s/%s.decrypt-header", m->config->volumes.header_dir, v->uuid) < 0)
                        header = NULL;
                pthread_mutex_unlock(&m->state_lock);
                if (!header || ade_luks_status(j->device, header, &st) < 0 || st.state == ADE_LUKS_STATE_NONE) {
                        pthread_mutex_lock(&m->state_lock);
                        (void)ade_state_remove(m->state, j->device);
                        (void)ade_state_save(m->state);
                        pthread_mutex_unlock(&m->state_lock);
                        return 0; /* plaintext already */
                }
        }

        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, j->device);
        if (!v || v->kind != ADE_JOB_DECRYPT) {
                AdeStateVolume *old = v;
                _cleanup_free_ char *detached = old && old->header_path ? strdup(old->header_path) : NULL;

                r = ade_state_add(m->state, j->device, ADE_JOB_DECRYPT, &v);
                if (r >= 0) {
                        (void)ade_strdup_to(&v->uuid, st.uuid);
                        (void)ade_strdup_to(&v->header_path, header);
                        v->detached = header != NULL;
                        (void)ade_strdup_to(&v->device_id, j->volume->stable_id);
                        ade_state_volume_set_step(v, ADE_STEP_PRECONDITIONS);
                        r = ade_state_save(m->state);
                }
        } else
                r = 0;
        pthread_mutex_unlock(&m->state_lock);
        if (r < 0)
                return r;

        r = job_fetch_key(j, header, "the key file", &token, &keyfile);
        if (r < 0)
                return r;

        /* An active mapping (the volume is open, maybe mounted) is decrypted online, underneath it. */
        if (m->dm && aded_dm_find_crypt(j->device, &active) > 0)
                o.active_name = active;

        job_set_phase(j, "decrypting");
        if ((st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) &&
                st.operation != ADE_LUKS_OP_DECRYPT)
                /* Resuming here would continue the other operation, not decrypt. */
                return job_fail(j, -EBUSY, NULL, NULL,
                        "%s is in the middle of an interrupted encryption; let it finish (aded resumes it "
                        "at start, or run enable), then disable",
                        j->device);
        if (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH)
                r = aded_worker_resume(j->device, header, keyfile, &o);
        else
                r = aded_worker_decrypt(j->device, header, keyfile, &o, &exported);
        if (exported)
                (void)record_step(j, ADE_STEP_HEADER, set_header_path, exported);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "decrypting %s failed: %s", j->device, strerror(-r));

        pthread_mutex_lock(&m->state_lock);
        (void)ade_state_remove(m->state, j->device);
        r = ade_state_save(m->state);
        pthread_mutex_unlock(&m->state_lock);
        return r;
}

static int job_run_rotate(Job *j) {
        Manager *m = j->manager;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL, *new_token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL, *new_keyfile = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *header = NULL;
        AdedEnableParams p = {};
        AdeLuksOptions o;
        int r;

        engine_options(j, &o);
        o.hook = NULL;
        (void)job_header(j, &header);

        r = job_fetch_key(j, header, "the current key file", &token, &keyfile);
        if (r < 0)
                return r;

        /* The new secret goes to the same vault; a new KEK when asked, else the same KEK (if any). */
        p = (AdedEnableParams){
                .keyvault_url = token->key_vault_url,
                .keyvault_resource_id = token->key_vault_resource_id,
                .kek_url = j->rotate_kek_url ?: token->kek_url,
                .kek_vault_resource_id = j->params.kek_vault_resource_id ?: token->kek_vault_resource_id,
                .kek_algorithm = j->params.kek_algorithm ?: token->kek_algorithm,
        };

        job_set_phase(j, "escrowing the new key in Key Vault");
        if (j->rotate_kek_url) {
                /* A new KEK re-wraps the same key file: only the secret and the token change. */
                r = aded_keys_escrow(m, &p, j->volume, keyfile, &new_token, &cerr);
                if (r < 0)
                        return job_fail_cloud(j, r, &cerr, "escrowing the re-wrapped key file");
                job_set_phase(j, "updating the token");
                r = ade_luks_update_token(j->device, header, keyfile, new_token, &o);
        } else {
                r = ade_keyfile_generate(&new_keyfile);
                if (r < 0)
                        return r;
                r = aded_keys_escrow(m, &p, j->volume, new_keyfile, &new_token, &cerr);
                if (r < 0)
                        return job_fail_cloud(j, r, &cerr, "escrowing the new key file");
                job_set_phase(j, "replacing the keyslot");
                r = ade_luks_rotate(j->device, header, keyfile, new_keyfile, new_token, &o);
        }
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "rotating the key of %s failed: %s", j->device, strerror(-r));

        pthread_mutex_lock(&m->state_lock);
        AdeStateVolume *v = ade_state_find(m->state, j->device);
        if (v) {
                (void)ade_strdup_to(&v->secret_url, new_token->secret_url);
                (void)ade_strdup_to(&v->kek_url, new_token->kek_url);
                (void)ade_state_save(m->state);
        }
        pthread_mutex_unlock(&m->state_lock);
        return 0;
}

int aded_mount_check(const char *mapper, const char *mount_point, char **ret_why) {
        _cleanup_free_ char *canon = NULL, *where = NULL;
        struct stat st;
        dev_t on_top;
        int r;

        assert(mapper);
        assert(mount_point);
        assert(ret_why);

        *ret_why = NULL;
        if (stat(mapper, &st) < 0 || !S_ISBLK(st.st_mode))
                return -ENODEV;
        canon = realpath(mount_point, NULL);
        r = ade_fs_mount_of(st.st_rdev, &where, NULL);
        if (r < 0)
                return r;
        if (r > 0) {
                if (streq(where, canon ?: mount_point))
                        return 1;
                if (asprintf(ret_why, "%s is mounted on %s, not on %s where it was at enable; aded leaves it there",
                            mapper, where, mount_point) < 0)
                        return -ENOMEM;
                return -EALREADY;
        }
        if (!canon || stat(canon, &st) < 0) {
                if (asprintf(ret_why,
                            "%s is open but not mounted: its mount point %s does not exist; create it and run "
                            "'adectl unlock' again",
                            mapper, mount_point) < 0)
                        return -ENOMEM;
                return -ENOENT;
        }
        if (!S_ISDIR(st.st_mode)) {
                if (asprintf(ret_why,
                            "%s is open but not mounted: its mount point %s is not a directory; make it one and "
                            "run 'adectl unlock' again",
                            mapper, mount_point) < 0)
                        return -ENOMEM;
                return -ENOTDIR;
        }
        r = ade_fs_mounted_on(canon, &on_top);
        if (r < 0)
                return r;
        if (r > 0) {
                if (asprintf(ret_why,
                            "%s is open but not mounted: %s is busy (device %u:%u is mounted there); unmount it "
                            "and run 'adectl unlock' again",
                            mapper, mount_point, major(on_top), minor(on_top)) < 0)
                        return -ENOMEM;
                return -EBUSY;
        }
        return 0;
}

/* Why an unlocked volume stays unmounted: for the Unlock reply and the log. The volume is open and
 * usable, so the job still succeeds. */
static void job_note(Job *j, const char *why) {
        ade_log_warning("%s: %s", j->device, why);
        pthread_mutex_lock(&j->lock);
        free(j->message);
        j->message = strdup(why);
        pthread_mutex_unlock(&j->lock);
}

/* Mounts the opened volume where the state file says its filesystem was at enable, and only there:
 * a volume without a recorded mount point stays unmounted (aded never guesses one), as does one
 * whose mount point is missing or busy. */
static void job_unlock_mount(Job *j, const char *name) {
        _cleanup_free_ char *mount_point = NULL, *options = NULL, *mapper = NULL, *why = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo fs = {};
        int r;

        record_mount(j, &mount_point, &options);
        if (!mount_point)
                return;
        if (asprintf(&mapper, "/dev/mapper/%s", name) < 0) {
                job_note(j, "out of memory");
                return;
        }

        r = aded_mount_check(mapper, mount_point, &why);
        if (r < 0) {
                job_note(j, why ?: strerror(-r));
                return;
        }
        if (r == 0) {
                job_set_phase(j, "mounting");
                r = ade_fs_probe(mapper, &fs);
                if (r < 0 || !fs.type || !streq_ptr(fs.usage, "filesystem")) {
                        if (asprintf(&why, "%s is open but not mounted on %s: no filesystem found on it%s%s", mapper,
                                    mount_point, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "") < 0)
                                why = NULL;
                        job_note(j, why ?: "no filesystem found");
                        return;
                }
                r = ade_fs_mount(mapper, mount_point, fs.type, options);
                if (r < 0) {
                        if (asprintf(&why,
                                    "%s is open but mounting it on %s (%s, options %s) failed: %s; mount it by "
                                    "hand, or fix the cause and run 'adectl unlock' again",
                                    mapper, mount_point, fs.type, options ?: "defaults", strerror(-r)) < 0)
                                why = NULL;
                        job_note(j, why ?: strerror(-r));
                        return;
                }
                ade_log_info("%s: mounted %s on %s", j->device, mapper, mount_point);
        }
        pthread_mutex_lock(&j->lock);
        free(j->mounted_on);
        j->mounted_on = TAKE_PTR(mount_point);
        pthread_mutex_unlock(&j->lock);
}

static int job_run_unlock(Job *j) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_free_ char *header = NULL, *name = NULL;
        AdeLuksStatus st;
        int r;

        /* Open already (crypttab, or an earlier Unlock whose mount point was missing): only the mount
         * is left to do, under the name it has. */
        if (aded_dm_find_crypt(j->device, &name) > 0) {
                job_unlock_mount(j, name);
                return 0;
        }
        name = mfree(name);

        (void)job_header(j, &header);
        r = ade_luks_status(j->device, header, &st);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "cannot read the LUKS header of %s: %s", j->device, strerror(-r));
        r = job_fetch_key(j, header, "the key file", &token, &keyfile);
        if (r < 0)
                return r;
        /* The name crypttab uses too (docs/architecture.md §9), so a later boot finds the same mapping. */
        const char *base = strrchr(j->device, '/');
        if (asprintf(&name, "ade-%s", st.uuid[0] ? st.uuid : base ? base + 1 : j->device) < 0)
                return -ENOMEM;
        job_set_phase(j, "opening");
        /* Two unlock jobs activating at once crashed aded in the VM: see aded_dm_lock. */
        pthread_mutex_lock(&aded_dm_lock);
        r = ade_luks_open(j->device, header, name, keyfile);
        pthread_mutex_unlock(&aded_dm_lock);
        if (r == -EEXIST)
                r = 0;
        if (r < 0)
                return job_fail(
                        j, r, NULL, NULL, "opening %s as /dev/mapper/%s failed: %s", j->device, name, strerror(-r));
        job_unlock_mount(j, name);
        return 0;
}

static void *job_thread(void *userdata) {
        Job *j = userdata;
        int r;

        switch (j->type) {
        case ADED_JOB_ENCRYPT:
                r = job_run_encrypt(j);
                break;
        case ADED_JOB_DECRYPT:
                r = job_run_decrypt(j);
                break;
        case ADED_JOB_ROTATE:
                r = job_run_rotate(j);
                break;
        case ADED_JOB_UNLOCK:
                r = job_run_unlock(j);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0 && r != -ECANCELED)
                (void)record_failure(j, r);

        pthread_mutex_lock(&j->lock);
        j->finished = true;
        j->result = r;
        if (r < 0 && r != -ECANCELED && !j->message && asprintf(&j->message, "%s: %s", j->device, strerror(-r)) < 0)
                j->message = NULL;
        pthread_mutex_unlock(&j->lock);
        job_signal(j);
        return NULL;
}

int job_start(Job *j) {
        sigset_t all, old;
        int r;

        /* Workers never take signals: the loop handles SIGTERM through signalfd. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&j->thread, NULL, job_thread, j);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        j->thread_started = true;
        return 0;
}

int job_error_reply(Job *j, AdeVarlinkCall *call) {
        _cleanup_json_ json_object *params = NULL;
        _cleanup_free_ char *name = NULL, *message = NULL;
        int result;

        pthread_mutex_lock(&j->lock);
        name = j->error_name ? strdup(j->error_name) : NULL;
        params = j->error_parameters ? json_object_get(j->error_parameters) : NULL;
        message = j->message ? strdup(j->message) : NULL;
        result = j->result;
        pthread_mutex_unlock(&j->lock);

        if (name)
                return ade_varlink_error(call, name, params);
        if (result == -ECANCELED)
                message = mfree(message),
                message = strdup("aded is stopping; the job is saved and resumes when aded starts again");
        params = json_object_new_object();
        if (!params)
                return -ENOMEM;
        json_object_object_add(params, "errno", json_object_new_int(-result));
        json_object_object_add(params, "message", json_object_new_string(message ?: strerror(-result)));
        return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, params);
}
