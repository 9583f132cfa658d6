/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libcryptsetup plumbing every LUKS operation is built from (ade-luks-internal.h), and the
 * read-only queries and header backups that need nothing more: status, the token, backups, the
 * detached header of a device. */
#include <assert.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "ade-dm.h"
#include "ade-fd.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-luks-internal.h"

/* ---- libcryptsetup plumbing --------------------------------------------------------------- */

static void cryptsetup_log(int level, const char *msg, void *usrptr) {
        size_t n = strlen(msg);

        (void)usrptr;
        (void)level;
        /* libcryptsetup ends its lines with a newline; our log adds its own. */
        ade_log_debug("libcryptsetup: %.*s", (int)(n > 0 && msg[n - 1] == '\n' ? n - 1 : n), msg);
}

int luks_init(const char *device, const char *header, struct crypt_device **ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        if (header)
                r = crypt_init_data_device(&cd, header, device);
        else
                r = crypt_init(&cd, device);
        if (r < 0)
                return ade_log_debug_errno(ade_fd_errno(r), "Cannot open %s: %m", header ?: device);
        crypt_set_log_callback(cd, cryptsetup_log, NULL);
        *ret = TAKE_PTR(cd);
        return 0;
}

int luks_load_type(const char *device, const char *header, const char *type, struct crypt_device **ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        r = luks_init(device, header, &cd);
        if (r < 0)
                return r;
        r = ade_fd_errno(crypt_load(cd, type, NULL));
        if (r < 0)
                return ade_log_debug_errno(r, "No %s header on %s: %m", type, header ?: device);
        *ret = TAKE_PTR(cd);
        return 0;
}

int luks_load(const char *device, const char *header, struct crypt_device **ret) {
        return luks_load_type(device, header, CRYPT_LUKS2, ret);
}

int luks_load_keyed(const char *device, const char *header, const AdeSecret *keyfile, struct crypt_device **ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int slot, r;

        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        slot = luks_keyslot_by_key(cd, keyfile);
        if (slot == -ENOKEY)
                return ade_log_debug_errno(slot, "The key file opens no keyslot of %s", header ?: device);
        if (slot < 0)
                return ade_log_debug_errno(slot, "Cannot try the key file on %s: %m", header ?: device);
        *ret = TAKE_PTR(cd);
        return slot;
}

int luks_set_keyfile_pbkdf(struct crypt_device *cd) {
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

int luks_keyslot_by_key(struct crypt_device *cd, const AdeSecret *key) {
        int r;

        r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *)key->data, key->size, 0);
        if (r == -EPERM)
                return -ENOKEY;
        return r;
}

