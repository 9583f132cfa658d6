/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "ade-imds.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-url.h"

#define IMDS_INSTANCE_API "2021-02-01"
#define IMDS_TOKEN_API "2018-02-01"

struct AdeImds {
        AdeHttp *http;
        char *base_url;
};

int ade_imds_new(const char *base_url, const AdeHttpOptions *opts, AdeImds **ret) {
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        AdeHttpOptions o;
        int r;

        assert(ret);

        if (opts)
                o = *opts;
        else
                ade_http_options_init(&o);
        o.imds = true;

        r = ade_url_origin(base_url ?: "", NULL);
        if (r < 0)
                return ade_log_debug_errno(r, "IMDS URL '%s' is not an http(s) URL", strna(base_url));

        imds = calloc(1, sizeof(*imds));
        if (!imds)
                return -ENOMEM;
        imds->base_url = strdup(base_url);
        if (!imds->base_url)
                return -ENOMEM;
        r = ade_http_new(&o, &imds->http);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(imds);
        return 0;
}

AdeImds *ade_imds_free(AdeImds *imds) {
        if (!imds)
                return NULL;
        ade_http_free(imds->http);
        free(imds->base_url);
        free(imds);
        return NULL;
}

static void disk_done(AdeImdsDisk *d) {
        free(d->name);
        free(d->managed_disk_id);
}

AdeImdsInstance *ade_imds_instance_free(AdeImdsInstance *i) {
        if (!i)
                return NULL;
        free(i->location);
        free(i->subscription_id);
        free(i->resource_group);
        free(i->vm_name);
        free(i->vm_id);
        free(i->resource_id);
        free(i->os_type);
        disk_done(&i->os_disk);
        for (size_t k = 0; k < i->n_data_disks; k++)
                disk_done(&i->data_disks[k]);
        free(i->data_disks);
        free(i);
        return NULL;
}

