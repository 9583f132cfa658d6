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

/* Waits (polling) until no worker left by an earlier aded works on @device any more. Returns the
 * number of workers waited for. */
int aded_worker_wait_orphans(const char *device);

/* The worker's main(), for "aded --reencrypt-worker ...". */
int aded_worker_main(int argc, char *argv[]);

#define ADED_WORKER_ARG "--reencrypt-worker"
