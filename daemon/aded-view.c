/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "ade-json.h"
#include "ade-osboot.h"
#include "ade-osvol.h"
#include "aded-view.h"

static const char *const volume_state_table[_ADED_VOLUME_STATE_MAX] = {
        [ADED_NOT_ENCRYPTED] = "NotEncrypted",
        [ADED_ENCRYPTION_PENDING] = "EncryptionPending",
        [ADED_ENCRYPTION_IN_PROGRESS] = "EncryptionInProgress",
        [ADED_ENCRYPTED] = "Encrypted",
        [ADED_VM_RESTART_PENDING] = "VMRestartPending",
        [ADED_DECRYPTION_IN_PROGRESS] = "DecryptionInProgress",
        [ADED_NOT_MOUNTED] = "NotMounted",
        [ADED_FAILED] = "Failed",
};

const char *aded_volume_state_to_string(AdedVolumeState s) {
        return s >= 0 && s < _ADED_VOLUME_STATE_MAX ? volume_state_table[s] : NULL;
}

void aded_volume_view_done(AdedVolumeView *v) {
        v->message = mfree(v->message);
}

/* @message, borrowed, becomes the view's own. */
static int view_set_message(AdedVolumeView *v, const char *message) {
        return ade_strdup_to(&v->message, message);
}

/* A job holds the header: its progress says where the volume stands. */
static int decide_job(const AdedVolumeFacts *f, AdedVolumeView *v) {
        const AdedJobProgress *j = f->job;
        const AdeStateVolume *rec = f->record;

        switch (j->type) {
        case ADED_JOB_DECRYPT:
                v->state = ADED_DECRYPTION_IN_PROGRESS;
                break;
        case ADED_JOB_ROTATE:
        case ADED_JOB_UNLOCK:
                /* Rotating a key or unlocking leaves the data as it is: still Encrypted. */
                v->state = ADED_ENCRYPTED;
                break;
        default:
                v->state = ADED_ENCRYPTION_IN_PROGRESS;
        }
        v->bytes_done = j->done;
        v->bytes_total = j->total;
        if (j->rate > 0 && j->total >= j->done && !j->finished) {
                v->rate = j->rate;
                v->eta_seconds = (int64_t)((j->total - j->done + j->rate - 1) / j->rate);
        }
        v->secret_url = rec ? rec->secret_url : NULL;
        v->kek_url = rec ? rec->kek_url : NULL;
        /* The device is not read while a job holds it: the record knows the UUID (chosen before the
         * header is written), and, for an open volume whose raw device is mounted nowhere (a resume
         * mounts the mapper), where its filesystem is. */
        v->uuid = rec ? rec->uuid : NULL;
        if (!v->mountpoint && f->mapper && rec)
                v->mountpoint = rec->mount_point;
        v->header = rec && rec->detached ? "Detached" : "Attached";
        v->mode = j->format_all ? "FormatAll" : "InPlace";
        return view_set_message(v, j->phase);
}

