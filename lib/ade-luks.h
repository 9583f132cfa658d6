/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-secret.h"
#include "ade-util.h"
#include "ade-volume.h"

/* The volume engine: LUKS2 on libcryptsetup. Encrypts a plaintext volume in place (datashift with
 * the header in front, or a detached header), or formats it anew; resumes after a clean stop or a
 * crash; decrypts; rotates the key file; reads the Azure_Disk_Encryption token back.
 *
 * Every entry point is idempotent: calling it again after an interruption (a cancel, a kill -9,
 * a power cut) continues from what the device says, never from what memory says.
 *
 * Safety contract:
 *  - no key file goes onto a device (encrypt, prepare_header, rotate, update_token) unless the
 *    caller passes a token with a versioned SecretURL and escrow_confirmed set (the daemon escrows
 *    the key file in Key Vault first); decryption, which removes the key, needs neither;
 *  - a refusal or a failure before the shrink leaves the device byte-for-byte unchanged; a failure
 *    after the shrink and before the header exists grows the filesystem back;
 *  - before any change to an existing header, the header is backed up to header_dir (0600, fsynced);
 *  - the key file is only ever handed to libcryptsetup; it never reaches a log.
 *
 * Not thread-safe per device: one job per device at a time (libcryptsetup's per-device reencrypt
 * lock under /run/cryptsetup makes a second job fail with -EBUSY). */

/* The keyslot for ADE's key file: PBKDF2-SHA512, 1000 iterations, no benchmark (docs/architecture.md §3). */
#define ADE_LUKS_CIPHER "aes"
#define ADE_LUKS_CIPHER_MODE "xts-plain64"
#define ADE_LUKS_KEY_BYTES 64U
#define ADE_LUKS_PBKDF_ITERATIONS 1000U
/* Space taken from the end of an ext2/3/4 filesystem for the header in front (datashift); half of it
 * holds the LUKS2 header, half is the moving hotzone. */
#define ADE_LUKS_SHRINK_SIZE (32ULL * 1024ULL * 1024ULL)
/* The hotzone of an online run when AdeLuksOptions.hotzone_size is 0: the longest the mounted
 * filesystem waits on a suspended mapping is one hotzone's reencryption. */
#define ADE_LUKS_ONLINE_HOTZONE (16ULL * 1024ULL * 1024ULL)
#define ADE_LUKS_TOKEN_TYPE "Azure_Disk_Encryption"
#define ADE_LUKS_TOKEN_VERSION "1.0"
/* Where temporary headers live while a datashift encryption is being initialised. */
#define ADE_LUKS_RUN_DIR_DEFAULT "/run/ade"

/* docs/architecture.md §3: the token that makes a volume describe itself. Strings are NULL when absent. Only the
 * wrapped key file (KEK only) is stored; the clear key file never is. */
typedef struct AdeLuksToken {
        char *version;               /* "1.0" */
        char *key_vault_url;         /* KeyVaultURL */
        char *key_vault_resource_id; /* KeyVaultResourceId */
        char *secret_url;            /* SecretURL, versioned: https://v.vault.azure.net/secrets/<guid>/<version> */
        char *kek_url;               /* KeyEncryptionKeyURL, versioned, or NULL */
        char *kek_vault_resource_id; /* KekVaultResourceId, or NULL */
        char *kek_algorithm;         /* KeyEncryptionAlgorithm ("RSA-OAEP", ...), or NULL */
        char *volume_type;           /* VolumeType: "OS" or "Data" */
        char *passphrase;            /* Passphrase: the key file wrapped by the KEK (base64url); KEK only */
        char *device_id;             /* DeviceId: stable device identifier; set for detached headers */
        int keyslot;                 /* filled when read back: the keyslot the token is bound to */
} AdeLuksToken;

AdeLuksToken *ade_luks_token_free(AdeLuksToken *t);
static inline void ade_luks_token_freep(AdeLuksToken **t) {
        ade_luks_token_free(*t);
}
/* Deep copy. */
int ade_luks_token_copy(const AdeLuksToken *t, AdeLuksToken **ret);
/* JSON text of the token as stored in LUKS2 (type, keyslots and the fields above), and back.
 * from_json returns -EBADMSG for a token that is not ours or lacks version / SecretURL. */
int ade_luks_token_to_json(const AdeLuksToken *t, int keyslot, char **ret);
int ade_luks_token_from_json(const char *json, AdeLuksToken **ret);
/* True when @url has the shape of a versioned Key Vault secret URL (https, /secrets/<name>/<version>). */
bool ade_secret_url_is_versioned(const char *url);

