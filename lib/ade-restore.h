/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ade-blob.h"
#include "ade-cloud-error.h"
#include "ade-luks.h"
#include "ade-resolver.h"

/* Header restore (docs/architecture.md §11): a generation of a volume's LUKS2 header, uploaded to
 * Blob Storage in client-side encryption v2 (docs/protocols.md §9), back onto the device. Shared by
 * the rescue tool ade-restore-header and aded. Nothing is written unless every check passed:
 *  - the blob decrypts (the CEK unwrapped by the KEK its KeyId names, through the resolver, so only
 *    a vault the resolver trusts gets a token; every region's tag verifies) to exactly the size the
 *    LUKS2 header in it states;
 *  - the header is the volume's: its UUID is the blob's AdeVolume and, when the device still has a
 *    readable header, the device's UUID;
 *  - its reencryption is finished (a header taken mid-reencryption would re-encrypt ciphertext);
 *  - the key file its token names, fetched from Key Vault, opens one of its keyslots.
 * Then what the device holds now is kept in header-dir, the header is written (attached:
 * crypt_header_restore(); detached: the header file replaced atomically) and the keyslot opened
 * again from the device to prove it. */

/* The metadata that marks a generation obsolete (see ade_restore_mark_obsolete()). */
#define ADE_RESTORE_OBSOLETE "AdeObsolete"

typedef struct AdeRestoreGeneration {
        char *name;          /* the blob's name */
        unsigned generation; /* AdeGeneration */
        char *volume;        /* AdeVolume: the LUKS UUID */
        char *device_id;     /* AdeDeviceId, NULL when absent */
        uint64_t size;       /* the blob's size */
        char *obsolete;      /* AdeObsolete: when its volume was decrypted (RFC 3339), NULL when it was not */
        char **metadata;     /* all its metadata, name/value pairs */
} AdeRestoreGeneration;

void ade_restore_generations_free(AdeRestoreGeneration *g, size_t n);

/* Whether @s is a generation number (AdeGeneration, --generation): 1 to 999999 in decimal, no sign,
 * no leading zero; its value in *@ret. */
bool ade_restore_parse_generation(const char *s, unsigned *ret);

/* The generations in the container of the volume @uuid (its AdeVolume) or, with @uuid NULL, of the
 * device whose stable id is @device_id (its AdeDeviceId: a device whose header is gone has no UUID
 * to look for), oldest first. Blobs without a valid AdeVolume and AdeGeneration are not ade's and
 * are left out. An empty list is 0 and n 0. Errors of ade_blob_list(). */
int ade_restore_list(AdeBlobClient *blob, const char *uuid, const char *device_id, AdeRestoreGeneration **ret,
        size_t *ret_n, AdeCloudError *ret_error);

/* A volume that was decrypted (a disable finished) holds plaintext where its header was: restoring
 * one of its generations would put a LUKS2 header over its filesystem. So each of the generations of
 * the volume @uuid gets the metadata AdeObsolete = @when (RFC 3339), its other metadata kept;
 * ade_restore_header() refuses them. Those marked already are left alone. The number marked now in
 * *@ret_marked (optional); the errors of ade_blob_list() and ade_blob_set_metadata() (then some may
 * be marked: calling it again marks the rest). */
int ade_restore_mark_obsolete(
        AdeBlobClient *blob, const char *uuid, const char *when, unsigned *ret_marked, AdeCloudError *ret_error);

typedef struct AdeRestoreRequest {
        const char *device;     /* the block device */
        const char *header;     /* its detached header file (may be missing), NULL when attached */
        const char *device_id;  /* its stable id (ade_volume_stable_id()) */
        const char *header_dir; /* where the copy of what is on the device now goes */
        unsigned generation;    /* 0: the newest */
        bool dry_run;           /* every check, nothing written */
} AdeRestoreRequest;

typedef struct AdeRestoreResult {
        char *blob; /* the blob restored (or that would be) */
        unsigned generation;
        char uuid[ADE_LUKS_UUID_SIZE];
        char *kept; /* the copy of what the device held, NULL on a dry run or when there was nothing */
} AdeRestoreResult;

void ade_restore_result_done(AdeRestoreResult *r);

/* Restores a generation of @req->device's header from @blob, with the KEK reached through @resolver
 * (see above). On failure *ret_error (optional) says what failed and what to do, and *@ret_cloud
 * holds Storage's or Key Vault's error. Returns 0 and fills @ret, or:
 *  -ENOENT   no generation (or not generation @req->generation) for this device;
 *  -EBADMSG  the blob is tampered with or cut, or holds no LUKS2 header;
 *  -EXDEV    the header is another volume's (UUIDs differ);
 *  -EBUSY    the header's reencryption is not finished;
 *  -ESTALE   the generation is obsolete: its volume was decrypted (ade_restore_mark_obsolete());
 *  -ENOKEY   the escrowed key opens none of its keyslots;
 *  -EIO      written, but the key does not open the device now (the copy is named in *ret_error);
 * the errors of the Storage, Key Vault and libcryptsetup calls as they are. Nothing is written on any
 * error but the last. */
int ade_restore_header(AdeBlobClient *blob, AdeResolver *resolver, const AdeRestoreRequest *req, AdeRestoreResult *ret,
        AdeCloudError *ret_cloud, char **ret_error);
