/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "ade-dm.h"
#include "ade-io.h"
#include "ade-json.h"
#include "ade-log.h"
#include "aded-decrypt.h"
#include "aded-encrypt.h"
#include "ade-http.h"
#include "aded-errors.h"
#include "aded-job.h"
#include "aded-keys.h"
#include "aded-manager.h"
#include "aded-rotate.h"
#include "aded-unlock.h"

/* Progress reaches the loop at most this often per job; the last update always does. */
#define PROGRESS_INTERVAL_USEC (100U * 1000U)

struct Job {
        Manager *manager;
        AdedJobType type;
        char *device;
        AdeVolume *volume; /* probed before the job began: type, mountpoint, stable id */
        AdedEnableParams params;

        pthread_t thread;
        bool thread_started;
        atomic_bool cancel;

        /* Written by the job's thread, read by the loop, under lock. */
        pthread_mutex_t lock;
        uint64_t done, total;
        char *phase;
        bool finished;
        int result;
        char *error_name; /* varlink error to send, or NULL for a System error from result */
        json_object *error_parameters;
        char *message;    /* what a person reads when it failed, or (Unlock, result 0) why it left a volume
                           * open but unmounted */
        char *mounted_on; /* Unlock: where the volume's filesystem is mounted now, or NULL */
        bool failed;      /* job_fail() was called: its first message is the one that says why */
        char *mapper;     /* the crypt mapping it is open on, or NULL */
        uint64_t last_signal_usec;
        /* The rate: from the first progress report of this run (a resume starts over) to the last. */
        uint64_t rate_done0, rate_usec0, rate_usec;

        /* The loop's. */
        bool reaped;        /* joined and out of the manager's list */
        unsigned n_waiters; /* calls that still report on it; the last one frees a reaped job */
};

static const char *const job_type_table[_ADED_JOB_TYPE_MAX] = {
        [ADED_JOB_ENCRYPT] = "encryption",
        [ADED_JOB_DECRYPT] = "decryption",
        [ADED_JOB_ROTATE] = "key rotation",
        [ADED_JOB_UNLOCK] = "unlock",
};

/* The journal's ADE_JOB= (ade-log.h): one word each, for "journalctl ADE_JOB=encrypt". */
static const char *const job_field_table[_ADED_JOB_TYPE_MAX] = {
        [ADED_JOB_ENCRYPT] = "encrypt",
        [ADED_JOB_DECRYPT] = "decrypt",
        [ADED_JOB_ROTATE] = "rotate",
        [ADED_JOB_UNLOCK] = "unlock",
};

static const char *job_field(AdedJobType t) {
        return t >= 0 && t < _ADED_JOB_TYPE_MAX ? job_field_table[t] : NULL;
}

void aded_job_log_context(AdedJobType type, const char *device) {
        ade_log_context_set(device, job_field(type));
}

const char *aded_job_type_to_string(AdedJobType t) {
        return t >= 0 && t < _ADED_JOB_TYPE_MAX ? job_type_table[t] : NULL;
}

void aded_job_progress_done(AdedJobProgress *p) {
        p->phase = mfree(p->phase);
        p->mapper = mfree(p->mapper);
}

int job_new(Manager *m, AdedJobType type, const AdeVolume *v, const AdedEnableParams *params, Job **ret) {
        Job *j;
        int r;

        assert(m);
        assert(v);
        assert(ret);

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->manager = m;
        j->type = type;
        pthread_mutex_init(&j->lock, NULL);
        atomic_init(&j->cancel, false);
        /* A job keeps its own description: the manager's list is refreshed while the job runs. */
        r = ade_volume_copy(v, &j->volume);
        if (r >= 0 && !(j->device = strdup(v->device)))
                r = -ENOMEM;
        if (r >= 0 && params)
                r = aded_enable_params_copy(params, &j->params);
        if (r < 0) {
                job_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->thread_started)
                pthread_join(j->thread, NULL);
        ade_volume_free(j->volume);
        aded_enable_params_done(&j->params);
        free(j->device);
        free(j->mounted_on);
        free(j->mapper);
        free(j->phase);
        free(j->error_name);
        free(j->message);
        json_object_put(j->error_parameters);
        pthread_mutex_destroy(&j->lock);
        free(j);
        return NULL;
}

void job_cancel(Job *j) {
        atomic_store(&j->cancel, true);
}

void job_reap(Job *j) {
        pthread_join(j->thread, NULL);
        j->thread_started = false;
        j->reaped = true;
        /* The thread is gone: its fields are the loop's now. */
        assert(j->finished);
        /* The loop's words about the job belong to the volume's history too. */
        aded_job_log_context(j->type, j->device);
        if (j->result == 0)
                ade_log_info("job on %s finished", j->device);
        else if (j->result == -ECANCELED)
                ade_log_info("job on %s stopped; it resumes when aded starts again", j->device);
        else
                ade_log_error("job on %s failed: %s", j->device, j->message ?: strerror(-j->result));
        aded_job_log_context(_ADED_JOB_TYPE_INVALID, NULL);
        if (j->n_waiters == 0)
                job_free(j);
}

