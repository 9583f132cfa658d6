/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Job Job;

/* Enable's job in the job's thread: escrow, header, encryption (offline, or online underneath the
 * mounted filesystem), or the resume of one interrupted. 0, -ECANCELED (stopped, resumable) or a
 * negative errno with the job's error set. */
int aded_encrypt_run(Job *j);
