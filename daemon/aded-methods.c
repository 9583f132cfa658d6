/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "ade-dm.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-precheck.h"
#include "aded.h"
#include "aded-keys.h"

/* Watchers get at most this many unforced updates per second. */
#define WATCH_INTERVAL_USEC (200U * 1000U)

int aded_error_precondition(AdeVarlinkCall *call, const char *check, const char *reason) {
        _cleanup_json_ json_object *p = json_object_new_object();

        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "check", json_object_new_string(check));
        json_object_object_add(p, "reason", json_object_new_string(reason));
        return ade_varlink_error(call, ADED_ERROR("PreconditionFailed"), p);
}

int aded_error_no_such_volume(AdeVarlinkCall *call, const char *device) {
        _cleanup_json_ json_object *p = json_object_new_object();

        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "device", json_object_new_string(device));
        return ade_varlink_error(call, ADED_ERROR("NoSuchVolume"), p);
}

int aded_error_in_progress(AdeVarlinkCall *call) {
        return ade_varlink_error(call, ADED_ERROR("OperationInProgress"), NULL);
}

static int error_stopping(AdeVarlinkCall *call) {
        return aded_error_precondition(call, "daemon", "aded is stopping; try again once it has restarted");
}

void waiter_free(struct Waiter *w) {
        if (!w)
                return;
        for (size_t i = 0; i < w->n_jobs; i++) {
                Job *j = w->jobs[i];
                if (--j->n_waiters == 0 && j->reaped)
                        job_free(j);
        }
        free(w->jobs);
        json_object_put(w->plan);
        if (w->call)
                ade_varlink_call_unref(w->call);
        free(w);
}

static void waiter_unlink(Manager *m, struct Waiter *w) {
        for (struct Waiter **p = &m->waiters; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        return;
                }
}

static void on_waiter_disconnect(AdeVarlinkCall *call, void *userdata) {
        Manager *m = userdata;

        for (struct Waiter *w = m->waiters; w; w = w->next)
                if (w->call == call) {
                        waiter_unlink(m, w);
                        waiter_free(w);
                        return;
                }
}

