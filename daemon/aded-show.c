/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "ade-dm.h"
#include "ade-io.h"
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

/* The open volume's mapper /dev/mapper/@name, and (no job) where it is mounted. */
static int gather_mapper(ShowFacts *g, const char *name, bool job) {
        if (!name)
                return 0;
        if (asprintf(&g->mapper, "/dev/mapper/%s", name) < 0)
                return -ENOMEM;
        g->facts.mapper = g->mapper;
        if (!job && g->record && g->record->mount_point)
                gather_mapper_mount(g);
        return 0;
}

/* The facts of @v from the state file and the device: reads the device (libcryptsetup, blkid,
 * device-mapper), so never in the loop for a method's reply, and never while a job runs on it. */
static int show_gather_device(Manager *m, const AdeVolume *v, ShowFacts *g) {
        _cleanup_free_ char *name = NULL;
        int r;

        *g = (ShowFacts){.facts.volume = v};
        r = aded_state_get(m->state, aded_state_key(v), &g->record);
        if (r < 0)
                return r;
        g->facts.record = g->record;
        g->facts.rotation_interval_usec = m->config->rotation.interval_sec * 1000000U;
        g->facts.backup_configured = m->config->backup.url != NULL;
        gather_header(m, v, g);
        if (m->dm && ade_dm_find_crypt(v->device, &name) <= 0)
                name = mfree(name);
        gather_unlock_error(m, g);
        g->left_alone = aded_newdisks_why_left(m, aded_state_key(v));
        g->facts.left_alone = g->left_alone;
        return gather_mapper(g, name, false);
}

/* The facts of @v under job @j: from the state file and the job's progress. A job holds the
 * header: the device is not read. In the loop. */
static int show_gather_job(Manager *m, const AdeVolume *v, Job *j, ShowFacts *g) {
        _cleanup_free_ char *name = NULL;
        int r;

        *g = (ShowFacts){.facts.volume = v};
        r = aded_state_get(m->state, aded_state_key(v), &g->record);
        if (r < 0)
                return r;
        g->facts.record = g->record;
        g->facts.rotation_interval_usec = m->config->rotation.interval_sec * 1000000U;
        g->facts.backup_configured = m->config->backup.url != NULL;
        job_snapshot(j, &g->job);
        g->facts.job = &g->job;
        name = TAKE_PTR(g->job.mapper);
        return gather_mapper(g, name, true);
}

