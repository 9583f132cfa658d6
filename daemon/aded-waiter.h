/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

#include "ade-varlink.h"

/* Calls that wait: Enable, Disable, RotateKey and Unlock for the jobs they started (with "more":
 * their progress meanwhile), and Watch for every change. The loop calls waiters_dispatch() after
 * each wake-up. */

typedef struct Manager Manager;
typedef struct Job Job;
typedef struct Waiter Waiter;

/* A waiter on @call for the @n_jobs @jobs (held until it is done), answered with @plan (optional)
 * too. */
int waiter_add(Manager *m, AdeVarlinkCall *call, Job *const *jobs, size_t n_jobs, json_object *plan, Waiter **ret);

/* A Watch call: sends the volumes now, and on every change until the caller leaves. */
int waiter_add_watch(Manager *m, AdeVarlinkCall *call);

/* Sends the call of @w the volumes of its jobs so far ("more"). */
int waiter_notify_progress(Manager *m, Waiter *w);

/* Answers the waiters whose jobs all finished, sends progress to the others ("more"), and the
 * volumes to Watch calls at most every 200 ms (or when @jobs_changed). */
void waiters_dispatch(Manager *m, bool jobs_changed);

void waiters_free_all(Manager *m);

/* {"volumes": [...], "plan": @plan} for the volumes of @jobs, from their progress. @plan optional. */
int aded_jobs_volumes_json(Manager *m, Job *const *jobs, size_t n_jobs, json_object *plan, json_object **ret);
