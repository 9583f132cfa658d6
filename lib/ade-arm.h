/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-cloud-error.h"
#include "ade-http.h"
#include "ade-credential.h"

/* Azure Resource Manager, read-only: what the precondition checks need to know about the vault,
 * the VM's disks, their snapshots and restore points. Tokens for @resource (the [azure]
 * arm-resource, "https://management.azure.com/") come from the credential; a 401 that refuses the
 * token gets one new token and one retry (ade_credential_bearer_request()). List calls follow
 * nextLink (on the same origin only). Resource ids are read by ade-url.h. Thread-safe: calls may run
 * concurrently on one client.
 * Errors as in ade-keyvault.h: -EACCES, -ENOENT (ResourceNotFound), -EBUSY, -EAGAIN, -EPROTO. */

typedef struct AdeArm AdeArm;

/* @credential is borrowed. @arm_url: "https://management.azure.com" or a test's. */
int ade_arm_new(
        const char *arm_url, AdeCredential *credential, const char *resource, const AdeHttpOptions *opts, AdeArm **ret);
AdeArm *ade_arm_free(AdeArm *arm);
static inline void ade_arm_freep(AdeArm **a) {
        ade_arm_free(*a);
}

typedef struct AdeArmVault {
        char *id;
        char *name;
        char *location;
        char *subscription_id; /* from the id */
        char *tenant_id;
        char *vault_uri;
        bool enabled_for_disk_encryption; /* absent: false */
        bool soft_delete;                 /* absent: true (the default for new vaults) */
        bool purge_protection;            /* absent: false */
        bool rbac;
        int64_t soft_delete_retention_days; /* absent: 90 */
} AdeArmVault;

AdeArmVault *ade_arm_vault_free(AdeArmVault *v);
static inline void ade_arm_vault_freep(AdeArmVault **v) {
        ade_arm_vault_free(*v);
}

/* GET the vault "/subscriptions/.../providers/Microsoft.KeyVault/vaults/NAME". */
int ade_arm_get_vault(AdeArm *arm, const char *vault_id, AdeArmVault **ret, AdeCloudError *ret_error);

typedef struct AdeArmSnapshot {
        char *id;
        char *name;
        char *source_resource_id; /* creationData.sourceResourceId, as given (may lack the leading '/') */
        char *source_unique_id;
        char *provisioning_state;
        int64_t time_created; /* Unix seconds; 0 when absent */
} AdeArmSnapshot;

typedef struct AdeArmDisk {
        char *id;
        char *name;
        char *location;
        char *unique_id;
        char *provisioning_state;
        int64_t size_bytes;
        bool encryption_settings_enabled; /* encryptionSettingsCollection.enabled */
        char *secret_url; /* its first encryptionSettings[].diskEncryptionKey.secretUrl (ADE's), or NULL */
        char *kek_url;    /* that entry's keyEncryptionKey.keyUrl, or NULL */
} AdeArmDisk;

typedef struct AdeArmRestorePoint {
        char *id;
        char *name;
        char *provisioning_state;
        char *consistency_mode;
        int64_t time_created;
        char **disk_ids; /* OS and data disks' managed ids in the restore point; never NULL */
} AdeArmRestorePoint;

typedef struct AdeArmRestorePointCollection {
        char *id;
        char *name;
        char *source_id; /* the VM */
        AdeArmRestorePoint *points;
        size_t n_points;
} AdeArmRestorePointCollection;

/* A list of any of the above: free with the matching function. */
typedef struct AdeArmSnapshotList {
        AdeArmSnapshot *items;
        size_t n;
} AdeArmSnapshotList;

typedef struct AdeArmRestorePointCollectionList {
        AdeArmRestorePointCollection *items;
        size_t n;
} AdeArmRestorePointCollectionList;

AdeArmSnapshotList *ade_arm_snapshot_list_free(AdeArmSnapshotList *l);
static inline void ade_arm_snapshot_list_freep(AdeArmSnapshotList **l) {
        ade_arm_snapshot_list_free(*l);
}
AdeArmDisk *ade_arm_disk_free(AdeArmDisk *d);
static inline void ade_arm_disk_freep(AdeArmDisk **d) {
        ade_arm_disk_free(*d);
}
AdeArmRestorePointCollectionList *ade_arm_rpc_list_free(AdeArmRestorePointCollectionList *l);
static inline void ade_arm_rpc_list_freep(AdeArmRestorePointCollectionList **l) {
        ade_arm_rpc_list_free(*l);
}

/* Snapshots in @resource_group of @subscription (NULL group: the whole subscription). */
int ade_arm_list_snapshots(AdeArm *arm, const char *subscription, const char *resource_group, AdeArmSnapshotList **ret,
        AdeCloudError *ret_error);

/* GET a managed disk by id. */
int ade_arm_get_disk(AdeArm *arm, const char *disk_id, AdeArmDisk **ret, AdeCloudError *ret_error);

/* Restore point collections in @resource_group, each fetched with $expand=restorePoints. */
int ade_arm_list_restore_point_collections(AdeArm *arm, const char *subscription, const char *resource_group,
        AdeArmRestorePointCollectionList **ret, AdeCloudError *ret_error);

/* One restore point collection by id, with its restore points, as a list of one. */
int ade_arm_get_restore_point_collection(
        AdeArm *arm, const char *rpc_id, AdeArmRestorePointCollectionList **ret, AdeCloudError *ret_error);

/* "2016-12-28T04:41:35.079872+00:00", "2024-01-01T10:00:00Z" -> Unix seconds. -EINVAL otherwise. */
int ade_arm_parse_time(const char *s, int64_t *ret);