typedef enum AdeLuksMode {
        ADE_LUKS_MODE_IN_PLACE,   /* data kept */
        ADE_LUKS_MODE_FORMAT_ALL, /* data destroyed, filesystem made anew */
        _ADE_LUKS_MODE_MAX,
        _ADE_LUKS_MODE_INVALID = -EINVAL,
} AdeLuksMode;

typedef enum AdeLuksHeader {
        ADE_LUKS_HEADER_ATTACHED, /* at the start of the device; data shifted by 16 MiB */
        ADE_LUKS_HEADER_DETACHED, /* a file in header_dir; no data moved */
        _ADE_LUKS_HEADER_MAX,
        _ADE_LUKS_HEADER_INVALID = -EINVAL,
} AdeLuksHeader;

/* The canonical text form of a LUKS UUID and its buffer size. */
#define ADE_LUKS_UUID_SIZE 37

/* True for a UUID of the canonical form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits). Anything
 * else read from a header (libcryptsetup loads a UUID of any text, "../" included) is never made
 * into a file or mapper name. */
bool ade_luks_uuid_is_valid(const char *uuid);
/* A new random (version 4) UUID in canonical form. 0 or a negative errno. */
int ade_luks_uuid_new(char ret[static ADE_LUKS_UUID_SIZE]);
/* True when @name can be one path component: not empty, at most NAME_MAX bytes, no "/" nor control
 * character, not "." or "..". */
bool ade_luks_name_is_safe(const char *name);
/* "@dir/@uuid@suffix", after checking @uuid (ade_luks_uuid_is_valid(): -EBADMSG otherwise). */
int ade_luks_uuid_path(const char *dir, const char *uuid, const char *suffix, char **ret);
/* "@dir/@uuid.<unix time>@ext", with "-N" after the time when that name is taken: the name of a new
 * copy of a volume's header in header-dir. */
int ade_luks_uuid_path_new(const char *dir, const char *uuid, const char *ext, char **ret);

/* "InPlace"/"FormatAll" and "Attached"/"Detached", as on the wire. */
const char *ade_luks_mode_to_string(AdeLuksMode m);
const char *ade_luks_header_to_string(AdeLuksHeader h);

/* What an encryption would do. Read-only to compute (e2fsck -fn, resize2fs -P). */
typedef struct AdeLuksPlan {
        AdeLuksMode mode;
        AdeLuksHeader header;
        bool shrink;          /* the filesystem loses ADE_LUKS_SHRINK_SIZE first */
        bool online;          /* an active mapper name was given: reencrypt while in use */
        uint64_t device_size; /* bytes */
        uint64_t data_size;   /* bytes that will be encrypted (device size less the header, if in front) */
        uint64_t fs_min_size; /* bytes, from resize2fs -P; 0 when not an ext filesystem */
        char *header_path;    /* detached: the header file in header_dir; NULL when attached */
        char *reason;         /* why this mode and header, a sentence for a person */
} AdeLuksPlan;

void ade_luks_plan_done(AdeLuksPlan *p); /* frees the strings; accepts a zeroed plan */

/* A progress callback: @done and @total in bytes of the current operation. Returning non-zero
 * stops cleanly at the next hotzone boundary; the operation then returns -ECANCELED and the device
 * is left in a resumable state. */
typedef int (*AdeLuksProgress)(uint64_t done, uint64_t total, void *userdata);

/* Points inside multi-step operations, reported to a hook so that tests can stop there (a hook
 * that returns non-zero makes the operation return that error at once; one that calls _exit()
 * simulates a crash). Production callers pass no hook. */
typedef enum AdeLuksStep {
        ADE_LUKS_STEP_HEADER_BACKED_UP,        /* any operation: the header backup is on disk */
        ADE_LUKS_STEP_PLANNED,                 /* encrypt: read-only checks done, nothing written yet */
        ADE_LUKS_STEP_SHRUNK,                  /* encrypt: the filesystem is smaller, no header yet */
        ADE_LUKS_STEP_HEADER_WRITTEN,          /* encrypt: header + token + reencrypt metadata written */
        ADE_LUKS_STEP_ACTIVATED,               /* encrypt online: active as /dev/mapper/<active_name> */
        ADE_LUKS_STEP_ROTATE_KEYSLOT_ADDED,    /* rotate: the new key file opens a new keyslot */
        ADE_LUKS_STEP_ROTATE_TOKEN_SWAPPED,    /* rotate: the token names the new secret and keyslot */
        ADE_LUKS_STEP_ROTATE_OLD_REMOVED,      /* rotate: the old keyslot is gone */
        ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED, /* decrypt (attached): the exported header, its decryption
                                                * initialised, is in header_dir under its final name;
                                                * the device still carries its own header */
        ADE_LUKS_STEP_DECRYPT_DEVICE_WIPED,    /* decrypt (attached): the device's header is erased; the
                                                * exported one alone opens the volume */
        _ADE_LUKS_STEP_MAX,
        _ADE_LUKS_STEP_INVALID = -EINVAL,
} AdeLuksStep;

