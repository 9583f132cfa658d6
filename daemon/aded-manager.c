/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "ade-dm.h"
#include "ade-json.h"
#include "ade-log.h"
#include "aded.h"

static const char *const volume_state_table[_ADED_VOLUME_STATE_MAX] = {
        [ADED_NOT_ENCRYPTED] = "NotEncrypted",
        [ADED_ENCRYPTION_PENDING] = "EncryptionPending",
        [ADED_ENCRYPTION_IN_PROGRESS] = "EncryptionInProgress",
        [ADED_ENCRYPTED] = "Encrypted",
        [ADED_VM_RESTART_PENDING] = "VMRestartPending",
        [ADED_DECRYPTION_IN_PROGRESS] = "DecryptionInProgress",
        [ADED_NOT_MOUNTED] = "NotMounted",
        [ADED_FAILED] = "Failed",
};

const char *aded_volume_state_to_string(AdedVolumeState s) {
        return s >= 0 && s < _ADED_VOLUME_STATE_MAX ? volume_state_table[s] : NULL;
}

static int on_event_fd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        uint64_t n;

        (void)s;
        (void)revents;
        (void)!read(fd, &n, sizeof(n));
        manager_dispatch_progress(m);
        return 0;
}

int manager_new(AdeConfig *config, Manager **ret) {
        _cleanup_free_ char *error = NULL;
        Manager *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->config = config;
        m->event_fd = -EBADF;
        m->group = (gid_t)-1;
        pthread_mutex_init(&m->state_lock, NULL);

        r = sd_event_default(&m->event);
        if (r < 0)
                goto fail;

        r = ade_state_load(config->daemon.state_dir, &m->state, &error);
        if (r < 0) {
                ade_log_error("%s", error ?: "cannot read the state file");
                goto fail;
        }

        r = ade_resolver_new(config, NULL, &m->resolver);
        if (r < 0)
                goto fail;

        m->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->event_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(m->event, &m->event_fd_source, m->event_fd, EPOLLIN, on_event_fd, m);
        if (r < 0)
                goto fail;

        m->dm = ade_dm_available();
        *ret = m;
        return 0;
fail:
        m->config = NULL;
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_jobs; i++) {
                atomic_store(&m->jobs[i]->cancel, true);
                job_free(m->jobs[i]);
        }
        free(m->jobs);
        enable_preps_free_all(m);
        while (m->waiters) {
                struct Waiter *w = m->waiters;
                m->waiters = w->next;
                waiter_free(w);
        }
        if (m->server)
                ade_varlink_server_free(m->server);
        sd_event_source_unref(m->event_fd_source);
        if (m->event_fd >= 0)
                close(m->event_fd);
        sd_event_unref(m->event);
        ade_state_free(m->state);
        ade_resolver_free(m->resolver);
        pthread_mutex_destroy(&m->state_lock);
        free(m->last_status);
        ade_volume_free_many(m->volumes);
        free(m);
        return NULL;
}

Job *manager_find_job(Manager *m, const char *device) {
        for (size_t i = 0; i < m->n_jobs; i++)
                if (streq(m->jobs[i]->device, device))
                        return m->jobs[i];
        return NULL;
}

bool manager_has_running_jobs(Manager *m) {
        return m->n_jobs > 0 || m->preps;
}

/* Volumes from [volumes] (taken as given) or discovery; the device under "/" is never offered as
 * data. Devices that vanished are described anyway so that Show says so. */
int manager_volumes(Manager *m, AdeVolume ***ret) {
        AdeVolume **l = NULL;
        int r;

        r = ade_volume_discover(m->config, false, &l);
        if (r < 0)
                return r;
        for (size_t i = 0, k = 0; l[i] || (l[k] = NULL, false); i++) {
                if (l[i]->type != ADE_VOLUME_OS && ade_dm_device_backs_root(l[i]->device) > 0) {
                        ade_log_debug("%s backs / and is not offered as a data volume", l[i]->device);
                        ade_volume_free(l[i]);
                        continue;
                }
                l[k++] = l[i];
        }
        *ret = l;
        return 0;
}

