/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>
#include <curl/curl.h>

#include "ade-envelope.h"
#include "ade-identity.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-resolver.h"
#include "ade-state.h"
#include "ade-url.h"

typedef struct Vault {
        struct Vault *next;
        char *origin;
        AdeKeyVault *kv;
} Vault;

struct AdeResolver {
        const AdeConfig *config;
        AdeHttpShare *share;
        AdeHttpOptions opts;
        bool curl_initialized;

        pthread_mutex_t lock; /* guards the four below */
        AdeCredential *credential;
        Vault *vaults;  /* live as long as the resolver: callers borrow their clients */
        char **trusted; /* vault origins a token may go to besides the DNS suffix's, NULL-terminated */
        AdeResolverStats stats;
};

/* Counts the outcome of one of the Key Vault operations (escrow, a key file, disabling a secret). */
static int resolver_count(AdeResolver *r, int k, const AdeCloudError *e) {
        pthread_mutex_lock(&r->lock);
        if (k >= 0) {
                r->stats.succeeded++;
                r->stats.last_success_usec = ade_now_realtime_usec();
        } else if (k != -ECANCELED) {
                AdeCloudErrorKind kind = ade_cloud_error_kind(k, e);
                if (kind >= 0)
                        r->stats.failed[kind]++;
        }
        pthread_mutex_unlock(&r->lock);
        return k;
}

void ade_resolver_stats(AdeResolver *r, AdeResolverStats *ret) {
        pthread_mutex_lock(&r->lock);
        *ret = r->stats;
        pthread_mutex_unlock(&r->lock);
}

int ade_resolver_new(const AdeConfig *config, const AdeHttpOptions *opts, AdeResolver **ret) {
        _cleanup_(ade_resolver_freep) AdeResolver *r = NULL;
        int k;

        assert(config);
        assert(ret);

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        r->config = config;
        if (ade_http_global_init() < 0)
                return -ENOMEM;
        r->curl_initialized = true;
        k = ade_http_share_new(&r->share);
        if (k < 0)
                return k;
        if (opts)
                r->opts = *opts;
        else
                ade_http_options_init(&r->opts);
        r->opts.ca_file = config->azure.ca_file;
        r->opts.share = r->share;

        /* The vaults of the configuration; a configured URL that ade-url.h refused would not have
         * passed ade_config_parse(). */
        k = ade_resolver_trust_vault(r, config->keyvault.url);
        if (k < 0)
                return k;
        k = ade_resolver_trust_vault(r, config->keyvault.kek_url);
        if (k < 0)
                return k;

        /* What every first call would pay for, paid now (a process makes its resolver at start): the
         * trust store and the identity. A failure is not final: the first call that needs them tries
         * again and reports it. */
        (void)ade_http_share_load_trust(r->share, r->opts.ca_file);
        {
                AdeCredential *cred;

                (void)ade_resolver_credential(r, &cred);
        }
        *ret = TAKE_PTR(r);
        return 0;
}

