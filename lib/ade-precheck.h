/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ade-util.h"

/* The preconditions of docs/architecture.md §5, evaluated before any disk or Key Vault secret is touched.
 *
 * Split in two so that the judgement is testable on its own: a gatherer fills AdePrecheckFacts
 * from IMDS, ARM and Key Vault (read-only calls), and ade_precheck_evaluate() turns the facts into
 * named checks with a verdict and a reason a person can act on. Evaluation does no I/O. */

typedef enum AdeVerdict {
        ADE_VERDICT_OK,
        ADE_VERDICT_WARNING,
        ADE_VERDICT_FAIL,
        _ADE_VERDICT_MAX,
        _ADE_VERDICT_INVALID = -EINVAL,
} AdeVerdict;

const char *ade_verdict_to_string(AdeVerdict v);

/* Which varlink error a failed check maps to (docs/architecture.md §7). */
typedef enum AdeCheckError {
        ADE_CHECK_ERROR_PRECONDITION, /* PreconditionFailed(check, reason) */
        ADE_CHECK_ERROR_REGION,       /* RegionMismatch(vmLocation, vaultLocation) */
        ADE_CHECK_ERROR_SNAPSHOT,     /* SnapshotMissing(disk) */
} AdeCheckError;

typedef struct AdeCheck {
        char *name;   /* "same-region", "snapshot", ... */
        char *target; /* the disk or device a per-item check is about, or NULL */
        AdeVerdict verdict;
        char *reason; /* always set: why it passed, warned or failed, and what to do */
        AdeCheckError error;
        char *error_arg1; /* RegionMismatch: VM location; SnapshotMissing: disk name */
        char *error_arg2; /* RegionMismatch: vault location */
} AdeCheck;

typedef struct AdeCheckList {
        AdeCheck *checks;
        size_t n;
} AdeCheckList;

/* A managed disk in scope (OS and/or data per the volume type), as IMDS lists it. */
typedef struct AdePrecheckDisk {
        const char *name;
        const char *id; /* ARM id of the managed disk */
        int lun;        /* -1 for the OS disk */
} AdePrecheckDisk;

typedef struct AdePrecheckSnapshot {
        const char *name;
        const char *source_id; /* creationData.sourceResourceId, with or without a leading '/' */
        const char *state;     /* provisioningState */
        int64_t created;       /* timeCreated, seconds since the epoch; 0 when unknown */
} AdePrecheckSnapshot;

typedef struct AdePrecheckRestorePoint {
        const char *name;
        const char *vm_id; /* the collection's source.id: the VM's ARM id */
        const char *state; /* provisioningState of the restore point */
        int64_t created;
        const char **disk_ids;          /* disks captured (os + data), NULL-terminated; NULL = all of the VM */
        const char **excluded_disk_ids; /* excludeDisks[].id, NULL-terminated, or NULL */
} AdePrecheckRestorePoint;

/* Everything the checks read. Pointers are borrowed. An *_error of 0 means the fact was read;
 * otherwise it is the negative errno of the failed read and *_error_message says why (status,
 * service code and message, URL). */
typedef struct AdePrecheckFacts {
        int64_t now;

        /* IMDS */
        int vm_error;
        const char *vm_error_message;
        const char *vm_location;
        const char *vm_subscription;
        const char *vm_resource_id;
        const AdePrecheckDisk *disks;
        size_t n_disks;

        /* the vault, from ARM */
        const char *vault_url;
        const char *vault_resource_id;
        int vault_error;
        const char *vault_error_message;
        const char *vault_location;
        bool vault_enabled_for_disk_encryption;
        bool vault_soft_delete;
        bool vault_purge_protection;

        /* the KEK, from Key Vault (kek_url NULL: no KEK configured) */
        const char *kek_url;
        const char *kek_algorithm;
        int kek_error;
        const char *kek_error_message;
        const char *kek_kty;
        bool kek_enabled;
        int64_t kek_not_before; /* 0: unset */
        int64_t kek_expires;    /* 0: unset */
        const char **kek_ops;   /* NULL-terminated key_ops */

        /* snapshots and restore points, from ARM */
        int snapshot_error;
        const char *snapshot_error_message;
        const AdePrecheckSnapshot *snapshots;
        size_t n_snapshots;
        const AdePrecheckRestorePoint *restore_points;
        size_t n_restore_points;

        /* policy */
        uint64_t snapshot_max_age_sec;
        bool require_same_region;
        bool skip_snapshot_check;
} AdePrecheckFacts;

/* Appends the checks for @facts to @list (vm-identity, vault-reachable,
 * vault-enabled-for-disk-encryption, same-region, same-subscription, kek-valid, soft-delete,
 * purge-protection, snapshot per disk). Returns 0 or -ENOMEM. */
int ade_precheck_evaluate(const AdePrecheckFacts *facts, AdeCheckList *list);

/* Adds one check; @reason is formatted. For per-device checks (volume-eligible) and for callers
 * that judge something themselves. Returns 0 or -ENOMEM. */
int ade_check_list_add(AdeCheckList *list, const char *name, const char *target, AdeVerdict verdict,
        const char *reason_format, ...) _printf_(5, 6);

/* The first failed check, or NULL when none failed. */
const AdeCheck *ade_check_list_first_failure(const AdeCheckList *list);

void ade_check_list_done(AdeCheckList *list);

/* "East US" and "eastus" are the same region: compared ignoring case and white space. */
bool ade_region_equal(const char *a, const char *b);

/* ---- gathering: read-only calls to IMDS, ARM and Key Vault ---- */

#include "ade-config.h"
#include "ade-imds.h"
#include "ade-resolver.h"

typedef struct AdePrecheckRequest {
        const AdeConfig *config; /* endpoints, CA file, identity, snapshot-max-age, region policy */
        AdeResolver *resolver;   /* borrowed: its credential, share and Key Vault clients; NULL: a
                                  * resolver of its own for this call, from @config and @http */
        const char *vault_url;   /* the effective values: Enable's parameters over ade.conf */
        const char *vault_resource_id;
        const char *kek_url; /* NULL: no KEK */
        const char *kek_algorithm;
        bool scope_os; /* which managed disks need a snapshot */
        bool scope_data;
        bool skip_snapshot_check;
        int64_t now;                /* 0: the current time */
        const AdeHttpOptions *http; /* without @resolver: retries and timeouts; NULL: the defaults (the CA
                                     * comes from @config) */
} AdePrecheckRequest;

/* Gathers the facts (GET only: nothing anywhere changes; the independent reads concurrently) and
 * evaluates them into @list. A service
 * that cannot be read becomes a failed check naming it, not an error of this call. Returns 0, or
 * -ENOMEM / -EINVAL. When @ret_instance is given it receives the IMDS instance (NULL when IMDS
 * could not be read), for the caller's LUN tags. */
int ade_precheck_run(const AdePrecheckRequest *req, AdeCheckList *list, AdeImdsInstance **ret_instance);
