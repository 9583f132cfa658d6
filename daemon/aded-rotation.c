/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-io.h"
#include "ade-log.h"
#include "ade-resolver.h"
#include "ade-url.h"
#include "aded-manager.h"
#include "aded-rotation.h"
#include "aded-select.h"
#include "aded-state.h"

/* What one look at the state file found. */
typedef struct RotationScan {
        uint64_t now, interval;
        char *due;        /* the volume whose key is oldest among those due (its stable id) */
        uint64_t due_at;  /* ... and when it fell due */
        uint64_t next;    /* the earliest time another falls due; UINT64_MAX: none */
        char **unstamped; /* encrypted volumes whose record does not say how old their key is */
} RotationScan;

static bool record_rotates(const AdeStateVolume *v) {
        return v->kind == ADE_JOB_ENCRYPT && v->step == ADE_STEP_DONE && v->secret_url && !v->pending_secret_url;
}

static int rotation_scan(const AdeState *state, void *userdata) {
        RotationScan *s = userdata;

        for (size_t i = 0; i < state->n_volumes; i++) {
                const AdeStateVolume *v = state->volumes[i];
                uint64_t at;

                if (!record_rotates(v))
                        continue;
                if (v->rotated_usec == 0) {
                        if (strv_extend(&s->unstamped, v->device_id) < 0)
                                return -ENOMEM;
                        continue;
                }
                at = v->rotated_usec + s->interval;
                if (at <= s->now) {
                        if (!s->due || at < s->due_at) {
                                if (ade_strdup_to(&s->due, v->device_id) < 0)
                                        return -ENOMEM;
                                s->due_at = at;
                        }
                } else if (at < s->next)
                        s->next = at;
        }
        return 0;
}

static void set_rotated_now(AdeStateVolume *v, void *userdata) {
        v->rotated_usec = *(const uint64_t *)userdata;
}

static int rotation_arm(Manager *m, uint64_t usec) {
        return manager_timer_arm(m->rotation_timer, usec);
}

static int on_rotation_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        RotationScan s = {
                .now = ade_now_realtime_usec(),
                .interval = m->config->rotation.interval_sec * 1000000U,
                .next = UINT64_MAX,
        };
        uint64_t wait;
        int r;

        (void)source;
        (void)usec;
        if (m->stopping)
                return 0;
        r = aded_state_read(m->state, rotation_scan, &s);
        if (r < 0) {
                ade_log_warning_errno(r, "key rotation schedule: cannot read the state file: %m; trying again later");
                wait = ADED_ROTATION_RETRY_USEC;
                goto finish;
        }
        for (char **id = s.unstamped; id && *id; id++)
                (void)aded_state_update(m->state, *id, _ADE_JOB_STEP_INVALID, set_rotated_now, &s.now);
        if (s.unstamped && s.now + s.interval < s.next)
                s.next = s.now + s.interval;

        if (s.due && manager_has_running_jobs(m))
                wait = ADED_ROTATION_RETRY_USEC; /* and a job's end pokes the schedule sooner */
        else if (s.due) {
                ade_log_info("the key of %s is due for rotation ([rotation] interval): rotating it", s.due);
                r = select_start(m, NULL, 0,
                        &(const AdedSelectRequest){
                                .type = ADED_JOB_ROTATE,
                                .want = ADED_SELECT_FINISHED,
                                .device = s.due,
                                .refuse_busy = true,
                        });
                if (r < 0)
                        ade_log_error_errno(r, "cannot start the scheduled key rotation of %s: %m", s.due);
                /* Its end pokes the schedule; this is for a start that did not happen. */
                wait = ADED_ROTATION_RETRY_USEC;
        } else
                wait = s.next == UINT64_MAX ? s.interval : s.next - s.now;

finish:
        free(s.due);
        strv_free(s.unstamped);
        /* The wall clock may be set meanwhile: look at least daily. */
        if (wait > 24ULL * 3600U * 1000000U)
                wait = 24ULL * 3600U * 1000000U;
        return rotation_arm(m, wait);
}

/* ---- following the KEK's newest version ---- */