static int waiter_add(Manager *m, AdeVarlinkCall *call, bool watch, Job **jobs, size_t n_jobs, json_object *plan,
        struct Waiter **ret) {
        struct Waiter *w;

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
                        jobs[i]->n_waiters++;
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

/* An Unlock job that succeeded says where it mounted the volume, or why it left it unmounted. */
static void unlock_reply_fields(Job *j, json_object *v) {
        pthread_mutex_lock(&j->lock);
        if (j->finished && j->result == 0) {
                if (j->mounted_on)
                        json_object_object_add(v, "mountpoint", json_object_new_string(j->mounted_on));
                if (j->message)
                        json_object_object_add(v, "message", json_object_new_string(j->message));
        }
        pthread_mutex_unlock(&j->lock);
}

/* {"volumes": [...]} for the devices of @w's jobs, from their progress. */
static int waiter_volumes(Manager *m, struct Waiter *w, bool final, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *volumes = json_object_new_array();
        int r;

        if (!o || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        json_object_object_add(o, "volumes", volumes);
        if (final && w->plan)
                json_object_object_add(o, "plan", json_object_get(w->plan));
        for (size_t i = 0; i < w->n_jobs; i++) {
                json_object *v;

                r = manager_volume_json(m, w->jobs[i]->volume, &v);
                if (r < 0)
                        return r;
                if (w->jobs[i]->type == ADED_JOB_UNLOCK)
                        unlock_reply_fields(w->jobs[i], v);
                json_object_array_add(volumes, v);
        }
        *ret = TAKE_PTR(o);
        return 0;
}

void waiters_dispatch(Manager *m, bool jobs_changed) {
        uint64_t now = ade_now_monotonic_usec();
        bool watch_due = jobs_changed || now - m->watch_last_usec >= WATCH_INTERVAL_USEC;
        _cleanup_json_ json_object *show = NULL;
        struct Waiter *w, *next;

        if (watch_due)
                m->watch_last_usec = now;

        for (w = m->waiters; w; w = next) {
                next = w->next;

                if (w->watch) {
                        if (!watch_due)
                                continue;
                        if (!show && manager_show_json(m, NULL, &show) < 0)
                                continue;
                        json_object *p = json_object_new_object();
                        json_object_object_add(p, "volumes", json_object_get(json_object_object_get(show, "volumes")));
                        (void)ade_varlink_notify(w->call, p);
                        json_object_put(p);
                        continue;
                }

                bool all_done = true;
                Job *failed = NULL;
                for (size_t i = 0; i < w->n_jobs; i++) {
                        bool finished;
                        int result;

                        job_snapshot(w->jobs[i], NULL, NULL, &finished, &result, NULL);
                        if (!finished || !w->jobs[i]->reaped)
                                all_done = false;
                        else if (result < 0 && !failed)
                                failed = w->jobs[i];
                }

                if (all_done) {
                        _cleanup_json_ json_object *p = NULL;

                        if (failed)
                                (void)job_error_reply(failed, w->call);
                        else if (waiter_volumes(m, w, true, &p) >= 0)
                                (void)ade_varlink_reply(w->call, p);
                        waiter_unlink(m, w);
                        waiter_free(w);
                } else if (ade_varlink_call_get_flags(w->call) & ADE_VARLINK_METHOD_MORE) {
                        _cleanup_json_ json_object *p = NULL;

                        if (waiter_volumes(m, w, false, &p) >= 0)
                                (void)ade_varlink_notify(w->call, p);
                }
        }
}

static int parse_volume_type(json_object *params, const char *field, bool required, const char **ret) {
        const char *t = NULL;
        int r;

        r = ade_json_get_string(params, field, &t);
        if (r == -ENOENT && !required) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return -EINVAL;
        if (!strcaseeq(t, "OS") && !strcaseeq(t, "Data") && !strcaseeq(t, "All"))
                return -EINVAL;
        *ret = t;
        return 0;
}

static int method_show(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *reply = NULL;
        Manager *m = userdata;
        const char *type;
        int r;

        (void)flags;
        if (parse_volume_type(params, "volumeType", false, &type) < 0)
                return ade_varlink_error_invalid_parameter(call, "volumeType");
        r = manager_show_json(m, type, &reply);
        if (r < 0)
                return r;
        return ade_varlink_reply(call, reply);
}

static int method_watch(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *show = NULL, *p = NULL;
        Manager *m = userdata;
        int r;

        (void)params;
        (void)flags;
        r = manager_show_json(m, NULL, &show);
        if (r < 0)
                return r;
        r = waiter_add(m, call, true, NULL, 0, NULL, NULL);
        if (r < 0)
                return r;
        p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "volumes", json_object_get(json_object_object_get(show, "volumes")));
        return ade_varlink_notify(call, p);
}

static const char *opt_string(json_object *params, const char *key, const char *fallback) {
        const char *s;

        return ade_json_get_string(params, key, &s) >= 0 && !isempty(s) ? s : fallback;
}

static bool opt_bool(json_object *params, const char *key) {
        bool b = false;

        return ade_json_get_bool(params, key, &b) >= 0 && b;
}

static int plan_add_check(
        json_object *checks, const char *name, const char *device, bool passed, bool fatal, const char *message) {
        json_object *c = json_object_new_object();

        if (!c)
                return -ENOMEM;
        json_object_object_add(c, "name", json_object_new_string(name));
        json_object_object_add(c, "device", device ? json_object_new_string(device) : NULL);
        json_object_object_add(c, "passed", json_object_new_boolean(passed));
        json_object_object_add(c, "fatal", json_object_new_boolean(fatal));
        json_object_object_add(c, "message", message ? json_object_new_string(message) : NULL);
        return json_object_array_add(checks, c);
}

static void plan_add_step(json_object *steps, const char *what, const char *device) {
        _cleanup_free_ char *s = NULL;

        if (asprintf(&s, "%s: %s", device, what) >= 0)
                json_object_array_add(steps, json_object_new_string(s));
}

/* What Enable would write to Key Vault for @v, spelled out for the dry run. */
static void plan_add_escrow_step(Manager *m, json_object *steps, const AdedEnableParams *p, const AdeVolume *v) {
        _cleanup_free_ char *file_name = NULL, *what = NULL;
        int r;

        (void)aded_keys_file_name(m, v, &file_name);
        if (p->kek_url)
                r = asprintf(&what,
                        "wrap the key file with %s (%s) and write a new secret (a GUID) to %s: contentType "
                        "'Wrapped BEK', tags DiskEncryptionKeyFileName=%s, DiskEncryptionKeyEncryptionAlgorithm=%s, "
                        "DiskEncryptionKeyEncryptionKeyURL=%s, MachineName; read it back before any write to the disk",
                        p->kek_url, p->kek_algorithm ?: "RSA-OAEP", strna(p->keyvault_url), strna(file_name),
                        p->kek_algorithm ?: "RSA-OAEP", p->kek_url);
        else
                r = asprintf(&what,
                        "write a new secret (a GUID) to %s holding the key file in base64: contentType 'BEK', tags "
                        "DiskEncryptionKeyFileName=%s, DiskEncryptionKeyEncryptionAlgorithm=RSA-OAEP, MachineName; "
                        "read it back before any write to the disk",
                        strna(p->keyvault_url), strna(file_name));
        plan_add_step(steps, r >= 0 ? what : "escrow the key file in Key Vault", v->device);
}

/* Starts one job per volume; on failure stops those already started. */
static int start_jobs(Manager *m, AdedJobType type, AdeVolume **vols, size_t n, const AdedEnableParams *params,
        const char *rotate_kek_url, Job ***ret_jobs) {
        _cleanup_free_ Job **jobs = NULL;
        Job **grown;
        int r;

        jobs = calloc(n + 1, sizeof(Job *));
        grown = realloc(m->jobs, (m->n_jobs + n) * sizeof(Job *));
        if (!jobs || (!grown && n > 0))
                return -ENOMEM;
        m->jobs = grown;

        for (size_t i = 0; i < n; i++) {
                r = job_new(m, type, vols[i], params, &jobs[i]);
                if (r >= 0 && rotate_kek_url && !(jobs[i]->rotate_kek_url = strdup(rotate_kek_url)))
                        r = -ENOMEM;
                if (r >= 0)
                        r = job_start(jobs[i]);
                if (r < 0) {
                        job_free(jobs[i]);
                        jobs[i] = NULL;
                        for (size_t k = 0; k < i; k++)
                                atomic_store(&jobs[k]->cancel, true);
                        /* Those already running are in the manager's list and end on their own. */
                        return ade_log_error_errno(r, "cannot start a job on %s: %m", vols[i]->device);
                }
                m->jobs[m->n_jobs++] = jobs[i];
                ade_log_info("started %s job on %s",
                        type == ADED_JOB_ENCRYPT   ? "encryption"
                        : type == ADED_JOB_DECRYPT ? "decryption"
                        : type == ADED_JOB_ROTATE  ? "key rotation"
                                                   : "unlock",
                        vols[i]->device);
        }
        manager_volumes_invalidate(m);
        *ret_jobs = TAKE_PTR(jobs);
        return 0;
}

/* The data volumes in scope, freshly probed (an operation must not act on a stale list). */
static int data_volumes(Manager *m, AdeVolume ***ret) {
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

/* Enable's preparation: the read-only checks (e2fsck -fn, resize2fs -P, IMDS, ARM, Key Vault) take
 * from milliseconds to many seconds, so they run in a worker like a job, and the loop answers (or
 * starts the jobs) when they are done. */
struct EnablePrep {
        struct EnablePrep *next;
        Manager *manager;
        AdeVarlinkCall *call;
        unsigned flags;
        bool dry_run;
        AdedEnableParams params;
        AdeVolume **volumes; /* the data volumes in scope (owned) */

        pthread_t thread;
        atomic_bool finished;

        /* Written by the worker before it sets finished. */
        json_object *plan;
        AdeVolume **eligible; /* borrowed from @volumes */
        size_t n_eligible;
        char *error_name;
        json_object *error_parameters;
        int result;
};

static void enable_prep_free(struct EnablePrep *e) {
        if (!e)
                return;
        pthread_join(e->thread, NULL);
        if (e->call)
                ade_varlink_call_unref(e->call);
        aded_enable_params_done(&e->params);
        ade_volume_free_many(e->volumes);
        json_object_put(e->plan);
        free(e->eligible);
        free(e->error_name);
        json_object_put(e->error_parameters);
        free(e);
}

static void prep_refuse(struct EnablePrep *e, const char *check, const char *reason) {
        if (e->error_name)
                return; /* the first refusal is the one reported */
        e->error_name = strdup(ADED_ERROR("PreconditionFailed"));
        e->error_parameters = json_object_new_object();
        json_object_object_add(e->error_parameters, "check", json_object_new_string(check));
        json_object_object_add(e->error_parameters, "reason", json_object_new_string(reason));
}

/* The cloud checks of docs/architecture.md §5, through ade-precheck. */
static void prep_cloud_checks(struct EnablePrep *e, json_object *checks) {
        Manager *m = e->manager;
        AdeCheckList list = {};
        AdePrecheckRequest req = {
                .config = m->config,
                .resolver = m->resolver,
                .vault_url = e->params.keyvault_url,
                .vault_resource_id = e->params.keyvault_resource_id,
                .kek_url = e->params.kek_url,
                .kek_algorithm = e->params.kek_algorithm,
                .scope_data = true,
                .skip_snapshot_check = e->params.skip_snapshot_check,
        };
        int r;

        r = ade_precheck_run(&req, &list, NULL);
        if (r < 0) {
                prep_refuse(e, "preconditions", "the preconditions could not be evaluated (out of memory?)");
                return;
        }
        for (size_t i = 0; i < list.n; i++) {
                const AdeCheck *c = &list.checks[i];
                bool failed = c->verdict == ADE_VERDICT_FAIL;

                plan_add_check(checks, c->name, c->target, c->verdict == ADE_VERDICT_OK, failed, c->reason);
                if (!failed || e->error_name)
                        continue;
                if (c->error == ADE_CHECK_ERROR_REGION && c->error_arg1 && c->error_arg2) {
                        e->error_name = strdup(ADED_ERROR("RegionMismatch"));
                        e->error_parameters = json_object_new_object();
                        json_object_object_add(
                                e->error_parameters, "vmLocation", json_object_new_string(c->error_arg1));
                        json_object_object_add(
                                e->error_parameters, "vaultLocation", json_object_new_string(c->error_arg2));
                } else if (c->error == ADE_CHECK_ERROR_SNAPSHOT && c->error_arg1) {
                        e->error_name = strdup(ADED_ERROR("SnapshotMissing"));
                        e->error_parameters = json_object_new_object();
                        json_object_object_add(e->error_parameters, "disk", json_object_new_string(c->error_arg1));
                } else
                        prep_refuse(e, c->name, c->reason);
        }
        ade_check_list_done(&list);
}

static void *prep_thread(void *userdata) {
        struct EnablePrep *e = userdata;
        Manager *m = e->manager;
        const AdedEnableParams *p = &e->params;
        json_object *checks, *steps;
        size_t n = 0;

        e->plan = json_object_new_object();
        checks = json_object_new_array();
        steps = json_object_new_array();
        json_object_object_add(e->plan, "checks", checks);
        json_object_object_add(e->plan, "steps", steps);
        while (e->volumes[n])
                n++;
        e->eligible = calloc(n + 1, sizeof(AdeVolume *));
        if (!e->eligible) {
                e->result = -ENOMEM;
                goto finish;
        }

        if (!p->keyvault_url) {
                plan_add_check(checks, "vault-configured", NULL, false, true, "no Key Vault URL");
                prep_refuse(e, "vault-configured",
                        "no Key Vault URL: set [keyvault] url in the configuration or pass --keyvault-url");
        }
        if (n == 0) {
                plan_add_check(checks, "volume-eligible", NULL, false, true, "no data volume");
                prep_refuse(e, "volume-eligible",
                        "there is no data volume to encrypt: list devices in [volumes] data, or attach a data disk");
        }

        for (size_t i = 0; i < n; i++) {
                AdeVolume *v = e->volumes[i];
                AdeLuksOptions o = {.header_dir = m->config->volumes.header_dir,
                        .escrow_confirmed = true,
                        .format_all = p->format_all,
                        .format_all_confirmed = p->format_all};
                _cleanup_free_ char *err = NULL, *reason = NULL;
                AdeLuksPlan lp = {};
                AdeLuksStatus st;
                int r;

                if (ade_luks_status(v->device, NULL, &st) >= 0 && st.state != ADE_LUKS_STATE_NONE) {
                        if (st.has_token && st.state == ADE_LUKS_STATE_FINISHED) {
                                plan_add_check(checks, "volume-eligible", v->device, true, false,
                                        "already encrypted by ade; nothing to do");
                                continue;
                        }
                        if (st.has_token && (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH)) {
                                plan_add_check(checks, "volume-eligible", v->device, true, true,
                                        "an interrupted encryption by ade; it is resumed");
                                plan_add_step(steps, "resume the interrupted encryption", v->device);
                                e->eligible[e->n_eligible++] = v;
                                continue;
                        }
                }

                if (v->mountpoint && m->dm) {
                        /* e2fsck -fn on a live filesystem proves nothing: the job checks after unmounting. */
                        plan_add_check(checks, "volume-eligible", v->device, true, true,
                                "mounted: encrypted online (unmounted, header written, mounted again from "
                                "/dev/mapper, then encrypted underneath)");
                        plan_add_escrow_step(m, steps, p, v);
                        plan_add_step(steps, "unmount, write the LUKS2 header with the token, activate", v->device);
                        plan_add_step(steps, "mount again from /dev/mapper and encrypt in the background", v->device);
                        e->eligible[e->n_eligible++] = v;
                        continue;
                }
                if (v->mountpoint && !m->dm) {
                        if (asprintf(&reason,
                                    "%s is mounted at %s and device-mapper is not available on this host, so it "
                                    "cannot be encrypted online; unmount it and run enable again (ade never unmounts "
                                    "behind your back)",
                                    v->device, v->mountpoint) < 0)
                                reason = NULL;
                        r = -EBUSY;
                } else {
                        r = ade_luks_plan(v, &o, &lp, &err);
                        if (r < 0 && asprintf(&reason, "%s cannot be encrypted: %s", v->device,
                                             v->skip != ADE_VOLUME_ELIGIBLE && v->reason ? v->reason
                                             : err                                       ? err
                                                                                         : strerror(-r)) < 0)
                                reason = NULL;
                }
                if (r < 0) {
                        plan_add_check(checks, "volume-eligible", v->device, false, true, reason ?: "not eligible");
                        prep_refuse(e, "volume-eligible", reason ?: "not eligible");
                        ade_luks_plan_done(&lp);
                        continue;
                }
                plan_add_check(checks, "volume-eligible", v->device, true, true, lp.reason);
                plan_add_step(steps, "generate a key file", v->device);
                plan_add_escrow_step(m, steps, p, v);
                if (lp.shrink)
                        plan_add_step(steps, "shrink the filesystem by 32 MiB", v->device);
                plan_add_step(steps,
                        lp.header == ADE_LUKS_HEADER_DETACHED ? "write a detached LUKS2 header with the token"
                                                              : "write the LUKS2 header with the token",
                        v->device);
                plan_add_step(steps, "encrypt in place", v->device);
                ade_luks_plan_done(&lp);
                e->eligible[e->n_eligible++] = v;
        }

        /* The cloud is asked only when there is something to do: a vault and eligible volumes. */
        if (p->keyvault_url && e->n_eligible > 0)
                prep_cloud_checks(e, checks);

finish:
        atomic_store(&e->finished, true);
        uint64_t one = 1;
        (void)!write(m->event_fd, &one, sizeof(one));
        return NULL;
}

/* In the loop, once the preparation is done: refuse, answer a dry run, or start the jobs. */
static int enable_finish(Manager *m, struct EnablePrep *e) {
        _cleanup_free_ Job **jobs = NULL;
        _cleanup_json_ json_object *reply = NULL;
        AdeVarlinkCall *call = e->call;
        int r;

        if (!ade_varlink_call_is_pending(call))
                return 0; /* the caller left: nothing is started on its behalf */
        if (e->result < 0)
                return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, NULL);
        /* A dry run reports every check, failed ones too (docs/architecture.md §5); the caller judges the plan. */
        if (e->error_name && !e->dry_run)
                return ade_varlink_error(call, e->error_name, e->error_parameters);
        if (m->stopping)
                return error_stopping(call);

        if (e->dry_run || e->n_eligible == 0) {
                json_object *volumes = json_object_new_array();

                reply = json_object_new_object();
                if (!reply || !volumes) {
                        json_object_put(volumes);
                        return -ENOMEM;
                }
                json_object_object_add(reply, "plan", json_object_get(e->plan));
                json_object_object_add(reply, "volumes", volumes);
                for (size_t i = 0; e->volumes[i]; i++) {
                        json_object *v;
                        if (manager_volume_json(m, e->volumes[i], &v) >= 0)
                                json_object_array_add(volumes, v);
                }
                return ade_varlink_reply(call, reply);
        }

        r = start_jobs(m, ADED_JOB_ENCRYPT, e->eligible, e->n_eligible, &e->params, NULL, &jobs);
        if (r < 0)
                return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, NULL);
        if (e->flags & ADE_VARLINK_METHOD_MORE) {
                struct Waiter *w;

                r = waiter_add(m, call, false, jobs, e->n_eligible, e->plan, &w);
                if (r < 0)
                        return r;
                r = waiter_volumes(m, w, false, &reply);
                if (r < 0)
                        return r;
                return ade_varlink_notify(call, reply);
        }

        /* Without "more" the caller asked not to wait: the jobs are running. */
        struct Waiter tmp = {.jobs = jobs, .n_jobs = e->n_eligible, .plan = e->plan};
        r = waiter_volumes(m, &tmp, true, &reply);
        if (r < 0)
                return r;
        return ade_varlink_reply(call, reply);
}

