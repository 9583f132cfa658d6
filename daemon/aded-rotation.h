/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Scheduled key rotation (docs/architecture.md §13): with [rotation] interval set, aded rotates
 * each encrypted volume's key file once its key is that old (the record's rotatedUsec: the
 * encryption's escrow or the last rotation), one volume at a time and only while no other job or
 * call runs, through the same job as RotateKey (aded-rotate.c): recorded in the state file before
 * the disk changes, finished after a crash or reboot. aded's own timer, not a systemd timer: the
 * schedule is per volume and aded is the one that knows when it is idle. A volume whose record has
 * no rotatedUsec (encrypted by an older aded) counts from the first time the schedule sees it. */

typedef struct Manager Manager;

/* With [rotation] kek-follow-latest, every kek-interval a thread asks Key Vault for the current
 * version of each KEK the encrypted volumes use (GET of the key without its version). A newer
 * version, enabled and allowed to wrap, is taken by a rotation of the volume with that versioned
 * kekUrl (RotateKey's job: a new key file wrapped under it, the old secret disabled): kek-url stays
 * versioned, and ade never makes KEK versions itself. Again one volume at a time. */

/* When the schedule looks again after it could not start a due rotation (busy). */
#define ADED_ROTATION_RETRY_USEC (60U * 1000U * 1000U)

/* Starts the schedule when [rotation] interval is set, and the KEK check with kek-follow-latest.
 * 0 or a negative errno. */
int aded_rotation_start(Manager *m);
/* In the loop: starts the rotation a finished KEK check found due. True when any check was done. */
bool aded_rotation_dispatch(Manager *m);
/* A job ended or aded became idle: a rotation that waited may start now. */
void aded_rotation_poke(Manager *m);
void aded_rotation_stop(Manager *m);