const char *ade_luks_step_to_string(AdeLuksStep s);
AdeLuksStep ade_luks_step_from_string(const char *s);

typedef int (*AdeLuksHook)(AdeLuksStep step, void *userdata);

typedef struct AdeLuksOptions {
        const char *header_dir;           /* required for anything that writes: backups, detached headers */
        const char *uuid;                 /* encrypt: the LUKS UUID the new header takes (canonical form,
                                           * ade_luks_uuid_new()), so that the caller can record it before
                                           * the header exists; NULL: libcryptsetup picks one */
        AdeLuksPlan *planned;             /* encrypt: when set, the plan taken is copied here before
                                           * anything is written, then ADE_LUKS_STEP_PLANNED is reported:
                                           * the hook can record a detached header's path before the file
                                           * exists. The caller frees it (ade_luks_plan_done()). */
        int (*cancelled)(void *userdata); /* non-zero: stop waiting (aded's wait for an earlier worker);
                                           * NULL: never; gets @userdata */
        const char *run_dir;              /* temporary header folder; NULL for ADE_LUKS_RUN_DIR_DEFAULT */
        const char *prepared_header;      /* encrypt: a header file from ade_luks_prepare_header() for this
                                           * volume, used (and removed) when the header goes in front;
                                           * left alone when the plan is a detached header */
        const char *active_name;          /* online: the dm name the volume is (or gets) active under;
                                           * NULL offline. Needs device-mapper. The flow (ADE's): unmount,
                                           * encrypt with active_name and init_only (shrink, header,
                                           * activation), mount /dev/mapper/<active_name>, then
                                           * ade_luks_resume() with the same active_name in the background. */
        bool init_only;                   /* encrypt: stop once the header is written (and the volume active,
                                           * online), before any data is encrypted; state is then CLEAN */
        bool escrow_confirmed;            /* the token's SecretURL exists in Key Vault; without it nothing is written */
        bool format_all;                  /* destroy the data and make the filesystem anew ... */
        bool format_all_confirmed;        /* ... only with this explicit confirmation too */
        bool force_detached;              /* take the detached path even when the filesystem could shrink */
        bool running_root;                /* encrypt: @v is the running system's root, mounted and never
                                           * unmounted (docs/architecture.md §9): only with init_only and
                                           * without active_name. The plan is a detached header in
                                           * header_dir (named "<uuid>.header" when @uuid is given)
                                           * and nothing is written to the device; the next
                                           * boot's initramfs opens it as "ade-root" and ade_luks_resume()
                                           * continues online. A header already initialised for it is
                                           * kept as it is (never resumed here: that would write under
                                           * the mounted filesystem). */
        uint64_t hotzone_size;            /* bytes; 0: offline, libcryptsetup's default, which for checksum
                                           * resilience is already as large as the keyslot area allows (about
                                           * 128 MiB here; tests/bench measured no gain from 64 or 256 MiB);
                                           * online (active_name), ADE_LUKS_ONLINE_HOTZONE. Datashift: fixed
                                           * by the 16 MiB shift. */
        const char *resilience;           /* encryption with a detached header, and decryption: "checksum"
                                           * (default) or "journal" (an attached header's decryption
                                           * takes their datashift- variants); "none" is refused
                                           * (-EINVAL): a crash must be recoverable */
        AdeLuksProgress progress;
        void *userdata;
        AdeLuksHook hook;
        void *hook_userdata;
} AdeLuksOptions;

/* Decides how @v would be encrypted, read-only. Returns 0 and a plan, or -EINVAL for a volume that
 * is not eligible (its reason is in v->reason), without o->header_dir or with a resilience that is
 * not crash-safe, -EPERM for format-all without confirmation, -EBUSY
 * for a mounted volume (ade never unmounts behind the operator's back; online, the caller unmounts
 * first and passes active_name),
 * or the error of e2fsck -fn (-EUCLEAN: the filesystem needs repair; *ret_error has its output). */
int ade_luks_plan(const AdeVolume *v, const AdeLuksOptions *o, AdeLuksPlan *ret, char **ret_error);

