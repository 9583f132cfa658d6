/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "ade-json.h"
#include "ade-log.h"
#include "ade-restore.h"
#include "ade-volume.h"
#include "aded-errors.h"
#include "aded-manager.h"
#include "aded-restore.h"
#include "aded-state.h"
#include "aded-task.h"

typedef struct Restore {
        AdedTask task; /* first: the task list holds Restores */
        AdeVarlinkCall *call;
        char *device;
        unsigned generation;
        bool dry_run;
        /* The thread's outcome. */
        int result;
        bool not_found;  /* the device is not a volume of the state file */
        bool no_backups; /* -ENOENT from the restore: no such generation */
        char *why;       /* what a person reads on failure */
        AdeCloudError cloud;
        AdeRestoreResult done;
} Restore;

static Restore *restore_free(Restore *x) {
        if (!x)
                return NULL;
        ade_varlink_call_unref(x->call);
        free(x->device);
        free(x->why);
        ade_cloud_error_done(&x->cloud);
        ade_restore_result_done(&x->done);
        free(x);
        return NULL;
}

static void restore_freep(Restore **x) {
        restore_free(*x);
}

static void *restore_thread(void *userdata) {
        Restore *x = userdata;
        Manager *m = x->task.manager;
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(ade_blob_client_freep) AdeBlobClient *blob = NULL;
        _cleanup_free_ char *device_id = NULL;
        AdeCredential *credential;
        AdeHttpOptions o;
        int r;

        r = ade_volume_stable_id(x->device, &device_id, NULL);
        if (r >= 0)
                r = aded_state_get(m->state, device_id, &record);
        if (r >= 0 && !record)
                r = -ENOENT;
        if (r < 0) {
                x->not_found = true;
                goto finish;
        }
        r = ade_resolver_credential(m->resolver, &credential);
        if (r >= 0) {
                o = *ade_resolver_http_options(m->resolver);
                o.max_response_size = 0;
                r = ade_blob_client_new(m->config->backup.url, credential, NULL, &o, &blob);
        }
        if (r < 0) {
                if (asprintf(&x->why, "cannot set up the Blob Storage client for %s: %s", m->config->backup.url,
                            strerror(-r)) < 0)
                        x->why = NULL;
                goto finish;
        }
        r = ade_restore_header(blob, m->resolver,
                &(const AdeRestoreRequest){.device = x->device,
                        .header = record->detached ? record->header_path : NULL,
                        .device_id = device_id,
                        .header_dir = m->config->volumes.header_dir,
                        .generation = x->generation,
                        .dry_run = x->dry_run},
                &x->done, &x->cloud, &x->why);
        x->no_backups = r == -ENOENT;
        if (r >= 0)
                ade_log_info("%s: header %s from %s/%s (generation %u)", x->device,
                        x->dry_run ? "checked, not written (dry run)," : "restored", m->config->backup.url,
                        x->done.blob, x->done.generation);
        else
                ade_log_warning("%s: header not restored: %s", x->device, x->why ?: strerror(-r));
finish:
        x->result = r;
        aded_task_done(&x->task);
        return NULL;
}

static int restore_answer(Restore *x) {
        _cleanup_json_ json_object *reply = NULL, *p = NULL;

        if (!ade_varlink_call_is_pending(x->call))
                return 0; /* the caller left */
        if (x->not_found)
                return aded_error_no_such_volume(x->call, x->device);
        if (x->result < 0) {
                _cleanup_free_ char *cloud = NULL, *reason = NULL;
                const char *error;

                /* Storage's or Key Vault's own words after ours: they say what to fix there. */
                if (x->cloud.code || x->cloud.status > 0)
                        cloud = ade_cloud_error_to_string(&x->cloud, "Azure");
                if (asprintf(&reason, "%s%s%s", x->why ?: strerror(-x->result), cloud ? ": " : "", strempty(cloud)) < 0)
                        return -ENOMEM;
                if (x->no_backups)
                        error = ADED_ERROR("BackupNotFound");
                else if (x->result == -EBADMSG || x->result == -EXDEV || x->result == -EBUSY || x->result == -ENOKEY ||
                         x->result == -EPERM || x->result == -ESTALE)
                        error = ADED_ERROR("RestoreRefused");
                else
                        error = ADED_ERROR("RestoreFailed");
                p = json_object_new_object();
                if (!p)
                        return -ENOMEM;
                json_object_object_add(p, "device", json_object_new_string(x->device));
                json_object_object_add(p, "reason", json_object_new_string(reason));
                return ade_varlink_error(x->call, error, p);
        }
        reply = json_object_new_object();
        if (!reply)
                return -ENOMEM;
        json_object_object_add(reply, "device", json_object_new_string(x->device));
        json_object_object_add(reply, "generation", json_object_new_int((int)x->done.generation));
        json_object_object_add(reply, "blob", json_object_new_string(x->done.blob));
        json_object_object_add(reply, "volume", json_object_new_string(x->done.uuid));
        if (x->done.kept)
                json_object_object_add(reply, "kept", json_object_new_string(x->done.kept));
        json_object_object_add(reply, "dryRun", json_object_new_boolean(x->dry_run));
        return ade_varlink_reply(x->call, reply);
}

static int restore_task_finish(AdedTask *t) {
        (void)restore_answer((Restore *)t);
        return 0;
}

static void restore_task_free(AdedTask *t) {
        restore_free((Restore *)t);
}

int aded_restore_start(Manager *m, AdeVarlinkCall *call, const char *device, unsigned generation, bool dry_run) {
        _cleanup_(restore_freep) Restore *x = NULL;
        int r;

        if (!m->config->backup.url)
                return aded_error_precondition(
                        call, "backup", "ade.conf has no [backup] url: there are no header backups to restore from");
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->device = strdup(device);
        if (!x->device)
                return -ENOMEM;
        x->generation = generation;
        x->dry_run = dry_run;
        x->call = ade_varlink_call_ref(call);
        r = aded_task_start(m, &m->restores, &x->task, restore_thread);
        if (r < 0)
                return r;
        TAKE_PTR(x);
        return 0;
}

const char *aded_restore_busy_device(Manager *m) {
        return m->restores ? ((Restore *)m->restores)->device : NULL;
}

bool aded_restore_dispatch(Manager *m) {
        return aded_tasks_reap(&m->restores, restore_task_finish, restore_task_free);
}

void aded_restore_free_all(Manager *m) {
        aded_tasks_free_all(&m->restores, restore_task_free);
}
