/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ADE's own files in its folder, as adoption reads them (docs/architecture.md §12). Reads only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ade-adopt.h"
#include "ade-io.h"

#define CRYPT_MOUNT_FIELDS 7

void ade_adopt_crypt_mounts_free(AdeAdoptCryptMount *m, size_t n) {
        for (size_t i = 0; m && i < n; i++) {
                free(m[i].mapper);
                free(m[i].device);
                free(m[i].header);
                free(m[i].mount_point);
                free(m[i].fs_type);
        }
        free(m);
}

static int refuse_line(char **ret_why, const char *path, unsigned line, const char *what) {
        if (ret_why && asprintf(ret_why, "%s:%u: %s; fix or remove the line, then try again", path, line, what) < 0)
                *ret_why = NULL;
        return -EBADMSG;
}

/* The fields of one azure_crypt_mount line, checked; -EBADMSG with *ret_why. */
static int crypt_mount_parse(char *text, const char *path, unsigned line, AdeAdoptCryptMount *ret, char **ret_why) {
        char *fields[CRYPT_MOUNT_FIELDS + 1];
        char *save = NULL;
        size_t n = 0;

        for (char *tok = strtok_r(text, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
                if (n == CRYPT_MOUNT_FIELDS)
                        return refuse_line(ret_why, path, line,
                                "more than 7 fields (mapper dev header mountpoint fs cleartext slot)");
                fields[n++] = tok;
        }
        if (n != CRYPT_MOUNT_FIELDS)
                return refuse_line(
                        ret_why, path, line, "fewer than 7 fields (mapper dev header mountpoint fs cleartext slot)");
        if (strchr(fields[0], '/') || streq(fields[0], ".") || streq(fields[0], ".."))
                return refuse_line(ret_why, path, line, "the mapper name is not a plain name");
        if (fields[1][0] != '/')
                return refuse_line(ret_why, path, line, "the device is not an absolute path");
        if (!streq(fields[2], "None") && fields[2][0] != '/')
                return refuse_line(ret_why, path, line, "the header is neither None nor an absolute path");
        if (fields[3][0] != '/')
                return refuse_line(ret_why, path, line, "the mount point is not an absolute path");
        if (ade_strdup_to(&ret->mapper, fields[0]) < 0 || ade_strdup_to(&ret->device, fields[1]) < 0 ||
                (!streq(fields[2], "None") && ade_strdup_to(&ret->header, fields[2]) < 0) ||
                ade_strdup_to(&ret->mount_point, fields[3]) < 0 || ade_strdup_to(&ret->fs_type, fields[4]) < 0)
                return -ENOMEM;
        return 0;
}

int ade_adopt_crypt_mount_read(const char *path, AdeAdoptCryptMount **ret, size_t *ret_n, char **ret_why) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        AdeAdoptCryptMount *l = NULL;
        size_t n = 0, size = 0;
        unsigned line = 0;
        ssize_t len;
        int r = 0;

        if (!path || !ret || !ret_n)
                return -EINVAL;
        f = fopen(path, "re");
        if (!f && errno != ENOENT)
                return -errno;
        while (f && (len = getline(&buf, &size, f)) >= 0) {
                AdeAdoptCryptMount *grown;
                char *text;

                line++;
                if (memchr(buf, '\0', (size_t)len)) {
                        r = refuse_line(ret_why, path, line, "a NUL byte");
                        break;
                }
                text = strstrip(buf);
                if (!*text || *text == '#')
                        continue;
                grown = reallocarray(l, n + 1, sizeof(*l));
                if (!grown) {
                        r = -ENOMEM;
                        break;
                }
                l = grown;
                l[n++] = (AdeAdoptCryptMount){};
                r = crypt_mount_parse(text, path, line, &l[n - 1], ret_why);
                if (r < 0)
                        break;
        }
        if (r >= 0 && f && ferror(f))
                r = -EIO;
        if (r < 0) {
                ade_adopt_crypt_mounts_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

int ade_adopt_ini_get(const char *path, const char *key, char **ret) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        if (!path || !key || !ret)
                return -EINVAL;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        while (getline(&buf, &size, f) >= 0) {
                char *text = strstrip(buf);
                size_t klen = strcspn(text, "=:");
                char *name;

                if (!*text || strchr("#;[", *text) || !text[klen])
                        continue;
                text[klen] = '\0';
                name = strstrip(text);
                if (!strcaseeq(name, key))
                        continue;
                return ade_strdup_to(ret, strstrip(text + klen + 1)) < 0 ? -ENOMEM : 1;
        }
        return ferror(f) ? -EIO : 0;
}
