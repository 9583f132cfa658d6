/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-luks.h"
#include "ade-secret.h"
#include "ade-state.h"

/* The OS volume's steps in aded (docs/architecture.md §9): Enable initialises its detached header
 * while the root stays mounted and writes the boot contract (ade-osboot); the reboot's initramfs
 * opens it as /dev/mapper/ade-root; aded then continues the reencryption online. The decision of
 * what a record asks for is ade_osvol_next(), a pure function; this file gathers its facts and
 * takes the steps. */

typedef struct Job Job;
typedef struct Manager Manager;

/* 1 when "/" is mounted from /dev/mapper/ade-root and that mapping sits on @device; 0 when not
 * (also when @device cannot be examined). */
int aded_osroot_on_mapper(const char *device);

/* Where the header goes, as the root's checks judge it now: "/boot/luks" or "/boot/efi/luks".
 * -EPERM when a check failed, with *ret_why its sentence. */
int aded_osroot_header_dir(Manager *m, char **ret, char **ret_why);

/* The OS volume's part of Enable's job, after the escrow (or its fetch), in the job's thread:
 *   - "/" on ade-root: the reencryption continues online under it; 0 when it is done.
 *   - the record at ADE_STEP_HEADER or later and "/" still on the partition: nothing (never opened,
 *     never resumed); 1: the volume waits for the reboot.
 *   - otherwise: the header initialised (@o with running_root and init_only), the partition's
 *     PARTUUID read, the boot contract written (ade_osboot_apply()), ADE_STEP_HEADER recorded; 1.
 *     A failure removes the header file and the record: the root stays as it was.
 * @o and @plan as for ade_luks_encrypt(); a negative errno with the job's error set. */
int aded_osroot_encrypt(Job *j, const AdeStateVolume *record, const char *header, const AdeLuksToken *token,
        const AdeSecret *keyfile, AdeLuksOptions *o, AdeLuksPlan *plan, char **engine_error);

/* At aded's start: the OS volume's record, resumed when "/" is on ade-root (the job as for a data
 * volume), else left waiting for the reboot, or noted in the log as an Enable to run again. */
int aded_osroot_resume(Manager *m);
