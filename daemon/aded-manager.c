/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <signal.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <systemd/sd-daemon.h>

#include "ade-disk-encryption-idl.h"
#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "aded-backup.h"
#include "aded-enable.h"
#include "aded-keysocket.h"
#include "aded-manager.h"
#include "aded-newdisks.h"
#include "aded-methods.h"
#include "aded-resume.h"
#include "aded-rotation.h"
#include "aded-select.h"
#include "aded-restore.h"
#include "aded-adopt.h"
#include "aded-show.h"
#include "aded-vaults.h"
#include "aded-waiter.h"

/* Show's volume list is probed at most this often. */
#define VOLUMES_TTL_USEC (2U * 1000U * 1000U)

static void manager_dispatch_progress(Manager *m);

static int on_event_fd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        uint64_t n;

        (void)s;
        (void)revents;
        (void)!read(fd, &n, sizeof(n));
        manager_dispatch_progress(m);
        return 0;
}

int manager_new(AdeConfig *config, Manager **ret) {
        _cleanup_free_ char *error = NULL;
        Manager *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->config = config;
        m->event_fd = -EBADF;
        m->group = (gid_t)-1;

        r = sd_event_default(&m->event);
        if (r < 0)
                goto fail;

        r = aded_state_open(config->daemon.state_dir, &m->state, &error);
        if (r < 0) {
                ade_log_error("%s", error ?: "cannot read the state file");
                goto fail;
        }

        r = ade_resolver_new(config, NULL, &m->resolver);
        if (r < 0)
                goto fail;
        r = aded_vaults_trust_recorded(m);
        if (r < 0)
                goto fail;

        m->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->event_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(m->event, &m->event_fd_source, m->event_fd, EPOLLIN, on_event_fd, m);
        if (r < 0)
                goto fail;

        m->dm = ade_dm_available();
        r = ade_fs_mount_namespace_is_system();
        m->mount_ns_foreign = r <= 0;
        if (r < 0)
                ade_log_error_errno(r,
                        "cannot tell whether aded runs in the system's mount namespace (/proc/self/ns/mnt "
                        "against /proc/1/ns/mnt): %m; mounted volumes are not encrypted online and "
                        "Unlock does not mount");
        else if (r == 0)
                ade_log_error("aded runs in a mount namespace of its own, not the system's (pid 1's): what it "
                              "unmounted or mounted would change only its own view; mounted volumes are not "
                              "encrypted online and Unlock does not mount. Start it from aded.service, whose unit "
                              "creates no mount namespace, or without unshare/ProtectSystem= and the like (aded(8))");
        *ret = m;
        return 0;
fail:
        m->config = NULL;
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Waiters first: they hold jobs, which the list below frees. */
        waiters_free_all(m);
        for (size_t i = 0; i < m->n_jobs; i++) {
                job_cancel(m->jobs[i]);
                job_free(m->jobs[i]);
        }
        free(m->jobs);
        enable_preps_free_all(m);
        aded_show_free_all(m);
        aded_restore_free_all(m);
        aded_adopt_free_all(m);
        select_free_all(m);
        /* Before the resolver and the state file, which its requests use. */
        aded_keysocket_free(m->keysocket);
        aded_newdisks_free(m->newdisks);
        aded_metrics_stop(m);
        aded_rotation_stop(m);
        aded_backup_stop(m);
        if (m->server)
                ade_varlink_server_free(m->server);
        sd_event_source_unref(m->event_fd_source);
        sd_event_source_disable_unref(m->extend_timer);
        if (m->event_fd >= 0)
                close(m->event_fd);
        sd_event_unref(m->event);
        aded_state_free(m->state);
        ade_resolver_free(m->resolver);
        free(m->last_status);
        ade_volume_free_many(m->volumes);
        free(m);
        return NULL;
}

