/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <ctype.h>
#include <time.h>

#include "ade-arm.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-url.h"

#define ARM_RESOURCE_DEFAULT "https://management.azure.com/"
#define ARM_API_VAULT "2023-07-01"
#define ARM_API_DISKS "2023-10-02"
#define ARM_API_RPC "2023-09-01"
#define ARM_PAGES_MAX 100

struct AdeArm {
        AdeHttp *http;
        AdeCredential *credential;
        char *url;
        char *origin;
        char *resource;
};

int ade_arm_new(const char *arm_url, AdeCredential *credential, const char *resource, const AdeHttpOptions *opts,
        AdeArm **ret) {
        _cleanup_(ade_arm_freep) AdeArm *arm = NULL;
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        size_t l;
        int r;

        assert(credential);
        assert(ret);

        r = ade_url_parse(arm_url, 0, &u);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return ade_log_debug_errno(-EINVAL, "ARM URL '%s' is not an https:// URL", strna(arm_url));

        arm = calloc(1, sizeof(*arm));
        if (!arm)
                return -ENOMEM;
        arm->credential = credential;
        arm->origin = TAKE_PTR(u->origin);
        l = strlen(arm_url);
        while (l > 0 && arm_url[l - 1] == '/')
                l--;
        arm->url = strndup(arm_url, l);
        arm->resource = strdup(resource ?: ARM_RESOURCE_DEFAULT);
        if (!arm->url || !arm->resource)
                return -ENOMEM;
        r = ade_http_new(opts, &arm->http);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(arm);
        return 0;
}

AdeArm *ade_arm_free(AdeArm *arm) {
        if (!arm)
                return NULL;
        ade_http_free(arm->http);
        free(arm->url);
        free(arm->origin);
        free(arm->resource);
        free(arm);
        return NULL;
}

/* GETs @url (absolute, on ARM's host) with a token. */
static int arm_get(AdeArm *arm, const char *url, json_object **ret, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        int r;

        /* The one origin a token for ARM goes to is the configured one: a nextLink (or anything
         * else a reply names) on another host or port is not followed. */
        if (!ade_url_same_origin(url, arm->origin)) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg,
                            "ARM's answer points to %s, which is not on %s ([azure] arm); no token is sent there", url,
                            arm->origin) < 0)
                        return -ENOMEM;
                (void)ade_cloud_error_set(ret_error, 0, "OriginNotAllowed", msg, url);
                return ade_log_debug_errno(-EPROTO, "%s", msg);
        }

        r = ade_credential_bearer_request(arm->credential, arm->http, arm->resource, NULL,
                &(AdeHttpRequest){.method = "GET", .url = url}, &resp, ret_error);
        if (r < 0)
                return r;
        return ade_http_reply_json(&resp, url, ret, ret_error);
}

static int arm_url(AdeArm *arm, const char *id, const char *query, char **ret) {
        _cleanup_free_ char *u = NULL;
        int r;

        r = ade_url_join(arm->url, id, &u);
        if (r < 0)
                return r;
        return asprintf(ret, "%s?%s", u, query) < 0 ? -ENOMEM : 0;
}

static int dup_str(json_object *o, const char *key, char **ret) {
        const char *s;

        if (ade_json_get_string(o, key, &s) < 0)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int dup_path(json_object *o, char **ret, const char *a, const char *b) {
        const char *s;

        if (ade_json_get_path_string(o, &s, a, b, NULL) < 0)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ade_arm_parse_time(const char *s, int64_t *ret) {
        struct tm tm = {};
        int n = 0, off = 0;
        const char *p;
        time_t t;

        assert(ret);

        if (!s ||
                sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                        &tm.tm_sec, &n) != 6 ||
                n != 19)
                return -EINVAL;
        p = s + n;
        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                while (isdigit((unsigned char)*p))
                        p++;
        }
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int hh, mm;

                if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
                        return -EINVAL;
                off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
                p += 6;
        } else if (*p != 0)
                return -EINVAL;
        if (*p != 0)
                return -EINVAL;
        if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
                tm.tm_sec > 60)
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret = (int64_t)t - off;
        return 0;
}

