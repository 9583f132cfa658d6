/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-state.h"

/* aded's state file (lib/ade-state) shared by the loop and the job threads. Every call takes one
 * lock, reads or changes the record of one device and, when it changed it, saves the file before it
 * lets go: a record on disk is never behind the step a job has moved on to. Readers get copies,
 * never a pointer into the state. */

typedef struct AdedState AdedState;

/* Loads <@dir>/state.json (see ade_state_load(): a missing file is an empty state). */
int aded_state_open(const char *dir, AdedState **ret, char **ret_error);
AdedState *aded_state_free(AdedState *s);

/* A copy of @device's record in *ret (free with ade_state_volume_free()), NULL when it has none.
 * 0 or -ENOMEM. */
int aded_state_get(AdedState *s, const char *device, AdeStateVolume **ret);

/* Calls @read with the whole state under the lock (it must not call back into @s) and returns what
 * it returned. */
int aded_state_read(AdedState *s, int (*read)(const AdeState *state, void *userdata), void *userdata);

/* Changes a record in place, under the lock. */
typedef void (*AdedStateUpdate)(AdeStateVolume *v, void *userdata);

/* An AdedStateUpdate: the header is the detached file @path (a const char *), or on the device
 * (NULL). */
void aded_state_set_header_path(AdeStateVolume *v, void *path);
/* An AdedStateUpdate: the LUKS UUID is @uuid (a const char *). */
void aded_state_set_uuid(AdeStateVolume *v, void *uuid);

/* Changes @device's record: @update (optional) with @userdata, then @step as the last one completed
 * (_ADE_JOB_STEP_INVALID keeps the step), stamps the time and saves. -ENOENT when @device has no
 * record, else 0 or the save's negative errno. */
int aded_state_update(AdedState *s, const char *device, AdeJobStep step, AdedStateUpdate update, void *userdata);

/* A fresh record of @kind for @device (replacing any), filled by @update (optional), at @step,
 * saved. 0 or a negative errno. */
int aded_state_add(
        AdedState *s, const char *device, AdeJobKind kind, AdeJobStep step, AdedStateUpdate update, void *userdata);

/* Drops @device's record, if any, and saves. 0 or the save's negative errno. */
int aded_state_remove(AdedState *s, const char *device);
