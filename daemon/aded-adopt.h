/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-varlink.h"

typedef struct Manager Manager;

/* Adopt (docs/architecture.md §12): takes over the data volumes ADE encrypted, in a thread of its own
 * (device reads, IMDS, ARM and Key Vault calls); the loop answers when it is done. Per volume of
 * lib/ade-adopt.h's plan: the escrowed secret (from the disk's encryption settings in ARM, else by
 * ADE's tags in Key Vault), resolved through the key resolver, must open it; then ade's token
 * (LUKS2), a state record (both: the key socket finds the volume by ADE's mapping name through it,
 * and a LUKS1 volume's key through it), and crypttab's line pointed at the key socket, ADE's line
 * kept in "<crypttab>.ade-backup". @dry_run: every check, nothing written. While it runs,
 * manager_has_running_jobs() is true. */
int aded_adopt_start(Manager *m, AdeVarlinkCall *call, bool dry_run);

/* In the loop: answers the finished adoptions. True when any was. */
bool aded_adopt_dispatch(Manager *m);

/* Stopping: joins the running adoptions, unanswered. */
void aded_adopt_free_all(Manager *m);
