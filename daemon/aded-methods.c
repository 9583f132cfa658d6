/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-json.h"
#include "ade-log.h"
#include "aded-enable.h"
#include "aded-errors.h"
#include "aded-manager.h"
#include "aded-newdisks.h"
#include "aded-methods.h"
#include "aded-show.h"
#include "aded-waiter.h"

static int parse_volume_type(json_object *params, const char *field, bool required, const char **ret) {
        const char *t = NULL;
        int r;

        r = ade_json_get_string(params, field, &t);
        if (r == -ENOENT && !required) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return -EINVAL;
        if (!strcaseeq(t, "OS") && !strcaseeq(t, "Data") && !strcaseeq(t, "All"))
                return -EINVAL;
        *ret = t;
        return 0;
}

static const char *opt_string(json_object *params, const char *key, const char *fallback) {
        const char *s;

        return ade_json_get_string(params, key, &s) >= 0 && !isempty(s) ? s : fallback;
}

static bool opt_bool(json_object *params, const char *key) {
        bool b = false;

        return ade_json_get_bool(params, key, &b) >= 0 && b;
}

/* Refuses a mutating @call while aded runs read-only on a state file it could not read: true, with
 * what sending the error returned in *ret. */
static bool refuse_when_degraded(Manager *m, AdeVarlinkCall *call, int *ret) {
        const char *why = aded_state_degraded(m->state);

        if (!why)
                return false;
        *ret = aded_error_precondition(call, "state-file", why);
        return true;
}

/* Enable and Disable take volumeType OS, Data or All, and refuse OS with @os_reason: true when
 * @call was answered so, with what sending the error returned in *ret. */
static bool refuse_volume_type(AdeVarlinkCall *call, json_object *params, const char *os_reason, int *ret) {
        const char *type;

        if (parse_volume_type(params, "volumeType", true, &type) < 0)
                *ret = ade_varlink_error_invalid_parameter(call, "volumeType");
        else if (strcaseeq(type, "OS"))
                *ret = aded_error_precondition(call, "volume-type", os_reason);
        else
                return false;
        return true;
}

static int method_show(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *reply = NULL;
        Manager *m = userdata;
        const char *type;
        int r;

        (void)flags;
        if (parse_volume_type(params, "volumeType", false, &type) < 0)
                return ade_varlink_error_invalid_parameter(call, "volumeType");
        r = aded_show_json(m, type, &reply);
        if (r < 0)
                return r;
        return ade_varlink_reply(call, reply);
}

static int method_watch(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        (void)params;
        (void)flags;
        return waiter_add_watch(userdata, call);
}

static int method_enable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *alg, *type;
        int r;

        if (refuse_volume_type(call, params,
                    "encrypting the OS volume is not supported yet: ade encrypts data volumes only (use volume "
                    "type Data, or All for the data volumes)",
                    &r))
                return r;
        alg = opt_string(params, "kekAlgorithm", m->config->keyvault.kek_algorithm ?: "RSA-OAEP");
        if (!ade_kek_algorithm_is_valid(alg))
                return ade_varlink_error_invalid_parameter(call, "kekAlgorithm");
        if (refuse_when_degraded(m, call, &r))
                return r;
        if (m->stopping)
                return aded_error_stopping(call);
        if (manager_has_running_jobs(m))
                return aded_error_in_progress(call);

        (void)parse_volume_type(params, "volumeType", true, &type);
        return enable_prep_start(m, call, flags, opt_bool(params, "dryRun"), type,
                &(const AdedEnableParams){
                        .keyvault_url = (char *)opt_string(params, "keyVaultUrl", m->config->keyvault.url),
                        .keyvault_resource_id =
                                (char *)opt_string(params, "keyVaultResourceId", m->config->keyvault.resource_id),
                        .kek_url = (char *)opt_string(params, "kekUrl", m->config->keyvault.kek_url),
                        .kek_vault_resource_id = (char *)opt_string(
                                params, "kekVaultResourceId", m->config->keyvault.kek_vault_resource_id),
                        .kek_algorithm = (char *)alg,
                        .format_all = opt_bool(params, "formatAll"),
                        .skip_snapshot_check = opt_bool(params, "skipSnapshotCheck"),
                });
}

