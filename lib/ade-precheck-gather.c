/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>

#include "ade-arm.h"
#include "ade-http.h"
#include "ade-keyvault.h"
#include "ade-log.h"
#include "ade-precheck.h"
#include "ade-url.h"

/* The facts come from independent reads (IMDS' instance, ARM's vault, Key Vault's KEK, then ARM's
 * snapshots and restore points, which need the VM's subscription and group from IMDS); they run
 * concurrently, each writing only its own fields, over the resolver's share and credential. */

/* Everything the facts point into, freed together. */
typedef struct Gathered {
        AdeImdsInstance *instance;
        AdeArmVault *vault;
        AdeKvKey *kek;
        AdeArmSnapshotList *snapshots;
        AdeArmRestorePointCollectionList *rpcs;
        AdePrecheckDisk *disks;
        AdePrecheckSnapshot *snaps;
        AdePrecheckRestorePoint *rps;
        char *vm_error, *vault_error, *kek_error, *snapshot_error;
        char *identity_error; /* why there is no credential, for the checks that need one */
} Gathered;

typedef struct Gather {
        const AdePrecheckRequest *req;
        AdeResolver *resolver;
        AdeCredential *cred; /* NULL: no identity to ask ARM and Key Vault with */
        AdeArm *arm;
        Gathered g;
        AdePrecheckFacts f;
} Gather;

static void gathered_done(Gathered *g) {
        ade_imds_instance_free(g->instance);
        ade_arm_vault_free(g->vault);
        ade_kv_key_free(g->kek);
        ade_arm_snapshot_list_free(g->snapshots);
        ade_arm_rpc_list_free(g->rpcs);
        free(g->disks);
        free(g->snaps);
        free(g->rps);
        free(g->vm_error);
        free(g->vault_error);
        free(g->kek_error);
        free(g->snapshot_error);
        free(g->identity_error);
}

static char *describe(const AdeCloudError *e, const char *service, int r) {
        char *s = ade_cloud_error_to_string(e, service);
        if (!s && asprintf(&s, "%s: %s", service, strerror(-r)) < 0)
                return NULL;
        return s;
}

typedef int (*GatherFunc)(Gather *g);

typedef struct Task {
        GatherFunc func;
        Gather *gather;
        pthread_t thread;
        bool started;
        int result;
        /* The caller's cancel check (ade_http_set_thread_cancel()), which is per thread. */
        int (*cancelled)(void *userdata);
        void *cancelled_userdata;
} Task;

static void *task_run(void *userdata) {
        Task *t = userdata;

        if (t->started)
                ade_http_set_thread_cancel(t->cancelled, t->cancelled_userdata);
        t->result = t->func(t->gather);
        return NULL;
}

/* Runs @funcs concurrently (inline when a thread cannot be had). Returns the first error. */
static int run_all(Gather *g, const GatherFunc *funcs, size_t n) {
        Task tasks[4] = {};
        int r = 0;

        assert(n <= ELEMENTSOF(tasks));
        for (size_t i = 0; i < n; i++) {
                tasks[i] = (Task){.func = funcs[i], .gather = g};
                ade_http_get_thread_cancel(&tasks[i].cancelled, &tasks[i].cancelled_userdata);
                tasks[i].started = i + 1 < n && pthread_create(&tasks[i].thread, NULL, task_run, &tasks[i]) == 0;
                if (!tasks[i].started)
                        task_run(&tasks[i]);
        }
        for (size_t i = 0; i < n; i++) {
                if (tasks[i].started)
                        pthread_join(tasks[i].thread, NULL);
                if (r >= 0 && tasks[i].result < 0)
                        r = tasks[i].result;
        }
        return r;
}

static int gather_snapshots(Gather *gt) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        Gathered *g = &gt->g;
        AdePrecheckFacts *f = &gt->f;
        int r;

        /* Snapshots may live in any resource group of the subscription. */
        r = gt->arm ? ade_arm_list_snapshots(gt->arm, g->instance->subscription_id, NULL, &g->snapshots, &err)
                    : -ENOTCONN;
        if (r < 0) {
                f->snapshot_error = r;
                g->snapshot_error = describe(&err, "ARM", r);
                f->snapshot_error_message = g->snapshot_error;
                return 0;
        }
        g->snaps = calloc(g->snapshots->n + 1, sizeof(AdePrecheckSnapshot));
        if (!g->snaps)
                return -ENOMEM;
        for (size_t i = 0; i < g->snapshots->n; i++) {
                const AdeArmSnapshot *s = &g->snapshots->items[i];
                g->snaps[i] =
                        (AdePrecheckSnapshot){s->name, s->source_resource_id, s->provisioning_state, s->time_created};
        }
        f->snapshots = g->snaps;
        f->n_snapshots = g->snapshots->n;
        return 0;
}

