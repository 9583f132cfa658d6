/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decryption back to plaintext, offline or online; an attached header is exported to header_dir
 * first. An interrupted one is handed to ade_luks_resume(). */
#include <assert.h>

#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-luks-internal.h"

int ade_luks_decrypt(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *exported = NULL, *found = NULL;
        struct crypt_params_reencrypt params = {
                .mode = CRYPT_REENCRYPT_DECRYPT,
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

        r = luks_backup_header(cd, o->header_dir, NULL);
        if (r < 0)
                return r;
        r = luks_hook(o, ADE_LUKS_STEP_HEADER_BACKED_UP);
        if (r < 0)
                return r;

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
                r = luks_make_durable(exported);
                if (r < 0)
                        return r;
                r = luks_hook(o, ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED);
                if (r < 0)
                        return r;

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

                        if (luks_token_find(cd, &cur) >= 0 && !cur->device_id) {
                                cur->device_id = strdup(device);
                                if (!cur->device_id)
                                        return -ENOMEM;
                                r = luks_token_store(cd, cur, cur->keyslot);
                                if (r < 0)
                                        return r;
                                r = luks_make_durable(exported);
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
        r = luks_set_keyfile_pbkdf(cd);
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

        r = luks_run_reencrypt(cd, o);
        if (r < 0)
                return r;

        crypt_free(TAKE_PTR(cd));
        if (exported || header) {
                const char *done = exported ?: header;
                if (unlink(done) < 0 && errno != ENOENT)
                        return ade_log_debug_errno(errno, "Cannot remove %s: %m", done);
                (void)ade_fsync_parent(done);
        }
        return 0;
}
