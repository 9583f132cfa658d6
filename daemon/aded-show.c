/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/stat.h>
#include <time.h>

#include "ade-dm.h"
#include "ade-json.h"
#include "aded-keysocket.h"
#include "aded-manager.h"
#include "aded-newdisks.h"
#include "aded-show.h"
#include "aded-state.h"
#include "aded-view.h"

/* The facts about one volume, and the storage they borrow from. */
typedef struct ShowFacts {
        AdedVolumeFacts facts;
        AdedJobProgress job;
        AdeStateVolume *record;
        AdeLuksStatus luks;
        char *found_header; /* a detached header found in header_dir */
        AdeLuksToken *token;
        char *mapper;
        AdeFsMountCheck mapper_mount;
        char *unlock_error;
        char *left_alone;
} ShowFacts;

static void show_facts_done(ShowFacts *g) {
        aded_job_progress_done(&g->job);
        ade_state_volume_free(g->record);
        free(g->found_header);
        ade_luks_token_free(g->token);
        free(g->mapper);
        ade_fs_mount_check_done(&g->mapper_mount);
        free(g->unlock_error);
        free(g->left_alone);
}

/* The LUKS header and its token. A detached header is not on the device: the record names it, or
 * header_dir holds it (a lost state file must not make an encrypted volume look plain). */
static void gather_header(Manager *m, const AdeVolume *v, ShowFacts *g) {
        const char *header = g->record ? g->record->header_path : NULL;
        int r;

        r = ade_luks_status(v->device, header, &g->luks);
        if (r >= 0 && g->luks.state == ADE_LUKS_STATE_NONE && !header && v->stable_id &&
                ade_luks_find_header(m->config->volumes.header_dir, v->stable_id, &g->found_header) >= 0) {
                header = g->found_header;
                r = ade_luks_status(v->device, header, &g->luks);
        }
        g->facts.header_path = header;
        if (r < 0) {
                g->facts.luks_error = r;
                return;
        }
        g->facts.luks = &g->luks;
        if (g->luks.state != ADE_LUKS_STATE_NONE && ade_luks_read_token(v->device, header, &g->token) >= 0)
                g->facts.token = g->token;
}

/* Where the open volume's mapper is mounted, against the mount point recorded at enable. */
static void gather_mapper_mount(ShowFacts *g) {
        struct stat st;

        if (stat(g->mapper, &st) < 0 || !S_ISBLK(st.st_mode))
                return;
        if (ade_fs_mount_check_read(st.st_rdev, g->record->mount_point, NULL, &g->mapper_mount) >= 0)
                g->facts.mapper_mount = &g->mapper_mount;
}

/* What the key socket last said about the volume's mapping: named ade-<LUKS UUID> wherever ade
 * opens it (crypttab too). */
static void gather_unlock_error(Manager *m, ShowFacts *g) {
        _cleanup_free_ char *name = NULL;

        if (!g->facts.luks || !g->luks.uuid[0] || asprintf(&name, "ade-%s", g->luks.uuid) < 0)
                return;
        g->unlock_error = aded_keysocket_last_error(m->keysocket, name);
        g->facts.unlock_error = g->unlock_error;
}

static int show_gather(Manager *m, const AdeVolume *v, ShowFacts *g) {
        _cleanup_free_ char *name = NULL;
        Job *j;
        int r;

        *g = (ShowFacts){.facts.volume = v};

        r = aded_state_get(m->state, aded_state_key(v), &g->record);
        if (r < 0)
                return r;
        g->facts.record = g->record;

        j = manager_find_job(m, v->device);
        if (j) {
                /* A job holds the header: report from its progress, and never read the device now. */
                job_snapshot(j, &g->job);
                g->facts.job = &g->job;
                name = TAKE_PTR(g->job.mapper);
        } else {
                gather_header(m, v, g);
                if (m->dm && ade_dm_find_crypt(v->device, &name) <= 0)
                        name = mfree(name);
                gather_unlock_error(m, g);
                g->left_alone = aded_newdisks_why_left(m, aded_state_key(v));
                g->facts.left_alone = g->left_alone;
        }

        if (name) {
                if (asprintf(&g->mapper, "/dev/mapper/%s", name) < 0)
                        return -ENOMEM;
                g->facts.mapper = g->mapper;
                if (!j && g->record && g->record->mount_point)
                        gather_mapper_mount(g);
        }
        return 0;
}