/* The status of @v's LUKS header (the detached one the state file names, or the device's). */
static int volume_luks_status(Manager *m, const AdeVolume *v, AdeLuksStatus *ret) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;

        (void)aded_state_get(m->state, aded_state_key(v), &record);
        return ade_luks_status(v->device, record ? record->header_path : NULL, ret);
}

/* Disable takes finished volumes and interrupted decryptions; an interrupted encryption must finish
 * first (the job refuses it too). */
static bool want_encrypted(Manager *m, const AdeVolume *v) {
        AdeLuksStatus st;

        if (volume_luks_status(m, v, &st) < 0 || !st.has_token)
                return false;
        return st.state == ADE_LUKS_STATE_FINISHED ||
               ((st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) &&
                       st.operation == ADE_LUKS_OP_DECRYPT);
}

static bool want_finished(Manager *m, const AdeVolume *v) {
        AdeLuksStatus st;

        return volume_luks_status(m, v, &st) >= 0 && st.state == ADE_LUKS_STATE_FINISHED && st.has_token;
}

/* Unlock takes locked volumes, and open ones whose recorded mount point does not hold them yet (the
 * mount point was missing or busy at the last Unlock); one mounted elsewhere is left alone. */
static bool want_unlock(Manager *m, const AdeVolume *v) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *name = NULL, *mapper = NULL, *why = NULL;
        int r;

        if (!want_finished(m, v))
                return false;
        r = ade_dm_find_crypt(v->device, &name);
        if (r == 0)
                return true;
        if (r < 0)
                return false;
        (void)aded_state_get(m->state, aded_state_key(v), &record);
        if (!record || !record->mount_point || asprintf(&mapper, "/dev/mapper/%s", name) < 0)
                return false;
        r = ade_fs_mount_check(mapper, record->mount_point, &why);
        return r == 0 || r == -ENOENT || r == -ENOTDIR || r == -EBUSY;
}

/* Disable, RotateKey and Unlock: runs @type on the data volumes that carry our header and that
 * @want takes (only @device, by its path or stable id, when given), and answers once the jobs are
 * done (with "more": their progress meanwhile). */
static int run_on_encrypted(Manager *m, AdeVarlinkCall *call, unsigned flags, AdedJobType type, const char *device,
        bool (*want)(Manager *m, const AdeVolume *v), const AdedEnableParams *params) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **all = NULL;
        _cleanup_free_ AdeVolume **eligible = NULL;
        _cleanup_free_ Job **jobs = NULL;
        size_t n = 0, k = 0;
        Waiter *w;
        int r;

        r = manager_data_volumes(m, &all);
        if (r < 0)
                return r;
        while (all[n])
                n++;
        eligible = calloc(n + 1, sizeof(AdeVolume *));
        if (!eligible)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (device && !streq(all[i]->device, device) && !streq_ptr(all[i]->stable_id, device))
                        continue;
                if (want(m, all[i]))
                        eligible[k++] = all[i];
        }

        if (k == 0) {
                _cleanup_json_ json_object *reply = NULL;

                r = aded_jobs_volumes_json(m, NULL, 0, NULL, &reply);
                if (r < 0)
                        return r;
                return ade_varlink_reply(call, reply);
        }
        /* Each volume has one job at a time, with or without a device named in the call. */
        for (size_t i = 0; i < k; i++)
                if (manager_find_job(m, eligible[i]->device))
                        return aded_error_in_progress(call);
        r = manager_start_jobs(m, type, eligible, k, params, &jobs);
        if (r < 0)
                return r;
        r = waiter_add(m, call, jobs, k, NULL, &w);
        if (r < 0)
                return r;
        if (flags & ADE_VARLINK_METHOD_MORE)
                return waiter_notify_progress(m, w);
        return 0;
}

/* Refuses @call while aded stops or a job runs: true, with what sending the error returned in
 * *ret. */
