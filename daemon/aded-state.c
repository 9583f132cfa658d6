/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>

#include "ade-io.h"
#include "ade-log.h"
#include "aded-state.h"

struct AdedState {
        pthread_mutex_t lock;
        AdeState *state;
        char *degraded; /* why aded runs read-only, or NULL */
};

/* A state file that cannot be trusted must not stop aded (a crash loop helps nobody, and Show is
 * how a person finds out what is wrong), nor be overwritten: aded runs read-only on an empty state
 * and says why (docs/architecture.md §16.1). */
static int open_degraded(AdedState *s, const char *dir, const char *error) {
        int r;

        r = ade_state_new(dir, &s->state);
        if (r < 0)
                return r;
        if (asprintf(&s->degraded,
                    "%s; aded runs read-only until it can read its state file: Show works, Enable, Disable, Unlock "
                    "and RotateKey are refused and no job is resumed. Fix or move the file away and restart aded",
                    error) < 0)
                return -ENOMEM;
        ade_log_error("%s", s->degraded);
        return 0;
}

/* A version 1 record names its volume by the /dev name it had, and by a stable id only when one
 * existed then (a loop device had none): keyed by that name, it would never meet the volume, whose
 * key is now its stable id. The volume now at that name is taken as the record's; every job checks
 * the record's LUKS UUID against the device before it writes (aded-verify.h), which a disk that
 * took the name fails. */
static void migrate_keys(AdeState *state) {
        for (size_t i = 0; i < state->n_volumes; i++) {
                AdeStateVolume *v = state->volumes[i];
                _cleanup_free_ char *id = NULL;

                if (!streq(v->device_id, v->device) || ade_volume_stable_id(v->device, &id, NULL) < 0 ||
                        streq(id, v->device) || ade_state_find(state, id))
                        continue;
                ade_log_info("%s: the record of %s is now keyed by its stable id %s", state->dir, v->device, id);
                free(v->device_id);
                v->device_id = TAKE_PTR(id);
        }
}

/* A file of an older version is kept beside the new one (state.json.v<N>) and saved in this
 * version's form. A failed save leaves the migrated state in memory: the next step saves it. */
static void migrate(AdeState *state) {
        int r;

        ade_log_info("%s/%s: migrating the state file from version %d to %d (the old file stays as %s.v%d)", state->dir,
                ADE_STATE_FILE_NAME, state->loaded_version, ADE_STATE_VERSION, ADE_STATE_FILE_NAME,
                state->loaded_version);
        migrate_keys(state);
        r = ade_state_keep_old(state);
        if (r >= 0)
                r = ade_state_save(state);
        if (r < 0)
                ade_log_error_errno(
                        r, "%s: cannot save the migrated state file: %m; it is saved at the next change", state->dir);
}

int aded_state_open(const char *dir, AdedState **ret, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        AdedState *s;
        int r;

        assert(ret);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        r = ade_state_load(dir, &s->state, &error);
        if (r == -ENOMEM || (r < 0 && (r = open_degraded(s, dir, error ?: strerror(-r))) < 0)) {
                aded_state_free(s);
                return r;
        }
        if (!s->degraded && s->state->loaded_version > 0 && s->state->loaded_version < ADE_STATE_VERSION)
                migrate(s->state);
        if (ret_error)
                *ret_error = NULL;
        *ret = s;
        return 0;
}

