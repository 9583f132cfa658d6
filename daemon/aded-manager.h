/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "ade-config.h"
#include "ade-resolver.h"
#include "ade-varlink.h"
#include "ade-volume.h"
#include "aded-job.h"
#include "aded-metrics.h"
#include "aded-params.h"
#include "aded-state.h"
#include "aded-task.h"

/* aded's manager. One sd-event loop thread owns the varlink server, the job list and every reply;
 * each job runs in its own thread (aded-job.h) and wakes the loop by writing the manager's eventfd
 * (manager_wake()). The state file is shared through AdedState, which locks. Show never waits for a
 * job (aded-show.h). */

struct Manager {
        /* Set at start, read by every thread. */
        AdeConfig *config;
        AdedState *state;
        AdeResolver *resolver; /* Key Vault for every job, and the preconditions' identity */
        bool dm;               /* device-mapper available */
        /* Not in pid 1's mount namespace (or it cannot be told): what aded would mount or unmount
         * would change only its own view, so online encryption and Unlock's mount are refused. */
        bool mount_ns_foreign;

        /* The loop's alone. */
        sd_event *event;
        AdeVarlinkServer *server;
        struct KeySocket *keysocket; /* aded-keysocket.h; NULL when it could not listen */
        struct NewDisks *newdisks;   /* aded-newdisks.h */
        gid_t group;
        int event_fd;
        sd_event_source *event_fd_source;
        sd_event_source *extend_timer; /* while stopping: extends systemd's stop timeout, see manager_stop() */
        Job **jobs;                    /* running, or finished and not reaped yet */
        size_t n_jobs;
        AdedTask *preps;                   /* Enable calls whose read-only checks run in a thread (aded-enable.c) */
        struct QueuedEnable *enable_queue; /* Enable calls that came while busy, in order (aded-enable.h) */
        AdedTask *show_queries;            /* Show calls whose device reads run in a thread (aded-show.c) */
        AdedTask *selects;                 /* Disable, RotateKey, Unlock choosing their volumes in a thread
                                            * (aded-select.c) */
        AdedTask *restores;                /* RestoreHeader calls, in a thread (aded-restore.c) */
        AdedTask *adopts;                  /* Adopt calls, in a thread (aded-adopt.c) */
        struct Waiter *waiters;            /* calls waiting for jobs, and Watch (aded-waiter.c) */
        AdeVolume **volumes;               /* cached list, see manager_volumes_cached() */
        uint64_t volumes_usec;
        uint64_t volumes_generation;     /* counts manager_volumes_invalidate() */
        sd_event_source *metrics_timer;  /* aded-metrics.h; NULL without [metrics] path */
        sd_event_source *rotation_timer; /* aded-rotation.h; NULL without [rotation] interval */
        sd_event_source *kek_timer;      /* aded-rotation.h; NULL without [rotation] kek-follow-latest */
        AdedTask *kek_checks;            /* its check of the KEKs' versions, in a thread */
        sd_event_source *backup_timer;   /* aded-backup.h; NULL without [backup] url */
        AdedTask *backup_retries;        /* its uploads of pending header backups, in a thread */
        uint64_t backup_delay_usec;      /* the retries' backoff; 0 after a success */
        bool kek_behind;                 /* more volumes wait for the newer KEK: look when a job ends */
        bool metrics_pending;            /* its Show query runs */
        int metrics_error;               /* the last write's, to say a failure once */
        AdedUnlockStats unlocks;         /* any thread */
        bool stopping;
        char *last_status;
        uint64_t watch_last_usec;
};

int manager_new(AdeConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Listens, resumes unfinished jobs, READY=1. */
int manager_start(Manager *m);
/* SIGTERM: cancels jobs; the loop exits once they are joined. */
void manager_stop(Manager *m);

/* Starts @fn(@userdata) in a thread that takes no signals (the loop handles SIGTERM through
 * signalfd): a job's, or a call's reads. */
int manager_thread_start(pthread_t *ret, void *(*fn)(void *), void *userdata);

/* Wakes the loop from any thread: it reaps finished jobs and preparations, and answers waiters. */
void manager_wake(Manager *m);

/* Fires the one-shot timer @s (an sd-event time source on the loop) @usec from now, once. 0 or a
 * negative errno. */
int manager_timer_arm(sd_event_source *s, uint64_t usec);

/* The devices this daemon may touch, as volumes, freshly probed: [volumes] when set, else
 * discovery; never the device under "/" as data. */
int manager_volumes(Manager *m, AdeVolume ***ret);
/* manager_volumes() without the OS and resource volumes. */
int manager_data_volumes(Manager *m, AdeVolume ***ret);
/* The list Show reports on: probed at most every 2 s, and never while a job runs (probing reads
 * every device, and a device under reencryption is its job's alone). Borrowed. */
int manager_volumes_cached(Manager *m, AdeVolume *const **ret);
void manager_volumes_invalidate(Manager *m);
/* The cached list when manager_volumes_cached() would return it without probing, else NULL. */
AdeVolume *const *manager_volumes_cached_nowait(Manager *m);
uint64_t manager_volumes_generation(Manager *m);
/* Takes @l, probed from @probed_usec on, as the cached list, unless the list was invalidated since
 * (@generation, from manager_volumes_generation() then) or a newer one is cached; else frees it. */
void manager_volumes_adopt(Manager *m, AdeVolume **l, uint64_t probed_usec, uint64_t generation);

/* Starts a job of @type on each of the @n volumes @vols, and lists them in *ret_jobs (n entries,
 * NULL-terminated; the array is the caller's, the jobs the manager's). On failure those already
 * started are cancelled. */
int manager_start_jobs(Manager *m, AdedJobType type, AdeVolume *const *vols, size_t n, const AdedEnableParams *params,
        Job ***ret_jobs);
/* The same for one volume, not logged: a resume says so itself. Both refuse a volume on which a
 * job runs already (-EBUSY): one job per device, whichever method asked. */
int manager_start_job(Manager *m, AdedJobType type, const AdeVolume *v, const AdedEnableParams *params, Job **ret);

Job *manager_find_job(Manager *m, const char *device);
/* Whether a job, Enable's preparation or the choice of volumes of Disable, RotateKey or Unlock is
 * running. */
bool manager_has_running_jobs(Manager *m);
/* The device of a running job, for a refusal to name: NULL when only a preparation or a choice of
 * volumes runs (no volume is held yet). */
const char *manager_busy_device(Manager *m);
