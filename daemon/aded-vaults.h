/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "aded-params.h"

/* Which vaults aded's resolver trusts with a token besides those of ade.conf and its DNS suffix
 * (docs/architecture.md §3): the ones a root caller named, so that their volumes still unlock after a
 * restart. Both are called before the vaults are used. */

typedef struct Manager Manager;

/* At start: the vaults the state file recorded for its volumes. 0 or -ENOMEM. */
int aded_vaults_trust_recorded(Manager *m);

/* An Enable's or a RotateKey's vaults (Key Vault URL and KEK URL), named by root. 0 or -ENOMEM;
 * a URL that ade-url.h refuses is left for the call to report. */
int aded_vaults_trust_params(Manager *m, const AdedEnableParams *p);
