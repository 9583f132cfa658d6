/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Job Job;

/* Disable's job in the job's thread: decrypts the volume (online underneath its mapping when it is
 * open), or resumes an interrupted decryption; the record goes once the volume is plaintext. 0,
 * -ECANCELED (stopped, resumable) or a negative errno with the job's error set. */
int aded_decrypt_run(Job *j);