AdeResolver *ade_resolver_free(AdeResolver *r) {
        if (!r)
                return NULL;
        while (r->vaults) {
                Vault *v = r->vaults;

                r->vaults = v->next;
                ade_keyvault_free(v->kv);
                free(v->origin);
                free(v);
        }
        /* The clients go before the share they borrow connections from. */
        ade_credential_free(r->credential);
        ade_http_share_free(r->share);
        strv_free(r->trusted);
        if (r->curl_initialized)
                curl_global_cleanup();
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

const AdeHttpOptions *ade_resolver_http_options(AdeResolver *r) {
        assert(r);
        return &r->opts;
}

/* Called with r->lock held. */
static int credential_locked(AdeResolver *r, AdeCredential **ret) {
        int k;

        if (!r->credential) {
                k = ade_identity_credential_new(r->config, &r->opts, &r->credential);
                if (k < 0)
                        return ade_log_debug_errno(k, "cannot set up the identity from %s: %m", r->config->path);
        }
        *ret = r->credential;
        return 0;
}

int ade_resolver_credential(AdeResolver *r, AdeCredential **ret) {
        int k;

        assert(r);
        assert(ret);

        pthread_mutex_lock(&r->lock);
        k = credential_locked(r, ret);
        pthread_mutex_unlock(&r->lock);
        return k;
}

/* The client for @origin, made when first asked for. Called with r->lock held. */
static int vault_locked(AdeResolver *r, const char *origin, AdeKeyVault **ret) {
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        AdeCredential *cred = NULL;
        Vault *v;
        int k;

        for (v = r->vaults; v; v = v->next)
                if (streq(v->origin, origin)) {
                        *ret = v->kv;
                        return 0;
                }

        k = credential_locked(r, &cred);
        if (k < 0)
                return k;
        k = ade_keyvault_new(origin, cred, r->config->azure.keyvault_resource, &r->opts, &kv);
        if (k < 0)
                return k;
        v = calloc(1, sizeof(*v));
        if (!v || !(v->origin = strdup(origin))) {
                free(v);
                return -ENOMEM;
        }
        v->kv = TAKE_PTR(kv);
        v->next = r->vaults;
        r->vaults = v;
        *ret = v->kv;
        return 0;
}

static int vault_of(AdeResolver *r, const char *origin, AdeKeyVault **ret) {
        int k;

        pthread_mutex_lock(&r->lock);
        k = vault_locked(r, origin, ret);
        pthread_mutex_unlock(&r->lock);
        return k;
}

int ade_resolver_vault_allowed(char *const *origins, const char *dns_suffix, const char *url) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        size_t hl, sl;
        int k;

        /* https only, no user information, a clean host: the origin compared is what is dialled. */
        k = ade_url_parse(url, 0, &u);
        if (k < 0)
                return k == -ENOMEM ? k : -EINVAL;
        for (char *const *o = origins; o && *o; o++)
                if (streq(*o, u->origin))
                        return 0;

        /* Key Vault's own names (contoso.vault.azure.net) serve on 443 only; another port there is
         * another server, and an IPv6 literal is no name under any suffix. */
        if (isempty(dns_suffix) || u->port != 443 || u->host[0] == '[')
                return -EPERM;
        hl = strlen(u->host);
        sl = strlen(dns_suffix);
        if (dns_suffix[0] != '.' || hl <= sl || strcasecmp(u->host + hl - sl, dns_suffix) != 0)
                return -EPERM;
        return 0;
}

int ade_resolver_check_vault(AdeResolver *r, const char *url, AdeCloudError *ret_error) {
        _cleanup_free_ char *msg = NULL, *origin = NULL;
        int k;

        assert(r);

        pthread_mutex_lock(&r->lock);
        k = ade_resolver_vault_allowed(r->trusted, r->config->azure.keyvault_dns_suffix, url);
        pthread_mutex_unlock(&r->lock);
        if (k == 0 || k == -ENOMEM)
                return k;

        if (k == -EINVAL) {
                if (asprintf(&msg, "'%s' is not an https:// URL of a vault; no token is sent there", strna(url)) < 0)
                        return -ENOMEM;
        } else {
                k = ade_url_origin(url, &origin);
                if (k < 0)
                        return k;
                if (asprintf(&msg,
                            "no token is sent to %s: that vault is neither [keyvault] url nor kek-url in %s, nor one "
                            "a root Enable or RotateKey named, nor under [azure] keyvault-dns-suffix (%s). If %s "
                            "really is your vault, name it in %s, or enable the volume with --keyvault-url or "
                            "--kek-url naming it",
                            origin, strna(r->config->path), strna(r->config->azure.keyvault_dns_suffix), origin,
                            strna(r->config->path)) < 0)
                        return -ENOMEM;
                k = -EPERM;
        }
        (void)ade_cloud_error_set(ret_error, 0, "VaultNotAllowed", msg, url);
        return ade_log_debug_errno(k, "%s", msg);
}

int ade_resolver_trust_vault(AdeResolver *r, const char *url) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        _cleanup_free_ char *origin = NULL;
        char **grown;
        size_t n;
        int k;

        assert(r);

        if (!url)
                return 0;
        k = ade_url_parse(url, 0, &u);
        if (k < 0)
                return ade_log_debug_errno(k == -ENOMEM ? k : -EINVAL, "cannot trust '%s': not an https:// URL", url);
        origin = TAKE_PTR(u->origin);

        pthread_mutex_lock(&r->lock);
        n = strv_length(r->trusted);
        for (size_t i = 0; i < n; i++)
                if (streq(r->trusted[i], origin)) {
                        pthread_mutex_unlock(&r->lock);
                        return 0;
                }
        grown = realloc(r->trusted, (n + 2) * sizeof(char *));
        if (!grown) {
                pthread_mutex_unlock(&r->lock);
                return -ENOMEM;
        }
        r->trusted = grown;
        r->trusted[n] = TAKE_PTR(origin);
        r->trusted[n + 1] = NULL;
        pthread_mutex_unlock(&r->lock);
        ade_log_debug("Key Vault %s trusted with tokens", r->trusted[n]);
        return 0;
}

