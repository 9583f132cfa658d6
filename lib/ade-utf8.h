/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. JSON text is UTF-8 (RFC 8259 §8.1); json-c passes other bytes through as they came, so
 * the varlink layer checks what it reads and repairs what it writes. */

/* The length of the valid sequence that starts @s (at most @len bytes), or 0 when the byte at @s
 * starts none. @len must be at least 1. */
size_t ade_utf8_sequence_length(const char *s, size_t len);

/* Whether the @len bytes at @s are valid UTF-8 (NUL bytes are, as U+0000). */
bool ade_utf8_valid(const char *s, size_t len);

/* A copy of the @len bytes at @s, NUL-terminated, in which every byte that does not belong to a
 * valid sequence is replaced by U+FFFD (what a decoder shows for it); its length in *ret_len
 * (optional: NUL bytes in @s stay). NULL when out of memory. */
char *ade_utf8_sanitize(const char *s, size_t len, size_t *ret_len);