void enable_preps_free_all(Manager *m) {
        while (m->preps) {
                struct EnablePrep *e = m->preps;
                m->preps = e->next;
                enable_prep_free(e);
        }
}

bool enable_preps_dispatch(Manager *m) {
        bool any = false;

        for (struct EnablePrep **p = &m->preps; *p;) {
                struct EnablePrep *e = *p;

                if (!atomic_load(&e->finished)) {
                        p = &e->next;
                        continue;
                }
                *p = e->next;
                pthread_join(e->thread, NULL);
                (void)enable_finish(m, e);
                any = true;
                if (e->call)
                        ade_varlink_call_unref(e->call);
                e->call = NULL;
                aded_enable_params_done(&e->params);
                ade_volume_free_many(e->volumes);
                json_object_put(e->plan);
                free(e->eligible);
                free(e->error_name);
                json_object_put(e->error_parameters);
                free(e);
        }
        return any;
}

static int params_dup(AdedEnableParams *p) {
        /* The strings point into the call's parameters and ade.conf; the worker needs its own. */
        char **fields[] = {
                &p->keyvault_url, &p->keyvault_resource_id, &p->kek_url, &p->kek_vault_resource_id, &p->kek_algorithm};

        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (*fields[i] && !(*fields[i] = strdup(*fields[i]))) {
                        for (size_t k = 0; k < i; k++)
                                *fields[k] = mfree(*fields[k]);
                        for (size_t k = i; k < ELEMENTSOF(fields); k++)
                                *fields[k] = NULL;
                        return -ENOMEM;
                }
        return 0;
}

