/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Azure Resource Manager's answers (ade-arm.h) through the real client: the vault, a disk, the
 * snapshot and restore-point-collection lists (with their nextLink pages) and one collection, and
 * the service's error bodies. The first byte picks the call: v vault, d disk, s snapshots of a
 * group, S of the subscription, r restore point collections, R one collection; any other byte the
 * same modulo 6. Whatever nextLink says, the token goes to ARM's origin only. */
#include <stdlib.h>
#include <string.h>

#include "ade-arm.h"
#include "fuzz-cloud.h"
#include "fuzz-http.h"
#include "fuzz.h"

#define ARM "https://management.azure.com"
#define SUB "00000000-0000-0000-0000-000000000000"
#define GROUP "rg-fuzz"
#define PREFIX "/subscriptions/" SUB "/resourceGroups/" GROUP "/providers/"

static void check_vault(const AdeArmVault *v) {
        FUZZ_ASSERT(v->location && v->subscription_id, "vault without location or subscription");
}

static void check_rpcs(const AdeArmRestorePointCollectionList *l) {
        for (size_t i = 0; i < l->n; i++) {
                FUZZ_ASSERT(l->items[i].id, "restore point collection without id");
                for (size_t j = 0; j < l->items[i].n_points; j++)
                        FUZZ_ASSERT(l->items[i].points[j].disk_ids, "restore point without a disk list");
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(ade_credential_freep) AdeCredential *cred = fuzz_credential_new();
        _cleanup_(ade_arm_freep) AdeArm *arm = NULL;
        _cleanup_(ade_arm_vault_freep) AdeArmVault *vault = NULL;
        _cleanup_(ade_arm_disk_freep) AdeArmDisk *disk = NULL;
        _cleanup_(ade_arm_snapshot_list_freep) AdeArmSnapshotList *snaps = NULL;
        _cleanup_(ade_arm_rpc_list_freep) AdeArmRestorePointCollectionList *rpcs = NULL;
        AdeCloudError e = {};
        uint8_t op = fuzz_cloud_op(&data, &size);
        int r = 0;

        fuzz_http_begin(data, size);
        fuzz_http_set_only_origin(ARM);
        fuzz_http_allow_token_origin(ARM);
        if (ade_arm_new(ARM "/", cred, NULL, fuzz_http_options(), &arm) < 0)
                abort();

        if (op == 0 || !strchr("vdsSrR", op))
                op = "vdsSrR"[op % 6];
        switch (op) {
        case 'v':
                r = ade_arm_get_vault(arm, PREFIX "Microsoft.KeyVault/vaults/fuzz-vault", &vault, &e);
                if (r >= 0)
                        check_vault(vault);
                break;
        case 'd':
                r = ade_arm_get_disk(arm, PREFIX "Microsoft.Compute/disks/data0", &disk, &e);
                FUZZ_ASSERT(r < 0 || disk->id, "disk without id");
                break;
        case 's':
        case 'S':
                r = ade_arm_list_snapshots(arm, SUB, op == 's' ? GROUP : NULL, &snaps, &e);
                FUZZ_ASSERT(r < 0 || (snaps && (snaps->n == 0 || snaps->items)), "snapshot list without items");
                break;
        case 'r':
                r = ade_arm_list_restore_point_collections(arm, SUB, GROUP, &rpcs, &e);
                if (r >= 0)
                        check_rpcs(rpcs);
                break;
        case 'R':
                r = ade_arm_get_restore_point_collection(
                        arm, PREFIX "Microsoft.Compute/restorePointCollections/rpc-fuzz", &rpcs, &e);
                if (r >= 0)
                        check_rpcs(rpcs);
                break;
        }
        FUZZ_ASSERT(r <= 0, "positive return");
        fuzz_verbose(op, r, fuzz_http_requests());
        free(ade_cloud_error_to_string(&e, "ARM"));
        ade_cloud_error_done(&e);
        fuzz_http_end();
        return 0;
}
