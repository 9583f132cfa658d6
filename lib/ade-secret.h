/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ade-util.h"

/* Key material (key files, unwrapped keys, passphrases) lives only in an AdeSecret: its bytes sit
 * in their own anonymous mapping that is locked in RAM (never swapped), excluded from core dumps,
 * wiped on fork in the child, and overwritten with zeros before it is unmapped. When the memlock
 * limit forbids locking, the buffer still works and ade_secret_is_locked() says false; callers may
 * refuse to go on.
 *
 * @data is followed by one zero byte that is not counted in @size, so text secrets (the 172-byte
 * base64 key file) can be handed to APIs wanting a C string. */
typedef struct AdeSecret {
        uint8_t *data;
        size_t size;
        size_t capacity; /* usable bytes in the mapping, minus the trailing zero byte */
        bool locked;
} AdeSecret;

#define ADE_SECRET_SIZE_MAX (1024U * 1024U)

/* Allocates a zero-filled secret of @size bytes (1 .. ADE_SECRET_SIZE_MAX).
 * Returns 0, -EINVAL for a size out of range, or -ENOMEM. */
int ade_secret_new(size_t size, AdeSecret **ret);

/* Like ade_secret_new(), then copies @size bytes from @data. */
int ade_secret_new_from(const void *data, size_t size, AdeSecret **ret);

/* Fills a new secret of @size bytes from the kernel's CSPRNG (getrandom). */
int ade_secret_new_random(size_t size, AdeSecret **ret);

/* Shrinks the counted size to @size, wiping the bytes dropped. -EINVAL when @size grows it. */
int ade_secret_truncate(AdeSecret *s, size_t size);

/* Reads @fd to its end into a new secret: a key file, a client secret, a key handed over a pipe.
 * Never more than @max bytes (-EFBIG when there is more), never empty (-EINVAL). */
int ade_secret_read_fd(int fd, size_t max, AdeSecret **ret);

/* Constant-time comparison of sizes and contents. */
bool ade_secret_equal(const AdeSecret *a, const AdeSecret *b);

bool ade_secret_is_locked(const AdeSecret *s);

/* What a process that holds key material does first thing in main(), before any thread or any
 * allocation by OpenSSL: it becomes non-dumpable (PR_SET_DUMPABLE 0: no core on a crash, whatever
 * the core limit, and only CAP_SYS_PTRACE may attach to it or read its /proc memory files), and
 * OpenSSL's heap is wiped when OpenSSL frees it (TLS records, keys, unwrap results). Returns 0, or
 * -errno of prctl(); OpenSSL refusing new memory functions (it allocated already) is -EBUSY, after
 * the rest was done. */
int ade_secret_protect_process(void);

/* Whether key material can be locked in RAM in this process: 0, or mlock()'s -errno (-ENOMEM or
 * -EPERM under a small RLIMIT_MEMLOCK) as a secret of @size bytes got it. A process reports a
 * failure once, as it starts: key files may then reach swap. */
int ade_secret_check_lock(size_t size);

/* Wipes, unlocks and unmaps. Accepts NULL; always returns NULL. */
AdeSecret *ade_secret_free(AdeSecret *s);

static inline void ade_secret_freep(AdeSecret **s) {
        ade_secret_free(*s);
}
#define _cleanup_secret_ _cleanup_(ade_secret_freep)

/* Overwrites @size bytes at @p with zeros in a way the compiler may not elide. Accepts NULL. */
void ade_memzero(void *p, size_t size);

/* Wipes then frees a heap string (for transient copies that libraries forced on us). */
char *ade_erase_and_free(char *s);
static inline void ade_erase_and_freep(char **s) {
        ade_erase_and_free(*s);
}
#define _cleanup_erase_ _cleanup_(ade_erase_and_freep)
