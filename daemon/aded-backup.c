/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ade-blob.h"
#include "ade-cse.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-resolver.h"
#include "ade-restore.h"
#include "aded-backup.h"
#include "aded-manager.h"
#include "aded-state.h"

#define GENERATION_DIGITS 6
#define HEADER_SIZE_MAX (64U * 1024U * 1024U)

/* The machine's part of blob names: its host name when it is a blob name segment, else "vm". */
static void machine_segment(char *buf, size_t size) {
        if (gethostname(buf, size - 1) < 0 || !ade_blob_name_is_valid(buf) || strchr(buf, '/'))
                snprintf(buf, size, "vm");
        buf[size - 1] = 0;
}

/* The header as a file would hold it: a backup into a private folder under header-dir, read back
 * and removed. */
static int read_header(const char *device, const char *header, const char *header_dir, void **ret, size_t *ret_size) {
        _cleanup_free_ char *tmpl = NULL, *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        ssize_t n;
        int r;

        if (asprintf(&tmpl, "%s/.backup-upload.XXXXXX", header_dir) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmpl))
                return -errno;
        r = ade_luks_backup_header(device, header, tmpl, &path);
        if (r >= 0) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0)
                        r = -errno;
                else if (st.st_size <= 0 || (uint64_t)st.st_size > HEADER_SIZE_MAX)
                        r = -EFBIG;
                else if (!(buf = malloc(st.st_size)))
                        r = -ENOMEM;
                else if ((n = read(fd, buf, st.st_size)) != st.st_size)
                        r = n < 0 ? -errno : -EIO;
                (void)unlink(path);
        }
        (void)rmdir(tmpl);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        *ret_size = st.st_size;
        return 0;
}

/* The generation a blob name under @prefix says, or 0 when it is not one of ours. */
static unsigned name_generation(const char *name, const char *prefix) {
        const char *rest;
        unsigned long g;
        char *end;

        if (!startswith(name, prefix))
                return 0;
        rest = name + strlen(prefix);
        g = strtoul(rest, &end, 10);
        return end == rest + GENERATION_DIGITS && *end == '-' && g < 999999 ? (unsigned)g : 0;
}

/* The blobs under @prefix and the next generation: one more than the highest there, 1 for the first. */
static int list_generations(AdeBlobClient *blob, const char *prefix, AdeBlobItem **ret_items, size_t *ret_n,
        unsigned *ret_next, AdeCloudError *ret_error) {
        AdeBlobItem *items = NULL;
        unsigned max = 0;
        size_t n = 0;
        int r;

        r = ade_blob_list(blob, prefix, 0, &items, &n, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                unsigned g = name_generation(items[i].name, prefix);
                if (g > max)
                        max = g;
        }
        *ret_items = items;
        *ret_n = n;
        *ret_next = max + 1;
        return 0;
}

typedef struct Listing {
        AdeBlobItem *items;
        size_t n;
} Listing;

static void listing_done(Listing *l) {
        ade_blob_items_free(l->items, l->n);
}

/* [backup] keep: after generation @latest is uploaded, the older ones beyond the newest @keep go.
 * A blob that cannot be deleted stays, said in the log; the backup itself is done. */
static void prune(AdeBlobClient *blob, const char *device, const char *prefix, const AdeBlobItem *items, size_t n,
        unsigned latest, unsigned keep) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_cloud_error_ AdeCloudError e = {};
                unsigned g = name_generation(items[i].name, prefix);
                int r;

                if (g == 0 || g + keep > latest)
                        continue;
                r = ade_blob_delete(blob, items[i].name, &e);
                if (r < 0 && r != -ENOENT)
                        ade_log_warning("%s: the old header backup %s/%s could not be deleted ([backup] keep = %u): "
                                        "%s; it stays",
                                device, ade_blob_client_url(blob), items[i].name, keep, e.message ?: strerror(-r));
                else
                        ade_log_debug("%s: deleted the old header backup %s ([backup] keep = %u)", device,
                                items[i].name, keep);
        }
}

/* The client of [backup] url, with aded's identity. */
static int blob_client(Manager *m, AdeBlobClient **ret) {
        AdeCredential *credential;
        AdeHttpOptions o;
        int r;

        r = ade_resolver_credential(m->resolver, &credential);
        if (r < 0)
                return r;
        o = *ade_resolver_http_options(m->resolver);
        /* The job waits for this: a Storage that is down costs it a minute at most, not several. */
        o.max_retries = 2;
        o.timeout_ms = 60 * 1000;
        o.max_response_size = 0;
        return ade_blob_client_new(m->config->backup.url, credential, NULL, &o, ret);
}

/* One upload at a time: a job's and the retry's would otherwise race to the same generation, and the
 * later one's bookkeeping must be the one that stays. */
