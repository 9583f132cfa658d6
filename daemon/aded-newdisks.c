/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <systemd/sd-device.h>

#include "ade-log.h"
#include "aded-enable.h"
#include "aded-manager.h"
#include "aded-newdisks.h"
#include "aded-state.h"

struct NewDisks {
        Manager *manager;
        sd_device_monitor *monitor;
        sd_event_source *timer; /* the settle period; fires the pass */
        bool due;               /* a pass came due while a job or an Enable ran */

        pthread_mutex_t lock; /* Show reads the list below from any thread */
        char **left_ids, **left_why;
};

static void run_pass(Manager *m) {
        _cleanup_(ade_state_enrollment_freep) AdeStateEnrollment *e = NULL;
        NewDisks *n = m->newdisks;
        int r;

        if (m->stopping || aded_state_degraded(m->state))
                return;
        if (manager_has_running_jobs(m)) {
                n->due = true;
                return;
        }
        n->due = false;
        r = aded_state_get_enrollment(m->state, &e);
        if (r < 0) {
                ade_log_error_errno(r, "new disks: cannot read the enrollment: %m");
                return;
        }
        if (!e) {
                ade_log_debug("new disks: not enrolled ('adectl enable' has not run): nothing is encrypted by itself");
                return;
        }
        ade_log_debug("new disks: looking for data volumes to encrypt (enrolled %s)", e->volume_type);
        r = enable_prep_start_auto(m, e);
        if (r < 0)
                ade_log_error_errno(r, "new disks: cannot look at the data volumes: %m");
}

static int on_settled(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s;
        (void)usec;
        run_pass(userdata);
        return 0;
}

/* (Re)starts the settle period: the pass runs once no disk event came for that long. */
static void settle(NewDisks *n) {
        uint64_t usec = n->manager->config->daemon.new_disk_settle_sec * 1000000ULL;

        if (manager_timer_arm(n->timer, usec) < 0)
                ade_log_warning("new disks: cannot wait for the disks to settle; the next start looks at them");
}

/* Device-mapper's own devices (ours among them), RAM disks and optical drives are never data disks. */
static bool ignored(sd_device *d) {
        static const char *const prefixes[] = {"dm-", "md", "ram", "zram", "sr", "nbd"};
        const char *name;

        if (sd_device_get_sysname(d, &name) < 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (startswith(name, prefixes[i]))
                        return true;
        return false;
}

static int on_device(sd_device_monitor *monitor, sd_device *d, void *userdata) {
        NewDisks *n = userdata;
        sd_device_action_t action;
        const char *name = NULL;

        (void)monitor;
        if (sd_device_get_action(d, &action) < 0 || (action != SD_DEVICE_ADD && action != SD_DEVICE_CHANGE) ||
                ignored(d))
                return 0;
        (void)sd_device_get_devname(d, &name);
        ade_log_debug("new disks: %s %s; looking again once the disks settle", strna(name),
                action == SD_DEVICE_ADD ? "appeared" : "changed");
        manager_volumes_invalidate(n->manager);
        settle(n);
        return 0;
}

static int monitor_start(NewDisks *n) {
        int r;

        r = sd_device_monitor_new(&n->monitor);
        if (r >= 0)
                r = sd_device_monitor_filter_add_match_subsystem_devtype(n->monitor, "block", NULL);
        if (r >= 0)
                r = sd_device_monitor_attach_event(n->monitor, n->manager->event);
        if (r >= 0)
                r = sd_device_monitor_start(n->monitor, on_device, n);
        if (r < 0)
                n->monitor = sd_device_monitor_unref(n->monitor);
        return r;
}

int aded_newdisks_start(Manager *m, NewDisks **ret) {
        NewDisks *n;
        int r;

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->manager = m;
        pthread_mutex_init(&n->lock, NULL);
        *ret = n;
        if (!m->config->daemon.new_disks) {
                ade_log_info("new disks: not encrypted by themselves ([daemon] new-disks = no)");
                return 0;
        }
        r = sd_event_add_time_relative(m->event, &n->timer, CLOCK_MONOTONIC,
                m->config->daemon.new_disk_settle_sec * 1000000ULL, 1000000ULL, on_settled, m);
        if (r < 0) {
                ade_log_error_errno(r, "new disks: cannot schedule the pass at start: %m; disks are encrypted only "
                                       "by 'adectl enable'");
                return 0;
        }
        /* The per-start pass: the timer above. */
        r = monitor_start(n);
        if (r < 0)
                ade_log_warning_errno(r,
                        "new disks: cannot listen for udev's block events: %m; disks attached while aded runs are "
                        "encrypted at its next start");
        return 0;
}

NewDisks *aded_newdisks_free(NewDisks *n) {
        if (!n)
                return NULL;
        sd_device_monitor_unref(n->monitor);
        sd_event_source_disable_unref(n->timer);
        strv_free(n->left_ids);
        strv_free(n->left_why);
        pthread_mutex_destroy(&n->lock);
        free(n);
        return NULL;
}

void aded_newdisks_idle(Manager *m) {
        if (m->newdisks && m->newdisks->due)
                run_pass(m);
}

static bool same_list(char *const *a, char *const *b) {
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

void aded_newdisks_left_alone(Manager *m, char *const *ids, char *const *why) {
        _cleanup_(strv_freep) char **new_ids = NULL, **new_why = NULL;
        NewDisks *n = m->newdisks;
        size_t k = strv_length(ids);

        if (!n || k != strv_length(why))
                return;
        for (size_t i = 0; i < k; i++)
                if (strv_extend(&new_ids, ids[i]) < 0 || strv_extend(&new_why, why[i]) < 0)
                        return;
        pthread_mutex_lock(&n->lock);
        /* Each pass finds the same volumes left alone for the same reasons: said once in the log. */
        if (!same_list(n->left_ids, new_ids) || !same_list(n->left_why, new_why))
                for (size_t i = 0; i < k; i++)
                        ade_log_info("new disks: %s", new_why[i]);
        strv_free(n->left_ids);
        strv_free(n->left_why);
        n->left_ids = TAKE_PTR(new_ids);
        n->left_why = TAKE_PTR(new_why);
        pthread_mutex_unlock(&n->lock);
}

char *aded_newdisks_why_left(Manager *m, const char *device_id) {
        NewDisks *n = m->newdisks;
        char *why = NULL;

        if (!n || !device_id)
                return NULL;
        pthread_mutex_lock(&n->lock);
        for (size_t i = 0; n->left_ids && n->left_ids[i]; i++)
                if (streq(n->left_ids[i], device_id)) {
                        why = strdup(n->left_why[i]);
                        break;
                }
        pthread_mutex_unlock(&n->lock);
        return why;
}

void aded_newdisks_opt_out(Manager *m, const char *device_id, const char *device) {
        int r;

        r = aded_state_opt_out(m->state, device_id);
        if (r < 0)
                ade_log_error_errno(r,
                        "cannot record in the state file that %s was disabled: %m; aded may encrypt it again by "
                        "itself at its next start",
                        device ?: "every data volume");
        else if (r > 0)
                ade_log_info("%s: disabled by the operator; aded no longer encrypts %s by itself",
                        device ?: "data volumes",
                        device ? "it" : "new disks ('adectl enable' enrolls the machine again)");
}
