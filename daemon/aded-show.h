/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "ade-volume.h"

/* Show: what each volume really is, from device-mapper (ade-dm), the LUKS header, the state file
 * and the jobs' progress, never by reading a LUKS header while a job holds it. Gathers the facts
 * and hands them to aded-view.h, which decides. In the loop. */

typedef struct Manager Manager;

/* The volume object of docs/architecture.md §7 for @v (as probed). */
int aded_show_volume_json(Manager *m, const AdeVolume *v, json_object **ret);

/* {"os": STATE, "data": STATE, "volumes": [...]}; the volumes filtered by @type_filter (NULL, "All",
 * "OS", "Data"; the summary always covers every volume). */
int aded_show_json(Manager *m, const char *type_filter, json_object **ret);
