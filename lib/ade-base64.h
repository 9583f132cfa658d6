/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ade-secret.h"

/* Base64 over OpenSSL's encoder. Key Vault sends base64url without padding and accepts standard
 * base64 too (Microsoft's own scripts send it), so the decoders take either alphabet, padded or not.
 * Whitespace and any other character are refused. */

/* Standard alphabet, padded. Returns a new string or NULL on allocation failure. */
char *ade_base64_encode(const void *data, size_t size);
/* URL-safe alphabet, unpadded (Key Vault's form). */
char *ade_base64url_encode(const void *data, size_t size);

/* Decodes @len characters of @s. Returns 0, -EINVAL for invalid input, -ENOMEM. */
int ade_base64_decode(const char *s, size_t len, void **ret, size_t *ret_size);

/* The same with key material: the input and output are secrets, nothing lands on the plain heap. */
int ade_base64_encode_secret(const AdeSecret *in, bool url, AdeSecret **ret);
int ade_base64_decode_secret(const char *s, size_t len, AdeSecret **ret);