static int gather_restore_points(Gather *gt) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        Gathered *g = &gt->g;
        AdePrecheckFacts *f = &gt->f;
        size_t n = 0;
        int r;

        /* Restore point collections of a VM live in its own group. */
        r = gt->arm ? ade_arm_list_restore_point_collections(
                              gt->arm, g->instance->subscription_id, g->instance->resource_group, &g->rpcs, &err)
                    : -ENOTCONN;
        if (r < 0) {
                /* Restore points are the second way to pass; without them the snapshots still count. */
                ade_log_debug_errno(r, "Cannot list restore point collections, judging by snapshots alone: %m");
                return 0;
        }
        for (size_t i = 0; i < g->rpcs->n; i++)
                n += g->rpcs->items[i].n_points;
        g->rps = calloc(n + 1, sizeof(AdePrecheckRestorePoint));
        if (!g->rps)
                return -ENOMEM;
        n = 0;
        for (size_t i = 0; i < g->rpcs->n; i++) {
                const AdeArmRestorePointCollection *c = &g->rpcs->items[i];
                for (size_t j = 0; j < c->n_points; j++) {
                        const AdeArmRestorePoint *p = &c->points[j];
                        g->rps[n++] = (AdePrecheckRestorePoint){
                                p->name,
                                c->source_id,
                                p->provisioning_state,
                                p->time_created,
                                (const char **)p->disk_ids,
                                NULL,
                        };
                }
        }
        f->restore_points = g->rps;
        f->n_restore_points = n;
        return 0;
}

/* IMDS' instance, then (it names the subscription and group) the snapshots and restore points. */
static int gather_vm(Gather *gt) {
        static const GatherFunc backups[] = {gather_restore_points, gather_snapshots};
        const AdePrecheckRequest *req = gt->req;
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        Gathered *g = &gt->g;
        AdePrecheckFacts *f = &gt->f;
        size_t n = 0;
        int r;

        r = ade_imds_new(req->config->azure.imds, ade_resolver_http_options(gt->resolver), &imds);
        if (r >= 0)
                r = ade_imds_get_instance(imds, &g->instance, &err);
        if (r < 0) {
                f->vm_error = r;
                g->vm_error = describe(&err, "IMDS", r);
                f->vm_error_message = g->vm_error;
                return 0;
        }

        f->vm_location = g->instance->location;
        f->vm_subscription = g->instance->subscription_id;
        f->vm_resource_id = g->instance->resource_id;

        g->disks = calloc(g->instance->n_data_disks + 1, sizeof(AdePrecheckDisk));
        if (!g->disks)
                return -ENOMEM;
        if (req->scope_os)
                g->disks[n++] = (AdePrecheckDisk){g->instance->os_disk.name, g->instance->os_disk.managed_disk_id, -1};
        if (req->scope_data)
                for (size_t i = 0; i < g->instance->n_data_disks; i++) {
                        const AdeImdsDisk *d = &g->instance->data_disks[i];
                        g->disks[n++] = (AdePrecheckDisk){d->name, d->managed_disk_id, d->lun};
                }
        f->disks = g->disks;
        f->n_disks = n;

        if (req->skip_snapshot_check || f->n_disks == 0)
                return 0;
        return run_all(gt, backups, ELEMENTSOF(backups));
}

static int gather_vault(Gather *gt) {
        const AdePrecheckRequest *req = gt->req;
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        Gathered *g = &gt->g;
        AdePrecheckFacts *f = &gt->f;
        int r;

        if (!req->vault_resource_id)
                return 0;
        if (!gt->cred) {
                f->vault_error = -ENOTCONN;
                f->vault_error_message =
                        g->identity_error ?: "no identity to ask ARM with (see [identity] in ade.conf)";
                return 0;
        }
        r = gt->arm ? ade_arm_get_vault(gt->arm, req->vault_resource_id, &g->vault, &err) : -ENOTCONN;
        if (r < 0) {
                f->vault_error = r;
                g->vault_error = describe(&err, "ARM", r);
                f->vault_error_message = g->vault_error;
                return 0;
        }
        f->vault_location = g->vault->location;
        f->vault_enabled_for_disk_encryption = g->vault->enabled_for_disk_encryption;
        f->vault_soft_delete = g->vault->soft_delete;
        f->vault_purge_protection = g->vault->purge_protection;
        return 0;
}

