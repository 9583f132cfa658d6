/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-json.h"
#include "ade-log.h"
#include "aded-enable.h"
#include "aded-errors.h"
#include "aded-manager.h"
#include "aded-methods.h"
#include "aded-restore.h"
#include "aded-adopt.h"
#include "aded-select.h"
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

/* Disable takes volumeType OS, Data or All, and refuses OS with @os_reason: true when
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
        const char *type;

        (void)flags;
        if (parse_volume_type(params, "volumeType", false, &type) < 0)
                return ade_varlink_error_invalid_parameter(call, "volumeType");
        return aded_show_start(userdata, call, type);
}

static int method_watch(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        (void)params;
        (void)flags;
        return waiter_add_watch(userdata, call);
}

static int method_enable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *alg, *type;
        AdedEnableParams p;
        int r;

        /* The OS volume is judged with the others, in the preparation (ade-osvol). */
        if (parse_volume_type(params, "volumeType", true, &type) < 0)
                return ade_varlink_error_invalid_parameter(call, "volumeType");
        alg = opt_string(params, "kekAlgorithm", m->config->keyvault.kek_algorithm ?: "RSA-OAEP");
        if (!ade_kek_algorithm_is_valid(alg))
                return ade_varlink_error_invalid_parameter(call, "kekAlgorithm");
        if (refuse_when_degraded(m, call, &r))
                return r;
        if (m->stopping)
                return aded_error_stopping(call);

        p = (AdedEnableParams){
                .keyvault_url = (char *)opt_string(params, "keyVaultUrl", m->config->keyvault.url),
                .keyvault_resource_id =
                        (char *)opt_string(params, "keyVaultResourceId", m->config->keyvault.resource_id),
                .kek_url = (char *)opt_string(params, "kekUrl", m->config->keyvault.kek_url),
                .kek_vault_resource_id =
                        (char *)opt_string(params, "kekVaultResourceId", m->config->keyvault.kek_vault_resource_id),
                .kek_algorithm = (char *)alg,
                .format_all = opt_bool(params, "formatAll"),
                .skip_snapshot_check = opt_bool(params, "skipSnapshotCheck"),
        };
        if (manager_has_running_jobs(m)) {
                /* A dry run's plan would describe volumes that the running job is changing. */
                if (opt_bool(params, "dryRun"))
                        return aded_error_in_progress(call, manager_busy_device(m));
                return enable_queue_add(m, call, flags, type, &p);
        }
        return enable_prep_start(m, call, flags, opt_bool(params, "dryRun"), type, &p);
}

/* Refuses @call while aded stops or a job runs: true, with what sending the error returned in
 * *ret. */
static bool refuse_when_busy(Manager *m, AdeVarlinkCall *call, int *ret) {
        if (refuse_when_degraded(m, call, ret))
                return true;
        if (m->stopping)
                *ret = aded_error_stopping(call);
        else if (manager_has_running_jobs(m))
                *ret = aded_error_in_progress(call, manager_busy_device(m));
        else
                return false;
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
        return select_start(m, call, flags,
                &(const AdedSelectRequest){
                        .type = ADED_JOB_DECRYPT,
                        .want = ADED_SELECT_ENCRYPTED,
                        .device = device,
                        .refuse_busy = true,
                });
}

static int method_rotate(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *kek;
        int r;

        kek = opt_string(params, "kekUrl", NULL);
        if (refuse_when_busy(m, call, &r))
                return r;
        return select_start(m, call, flags,
                &(const AdedSelectRequest){
                        .type = ADED_JOB_ROTATE,
                        .want = ADED_SELECT_FINISHED,
                        .refuse_busy = true,
                        .params =
                                &(const AdedEnableParams){
                                        .kek_url = (char *)kek,
                                        .kek_vault_resource_id = m->config->keyvault.kek_vault_resource_id,
                                        .kek_algorithm = kek ? m->config->keyvault.kek_algorithm : NULL,
                                },
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
        /* Without a device there is no name to check first: the answer needs no device read. */
        if (!device && !m->dm)
                return aded_error_unlock_without_dm(call);
        return select_start(m, call, flags,
                &(const AdedSelectRequest){
                        .type = ADED_JOB_UNLOCK,
                        .want = ADED_SELECT_LOCKED,
                        .device = device,
                        .need_dm = true,
                });
}

static int method_restore_header(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        const char *device;
        int64_t generation = 0;
        int r;

        (void)flags;
        if (ade_json_get_string(params, "device", &device) < 0 || isempty(device))
                return ade_varlink_error_invalid_parameter(call, "device");
        r = ade_json_get_int64(params, "generation", &generation);
        if ((r < 0 && r != -ENOENT) || generation < 0 || generation > 999999)
                return ade_varlink_error_invalid_parameter(call, "generation");
        /* The header goes under nothing: not under a job, and no job starts until it is written. */
        if (refuse_when_busy(m, call, &r))
                return r;
        return aded_restore_start(m, call, device, (unsigned)generation, opt_bool(params, "dryRun"));
}

static int method_adopt(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        Manager *m = userdata;
        int r;

        (void)flags;
        /* Tokens, records and crypttab are written under no job, and no job starts until they are. */
        if (refuse_when_busy(m, call, &r))
                return r;
        return aded_adopt_start(m, call, opt_bool(params, "dryRun"));
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
                {"RestoreHeader", method_restore_header, ADE_VARLINK_BIND_ROOT_ONLY},
                {"Adopt", method_adopt, ADE_VARLINK_BIND_ROOT_ONLY},
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
