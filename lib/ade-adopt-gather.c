/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The facts of adoption (docs/architecture.md §12): crypttab, and what each device it names says.
 * Reads only. */
#include <blkid/blkid.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ade-adopt.h"
#include "ade-fs.h"
#include "ade-log.h"
#include "ade-luks.h"
#include "ade-tab.h"

/* The block device crypttab's @source names: a path, or a tag (UUID=, LABEL=, PARTUUID=, ...)
 * looked up with a cache of its own, empty, so that a disk attached since is found too. */
static int source_device(const char *source, char **ret) {
        blkid_cache cache = NULL;
        char *device;
        struct stat st;

        if (source[0] == '/') {
                device = realpath(source, NULL);
                if (!device)
                        return -errno;
        } else {
                if (blkid_get_cache(&cache, "/dev/null") < 0)
                        return -ENOMEM;
                device = blkid_evaluate_spec(source, &cache);
                blkid_put_cache(cache);
                if (!device)
                        return -ENODEV;
        }
        if (stat(device, &st) < 0 || !S_ISBLK(st.st_mode)) {
                free(device);
                return -ENOTBLK;
        }
        *ret = device;
        return 0;
}

/* The value of the option @key= in the comma-separated @options, or NULL. */
static char *option_value(const char *options, const char *key) {
        size_t klen = strlen(key);

        for (const char *p = options; p && *p;) {
                size_t len = strcspn(p, ",");

                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
                        return strndup(p + klen + 1, len - klen - 1);
                p += len;
                if (*p == ',')
                        p++;
        }
        return NULL;
}

static int gather_one(const AdeCrypttabEntry *e, const char *key_socket,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlan *ret) {
        _cleanup_free_ char *device = NULL, *header = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo info = {};
        AdeAdoptFacts f = {
                .name = e->name,
                .source = e->source,
                .key = e->key,
                .options = e->options,
                .line = e->line,
                .key_socket = key_socket,
        };
        AdeLuksStatus st = {};

        f.recorded = is_recorded && is_recorded(e->name, userdata);
        if (!ade_adopt_is_ade_line(&f))
                return -ENOENT;
        header = option_value(e->options, "header");
        f.header = header;
        f.device_error = source_device(e->source, &device);
        f.device = device;
        if (f.device_error >= 0) {
                f.luks_version = ade_luks_version(device, header);
                if (f.luks_version == 2 && ade_luks_status(device, header, &st) >= 0) {
                        f.has_token = st.has_token;
                        f.reencrypting = st.operation != ADE_LUKS_OP_NONE;
                        f.luks_uuid = st.uuid[0] ? st.uuid : NULL;
                } else if (f.luks_version == 1 && ade_fs_probe(header ?: device, &info) >= 0)
                        f.luks_uuid = info.uuid;
        }
        ade_log_debug("adopt: %s on %s: device %s, LUKS%d, token %s, recorded %s", e->name, e->source, strna(device),
                f.luks_version, f.has_token ? "yes" : "no", f.recorded ? "yes" : "no");
        return ade_adopt_evaluate(&f, ret);
}

int ade_adopt_gather(const char *crypttab, const char *key_socket,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlanList *ret, char **ret_why) {
        _cleanup_(ade_adopt_plan_list_done) AdeAdoptPlanList l = {};
        AdeCrypttabEntry *entries = NULL;
        size_t n = 0;
        int r;

        if (!crypttab || !ret)
                return -EINVAL;
        r = ade_crypttab_read(crypttab, &entries, &n, ret_why);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                AdeAdoptPlan p = {};
                AdeAdoptPlan *grown;

                r = gather_one(&entries[i], key_socket, is_recorded, userdata, &p);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        break;
                grown = reallocarray(l.plans, l.n + 1, sizeof(*grown));
                if (!grown) {
                        ade_adopt_plan_done(&p);
                        r = -ENOMEM;
                        break;
                }
                l.plans = grown;
                l.plans[l.n++] = p;
        }
        ade_crypttab_entries_free(entries, n);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret = l;
        l = (AdeAdoptPlanList){};
        return 0;
}
