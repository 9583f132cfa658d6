/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-util.h"

/* The one place where ade reads URLs and ARM resource ids, on libcurl's URL parser (CURLU).
 *
 * Origins decide where a bearer token is sent, so the parser is strict and refuses, before anyone
 * compares anything: control characters, spaces and backslashes anywhere; anything but
 * "scheme://authority"; user information ("https://vault@evil.example/", "https://u:p@host/");
 * percent-encoded or empty hosts and empty labels ("a..b"); IPv6 zone ids; ports outside 1..65535.
 * An origin is "scheme://host[:port]" in lower case, with the scheme's default port (443, 80) left
 * out and one trailing dot of the host dropped: "HTTPS://Vault.Azure.NET.:443/x" and
 * "https://vault.azure.net" are one origin; ":8443" is another (a second server on the host is
 * another party). Plain http is refused unless the caller allows it (IMDS, docs/protocols.md §2). */

#define ADE_URL_LENGTH_MAX 8192U

typedef enum AdeUrlFlags {
        ADE_URL_ALLOW_HTTP = 1 << 0, /* http:// as well as https:// (IMDS only) */
} AdeUrlFlags;

typedef struct AdeUrl {
        char *scheme;   /* "https" or "http" */
        char *host;     /* lower case, without a trailing dot; an IPv6 literal keeps its brackets */
        uint16_t port;  /* the explicit port, or the scheme's default */
        char *origin;   /* "https://host[:port]", see above */
        char *path;     /* as written, dot segments and percent-encoding kept; "/" at least */
        char *query;    /* without '?', or NULL */
        char *fragment; /* without '#', or NULL */
} AdeUrl;

/* Parses @url. Returns 0, or -EINVAL (malformed: see above), -EPROTONOSUPPORT (a scheme other than
 * https, or http without ADE_URL_ALLOW_HTTP), -EDESTADDRREQ (no host), -EPERM (user information),
 * -ENOMEM. */
int ade_url_parse(const char *url, AdeUrlFlags flags, AdeUrl **ret);
AdeUrl *ade_url_free(AdeUrl *u);
static inline void ade_url_freep(AdeUrl **u) {
        ade_url_free(*u);
}

/* The origin of an http(s) URL, as above. -EINVAL for anything ade_url_parse() refuses, -ENOMEM.
 * @ret_origin may be NULL to validate only. */
int ade_url_origin(const char *url, char **ret_origin);

/* Whether two http(s) URLs have the same origin. False for anything ade_url_parse() refuses. */
bool ade_url_same_origin(const char *a, const char *b);

/* Whether @host is @domain or a name under it ("x.vault.azure.net" under "vault.azure.net"),
 * ignoring case and a trailing dot on either. */
bool ade_url_host_is_within(const char *host, const char *domain);

/* Joins @base (an http(s) URL without query or fragment; trailing slashes dropped) and @path
 * (leading slashes dropped; may end in "?query") with one '/'. -EINVAL for a base ade_url_parse()
 * refuses, and for a path with control characters, spaces, backslashes, a fragment, a dot segment
 * ("." or "..") or an encoded dot, slash or backslash (%2e, %2f, %5c) before its query: the result
 * stays on the base's origin and under its path. */
int ade_url_join(const char *base, const char *path, char **ret);

/* A Key Vault object URL: "https://vault[:port]/@kind/NAME[/[VERSION[/]]]", @kind "keys" or
 * "secrets". Names are [0-9a-zA-Z-]{1,127} and versions [0-9a-zA-Z]{1,127}, so no encoded slash or
 * dot segment can hide in them; no query or fragment. A missing version gives NULL (-EINVAL with
 * @require_version). Returns 0 and, each optional, the origin, the name and the version; -EINVAL
 * for anything else (http included), -ENOMEM. */
int ade_url_keyvault_object(const char *url, const char *kind, bool require_version, char **ret_origin, char **ret_name,
        char **ret_version);

/* Whether @name is a valid Key Vault object name, [0-9a-zA-Z-]{1,127}. */
bool ade_url_keyvault_name_is_valid(const char *name);

/* ---- ARM resource ids ("/subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME") ----
 * Compared and parsed as ARM does: case-insensitive, the leading and a trailing '/' optional. */

typedef struct AdeUrlArmId {
        char *subscription;
        char *resource_group;
        char *provider; /* "Microsoft.KeyVault" */
        char *type;     /* "vaults" */
        char *name;
} AdeUrlArmId;

/* Parses a resource id of one provider-level resource (no child resources). Segments are non-empty
 * and free of control characters, spaces, '%', '?', '#' and backslashes. Returns 0, -EINVAL,
 * -ENOMEM. */
int ade_url_arm_id_parse(const char *id, AdeUrlArmId *ret);
void ade_url_arm_id_done(AdeUrlArmId *id);

/* Whether @id parses and names a resource of @provider/@type ("Microsoft.Compute", "disks"). */
bool ade_url_arm_id_is(const char *id, const char *provider, const char *type);

/* A Key Vault's id (Microsoft.KeyVault/vaults; subscription [0-9a-zA-Z-], group [0-9a-zA-Z-_.()],
 * name [0-9a-zA-Z-]). Returns 0 and, optionally, the subscription and the vault name; -EINVAL. */
int ade_url_arm_vault_id(const char *id, char **ret_subscription, char **ret_vault);

/* The subscription of anything that starts "[/]subscriptions/<sub>". -EINVAL when there is none. */
int ade_url_arm_id_subscription(const char *id, char **ret);

/* Whether two ids (or id prefixes) are the same: case-insensitive, leading and trailing '/'
 * ignored. False when either is NULL or empty. */
bool ade_url_arm_id_equal(const char *a, const char *b);