/* The view of @v; it borrows from @g. */
static int show_decide(Manager *m, const AdeVolume *v, ShowFacts *g, AdedVolumeView *ret) {
        int r;

        r = show_gather(m, v, g);
        if (r < 0)
                return r;
        return aded_view_decide(&g->facts, ret);
}

int aded_show_volume_json(Manager *m, const AdeVolume *v, json_object **ret) {
        _cleanup_(show_facts_done) ShowFacts g = {};
        _cleanup_(aded_volume_view_done) AdedVolumeView view = {};
        int r;

        r = show_decide(m, v, &g, &view);
        if (r < 0)
                return r;
        return aded_view_to_json(&view, ret);
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

/* Adds the volume object of @v to @volumes when the filter takes it, and its state to @summary. */
static int show_volume(
        Manager *m, const AdeVolume *v, const char *type_filter, json_object *volumes, AdedShowSummary *summary) {
        _cleanup_(show_facts_done) ShowFacts g = {};
        _cleanup_(aded_volume_view_done) AdedVolumeView view = {};
        json_object *o;
        int r;

        r = show_decide(m, v, &g, &view);
        if (r < 0)
                return r;
        aded_view_summary_add(summary, &view);
        if (!type_matches(v, type_filter))
                return 0;
        r = aded_view_to_json(&view, &o);
        if (r < 0)
                return r;
        return json_object_array_add(volumes, o);
}

/* The enrollment as Show says it: the state file's fields, its time in RFC 3339. */
static int show_enrollment(Manager *m, json_object *o) {
        _cleanup_(ade_state_enrollment_freep) AdeStateEnrollment *e = NULL;
        _cleanup_json_ json_object *j = NULL;
        char since[sizeof("YYYY-MM-DDTHH:MM:SSZ")];
        time_t t;
        struct tm tm;
        int r;

        r = aded_state_get_enrollment(m->state, &e);
        if (r < 0 || !e)
                return r;
        t = (time_t)(e->updated_usec / 1000000);
        if (!gmtime_r(&t, &tm) || strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        j = json_object_new_object();
        if (!j || ade_json_add_string(j, "volumeType", e->volume_type) < 0 ||
                ade_json_add_string(j, "keyVaultUrl", e->keyvault_url) < 0 ||
                ade_json_add_string(j, "keyVaultResourceId", e->keyvault_resource_id) < 0 ||
                ade_json_add_string(j, "kekUrl", e->kek_url) < 0 ||
                ade_json_add_string(j, "kekVaultResourceId", e->kek_vault_resource_id) < 0 ||
                ade_json_add_string(j, "kekAlgorithm", e->kek_algorithm) < 0 ||
                json_object_object_add(j, "skipSnapshotCheck", json_object_new_boolean(e->skip_snapshot_check)) < 0 ||
                json_object_object_add(j, "formatAll", json_object_new_boolean(e->format_all)) < 0 ||
                ade_json_add_string(j, "since", since) < 0)
                return -ENOMEM;
        return json_object_object_add(o, "enrollment", TAKE_PTR(j));
}

int aded_show_json(Manager *m, const char *type_filter, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        AdedShowSummary summary = ADED_SHOW_SUMMARY_INIT;
        AdeVolume *const *l;
        json_object *volumes;
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
        json_object_object_add(o, "volumes", volumes);
        for (size_t i = 0; l[i]; i++) {
                r = show_volume(m, l[i], type_filter, volumes, &summary);
                if (r < 0)
                        return r;
        }
        json_object_object_add(o, "os", json_object_new_string(aded_volume_state_to_string(summary.os)));
        json_object_object_add(o, "data", json_object_new_string(aded_volume_state_to_string(summary.data)));
        r = show_enrollment(m, o);
        if (r < 0)
                return r;
        /* Why aded runs read-only, when it does: Show is how a person finds out. */
        if (aded_state_degraded(m->state))
                json_object_object_add(o, "message", json_object_new_string(aded_state_degraded(m->state)));
        *ret = TAKE_PTR(o);
        return 0;
}
