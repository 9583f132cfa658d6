/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <time.h>

#include "ade-base64.h"
#include "ade-entra.h"
#include "ade-imds.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-token.h"

typedef struct CacheEntry {
        struct CacheEntry *next;
        char *resource;
        char *tenant;
        AdeSecret *token;
        uint64_t expires_on;
} CacheEntry;

struct AdeCredential {
        AdeTokenFetchFunc fetch;
        void *userdata;
        void (*free_userdata)(void *);
        CacheEntry *cache;
        unsigned fetches;
};

int ade_credential_new(AdeTokenFetchFunc fetch, void *userdata, void (*free_userdata)(void *), AdeCredential **ret) {
        AdeCredential *c;

        assert(fetch);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fetch = fetch;
        c->userdata = userdata;
        c->free_userdata = free_userdata;
        *ret = c;
        return 0;
}

static CacheEntry *entry_free(CacheEntry *e) {
        CacheEntry *next;

        if (!e)
                return NULL;
        next = e->next;
        free(e->resource);
        free(e->tenant);
        ade_secret_free(e->token);
        free(e);
        return next;
}

void ade_credential_flush(AdeCredential *c) {
        if (!c)
                return;
        while (c->cache)
                c->cache = entry_free(c->cache);
}

AdeCredential *ade_credential_free(AdeCredential *c) {
        if (!c)
                return NULL;
        ade_credential_flush(c);
        if (c->free_userdata)
                c->free_userdata(c->userdata);
        free(c);
        return NULL;
}

unsigned ade_credential_fetch_count(const AdeCredential *c) {
        return c ? c->fetches : 0;
}

int ade_credential_get_token(AdeCredential *c, const char *resource, const char *tenant, bool force_refresh,
        const AdeSecret **ret_token, AdeCloudError *ret_error) {
        CacheEntry *e;
        AdeSecret *token = NULL;
        uint64_t expires_on = 0, now = (uint64_t)time(NULL);
        int r;

        assert(c);
        assert(resource);
        assert(ret_token);

        for (e = c->cache; e; e = e->next)
                if (streq(e->resource, resource) && streq_ptr(e->tenant, tenant))
                        break;

        if (e && !force_refresh && e->expires_on > now + ADE_TOKEN_REFRESH_MARGIN_SEC) {
                *ret_token = e->token;
                return 0;
        }

        r = c->fetch(c->userdata, resource, tenant, &token, &expires_on, ret_error);
        if (r < 0)
                return r;
        c->fetches++;

        if (!e) {
                e = calloc(1, sizeof(*e));
                if (!e || !(e->resource = strdup(resource)) || (tenant && !(e->tenant = strdup(tenant)))) {
                        entry_free(e);
                        ade_secret_free(token);
                        return -ENOMEM;
                }
                e->next = c->cache;
                c->cache = e;
        }
        ade_secret_free(e->token);
        e->token = token;
        e->expires_on = expires_on;
        ade_log_debug("New token for %s (tenant %s), expires in %" PRIi64 " s", resource, strna(tenant),
                (int64_t)expires_on - (int64_t)now);
        *ret_token = e->token;
        return 0;
}

int ade_jwt_get_claims(const char *jwt, size_t len, json_object **ret) {
        _cleanup_free_ void *payload = NULL;
        const char *dot1, *dot2, *end = jwt + len;
        size_t size;
        int r;

        assert(jwt);
        assert(ret);

        dot1 = memchr(jwt, '.', len);
        if (!dot1)
                return -EBADMSG;
        dot2 = memchr(dot1 + 1, '.', end - dot1 - 1);
        if (!dot2 || dot2 == dot1 + 1)
                return -EBADMSG;

        r = ade_base64_decode(dot1 + 1, dot2 - dot1 - 1, &payload, &size);
        if (r < 0)
                return -EBADMSG;
        r = ade_json_parse(payload, size, ret);
        return r < 0 ? -EBADMSG : 0;
}