static int method_enable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        struct EnablePrep *e;
        const char *type, *alg;
        sigset_t all, old;
        int r;

        if (parse_volume_type(params, "volumeType", true, &type) < 0)
                return ade_varlink_error_invalid_parameter(call, "volumeType");
        if (strcaseeq(type, "OS"))
                return aded_error_precondition(call, "volume-type",
                        "encrypting the OS volume is not supported yet: ade encrypts data "
                        "volumes only (use volume type Data, or All for the data volumes)");
        alg = opt_string(params, "kekAlgorithm", m->config->keyvault.kek_algorithm ?: "RSA-OAEP");
        if (!ade_kek_algorithm_is_valid(alg))
                return ade_varlink_error_invalid_parameter(call, "kekAlgorithm");
        if (m->stopping)
                return error_stopping(call);
        if (manager_has_running_jobs(m) || m->preps)
                return aded_error_in_progress(call);

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->manager = m;
        e->flags = flags;
        e->dry_run = opt_bool(params, "dryRun");
        e->params = (AdedEnableParams){
                .keyvault_url = (char *)opt_string(params, "keyVaultUrl", m->config->keyvault.url),
                .keyvault_resource_id =
                        (char *)opt_string(params, "keyVaultResourceId", m->config->keyvault.resource_id),
                .kek_url = (char *)opt_string(params, "kekUrl", m->config->keyvault.kek_url),
                .kek_vault_resource_id =
                        (char *)opt_string(params, "kekVaultResourceId", m->config->keyvault.kek_vault_resource_id),
                .kek_algorithm = (char *)alg,
                .format_all = opt_bool(params, "formatAll"),
                .skip_snapshot_check = opt_bool(params, "skipSnapshotCheck"),
        };
        r = params_dup(&e->params);
        if (r < 0) {
                free(e);
                return r;
        }
        r = data_volumes(m, &e->volumes);
        if (r < 0) {
                aded_enable_params_done(&e->params);
                free(e);
                return r;
        }
        e->call = ade_varlink_call_ref(call);

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&e->thread, NULL, prep_thread, e);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                ade_varlink_call_unref(e->call);
                aded_enable_params_done(&e->params);
                ade_volume_free_many(e->volumes);
                free(e);
                return r;
        }
        e->next = m->preps;
        m->preps = e;
        return 0;
}

