/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-io.h"
#include "ade-util.h"

/* aded's state file, <state-dir>/state.json: one record per volume that a job has touched, with the
 * last step that job completed. Every step of docs/architecture.md §4 is recorded before the next one begins, so a
 * daemon restarted after a crash knows where to resume: it never escrows a second secret for a volume
 * (the secret URL is here once escrowed) and never writes to a disk whose key is not escrowed yet.
 *
 * The file is JSON, mode 0600, written atomically: a temporary file in the same folder, fsync, rename
 * over the old one, fsync of the folder. A reader sees the old file or the new one, never a mix.
 * Nothing secret is ever stored here (no key file, no wrapped key). Not thread-safe: the daemon
 * serialises access. */

#define ADE_STATE_FILE_NAME "state.json"
#define ADE_STATE_VERSION 1
#define ADE_STATE_SIZE_MAX (4U * 1024U * 1024U)

/* The job a record belongs to. */
typedef enum AdeJobKind {
        ADE_JOB_ENCRYPT,
        ADE_JOB_DECRYPT,
        _ADE_JOB_KIND_MAX,
        _ADE_JOB_KIND_INVALID = -EINVAL,
} AdeJobKind;

/* The steps of an encryption, in order (docs/architecture.md §4). A record's step is the last one completed:
 * ADE_STEP_ESCROW means "the secret is in Key Vault and secret_url says where". A decryption's record
 * (docs/architecture.md §15.1) is made at ADE_STEP_PRECONDITIONS and moves to ADE_STEP_HEADER, with
 * header_path naming the file, when the engine returns having exported an attached header; a decryption
 * found in progress on a header without a record gets one at ADE_STEP_HEADER. It never reaches
 * ADE_STEP_REENCRYPT or ADE_STEP_DONE: the record is removed once the volume is plaintext. */
typedef enum AdeJobStep {
        ADE_STEP_NONE,          /* recorded, nothing done yet */
        ADE_STEP_PRECONDITIONS, /* checks passed */
        ADE_STEP_KEYFILE,       /* key file generated (kept in memory only) */
        ADE_STEP_WRAP,          /* key file wrapped with the KEK (or no KEK configured) */
        ADE_STEP_ESCROW,        /* secret set and confirmed in Key Vault */
        ADE_STEP_SHRINK,        /* filesystem shrunk (or detached header chosen) */
        ADE_STEP_HEADER,        /* LUKS2 header with our token written */
        ADE_STEP_REENCRYPT,     /* reencryption finished */
        ADE_STEP_DONE,
        _ADE_JOB_STEP_MAX,
        _ADE_JOB_STEP_INVALID = -EINVAL,
} AdeJobStep;

const char *ade_job_kind_to_string(AdeJobKind k);
AdeJobKind ade_job_kind_from_string(const char *s);
const char *ade_job_step_to_string(AdeJobStep s);
AdeJobStep ade_job_step_from_string(const char *s);

/* One volume's record. Strings are NULL when unset. */
typedef struct AdeStateVolume {
        char *device;      /* as configured or discovered: /dev/sdc, /dev/loop3 */
        char *device_id;   /* stable identifier (by-id or Azure LUN link), for detached headers */
        char *volume_type; /* "Data" or "OS" */
        AdeJobKind kind;
        AdeJobStep step;
        char *keyvault_url;
        char *keyvault_resource_id;
        char *kek_url;
        char *kek_vault_resource_id;
        char *kek_algorithm;
        char *secret_url; /* versioned, set once the secret is escrowed, never replaced by a resume */
        char *uuid;       /* LUKS UUID once the header exists */
        bool detached;    /* header in header_path rather than on the device */
        char *header_path;
        bool skip_snapshot_check; /* the operator's override, kept so a resume does not re-ask */
        char *mount_point;        /* where its filesystem was mounted (or fstab put it) when enable began:
                                   * Unlock mounts the opened mapper there, and nowhere else; NULL: never */
        char *mount_options;      /* that mount's options as fstab writes them; NULL for the defaults */
        char *error;              /* last failure, for Show; NULL when none */
        uint64_t updated_usec;    /* CLOCK_REALTIME of the last change */
} AdeStateVolume;

typedef struct AdeState {
        char *dir;
        AdeStateVolume **volumes;
        size_t n_volumes;
} AdeState;

/* Reads <dir>/state.json. A missing file is an empty state. Returns -EBADMSG for a file that is not
 * JSON or not the expected shape, -EPROTONOSUPPORT for an unknown version, -EFBIG when larger than
 * ADE_STATE_SIZE_MAX, -errno when unreadable; with @ret_error a message that names the file and says
 * what to do. Unknown fields inside a record are ignored (a newer aded may add them), and fields
 * added since version 1 (mountPoint, mountOptions) may be missing (an older aded wrote the file). */
int ade_state_load(const char *dir, AdeState **ret, char **ret_error);

/* An empty state for @dir (nothing is written). */
int ade_state_new(const char *dir, AdeState **ret);

/* Writes the whole state atomically (see above), creating @dir (0700) if needed. */
int ade_state_save(AdeState *s);

/* The record for @device, or NULL. */
AdeStateVolume *ade_state_find(AdeState *s, const char *device);

/* Adds a fresh record (step NONE) for @device, replacing any existing one. Returns it borrowed. */
int ade_state_add(AdeState *s, const char *device, AdeJobKind kind, AdeStateVolume **ret);

/* Drops the record of @device. -ENOENT when there is none. */
int ade_state_remove(AdeState *s, const char *device);

/* A copy of @v that owns its strings, for a reader that must not hold the state's lock while it
 * works. 0 or -ENOMEM. */
int ade_state_volume_copy(const AdeStateVolume *v, AdeStateVolume **ret);
AdeStateVolume *ade_state_volume_free(AdeStateVolume *v);
static inline void ade_state_volume_freep(AdeStateVolume **v) {
        ade_state_volume_free(*v);
}

/* Records @step as completed and stamps the time. Saving is the caller's move. */
void ade_state_volume_set_step(AdeStateVolume *v, AdeJobStep step);

AdeState *ade_state_free(AdeState *s);
static inline void ade_state_freep(AdeState **s) {
        ade_state_free(*s);
}
