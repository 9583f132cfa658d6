/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-secret.h"

/* ADE's key file: the standard base64 of 127 random bytes, 172 ASCII characters with "==" padding
 * and no newline. It is the LUKS passphrase of the volume's keyslot, the content of ADE's
 * LinuxPassPhraseFileName, and (base64-encoded once more, or wrapped) the Key Vault secret. */

#define ADE_KEYFILE_RAW_SIZE 127U
#define ADE_KEYFILE_SIZE 172U

/* Generates a new key file from getrandom(). */
int ade_keyfile_generate(AdeSecret **ret);

/* True when @s has exactly the shape of a key file: 172 characters of standard base64 that decode
 * to 127 bytes. */
bool ade_keyfile_is_valid(const AdeSecret *s);
