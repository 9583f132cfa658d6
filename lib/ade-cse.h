/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ade-cloud-error.h"
#include "ade-keyvault.h"
#include "ade-secret.h"

/* Azure Storage client-side (envelope) encryption, protocol 2.0, byte for byte as the official SDKs
 * write and read it (docs/protocols.md §9), so that a blob ade writes opens with Azure's SDKs and one
 * they write opens with ade.
 *
 * Body: the plaintext cut in regions of 4 MiB (the last one shorter, none for an empty plaintext),
 * each stored as nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes), no associated data.
 * Region i's nonce is i as a 12-byte big-endian number. One random 32-byte content key (CEK) per blob.
 * Key: the key-encryption key (KEK, in Key Vault) wraps "2.0" padded with NULs to 8 bytes followed by
 * the CEK; unwrapping checks that prefix, so a blob cannot be passed off as another protocol version.
 * Metadata: the blob's "encryptiondata" metadata value, a JSON object (WrappedContentKey,
 * EncryptionAgent, EncryptedRegionInfo, KeyWrappingMetadata, EncryptionMode).
 *
 * Reading is stricter than the SDKs, without refusing anything they write: every region's nonce must
 * be its index (regions moved, dropped from the middle or repeated are refused; the SDKs would
 * decrypt them), every tag must verify, and the body must be a whole number of regions with only the
 * last one shorter. The format does not bind the number of regions: a body cut exactly at a region
 * boundary decrypts to a shorter plaintext. Callers that know the size (a LUKS2 header states its
 * own, in its first region) pass it and get -EBADMSG otherwise. */

#define ADE_CSE_PROTOCOL "2.0"
#define ADE_CSE_ENCRYPTION_ALGORITHM "AES_GCM_256"
#define ADE_CSE_ENCRYPTION_MODE "FullBlob"
#define ADE_CSE_METADATA_NAME "encryptiondata"
#define ADE_CSE_REGION_SIZE (4U * 1024U * 1024U)
#define ADE_CSE_NONCE_SIZE 12U
#define ADE_CSE_TAG_SIZE 16U
#define ADE_CSE_CEK_SIZE 32U
#define ADE_CSE_WRAP_PREFIX_SIZE 8U
#define ADE_CSE_SIZE_UNKNOWN SIZE_MAX

/* Wraps @plain with the KEK @key_id using @alg; returns the wrapped bytes as base64 or base64url text
 * (Key Vault's answer as it comes). */
typedef int (*AdeCseWrapFunc)(void *userdata, const char *key_id, const char *alg, const AdeSecret *plain,
        char **ret_wrapped, AdeCloudError *ret_error);
/* The key resolver and unwrap in one: finds the KEK named @key_id (the metadata's KeyId, which an
 * attacker may have edited: refuse a KEK you do not trust) and unwraps @wrapped (standard base64). */
typedef int (*AdeCseUnwrapFunc)(void *userdata, const char *key_id, const char *alg, const char *wrapped,
        AdeSecret **ret_plain, AdeCloudError *ret_error);

typedef struct AdeCseKek {
        const char *key_id;    /* the KEK's versioned URL, stored as KeyId */
        const char *algorithm; /* "RSA-OAEP" or "RSA-OAEP-256" */
        AdeCseWrapFunc wrap;
        void *userdata;
} AdeCseKek;

/* The parsed "encryptiondata" of a protocol 2.0 blob. */
typedef struct AdeCseMetadata {
        char *key_id;
        char *encrypted_key; /* standard base64 of the wrapped CEK */
        char *algorithm;
        char *encryption_library; /* NULL when absent */
        uint64_t region_size;     /* EncryptedRegionInfo.DataLength */
} AdeCseMetadata;

AdeCseMetadata *ade_cse_metadata_free(AdeCseMetadata *m);
static inline void ade_cse_metadata_freep(AdeCseMetadata **m) {
        ade_cse_metadata_free(*m);
}

