/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-util.h"

/* What a cloud service (Key Vault, IMDS, Entra ID, ARM) said when a call failed, kept so that a
 * person can act on it: the HTTP status (0 when no answer came: refused connection, timeout, TLS),
 * the service's own error code ("SecretNotFound", "Unauthorized", "invalid_request"; for transport
 * failures a short name such as "ConnectionRefused" or "CertificateNotTrusted"), its message, and
 * the URL that was asked. Strings are owned; NULL when unknown. Query strings are never kept in
 * @url (they may carry identity selectors), only scheme, host and path.
 *
 * Functions taking an "AdeCloudError *ret_error" accept NULL; when given, it is filled on failure
 * (after ade_cloud_error_done() on what it held) and left alone on success. Call
 * ade_cloud_error_done() when finished with it. */
typedef struct AdeCloudError {
        long status;
        char *code;
        char *message;
        char *url;
} AdeCloudError;

#define ADE_CLOUD_ERROR_NULL ((AdeCloudError){})

/* Frees the strings and zeroes the structure. Accepts NULL. */
void ade_cloud_error_done(AdeCloudError *e);
static inline void ade_cloud_error_donep(AdeCloudError *e) {
        ade_cloud_error_done(e);
}
#define _cleanup_cloud_error_ _cleanup_(ade_cloud_error_donep)

/* Replaces what @e held (NULL @e: nothing happens). Strings are copied; the URL loses its query.
 * Returns 0 or -ENOMEM. */
int ade_cloud_error_set(AdeCloudError *e, long status, const char *code, const char *message, const char *url);

/* Reads a service's error reply: Key Vault/ARM {"error":{"code","message"}}, IMDS/Entra
 * {"error":"code","error_description":"text"} or {"error":"text"}. A body that is none of these
 * keeps its first 200 printable characters as message and the HTTP reason as code. */
int ade_cloud_error_from_reply(AdeCloudError *e, long status, const char *body, size_t size, const char *url);

/* The negative errno for an HTTP error status: 401/403 -EACCES, 404/410 -ENOENT, 409 -EEXIST,
 * 400/422 -EINVAL, 413 -EFBIG, 408 -ETIMEDOUT, 429 -EBUSY, 5xx -EAGAIN, other -EPROTO. */
int ade_cloud_errno_from_status(long status);

/* What kind of failure a call that returned @r (negative) with @e had, for counting (aded's metrics):
 * the service's answer when there was one, else whether ade refused to send anything or the network
 * failed. */
typedef enum AdeCloudErrorKind {
        ADE_CLOUD_ERROR_NETWORK,   /* no answer: DNS, connection, TLS, timeout */
        ADE_CLOUD_ERROR_REFUSED,   /* ade sent nothing: the URL is not one it trusts with a token */
        ADE_CLOUD_ERROR_AUTH,      /* 401, 403 */
        ADE_CLOUD_ERROR_NOT_FOUND, /* 404, 410 */
        ADE_CLOUD_ERROR_THROTTLED, /* 429 */
        ADE_CLOUD_ERROR_SERVER,    /* 5xx */
        ADE_CLOUD_ERROR_CLIENT,    /* another 4xx */
        ADE_CLOUD_ERROR_OTHER,     /* a failure of ade's own (an answer it cannot use, memory) */
        _ADE_CLOUD_ERROR_KIND_MAX,
        _ADE_CLOUD_ERROR_KIND_INVALID = -EINVAL,
} AdeCloudErrorKind;

AdeCloudErrorKind ade_cloud_error_kind(int r, const AdeCloudError *e);
/* "network", "refused", "auth", "not_found", "throttled", "server", "client", "other". */
const char *ade_cloud_error_kind_to_string(AdeCloudErrorKind k);

/* "Key Vault answered 404 SecretNotFound: A secret with ... (https://contoso.vault.azure.net/secrets/x)";
 * "Key Vault was not contacted: VaultNotAllowed: ..." when ade itself refused to send anything (codes
 * VaultNotAllowed, OriginNotAllowed, status 0).
 * @service names who answered ("Key Vault", "IMDS", ...). Returns a new string or NULL. */
char *ade_cloud_error_to_string(const AdeCloudError *e, const char *service);
