/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "ade-http.h"
#include "ade-json.h"
#include "ade-precheck.h"
#include "aded-enable.h"
#include "aded-errors.h"
#include "aded-keys.h"
#include "aded-manager.h"
#include "aded-show.h"
#include "aded-vaults.h"
#include "aded-waiter.h"

struct EnablePrep {
        EnablePrep *next;
        Manager *manager;
        AdeVarlinkCall *call;
        unsigned flags;
        bool dry_run;
        AdedEnableParams params;
        AdeVolume **volumes; /* the data volumes in scope (owned) */

        pthread_t thread;
        atomic_bool finished;
        atomic_bool cancel; /* aded is stopping: the cloud checks' requests end (enable_preps_cancel()) */

        /* Written by the thread before it sets finished. */
        json_object *plan;
        json_object *checks, *steps; /* the plan's arrays */
        AdeVolume **eligible;        /* borrowed from @volumes */
        size_t n_eligible;
        char *error_name;
        json_object *error_parameters;
        int result;
};

static void enable_prep_free(EnablePrep *e) {
        if (!e)
                return;
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

/* ---- the plan, in the preparation's thread ---- */

static int plan_add_check(
        EnablePrep *e, const char *name, const char *device, bool passed, bool fatal, const char *message) {
        json_object *c = json_object_new_object();

        if (!c)
                return -ENOMEM;
        json_object_object_add(c, "name", json_object_new_string(name));
        json_object_object_add(c, "device", device ? json_object_new_string(device) : NULL);
        json_object_object_add(c, "passed", json_object_new_boolean(passed));
        json_object_object_add(c, "fatal", json_object_new_boolean(fatal));
        json_object_object_add(c, "message", message ? json_object_new_string(message) : NULL);
        return json_object_array_add(e->checks, c);
}

static void plan_add_step(EnablePrep *e, const char *what, const char *device) {
        _cleanup_free_ char *s = NULL;

        if (asprintf(&s, "%s: %s", device, what) >= 0)
                json_object_array_add(e->steps, json_object_new_string(s));
}

/* What Enable would write to Key Vault for @v, spelled out for the dry run. */
static void plan_add_escrow_step(EnablePrep *e, const AdeVolume *v) {
        const AdedEnableParams *p = &e->params;
        _cleanup_free_ char *file_name = NULL, *what = NULL;
        int r;

        (void)aded_keys_file_name(e->manager, v, &file_name);
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
        plan_add_step(e, r >= 0 ? what : "escrow the key file in Key Vault", v->device);
}

/* The error Enable answers with: the first refusal is the one reported. */
static void prep_refuse_with(EnablePrep *e, const char *error_name, json_object *parameters) {
        if (e->error_name) {
                json_object_put(parameters);
                return;
        }
        e->error_name = strdup(error_name);
        e->error_parameters = parameters;
}

static void prep_refuse(EnablePrep *e, const char *check, const char *reason) {
        prep_refuse_with(e, ADED_ERROR("PreconditionFailed"), aded_error_precondition_parameters(check, reason));
}

/* The cloud checks of docs/architecture.md §5, through ade-precheck. */
static void prep_cloud_checks(EnablePrep *e) {
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
                json_object *p;

                plan_add_check(e, c->name, c->target, c->verdict == ADE_VERDICT_OK, failed, c->reason);
                if (!failed || e->error_name)
                        continue;
                if (c->error == ADE_CHECK_ERROR_REGION && c->error_arg1 && c->error_arg2) {
                        p = json_object_new_object();
                        json_object_object_add(p, "vmLocation", json_object_new_string(c->error_arg1));
                        json_object_object_add(p, "vaultLocation", json_object_new_string(c->error_arg2));
                        prep_refuse_with(e, ADED_ERROR("RegionMismatch"), p);
                } else if (c->error == ADE_CHECK_ERROR_SNAPSHOT && c->error_arg1) {
                        p = json_object_new_object();
                        json_object_object_add(p, "disk", json_object_new_string(c->error_arg1));
                        prep_refuse_with(e, ADED_ERROR("SnapshotMissing"), p);
                } else
                        prep_refuse(e, c->name, c->reason);
        }
        ade_check_list_done(&list);
}

static void prep_eligible(EnablePrep *e, AdeVolume *v) {
        e->eligible[e->n_eligible++] = v;
}

/* A volume with a LUKS header: 1 when it is ours and the plan says what happens to it, 0 to judge it
 * as a plain volume. */
static int prep_volume_luks(EnablePrep *e, AdeVolume *v) {
        AdeLuksStatus st;

        if (ade_luks_status(v->device, NULL, &st) < 0 || st.state == ADE_LUKS_STATE_NONE || !st.has_token)
                return 0;
        if (st.state == ADE_LUKS_STATE_FINISHED) {
                plan_add_check(e, "volume-eligible", v->device, true, false, "already encrypted by ade; nothing to do");
                return 1;
        }
        if (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) {
                plan_add_check(
                        e, "volume-eligible", v->device, true, true, "an interrupted encryption by ade; it is resumed");
                plan_add_step(e, "resume the interrupted encryption", v->device);
                prep_eligible(e, v);
                return 1;
        }
        return 0;
}

