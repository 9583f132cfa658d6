/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-json.h"
#include "ade-test.h"
#include "aded-view.h"

/* What Show says about a volume, from facts alone: each row is one situation a volume can be in,
 * with every field of the view it must produce. No device, no root. */

#define DEV "/dev/sdc"
#define UUID "0f7b2c57-2a4c-4a8e-9e2f-5a0c8a3f2b1d"
#define MAPPER "/dev/mapper/ade-" UUID
#define SECRET_REC "https://contoso.vault.azure.net/secrets/recorded/1111"
#define SECRET_TOKEN "https://contoso.vault.azure.net/secrets/token/2222"
#define KEK "https://contoso.vault.azure.net/keys/kek/3333"
#define HEADER_FILE "/var/lib/ade/headers/lun0.header"
#define KEY_ERROR "cannot get the key of /dev/sdc from Key Vault: Timeout"
#define ERROR "escrowing the key file of /dev/sdc in Key Vault failed: Forbidden"

/* ---- the facts the rows combine ---- */

static const AdeVolume plain = {.device = DEV, .type = ADE_VOLUME_DATA, .stable_id = "/dev/disk/azure/scsi1/lun0"};
static const AdeVolume plain_mounted = {.device = DEV, .type = ADE_VOLUME_DATA, .mountpoint = "/srv/data"};
static const AdeVolume swap = {.device = DEV,
        .type = ADE_VOLUME_DATA,
        .skip = ADE_VOLUME_SKIP_SWAP,
        .reason = "/dev/sdc is swap space; ade does not encrypt swap"};
/* An encrypted volume is probed as LUKS, with the reason a plain volume would be skipped for. */
static const AdeVolume luks = {.device = DEV,
        .type = ADE_VOLUME_DATA,
        .skip = ADE_VOLUME_SKIP_LUKS,
        .reason = "/dev/sdc carries a LUKS header already"};

static const AdeStateVolume rec_encrypting = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_HEADER,
        .secret_url = SECRET_REC,
        .kek_url = KEK,
        .mount_point = "/srv/data",
};
/* A resumed online encryption (after aded or the machine restarted): the mapper is mounted where
 * the filesystem was, the raw device nowhere. */
static const AdeStateVolume rec_resumed = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_HEADER,
        .uuid = (char *)UUID,
        .secret_url = SECRET_REC,
        .kek_url = KEK,
        .mount_point = "/srv/data",
};
static const AdeStateVolume rec_detached = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_HEADER,
        .secret_url = SECRET_REC,
        .detached = true,
        .header_path = HEADER_FILE,
};
static const AdeStateVolume rec_failed = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_HEADER,
        .secret_url = SECRET_REC,
        .error = ERROR,
};
static const AdeStateVolume rec_failed_before_escrow = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_KEYFILE,
        .error = ERROR,
};
/* Disable failed before it changed anything (header-dir full): the header is still whole. */
static const AdeStateVolume rec_decrypt_failed = {
        .device = DEV,
        .kind = ADE_JOB_DECRYPT,
        .step = ADE_STEP_PRECONDITIONS,
        .secret_url = SECRET_REC,
        .error = ERROR,
};
static const AdeStateVolume rec_done = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_DONE,
        .secret_url = SECRET_REC,
        .kek_url = KEK,
        .mount_point = "/srv/data",
};
static const AdeStateVolume rec_done_unmounted = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_DONE,
        .secret_url = SECRET_REC,
};
/* Done, with the error of an earlier attempt still recorded: history, not a failure. */
static const AdeStateVolume rec_done_old_error = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_DONE,
        .secret_url = SECRET_REC,
        .error = ERROR,
};

/* A LUKS1 volume adopted from ADE: only the record knows it (libcryptsetup's LUKS2 status sees none). */
static const AdeStateVolume rec_adopted_luks1 = {
        .device = DEV,
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_DONE,
        .secret_url = SECRET_REC,
        .kek_url = KEK,
        .uuid = (char *)UUID,
        .adopted_name = (char *)"f1c2e0a8-5b5e-4d8e-9f3a-0c5a2b8e6d11",
};

static const AdeLuksStatus st_finished = {.state = ADE_LUKS_STATE_FINISHED,
        .header = ADE_LUKS_HEADER_ATTACHED,
        .has_token = true,
        .data_size = 1000,
        .uuid = UUID};
static const AdeLuksStatus st_finished_detached = {.state = ADE_LUKS_STATE_FINISHED,
        .header = ADE_LUKS_HEADER_DETACHED,
        .has_token = true,
        .data_size = 1000,
        .uuid = UUID};
static const AdeLuksStatus st_encrypt_clean = {.state = ADE_LUKS_STATE_CLEAN,
        .operation = ADE_LUKS_OP_ENCRYPT,
        .header = ADE_LUKS_HEADER_ATTACHED,
        .has_token = true,
        .data_size = 1000,
        .uuid = UUID};
