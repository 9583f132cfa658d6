/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "ade-log.h"
#include "ade-secret.h"

void ade_memzero(void *p, size_t size) {
        if (p && size > 0)
                explicit_bzero(p, size);
}

char *ade_erase_and_free(char *s) {
        if (s) {
                ade_memzero(s, strlen(s));
                free(s);
        }
        return NULL;
}

static size_t page_round(size_t n) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t p = ps > 0 ? (size_t)ps : 4096;
        return (n + p - 1) / p * p;
}

int ade_secret_new(size_t size, AdeSecret **ret) {
        AdeSecret *s;
        size_t len;
        void *m;

        if (!ret || size == 0 || size > ADE_SECRET_SIZE_MAX)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;

        len = page_round(size + 1);
        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
                free(s);
                return -ENOMEM;
        }

        /* Keep the key out of swap, core dumps and forked children. Locking can fail under a
         * small RLIMIT_MEMLOCK; the caller learns that from ade_secret_is_locked(). */
        s->locked = mlock(m, len) == 0;
        if (!s->locked)
                ade_log_debug_errno(errno, "Could not lock %zu bytes of key memory: %m", len);
        (void)madvise(m, len, MADV_DONTDUMP);
        (void)madvise(m, len, MADV_WIPEONFORK);

        s->data = m;
        s->size = size;
        s->capacity = len - 1;
        *ret = s;
        return 0;
}

int ade_secret_check_lock(size_t size) {
        /* As ade_secret_new() maps and locks a secret, with mlock()'s reason kept. */
        size_t len = page_round(size + 1);
        void *m;
        int r;

        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return -ENOMEM;
        r = mlock(m, len) < 0 ? -errno : 0;
        (void)munmap(m, len);
        return r;
}

/* OpenSSL's heap, wiped as it is given back: what OpenSSL frees may be a TLS record's plaintext (a
 * secret's value in an answer) or a key. */
static void *ossl_malloc(size_t n, const char *file, int line) {
        (void)file;
        (void)line;
        return malloc(n);
}

static void ossl_free(void *p, const char *file, int line) {
        (void)file;
        (void)line;
        if (p) {
                ade_memzero(p, malloc_usable_size(p));
                free(p);
        }
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line) {
        size_t old;
        void *q;

        if (!p)
                return malloc(n);
        if (n == 0) {
                ossl_free(p, file, line);
                return NULL;
        }
        old = malloc_usable_size(p);
        if (n <= old)
                return p;
        /* Moved by hand, so that the old block is wiped before it is freed. */
        q = malloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, old);
        ossl_free(p, file, line);
        return q;
}

int ade_secret_protect_process(void) {
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        if (CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) != 1)
                return -EBUSY;
        return 0;
}

int ade_secret_new_from(const void *data, size_t size, AdeSecret **ret) {
        AdeSecret *s;
        int r;

        if (!data && size > 0)
                return -EINVAL;

        r = ade_secret_new(size, &s);
        if (r < 0)
                return r;

        memcpy(s->data, data, size);
        *ret = s;
        return 0;
}

int ade_secret_new_random(size_t size, AdeSecret **ret) {
        _cleanup_secret_ AdeSecret *s = NULL;
        size_t done = 0;
        int r;

        r = ade_secret_new(size, &s);
        if (r < 0)
                return r;

        while (done < size) {
                ssize_t n = getrandom(s->data + done, size - done, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)n;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

int ade_secret_read_fd(int fd, size_t max, AdeSecret **ret) {
        AdeSecret *s = NULL;
        size_t n = 0;
        int r;

        /* One byte more than allowed tells a file that is too large from one that fits exactly. */
        r = ade_secret_new(max + 1, &s);
        if (r < 0)
                return r;
        while (n < s->size) {
                ssize_t k = read(fd, s->data + n, s->size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        r = n > max ? -EFBIG : n == 0 ? -EINVAL : ade_secret_truncate(s, n);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        ade_secret_free(s);
        return r;
}

int ade_secret_truncate(AdeSecret *s, size_t size) {
        if (!s || size > s->size)
                return -EINVAL;
        ade_memzero(s->data + size, s->size - size);
        s->size = size;
        return 0;
}

bool ade_secret_equal(const AdeSecret *a, const AdeSecret *b) {
        uint8_t d = 0;

        if (!a || !b)
                return a == b;
        if (a->size != b->size)
                return false;
        for (size_t i = 0; i < a->size; i++)
                d |= a->data[i] ^ b->data[i];
        return d == 0;
}

bool ade_secret_is_locked(const AdeSecret *s) {
        return s && s->locked;
}

AdeSecret *ade_secret_free(AdeSecret *s) {
        size_t len;

        if (!s)
                return NULL;

        len = s->capacity + 1;
        ade_memzero(s->data, len);
        if (s->locked)
                (void)munlock(s->data, len);
        (void)munmap(s->data, len);
        ade_memzero(s, sizeof(*s));
        free(s);
        return NULL;
}
