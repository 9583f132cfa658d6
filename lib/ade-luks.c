/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libcryptsetup.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

#include "ade-fs.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-luks.h"

#define SECTOR 512ULL
/* The header in front takes half the space freed at the end; the moving hotzone the other half. */
#define DATASHIFT_BYTES (ADE_LUKS_SHRINK_SIZE / 2)

static void crypt_freep(struct crypt_device **cd) {
        if (*cd)
                crypt_free(*cd);
}
#define _cleanup_crypt_ _cleanup_(crypt_freep)

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const mode_table[_ADE_LUKS_MODE_MAX] = {
        [ADE_LUKS_MODE_IN_PLACE] = "InPlace",
        [ADE_LUKS_MODE_FORMAT_ALL] = "FormatAll",
};
static const char *const header_table[_ADE_LUKS_HEADER_MAX] = {
        [ADE_LUKS_HEADER_ATTACHED] = "Attached",
        [ADE_LUKS_HEADER_DETACHED] = "Detached",
};
static const char *const state_table[_ADE_LUKS_STATE_MAX] = {
        [ADE_LUKS_STATE_NONE] = "none",
        [ADE_LUKS_STATE_FINISHED] = "finished",
        [ADE_LUKS_STATE_CLEAN] = "clean",
        [ADE_LUKS_STATE_CRASH] = "crash",
        [ADE_LUKS_STATE_INVALID] = "invalid",
};
static const char *const step_table[_ADE_LUKS_STEP_MAX] = {
        [ADE_LUKS_STEP_HEADER_BACKED_UP] = "header-backed-up",
        [ADE_LUKS_STEP_PLANNED] = "planned",
        [ADE_LUKS_STEP_SHRUNK] = "shrunk",
        [ADE_LUKS_STEP_HEADER_WRITTEN] = "header-written",
        [ADE_LUKS_STEP_ACTIVATED] = "activated",
        [ADE_LUKS_STEP_ROTATE_KEYSLOT_ADDED] = "rotate-keyslot-added",
        [ADE_LUKS_STEP_ROTATE_TOKEN_SWAPPED] = "rotate-token-swapped",
        [ADE_LUKS_STEP_ROTATE_OLD_REMOVED] = "rotate-old-removed",
        [ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED] = "decrypt-header-exported",
};

const char *ade_luks_mode_to_string(AdeLuksMode m) {
        return m >= 0 && m < _ADE_LUKS_MODE_MAX ? mode_table[m] : NULL;
}
const char *ade_luks_header_to_string(AdeLuksHeader h) {
        return h >= 0 && h < _ADE_LUKS_HEADER_MAX ? header_table[h] : NULL;
}
const char *ade_luks_state_to_string(AdeLuksState s) {
        return s >= 0 && s < _ADE_LUKS_STATE_MAX ? state_table[s] : NULL;
}
const char *ade_luks_step_to_string(AdeLuksStep s) {
        return s >= 0 && s < _ADE_LUKS_STEP_MAX ? step_table[s] : NULL;
}
AdeLuksStep ade_luks_step_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _ADE_LUKS_STEP_MAX; i++)
                        if (streq(s, step_table[i]))
                                return (AdeLuksStep)i;
        return _ADE_LUKS_STEP_INVALID;
}

/* ---- the token ------------------------------------------------------------------------------ */

AdeLuksToken *ade_luks_token_free(AdeLuksToken *t) {
        if (!t)
                return NULL;
        free(t->version);
        free(t->key_vault_url);
        free(t->key_vault_resource_id);
        free(t->secret_url);
        free(t->kek_url);
        free(t->kek_vault_resource_id);
        free(t->kek_algorithm);
        free(t->volume_type);
        free(t->passphrase);
        free(t->device_id);
        free(t);
        return NULL;
}

/* The JSON names of docs/architecture.md §3, in the order they are written, with the field each maps to. */
#define TOKEN_FIELDS(X)                                                                                                \
        X("version", version)                                                                                          \
        X("KeyVaultURL", key_vault_url)                                                                                \
        X("KeyVaultResourceId", key_vault_resource_id)                                                                 \
        X("SecretURL", secret_url)                                                                                     \
        X("KeyEncryptionKeyURL", kek_url)                                                                              \
        X("KekVaultResourceId", kek_vault_resource_id)                                                                 \
        X("KeyEncryptionAlgorithm", kek_algorithm)                                                                     \
        X("VolumeType", volume_type)                                                                                   \
        X("Passphrase", passphrase)                                                                                    \
        X("DeviceId", device_id)

int ade_luks_token_copy(const AdeLuksToken *t, AdeLuksToken **ret) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *c = NULL;

        assert(t);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->keyslot = t->keyslot;
#define COPY(name, field)                                                                                              \
        if (t->field && !(c->field = strdup(t->field)))                                                                \
                return -ENOMEM;
        TOKEN_FIELDS(COPY)
#undef COPY
        *ret = TAKE_PTR(c);
        return 0;
}