static const AdeLuksStatus st_encrypt_crash = {.state = ADE_LUKS_STATE_CRASH,
        .operation = ADE_LUKS_OP_ENCRYPT,
        .header = ADE_LUKS_HEADER_ATTACHED,
        .has_token = true,
        .data_size = 1000,
        .uuid = UUID};
static const AdeLuksStatus st_decrypt_clean = {.state = ADE_LUKS_STATE_CLEAN,
        .operation = ADE_LUKS_OP_DECRYPT,
        .header = ADE_LUKS_HEADER_DETACHED,
        .has_token = true,
        .data_size = 1000,
        .uuid = UUID};
static const AdeLuksStatus st_invalid = {.state = ADE_LUKS_STATE_INVALID, .uuid = UUID};
static const AdeLuksStatus st_none = {.state = ADE_LUKS_STATE_NONE};

static const AdeLuksToken token = {.secret_url = SECRET_TOKEN, .kek_url = KEK};

static const AdedJobProgress job_encrypt_online = {
        .type = ADED_JOB_ENCRYPT, .done = 400, .total = 1000, .phase = "encrypting", .mapper = "ade-x"};
static const AdedJobProgress job_encrypt_offline = {
        .type = ADED_JOB_ENCRYPT, .done = 100, .total = 1000, .phase = "encrypting"};
static const AdedJobProgress job_escrow = {.type = ADED_JOB_ENCRYPT, .phase = "escrowing the key in Key Vault"};
static const AdedJobProgress job_format_all = {
        .type = ADED_JOB_ENCRYPT, .format_all = true, .done = 10, .total = 1000, .phase = "encrypting"};
static const AdedJobProgress job_decrypt = {
        .type = ADED_JOB_DECRYPT, .done = 700, .total = 1000, .phase = "decrypting", .mapper = "ade-x"};
static const AdedJobProgress job_rotate = {.type = ADED_JOB_ROTATE, .phase = "replacing the keyslot"};
static const AdedJobProgress job_unlock = {.type = ADED_JOB_UNLOCK, .phase = "opening"};

/* The mapper against the mount point /srv/data recorded at enable. */
static const AdeFsMountCheck on_mount_point = {.mounted_on = "/srv/data", .canonical = "/srv/data", .directory = true};
static const AdeFsMountCheck unmounted = {.canonical = "/srv/data", .directory = true};
static const AdeFsMountCheck elsewhere = {.mounted_on = "/mnt/other", .canonical = "/srv/data", .directory = true};
static const AdeFsMountCheck missing = {};
static const AdeFsMountCheck busy = {
        .canonical = "/srv/data", .directory = true, .busy = true, .busy_devnum = (8 << 8) | 17};

/* ---- the rows ---- */

typedef struct Row {
        const char *name;
        AdedVolumeFacts facts;

        /* The view it must produce; NULL strings must be NULL. */
        AdedVolumeState state;
        uint64_t done, total;
        bool unlocked;
        const char *mapper, *mountpoint, *uuid, *header, *mode, *secret_url, *kek_url;
        const char *message;     /* exactly */
        const char *message_has; /* or: a formatted message holding this */
} Row;

