/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-log.h"
#include "aded-boot.h"
#include "aded-job.h"
#include "aded-manager.h"
#include "aded-unlock.h"
#include "aded-verify.h"

/* Mounts the filesystem on @mapper on @mount_point (checked free) with @options. 0, or a negative
 * errno and in *ret_why what a person reads. */
static int unlock_mount_filesystem(
        Job *j, const char *mapper, const char *mount_point, const char *options, char **ret_why) {
        _cleanup_(ade_fs_info_done) AdeFsInfo fs = {};
        int r;

        job_set_phase(j, "mounting");
        r = ade_fs_probe(mapper, &fs);
        if (r < 0 || !fs.type || !streq_ptr(fs.usage, "filesystem")) {
                if (asprintf(ret_why, "%s is open but not mounted on %s: no filesystem found on it%s%s", mapper,
                            mount_point, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "") < 0)
                        *ret_why = NULL;
                return r < 0 ? r : -ENOENT;
        }
        r = ade_fs_mount(mapper, mount_point, fs.type, options);
        if (r < 0) {
                if (asprintf(ret_why,
                            "%s is open but mounting it on %s (%s, options %s) failed: %s; mount it by "
                            "hand, or fix the cause and run 'adectl unlock' again",
                            mapper, mount_point, fs.type, options ?: "defaults", strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }
        ade_log_info("%s: mounted %s on %s", job_device(j), mapper, mount_point);
        return 0;
}

/* Mounts the opened volume where the state file says its filesystem was at enable, and only there:
 * a volume without a recorded mount point stays unmounted (aded never guesses one), as does one
 * whose mount point is missing or busy. The volume is open and usable either way, so the job
 * succeeds; why it stays unmounted is its note. */
static void unlock_mount(Job *j, const char *name) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *mapper = NULL, *why = NULL;
        int r;

        (void)aded_state_get(job_manager(j)->state, job_key(j), &record);
        if (!record || !record->mount_point)
                return;
        if (asprintf(&mapper, "/dev/mapper/%s", name) < 0) {
                job_note(j, "out of memory");
                return;
        }
        /* A mount in a namespace of our own would be seen by nobody else. */
        if (job_manager(j)->mount_ns_foreign) {
                if (asprintf(&why,
                            "%s is open but not mounted on %s: aded runs in a mount namespace of its own (not "
                            "pid 1's), where nobody else would see the mount; mount it by hand, or start aded "
                            "from aded.service",
                            mapper, record->mount_point) < 0)
                        why = NULL;
                job_note(j, why ?: "not mounted: aded runs in a mount namespace of its own");
                return;
        }

        r = ade_fs_mount_check(mapper, record->mount_point, &why);
        if (r == 0)
                r = unlock_mount_filesystem(j, mapper, record->mount_point, record->mount_options, &why);
        if (r < 0) {
                job_note(j, why ?: strerror(-r));
                return;
        }
        job_set_mounted_on(j, record->mount_point);
}

int aded_unlock_run(Job *j) {
        const char *device = job_device(j);
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_free_ char *header = NULL, *name = NULL, *why = NULL;
        const char *base = strrchr(device, '/');
        AdeLuksStatus st;
        int r;

        /* Open already (crypttab, or an earlier Unlock whose mount point was missing): only the mount
         * is left to do, under the name it has. */
        if (ade_dm_find_crypt(device, &name) > 0) {
                unlock_mount(j, name);
                return 0;
        }
        name = mfree(name);

        (void)job_header(j, &header);
        /* Activation may recover an interrupted reencryption, a write: only on the right disk. */
        {
                _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
                (void)aded_state_get(job_manager(j)->state, job_key(j), &record);
                r = aded_verify_job(j, record, header);
                if (r < 0)
                        return r;
        }
        r = ade_luks_status(device, header, &st);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "cannot read the LUKS header of %s: %s", device, strerror(-r));
        r = job_fetch_key(j, header, "the key file", &token, &keyfile);
        if (r < 0)
                return r;
        /* The name crypttab uses too (docs/architecture.md §9), so a later boot finds the same mapping. */
        if (asprintf(&name, "ade-%s", st.uuid[0] ? st.uuid : base ? base + 1 : device) < 0)
                return -ENOMEM;
        job_set_phase(j, "opening");
        /* A volume with a crypttab line is opened by its systemd unit, as at boot (the key just
         * fetched proved Key Vault answers; the unit asks the key socket for it again). */
        r = aded_boot_open(j, name, &why);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return job_fail(
                        j, r, NULL, NULL, "opening %s through crypttab failed: %s", device, why ?: strerror(-r));
        if (r > 0) {
                job_set_mapper(j, name);
                unlock_mount(j, name);
                return 0;
        }
        /* ade_luks_open() holds ade_dm_lock() while it activates: two unlock jobs activating at once
         * crashed aded in the VM before libdevmapper calls were serialised. */
        r = ade_luks_open(device, header, name, keyfile);
        if (r == -EEXIST)
                r = 0;
        if (r < 0)
                return job_fail(
                        j, r, NULL, NULL, "opening %s as /dev/mapper/%s failed: %s", device, name, strerror(-r));
        job_set_mapper(j, name);
        unlock_mount(j, name);
        return 0;
}
