/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-config.h"
#include "ade-resolver.h"

/* What the rescue tools (ade-resolve-key, ade-restore-header) share: they run without aded, with the
 * identity of ade.conf, and trust the vaults aded would (docs/architecture.md §3). */

/* A resolver for @config with its credential made, trusting also the vaults aded's state file
 * recorded for the volumes root enabled (a missing state file is none; an unreadable one is said on
 * stderr, prefixed by @prog, and left out) and the vaults @trust names (the --trust-vault
 * arguments; NULL or NULL-terminated). -EDOM when one of @trust is not an https:// URL (said on
 * stderr); the errors of ade_resolver_new() and ade_resolver_credential(). */
int rescue_resolver_new(const char *prog, const AdeConfig *config, char *const *trust, AdeResolver **ret);
