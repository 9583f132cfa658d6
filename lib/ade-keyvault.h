/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-cloud-error.h"
#include "ade-http.h"
#include "ade-secret.h"
#include "ade-credential.h"

/* A Key Vault client bound to one vault URL ("https://contoso.vault.azure.net", or a test's
 * https://localhost:N). Thread-safe: calls may run concurrently on one client (they share its
 * challenge; over an AdeHttpShare they also run in parallel, ade-http.h).
 *
 * Authentication follows Key Vault's challenge: the first call goes out without a token and with an
 * empty body; the 401's WWW-Authenticate names the authority (tenant) and the resource or scope;
 * the client checks that resource against the vault (see ade_keyvault_new), gets a token from the
 * credential, and sends the real request. The challenge and token are kept, so later calls cost one
 * request each, over the same connection. A 401 that refuses the token gets one new token and one
 * retry (ade_credential_bearer_request()). api-version 7.4.
 *
 * The challenge decides the resource (and tenant) a token is asked for, never where credentials are
 * sent: the credential keeps its configured authority (a look-alike vault must not receive a client
 * secret or an assertion by naming its own authority).
 *
 * Every call takes URLs on this vault only (-EINVAL for another host: a token for this vault is
 * never sent elsewhere) and fills *ret_error, when given, on failure: -EACCES (401/403), -ENOENT
 * (404: SecretNotFound, KeyNotFound), -EINVAL (400 BadParameter), -EBUSY (429 after retries), -EAGAIN
 * (5xx after retries), -EPROTO (an answer we cannot read), and ade_http_request()'s transport errors. */

typedef struct AdeKeyVault AdeKeyVault;

/* @credential is borrowed and must outlive the client. @resource is the Key Vault resource this
 * cloud uses ([azure] keyvault-resource; NULL: https://vault.azure.net; -EINVAL when it is no https
 * URL). A challenge is followed only when the vault's host lies within the domain of the resource it
 * names (the Azure SDKs' rule) and that domain lies within @resource's: a vault under
 * .vault.azure.net naming https://vault.azure.net, or a vault naming its own host. The token is then
 * asked for @resource. Any other challenge is -EPERM (code "ChallengeResourceMismatch") and no token
 * is fetched or sent: a look-alike host cannot get a Key Vault token by naming our resource, nor a
 * token for another audience by naming its own. */
int ade_keyvault_new(const char *vault_url, AdeCredential *credential, const char *resource, const AdeHttpOptions *opts,
        AdeKeyVault **ret);
AdeKeyVault *ade_keyvault_free(AdeKeyVault *kv);
static inline void ade_keyvault_freep(AdeKeyVault **kv) {
        ade_keyvault_free(*kv);
}

const char *ade_keyvault_url(const AdeKeyVault *kv);

/* Gets what the first call would otherwise wait for: the challenge (one GET without a token) and a
 * token for what it names, so that a caller can do it ahead, alongside other work. Sends no token.
 * Errors as the calls below; -EPROTO when the vault answers without a challenge. */
int ade_keyvault_prepare(AdeKeyVault *kv, AdeCloudError *ret_error);

/* A challenge, parsed. */
typedef struct AdeKvChallenge {
        char *authorization; /* "https://login.microsoftonline.com/<tenant>" */
        char *tenant;        /* first path segment of @authorization, or NULL */
        char *resource;      /* resource=, or NULL */
        char *scope;         /* scope=, or NULL */
} AdeKvChallenge;

void ade_kv_challenge_done(AdeKvChallenge *c);

/* Parses "Bearer authorization=\"...\", resource=\"...\"" and its variants (authorization_uri,
 * scope, unquoted values, any order, commas and/or spaces). -EBADMSG when it is not a Bearer
 * challenge, lacks an authorization URL, or lacks both resource and scope. */
int ade_keyvault_parse_challenge(const char *header, AdeKvChallenge *ret);

