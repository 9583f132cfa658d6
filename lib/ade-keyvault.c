/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>

#include "ade-base64.h"
#include "ade-config.h"
#include "ade-json.h"
#include "ade-keyvault.h"
#include "ade-log.h"
#include "ade-url.h"

#define KV_API_VERSION "7.4"
#define KV_RESOURCE_DEFAULT "https://vault.azure.net"

struct AdeKeyVault {
        AdeHttp *http;
        AdeCredential *credential;
        char *url;    /* as given, without trailing slashes */
        char *origin; /* ade-url.h's origin */
        char *host;
        char *resource;
        char *resource_host; /* the domain of @resource: the vaults of this cloud lie under it */

        pthread_mutex_t lock; /* guards the challenge: calls may run concurrently */
        pthread_cond_t challenged;
        bool challenging; /* a call is getting the challenge; others wait on @challenged */
        bool have_challenge;
        AdeKvChallenge challenge;
        char *token_resource; /* what the challenge told us to ask for */
};

void ade_kv_challenge_done(AdeKvChallenge *c) {
        if (!c)
                return;
        free(c->authorization);
        free(c->tenant);
        free(c->resource);
        free(c->scope);
        *c = (AdeKvChallenge){};
}

static void kv_challenge_donep(AdeKvChallenge *c) {
        ade_kv_challenge_done(c);
}

int ade_keyvault_new(const char *vault_url, AdeCredential *credential, const char *resource, const AdeHttpOptions *opts,
        AdeKeyVault **ret) {
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        size_t l;
        int r;

        assert(credential);
        assert(ret);

        r = ade_url_parse(vault_url, 0, &u);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return ade_log_debug_errno(
                        -EINVAL, "Key Vault URL '%s' is not an https:// URL with a host", strna(vault_url));

        kv = calloc(1, sizeof(*kv));
        if (!kv)
                return -ENOMEM;
        pthread_mutex_init(&kv->lock, NULL);
        pthread_cond_init(&kv->challenged, NULL);
        kv->credential = credential;
        kv->origin = TAKE_PTR(u->origin);
        kv->host = TAKE_PTR(u->host);
        l = strlen(vault_url);
        while (l > 0 && vault_url[l - 1] == '/')
                l--;
        kv->url = strndup(vault_url, l);
        kv->resource = strdup(resource ?: KV_RESOURCE_DEFAULT);
        if (!kv->url || !kv->resource)
                return -ENOMEM;
        u = ade_url_free(u);
        r = ade_url_parse(kv->resource, 0, &u);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return ade_log_debug_errno(
                        -EINVAL, "Key Vault resource '%s' is not an https:// URL with a host", kv->resource);
        kv->resource_host = TAKE_PTR(u->host);

        r = ade_http_new(opts, &kv->http);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(kv);
        return 0;
}

AdeKeyVault *ade_keyvault_free(AdeKeyVault *kv) {
        if (!kv)
                return NULL;
        ade_http_free(kv->http);
        free(kv->url);
        free(kv->origin);
        free(kv->host);
        free(kv->resource);
        free(kv->resource_host);
        free(kv->token_resource);
        ade_kv_challenge_done(&kv->challenge);
        pthread_cond_destroy(&kv->challenged);
        pthread_mutex_destroy(&kv->lock);
        free(kv);
        return NULL;
}

const char *ade_keyvault_url(const AdeKeyVault *kv) {
        return kv ? kv->url : NULL;
}

/* ---- challenge ---- */

static int set_str(char **p, const char *s, size_t n) {
        char *c = strndup(s, n);

        if (!c)
                return -ENOMEM;
        free(*p);
        *p = c;
        return 0;
}

static int challenge_param(const char *key, size_t key_len, const char *val, size_t val_len, void *userdata) {
        AdeKvChallenge *c = userdata;

#define KEY_IS(k) (key_len == strlen(k) && strncasecmp(key, k, key_len) == 0)
        if (KEY_IS("authorization") || KEY_IS("authorization_uri") || KEY_IS("authorization_url"))
                return set_str(&c->authorization, val, val_len);
        if (KEY_IS("resource"))
                return set_str(&c->resource, val, val_len);
        if (KEY_IS("scope"))
                return set_str(&c->scope, val, val_len);
#undef KEY_IS
        return 0; /* realm, error, claims, tenantId: not needed */
}

