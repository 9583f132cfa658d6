/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-luks.h"
#include "ade-state.h"

typedef struct Manager Manager;

/* After a volume's header changed for good (an encryption finished): uploads one new generation of
 * the header to [backup] url, encrypted in client-side encryption v2 with the volume's KEK
 * (docs/architecture.md §11). Does nothing without [backup] url; logs "no KEK: no backup" for a
 * volume without a KEK. Never fails the caller: every failure is logged as a warning naming the
 * device and the container, and the volume stays as it is. Blocks the calling job's thread for the
 * upload (a few requests with short timeouts and two retries).
 *
 * The volume's record says the upload is pending (backupPending, backupPendingSince) before it
 * starts, and which generation is the last one uploaded (backupGeneration) once one succeeded. */
void aded_backup_upload(
        Manager *m, const char *device, const char *header, const char *device_id, const AdeLuksToken *token);

/* After a disable finished (the volume @uuid on @device is plaintext): marks the volume's
 * generations obsolete (ade_restore_mark_obsolete()), so that no restore puts a header over the
 * filesystem. Does nothing without [backup] url. Never fails the caller: a failure is a warning
 * that names the container and says what to do. Blocks the calling job's thread. */
void aded_backup_mark_obsolete(Manager *m, const char *device, const char *uuid);

/* Retries (docs/architecture.md §11): aded's own timer looks at the state file when it starts (so
 * an upload pending before a restart catches up) and after each job; every volume whose upload is
 * pending, or that was encrypted with a KEK and never backed up, is uploaded in a thread (never on
 * the loop), from the header its record names (refused when that header has another UUID now).
 * Failures back off from ADED_BACKUP_RETRY_MIN_USEC, doubling, to ADED_BACKUP_RETRY_MAX_USEC; the
 * first success resets it. Nothing here changes a disk. */
#define ADED_BACKUP_RETRY_MIN_USEC (30U * 1000U * 1000U)
#define ADED_BACKUP_RETRY_MAX_USEC (3600ULL * 1000U * 1000U)

/* Whether the record @v is of a volume whose header backup is still to be uploaded. */
bool aded_backup_wanted(const AdeStateVolume *v);
/* With [backup] url: starts the retry timer (its first look is right away). 0 or a negative errno. */
int aded_backup_start(Manager *m);
/* In the loop: reaps a finished retry and arms the next. True when one was reaped. */
bool aded_backup_dispatch(Manager *m);
/* A job ended: a pending upload may be retried (in ADED_BACKUP_RETRY_MIN_USEC, or the backoff). */
void aded_backup_poke(Manager *m);
/* Cancels a running retry's requests and joins it. */
void aded_backup_stop(Manager *m);