typedef struct AdeKvSecret {
        char *id; /* versioned URL */
        char *name;
        char *version;
        AdeSecret *value;
        char *content_type; /* NULL when unset */
        char **tags;        /* NULL-terminated name, value, name, value, ...; never NULL */
        bool enabled;
} AdeKvSecret;

AdeKvSecret *ade_kv_secret_free(AdeKvSecret *s);
static inline void ade_kv_secret_freep(AdeKvSecret **s) {
        ade_kv_secret_free(*s);
}
/* The value of tag @name, or NULL. */
const char *ade_kv_secret_tag(const AdeKvSecret *s, const char *name);

/* PUT /secrets/@name: a new version with @value, @content_type (may be NULL), @tags (NULL-terminated
 * name/value pairs, may be NULL), enabled. Returns the versioned id in *ret_id (may be NULL). */
int ade_keyvault_set_secret(AdeKeyVault *kv, const char *name, const AdeSecret *value, const char *content_type,
        char *const *tags, char **ret_id, AdeCloudError *ret_error);

/* GET a secret by URL ("https://v/secrets/NAME[/VERSION]"; no version: the latest). */
int ade_keyvault_get_secret(AdeKeyVault *kv, const char *secret_url, AdeKvSecret **ret, AdeCloudError *ret_error);

/* PATCH a secret version ("https://v/secrets/NAME/VERSION": a version is required, so that only
 * that one changes) to enabled: false. The secret is kept, its value no longer served: what
 * RotateKey does to the secret it replaced (docs/architecture.md §3). Returns 0, -EINVAL for a URL
 * without a version or of another vault, or the call's error. */
int ade_keyvault_disable_secret(AdeKeyVault *kv, const char *secret_url, AdeCloudError *ret_error);

typedef struct AdeKvKey {
        char *kid;      /* versioned */
        char *kty;      /* "RSA", "RSA-HSM", "EC", ... */
        char **key_ops; /* NULL-terminated; never NULL */
        bool enabled;
        int64_t nbf; /* 0 when unset */
        int64_t exp; /* 0 when unset */
        char *n;     /* RSA modulus and exponent, base64url; NULL for other types */
        char *e;
} AdeKvKey;

AdeKvKey *ade_kv_key_free(AdeKvKey *k);
static inline void ade_kv_key_freep(AdeKvKey **k) {
        ade_kv_key_free(*k);
}
bool ade_kv_key_allows(const AdeKvKey *k, const char *op);

/* GET a key by URL ("https://v/keys/NAME[/VERSION]"). */
int ade_keyvault_get_key(AdeKeyVault *kv, const char *key_url, AdeKvKey **ret, AdeCloudError *ret_error);

/* Wraps @plain with the key at @kek_url (versioned) using @alg ("RSA-OAEP", "RSA-OAEP-256",
 * "RSA1_5"; -EINVAL for others). Returns 0 and a base64url string in *ret_wrapped. */
int ade_keyvault_wrap(AdeKeyVault *kv, const char *kek_url, const char *alg, const AdeSecret *plain, char **ret_wrapped,
        AdeCloudError *ret_error);

/* The inverse: @wrapped (base64url or base64) back to the bytes, in a secret. */
int ade_keyvault_unwrap(AdeKeyVault *kv, const char *kek_url, const char *alg, const char *wrapped,
        AdeSecret **ret_plain, AdeCloudError *ret_error);

/* The enabled secrets of this vault whose tags hold every name, value pair of @tags (NULL-terminated
 * name, value, ...): GET /secrets, every page (a nextLink off this vault is refused: -EINVAL).
 * *ret_urls: their unversioned URLs, NULL-terminated, empty when none. Adoption finds ADE's secret
 * so (docs/protocols.md §4.2). */
int ade_keyvault_find_secrets(AdeKeyVault *kv, char *const *tags, char ***ret_urls, AdeCloudError *ret_error);
