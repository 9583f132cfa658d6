/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <time.h>

#include "ade-cloud-error.h"
#include "ade-http.h"
#include "ade-secret.h"
#include "ade-credential.h"

/* Microsoft Entra ID client credentials (v2 endpoint): an application proves itself with a client
 * secret or with a JWT assertion signed by its certificate's key, and gets tokens for a scope from
 * {authority}/{tenant}/oauth2/v2.0/token. */

typedef struct AdeEntra AdeEntra;

/* @authority: "https://login.microsoftonline.com" (or a test's https://localhost:N); @tenant and
 * @client_id: the app's. The secret is copied. */
int ade_entra_new_secret(const char *authority, const char *tenant, const char *client_id, const AdeSecret *secret,
        const AdeHttpOptions *opts, AdeEntra **ret);

/* @cert_file: PEM certificate; @key_file: its PEM private key (NULL: in @cert_file too). RSA only.
 * -EINVAL when either cannot be read as PEM or they do not belong together. */
int ade_entra_new_certificate(const char *authority, const char *tenant, const char *client_id, const char *cert_file,
        const char *key_file, const AdeHttpOptions *opts, AdeEntra **ret);

AdeEntra *ade_entra_free(AdeEntra *e);
static inline void ade_entra_freep(AdeEntra **e) {
        ade_entra_free(*e);
}

/* Signs assertions with "PS256" (the default, what Entra documents today) or "RS256". */
int ade_entra_set_assertion_alg(AdeEntra *e, const char *alg);

/* POSTs a client-credentials request for @scope (a resource gets "/.default") in @tenant (NULL: the
 * configured one). Not cached: use a credential. Returns the token and its expiry (Unix s). Entra's
 * refusals (400 invalid_client, AADSTS...) are -EACCES with error code and description. */
int ade_entra_get_token(AdeEntra *e, const char *scope, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error);

/* The client assertion for the certificate flavour: header {alg, typ, x5t, x5t#S256}, claims aud
 * (@audience), iss = sub = client id, jti (a new GUID), nbf = iat = @now, exp = @now + 600. */
int ade_entra_build_assertion(AdeEntra *e, const char *audience, time_t now, char **ret);

/* A cached credential over @e. With @take_entra it frees @e with itself. */
int ade_entra_credential_new(AdeEntra *e, bool take_entra, AdeCredential **ret);

/* A random (version 4) GUID in lower case, 36 characters. */
int ade_guid_new(char **ret);