int ade_luks_token_to_json(const AdeLuksToken *t, int keyslot, char **ret) {
        _cleanup_json_ json_object *o = NULL, *slots = NULL;
        char slot[16];
        char *s;

        assert(t);
        assert(ret);

        o = json_object_new_object();
        slots = json_object_new_array();
        if (!o || !slots)
                return -ENOMEM;
        if (ade_json_add_string(o, "type", ADE_LUKS_TOKEN_TYPE) < 0)
                return -ENOMEM;
        if (keyslot >= 0) {
                snprintf(slot, sizeof(slot), "%d", keyslot);
                if (json_object_array_add(slots, json_object_new_string(slot)) < 0)
                        return -ENOMEM;
        }
        if (json_object_object_add(o, "keyslots", TAKE_PTR(slots)) < 0)
                return -ENOMEM;
        if (ade_json_add_string(o, "version", t->version ?: ADE_LUKS_TOKEN_VERSION) < 0)
                return -ENOMEM;
#define ADD(name, field)                                                                                               \
        if (!streq(name, "version") && !isempty(t->field) && ade_json_add_string(o, name, t->field) < 0)               \
                return -ENOMEM;
        TOKEN_FIELDS(ADD)
#undef ADD
        s = ade_json_to_string(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int ade_luks_token_from_json(const char *json, AdeLuksToken **ret) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_json_ json_object *o = NULL;
        json_object *slots;
        const char *type, *v;
        int r;

        assert(json);
        assert(ret);

        r = ade_json_parse(json, strlen(json), &o);
        if (r < 0)
                return r;
        if (ade_json_get_string(o, "type", &type) < 0 || !streq(type, ADE_LUKS_TOKEN_TYPE))
                return -EBADMSG;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->keyslot = -1;
#define GET(name, field)                                                                                               \
        r = ade_json_get_string(o, name, &v);                                                                          \
        if (r == -EBADMSG)                                                                                             \
                return r;                                                                                              \
        if (r >= 0 && !isempty(v) && !(t->field = strdup(v)))                                                          \
                return -ENOMEM;
        TOKEN_FIELDS(GET)
#undef GET
        if (!t->version || !t->secret_url)
                return ade_log_debug_errno(EBADMSG, "Token %s lacks version or SecretURL", ADE_LUKS_TOKEN_TYPE);

        if (ade_json_get_array(o, "keyslots", &slots) >= 0 && json_object_array_length(slots) > 0) {
                json_object *e = json_object_array_get_idx(slots, 0);
                const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
                char *end;
                long k;

                if (!s)
                        return -EBADMSG;
                errno = 0;
                k = strtol(s, &end, 10);
                if (errno || *end || k < 0 || k > 31)
                        return -EBADMSG;
                t->keyslot = (int)k;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

bool ade_secret_url_is_versioned(const char *url) {
        const char *p, *name, *version;

        if (!url)
                return false;
        p = startswith_no_case(url, "https://");
        if (!p)
                return false;
        p = strchr(p, '/');
        if (!p || !(name = startswith(p, "/secrets/")) || *name == '/' || !*name)
                return false;
        version = strchr(name, '/');
        if (!version || !*++version)
                return false;
        /* Exactly /secrets/<name>/<version>, allowing one trailing slash. */
        p = strchr(version, '/');
        return !p || streq(p, "/");
}

/* ---- small file helpers ------------------------------------------------------------------- */

static int fsync_path(const char *path, bool directory) {
        _cleanup_close_ int fd = -EBADF;

        fd = open(path, (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot open %s to sync it: %m", path);
        if (fsync(fd) < 0)
                return ade_log_debug_errno(errno, "Cannot sync %s: %m", path);
        return 0;
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                return fsync_path(".", true);
        if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        return fsync_path(dir, true);
}

/* A file that must survive a power cut: 0600, its contents and its directory entry on disk. */
static int make_durable(const char *path) {
        int r;

        if (chmod(path, 0600) < 0)
                return ade_log_debug_errno(errno, "Cannot make %s private: %m", path);
        r = fsync_path(path, false);
        if (r < 0)
                return r;
        return fsync_parent(path);
}

static int ensure_dir(const char *dir) {
        struct stat st;

        if (isempty(dir))
                return -EINVAL;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return ade_log_debug_errno(errno, "Cannot create folder %s: %m", dir);
        if (stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return ade_log_debug_errno(ENOTDIR, "%s is not a folder", dir);
        return 0;
}

/* "/dev/disk/azure/scsi1/lun0" -> "dev-disk-azure-scsi1-lun0": a file name for a device. */
static int device_file_name(const char *device, const char *suffix, char **ret) {
        _cleanup_free_ char *s = NULL;
        char *w;

        while (*device == '/')
                device++;
        if (asprintf(&s, "%s%s", device, suffix) < 0)
                return -ENOMEM;
        for (w = s; *w; w++)
                if (*w == '/' || *w == ' ')
                        *w = '-';
        *ret = TAKE_PTR(s);
        return 0;
}

static int device_size(const char *device, uint64_t *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        uint64_t size = 0;

        fd = open(device, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot open %s: %m", device);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                *ret = (uint64_t)st.st_size;
                return 0;
        }
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        if (ioctl(fd, BLKGETSIZE64, &size) < 0)
                return -errno;
        *ret = size;
        return 0;
}

/* ---- libcryptsetup plumbing --------------------------------------------------------------- */

static void cryptsetup_log(int level, const char *msg, void *usrptr) {
        size_t n = strlen(msg);

        (void)usrptr;
        (void)level;
        /* libcryptsetup ends its lines with a newline; our log adds its own. */
        ade_log_debug("libcryptsetup: %.*s", (int)(n > 0 && msg[n - 1] == '\n' ? n - 1 : n), msg);
}

static int luks_init(const char *device, const char *header, struct crypt_device **ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        if (header)
                r = crypt_init_data_device(&cd, header, device);
        else
                r = crypt_init(&cd, device);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot open %s: %m", header ?: device);
        crypt_set_log_callback(cd, cryptsetup_log, NULL);
        *ret = TAKE_PTR(cd);
        return 0;
}

static int luks_load(const char *device, const char *header, struct crypt_device **ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        r = luks_init(device, header, &cd);
        if (r < 0)
                return r;
        r = crypt_load(cd, CRYPT_LUKS2, NULL);
        if (r < 0)
                return ade_log_debug_errno(r, "No LUKS2 header on %s: %m", header ?: device);
        *ret = TAKE_PTR(cd);
        return 0;
}

static int set_keyfile_pbkdf(struct crypt_device *cd) {
        const struct crypt_pbkdf_type pbkdf = {
                .type = CRYPT_KDF_PBKDF2,
                .hash = "sha512",
                .iterations = ADE_LUKS_PBKDF_ITERATIONS,
                .flags = CRYPT_PBKDF_NO_BENCHMARK,
        };
        int r;

        r = crypt_set_pbkdf_type(cd, &pbkdf);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot set PBKDF2 parameters: %m");
        return 0;
}

/* Returns the keyslot @key opens, -ENOKEY when it opens none. Activates nothing. */
static int keyslot_by_key(struct crypt_device *cd, const AdeSecret *key) {
        int r;

        r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *)key->data, key->size, 0);
        if (r == -EPERM)
                return -ENOKEY;
        return r;
}

/* Finds our token: returns its id and, optionally, the parsed token. -ENOENT when absent. */
static int token_find(struct crypt_device *cd, AdeLuksToken **ret) {
        int max = crypt_token_max(CRYPT_LUKS2);

        for (int id = 0; id < max; id++) {
                const char *type = NULL, *json = NULL;
                crypt_token_info ti = crypt_token_status(cd, id, &type);

                if (ti == CRYPT_TOKEN_INACTIVE || ti == CRYPT_TOKEN_INVALID || !streq_ptr(type, ADE_LUKS_TOKEN_TYPE))
                        continue;
                if (ret) {
                        int r = crypt_token_json_get(cd, id, &json);
                        if (r < 0)
                                return r;
                        r = ade_luks_token_from_json(json, ret);
                        if (r < 0)
                                return r;
                }
                return id;
        }
        return -ENOENT;
}

/* Writes @t bound to @keyslot, replacing our existing token in the same metadata write when there
 * is one: a crash sees either the old token or the new one, never none. */
static int token_store(struct crypt_device *cd, const AdeLuksToken *t, int keyslot) {
        _cleanup_free_ char *json = NULL;
        int id, r;

        r = ade_luks_token_to_json(t, keyslot, &json);
        if (r < 0)
                return r;
        id = token_find(cd, NULL);
        r = crypt_token_json_set(cd, id >= 0 ? id : CRYPT_ANY_TOKEN, json);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot write the %s token: %m", ADE_LUKS_TOKEN_TYPE);
        return r;
}

typedef struct ProgressBridge {
        const AdeLuksOptions *o;
        bool stopped;
} ProgressBridge;

static int progress_bridge(uint64_t size, uint64_t offset, void *usrptr) {
        ProgressBridge *b = usrptr;

        if (!b->o || !b->o->progress)
                return 0;
        if (b->o->progress(offset, size, b->o->userdata) != 0) {
                b->stopped = true;
                return 1;
        }
        return 0;
}

static int hook(const AdeLuksOptions *o, AdeLuksStep step) {
        ade_log_debug("Reached step %s", ade_luks_step_to_string(step));
        if (o && o->hook)
                return o->hook(step, o->hook_userdata);
        return 0;
}

static int run_reencrypt(struct crypt_device *cd, const AdeLuksOptions *o) {
        ProgressBridge b = {.o = o};
        int r;

        r = crypt_reencrypt_run(cd, progress_bridge, &b);
        if (r < 0)
                return ade_log_debug_errno(r, "Reencryption of %s failed: %m", crypt_get_device_name(cd));
        if (b.stopped && crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
                return -ECANCELED;
        return 0;
}

/* Online, every hotzone's mapping is suspended while it is reencrypted: the mounted filesystem
 * waits that long. libcryptsetup's default hotzone (as large as the keyslot area allows) stalled a
 * mounted XFS for 9 to 18 s in the VM; ADE_LUKS_ONLINE_HOTZONE bounds the stall, offline keeps the
 * default (tests/bench: no throughput gained or lost between 64 MiB and the default). */
static uint64_t hotzone_sectors(const AdeLuksOptions *o) {
        if (o->hotzone_size == 0 && o->active_name)
                return ADE_LUKS_ONLINE_HOTZONE / SECTOR;
        return o->hotzone_size / SECTOR;
}

static bool resilience_ok(const char *resilience) {
        return !resilience || streq(resilience, "checksum") || streq(resilience, "journal");
}

/* ---- status, token, backups ----------------------------------------------------------------- */

int ade_luks_status(const char *device, const char *header, AdeLuksStatus *ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        struct crypt_params_reencrypt p = {};
        AdeLuksStatus s = {};
        crypt_reencrypt_info ri;
        uint64_t size = 0;
        int r;

        assert(device);
        assert(ret);

        r = luks_init(device, header, &cd);
        if (r < 0)
                return r;
        r = crypt_load(cd, CRYPT_LUKS2, NULL);
        if (r < 0) {
                if (r != -EINVAL)
                        return ade_log_debug_errno(r, "Cannot read the LUKS2 header of %s: %m", header ?: device);
                s.state = ADE_LUKS_STATE_NONE;
                *ret = s;
                return 0;
        }

        ri = crypt_reencrypt_status(cd, &p);
        switch (ri) {
        case CRYPT_REENCRYPT_NONE:
                s.state = ADE_LUKS_STATE_FINISHED;
                break;
        case CRYPT_REENCRYPT_CLEAN:
                s.state = ADE_LUKS_STATE_CLEAN;
                break;
        case CRYPT_REENCRYPT_CRASH:
                s.state = ADE_LUKS_STATE_CRASH;
                break;
        default:
                s.state = ADE_LUKS_STATE_INVALID;
        }
        if (s.state == ADE_LUKS_STATE_CLEAN || s.state == ADE_LUKS_STATE_CRASH)
                s.operation = p.mode == CRYPT_REENCRYPT_ENCRYPT   ? ADE_LUKS_OP_ENCRYPT
                              : p.mode == CRYPT_REENCRYPT_DECRYPT ? ADE_LUKS_OP_DECRYPT
                                                                  : ADE_LUKS_OP_REENCRYPT;
        s.header = crypt_header_is_detached(cd) > 0 ? ADE_LUKS_HEADER_DETACHED : ADE_LUKS_HEADER_ATTACHED;
        s.has_token = token_find(cd, NULL) >= 0;
        if (device_size(device, &size) >= 0 && size > crypt_get_data_offset(cd) * SECTOR)
                s.data_size = size - crypt_get_data_offset(cd) * SECTOR;
        snprintf(s.uuid, sizeof(s.uuid), "%s", strna(crypt_get_uuid(cd)));

        *ret = s;
        return 0;
}

int ade_luks_read_token(const char *device, const char *header, AdeLuksToken **ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        AdeLuksToken *t = NULL;
        int id, r;

        assert(device);
        assert(ret);

        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        id = token_find(cd, &t);
        if (id < 0)
                return id;
        *ret = t;
        return 0;
}

static int backup_header_cd(struct crypt_device *cd, const char *header_dir, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = ensure_dir(header_dir);
        if (r < 0)
                return r;
        for (unsigned n = 0;; n++) {
                path = mfree(path);
                if (asprintf(&path, "%s/%s.%lld%s%.0u.backup", header_dir, strna(crypt_get_uuid(cd)),
                            (long long)time(NULL), n ? "-" : "", n) < 0)
                        return -ENOMEM;
                if (access(path, F_OK) < 0)
                        break;
        }
        r = crypt_header_backup(cd, CRYPT_LUKS2, path);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot back up the LUKS2 header to %s: %m", path);
        r = make_durable(path);
        if (r < 0)
                return r;
        ade_log_debug("Header backed up to %s", path);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

/* Header backups are kept until the next successful operation (docs/architecture.md §4): once one succeeded,
 * the older backups of the same volume go, the one it took stays. */
static void prune_backups(const char *header_dir, const char *uuid, const char *keep) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_free_ char *prefix = NULL;
        const char *keep_name = keep ? strrchr(keep, '/') : NULL;
        struct dirent *de;

        if (!uuid || asprintf(&prefix, "%s.", uuid) < 0)
                return;
        keep_name = keep_name ? keep_name + 1 : keep;
        d = opendir(header_dir);
        if (!d)
                return;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);

                if (!startswith(de->d_name, prefix) || n < 7 || !streq(de->d_name + n - 7, ".backup") ||
                        streq_ptr(de->d_name, keep_name))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                        ade_log_debug_errno(errno, "Cannot remove old header backup %s/%s: %m", header_dir, de->d_name);
        }
        (void)fsync_path(header_dir, true);
}

int ade_luks_backup_header(const char *device, const char *header, const char *header_dir, char **ret_path) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(device);
        if (isempty(header_dir))
                return -EINVAL;
        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        return backup_header_cd(cd, header_dir, ret_path);
}

static bool same_device(const char *a, const char *b) {
        struct stat sa, sb;

        if (streq(a, b))
                return true;
        if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
                return false;
        if (S_ISBLK(sa.st_mode) && S_ISBLK(sb.st_mode))
                return sa.st_rdev == sb.st_rdev;
        return false;
}

int ade_luks_find_header(const char *header_dir, const char *device_id, char **ret_path) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        assert(header_dir);
        assert(device_id);
        assert(ret_path);

        d = opendir(header_dir);
        if (!d)
                return errno == ENOENT ? -ENOENT : ade_log_debug_errno(errno, "Cannot read %s: %m", header_dir);
        while ((de = readdir(d))) {
                _cleanup_crypt_ struct crypt_device *cd = NULL;
                _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
                _cleanup_free_ char *path = NULL;

                if (de->d_name[0] == '.' || strstr(de->d_name, ".backup"))
                        continue;
                if (asprintf(&path, "%s/%s", header_dir, de->d_name) < 0)
                        return -ENOMEM;
                if (crypt_init(&cd, path) < 0)
                        continue;
                crypt_set_log_callback(cd, cryptsetup_log, NULL);
                if (crypt_load(cd, CRYPT_LUKS2, NULL) < 0 || token_find(cd, &t) < 0 || !t->device_id)
                        continue;
                if (same_device(t->device_id, device_id)) {
                        *ret_path = TAKE_PTR(path);
                        return 0;
                }
        }
        return -ENOENT;
}

/* ---- planning ------------------------------------------------------------------------------- */

void ade_luks_plan_done(AdeLuksPlan *p) {
        if (!p)
                return;
        p->header_path = mfree(p->header_path);
        p->reason = mfree(p->reason);
}

static int detached_header_path(const AdeVolume *v, const char *header_dir, char **ret) {
        _cleanup_free_ char *name = NULL;

        if (device_file_name(v->stable_id ?: v->device, ".header", &name) < 0)
                return -ENOMEM;
        return asprintf(ret, "%s/%s", header_dir, name) < 0 ? -ENOMEM : 0;
}

/* @writing: the plan of ade_luks_encrypt(). It skips the read-only e2fsck: the shrink runs the
 * "e2fsck -f -p" that resize2fs needs anyway, and a detached header moves no data, so a second full
 * pass would only add to the downtime of a volume taken offline for online encryption. */
static int plan_volume(const AdeVolume *v, const AdeLuksOptions *o, bool writing, AdeLuksPlan *ret, char **ret_error) {
        _cleanup_(ade_luks_plan_done) AdeLuksPlan p = {};
        _cleanup_free_ char *out = NULL;
        uint64_t min = 0, fs_size = 0;
        int r;

        assert(v);
        assert(o);
        assert(ret);

        if (v->skip != ADE_VOLUME_ELIGIBLE)
                return ade_log_debug_errno(EINVAL, "%s is not eligible: %s", v->device, strna(v->reason));
        if (isempty(o->header_dir))
                return ade_log_debug_errno(EINVAL, "No header-dir given");
        if (!resilience_ok(o->resilience))
                return ade_log_debug_errno(
                        EINVAL, "Resilience '%s' is not crash-safe; use checksum or journal", o->resilience);
        if (v->mountpoint)
                return ade_log_debug_errno(EBUSY, "%s is mounted on %s; encryption needs it unmounted first%s",
                        v->device, v->mountpoint, o->active_name ? "" : " (or device-mapper for online encryption)");

        p.device_size = v->size;
        p.online = o->active_name != NULL;

        if (o->format_all) {
                if (!o->format_all_confirmed)
                        return ade_log_debug_errno(EPERM, "Format-all of %s needs explicit confirmation", v->device);
                p.mode = ADE_LUKS_MODE_FORMAT_ALL;
                p.header = ADE_LUKS_HEADER_ATTACHED;
                p.data_size = v->size > 16ULL * 1024 * 1024 ? v->size - 16ULL * 1024 * 1024 : 0;
                if (asprintf(&p.reason,
                            "format-all: %s gets a new LUKS2 volume and a new %s filesystem; its data is lost",
                            v->device, v->fstype ?: "ext4") < 0)
                        return -ENOMEM;
                *ret = p;
                p = (AdeLuksPlan){};
                return 0;
        }

        p.mode = ADE_LUKS_MODE_IN_PLACE;
        p.header = ADE_LUKS_HEADER_DETACHED;
        p.data_size = v->size;

        if (o->force_detached)
                r = asprintf(&p.reason, "detached header requested for %s", v->device);
        else if (!v->fstype)
                r = asprintf(&p.reason, "%s has no filesystem: detached header, no data moved", v->device);
        else if (!ade_fs_is_ext(v->fstype))
                r = asprintf(&p.reason, "%s is %s, which cannot shrink: detached header, no data moved", v->device,
                        v->fstype);
        else {
                r = writing ? 0 : ade_fs_check(v->device, false, &out);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = TAKE_PTR(out);
                        return r;
                }
                r = ade_fs_min_size(v->device, &min, &fs_size, &out);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = TAKE_PTR(out);
                        return r;
                }
                p.fs_min_size = min;
                if (fs_size == 0 || fs_size > v->size)
                        fs_size = v->size;
                if (v->size >= ADE_LUKS_SHRINK_SIZE && min + ADE_LUKS_SHRINK_SIZE <= fs_size) {
                        p.header = ADE_LUKS_HEADER_ATTACHED;
                        p.shrink = fs_size > v->size - ADE_LUKS_SHRINK_SIZE;
                        p.data_size = v->size - DATASHIFT_BYTES;
                        r = asprintf(&p.reason,
                                "%s (%s) can lose 32 MiB (minimum %" PRIu64 " MiB): header at the start, data shifted",
                                v->device, v->fstype, min >> 20);
                } else
                        r = asprintf(&p.reason,
                                "resize2fs cannot shrink %s by 32 MiB (minimum %" PRIu64 " MiB of %" PRIu64
                                " MiB): detached header, no data moved",
                                v->device, min >> 20, fs_size >> 20);
        }
        if (r < 0)
                return -ENOMEM;

        if (p.header == ADE_LUKS_HEADER_DETACHED) {
                r = detached_header_path(v, o->header_dir, &p.header_path);
                if (r < 0)
                        return r;
        }

        *ret = p;
        p = (AdeLuksPlan){};
        return 0;
}

