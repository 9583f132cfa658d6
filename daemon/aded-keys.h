/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-cloud-error.h"
#include "ade-luks.h"
#include "ade-secret.h"
#include "ade-volume.h"
#include "aded-params.h"

typedef struct Manager Manager;

/* Keys (aded-keys.c): the key file's way into and out of Key Vault, through the manager's resolver
 * (ade-resolver.h: one credential, one share, one Key Vault client per vault for the whole daemon).
 * Workers may call these concurrently. On a service failure *ret_error (optional) gets what the
 * service said. */

/* The secret's DiskEncryptionKeyFileName tag for @v (ADE's LinuxPassPhraseFileName[_<c>_<lun>]). */
int aded_keys_file_name(Manager *m, const AdeVolume *v, char **ret);

/* Wraps @keyfile with the KEK when @p names one and sets the escrow secret (then reads it back to
 * confirm it). Fills a token (KeyVaultURL, SecretURL versioned, KEK fields, Passphrase with a KEK,
 * VolumeType, DeviceId) for @v. */
int aded_keys_escrow(Manager *m, const AdedEnableParams *p, const AdeVolume *v, const AdeSecret *keyfile,
        AdeLuksToken **ret_token, AdeCloudError *ret_error);

/* The key file of a volume from its token (read from the device or header, or rebuilt from the state
 * file before the header exists). With a KEK and no Passphrase in @token, the secret is fetched and
 * its (wrapped) value is stored in token->passphrase, so the token can be written as it would have
 * been. */
int aded_keys_resolve(Manager *m, AdeLuksToken *token, AdeSecret **ret_keyfile, AdeCloudError *ret_error);

/* Disables the secret version a volume's token named (RotateKey's revocation of the secret it
 * replaced): ade_resolver_disable_secret(). */
int aded_keys_disable_secret(Manager *m, const char *secret_url, AdeCloudError *ret_error);