typedef struct KekCheck {
        AdedTask task; /* first: reaped by aded_rotation_dispatch() */
        /* Written by the thread: the first volume whose KEK has a newer usable version. */
        char *device_id, *kek_url, *kek_vault_resource_id, *kek_algorithm;
        size_t n_due; /* how many volumes are behind, that one included */
} KekCheck;

static void kek_check_free(AdedTask *t) {
        KekCheck *k = (KekCheck *)t;

        free(k->device_id);
        free(k->kek_url);
        free(k->kek_vault_resource_id);
        free(k->kek_algorithm);
        free(k);
}

/* The volumes that use a KEK, as the state file says. */
typedef struct KekUsers {
        AdeStateVolume **v;
        size_t n;
} KekUsers;

static int kek_users(const AdeState *state, void *userdata) {
        KekUsers *u = userdata;

        for (size_t i = 0; i < state->n_volumes; i++) {
                const AdeStateVolume *v = state->volumes[i];
                AdeStateVolume **grown;

                if (!record_rotates(v) || !v->kek_url)
                        continue;
                grown = realloc(u->v, (u->n + 1) * sizeof(*u->v));
                if (!grown)
                        return -ENOMEM;
                u->v = grown;
                if (ade_state_volume_copy(v, &u->v[u->n]) < 0)
                        return -ENOMEM;
                u->n++;
        }
        return 0;
}

/* The current version of the key @kek_url names (its URL without the version), when it is newer
 * than @kek_url's, enabled and allowed to wrap: 1 with its versioned URL, 0 when @kek_url is
 * current, or a negative errno (logged). */
static int kek_newer(Manager *m, const char *kek_url, char **ret) {
        _cleanup_free_ char *origin = NULL, *name = NULL, *version = NULL, *latest_url = NULL;
        _cleanup_(ade_kv_key_freep) AdeKvKey *key = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        AdeKeyVault *kv;
        int r;

        r = ade_url_keyvault_object(kek_url, "keys", true, &origin, &name, &version);
        if (r < 0)
                return r;
        if (asprintf(&latest_url, "%s/keys/%s", origin, name) < 0)
                return -ENOMEM;
        r = ade_resolver_keyvault(m->resolver, kek_url, &kv, &cerr);
        if (r >= 0)
                r = ade_keyvault_get_key(kv, latest_url, &key, &cerr);
        if (r < 0) {
                _cleanup_free_ char *said = ade_cloud_error_to_string(&cerr, "Key Vault");
                return ade_log_warning_errno(
                        r, "KEK check: cannot read the current version of %s: %s", latest_url, said ?: strerror(-r));
        }
        if (!key->kid || streq(key->kid, kek_url))
                return 0;
        if (!key->enabled || !ade_kv_key_allows(key, "wrapKey")) {
                ade_log_warning("KEK check: %s is newer than %s but %s; the volumes stay with the version they have",
                        key->kid, kek_url, key->enabled ? "not allowed to wrap keys" : "disabled");
                return 0;
        }
        *ret = strdup(key->kid);
        return *ret ? 1 : -ENOMEM;
}

static void *kek_check_thread(void *userdata) {
        KekCheck *k = userdata;
        Manager *m = k->task.manager;
        KekUsers u = {};
        char **checked = NULL, **newer = NULL; /* kekUrl -> its newer version, "" when current */

        if (aded_state_read(m->state, kek_users, &u) < 0)
                goto finish;
        for (size_t i = 0; i < u.n; i++) {
                const AdeStateVolume *v = u.v[i];
                const char *found = NULL;
                _cleanup_free_ char *latest = NULL;

                for (size_t j = 0; checked && checked[j]; j++)
                        if (streq(checked[j], v->kek_url))
                                found = newer[j];
                if (!found) {
                        /* One look per KEK, however many volumes use it. */
                        if (kek_newer(m, v->kek_url, &latest) < 0)
                                continue;
                        if (strv_extend(&checked, v->kek_url) < 0 || strv_extend(&newer, latest ?: "") < 0)
                                break;
                        found = newer[strv_length(newer) - 1];
                }
                if (isempty(found))
                        continue;
                if (k->n_due++ == 0 &&
                        (ade_strdup_to(&k->device_id, v->device_id) < 0 || ade_strdup_to(&k->kek_url, found) < 0 ||
                                ade_strdup_to(&k->kek_vault_resource_id,
                                        v->kek_vault_resource_id ?: v->keyvault_resource_id) < 0 ||
                                ade_strdup_to(&k->kek_algorithm, v->kek_algorithm) < 0))
                        k->n_due = 0;
        }
finish:
        for (size_t i = 0; i < u.n; i++)
                ade_state_volume_free(u.v[i]);
        free(u.v);
        strv_free(checked);
        strv_free(newer);
        aded_task_done(&k->task);
        return NULL;
}

