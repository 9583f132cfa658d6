/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

#include "ade-varlink.h"
#include "ade-volume.h"

/* Show: what each volume really is, from device-mapper (ade-dm), the LUKS header, the state file
 * and the jobs' progress, never by reading a LUKS header while a job holds it. Gathers the facts
 * and hands them to aded-view.h, which decides. The Show method reads the devices in a thread of
 * its own (a hung disk must not stall the loop, its other clients and the watchdog); the loop takes
 * the jobs' progress and answers. */

typedef struct Manager Manager;
typedef struct ShowQuery ShowQuery;

/* The volume object of docs/architecture.md §7 for @v (as probed). */
int aded_show_volume_json(Manager *m, const AdeVolume *v, json_object **ret);

/* {"os": STATE, "data": STATE, "volumes": [...]}; the volumes filtered by @type_filter (NULL, "All",
 * "OS", "Data"; the summary always covers every volume). */
int aded_show_json(Manager *m, const char *type_filter, json_object **ret);

/* The Show method: answers @call with aded_show_json()'s reply for @type_filter once a thread has
 * read the devices that no job holds; the loop answers (aded_show_dispatch()). */
int aded_show_start(Manager *m, AdeVarlinkCall *call, const char *type_filter);

/* The same for aded itself: @done gets the reply of every volume (or the error), in the loop. The
 * reply is borrowed for the call. */
typedef void (*AdedShowDone)(Manager *m, json_object *reply, int error);
int aded_show_start_internal(Manager *m, AdedShowDone done);

/* Answers the Show calls whose reads finished; true when any did. */
bool aded_show_dispatch(Manager *m);

/* Waits for the reads still running and drops their calls, unanswered. */
void aded_show_free_all(Manager *m);
