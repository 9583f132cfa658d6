/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-arm.h"
#include "ade-keyvault.h"
#include "ade-log.h"
#include "ade-precheck.h"

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
} Gathered;

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
}

static char *describe(const AdeCloudError *e, const char *service, int r) {
        char *s = ade_cloud_error_to_string(e, service);
        if (!s && asprintf(&s, "%s: %s", service, strerror(-r)) < 0)
                return NULL;
        return s;
}

static int gather_vm(const AdePrecheckRequest *req, const AdeHttpOptions *opts, Gathered *g, AdePrecheckFacts *f) {
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        size_t n = 0;
        int r;

        r = ade_imds_new(req->config->azure.imds, opts, &imds);
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
        return 0;
}

static int gather_vault(const AdePrecheckRequest *req, AdeArm *arm, Gathered *g, AdePrecheckFacts *f) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        int r;

        if (!req->vault_resource_id)
                return 0;
        r = arm ? ade_arm_get_vault(arm, req->vault_resource_id, &g->vault, &err) : -ENOTCONN;
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

static int gather_kek(const AdePrecheckRequest *req, AdeCredential *cred, const AdeHttpOptions *opts, Gathered *g,
        AdePrecheckFacts *f) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_free_ char *origin = NULL, *name = NULL, *version = NULL;
        int r;

        if (!req->kek_url)
                return 0;
        /* An unversioned or malformed URL is refused by the judgement without asking Key Vault. */
        r = ade_keyvault_parse_object_url(req->kek_url, "keys", true, &origin, &name, &version);
        if (r < 0)
                return 0;

        r = ade_keyvault_new(origin, cred, req->config->azure.keyvault_resource, opts, &kv);
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

static int gather_snapshots(const AdePrecheckRequest *req, AdeArm *arm, Gathered *g, AdePrecheckFacts *f) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        size_t n = 0;
        int r;

        if (req->skip_snapshot_check || !g->instance || f->n_disks == 0)
                return 0;

        /* Snapshots may live in any resource group of the subscription; restore point collections
         * of a VM live in its own. */
        r = arm ? ade_arm_list_snapshots(arm, g->instance->subscription_id, NULL, &g->snapshots, &err) : -ENOTCONN;
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

        ade_cloud_error_done(&err);
        r = ade_arm_list_restore_point_collections(
                arm, g->instance->subscription_id, g->instance->resource_group, &g->rpcs, &err);
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

int ade_precheck_run(const AdePrecheckRequest *req, AdeCheckList *list, AdeImdsInstance **ret_instance) {
        _cleanup_(ade_credential_freep) AdeCredential *own_cred = NULL;
        _cleanup_(ade_arm_freep) AdeArm *arm = NULL;
        AdeCredential *cred = req ? req->credential : NULL;
        Gathered g = {};
        AdePrecheckFacts f = {};
        AdeHttpOptions opts;
        int r;

        if (!req || !req->config || !list)
                return -EINVAL;

        if (req->http)
                opts = *req->http;
        else
                ade_http_options_init(&opts);
        opts.ca_file = req->config->azure.ca_file;

        f.now = req->now > 0 ? req->now : (int64_t)time(NULL);
        f.vault_url = req->vault_url;
        f.vault_resource_id = req->vault_resource_id;
        f.kek_url = req->kek_url;
        f.kek_algorithm = req->kek_algorithm;
        f.snapshot_max_age_sec = req->config->preconditions.snapshot_max_age_sec;
        f.require_same_region = req->config->preconditions.require_same_region;
        f.skip_snapshot_check = req->skip_snapshot_check;

        r = gather_vm(req, &opts, &g, &f);
        if (r < 0)
                goto finish;

        if (!cred) {
                r = ade_credential_new_from_config(req->config, &opts, &own_cred);
                if (r < 0)
                        ade_log_debug_errno(r, "Cannot set up the identity from ade.conf: %m");
                cred = own_cred;
        }
        if (cred && ade_arm_new(req->config->azure.arm, cred, req->config->azure.arm_resource, &opts, &arm) < 0)
                arm = NULL;

        r = gather_vault(req, arm, &g, &f);
        if (r >= 0 && cred)
                r = gather_kek(req, cred, &opts, &g, &f);
        else if (r >= 0 && req->kek_url) {
                f.kek_error = -ENOTCONN;
                f.kek_error_message = "no identity to ask Key Vault with (see [identity] in ade.conf)";
        }
        if (r >= 0)
                r = gather_snapshots(req, arm, &g, &f);
        if (r >= 0)
                r = ade_precheck_evaluate(&f, list);
        if (r >= 0 && ret_instance)
                *ret_instance = TAKE_PTR(g.instance);
finish:
        gathered_done(&g);
        return r;
}
