/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Continuing an interrupted encryption or decryption: crash recovery first, then libcryptsetup's
 * resume, or ade's own end of an encryption whose data is done but whose last metadata writes are
 * missing (libcryptsetup cannot finish that one itself). */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>

#include "ade-fd.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-luks-internal.h"

/* ---- crash recovery -------------------------------------------------------------------------- */

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
                r = luks_activate(*cd, o->active_name, CRYPT_ANY_SLOT, keyfile, CRYPT_ACTIVATE_SHARED);
        else {
                struct crypt_params_reencrypt rp = {.flags = CRYPT_REENCRYPT_RECOVERY};
                r = luks_keyslot_by_key(*cd, keyfile);
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

/* ---- an interrupted end ---------------------------------------------------------------------- */

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

        r = luks_token_find(cd, &h->token);
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
                r = luks_set_keyfile_pbkdf(cd);
        if (r < 0)
                return r;
        r = crypt_format(cd, CRYPT_LUKS2, h->cipher, h->mode, h->uuid, (const char *)h->volume_key->data,
                h->volume_key->size, &luks2);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot write the finished LUKS2 header of %s: %m", device);
        r = luks_add_keyslot_and_token(cd, h->token, keyfile);
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
        int r;

        r = luks_backup_header(*cd, o->header_dir, NULL);
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
        r = luks_header_file_new(tmp);
        if (r < 0)
                return r;
        r = finished_header_write(&h, device, tmp, keyfile);
        if (r >= 0)
                r = luks_make_durable(tmp);
        if (r >= 0 && rename(tmp, header) < 0)
                r = ade_log_debug_errno(errno, "Cannot replace %s: %m", header);
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        return ade_fsync_parent(header);
}

/* ---- resume ---------------------------------------------------------------------------------- */

static int resume(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o) {
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
        /* EINVAL is "no LUKS2 header" only when an open inside did not fail for want of a descriptor. */
        r = ade_fd_errno(crypt_load(cd, CRYPT_LUKS2, NULL));
        if (r == -EINVAL && !header && !isempty(o->header_dir)) {
                /* No header on the device: a detached one, or one exported for decryption, may
                 * name it in header_dir. */
                _cleanup_free_ char *found = NULL;

                if (ade_luks_find_header(o->header_dir, device, &found) >= 0)
                        return resume(device, found, keyfile, o);
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

        if (decrypting && header) {
                /* An export whose device still carries the same header: the decryption was cut short
                 * before the device's copy was erased, so no data has moved. Erase it now, as the
                 * first run would have (ade-luks-decrypt.c). */
                AdeLuksStatus dev;

                if (ade_luks_status(device, NULL, &dev) >= 0 && dev.state != ADE_LUKS_STATE_NONE &&
                        strcaseeq(dev.uuid, strempty(crypt_get_uuid(cd)))) {
                        r = ade_fs_wipe_signatures(device);
                        if (r < 0)
                                return ade_log_debug_errno(r, "Cannot erase the LUKS header of %s: %m", device);
                }
        }

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
        p.max_hotzone_size = luks_hotzone_sectors(o);
        p.device_size = 0;
        p.luks2 = NULL;
        p.flags = CRYPT_REENCRYPT_RESUME_ONLY;
        r = crypt_reencrypt_init_by_passphrase(cd, o->active_name, (const char *)keyfile->data, keyfile->size,
                CRYPT_ANY_SLOT, CRYPT_ANY_SLOT, NULL, NULL, &p);
        if (r == -EPERM)
                return ade_log_debug_errno(ENOKEY, "The key file opens no keyslot of %s", header ?: device);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot resume the reencryption of %s: %m", device);

        r = luks_run_reencrypt(cd, o);
        if (r < 0)
                return r;

decrypted:
        if (decrypting && header) {
                /* The device is plaintext again; its header file opens nothing any more. */
                crypt_free(TAKE_PTR(cd));
                if (unlink(header) < 0 && errno != ENOENT)
                        return ade_log_debug_errno(errno, "Cannot remove %s: %m", header);
                (void)ade_fsync_parent(header);
        }
        return 0;
}

int ade_luks_resume(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o) {
        int r;

        assert(device);
        r = ade_fd_check_headroom(device);
        if (r < 0)
                return r;
        return ade_fd_errno(resume(device, header, keyfile, o));
}
