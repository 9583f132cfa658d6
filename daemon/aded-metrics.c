/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-io.h"
#include "ade-log.h"
#include "aded-manager.h"
#include "aded-metrics.h"
#include "aded-show.h"

/* The metrics file's timer and writes; its text is aded-metrics-text.c's. */

static void metrics_write(Manager *m, json_object *show, int error) {
        _cleanup_free_ char *text = NULL;
        AdeResolverStats kv;
        int r;

        m->metrics_pending = false;
        if (error < 0) {
                ade_log_warning_errno(error, "metrics: cannot read the volumes for %s: %m", m->config->metrics.path);
                return;
        }
        ade_resolver_stats(m->resolver, &kv);
        r = aded_metrics_format(
                &(AdedMetricsInput){
                        .show = show,
                        .kv = &kv,
                        .unlock_count = atomic_load(&m->unlocks.count),
                        .unlock_usec_total = atomic_load(&m->unlocks.usec_total),
                        .version = PACKAGE_VERSION,
                },
                &text);
        if (r >= 0)
                r = ade_write_file_atomic(m->config->metrics.path, text, strlen(text), 0644);
        /* Said once per kind of trouble, not every two seconds. */
        if (r < 0 && r != m->metrics_error)
                ade_log_warning_errno(r, "metrics: cannot write %s: %m; the file is kept up to date once it can be",
                        m->config->metrics.path);
        else if (r >= 0 && m->metrics_error < 0)
                ade_log_info("metrics: %s is written again", m->config->metrics.path);
        m->metrics_error = r < 0 ? r : 0;
}

static int metrics_arm(Manager *m, uint64_t usec);

static int on_metrics_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        (void)s;
        (void)usec;
        if (m->stopping)
                return 0;
        if (!m->metrics_pending) {
                r = aded_show_start_internal(m, metrics_write);
                if (r < 0)
                        ade_log_warning_errno(r, "metrics: cannot read the volumes: %m");
                else
                        m->metrics_pending = true;
        }
        return metrics_arm(m, manager_has_running_jobs(m) ? ADED_METRICS_BUSY_USEC : ADED_METRICS_IDLE_USEC);
}

static int metrics_arm(Manager *m, uint64_t usec) {
        return manager_timer_arm(m->metrics_timer, usec);
}

int aded_metrics_start(Manager *m) {
        int r;

        if (!m->config->metrics.path)
                return 0;
        r = sd_event_add_time_relative(m->event, &m->metrics_timer, CLOCK_MONOTONIC, 0, 0, on_metrics_timer, m);
        if (r < 0)
                return ade_log_error_errno(r, "cannot start the metrics timer for %s: %m", m->config->metrics.path);
        return 0;
}

void aded_metrics_poke(Manager *m) {
        if (m->metrics_timer && !m->stopping)
                (void)metrics_arm(m, 0);
}

void aded_metrics_stop(Manager *m) {
        m->metrics_timer = sd_event_source_disable_unref(m->metrics_timer);
}

void aded_metrics_note_unlock(Manager *m, uint64_t usec) {
        atomic_fetch_add(&m->unlocks.count, 1);
        atomic_fetch_add(&m->unlocks.usec_total, usec);
}
