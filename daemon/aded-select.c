/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdatomic.h>

#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-json.h"
#include "ade-log.h"
#include "aded-errors.h"
#include "aded-manager.h"
#include "aded-newdisks.h"
#include "aded-select.h"
#include "aded-waiter.h"

struct VolumeSelect {
        AdedTask task; /* first: the choice's thread, reaped by select_dispatch() */
        AdeVarlinkCall *call;
        unsigned flags;
        AdedJobType type;
        AdedSelectWant want;
        char *device;
        bool refuse_busy, need_dm;
        bool has_params;
        AdedEnableParams params;

        /* Written by the thread before it is done. */
        AdeVolume **volumes;  /* the data volumes (owned) */
        AdeVolume **eligible; /* borrowed from @volumes, NULL-terminated */
        size_t n_eligible;
        bool device_unknown;
        int result;
};

static void volume_select_free(VolumeSelect *s) {
        if (!s)
                return;
        if (s->call)
                ade_varlink_call_unref(s->call);
        free(s->device);
        aded_enable_params_done(&s->params);
        ade_volume_free_many(s->volumes);
        free(s->eligible);
        free(s);
}

/* ---- in the thread ---- */

/* The status of @v's LUKS header (the detached one the state file names, or the device's). */
static int volume_luks_status(Manager *m, const AdeVolume *v, AdeLuksStatus *ret) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;

        (void)aded_state_get(m->state, aded_state_key(v), &record);
        return ade_luks_status(v->device, record ? record->header_path : NULL, ret);
}

/* Disable takes finished volumes and interrupted decryptions; an interrupted encryption must finish
 * first (the job refuses it too). */
static bool want_encrypted(Manager *m, const AdeVolume *v) {
        AdeLuksStatus st;

        if (volume_luks_status(m, v, &st) < 0 || !st.has_token)
                return false;
        return st.state == ADE_LUKS_STATE_FINISHED ||
               ((st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) &&
                       st.operation == ADE_LUKS_OP_DECRYPT);
}

static bool want_finished(Manager *m, const AdeVolume *v) {
        AdeLuksStatus st;

        return volume_luks_status(m, v, &st) >= 0 && st.state == ADE_LUKS_STATE_FINISHED && st.has_token;
}

/* Unlock takes locked volumes, and open ones whose recorded mount point does not hold them yet (the
 * mount point was missing or busy at the last Unlock); one mounted elsewhere is left alone. */
static bool want_unlock(Manager *m, const AdeVolume *v) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *name = NULL, *mapper = NULL, *why = NULL;
        int r;

        if (!want_finished(m, v))
                return false;
        r = ade_dm_find_crypt(v->device, &name);
        if (r == 0)
                return true;
        if (r < 0)
                return false;
        (void)aded_state_get(m->state, aded_state_key(v), &record);
        if (!record || !record->mount_point || asprintf(&mapper, "/dev/mapper/%s", name) < 0)
                return false;
        r = ade_fs_mount_check(mapper, record->mount_point, &why);
        return r == 0 || r == -ENOENT || r == -ENOTDIR || r == -EBUSY;
}

static bool select_wants(VolumeSelect *s, const AdeVolume *v) {
        switch (s->want) {
        case ADED_SELECT_ENCRYPTED:
                return want_encrypted(s->task.manager, v);
        case ADED_SELECT_FINISHED:
                return want_finished(s->task.manager, v);
        case ADED_SELECT_LOCKED:
                return want_unlock(s->task.manager, v);
        }
        return false;
}

static bool select_names(VolumeSelect *s, const AdeVolume *v) {
        return !s->device || streq(v->device, s->device) || streq_ptr(v->stable_id, s->device);
}

static void *select_thread(void *userdata) {
        VolumeSelect *s = userdata;
        size_t n = 0;
        int r;

        r = manager_data_volumes(s->task.manager, &s->volumes);
        if (r < 0)
                goto finish;
        while (s->volumes[n])
                n++;
        s->eligible = calloc(n + 1, sizeof(AdeVolume *));
        if (!s->eligible) {
                r = -ENOMEM;
                goto finish;
        }
        s->device_unknown = !!s->device;
        for (size_t i = 0; i < n; i++) {
                if (!select_names(s, s->volumes[i]))
                        continue;
                s->device_unknown = false;
                if (select_wants(s, s->volumes[i]))
                        s->eligible[s->n_eligible++] = s->volumes[i];
        }
finish:
        s->result = r;
        aded_task_done(&s->task);
        return NULL;
}

int select_start(Manager *m, AdeVarlinkCall *call, unsigned flags, const AdedSelectRequest *req) {
        VolumeSelect *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (VolumeSelect){
                .flags = flags,
                .type = req->type,
                .want = req->want,
                .refuse_busy = req->refuse_busy,
                .need_dm = req->need_dm,
                .has_params = !!req->params,
        };
        r = ade_strdup_to(&s->device, req->device);
        if (r >= 0 && req->params)
                r = aded_enable_params_copy(req->params, &s->params);
        if (r < 0) {
                volume_select_free(s);
                return r;
        }

        s->call = call ? ade_varlink_call_ref(call) : NULL;
        r = aded_task_start(m, &m->selects, &s->task, select_thread);
        if (r < 0)
                volume_select_free(s);
        return r;
}