/* The state the LUKS header says, its progress, and what a person should know about it. */
static const char *decide_header_state(const AdedVolumeFacts *f, AdedVolumeView *v) {
        bool record_failed = f->record && f->record->error;
        const AdeLuksStatus *st = f->luks;

        if (f->luks_error < 0) {
                v->state = ADED_FAILED;
                return "the LUKS header cannot be read";
        }
        switch (st ? st->state : ADE_LUKS_STATE_NONE) {
        case ADE_LUKS_STATE_NONE:
                /* A LUKS1 volume adopted from ADE (docs/architecture.md §12): libcryptsetup's LUKS2
                 * status sees no header, the record knows better. */
                if (f->record && f->record->adopted_name && !record_failed) {
                        v->state = ADED_ENCRYPTED;
                        v->uuid = f->record->uuid;
                        v->header = f->record->detached ? "Detached" : "Attached";
                        v->mode = "InPlace";
                        return "adopted from ADE (LUKS1, no token): ade's key socket unlocks it by its record";
                }
                /* A failure before the header was written leaves a plain volume with an error. */
                v->state = record_failed ? ADED_FAILED : ADED_NOT_ENCRYPTED;
                return NULL;
        case ADE_LUKS_STATE_FINISHED:
                /* A decryption that failed before it changed anything: the volume is whole, and the
                 * person must see why Disable did not happen. An encryption whose every byte is
                 * encrypted but whose end could not be recorded (the state folder failing): the
                 * person must see that too, since aded cannot keep its records. A finished one clears
                 * its error (step done), so an error there is an earlier attempt's. */
                v->state = record_failed && (f->record->kind == ADE_JOB_DECRYPT || f->record->step < ADE_STEP_DONE)
                                   ? ADED_FAILED
                                   : ADED_ENCRYPTED;
                v->bytes_done = v->bytes_total = st->data_size;
                return NULL;
        case ADE_LUKS_STATE_CLEAN:
        case ADE_LUKS_STATE_CRASH:
                /* Stopped and no job runs: aded resumes it at start, or it failed. */
                v->state = st->operation == ADE_LUKS_OP_DECRYPT ? ADED_DECRYPTION_IN_PROGRESS
                                                                : ADED_ENCRYPTION_IN_PROGRESS;
                v->bytes_total = st->data_size;
                if (record_failed) {
                        v->state = ADED_FAILED;
                        return NULL;
                }
                return "interrupted; aded resumes it when it starts";
        default:
                v->state = ADED_FAILED;
                return "libcryptsetup refuses this header's metadata";
        }
}

/* What the header (when there is one) and the record say about the keys and the header. */
static void decide_header_fields(const AdedVolumeFacts *f, AdedVolumeView *v) {
        const AdeStateVolume *rec = f->record;
        const AdeLuksStatus *st = f->luks;

        if (f->luks_error >= 0 && st && st->state != ADE_LUKS_STATE_NONE) {
                v->uuid = st->uuid[0] ? st->uuid : NULL;
                v->header = st->header == ADE_LUKS_HEADER_DETACHED || f->header_path ? "Detached" : "Attached";
                v->mode = "InPlace";
                /* The token is what a boot unlocks with; the record may be older. */
                if (f->token) {
                        v->secret_url = f->token->secret_url;
                        v->kek_url = f->token->kek_url;
                        return;
                }
        }
        if (rec) {
                v->secret_url = rec->secret_url;
                v->kek_url = rec->kek_url;
        }
}

/* An open volume lives on its mapper: where that is mounted, and why it is not on the mount point
 * recorded at enable (Unlock puts it there). Returns the sentence, NULL when none is due. */
static char *decide_mapper_mount(const AdedVolumeFacts *f, AdedVolumeView *v) {
        const char *mount_point = f->record ? f->record->mount_point : NULL;
        char *why = NULL;
        int r;

        if (!f->mapper || !mount_point || !f->mapper_mount)
                return NULL;
        r = ade_fs_mount_check_verdict(f->mapper_mount, f->mapper, mount_point, &why);
        if (r > 0 && !f->volume->mountpoint)
                v->mountpoint = mount_point;
        else if (r == 0 && asprintf(&why, "%s is open but not mounted on %s; 'adectl unlock' mounts it", f->mapper,
                                   mount_point) < 0)
                why = NULL;
        return why;
}

/* The OS volume's initialised header waits for the reboot that opens it as ade-root, never for
 * aded's start (docs/architecture.md §9): what the record asks for says which. */
static const char *decide_os_waiting(const AdedVolumeFacts *f, AdedVolumeView *v, const char *message) {
        if (f->volume->type != ADE_VOLUME_OS || v->state != ADED_ENCRYPTION_IN_PROGRESS)
                return message;
        switch (ade_osvol_next(f->record, streq_ptr(f->mapper, ADE_OSBOOT_MAPPER))) {
        case ADE_OSVOL_NEXT_RESTART:
                v->state = ADED_VM_RESTART_PENDING;
                return "the header is initialised and the boot files name " ADE_OSBOOT_MAPPER
                       ": reboot when convenient; the initramfs opens it with the key from Key Vault and aded "
                       "encrypts it online";
        case ADE_OSVOL_NEXT_ENABLE:
                v->state = ADED_ENCRYPTION_PENDING;
                return "the Enable of the OS volume stopped before the boot files named " ADE_OSBOOT_MAPPER
                       "; run 'adectl enable --volume-type OS' again";
        default:
                return message;
        }
}

