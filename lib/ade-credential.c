/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>

#include "ade-credential.h"
#include "ade-log.h"

typedef struct CacheEntry {
        struct CacheEntry *next;
        char *resource;
        char *tenant;
        AdeSecret *token; /* NULL until the first fetch succeeds, or after a flush */
        uint64_t expires_on;
        bool fetching;       /* a thread is fetching; others wait on @changed */
        unsigned generation; /* fetches finished, so that a waiter knows one did */
        int error;           /* the outcome of the last finished fetch: 0 or a negative errno */
        AdeCloudError cloud_error;
} CacheEntry;

struct AdeCredential {
        AdeCredentialFetchFunc fetch;
        void *userdata;
        void (*free_userdata)(void *);
        pthread_mutex_t lock; /* guards everything below */
        pthread_cond_t changed;
        CacheEntry *cache; /* entries live as long as the credential: a fetcher keeps a pointer */
        unsigned fetches;
};

int ade_credential_new(
        AdeCredentialFetchFunc fetch, void *userdata, void (*free_userdata)(void *), AdeCredential **ret) {
        AdeCredential *c;

        assert(fetch);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fetch = fetch;
        c->userdata = userdata;
        c->free_userdata = free_userdata;
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->changed, NULL);
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
        ade_cloud_error_done(&e->cloud_error);
        free(e);
        return next;
}

void ade_credential_flush(AdeCredential *c) {
        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        for (CacheEntry *e = c->cache; e; e = e->next) {
                e->token = ade_secret_free(e->token);
                e->expires_on = 0;
        }
        pthread_mutex_unlock(&c->lock);
}

