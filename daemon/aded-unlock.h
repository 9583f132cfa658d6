/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Job Job;

/* Unlock's job in the job's thread: opens the volume as /dev/mapper/ade-<uuid> with the key file
 * from Key Vault, then mounts it where the state file says its filesystem was at enable, and only
 * there. A volume left open but unmounted is a success with a note (job_note()). */
int aded_unlock_run(Job *j);
