/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-varlink.h"

typedef struct Manager Manager;

/* RestoreHeader (docs/architecture.md §11): lib/ade-restore.h's restore of @device (a volume of the
 * state file, its detached header where the record says) from [backup] url, in a thread of its own;
 * the loop answers when it is done. While it runs, manager_has_running_jobs() is true: no job starts
 * under it. @generation 0: the newest. */
int aded_restore_start(Manager *m, AdeVarlinkCall *call, const char *device, unsigned generation, bool dry_run);

/* The device of a restore that is running, or NULL: what OperationInProgress names when no job runs. */
const char *aded_restore_busy_device(Manager *m);

/* In the loop: answers the finished restores. True when any was. */
bool aded_restore_dispatch(Manager *m);

/* Stopping: joins the running restores, unanswered. */
void aded_restore_free_all(Manager *m);