int ade_luks_plan(const AdeVolume *v, const AdeLuksOptions *o, AdeLuksPlan *ret, char **ret_error) {
        return plan_volume(v, o, false, ret, ret_error);
}

/* ---- encryption ------------------------------------------------------------------------------ */

static int check_write_allowed(const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o) {
        if (!token || !keyfile || keyfile->size == 0)
                return -EINVAL;
        if (!o->escrow_confirmed)
                return ade_log_debug_errno(EPERM, "The key file is not confirmed escrowed; nothing written");
        if (!ade_secret_url_is_versioned(token->secret_url))
                return ade_log_debug_errno(EPERM,
                        "SecretURL '%s' is not a versioned Key Vault secret URL; nothing written",
                        strna(token->secret_url));
        return 0;
}

/* Keyslot for the key file and the token bound to it, on a freshly formatted header. */
static int add_keyslot_and_token(struct crypt_device *cd, const AdeLuksToken *token, const AdeSecret *keyfile) {
        int slot, r;

        r = set_keyfile_pbkdf(cd);
        if (r < 0)
                return r;
        slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)keyfile->data, keyfile->size);
        if (slot < 0)
                return ade_log_debug_errno(slot, "Cannot add the keyslot: %m");
        r = token_store(cd, token, slot);
        if (r < 0)
                return r;
        return slot;
}