static size_t strip_trailing_slashes(const char *s) {
        size_t l = strlen(s);

        while (l > 0 && s[l - 1] == '/')
                l--;
        return l;
}

int ade_token_resource_to_scope(const char *resource, char **ret) {
        size_t l;

        assert(resource);
        assert(ret);

        l = strlen(resource);
        if (l >= 9 && streq(resource + l - 9, "/.default"))
                *ret = strdup(resource);
        else {
                /* "https://management.azure.com/" -> "https://management.azure.com/.default" */
                l = strip_trailing_slashes(resource);
                if (asprintf(ret, "%.*s/.default", (int)l, resource) < 0)
                        *ret = NULL;
        }
        return *ret ? 0 : -ENOMEM;
}

int ade_token_scope_to_resource(const char *scope, char **ret) {
        size_t l;

        assert(scope);
        assert(ret);

        l = strlen(scope);
        if (l >= 9 && streq(scope + l - 9, "/.default"))
                *ret = strndup(scope, l - 9);
        else
                *ret = strdup(scope);
        return *ret ? 0 : -ENOMEM;
}

static int read_secret_file(const char *path, AdeSecret **ret) {
        _cleanup_secret_ AdeSecret *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(-errno, "Cannot open %s: %m", path);
        r = ade_secret_read_fd(fd, 4095, &s);
        if (r == -EFBIG)
                return ade_log_debug_errno(r, "%s is too large for a client secret", path);
        if (r == -EINVAL)
                return ade_log_debug_errno(r, "%s is empty", path);
        if (r < 0)
                return r;
        n = s->size;
        /* The secret is the file's first line; editors add a newline. */
        while (n > 0 && (s->data[n - 1] == '\n' || s->data[n - 1] == '\r'))
                n--;
        if (n == 0)
                return ade_log_debug_errno(-EINVAL, "%s is empty", path);
        r = ade_secret_truncate(s, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int ade_credential_new_from_config(const AdeConfig *config, const AdeHttpOptions *opts, AdeCredential **ret) {
        int r;

        assert(config);
        assert(ret);

        switch (config->identity.type) {
        case ADE_IDENTITY_MANAGED: {
                AdeImds *imds = NULL;

                r = ade_imds_new(config->azure.imds, opts, &imds);
                if (r < 0)
                        return r;
                r = ade_imds_credential_new(imds, true,
                        config->identity.client_id ? ADE_IMDS_IDENTITY_CLIENT_ID : ADE_IMDS_IDENTITY_SYSTEM,
                        config->identity.client_id, ret);
                if (r < 0)
                        ade_imds_free(imds);
                return r;
        }
        case ADE_IDENTITY_CLIENT_SECRET: {
                _cleanup_secret_ AdeSecret *secret = NULL;
                AdeEntra *entra = NULL;

                if (!config->identity.client_secret_file || !config->identity.tenant_id || !config->identity.client_id)
                        return -EINVAL;
                r = read_secret_file(config->identity.client_secret_file, &secret);
                if (r < 0)
                        return r;
                r = ade_entra_new_secret(config->azure.authority, config->identity.tenant_id,
                        config->identity.client_id, secret, opts, &entra);
                if (r < 0)
                        return r;
                r = ade_entra_credential_new(entra, true, ret);
                if (r < 0)
                        ade_entra_free(entra);
                return r;
        }
        case ADE_IDENTITY_CLIENT_CERTIFICATE: {
                AdeEntra *entra = NULL;

                if (!config->identity.client_certificate_file || !config->identity.tenant_id ||
                        !config->identity.client_id)
                        return -EINVAL;
                r = ade_entra_new_certificate(config->azure.authority, config->identity.tenant_id,
                        config->identity.client_id, config->identity.client_certificate_file, NULL, opts, &entra);
                if (r < 0)
                        return r;
                r = ade_entra_credential_new(entra, true, ret);
                if (r < 0)
                        ade_entra_free(entra);
                return r;
        }
        default:
                return -EINVAL;
        }
}
