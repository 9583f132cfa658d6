/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-state.h"

/* What Enable asked for: the vault that escrows the key file, the KEK that wraps it, and how the
 * volume is encrypted. A job keeps its own copy; a resumed job rebuilds it from the state file;
 * RotateKey sets kek_url to the new KEK (NULL: a new key file under the same KEK). */
typedef struct AdedEnableParams {
        char *keyvault_url;
        char *keyvault_resource_id;
        char *kek_url;
        char *kek_vault_resource_id;
        char *kek_algorithm;
        bool format_all;
        bool skip_snapshot_check;
} AdedEnableParams;

/* Copies @from (whose strings may be borrowed) into @to, which owns its strings. 0 or -ENOMEM (then
 * @to is empty). */
int aded_enable_params_copy(const AdedEnableParams *from, AdedEnableParams *to);

/* The parameters of the job that wrote @record, for its resume: vault, KEK and the snapshot
 * override (format-all is never resumed). 0 or -ENOMEM. */
int aded_enable_params_from_record(const AdeStateVolume *record, AdedEnableParams *ret);

/* The enrollment's choices as Enable's parameters, and the enrollment an accepted Enable of
 * @volume_type with @p records (no exclusions). Both borrow the other's strings: valid while it
 * lives, copied by whoever keeps them (aded_enable_params_copy(), aded_state_set_enrollment()). */
AdedEnableParams aded_enable_params_of_enrollment(const AdeStateEnrollment *enrollment);
AdeStateEnrollment aded_enable_params_enrollment(const AdedEnableParams *p, const char *volume_type);

void aded_enable_params_done(AdedEnableParams *p);
