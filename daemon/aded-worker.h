/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Online reencryption in a child process.
 *
 * While libcryptsetup reencrypts an active volume it suspends the hotzone's device-mapper device for
 * each step. A process killed in a step leaves that device suspended: every I/O to the mounted
 * filesystem hangs, and libcryptsetup can neither recover (it needs the data device exclusively)
 * nor resume. So aded does not run online reencryption in its own threads: a worker, aded's own
 * binary started as "aded --reencrypt-worker", runs it and outlives aded. Killed with -9, aded
 * leaves the worker running; under systemd the unit's stop sends it SIGTERM and it stops cleanly at
 * the next hotzone boundary; the aded that starts next waits for any worker still at work on the
 * device before it resumes. Offline (no active name) the engine runs in the calling thread, where
 * a kill leaves a state libcryptsetup recovers.
 *
 * The key file reaches the worker through a pipe, never its arguments or environment. Progress and
 * the engine's steps come back as lines; each step waits for the caller's answer, so the caller's
 * hook keeps its place in the order of writes. */

#include "ade-luks.h"
#include "ade-secret.h"

/* As ade_luks_resume(), in a worker when @o->active_name is set. */
int aded_worker_resume(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o);

/* As ade_luks_decrypt(), in a worker when @o->active_name is set. */
int aded_worker_decrypt(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header);

/* The lock a worker holds on @device for as long as it runs: a file for the device's number in
 * @run_dir (NULL: ADE_LUKS_RUN_DIR_DEFAULT), made there if missing, locked with flock(). The folder
 * is the service's and only root may write in it, so no other user can hold the lock and pass for a
 * worker (issue 11 item 5: a look-alike command line stalled every online job). 0 with the
 * descriptor that holds it in *ret_fd; -EBUSY when it is held (and @wait false); -ENOTBLK when
 * @device is no device; -EPERM when the file belongs to another user. */
int aded_worker_lock(const char *device, const char *run_dir, bool wait, int *ret_fd);

/* How long a job waits for the worker of an earlier aded: longer than its stop at a hotzone
 * boundary takes, shorter than an operator waits without an answer. */
#define ADED_WORKER_ORPHAN_WAIT_USEC (10U * 60U * 1000U * 1000U)

/* Waits (polling) while a worker left by an earlier aded holds @device's lock, for at most
 * @timeout_usec, and asks @cancelled (may be NULL) between looks. Returns 1 when it waited for one,
 * 0 when there was none, -ECANCELED, -ETIMEDOUT (logged, with the worker's pid and how to stop
 * it), or another negative errno when the lock cannot be checked. */
int aded_worker_wait_orphans(const char *device, const char *run_dir, uint64_t timeout_usec,
        int (*cancelled)(void *userdata), void *userdata);

/* The worker's main(), for "aded --reencrypt-worker ...". */
int aded_worker_main(int argc, char *argv[]);

#define ADED_WORKER_ARG "--reencrypt-worker"
