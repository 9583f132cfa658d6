/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "ade-cloud-error.h"
#include "ade-luks.h"
#include "ade-secret.h"
#include "ade-varlink.h"
#include "ade-volume.h"
#include "aded-params.h"
#include "aded-state.h"

/* A job: one operation on one volume, in a thread of its own. The operation itself (aded-encrypt.c,
 * aded-decrypt.c, aded-rotate.c, aded-unlock.c) runs in that thread and reports through the
 * functions of the second half below; the loop reads a job only through copies taken under the
 * job's short lock (job_snapshot()), so Show never waits for a job and never touches the device
 * the job holds. A job's thread blocks every signal: the loop handles SIGTERM and cancels jobs,
 * which stop at the next hotzone boundary and resume at the next start. */

typedef struct Manager Manager;
typedef struct Job Job;

typedef enum AdedJobType {
        ADED_JOB_ENCRYPT,
        ADED_JOB_DECRYPT,
        ADED_JOB_ROTATE,
        ADED_JOB_UNLOCK,
        _ADED_JOB_TYPE_MAX,
        _ADED_JOB_TYPE_INVALID = -EINVAL,
} AdedJobType;

/* "encryption", "decryption", "key rotation", "unlock": for sentences in the log. */
const char *aded_job_type_to_string(AdedJobType t);

/* Makes what this thread logs next about a job of @type on @device (ADE_VOLUME=, ADE_JOB=:
 * ade-log.h); aded_job_log_context(_ADED_JOB_TYPE_INVALID, NULL) ends that. */
void aded_job_log_context(AdedJobType type, const char *device);

/* What a job is doing, copied under its lock. */
typedef struct AdedJobProgress {
        AdedJobType type;
        bool format_all; /* Enable's formatAll */
        uint64_t done, total;
        uint64_t rate; /* bytes per second over this run of the job's reencryption; 0 until known */
        char *phase;   /* "fetching the key file", "encrypting", ... for Show's message; or NULL */
        char *mapper;  /* the name of the crypt mapping the volume is open on, as the job knows it, or NULL */
        bool finished;
        int result; /* once finished: 0 or a negative errno (-ECANCELED: stopped, resumes later) */
} AdedJobProgress;

void aded_job_progress_done(AdedJobProgress *p);

/* ---- the loop's side ---- */

/* A job of @type on (a copy of) @v with (a copy of) @params (optional). Not started. */
int job_new(Manager *m, AdedJobType type, const AdeVolume *v, const AdedEnableParams *params, Job **ret);
int job_start(Job *j);
/* Asks the job to stop at the next hotzone boundary (resumable); it finishes with -ECANCELED. */
void job_cancel(Job *j);
/* Whether the job was asked to stop (job_cancel()): from its own thread, between steps. */
bool job_is_cancelled(Job *j);
/* Cancels nothing: joins the thread (if any) and frees. */
Job *job_free(Job *j);

/* The loop's hold on a finished job: job_reap() joins its thread, logs how it ended, and frees it
 * unless waiters still report on it (job_hold()); then the last job_release() frees it. */
void job_reap(Job *j);
bool job_is_reaped(const Job *j);
void job_hold(Job *j);
void job_release(Job *j);

AdedJobType job_type(const Job *j);
const char *job_device(const Job *j);
/* The key of the job's volume in the state file (aded_state_key()). */
const char *job_key(const Job *j);
/* The job's own description of its volume, probed before it began; it does not change while the
 * job runs (the manager's list is refreshed meanwhile). */
const AdeVolume *job_volume(const Job *j);

/* Copies what the job is doing into *ret (free with aded_job_progress_done()). */
void job_snapshot(Job *j, AdedJobProgress *ret);

/* Answers @call with the job's error: its varlink error, or a System error with its message. */
int job_error_reply(Job *j, AdeVarlinkCall *call);

/* For an Unlock job that succeeded: sets "mountpoint" in the volume object @v where it mounted the
 * volume, and "message" to why it left it unmounted. */
void job_add_unlock_result(Job *j, json_object *v);

/* ---- the operation's side, in the job's thread ---- */

Manager *job_manager(Job *j);
const AdedEnableParams *job_params(const Job *j);

/* Shows @phase in Show's message. */
void job_set_phase(Job *j, const char *phase);

/* Sets the varlink error the waiting callers get (@error_name NULL: a System error with errno and
 * the message), and the message for Show and the log; takes @parameters. Returns @r. Only the first
 * call of a job counts: the step that failed says why most precisely, and the callers that pass
 * its error up may call again with a more general sentence, which is dropped. -ECANCELED sets
 * nothing: a job told to stop has not failed. */
int job_fail(Job *j, int r, const char *error_name, json_object *parameters, const char *format, ...) _printf_(5, 6);
/* A KeyVaultError with what the service said, for "@what failed". Returns @r. */
int job_fail_cloud(Job *j, int r, const AdeCloudError *e, const char *what);

/* Why a job that succeeded left something undone (Unlock: the volume is open but not mounted): for
 * the reply and the log. */
void job_note(Job *j, const char *why);
/* Unlock: where the volume's filesystem is mounted now. */
void job_set_mounted_on(Job *j, const char *path);
/* The volume is open now as /dev/mapper/@name (NULL: closed). A job starts with the mapping that
 * device-mapper had for its volume; an operation that activates one says so. Show reports it while
 * the job runs: it does not ask device-mapper about a volume under a job, whose thread may be
 * activating it through libcryptsetup. */
void job_set_mapper(Job *j, const char *name);

/* The engine's options for this job: header_dir from the configuration, progress and cancel
 * through the job, format-all as Enable asked. No hook and no active name. */
void job_engine_options(Job *j, AdeLuksOptions *ret);

/* Records @step (and @update's changes) in the state file for the job's device (see
 * aded_state_update()); a failed save is logged: the job stops there. */
int job_record_step(Job *j, AdeJobStep step, AdedStateUpdate update, void *userdata);

/* The job's volume's detached header: the one its record names, or the one in header_dir for its
 * stable id; NULL when the header is on the device. */
int job_header(Job *j, char **ret);

/* The key file of a volume ade encrypted: its token (from @header, or the device), then Key Vault
 * and the KEK. @what names the key in the job's phase and in the error a person reads. */
int job_fetch_key(Job *j, const char *header, const char *what, AdeLuksToken **ret_token, AdeSecret **ret_keyfile);
