/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "ade-fs.h"
#include "ade-luks.h"
#include "ade-state.h"
#include "ade-volume.h"
#include "aded-job.h"

/* What Show says about a volume (docs/architecture.md §7), split like lib/ade-precheck so that the
 * judgement is testable on its own: aded-show.c gathers the facts (all the I/O), aded_view_decide()
 * turns them into the volume object's values without any I/O (tests/unit/test-view.c), and
 * aded_view_to_json() writes them. The os/data summary is judged here too. */

/* The volume states of docs/architecture.md §7 (ADE's names). */
typedef enum AdedVolumeState {
        ADED_NOT_ENCRYPTED,
        ADED_ENCRYPTION_PENDING,
        ADED_ENCRYPTION_IN_PROGRESS,
        ADED_ENCRYPTED,
        ADED_VM_RESTART_PENDING,
        ADED_DECRYPTION_IN_PROGRESS,
        ADED_NOT_MOUNTED,
        ADED_FAILED,
        _ADED_VOLUME_STATE_MAX,
        _ADED_VOLUME_STATE_INVALID = -EINVAL,
} AdedVolumeState;

const char *aded_volume_state_to_string(AdedVolumeState s);

/* Where a volume's header backup stands (docs/architecture.md §11). */
typedef enum AdedBackupState {
        ADED_BACKUP_NONE,    /* not a volume ade encrypted: no "backup" object */
        ADED_BACKUP_CURRENT, /* its header's last change is uploaded */
        ADED_BACKUP_PENDING, /* not uploaded yet: retried */
        ADED_BACKUP_NO_KEK,  /* no KEK to wrap a content key with: never backed up */
        ADED_BACKUP_OFF,     /* no [backup] url */
        _ADED_BACKUP_STATE_MAX,
        _ADED_BACKUP_STATE_INVALID = -EINVAL,
} AdedBackupState;

/* "Current", "Pending", "NoKek", "Off"; NULL for ADED_BACKUP_NONE. */
const char *aded_backup_state_to_string(AdedBackupState s);

/* Everything Show knows about one volume. Pointers are borrowed; NULL means none, or not read. */
typedef struct AdedVolumeFacts {
        /* As probed: device, type, where the device itself is mounted, eligibility and its reason. */
        const AdeVolume *volume;
        /* The job running on it. A job holds the volume's header, so then nothing below comes from the
         * header, and the mapping is the one the job knows. */
        const AdedJobProgress *job;
        /* Its record in the state file: kind, step, error, secret and KEK URLs, header path, where
         * its filesystem was mounted at enable. */
        const AdeStateVolume *record;

        /* Its LUKS header, read when no job runs: ade_luks_status()'s error (unreadable), or its
         * status (none, finished, clean, crash, invalid; operation, attached or detached, UUID,
         * data size), the detached header it was read from (the record's, or the one header_dir
         * holds for the volume's stable id), and the header's token when it could be read. */
        int luks_error;
        const AdeLuksStatus *luks;
        const char *header_path;
        const AdeLuksToken *token;

        /* /dev/mapper/NAME of the crypt mapping active on it (from the job while one runs). */
        const char *mapper;
        /* Where that mapping stands against record->mount_point, when both exist and no job runs. */
        const AdeFsMountCheck *mapper_mount;
        /* Why the key socket could not deliver the volume's key the last time systemd-cryptsetup
         * asked (at boot, usually); NULL when it did or nobody asked since aded started. */
        const char *unlock_error;
        /* Why aded's own pass over new disks left the volume alone (aded-newdisks.h); NULL when it
         * did not, or no pass ran. */
        const char *left_alone;
        /* [rotation] interval: how often aded rotates a key file by itself; 0 never. */
        uint64_t rotation_interval_usec;
        /* [backup] url is set. */
        bool backup_configured;
} AdedVolumeFacts;

/* The volume object. Strings are borrowed from the facts, except @message; NULL is JSON null. */
typedef struct AdedVolumeView {
        const char *device;
        AdeVolumeType type;
        const char *uuid;
        const char *mountpoint;
        AdedVolumeState state;
        uint64_t bytes_done, bytes_total;
        uint64_t rate;               /* bytes per second of the running job, 0 when unknown or none */
        uint64_t last_rotated_usec;  /* CLOCK_REALTIME when its key file was made; 0 unknown */
        uint64_t next_rotation_usec; /* when aded rotates it by itself; 0 never (no interval) or unknown */
        int64_t eta_seconds;         /* what is left at that rate, -1 when unknown or none */
        const char *mode;            /* "InPlace", "FormatAll" */
        const char *header;          /* "Attached", "Detached" */
        bool unlocked;
        const char *mapper;
        const char *secret_url;
        const char *kek_url;
        char *message;
        /* The header backup of a volume ade encrypted (the record's): its state, the last generation
         * uploaded (0 none) and since when an upload is pending (0 not pending, or unknown). */
        AdedBackupState backup;
        unsigned backup_generation;
        uint64_t backup_pending_usec;
} AdedVolumeView;

void aded_volume_view_done(AdedVolumeView *v);

/* Decides what Show says about the volume of @f. No I/O. Returns 0, or -ENOMEM. */
int aded_view_decide(const AdedVolumeFacts *f, AdedVolumeView *ret);

/* The volume object of docs/architecture.md §7, every field present (null where @v has none; the
 * optional ones of the interface absent). */
int aded_view_to_json(const AdedVolumeView *v, json_object **ret);

/* Show's "os" and "data": the OS volume's state, and the worst of the data volumes' states (a
 * failure, then a job in progress, shows before Encrypted); NotEncrypted when there is none. */
typedef struct AdedShowSummary {
        AdedVolumeState os;
        AdedVolumeState data;
        bool any_data;
} AdedShowSummary;

#define ADED_SHOW_SUMMARY_INIT                                                                                         \
        { .os = ADED_NOT_ENCRYPTED, .data = ADED_NOT_ENCRYPTED }

void aded_view_summary_add(AdedShowSummary *s, const AdedVolumeView *v);
