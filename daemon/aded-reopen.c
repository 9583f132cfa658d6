/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-fs.h"
#include "ade-log.h"
#include "ade-volume.h"
#include "aded-job.h"
#include "aded-manager.h"
#include "aded-reopen.h"

/* Mounted in a namespace of its own, the filesystem would be seen by nobody: left alone then. */
static bool can_mount_back(Job *j, const AdeStateVolume *record) {
        Manager *m = job_manager(j);

        return m->dm && !m->mount_ns_foreign && record && record->mount_point;
}

/* Mounts @source where @record says the volume was, with its options, unless it is there already or
 * something else is. A failure is logged, saying what @what (the job, or its end) does meanwhile. */
static void mount_back(Job *j, const AdeStateVolume *record, const char *source, const char *what) {
        const char *device = job_device(j);
        _cleanup_free_ char *why = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo fs = {};
        int r;

        r = ade_fs_mount_check(source, record->mount_point, &why);
        if (r > 0) {
                job_set_mounted_on(j, record->mount_point); /* there already */
                return;
        }
        if (r == 0 && (r = ade_fs_probe(source, &fs)) >= 0 && !fs.type)
                r = -ENOENT;
        if (r >= 0)
                r = ade_fs_mount_or_defaults(source, record->mount_point, fs.type, record->mount_options);
        if (r < 0) {
                ade_log_error("%s: %s, but mounting %s on %s failed: %s; mount it by hand", device, what, source,
                        record->mount_point, why ?: strerror(-r));
                return;
        }
        ade_log_info("%s: mounted %s on %s again", device, source, record->mount_point);
        job_set_mounted_on(j, record->mount_point);
}

char *aded_reopen(
        Job *j, const AdeStateVolume *record, const char *header, const char *uuid, const AdeSecret *keyfile) {
        const char *device = job_device(j);
        _cleanup_free_ char *name = NULL, *mapper = NULL, *what = NULL;
        int r;

        if (!can_mount_back(j, record) || !uuid[0])
                return NULL;
        if (asprintf(&name, "ade-%s", uuid) < 0 || asprintf(&mapper, "/dev/mapper/%s", name) < 0 ||
                asprintf(&what, "the %s continues online", aded_job_type_to_string(job_type(j))) < 0)
                return NULL;
        job_set_phase(j, "opening");
        r = ade_luks_open(device, header, name, keyfile);
        if (r < 0 && r != -EEXIST) {
                ade_log_warning_errno(r, "%s: cannot open it as %s to resume the %s online: %m; resuming offline",
                        device, mapper, aded_job_type_to_string(job_type(j)));
                return NULL;
        }
        job_set_mapper(j, name);
        job_set_phase(j, "mounting from the mapper");
        mount_back(j, record, mapper, what);
        return TAKE_PTR(name);
}

void aded_remount_plain(Job *j, const AdeStateVolume *record) {
        /* Held (by the mapping an online decryption leaves when no power cut came): in use through
         * it, where it was. */
        if (!can_mount_back(j, record) || record->kind != ADE_JOB_DECRYPT || ade_volume_has_holders(job_device(j)) != 0)
                return;
        job_set_phase(j, "mounting");
        mount_back(j, record, job_device(j), "the decryption had ended");
}