static const Row rows[] = {
        {
                .name = "plain eligible volume",
                .facts = {.volume = &plain, .luks = &st_none},
                .state = ADED_NOT_ENCRYPTED,
        },
        {
                .name = "a volume the new-disk pass left alone says why",
                .facts = {.volume = &plain, .luks = &st_none, .left_alone = "disabled by the operator"},
                .state = ADED_NOT_ENCRYPTED,
                .message = "disabled by the operator",
        },
        {
                .name = "an encrypted volume is not 'left alone'",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .left_alone = "disabled by the operator"},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "a LUKS1 volume adopted from ADE is encrypted, as its record says",
                .facts = {.volume = &luks, .record = &rec_adopted_luks1, .luks = &st_none},
                .state = ADED_ENCRYPTED,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message_has = "adopted from ADE (LUKS1",
        },
        {
                .name = "ineligible plain volume says why",
                .facts = {.volume = &swap, .luks = &st_none},
                .state = ADED_NOT_ENCRYPTED,
                .message = "/dev/sdc is swap space; ade does not encrypt swap",
        },
        {
                .name = "failed record on a plain volume",
                .facts = {.volume = &plain, .record = &rec_failed_before_escrow, .luks = &st_none},
                .state = ADED_FAILED,
                .message = ERROR,
        },
        {
                .name = "online encryption job with the mapper active",
                .facts = {.volume = &plain_mounted,
                        .job = &job_encrypt_online,
                        .record = &rec_encrypting,
                        .mapper = MAPPER},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .done = 400,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .mountpoint = "/srv/data",
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "encrypting",
        },
        {
                .name = "resumed online job: the UUID and the mount point from the record",
                .facts = {.volume = &plain, .job = &job_encrypt_online, .record = &rec_resumed, .mapper = MAPPER},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .done = 400,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .mountpoint = "/srv/data",
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "encrypting",
        },
        {
                .name = "offline encryption job is not unlocked",
                .facts = {.volume = &plain, .job = &job_encrypt_offline, .record = &rec_detached},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .done = 100,
                .total = 1000,
                .header = "Detached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .message = "encrypting",
        },
        {
                .name = "encryption job before its record has a secret",
                .facts = {.volume = &plain, .job = &job_escrow},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .header = "Attached",
                .mode = "InPlace",
                .message = "escrowing the key in Key Vault",
        },
        {
                .name = "format-all job",
                .facts = {.volume = &plain, .job = &job_format_all, .record = &rec_encrypting},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .done = 10,
                .total = 1000,
                .header = "Attached",
                .mode = "FormatAll",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "encrypting",
        },
        {
                .name = "decryption job of an open volume",
                .facts = {.volume = &luks, .job = &job_decrypt, .record = &rec_done, .mapper = MAPPER},
                .state = ADED_DECRYPTION_IN_PROGRESS,
                .done = 700,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .mountpoint = "/srv/data",
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "decrypting",
        },
        {
                .name = "rotate job shows Encrypted",
                .facts = {.volume = &luks, .job = &job_rotate, .record = &rec_done},
                .state = ADED_ENCRYPTED,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "replacing the keyslot",
        },
        {
                .name = "unlock job shows Encrypted",
                .facts = {.volume = &luks, .job = &job_unlock, .record = &rec_done},
                .state = ADED_ENCRYPTED,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "opening",
        },
        {
                .name = "finished encryption, not unlocked, no device-mapper",
                .facts = {.volume = &luks, .record = &rec_done, .luks = &st_finished, .token = &token},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "locked after a boot whose key request failed says why",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .unlock_error = KEY_ERROR},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = "locked: the key socket could not give systemd-cryptsetup its key: " KEY_ERROR
                           "; 'adectl unlock' opens and mounts it once Key Vault answers",
        },
        {
                .name = "an open volume's old key request failure is history",
                .facts = {.volume = &luks,
                        .record = &rec_done_unmounted,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER,
                        .unlock_error = KEY_ERROR},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "finished encryption whose token cannot be read uses the record",
                .facts = {.volume = &luks, .record = &rec_done, .luks = &st_finished},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .kek_url = KEK,
        },
        {
                .name = "encrypted to the end but its end not recorded (state folder failing) failed",
                .facts = {.volume = &luks, .record = &rec_failed, .luks = &st_finished, .token = &token},
                .state = ADED_FAILED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = ERROR,
        },
        {
                .name = "an earlier attempt's error is history once encrypted",
                .facts = {.volume = &luks, .record = &rec_done_old_error, .luks = &st_finished, .token = &token},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "a failed decryption of a whole volume says Failed and why",
                .facts = {.volume = &luks, .record = &rec_decrypt_failed, .luks = &st_finished, .token = &token},
                .state = ADED_FAILED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = ERROR,
        },
        {
                .name = "state file lost, header-dir holds the detached header",
                .facts = {.volume = &plain, .luks = &st_finished, .header_path = HEADER_FILE, .token = &token},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Detached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "detached header said by the header itself",
                .facts = {.volume = &luks, .record = &rec_done_unmounted, .luks = &st_finished_detached},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .uuid = UUID,
                .header = "Detached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
        },
        {
                .name = "reencryption CLEAN without a recorded error resumes",
                .facts = {.volume = &luks, .record = &rec_encrypting, .luks = &st_encrypt_clean, .token = &token},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = "interrupted; aded resumes it when it starts",
        },
        {
                .name = "reencryption CRASH without a record resumes",
                .facts = {.volume = &luks, .luks = &st_encrypt_crash, .token = &token},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = "interrupted; aded resumes it when it starts",
        },
        {
                .name = "reencryption CRASH with a recorded error failed",
                .facts = {.volume = &luks, .record = &rec_failed, .luks = &st_encrypt_crash},
                .state = ADED_FAILED,
                .total = 1000,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_REC,
                .message = ERROR,
        },
        {
                .name = "decryption CLEAN without an error resumes",
                .facts = {.volume = &luks, .luks = &st_decrypt_clean, .header_path = HEADER_FILE, .token = &token},
                .state = ADED_DECRYPTION_IN_PROGRESS,
                .total = 1000,
                .uuid = UUID,
                .header = "Detached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = "interrupted; aded resumes it when it starts",
        },
        {
                .name = "decryption CLEAN with a recorded error failed",
                .facts = {.volume = &luks, .record = &rec_failed, .luks = &st_decrypt_clean, .token = &token},
                .state = ADED_FAILED,
                .total = 1000,
                .uuid = UUID,
                .header = "Detached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = ERROR,
        },
        {
                .name = "LUKS header unreadable",
                .facts = {.volume = &luks, .record = &rec_done, .luks_error = -EIO},
                .state = ADED_FAILED,
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = "the LUKS header cannot be read",
        },
        {
                .name = "LUKS header unreadable after a recorded failure says the failure",
                .facts = {.volume = &luks, .record = &rec_failed, .luks_error = -EIO},
                .state = ADED_FAILED,
                .secret_url = SECRET_REC,
                .message = ERROR,
        },
        {
                .name = "invalid metadata",
                .facts = {.volume = &luks, .luks = &st_invalid},
                .state = ADED_FAILED,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .message = "libcryptsetup refuses this header's metadata",
        },
        {
                .name = "mapper mounted on the recorded mount point",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER,
                        .mapper_mount = &on_mount_point},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .mountpoint = "/srv/data",
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "mapper open but unmounted",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER,
                        .mapper_mount = &unmounted},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = MAPPER " is open but not mounted on /srv/data; 'adectl unlock' mounts it",
        },
        {
                .name = "mapper mounted elsewhere",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER,
                        .mapper_mount = &elsewhere},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message_has = MAPPER " is mounted on /mnt/other, not on /srv/data",
        },
        {
                .name = "mapper open, its mount point is gone",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER,
                        .mapper_mount = &missing},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message_has = "its mount point /srv/data does not exist",
        },
        {
                .name = "mapper open, its mount point is busy",
                .facts = {.volume = &luks,
                        .record = &rec_done,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER,
                        .mapper_mount = &busy},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message_has = "/srv/data is busy (device 8:17 is mounted there)",
        },
        {
                .name = "mapper open without a recorded mount point says nothing",
                .facts = {.volume = &luks,
                        .record = &rec_done_unmounted,
                        .luks = &st_finished,
                        .token = &token,
                        .mapper = MAPPER},
                .state = ADED_ENCRYPTED,
                .done = 1000,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
        },
        {
                .name = "an interrupted reencryption's message wins over the mount",
                .facts = {.volume = &luks,
                        .record = &rec_encrypting,
                        .luks = &st_encrypt_clean,
                        .token = &token,
                        .mapper = MAPPER,
                        .mapper_mount = &unmounted},
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .total = 1000,
                .unlocked = true,
                .mapper = MAPPER,
                .uuid = UUID,
                .header = "Attached",
                .mode = "InPlace",
                .secret_url = SECRET_TOKEN,
                .kek_url = KEK,
                .message = "interrupted; aded resumes it when it starts",
        },
};