AdeArmVault *ade_arm_vault_free(AdeArmVault *v) {
        if (!v)
                return NULL;
        free(v->id);
        free(v->name);
        free(v->location);
        free(v->subscription_id);
        free(v->tenant_id);
        free(v->vault_uri);
        free(v);
        return NULL;
}

int ade_arm_get_vault(AdeArm *arm, const char *vault_id, AdeArmVault **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_arm_vault_freep) AdeArmVault *v = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *url = NULL;
        json_object *props;
        int r;

        assert(arm);
        assert(ret);

        r = ade_url_arm_vault_id(vault_id, NULL, NULL);
        if (r < 0)
                return ade_log_debug_errno(-EINVAL, "'%s' is not a Key Vault resource id", strna(vault_id));
        r = arm_url(arm, vault_id, "api-version=" ARM_API_VAULT, &url);
        if (r < 0)
                return r;
        r = arm_get(arm, url, &o, ret_error);
        if (r < 0)
                return r;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->soft_delete = true;
        v->soft_delete_retention_days = 90;
        if (dup_str(o, "id", &v->id) < 0 || dup_str(o, "name", &v->name) < 0 ||
                dup_str(o, "location", &v->location) < 0)
                return -ENOMEM;
        if (!v->location || ade_json_get_object(o, "properties", &props) < 0) {
                (void)ade_cloud_error_set(
                        ret_error, 200, "MalformedReply", "vault answer lacks location or properties", url);
                return -EPROTO;
        }
        r = ade_url_arm_vault_id(v->id ?: vault_id, &v->subscription_id, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : -EPROTO;
        if (dup_str(props, "tenantId", &v->tenant_id) < 0 || dup_str(props, "vaultUri", &v->vault_uri) < 0)
                return -ENOMEM;
        (void)ade_json_get_bool_lenient(props, "enabledForDiskEncryption", &v->enabled_for_disk_encryption);
        (void)ade_json_get_bool_lenient(props, "enableSoftDelete", &v->soft_delete);
        (void)ade_json_get_bool_lenient(props, "enablePurgeProtection", &v->purge_protection);
        (void)ade_json_get_bool_lenient(props, "enableRbacAuthorization", &v->rbac);
        (void)ade_json_get_int64_lenient(props, "softDeleteRetentionInDays", &v->soft_delete_retention_days);

        *ret = TAKE_PTR(v);
        return 0;
}

/* Calls @item for every element of "value" across pages. */
static int arm_list(AdeArm *arm, const char *first_url, int (*item)(json_object *o, void *userdata), void *userdata,
        AdeCloudError *ret_error) {
        _cleanup_free_ char *url = strdup(first_url);
        int r;

        if (!url)
                return -ENOMEM;

        for (unsigned page = 0; url; page++) {
                _cleanup_json_ json_object *o = NULL;
                json_object *value;
                const char *next;

                if (page >= ARM_PAGES_MAX)
                        return ade_log_debug_errno(-E2BIG, "%s: more than %u pages", first_url, ARM_PAGES_MAX);

                r = arm_get(arm, url, &o, ret_error);
                if (r < 0)
                        return r;
                if (ade_json_get_array(o, "value", &value) < 0) {
                        (void)ade_cloud_error_set(
                                ret_error, 200, "MalformedReply", "list answer has no 'value' array", url);
                        return -EPROTO;
                }
                for (size_t i = 0; i < json_object_array_length(value); i++) {
                        json_object *e = json_object_array_get_idx(value, i);

                        if (!json_object_is_type(e, json_type_object))
                                continue;
                        r = item(e, userdata);
                        if (r < 0)
                                return r;
                }

                free(url);
                url = NULL;
                if (ade_json_get_string(o, "nextLink", &next) >= 0 && !isempty(next)) {
                        url = strdup(next);
                        if (!url)
                                return -ENOMEM;
                }
        }
        return 0;
}

