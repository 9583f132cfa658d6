/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Cloud answers from the fuzz input instead of a network. The cloud targets link with
 * -Wl,--wrap=ade_http_request, so that every request libade's clients (Key Vault, ARM, Entra,
 * IMDS, the credential's bearer request) send lands in fuzz-http.c, which answers from a script:
 *
 *   answer ("\n%%\n" answer)*      answer = STATUS [" " WWW-AUTHENTICATE] "\n" BODY
 *
 * STATUS is a decimal HTTP status; an answer whose first line holds none, and every request after
 * the script ran out, fails as a refused connection would. Every request is checked against the
 * property that matters most (docs/architecture.md §8): a request that carries a bearer token goes
 * to an origin the target allowed, whatever the answers said (nextLink, challenges, ids). */

#include <stddef.h>
#include <stdint.h>

/* Starts a script (borrowed until fuzz_http_end()); forgets the allowed origins. */
void fuzz_http_begin(const uint8_t *data, size_t size);
/* Allows requests carrying "Authorization:" to @origin ("https://host[:port]"). */
void fuzz_http_allow_token_origin(const char *origin);
/* Requests that @origin only may receive, token or not (NULL: any). */
void fuzz_http_set_only_origin(const char *origin);
/* How many requests were answered (or refused) since fuzz_http_begin(). */
unsigned fuzz_http_requests(void);
void fuzz_http_end(void);