static void check_str(const Row *row, const char *field, const char *got, const char *want) {
        if (want)
                ck_assert_msg(
                        streq_ptr(got, want), "%s: %s is \"%s\", want \"%s\"", row->name, field, strna(got), want);
        else
                ck_assert_msg(!got, "%s: %s is \"%s\", want null", row->name, field, got);
}

START_TEST(test_decide_row) {
        const Row *row = &rows[_i];
        _cleanup_(aded_volume_view_done) AdedVolumeView v = {};

        ck_assert_int_eq(aded_view_decide(&row->facts, &v), 0);
        ck_assert_msg(v.state == row->state, "%s: state is %s, want %s", row->name,
                aded_volume_state_to_string(v.state), aded_volume_state_to_string(row->state));
        ck_assert_msg(v.bytes_done == row->done && v.bytes_total == row->total, "%s: bytes %llu/%llu, want %llu/%llu",
                row->name, (unsigned long long)v.bytes_done, (unsigned long long)v.bytes_total,
                (unsigned long long)row->done, (unsigned long long)row->total);
        ck_assert_msg(v.unlocked == row->unlocked, "%s: unlocked is %s", row->name, v.unlocked ? "true" : "false");
        check_str(row, "device", v.device, DEV);
        check_str(row, "mapper", v.mapper, row->mapper);
        check_str(row, "mountpoint", v.mountpoint, row->mountpoint);
        check_str(row, "uuid", v.uuid, row->uuid);
        check_str(row, "header", v.header, row->header);
        check_str(row, "mode", v.mode, row->mode);
        check_str(row, "secretUrl", v.secret_url, row->secret_url);
        check_str(row, "kekUrl", v.kek_url, row->kek_url);
        if (row->message_has)
                ck_assert_msg(v.message && strstr(v.message, row->message_has), "%s: message \"%s\" lacks \"%s\"",
                        row->name, strna(v.message), row->message_has);
        else
                check_str(row, "message", v.message, row->message);
        ck_assert_int_eq(v.type, ADE_VOLUME_DATA);
}
END_TEST

/* ---- the JSON ---- */

START_TEST(test_json_has_every_field) {
        static const char *const fields[] = {"device", "uuid", "type", "mountpoint", "state", "progress", "bytesDone",
                "bytesTotal", "mode", "header", "unlocked", "mapper", "secretUrl", "kekUrl", "message"};
        _cleanup_json_ json_object *o = NULL;
        AdedVolumeView v = {.device = DEV, .type = ADE_VOLUME_DATA, .state = ADED_NOT_ENCRYPTED};

        ck_assert_int_eq(aded_view_to_json(&v, &o), 0);
        ck_assert_int_eq(json_object_object_length(o), (int)ELEMENTSOF(fields));
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                ck_assert_msg(json_object_object_get_ex(o, fields[i], NULL), "no %s", fields[i]);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "state")), "NotEncrypted");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "type")), "Data");
        ck_assert_ptr_null(json_object_object_get(o, "uuid"));
        ck_assert_ptr_null(json_object_object_get(o, "message"));
        ck_assert(!json_object_get_boolean(json_object_object_get(o, "unlocked")));
}
END_TEST