static void snapshot_done(AdeArmSnapshot *s) {
        free(s->id);
        free(s->name);
        free(s->source_resource_id);
        free(s->source_unique_id);
        free(s->provisioning_state);
}

AdeArmSnapshotList *ade_arm_snapshot_list_free(AdeArmSnapshotList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                snapshot_done(&l->items[i]);
        free(l->items);
        free(l);
        return NULL;
}

static int snapshot_item(json_object *o, void *userdata) {
        AdeArmSnapshotList *l = userdata;
        AdeArmSnapshot *items, *s;
        const char *t;

        items = realloc(l->items, (l->n + 1) * sizeof(*items));
        if (!items)
                return -ENOMEM;
        l->items = items;
        s = &l->items[l->n++];
        *s = (AdeArmSnapshot){};
        if (dup_str(o, "id", &s->id) < 0 || dup_str(o, "name", &s->name) < 0)
                return -ENOMEM;
        {
                json_object *props, *cd;

                if (ade_json_get_object(o, "properties", &props) >= 0) {
                        if (ade_json_get_object(props, "creationData", &cd) >= 0 &&
                                (dup_str(cd, "sourceResourceId", &s->source_resource_id) < 0 ||
                                        dup_str(cd, "sourceUniqueId", &s->source_unique_id) < 0))
                                return -ENOMEM;
                        if (dup_str(props, "provisioningState", &s->provisioning_state) < 0)
                                return -ENOMEM;
                        if (ade_json_get_string(props, "timeCreated", &t) >= 0)
                                (void)ade_arm_parse_time(t, &s->time_created);
                }
        }
        return 0;
}