AdeCredential *ade_credential_free(AdeCredential *c) {
        if (!c)
                return NULL;
        while (c->cache)
                c->cache = entry_free(c->cache);
        if (c->free_userdata)
                c->free_userdata(c->userdata);
        pthread_cond_destroy(&c->changed);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

unsigned ade_credential_fetch_count(AdeCredential *c) {
        unsigned n;

        if (!c)
                return 0;
        pthread_mutex_lock(&c->lock);
        n = c->fetches;
        pthread_mutex_unlock(&c->lock);
        return n;
}

/* Called with the lock held. */
static CacheEntry *entry_get(AdeCredential *c, const char *resource, const char *tenant) {
        CacheEntry *e;

        for (e = c->cache; e; e = e->next)
                if (streq(e->resource, resource) && streq_ptr(e->tenant, tenant))
                        return e;

        e = calloc(1, sizeof(*e));
        if (!e || !(e->resource = strdup(resource)) || (tenant && !(e->tenant = strdup(tenant)))) {
                entry_free(e);
                return NULL;
        }
        e->next = c->cache;
        c->cache = e;
        return e;
}

static int copy_token(const CacheEntry *e, AdeSecret **ret) {
        return ade_secret_new_from(e->token->data, e->token->size, ret);
}

static void copy_error(const CacheEntry *e, AdeCloudError *ret_error) {
        if (ret_error)
                (void)ade_cloud_error_set(ret_error, e->cloud_error.status, e->cloud_error.code, e->cloud_error.message,
                        e->cloud_error.url);
}

int ade_credential_get_token(AdeCredential *c, const char *resource, const char *tenant, const AdeSecret *refused,
        AdeSecret **ret_token, AdeCloudError *ret_error) {
        _cleanup_cloud_error_ AdeCloudError err = ADE_CLOUD_ERROR_NULL;
        AdeSecret *token = NULL;
        uint64_t expires_on = 0, now;
        CacheEntry *e;
        int r;

        assert(c);
        assert(resource);
        assert(ret_token);

        pthread_mutex_lock(&c->lock);
        e = entry_get(c, resource, tenant);
        if (!e) {
                pthread_mutex_unlock(&c->lock);
                return -ENOMEM;
        }
        for (;;) {
                unsigned generation;

                now = (uint64_t)time(NULL);
                if (e->token && e->expires_on > now + ADE_CREDENTIAL_REFRESH_MARGIN_SEC &&
                        !(refused && ade_secret_equal(e->token, refused))) {
                        r = copy_token(e, ret_token);
                        pthread_mutex_unlock(&c->lock);
                        return r;
                }
                if (!e->fetching)
                        break;
                /* Another thread is asking: its answer is ours too. */
                generation = e->generation;
                while (e->fetching)
                        pthread_cond_wait(&c->changed, &c->lock);
                if (e->generation != generation && e->error < 0) {
                        r = e->error;
                        copy_error(e, ret_error);
                        pthread_mutex_unlock(&c->lock);
                        return r;
                }
        }
        e->fetching = true;
        pthread_mutex_unlock(&c->lock);

        r = c->fetch(c->userdata, resource, tenant, &token, &expires_on, &err);

        pthread_mutex_lock(&c->lock);
        e->fetching = false;
        e->generation++;
        e->error = r < 0 ? r : 0;
        ade_cloud_error_done(&e->cloud_error);
        if (r < 0) {
                e->cloud_error = err;
                err = ADE_CLOUD_ERROR_NULL;
                copy_error(e, ret_error);
        } else {
                c->fetches++;
                ade_secret_free(e->token);
                e->token = token;
                e->expires_on = expires_on;
                ade_log_debug("New token for %s (tenant %s), expires in %" PRIi64 " s", resource, strna(tenant),
                        (int64_t)expires_on - (int64_t)now);
                r = copy_token(e, ret_token);
        }
        pthread_cond_broadcast(&c->changed);
        pthread_mutex_unlock(&c->lock);
        return r;
}

typedef struct ErrorParam {
        bool invalid_token;
} ErrorParam;

static int find_invalid_token(const char *key, size_t key_len, const char *value, size_t value_len, void *userdata) {
        ErrorParam *p = userdata;

        if (key_len == 5 && strncasecmp(key, "error", 5) == 0 && value_len == 13 &&
                strncasecmp(value, "invalid_token", 13) == 0)
                p->invalid_token = true;
        return 0;
}

bool ade_credential_token_refused(const AdeHttpResponse *resp) {
        ErrorParam p = {};

        if (!resp || resp->status != 401)
                return false;
        if (resp->www_authenticate && ade_http_bearer_params(resp->www_authenticate, find_invalid_token, &p) >= 0 &&
                p.invalid_token)
                return true;
        return resp->body && (strstr(resp->body, "TokenExpired") || strstr(resp->body, "token is expired"));
}

/* "Authorization: Bearer <token>" in a secret, NUL-terminated. */
static int authorization_header(const AdeSecret *token, AdeSecret **ret) {
        static const char prefix[] = "Authorization: Bearer ";
        _cleanup_secret_ AdeSecret *h = NULL;
        int r;

        r = ade_secret_new(sizeof(prefix) + token->size, &h);
        if (r < 0)
                return r;
        memcpy(h->data, prefix, sizeof(prefix) - 1);
        memcpy(h->data + sizeof(prefix) - 1, token->data, token->size);
        h->data[sizeof(prefix) - 1 + token->size] = 0;
        *ret = TAKE_PTR(h);
        return 0;
}

int ade_credential_bearer_request(AdeCredential *c, AdeHttp *http, const char *resource, const char *tenant,
        const AdeHttpRequest *req, AdeHttpResponse *ret_resp, AdeCloudError *ret_error) {
        _cleanup_secret_ AdeSecret *refused = NULL;
        _cleanup_free_ const char **headers = NULL;
        size_t n = 0;
        int r;

        assert(c);
        assert(http);
        assert(resource);
        assert(req);
        assert(ret_resp);

        while (req->headers && req->headers[n])
                n++;
        headers = calloc(n + 2, sizeof(char *));
        if (!headers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                headers[i + 1] = req->headers[i];

        for (;;) {
                _cleanup_secret_ AdeSecret *token = NULL, *auth = NULL;
                _cleanup_http_response_ AdeHttpResponse resp = {};
                AdeHttpRequest with_token = *req;

                r = ade_credential_get_token(c, resource, tenant, refused, &token, ret_error);
                if (r < 0)
                        return ade_log_debug_errno(r, "No token for %s: %m", resource);
                r = authorization_header(token, &auth);
                if (r < 0)
                        return r;
                headers[0] = (const char *)auth->data;
                with_token.headers = headers;

                r = ade_http_request(http, &with_token, &resp, ret_error);
                headers[0] = NULL;
                if (r < 0)
                        return r;

                if (!refused && ade_credential_token_refused(&resp)) {
                        /* Expired earlier than it said (clock skew, revocation): one new token, one retry. */
                        ade_log_debug("%s refused our token for %s; asking for a new one", req->url, resource);
                        refused = TAKE_PTR(token);
                        continue;
                }

                *ret_resp = resp;
                resp = (AdeHttpResponse){};
                return 0;
        }
}

/* The length of @s without its "/.default" (a v2 scope's), in *ret_scope whether it had one; or,
 * for a resource, without trailing slashes. */
static size_t resource_length(const char *s, bool *ret_scope) {
        size_t l = strlen(s);

        *ret_scope = l >= 9 && streq(s + l - 9, "/.default");
        if (*ret_scope)
                return l - 9;
        while (l > 0 && s[l - 1] == '/')
                l--;
        return l;
}

int ade_credential_resource_to_scope(const char *resource, char **ret) {
        bool scope;
        size_t l;

        assert(resource);
        assert(ret);

        /* "https://management.azure.com/" -> "https://management.azure.com/.default" */
        l = resource_length(resource, &scope);
        if (scope)
                *ret = strdup(resource);
        else if (asprintf(ret, "%.*s/.default", (int)l, resource) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

int ade_credential_scope_to_resource(const char *scope, char **ret) {
        bool is_scope;
        size_t l;

        assert(scope);
        assert(ret);

        l = resource_length(scope, &is_scope);
        *ret = is_scope ? strndup(scope, l) : strdup(scope);
        return *ret ? 0 : -ENOMEM;
}
