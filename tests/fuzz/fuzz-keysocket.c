/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key-socket request (ade-keysocket.h): the peer address systemd-cryptsetup binds to, which
 * names the volume whose key it wants. The first input byte picks how the rest is used:
 *   even: the rest is the address itself (sun_path, any bytes, any length);
 *   odd:  the rest is a volume name, put into an address the way systemd-cryptsetup builds it
 *         (a hex nonce whose length the byte also picks, the "/cryptsetup/" infix, or one of the
 *         encrypted-key infixes).
 * A name that parses is a valid volume name and is exactly what follows the infix; the parser
 * reads nothing past the length it is given; a well-formed address gives back its name; anything
 * else is refused with -EINVAL (-EPROTONOSUPPORT for the encrypted-key forms). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ade-keysocket.h"
#include "ade-util.h"
#include "fuzz.h"

#define SUN_BASE offsetof(struct sockaddr_un, sun_path)
#define SUN_MAX sizeof(((struct sockaddr_un *)NULL)->sun_path)

/* The rule the header documents, written independently of the parser. */
static bool volume_name_ok(const char *s, size_t n) {
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '/')
                        return false;
        return true;
}

/* Parses the first @n bytes of @path as a peer address, twice: with the bytes past @n zero and
 * with them all '/', which must not change the answer. */
static int parse(const char *path, size_t n, char **ret_volume) {
        struct sockaddr_un zero = {.sun_family = AF_UNIX}, junk = {.sun_family = AF_UNIX};
        _cleanup_free_ char *v_zero = NULL, *v_junk = NULL;
        socklen_t len = (socklen_t)(SUN_BASE + n);
        int r, r_junk;

        memset(junk.sun_path, '/', SUN_MAX);
        memcpy(zero.sun_path, path, n);
        memcpy(junk.sun_path, path, n);

        r = ade_keysocket_volume_from_address(&zero, len, &v_zero);
        r_junk = ade_keysocket_volume_from_address(&junk, len, &v_junk);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT || r == -ENOMEM, "unexpected error");
        FUZZ_ASSERT(r == r_junk, "bytes past the address length changed the answer");
        FUZZ_ASSERT(r != 0 || streq(v_zero, v_junk), "bytes past the address length changed the name");
        if (r == 0)
                *ret_volume = TAKE_PTR(v_zero);
        return r;
}

static void check_address(const uint8_t *data, size_t size) {
        _cleanup_free_ char *volume = NULL;
        char path[SUN_MAX] = {};
        size_t n = size < SUN_MAX ? size : SUN_MAX;
        const char *slash, *after;
        int r;

        memcpy(path, data, n);
        r = parse(path, n, &volume);
        if (r != 0)
                return;

        /* Accepted: "\0<1-16 hex>/cryptsetup/<volume>", and the volume is all that follows. */
        FUZZ_ASSERT(n > 1 && path[0] == 0, "accepted a path-bound or unnamed peer");
        slash = memchr(path + 1, '/', n - 1);
        FUZZ_ASSERT(slash && slash - (path + 1) >= 1 && slash - (path + 1) <= 16, "accepted a bad nonce");
        for (const char *p = path + 1; p < slash; p++)
                FUZZ_ASSERT(strchr("0123456789abcdefABCDEF", *p) && *p != 0, "accepted a nonce that is not hex");
        FUZZ_ASSERT((size_t)(path + n - slash) > strlen("/cryptsetup/") &&
                            memcmp(slash, "/cryptsetup/", strlen("/cryptsetup/")) == 0,
                "accepted an address without the /cryptsetup/ infix");
        after = slash + strlen("/cryptsetup/");
        FUZZ_ASSERT(strlen(volume) == (size_t)(path + n - after) && memcmp(volume, after, strlen(volume)) == 0,
                "the name is not what follows the infix");
        FUZZ_ASSERT(volume_name_ok(volume, strlen(volume)), "accepted an invalid volume name");
}

static void check_built(uint8_t mode, const uint8_t *name, size_t size) {
        static const char *const infixes[] = {
                "/cryptsetup/", "/cryptsetup-pkcs11/", "/cryptsetup-fido2/", "/cryptsetup-tpm2/"};
        _cleanup_free_ char *volume = NULL;
        const char *infix = infixes[(mode >> 1) & 3];
        size_t hex = 1 + (mode >> 3) % 16, n;
        char path[SUN_MAX] = {};
        int r;

        if (1 + hex + strlen(infix) + size > SUN_MAX)
                return; /* systemd-cryptsetup cannot bind such an address either */
        memset(path + 1, "0123456789abcdef"[mode % 16], hex);
        memcpy(path + 1 + hex, infix, strlen(infix));
        memcpy(path + 1 + hex + strlen(infix), name, size);
        n = 1 + hex + strlen(infix) + size;

        r = parse(path, n, &volume);
        if (infix != infixes[0])
                FUZZ_ASSERT(r == -EPROTONOSUPPORT, "an encrypted-key request was not refused as such");
        else if (volume_name_ok((const char *)name, size)) {
                FUZZ_ASSERT(r == 0 || r == -ENOMEM, "a valid request was refused");
                FUZZ_ASSERT(r != 0 || (strlen(volume) == size && memcmp(volume, name, size) == 0),
                        "the name differs from the one requested");
        } else
                FUZZ_ASSERT(r == -EINVAL, "an invalid volume name was not refused");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size == 0)
                return 0;
        if (data[0] % 2 == 0)
                check_address(data + 1, size - 1);
        else
                check_built(data[0], data + 1, size - 1);
        return 0;
}
