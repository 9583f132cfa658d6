/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ade-keysocket.h"
#include "ade-util.h"

#define ADE_KEYSOCKET_INFIX "/cryptsetup"

int ade_keysocket_volume_from_address(const struct sockaddr_un *sa, socklen_t len, char **ret_volume) {
        const size_t base = offsetof(struct sockaddr_un, sun_path);
        const char *name, *end, *slash, *rest;
        size_t n, hex;
        char *volume;

        if (!sa || !ret_volume)
                return -EINVAL;
        /* Abstract only: a path-bound or unnamed peer is not systemd-cryptsetup. */
        if (sa->sun_family != AF_UNIX || len <= base + 1 || len > sizeof(*sa) || sa->sun_path[0] != 0)
                return -EINVAL;
        name = sa->sun_path + 1;
        end = sa->sun_path + (len - base);

        slash = memchr(name, '/', (size_t)(end - name));
        if (!slash)
                return -EINVAL;
        for (hex = 0; name + hex < slash; hex++)
                if (!strchr("0123456789abcdefABCDEF", name[hex]) || name[hex] == 0)
                        return -EINVAL;
        if (hex == 0 || hex > 16)
                return -EINVAL;

        rest = slash;
        if ((size_t)(end - rest) < strlen(ADE_KEYSOCKET_INFIX) ||
                memcmp(rest, ADE_KEYSOCKET_INFIX, strlen(ADE_KEYSOCKET_INFIX)) != 0)
                return -EINVAL;
        rest += strlen(ADE_KEYSOCKET_INFIX);
        if (rest < end && *rest == '-')
                return -EPROTONOSUPPORT; /* "-pkcs11/", "-fido2/", "-tpm2/": an encrypted key is wanted */
        if (rest >= end || *rest != '/')
                return -EINVAL;
        rest++;

        n = (size_t)(end - rest);
        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)rest[i] <= ' ' || (unsigned char)rest[i] >= 0x7f || rest[i] == '/')
                        return -EINVAL;
        if ((n == 1 && rest[0] == '.') || (n == 2 && rest[0] == '.' && rest[1] == '.'))
                return -EINVAL;

        volume = strndup(rest, n);
        if (!volume)
                return -ENOMEM;
        *ret_volume = volume;
        return 0;
}

int ade_keysocket_peer_volume(int fd, char **ret_volume) {
        struct ucred cred = {};
        socklen_t cred_len = sizeof(cred);
        struct sockaddr_un sa = {};
        socklen_t len = sizeof(sa);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0)
                return -errno;
        if (cred_len != sizeof(cred) || cred.uid != 0)
                return -EPERM;
        if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
                return -errno;
        return ade_keysocket_volume_from_address(&sa, len, ret_volume);
}

int ade_keysocket_send_key(int fd, const AdeSecret *key) {
        size_t done = 0;

        if (!key || key->size == 0)
                return -EINVAL;
        while (done < key->size) {
                ssize_t k = send(fd, key->data + done, key->size - done, MSG_NOSIGNAL);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)k;
        }
        if (shutdown(fd, SHUT_WR) < 0)
                return -errno;
        return 0;
}

int ade_keysocket_request(const char *path, const char *volume, AdeSecret **ret_key) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_secret_ AdeSecret *key = NULL;
        struct sockaddr_un local = {.sun_family = AF_UNIX}, remote = {.sun_family = AF_UNIX};
        uint64_t nonce;
        int n, r;

        if (!path || !volume || !ret_key || strlen(path) >= sizeof(remote.sun_path))
                return -EINVAL;
        if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
                return -errno;

        /* sun_path[0] stays 0: the abstract namespace; the name is not NUL-terminated. */
        n = snprintf(
                local.sun_path + 1, sizeof(local.sun_path) - 1, "%" PRIx64 ADE_KEYSOCKET_INFIX "/%s", nonce, volume);
        if (n < 0 || (size_t)n >= sizeof(local.sun_path) - 1)
                return -EINVAL;
        memcpy(remote.sun_path, path, strlen(path));

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&local, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) <
                0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&remote, sizeof(remote)) < 0)
                return -errno;

        r = ade_secret_read_fd(fd, ADE_KEYSOCKET_KEY_MAX, &key);
        if (r == -EINVAL)
                return -ENOKEY; /* closed without a byte */
        if (r < 0)
                return r;
        *ret_key = TAKE_PTR(key);
        return 0;
}