/* Disable, RotateKey and Unlock: volumes that carry our header, filtered by @want. */
static int luks_volumes(Manager *m, const char *device, bool (*want)(Manager *m, const AdeVolume *v),
        AdeVolume ***ret_all, AdeVolume ***ret_eligible, size_t *ret_n) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **l = NULL;
        _cleanup_free_ AdeVolume **eligible = NULL;
        size_t n = 0, k = 0;
        int r;

        r = data_volumes(m, &l);
        if (r < 0)
                return r;
        while (l[n])
                n++;
        eligible = calloc(n + 1, sizeof(AdeVolume *));
        if (!eligible)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (device && !streq(l[i]->device, device) && !streq_ptr(l[i]->stable_id, device))
                        continue;
                if (want(m, l[i]))
                        eligible[k++] = l[i];
        }
        *ret_all = TAKE_PTR(l);
        *ret_eligible = TAKE_PTR(eligible);
        *ret_n = k;
        return 0;
}

static char *state_header(Manager *m, const char *device) {
        AdeStateVolume *v;
        char *h = NULL;

        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, device);
        if (v && v->header_path)
                h = strdup(v->header_path);
        pthread_mutex_unlock(&m->state_lock);
        return h;
}

/* Disable takes finished volumes and interrupted decryptions; an interrupted encryption must finish
 * first (the job refuses it too). */
