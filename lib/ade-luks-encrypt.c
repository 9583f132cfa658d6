/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Planning and encryption: how a plaintext volume would be encrypted (read-only), the header
 * prepared ahead of an online run, and the encryption itself (detached header, header in front with
 * a data shift, or format-all). An interrupted one is handed to ade_luks_resume(). */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>

#include "ade-fd.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-luks-internal.h"

/* ---- planning ------------------------------------------------------------------------------- */

void ade_luks_plan_done(AdeLuksPlan *p) {
        if (!p)
                return;
        p->header_path = mfree(p->header_path);
        p->reason = mfree(p->reason);
}

/* "/dev/disk/azure/scsi1/lun0" -> "dev-disk-azure-scsi1-lun0": a file name for a device. The id
 * comes from a link name under /dev/disk, which a filesystem's label or UUID can shape: what is left
 * must be one harmless path component, or no file is named after it (-EINVAL). */
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
        if (!ade_luks_name_is_safe(s) || s[0] == '.')
                return ade_log_debug_errno(EINVAL, "'%s' cannot name a header file", s);
        *ret = TAKE_PTR(s);
        return 0;
}

static int detached_header_path(const AdeVolume *v, const char *header_dir, char **ret) {
        _cleanup_free_ char *name = NULL;
        int r;

        r = device_file_name(v->stable_id ?: v->device, ".header", &name);
        if (r < 0)
                return r;
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
        if (!luks_resilience_ok(o->resilience))
                return ade_log_debug_errno(
                        EINVAL, "Resilience '%s' is not crash-safe; use checksum or journal", o->resilience);
        if (o->running_root && (!o->init_only || o->active_name || o->format_all))
                return ade_log_debug_errno(EINVAL,
                        "The running root %s can only have its header initialised, detached, with no mapping",
                        v->device);
        if (v->mountpoint && !o->running_root)
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

        if (o->running_root)
                r = asprintf(&p.reason,
                        "%s is the running root: detached header, initialised now, encrypted online after the reboot",
                        v->device);
        else if (o->force_detached)
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

        if (p.header == ADE_LUKS_HEADER_DETACHED && o->running_root && o->uuid) {
                /* The name the boot contract's crypttab line gives it (docs/architecture.md §9). */
                if (asprintf(&p.header_path, "%s/%s.header", o->header_dir, o->uuid) < 0)
                        return -ENOMEM;
        } else if (p.header == ADE_LUKS_HEADER_DETACHED) {
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

/* A new LUKS2 header in @cd with ADE's cipher, the key file's keyslot and @token bound to it.
 * Returns the keyslot. */
static int format_header(struct crypt_device *cd, const char *device, const struct crypt_params_luks2 *luks2,
        const char *uuid, const AdeLuksToken *token, const AdeSecret *keyfile) {
        int r;

        /* Before the format: the volume key's digest then takes the same fast PBKDF2 (the key is
         * random, 512 bits) instead of a benchmarked one, as cryptsetup's --pbkdf-force-iterations. */
        r = luks_set_keyfile_pbkdf(cd);
        if (r < 0)
                return r;
        if (uuid && !ade_luks_uuid_is_valid(uuid))
                return ade_log_debug_errno(EINVAL, "'%s' is not a UUID for the header of %s", uuid, device);
        r = crypt_format(cd, CRYPT_LUKS2, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, uuid, NULL, ADE_LUKS_KEY_BYTES,
                (struct crypt_params_luks2 *)luks2);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot format a LUKS2 header for %s: %m", device);
        return luks_add_keyslot_and_token(cd, token, keyfile);
}

/* Writes the reencryption metadata that turns @slot's plaintext volume into an encrypting one. */
static int init_encryption(struct crypt_device *cd, const char *device, int slot, const AdeSecret *keyfile,
        const struct crypt_params_reencrypt *params) {
        int r;

        r = crypt_reencrypt_init_by_passphrase(cd, NULL, (const char *)keyfile->data, keyfile->size, CRYPT_ANY_SLOT,
                slot, ADE_LUKS_CIPHER, ADE_LUKS_CIPHER_MODE, params);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot initialise the encryption of %s: %m", device);
        return 0;
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
        return luks_run_reencrypt(cd, o);
}

/* Both header kinds end the same way once the header is on disk: tell the hook, activate for
 * online use, and (unless only initialising) run the reencryption. */
static int header_written_then_run(struct crypt_device *cd, const AdeVolume *v, int slot, const AdeSecret *keyfile,
        const AdeLuksOptions *o, const struct crypt_params_reencrypt *params) {
        int r;

        r = luks_hook(o, ADE_LUKS_STEP_HEADER_WRITTEN);
        if (r < 0)
                return r;

        if (o->active_name) {
                r = luks_activate(cd, o->active_name, slot, keyfile, 0);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot activate %s as %s: %m", v->device, o->active_name);
                r = luks_hook(o, ADE_LUKS_STEP_ACTIVATED);
                if (r < 0)
                        return r;
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
                .max_hotzone_size = luks_hotzone_sectors(o),
                .luks2 = &luks2,
                .flags = CRYPT_REENCRYPT_INITIALIZE_ONLY,
        };
        const char *hdr = plan->header_path;
        int slot, r;

        r = ade_mkdir_private(o->header_dir);
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
        r = slot = format_header(cd, v->device, &luks2, o->uuid, t, keyfile);
        if (r < 0)
                goto fail;
        r = init_encryption(cd, v->device, slot, keyfile, &params);
        if (r < 0)
                goto fail;
        r = luks_make_durable(hdr);
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
        const char *run_dir, const char *uuid, char **ret_path, struct crypt_device **ret_cd) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        _cleanup_free_ char *tmp = NULL;
        const struct crypt_params_luks2 luks2 = {.data_device = v->device, .sector_size = SECTOR};
        int slot, r;

        r = ade_mkdir_private(run_dir);
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s/LUKS2-temp-XXXXXX", run_dir) < 0)
                return -ENOMEM;
        r = luks_header_file_new(tmp);
        if (r < 0)
                return r;
        r = luks_init(tmp, NULL, &cd);
        if (r >= 0)
                r = crypt_set_data_offset(cd, DATASHIFT_BYTES / SECTOR);
        if (r >= 0)
                r = slot = format_header(cd, v->device, &luks2, uuid, token, keyfile);
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

        r = luks_check_escrow(token, keyfile, o);
        if (r < 0)
                return r;
        r = make_front_header(v, token, keyfile, o->run_dir ?: ADE_LUKS_RUN_DIR_DEFAULT, o->uuid, ret_path, &cd);
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
                r = luks_hook(o, ADE_LUKS_STEP_SHRUNK);
                if (r < 0)
                        goto fail;
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
                        r = luks_set_keyfile_pbkdf(cd);
                if (r >= 0)
                        r = slot = luks_keyslot_by_key(cd, keyfile);
                /* Made for another UUID than the one the caller recorded: not this job's header. */
                if (r >= 0 && o->uuid && !strcaseeq(strempty(crypt_get_uuid(cd)), o->uuid))
                        r = ade_log_debug_errno(EINVAL, "The prepared header %s has UUID %s, not %s", tmp,
                                strna(crypt_get_uuid(cd)), o->uuid);
        } else
                r = slot = make_front_header(v, token, keyfile, run_dir, o->uuid, &tmp, &cd);
        if (r < 0)
                goto fail;
        /* Initialising copies the first 16 MiB of data into the freed tail; then the header goes to
         * the head of the device. */
        r = init_encryption(cd, v->device, slot, keyfile, &params);
        if (r < 0)
                goto fail;

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
        r = slot = format_header(cd, v->device, NULL, o->uuid, token, keyfile);
        if (r < 0)
                return r;
        r = luks_hook(o, ADE_LUKS_STEP_HEADER_WRITTEN);
        if (r < 0)
                return r;

        if (o->active_name)
                name = strdup(o->active_name);
        else if (!ade_luks_uuid_is_valid(crypt_get_uuid(cd)))
                return ade_log_debug_errno(
                        EBADMSG, "The header of %s has no valid UUID to name its mapping", v->device);
        else
                r = asprintf(&name, "ade-format-%s", crypt_get_uuid(cd));
        if (!name || r < 0)
                return -ENOMEM;
        r = luks_activate(cd, name, slot, keyfile, 0);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot activate %s as %s: %m", v->device, name);
        if (asprintf(&node, "%s/%s", crypt_get_dir(), name) < 0)
                r = -ENOMEM;
        else
                r = ade_fs_make(node, fstype, v->label, v->fs_uuid, ret_error);
        if (!o->active_name)
                (void)luks_deactivate(cd, name);
        return r;
}