int luks_token_find(struct crypt_device *cd, AdeLuksToken **ret) {
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

int luks_token_store(struct crypt_device *cd, const AdeLuksToken *t, int keyslot) {
        _cleanup_free_ char *json = NULL;
        int id, r;

        r = ade_luks_token_to_json(t, keyslot, &json);
        if (r < 0)
                return r;
        id = luks_token_find(cd, NULL);
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

int luks_hook(const AdeLuksOptions *o, AdeLuksStep step) {
        ade_log_debug("Reached step %s", ade_luks_step_to_string(step));
        if (o && o->hook) {
                int r = o->hook(step, o->hook_userdata);
                if (r != 0)
                        return r < 0 ? r : -ECANCELED;
        }
        return 0;
}

int luks_activate(struct crypt_device *cd, const char *name, int slot, const AdeSecret *keyfile, uint32_t flags) {
        int r;

        ade_dm_lock();
        r = crypt_activate_by_passphrase(cd, name, slot, (const char *)keyfile->data, keyfile->size, flags);
        ade_dm_unlock();
        return r;
}

int luks_deactivate(struct crypt_device *cd, const char *name) {
        int r;

        ade_dm_lock();
        r = crypt_deactivate(cd, name);
        ade_dm_unlock();
        return r;
}

int luks_run_reencrypt(struct crypt_device *cd, const AdeLuksOptions *o) {
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
uint64_t luks_hotzone_sectors(const AdeLuksOptions *o) {
        if (o->hotzone_size == 0 && o->active_name)
                return ADE_LUKS_ONLINE_HOTZONE / SECTOR;
        return o->hotzone_size / SECTOR;
}

bool luks_resilience_ok(const char *resilience) {
        return !resilience || streq(resilience, "checksum") || streq(resilience, "journal");
}

int luks_check_escrow(const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o) {
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

int luks_check_write_allowed(const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o) {
        int r;

        r = luks_check_escrow(token, keyfile, o);
        if (r < 0)
                return r;
        return isempty(o->header_dir) ? -EINVAL : 0;
}

int luks_add_keyslot_and_token(struct crypt_device *cd, const AdeLuksToken *token, const AdeSecret *keyfile) {
        int slot, r;

        r = luks_set_keyfile_pbkdf(cd);
        if (r < 0)
                return r;
        slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *)keyfile->data, keyfile->size);
        if (slot < 0)
                return ade_log_debug_errno(slot, "Cannot add the keyslot: %m");
        r = luks_token_store(cd, token, slot);
        if (r < 0)
                return r;
        return slot;
}

/* ---- status and token ------------------------------------------------------------------------ */

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
        /* EINVAL is "no LUKS2 header" only when an open inside did not fail for want of a descriptor. */
        r = ade_fd_errno(crypt_load(cd, CRYPT_LUKS2, NULL));
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
        s.has_token = luks_token_find(cd, NULL) >= 0;
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
        id = luks_token_find(cd, &t);
        if (id < 0)
                return id;
        *ret = t;
        return 0;
}

/* ---- header backups -------------------------------------------------------------------------- */

int luks_make_durable(const char *path) {
        int r;

        if (chmod(path, 0600) < 0)
                return ade_log_debug_errno(errno, "Cannot make %s private: %m", path);
        r = ade_fsync_path(path, false);
        if (r < 0)
                return r;
        return ade_fsync_parent(path);
}

int luks_header_file_new(char *template) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = mkostemp(template, O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot create %s: %m", template);
        r = posix_fallocate(fd, 0, 4096);
        if (r != 0) {
                (void)unlink(template);
                return ade_log_debug_errno(r, "Cannot allocate %s: %m", template);
        }
        return 0;
}

int luks_header_backup_to(struct crypt_device *cd, const char *path) {
        uint64_t metadata = 0, keyslots = 0;
        _cleanup_free_ char *dir = NULL;
        struct statvfs sv;
        int r;

        r = crypt_header_backup(cd, CRYPT_LUKS2, path);
        if (r >= 0)
                return 0;
        /* libcryptsetup reports a short write as EIO: a full folder is the person's to fix, and says so. */
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        if (strrchr(dir, '/'))
                *strrchr(dir, '/') = '\0';
        if (r == -EIO && crypt_get_metadata_size(cd, &metadata, &keyslots) >= 0 && statvfs(dir, &sv) >= 0 &&
                (uint64_t)sv.f_bavail * sv.f_frsize < 2 * metadata + keyslots)
                r = -ENOSPC;
        (void)unlink(path);
        return r;
}

int luks_backup_header(struct crypt_device *cd, const char *header_dir, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = ade_mkdir_private(header_dir);
        if (r < 0)
                return r;
        r = ade_luks_uuid_path_new(header_dir, crypt_get_uuid(cd), ".backup", &path);
        if (r < 0)
                return r;
        r = luks_header_backup_to(cd, path);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot back up the LUKS2 header to %s: %m", path);
        r = luks_make_durable(path);
        if (r < 0)
                return r;
        ade_log_debug("Header backed up to %s", path);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

/* Header backups are kept until the next successful operation (docs/architecture.md §4): once one succeeded,
 * the older backups of the same volume go, the one it took stays. */
void luks_prune_backups(const char *header_dir, const char *uuid, const char *keep) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_free_ char *prefix = NULL;
        const char *keep_name = keep ? strrchr(keep, '/') : NULL;
        struct dirent *de;

        if (!ade_luks_uuid_is_valid(uuid) || asprintf(&prefix, "%s.", uuid) < 0)
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
        (void)ade_fsync_path(header_dir, true);
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
        return luks_backup_header(cd, header_dir, ret_path);
}

/* ---- detached headers ------------------------------------------------------------------------ */

/* Whether a token's DeviceId @id names the device @b (a stable id or a device path): the same text,
 * links to the same block device, or @b's stable id (a loop device's backing file) is @id. */
static bool same_device(const char *id, const char *b) {
        _cleanup_free_ char *b_id = NULL;
        struct stat sa, sb;

        if (streq(id, b))
                return true;
        if (stat(b, &sb) < 0 || !S_ISBLK(sb.st_mode))
                return false;
        if (stat(id, &sa) == 0 && S_ISBLK(sa.st_mode))
                return sa.st_rdev == sb.st_rdev;
        return ade_volume_stable_id(b, &b_id, NULL) >= 0 && streq(b_id, id);
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

                /* Backups and half-made files (*.tmp) never name the header of a device. */
                if (de->d_name[0] == '.' || strstr(de->d_name, ".backup") ||
                        (strlen(de->d_name) > 4 && streq(de->d_name + strlen(de->d_name) - 4, ".tmp")))
                        continue;
                if (asprintf(&path, "%s/%s", header_dir, de->d_name) < 0)
                        return -ENOMEM;
                if (crypt_init(&cd, path) < 0)
                        continue;
                crypt_set_log_callback(cd, cryptsetup_log, NULL);
                if (crypt_load(cd, CRYPT_LUKS2, NULL) < 0 || luks_token_find(cd, &t) < 0 || !t->device_id)
                        continue;
                if (same_device(t->device_id, device_id)) {
                        *ret_path = TAKE_PTR(path);
                        return 0;
                }
        }
        return -ENOENT;
}
