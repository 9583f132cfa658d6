/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* aded's internals. One sd-event loop thread owns the varlink server, the job list and every
 * reply; each job runs in its own worker thread and reports progress by writing the manager's
 * eventfd. The state file is shared and guarded by state_lock. Show never waits for a job: it reads
 * a job's progress under the job's short lock, and device-mapper status from ade-dm. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "ade-cloud-error.h"
#include "ade-io.h"
#include "ade-config.h"
#include "ade-luks.h"
#include "ade-resolver.h"
#include "ade-state.h"
#include "ade-varlink.h"
#include "ade-volume.h"

#define ADED_INTERFACE "io.ade.DiskEncryption"
#define ADED_ERROR(name) ADED_INTERFACE "." name

/* The volume states of docs/architecture.md §7 (ADE's names). */
typedef enum AdedVolumeState {
        ADED_NOT_ENCRYPTED,
        ADED_ENCRYPTION_PENDING,
        ADED_ENCRYPTION_IN_PROGRESS,
        ADED_ENCRYPTED,
        ADED_VM_RESTART_PENDING,
        ADED_DECRYPTION_IN_PROGRESS,
        ADED_NOT_MOUNTED,
        ADED_FAILED,
        _ADED_VOLUME_STATE_MAX,
        _ADED_VOLUME_STATE_INVALID = -EINVAL,
} AdedVolumeState;

const char *aded_volume_state_to_string(AdedVolumeState s);

typedef enum AdedJobType {
        ADED_JOB_ENCRYPT,
        ADED_JOB_DECRYPT,
        ADED_JOB_ROTATE,
        ADED_JOB_UNLOCK,
        _ADED_JOB_TYPE_MAX,
        _ADED_JOB_TYPE_INVALID = -EINVAL,
} AdedJobType;

typedef struct Manager Manager;

/* What Enable asked for, copied; also what a resume rebuilds from the state file. */
typedef struct AdedEnableParams {
        char *keyvault_url;
        char *keyvault_resource_id;
        char *kek_url;
        char *kek_vault_resource_id;
        char *kek_algorithm;
        bool format_all;
        bool skip_snapshot_check;
} AdedEnableParams;

void aded_enable_params_done(AdedEnableParams *p);

typedef struct Job {
        Manager *manager;
        AdedJobType type;
        char *device;
        AdeVolume *volume; /* probed before the job began: type, mountpoint, stable id */
        AdedEnableParams params;
        bool resume;          /* started at start-up from the state file or a header in progress */
        char *rotate_kek_url; /* RotateKey: the new KEK, or NULL for a new key file */

        pthread_t thread;
        bool thread_started;
        atomic_bool cancel;

        /* Written by the worker, read by the loop, under lock. */
        pthread_mutex_t lock;
        uint64_t done, total;
        char *phase; /* "escrow", "encrypting", ... for Show's message */
        bool finished;
        int result;       /* 0 or negative errno, once finished */
        char *error_name; /* varlink error to send, or NULL for a System error from result */
        json_object *error_parameters;
        char *message;    /* what a person reads when it failed, or (Unlock, result 0) why it left a volume
                           * open but unmounted */
        char *mounted_on; /* Unlock: where the volume's filesystem is mounted now, or NULL */
        uint64_t last_signal_usec;
        uint64_t start_usec;
        uint64_t start_done; /* bytes already done when this run began (resume), for the rate */

        /* Loop side. */
        bool reaped;        /* joined and out of the manager's list */
        unsigned n_waiters; /* calls that still report on it; the last one frees a reaped job */
} Job;

struct Manager {
        sd_event *event;
        AdeVarlinkServer *server;
        AdeConfig *config;
        AdeResolver *resolver; /* Key Vault for every job, and the preconditions' identity */
        gid_t group;
        bool dm; /* device-mapper available */

        pthread_mutex_t state_lock;
        AdeState *state;

        Job **jobs;
        size_t n_jobs;