static bool want_encrypted(Manager *m, const AdeVolume *v) {
        _cleanup_free_ char *h = state_header(m, v->device);
        AdeLuksStatus st;

        if (ade_luks_status(v->device, h, &st) < 0 || !st.has_token)
                return false;
        return st.state == ADE_LUKS_STATE_FINISHED ||
               ((st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) &&
                       st.operation == ADE_LUKS_OP_DECRYPT);
}

static bool want_finished(Manager *m, const AdeVolume *v) {
        _cleanup_free_ char *h = state_header(m, v->device);
        AdeLuksStatus st;

        return ade_luks_status(v->device, h, &st) >= 0 && st.state == ADE_LUKS_STATE_FINISHED && st.has_token;
}

/* Unlock takes locked volumes, and open ones whose recorded mount point does not hold them yet (the
 * mount point was missing or busy at the last Unlock); one mounted elsewhere is left alone. */
static bool want_unlock(Manager *m, const AdeVolume *v) {
        _cleanup_free_ char *name = NULL, *mapper = NULL, *mount_point = NULL, *why = NULL;
        AdeStateVolume *rec;
        int r;

        if (!want_finished(m, v))
                return false;
        r = aded_dm_find_crypt(v->device, &name);
        if (r == 0)
                return true;
        if (r < 0)
                return false;
        pthread_mutex_lock(&m->state_lock);
        rec = ade_state_find(m->state, v->device);
        mount_point = rec && rec->mount_point ? strdup(rec->mount_point) : NULL;
        pthread_mutex_unlock(&m->state_lock);
        if (!mount_point || asprintf(&mapper, "/dev/mapper/%s", name) < 0)
                return false;
        r = aded_mount_check(mapper, mount_point, &why);
        return r == 0 || r == -ENOENT || r == -ENOTDIR || r == -EBUSY;
}