bool job_is_reaped(const Job *j) {
        return j->reaped;
}

void job_hold(Job *j) {
        j->n_waiters++;
}

void job_release(Job *j) {
        assert(j->n_waiters > 0);

        if (--j->n_waiters == 0 && j->reaped)
                job_free(j);
}

AdedJobType job_type(const Job *j) {
        return j->type;
}

const char *job_device(const Job *j) {
        return j->device;
}

const char *job_key(const Job *j) {
        return aded_state_key(j->volume);
}

const AdeVolume *job_volume(const Job *j) {
        return j->volume;
}

Manager *job_manager(Job *j) {
        return j->manager;
}

const AdedEnableParams *job_params(const Job *j) {
        return &j->params;
}

/* Under the lock. Bytes per second between the first and the last progress report of this run, once
 * they are a second apart: the engine reports per hotzone, so a shorter span would jump about. */
static uint64_t job_rate(const Job *j) {
        uint64_t span = j->rate_usec - j->rate_usec0;

        if (j->rate_usec0 == 0 || span < 1000000U || j->done <= j->rate_done0)
                return 0;
        return (uint64_t)((double)(j->done - j->rate_done0) * 1e6 / (double)span);
}

void job_snapshot(Job *j, AdedJobProgress *ret) {
        pthread_mutex_lock(&j->lock);
        *ret = (AdedJobProgress){
                .type = j->type,
                .format_all = j->params.format_all,
                .done = j->done,
                .total = j->total,
                .rate = job_rate(j),
                .phase = j->phase ? strdup(j->phase) : NULL,
                .mapper = j->mapper ? strdup(j->mapper) : NULL,
                .finished = j->finished,
                .result = j->result,
        };
        pthread_mutex_unlock(&j->lock);
}

void job_set_phase(Job *j, const char *phase) {
        pthread_mutex_lock(&j->lock);
        free(j->phase);
        j->phase = phase ? strdup(phase) : NULL;
        pthread_mutex_unlock(&j->lock);
        manager_wake(j->manager);
}

/* The engine's progress callback. */
static int job_progress(uint64_t done, uint64_t total, void *userdata) {
        Job *j = userdata;
        uint64_t now = ade_now_monotonic_usec();
        bool signal;

        pthread_mutex_lock(&j->lock);
        /* A new pass (a resume, or decryption after its header export) counts from where it is. */
        if (j->rate_usec0 == 0 || done < j->done) {
                j->rate_done0 = done;
                j->rate_usec0 = now;
        }
        j->rate_usec = now;
        j->done = done;
        j->total = total;
        signal = done >= total || now - j->last_signal_usec >= PROGRESS_INTERVAL_USEC;
        if (signal)
                j->last_signal_usec = now;
        pthread_mutex_unlock(&j->lock);
        if (signal)
                manager_wake(j->manager);

        /* Non-zero makes libcryptsetup stop at the next hotzone boundary: resumable. */
        return atomic_load(&j->cancel) ? 1 : 0;
}

bool job_is_cancelled(Job *j) {
        return atomic_load(&j->cancel);
}

static int job_cancelled(void *userdata) {
        return job_is_cancelled(userdata) ? 1 : 0;
}

int job_fail(Job *j, int r, const char *error_name, json_object *parameters, const char *format, ...) {
        va_list ap;
        char *msg = NULL;

        /* A job told to stop has not failed (a Key Vault call it was in ends -ECANCELED too): it is
         * reported as stopped, resumable, never as the failure of the step it was in. */
        if (r == -ECANCELED) {
                json_object_put(parameters);
                return r;
        }

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);

        pthread_mutex_lock(&j->lock);
        if (j->failed) {
                /* The first failure is the specific one ("cannot unmount ... held by ..."); callers
                 * further out know less and must not replace it with "encrypting ... failed". */
                pthread_mutex_unlock(&j->lock);
                free(msg);
                json_object_put(parameters);
                return r;
        }
        j->failed = true;
        free(j->message);
        j->message = msg;
        free(j->error_name);
        j->error_name = error_name ? strdup(error_name) : NULL;
        json_object_put(j->error_parameters);
        j->error_parameters = parameters;
        pthread_mutex_unlock(&j->lock);
        return r;
}

int job_fail_cloud(Job *j, int r, const AdeCloudError *e, const char *what) {
        _cleanup_free_ char *text = ade_cloud_error_to_string(e, "Key Vault");
        json_object *params = aded_error_keyvault_parameters(e);

        /* The caller reads which volume it was as well as which vault. */
        if (params)
                json_object_object_add(params, "device", json_object_new_string(j->device));
        return job_fail(j, r, ADED_ERROR("KeyVaultError"), params, "%s for %s failed: %s", what, j->device,
                text ?: strerror(-r));
}

void job_note(Job *j, const char *why) {
        ade_log_warning("%s: %s", j->device, why);
        pthread_mutex_lock(&j->lock);
        free(j->message);
        j->message = strdup(why);
        pthread_mutex_unlock(&j->lock);
}