START_TEST(test_json_values) {
        _cleanup_json_ json_object *o = NULL;
        AdedVolumeView v = {
                .device = DEV,
                .type = ADE_VOLUME_DATA,
                .uuid = UUID,
                .mountpoint = "/srv/data",
                .state = ADED_ENCRYPTION_IN_PROGRESS,
                .bytes_done = 250,
                .bytes_total = 1000,
                .mode = "InPlace",
                .header = "Attached",
                .unlocked = true,
                .mapper = MAPPER,
                .secret_url = SECRET_REC,
                .kek_url = KEK,
                .message = (char *)"encrypting",
        };

        ck_assert_int_eq(aded_view_to_json(&v, &o), 0);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "state")), "EncryptionInProgress");
        ck_assert_double_eq(json_object_get_double(json_object_object_get(o, "progress")), 0.25);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(o, "bytesDone")), 250);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(o, "bytesTotal")), 1000);
        ck_assert(json_object_get_boolean(json_object_object_get(o, "unlocked")));
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "mapper")), MAPPER);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "mountpoint")), "/srv/data");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "uuid")), UUID);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "secretUrl")), SECRET_REC);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "kekUrl")), KEK);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "mode")), "InPlace");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "header")), "Attached");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "message")), "encrypting");
}
END_TEST

START_TEST(test_json_progress_is_capped) {
        _cleanup_json_ json_object *o = NULL, *none = NULL;
        AdedVolumeView v = {.device = DEV, .state = ADED_ENCRYPTED, .bytes_done = 2000, .bytes_total = 1000};

        ck_assert_int_eq(aded_view_to_json(&v, &o), 0);
        ck_assert_double_eq(json_object_get_double(json_object_object_get(o, "progress")), 1.0);
        /* Nothing to do yet: 0, not a division by zero. */
        v.bytes_done = v.bytes_total = 0;
        ck_assert_int_eq(aded_view_to_json(&v, &none), 0);
        ck_assert_double_eq(json_object_get_double(json_object_object_get(none, "progress")), 0.0);
}
END_TEST

/* Rate and ETA come from the running job only, and are in the JSON only when known. */
START_TEST(test_rate_and_eta) {
        AdedJobProgress job = {.type = ADED_JOB_ENCRYPT, .done = 250U << 20, .total = 1000U << 20, .rate = 50U << 20};
        AdedVolumeFacts f = {.volume = &plain, .job = &job, .record = &rec_encrypting};
        _cleanup_json_ json_object *o = NULL, *none = NULL;
        _cleanup_(aded_volume_view_done) AdedVolumeView v = {}, unknown = {}, finished = {}, idle = {};

        ck_assert_int_eq(aded_view_decide(&f, &v), 0);
        ck_assert_uint_eq(v.rate, 50U << 20);
        ck_assert_int_eq(v.eta_seconds, 15);
        ck_assert_int_eq(aded_view_to_json(&v, &o), 0);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(o, "rate")), 50 << 20);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(o, "etaSeconds")), 15);

        /* Not measured yet (less than a second of reports): neither. */
        job.rate = 0;
        ck_assert_int_eq(aded_view_decide(&f, &unknown), 0);
        ck_assert_uint_eq(unknown.rate, 0);
        ck_assert_int_eq(unknown.eta_seconds, -1);
        ck_assert_int_eq(aded_view_to_json(&unknown, &none), 0);
        ck_assert(!json_object_object_get_ex(none, "rate", NULL));
        ck_assert(!json_object_object_get_ex(none, "etaSeconds", NULL));

        /* A part of a second left counts as a second; a finished job has no rate. */
        job.rate = 1000U << 20;
        job.done = (1000U << 20) - 1;
        job.finished = true;
        ck_assert_int_eq(aded_view_decide(&f, &finished), 0);
        ck_assert_uint_eq(finished.rate, 0);
        job.finished = false;
        aded_volume_view_done(&finished);
        ck_assert_int_eq(aded_view_decide(&f, &finished), 0);
        ck_assert_int_eq(finished.eta_seconds, 1);

        /* No job: nothing runs, nothing to measure. */
        f.job = NULL;
        f.record = &rec_done;
        ck_assert_int_eq(aded_view_decide(&f, &idle), 0);
        ck_assert_uint_eq(idle.rate, 0);
        ck_assert_int_eq(idle.eta_seconds, -1);
}
END_TEST

