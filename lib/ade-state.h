/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-io.h"
#include "ade-util.h"

/* aded's state file, <state-dir>/state.json: one record per volume that a job has touched, with the
 * last step that job completed. A record is keyed by the volume's stable id (AdeVolume.stable_id: the
 * Azure LUN link, a /dev/disk/by-id link, a loop device's backing file), never by its /dev name,
 * which another disk can take after a detach, a reboot or a crash (docs/architecture.md §16.1). Every step of
 * docs/architecture.md §4 is recorded before the next one begins, so a daemon restarted after a crash knows where to
 * resume: it never escrows a second secret for a volume (the secret URL is here once escrowed) and never writes to a
 * disk whose key is not escrowed yet.
 *
 * The file is JSON, mode 0600, written atomically: a temporary file in the same folder, fsync, rename
 * over the old one, fsync of the folder. A reader sees the old file or the new one, never a mix.
 * Nothing secret is ever stored here (no key file, no wrapped key). Not thread-safe: the daemon
 * serialises access. */

#define ADE_STATE_FILE_NAME "state.json"
/* 2: records keyed by deviceId, uuid chosen before the header is written. Version 1 files are
 * migrated on load (ade_state_load()). */
#define ADE_STATE_VERSION 2
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
        char *device_id;   /* the key: the volume's stable id (AdeVolume.stable_id); never NULL */
        char *device;      /* where it was last seen: /dev/sdc, /dev/loop3; for people, not a key */
        char *volume_type; /* "Data" or "OS" */
        AdeJobKind kind;
        AdeJobStep step;
        char *keyvault_url;
        char *keyvault_resource_id;
        char *kek_url;
        char *kek_vault_resource_id;
        char *kek_algorithm;
        char *secret_url;         /* versioned, set once the secret is escrowed, never replaced by a resume */
        char *pending_secret_url; /* RotateKey: the new secret, escrowed, not yet sure to be on the disk;
                                   * a resume finishes the rotation to it (never escrows a third) */
        char *uuid;               /* the LUKS UUID its header has, or (encryption) will have: chosen and recorded
                                   * before the header is written, so that a resume can tell the volume's
                                   * header from another disk's */
        bool detached;            /* header in header_path rather than on the device */
        char *header_path;
        bool skip_snapshot_check; /* the operator's override, kept so a resume does not re-ask */
        char *mount_point;        /* where its filesystem was mounted (or fstab put it) when enable began:
                                   * Unlock mounts the opened mapper there, and nowhere else; NULL: never */
        char *mount_options;      /* that mount's options as fstab writes them; NULL for the defaults */
        char *error;              /* last failure, for Show; NULL when none */
        char *adopted_name;       /* adopted from ADE (docs/architecture.md §12): ADE's mapping name, which
                                   * crypttab keeps and the key socket is asked for; the key comes from this
                                   * record's secret_url (a LUKS1 volume has no token). NULL: not adopted */
        uint64_t updated_usec;    /* CLOCK_REALTIME of the last change */
        uint64_t rotated_usec;    /* CLOCK_REALTIME when its key file was made: the escrow of the encryption,
                                   * or the last key rotation; 0: unknown (a record from before it was kept) */
        /* The header backup (docs/architecture.md §11): optional in the file, an older aded wrote none. */
        bool backup_pending;          /* the header changed and its backup is not uploaded yet: retried */
        uint64_t backup_pending_usec; /* CLOCK_REALTIME since when; 0 when not pending */
        unsigned backup_generation;   /* the last generation uploaded; 0: none yet */
} AdeStateVolume;

/* What the last accepted Enable asked for: that is what "enrolled" means. A disk that appears later
 * is judged and encrypted with these choices, and Show prints them. Strings are NULL when unset. */
typedef struct AdeStateEnrollment {
        char *volume_type; /* "Data" or "All", as the operator asked */
        char *keyvault_url;
        char *keyvault_resource_id;
        char *kek_url;
        char *kek_vault_resource_id;
        char *kek_algorithm;
        bool skip_snapshot_check; /* the operator's precondition override */
        bool format_all;          /* empty volumes formatted instead of encrypted in place */
        uint64_t updated_usec;    /* CLOCK_REALTIME of the Enable */
        char **excluded;          /* stable ids of volumes the operator disabled since: never encrypted
                                   * by themselves again (NULL-terminated; NULL when none) */
} AdeStateEnrollment;

int ade_state_enrollment_copy(const AdeStateEnrollment *e, AdeStateEnrollment **ret);
AdeStateEnrollment *ade_state_enrollment_free(AdeStateEnrollment *e);
static inline void ade_state_enrollment_freep(AdeStateEnrollment **e) {
        ade_state_enrollment_free(*e);
}

typedef struct AdeState {
        char *dir;
        AdeStateEnrollment *enrollment; /* NULL: no Enable was ever accepted */
        AdeStateVolume **volumes;
        size_t n_volumes;
        int loaded_version; /* the version of the file read (0: none); below ADE_STATE_VERSION: migrated */
} AdeState;

/* Reads <dir>/state.json. A missing file is an empty state. A version 1 file is migrated in memory
 * (its records get deviceId = device where they lack one; loaded_version says so; saving writes
 * version 2). Returns -EBADMSG for a file that is not JSON or not the expected shape,
 * -EPROTONOSUPPORT for a version newer than this aded's, -EFBIG when larger than
 * ADE_STATE_SIZE_MAX, -errno when unreadable; with @ret_error a message that names the file and says
 * what to do. Unknown fields inside a record are ignored (a newer aded may add them), and fields
 * added since version 1 (mountPoint, mountOptions, the enrollment) may be missing (an older aded
 * wrote the file). */
int ade_state_load(const char *dir, AdeState **ret, char **ret_error);

/* Keeps the file a migration replaces: hard-links <dir>/state.json to <dir>/state.json.v<N> (N the
 * version read) unless that copy exists already, and syncs the folder. Call before the first save
 * of a migrated state. 0 or a negative errno. */
int ade_state_keep_old(AdeState *s);

/* An empty state for @dir (nothing is written). */
int ade_state_new(const char *dir, AdeState **ret);

/* Writes the whole state atomically (see above), creating @dir (0700) if needed. */
int ade_state_save(AdeState *s);

/* Replaces the enrollment with a copy of @e (volume type required), stamped with the time now:
 * a new Enable clears the exclusions of the old one. Saving is the caller's move. 0, -EINVAL or
 * -ENOMEM (then the old one stays). */
int ade_state_set_enrollment(AdeState *s, const AdeStateEnrollment *e);
/* Adds the volume @device_id to the enrollment's exclusions (nothing when not enrolled, or already
 * there). 1 when that changed it, 0 when not, -ENOMEM. Saving is the caller's move. */
int ade_state_exclude(AdeState *s, const char *device_id);
/* Drops the enrollment. 1 when there was one, else 0. Saving is the caller's move. */
int ade_state_unenroll(AdeState *s);

/* The record of the volume whose stable id is @device_id, or NULL. */
AdeStateVolume *ade_state_find(AdeState *s, const char *device_id);

/* Adds a fresh record (step NONE) for the volume @device_id, now at @device, replacing any existing
 * record of @device_id. Returns it borrowed. */
int ade_state_add(AdeState *s, const char *device_id, const char *device, AdeJobKind kind, AdeStateVolume **ret);

/* Drops the record of @device_id. -ENOENT when there is none. */
int ade_state_remove(AdeState *s, const char *device_id);

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