static pthread_mutex_t upload_lock = PTHREAD_MUTEX_INITIALIZER;

static int upload(Manager *m, const char *device, const char *header, const char *device_id, const char *expect_uuid,
        const AdeLuksToken *token, char **ret_name, unsigned *ret_generation, AdeCloudError *e) {
        _cleanup_(ade_blob_client_freep) AdeBlobClient *blob = NULL;
        _cleanup_free_ void *plain = NULL, *body = NULL;
        _cleanup_free_ char *encryption_data = NULL, *prefix = NULL, *name = NULL, *gen_text = NULL;
        _cleanup_(strv_freep) char **meta = NULL;
        AdeKeyVault *kv;
        AdeLuksStatus st;
        _cleanup_(listing_done) Listing listing = {};
        char machine[256], stamp[32];
        size_t plain_size = 0, body_size = 0;
        unsigned generation;
        struct tm tm;
        time_t now;
        int r;

        r = ade_luks_status(device, header, &st);
        if (r < 0)
                return r;
        if (!ade_luks_uuid_is_valid(st.uuid))
                return -EBADMSG;
        /* A header mid-reencryption is never a backup: restored after the reencryption moved on, it
         * would re-encrypt ciphertext (docs/architecture.md §11). */
        if (st.state != ADE_LUKS_STATE_FINISHED)
                return -EBUSY;
        /* A retry goes by the record: another volume at its old /dev name is not its header. */
        if (expect_uuid && strcasecmp(st.uuid, expect_uuid) != 0)
                return -ENODEV;
        r = read_header(device, header, m->config->volumes.header_dir, &plain, &plain_size);
        if (r < 0)
                return r;

        r = ade_resolver_keyvault(m->resolver, token->kek_url, &kv, e);
        if (r < 0)
                return r;
        r = ade_cse_encrypt(plain, plain_size,
                &(AdeCseKek){.key_id = token->kek_url,
                        .algorithm = token->kek_algorithm ?: m->config->keyvault.kek_algorithm,
                        .wrap = ade_cse_keyvault_wrap,
                        .userdata = kv},
                &body, &body_size, &encryption_data, e);
        if (r < 0)
                return r;

        r = blob_client(m, &blob);
        if (r < 0)
                return r;

        machine_segment(machine, sizeof(machine));
        if (asprintf(&prefix, "%s/%s/", machine, st.uuid) < 0)
                return -ENOMEM;
        r = list_generations(blob, prefix, &listing.items, &listing.n, &generation, e);
        if (r < 0)
                return r;
        now = time(NULL);
        if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return -EINVAL;
        if (asprintf(&name, "%s%0*u-%s", prefix, GENERATION_DIGITS, generation, stamp) < 0 ||
                asprintf(&gen_text, "%u", generation) < 0)
                return -ENOMEM;

        if (strv_extend(&meta, "AdeVolume") < 0 || strv_extend(&meta, st.uuid) < 0 ||
                strv_extend(&meta, "AdeGeneration") < 0 || strv_extend(&meta, gen_text) < 0 ||
                strv_extend(&meta, "AdeSecretUrl") < 0 || strv_extend(&meta, token->secret_url) < 0)
                return -ENOMEM;
        /* A stable id outside printable ASCII cannot travel in a header; the UUID still names the volume. */
        if (device_id && ade_blob_metadata_is_valid("AdeDeviceId", device_id) &&
                (strv_extend(&meta, "AdeDeviceId") < 0 || strv_extend(&meta, device_id) < 0))
                return -ENOMEM;
        if (strv_extend(&meta, ADE_CSE_METADATA_NAME) < 0 || strv_extend(&meta, encryption_data) < 0)
                return -ENOMEM;

        r = ade_blob_put(blob, name, body, body_size, meta, e);
        if (r < 0)
                return r;
        if (m->config->backup.keep > 0)
                prune(blob, device, prefix, listing.items, listing.n, generation, m->config->backup.keep);
        *ret_name = TAKE_PTR(name);
        *ret_generation = generation;
        return 0;
}

static void set_pending(AdeStateVolume *v, void *userdata) {
        if (!v->backup_pending) {
                v->backup_pending = true;
                v->backup_pending_usec = *(const uint64_t *)userdata;
        }
}

static void set_uploaded(AdeStateVolume *v, void *userdata) {
        v->backup_pending = false;
        v->backup_pending_usec = 0;
        v->backup_generation = *(const unsigned *)userdata;
}