/* The key's age is the record's; the next rotation only with an interval; a decryption has none. */
START_TEST(test_rotation_times) {
        AdeStateVolume rec = rec_done;
        AdedVolumeFacts f = {.volume = &luks, .record = &rec};
        _cleanup_json_ json_object *o = NULL, *none = NULL;
        _cleanup_(aded_volume_view_done) AdedVolumeView v = {}, no_interval = {}, decrypting = {};

        rec.rotated_usec = 1765132279ULL * 1000000ULL; /* 2025-12-07T18:31:19Z */
        f.rotation_interval_usec = 90ULL * 86400ULL * 1000000ULL;
        ck_assert_int_eq(aded_view_decide(&f, &v), 0);
        ck_assert_uint_eq(v.last_rotated_usec, rec.rotated_usec);
        ck_assert_uint_eq(v.next_rotation_usec, rec.rotated_usec + f.rotation_interval_usec);
        ck_assert_int_eq(aded_view_to_json(&v, &o), 0);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "lastRotated")), "2025-12-07T18:31:19Z");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "nextRotation")), "2026-03-07T18:31:19Z");

        f.rotation_interval_usec = 0;
        ck_assert_int_eq(aded_view_decide(&f, &no_interval), 0);
        ck_assert_uint_eq(no_interval.next_rotation_usec, 0);
        ck_assert_int_eq(aded_view_to_json(&no_interval, &none), 0);
        ck_assert(json_object_object_get_ex(none, "lastRotated", NULL));
        ck_assert(!json_object_object_get_ex(none, "nextRotation", NULL));

        rec.kind = ADE_JOB_DECRYPT;
        f.rotation_interval_usec = 1000000;
        ck_assert_int_eq(aded_view_decide(&f, &decrypting), 0);
        ck_assert_uint_eq(decrypting.last_rotated_usec, 0);
        ck_assert_uint_eq(decrypting.next_rotation_usec, 0);
}
END_TEST

/* The header backup: one row per state, and what --json says for each. */
typedef struct BackupRow {
        AdeJobKind kind;
        AdeJobStep step;
        bool configured, kek, pending;
        unsigned generation;
        AdedBackupState want;
        const char *want_json; /* "state", NULL: no "backup" object */
        bool want_since;
} BackupRow;

static const BackupRow backup_rows[] = {
        {ADE_JOB_ENCRYPT, ADE_STEP_DONE, true, true, false, 3, ADED_BACKUP_CURRENT, "Current", false},
        {ADE_JOB_ENCRYPT, ADE_STEP_DONE, true, true, true, 3, ADED_BACKUP_PENDING, "Pending", true},
        {ADE_JOB_ENCRYPT, ADE_STEP_DONE, true, true, true, 0, ADED_BACKUP_PENDING, "Pending", true},
        /* Encrypted by an older aded, or before [backup] url was set: never uploaded. */
        {ADE_JOB_ENCRYPT, ADE_STEP_DONE, true, true, false, 0, ADED_BACKUP_PENDING, "Pending", false},
        {ADE_JOB_ENCRYPT, ADE_STEP_DONE, true, false, false, 0, ADED_BACKUP_NO_KEK, "NoKek", false},
        {ADE_JOB_ENCRYPT, ADE_STEP_DONE, false, true, true, 2, ADED_BACKUP_OFF, "Off", false},
        /* Mid-reencryption, or being decrypted: no header worth a backup. */
        {ADE_JOB_ENCRYPT, ADE_STEP_HEADER, true, true, true, 2, ADED_BACKUP_NONE, NULL, false},
        {ADE_JOB_DECRYPT, ADE_STEP_HEADER, true, true, false, 2, ADED_BACKUP_NONE, NULL, false},
};

START_TEST(test_backup_state) {
        const BackupRow *row = &backup_rows[_i];
        AdeStateVolume rec = rec_done;
        AdedVolumeFacts f = {.volume = &luks, .record = &rec, .backup_configured = row->configured};
        _cleanup_json_ json_object *o = NULL;
        _cleanup_(aded_volume_view_done) AdedVolumeView v = {};
        json_object *b = NULL, *g = NULL, *since = NULL;

        rec.kind = row->kind;
        rec.step = row->step;
        rec.kek_url = row->kek ? KEK : NULL;
        rec.backup_pending = row->pending;
        rec.backup_pending_usec = row->pending ? 1765132279ULL * 1000000ULL : 0; /* 2025-12-07T18:31:19Z */
        rec.backup_generation = row->generation;
        ck_assert_int_eq(aded_view_decide(&f, &v), 0);
        ck_assert_int_eq(v.backup, row->want);
        ck_assert_int_eq(aded_view_to_json(&v, &o), 0);
        if (!row->want_json) {
                ck_assert(!json_object_object_get_ex(o, "backup", NULL));
                return;
        }
        ck_assert(json_object_object_get_ex(o, "backup", &b));
        ck_assert_str_eq(json_object_get_string(json_object_object_get(b, "state")), row->want_json);
        ck_assert(json_object_object_get_ex(b, "generation", &g));
        if (row->generation > 0)
                ck_assert_int_eq(json_object_get_int64(g), row->generation);
        else
                ck_assert_ptr_null(g);
        ck_assert_int_eq(json_object_object_get_ex(b, "pendingSince", &since), row->want_since);
        if (row->want_since)
                ck_assert_str_eq(json_object_get_string(since), "2025-12-07T18:31:19Z");
}
END_TEST