/* Runs @type on @eligible and answers when done (with "more": progress meanwhile). */
static int run_and_answer(Manager *m, AdeVarlinkCall *call, unsigned flags, AdedJobType type, AdeVolume **eligible,
        size_t n, const char *rotate_kek_url, const AdedEnableParams *params) {
        _cleanup_free_ Job **jobs = NULL;
        _cleanup_json_ json_object *reply = NULL;
        struct Waiter *w;
        int r;

        if (n == 0) {
                reply = json_object_new_object();
                if (!reply)
                        return -ENOMEM;
                json_object_object_add(reply, "volumes", json_object_new_array());
                return ade_varlink_reply(call, reply);
        }
        r = start_jobs(m, type, eligible, n, params, rotate_kek_url, &jobs);
        if (r < 0)
                return r;
        r = waiter_add(m, call, false, jobs, n, NULL, &w);
        if (r < 0)
                return r;
        if (flags & ADE_VARLINK_METHOD_MORE) {
                r = waiter_volumes(m, w, false, &reply);
                if (r < 0)
                        return r;
                return ade_varlink_notify(call, reply);
        }
        return 0;
}

static int method_disable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **all = NULL;
        _cleanup_free_ AdeVolume **eligible = NULL;
        Manager *m = userdata;
        const char *type;
        size_t n;
        int r;

        if (parse_volume_type(params, "volumeType", true, &type) < 0)
                return ade_varlink_error_invalid_parameter(call, "volumeType");
        if (strcaseeq(type, "OS"))
                return aded_error_precondition(call, "volume-type",
                        "decrypting the OS volume is not supported: ade decrypts data volumes "
                        "only (use volume type Data or All)");
        if (m->stopping)
                return error_stopping(call);
        if (manager_has_running_jobs(m))
                return aded_error_in_progress(call);
        r = luks_volumes(m, NULL, want_encrypted, &all, &eligible, &n);
        if (r < 0)
                return r;
        return run_and_answer(m, call, flags, ADED_JOB_DECRYPT, eligible, n, NULL, NULL);
}