/* A mounted volume is encrypted online when device-mapper is there (e2fsck -fn on a live
 * filesystem proves nothing: the job checks after unmounting), refused otherwise. */
static void prep_volume_mounted(EnablePrep *e, AdeVolume *v) {
        _cleanup_free_ char *reason = NULL;
        const char *why;

        if (e->manager->dm && !e->manager->mount_ns_foreign) {
                plan_add_check(e, "volume-eligible", v->device, true, true,
                        "mounted: encrypted online (unmounted, header written, mounted again from "
                        "/dev/mapper, then encrypted underneath)");
                plan_add_escrow_step(e, v);
                plan_add_step(e, "unmount, write the LUKS2 header with the token, activate", v->device);
                plan_add_step(e, "mount again from /dev/mapper and encrypt in the background", v->device);
                prep_eligible(e, v);
                return;
        }
        /* Unmounting in a namespace of our own would leave the filesystem mounted for everyone else,
         * and e2fsck would repair it mounted (issue 11 item 0). */
        why = e->manager->mount_ns_foreign
                      ? "aded runs in a mount namespace of its own (not pid 1's), where unmounting it would not "
                        "unmount it for the system; start aded from aded.service (its unit creates no mount "
                        "namespace), or unmount it and run enable again"
                      : "device-mapper is not available on this host, so it cannot be encrypted online; unmount it "
                        "and run enable again (ade never unmounts behind your back)";
        if (asprintf(&reason, "%s is mounted at %s and %s", v->device, v->mountpoint, why) < 0)
                reason = NULL;
        plan_add_check(e, "volume-eligible", v->device, false, true, reason ?: "not eligible");
        prep_refuse(e, "volume-eligible", reason ?: "not eligible");
}

/* An unmounted plain volume: the engine's plan (checks, shrink, header placement). */
static void prep_volume_offline(EnablePrep *e, AdeVolume *v) {
        const AdedEnableParams *p = &e->params;
        AdeLuksOptions o = {
                .header_dir = e->manager->config->volumes.header_dir,
                .escrow_confirmed = true,
                .format_all = p->format_all,
                .format_all_confirmed = p->format_all,
        };
        _cleanup_free_ char *err = NULL, *reason = NULL;
        AdeLuksPlan lp = {};
        int r;

        r = ade_luks_plan(v, &o, &lp, &err);
        if (r < 0) {
                if (asprintf(&reason, "%s cannot be encrypted: %s", v->device,
                            v->skip != ADE_VOLUME_ELIGIBLE && v->reason ? v->reason
                            : err                                       ? err
                                                                        : strerror(-r)) < 0)
                        reason = NULL;
                plan_add_check(e, "volume-eligible", v->device, false, true, reason ?: "not eligible");
                prep_refuse(e, "volume-eligible", reason ?: "not eligible");
                ade_luks_plan_done(&lp);
                return;
        }
        plan_add_check(e, "volume-eligible", v->device, true, true, lp.reason);
        plan_add_step(e, "generate a key file", v->device);
        plan_add_escrow_step(e, v);
        if (lp.shrink)
                plan_add_step(e, "shrink the filesystem by 32 MiB", v->device);
        plan_add_step(e,
                lp.header == ADE_LUKS_HEADER_DETACHED ? "write a detached LUKS2 header with the token"
                                                      : "write the LUKS2 header with the token",
                v->device);
        plan_add_step(e, "encrypt in place", v->device);
        ade_luks_plan_done(&lp);
        prep_eligible(e, v);
}

static int prep_cancelled(void *userdata) {
        EnablePrep *e = userdata;

        return atomic_load(&e->cancel) ? 1 : 0;
}

static void *prep_thread(void *userdata) {
        EnablePrep *e = userdata;
        size_t n = 0;

        /* A stop must not wait for a cloud that does not answer (issue 11, fault injection). */
        ade_http_set_thread_cancel(prep_cancelled, e);

        e->plan = json_object_new_object();
        e->checks = json_object_new_array();
        e->steps = json_object_new_array();
        json_object_object_add(e->plan, "checks", e->checks);
        json_object_object_add(e->plan, "steps", e->steps);
        while (e->volumes[n])
                n++;
        e->eligible = calloc(n + 1, sizeof(AdeVolume *));
        if (!e->eligible) {
                e->result = -ENOMEM;
                goto finish;
        }

        if (!e->params.keyvault_url) {
                plan_add_check(e, "vault-configured", NULL, false, true, "no Key Vault URL");
                prep_refuse(e, "vault-configured",
                        "no Key Vault URL: set [keyvault] url in the configuration or pass --keyvault-url");
        }
        if (n == 0) {
                plan_add_check(e, "volume-eligible", NULL, false, true, "no data volume");
                prep_refuse(e, "volume-eligible",
                        "there is no data volume to encrypt: list devices in [volumes] data, or attach a data disk");
        }

        for (size_t i = 0; i < n; i++) {
                AdeVolume *v = e->volumes[i];

                if (prep_volume_luks(e, v) > 0)
                        continue;
                if (v->mountpoint)
                        prep_volume_mounted(e, v);
                else
                        prep_volume_offline(e, v);
        }

        /* The cloud is asked only when there is something to do: a vault and eligible volumes. */
        if (e->params.keyvault_url && e->n_eligible > 0)
                prep_cloud_checks(e);

finish:
        atomic_store(&e->finished, true);
        manager_wake(e->manager);
        return NULL;
}

