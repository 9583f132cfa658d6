/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-state.h"
#include "ade-volume.h"

/* aded's state file (lib/ade-state) shared by the loop and the job threads. Every call takes one
 * lock, reads or changes the record of one volume and, when it changed it, saves the file before it
 * lets go: a record on disk is never behind the step a job has moved on to. Readers get copies,
 * never a pointer into the state. Records are keyed by the volume's stable id
 * (aded_state_key()), never by its /dev name. */

typedef struct AdedState AdedState;

/* Loads <@dir>/state.json (see ade_state_load(): a missing file is an empty state; a file of an
 * older version is migrated, the old one kept as state.json.v<N>). A file that cannot be read, is
 * corrupt or of a newer version does not fail: the state is then empty and read-only
 * (aded_state_degraded() says why, and the error is logged); every change returns -EROFS and the
 * file is never written. Returns 0 or -ENOMEM; *ret_error (optional) is set to NULL. */
int aded_state_open(const char *dir, AdedState **ret, char **ret_error);
AdedState *aded_state_free(AdedState *s);

/* Why aded runs read-only (a sentence naming the state file and what to do), or NULL. */
const char *aded_state_degraded(AdedState *s);

/* The key of @v's record: its stable id (its device path when it has none). */
static inline const char *aded_state_key(const AdeVolume *v) {
        return v->stable_id ?: v->device;
}

/* A copy of the record of the volume @device_id in *ret (free with ade_state_volume_free()), NULL
 * when it has none. 0 or -ENOMEM. */
int aded_state_get(AdedState *s, const char *device_id, AdeStateVolume **ret);
/* The same for the record of the volume whose LUKS UUID is @uuid (case ignored). */
int aded_state_get_by_uuid(AdedState *s, const char *uuid, AdeStateVolume **ret);
/* The same for the volume adopted from ADE under the mapping name @name (docs/architecture.md §12). */
int aded_state_get_by_adopted_name(AdedState *s, const char *name, AdeStateVolume **ret);

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
/* An AdedStateUpdate: the volume was last seen at @device (a const char *). */
void aded_state_set_device(AdeStateVolume *v, void *device);

/* Changes the record of @device_id: @update (optional) with @userdata, then @step as the last one
 * completed (_ADE_JOB_STEP_INVALID keeps the step), stamps the time and saves. -ENOENT when there is
 * no record, -EROFS when read-only, else 0 or the save's negative errno. */
int aded_state_update(AdedState *s, const char *device_id, AdeJobStep step, AdedStateUpdate update, void *userdata);

/* A fresh record of @kind for the volume @device_id now at @device (replacing any), filled by
 * @update (optional), at @step, saved. 0, -EROFS when read-only, or a negative errno. */
int aded_state_add(AdedState *s, const char *device_id, const char *device, AdeJobKind kind, AdeJobStep step,
        AdedStateUpdate update, void *userdata);

/* Drops the record of @device_id, if any, and saves. 0, -EROFS, or the save's negative errno. */
int aded_state_remove(AdedState *s, const char *device_id);

/* Records @e as the enrollment (what an accepted Enable asked for) and saves. 0, -EINVAL, -EROFS,
 * -ENOMEM, or the save's negative errno (then only memory holds the new one). */
int aded_state_set_enrollment(AdedState *s, const AdeStateEnrollment *e);
/* The operator disabled the volume @device_id, or (NULL) every data volume: the volume is excluded
 * from the enrollment, or the enrollment dropped, so that nothing encrypts it again by itself.
 * Saves when that changed the state. 1 when it did, 0 when there was nothing to change, -EROFS,
 * -ENOMEM or the save's negative errno. */
int aded_state_opt_out(AdedState *s, const char *device_id);
/* A copy of the enrollment in *ret, NULL when there is none. 0 or -ENOMEM. */
int aded_state_get_enrollment(AdedState *s, AdeStateEnrollment **ret);