static int start_and_run(struct crypt_device *cd, int slot, const AdeSecret *keyfile, const AdeLuksOptions *o,
        const struct crypt_params_reencrypt *init) {
        struct crypt_params_reencrypt params = *init;
        int r;

        params.flags &= ~CRYPT_REENCRYPT_INITIALIZE_ONLY;
        params.flags |= CRYPT_REENCRYPT_RESUME_ONLY;
        r = crypt_reencrypt_init_by_passphrase(
                cd, o->active_name, (const char *)keyfile->data, keyfile->size, slot, slot, NULL, NULL, &params);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot load the reencryption of %s: %m", crypt_get_device_name(cd));
        return run_reencrypt(cd, o);
}

/* Both header kinds end the same way once the header is on disk: tell the hook, activate for
 * online use, and (unless only initialising) run the reencryption. */
static int header_written_then_run(struct crypt_device *cd, const AdeVolume *v, int slot, const AdeSecret *keyfile,
        const AdeLuksOptions *o, const struct crypt_params_reencrypt *params) {
        int r;

        r = hook(o, ADE_LUKS_STEP_HEADER_WRITTEN);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (o->active_name) {
                r = crypt_activate_by_passphrase(
                        cd, o->active_name, slot, (const char *)keyfile->data, keyfile->size, 0);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot activate %s as %s: %m", v->device, o->active_name);
                r = hook(o, ADE_LUKS_STEP_ACTIVATED);
                if (r != 0)
                        return r < 0 ? r : -ECANCELED;
        }
        if (o->init_only)
                return 0;
        return start_and_run(cd, slot, keyfile, o, params);
}

static int encrypt_detached(const AdeVolume *v, const AdeLuksPlan *plan, const AdeLuksToken *token,
        const AdeSecret *keyfile, const AdeLuksOptions *o) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_close_ int fd = -EBADF;
        const struct crypt_params_luks2 luks2 = {.sector_size = SECTOR};
        struct crypt_params_reencrypt params = {
                .mode = CRYPT_REENCRYPT_ENCRYPT,
                .direction = CRYPT_REENCRYPT_FORWARD,
                .resilience = o->resilience ?: "checksum",
                .hash = "sha256",
                .max_hotzone_size = hotzone_sectors(o),
                .luks2 = &luks2,
                .flags = CRYPT_REENCRYPT_INITIALIZE_ONLY,
        };
        const char *hdr = plan->header_path;
        int slot, r;

        r = ensure_dir(o->header_dir);
        if (r < 0)
                return r;

        /* The token names the device, so that the header is found again after a rename. */
        r = ade_luks_token_copy(token, &t);
        if (r < 0)
                return r;
        if (!t->device_id && !(t->device_id = strdup(v->stable_id ?: v->device)))
                return -ENOMEM;

        fd = open(hdr, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
                _cleanup_crypt_ struct crypt_device *old = NULL;

                /* A header file that does not load was cut short before its reencryption was ever
                 * initialised (a crash between create and format): the device was not touched, the
                 * file is garbage. A header that loads is never overwritten. */
                if (luks_load(v->device, hdr, &old) >= 0)
                        return ade_log_debug_errno(EEXIST, "Header file %s already exists for another volume", hdr);
                if (unlink(hdr) < 0)
                        return ade_log_debug_errno(errno, "Cannot remove the unfinished header %s: %m", hdr);
                fd = open(hdr, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot create header file %s: %m", hdr);
        r = posix_fallocate(fd, 0, 4096);
        close(TAKE_FD(fd));
        if (r != 0) {
                r = -r;
                goto fail;
        }

        r = luks_init(v->device, hdr, &cd);
        if (r < 0)
                goto fail;
        /* Before the format: the volume key's digest then takes the same fast PBKDF2 (the key is
         * random, 512 bits) instead of a benchmarked one, as cryptsetup's --pbkdf-force-iterations. */
        r = set_keyfile_pbkdf(cd);
        if (r < 0)
                goto fail;
        r = crypt_format(cd, CRYPT_LUKS2, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, NULL, NULL, ADE_LUKS_KEY_BYTES,
                (struct crypt_params_luks2 *)&luks2);
        if (r < 0) {
                ade_log_debug_errno(r, "Cannot format LUKS2 header %s for %s: %m", hdr, v->device);
                goto fail;
        }
        r = slot = add_keyslot_and_token(cd, t, keyfile);
        if (r < 0)
                goto fail;
        r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)keyfile->data, keyfile->size, CRYPT_ANY_SLOT,
                slot, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, &params);
        if (r < 0) {
                ade_log_debug_errno(r, "Cannot initialise the encryption of %s: %m", v->device);
                goto fail;
        }
        r = make_durable(hdr);
        if (r < 0)
                return r; /* the header is complete: keep it, resume can continue */
        return header_written_then_run(cd, v, slot, keyfile, o, &params);

fail:
        /* Nothing reached the data device yet: drop the half-made header. */
        cd = NULL;
        (void)unlink(hdr);
        return r;
}

/* The header that goes in front of the data, built in a small file under @run_dir (libcryptsetup's
 * recipe): LUKS2 with a 16 MiB data offset, the key file's keyslot and our token. It touches no
 * device, so for an online encryption it can be made while the volume is still mounted. Returns
 * the keyslot; *ret_path gets the file, *ret_cd the context on it. */