START_TEST(test_backup_state_names) {
        ck_assert_ptr_null(aded_backup_state_to_string(ADED_BACKUP_NONE));
        ck_assert_str_eq(aded_backup_state_to_string(ADED_BACKUP_NO_KEK), "NoKek");
        ck_assert_ptr_null(aded_backup_state_to_string(_ADED_BACKUP_STATE_MAX));
}
END_TEST

/* ---- os and data ---- */

static AdedShowSummary summarize(const AdeVolumeType *types, const AdedVolumeState *states, size_t n) {
        AdedShowSummary s = ADED_SHOW_SUMMARY_INIT;

        for (size_t i = 0; i < n; i++)
                aded_view_summary_add(&s, &(AdedVolumeView){.type = types[i], .state = states[i]});
        return s;
}

START_TEST(test_summary_without_volumes) {
        AdedShowSummary s = summarize(NULL, NULL, 0);

        ck_assert_int_eq(s.os, ADED_NOT_ENCRYPTED);
        ck_assert_int_eq(s.data, ADED_NOT_ENCRYPTED);
}
END_TEST

START_TEST(test_summary_data_is_the_worst) {
        static const AdeVolumeType types[] = {ADE_VOLUME_DATA, ADE_VOLUME_DATA, ADE_VOLUME_DATA};
        static const AdedVolumeState states[] = {ADED_ENCRYPTED, ADED_ENCRYPTION_IN_PROGRESS, ADED_NOT_ENCRYPTED};
        AdedShowSummary s = summarize(types, states, 3);

        ck_assert_int_eq(s.data, ADED_ENCRYPTION_IN_PROGRESS);
        ck_assert_int_eq(s.os, ADED_NOT_ENCRYPTED);
}
END_TEST

START_TEST(test_summary_failed_beats_everything) {
        static const AdeVolumeType types[] = {ADE_VOLUME_DATA, ADE_VOLUME_DATA, ADE_VOLUME_DATA};
        static const AdedVolumeState states[] = {ADED_DECRYPTION_IN_PROGRESS, ADED_FAILED, ADED_ENCRYPTED};
        AdedShowSummary s = summarize(types, states, 3);

        ck_assert_int_eq(s.data, ADED_FAILED);
}
END_TEST

START_TEST(test_summary_one_encrypted_data_volume) {
        static const AdeVolumeType types[] = {ADE_VOLUME_OS, ADE_VOLUME_DATA};
        static const AdedVolumeState states[] = {ADED_NOT_ENCRYPTED, ADED_ENCRYPTED};
        AdedShowSummary s = summarize(types, states, 2);

        ck_assert_int_eq(s.data, ADED_ENCRYPTED);
        ck_assert_int_eq(s.os, ADED_NOT_ENCRYPTED);
}
END_TEST

START_TEST(test_summary_os_and_resource) {
        /* The resource disk counts for neither. */
        static const AdeVolumeType types[] = {ADE_VOLUME_RESOURCE, ADE_VOLUME_OS};
        static const AdedVolumeState states[] = {ADED_FAILED, ADED_ENCRYPTED};
        AdedShowSummary s = summarize(types, states, 2);

        ck_assert_int_eq(s.os, ADED_ENCRYPTED);
        ck_assert_int_eq(s.data, ADED_NOT_ENCRYPTED);
}
END_TEST

/* The OS volume (docs/architecture.md §9): its initialised header waits for the reboot, not for
 * aded's start; once "/" is on ade-root it is an interrupted reencryption like any other. */
#define OS_DEV "/dev/vda3"
#define OS_HEADER "/boot/luks/" UUID ".header"
static const AdeVolume os_root = {.device = OS_DEV, .type = ADE_VOLUME_OS, .mountpoint = "/"};
static const AdeVolume os_root_under_mapper = {.device = OS_DEV, .type = ADE_VOLUME_OS};
static const AdeStateVolume rec_os_restart = {.device = OS_DEV,
        .volume_type = "OS",
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_HEADER,
        .secret_url = SECRET_REC,
        .detached = true,
        .header_path = OS_HEADER,
        .mount_point = "/"};
static const AdeStateVolume rec_os_no_boot_files = {.device = OS_DEV,
        .volume_type = "OS",
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_SHRINK,
        .secret_url = SECRET_REC,
        .detached = true,
        .header_path = OS_HEADER,
        .mount_point = "/"};
static const AdeStateVolume rec_os_failed = {.device = OS_DEV,
        .volume_type = "OS",
        .kind = ADE_JOB_ENCRYPT,
        .step = ADE_STEP_HEADER,
        .secret_url = SECRET_REC,
        .header_path = OS_HEADER,
        .error = ERROR};
static const AdeLuksStatus st_os_clean = {.state = ADE_LUKS_STATE_CLEAN,
        .operation = ADE_LUKS_OP_ENCRYPT,
        .header = ADE_LUKS_HEADER_DETACHED,
        .has_token = true,
        .data_size = 4096,
        .uuid = UUID};

