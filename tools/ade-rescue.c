/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>

#include "ade-rescue.h"
#include "ade-state.h"
#include "ade-util.h"

int rescue_resolver_new(const char *prog, const AdeConfig *config, char *const *trust, AdeResolver **ret) {
        _cleanup_(ade_resolver_freep) AdeResolver *resolver = NULL;
        _cleanup_(ade_state_freep) AdeState *state = NULL;
        _cleanup_free_ char *text = NULL;
        AdeCredential *cred;
        int r;

        /* Set up what the resolver needs first, so that a broken identity is reported as such. */
        r = ade_resolver_new(config, NULL, &resolver);
        if (r < 0)
                return r;
        r = ade_resolver_credential(resolver, &cred);
        if (r < 0)
                return r;
        if (ade_state_load(config->daemon.state_dir, &state, &text) < 0)
                fprintf(stderr, "%s: %s; only the vaults of %s are trusted\n", prog,
                        text ?: "cannot read aded's state file", config->path);
        r = ade_resolver_trust_state(resolver, state);
        if (r < 0)
                return r;
        for (char *const *t = trust; t && *t; t++) {
                r = ade_resolver_trust_vault(resolver, *t);
                if (r == -EINVAL) {
                        fprintf(stderr, "%s: --trust-vault %s: not an https:// URL\n", prog, *t);
                        return -EDOM;
                }
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(resolver);
        return 0;
}