static int kek_arm(Manager *m, uint64_t usec) {
        return manager_timer_arm(m->kek_timer, usec);
}

static int on_kek_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        KekCheck *k;
        int r;

        (void)source;
        (void)usec;
        if (m->stopping || m->kek_checks)
                return 0;
        k = calloc(1, sizeof(*k));
        if (!k)
                return kek_arm(m, ADED_ROTATION_RETRY_USEC);
        r = aded_task_start(m, &m->kek_checks, &k->task, kek_check_thread);
        if (r < 0) {
                free(k);
                ade_log_warning_errno(r, "KEK check: cannot start: %m");
        }
        return kek_arm(m, m->config->rotation.kek_interval_sec * 1000000U);
}

static int kek_check_finish(AdedTask *t) {
        KekCheck *k = (KekCheck *)t;
        Manager *m = t->manager;
        int r;

        m->kek_behind = false;
        if (k->n_due == 0 || m->stopping)
                return 0;
        /* The others are taken one by one: each job's end looks again (aded_rotation_poke()). */
        m->kek_behind = k->n_due > 1;
        if (manager_has_running_jobs(m)) {
                m->kek_behind = true;
                return 0;
        }
        ade_log_info("the KEK of %s has a newer version, %s ([rotation] kek-follow-latest): rotating its key under it",
                k->device_id, k->kek_url);
        r = select_start(m, NULL, 0,
                &(const AdedSelectRequest){
                        .type = ADED_JOB_ROTATE,
                        .want = ADED_SELECT_FINISHED,
                        .device = k->device_id,
                        .refuse_busy = true,
                        .params =
                                &(const AdedEnableParams){
                                        .kek_url = k->kek_url,
                                        .kek_vault_resource_id = k->kek_vault_resource_id,
                                        .kek_algorithm = k->kek_algorithm,
                                },
                });
        if (r < 0)
                ade_log_error_errno(r, "cannot start the rotation of %s under %s: %m", k->device_id, k->kek_url);
        return 0;
}

bool aded_rotation_dispatch(Manager *m) {
        return aded_tasks_reap(&m->kek_checks, kek_check_finish, kek_check_free);
}

int aded_rotation_start(Manager *m) {
        int r;

        if (m->config->rotation.interval_sec > 0) {
                r = sd_event_add_time_relative(
                        m->event, &m->rotation_timer, CLOCK_MONOTONIC, 0, 0, on_rotation_timer, m);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot start the key rotation schedule: %m");
        }
        if (m->config->rotation.kek_follow_latest) {
                r = sd_event_add_time_relative(m->event, &m->kek_timer, CLOCK_MONOTONIC, 0, 0, on_kek_timer, m);
                if (r < 0)
                        return ade_log_error_errno(r, "cannot start the KEK check: %m");
        }
        return 0;
}

void aded_rotation_poke(Manager *m) {
        if (m->stopping)
                return;
        if (m->rotation_timer)
                (void)rotation_arm(m, 0);
        if (m->kek_timer && m->kek_behind)
                (void)kek_arm(m, 0);
}

void aded_rotation_stop(Manager *m) {
        m->rotation_timer = sd_event_source_disable_unref(m->rotation_timer);
        m->kek_timer = sd_event_source_disable_unref(m->kek_timer);
        aded_tasks_free_all(&m->kek_checks, kek_check_free);
}
