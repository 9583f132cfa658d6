/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "ade-luks.h"
#include "aded-job.h"
#include "aded-verify.h"

static int refuse(char **ret_why, int r, const char *format, ...) _printf_(3, 4);
static int refuse(char **ret_why, int r, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_why, format, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return r;
}

/* Whether the token's DeviceId @id names @v: its stable id, or a link to the same block device. */
static bool token_names_volume(const char *id, const AdeVolume *v) {
        struct stat a, b;

        if (streq_ptr(id, v->stable_id) || streq(id, v->device))
                return true;
        return stat(id, &a) == 0 && stat(v->device, &b) == 0 && S_ISBLK(a.st_mode) && S_ISBLK(b.st_mode) &&
               a.st_rdev == b.st_rdev;
}

int aded_verify_volume(const AdeVolume *v, const AdeStateVolume *record, const char *header, char **ret_why) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        const char *where;
        AdeLuksStatus st;
        int r;

        assert(v);
        assert(ret_why);

        *ret_why = NULL;
        if (record && !streq_ptr(record->device_id, v->stable_id))
                return refuse(ret_why, -EXDEV, "%s is %s, not %s whose record was asked for; nothing was written",
                        v->device, strna(v->stable_id), strna(record->device_id));

        if (header && access(header, F_OK) < 0)
                header = NULL; /* not created yet: the device alone says where it stands */
        where = header ?: v->device;
        r = ade_luks_status(v->device, header, &st);
        if (r < 0)
                return 0; /* unreadable: the job's own read fails with its own sentence */

        if (st.state == ADE_LUKS_STATE_NONE) {
                /* A header recorded as written that is not there: another disk took the name or id. */
                if (record && record->uuid && !header && !record->detached && record->kind == ADE_JOB_ENCRYPT &&
                        record->step >= ADE_STEP_HEADER && record->step < ADE_STEP_DONE)
                        return refuse(ret_why, -EXDEV,
                                "%s has no LUKS header, but the state file says the header of this volume (UUID %s) "
                                "was written to it: it is not the disk that was being encrypted; nothing was written. "
                                "Attach that disk again, or remove its record from the state file",
                                v->device, record->uuid);
                return 0;
        }

        if (!ade_luks_uuid_is_valid(st.uuid))
                return refuse(ret_why, -EBADMSG,
                        "the LUKS header of %s (%s) has the UUID '%s', which is not a UUID; ade names files and "
                        "mappings after it and will not use this header: inspect it with 'cryptsetup luksDump'",
                        v->device, where, st.uuid);
        if (record && record->uuid && !strcaseeq(record->uuid, st.uuid))
                return refuse(ret_why, -EXDEV,
                        "the LUKS header of %s (%s) has UUID %s, but the state file's record of this volume names "
                        "UUID %s: it is another disk's header; nothing was written",
                        v->device, where, st.uuid, record->uuid);
        if (header && ade_luks_read_token(v->device, header, &token) >= 0 && token->device_id &&
                !token_names_volume(token->device_id, v))
                return refuse(ret_why, -EXDEV,
                        "the header %s belongs to the device %s, and %s is %s: it is not the disk that header "
                        "encrypts; nothing was written",
                        header, token->device_id, v->device, strna(v->stable_id));
        return 0;
}

int aded_verify_job(Job *j, const AdeStateVolume *record, const char *header) {
        _cleanup_free_ char *why = NULL;
        int r;

        r = aded_verify_volume(job_volume(j), record, header, &why);
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "%s", why ?: strerror(-r));
        return 0;
}