static int make_front_header(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile,
        const char *run_dir, char **ret_path, struct crypt_device **ret_cd) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const struct crypt_params_luks2 luks2 = {.data_device = v->device, .sector_size = SECTOR};
        int slot, r;

        r = ensure_dir(run_dir);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s/LUKS2-temp-XXXXXX", run_dir) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot create a temporary header in %s: %m", run_dir);
        r = -posix_fallocate(fd, 0, 4096);
        close(TAKE_FD(fd));
        if (r >= 0)
                r = luks_init(tmp, NULL, &cd);
        if (r >= 0)
                r = crypt_set_data_offset(cd, DATASHIFT_BYTES / SECTOR);
        /* Before the format: the volume key's digest then takes the same fast PBKDF2 (the key is
         * random, 512 bits) instead of a benchmarked one, as cryptsetup's --pbkdf-force-iterations. */
        if (r >= 0)
                r = set_keyfile_pbkdf(cd);
        if (r >= 0) {
                r = crypt_format(cd, CRYPT_LUKS2, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, NULL, NULL, ADE_LUKS_KEY_BYTES,
                        (struct crypt_params_luks2 *)&luks2);
                if (r < 0)
                        ade_log_debug_errno(r, "Cannot format a LUKS2 header for %s: %m", v->device);
        }
        if (r >= 0)
                r = slot = add_keyslot_and_token(cd, token, keyfile);
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        *ret_path = TAKE_PTR(tmp);
        *ret_cd = TAKE_PTR(cd);
        return slot;
}

int ade_luks_prepare_header(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile,
        const AdeLuksOptions *o, char **ret_path) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(v);
        assert(o);
        assert(ret_path);

        r = check_write_allowed(token, keyfile, o);
        if (r < 0)
                return r;
        r = make_front_header(v, token, keyfile, o->run_dir ?: ADE_LUKS_RUN_DIR_DEFAULT, ret_path, &cd);
        return r < 0 ? r : 0;
}

static int encrypt_attached(const AdeVolume *v, const AdeLuksPlan *plan, const AdeLuksToken *token,
        const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_error) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *tmp = NULL, *out = NULL;
        const char *run_dir = o->run_dir ?: ADE_LUKS_RUN_DIR_DEFAULT;
        const struct crypt_params_luks2 luks2 = {.data_device = v->device, .sector_size = SECTOR};
        struct crypt_params_reencrypt params = {
                .mode = CRYPT_REENCRYPT_ENCRYPT,
                .direction = CRYPT_REENCRYPT_BACKWARD,
                .resilience = "datashift",
                .data_shift = DATASHIFT_BYTES / SECTOR,
                .luks2 = &luks2,
                .flags = CRYPT_REENCRYPT_INITIALIZE_ONLY | CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT,
        };
        bool shrunk = false;
        int slot, r;

        if (plan->shrink) {
                /* The last 32 MiB become free; 4 KiB alignment keeps resize2fs happy with any block size. */
                uint64_t target = (v->size - ADE_LUKS_SHRINK_SIZE) & ~4095ULL;

                r = ade_fs_check(v->device, true, &out);
                if (r >= 0)
                        r = ade_fs_shrink(v->device, target, &out);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = TAKE_PTR(out);
                        return r;
                }
                shrunk = true;
                r = hook(o, ADE_LUKS_STEP_SHRUNK);
                if (r != 0) {
                        r = r < 0 ? r : -ECANCELED;
                        goto fail;
                }
        }

        if (o->prepared_header) {
                /* Made before the volume went offline (ade_luks_prepare_header()). */
                tmp = strdup(o->prepared_header);
                if (!tmp) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = luks_load(v->device, tmp, &cd);
                /* The reencryption's own digest is made with the context's PBKDF: a loaded context
                 * would benchmark one (seconds of CPU) where a formatted one had ours set. */
                if (r >= 0)
                        r = set_keyfile_pbkdf(cd);
                if (r >= 0)
                        r = slot = keyslot_by_key(cd, keyfile);
        } else
                r = slot = make_front_header(v, token, keyfile, run_dir, &tmp, &cd);
        if (r < 0)
                goto fail;
        /* Initialising copies the first 16 MiB of data into the freed tail; then the header goes to
         * the head of the device. */
        r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)keyfile->data, keyfile->size, CRYPT_ANY_SLOT,
                slot, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, &params);
        if (r < 0) {
                ade_log_debug_errno(r, "Cannot initialise the encryption of %s: %m", v->device);
                goto fail;
        }

        crypt_free(TAKE_PTR(cd));
        r = luks_init(v->device, NULL, &cd);
        if (r < 0)
                goto fail;
        r = crypt_header_restore(cd, CRYPT_LUKS2, tmp);
        if (r < 0) {
                ade_log_debug_errno(r, "Cannot place the LUKS2 header at the head of %s: %m", v->device);
                goto fail;
        }
        (void)unlink(tmp);
        tmp = mfree(tmp);
        shrunk = false; /* from here on the header is the truth; resume continues */

        return header_written_then_run(cd, v, slot, keyfile, o, &params);

fail:
        crypt_free(TAKE_PTR(cd));
        if (tmp)
                (void)unlink(tmp);
        if (shrunk) {
                /* The header never reached the device: give the filesystem its space back. */
                _cleanup_free_ char *grow_out = NULL;
                int k = ade_fs_grow(v->device, &grow_out);
                if (k < 0)
                        ade_log_debug_errno(k, "Growing %s back failed too: %s", v->device, strna(grow_out));
        }
        return r;
}

static int format_all(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o,
        char **ret_error) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *name = NULL, *node = NULL;
        const char *fstype = v->fstype && (ade_fs_is_ext(v->fstype) || streq(v->fstype, "xfs")) ? v->fstype : "ext4";
        int slot, r;

        /* Without device-mapper the new filesystem cannot be written through dm-crypt: refuse before
         * destroying anything. */
        if (access("/dev/mapper/control", F_OK) < 0)
                return ade_log_debug_errno(ENODEV, "Format-all of %s needs device-mapper, which is missing", v->device);

        r = luks_init(v->device, NULL, &cd);
        if (r < 0)
                return r;
        r = set_keyfile_pbkdf(cd);
        if (r < 0)
                return r;
        r = crypt_format(cd, CRYPT_LUKS2, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, NULL, NULL, ADE_LUKS_KEY_BYTES, NULL);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot format %s as LUKS2: %m", v->device);
        r = slot = add_keyslot_and_token(cd, token, keyfile);
        if (r < 0)
                return r;
        r = hook(o, ADE_LUKS_STEP_HEADER_WRITTEN);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (o->active_name)
                name = strdup(o->active_name);
        else
                r = asprintf(&name, "ade-format-%s", crypt_get_uuid(cd));
        if (!name || r < 0)
                return -ENOMEM;
        r = crypt_activate_by_passphrase(cd, name, slot, (const char *)keyfile->data, keyfile->size, 0);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot activate %s as %s: %m", v->device, name);
        if (asprintf(&node, "%s/%s", crypt_get_dir(), name) < 0)
                r = -ENOMEM;
        else
                r = ade_fs_make(node, fstype, v->label, v->fs_uuid, ret_error);
        if (!o->active_name)
                (void)crypt_deactivate(cd, name);
        return r;
}

int ade_luks_encrypt(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o,
        AdeLuksPlan *ret_plan, char **ret_error) {
        _cleanup_(ade_luks_plan_done) AdeLuksPlan plan = {};
        _cleanup_free_ char *found = NULL;
        AdeLuksStatus st;
        int r;

        assert(v);
        assert(o);

        r = check_write_allowed(token, keyfile, o);
        if (r < 0)
                return r;
        if (isempty(o->header_dir))
                return -EINVAL;

        /* Already ours (attached header in progress or done)? Then continue, never start over. */
        if (ade_luks_status(v->device, NULL, &st) >= 0 && st.state != ADE_LUKS_STATE_NONE) {
                if (st.state == ADE_LUKS_STATE_FINISHED && !st.has_token)
                        return ade_log_debug_errno(EEXIST, "%s is already LUKS2 and not ours", v->device);
                if (st.operation == ADE_LUKS_OP_DECRYPT)
                        return ade_log_debug_errno(EBUSY, "%s is being decrypted; finish that first", v->device);
                plan.mode = ADE_LUKS_MODE_IN_PLACE;
                plan.header = ADE_LUKS_HEADER_ATTACHED;
                plan.device_size = v->size;
                plan.data_size = st.data_size;
                r = ade_luks_resume(v->device, NULL, keyfile, o);
                goto done;
        }
        /* A detached header of ours for this device? */
        if (ade_luks_find_header(o->header_dir, v->stable_id ?: v->device, &found) >= 0) {
                if (ade_luks_status(v->device, found, &st) >= 0 && st.operation == ADE_LUKS_OP_DECRYPT)
                        return ade_log_debug_errno(
                                EBUSY, "%s is being decrypted (header %s); finish that first", v->device, found);
                plan.mode = ADE_LUKS_MODE_IN_PLACE;
                plan.header = ADE_LUKS_HEADER_DETACHED;
                plan.device_size = plan.data_size = v->size;
                r = ade_luks_resume(v->device, found, keyfile, o);
                plan.header_path = TAKE_PTR(found);
                goto done;
        }

        r = plan_volume(v, o, true, &plan, ret_error);
        if (r < 0)
                return r;
        ade_log_debug("Encrypting %s: %s", v->device, plan.reason);
        r = hook(o, ADE_LUKS_STEP_PLANNED);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (plan.mode == ADE_LUKS_MODE_FORMAT_ALL)
                r = format_all(v, token, keyfile, o, ret_error);
        else if (plan.header == ADE_LUKS_HEADER_DETACHED)
                r = encrypt_detached(v, &plan, token, keyfile, o);
        else
                r = encrypt_attached(v, &plan, token, keyfile, o, ret_error);

done:
        if ((r >= 0 || r == -ECANCELED) && ret_plan) {
                *ret_plan = plan;
                plan = (AdeLuksPlan){};
        }
        return r;
}