static int encrypt_volume(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile,
        const AdeLuksOptions *o, AdeLuksPlan *ret_plan, char **ret_error) {
        _cleanup_(ade_luks_plan_done) AdeLuksPlan plan = {};
        _cleanup_free_ char *found = NULL;
        AdeLuksStatus st;
        int r;

        assert(v);
        assert(o);

        r = luks_check_write_allowed(token, keyfile, o);
        if (r < 0)
                return r;

        if (o->uuid && !ade_luks_uuid_is_valid(o->uuid))
                return ade_log_debug_errno(EINVAL, "'%s' is not a UUID", o->uuid);

        /* Already ours (attached header in progress or done)? Then continue, never start over. */
        if (ade_luks_status(v->device, NULL, &st) >= 0 && st.state != ADE_LUKS_STATE_NONE) {
                if (st.state == ADE_LUKS_STATE_FINISHED && !st.has_token)
                        return ade_log_debug_errno(EEXIST, "%s is already LUKS2 and not ours", v->device);
                if (o->uuid && !strcaseeq(st.uuid, o->uuid))
                        return ade_log_debug_errno(EXDEV, "The header on %s has UUID %s, not the %s of this encryption",
                                v->device, st.uuid, o->uuid);
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
                r = ade_luks_status(v->device, found, &st);
                if (r < 0)
                        return r;
                if (st.operation == ADE_LUKS_OP_DECRYPT)
                        return ade_log_debug_errno(
                                EBUSY, "%s is being decrypted (header %s); finish that first", v->device, found);
                if (o->uuid && !strcaseeq(st.uuid, o->uuid))
                        return ade_log_debug_errno(EXDEV,
                                "The header %s of %s has UUID %s, not the %s of this encryption", found, v->device,
                                st.uuid, o->uuid);
                plan.mode = ADE_LUKS_MODE_IN_PLACE;
                plan.header = ADE_LUKS_HEADER_DETACHED;
                plan.device_size = plan.data_size = v->size;
                if (o->running_root) {
                        /* Initialised already (a repeated Enable before the reboot): the boot
                         * continues it, under its mapping. */
                        r = ade_luks_test_key(v->device, found, keyfile);
                        if (r == 0)
                                r = ade_log_debug_errno(ENOKEY, "The key file opens no keyslot of %s", found);
                        else if (r > 0)
                                r = 0;
                } else
                        r = ade_luks_resume(v->device, found, keyfile, o);
                plan.header_path = TAKE_PTR(found);
                goto done;
        }

        r = plan_volume(v, o, true, &plan, ret_error);
        if (r < 0)
                return r;
        ade_log_debug("Encrypting %s: %s", v->device, plan.reason);
        if (o->planned) {
                ade_luks_plan_done(o->planned);
                *o->planned = (AdeLuksPlan){.mode = plan.mode,
                        .header = plan.header,
                        .shrink = plan.shrink,
                        .online = plan.online,
                        .device_size = plan.device_size,
                        .data_size = plan.data_size,
                        .fs_min_size = plan.fs_min_size};
                if (ade_strdup_to(&o->planned->header_path, plan.header_path) < 0 ||
                        ade_strdup_to(&o->planned->reason, plan.reason) < 0)
                        return -ENOMEM;
        }
        r = luks_hook(o, ADE_LUKS_STEP_PLANNED);
        if (r < 0)
                return r;

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

int ade_luks_encrypt(const AdeVolume *v, const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o,
        AdeLuksPlan *ret_plan, char **ret_error) {
        int r;

        assert(v);
        /* Short of descriptors, an open inside libcryptsetup fails and it says EINVAL or EIO: do not
         * start, and name the cause of a failure on the way (ade-fd.h). */
        r = ade_fd_check_headroom(v->device);
        if (r < 0)
                return r;
        return ade_fd_errno(encrypt_volume(v, token, keyfile, o, ret_plan, ret_error));
}
