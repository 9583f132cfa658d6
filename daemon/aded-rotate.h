/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Job Job;

/* RotateKey's job in the job's thread: a new key file in a new keyslot, or (with a new KEK) the same
 * key file re-wrapped; the new secret is escrowed before the header changes. 0 or a negative errno
 * with the job's error set. */
int aded_rotate_run(Job *j);
