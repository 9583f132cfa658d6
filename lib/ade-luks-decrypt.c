/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decryption back to plaintext, offline or online; an attached header is exported to header_dir
 * first. An interrupted one is handed to ade_luks_resume(). */
#include <assert.h>
#include <sys/stat.h>

#include "ade-fd.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-luks-internal.h"
#include "ade-volume.h"

/* The token of the header in @cd, now also naming @device (by its stable id), so that an
 * interrupted decryption finds its exported header again after a rename. */
static int tag_with_device(struct crypt_device *cd, const char *device) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *cur = NULL;
        _cleanup_free_ char *id = NULL;
        int r;

        if (luks_token_find(cd, &cur) < 0)
                return 0;
        r = ade_volume_stable_id(device, &id, NULL);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot identify %s: %m", device);
        if (streq_ptr(cur->device_id, id))
                return 0;
        free(cur->device_id);
        cur->device_id = TAKE_PTR(id);
        return luks_token_store(cd, cur, cur->keyslot);
}

/* What @path, an existing <uuid>.decrypt-header, is to the device whose header (UUID @uuid) is still
 * in place: 0 when it is a copy of that header (an export cut short before the device's header was
 * erased: made anew), 1 when it is that header with its decryption initialised (only an older ade
 * left that beside an intact device header; the resume erases the device's copy first), -EEXIST
 * when it belongs to something else. */
static int judge_export(const char *device, const char *path, const char *uuid) {
        AdeLuksStatus st;
        int r;

        r = ade_luks_status(device, path, &st);
        if (r < 0 || st.state == ADE_LUKS_STATE_NONE || !strcaseeq(st.uuid, uuid))
                return ade_log_debug_errno(EEXIST,
                        "%s exists and is not an export of the header of %s (UUID %s); move it away and decrypt again",
                        path, device, uuid);
        if (st.state == ADE_LUKS_STATE_FINISHED)
                return 0;
        if (st.operation != ADE_LUKS_OP_DECRYPT || st.state == ADE_LUKS_STATE_INVALID)
                return ade_log_debug_errno(
                        EEXIST, "%s holds a reencryption of %s that is not a decryption; move it away", path, device);
        return 1;
}

/* Copies the header in @cd, tagged with @device, to @path: through a temporary file made durable
 * and renamed, so that @path is whole or absent. */
static int export_header(struct crypt_device *cd, const char *device, const char *path) {
        _cleanup_crypt_ struct crypt_device *ecd = NULL;
        _cleanup_free_ char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        if (unlink(tmp) < 0 && errno != ENOENT)
                return ade_log_debug_errno(errno, "Cannot remove the unfinished export %s: %m", tmp);
        r = luks_header_backup_to(cd, tmp);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot export the header of %s to %s: %m", device, tmp);
        r = luks_load(device, tmp, &ecd);
        if (r >= 0)
                r = tag_with_device(ecd, device);
        crypt_free(TAKE_PTR(ecd));
        if (r >= 0)
                r = luks_make_durable(tmp);
        if (r >= 0 && rename(tmp, path) < 0)
                r = ade_log_debug_errno(errno, "Cannot rename %s to %s: %m", tmp, path);
        if (r >= 0)
                r = ade_fsync_parent(path);
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

/* Initialises the decryption with a data shift in the export @path of @device's header, whose own
 * copy on the device is erased already. libcryptsetup first copies the first hotzone's ciphertext
 * over the start of the device, then writes the metadata: a crash in between leaves the export as
 * it was and the moved data a copy, so doing it again is safe. */
static int init_export(const char *device, const char *path, const AdeSecret *keyfile, const AdeLuksOptions *o) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        struct crypt_params_reencrypt params = {
                .mode = CRYPT_REENCRYPT_DECRYPT,
                .direction = CRYPT_REENCRYPT_FORWARD,
                .resilience =
                        o->resilience && streq(o->resilience, "journal") ? "datashift-journal" : "datashift-checksum",
                .hash = "sha256",
                .max_hotzone_size = luks_hotzone_sectors(o),
                .flags = CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT | CRYPT_REENCRYPT_INITIALIZE_ONLY,
        };
        int slot, r;

        r = slot = luks_load_keyed(device, path, keyfile, &cd);
        if (r < 0)
                return r;
        params.data_shift = crypt_get_data_offset(cd);
        /* The reencryption's digest takes the context's PBKDF: a loaded context would benchmark one. */
        r = luks_set_keyfile_pbkdf(cd);
        if (r >= 0)
                r = crypt_reencrypt_init_by_passphrase(cd, o->active_name, (const char *)keyfile->data, keyfile->size,
                        slot, CRYPT_ANY_SLOT, NULL, NULL, &params);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot initialise the decryption of %s: %m", device);
        crypt_free(TAKE_PTR(cd));
        return luks_make_durable(path);
}

/* Whether @header is an export of this module's that was never initialised: named
 * <its uuid>.decrypt-header, with a data offset (it came from the head of the device) and no
 * reencryption, while the device carries no header of its own (erased already). Decrypting it as a
 * detached header would leave the plaintext 16 MiB off its place; it is initialised as an export. */
static bool is_uninitialised_export(struct crypt_device *cd, const char *header) {
        const char *base = header ? strrchr(header, '/') : NULL;
        const char *uuid = crypt_get_uuid(cd);
        size_t n;

        base = base ? base + 1 : header;
        if (!base || !ade_luks_uuid_is_valid(uuid) || crypt_get_data_offset(cd) == 0)
                return false;
        n = strlen(uuid);
        return strncasecmp(base, uuid, n) == 0 && streq(base + n, ".decrypt-header");
}

