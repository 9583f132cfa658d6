/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key file and the token of a LUKS2 volume that is not being reencrypted: rotation, a new
 * token, testing a key, and opening and closing the volume. */
#include <assert.h>

#include "ade-dm.h"
#include "ade-log.h"
#include "ade-luks-internal.h"

/* The token to write in place of the one @cd carries (*ret_current, NULL when none): a copy of
 * @token that keeps the current DeviceId, which a detached header needs to be found again. */
static int token_successor(
        struct crypt_device *cd, const AdeLuksToken *token, AdeLuksToken **ret_current, AdeLuksToken **ret_next) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *cur = NULL, *t = NULL;
        int r;

        (void)luks_token_find(cd, &cur);
        r = ade_luks_token_copy(token, &t);
        if (r < 0)
                return r;
        if (!t->device_id && cur && cur->device_id && !(t->device_id = strdup(cur->device_id)))
                return -ENOMEM;
        *ret_current = TAKE_PTR(cur);
        *ret_next = TAKE_PTR(t);
        return 0;
}

/* After a rotation or a new token, the backup kept is of the header as it now is: the one taken
 * before still holds the keyslot just removed, or the token naming the secret just replaced, both
 * revoked (docs/architecture.md §3). When no new backup can be written, the one before is kept. */
static void backup_after_change(struct crypt_device *cd, const AdeLuksOptions *o, const char *before) {
        _cleanup_free_ char *after = NULL;

        (void)luks_backup_header(cd, o->header_dir, &after);
        luks_prune_backups(o->header_dir, crypt_get_uuid(cd), after ?: before);
}

int ade_luks_rotate(const char *device, const char *header, const AdeSecret *old_keyfile, const AdeSecret *new_keyfile,
        const AdeLuksToken *new_token, const AdeLuksOptions *o) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *cur = NULL, *t = NULL;
        _cleanup_free_ char *backup = NULL;
        int old_slot, new_slot, r;

        assert(device);
        assert(old_keyfile);
        assert(o);

        r = luks_check_write_allowed(new_token, new_keyfile, o);
        if (r < 0)
                return r;

        r = luks_load(device, header, &cd);
        if (r < 0)
                return r;
        if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE)
                return ade_log_debug_errno(EBUSY, "%s is being reencrypted; rotate the key after it ends", device);

        old_slot = luks_keyslot_by_key(cd, old_keyfile);
        new_slot = luks_keyslot_by_key(cd, new_keyfile);
        if (old_slot < 0 && old_slot != -ENOKEY)
                return old_slot;
        if (new_slot < 0 && new_slot != -ENOKEY)
                return new_slot;
        if (old_slot < 0 && new_slot < 0)
                return ade_log_debug_errno(ENOKEY, "Neither key file opens a keyslot of %s", header ?: device);
        r = token_successor(cd, new_token, &cur, &t);
        if (r < 0)
                return r;

        r = luks_backup_header(cd, o->header_dir, &backup);
        if (r < 0)
                return r;
        r = luks_hook(o, ADE_LUKS_STEP_HEADER_BACKED_UP);
        if (r < 0)
                return r;

        if (new_slot < 0) {
                r = luks_set_keyfile_pbkdf(cd);
                if (r < 0)
                        return r;
                new_slot = crypt_keyslot_add_by_passphrase(cd, CRYPT_ANY_SLOT, (const char *)old_keyfile->data,
                        old_keyfile->size, (const char *)new_keyfile->data, new_keyfile->size);
                if (new_slot < 0)
                        return ade_log_debug_errno(
                                new_slot, "Cannot add a keyslot for the new key file to %s: %m", device);
        }
        r = luks_hook(o, ADE_LUKS_STEP_ROTATE_KEYSLOT_ADDED);
        if (r < 0)
                return r;

        if (!cur || cur->keyslot != new_slot || !streq_ptr(cur->secret_url, t->secret_url) ||
                !streq_ptr(cur->passphrase, t->passphrase) || !streq_ptr(cur->kek_url, t->kek_url)) {
                r = luks_token_store(cd, t, new_slot);
                if (r < 0)
                        return r;
        }
        r = luks_hook(o, ADE_LUKS_STEP_ROTATE_TOKEN_SWAPPED);
        if (r < 0)
                return r;

        if (old_slot >= 0 && old_slot != new_slot) {
                r = crypt_keyslot_destroy(cd, old_slot);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot remove the old keyslot %d of %s: %m", old_slot, device);
        }
        r = luks_hook(o, ADE_LUKS_STEP_ROTATE_OLD_REMOVED);
        if (r < 0)
                return r;
        backup_after_change(cd, o, backup);
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

        r = luks_check_write_allowed(token, keyfile, o);
        if (r < 0)
                return r;
        r = slot = luks_load_keyed(device, header, keyfile, &cd);
        if (r < 0)
                return r;
        r = token_successor(cd, token, &cur, &t);
        if (r < 0)
                return r;
        r = luks_backup_header(cd, o->header_dir, &backup);
        if (r < 0)
                return r;
        r = luks_token_store(cd, t, slot);
        if (r < 0)
                return r;
        backup_after_change(cd, o, backup);
        return 0;
}

int ade_luks_test_key(const char *device, const char *header, const AdeSecret *keyfile) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(device);
        assert(keyfile);

        r = luks_load_keyed(device, header, keyfile, &cd);
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
        r = luks_activate(cd, name, CRYPT_ANY_SLOT, keyfile, 0);
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

        ade_dm_lock();
        r = crypt_init_by_name(&cd, name);
        ade_dm_unlock();
        if (r < 0)
                return ade_log_debug_errno(r, "No active device %s: %m", name);
        r = luks_deactivate(cd, name);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot deactivate %s: %m", name);
        return 0;
}

/* Adoption (docs/architecture.md §12): ADE's volumes are LUKS1 or LUKS2, so these two load either. */
int ade_luks_version(const char *device, const char *header) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        const char *type;
        int r;

        assert(device);

        r = luks_init(device, header, &cd);
        if (r < 0)
                return r;
        if (crypt_load(cd, CRYPT_LUKS, NULL) < 0)
                return 0;
        type = crypt_get_type(cd);
        if (streq_ptr(type, CRYPT_LUKS1))
                return 1;
        if (streq_ptr(type, CRYPT_LUKS2))
                return 2;
        return 0;
}

int ade_luks_test_key_any(const char *device, const char *header, const AdeSecret *keyfile) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(device);
        assert(keyfile);

        r = luks_load_type(device, header, CRYPT_LUKS, &cd);
        if (r < 0)
                return r;
        r = luks_keyslot_by_key(cd, keyfile);
        if (r == -ENOKEY)
                return 0;
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot try the key file on %s: %m", header ?: device);
        return 1;
}