int ade_resolver_trust_state(AdeResolver *r, const AdeState *state) {
        int k;

        assert(r);

        for (size_t i = 0; state && i < state->n_volumes; i++) {
                const AdeStateVolume *v = state->volumes[i];

                k = ade_resolver_trust_vault(r, v->keyvault_url);
                if (k == -ENOMEM)
                        return k;
                k = ade_resolver_trust_vault(r, v->kek_url);
                if (k == -ENOMEM)
                        return k;
        }
        return 0;
}

int ade_resolver_keyvault(AdeResolver *r, const char *url, AdeKeyVault **ret, AdeCloudError *ret_error) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        int k;

        assert(r);
        assert(ret);

        k = ade_resolver_check_vault(r, url, ret_error);
        if (k < 0)
                return k;
        k = ade_url_parse(url, 0, &u);
        if (k < 0)
                return k;
        return vault_of(r, u->origin, ret);
}

int ade_resolver_prepare_vault(AdeResolver *r, const char *url, AdeCloudError *ret_error) {
        AdeKeyVault *kv;
        int k;

        k = ade_resolver_keyvault(r, url, &kv, ret_error);
        if (k < 0)
                return k;
        return ade_keyvault_prepare(kv, ret_error);
}

/* The client for the vault of @url, a Key Vault object URL of @kind that a volume names. */
static int vault_from_volume(
        AdeResolver *r, const char *url, const char *kind, AdeKeyVault **ret, AdeCloudError *ret_error) {
        _cleanup_free_ char *msg = NULL;
        int k;

        k = ade_url_keyvault_object(url, kind, false, NULL, NULL, NULL);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                if (asprintf(&msg, "'%s' is not a Key Vault %s URL; no token is sent there", strna(url),
                            streq(kind, "keys") ? "key" : "secret") < 0)
                        return -ENOMEM;
                (void)ade_cloud_error_set(ret_error, 0, "VaultNotAllowed", msg, NULL);
                return ade_log_debug_errno(k, "%s", msg);
        }
        return ade_resolver_keyvault(r, url, ret, ret_error);
}

static int disable_secret(AdeResolver *r, const char *secret_url, AdeCloudError *ret_error) {
        AdeKeyVault *kv;
        int k;

        k = vault_from_volume(r, secret_url, "secrets", &kv, ret_error);
        if (k < 0)
                return k;
        return ade_keyvault_disable_secret(kv, secret_url, ret_error);
}

int ade_resolver_disable_secret(AdeResolver *r, const char *secret_url, AdeCloudError *ret_error) {
        _cleanup_cloud_error_ AdeCloudError own = ADE_CLOUD_ERROR_NULL;
        AdeCloudError *e = ret_error ?: &own;

        assert(r);
        return resolver_count(r, disable_secret(r, secret_url, e), e);
}