/* ---- resume ------------------------------------------------------------------------------- */

static int recover_if_crashed(struct crypt_device **cd, const char *device, const char *header,
        const AdeSecret *keyfile, const AdeLuksOptions *o) {
        struct crypt_params_reencrypt p = {};
        crypt_reencrypt_info ri;
        int r;

        ri = crypt_reencrypt_status(*cd, &p);
        if (ri == CRYPT_REENCRYPT_INVALID)
                return ade_log_debug_errno(EUCLEAN, "The reencryption metadata of %s is invalid", header ?: device);

        if (p.flags & CRYPT_REENCRYPT_REPAIR_NEEDED) {
                /* Metadata written by libcryptsetup < 2.4.3 lacks its digest (CVE-2021-4122). */
                struct crypt_params_reencrypt rp = {.flags = CRYPT_REENCRYPT_REPAIR_NEEDED};
                r = crypt_reencrypt_init_by_passphrase(*cd, NULL, (const char *)keyfile->data, keyfile->size,
                        CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &rp);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot repair the reencryption metadata of %s: %m", device);
        }

        if (ri != CRYPT_REENCRYPT_CRASH)
                return 0;

        ade_log_debug("Recovering the interrupted reencryption of %s", device);
        if (o->active_name)
                /* Activation recovers the hotzone, then maps the device in reencryption state. */
                r = crypt_activate_by_passphrase(*cd, o->active_name, CRYPT_ANY_SLOT, (const char *)keyfile->data,
                        keyfile->size, CRYPT_ACTIVATE_SHARED);
        else {
                struct crypt_params_reencrypt rp = {.flags = CRYPT_REENCRYPT_RECOVERY};
                r = keyslot_by_key(*cd, keyfile);
                if (r >= 0)
                        r = crypt_reencrypt_init_by_passphrase(*cd, NULL, (const char *)keyfile->data, keyfile->size,
                                CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &rp);
        }
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot recover the reencryption of %s: %m", device);

        /* Reload: the recovery rewrote the metadata. */
        crypt_free(TAKE_PTR(*cd));
        return luks_load(device, header, cd);
}

/* libcryptsetup ends a reencryption with several metadata writes after the last hotzone: the unused
 * area is wiped, the old keyslots and the reencrypt keyslot destroyed, the requirement flag
 * cleared. A kill in between leaves every byte converted but metadata that libcryptsetup 2.6 can
 * neither resume nor finish: a datashift encryption fails with "No segments to set", a decryption
 * has lost its last keyslot. Recognise that state by its segments: one that is not a backup,
 * covering the whole device, not in reencryption. Returns 1 with *ret_plain (linear: decrypted) and
 * the backup-moved-segment's place (the plaintext copy a datashift encryption leaves at the end,
 * length 0 when none), 0 when work remains. */
static int reencrypt_data_done(
        struct crypt_device *cd, bool *ret_plain, uint64_t *ret_moved_offset, uint64_t *ret_moved_length) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *segments = NULL, *only = NULL;
        const char *dump = NULL, *size = NULL, *type = NULL;
        uint64_t moved_offset = 0, moved_length = 0;
        int n = 0, r;

        r = crypt_dump_json(cd, &dump, 0);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot read the LUKS2 metadata of %s: %m", crypt_get_device_name(cd));
        r = ade_json_parse(dump, strlen(dump), &root);
        if (r < 0)
                return r;
        r = ade_json_get_object(root, "segments", &segments);
        if (r < 0)
                return r;
        json_object_object_foreach(segments, key, seg) {
                json_object *flags = NULL;
                bool backup = false;

                (void)key;
                if (json_object_object_get_ex(seg, "flags", &flags) && json_object_is_type(flags, json_type_array))
                        for (size_t i = 0; i < json_object_array_length(flags); i++) {
                                const char *f = json_object_get_string(json_object_array_get_idx(flags, i));
                                if (f && startswith(f, "backup-"))
                                        backup = true;
                                else if (f && streq(f, "in-reencryption"))
                                        return 0;
                                if (f && streq(f, "backup-moved-segment")) {
                                        const char *off = NULL, *len = NULL;
                                        if (ade_json_get_string(seg, "offset", &off) < 0 ||
                                                ade_json_get_string(seg, "size", &len) < 0 ||
                                                sscanf(off, "%" SCNu64, &moved_offset) != 1 ||
                                                sscanf(len, "%" SCNu64, &moved_length) != 1)
                                                return -EUCLEAN;
                                }
                        }
                if (!backup) {
                        only = seg;
                        n++;
                }
        }
        if (n != 1 || ade_json_get_string(only, "size", &size) < 0 || !streq(size, "dynamic") ||
                ade_json_get_string(only, "type", &type) < 0)
                return 0;
        *ret_plain = streq(type, "linear");
        *ret_moved_offset = moved_offset;
        *ret_moved_length = moved_length;
        return 1;
}

/* What the finished header keeps of the unfinished one. */
typedef struct FinishedHeader {
        char *uuid, *cipher, *mode, *label, *subsystem;
        uint64_t metadata_size, keyslots_size, data_offset; /* data_offset in sectors */
        uint32_t sector_size;
        AdeSecret *volume_key;
        AdeLuksToken *token;
} FinishedHeader;

static void finished_header_done(FinishedHeader *h) {
        free(h->uuid);
        free(h->cipher);
        free(h->mode);
        free(h->label);
        free(h->subsystem);
        ade_secret_free(h->volume_key);
        ade_luks_token_free(h->token);
}

static int finished_header_read(
        struct crypt_device *cd, const char *device, const AdeSecret *keyfile, FinishedHeader *h) {
        size_t vk_size;
        int r;

        r = token_find(cd, &h->token);
        if (r < 0)
                return ade_log_debug_errno(r, "%s has no Azure_Disk_Encryption token to carry over: %m", device);
        r = crypt_get_volume_key_size(cd);
        if (r <= 0)
                return -EINVAL;
        r = ade_secret_new(r, &h->volume_key);
        if (r < 0)
                return r;
        vk_size = h->volume_key->size;
        r = crypt_volume_key_get(
                cd, CRYPT_ANY_SLOT, (char *)h->volume_key->data, &vk_size, (const char *)keyfile->data, keyfile->size);
        if (r < 0)
                return ade_log_debug_errno(r, "The key file opens no keyslot of %s: %m", device);
        r = ade_secret_truncate(h->volume_key, vk_size);
        if (r < 0)
                return r;
        h->uuid = strdup(crypt_get_uuid(cd) ?: "");
        h->cipher = strdup(crypt_get_cipher(cd) ?: "");
        h->mode = strdup(crypt_get_cipher_mode(cd) ?: "");
        h->label = strdup(crypt_get_label(cd) ?: "");
        h->subsystem = strdup(crypt_get_subsystem(cd) ?: "");
        if (!h->uuid || !h->cipher || !h->mode || !h->label || !h->subsystem)
                return -ENOMEM;
        h->data_offset = crypt_get_data_offset(cd);
        h->sector_size = crypt_get_sector_size(cd);
        return crypt_get_metadata_size(cd, &h->metadata_size, &h->keyslots_size);
}