/* The "encryptiondata" JSON for a blob whose CEK @wrapped (base64 or base64url, as Key Vault returns
 * it) was wrapped by @key_id with @alg: written with the fields in the SDKs' order, EncryptedKey in
 * standard base64, region size 4 MiB, EncryptionLibrary "ade <version>". */
int ade_cse_metadata_build(const char *key_id, const char *alg, const char *wrapped, char **ret);

/* Reads an "encryptiondata" value. Accepts the field names older SDK releases wrote
 * (EncryptedRegionDataLength or EncryptionRegionLength for DataLength, a TagLength, lengths as
 * strings).
 * -EOPNOTSUPP for another protocol (1.0 is AES-CBC) or encryption algorithm; -EBADMSG when it is not
 * such a JSON object, a field is missing, the nonce or tag length is not 12 or 16, the region size
 * is 0 or over 64 MiB, or EncryptionMode is present and not "FullBlob". */
int ade_cse_metadata_parse(const char *json, AdeCseMetadata **ret);

/* "2.0\0\0\0\0\0" ‖ @cek: what the KEK wraps. */
int ade_cse_wrap_input(const AdeSecret *cek, AdeSecret **ret);
/* The CEK back from what the KEK unwrapped: -EBADMSG unless it is the 8-byte prefix and 32 bytes. */
int ade_cse_cek_from_unwrapped(const AdeSecret *unwrapped, AdeSecret **ret_cek);

/* Body size for a plaintext of @size bytes in regions of @region_size: @size plus 28 per region. */
uint64_t ade_cse_body_size(uint64_t size, uint64_t region_size);

/* Encrypts @size bytes into regions of ADE_CSE_REGION_SIZE with @cek (32 bytes). -ENOMEM, -EIO
 * (OpenSSL). */
int ade_cse_seal(const AdeSecret *cek, const void *plain, size_t size, void **ret_body, size_t *ret_size);

/* Decrypts a body of regions of @region_size plaintext bytes (see the rules above). -EBADMSG for a
 * body that is not exactly what ade_cse_seal() makes of some plaintext with @cek: a region's tag does
 * not verify, a nonce is not its region's index, a short region that is not the last one. */
int ade_cse_open(
        const AdeSecret *cek, uint64_t region_size, const void *body, size_t size, void **ret_plain, size_t *ret_size);

/* The whole writer: a new random CEK, the body, the CEK wrapped by @kek, and the metadata value. The
 * CEK never leaves a secret. Errors of @kek->wrap are returned as they are. */
int ade_cse_encrypt(const void *plain, size_t size, const AdeCseKek *kek, void **ret_body, size_t *ret_size,
        char **ret_encryption_data, AdeCloudError *ret_error);

/* The whole reader: parses @encryption_data, unwraps the CEK through @unwrap, checks the version
 * prefix, opens the body, and with @expected_size (ADE_CSE_SIZE_UNKNOWN: any) checks its size.
 * -EBADMSG for anything tampered with; @unwrap's errors as they are (a KEK that refuses an edited
 * EncryptedKey says so there). */
int ade_cse_decrypt(const void *body, size_t size, const char *encryption_data, AdeCseUnwrapFunc unwrap, void *userdata,
        size_t expected_size, void **ret_plain, size_t *ret_size, AdeCloudError *ret_error);

/* Adapters for a KEK in Key Vault: @userdata is the AdeKeyVault that holds it (its same-origin rule
 * refuses a KeyId on another host). */
int ade_cse_keyvault_wrap(void *userdata, const char *key_id, const char *alg, const AdeSecret *plain,
        char **ret_wrapped, AdeCloudError *ret_error);
int ade_cse_keyvault_unwrap(void *userdata, const char *key_id, const char *alg, const char *wrapped,
        AdeSecret **ret_plain, AdeCloudError *ret_error);