static int decide_no_job(const AdedVolumeFacts *f, AdedVolumeView *v) {
        _cleanup_free_ char *why = NULL, *locked = NULL;
        const char *message;

        message = decide_header_state(f, v);
        message = decide_os_waiting(f, v, message);
        decide_header_fields(f, v);
        why = decide_mapper_mount(f, v);
        if (!message && v->state == ADED_ENCRYPTED)
                message = why;
        if (!message && v->state == ADED_ENCRYPTED && !v->unlocked && f->unlock_error) {
                /* The boot went on without it (nofail): Show is where a person learns why. */
                if (asprintf(&locked,
                            "locked: the key socket could not give systemd-cryptsetup its key: %s; 'adectl unlock' "
                            "opens and mounts it once Key Vault answers",
                            f->unlock_error) < 0)
                        return -ENOMEM;
                message = locked;
        }
        if (f->record && f->record->error && v->state == ADED_FAILED)
                message = f->record->error;
        else if (!message && f->volume->skip != ADE_VOLUME_ELIGIBLE && v->state == ADED_NOT_ENCRYPTED)
                message = f->volume->reason;
        else if (!message && v->state == ADED_NOT_ENCRYPTED)
                message = f->left_alone;
        return view_set_message(v, message);
}

static const char *const backup_state_table[_ADED_BACKUP_STATE_MAX] = {
        [ADED_BACKUP_CURRENT] = "Current",
        [ADED_BACKUP_PENDING] = "Pending",
        [ADED_BACKUP_NO_KEK] = "NoKek",
        [ADED_BACKUP_OFF] = "Off",
};

const char *aded_backup_state_to_string(AdedBackupState s) {
        return s > ADED_BACKUP_NONE && s < _ADED_BACKUP_STATE_MAX ? backup_state_table[s] : NULL;
}

/* Only a volume ade finished encrypting has a header worth backing up: one mid-reencryption never
 * is (docs/architecture.md §11). A record of an older aded has no generation: not uploaded yet. */
static void decide_backup(const AdedVolumeFacts *f, AdedVolumeView *v) {
        const AdeStateVolume *r = f->record;

        if (!r || r->kind != ADE_JOB_ENCRYPT || r->step != ADE_STEP_DONE)
                return;
        if (!f->backup_configured)
                v->backup = ADED_BACKUP_OFF;
        else if (!r->kek_url)
                v->backup = ADED_BACKUP_NO_KEK;
        else if (r->backup_pending || r->backup_generation == 0)
                v->backup = ADED_BACKUP_PENDING;
        else
                v->backup = ADED_BACKUP_CURRENT;
        v->backup_generation = r->backup_generation;
        v->backup_pending_usec = v->backup == ADED_BACKUP_PENDING ? r->backup_pending_usec : 0;
}

int aded_view_decide(const AdedVolumeFacts *f, AdedVolumeView *ret) {
        AdedVolumeView v;
        int r;

        assert(f);
        assert(f->volume);
        assert(ret);

        v = (AdedVolumeView){
                .device = f->volume->device,
                .type = f->volume->type,
                .mountpoint = f->volume->mountpoint,
                .state = ADED_NOT_ENCRYPTED,
                .eta_seconds = -1,
                /* The volume is open exactly when a crypt mapping sits on it, job or not. */
                .unlocked = f->mapper != NULL,
                .mapper = f->mapper,
        };
        /* The key file's age comes from the record, whatever else the volume is doing; a volume being
         * decrypted has no schedule any more. */
        if (f->record && f->record->kind == ADE_JOB_ENCRYPT && f->record->rotated_usec > 0) {
                v.last_rotated_usec = f->record->rotated_usec;
                if (f->rotation_interval_usec > 0)
                        v.next_rotation_usec = f->record->rotated_usec + f->rotation_interval_usec;
        }
        decide_backup(f, &v);
        r = f->job ? decide_job(f, &v) : decide_no_job(f, &v);
        if (r < 0) {
                aded_volume_view_done(&v);
                return r;
        }
        *ret = v;
        return 0;
}

