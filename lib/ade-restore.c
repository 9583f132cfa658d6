/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ade-cse.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-restore.h"
#include "ade-url.h"
#include "ade-util.h"

#define GENERATION_MAX 999999U
/* A LUKS2 header with its keyslots area is at most a few tens of MiB (docs/architecture.md §11). */
#define HEADER_SIZE_MAX (64U * 1024U * 1024U)

void ade_restore_generations_free(AdeRestoreGeneration *g, size_t n) {
        for (size_t i = 0; g && i < n; i++) {
                free(g[i].name);
                free(g[i].volume);
                free(g[i].device_id);
                free(g[i].obsolete);
                strv_free(g[i].metadata);
        }
        free(g);
}

void ade_restore_result_done(AdeRestoreResult *r) {
        r->blob = mfree(r->blob);
        r->kept = mfree(r->kept);
}

bool ade_restore_parse_generation(const char *s, unsigned *ret) {
        char *end;
        unsigned long g;

        if (!s || *s < '1' || *s > '9')
                return false;
        errno = 0;
        g = strtoul(s, &end, 10);
        if (errno || *end || g > GENERATION_MAX)
                return false;
        *ret = (unsigned)g;
        return true;
}

static int generation_cmp(const void *a, const void *b) {
        const AdeRestoreGeneration *x = a, *y = b;

        if (x->generation != y->generation)
                return x->generation < y->generation ? -1 : 1;
        return strcmp(x->name, y->name);
}

