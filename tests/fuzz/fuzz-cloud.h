/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the cloud targets share: a credential that hands out a fixed token without any request, and
 * the operation byte that starts each input (the rest is fuzz-http.h's script). */

#include <stddef.h>
#include <stdint.h>

#include "ade-credential.h"

#define FUZZ_TOKEN "fuzz-bearer-token"

/* A credential whose fetch returns FUZZ_TOKEN, valid for an hour. */
AdeCredential *fuzz_credential_new(void);

/* HTTP options over one share made at the first call, so that the trust store (the system's CA
 * bundle, which costs milliseconds to read) is read once per process, as aded does, and not once per
 * input. */
const AdeHttpOptions *fuzz_http_options(void);

/* Splits an input into its operation (the first byte; a '\n' after it is skipped) and the script. */
uint8_t fuzz_cloud_op(const uint8_t **data, size_t *size);

/* With ADE_FUZZ_VERBOSE=1, says how an input ended (to check what a seed reaches). */
void fuzz_verbose(uint8_t op, int r, unsigned requests);
