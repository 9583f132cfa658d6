/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "ade-cloud-error.h"
#include "ade-config.h"
#include "ade-http.h"
#include "ade-secret.h"

/* A credential: where bearer tokens for one identity come from (IMDS managed identity, or an Entra
 * app with a secret or a certificate), with a cache in front. Tokens are cached per (resource,
 * tenant) and reused until ADE_TOKEN_REFRESH_MARGIN_SEC before they expire, so a daemon that
 * calls Key Vault a thousand times asks for one token. Not thread-safe.
 *
 * @resource is what the caller was told to ask for: an App ID URI ("https://vault.azure.net",
 * "https://management.azure.com/") or a v2 scope ("https://x.vault.azure.net/.default"). Each
 * source turns it into what its endpoint wants (IMDS a resource, Entra v2 a scope). @tenant (may be
 * NULL) is the tenant a challenge named; IMDS ignores it. */

#define ADE_TOKEN_REFRESH_MARGIN_SEC 300

/* Fetches a fresh token. Returns 0, the token in a new secret and its expiry (Unix seconds). */
typedef int (*AdeTokenFetchFunc)(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error);

typedef struct AdeCredential AdeCredential;

/* A credential over @fetch. @free_userdata (may be NULL) is called on @userdata when it is freed. */
int ade_credential_new(AdeTokenFetchFunc fetch, void *userdata, void (*free_userdata)(void *), AdeCredential **ret);

/* The credential that ade.conf's [identity] and [azure] sections describe: a managed identity
 * (system-assigned, or the user-assigned one whose client id is given), or an Entra app with
 * client-secret-file or client-certificate-file (PEM with certificate and key). */
int ade_credential_new_from_config(const AdeConfig *config, const AdeHttpOptions *opts, AdeCredential **ret);

AdeCredential *ade_credential_free(AdeCredential *c);
static inline void ade_credential_freep(AdeCredential **c) {
        ade_credential_free(*c);
}

/* Returns a token for @resource/@tenant: the cached one while it has more than the margin left,
 * else a new one; @force_refresh skips the cache (after a service said TokenExpired). The token is
 * borrowed: valid until the next call on @c. */
int ade_credential_get_token(AdeCredential *c, const char *resource, const char *tenant, bool force_refresh,
        const AdeSecret **ret_token, AdeCloudError *ret_error);

/* How many tokens were fetched (not served from the cache) so far; for tests and statistics. */
unsigned ade_credential_fetch_count(const AdeCredential *c);

/* Drops every cached token. */
void ade_credential_flush(AdeCredential *c);

/* The claims of a JWT (the middle part, base64url JSON), without verifying anything: for reading
 * "exp" when a service does not say, and for tests. Returns 0, -EBADMSG for something else. */
int ade_jwt_get_claims(const char *jwt, size_t len, json_object **ret);

/* "https://vault.azure.net" or "https://x/.default" -> the v1 resource / the v2 scope. */
int ade_token_resource_to_scope(const char *resource, char **ret);
int ade_token_scope_to_resource(const char *scope, char **ret);