static int decrypt_volume(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *exported = NULL, *found = NULL;
        struct crypt_params_reencrypt params = {
                .mode = CRYPT_REENCRYPT_DECRYPT,
                .direction = CRYPT_REENCRYPT_BACKWARD,
                .resilience = o->resilience ?: "checksum",
                .hash = "sha256",
                .max_hotzone_size = luks_hotzone_sectors(o),
        };
        AdeLuksStatus st;
        int slot, r;

        assert(device);
        assert(keyfile);
        assert(o);

        if (isempty(o->header_dir))
                return -EINVAL;
        if (!luks_resilience_ok(o->resilience))
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

        r = slot = luks_load_keyed(device, header, keyfile, &cd);
        if (r < 0)
                return r;
        if (st.header == ADE_LUKS_HEADER_DETACHED && is_uninitialised_export(cd, header)) {
                /* Cut short after the rename: erase the device's copy if it is still there (the
                 * same header, nothing moved yet), then go on from there. */
                AdeLuksStatus dev;

                r = ade_luks_status(device, NULL, &dev);
                if (r < 0)
                        return r;
                if (dev.state != ADE_LUKS_STATE_NONE && !strcaseeq(dev.uuid, st.uuid))
                        return ade_log_debug_errno(EEXIST,
                                "%s carries another LUKS header (UUID %s) than its export %s", device, dev.uuid,
                                header);
                crypt_free(TAKE_PTR(cd));
                if (dev.state != ADE_LUKS_STATE_NONE) {
                        r = ade_fs_wipe_signatures(device);
                        if (r < 0)
                                return ade_log_debug_errno(r, "Cannot erase the LUKS header of %s: %m", device);
                }
                r = init_export(device, header, keyfile, o);
                if (r < 0)
                        return r;
                if (ret_header && !(*ret_header = strdup(header)))
                        return -ENOMEM;
                return ade_luks_resume(device, header, keyfile, o);
        }
        if (st.header == ADE_LUKS_HEADER_DETACHED && crypt_get_data_offset(cd) > 0)
                return ade_log_debug_errno(EUCLEAN,
                        "%s has a data offset: it is the header of the head of %s, not a detached one; decrypting with "
                        "it would leave the plaintext shifted. Put it back with 'cryptsetup luksHeaderRestore' or move "
                        "it away",
                        header, device);

        r = luks_backup_header(cd, o->header_dir, NULL);
        if (r < 0)
                return r;
        r = luks_hook(o, ADE_LUKS_STEP_HEADER_BACKED_UP);
        if (r < 0)
                return r;

        if (st.header == ADE_LUKS_HEADER_DETACHED) {
                /* No data offset: decrypt in place, back to front, with a crash-safe hotzone. */
                r = luks_set_keyfile_pbkdf(cd);
                if (r >= 0)
                        r = crypt_reencrypt_init_by_passphrase(cd, o->active_name, (const char *)keyfile->data,
                                keyfile->size, slot, CRYPT_ANY_SLOT, NULL, NULL, &params);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot initialise the decryption of %s: %m", device);
                r = luks_run_reencrypt(cd, o);
                if (r < 0)
                        return r;
                crypt_free(TAKE_PTR(cd));
                if (unlink(header) < 0 && errno != ENOENT)
                        return ade_log_debug_errno(errno, "Cannot remove %s: %m", header);
                (void)ade_fsync_parent(header);
                return 0;
        }

        /* An attached header leaves the device in an order that keeps one durable header in charge
         * at every instant (docs/architecture.md §4): a tagged copy renamed into place as
         * <uuid>.decrypt-header (until then the device's header is the truth; after it both are
         * the same header and no data has moved), then the device's header is erased (the export
         * alone is the truth), then the decryption is initialised in the export. */
        r = ade_luks_uuid_path(o->header_dir, st.uuid, ".decrypt-header", &exported);
        if (r < 0)
                return r;
        r = access(exported, F_OK) == 0 ? judge_export(device, exported, st.uuid) : 0;
        if (r == 0)
                r = export_header(cd, device, exported);
        crypt_free(TAKE_PTR(cd));
        if (r < 0)
                return r;
        if (ret_header && !(*ret_header = strdup(exported)))
                return -ENOMEM;
        if (r > 0)
                /* Initialised already (an older ade): the resume erases the device's copy first. */
                return ade_luks_resume(device, exported, keyfile, o);
        r = luks_hook(o, ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED);
        if (r < 0)
                return r;

        /* The device must stop looking like LUKS, or something could open it with its stale header
         * while the data moves. Until this succeeds the device's header stays the truth. */
        r = ade_fs_wipe_signatures(device);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot erase the LUKS header of %s (%s holds it): %m", device, exported);
        r = luks_hook(o, ADE_LUKS_STEP_DECRYPT_DEVICE_WIPED);
        if (r < 0)
                return r;
        r = init_export(device, exported, keyfile, o);
        if (r < 0)
                return r;

        /* From here the export is a decryption in progress like any other. */
        return ade_luks_resume(device, exported, keyfile, o);
}

int ade_luks_decrypt(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header) {
        int r;

        assert(device);
        r = ade_fd_check_headroom(device);
        if (r < 0)
                return r;
        return ade_fd_errno(decrypt_volume(device, header, keyfile, o, ret_header));
}
