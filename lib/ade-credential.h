/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-cloud-error.h"
#include "ade-http.h"
#include "ade-secret.h"

/* A credential: where OAuth bearer tokens for one identity come from (a fetch function: IMDS managed
 * identity, an Entra app with a secret or a certificate; ade-identity.h makes the one ade.conf
 * describes), with a cache in front. Tokens are cached per (resource, tenant) and reused until
 * ADE_CREDENTIAL_REFRESH_MARGIN_SEC before they expire, so a daemon that calls Key Vault a thousand
 * times asks for one token.
 *
 * Thread-safe: one mutex guards the cache. A caller that needs a token while another thread is
 * fetching one for the same resource and tenant waits for that fetch and shares its outcome (the
 * token, or the error), so that concurrent callers cause one fetch. Fetches for different resources
 * run concurrently: a fetch function must allow that (the IMDS and Entra ones do, ade-http.h).
 * Tokens are handed out as copies, in locked and wiped memory, which the caller frees.
 *
 * @resource is what the caller was told to ask for: an App ID URI ("https://vault.azure.net",
 * "https://management.azure.com/") or a v2 scope ("https://x.vault.azure.net/.default"). Each
 * source turns it into what its endpoint wants (IMDS a resource, Entra v2 a scope). @tenant (may be
 * NULL) is the tenant a challenge named; IMDS ignores it. */

#define ADE_CREDENTIAL_REFRESH_MARGIN_SEC 300

/* Fetches a fresh token. Returns 0, the token in a new secret and its expiry (Unix seconds). */
typedef int (*AdeCredentialFetchFunc)(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error);

typedef struct AdeCredential AdeCredential;

/* A credential over @fetch. @free_userdata (may be NULL) is called on @userdata when it is freed. */
int ade_credential_new(
        AdeCredentialFetchFunc fetch, void *userdata, void (*free_userdata)(void *), AdeCredential **ret);
AdeCredential *ade_credential_free(AdeCredential *c);
static inline void ade_credential_freep(AdeCredential **c) {
        ade_credential_free(*c);
}

/* Returns a copy of a token for @resource/@tenant: the cached one while it has more than the margin
 * left, else a new one. @refused, when given, is a token a service just refused as expired: if the
 * cache still holds it, a new one is fetched; if another thread already replaced it, that
 * replacement is returned. */
int ade_credential_get_token(AdeCredential *c, const char *resource, const char *tenant, const AdeSecret *refused,
        AdeSecret **ret_token, AdeCloudError *ret_error);

/* How many tokens were fetched (not served from the cache) so far; for tests and statistics. */
unsigned ade_credential_fetch_count(AdeCredential *c);

/* Drops every cached token. */
void ade_credential_flush(AdeCredential *c);

/* Whether an answer says that the bearer token it was sent is no longer good, the one rule for every
 * service: 401 with "WWW-Authenticate: Bearer ... error=\"invalid_token\"" (RFC 6750 §3.1; ARM), or
 * 401 with a body naming "TokenExpired" or saying "token is expired" (Key Vault, Entra). */
bool ade_credential_token_refused(const AdeHttpResponse *resp);

/* Sends @req through @http with "Authorization: Bearer <token for @resource/@tenant>" added to its
 * headers. When the answer is one that ade_credential_token_refused() recognises, a new token is
 * asked for once and the request sent once more. Returns 0 with the final answer in *ret_resp
 * (whatever its status), or the credential's or the transport's negative errno (with *ret_error).
 * The caller decides where @req->url may be sent; this function sends it there. */
int ade_credential_bearer_request(AdeCredential *c, AdeHttp *http, const char *resource, const char *tenant,
        const AdeHttpRequest *req, AdeHttpResponse *ret_resp, AdeCloudError *ret_error);

/* "https://vault.azure.net" or "https://x/.default" -> the v2 scope / the v1 resource. */
int ade_credential_resource_to_scope(const char *resource, char **ret);
int ade_credential_scope_to_resource(const char *scope, char **ret);
