/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-cloud-error.h"
#include "ade-keyvault.h"
#include "ade-secret.h"

/* ADE's escrow format (docs/architecture.md §3, docs/protocols.md §4.2), both ways. A volume's key file (see
 * ade-keyfile.h) is stored in Key Vault as a secret named by a new GUID:
 *   - without a KEK: value = standard base64 of the key file bytes, contentType "BEK";
 *   - with a KEK:    value = wrapkey(key file bytes) as Key Vault returns it (base64url),
 *                    contentType "Wrapped BEK";
 *   tags DiskEncryptionKeyFileName, DiskEncryptionKeyEncryptionAlgorithm,
 *   DiskEncryptionKeyEncryptionKeyURL (KEK only), MachineName (when the host name is [A-Za-z0-9_-]+).
 * Microsoft's offline-unlock procedure (§4.3) recovers the key file from such a secret. */

#define ADE_CONTENT_TYPE_BEK "BEK"
#define ADE_CONTENT_TYPE_WRAPPED_BEK "Wrapped BEK"
#define ADE_TAG_KEY_FILE_NAME "DiskEncryptionKeyFileName"
#define ADE_TAG_ALGORITHM "DiskEncryptionKeyEncryptionAlgorithm"
#define ADE_TAG_KEK_URL "DiskEncryptionKeyEncryptionKeyURL"
#define ADE_TAG_MACHINE_NAME "MachineName"
#define ADE_KEK_ALGORITHM_DEFAULT "RSA-OAEP"

typedef struct AdeEnvelopeParams {
        const char *key_file_name; /* NULL: "LinuxPassPhraseFileName" (the OS volume's) */
        const char *kek_url;       /* versioned KEK URL, or NULL for no KEK */
        const char *kek_algorithm; /* NULL: RSA-OAEP */
        const char *machine_name;  /* NULL: this host's name, when it qualifies */
} AdeEnvelopeParams;

/* "LinuxPassPhraseFileName" for the OS volume (@lun < 0), else "LinuxPassPhraseFileName_<c>_<lun>". */
int ade_envelope_key_file_name(int controller, int lun, char **ret);

/* Builds what goes into the secret, without talking to anyone: @wrapped is wrapkey's answer (NULL
 * without a KEK). Returns the value (a secret), the content type (static) and the tags
 * (NULL-terminated name/value pairs). -EINVAL when @key_file is not a key file, or @wrapped and
 * @p->kek_url disagree. */
int ade_envelope_build_secret(const AdeSecret *key_file, const char *wrapped, const AdeEnvelopeParams *p,
        AdeSecret **ret_value, const char **ret_content_type, char ***ret_tags);

/* Escrows @key_file: wraps it with the KEK through @kek_kv (NULL: @kv) when @p->kek_url is set, writes
 * the secret to @kv under a new GUID, then reads it back and compares, so that nothing is written to
 * a disk before the key is known to be in the vault (-EIO when the read-back differs). Returns the
 * versioned secret URL and, with a KEK, the wrapped value (for the LUKS2 token's Passphrase). */
int ade_envelope_escrow(AdeKeyVault *kv, AdeKeyVault *kek_kv, const AdeSecret *key_file, const AdeEnvelopeParams *p,
        char **ret_secret_url, char **ret_wrapped, AdeCloudError *ret_error);

/* The key resolver: the key file back. With @wrapped (a LUKS2 token's Passphrase) and @kek_url it is
 * one unwrapkey call; otherwise the secret at @secret_url is read, and unwrapped with @kek_url (or its
 * DiskEncryptionKeyEncryptionKeyURL tag) and @alg (or its algorithm tag, or RSA-OAEP), or decoded
 * from base64 when it has no KEK. -EBADMSG when the result is not a key file, or a "Wrapped BEK"
 * names no KEK. KEK calls go through @kek_kv (NULL: @kv). */
int ade_envelope_resolve(AdeKeyVault *kv, AdeKeyVault *kek_kv, const char *secret_url, const char *kek_url,
        const char *alg, const char *wrapped, AdeSecret **ret_key_file, AdeCloudError *ret_error);
