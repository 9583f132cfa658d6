/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-secret.h"
#include "ade-state.h"

typedef struct Job Job;

/* After a power cut or a reboot in the middle of an online encryption or decryption nothing is open
 * and the filesystem is mounted nowhere (its fstab line names a filesystem the LUKS header hides):
 * the volume is opened as ade-<@uuid> with @header (NULL: on the device; activation recovers the
 * interrupted hotzone) and mounted again where @record says it was, with its options, so that the
 * rest runs online as before and the data is in use meanwhile (docs/architecture.md §4). Returns
 * the mapping's name (the caller frees it), or NULL when the volume stays closed (the resume then
 * runs offline, as it would without device-mapper). A failed mount is logged; the name is returned
 * all the same. */
char *aded_reopen(Job *j, const AdeStateVolume *record, const char *header, const char *uuid, const AdeSecret *keyfile);

/* A decryption whose reencryption ended before a power cut, before its @record was removed: the
 * plain filesystem is mounted nowhere. It is mounted where @record says it was, with its options,
 * as the decryption would have left it; unless @record is not a decryption's, names no mount point,
 * the device is held (a mapping) or something is mounted there (a failure is logged). */
void aded_remount_plain(Job *j, const AdeStateVolume *record);