static int dup_field(json_object *o, const char *key, bool required, char **ret) {
        const char *s;
        int r;

        r = ade_json_get_string(o, key, &s);
        if (r == -ENOENT && !required)
                return 0;
        if (r < 0)
                return ade_log_debug_errno(-EPROTO, "IMDS instance metadata: '%s' missing or not a string", key);
        /* IMDS says "missing or inapplicable values are ... an empty string". */
        if (isempty(s)) {
                if (required)
                        return ade_log_debug_errno(-EPROTO, "IMDS instance metadata: '%s' is empty", key);
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int parse_disk(json_object *o, bool os, AdeImdsDisk *d) {
        json_object *md;
        int64_t lun;
        int r;

        r = dup_field(o, "name", false, &d->name);
        if (r < 0)
                return r;
        d->lun = -1;
        if (!os) {
                r = ade_json_get_int64_lenient(o, "lun", &lun);
                if (r < 0 || lun < 0 || lun > 255)
                        return ade_log_debug_errno(-EPROTO, "IMDS data disk '%s' has no valid lun", strna(d->name));
                d->lun = (int)lun;
        }
        if (ade_json_get_object(o, "managedDisk", &md) >= 0) {
                r = dup_field(md, "id", false, &d->managed_disk_id);
                if (r < 0)
                        return r;
        }
        return 0;
}

int ade_imds_parse_instance(const char *json, size_t len, AdeImdsInstance **ret) {
        _cleanup_(ade_imds_instance_freep) AdeImdsInstance *i = NULL;
        _cleanup_json_ json_object *o = NULL;
        json_object *compute, *storage, *os_disk, *data_disks;
        int r;

        assert(json);
        assert(ret);

        r = ade_json_parse(json, len, &o);
        if (r < 0)
                return ade_log_debug_errno(-EPROTO, "IMDS instance metadata is not JSON");
        r = ade_json_get_object(o, "compute", &compute);
        if (r < 0)
                return ade_log_debug_errno(-EPROTO, "IMDS instance metadata has no 'compute' object");

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->os_disk.lun = -1;

        if ((r = dup_field(compute, "location", true, &i->location)) < 0 ||
                (r = dup_field(compute, "subscriptionId", true, &i->subscription_id)) < 0 ||
                (r = dup_field(compute, "resourceGroupName", true, &i->resource_group)) < 0 ||
                (r = dup_field(compute, "name", true, &i->vm_name)) < 0 ||
                (r = dup_field(compute, "vmId", true, &i->vm_id)) < 0 ||
                (r = dup_field(compute, "resourceId", false, &i->resource_id)) < 0 ||
                (r = dup_field(compute, "osType", false, &i->os_type)) < 0)
                return r;

        if (ade_json_get_object(compute, "storageProfile", &storage) >= 0) {
                if (ade_json_get_object(storage, "osDisk", &os_disk) >= 0) {
                        r = parse_disk(os_disk, true, &i->os_disk);
                        if (r < 0)
                                return r;
                }
                if (ade_json_get_array(storage, "dataDisks", &data_disks) >= 0) {
                        size_t n = json_object_array_length(data_disks);

                        i->data_disks = calloc(n ?: 1, sizeof(AdeImdsDisk));
                        if (!i->data_disks)
                                return -ENOMEM;
                        for (size_t k = 0; k < n; k++) {
                                json_object *d = json_object_array_get_idx(data_disks, k);

                                if (!json_object_is_type(d, json_type_object))
                                        return ade_log_debug_errno(-EPROTO, "IMDS data disk %zu is not an object", k);
                                i->n_data_disks++;
                                r = parse_disk(d, false, &i->data_disks[k]);
                                if (r < 0)
                                        return r;
                        }
                }
        }

        *ret = TAKE_PTR(i);
        return 0;
}

/* IMDS' 410 and 404 mean "updating, come back": once retries ran out that is -EAGAIN, not -ENOENT. */
static int imds_check_status(const AdeHttpResponse *resp, const char *url, AdeCloudError *ret_error) {
        if (resp->status == 410) {
                (void)ade_cloud_error_from_reply(ret_error, resp->status, resp->body, resp->size, url);
                return ade_log_debug_errno(-EAGAIN, "IMDS at %s still answers 410 after the retry window", url);
        }
        return 0;
}

/* GETs @path_query with IMDS' header and checks that the answer is a 2xx JSON object (the service's
 * error otherwise). The parsed copy is dropped at once; @wipe_key (may be NULL) names a string in it
 * that is wiped first, as it may be a token. The caller parses resp->body itself. */
static int imds_get(AdeImds *imds, const char *path_query, const char *wipe_key, AdeHttpResponse *ret, char **ret_url,
        AdeCloudError *ret_error) {
        static const char *const headers[] = {"Metadata: true", NULL};
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *url = NULL;
        AdeHttpRequest req = {.method = "GET", .headers = headers};
        int r;

        r = ade_url_join(imds->base_url, path_query, &url);
        if (r < 0)
                return r;
        req.url = url;
        r = ade_http_request(imds->http, &req, ret, ret_error);
        if (r < 0)
                return r;
        r = imds_check_status(ret, url, ret_error);
        if (r < 0)
                return r;
        r = ade_http_reply_json(ret, url, &o, ret_error);
        if (r < 0)
                return r;
        if (wipe_key)
                ade_json_wipe_string(o, wipe_key);
        *ret_url = TAKE_PTR(url);
        return 0;
}

int ade_imds_get_instance(AdeImds *imds, AdeImdsInstance **ret, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        int r;

        assert(imds);
        assert(ret);

        r = imds_get(imds, "/metadata/instance?api-version=" IMDS_INSTANCE_API, NULL, &resp, &url, ret_error);
        if (r < 0)
                return r;

        r = ade_imds_parse_instance(resp.body, resp.size, ret);
        if (r == -EPROTO)
                (void)ade_cloud_error_set(ret_error, resp.status, "MalformedReply",
                        "instance metadata lacks location, subscriptionId, resourceGroupName, "
                        "name or vmId, or has a disk without a numeric lun",
                        url);
        return r;
}

int ade_imds_parse_token(const char *json, size_t len, time_t now, AdeSecret **ret_token, uint64_t *ret_expires_on) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_secret_ AdeSecret *token = NULL;
        const char *access_token;
        int64_t v;
        uint64_t expires_on;
        int r;

        assert(json);
        assert(ret_token);
        assert(ret_expires_on);

        r = ade_json_parse(json, len, &o);
        if (r < 0 || !json_object_is_type(o, json_type_object))
                return -EPROTO;

        r = ade_json_get_string(o, "access_token", &access_token);
        if (r < 0 || isempty(access_token))
                return ade_log_debug_errno(-EPROTO, "Token answer without access_token");

        if (ade_json_get_int64_lenient(o, "expires_on", &v) >= 0 && v > 0)
                expires_on = (uint64_t)v;
        else if (ade_json_get_int64_lenient(o, "expires_in", &v) >= 0 && v > 0)
                expires_on = (uint64_t)now + (uint64_t)v;
        else {
                ade_json_wipe_string(o, "access_token");
                return ade_log_debug_errno(-EPROTO, "Token answer without expires_on or expires_in");
        }

        r = ade_secret_new_from(access_token, strlen(access_token), &token);
        ade_json_wipe_string(o, "access_token");
        if (r < 0)
                return r;

        *ret_token = TAKE_PTR(token);
        *ret_expires_on = expires_on;
        return 0;
}

static const char *const identity_param[_ADE_IMDS_IDENTITY_MAX] = {
        [ADE_IMDS_IDENTITY_SYSTEM] = NULL,
        [ADE_IMDS_IDENTITY_CLIENT_ID] = "client_id",
        [ADE_IMDS_IDENTITY_OBJECT_ID] = "object_id",
        [ADE_IMDS_IDENTITY_MSI_RES_ID] = "msi_res_id",
};

int ade_imds_get_token(AdeImds *imds, const char *resource, AdeImdsIdentity kind, const char *id, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_free_ char *res = NULL, *res_e = NULL, *id_e = NULL, *path = NULL, *url = NULL;
        int r;

        assert(imds);
        assert(resource);
        assert(ret_token);
        assert(ret_expires_on);

        if (kind < 0 || kind >= _ADE_IMDS_IDENTITY_MAX || (kind != ADE_IMDS_IDENTITY_SYSTEM && isempty(id)))
                return -EINVAL;

        r = ade_credential_scope_to_resource(resource, &res);
        if (r < 0)
                return r;
        res_e = ade_http_escape(res);
        if (!res_e)
                return -ENOMEM;
        if (identity_param[kind]) {
                id_e = ade_http_escape(id);
                if (!id_e)
                        return -ENOMEM;
        }
        if (asprintf(&path, "/metadata/identity/oauth2/token?api-version=" IMDS_TOKEN_API "&resource=%s%s%s%s", res_e,
                    id_e ? "&" : "", id_e ? identity_param[kind] : "", id_e ? "=" : "") < 0)
                return -ENOMEM;
        if (id_e) {
                char *p;
                if (asprintf(&p, "%s%s", path, id_e) < 0)
                        return -ENOMEM;
                free(path);
                path = p;
        }

        r = imds_get(imds, path, "access_token", &resp, &url, ret_error);
        if (r < 0)
                return r;

        r = ade_imds_parse_token(resp.body, resp.size, time(NULL), ret_token, ret_expires_on);
        if (r == -EPROTO)
                (void)ade_cloud_error_set(ret_error, resp.status, "MalformedReply",
                        "managed identity token answer lacks access_token or expiry", url);
        return r;
}

typedef struct ImdsCredential {
        AdeImds *imds;
        bool own;
        AdeImdsIdentity kind;
        char *id;
} ImdsCredential;

static void imds_credential_free(void *p) {
        ImdsCredential *c = p;

        if (!c)
                return;
        if (c->own)
                ade_imds_free(c->imds);
        free(c->id);
        free(c);
}

static int imds_credential_fetch(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        ImdsCredential *c = userdata;

        return ade_imds_get_token(c->imds, resource, c->kind, c->id, ret_token, ret_expires_on, ret_error);
}

int ade_imds_credential_new(AdeImds *imds, bool take_imds, AdeImdsIdentity kind, const char *id, AdeCredential **ret) {
        ImdsCredential *c;
        int r;

        assert(imds);
        assert(ret);

        if (kind < 0 || kind >= _ADE_IMDS_IDENTITY_MAX || (kind != ADE_IMDS_IDENTITY_SYSTEM && isempty(id)))
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->kind = kind;
        if (id && !(c->id = strdup(id))) {
                free(c);
                return -ENOMEM;
        }
        c->imds = imds;
        r = ade_credential_new(imds_credential_fetch, c, imds_credential_free, ret);
        if (r < 0) {
                imds_credential_free(c);
                return r;
        }
        /* Only now: on failure the caller still owns @imds. */
        c->own = take_imds;
        return 0;
}
