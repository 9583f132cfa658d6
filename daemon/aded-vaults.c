/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-resolver.h"
#include "aded-manager.h"
#include "aded-vaults.h"

static int trust_state(const AdeState *state, void *userdata) {
        return ade_resolver_trust_state(userdata, state);
}

int aded_vaults_trust_recorded(Manager *m) {
        return aded_state_read(m->state, trust_state, m->resolver);
}

int aded_vaults_trust_params(Manager *m, const AdedEnableParams *p) {
        int r;

        /* Only the caller is root here; the volume a job works on never names a vault to trust. */
        r = ade_resolver_trust_vault(m->resolver, p->keyvault_url);
        if (r == -ENOMEM)
                return r;
        r = ade_resolver_trust_vault(m->resolver, p->kek_url);
        return r == -ENOMEM ? r : 0;
}