int ade_restore_list(AdeBlobClient *blob, const char *uuid, const char *device_id, AdeRestoreGeneration **ret,
        size_t *ret_n, AdeCloudError *ret_error) {
        AdeBlobItem *items = NULL;
        AdeRestoreGeneration *g = NULL;
        size_t n = 0, k = 0;
        int r;

        assert(blob);
        assert(uuid || device_id);
        assert(ret);
        assert(ret_n);

        /* Not by name prefix: a rescue machine has another host name than the one that uploaded. */
        r = ade_blob_list(blob, NULL, 0, &items, &n, ret_error);
        if (r < 0)
                return r;
        if (n > 0 && !(g = calloc(n, sizeof(*g)))) {
                ade_blob_items_free(items, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                const char *volume = ade_blob_metadata_get(items[i].metadata, "AdeVolume");
                const char *id = ade_blob_metadata_get(items[i].metadata, "AdeDeviceId");
                const char *obsolete = ade_blob_metadata_get(items[i].metadata, ADE_RESTORE_OBSOLETE);
                unsigned generation;

                if (!volume || !ade_luks_uuid_is_valid(volume) ||
                        !ade_restore_parse_generation(
                                ade_blob_metadata_get(items[i].metadata, "AdeGeneration"), &generation))
                        continue;
                if (uuid ? !strcaseeq(volume, uuid) : !streq_ptr(id, device_id))
                        continue;
                g[k] = (AdeRestoreGeneration){.name = TAKE_PTR(items[i].name),
                        .generation = generation,
                        .volume = strdup(volume),
                        .device_id = id ? strdup(id) : NULL,
                        .size = items[i].size,
                        .obsolete = obsolete ? strdup(obsolete) : NULL,
                        .metadata = TAKE_PTR(items[i].metadata)};
                k++;
                if (!g[k - 1].volume || (id && !g[k - 1].device_id) || (obsolete && !g[k - 1].obsolete)) {
                        ade_blob_items_free(items, n);
                        ade_restore_generations_free(g, k);
                        return -ENOMEM;
                }
        }
        ade_blob_items_free(items, n);
        if (k > 0)
                qsort(g, k, sizeof(*g), generation_cmp);
        else
                g = mfree(g);
        *ret = g;
        *ret_n = k;
        return 0;
}

int ade_restore_mark_obsolete(
        AdeBlobClient *blob, const char *uuid, const char *when, unsigned *ret_marked, AdeCloudError *ret_error) {
        AdeRestoreGeneration *gens = NULL;
        unsigned marked = 0;
        size_t n = 0;
        int r;

        assert(blob);
        assert(uuid);
        assert(when);

        r = ade_restore_list(blob, uuid, NULL, &gens, &n, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (gens[i].obsolete)
                        continue;
                r = strv_extend(&gens[i].metadata, ADE_RESTORE_OBSOLETE);
                if (r >= 0)
                        r = strv_extend(&gens[i].metadata, when);
                if (r >= 0)
                        r = ade_blob_set_metadata(blob, gens[i].name, gens[i].metadata, ret_error);
                if (r >= 0)
                        marked++;
        }
        ade_restore_generations_free(gens, n);
        if (ret_marked)
                *ret_marked = marked;
        return r < 0 ? r : 0;
}

_printf_(3, 4) static int say(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error && !*ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

/* The key resolver as client-side encryption's: KeyId is metadata that whoever can write to the
 * container may have edited, so only a versioned Key Vault key URL on a vault the resolver trusts
 * is asked to unwrap (docs/architecture.md §3). */
static int unwrap_with_resolver(void *userdata, const char *key_id, const char *alg, const char *wrapped,
        AdeSecret **ret_plain, AdeCloudError *ret_error) {
        AdeKeyVault *kv;
        int r;

        r = ade_url_keyvault_object(key_id, "keys", true, NULL, NULL, NULL);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        r = ade_resolver_keyvault(userdata, key_id, &kv, ret_error);
        if (r < 0)
                return r;
        return ade_cse_keyvault_unwrap(kv, key_id, alg, wrapped, ret_plain, ret_error);
}

/* Up to @limit bytes from the start of @path (a device or a file). */
static int read_start(const char *path, size_t limit, void **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(limit ? limit : 1);
        if (!buf)
                return -ENOMEM;
        while (done < limit) {
                ssize_t n = pread(fd, buf + done, limit - done, (off_t)done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = done;
        return 0;
}

/* Keeps what the device (or its header file) holds where the header goes, in
 * header_dir/<uuid>.<unix time>.before-restore: the span crypt_header_restore() overwrites, or the
 * whole detached file. *ret_path NULL when a detached file is missing (nothing to keep). */
static int keep_current(const AdeRestoreRequest *req, const char *uuid, size_t size, char **ret_path) {
        _cleanup_free_ void *data = NULL;
        _cleanup_free_ char *path = NULL;
        size_t n = 0;
        int r;

        r = read_start(req->header ?: req->device, req->header ? HEADER_SIZE_MAX : size, &data, &n);
        if (r == -ENOENT && req->header) {
                *ret_path = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        r = ade_mkdir_private(req->header_dir);
        if (r < 0)
                return r;
        r = ade_luks_uuid_path_new(req->header_dir, uuid, ".before-restore", &path);
        if (r < 0)
                return r;
        r = ade_write_file_atomic(path, data, n, 0600);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* The downloaded header, as a file libcryptsetup can load: in a private folder under header-dir. */
typedef struct Staged {
        char *dir;
        char *file;
} Staged;

static void staged_done(Staged *s) {
        if (s->file) {
                (void)unlink(s->file);
                s->file = mfree(s->file);
        }
        if (s->dir) {
                (void)rmdir(s->dir);
                s->dir = mfree(s->dir);
        }
}

static int stage(const char *header_dir, const void *data, size_t size, Staged *s) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = ade_mkdir_private(header_dir);
        if (r < 0)
                return r;
        if (asprintf(&s->dir, "%s/.restore.XXXXXX", header_dir) < 0) {
                s->dir = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(s->dir)) {
                s->dir = mfree(s->dir);
                return -errno;
        }
        if (asprintf(&s->file, "%s/header", s->dir) < 0) {
                s->file = NULL;
                return -ENOMEM;
        }
        fd = open(s->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = ade_write_all(fd, data, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        return r;
}

int ade_restore_header(AdeBlobClient *blob, AdeResolver *resolver, const AdeRestoreRequest *req, AdeRestoreResult *ret,
        AdeCloudError *ret_cloud, char **ret_error) {
        _cleanup_free_ void *body = NULL, *plain = NULL;
        _cleanup_(strv_freep) char **meta = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_(staged_done) Staged staged = {};
        _cleanup_free_ char *kept = NULL;
        AdeRestoreGeneration *gens = NULL, *pick = NULL;
        AdeRestoreResult res = {};
        AdeLuksStatus now = {}, got = {};
        const char *encryption_data, *volume, *device_uuid = NULL;
        const char *where;
        size_t n = 0, body_size = 0, plain_size = 0;
        uint64_t stated = 0;
        struct stat st;
        int r;

        assert(blob);
        assert(resolver);
        assert(req && req->device && req->header_dir);
        assert(ret);

        where = req->header ?: req->device;
        if (stat(req->device, &st) < 0)
                return say(ret_error, -errno, "Cannot read %s: %s", req->device, strerror(errno));
        /* The device's own header, when it can still be read, names the volume; a device in the middle
         * of a reencryption is resumed, not restored under it. */
        if ((!req->header || access(req->header, F_OK) == 0) && ade_luks_status(req->device, req->header, &now) >= 0 &&
                now.state != ADE_LUKS_STATE_NONE && ade_luks_uuid_is_valid(now.uuid)) {
                if (now.state == ADE_LUKS_STATE_CLEAN || now.state == ADE_LUKS_STATE_CRASH)
                        return say(ret_error, -EBUSY,
                                "%s is in the middle of a reencryption (%s): resume it instead of restoring its header",
                                req->device, ade_luks_state_to_string(now.state));
                device_uuid = now.uuid;
        }
        if (!device_uuid && !req->device_id)
                return say(
                        ret_error, -ENOENT, "%s has no readable header and no stable id to find its backups by", where);

        r = ade_restore_list(blob, device_uuid, req->device_id, &gens, &n, ret_cloud);
        if (r < 0) {
                say(ret_error, r, "Cannot list the header backups in %s: %s", ade_blob_client_url(blob), strerror(-r));
                goto finish;
        }
        /* The newest (or the one asked for); one of a volume decrypted since (the same device,
         * found by its stable id, may have been encrypted again) only when there is no other. */
        for (size_t i = 0; i < n; i++)
                if ((req->generation == 0 || gens[i].generation == req->generation) &&
                        (!pick || !gens[i].obsolete || pick->obsolete))
                        pick = &gens[i];
        if (!pick) {
                if (req->generation)
                        r = say(ret_error, -ENOENT, "%s has no header backup generation %u in %s (%s %s)", req->device,
                                req->generation, ade_blob_client_url(blob), device_uuid ? "volume" : "device id",
                                device_uuid ?: req->device_id);
                else
                        r = say(ret_error, -ENOENT, "%s has no header backup in %s (%s %s)", req->device,
                                ade_blob_client_url(blob), device_uuid ? "volume" : "device id",
                                device_uuid ?: req->device_id);
                goto finish;
        }
        if (pick->obsolete) {
                r = say(ret_error, -ESTALE,
                        "%s/%s is obsolete: its volume %s was decrypted at %s, so %s holds plaintext where the "
                        "header was and restoring it would overwrite the filesystem; nothing was written",
                        ade_blob_client_url(blob), pick->name, pick->volume, pick->obsolete, req->device);
                goto finish;
        }
        res.generation = pick->generation;
        res.blob = strdup(pick->name);
        if (!res.blob) {
                r = -ENOMEM;
                goto finish;
        }

        r = ade_blob_get(blob, pick->name, &body, &body_size, &meta, ret_cloud);
        if (r < 0) {
                say(ret_error, r, "Cannot download %s/%s: %s", ade_blob_client_url(blob), pick->name, strerror(-r));
                goto finish;
        }
        volume = ade_blob_metadata_get(meta, "AdeVolume");
        encryption_data = ade_blob_metadata_get(meta, ADE_CSE_METADATA_NAME);
        if (!volume || !strcaseeq(volume, pick->volume) || !encryption_data) {
                r = say(ret_error, -EBADMSG, "%s/%s changed since it was listed, or is not encrypted: not restored",
                        ade_blob_client_url(blob), pick->name);
                goto finish;
        }
        r = ade_cse_decrypt(body, body_size, encryption_data, unwrap_with_resolver, resolver, ADE_CSE_SIZE_UNKNOWN,
                &plain, &plain_size, ret_cloud);
        if (r < 0) {
                if (r == -EBADMSG || r == -EOPNOTSUPP)
                        say(ret_error, r, "%s/%s does not decrypt: it was tampered with or cut; nothing was written",
                                ade_blob_client_url(blob), pick->name);
                else
                        say(ret_error, r, "Cannot decrypt %s/%s with its key-encryption key: %s",
                                ade_blob_client_url(blob), pick->name, strerror(-r));
                goto finish;
        }
        if (plain_size == 0 || plain_size > HEADER_SIZE_MAX) {
                r = say(ret_error, -EBADMSG, "%s/%s holds %zu bytes, not a LUKS2 header; nothing was written",
                        ade_blob_client_url(blob), pick->name, plain_size);
                goto finish;
        }

        r = stage(req->header_dir, plain, plain_size, &staged);
        if (r < 0) {
                say(ret_error, r, "Cannot stage the downloaded header in %s: %s", req->header_dir, strerror(-r));
                goto finish;
        }
        /* The body's regions carry no count: a blob cut at a region boundary decrypts. The header states its size. */
        r = ade_luks_backup_file_size(req->device, staged.file, &stated);
        if (r >= 0 && stated != plain_size)
                r = -EBADMSG;
        if (r >= 0)
                r = ade_luks_status(req->device, staged.file, &got);
        if (r < 0) {
                say(ret_error, r,
                        "%s/%s is not a whole LUKS2 header (%zu bytes, the header states %" PRIu64
                        "); nothing was written",
                        ade_blob_client_url(blob), pick->name, plain_size, stated);
                goto finish;
        }
        if (!strcaseeq(got.uuid, pick->volume) || (device_uuid && !strcaseeq(got.uuid, device_uuid))) {
                r = say(ret_error, -EXDEV, "%s/%s holds the header of volume %s, not of %s (%s): nothing was written",
                        ade_blob_client_url(blob), pick->name, got.uuid, req->device, device_uuid ?: pick->volume);
                goto finish;
        }
        if (got.state != ADE_LUKS_STATE_FINISHED) {
                r = say(ret_error, -EBUSY,
                        "%s/%s was taken in the middle of a reencryption (%s): restored now it would reencrypt "
                        "ciphertext; pick a generation taken after it finished",
                        ade_blob_client_url(blob), pick->name, ade_luks_state_to_string(got.state));
                goto finish;
        }
        memcpy(res.uuid, got.uuid, sizeof(res.uuid));

        r = ade_luks_read_token(req->device, staged.file, &token);
        if (r < 0) {
                say(ret_error, r, "The header in %s/%s has no Azure_Disk_Encryption token: %s",
                        ade_blob_client_url(blob), pick->name, strerror(-r));
                goto finish;
        }
        r = ade_resolver_key_from_token(resolver, token, &keyfile, ret_cloud);
        if (r < 0) {
                say(ret_error, r, "Cannot recover the key of the header in %s/%s from %s: %s",
                        ade_blob_client_url(blob), pick->name, token->secret_url ?: "(no SecretURL)", strerror(-r));
                goto finish;
        }
        r = ade_luks_test_key(req->device, staged.file, keyfile);
        if (r == 0)
                r = say(ret_error, -ENOKEY, "The escrowed key %s opens no keyslot of the header in %s/%s: not restored",
                        token->secret_url, ade_blob_client_url(blob), pick->name);
        if (r < 0) {
                say(ret_error, r, "Cannot test the escrowed key against the header in %s/%s: %s",
                        ade_blob_client_url(blob), pick->name, strerror(-r));
                goto finish;
        }
        if (req->dry_run) {
                r = 0;
                goto finish;
        }

        r = keep_current(req, got.uuid, plain_size, &kept);
        if (r < 0) {
                say(ret_error, r, "Cannot keep a copy of what %s holds now in %s: %s; nothing was written", where,
                        req->header_dir, strerror(-r));
                goto finish;
        }
        if (req->header)
                r = ade_write_file_atomic(req->header, plain, plain_size, 0600);
        else
                r = ade_luks_restore_header(req->device, staged.file);
        if (r < 0) {
                say(ret_error, r, "Cannot write the header onto %s: %s%s%s", where, strerror(-r),
                        kept ? "; what it held is in " : "", strempty(kept));
                goto finish;
        }
        r = ade_luks_test_key(req->device, req->header, keyfile);
        if (r <= 0) {
                r = say(ret_error, -EIO, "The header was written onto %s but the escrowed key does not open it%s%s",
                        where, kept ? "; what it held is in " : "", strempty(kept));
                goto finish;
        }
        res.kept = TAKE_PTR(kept);
        r = 0;

finish:
        ade_restore_generations_free(gens, n);
        if (r < 0) {
                ade_restore_result_done(&res);
                return r;
        }
        *ret = res;
        return 0;
}