        int event_fd;
        sd_event_source *event_fd_source;

        /* Enable calls whose read-only checks run in a worker (aded-methods.c). */
        struct EnablePrep *preps;

        /* Calls waiting for jobs: Enable/Disable/RotateKey with the jobs they started, and Watch. */
        struct Waiter *waiters;

        AdeVolume **volumes; /* cached list, see manager_show_json() */
        uint64_t volumes_usec;

        bool stopping;
        char *last_status;
        uint64_t watch_last_usec;
};

/* Manager. */
int manager_new(AdeConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
int manager_start(Manager *m); /* listen, resume unfinished jobs, READY=1 */
void manager_stop(Manager *m); /* SIGTERM: cancel jobs; the loop exits once they are joined */

/* The devices this daemon may touch, as volumes: [volumes] when set, else discovery. Never the
 * device under "/" for Data. */
int manager_volumes(Manager *m, AdeVolume ***ret);

/* The docs/architecture.md §7 volume object for @device (probed @v), from the job running on it, or device-mapper
 * and the LUKS header when none. */
int manager_volume_json(Manager *m, const AdeVolume *v, json_object **ret);
void manager_volumes_invalidate(Manager *m);
/* {"os": STATE, "data": STATE, "volumes": [...]}, filtered by @type_filter (NULL, "OS", "Data"). */
int manager_show_json(Manager *m, const char *type_filter, json_object **ret);

Job *manager_find_job(Manager *m, const char *device);
bool manager_has_running_jobs(Manager *m);
/* Called by the loop when the event fd fires: reaps finished jobs, answers waiters. */
void manager_dispatch_progress(Manager *m);

/* Waiters (aded-methods.c). */
struct Waiter {
        struct Waiter *next;
        AdeVarlinkCall *call;
        bool watch; /* Watch: every change, forever */
        Job **jobs; /* Enable/Disable/RotateKey: these jobs (borrowed; the manager keeps them) */
        size_t n_jobs;
        json_object *plan; /* Enable: the plan to send with the final reply */
};
int methods_bind(Manager *m);
/* Answers the Enable calls whose preparation finished; true when any did. */
bool enable_preps_dispatch(Manager *m);
void enable_preps_free_all(Manager *m); /* waits for their workers */
void waiters_dispatch(Manager *m, bool jobs_changed);
void waiter_free(struct Waiter *w);

/* Jobs (aded-job.c). */
int job_new(Manager *m, AdedJobType type, const AdeVolume *v, const AdedEnableParams *params, Job **ret);
Job *job_free(Job *j);
int job_start(Job *j);
/* Progress snapshot for Show and notify; copies under the job's lock. */
void job_snapshot(
        Job *j, uint64_t *ret_done, uint64_t *ret_total, bool *ret_finished, int *ret_result, char **ret_phase);
int job_error_reply(Job *j, AdeVarlinkCall *call);

/* Whether the opened volume at @mapper (/dev/mapper/NAME) can be mounted on @mount_point, the place
 * the state file recorded for it at enable: 1 when it is mounted there already, 0 when it can be
 * mounted now. Otherwise a negative errno and, in *ret_why, a sentence for a person naming the device
 * and the path: -EALREADY (the mapper is mounted elsewhere: left there), -ENOENT or -ENOTDIR (no
 * directory at @mount_point), -EBUSY (something else is mounted on it). */
int aded_mount_check(const char *mapper, const char *mount_point, char **ret_why);

/* Varlink errors with docs/architecture.md §7 parameters. */
int aded_error_precondition(AdeVarlinkCall *call, const char *check, const char *reason);
int aded_error_no_such_volume(AdeVarlinkCall *call, const char *device);
int aded_error_in_progress(AdeVarlinkCall *call);

/* Serialises libdevmapper use across the loop and the job threads; aded_dm_find_crypt() takes it. */
extern pthread_mutex_t aded_dm_lock;
int aded_dm_find_crypt(const char *device, char **ret_name);
