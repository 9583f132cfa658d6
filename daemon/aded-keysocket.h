/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Manager Manager;
typedef struct KeySocket KeySocket;

/* The key socket (`[daemon] key-socket`, docs/architecture.md §9): systemd-cryptsetup asks here for
 * the key file of the volume its crypttab line names. aded answers root peers only, for volumes
 * named "ade-<LUKS UUID>" that carry ade's LUKS2 token, with the key resolved through the token and
 * Key Vault by the manager's one resolver (ade-resolver.h). Each request runs in a thread of its
 * own, so one volume's Key Vault round trips never hold up another's.
 *
 * A refused or failed request is closed without a byte (systemd-cryptsetup's "wrong key": with
 * crypttab's headless=true it then gives up instead of asking for a passphrase) and logged with
 * the volume and the reason, never the key. While Key Vault cannot be reached, a request is held
 * and retried with backoff for at most ADED_KEYSOCKET_HOLD_USEC. */

#define ADED_KEYSOCKET_HOLD_USEC (90ULL * 1000000ULL)

/* Most requests served at once; more wait in the socket's backlog. */
#define ADED_KEYSOCKET_REQUESTS_MAX 64

/* Listens: on the descriptor systemd passed as "keysocket" (aded-key.socket), else on the
 * configured path (0600, root). Returns 0, or a negative errno with the error logged. */
int aded_keysocket_start(Manager *m, KeySocket **ret);

/* Stops listening and waits for the requests being served (each gives up at its next retry once
 * the manager stops). Accepts NULL. */
KeySocket *aded_keysocket_free(KeySocket *k);

/* The last failure for the mapping @name (e.g. "ade-<uuid>"), as a sentence for Show, or NULL when
 * its last request succeeded or none came. A new string. */
char *aded_keysocket_last_error(KeySocket *k, const char *name);
