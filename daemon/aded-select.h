/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-varlink.h"
#include "aded-job.h"
#include "aded-params.h"

/* Disable, RotateKey and Unlock choose the volumes they take by reading them (the device list, the
 * LUKS header, device-mapper, the mount table). A hung disk must stall only its own call, so the
 * choice runs in a thread of its own, like Enable's preparation (aded-enable.h); the loop then
 * refuses, answers that there is nothing to do, or starts the jobs, one per device. */

typedef struct Manager Manager;
typedef struct VolumeSelect VolumeSelect;

typedef enum AdedSelectWant {
        ADED_SELECT_ENCRYPTED, /* Disable: finished volumes and interrupted decryptions */
        ADED_SELECT_FINISHED,  /* RotateKey: finished volumes */
        ADED_SELECT_LOCKED,    /* Unlock: finished volumes not open, or open and not mounted yet */
} AdedSelectWant;

typedef struct AdedSelectRequest {
        AdedJobType type;
        AdedSelectWant want;
        const char *device;             /* only this one (its path or stable id; NoSuchVolume when none is), or NULL */
        bool refuse_busy;               /* InProgress while any job runs (Disable, RotateKey) */
        bool need_dm;                   /* PreconditionFailed without device-mapper (Unlock) */
        const AdedEnableParams *params; /* for the jobs (copied), or NULL */
} AdedSelectRequest;

/* Starts choosing the data volumes for @req on behalf of @call (@flags: its varlink flags; NULL for
 * aded's own choice, whose outcome goes to the log); the
 * loop answers once the choice is made (select_dispatch()): NoSuchVolume, the volumes as they are
 * when none is taken, InProgress when a job holds one of them, or once the jobs it started are done
 * (with "more": their progress meanwhile). */
int select_start(Manager *m, AdeVarlinkCall *call, unsigned flags, const AdedSelectRequest *req);

/* Answers the calls whose choice is made; true when any was. */
bool select_dispatch(Manager *m);

/* Waits for the choices still running and drops their calls, unanswered. */
void select_free_all(Manager *m);
