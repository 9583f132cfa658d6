/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct Manager Manager;
typedef struct AdedTask AdedTask;

/* The part of a call that must not hold up the loop (device reads, fsck checks, cloud requests)
 * runs in a thread of its own, and the loop reaps it when it is done: Enable's preparation
 * (aded-enable.c), Show's reads (aded-show.c), and the choice of volumes of Disable, RotateKey and
 * Unlock (aded-select.c). Each embeds an AdedTask as its first member and keeps its own list of
 * them in the manager; only the loop touches a list. */
struct AdedTask {
        AdedTask *next;
        Manager *manager;
        pthread_t thread;
        atomic_bool finished;
};

/* Starts @fn(@t) in a thread (manager_thread_start()), @t not listed: a task that runs again. */
int aded_task_run(Manager *m, AdedTask *t, void *(*fn)(void *));

/* aded_task_run(), then @t first on @list. */
int aded_task_start(Manager *m, AdedTask **list, AdedTask *t, void *(*fn)(void *));

/* The task's thread, last: the loop reaps it (manager_wake()). */
void aded_task_done(AdedTask *t);

/* In the loop: for each finished task on @list, joins its thread and calls @finish with it unlinked;
 * a task whose @finish returned > 0 runs again (aded_task_run()) and is listed back where it was,
 * the others go to @free_task. True when any went. */
bool aded_tasks_reap(AdedTask **list, int (*finish)(AdedTask *t), void (*free_task)(AdedTask *t));

/* Stopping: joins every task on @list and gives it to @free_task, unanswered. */
void aded_tasks_free_all(AdedTask **list, void (*free_task)(AdedTask *t));