static int finished_header_write(
        const FinishedHeader *h, const char *device, const char *header, const AdeSecret *keyfile) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        struct crypt_params_luks2 luks2 = {
                .sector_size = h->sector_size,
                .label = isempty(h->label) ? NULL : h->label,
                .subsystem = isempty(h->subsystem) ? NULL : h->subsystem,
        };
        int r;

        r = luks_init(device, header, &cd);
        if (r < 0)
                return r;
        r = crypt_set_metadata_size(cd, h->metadata_size, h->keyslots_size);
        if (r >= 0)
                r = crypt_set_data_offset(cd, h->data_offset);
        if (r >= 0)
                r = set_keyfile_pbkdf(cd);
        if (r < 0)
                return r;
        r = crypt_format(cd, CRYPT_LUKS2, h->cipher, h->mode, h->uuid, (const char *)h->volume_key->data,
                h->volume_key->size, &luks2);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot write the finished LUKS2 header of %s: %m", device);
        r = add_keyslot_and_token(cd, h->token, keyfile);
        return r < 0 ? r : 0;
}

/* The end of an interrupted encryption: the data is all encrypted, only the metadata is
 * unfinished. Write the header libcryptsetup would have left, anew: same UUID, volume key, data
 * offset, metadata sizes and label, the key file's keyslot and our token; and, as libcryptsetup
 * would have, put random over the plaintext copy of the first hotzone that a data shift leaves near
 * the end. The old header is backed up first; a detached one is replaced by a rename. */
static int finish_encryption_metadata(struct crypt_device **cd, const char *device, const char *header,
        const AdeSecret *keyfile, const AdeLuksOptions *o, uint64_t moved_offset, uint64_t moved_length) {
        _cleanup_(finished_header_done) FinishedHeader h = {};
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = backup_header_cd(*cd, o->header_dir, NULL);
        if (r < 0)
                return r;
        r = finished_header_read(*cd, device, keyfile, &h);
        if (r < 0)
                return r;

        ade_log_debug("Finishing the metadata of %s: its data is all encrypted", device);
        if (moved_length > 0) {
                r = crypt_wipe(*cd, device, CRYPT_WIPE_RANDOM, moved_offset, moved_length, 1024 * 1024, 0, NULL, NULL);
                if (r < 0)
                        return ade_log_debug_errno(
                                r, "Cannot wipe the plaintext copy at %" PRIu64 " on %s: %m", moved_offset, device);
        }
        crypt_free(TAKE_PTR(*cd));

        if (!header)
                return finished_header_write(&h, device, NULL, keyfile);

        if (asprintf(&tmp, "%s.finish-XXXXXX", header) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot create %s: %m", tmp);
        r = -posix_fallocate(fd, 0, 4096);
        close(TAKE_FD(fd));
        if (r >= 0)
                r = finished_header_write(&h, device, tmp, keyfile);
        if (r >= 0)
                r = make_durable(tmp);
        if (r >= 0 && rename(tmp, header) < 0)
                r = ade_log_debug_errno(errno, "Cannot replace %s: %m", header);
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        return fsync_parent(header);
}

int ade_luks_resume(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        struct crypt_params_reencrypt p = {};
        crypt_reencrypt_info ri;
        bool decrypting, plain = false;
        uint64_t moved_offset = 0, moved_length = 0;
        int r;

        assert(device);
        assert(keyfile);
        assert(o);

        r = luks_init(device, header, &cd);
        if (r < 0)
                return r;
        r = crypt_load(cd, CRYPT_LUKS2, NULL);
        if (r == -EINVAL && !header && !isempty(o->header_dir)) {
                /* No header on the device: a detached one, or one exported for decryption, may
                 * name it in header_dir. */
                _cleanup_free_ char *found = NULL;

                if (ade_luks_find_header(o->header_dir, device, &found) >= 0)
                        return ade_luks_resume(device, found, keyfile, o);
        }
        if (r == -EINVAL)
                return 0; /* not LUKS: nothing to resume */
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot read the LUKS2 header of %s: %m", header ?: device);

        r = recover_if_crashed(&cd, device, header, keyfile, o);
        if (r < 0)
                return r;

        ri = crypt_reencrypt_status(cd, &p);
        if (ri == CRYPT_REENCRYPT_NONE)
                return 0;
        if (ri != CRYPT_REENCRYPT_CLEAN)
                return ade_log_debug_errno(EUCLEAN, "The reencryption of %s is not in a resumable state", device);
        decrypting = p.mode == CRYPT_REENCRYPT_DECRYPT;

        r = reencrypt_data_done(cd, &plain, &moved_offset, &moved_length);
        if (r < 0)
                return r;
        if (r > 0 && plain && decrypting)
                /* Plaintext throughout: nothing in the header is needed any more. */
                goto decrypted;
        if (r > 0 && !plain && !decrypting)
                /* Never hand this to libcryptsetup: 2.6 would encrypt a detached volume's data a
                 * second time from its start, and refuses a datashift one. */
                return finish_encryption_metadata(&cd, device, header, keyfile, o, moved_offset, moved_length);

        /* Everything but the hotzone size is immutable and comes from the metadata. */
        p.resilience = NULL;
        p.hash = NULL;
        p.max_hotzone_size = hotzone_sectors(o);
        p.device_size = 0;
        p.luks2 = NULL;
        p.flags = CRYPT_REENCRYPT_RESUME_ONLY;
        r = crypt_reencrypt_init_by_passphrase(cd, o->active_name, (const char *)keyfile->data, keyfile->size,
                CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &p);
        if (r == -EPERM)
                return ade_log_debug_errno(ENOKEY, "The key file opens no keyslot of %s", header ?: device);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot resume the reencryption of %s: %m", device);

        r = run_reencrypt(cd, o);
        if (r < 0)
                return r;

decrypted:
        if (decrypting && header) {
                /* The device is plaintext again; its header file opens nothing any more. */
                crypt_free(TAKE_PTR(cd));
                if (unlink(header) < 0 && errno != ENOENT)
                        return ade_log_debug_errno(errno, "Cannot remove %s: %m", header);
                (void)fsync_parent(header);
        }
        return 0;
}

/* ---- decryption ------------------------------------------------------------------------------ */

int ade_luks_decrypt(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *exported = NULL, *found = NULL;
        struct crypt_params_reencrypt params = {
                .mode = CRYPT_REENCRYPT_DECRYPT,
                .hash = "sha256",
                .max_hotzone_size = hotzone_sectors(o),
        };
        AdeLuksStatus st;
        int slot, r;

        assert(device);
        assert(keyfile);
        assert(o);

        if (isempty(o->header_dir))
                return -EINVAL;
        if (!resilience_ok(o->resilience))
                return -EINVAL;

        r = ade_luks_status(device, header, &st);
        if (r < 0)
                return r;
        if (st.state == ADE_LUKS_STATE_NONE && !header && ade_luks_find_header(o->header_dir, device, &found) >= 0) {
                /* Detached, or exported by an interrupted decryption: the header names the device. */
                header = found;
                r = ade_luks_status(device, header, &st);
                if (r < 0)
                        return r;
        }
        if (st.state == ADE_LUKS_STATE_NONE)
                return ade_log_debug_errno(
                        ENOENT, "%s has no LUKS2 header%s%s", device, header ? " in " : "", header ?: "");
        if (st.state != ADE_LUKS_STATE_FINISHED) {
                if (st.operation != ADE_LUKS_OP_DECRYPT)
                        return ade_log_debug_errno(EBUSY, "%s is being encrypted; finish that first", device);
                r = ade_luks_resume(device, header, keyfile, o);
                if (r >= 0 || r == -ECANCELED) {
                        if (ret_header && header && !(*ret_header = strdup(header)))
                                return -ENOMEM;
                }
                return r;
        }

        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        r = slot = keyslot_by_key(cd, keyfile);
        if (r < 0)
                return ade_log_debug_errno(r, "The key file opens no keyslot of %s", header ?: device);

        r = backup_header_cd(cd, o->header_dir, NULL);
        if (r < 0)
                return r;
        r = hook(o, ADE_LUKS_STEP_HEADER_BACKED_UP);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (st.header == ADE_LUKS_HEADER_DETACHED) {
                /* No data offset: decrypt in place, back to front, with a crash-safe hotzone. */
                params.direction = CRYPT_REENCRYPT_BACKWARD;
                params.resilience = o->resilience ?: "checksum";
        } else {
                /* The header leaves the device first; the data then moves back to the start. That file
                 * is from now on the only way to open the volume: it lives in header_dir, durable. */
                r = asprintf(&exported, "%s/%s.decrypt-header", o->header_dir, st.uuid);
                if (r < 0)
                        return -ENOMEM;
                r = crypt_header_backup(cd, CRYPT_LUKS2, exported);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot export the header of %s to %s: %m", device, exported);
                r = make_durable(exported);
                if (r < 0)
                        return r;
                r = hook(o, ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED);
                if (r != 0)
                        return r < 0 ? r : -ECANCELED;

                params.direction = CRYPT_REENCRYPT_FORWARD;
                params.resilience =
                        o->resilience && streq(o->resilience, "journal") ? "datashift-journal" : "datashift-checksum";
                params.data_shift = crypt_get_data_offset(cd);
                params.flags = CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT;

                crypt_free(TAKE_PTR(cd));
                r = luks_load(device, exported, &cd);
                if (r < 0)
                        return r;

                /* The exported header names the device in its token (the file only, not the
                 * device), so that an interrupted decryption finds it again. */
                {
                        _cleanup_(ade_luks_token_freep) AdeLuksToken *cur = NULL;

                        if (token_find(cd, &cur) >= 0 && !cur->device_id) {
                                cur->device_id = strdup(device);
                                if (!cur->device_id)
                                        return -ENOMEM;
                                r = token_store(cd, cur, cur->keyslot);
                                if (r < 0)
                                        return r;
                                r = make_durable(exported);
                                if (r < 0)
                                        return r;
                        }
                }

                /* The device must stop looking like LUKS, or something could open it with its stale
                 * header while the data moves. */
                r = ade_fs_wipe_signatures(device);
                if (r < 0) {
                        _cleanup_crypt_ struct crypt_device *rc = NULL;
                        if (luks_init(device, NULL, &rc) >= 0 && crypt_header_restore(rc, CRYPT_LUKS2, exported) >= 0)
                                (void)unlink(exported);
                        return r;
                }
        }

        /* The reencryption's digest takes the context's PBKDF: a loaded context would benchmark one. */
        r = set_keyfile_pbkdf(cd);
        if (r >= 0)
                r = crypt_reencrypt_init_by_passphrase(cd, o->active_name, (const char *)keyfile->data, keyfile->size,
                        slot, CRYPT_ANY_SLOT, NULL, NULL, &params);
        if (r < 0) {
                ade_log_debug_errno(r, "Cannot initialise the decryption of %s: %m", device);
                if (exported && crypt_reencrypt_status(cd, NULL) == CRYPT_REENCRYPT_NONE) {
                        _cleanup_crypt_ struct crypt_device *rc = NULL;
                        if (luks_init(device, NULL, &rc) >= 0 && crypt_header_restore(rc, CRYPT_LUKS2, exported) >= 0)
                                (void)unlink(exported);
                }
                return r;
        }
        if (ret_header && exported && !(*ret_header = strdup(exported)))
                return -ENOMEM;

        r = run_reencrypt(cd, o);
        if (r < 0)
                return r;

        crypt_free(TAKE_PTR(cd));
        if (exported || header) {
                const char *done = exported ?: header;
                if (unlink(done) < 0 && errno != ENOENT)
                        return ade_log_debug_errno(errno, "Cannot remove %s: %m", done);
                (void)fsync_parent(done);
        }
        return 0;
}

/* ---- keys and tokens ---------------------------------------------------------------------- */

int ade_luks_rotate(const char *device, const char *header, const AdeSecret *old_keyfile, const AdeSecret *new_keyfile,
        const AdeLuksToken *new_token, const AdeLuksOptions *o) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *cur = NULL, *t = NULL;
        _cleanup_free_ char *backup = NULL;
        int old_slot, new_slot, r;

        assert(device);
        assert(old_keyfile);
        assert(o);

        r = check_write_allowed(new_token, new_keyfile, o);
        if (r < 0)
                return r;
        if (isempty(o->header_dir))
                return -EINVAL;

        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
                return ade_log_debug_errno(EBUSY, "%s is being reencrypted; rotate the key after it ends", device);

        old_slot = keyslot_by_key(cd, old_keyfile);
        new_slot = keyslot_by_key(cd, new_keyfile);
        if (old_slot < 0 && old_slot != -ENOKEY)
                return old_slot;
        if (new_slot < 0 && new_slot != -ENOKEY)
                return new_slot;
        if (old_slot < 0 && new_slot < 0)
                return ade_log_debug_errno(ENOKEY, "Neither key file opens a keyslot of %s", header ?: device);
        (void)token_find(cd, &cur);

        /* Keep the DeviceId of a detached header across the rotation. */
        r = ade_luks_token_copy(new_token, &t);
        if (r < 0)
                return r;
        if (!t->device_id && cur && cur->device_id && !(t->device_id = strdup(cur->device_id)))
                return -ENOMEM;

        r = backup_header_cd(cd, o->header_dir, &backup);
        if (r < 0)
                return r;
        r = hook(o, ADE_LUKS_STEP_HEADER_BACKED_UP);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (new_slot < 0) {
                r = set_keyfile_pbkdf(cd);
                if (r < 0)
                        return r;
                new_slot = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)old_keyfile->data,
                        old_keyfile->size, (const char *)new_keyfile->data, new_keyfile->size);
                if (new_slot < 0)
                        return ade_log_debug_errno(
                                new_slot, "Cannot add a keyslot for the new key file to %s: %m", device);
        }
        r = hook(o, ADE_LUKS_STEP_ROTATE_KEYSLOT_ADDED);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (!cur || cur->keyslot != new_slot || !streq_ptr(cur->secret_url, t->secret_url) ||
                !streq_ptr(cur->passphrase, t->passphrase) || !streq_ptr(cur->kek_url, t->kek_url)) {
                r = token_store(cd, t, new_slot);
                if (r < 0)
                        return r;
        }
        r = hook(o, ADE_LUKS_STEP_ROTATE_TOKEN_SWAPPED);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;

        if (old_slot >= 0 && old_slot != new_slot) {
                r = crypt_keyslot_destroy(cd, old_slot);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot remove the old keyslot %d of %s: %m", old_slot, device);
        }
        r = hook(o, ADE_LUKS_STEP_ROTATE_OLD_REMOVED);
        if (r != 0)
                return r < 0 ? r : -ECANCELED;
        prune_backups(o->header_dir, crypt_get_uuid(cd), backup);
        return 0;
}