static int escrow(AdeResolver *r, const AdeResolverEscrow *p, const AdeSecret *keyfile, AdeLuksToken **ret_token,
        AdeCloudError *ret_error) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_free_ char *secret_url = NULL, *wrapped = NULL;
        const char *alg = p->kek_algorithm ?: ADE_KEK_ALGORITHM_DEFAULT;
        AdeKeyVault *kv, *kek_kv = NULL;
        int k;

        assert(r);
        assert(p);
        assert(keyfile);
        assert(ret_token);

        if (!p->vault_url)
                return -EINVAL;
        k = ade_resolver_keyvault(r, p->vault_url, &kv, ret_error);
        if (k < 0)
                return k;
        if (p->kek_url) {
                k = ade_resolver_keyvault(r, p->kek_url, &kek_kv, ret_error);
                if (k < 0)
                        return k;
        }

        k = ade_envelope_escrow(kv, kek_kv, keyfile,
                &(AdeEnvelopeParams){
                        .key_file_name = p->key_file_name,
                        .kek_url = p->kek_url,
                        .kek_algorithm = p->kek_url ? alg : NULL,
                },
                &secret_url, &wrapped, ret_error);
        if (k < 0)
                return k;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->keyslot = -1;
        if (ade_strdup_to(&t->version, ADE_LUKS_TOKEN_VERSION) < 0 ||
                ade_strdup_to(&t->key_vault_url, p->vault_url) < 0 ||
                ade_strdup_to(&t->key_vault_resource_id, p->vault_resource_id) < 0 ||
                ade_strdup_to(&t->secret_url, secret_url) < 0 || ade_strdup_to(&t->kek_url, p->kek_url) < 0 ||
                ade_strdup_to(&t->kek_vault_resource_id,
                        p->kek_url ? (p->kek_vault_resource_id ?: p->vault_resource_id) : NULL) < 0 ||
                ade_strdup_to(&t->kek_algorithm, p->kek_url ? alg : NULL) < 0 ||
                ade_strdup_to(&t->volume_type, p->volume_type) < 0 || ade_strdup_to(&t->passphrase, wrapped) < 0 ||
                ade_strdup_to(&t->device_id, p->device_id) < 0)
                return -ENOMEM;
        *ret_token = TAKE_PTR(t);
        return 0;
}

int ade_resolver_escrow(AdeResolver *r, const AdeResolverEscrow *p, const AdeSecret *keyfile, AdeLuksToken **ret_token,
        AdeCloudError *ret_error) {
        _cleanup_cloud_error_ AdeCloudError own = ADE_CLOUD_ERROR_NULL;
        AdeCloudError *e = ret_error ?: &own;

        return resolver_count(r, escrow(r, p, keyfile, ret_token, e), e);
}

static int key_from_token(AdeResolver *r, AdeLuksToken *token, AdeSecret **ret_keyfile, AdeCloudError *ret_error) {
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *secret = NULL;
        AdeKeyVault *kv, *kek_kv = NULL;
        int k;

        assert(r);
        assert(ret_keyfile);

        if (!token || !token->secret_url)
                return -EINVAL;
        k = vault_from_volume(r, token->secret_url, "secrets", &kv, ret_error);
        if (k < 0)
                return k;
        if (token->kek_url) {
                k = vault_from_volume(r, token->kek_url, "keys", &kek_kv, ret_error);
                if (k < 0)
                        return k;
        }

        if (token->kek_url && !token->passphrase) {
                /* Rebuilding a token before its header exists: the wrapped value is the secret's. */
                k = ade_keyvault_get_secret(kv, token->secret_url, &secret, ret_error);
                if (k < 0)
                        return k;
                if (!secret->value)
                        return -EBADMSG;
                k = ade_strdup_to(&token->passphrase, (const char *)secret->value->data);
                if (k < 0)
                        return k;
        }
        return ade_envelope_resolve(kv, kek_kv, token->secret_url, token->kek_url, token->kek_algorithm,
                token->passphrase, ret_keyfile, ret_error);
}

int ade_resolver_key_from_token(
        AdeResolver *r, AdeLuksToken *token, AdeSecret **ret_keyfile, AdeCloudError *ret_error) {
        _cleanup_cloud_error_ AdeCloudError own = ADE_CLOUD_ERROR_NULL;
        AdeCloudError *e = ret_error ?: &own;

        assert(r);
        return resolver_count(r, key_from_token(r, token, ret_keyfile, e), e);
}

int ade_resolver_key_from_device(AdeResolver *r, const char *device, const char *header, AdeLuksToken **ret_token,
        AdeSecret **ret_keyfile, AdeCloudError *ret_error) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        int k;

        assert(r);
        assert(device);
        assert(ret_keyfile);

        k = ade_luks_read_token(device, header, &token);
        if (k < 0)
                return ade_log_debug_errno(k, "%s has no readable Azure_Disk_Encryption token: %m", device);
        k = ade_resolver_key_from_token(r, token, &keyfile, ret_error);
        if (k < 0)
                return k;
        *ret_keyfile = TAKE_PTR(keyfile);
        if (ret_token)
                *ret_token = TAKE_PTR(token);
        return 0;
}
