/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-volume.h"

/* New data disks (docs/architecture.md §9). Once the machine is enrolled (an Enable was accepted:
 * ade-state.h's AdeStateEnrollment), a data disk that appears is encrypted with no one asking: at
 * every start (the per-boot pass) and after every udev add or change event on a block device, aded
 * waits until no disk event came for [daemon] new-disk-settle (so that a mkfs or cloud-init's
 * disk_setup is not raced), then runs its own Enable over the data volumes with the enrollment's
 * choices (aded-enable.h: enable_prep_start_auto()). A pass that falls while a job or an Enable
 * runs waits for them. Encrypted volumes, the ones the operator disabled since and empty ones
 * (unless enrolled with format-all) are left alone, each with a log line and a sentence Show
 * prints; so a second pass changes nothing. [daemon] new-disks = no turns all of this off. */

typedef struct Manager Manager;
typedef struct NewDisks NewDisks;

/* Listens for udev's block events (without udev, only the per-start pass runs) and schedules the
 * per-start pass. Logs what fails; 0 or -ENOMEM. */
int aded_newdisks_start(Manager *m, NewDisks **ret);
NewDisks *aded_newdisks_free(NewDisks *n);

/* From the loop once no job and no Enable runs: runs a pass that was due meanwhile. */
void aded_newdisks_idle(Manager *m);

/* The last pass left these volumes (stable ids, with the reasons, index for index) alone:
 * replaces the list Show reads. Either may be NULL. */
void aded_newdisks_left_alone(Manager *m, char *const *ids, char *const *why);

/* Why the last pass left the volume @device_id alone, or NULL: a new string. Any thread. */
char *aded_newdisks_why_left(Manager *m, const char *device_id);

/* The operator disables the volume @device_id (its stable id; @device its path, for the log), or
 * every data volume (both NULL): the volume is excluded from the enrollment, or the machine no
 * longer enrolled, so that no pass encrypts it again. No device I/O. A failure is logged, not
 * returned: the decryption goes ahead. */
void aded_newdisks_opt_out(Manager *m, const char *device_id, const char *device);
