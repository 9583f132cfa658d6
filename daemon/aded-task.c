/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "aded-manager.h"
#include "aded-task.h"

int aded_task_run(Manager *m, AdedTask *t, void *(*fn)(void *)) {
        t->manager = m;
        atomic_store(&t->finished, false);
        return manager_thread_start(&t->thread, fn, t);
}

int aded_task_start(Manager *m, AdedTask **list, AdedTask *t, void *(*fn)(void *)) {
        int r;

        r = aded_task_run(m, t, fn);
        if (r < 0)
                return r;
        t->next = *list;
        *list = t;
        return 0;
}

void aded_task_done(AdedTask *t) {
        Manager *m = t->manager;

        /* @t may be freed by the loop once this is seen: @m was read before. */
        atomic_store(&t->finished, true);
        manager_wake(m);
}

bool aded_tasks_reap(AdedTask **list, int (*finish)(AdedTask *t), void (*free_task)(AdedTask *t)) {
        bool any = false;

        for (AdedTask **p = list; *p;) {
                AdedTask *t = *p;

                if (!atomic_load(&t->finished)) {
                        p = &t->next;
                        continue;
                }
                /* Unlinked while @finish runs: it may start other tasks on this list. */
                *p = t->next;
                t->next = NULL;
                pthread_join(t->thread, NULL);
                if (finish(t) > 0) {
                        t->next = *p;
                        *p = t;
                        p = &t->next;
                        continue;
                }
                free_task(t);
                any = true;
        }
        return any;
}

void aded_tasks_free_all(AdedTask **list, void (*free_task)(AdedTask *t)) {
        while (*list) {
                AdedTask *t = *list;

                *list = t->next;
                pthread_join(t->thread, NULL);
                free_task(t);
        }
}