int ade_luks_update_token(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksToken *token,
        const AdeLuksOptions *o) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *cur = NULL, *t = NULL;
        _cleanup_free_ char *backup = NULL;
        int slot, r;

        assert(device);
        assert(o);

        r = check_write_allowed(token, keyfile, o);
        if (r < 0)
                return r;
        if (isempty(o->header_dir))
                return -EINVAL;
        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        r = slot = keyslot_by_key(cd, keyfile);
        if (r < 0)
                return r;
        (void)token_find(cd, &cur);
        r = ade_luks_token_copy(token, &t);
        if (r < 0)
                return r;
        if (!t->device_id && cur && cur->device_id && !(t->device_id = strdup(cur->device_id)))
                return -ENOMEM;
        r = backup_header_cd(cd, o->header_dir, &backup);
        if (r < 0)
                return r;
        r = token_store(cd, t, slot);
        if (r < 0)
                return r;
        prune_backups(o->header_dir, crypt_get_uuid(cd), backup);
        return 0;
}

int ade_luks_test_key(const char *device, const char *header, const AdeSecret *keyfile) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(device);
        assert(keyfile);

        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        r = keyslot_by_key(cd, keyfile);
        if (r == -ENOKEY)
                return 0;
        return r < 0 ? r : 1;
}

int ade_luks_open(const char *device, const char *header, const char *name, const AdeSecret *keyfile) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(device);
        assert(name);
        assert(keyfile);

        if (access("/dev/mapper/control", F_OK) < 0)
                return ade_log_debug_errno(ENODEV, "Cannot open %s: no device-mapper", device);
        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        r = crypt_activate_by_passphrase(cd, name, CRYPT_ANY_SLOT, (const char *)keyfile->data, keyfile->size, 0);
        if (r == -EPERM)
                return ade_log_debug_errno(ENOKEY, "The key file opens no keyslot of %s", header ?: device);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot activate %s as %s: %m", device, name);
        return 0;
}

int ade_luks_close(const char *name) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(name);

        r = crypt_init_by_name(&cd, name);
        if (r < 0)
                return ade_log_debug_errno(r, "No active device %s: %m", name);
        r = crypt_deactivate(cd, name);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot deactivate %s: %m", name);
        return 0;
}