static bool refuse_when_busy(Manager *m, AdeVarlinkCall *call, int *ret) {
        if (refuse_when_degraded(m, call, ret))
                return true;
        if (m->stopping)
                *ret = aded_error_stopping(call);
        else if (manager_has_running_jobs(m))
                *ret = aded_error_in_progress(call);
        else
                return false;
        return true;
}

/* Refuses @call when @device (non-NULL) names no data volume, by its path or its stable id: true,
 * with what sending the error (NoSuchVolume) returned in *ret. */
static bool refuse_unknown_device(Manager *m, AdeVarlinkCall *call, const char *device, int *ret) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **all = NULL;
        int r;

        if (!device)
                return false;
        r = manager_data_volumes(m, &all);
        if (r < 0) {
                *ret = r;
                return true;
        }
        for (size_t i = 0; all[i]; i++)
                if (streq(all[i]->device, device) || streq_ptr(all[i]->stable_id, device))
                        return false;
        *ret = aded_error_no_such_volume(call, device);
        return true;
}

static int method_disable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *device;
        int r;

        if (refuse_volume_type(call, params,
                    "decrypting the OS volume is not supported: ade decrypts data volumes only (use volume type "
                    "Data or All)",
                    &r))
                return r;
        if (refuse_when_busy(m, call, &r))
                return r;
        /* One volume (its path or stable id), or every encrypted data volume. */
        device = opt_string(params, "device", NULL);
        if (refuse_unknown_device(m, call, device, &r))
                return r;
        aded_newdisks_opt_out(m, device);
        return run_on_encrypted(m, call, flags, ADED_JOB_DECRYPT, device, want_encrypted, NULL);
}

static int method_rotate(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *kek;
        int r;

        kek = opt_string(params, "kekUrl", NULL);
        if (refuse_when_busy(m, call, &r))
                return r;
        return run_on_encrypted(m, call, flags, ADED_JOB_ROTATE, NULL, want_finished,
                &(const AdedEnableParams){
                        .kek_url = (char *)kek,
                        .kek_vault_resource_id = m->config->keyvault.kek_vault_resource_id,
                        .kek_algorithm = kek ? m->config->keyvault.kek_algorithm : NULL,
                });
}

static int method_unlock(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *device;
        int r;

        device = opt_string(params, "device", NULL);
        if (refuse_when_degraded(m, call, &r))
                return r;
        if (m->stopping)
                return aded_error_stopping(call);
        if (refuse_unknown_device(m, call, device, &r))
                return r;
        if (!m->dm)
                return aded_error_precondition(call, "device-mapper",
                        "device-mapper is not available on this host (no /dev/mapper/control): "
                        "encrypted volumes cannot be opened here; load the dm-crypt module");
        return run_on_encrypted(m, call, flags, ADED_JOB_UNLOCK, device, want_unlock, NULL);
}

int methods_bind(Manager *m) {
        static const struct {
                const char *name;
                AdeVarlinkMethod callback;
                unsigned flags;
        } table[] = {
                {"Show", method_show, ADE_VARLINK_BIND_ROOT_OR_GROUP},
                {"Watch", method_watch, ADE_VARLINK_BIND_ROOT_OR_GROUP | ADE_VARLINK_BIND_REQUIRES_MORE},
                {"Enable", method_enable, ADE_VARLINK_BIND_ROOT_ONLY},
                {"Disable", method_disable, ADE_VARLINK_BIND_ROOT_ONLY},
                {"Unlock", method_unlock, ADE_VARLINK_BIND_ROOT_ONLY},
                {"RotateKey", method_rotate, ADE_VARLINK_BIND_ROOT_ONLY},
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_free_ char *full = NULL;

                if (asprintf(&full, "%s.%s", ADED_INTERFACE, table[i].name) < 0)
                        return -ENOMEM;
                r = ade_varlink_server_bind_method(m->server, full, table[i].callback, table[i].flags, m);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot bind %s: %m", full);
        }
        return 0;
}