/* Builds, in a temporary file under o->run_dir, the LUKS2 header that an in-place encryption with
 * the header in front puts on @v: keyslot for @keyfile, @token bound to it. It writes to no device,
 * so an online encryption makes it while the volume is still mounted and passes it as
 * o->prepared_header once the volume is unmounted: its random-filled keyslot area and keyslot are
 * then no longer part of the downtime. Same refusals as ade_luks_encrypt() (-EPERM without a
 * confirmed escrow). The caller removes *ret_path if the encryption does not use it. */
int ade_luks_prepare_header(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile,
        const AdeLuksOptions *o, char **ret_path);

/* Encrypts @v with @keyfile (ADE's 172-character key file) and binds @token to its keyslot.
 * Plans as ade_luks_plan() does but without its read-only e2fsck (an ext filesystem that is shrunk
 * gets "e2fsck -f -p" right before resize2fs; a detached header moves no data), then: header-dir
 * checks, (check and shrink), header with keyslot and token,
 * reencryption with progress. If @v already carries our reencryption (after a stop or a crash), it
 * resumes instead; -EBUSY while a decryption of it is unfinished, -EEXIST when it is LUKS2 already
 * but not ours, -EINVAL without o->header_dir. Returns 0 when the whole volume is
 * encrypted (or, with init_only, once the header is in place), -ECANCELED when the progress
 * callback stopped it (resumable), -EPERM when the escrow is not confirmed or the SecretURL is not
 * versioned, or another negative errno; *ret_error (optional) then gets the output of a failed
 * e2fsck/resize2fs. The plan taken is returned in *ret_plan when given (on success and on
 * -ECANCELED): the daemon records header_path in its state. -EMFILE, before anything is written,
 * when fewer than ADE_FD_HEADROOM descriptors are free, and for a failure on the way while they are
 * (libcryptsetup reports its failed opens as EINVAL or EIO: ade-fd.h); resume once they are back.
 * ade_luks_resume() and ade_luks_decrypt() do the same. */
int ade_luks_encrypt(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o,
        AdeLuksPlan *ret_plan, char **ret_error);

/* Continues an interrupted encryption or decryption of @device (header file @header for a detached
 * or exported header, or NULL: then the device's own header, or else the header in
 * o->header_dir whose token names @device) with @keyfile. A CRASH state is recovered first, on its
 * own. Online (o->active_name), the volume must be active under that name already (ade_luks_open),
 * except after a crash, where activation itself recovers. Returns 0 when done (also when there
 * was nothing to resume), -ECANCELED when stopped again, -ENOKEY when @keyfile opens no keyslot,
 * -EUCLEAN for reencryption metadata that cannot be resumed. A finished decryption removes its
 * header file. */
int ade_luks_resume(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o);

/* Decrypts @device (its header attached, or in @header) back to plaintext, offline or online
 * (o->active_name). An attached header is first exported to header_dir/<uuid>.decrypt-header
 * (0600, fsynced): from then on that file is the only way to open the volume until decryption
 * ends; its token names @device, so resume (or decrypt again) finds it with @header NULL, and
 * *ret_header (optional) returns its path for the state file. On success the header file (the
 * exported one, or the detached one given) is removed: the volume is plaintext again.
 * Returns 0, -ECANCELED, -ENOKEY when @keyfile opens no keyslot, -ENOENT when there is no LUKS2
 * header, -EBUSY while an encryption of it is unfinished (an unfinished decryption is resumed), or
 * another negative errno. */
int ade_luks_decrypt(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header);

/* Replaces the key file: @new_keyfile must already be escrowed (@new_token->SecretURL confirmed
 * with o->escrow_confirmed). Adds a keyslot for the new key file, swaps the token in one metadata
 * write, then removes the old keyslot. A crash at any step leaves a volume that opens with the old
 * key file or the new one; calling rotate again with the same arguments finishes the job. Refused
 * (-EBUSY) while a reencryption is in progress. -ENOKEY when neither key file opens a keyslot. */
int ade_luks_rotate(const char *device, const char *header, const AdeSecret *old_keyfile, const AdeSecret *new_keyfile,
        const AdeLuksToken *new_token, const AdeLuksOptions *o);

/* Replaces the token alone (a new KEK re-wrapped the same key file into a new secret). The token
 * stays bound to the keyslot @keyfile opens (-ENOKEY when it opens none). Like ade_luks_rotate(),
 * -EPERM without a confirmed escrow, and the header is backed up first. */
int ade_luks_update_token(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksToken *token,
        const AdeLuksOptions *o);