static int gather_kek(Gather *gt) {
        const AdePrecheckRequest *req = gt->req;
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        Gathered *g = &gt->g;
        AdePrecheckFacts *f = &gt->f;
        AdeKeyVault *kv;
        int r;

        if (!req->kek_url)
                return 0;
        if (!gt->cred) {
                f->kek_error = -ENOTCONN;
                f->kek_error_message =
                        gt->g.identity_error ?: "no identity to ask Key Vault with (see [identity] in ade.conf)";
                return 0;
        }
        /* An unversioned or malformed URL is refused by the judgement without asking Key Vault. */
        r = ade_url_keyvault_object(req->kek_url, "keys", true, NULL, NULL, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : 0;

        r = ade_resolver_keyvault(gt->resolver, req->kek_url, &kv, &err);
        if (r >= 0)
                r = ade_keyvault_get_key(kv, req->kek_url, &g->kek, &err);
        if (r < 0) {
                f->kek_error = r;
                g->kek_error = describe(&err, "Key Vault", r);
                f->kek_error_message = g->kek_error;
                return 0;
        }
        f->kek_kty = g->kek->kty;
        f->kek_enabled = g->kek->enabled;
        f->kek_not_before = g->kek->nbf;
        f->kek_expires = g->kek->exp;
        f->kek_ops = (const char **)g->kek->key_ops;
        return 0;
}

/* Not a fact: the challenge and token of the vault the key goes to, fetched alongside the facts so
 * that the escrow which follows a passed check does not wait for them. Its failures are the escrow's
 * to report. */
static int prepare_escrow_vault(Gather *gt) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        int r;

        if (!gt->req->vault_url || !gt->cred)
                return 0;
        r = ade_resolver_prepare_vault(gt->resolver, gt->req->vault_url, &err);
        if (r < 0)
                ade_log_debug_errno(r, "Cannot prepare Key Vault %s ahead of the escrow: %m", gt->req->vault_url);
        return r == -ENOMEM ? r : 0;
}

int ade_precheck_run(const AdePrecheckRequest *req, AdeCheckList *list, AdeImdsInstance **ret_instance) {
        static const GatherFunc all[] = {gather_vault, gather_kek, prepare_escrow_vault, gather_vm};
        _cleanup_(ade_resolver_freep) AdeResolver *own = NULL;
        _cleanup_(ade_arm_freep) AdeArm *arm = NULL;
        Gather gt = {.req = req};
        AdePrecheckFacts *f = &gt.f;
        int r;

        if (!req || !req->config || !list)
                return -EINVAL;

        gt.resolver = req->resolver;
        if (!gt.resolver) {
                r = ade_resolver_new(req->config, req->http, &own);
                if (r < 0)
                        return r;
                gt.resolver = own;
        }

        f->now = req->now > 0 ? req->now : (int64_t)time(NULL);
        f->vault_url = req->vault_url;
        f->vault_resource_id = req->vault_resource_id;
        f->kek_url = req->kek_url;
        f->kek_algorithm = req->kek_algorithm;
        f->snapshot_max_age_sec = req->config->preconditions.snapshot_max_age_sec;
        f->require_same_region = req->config->preconditions.require_same_region;
        f->skip_snapshot_check = req->skip_snapshot_check;

        r = ade_resolver_credential(gt.resolver, &gt.cred);
        if (r < 0) {
                const AdeConfig *c = req->config;

                ade_log_debug_errno(r, "Cannot set up the identity from ade.conf: %m");
                gt.cred = NULL;
                /* Said to the person in the checks that need it, not as "could not be reached". */
                if (r == -EACCES && c->identity.type == ADE_IDENTITY_CLIENT_SECRET)
                        r = asprintf(&gt.g.identity_error,
                                "the client secret %s may be read or written by others, or is not root's: chown "
                                "root and chmod 600 it",
                                strna(c->identity.client_secret_file));
                else
                        r = asprintf(&gt.g.identity_error, "cannot set up the identity of [identity] in %s: %s",
                                strna(c->path), strerror(-r));
                if (r < 0) {
                        gt.g.identity_error = NULL;
                        gathered_done(&gt.g);
                        return -ENOMEM;
                }
        }
        if (gt.cred && ade_arm_new(req->config->azure.arm, gt.cred, req->config->azure.arm_resource,
                               ade_resolver_http_options(gt.resolver), &arm) >= 0)
                gt.arm = arm;

        r = run_all(&gt, all, ELEMENTSOF(all));
        if (r >= 0)
                r = ade_precheck_evaluate(f, list);
        if (r >= 0 && ret_instance)
                *ret_instance = TAKE_PTR(gt.g.instance);
        gathered_done(&gt.g);
        return r;
}
