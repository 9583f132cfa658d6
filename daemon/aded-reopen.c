/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-fs.h"
#include "ade-log.h"
#include "aded-job.h"
#include "aded-manager.h"
#include "aded-reopen.h"

char *aded_reopen(
        Job *j, const AdeStateVolume *record, const char *header, const char *uuid, const AdeSecret *keyfile) {
        Manager *m = job_manager(j);
        const char *device = job_device(j);
        _cleanup_free_ char *name = NULL, *mapper = NULL, *why = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo fs = {};
        int r;

        /* Mounted in a namespace of its own, the filesystem would be seen by nobody: offline then. */
        if (!m->dm || m->mount_ns_foreign || !record || !record->mount_point || !uuid[0])
                return NULL;
        if (asprintf(&name, "ade-%s", uuid) < 0 || asprintf(&mapper, "/dev/mapper/%s", name) < 0)
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
        r = ade_fs_mount_check(mapper, record->mount_point, &why);
        if (r == 0 && (r = ade_fs_probe(mapper, &fs)) >= 0 && !fs.type)
                r = -ENOENT;
        if (r >= 0)
                r = ade_fs_mount_or_defaults(mapper, record->mount_point, fs.type, record->mount_options);
        if (r < 0)
                ade_log_error("%s: the %s continues online, but mounting %s on %s failed: %s; mount it by hand", device,
                        aded_job_type_to_string(job_type(j)), mapper, record->mount_point, why ?: strerror(-r));
        else {
                ade_log_info("%s: mounted %s on %s again", device, mapper, record->mount_point);
                job_set_mounted_on(j, record->mount_point);
        }
        return TAKE_PTR(name);
}