int ade_arm_list_snapshots(AdeArm *arm, const char *subscription, const char *resource_group, AdeArmSnapshotList **ret,
        AdeCloudError *ret_error) {
        _cleanup_(ade_arm_snapshot_list_freep) AdeArmSnapshotList *l = NULL;
        _cleanup_free_ char *path = NULL, *url = NULL;
        int r;

        assert(arm);
        assert(ret);

        if (isempty(subscription))
                return -EINVAL;
        if (resource_group)
                r = asprintf(&path, "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/snapshots",
                        subscription, resource_group);
        else
                r = asprintf(&path, "/subscriptions/%s/providers/Microsoft.Compute/snapshots", subscription);
        if (r < 0)
                return -ENOMEM;
        r = arm_url(arm, path, "api-version=" ARM_API_DISKS, &url);
        if (r < 0)
                return r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = arm_list(arm, url, snapshot_item, l, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

/* The first encryptionSettings entry that names a secret: its secretUrl and keyUrl (docs/protocols.md
 * §3). */
static int arm_disk_key_urls(json_object *esc, AdeArmDisk *d) {
        json_object *list, *dek, *kek;

        if (ade_json_get_array(esc, "encryptionSettings", &list) < 0)
                return 0;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *e = json_object_array_get_idx(list, i);

                if (ade_json_get_object(e, "diskEncryptionKey", &dek) < 0 ||
                        dup_str(dek, "secretUrl", &d->secret_url) < 0)
                        return -ENOMEM;
                if (!d->secret_url)
                        continue;
                if (ade_json_get_object(e, "keyEncryptionKey", &kek) >= 0 && dup_str(kek, "keyUrl", &d->kek_url) < 0)
                        return -ENOMEM;
                return 0;
        }
        return 0;
}

AdeArmDisk *ade_arm_disk_free(AdeArmDisk *d) {
        if (!d)
                return NULL;
        free(d->id);
        free(d->name);
        free(d->location);
        free(d->unique_id);
        free(d->provisioning_state);
        free(d->secret_url);
        free(d->kek_url);
        free(d);
        return NULL;
}

int ade_arm_get_disk(AdeArm *arm, const char *disk_id, AdeArmDisk **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_arm_disk_freep) AdeArmDisk *d = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *url = NULL;
        json_object *props, *esc;
        int r;

        assert(arm);
        assert(ret);

        if (!ade_url_arm_id_is(disk_id, "Microsoft.Compute", "disks"))
                return ade_log_debug_errno(-EINVAL, "'%s' is not a managed disk id", strna(disk_id));
        r = arm_url(arm, disk_id, "api-version=" ARM_API_DISKS, &url);
        if (r < 0)
                return r;
        r = arm_get(arm, url, &o, ret_error);
        if (r < 0)
                return r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        if (dup_str(o, "id", &d->id) < 0 || dup_str(o, "name", &d->name) < 0 ||
                dup_str(o, "location", &d->location) < 0)
                return -ENOMEM;
        if (ade_json_get_object(o, "properties", &props) >= 0) {
                if (dup_str(props, "uniqueId", &d->unique_id) < 0 ||
                        dup_str(props, "provisioningState", &d->provisioning_state) < 0)
                        return -ENOMEM;
                (void)ade_json_get_int64_lenient(props, "diskSizeBytes", &d->size_bytes);
                if (ade_json_get_object(props, "encryptionSettingsCollection", &esc) >= 0) {
                        (void)ade_json_get_bool_lenient(esc, "enabled", &d->encryption_settings_enabled);
                        if (arm_disk_key_urls(esc, d) < 0)
                                return -ENOMEM;
                }
        }
        if (!d->id) {
                (void)ade_cloud_error_set(ret_error, 200, "MalformedReply", "disk answer has no id", url);
                return -EPROTO;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

static void rp_done(AdeArmRestorePoint *p) {
        free(p->id);
        free(p->name);
        free(p->provisioning_state);
        free(p->consistency_mode);
        strv_free(p->disk_ids);
}

static void rpc_done(AdeArmRestorePointCollection *c) {
        free(c->id);
        free(c->name);
        free(c->source_id);
        for (size_t i = 0; i < c->n_points; i++)
                rp_done(&c->points[i]);
        free(c->points);
}

AdeArmRestorePointCollectionList *ade_arm_rpc_list_free(AdeArmRestorePointCollectionList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                rpc_done(&l->items[i]);
        free(l->items);
        free(l);
        return NULL;
}

static int strv_push_dup(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **nl;

        nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[n] = strdup(s);
        nl[n + 1] = NULL;
        return nl[n] ? 0 : -ENOMEM;
}

static int parse_restore_point(json_object *o, AdeArmRestorePoint *p) {
        json_object *props, *sp, *dd;
        const char *s;

        if (dup_str(o, "id", &p->id) < 0 || dup_str(o, "name", &p->name) < 0)
                return -ENOMEM;
        p->disk_ids = calloc(1, sizeof(char *));
        if (!p->disk_ids)
                return -ENOMEM;
        if (ade_json_get_object(o, "properties", &props) < 0)
                return 0;
        if (dup_str(props, "provisioningState", &p->provisioning_state) < 0 ||
                dup_str(props, "consistencyMode", &p->consistency_mode) < 0)
                return -ENOMEM;
        if (ade_json_get_string(props, "timeCreated", &s) >= 0)
                (void)ade_arm_parse_time(s, &p->time_created);
        if (ade_json_get_object(props, "sourceMetadata", &sp) >= 0 &&
                ade_json_get_object(sp, "storageProfile", &sp) >= 0) {
                if (ade_json_get_path_string(sp, &s, "osDisk", "managedDisk", "id", NULL) >= 0 &&
                        strv_push_dup(&p->disk_ids, s) < 0)
                        return -ENOMEM;
                if (ade_json_get_array(sp, "dataDisks", &dd) >= 0)
                        for (size_t i = 0; i < json_object_array_length(dd); i++)
                                if (ade_json_get_path_string(
                                            json_object_array_get_idx(dd, i), &s, "managedDisk", "id", NULL) >= 0 &&
                                        strv_push_dup(&p->disk_ids, s) < 0)
                                        return -ENOMEM;
        }
        return 0;
}

typedef struct RpcListCtx {
        AdeArm *arm;
        AdeArmRestorePointCollectionList *list;
        AdeCloudError *error;
} RpcListCtx;

/* GETs one collection with $expand=restorePoints into @c (zeroed first; rpc_done() on failure too). */
static int rpc_fetch(AdeArm *arm, const char *id, AdeArmRestorePointCollection *c, AdeCloudError *ret_error) {
        _cleanup_json_ json_object *full = NULL;
        _cleanup_free_ char *url = NULL;
        json_object *props, *points;
        int r;

        *c = (AdeArmRestorePointCollection){};
        r = arm_url(arm, id, "api-version=" ARM_API_RPC "&$expand=restorePoints", &url);
        if (r < 0)
                return r;
        r = arm_get(arm, url, &full, ret_error);
        if (r < 0)
                return r;

        if (dup_str(full, "id", &c->id) < 0 || dup_str(full, "name", &c->name) < 0)
                return -ENOMEM;
        if (!c->id) {
                (void)ade_cloud_error_set(ret_error, 200, "MalformedReply", "restore point collection has no id", url);
                return -EPROTO;
        }
        if (ade_json_get_object(full, "properties", &props) < 0)
                return 0;
        if (dup_path(props, &c->source_id, "source", "id") < 0)
                return -ENOMEM;
        if (ade_json_get_array(props, "restorePoints", &points) < 0)
                return 0;
        c->points = calloc(json_object_array_length(points) + 1, sizeof(AdeArmRestorePoint));
        if (!c->points)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(points); i++) {
                json_object *p = json_object_array_get_idx(points, i);

                if (!json_object_is_type(p, json_type_object))
                        continue;
                r = parse_restore_point(p, &c->points[c->n_points++]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int rpc_item(json_object *o, void *userdata) {
        RpcListCtx *ctx = userdata;
        AdeArmRestorePointCollectionList *l = ctx->list;
        AdeArmRestorePointCollection *items;
        const char *id;

        if (ade_json_get_string(o, "id", &id) < 0)
                return 0;
        items = realloc(l->items, (l->n + 1) * sizeof(*items));
        if (!items)
                return -ENOMEM;
        l->items = items;
        /* The list does not carry the restore points; ask for each collection with them. Counted
         * before filling, so that the list's free releases a half-filled entry too. */
        return rpc_fetch(ctx->arm, id, &l->items[l->n++], ctx->error);
}

int ade_arm_get_restore_point_collection(
        AdeArm *arm, const char *rpc_id, AdeArmRestorePointCollectionList **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_arm_rpc_list_freep) AdeArmRestorePointCollectionList *l = NULL;
        int r;

        assert(arm);
        assert(ret);

        if (!ade_url_arm_id_is(rpc_id, "Microsoft.Compute", "restorePointCollections"))
                return ade_log_debug_errno(-EINVAL, "'%s' is not a restore point collection id", strna(rpc_id));
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->items = calloc(1, sizeof(*l->items));
        if (!l->items)
                return -ENOMEM;
        l->n = 1;
        r = rpc_fetch(arm, rpc_id, &l->items[0], ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int ade_arm_list_restore_point_collections(AdeArm *arm, const char *subscription, const char *resource_group,
        AdeArmRestorePointCollectionList **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_arm_rpc_list_freep) AdeArmRestorePointCollectionList *l = NULL;
        _cleanup_free_ char *path = NULL, *url = NULL;
        RpcListCtx ctx;
        int r;

        assert(arm);
        assert(ret);

        if (isempty(subscription) || isempty(resource_group))
                return -EINVAL;
        if (asprintf(&path, "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/restorePointCollections",
                    subscription, resource_group) < 0)
                return -ENOMEM;
        r = arm_url(arm, path, "api-version=" ARM_API_RPC, &url);
        if (r < 0)
                return r;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        ctx = (RpcListCtx){.arm = arm, .list = l, .error = ret_error};
        r = arm_list(arm, url, rpc_item, &ctx, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}
