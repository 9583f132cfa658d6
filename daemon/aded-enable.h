/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-varlink.h"
#include "aded-params.h"
#include "ade-state.h"

/* Enable's preparation. The read-only checks (e2fsck -fn, resize2fs -P, IMDS, ARM, Key Vault) take
 * from milliseconds to many seconds, so they run in a thread of their own, which builds the plan
 * (docs/architecture.md §5: every check, and the steps per device); the loop then refuses, answers a
 * dry run, or starts the encryption jobs. */

typedef struct Manager Manager;
typedef struct EnablePrep EnablePrep;
typedef struct QueuedEnable QueuedEnable;

/* Starts the preparation of Enable for @call (@flags: its varlink flags; NULL for a queued Enable
 * whose caller was answered already) with @params (copied) over
 * the data volumes; @volume_type is what the caller asked ("Data" or "All"). The loop answers once it
 * is done (enable_preps_dispatch()). An Enable that passes its checks (not a dry run) is recorded as
 * the enrollment (aded_state_set_enrollment()) before its jobs start. */
int enable_prep_start(Manager *m, AdeVarlinkCall *call, unsigned flags, bool dry_run, const char *volume_type,
        const AdedEnableParams *params);

/* An Enable that arrives while aded is busy (manager_has_running_jobs()) is queued, not refused
 * (a dry run is refused: its plan would describe volumes a job is changing). The caller is answered
 * at once with {"volumes": [], "queued": true}: a progress reply with "more", after which it is
 * followed to its end like any Enable; the final reply without, after which its refusal or failure
 * goes to the log. Queued Enables start in order, each once aded is idle again
 * (enable_queue_dispatch()), before aded's own pass over new disks; each runs its checks then, so
 * one that finds its volumes encrypted already changes nothing. Not kept across a restart. */
int enable_queue_add(
        Manager *m, AdeVarlinkCall *call, unsigned flags, const char *volume_type, const AdedEnableParams *params);

/* When aded is idle: starts the preparation of the oldest queued Enable whose caller still waits (or
 * was answered "queued"); true when it started one. */
bool enable_queue_dispatch(Manager *m);

/* aded stops: the queued Enables' callers are answered "stopping"; the others are dropped, logged. */
void enable_queue_drop(Manager *m);

/* aded's own Enable over the data volumes with @enrollment's choices, for new disks
 * (aded-newdisks.h): no caller, no refusal of the others for one ineligible volume (it is left
 * alone, logged and kept for Show), the enrollment's exclusions and empty volumes skipped. */
int enable_prep_start_auto(Manager *m, const AdeStateEnrollment *enrollment);

/* Answers the Enable calls whose preparation finished; true when any did. */
bool enable_preps_dispatch(Manager *m);

/* Tells the preparations still running that aded stops: their cloud requests end at once
 * (ade_http_set_thread_cancel()) and each is answered "stopping" when it is done. */
void enable_preps_cancel(Manager *m);

/* Waits for the preparations still running and drops them, unanswered. */
void enable_preps_free_all(Manager *m);
