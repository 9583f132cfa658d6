/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>
#include <unistd.h>

#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-log.h"
#include "ade-osboot.h"
#include "ade-osvol.h"
#include "ade-volume.h"
#include "aded-job.h"
#include "aded-manager.h"
#include "aded-osroot.h"
#include "aded-worker.h"

int aded_osroot_on_mapper(const char *device) {
        struct stat st;
        dev_t backing;

        if (stat(device, &st) < 0 || !S_ISBLK(st.st_mode))
                return 0;
        if (ade_volume_root_mapper_backing(ADE_OSBOOT_NAME, &backing) <= 0)
                return 0;
        return backing == st.st_rdev;
}

int aded_osroot_header_dir(Manager *m, char **ret, char **ret_why) {
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts f = {};
        AdeCheckList list = {};
        AdeOsvolPath path = ADE_OSVOL_PATH_NONE;
        char *dir = NULL, *why = NULL;
        int r;

        r = ade_osvol_gather("/", m->config->identity.type == ADE_IDENTITY_MANAGED, &f);
        if (r >= 0)
                r = ade_osvol_evaluate(&f, &list, &path);
        for (size_t i = 0; r >= 0 && !why && i < list.n; i++)
                if (list.checks[i].verdict == ADE_VERDICT_FAIL &&
                        asprintf(&why, "%s: %s", list.checks[i].name, list.checks[i].reason) < 0)
                        r = -ENOMEM;
        ade_check_list_done(&list);
        if (r < 0)
                return r;
        if (path == ADE_OSVOL_PATH_NONE) {
                *ret_why = why ?: strdup("the OS volume is not eligible");
                return -EPERM;
        }
        free(why);
        dir = strdup(path == ADE_OSVOL_PATH_BOOT ? "/boot/luks" : "/boot/efi/luks");
        if (!dir)
                return -ENOMEM;
        *ret = dir;
        return 0;
}

/* The init-only step failed, or the boot contract could not be written: the header goes, and the
 * record with it, so that the root is as it was (the secret stays in Key Vault, unused). */
static void undo_init(Job *j, const char *header) {
        if (header && unlink(header) < 0 && errno != ENOENT)
                ade_log_warning_errno(
                        errno, "%s: cannot remove the header %s: %m; remove it by hand", job_device(j), header);
        (void)aded_state_remove(job_manager(j)->state, job_key(j));
}

/* The header initialised while "/" stays mounted, then the boot contract. */
static int osroot_init(Job *j, const AdeLuksToken *token, const AdeSecret *keyfile, AdeLuksOptions *o,
        AdeLuksPlan *plan, char **engine_error) {
        const char *device = job_device(j);
        _cleanup_(ade_fs_info_done) AdeFsInfo fs = {};
        _cleanup_free_ char *why = NULL;
        int r;

        job_set_phase(j, "initialising the header");
        o->running_root = true;
        o->init_only = true;
        r = ade_luks_encrypt(job_volume(j), token, keyfile, o, plan, engine_error);
        if (r < 0) {
                r = job_fail(j, r, NULL, NULL,
                        "initialising the header of the OS volume %s failed: %s%s%s; nothing "
                        "was written to it",
                        device, strerror(-r), *engine_error ? ": " : "", strempty(*engine_error));
                undo_init(j, plan->header_path ?: (o->planned ? o->planned->header_path : NULL));
                return r;
        }

        job_set_phase(j, "writing the boot files");
        r = ade_fs_probe(device, &fs);
        if (r >= 0 && !fs.part_uuid)
                r = -ENXIO;
        if (r < 0) {
                r = job_fail(j, r, NULL, NULL,
                        "cannot read the PARTUUID of the OS volume %s: %s; crypttab must name it by PARTUUID. "
                        "Nothing was changed",
                        device, strerror(-r));
                undo_init(j, plan->header_path);
                return r;
        }
        r = ade_osboot_apply("/", &(AdeOsbootRoot){.partuuid = fs.part_uuid, .header = plan->header_path}, NULL, &why);
        if (r < 0) {
                r = job_fail(j, r, NULL, NULL,
                        "cannot write the boot files of the OS volume %s: %s; crypttab, fstab and grub are as they "
                        "were and the header is removed: fix that and run enable again",
                        device, why ?: strerror(-r));
                undo_init(j, plan->header_path);
                return r;
        }
        /* Only now: a record at ADE_STEP_HEADER means the next boot opens the root (ade_osvol_next()). */
        r = job_record_step(j, ADE_STEP_HEADER, NULL, NULL);
        if (r < 0)
                return r;
        ade_log_info("%s: the OS volume's header is initialised in %s and the boot files name %s: reboot when "
                     "convenient, aded then encrypts it online",
                device, plan->header_path, ADE_OSBOOT_MAPPER);
        return 1;
}

int aded_osroot_encrypt(Job *j, const AdeStateVolume *record, const char *header, const AdeLuksToken *token,
        const AdeSecret *keyfile, AdeLuksOptions *o, AdeLuksPlan *plan, char **engine_error) {
        const char *device = job_device(j);
        int r;

        switch (ade_osvol_next(record, aded_osroot_on_mapper(device) > 0)) {
        case ADE_OSVOL_NEXT_RESUME:
                job_set_mapper(j, ADE_OSBOOT_NAME);
                job_set_phase(j, "encrypting");
                o->running_root = o->init_only = false;
                o->active_name = ADE_OSBOOT_NAME;
                r = aded_worker_resume(device, header, keyfile, o);
                o->active_name = NULL;
                return r;
        case ADE_OSVOL_NEXT_RESTART:
                return 1;
        default:
                return osroot_init(j, token, keyfile, o, plan, engine_error);
        }
}

int aded_osroot_resume(Manager *m) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **vols = NULL;
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(aded_enable_params_done) AdedEnableParams p = {};
        const AdeVolume *v = NULL;
        int r;

        r = manager_volumes(m, &vols);
        if (r < 0)
                return ade_log_error_errno(r, "cannot list volumes: %m");
        for (size_t i = 0; vols[i] && !v; i++)
                if (vols[i]->type == ADE_VOLUME_OS)
                        v = vols[i];
        if (!v)
                return 0;
        r = aded_state_get(m->state, aded_state_key(v), &record);
        if (r < 0 || !record)
                return r;
        switch (ade_osvol_next(record, aded_osroot_on_mapper(v->device) > 0)) {
        case ADE_OSVOL_NEXT_RESUME:
                r = aded_enable_params_from_record(record, &p);
                if (r >= 0)
                        r = manager_start_job(m, ADED_JOB_ENCRYPT, v, &p, NULL);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot start the job resuming the OS volume %s: %m", v->device);
                ade_log_info("resuming the encryption of the OS volume %s under %s", v->device, ADE_OSBOOT_MAPPER);
                return 0;
        case ADE_OSVOL_NEXT_RESTART:
                ade_log_info("%s: the OS volume waits for a reboot: its initramfs opens it as %s, then aded encrypts "
                             "it",
                        v->device, ADE_OSBOOT_MAPPER);
                return 0;
        case ADE_OSVOL_NEXT_ENABLE:
                ade_log_warning("%s: the Enable of the OS volume stopped before the boot files named %s; run "
                                "'adectl enable --volume-type OS' again",
                        v->device, ADE_OSBOOT_MAPPER);
                return 0;
        default:
                return 0;
        }
}
