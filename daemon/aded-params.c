/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "ade-io.h"
#include "aded-params.h"

void aded_enable_params_done(AdedEnableParams *p) {
        free(p->keyvault_url);
        free(p->keyvault_resource_id);
        free(p->kek_url);
        free(p->kek_vault_resource_id);
        free(p->kek_algorithm);
        *p = (AdedEnableParams){};
}

int aded_enable_params_copy(const AdedEnableParams *from, AdedEnableParams *to) {
        assert(from);
        assert(to);

        *to = (AdedEnableParams){.format_all = from->format_all, .skip_snapshot_check = from->skip_snapshot_check};
        if (ade_strdup_to(&to->keyvault_url, from->keyvault_url) < 0 ||
                ade_strdup_to(&to->keyvault_resource_id, from->keyvault_resource_id) < 0 ||
                ade_strdup_to(&to->kek_url, from->kek_url) < 0 ||
                ade_strdup_to(&to->kek_vault_resource_id, from->kek_vault_resource_id) < 0 ||
                ade_strdup_to(&to->kek_algorithm, from->kek_algorithm) < 0) {
                aded_enable_params_done(to);
                return -ENOMEM;
        }
        return 0;
}

int aded_enable_params_from_record(const AdeStateVolume *record, AdedEnableParams *ret) {
        assert(record);

        return aded_enable_params_copy(
                &(const AdedEnableParams){
                        .keyvault_url = record->keyvault_url,
                        .keyvault_resource_id = record->keyvault_resource_id,
                        .kek_url = record->kek_url,
                        .kek_vault_resource_id = record->kek_vault_resource_id,
                        .kek_algorithm = record->kek_algorithm,
                        .skip_snapshot_check = record->skip_snapshot_check,
                },
                ret);
}

AdedEnableParams aded_enable_params_of_enrollment(const AdeStateEnrollment *enrollment) {
        assert(enrollment);

        return (AdedEnableParams){
                .keyvault_url = enrollment->keyvault_url,
                .keyvault_resource_id = enrollment->keyvault_resource_id,
                .kek_url = enrollment->kek_url,
                .kek_vault_resource_id = enrollment->kek_vault_resource_id,
                .kek_algorithm = enrollment->kek_algorithm,
                .format_all = enrollment->format_all,
                .skip_snapshot_check = enrollment->skip_snapshot_check,
        };
}

AdeStateEnrollment aded_enable_params_enrollment(const AdedEnableParams *p, const char *volume_type) {
        assert(p);

        return (AdeStateEnrollment){
                .volume_type = (char *)volume_type,
                .keyvault_url = p->keyvault_url,
                .keyvault_resource_id = p->keyvault_resource_id,
                .kek_url = p->kek_url,
                .kek_vault_resource_id = p->kek_vault_resource_id,
                .kek_algorithm = p->kek_algorithm,
                .skip_snapshot_check = p->skip_snapshot_check,
                .format_all = p->format_all,
        };
}