/* Uploads one generation and records the outcome: pending until one upload succeeds. */
static int backup_one(Manager *m, const char *device, const char *header, const char *device_id,
        const char *expect_uuid, bool retry, const AdeLuksToken *token) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *name = NULL, *msg = NULL;
        uint64_t now = ade_now_realtime_usec();
        unsigned generation = 0;
        int r;

        /* Recorded first: a crash or a stop during the upload leaves it pending, to be retried. */
        if (!retry)
                (void)aded_state_update(m->state, device_id, _ADE_JOB_STEP_INVALID, set_pending, &now);
        pthread_mutex_lock(&upload_lock);
        if (retry) {
                _cleanup_(ade_state_volume_freep) AdeStateVolume *now_record = NULL;

                /* A job may have taken the volume since the retry looked (a disable's record replaces
                 * this one before its own upload and its decryption): then it is not ours to upload. */
                if (aded_state_get(m->state, device_id, &now_record) < 0 || !now_record ||
                        !aded_backup_wanted(now_record)) {
                        pthread_mutex_unlock(&upload_lock);
                        return 0;
                }
        }
        r = upload(m, device, header, device_id, expect_uuid, token, &name, &generation, &e);
        if (r >= 0)
                (void)aded_state_update(m->state, device_id, _ADE_JOB_STEP_INVALID, set_uploaded, &generation);
        else
                /* Another upload may have cleared it meanwhile with an older header. */
                (void)aded_state_update(m->state, device_id, _ADE_JOB_STEP_INVALID, set_pending, &now);
        pthread_mutex_unlock(&upload_lock);
        if (r < 0) {
                _cleanup_(ade_state_volume_freep) AdeStateVolume *after = NULL;

                if (e.code || e.status > 0)
                        msg = ade_cloud_error_to_string(&e, "Azure");
                /* A disable's upload is not retried: the volume is on its way to plaintext. */
                (void)aded_state_get(m->state, device_id, &after);
                ade_log_warning("%s: the header backup was not uploaded to %s: %s%s%s; the volume is not affected%s",
                        device, m->config->backup.url,
                        r == -ENODEV  ? "the device has another header now"
                        : r == -EBUSY ? "its header is in the middle of a reencryption"
                                      : strerror(-r),
                        msg ? ": " : "", strempty(msg),
                        after && aded_backup_wanted(after) ? ", and the upload is retried later" : "");
                return r;
        }
        ade_log_info("%s: header backup uploaded to %s/%s", device, m->config->backup.url, name);
        return 0;
}

void aded_backup_upload(
        Manager *m, const char *device, const char *header, const char *device_id, const AdeLuksToken *token) {
        if (!m->config->backup.url)
                return;
        if (!token || !token->kek_url) {
                ade_log_info("%s: no KEK: no backup", device);
                return;
        }
        (void)backup_one(m, device, header, device_id, NULL, false, token);
}

void aded_backup_mark_obsolete(Manager *m, const char *device, const char *uuid) {
        _cleanup_(ade_blob_client_freep) AdeBlobClient *blob = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *msg = NULL;
        char when[ADE_RFC3339_SIZE];
        unsigned marked = 0;
        int r;

        if (!m->config->backup.url || !uuid || !uuid[0])
                return;
        r = ade_format_rfc3339(ade_now_realtime_usec(), when);
        if (r >= 0)
                r = blob_client(m, &blob);
        if (r >= 0)
                r = ade_restore_mark_obsolete(blob, uuid, when, &marked, &e);
        if (r < 0) {
                if (e.code || e.status > 0)
                        msg = ade_cloud_error_to_string(&e, "Azure");
                ade_log_warning("%s: the header backups of volume %s in %s could not all be marked obsolete (%s%s%s); "
                                "the volume is decrypted and not affected, but do not restore those backups onto "
                                "it: it holds plaintext now (delete them, or set their metadata AdeObsolete)",
                        device, uuid, m->config->backup.url, strerror(-r), msg ? ": " : "", strempty(msg));
                return;
        }
        if (marked > 0)
                ade_log_info("%s: %u header backup(s) of volume %s marked obsolete in %s", device, marked, uuid,
                        m->config->backup.url);
}

/* ---- retrying ---- */

typedef struct BackupRetry {
        AdedTask task; /* first: reaped by aded_backup_dispatch() */
        atomic_bool cancel;
        size_t n_failed; /* written by the thread */
} BackupRetry;

static void backup_retry_free(AdedTask *t) {
        free(t);
}

bool aded_backup_wanted(const AdeStateVolume *v) {
        return v->kind == ADE_JOB_ENCRYPT && v->step == ADE_STEP_DONE && v->kek_url && v->secret_url &&
               (v->backup_pending || v->backup_generation == 0);
}

typedef struct Pending {
        AdeStateVolume **v;
        size_t n;
} Pending;