static int show_gather(Manager *m, const AdeVolume *v, ShowFacts *g) {
        Job *j = manager_find_job(m, v->device);

        return j ? show_gather_job(m, v, j, g) : show_gather_device(m, v, g);
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

/* Adds the volume object of @g's volume to @volumes when the filter takes it, and its state to
 * @summary. */
static int show_volume(ShowFacts *g, const char *type_filter, json_object *volumes, AdedShowSummary *summary) {
        _cleanup_(aded_volume_view_done) AdedVolumeView view = {};
        json_object *o;
        int r;

        r = aded_view_decide(&g->facts, &view);
        if (r < 0)
                return r;
        aded_view_summary_add(summary, &view);
        if (!type_matches(g->facts.volume, type_filter))
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
        char since[ADE_RFC3339_SIZE];
        int r;

        r = aded_state_get_enrollment(m->state, &e);
        if (r < 0 || !e)
                return r;
        r = ade_format_rfc3339(e->updated_usec, since);
        if (r < 0)
                return r;
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

/* Show's reply from the facts @g of @n volumes. */
static int show_reply(Manager *m, const char *type_filter, ShowFacts *g, size_t n, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        AdedShowSummary summary = ADED_SHOW_SUMMARY_INIT;
        json_object *volumes;
        int r;

        o = json_object_new_object();
        volumes = json_object_new_array();
        if (!o || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        json_object_object_add(o, "volumes", volumes);
        for (size_t i = 0; i < n; i++) {
                r = show_volume(&g[i], type_filter, volumes, &summary);
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

static void show_facts_free_many(ShowFacts *g, size_t n) {
        for (size_t i = 0; g && i < n; i++)
                show_facts_done(&g[i]);
        free(g);
}

int aded_show_json(Manager *m, const char *type_filter, json_object **ret) {
        AdeVolume *const *l;
        ShowFacts *g;
        size_t n = 0;
        int r;

        r = manager_volumes_cached(m, &l);
        if (r < 0)
                return r;
        while (l[n])
                n++;
        g = calloc(n + 1, sizeof(ShowFacts));
        if (!g)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = show_gather(m, l[i], &g[i]);
                if (r < 0) {
                        show_facts_free_many(g, i + 1);
                        return r;
                }
        }
        r = show_reply(m, type_filter, g, n, ret);
        show_facts_free_many(g, n);
        return r;
}

/* ---- the Show method: the device reads in a thread of their own ---- */

struct ShowQuery {
        AdedTask task;        /* first: the reads' thread, reaped by aded_show_dispatch() */
        AdeVarlinkCall *call; /* the caller's; NULL for aded's own query, which goes to @done */
        AdedShowDone done;
        char *type_filter;
        bool probe;                        /* the thread lists the volumes afresh (no cached list to use) */
        AdeVolume **volumes;               /* owned: copied from the cache, or probed by the thread */
        char **busy;                       /* the devices a job held when the query started (NULL-terminated): the
                                            * thread leaves them be */
        uint64_t started_usec, generation; /* when, and manager_volumes_generation() then */

        /* Written by the thread before it is done. */
        ShowFacts *facts; /* one per volume; those of busy devices are left empty */
        size_t n;
        int result;
};

static void show_query_reset(ShowQuery *q) {
        show_facts_free_many(q->facts, q->n);
        q->facts = NULL;
        if (q->probe) {
                ade_volume_free_many(q->volumes);
                q->volumes = NULL;
        }
        q->n = 0;
        q->result = 0;
}

static void show_query_free(ShowQuery *q) {
        if (!q)
                return;
        show_query_reset(q);
        if (q->call)
                ade_varlink_call_unref(q->call);
        free(q->type_filter);
        ade_volume_free_many(q->volumes);
        strv_free(q->busy);
        free(q);
}

static void show_query_freep(ShowQuery **q) {
        show_query_free(*q);
}

static bool show_query_is_busy(const ShowQuery *q, const char *device) {
        for (char **d = q->busy; d && *d; d++)
                if (streq(*d, device))
                        return true;
        return false;
}

static void *show_thread(void *userdata) {
        ShowQuery *q = userdata;
        Manager *m = q->task.manager;
        size_t n = 0;
        int r = 0;

        if (q->probe) {
                r = manager_volumes(m, &q->volumes);
                if (r < 0)
                        goto finish;
        }
        while (q->volumes[n])
                n++;
        q->facts = calloc(n + 1, sizeof(ShowFacts));
        if (!q->facts) {
                r = -ENOMEM;
                goto finish;
        }
        q->n = n;
        for (size_t i = 0; i < n; i++) {
                q->facts[i] = (ShowFacts){.facts.volume = q->volumes[i]};
                if (show_query_is_busy(q, q->volumes[i]->device))
                        continue;
                r = show_gather_device(m, q->volumes[i], &q->facts[i]);
                if (r < 0)
                        goto finish;
        }
finish:
        q->result = r;
        aded_task_done(&q->task);
        return NULL;
}

/* The devices jobs hold now, for the thread to leave alone. */
static int show_query_take_busy(Manager *m, ShowQuery *q) {
        strv_free(q->busy);
        q->busy = calloc(m->n_jobs + 1, sizeof(char *));
        if (!q->busy)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_jobs; i++)
                if (ade_strdup_to(&q->busy[i], job_device(m->jobs[i])) < 0)
                        return -ENOMEM;
        return 0;
}

static int show_start(Manager *m, AdeVarlinkCall *call, AdedShowDone done, const char *type_filter) {
        _cleanup_(show_query_freep) ShowQuery *q = NULL;
        AdeVolume *const *cached;
        size_t n = 0;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->started_usec = ade_now_monotonic_usec();
        q->generation = manager_volumes_generation(m);
        if (ade_strdup_to(&q->type_filter, type_filter) < 0)
                return -ENOMEM;
        /* The list is probed at most every 2 s and never while a job runs (manager_volumes_cached()):
         * the thread probes it only when the cached one would be. */
        cached = manager_volumes_cached_nowait(m);
        if (cached) {
                while (cached[n])
                        n++;
                q->volumes = calloc(n + 1, sizeof(AdeVolume *));
                if (!q->volumes)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        r = ade_volume_copy(cached[i], &q->volumes[i]);
                        if (r < 0)
                                return r;
                }
        } else
                q->probe = true;
        r = show_query_take_busy(m, q);
        if (r < 0)
                return r;
        q->call = call ? ade_varlink_call_ref(call) : NULL;
        q->done = done;
        r = aded_task_start(m, &m->show_queries, &q->task, show_thread);
        if (r < 0)
                return r;
        TAKE_PTR(q);
        return 0;
}

int aded_show_start(Manager *m, AdeVarlinkCall *call, const char *type_filter) {
        return show_start(m, call, NULL, type_filter);
}

int aded_show_start_internal(Manager *m, AdedShowDone done) {
        return show_start(m, NULL, done, NULL);
}

/* Where @q's answer goes: its caller, or aded's own @done. */
static int show_query_answer(Manager *m, ShowQuery *q, json_object *reply, int error) {
        if (!q->call) {
                q->done(m, reply, error);
                return 0;
        }
        if (error < 0)
                return ade_varlink_error_errno(q->call, error);
        return ade_varlink_reply(q->call, reply);
}

/* Answers @q's call: the thread's facts, and those of jobs from their progress now. 1 when a job
 * that held a device at the start has finished meanwhile: the device must be read after all. */
static int show_query_finish(Manager *m, ShowQuery *q) {
        _cleanup_json_ json_object *reply = NULL;
        int r;

        if (q->call && !ade_varlink_call_is_pending(q->call))
                return 0; /* the caller left */
        if (q->result < 0)
                return show_query_answer(m, q, NULL, q->result);
        for (size_t i = 0; i < q->n; i++) {
                const AdeVolume *v = q->volumes[i];
                Job *j = manager_find_job(m, v->device);

                if (j) {
                        /* A job that started meanwhile holds the header now: its progress says more. */
                        show_facts_done(&q->facts[i]);
                        r = show_gather_job(m, v, j, &q->facts[i]);
                        if (r < 0)
                                return show_query_answer(m, q, NULL, r);
                } else if (show_query_is_busy(q, v->device))
                        return 1;
        }
        r = show_reply(m, q->type_filter, q->facts, q->n, &reply);
        return show_query_answer(m, q, reply, r < 0 ? r : 0);
}

static void show_task_free(AdedTask *t) {
        show_query_free((ShowQuery *)t);
}

/* Answered (0), or run again (1) when a job that held a device finished meanwhile: that device is
 * read after all, the others again too (they are cheap next to a reencryption, and the reply is of
 * one instant). A list the thread probed becomes the cached one. */
static int show_task_finish(AdedTask *t) {
        ShowQuery *q = (ShowQuery *)t;
        Manager *m = t->manager;
        int r;

        if (show_query_finish(m, q) > 0) {
                show_query_reset(q);
                r = show_query_take_busy(m, q);
                if (r >= 0)
                        r = aded_task_run(m, &q->task, show_thread);
                if (r >= 0)
                        return 1;
                (void)show_query_answer(m, q, NULL, r);
                return 0;
        }
        if (q->probe && q->result >= 0)
                manager_volumes_adopt(m, TAKE_PTR(q->volumes), q->started_usec, q->generation);
        return 0;
}

bool aded_show_dispatch(Manager *m) {
        return aded_tasks_reap(&m->show_queries, show_task_finish, show_task_free);
}

void aded_show_free_all(Manager *m) {
        aded_tasks_free_all(&m->show_queries, show_task_free);
}
