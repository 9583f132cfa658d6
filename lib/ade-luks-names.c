/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What from a header or a device becomes a file or mapper name: a LUKS UUID in its canonical form,
 * and names that are one path component. A header is data from a disk that anyone who can attach a
 * disk controls; libcryptsetup loads a UUID of any text, "../" included. */
#include <assert.h>
#include <limits.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ade-log.h"
#include "ade-luks.h"

bool ade_luks_uuid_is_valid(const char *uuid) {
        static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

        if (!uuid || strlen(uuid) != sizeof(pattern) - 1)
                return false;
        for (size_t i = 0; pattern[i]; i++)
                if (pattern[i] == '-' ? uuid[i] != '-' : !strchr("0123456789abcdefABCDEF", uuid[i]) || !uuid[i])
                        return false;
        return true;
}

int ade_luks_uuid_new(char ret[static ADE_LUKS_UUID_SIZE]) {
        uint8_t b[16];
        ssize_t n;

        assert(ret);

        n = getrandom(b, sizeof(b), 0);
        if (n < 0)
                return -errno;
        if ((size_t)n != sizeof(b))
                return -EIO;
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(ret, ADE_LUKS_UUID_SIZE, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}

bool ade_luks_name_is_safe(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > NAME_MAX || streq(name, ".") || streq(name, ".."))
                return false;
        for (const char *c = name; *c; c++)
                if (*c == '/' || (unsigned char)*c < 0x20 || *c == 0x7f)
                        return false;
        return true;
}

int ade_luks_uuid_path(const char *dir, const char *uuid, const char *suffix, char **ret) {
        assert(dir);
        assert(suffix);
        assert(ret);

        if (!ade_luks_uuid_is_valid(uuid))
                return ade_log_debug_errno(EBADMSG,
                        "The LUKS UUID '%s' is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx; no file is named "
                        "after it",
                        strna(uuid));
        return asprintf(ret, "%s/%s%s", dir, uuid, suffix) < 0 ? -ENOMEM : 0;
}

int ade_luks_uuid_path_new(const char *dir, const char *uuid, const char *ext, char **ret) {
        assert(ext);
        assert(ret);

        for (unsigned n = 0;; n++) {
                _cleanup_free_ char *path = NULL;
                char suffix[64];
                int r;

                snprintf(suffix, sizeof(suffix), ".%lld%s%.0u%s", (long long)time(NULL), n ? "-" : "", n, ext);
                r = ade_luks_uuid_path(dir, uuid, suffix, &path);
                if (r < 0)
                        return r;
                if (access(path, F_OK) < 0) {
                        *ret = TAKE_PTR(path);
                        return 0;
                }
        }
}