static int pending_scan(const AdeState *state, void *userdata) {
        Pending *p = userdata;

        for (size_t i = 0; i < state->n_volumes; i++) {
                AdeStateVolume **grown;

                if (!aded_backup_wanted(state->volumes[i]))
                        continue;
                grown = realloc(p->v, (p->n + 1) * sizeof(*p->v));
                if (!grown)
                        return -ENOMEM;
                p->v = grown;
                if (ade_state_volume_copy(state->volumes[i], &p->v[p->n]) < 0)
                        return -ENOMEM;
                p->n++;
        }
        return 0;
}

static int retry_cancelled(void *userdata) {
        BackupRetry *b = userdata;

        return atomic_load(&b->cancel);
}

static void *backup_retry_thread(void *userdata) {
        BackupRetry *b = userdata;
        Manager *m = b->task.manager;
        Pending p = {};

        ade_http_set_thread_cancel(retry_cancelled, b);
        if (aded_state_read(m->state, pending_scan, &p) < 0)
                b->n_failed++;
        for (size_t i = 0; i < p.n && !atomic_load(&b->cancel); i++) {
                const AdeStateVolume *v = p.v[i];
                const AdeLuksToken token = {
                        .secret_url = v->secret_url,
                        .kek_url = v->kek_url,
                        .kek_algorithm = v->kek_algorithm,
                };

                if (backup_one(m, v->device, v->detached ? v->header_path : NULL, v->device_id, v->uuid, true, &token) <
                        0)
                        b->n_failed++;
        }
        for (size_t i = 0; i < p.n; i++)
                ade_state_volume_free(p.v[i]);
        free(p.v);
        ade_http_set_thread_cancel(NULL, NULL);
        aded_task_done(&b->task);
        return NULL;
}

static int on_backup_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        BackupRetry *b;
        int r;

        (void)source;
        (void)usec;
        /* A job uploads its own header; its end pokes this timer. */
        if (m->stopping || m->backup_retries || manager_has_running_jobs(m))
                return 0;
        b = calloc(1, sizeof(*b));
        if (!b)
                return manager_timer_arm(m->backup_timer, ADED_BACKUP_RETRY_MIN_USEC);
        r = aded_task_start(m, &m->backup_retries, &b->task, backup_retry_thread);
        if (r < 0) {
                free(b);
                ade_log_warning_errno(r, "header backups: cannot start the retry: %m");
                return manager_timer_arm(m->backup_timer, ADED_BACKUP_RETRY_MIN_USEC);
        }
        return 0;
}

static int backup_retry_finish(AdedTask *t) {
        BackupRetry *b = (BackupRetry *)t;
        Manager *m = t->manager;

        if (m->stopping)
                return 0;
        if (b->n_failed == 0) {
                /* Nothing pending: the timer sleeps until a job's end pokes it. */
                m->backup_delay_usec = 0;
                return 0;
        }
        if (m->backup_delay_usec == 0)
                m->backup_delay_usec = ADED_BACKUP_RETRY_MIN_USEC;
        else if (m->backup_delay_usec < ADED_BACKUP_RETRY_MAX_USEC / 2)
                m->backup_delay_usec *= 2;
        else
                m->backup_delay_usec = ADED_BACKUP_RETRY_MAX_USEC;
        ade_log_info("header backups: %zu not uploaded; trying again in %" PRIu64 " s", b->n_failed,
                m->backup_delay_usec / 1000000U);
        return manager_timer_arm(m->backup_timer, m->backup_delay_usec);
}

bool aded_backup_dispatch(Manager *m) {
        return aded_tasks_reap(&m->backup_retries, backup_retry_finish, backup_retry_free);
}

int aded_backup_start(Manager *m) {
        int r;

        if (!m->config->backup.url)
                return 0;
        /* The first look is now: uploads left pending by the last run catch up after a restart. */
        r = sd_event_add_time_relative(m->event, &m->backup_timer, CLOCK_MONOTONIC, 0, 0, on_backup_timer, m);
        if (r < 0)
                return ade_log_error_errno(r, "cannot start the header backup retries: %m");
        return 0;
}

void aded_backup_poke(Manager *m) {
        int enabled = SD_EVENT_OFF;

        if (m->stopping || !m->backup_timer || m->backup_retries)
                return;
        /* An armed timer keeps its time: a job's end does not postpone a retry nor shorten its backoff. */
        if (sd_event_source_get_enabled(m->backup_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        (void)manager_timer_arm(m->backup_timer, m->backup_delay_usec ?: ADED_BACKUP_RETRY_MIN_USEC);
}

void aded_backup_stop(Manager *m) {
        m->backup_timer = sd_event_source_disable_unref(m->backup_timer);
        for (AdedTask *t = m->backup_retries; t; t = t->next)
                atomic_store(&((BackupRetry *)t)->cancel, true);
        aded_tasks_free_all(&m->backup_retries, backup_retry_free);
}
