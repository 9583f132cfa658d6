/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-state.h"
#include "ade-volume.h"

/* Before a job writes to a volume: is the device in hand the volume the state record, the header
 * and its token describe? A /dev name proves nothing (another disk takes it after a detach, a
 * reboot, a crash), so the volume's stable id must be the record's key and the token's DeviceId
 * (a detached or exported header), and the LUKS UUID of the header found (on the device, or the
 * detached one) must be the record's; a UUID that is not one is refused before anything is named
 * after it (docs/architecture.md §4).
 *
 * @record and @header may be NULL (no record; the header on the device). A detached @header that
 * does not exist yet (an encryption stopped before creating it) is not a mismatch. Returns 0, or
 * -EXDEV (another disk) / -EBADMSG (a crafted UUID) with *ret_why, a sentence that names the device
 * and says what differs and what to do. Reads only. */
int aded_verify_volume(const AdeVolume *v, const AdeStateVolume *record, const char *header, char **ret_why);

typedef struct Job Job;

/* aded_verify_volume() for @j's volume; a mismatch fails the job with the sentence (Show reports it
 * through the record's error) and returns the error. */
int aded_verify_job(Job *j, const AdeStateVolume *record, const char *header);