void job_set_mounted_on(Job *j, const char *path) {
        pthread_mutex_lock(&j->lock);
        (void)ade_strdup_to(&j->mounted_on, path);
        pthread_mutex_unlock(&j->lock);
}

void job_set_mapper(Job *j, const char *name) {
        pthread_mutex_lock(&j->lock);
        (void)ade_strdup_to(&j->mapper, name);
        pthread_mutex_unlock(&j->lock);
        manager_wake(j->manager);
}

void job_engine_options(Job *j, AdeLuksOptions *ret) {
        *ret = (AdeLuksOptions){
                .header_dir = j->manager->config->volumes.header_dir,
                .escrow_confirmed = true,
                .format_all = j->params.format_all,
                .format_all_confirmed = j->params.format_all,
                .progress = job_progress,
                .cancelled = job_cancelled,
                .userdata = j,
        };
}

int job_record_step(Job *j, AdeJobStep step, AdedStateUpdate update, void *userdata) {
        int r;

        if (step != _ADE_JOB_STEP_INVALID)
                ade_log_context_set_step(ade_job_step_to_string(step));
        r = aded_state_update(j->manager->state, job_key(j), step, update, userdata);
        if (r < 0 && r != -ENOENT)
                return job_fail(j, r, NULL, NULL,
                        "cannot save the state file in %s: %s; the job on %s stopped there and goes on once the "
                        "file can be written (%s, then restart aded or run it again)",
                        j->manager->config->daemon.state_dir, strerror(-r), j->device,
                        r == -EMFILE || r == -ENFILE ? "raise aded's open-files limit, LimitNOFILE= in aded.service"
                                                     : "free space, fix the folder");
        return r;
}

static void set_error(AdeStateVolume *v, void *userdata) {
        (void)ade_strdup_to(&v->error, userdata);
}

/* Keeps a failure in the state file, for Show after the job is gone (and after a restart). */
static void record_failure(Job *j, int r) {
        _cleanup_free_ char *message = NULL;

        pthread_mutex_lock(&j->lock);
        message = strdup(j->message ?: strerror(-r));
        pthread_mutex_unlock(&j->lock);
        if (message)
                (void)aded_state_update(j->manager->state, job_key(j), _ADE_JOB_STEP_INVALID, set_error, message);
}

int job_header(Job *j, char **ret) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        char *h = NULL;

        (void)aded_state_get(j->manager->state, job_key(j), &record);
        /* A recorded header file that is gone (a decryption that ended) names nothing. */
        if (record && record->header_path && access(record->header_path, F_OK) == 0)
                h = TAKE_PTR(record->header_path);
        if (!h && j->volume->stable_id &&
                ade_luks_find_header(j->manager->config->volumes.header_dir, j->volume->stable_id, &h) < 0)
                h = NULL;
        *ret = h;
        return 0;
}

int job_fetch_key(Job *j, const char *header, const char *what, AdeLuksToken **ret_token, AdeSecret **ret_keyfile) {
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

static int (*const job_run[_ADED_JOB_TYPE_MAX])(Job *j) = {
        [ADED_JOB_ENCRYPT] = aded_encrypt_run,
        [ADED_JOB_DECRYPT] = aded_decrypt_run,
        [ADED_JOB_ROTATE] = aded_rotate_run,
        [ADED_JOB_UNLOCK] = aded_unlock_run,
};

static void *job_thread(void *userdata) {
        Job *j = userdata;
        _cleanup_free_ char *mapper = NULL;
        int r;

        /* Everything this thread logs is about this job on this volume (ade-log.h). */
        aded_job_log_context(j->type, j->device);
        if (j->manager->dm && ade_dm_find_crypt(j->device, &mapper) > 0)
                job_set_mapper(j, mapper);
        /* Key Vault's retries in this thread end when the job is cancelled. */
        ade_http_set_thread_cancel(job_cancelled, j);

        r = j->type >= 0 && j->type < _ADED_JOB_TYPE_MAX ? job_run[j->type](j) : -EINVAL;
        if (r < 0 && r != -ECANCELED)
                record_failure(j, r);

        pthread_mutex_lock(&j->lock);
        j->finished = true;
        j->result = r;
        if (r < 0 && r != -ECANCELED && !j->message && asprintf(&j->message, "%s: %s", j->device, strerror(-r)) < 0)
                j->message = NULL;
        pthread_mutex_unlock(&j->lock);
        manager_wake(j->manager);
        return NULL;
}

int job_start(Job *j) {
        int r;

        r = manager_thread_start(&j->thread, job_thread, j);
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

void job_add_unlock_result(Job *j, json_object *v) {
        pthread_mutex_lock(&j->lock);
        if (j->finished && j->result == 0) {
                if (j->mounted_on)
                        json_object_object_add(v, "mountpoint", json_object_new_string(j->mounted_on));
                if (j->message)
                        json_object_object_add(v, "message", json_object_new_string(j->message));
        }
        pthread_mutex_unlock(&j->lock);
}
