/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-config.h"
#include "ade-credential.h"
#include "ade-http.h"
#include "ade-secret.h"

/* The identity ade.conf's [identity] and [azure] sections describe, as a credential
 * (ade-credential.h): a managed identity through IMDS (system-assigned, or the user-assigned one whose
 * client-id is given), or an Entra app with client-secret-file or client-certificate-file (PEM with
 * certificate and key). @opts (may be NULL) are the HTTP options of its token requests; with a share
 * in them the credential may be used from several threads at once. Returns -EINVAL when the section
 * lacks what the type needs, or the errors of reading the secret or certificate. */
int ade_identity_credential_new(const AdeConfig *config, const AdeHttpOptions *opts, AdeCredential **ret);

/* Reads a client secret: the file's first line (a trailing newline dropped), at most 4095 bytes.
 * The file must be a regular file owned by root (or the caller's uid) that neither group nor others
 * may read or write (-EACCES otherwise, so that a secret others could read or swap is never used).
 * -EINVAL when it is empty, -EFBIG when larger, -errno when it cannot be opened. */
int ade_identity_read_client_secret(const char *path, AdeSecret **ret);