AdedState *aded_state_free(AdedState *s) {
        if (!s)
                return NULL;
        ade_state_free(s->state);
        free(s->degraded);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

const char *aded_state_degraded(AdedState *s) {
        return s ? s->degraded : NULL;
}

int aded_state_get(AdedState *s, const char *device_id, AdeStateVolume **ret) {
        AdeStateVolume *v;
        int r = 0;

        assert(s);
        assert(ret);

        pthread_mutex_lock(&s->lock);
        v = ade_state_find(s->state, device_id);
        if (v)
                r = ade_state_volume_copy(v, ret);
        else
                *ret = NULL;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_read(AdedState *s, int (*read)(const AdeState *state, void *userdata), void *userdata) {
        int r;

        assert(s);
        assert(read);

        pthread_mutex_lock(&s->lock);
        r = read(s->state, userdata);
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* A copy of the first record @match(record, @key) picks, in *ret (NULL when none). */
static int state_get_where(
        AdedState *s, bool (*match)(const AdeStateVolume *v, const char *key), const char *key, AdeStateVolume **ret) {
        int r = 0;

        assert(s);
        assert(key);
        assert(ret);

        *ret = NULL;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->state->n_volumes; i++)
                if (match(s->state->volumes[i], key)) {
                        r = ade_state_volume_copy(s->state->volumes[i], ret);
                        break;
                }
        pthread_mutex_unlock(&s->lock);
        return r;
}

static bool match_uuid(const AdeStateVolume *v, const char *uuid) {
        return v->uuid && strcaseeq(v->uuid, uuid);
}

int aded_state_get_by_uuid(AdedState *s, const char *uuid, AdeStateVolume **ret) {
        return state_get_where(s, match_uuid, uuid, ret);
}

static bool match_adopted_name(const AdeStateVolume *v, const char *name) {
        return streq_ptr(v->adopted_name, name);
}

int aded_state_get_by_adopted_name(AdedState *s, const char *name, AdeStateVolume **ret) {
        return state_get_where(s, match_adopted_name, name, ret);
}

void aded_state_set_header_path(AdeStateVolume *v, void *path) {
        v->detached = path != NULL;
        (void)ade_strdup_to(&v->header_path, path);
}

void aded_state_set_uuid(AdeStateVolume *v, void *uuid) {
        (void)ade_strdup_to(&v->uuid, uuid);
}

void aded_state_set_device(AdeStateVolume *v, void *device) {
        (void)ade_strdup_to(&v->device, device);
}

int aded_state_update(AdedState *s, const char *device_id, AdeJobStep step, AdedStateUpdate update, void *userdata) {
        AdeStateVolume *v;
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        v = ade_state_find(s->state, device_id);
        if (s->degraded)
                r = -EROFS;
        else if (v) {
                _cleanup_(ade_state_volume_freep) AdeStateVolume *before = NULL;

                /* A step that cannot be saved is undone in memory too: Show and a later step must not
                 * take for reached what the file does not say (a failed "done" would make the job's
                 * error look like an earlier attempt's). Other changes, the job's error above all,
                 * stay: Show must report them even when the folder fails. */
                if (step >= 0)
                        (void)ade_state_volume_copy(v, &before);
                if (update)
                        update(v, userdata);
                ade_state_volume_set_step(v, step >= 0 ? step : v->step);
                r = ade_state_save(s->state);
                if (r < 0 && before) {
                        AdeStateVolume undone = *v;
                        *v = *before;
                        *before = undone;
                }
        } else
                r = -ENOENT;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_add(AdedState *s, const char *device_id, const char *device, AdeJobKind kind, AdeJobStep step,
        AdedStateUpdate update, void *userdata) {
        AdeStateVolume *v;
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        r = s->degraded ? -EROFS : ade_state_add(s->state, device_id, device, kind, &v);
        if (r >= 0) {
                if (update)
                        update(v, userdata);
                ade_state_volume_set_step(v, step);
                r = ade_state_save(s->state);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_remove(AdedState *s, const char *device_id) {
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        if (s->degraded)
                r = -EROFS;
        else {
                (void)ade_state_remove(s->state, device_id);
                r = ade_state_save(s->state);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_set_enrollment(AdedState *s, const AdeStateEnrollment *e) {
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        r = s->degraded ? -EROFS : ade_state_set_enrollment(s->state, e);
        if (r >= 0)
                r = ade_state_save(s->state);
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_get_enrollment(AdedState *s, AdeStateEnrollment **ret) {
        int r = 0;

        assert(s);
        assert(ret);

        pthread_mutex_lock(&s->lock);
        if (s->state->enrollment)
                r = ade_state_enrollment_copy(s->state->enrollment, ret);
        else
                *ret = NULL;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_opt_out(AdedState *s, const char *device_id) {
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        if (s->degraded)
                r = -EROFS;
        else
                r = device_id ? ade_state_exclude(s->state, device_id) : ade_state_unenroll(s->state);
        if (r > 0) {
                int k = ade_state_save(s->state);
                if (k < 0)
                        r = k;
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}