/* ---- in the loop, once the choice is made ---- */

/* A Disable is the operator's word that the volume (or every data volume) stays plain: new-disk
 * passes must not encrypt it again (aded-newdisks.h). */
static void select_opt_out(Manager *m, VolumeSelect *s) {
        if (!s->device) {
                aded_newdisks_opt_out(m, NULL, NULL);
                return;
        }
        for (size_t i = 0; s->volumes && s->volumes[i]; i++)
                if (select_names(s, s->volumes[i])) {
                        aded_newdisks_opt_out(m, aded_state_key(s->volumes[i]), s->volumes[i]->device);
                        return;
                }
}

/* What the method would have answered had it read the devices in the loop, in the same order of
 * checks; the world may have changed meanwhile (a job started, SIGTERM), so the loop's own checks
 * are made again. */
/* aded's own choice (no caller: the rotation schedule): what a caller would have been told goes to
 * the log, and the jobs run unwatched. */
static void select_finish_own(Manager *m, VolumeSelect *s) {
        _cleanup_free_ Job **jobs = NULL;
        int r;

        if (m->stopping || s->result < 0 || s->device_unknown || s->n_eligible == 0 ||
                (s->refuse_busy && manager_has_running_jobs(m))) {
                ade_log_debug("%s of %s not started: %s", aded_job_type_to_string(s->type), strna(s->device),
                        m->stopping          ? "stopping"
                        : s->result < 0      ? strerror(-s->result)
                        : s->device_unknown  ? "no such volume"
                        : s->n_eligible == 0 ? "not encrypted"
                                             : "another job runs");
                return;
        }
        for (size_t i = 0; i < s->n_eligible; i++)
                if (manager_find_job(m, s->eligible[i]->device))
                        return;
        r = manager_start_jobs(m, s->type, s->eligible, s->n_eligible, s->has_params ? &s->params : NULL, &jobs);
        if (r < 0)
                ade_log_error_errno(
                        r, "cannot start the %s of %s: %m", aded_job_type_to_string(s->type), strna(s->device));
}

static int select_finish(Manager *m, VolumeSelect *s) {
        _cleanup_free_ Job **jobs = NULL;
        AdeVarlinkCall *call = s->call;
        Waiter *w;
        int r;

        if (!call) {
                select_finish_own(m, s);
                return 0;
        }

        /* A oneway call (adectl disable --no-wait) is over once its method returned, and still wants
         * its jobs; any other caller that left gets nothing started on its behalf. */
        if (!(s->flags & ADE_VARLINK_METHOD_ONEWAY) && !ade_varlink_call_is_pending(call))
                return 0;
        if (m->stopping)
                return aded_error_stopping(call);
        if (s->refuse_busy && manager_has_running_jobs(m))
                return aded_error_in_progress(call, manager_busy_device(m));
        if (s->result < 0)
                return ade_varlink_error_errno(call, s->result);
        if (s->device_unknown)
                return aded_error_no_such_volume(call, s->device);
        if (s->need_dm && !m->dm)
                return aded_error_unlock_without_dm(call);
        if (s->type == ADED_JOB_DECRYPT)
                select_opt_out(m, s);

        if (s->n_eligible == 0) {
                _cleanup_json_ json_object *reply = NULL;

                r = aded_jobs_volumes_json(m, NULL, 0, NULL, &reply);
                if (r < 0)
                        return ade_varlink_error_errno(call, r);
                return ade_varlink_reply(call, reply);
        }
        /* Each volume has one job at a time, with or without a device named in the call. */
        for (size_t i = 0; i < s->n_eligible; i++)
                if (manager_find_job(m, s->eligible[i]->device))
                        return aded_error_in_progress(call, s->eligible[i]->device);
        r = manager_start_jobs(m, s->type, s->eligible, s->n_eligible, s->has_params ? &s->params : NULL, &jobs);
        if (r < 0)
                return ade_varlink_error_errno(call, r);
        if (s->flags & ADE_VARLINK_METHOD_ONEWAY)
                return 0; /* nobody to answer */
        r = waiter_add(m, call, jobs, s->n_eligible, NULL, &w);
        if (r < 0)
                return ade_varlink_error_errno(call, r);
        if (s->flags & ADE_VARLINK_METHOD_MORE)
                return waiter_notify_progress(m, w);
        return 0;
}

static int select_task_finish(AdedTask *t) {
        (void)select_finish(t->manager, (VolumeSelect *)t);
        return 0;
}

static void select_task_free(AdedTask *t) {
        volume_select_free((VolumeSelect *)t);
}

bool select_dispatch(Manager *m) {
        return aded_tasks_reap(&m->selects, select_task_finish, select_task_free);
}

void select_free_all(Manager *m) {
        aded_tasks_free_all(&m->selects, select_task_free);
}
