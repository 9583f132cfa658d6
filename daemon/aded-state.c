/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <pthread.h>

#include "ade-io.h"
#include "aded-state.h"

struct AdedState {
        pthread_mutex_t lock;
        AdeState *state;
};

int aded_state_open(const char *dir, AdedState **ret, char **ret_error) {
        AdedState *s;
        int r;

        assert(ret);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = ade_state_load(dir, &s->state, ret_error);
        if (r < 0) {
                free(s);
                return r;
        }
        pthread_mutex_init(&s->lock, NULL);
        *ret = s;
        return 0;
}

AdedState *aded_state_free(AdedState *s) {
        if (!s)
                return NULL;
        ade_state_free(s->state);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

int aded_state_get(AdedState *s, const char *device, AdeStateVolume **ret) {
        AdeStateVolume *v;
        int r = 0;

        assert(s);
        assert(ret);

        pthread_mutex_lock(&s->lock);
        v = ade_state_find(s->state, device);
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

void aded_state_set_header_path(AdeStateVolume *v, void *path) {
        v->detached = path != NULL;
        (void)ade_strdup_to(&v->header_path, path);
}

void aded_state_set_uuid(AdeStateVolume *v, void *uuid) {
        (void)ade_strdup_to(&v->uuid, uuid);
}

int aded_state_update(AdedState *s, const char *device, AdeJobStep step, AdedStateUpdate update, void *userdata) {
        AdeStateVolume *v;
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        v = ade_state_find(s->state, device);
        if (v) {
                if (update)
                        update(v, userdata);
                ade_state_volume_set_step(v, step >= 0 ? step : v->step);
                r = ade_state_save(s->state);
        } else
                r = -ENOENT;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_add(
        AdedState *s, const char *device, AdeJobKind kind, AdeJobStep step, AdedStateUpdate update, void *userdata) {
        AdeStateVolume *v;
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        r = ade_state_add(s->state, device, kind, &v);
        if (r >= 0) {
                if (update)
                        update(v, userdata);
                ade_state_volume_set_step(v, step);
                r = ade_state_save(s->state);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int aded_state_remove(AdedState *s, const char *device) {
        int r;

        assert(s);

        pthread_mutex_lock(&s->lock);
        (void)ade_state_remove(s->state, device);
        r = ade_state_save(s->state);
        pthread_mutex_unlock(&s->lock);
        return r;
}