int ade_keyvault_parse_challenge(const char *header, AdeKvChallenge *ret) {
        _cleanup_(kv_challenge_donep) AdeKvChallenge c = {};
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        const char *p;
        int r;

        assert(ret);

        r = ade_http_bearer_params(header, challenge_param, &c);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;

        if (isempty(c.authorization) || (isempty(c.resource) && isempty(c.scope)))
                return -EBADMSG;
        if (c.resource && !*c.resource)
                c.resource = mfree(c.resource);
        if (c.scope && !*c.scope)
                c.scope = mfree(c.scope);

        /* The tenant is the first path segment: https://login.microsoftonline.com/<tenant>[/...] */
        r = ade_url_parse(c.authorization, ADE_URL_ALLOW_HTTP, &u);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        p = u->path + strspn(u->path, "/");
        if (*p) {
                r = set_str(&c.tenant, p, strcspn(p, "/"));
                if (r < 0)
                        return r;
        }

        *ret = c;
        c = (AdeKvChallenge){};
        return 0;
}

static bool same_resource(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);

        while (la > 0 && a[la - 1] == '/')
                la--;
        while (lb > 0 && b[lb - 1] == '/')
                lb--;
        return la == lb && strncasecmp(a, b, la) == 0;
}

static int challenge_refused(AdeKeyVault *kv, const char *url, AdeCloudError *ret_error, const char *format, ...)
        _printf_(4, 5);
