/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-io.h"
#include "ade-json.h"
#include "aded-job.h"
#include "aded-manager.h"
#include "aded-show.h"
#include "aded-waiter.h"

/* Watchers get at most this many unforced updates per second. */
#define WATCH_INTERVAL_USEC (200U * 1000U)

struct Waiter {
        Waiter *next;
        AdeVarlinkCall *call;
        bool watch; /* Watch: every change, forever */
        Job **jobs; /* held (job_hold()) until the waiter goes */
        size_t n_jobs;
        json_object *plan; /* Enable: the plan to send with the final reply */
};

static void waiter_free(Waiter *w) {
        if (!w)
                return;
        for (size_t i = 0; i < w->n_jobs; i++)
                job_release(w->jobs[i]);
        free(w->jobs);
        json_object_put(w->plan);
        if (w->call)
                ade_varlink_call_unref(w->call);
        free(w);
}

static void waiter_unlink(Manager *m, Waiter *w) {
        for (Waiter **p = &m->waiters; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        return;
                }
}

void waiters_free_all(Manager *m) {
        while (m->waiters) {
                Waiter *w = m->waiters;
                m->waiters = w->next;
                waiter_free(w);
        }
}

static void on_waiter_disconnect(AdeVarlinkCall *call, void *userdata) {
        Manager *m = userdata;

        for (Waiter *w = m->waiters; w; w = w->next)
                if (w->call == call) {
                        waiter_unlink(m, w);
                        waiter_free(w);
                        return;
                }
}

static int waiter_new(Manager *m, AdeVarlinkCall *call, bool watch, Job *const *jobs, size_t n_jobs, json_object *plan,
        Waiter **ret) {
        Waiter *w;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        if (n_jobs > 0) {
                w->jobs = calloc(n_jobs, sizeof(Job *));
                if (!w->jobs) {
                        free(w);
                        return -ENOMEM;
                }
                memcpy(w->jobs, jobs, n_jobs * sizeof(Job *));
                for (size_t i = 0; i < n_jobs; i++)
                        job_hold(jobs[i]);
        }
        w->n_jobs = n_jobs;
        w->watch = watch;
        w->plan = plan ? json_object_get(plan) : NULL;
        w->call = ade_varlink_call_ref(call);
        ade_varlink_call_set_userdata(call, m);
        ade_varlink_call_set_disconnect_callback(call, on_waiter_disconnect);
        w->next = m->waiters;
        m->waiters = w;
        if (ret)
                *ret = w;
        return 0;
}

int waiter_add(Manager *m, AdeVarlinkCall *call, Job *const *jobs, size_t n_jobs, json_object *plan, Waiter **ret) {
        return waiter_new(m, call, false, jobs, n_jobs, plan, ret);
}

/* Sends a Watch call the volumes of @show. */
static int watch_notify(AdeVarlinkCall *call, json_object *show) {
        _cleanup_json_ json_object *p = json_object_new_object();

        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "volumes", json_object_get(json_object_object_get(show, "volumes")));
        return ade_varlink_notify(call, p);
}

int waiter_add_watch(Manager *m, AdeVarlinkCall *call) {
        _cleanup_json_ json_object *show = NULL;
        int r;

        r = aded_show_json(m, NULL, &show);
        if (r < 0)
                return r;
        r = waiter_new(m, call, true, NULL, 0, NULL, NULL);
        if (r < 0)
                return r;
        return watch_notify(call, show);
}

int aded_jobs_volumes_json(Manager *m, Job *const *jobs, size_t n_jobs, json_object *plan, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *volumes = json_object_new_array();
        int r;

        if (!o || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        json_object_object_add(o, "volumes", volumes);
        if (plan)
                json_object_object_add(o, "plan", json_object_get(plan));
        for (size_t i = 0; i < n_jobs; i++) {
                json_object *v;

                r = aded_show_volume_json(m, job_volume(jobs[i]), &v);
                if (r < 0)
                        return r;
                if (job_type(jobs[i]) == ADED_JOB_UNLOCK)
                        job_add_unlock_result(jobs[i], v);
                json_object_array_add(volumes, v);
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int waiter_notify_progress(Manager *m, Waiter *w) {
        _cleanup_json_ json_object *p = NULL;
        int r;

        r = aded_jobs_volumes_json(m, w->jobs, w->n_jobs, NULL, &p);
        if (r < 0)
                return r;
        return ade_varlink_notify(w->call, p);
}

/* Whether every job of @w finished and was reaped; the first that failed in *ret_failed. */
static bool waiter_jobs_done(Waiter *w, Job **ret_failed) {
        bool all_done = true;

        *ret_failed = NULL;
        for (size_t i = 0; i < w->n_jobs; i++) {
                _cleanup_(aded_job_progress_done) AdedJobProgress p = {};

                job_snapshot(w->jobs[i], &p);
                if (!p.finished || !job_is_reaped(w->jobs[i]))
                        all_done = false;
                else if (p.result < 0 && !*ret_failed)
                        *ret_failed = w->jobs[i];
        }
        return all_done;
}

void waiters_dispatch(Manager *m, bool jobs_changed) {
        uint64_t now = ade_now_monotonic_usec();
        bool watch_due = jobs_changed || now - m->watch_last_usec >= WATCH_INTERVAL_USEC;
        _cleanup_json_ json_object *show = NULL;
        Waiter *w, *next;

        if (watch_due)
                m->watch_last_usec = now;

        for (w = m->waiters; w; w = next) {
                Job *failed;

                next = w->next;
                if (w->watch) {
                        if (watch_due && (show || aded_show_json(m, NULL, &show) >= 0))
                                (void)watch_notify(w->call, show);
                        continue;
                }

                if (waiter_jobs_done(w, &failed)) {
                        _cleanup_json_ json_object *p = NULL;

                        if (failed)
                                (void)job_error_reply(failed, w->call);
                        else if (aded_jobs_volumes_json(m, w->jobs, w->n_jobs, w->plan, &p) >= 0)
                                (void)ade_varlink_reply(w->call, p);
                        waiter_unlink(m, w);
                        waiter_free(w);
                } else if (ade_varlink_call_get_flags(w->call) & ADE_VARLINK_METHOD_MORE)
                        (void)waiter_notify_progress(m, w);
        }
}
