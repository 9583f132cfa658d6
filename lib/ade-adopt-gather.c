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

/* What ADE's folder says to every volume. */
typedef struct AdeDir {
        char *marker; /* its path, when it exists */
        char *marker_operation;
        char *bek_file_name;
        AdeAdoptCryptMount *mounts;
        size_t n_mounts;
} AdeDir;

static void ade_dir_done(AdeDir *d) {
        free(d->marker);
        free(d->marker_operation);
        free(d->bek_file_name);
        ade_adopt_crypt_mounts_free(d->mounts, d->n_mounts);
        *d = (AdeDir){};
}

static int ade_dir_read(const char *dir, AdeDir *ret, char **ret_why) {
        _cleanup_(ade_dir_done) AdeDir d = {};
        static const char *const markers[] = {ADE_ADOPT_MARKER, ADE_ADOPT_DECRYPT_MARKER, ADE_ADOPT_ONGOING_ITEM};
        _cleanup_free_ char *config = NULL, *mounts = NULL;
        struct stat st;
        int r;

        if (asprintf(&config, "%s/" ADE_ADOPT_CONFIG_INI, dir) < 0 ||
                asprintf(&mounts, "%s/" ADE_ADOPT_CRYPT_MOUNT, dir) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(markers) && !d.marker; i++) {
                _cleanup_free_ char *marker = NULL;

                if (asprintf(&marker, "%s/%s", dir, markers[i]) < 0)
                        return -ENOMEM;
                if (lstat(marker, &st) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        continue;
                }
                /* Its content only names the operation: the marker is there, whatever it says. */
                if (i == 0)
                        (void)ade_adopt_ini_get(marker, "EncryptionOperation", &d.marker_operation);
                d.marker = TAKE_PTR(marker);
        }
        r = ade_adopt_ini_get(config, "BekFileName", &d.bek_file_name);
        if (r < 0)
                return r;
        if (r == 0 || !d.bek_file_name[0] || strchr(d.bek_file_name, '/')) {
                free(d.bek_file_name);
                d.bek_file_name = strdup(ADE_ADOPT_KEY_FILE_PREFIX);
                if (!d.bek_file_name)
                        return -ENOMEM;
        }
        r = ade_adopt_crypt_mount_read(mounts, &d.mounts, &d.n_mounts, ret_why);
        if (r < 0)
                return r;
        *ret = d;
        d = (AdeDir){};
        return 0;
}

/* The facts of the device @source (and @header), beside those of the line in @f. */
static int gather_facts(AdeAdoptFacts *f, const char *source, const char *header, const AdeDir *ade,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlan *ret) {
        _cleanup_free_ char *device = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo info = {};
        AdeLuksStatus st = {};

        f->recorded = is_recorded && is_recorded(f->name, userdata);
        f->marker = ade->marker;
        f->marker_operation = ade->marker_operation;
        f->bek_file_name = ade->bek_file_name;
        if (!ade_adopt_is_ade_line(f))
                return -ENOENT;
        f->header = header;
        f->device_error = source_device(source, &device);
        f->device = device;
        if (f->device_error >= 0) {
                f->luks_version = ade_luks_version(device, header);
                if (f->luks_version == 2 && ade_luks_status(device, header, &st) >= 0) {
                        f->has_token = st.has_token;
                        f->reencrypting = st.operation != ADE_LUKS_OP_NONE;
                        f->luks_uuid = st.uuid[0] ? st.uuid : NULL;
                } else if (f->luks_version == 1 && ade_fs_probe(header ?: device, &info) >= 0)
                        f->luks_uuid = info.uuid;
        }
        ade_log_debug("adopt: %s on %s%s: device %s, LUKS%d, token %s, recorded %s", f->name, source,
                f->mount_point ? " (ADE's azure_crypt_mount)" : "", strna(device), f->luks_version,
                f->has_token ? "yes" : "no", f->recorded ? "yes" : "no");
        return ade_adopt_evaluate(f, ret);
}

static int gather_one(const AdeCrypttabEntry *e, const char *key_socket, const AdeDir *ade,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlan *ret) {
        _cleanup_free_ char *header = NULL;
        AdeAdoptFacts f = {
                .name = e->name,
                .source = e->source,
                .key = e->key,
                .options = e->options,
                .line = e->line,
                .key_socket = key_socket,
        };

        header = option_value(e->options, "header");
        return gather_facts(&f, e->source, header, ade, is_recorded, userdata, ret);
}

static int gather_legacy(const AdeAdoptCryptMount *m, const char *key_socket, const AdeDir *ade,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlan *ret) {
        AdeAdoptFacts f = {
                .name = m->mapper,
                .source = m->device,
                .key_socket = key_socket,
                .mount_point = m->mount_point,
                .fs_type = m->fs_type,
        };

        return gather_facts(&f, m->device, m->header, ade, is_recorded, userdata, ret);
}

static int list_add(AdeAdoptPlanList *l, AdeAdoptPlan *p) {
        AdeAdoptPlan *grown = reallocarray(l->plans, l->n + 1, sizeof(*grown));

        if (!grown) {
                ade_adopt_plan_done(p);
                return -ENOMEM;
        }
        l->plans = grown;
        l->plans[l->n++] = *p;
        *p = (AdeAdoptPlan){};
        return 0;
}

static bool crypttab_names(const AdeCrypttabEntry *entries, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(entries[i].name, name))
                        return true;
        return false;
}

int ade_adopt_gather(const char *crypttab, const char *key_socket, const char *ade_dir,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlanList *ret, char **ret_why) {
        _cleanup_(ade_adopt_plan_list_done) AdeAdoptPlanList l = {};
        _cleanup_(ade_dir_done) AdeDir ade = {};
        AdeCrypttabEntry *entries = NULL;
        size_t n = 0;
        int r;

        if (!crypttab || !ret)
                return -EINVAL;
        if (ade_dir) {
                r = ade_dir_read(ade_dir, &ade, ret_why);
                if (r < 0)
                        return r;
        }
        r = ade_crypttab_read(crypttab, &entries, &n, ret_why);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n + ade.n_mounts; i++) {
                AdeAdoptPlan p = {};

                if (i < n)
                        r = gather_one(&entries[i], key_socket, &ade, is_recorded, userdata, &p);
                else if (!crypttab_names(entries, n, ade.mounts[i - n].mapper))
                        r = gather_legacy(&ade.mounts[i - n], key_socket, &ade, is_recorded, userdata, &p);
                else
                        r = -ENOENT; /* migrated to crypttab (by ADE, or adopted): its crypttab line counts */
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        break;
                r = list_add(&l, &p);
                if (r < 0)
                        break;
        }
        ade_crypttab_entries_free(entries, n);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret = l;
        l = (AdeAdoptPlanList){};
        return 0;
}