typedef enum AdeLuksState {
        ADE_LUKS_STATE_NONE,     /* no LUKS header: plaintext (or not ours to know) */
        ADE_LUKS_STATE_FINISHED, /* LUKS2, no reencryption in progress: fully encrypted */
        ADE_LUKS_STATE_CLEAN,    /* a reencryption stopped cleanly; resume continues it */
        ADE_LUKS_STATE_CRASH,    /* interrupted mid-hotzone; resume recovers it first */
        ADE_LUKS_STATE_INVALID,  /* metadata libcryptsetup refuses to handle */
        _ADE_LUKS_STATE_MAX,
        _ADE_LUKS_STATE_INVALID = -EINVAL,
} AdeLuksState;

/* "none", "finished", "clean", "crash", "invalid". */
const char *ade_luks_state_to_string(AdeLuksState s);

typedef enum AdeLuksOperation {
        ADE_LUKS_OP_NONE,
        ADE_LUKS_OP_ENCRYPT,
        ADE_LUKS_OP_DECRYPT,
        ADE_LUKS_OP_REENCRYPT,
        _ADE_LUKS_OP_MAX,
        _ADE_LUKS_OP_INVALID = -EINVAL,
} AdeLuksOperation;

typedef struct AdeLuksStatus {
        AdeLuksState state;
        AdeLuksOperation operation; /* of the reencryption in progress; NONE when none */
        AdeLuksHeader header;       /* attached when the device itself carries the header */
        bool has_token;             /* an Azure_Disk_Encryption token is present */
        uint64_t data_size;         /* bytes of data behind the header (0 when unknown) */
        char uuid[40];              /* LUKS UUID, empty when NONE */
} AdeLuksStatus;

/* Reads the state of @device (with @header, or NULL). Needs no key and writes nothing; a device
 * without a LUKS header is ADE_LUKS_STATE_NONE, not an error. */
int ade_luks_status(const char *device, const char *header, AdeLuksStatus *ret);

/* Reads the Azure_Disk_Encryption token of @device (or of @header). -ENOENT when there is none.
 * For the key resolver: no key needed. */
int ade_luks_read_token(const char *device, const char *header, AdeLuksToken **ret);

/* Writes a header backup of @device (or @header) to header_dir/<uuid>.<unix time>.backup ("-N"
 * before ".backup" when that name is taken), 0600, fsynced with its folder; -EINVAL without
 * @header_dir. Returns the path in *ret_path (optional). Rotate and update_token take
 * one themselves before they change anything and, once they succeed, one of the header as it then
 * is, and remove that volume's older backups: the one from before holds the keyslot or token they
 * revoked (docs/architecture.md §3). */
int ade_luks_backup_header(const char *device, const char *header, const char *header_dir, char **ret_path);

/* Finds the detached header in @header_dir whose token's DeviceId is @device_id (or whose token
 * DeviceId resolves to the same block device as @device_id). -ENOENT when none. */
int ade_luks_find_header(const char *header_dir, const char *device_id, char **ret_path);

/* Opens (activates) @device as /dev/mapper/@name with @keyfile. An interrupted reencryption is
 * recovered by libcryptsetup on activation. Needs device-mapper: -ENODEV without it; -ENOKEY when
 * @keyfile opens no keyslot. */
int ade_luks_open(const char *device, const char *header, const char *name, const AdeSecret *keyfile);
/* Deactivates /dev/mapper/@name. */
int ade_luks_close(const char *name);

/* Returns 1 when @keyfile opens a keyslot of @device, 0 when it opens none, or a negative errno.
 * Writes nothing (no activation). */
int ade_luks_test_key(const char *device, const char *header, const AdeSecret *keyfile);

/* Header restore (docs/architecture.md §11). The size crypt_header_backup() writes for the LUKS2
 * header in the backup file @file, loaded as the header of @device (both metadata copies and the
 * keyslots area, padded to a page): a downloaded backup of another size was cut or padded.
 * -EBADMSG when @file holds no LUKS2 header libcryptsetup accepts. */
int ade_luks_backup_file_size(const char *device, const char *file, uint64_t *ret);
/* Writes the LUKS2 header backup @file onto @device (crypt_header_restore(): the metadata and the
 * keyslots area at the start of the device, nothing of the data). The caller has checked @file. */
int ade_luks_restore_header(const char *device, const char *file);

/* Adoption (docs/architecture.md §12). The LUKS version of @device (with @header, or NULL): 1 or 2,
 * 0 when it has no LUKS header, or a negative errno when it cannot be read. */
int ade_luks_version(const char *device, const char *header);

/* ade_luks_test_key() for a LUKS1 or LUKS2 header (ADE made both): 1 when @keyfile opens a keyslot,
 * 0 when it opens none, a negative errno (-EINVAL: no LUKS header). Writes nothing. */
int ade_luks_test_key_any(const char *device, const char *header, const AdeSecret *keyfile);
