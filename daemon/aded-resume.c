/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-log.h"
#include "aded-manager.h"
#include "aded-osroot.h"
#include "aded-resume.h"

/* What @record says to do at start: 1 with the job's type and parameters, 0 for nothing. */
static int resume_from_record(
        Manager *m, const AdeStateVolume *record, AdedJobType *ret_type, AdedEnableParams *ret_params) {
        AdedJobType type = record->kind == ADE_JOB_DECRYPT ? ADED_JOB_DECRYPT : ADED_JOB_ENCRYPT;
        int r;

        /* A key rotation cut short: finished with the two key files it recorded (aded-rotate.c). */
        if (record->kind == ADE_JOB_ENCRYPT && record->step == ADE_STEP_DONE && record->pending_secret_url &&
                record->secret_url) {
                *ret_type = ADED_JOB_ROTATE;
                return 1;
        }

        /* A record with an error is resumed too once its key is escrowed: the error may have been
         * transient (Key Vault unreachable), and the device must not stay half encrypted. */
        if (record->step == ADE_STEP_DONE || (record->step < ADE_STEP_ESCROW && record->error))
                return 0;
        /* Before the escrow nothing was written anywhere: such a record is dropped, not resumed. */
        if (type == ADED_JOB_ENCRYPT && record->step < ADE_STEP_ESCROW) {
                ade_log_info("%s: an encryption stopped before its key was escrowed; nothing was written, run "
                             "enable again",
                        record->device);
                (void)aded_state_remove(m->state, record->device_id);
                return 0;
        }
        r = aded_enable_params_from_record(record, ret_params);
        if (r < 0)
                return r;
        *ret_type = type;
        return 1;
}

/* A header in the middle of our reencryption that the state file does not know (lost?): 1 with the
 * job's type, and a record for it from the header; 0 for nothing. */
static int resume_from_header(Manager *m, const AdeVolume *v, AdedJobType *ret_type) {
        AdeLuksStatus st;
        bool decrypt;

        if (ade_luks_status(v->device, NULL, &st) < 0 || !st.has_token ||
                (st.state != ADE_LUKS_STATE_CLEAN && st.state != ADE_LUKS_STATE_CRASH))
                return 0;
        decrypt = st.operation == ADE_LUKS_OP_DECRYPT;
        (void)aded_state_add(m->state, aded_state_key(v), v->device, decrypt ? ADE_JOB_DECRYPT : ADE_JOB_ENCRYPT,
                ADE_STEP_HEADER, aded_state_set_uuid, st.uuid);
        *ret_type = decrypt ? ADED_JOB_DECRYPT : ADED_JOB_ENCRYPT;
        return 1;
}

static int resume_volume(Manager *m, const AdeVolume *v) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(aded_enable_params_done) AdedEnableParams p = {};
        AdedJobType type;
        int r;

        r = aded_state_get(m->state, aded_state_key(v), &record);
        if (r < 0)
                return r;
        r = record ? resume_from_record(m, record, &type, &p) : resume_from_header(m, v, &type);
        if (r <= 0)
                return r;

        r = manager_start_job(m, type, v, type == ADED_JOB_ROTATE ? NULL : &p, NULL);
        if (r < 0)
                return ade_log_error_errno(r, "cannot start the job resuming %s: %m", v->device);
        ade_log_info("resuming the %s of %s", aded_job_type_to_string(type), v->device);
        return 0;
}

int aded_resume_jobs(Manager *m) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **vols = NULL;
        int r;

        /* Read-only: nothing is resumed from a state file aded could not read. */
        if (aded_state_degraded(m->state))
                return 0;

        r = manager_data_volumes(m, &vols);
        if (r < 0)
                return ade_log_error_errno(r, "cannot list volumes: %m");
        for (size_t i = 0; vols[i]; i++) {
                r = resume_volume(m, vols[i]);
                if (r < 0)
                        return r;
        }
        /* The OS volume: resumed only under ade-root, never opened here (docs/architecture.md §9). */
        return aded_osroot_resume(m);
}