int enable_prep_start(Manager *m, AdeVarlinkCall *call, unsigned flags, bool dry_run, const AdedEnableParams *params) {
        EnablePrep *e;
        sigset_t all, old;
        int r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->manager = m;
        e->call = ade_varlink_call_ref(call);
        e->flags = flags;
        e->dry_run = dry_run;
        r = aded_enable_params_copy(params, &e->params);
        if (r >= 0)
                r = aded_vaults_trust_params(m, params);
        if (r >= 0)
                r = manager_data_volumes(m, &e->volumes);
        if (r < 0) {
                enable_prep_free(e);
                return r;
        }

        /* Like a job's thread, it takes no signals. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&e->thread, NULL, prep_thread, e);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                enable_prep_free(e);
                return r;
        }
        e->next = m->preps;
        m->preps = e;
        return 0;
}

/* ---- in the loop, once the preparation is done ---- */

/* A dry run, or nothing to do: the plan and the volumes as they are. */
static int enable_answer_plan(Manager *m, EnablePrep *e) {
        _cleanup_json_ json_object *reply = json_object_new_object();
        json_object *volumes = json_object_new_array();

        if (!reply || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        json_object_object_add(reply, "plan", json_object_get(e->plan));
        json_object_object_add(reply, "volumes", volumes);
        for (size_t i = 0; e->volumes[i]; i++) {
                json_object *v;
                if (aded_show_volume_json(m, e->volumes[i], &v) >= 0)
                        json_object_array_add(volumes, v);
        }
        return ade_varlink_reply(e->call, reply);
}

/* Refuses, answers a dry run, or starts the jobs. */
static int enable_finish(Manager *m, EnablePrep *e) {
        _cleanup_free_ Job **jobs = NULL;
        _cleanup_json_ json_object *reply = NULL;
        AdeVarlinkCall *call = e->call;
        Waiter *w;
        int r;

        if (!ade_varlink_call_is_pending(call))
                return 0; /* the caller left: nothing is started on its behalf */
        /* Before the checks' verdict: a stop cancels the cloud checks, whose failures then say nothing. */
        if (m->stopping)
                return aded_error_stopping(call);
        if (e->result < 0)
                return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, NULL);
        /* A dry run reports every check, failed ones too (docs/architecture.md §5); the caller judges the plan. */
        if (e->error_name && !e->dry_run)
                return ade_varlink_error(call, e->error_name, e->error_parameters);
        if (e->dry_run || e->n_eligible == 0)
                return enable_answer_plan(m, e);

        r = manager_start_jobs(m, ADED_JOB_ENCRYPT, e->eligible, e->n_eligible, &e->params, &jobs);
        if (r < 0)
                return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, NULL);
        if (e->flags & ADE_VARLINK_METHOD_MORE) {
                r = waiter_add(m, call, jobs, e->n_eligible, e->plan, &w);
                if (r < 0)
                        return r;
                return waiter_notify_progress(m, w);
        }

        /* Without "more" the caller asked not to wait: the jobs are running. */
        r = aded_jobs_volumes_json(m, jobs, e->n_eligible, e->plan, &reply);
        if (r < 0)
                return r;
        return ade_varlink_reply(call, reply);
}

void enable_preps_cancel(Manager *m) {
        for (EnablePrep *e = m->preps; e; e = e->next)
                atomic_store(&e->cancel, true);
}

void enable_preps_free_all(Manager *m) {
        while (m->preps) {
                EnablePrep *e = m->preps;
                m->preps = e->next;
                pthread_join(e->thread, NULL);
                enable_prep_free(e);
        }
}

bool enable_preps_dispatch(Manager *m) {
        bool any = false;

        for (EnablePrep **p = &m->preps; *p;) {
                EnablePrep *e = *p;

                if (!atomic_load(&e->finished)) {
                        p = &e->next;
                        continue;
                }
                *p = e->next;
                pthread_join(e->thread, NULL);
                (void)enable_finish(m, e);
                enable_prep_free(e);
                any = true;
        }
        return any;
}
