/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-io.h"
#include "ade-log.h"
#include "aded-manager.h"
#include "aded-rotation.h"
#include "aded-select.h"
#include "aded-state.h"

/* What one look at the state file found. */
typedef struct RotationScan {
        uint64_t now, interval;
        char *due;        /* the volume whose key is oldest among those due (its stable id) */
        uint64_t due_at;  /* ... and when it fell due */
        uint64_t next;    /* the earliest time another falls due; UINT64_MAX: none */
        char **unstamped; /* encrypted volumes whose record does not say how old their key is */
} RotationScan;

static bool record_rotates(const AdeStateVolume *v) {
        return v->kind == ADE_JOB_ENCRYPT && v->step == ADE_STEP_DONE && v->secret_url && !v->pending_secret_url;
}

static int rotation_scan(const AdeState *state, void *userdata) {
        RotationScan *s = userdata;

        for (size_t i = 0; i < state->n_volumes; i++) {
                const AdeStateVolume *v = state->volumes[i];
                uint64_t at;

                if (!record_rotates(v))
                        continue;
                if (v->rotated_usec == 0) {
                        if (strv_extend(&s->unstamped, v->device_id) < 0)
                                return -ENOMEM;
                        continue;
                }
                at = v->rotated_usec + s->interval;
                if (at <= s->now) {
                        if (!s->due || at < s->due_at) {
                                if (ade_strdup_to(&s->due, v->device_id) < 0)
                                        return -ENOMEM;
                                s->due_at = at;
                        }
                } else if (at < s->next)
                        s->next = at;
        }
        return 0;
}

static void set_rotated_now(AdeStateVolume *v, void *userdata) {
        v->rotated_usec = *(const uint64_t *)userdata;
}

static int rotation_arm(Manager *m, uint64_t usec) {
        int r;

        r = sd_event_source_set_time_relative(m->rotation_timer, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->rotation_timer, SD_EVENT_ONESHOT);
        return r;
}

static int on_rotation_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        RotationScan s = {
                .now = ade_now_realtime_usec(),
                .interval = m->config->rotation.interval_sec * 1000000U,
                .next = UINT64_MAX,
        };
        uint64_t wait;
        int r;

        (void)source;
        (void)usec;
        if (m->stopping)
                return 0;
        r = aded_state_read(m->state, rotation_scan, &s);
        if (r < 0) {
                ade_log_warning_errno(r, "key rotation schedule: cannot read the state file: %m; trying again later");
                wait = ADED_ROTATION_RETRY_USEC;
                goto finish;
        }
        for (char **id = s.unstamped; id && *id; id++)
                (void)aded_state_update(m->state, *id, _ADE_JOB_STEP_INVALID, set_rotated_now, &s.now);
        if (s.unstamped && s.now + s.interval < s.next)
                s.next = s.now + s.interval;

        if (s.due && manager_has_running_jobs(m))
                wait = ADED_ROTATION_RETRY_USEC; /* and a job's end pokes the schedule sooner */
        else if (s.due) {
                ade_log_info("the key of %s is due for rotation ([rotation] interval): rotating it", s.due);
                r = select_start(m, NULL, 0,
                        &(const AdedSelectRequest){
                                .type = ADED_JOB_ROTATE,
                                .want = ADED_SELECT_FINISHED,
                                .device = s.due,
                                .refuse_busy = true,
                        });
                if (r < 0)
                        ade_log_error_errno(r, "cannot start the scheduled key rotation of %s: %m", s.due);
                /* Its end pokes the schedule; this is for a start that did not happen. */
                wait = ADED_ROTATION_RETRY_USEC;
        } else
                wait = s.next == UINT64_MAX ? s.interval : s.next - s.now;

finish:
        free(s.due);
        strv_free(s.unstamped);
        /* The wall clock may be set meanwhile: look at least daily. */
        if (wait > 24ULL * 3600U * 1000000U)
                wait = 24ULL * 3600U * 1000000U;
        return rotation_arm(m, wait);
}

int aded_rotation_start(Manager *m) {
        int r;

        if (m->config->rotation.interval_sec == 0)
                return 0;
        r = sd_event_add_time_relative(m->event, &m->rotation_timer, CLOCK_MONOTONIC, 0, 0, on_rotation_timer, m);
        if (r < 0)
                return ade_log_error_errno(r, "cannot start the key rotation schedule: %m");
        return 0;
}

void aded_rotation_poke(Manager *m) {
        if (m->rotation_timer && !m->stopping)
                (void)rotation_arm(m, 0);
}

void aded_rotation_stop(Manager *m) {
        m->rotation_timer = sd_event_source_disable_unref(m->rotation_timer);
}