static int add_str(json_object *o, const char *key, const char *value) {
        return json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

static int volume_json_common(const AdeVolume *v, json_object **ret) {
        json_object *o = json_object_new_object();

        if (!o)
                return -ENOMEM;
        add_str(o, "device", v->device);
        add_str(o, "type", ade_volume_type_to_string(v->type));
        add_str(o, "mountpoint", v->mountpoint);
        *ret = o;
        return 0;
}

static void json_set_progress(json_object *o, uint64_t done, uint64_t total) {
        double progress = total > 0 ? (double)done / (double)total : 0.0;

        if (progress > 1.0)
                progress = 1.0;
        json_object_object_add(o, "progress", json_object_new_double(progress));
        json_object_object_add(o, "bytesDone", json_object_new_int64((int64_t)done));
        json_object_object_add(o, "bytesTotal", json_object_new_int64((int64_t)total));
}

/* What the state file knows about a device (copied under the lock). */
typedef struct RecordView {
        bool exists;
        AdeJobKind kind;
        AdeJobStep step;
        char *secret_url, *kek_url, *header_path, *error, *mount_point;
        bool detached;
} RecordView;

static void record_view_done(RecordView *r) {
        free(r->secret_url);
        free(r->kek_url);
        free(r->header_path);
        free(r->error);
        free(r->mount_point);
}

static void record_view(Manager *m, const char *device, RecordView *ret) {
        AdeStateVolume *v;

        *ret = (RecordView){};
        pthread_mutex_lock(&m->state_lock);
        v = ade_state_find(m->state, device);
        if (v) {
                ret->exists = true;
                ret->kind = v->kind;
                ret->step = v->step;
                ret->detached = v->detached;
                ret->secret_url = v->secret_url ? strdup(v->secret_url) : NULL;
                ret->kek_url = v->kek_url ? strdup(v->kek_url) : NULL;
                ret->header_path = v->header_path ? strdup(v->header_path) : NULL;
                ret->error = v->error ? strdup(v->error) : NULL;
                ret->mount_point = v->mount_point ? strdup(v->mount_point) : NULL;
        }
        pthread_mutex_unlock(&m->state_lock);
}

int manager_volume_json(Manager *m, const AdeVolume *v, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_(record_view_done) RecordView rec = {};
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_free_ char *mapper = NULL, *mapper_path = NULL, *why = NULL;
        AdedVolumeState state = ADED_NOT_ENCRYPTED;
        AdeLuksStatus st = {};
        uint64_t done = 0, total = 0;
        const char *message = NULL;
        Job *j;
        int r;

        r = volume_json_common(v, &o);
        if (r < 0)
                return r;
        record_view(m, v->device, &rec);

        j = manager_find_job(m, v->device);
        if (j) {
                /* A job holds the header: report from its progress, never read the device now. */
                _cleanup_free_ char *phase = NULL;
                bool finished;

                job_snapshot(j, &done, &total, &finished, NULL, &phase);
                /* Rotating a key or unlocking leaves the data as it is: still Encrypted. */
                state = j->type == ADED_JOB_DECRYPT                                ? ADED_DECRYPTION_IN_PROGRESS
                        : j->type == ADED_JOB_ROTATE || j->type == ADED_JOB_UNLOCK ? ADED_ENCRYPTED
                                                                                   : ADED_ENCRYPTION_IN_PROGRESS;
                json_object_object_add(o, "state", json_object_new_string(aded_volume_state_to_string(state)));
                json_set_progress(o, done, total);
                json_object_object_add(o, "unlocked", json_object_new_boolean(false));
                add_str(o, "secretUrl", rec.secret_url);
                add_str(o, "kekUrl", rec.kek_url);
                add_str(o, "header", rec.detached ? "Detached" : "Attached");
                add_str(o, "mode", j->params.format_all ? "FormatAll" : "InPlace");
                add_str(o, "message", phase);
                *ret = TAKE_PTR(o);
                return 0;
        }

        /* A detached header is not on the device: the state names it, or header-dir holds it (a lost
         * state file must not make an encrypted volume look plain). */
        r = ade_luks_status(v->device, rec.header_path, &st);
        if (r >= 0 && st.state == ADE_LUKS_STATE_NONE && !rec.header_path && v->stable_id) {
                _cleanup_free_ char *found = NULL;

                if (ade_luks_find_header(m->config->volumes.header_dir, v->stable_id, &found) >= 0) {
                        rec.header_path = TAKE_PTR(found);
                        r = ade_luks_status(v->device, rec.header_path, &st);
                }
        }
        if (r < 0) {
                state = ADED_FAILED;
                message = "the LUKS header cannot be read";
        } else
                switch (st.state) {
                case ADE_LUKS_STATE_NONE:
                        state = rec.exists && rec.error ? ADED_FAILED : ADED_NOT_ENCRYPTED;
                        break;
                case ADE_LUKS_STATE_FINISHED:
                        state = ADED_ENCRYPTED;
                        done = total = st.data_size;
                        break;
                case ADE_LUKS_STATE_CLEAN:
                case ADE_LUKS_STATE_CRASH:
                        /* Stopped and not running: aded resumes it at start, or it failed. */
                        state = st.operation == ADE_LUKS_OP_DECRYPT ? ADED_DECRYPTION_IN_PROGRESS
                                                                    : ADED_ENCRYPTION_IN_PROGRESS;
                        if (rec.exists && rec.error)
                                state = ADED_FAILED;
                        else
                                message = "interrupted; aded resumes it when it starts";
                        total = st.data_size;
                        break;
                default:
                        state = ADED_FAILED;
                        message = "libcryptsetup refuses this header's metadata";
                }
        if (st.state != ADE_LUKS_STATE_NONE && r >= 0) {
                if (st.uuid[0])
                        add_str(o, "uuid", st.uuid);
                add_str(o, "header",
                        st.header == ADE_LUKS_HEADER_DETACHED || rec.header_path ? "Detached" : "Attached");
                add_str(o, "mode", "InPlace");
                if (ade_luks_read_token(v->device, rec.header_path, &token) >= 0) {
                        add_str(o, "secretUrl", token->secret_url);
                        add_str(o, "kekUrl", token->kek_url);
                } else {
                        add_str(o, "secretUrl", rec.secret_url);
                        add_str(o, "kekUrl", rec.kek_url);
                }
        } else if (rec.exists) {
                add_str(o, "secretUrl", rec.secret_url);
                add_str(o, "kekUrl", rec.kek_url);
        }

        if (m->dm && aded_dm_find_crypt(v->device, &mapper) > 0 && asprintf(&mapper_path, "/dev/mapper/%s", mapper) < 0)
                return -ENOMEM;
        json_object_object_add(o, "state", json_object_new_string(aded_volume_state_to_string(state)));
        json_set_progress(o, done, total);
        json_object_object_add(o, "unlocked", json_object_new_boolean(mapper_path != NULL));
        add_str(o, "mapper", mapper_path);
        /* An open volume lives on its mapper: report where that is mounted, and why it is not on the
         * mount point recorded at enable (Unlock puts it there). */
        if (mapper_path && rec.mount_point) {
                r = aded_mount_check(mapper_path, rec.mount_point, &why);
                if (r > 0 && !v->mountpoint)
                        add_str(o, "mountpoint", rec.mount_point);
                else if (r == 0 && asprintf(&why, "%s is open but not mounted on %s; 'adectl unlock' mounts it",
                                           mapper_path, rec.mount_point) < 0)
                        why = NULL;
                if (!message && state == ADED_ENCRYPTED)
                        message = why;
        }
        if (rec.error && state == ADED_FAILED)
                message = rec.error;
        else if (!message && v->skip != ADE_VOLUME_ELIGIBLE && state == ADED_NOT_ENCRYPTED)
                message = v->reason;
        add_str(o, "message", message);
        *ret = TAKE_PTR(o);
        return 0;
}

static bool type_matches(const AdeVolume *v, const char *filter) {
        if (!filter || strcaseeq(filter, "All"))
                return true;
        if (strcaseeq(filter, "OS"))
                return v->type == ADE_VOLUME_OS;
        if (strcaseeq(filter, "Data"))
                return v->type == ADE_VOLUME_DATA;
        return false;
}

/* The data volumes' state is the worst of them: a failure or a job in progress shows before Encrypted. */
static int state_rank(const char *s) {
        static const char *const order[] = {"Failed", "DecryptionInProgress", "EncryptionInProgress",
                "EncryptionPending", "NotEncrypted", "VMRestartPending", "NotMounted", "Encrypted"};
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                if (streq(order[i], s))
                        return (int)i;
        return 0;
}

static const char *state_constant(const char *s) {
        for (int i = 0; s && i < _ADED_VOLUME_STATE_MAX; i++)
                if (streq(volume_state_table[i], s))
                        return volume_state_table[i];
        return "Failed";
}

/* The volume list, probed at most every VOLUMES_TTL_USEC and never while a job runs: probing reads
 * every device, and a device under reencryption is the job's alone. */
#define VOLUMES_TTL_USEC (2U * 1000U * 1000U)

static int manager_volumes_cached(Manager *m, AdeVolume *const **ret) {
        uint64_t now = ade_now_monotonic_usec();
        AdeVolume **l;
        int r;

        if (!m->volumes || (!manager_has_running_jobs(m) && now - m->volumes_usec > VOLUMES_TTL_USEC)) {
                r = manager_volumes(m, &l);
                if (r < 0)
                        return r;
                ade_volume_free_many(m->volumes);
                m->volumes = l;
                m->volumes_usec = now;
        }
        *ret = m->volumes;
        return 0;
}

void manager_volumes_invalidate(Manager *m) {
        m->volumes_usec = 0;
}

int manager_show_json(Manager *m, const char *type_filter, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        AdeVolume *const *l;
        json_object *volumes;
        const char *os = "NotEncrypted", *data = NULL;
        int r;

        r = manager_volumes_cached(m, &l);
        if (r < 0)
                return r;
        o = json_object_new_object();
        volumes = json_object_new_array();
        if (!o || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        for (size_t i = 0; l[i]; i++) {
                json_object *v;
                const char *s;

                r = manager_volume_json(m, l[i], &v);
                if (r < 0) {
                        json_object_put(volumes);
                        return r;
                }
                s = state_constant(json_object_get_string(json_object_object_get(v, "state")));
                if (l[i]->type == ADE_VOLUME_OS)
                        os = s;
                else if (l[i]->type == ADE_VOLUME_DATA && (!data || state_rank(s) < state_rank(data)))
                        data = s;
                if (type_matches(l[i], type_filter))
                        json_object_array_add(volumes, v);
                else
                        json_object_put(v);
        }
        json_object_object_add(o, "os", json_object_new_string(os));
        json_object_object_add(o, "data", json_object_new_string(data ?: "NotEncrypted"));
        json_object_object_add(o, "volumes", volumes);
        *ret = TAKE_PTR(o);
        return 0;
}

static void update_status(Manager *m) {
        _cleanup_free_ char *status = NULL;

        for (size_t i = 0; i < m->n_jobs && !status; i++) {
                Job *j = m->jobs[i];
                uint64_t done, total;

                job_snapshot(j, &done, &total, NULL, NULL, NULL);
                if (asprintf(&status, "%s %s: %u%%",
                            j->type == ADED_JOB_ENCRYPT   ? "Encrypting"
                            : j->type == ADED_JOB_DECRYPT ? "Decrypting"
                            : j->type == ADED_JOB_ROTATE  ? "Rotating the key of"
                                                          : "Unlocking",
                            j->device, total > 0 ? (unsigned)(done * 100 / total) : 0U) < 0)
                        return;
        }
        if (!status && !(status = strdup(m->stopping ? "Stopping" : "Idle")))
                return;
        if (streq_ptr(status, m->last_status))
                return;
        (void)sd_notifyf(false, "STATUS=%s", status);
        free(m->last_status);
        m->last_status = TAKE_PTR(status);
}

void manager_dispatch_progress(Manager *m) {
        bool changed = false;

        /* Reap finished jobs first, so waiters see them as done. */
        for (size_t i = 0; i < m->n_jobs;) {
                Job *j = m->jobs[i];
                bool finished;
                int result;

                job_snapshot(j, NULL, NULL, &finished, &result, NULL);
                if (!finished) {
                        i++;
                        continue;
                }
                pthread_join(j->thread, NULL);
                j->thread_started = false;
                j->reaped = true;
                changed = true;
                memmove(m->jobs + i, m->jobs + i + 1, (m->n_jobs - i - 1) * sizeof(Job *));
                m->n_jobs--;
                if (result == 0)
                        ade_log_info("job on %s finished", j->device);
                else if (result == -ECANCELED)
                        ade_log_info("job on %s stopped; it resumes when aded starts again", j->device);
                else
                        ade_log_error("job on %s failed: %s", j->device, j->message ?: strerror(-result));
                if (j->n_waiters == 0)
                        job_free(j);
        }
        if (enable_preps_dispatch(m))
                changed = true;
        if (changed) {
                manager_volumes_invalidate(m);
                /* A reencryption's buffers live in the worker's malloc arena; give them back to the
                 * kernel so that an idle aded stays small. */
                if (m->n_jobs == 0)
                        (void)malloc_trim(0);
        }

        waiters_dispatch(m, changed);
        update_status(m);

        if (m->stopping && m->n_jobs == 0 && !m->preps)
                (void)sd_event_exit(m->event, 0);
}

void manager_stop(Manager *m) {
        if (!m->stopping)
                ade_log_info("stopping: %zu job(s) stop at the next hotzone boundary and resume at the next start",
                        m->n_jobs);
        m->stopping = true;
        (void)sd_notify(false, "STOPPING=1");
        for (size_t i = 0; i < m->n_jobs; i++)
                atomic_store(&m->jobs[i]->cancel, true);
        manager_dispatch_progress(m);
}

/* Starts the jobs that the state file (or a header with an interrupted reencryption) says are
 * unfinished. Nobody waits for them; Show and Watch report them. */
static int manager_resume(Manager *m) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **vols = NULL;
        int r;

        r = manager_volumes(m, &vols);
        if (r < 0)
                return ade_log_error_errno(r, "cannot list volumes: %m");

        for (size_t i = 0; vols[i]; i++) {
                AdeVolume *v = vols[i];
                AdedEnableParams p = {};
                AdeStateVolume *rec;
                AdedJobType type;
                AdeLuksStatus st;
                bool resume = false;
                Job *j;

                if (v->type != ADE_VOLUME_DATA)
                        continue;
                pthread_mutex_lock(&m->state_lock);
                rec = ade_state_find(m->state, v->device);
                /* A record with an error is resumed too once its key is escrowed: the error may have been
                 * transient (Key Vault unreachable), and the device must not stay half encrypted. */
                if (rec && rec->step != ADE_STEP_DONE && (rec->step >= ADE_STEP_ESCROW || !rec->error)) {
                        resume = true;
                        type = rec->kind == ADE_JOB_DECRYPT ? ADED_JOB_DECRYPT : ADED_JOB_ENCRYPT;
                        p = (AdedEnableParams){
                                .keyvault_url = rec->keyvault_url ? strdup(rec->keyvault_url) : NULL,
                                .keyvault_resource_id =
                                        rec->keyvault_resource_id ? strdup(rec->keyvault_resource_id) : NULL,
                                .kek_url = rec->kek_url ? strdup(rec->kek_url) : NULL,
                                .kek_vault_resource_id =
                                        rec->kek_vault_resource_id ? strdup(rec->kek_vault_resource_id) : NULL,
                                .kek_algorithm = rec->kek_algorithm ? strdup(rec->kek_algorithm) : NULL,
                                .skip_snapshot_check = rec->skip_snapshot_check,
                        };
                        /* Before the escrow nothing was written anywhere: such a record is dropped, not resumed. */
                        if (type == ADED_JOB_ENCRYPT && rec->step < ADE_STEP_ESCROW) {
                                ade_log_info("%s: an encryption stopped before its key was escrowed; nothing was "
                                             "written, run enable again",
                                        v->device);
                                (void)ade_state_remove(m->state, v->device);
                                (void)ade_state_save(m->state);
                                resume = false;
                        }
                }
                pthread_mutex_unlock(&m->state_lock);

                if (!resume && !rec && ade_luks_status(v->device, NULL, &st) >= 0 && st.has_token &&
                        (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH)) {
                        /* A header in the middle of our reencryption, unknown to the state file (lost?). */
                        resume = true;
                        type = st.operation == ADE_LUKS_OP_DECRYPT ? ADED_JOB_DECRYPT : ADED_JOB_ENCRYPT;
                        pthread_mutex_lock(&m->state_lock);
                        if (ade_state_add(m->state, v->device,
                                    type == ADED_JOB_DECRYPT ? ADE_JOB_DECRYPT : ADE_JOB_ENCRYPT, &rec) >= 0) {
                                ade_state_volume_set_step(rec, ADE_STEP_HEADER);
                                (void)ade_strdup_to(&rec->uuid, st.uuid);
                                (void)ade_state_save(m->state);
                        }
                        pthread_mutex_unlock(&m->state_lock);
                }
                if (!resume) {
                        aded_enable_params_done(&p);
                        continue;
                }

                r = job_new(m, type, v, &p, &j);
                aded_enable_params_done(&p);
                if (r < 0)
                        return r;
                j->resume = true;
                Job **grown = realloc(m->jobs, (m->n_jobs + 1) * sizeof(Job *));
                if (!grown) {
                        job_free(j);
                        return -ENOMEM;
                }
                m->jobs = grown;
                r = job_start(j);
                if (r < 0) {
                        job_free(j);
                        return ade_log_error_errno(r, "cannot start the job resuming %s: %m", v->device);
                }
                m->jobs[m->n_jobs++] = j;
                ade_log_info(
                        "resuming the %s of %s", type == ADED_JOB_DECRYPT ? "decryption" : "encryption", v->device);
        }
        return 0;
}

int manager_start(Manager *m) {
        struct group *g;
        int r;

        if (m->config->daemon.group) {
                g = getgrnam(m->config->daemon.group);
                if (g)
                        m->group = g->gr_gid;
                else
                        ade_log_warning("group '%s' ([daemon] group in %s) does not exist; only root may use aded",
                                m->config->daemon.group, m->config->path);
        }

        r = ade_varlink_server_new(m->event, &m->server);
        if (r < 0)
                return r;
        r = ade_varlink_server_set_info(
                m->server, "ade", "aded", PACKAGE_VERSION, isempty(PACKAGE_URL) ? NULL : PACKAGE_URL);
        if (r < 0)
                return r;
        ade_varlink_server_set_group(m->server, m->group);
        r = ade_varlink_server_add_interface(m->server, ade_varlink_idl_disk_encryption);
        if (r < 0)
                return ade_log_error_errno(r, "the embedded interface text does not parse: %m");
        r = methods_bind(m);
        if (r < 0)
                return r;

        r = ade_varlink_server_listen_auto(m->server);
        if (r < 0)
                return ade_log_error_errno(r, "cannot take the sockets passed by systemd: %m");
        if (r == 0) {
                r = ade_varlink_server_listen_address(m->server, m->config->daemon.socket, 0660, 0, m->group);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot listen on %s: %m%s", m->config->daemon.socket,
                                r == -EADDRINUSE ? " (another aded is running)" : "");
                ade_log_info("listening on %s", m->config->daemon.socket);
        }

        r = manager_resume(m);
        if (r < 0)
                return r;
        if (!m->dm)
                ade_log_info("device-mapper is not available: volumes are encrypted offline and stay locked");
        update_status(m);
        (void)sd_notify(false, "READY=1");
        return 0;
}