static const struct {
        const char *name;
        AdedVolumeFacts facts;
        AdedVolumeState state;
        const char *message_has;
} os_rows[] = {
        {"header and boot files written, / on the partition",
                {.volume = &os_root, .record = &rec_os_restart, .luks = &st_os_clean, .header_path = OS_HEADER},
                ADED_VM_RESTART_PENDING, "reboot when convenient"},
        {"header written, the boot files not",
                {.volume = &os_root, .record = &rec_os_no_boot_files, .luks = &st_os_clean, .header_path = OS_HEADER},
                ADED_ENCRYPTION_PENDING, "run 'adectl enable --volume-type OS' again"},
        {"after the reboot, on ade-root, before aded's job",
                {.volume = &os_root_under_mapper,
                        .record = &rec_os_restart,
                        .luks = &st_os_clean,
                        .header_path = OS_HEADER,
                        .mapper = "/dev/mapper/ade-root"},
                ADED_ENCRYPTION_IN_PROGRESS, "aded resumes it"},
        {"on another mapping than ade-root",
                {.volume = &os_root_under_mapper,
                        .record = &rec_os_restart,
                        .luks = &st_os_clean,
                        .header_path = OS_HEADER,
                        .mapper = MAPPER},
                ADED_VM_RESTART_PENDING, "reboot when convenient"},
        {"its job failed", {.volume = &os_root, .record = &rec_os_failed, .luks = &st_os_clean}, ADED_FAILED, ERROR},
        {"no record: not ade's reencryption to wait for",
                {.volume = &os_root, .luks = &st_os_clean, .header_path = OS_HEADER}, ADED_ENCRYPTION_IN_PROGRESS,
                "aded resumes it"},
};

START_TEST(test_decide_os) {
        _cleanup_(aded_volume_view_done) AdedVolumeView v = {};

        ck_assert_int_eq(aded_view_decide(&os_rows[_i].facts, &v), 0);
        ck_assert_msg(v.state == os_rows[_i].state, "%s: state is %s, want %s", os_rows[_i].name,
                aded_volume_state_to_string(v.state), aded_volume_state_to_string(os_rows[_i].state));
        ck_assert_msg(v.message && strstr(v.message, os_rows[_i].message_has), "%s: message \"%s\" lacks \"%s\"",
                os_rows[_i].name, strna(v.message), os_rows[_i].message_has);
        ck_assert_int_eq(v.type, ADE_VOLUME_OS);
}
END_TEST

/* A data volume in the OS volume's situation is never waiting for a reboot. */
START_TEST(test_decide_data_never_restart_pending) {
        static const AdeVolume data = {.device = DEV, .type = ADE_VOLUME_DATA};
        AdedVolumeFacts f = {.volume = &data, .record = &rec_os_restart, .luks = &st_os_clean};
        _cleanup_(aded_volume_view_done) AdedVolumeView v = {};

        ck_assert_int_eq(aded_view_decide(&f, &v), 0);
        ck_assert_int_eq(v.state, ADED_ENCRYPTION_IN_PROGRESS);
}
END_TEST

START_TEST(test_state_names) {
        ck_assert_str_eq(aded_volume_state_to_string(ADED_ENCRYPTION_IN_PROGRESS), "EncryptionInProgress");
        ck_assert_str_eq(aded_volume_state_to_string(ADED_VM_RESTART_PENDING), "VMRestartPending");
        ck_assert_ptr_null(aded_volume_state_to_string(_ADED_VOLUME_STATE_MAX));
        ck_assert_ptr_null(aded_volume_state_to_string(_ADED_VOLUME_STATE_INVALID));
}
END_TEST

static Suite *view_suite(void) {
        Suite *s = suite_create("view");
        TCase *tc;

        tc = ade_test_case("decide");
        tcase_add_loop_test(tc, test_decide_row, 0, (int)ELEMENTSOF(rows));
        tcase_add_loop_test(tc, test_decide_os, 0, (int)ELEMENTSOF(os_rows));
        tcase_add_test(tc, test_decide_data_never_restart_pending);
        suite_add_tcase(s, tc);

        tc = ade_test_case("json");
        tcase_add_test(tc, test_json_has_every_field);
        tcase_add_test(tc, test_json_values);
        tcase_add_test(tc, test_json_progress_is_capped);
        tcase_add_test(tc, test_rate_and_eta);
        tcase_add_test(tc, test_rotation_times);
        suite_add_tcase(s, tc);

        tc = ade_test_case("summary");
        tcase_add_test(tc, test_summary_without_volumes);
        tcase_add_test(tc, test_summary_data_is_the_worst);
        tcase_add_test(tc, test_summary_failed_beats_everything);
        tcase_add_test(tc, test_summary_one_encrypted_data_volume);
        tcase_add_test(tc, test_summary_os_and_resource);
        tcase_add_test(tc, test_state_names);
        tcase_add_loop_test(tc, test_backup_state, 0, ELEMENTSOF(backup_rows));
        tcase_add_test(tc, test_backup_state_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return ade_test_run(view_suite());
}