static int add_string(json_object *o, const char *key, const char *value) {
        return json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

/* An optional time, in RFC 3339: absent when unknown (0). */
static int add_time(json_object *o, const char *key, uint64_t realtime_usec) {
        char s[ADE_RFC3339_SIZE];

        if (realtime_usec == 0 || ade_format_rfc3339(realtime_usec, s) < 0)
                return 0;
        return json_object_object_add(o, key, json_object_new_string(s));
}

int aded_view_to_json(const AdedVolumeView *v, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        double progress = v->bytes_total > 0 ? (double)v->bytes_done / (double)v->bytes_total : 0.0;

        if (progress > 1.0)
                progress = 1.0;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (add_string(o, "device", v->device) < 0 || add_string(o, "uuid", v->uuid) < 0 ||
                add_string(o, "type", ade_volume_type_to_string(v->type)) < 0 ||
                add_string(o, "mountpoint", v->mountpoint) < 0 ||
                add_string(o, "state", aded_volume_state_to_string(v->state)) < 0 ||
                json_object_object_add(o, "progress", json_object_new_double(progress)) < 0 ||
                json_object_object_add(o, "bytesDone", json_object_new_int64((int64_t)v->bytes_done)) < 0 ||
                json_object_object_add(o, "bytesTotal", json_object_new_int64((int64_t)v->bytes_total)) < 0 ||
                add_string(o, "mode", v->mode) < 0 || add_string(o, "header", v->header) < 0 ||
                json_object_object_add(o, "unlocked", json_object_new_boolean(v->unlocked)) < 0 ||
                add_string(o, "mapper", v->mapper) < 0 || add_string(o, "secretUrl", v->secret_url) < 0 ||
                add_string(o, "kekUrl", v->kek_url) < 0 || add_string(o, "message", v->message) < 0)
                return -ENOMEM;
        if (add_time(o, "lastRotated", v->last_rotated_usec) < 0 ||
                add_time(o, "nextRotation", v->next_rotation_usec) < 0)
                return -ENOMEM;
        if (v->backup != ADED_BACKUP_NONE) {
                _cleanup_json_ json_object *b = json_object_new_object();

                if (!b || add_string(b, "state", aded_backup_state_to_string(v->backup)) < 0 ||
                        json_object_object_add(b, "generation",
                                v->backup_generation > 0 ? json_object_new_int64(v->backup_generation) : NULL) < 0 ||
                        add_time(b, "pendingSince", v->backup_pending_usec) < 0 ||
                        json_object_object_add(o, "backup", TAKE_PTR(b)) < 0)
                        return -ENOMEM;
        }
        /* Only while a job runs and its rate is known (docs/architecture.md §7). */
        if (v->rate > 0 && (json_object_object_add(o, "rate", json_object_new_int64((int64_t)v->rate)) < 0 ||
                                   json_object_object_add(o, "etaSeconds", json_object_new_int64(v->eta_seconds)) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/* Worst first: a failure, then a job in progress, shows before Encrypted. */
static const unsigned state_rank[_ADED_VOLUME_STATE_MAX] = {
        [ADED_FAILED] = 0,
        [ADED_DECRYPTION_IN_PROGRESS] = 1,
        [ADED_ENCRYPTION_IN_PROGRESS] = 2,
        [ADED_ENCRYPTION_PENDING] = 3,
        [ADED_NOT_ENCRYPTED] = 4,
        [ADED_VM_RESTART_PENDING] = 5,
        [ADED_NOT_MOUNTED] = 6,
        [ADED_ENCRYPTED] = 7,
};

void aded_view_summary_add(AdedShowSummary *s, const AdedVolumeView *v) {
        assert(v->state >= 0 && v->state < _ADED_VOLUME_STATE_MAX);

        if (v->type == ADE_VOLUME_OS)
                s->os = v->state;
        else if (v->type == ADE_VOLUME_DATA && (!s->any_data || state_rank[v->state] < state_rank[s->data])) {
                s->data = v->state;
                s->any_data = true;
        }
}