int manager_timer_arm(sd_event_source *s, uint64_t usec) {
        int r;

        r = sd_event_source_set_time_relative(s, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

int manager_thread_start(pthread_t *ret, void *(*fn)(void *), void *userdata) {
        sigset_t all, old;
        int r;

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(ret, NULL, fn, userdata);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

void manager_wake(Manager *m) {
        uint64_t one = 1;

        /* The eventfd counter only adds up; a full counter (never in practice) just means a wake-up is pending. */
        (void)!write(m->event_fd, &one, sizeof(one));
}

Job *manager_find_job(Manager *m, const char *device) {
        for (size_t i = 0; i < m->n_jobs; i++)
                if (streq(job_device(m->jobs[i]), device))
                        return m->jobs[i];
        return NULL;
}

bool manager_has_running_jobs(Manager *m) {
        return m->n_jobs > 0 || m->preps || m->selects || m->restores || m->adopts;
}

const char *manager_busy_device(Manager *m) {
        return m->n_jobs > 0 ? job_device(m->jobs[0]) : aded_restore_busy_device(m);
}

int manager_start_job(Manager *m, AdedJobType type, const AdeVolume *v, const AdedEnableParams *params, Job **ret) {
        Job **grown, *j;
        int r;

        /* One job per device, whatever asked for it: an Unlock opening a volume that a Disable is
         * decrypting would race it (issue 11 item 8); none under a header being restored either. */
        if (manager_find_job(m, v->device) || streq_ptr(aded_restore_busy_device(m), v->device))
                return -EBUSY;
        grown = realloc(m->jobs, (m->n_jobs + 1) * sizeof(Job *));
        if (!grown)
                return -ENOMEM;
        m->jobs = grown;
        r = job_new(m, type, v, params, &j);
        if (r < 0)
                return r;
        r = job_start(j);
        if (r < 0) {
                job_free(j);
                return r;
        }
        m->jobs[m->n_jobs++] = j;
        if (ret)
                *ret = j;
        aded_metrics_poke(m);
        return 0;
}

int manager_start_jobs(Manager *m, AdedJobType type, AdeVolume *const *vols, size_t n, const AdedEnableParams *params,
        Job ***ret_jobs) {
        _cleanup_free_ Job **jobs = NULL;
        int r;

        jobs = calloc(n + 1, sizeof(Job *));
        if (!jobs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = manager_start_job(m, type, vols[i], params, &jobs[i]);
                aded_job_log_context(type, vols[i]->device);
                if (r < 0) {
                        /* Those already running are in the manager's list and end on their own. */
                        for (size_t k = 0; k < i; k++)
                                job_cancel(jobs[k]);
                        r = ade_log_error_errno(r, "cannot start a job on %s: %m", vols[i]->device);
                        aded_job_log_context(_ADED_JOB_TYPE_INVALID, NULL);
                        return r;
                }
                ade_log_info("started %s job on %s", aded_job_type_to_string(type), vols[i]->device);
                aded_job_log_context(_ADED_JOB_TYPE_INVALID, NULL);
        }
        manager_volumes_invalidate(m);
        *ret_jobs = TAKE_PTR(jobs);
        return 0;
}

int manager_volumes(Manager *m, AdeVolume ***ret) {
        AdeVolume **l = NULL;
        int r;

        r = ade_volume_discover(m->config, false, &l);
        if (r < 0)
                return r;
        /* Devices that vanished are described anyway, so that Show says so. */
        for (size_t i = 0, k = 0; l[i] || (l[k] = NULL, false); i++) {
                if (l[i]->type != ADE_VOLUME_OS && ade_dm_device_backs_root(l[i]->device) > 0) {
                        ade_log_debug("%s backs / and is not offered as a data volume", l[i]->device);
                        ade_volume_free(l[i]);
                        continue;
                }
                l[k++] = l[i];
        }
        *ret = l;
        return 0;
}

int manager_data_volumes(Manager *m, AdeVolume ***ret) {
        AdeVolume **l;
        size_t k = 0;
        int r;

        r = manager_volumes(m, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; l[i]; i++) {
                if (l[i]->type == ADE_VOLUME_DATA)
                        l[k++] = l[i];
                else
                        ade_volume_free(l[i]);
        }
        l[k] = NULL;
        *ret = l;
        return 0;
}

AdeVolume *const *manager_volumes_cached_nowait(Manager *m) {
        uint64_t now = ade_now_monotonic_usec();

        if (!m->volumes || (!manager_has_running_jobs(m) && now - m->volumes_usec > VOLUMES_TTL_USEC))
                return NULL;
        return m->volumes;
}

int manager_volumes_cached(Manager *m, AdeVolume *const **ret) {
        AdeVolume *const *cached = manager_volumes_cached_nowait(m);
        AdeVolume **l;
        int r;

        if (!cached) {
                r = manager_volumes(m, &l);
                if (r < 0)
                        return r;
                ade_volume_free_many(m->volumes);
                m->volumes = l;
                m->volumes_usec = ade_now_monotonic_usec();
                cached = l;
        }
        *ret = cached;
        return 0;
}

void manager_volumes_invalidate(Manager *m) {
        m->volumes_usec = 0;
        m->volumes_generation++;
}

uint64_t manager_volumes_generation(Manager *m) {
        return m->volumes_generation;
}

void manager_volumes_adopt(Manager *m, AdeVolume **l, uint64_t probed_usec, uint64_t generation) {
        if (generation != m->volumes_generation || (m->volumes && m->volumes_usec >= probed_usec)) {
                ade_volume_free_many(l);
                return;
        }
        ade_volume_free_many(m->volumes);
        m->volumes = l;
        m->volumes_usec = probed_usec;
}

/* STATUS= for systemd: the first job's progress, or Idle. */
static void update_status(Manager *m) {
        static const char *const doing[_ADED_JOB_TYPE_MAX] = {
                [ADED_JOB_ENCRYPT] = "Encrypting",
                [ADED_JOB_DECRYPT] = "Decrypting",
                [ADED_JOB_ROTATE] = "Rotating the key of",
                [ADED_JOB_UNLOCK] = "Unlocking",
        };
        _cleanup_free_ char *status = NULL;

        if (m->n_jobs > 0) {
                _cleanup_(aded_job_progress_done) AdedJobProgress p = {};

                job_snapshot(m->jobs[0], &p);
                if (asprintf(&status, "%s %s: %u%%", doing[p.type], job_device(m->jobs[0]),
                            p.total > 0 ? (unsigned)(p.done * 100 / p.total) : 0U) < 0)
                        return;
        } else if (!(status = strdup(m->stopping ? "Stopping" : "Idle")))
                return;
        if (streq_ptr(status, m->last_status))
                return;
        (void)sd_notifyf(false, "STATUS=%s", status);
        free(m->last_status);
        m->last_status = TAKE_PTR(status);
}

/* Reaps the finished jobs; true when any was. */
static bool reap_jobs(Manager *m) {
        bool any = false;

        for (size_t i = 0; i < m->n_jobs;) {
                _cleanup_(aded_job_progress_done) AdedJobProgress p = {};
                Job *j = m->jobs[i];

                job_snapshot(j, &p);
                if (!p.finished) {
                        i++;
                        continue;
                }
                memmove(m->jobs + i, m->jobs + i + 1, (m->n_jobs - i - 1) * sizeof(Job *));
                m->n_jobs--;
                job_reap(j);
                aded_metrics_poke(m);
                aded_rotation_poke(m);
                aded_backup_poke(m);
                any = true;
        }
        return any;
}

static void manager_dispatch_progress(Manager *m) {
        bool changed;

        /* Reap finished jobs first, so waiters see them as done. */
        changed = reap_jobs(m);
        if (enable_preps_dispatch(m))
                changed = true;
        if (select_dispatch(m))
                changed = true;
        if (aded_adopt_dispatch(m))
                changed = true;
        if (aded_restore_dispatch(m))
                changed = true;
        (void)aded_show_dispatch(m);
        (void)aded_rotation_dispatch(m);
        (void)aded_backup_dispatch(m);
        if (changed) {
                manager_volumes_invalidate(m);
                /* A reencryption's buffers live in the job thread's malloc arena; give them back to the
                 * kernel so that an idle aded stays small. */
                if (m->n_jobs == 0)
                        (void)malloc_trim(0);
        }

        waiters_dispatch(m, changed);
        update_status(m);
        /* Queued Enables first: someone asked for them; the new-disk pass waits for its turn. */
        if (changed && !manager_has_running_jobs(m) && !enable_queue_dispatch(m))
                aded_newdisks_idle(m);

        if (m->stopping && m->n_jobs == 0 && !m->preps && !m->selects && !m->show_queries && !m->restores && !m->adopts)
                (void)sd_event_exit(m->event, 0);
}

/* Extends the stop timeout by this much each time. */
#define EXTEND_TIMEOUT_USEC (90U * 1000U * 1000U)
#define EXTEND_INTERVAL_USEC (30U * 1000U * 1000U)

/* While stopping: e2fsck and resize2fs finish whatever systemd sends (a half-done one can leave a
 * filesystem worse than it found it), so as long as one runs, systemd is told to wait longer
 * instead of killing it at TimeoutStopSec= (issue 11 item 10). Nothing else extends the stop. */
static int on_extend_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (ade_fs_programs_running() > 0)
                (void)sd_notifyf(false, "EXTEND_TIMEOUT_USEC=%u", EXTEND_TIMEOUT_USEC);
        (void)sd_event_source_set_time(s, usec + EXTEND_INTERVAL_USEC);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        (void)m;
        return 0;
}

void manager_stop(Manager *m) {
        if (!m->stopping)
                ade_log_info("stopping: %zu job(s) stop at the next hotzone boundary and resume at the next start",
                        m->n_jobs);
        m->stopping = true;
        (void)sd_notify(false, "STOPPING=1");
        if (!m->extend_timer)
                (void)sd_event_add_time_relative(m->event, &m->extend_timer, CLOCK_MONOTONIC, 0, 0, on_extend_timer, m);
        for (size_t i = 0; i < m->n_jobs; i++)
                job_cancel(m->jobs[i]);
        enable_preps_cancel(m);
        enable_queue_drop(m);
        manager_dispatch_progress(m);
}

static void lookup_group(Manager *m) {
        struct group *g;

        if (!m->config->daemon.group)
                return;
        g = getgrnam(m->config->daemon.group);
        if (g)
                m->group = g->gr_gid;
        else
                ade_log_warning("group '%s' ([daemon] group in %s) does not exist; only root may use aded",
                        m->config->daemon.group, m->config->path);
}

static void on_fd_short(AdeVarlinkServer *s, unsigned limit, void *userdata) {
        ade_log_warning("short of file descriptors (%u varlink connections open, open-files limit %u): callers "
                        "other than root are refused and their connections closed to let root in, and a job may "
                        "fail with \"Too many open files\"; raise LimitNOFILE= in aded.service",
                ade_varlink_server_current_connections(s), limit);
}

static int manager_listen(Manager *m) {
        int r;

        r = ade_varlink_server_new(m->event, &m->server);
        if (r < 0)
                return r;
        r = ade_varlink_server_set_info(
                m->server, "ade", "aded", PACKAGE_VERSION, isempty(PACKAGE_URL) ? NULL : PACKAGE_URL);
        if (r < 0)
                return r;
        ade_varlink_server_set_group(m->server, m->group);
        ade_varlink_server_set_fd_short_callback(m->server, on_fd_short, m);
        r = ade_varlink_server_add_interface(m->server, ade_varlink_idl_disk_encryption);
        if (r < 0)
                return ade_log_error_errno(r, "the embedded interface text does not parse: %m");
        r = methods_bind(m);
        if (r < 0)
                return r;

        r = ade_varlink_server_listen_auto(m->server);
        if (r < 0)
                return ade_log_error_errno(r, "cannot take the sockets passed by systemd: %m");
        if (r == 0) {
                r = ade_varlink_server_listen_address(m->server, m->config->daemon.socket, 0660, 0, m->group);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot listen on %s: %m%s", m->config->daemon.socket,
                                r == -EADDRINUSE ? " (another aded is running)" : "");
                ade_log_info("listening on %s", m->config->daemon.socket);
        }
        return 0;
}

int manager_start(Manager *m) {
        int r;

        lookup_group(m);
        r = manager_listen(m);
        if (r < 0)
                return r;
        /* Without it volumes stay locked at boot, but Show, Unlock and the rest still work: logged, not
         * fatal. */
        (void)aded_keysocket_start(m, &m->keysocket);
        r = aded_resume_jobs(m);
        if (r < 0)
                return r;
        r = aded_newdisks_start(m, &m->newdisks);
        if (r < 0)
                return r;
        r = aded_metrics_start(m);
        if (r < 0)
                return r;
        r = aded_rotation_start(m);
        if (r < 0)
                return r;
        r = aded_backup_start(m);
        if (r < 0)
                return r;
        if (!m->dm)
                ade_log_info("device-mapper is not available: volumes are encrypted offline and stay locked");
        update_status(m);
        (void)sd_notify(false, "READY=1");
        return 0;
}
