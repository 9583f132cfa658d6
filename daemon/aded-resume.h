/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Manager Manager;

/* At start: starts the jobs that the state file, or a header in the middle of our reencryption
 * that the state file does not know (lost), says are unfinished. Nobody waits for them; Show and
 * Watch report them. */
int aded_resume_jobs(Manager *m);