static int method_rotate(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **all = NULL;
        _cleanup_free_ AdeVolume **eligible = NULL;
        Manager *m = userdata;
        const char *kek;
        size_t n;
        int r;

        kek = opt_string(params, "kekUrl", NULL);
        if (m->stopping)
                return error_stopping(call);
        if (manager_has_running_jobs(m))
                return aded_error_in_progress(call);
        r = luks_volumes(m, NULL, want_finished, &all, &eligible, &n);
        if (r < 0)
                return r;
        AdedEnableParams p = {
                .kek_vault_resource_id = m->config->keyvault.kek_vault_resource_id,
                .kek_algorithm = kek ? m->config->keyvault.kek_algorithm : NULL,
        };
        return run_and_answer(m, call, flags, ADED_JOB_ROTATE, eligible, n, kek, &p);
}

static int method_unlock(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **all = NULL;
        _cleanup_free_ AdeVolume **eligible = NULL;
        Manager *m = userdata;
        const char *device;
        size_t n;
        int r;

        device = opt_string(params, "device", NULL);
        if (m->stopping)
                return error_stopping(call);
        if (device) {
                bool known = false;

                r = data_volumes(m, &all);
                if (r < 0)
                        return r;
                for (size_t i = 0; all[i]; i++)
                        if (streq(all[i]->device, device) || streq_ptr(all[i]->stable_id, device))
                                known = true;
                all = (ade_volume_free_many(all), NULL);
                if (!known)
                        return aded_error_no_such_volume(call, device);
        }
        if (!m->dm)
                return aded_error_precondition(call, "device-mapper",
                        "device-mapper is not available on this host (no /dev/mapper/control): "
                        "encrypted volumes cannot be opened here; load the dm-crypt module");
        if (manager_find_job(m, device ?: ""))
                return aded_error_in_progress(call);
        r = luks_volumes(m, device, want_unlock, &all, &eligible, &n);
        if (r < 0)
                return r;
        return run_and_answer(m, call, flags, ADED_JOB_UNLOCK, eligible, n, NULL, NULL);
}

int methods_bind(Manager *m) {
        static const struct {
                const char *name;
                AdeVarlinkMethod callback;
                unsigned flags;
        } table[] = {
                {"Show", method_show, ADE_VARLINK_BIND_ROOT_OR_GROUP},
                {"Watch", method_watch, ADE_VARLINK_BIND_ROOT_OR_GROUP | ADE_VARLINK_BIND_REQUIRES_MORE},
                {"Enable", method_enable, ADE_VARLINK_BIND_ROOT_ONLY},
                {"Disable", method_disable, ADE_VARLINK_BIND_ROOT_ONLY},
                {"Unlock", method_unlock, ADE_VARLINK_BIND_ROOT_ONLY},
                {"RotateKey", method_rotate, ADE_VARLINK_BIND_ROOT_ONLY},
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *full = NULL;

                if (asprintf(&full, "%s.%s", ADED_INTERFACE, table[i].name) < 0)
                        return -ENOMEM;
                r = ade_varlink_server_bind_method(m->server, full, table[i].callback, table[i].flags, m);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot bind %s: %m", full);
        }
        return 0;
}