static int challenge_refused(AdeKeyVault *kv, const char *url, AdeCloudError *ret_error, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vasprintf(&msg, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        (void)ade_cloud_error_set(ret_error, 401, "ChallengeResourceMismatch", msg, url);
        return ade_log_debug_errno(-EPERM, "%s", msg);
}

/* Called with kv->lock held. The challenge names the resource a token is asked for; it is followed
 * by the Azure SDKs' rule (verify_challenge_resource, docs/protocols.md §1.2), and ours on top:
 *  - the vault's host lies within the domain of the resource the challenge names (equal to it, or
 *    under it: contoso.vault.azure.net under https://vault.azure.net, or a vault naming its own
 *    host, "scope=https://<vault>/.default"), so that a host never gets a token for a domain that
 *    is not its own;
 *  - that domain lies within the domain of our Key Vault resource ([azure] keyvault-resource), so
 *    the token asked for is always our Key Vault resource's: a host outside that domain is never
 *    mapped to it, and no challenge makes us fetch a token for another audience (ARM, Graph). */
static int kv_accept_challenge(AdeKeyVault *kv, const char *header, const char *url, AdeCloudError *ret_error) {
        _cleanup_(kv_challenge_donep) AdeKvChallenge c = {};
        _cleanup_(ade_url_freep) AdeUrl *target_url = NULL;
        _cleanup_free_ char *target = NULL;
        int r;

        r = ade_keyvault_parse_challenge(header, &c);
        if (r < 0) {
                (void)ade_cloud_error_set(ret_error, 401, "BadChallenge",
                        "the 401 answer has no usable 'WWW-Authenticate: Bearer authorization=..., "
                        "resource=...' header",
                        url);
                return ade_log_debug_errno(-EPROTO, "Unusable challenge from %s: %s", url, strna(header));
        }

        r = c.scope ? ade_credential_scope_to_resource(c.scope, &target) : (target = strdup(c.resource)) ? 0 : -ENOMEM;
        if (r < 0)
                return r;
        r = ade_url_parse(target, 0, &target_url);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return challenge_refused(kv, url, ret_error,
                        "the vault %s asks for a token for '%s', which is not an https:// resource; no token is "
                        "sent to it. Check [keyvault] url",
                        kv->origin, target);
        if (!ade_url_host_is_within(kv->host, target_url->host))
                return challenge_refused(kv, url, ret_error,
                        "the vault %s asks for a token for '%s', but its host %s does not lie within that "
                        "resource's domain %s (the Azure SDKs refuse this too); no token is sent to it. Check "
                        "[keyvault] url, and [azure] keyvault-resource for a cloud whose vaults are not under %s",
                        kv->origin, target, kv->host, target_url->host, kv->resource_host);
        if (!ade_url_host_is_within(target_url->host, kv->resource_host))
                return challenge_refused(kv, url, ret_error,
                        "the vault %s asks for a token for '%s', which does not lie within the domain of the Key "
                        "Vault resource %s; no token is sent to it. Check [keyvault] url and [azure] "
                        "keyvault-resource",
                        kv->origin, target, kv->resource);

        free(kv->token_resource);
        /* A challenge naming the vault's own host ("scope=https://<vault>/.default") is a request for
         * a Key Vault token: ask for the configured Key Vault resource, which identity endpoints know. */
        if (same_resource(target, kv->resource))
                kv->token_resource = strdup(c.scope ?: c.resource);
        else
                kv->token_resource = strdup(kv->resource);
        if (!kv->token_resource)
                return -ENOMEM;
        ade_kv_challenge_done(&kv->challenge);
        kv->challenge = c;
        c = (AdeKvChallenge){};
        kv->have_challenge = true;
        return 0;
}

/* ---- requests ---- */

static int kv_check_url(AdeKeyVault *kv, const char *url) {
        if (!ade_url_same_origin(url, kv->origin))
                return ade_log_debug_errno(-EINVAL, "%s is not on the vault %s", url, kv->origin);
        return 0;
}

static int with_api_version(const char *url, char **ret) {
        return asprintf(ret, "%s%capi-version=" KV_API_VERSION, url, strchr(url, '?') ? '&' : '?') < 0 ? -ENOMEM : 0;
}

/* What the challenge told us to ask for, copied under the lock: 1. Or 0 when there is no challenge
 * yet: then the caller is to get it, and to call kv_challenge_end() whatever happens; callers that
 * come meanwhile wait for that, so that concurrent first calls cost one challenge. */
static int kv_token_target(AdeKeyVault *kv, char **ret_resource, char **ret_tenant) {
        int r;

        pthread_mutex_lock(&kv->lock);
        while (!kv->have_challenge && kv->challenging)
                pthread_cond_wait(&kv->challenged, &kv->lock);
        if (!kv->have_challenge) {
                kv->challenging = true;
                r = 0;
        } else if (!(*ret_resource = strdup(kv->token_resource)) ||
                   (kv->challenge.tenant && !(*ret_tenant = strdup(kv->challenge.tenant))))
                r = -ENOMEM;
        else
                r = 1;
        pthread_mutex_unlock(&kv->lock);
        return r;
}

/* Ends the getting of the challenge that kv_token_target() handed to the caller: accepts @resp's
 * challenge when it is one. Returns 1 when it was accepted, 0 when @resp is no challenge (or NULL),
 * or the refusal of kv_accept_challenge(). */
static int kv_challenge_end(AdeKeyVault *kv, const AdeHttpResponse *resp, const char *url, AdeCloudError *ret_error) {
        int r = 0;

        pthread_mutex_lock(&kv->lock);
        if (resp && resp->status == 401 && resp->www_authenticate) {
                r = kv_accept_challenge(kv, resp->www_authenticate, url, ret_error);
                if (r >= 0)
                        r = 1;
        }
        kv->challenging = false;
        pthread_cond_broadcast(&kv->challenged);
        pthread_mutex_unlock(&kv->lock);
        return r;
}

/* Sends @req without a token to get the challenge. Returns 1 when it was accepted, 0 with the
 * answer in *ret_resp when it was none, or a negative errno. */
static int kv_get_challenge(
        AdeKeyVault *kv, const AdeHttpRequest *req, AdeHttpResponse *ret_resp, AdeCloudError *ret_error) {
        int r;

        r = ade_http_request(kv->http, req, ret_resp, ret_error);
        if (r < 0) {
                (void)kv_challenge_end(kv, NULL, req->url, ret_error);
                return r;
        }
        return kv_challenge_end(kv, ret_resp, req->url, ret_error);
}

static int kv_call(AdeKeyVault *kv, const char *method, const char *url, const void *body, size_t body_size,
        json_object **ret_reply, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_free_ char *resource = NULL, *tenant = NULL;
        int r;

        r = kv_token_target(kv, &resource, &tenant);
        if (r < 0)
                return r;
        if (r == 0) {
                /* No body on the first request: it only provokes the challenge (as the SDKs do). */
                r = kv_get_challenge(kv, &(AdeHttpRequest){.method = method, .url = url, .send_empty_body = !!body},
                        &resp, ret_error);
                if (r < 0)
                        return r;
                if (r == 0)
                        return ade_http_reply_json(&resp, url, ret_reply, ret_error);
                ade_http_response_done(&resp);
                r = kv_token_target(kv, &resource, &tenant);
                if (r < 0)
                        return r;
        }

        r = ade_credential_bearer_request(kv->credential, kv->http, resource, tenant,
                &(AdeHttpRequest){.method = method, .url = url, .body = body, .body_size = body_size}, &resp,
                ret_error);
        if (r < 0)
                return r;
        return ade_http_reply_json(&resp, url, ret_reply, ret_error);
}

int ade_keyvault_prepare(AdeKeyVault *kv, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_free_ char *resource = NULL, *tenant = NULL, *url = NULL;
        _cleanup_secret_ AdeSecret *token = NULL;
        int r;

        assert(kv);

        r = ade_url_join(kv->url, "secrets?api-version=" KV_API_VERSION "&maxresults=1", &url);
        if (r < 0)
                return r;
        r = kv_token_target(kv, &resource, &tenant);
        if (r < 0)
                return r;
        if (r == 0) {
                /* Key Vault authenticates before it routes: any path without a token gets the challenge. */
                r = kv_get_challenge(kv, &(AdeHttpRequest){.method = "GET", .url = url}, &resp, ret_error);
                if (r < 0)
                        return r;
                if (r == 0) {
                        (void)ade_cloud_error_set(ret_error, resp.status, "NoChallenge",
                                "the vault answered a request without a token with something other than a challenge",
                                url);
                        return ade_log_debug_errno(-EPROTO, "%s answered %ld, not a challenge", url, resp.status);
                }
                r = kv_token_target(kv, &resource, &tenant);
                if (r < 0)
                        return r;
        }
        return ade_credential_get_token(kv->credential, resource, tenant, NULL, &token, ret_error);
}

/* Serializes @rest and puts "@key": "@value" in front of it, all in a secret: @value is key material. */
static int json_with_secret(json_object *rest, const char *key, const uint8_t *value, size_t size, AdeSecret **ret) {
        _cleanup_free_ char *tail = NULL;
        _cleanup_secret_ AdeSecret *b = NULL;
        size_t tl, n = 0;
        char *p;
        int r;

        tail = ade_json_to_string(rest);
        if (!tail)
                return -ENOMEM;
        tl = strlen(tail);
        assert(tl >= 2 && tail[0] == '{');

        r = ade_secret_new(strlen(key) + 8 + size * 6 + tl, &b);
        if (r < 0)
                return r;
        p = (char *)b->data;
        n += sprintf(p, "{\"%s\":\"", key);
        for (size_t i = 0; i < size; i++) {
                uint8_t c = value[i];

                if (c == '"' || c == '\\') {
                        p[n++] = '\\';
                        p[n++] = (char)c;
                } else if (c < 0x20)
                        n += sprintf(p + n, "\\u%04x", c);
                else
                        p[n++] = (char)c;
        }
        p[n++] = '"';
        if (tl > 2)
                p[n++] = ',';
        memcpy(p + n, tail + 1, tl - 1);
        n += tl - 1;
        r = ade_secret_truncate(b, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

AdeKvSecret *ade_kv_secret_free(AdeKvSecret *s) {
        if (!s)
                return NULL;
        free(s->id);
        free(s->name);
        free(s->version);
        ade_secret_free(s->value);
        free(s->content_type);
        strv_free(s->tags);
        free(s);
        return NULL;
}

const char *ade_kv_secret_tag(const AdeKvSecret *s, const char *name) {
        if (!s || !s->tags)
                return NULL;
        for (char **t = s->tags; t[0] && t[1]; t += 2)
                if (streq(t[0], name))
                        return t[1];
        return NULL;
}

int ade_keyvault_set_secret(AdeKeyVault *kv, const char *name, const AdeSecret *value, const char *content_type,
        char *const *tags, char **ret_id, AdeCloudError *ret_error) {
        _cleanup_json_ json_object *rest = NULL, *reply = NULL;
        _cleanup_secret_ AdeSecret *body = NULL;
        _cleanup_free_ char *path = NULL, *url = NULL, *full = NULL;
        json_object *attrs, *t;
        const char *id;
        int r;

        assert(kv);
        assert(value);

        if (!ade_url_keyvault_name_is_valid(name))
                return ade_log_debug_errno(-EINVAL, "'%s' is not a valid secret name", strna(name));

        rest = json_object_new_object();
        attrs = json_object_new_object();
        t = json_object_new_object();
        if (!rest || !attrs || !t) {
                json_object_put(attrs);
                json_object_put(t);
                return -ENOMEM;
        }
        json_object_object_add(attrs, "enabled", json_object_new_boolean(1));
        for (char *const *i = tags; i && i[0]; i += 2) {
                if (!i[1]) {
                        json_object_put(attrs);
                        json_object_put(t);
                        return -EINVAL;
                }
                if (ade_json_add_string(t, i[0], i[1]) < 0) {
                        json_object_put(attrs);
                        json_object_put(t);
                        return -ENOMEM;
                }
        }
        if (ade_json_add_string(rest, "contentType", content_type) < 0 ||
                json_object_object_add(rest, "attributes", attrs) < 0 || json_object_object_add(rest, "tags", t) < 0)
                return -ENOMEM;

        r = json_with_secret(rest, "value", value->data, value->size, &body);
        if (r < 0)
                return r;

        if (asprintf(&path, "secrets/%s", name) < 0)
                return -ENOMEM;
        if ((r = ade_url_join(kv->url, path, &url)) < 0 || (r = with_api_version(url, &full)) < 0)
                return r;

        r = kv_call(kv, "PUT", full, body->data, body->size, &reply, ret_error);
        if (r < 0)
                return r;
        ade_json_wipe_string(reply, "value");

        r = ade_json_get_string(reply, "id", &id);
        if (r < 0) {
                (void)ade_cloud_error_set(ret_error, 200, "MalformedReply", "set secret answer has no 'id'", url);
                return -EPROTO;
        }
        if (ret_id) {
                *ret_id = strdup(id);
                if (!*ret_id)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_tags(json_object *o, char ***ret) {
        json_object *t;
        size_t n = 0;
        char **l;

        if (ade_json_get_object(o, "tags", &t) < 0)
                t = NULL;
        l = calloc(2 * (t ? json_object_object_length(t) : 0) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (t) {
                json_object_object_foreach(t, k, v) {
                        if (!json_object_is_type(v, json_type_string))
                                continue;
                        l[n] = strdup(k);
                        l[n + 1] = strdup(json_object_get_string(v));
                        if (!l[n] || !l[n + 1]) {
                                free(l[n]);
                                l[n] = NULL;
                                strv_free(l);
                                return -ENOMEM;
                        }
                        n += 2;
                }
        }
        *ret = l;
        return 0;
}

/* The URL to call for the secret @secret_url (a version required when @versioned) on this vault. */
static int secret_call_url(AdeKeyVault *kv, const char *secret_url, bool versioned, char **ret) {
        int r;

        r = ade_url_keyvault_object(secret_url, "secrets", versioned, NULL, NULL, NULL);
        if (r < 0)
                return ade_log_debug_errno(
                        -EINVAL, "'%s' is not a%s secret URL", strna(secret_url), versioned ? " versioned" : "");
        r = kv_check_url(kv, secret_url);
        if (r < 0)
                return r;
        return with_api_version(secret_url, ret);
}

int ade_keyvault_get_secret(AdeKeyVault *kv, const char *secret_url, AdeKvSecret **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_free_ char *full = NULL;
        json_object *attrs;
        const char *value, *id, *ct;
        int r;

        assert(kv);
        assert(ret);

        r = secret_call_url(kv, secret_url, false, &full);
        if (r < 0)
                return r;

        r = kv_call(kv, "GET", full, NULL, 0, &reply, ret_error);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                ade_json_wipe_string(reply, "value");
                return -ENOMEM;
        }
        if (ade_json_get_string(reply, "value", &value) < 0 || ade_json_get_string(reply, "id", &id) < 0 ||
                ade_url_keyvault_object(id, "secrets", true, NULL, &s->name, &s->version) < 0) {
                ade_json_wipe_string(reply, "value");
                (void)ade_cloud_error_set(ret_error, 200, "MalformedReply",
                        "secret answer lacks a string 'value' or a versioned 'id'", secret_url);
                return -EPROTO;
        }
        r = ade_secret_new_from(value, strlen(value), &s->value);
        ade_json_wipe_string(reply, "value");
        if (r < 0)
                return r;
        s->id = strdup(id);
        if (!s->id)
                return -ENOMEM;
        if (ade_json_get_string(reply, "contentType", &ct) >= 0 && !(s->content_type = strdup(ct)))
                return -ENOMEM;
        r = parse_tags(reply, &s->tags);
        if (r < 0)
                return r;
        s->enabled = true;
        if (ade_json_get_object(reply, "attributes", &attrs) >= 0)
                (void)ade_json_get_bool_lenient(attrs, "enabled", &s->enabled);

        *ret = TAKE_PTR(s);
        return 0;
}

int ade_keyvault_disable_secret(AdeKeyVault *kv, const char *secret_url, AdeCloudError *ret_error) {
        static const char body[] = "{\"attributes\":{\"enabled\":false}}";
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_free_ char *full = NULL;
        int r;

        assert(kv);

        r = secret_call_url(kv, secret_url, true, &full);
        if (r < 0)
                return r;

        r = kv_call(kv, "PATCH", full, body, sizeof(body) - 1, &reply, ret_error);
        if (r < 0)
                return r;
        /* The service answers the secret's attributes; a value there would be a copy to wipe. */
        ade_json_wipe_string(reply, "value");
        return 0;
}

AdeKvKey *ade_kv_key_free(AdeKvKey *k) {
        if (!k)
                return NULL;
        free(k->kid);
        free(k->kty);
        strv_free(k->key_ops);
        free(k->n);
        free(k->e);
        free(k);
        return NULL;
}

bool ade_kv_key_allows(const AdeKvKey *k, const char *op) {
        for (char **i = k ? k->key_ops : NULL; i && *i; i++)
                if (streq(*i, op))
                        return true;
        return false;
}

static int dup_opt(json_object *o, const char *key, char **ret) {
        const char *s;

        if (ade_json_get_string(o, key, &s) < 0)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ade_keyvault_get_key(AdeKeyVault *kv, const char *key_url, AdeKvKey **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_free_ char *full = NULL;
        json_object *key, *attrs, *ops;
        size_t n = 0;
        int r;

        assert(kv);
        assert(ret);

        r = ade_url_keyvault_object(key_url, "keys", false, NULL, NULL, NULL);
        if (r < 0)
                return ade_log_debug_errno(-EINVAL, "'%s' is not a key URL", strna(key_url));
        r = kv_check_url(kv, key_url);
        if (r < 0)
                return r;
        r = with_api_version(key_url, &full);
        if (r < 0)
                return r;

        r = kv_call(kv, "GET", full, NULL, 0, &reply, ret_error);
        if (r < 0)
                return r;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        if (ade_json_get_object(reply, "key", &key) < 0 || dup_opt(key, "kid", &k->kid) < 0 ||
                dup_opt(key, "kty", &k->kty) < 0 || !k->kid || !k->kty) {
                (void)ade_cloud_error_set(
                        ret_error, 200, "MalformedReply", "key answer lacks key.kid or key.kty", key_url);
                return -EPROTO;
        }
        if (dup_opt(key, "n", &k->n) < 0 || dup_opt(key, "e", &k->e) < 0)
                return -ENOMEM;

        if (ade_json_get_array(key, "key_ops", &ops) >= 0)
                n = json_object_array_length(ops);
        k->key_ops = calloc(n + 1, sizeof(char *));
        if (!k->key_ops)
                return -ENOMEM;
        for (size_t i = 0, j = 0; i < n; i++) {
                json_object *op = json_object_array_get_idx(ops, i);

                if (!json_object_is_type(op, json_type_string))
                        continue;
                k->key_ops[j] = strdup(json_object_get_string(op));
                if (!k->key_ops[j++])
                        return -ENOMEM;
        }

        k->enabled = true;
        if (ade_json_get_object(reply, "attributes", &attrs) >= 0) {
                (void)ade_json_get_bool_lenient(attrs, "enabled", &k->enabled);
                (void)ade_json_get_int64_lenient(attrs, "nbf", &k->nbf);
                (void)ade_json_get_int64_lenient(attrs, "exp", &k->exp);
        }

        *ret = TAKE_PTR(k);
        return 0;
}

static int key_op_url(AdeKeyVault *kv, const char *kek_url, const char *alg, const char *op, char **ret) {
        _cleanup_free_ char *url = NULL;
        int r;

        if (!alg || !ade_kek_algorithm_is_valid(alg))
                return ade_log_debug_errno(-EINVAL, "'%s' is not RSA-OAEP, RSA-OAEP-256 or RSA1_5", strna(alg));
        r = ade_url_keyvault_object(kek_url, "keys", true, NULL, NULL, NULL);
        if (r < 0)
                return ade_log_debug_errno(-EINVAL, "'%s' is not a versioned key URL", strna(kek_url));
        r = kv_check_url(kv, kek_url);
        if (r < 0)
                return r;
        r = ade_url_join(kek_url, op, &url);
        if (r < 0)
                return r;
        return with_api_version(url, ret);
}

int ade_keyvault_wrap(AdeKeyVault *kv, const char *kek_url, const char *alg, const AdeSecret *plain, char **ret_wrapped,
        AdeCloudError *ret_error) {
        _cleanup_json_ json_object *rest = NULL, *reply = NULL;
        _cleanup_secret_ AdeSecret *value = NULL, *body = NULL;
        _cleanup_free_ char *url = NULL;
        const char *wrapped;
        int r;

        assert(kv);
        assert(plain);
        assert(ret_wrapped);

        r = key_op_url(kv, kek_url, alg, "wrapkey", &url);
        if (r < 0)
                return r;

        /* Key Vault wants base64url without padding. */
        r = ade_base64_encode_secret(plain, true, &value);
        if (r < 0)
                return r;
        rest = json_object_new_object();
        if (!rest || ade_json_add_string(rest, "alg", alg) < 0)
                return -ENOMEM;
        r = json_with_secret(rest, "value", value->data, value->size, &body);
        if (r < 0)
                return r;

        r = kv_call(kv, "POST", url, body->data, body->size, &reply, ret_error);
        if (r < 0)
                return r;

        r = ade_json_get_string(reply, "value", &wrapped);
        if (r < 0 || isempty(wrapped)) {
                (void)ade_cloud_error_set(
                        ret_error, 200, "MalformedReply", "wrapkey answer has no string 'value'", url);
                return ade_log_debug_errno(-EPROTO, "wrapkey reply from %s has no string 'value'", url);
        }

        *ret_wrapped = strdup(wrapped);
        return *ret_wrapped ? 0 : -ENOMEM;
}

int ade_keyvault_unwrap(AdeKeyVault *kv, const char *kek_url, const char *alg, const char *wrapped,
        AdeSecret **ret_plain, AdeCloudError *ret_error) {
        _cleanup_json_ json_object *req = NULL, *reply = NULL;
        _cleanup_free_ char *url = NULL, *body = NULL;
        const char *value;
        int r;

        assert(kv);
        assert(ret_plain);

        if (isempty(wrapped))
                return -EINVAL;
        r = key_op_url(kv, kek_url, alg, "unwrapkey", &url);
        if (r < 0)
                return r;

        req = json_object_new_object();
        if (!req || ade_json_add_string(req, "alg", alg) < 0 || ade_json_add_string(req, "value", wrapped) < 0)
                return -ENOMEM;
        body = ade_json_to_string(req);
        if (!body)
                return -ENOMEM;

        r = kv_call(kv, "POST", url, body, strlen(body), &reply, ret_error);
        if (r < 0)
                return r;

        r = ade_json_get_string(reply, "value", &value);
        if (r < 0) {
                (void)ade_cloud_error_set(
                        ret_error, 200, "MalformedReply", "unwrapkey answer has no string 'value'", url);
                return -EPROTO;
        }
        r = ade_base64_decode_secret(value, strlen(value), ret_plain);
        ade_json_wipe_string(reply, "value");
        if (r < 0) {
                (void)ade_cloud_error_set(ret_error, 200, "MalformedReply", "unwrapkey 'value' is not base64url", url);
                return r == -ENOMEM ? r : -EPROTO;
        }
        return 0;
}

/* Whether the tags of the list item @item hold every name = value pair of @match. */
static bool tags_match(json_object *item, char *const *match) {
        json_object *tags, *v;

        if (ade_json_get_object(item, "tags", &tags) < 0)
                return false;
        for (size_t i = 0; match[i] && match[i + 1]; i += 2)
                if (!json_object_object_get_ex(tags, match[i], &v) || !json_object_is_type(v, json_type_string) ||
                        !streq(json_object_get_string(v), match[i + 1]))
                        return false;
        return true;
}

int ade_keyvault_find_secrets(AdeKeyVault *kv, char *const *tags, char ***ret_urls, AdeCloudError *ret_error) {
        _cleanup_free_ char *url = NULL, *base = NULL;
        _cleanup_(strv_freep) char **found = NULL;
        int r;

        assert(kv);
        assert(tags);
        assert(ret_urls);

        if (asprintf(&base, "%s/secrets", kv->url) < 0)
                return -ENOMEM;
        r = with_api_version(base, &url);
        if (r < 0)
                return r;
        /* Key Vault pages its lists; a nextLink off the vault is refused rather than followed. */
        for (unsigned page = 0; url; page++) {
                _cleanup_json_ json_object *reply = NULL;
                json_object *value;
                const char *next;

                if (page > 1000)
                        return -ELOOP;
                r = kv_check_url(kv, url);
                if (r < 0)
                        return r;
                r = kv_call(kv, "GET", url, NULL, 0, &reply, ret_error);
                if (r < 0)
                        return r;
                if (ade_json_get_array(reply, "value", &value) < 0) {
                        (void)ade_cloud_error_set(
                                ret_error, 200, "MalformedReply", "secret list lacks a 'value' array", url);
                        return -EPROTO;
                }
                for (size_t i = 0; i < json_object_array_length(value); i++) {
                        json_object *item = json_object_array_get_idx(value, i), *attrs;
                        const char *id;
                        bool enabled = true;

                        if (ade_json_get_string(item, "id", &id) < 0 || !tags_match(item, tags))
                                continue;
                        if (ade_json_get_object(item, "attributes", &attrs) >= 0)
                                (void)ade_json_get_bool_lenient(attrs, "enabled", &enabled);
                        if (!enabled)
                                continue;
                        r = strv_extend(&found, id);
                        if (r < 0)
                                return r;
                }
                url = mfree(url);
                if (ade_json_get_string(reply, "nextLink", &next) >= 0 && *next && !(url = strdup(next)))
                        return -ENOMEM;
        }
        if (!found && !(found = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret_urls = TAKE_PTR(found);
        return 0;
}
