/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ADE's own files in its folder, as adoption reads them (docs/architecture.md §12). Reads only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ade-adopt.h"
#include "ade-io.h"

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
