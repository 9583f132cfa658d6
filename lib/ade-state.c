/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "ade-json.h"
#include "ade-log.h"
#include "ade-state.h"

static const char *const job_kind_table[_ADE_JOB_KIND_MAX] = {
        [ADE_JOB_ENCRYPT] = "encrypt",
        [ADE_JOB_DECRYPT] = "decrypt",
};

static const char *const job_step_table[_ADE_JOB_STEP_MAX] = {
        [ADE_STEP_NONE] = "none",
        [ADE_STEP_PRECONDITIONS] = "preconditions",
        [ADE_STEP_KEYFILE] = "keyfile",
        [ADE_STEP_WRAP] = "wrap",
        [ADE_STEP_ESCROW] = "escrow",
        [ADE_STEP_SHRINK] = "shrink",
        [ADE_STEP_HEADER] = "header",
        [ADE_STEP_REENCRYPT] = "reencrypt",
        [ADE_STEP_DONE] = "done",
};

const char *ade_job_kind_to_string(AdeJobKind k) {
        return k >= 0 && k < _ADE_JOB_KIND_MAX ? job_kind_table[k] : NULL;
}

AdeJobKind ade_job_kind_from_string(const char *s) {
        for (int i = 0; s && i < _ADE_JOB_KIND_MAX; i++)
                if (streq(job_kind_table[i], s))
                        return i;
        return _ADE_JOB_KIND_INVALID;
}

const char *ade_job_step_to_string(AdeJobStep s) {
        return s >= 0 && s < _ADE_JOB_STEP_MAX ? job_step_table[s] : NULL;
}

AdeJobStep ade_job_step_from_string(const char *s) {
        for (int i = 0; s && i < _ADE_JOB_STEP_MAX; i++)
                if (streq(job_step_table[i], s))
                        return i;
        return _ADE_JOB_STEP_INVALID;
}

AdeStateVolume *ade_state_volume_free(AdeStateVolume *v) {
        if (!v)
                return NULL;
        free(v->device);
        free(v->device_id);
        free(v->volume_type);
        free(v->keyvault_url);
        free(v->keyvault_resource_id);
        free(v->kek_url);
        free(v->kek_vault_resource_id);
        free(v->kek_algorithm);
        free(v->secret_url);
        free(v->pending_secret_url);
        free(v->uuid);
        free(v->header_path);
        free(v->error);
        free(v->mount_point);
        free(v->adopted_name);
        free(v->mount_options);
        free(v);
        return NULL;
}

AdeState *ade_state_free(AdeState *s) {
        if (!s)
                return NULL;
        ade_state_enrollment_free(s->enrollment);
        for (size_t i = 0; i < s->n_volumes; i++)
                ade_state_volume_free(s->volumes[i]);
        free(s->volumes);
        free(s->dir);
        free(s);
        return NULL;
}

int ade_state_new(const char *dir, AdeState **ret) {
        AdeState *s;

        if (isempty(dir) || !ret)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir = strdup(dir);
        if (!s->dir)
                return ade_state_free(s), -ENOMEM;
        *ret = s;
        return 0;
}

void ade_state_volume_set_step(AdeStateVolume *v, AdeJobStep step) {
        v->step = step;
        v->updated_usec = ade_now_realtime_usec();
}

AdeStateVolume *ade_state_find(AdeState *s, const char *device_id) {
        for (size_t i = 0; s && device_id && i < s->n_volumes; i++)
                if (streq(s->volumes[i]->device_id, device_id))
                        return s->volumes[i];
        return NULL;
}

int ade_state_remove(AdeState *s, const char *device_id) {
        for (size_t i = 0; s && device_id && i < s->n_volumes; i++)
                if (streq(s->volumes[i]->device_id, device_id)) {
                        ade_state_volume_free(s->volumes[i]);
                        memmove(s->volumes + i, s->volumes + i + 1, (s->n_volumes - i - 1) * sizeof(*s->volumes));
                        s->n_volumes--;
                        return 0;
                }
        return -ENOENT;
}

static int append(AdeState *s, AdeStateVolume *v) {
        AdeStateVolume **n;

        n = realloc(s->volumes, (s->n_volumes + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        s->volumes = n;
        s->volumes[s->n_volumes++] = v;
        return 0;
}

int ade_state_add(AdeState *s, const char *device_id, const char *device, AdeJobKind kind, AdeStateVolume **ret) {
        AdeStateVolume *v;
        int r;

        if (!s || isempty(device_id) || isempty(device) || kind < 0 || kind >= _ADE_JOB_KIND_MAX)
                return -EINVAL;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->device_id = strdup(device_id);
        v->device = strdup(device);
        if (!v->device_id || !v->device)
                return ade_state_volume_free(v), -ENOMEM;
        v->kind = kind;
        ade_state_volume_set_step(v, ADE_STEP_NONE);

        (void)ade_state_remove(s, device_id);
        r = append(s, v);
        if (r < 0)
                return ade_state_volume_free(v), r;
        if (ret)
                *ret = v;
        return 0;
}

/* The string fields, by JSON name, for both directions. */
#define STRING_FIELDS(v)                                                                                               \
        {                                                                                                              \
                {"device", &(v)->device}, {"deviceId", &(v)->device_id}, {"volumeType", &(v)->volume_type},            \
                        {"keyVaultUrl", &(v)->keyvault_url}, {"keyVaultResourceId", &(v)->keyvault_resource_id},       \
                        {"kekUrl", &(v)->kek_url}, {"kekVaultResourceId", &(v)->kek_vault_resource_id},                \
                        {"kekAlgorithm", &(v)->kek_algorithm}, {"secretUrl", &(v)->secret_url}, {"uuid", &(v)->uuid},  \
                        {"headerPath", &(v)->header_path}, {"error", &(v)->error}, {"mountPoint", &(v)->mount_point},  \
                        {"mountOptions", &(v)->mount_options}, {"pendingSecretUrl", &(v)->pending_secret_url},         \
                        {"adoptedName", &(v)->adopted_name},                                                           \
        }

typedef struct StringField {
        const char *name;
        char **field;
} StringField;

/* Reads the strings of @fields from @o (an absent one stays NULL). 0, -ENOMEM, or -EBADMSG for a
 * field that is not a string. */
static int string_fields_from_json(json_object *o, const StringField *fields, size_t n) {
        const char *s;
        int r;

        for (size_t i = 0; i < n; i++) {
                r = ade_json_get_string(o, fields[i].name, &s);
                if (r == -ENOENT)
                        continue;
                if (r < 0 || (r = ade_strdup_to(fields[i].field, s)) < 0)
                        return r;
        }
        return 0;
}

/* Adds the strings of @fields that are set to @o. 0 or -ENOMEM. */
static int string_fields_to_json(json_object *o, const StringField *fields, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (ade_json_add_string(o, fields[i].name, *fields[i].field) < 0)
                        return -ENOMEM;
        return 0;
}

#define ENROLLMENT_STRING_FIELDS(e)                                                                                    \
        {                                                                                                              \
                {"volumeType", &(e)->volume_type}, {"keyVaultUrl", &(e)->keyvault_url},                                \
                        {"keyVaultResourceId", &(e)->keyvault_resource_id}, {"kekUrl", &(e)->kek_url},                 \
                        {"kekVaultResourceId", &(e)->kek_vault_resource_id}, {"kekAlgorithm", &(e)->kek_algorithm},    \
        }

AdeStateEnrollment *ade_state_enrollment_free(AdeStateEnrollment *e) {
        if (!e)
                return NULL;
        const StringField fields[] = ENROLLMENT_STRING_FIELDS(e);
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                free(*fields[i].field);
        strv_free(e->excluded);
        free(e);
        return NULL;
}

int ade_state_enrollment_copy(const AdeStateEnrollment *e, AdeStateEnrollment **ret) {
        _cleanup_(ade_state_enrollment_freep) AdeStateEnrollment *c = NULL;

        assert(e);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->skip_snapshot_check = e->skip_snapshot_check;
        c->format_all = e->format_all;
        c->updated_usec = e->updated_usec;
        const StringField from[] = ENROLLMENT_STRING_FIELDS((AdeStateEnrollment *)e),
                          to[] = ENROLLMENT_STRING_FIELDS(c);
        for (size_t i = 0; i < ELEMENTSOF(to); i++)
                if (ade_strdup_to(to[i].field, *from[i].field) < 0)
                        return -ENOMEM;
        for (size_t i = 0; e->excluded && e->excluded[i]; i++)
                if (strv_extend(&c->excluded, e->excluded[i]) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int ade_state_set_enrollment(AdeState *s, const AdeStateEnrollment *e) {
        AdeStateEnrollment fresh, *c;
        int r;

        if (!s || !e || isempty(e->volume_type))
                return -EINVAL;
        /* A new Enable starts without the old one's exclusions: they are not copied at all. */
        fresh = *e;
        fresh.excluded = NULL;
        r = ade_state_enrollment_copy(&fresh, &c);
        if (r < 0)
                return r;
        c->updated_usec = ade_now_realtime_usec();
        ade_state_enrollment_free(s->enrollment);
        s->enrollment = c;
        return 0;
}

int ade_state_exclude(AdeState *s, const char *device_id) {
        int r;

        if (!s || isempty(device_id))
                return -EINVAL;
        if (!s->enrollment || strv_contains(s->enrollment->excluded, device_id))
                return 0;
        r = strv_extend(&s->enrollment->excluded, device_id);
        return r < 0 ? r : 1;
}

int ade_state_unenroll(AdeState *s) {
        if (!s || !s->enrollment)
                return 0;
        s->enrollment = ade_state_enrollment_free(s->enrollment);
        return 1;
}

static int enrollment_to_json(AdeStateEnrollment *e, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        const StringField fields[] = ENROLLMENT_STRING_FIELDS(e);

        o = json_object_new_object();
        if (!o || string_fields_to_json(o, fields, ELEMENTSOF(fields)) < 0)
                return -ENOMEM;
        if (json_object_object_add(o, "skipSnapshotCheck", json_object_new_boolean(e->skip_snapshot_check)) < 0 ||
                json_object_object_add(o, "formatAll", json_object_new_boolean(e->format_all)) < 0 ||
                json_object_object_add(o, "updatedUsec", json_object_new_int64((int64_t)e->updated_usec)) < 0)
                return -ENOMEM;
        if (e->excluded) {
                json_object *l = json_object_new_array();

                if (!l || json_object_object_add(o, "excluded", l) < 0) {
                        json_object_put(l);
                        return -ENOMEM;
                }
                for (size_t i = 0; e->excluded[i]; i++)
                        if (json_object_array_add(l, json_object_new_string(e->excluded[i])) < 0)
                                return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static int enrollment_from_json(json_object *o, AdeStateEnrollment **ret) {
        _cleanup_(ade_state_enrollment_freep) AdeStateEnrollment *e = NULL;
        json_object *excluded = NULL;
        int64_t n;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        const StringField fields[] = ENROLLMENT_STRING_FIELDS(e);
        r = string_fields_from_json(o, fields, ELEMENTSOF(fields));
        if (r < 0)
                return r;
        if (isempty(e->volume_type))
                return -EBADMSG;
        r = ade_json_get_bool(o, "skipSnapshotCheck", &e->skip_snapshot_check);
        if (r < 0 && r != -ENOENT)
                return r;
        r = ade_json_get_bool(o, "formatAll", &e->format_all);
        if (r < 0 && r != -ENOENT)
                return r;
        r = ade_json_get_int64(o, "updatedUsec", &n);
        if (r < 0 && r != -ENOENT)
                return r;
        e->updated_usec = r == 0 && n > 0 ? (uint64_t)n : 0;
        r = ade_json_get_array(o, "excluded", &excluded);
        if (r < 0 && r != -ENOENT)
                return r;
        for (size_t i = 0; r >= 0 && i < json_object_array_length(excluded); i++) {
                json_object *id = json_object_array_get_idx(excluded, i);

                if (!json_object_is_type(id, json_type_string) || isempty(json_object_get_string(id)))
                        return -EBADMSG;
                if (strv_extend(&e->excluded, json_object_get_string(id)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(e);
        return 0;
}

int ade_state_volume_copy(const AdeStateVolume *v, AdeStateVolume **ret) {
        AdeStateVolume *c;

        assert(v);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (AdeStateVolume){
                .kind = v->kind,
                .step = v->step,
                .detached = v->detached,
                .skip_snapshot_check = v->skip_snapshot_check,
                .updated_usec = v->updated_usec,
                .rotated_usec = v->rotated_usec,
                .backup_pending = v->backup_pending,
                .backup_pending_usec = v->backup_pending_usec,
                .backup_generation = v->backup_generation,
        };
        const StringField from[] = STRING_FIELDS((AdeStateVolume *)v), to[] = STRING_FIELDS(c);
        for (size_t i = 0; i < ELEMENTSOF(to); i++)
                if (ade_strdup_to(to[i].field, *from[i].field) < 0) {
                        ade_state_volume_free(c);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

static int volume_to_json(AdeStateVolume *v, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        const StringField fields[] = STRING_FIELDS(v);

        o = json_object_new_object();
        if (!o || string_fields_to_json(o, fields, ELEMENTSOF(fields)) < 0)
                return -ENOMEM;
        if (json_object_object_add(o, "job", json_object_new_string(ade_job_kind_to_string(v->kind))) < 0 ||
                json_object_object_add(o, "step", json_object_new_string(ade_job_step_to_string(v->step))) < 0 ||
                json_object_object_add(o, "detached", json_object_new_boolean(v->detached)) < 0 ||
                json_object_object_add(o, "skipSnapshotCheck", json_object_new_boolean(v->skip_snapshot_check)) < 0 ||
                json_object_object_add(o, "updatedUsec", json_object_new_int64((int64_t)v->updated_usec)) < 0)
                return -ENOMEM;
        if (v->rotated_usec > 0 &&
                json_object_object_add(o, "rotatedUsec", json_object_new_int64((int64_t)v->rotated_usec)) < 0)
                return -ENOMEM;
        /* Written only when set: a file without them is what an older aded reads and writes. */
        if (v->backup_pending && (json_object_object_add(o, "backupPending", json_object_new_boolean(true)) < 0 ||
                                         json_object_object_add(o, "backupPendingSince",
                                                 json_object_new_int64((int64_t)v->backup_pending_usec)) < 0))
                return -ENOMEM;
        if (v->backup_generation > 0 &&
                json_object_object_add(o, "backupGeneration", json_object_new_int64(v->backup_generation)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/* @version: the file's. Version 1 keyed records by device; its records take that as their deviceId
 * where they have none. */
static int volume_from_json(json_object *o, int64_t version, AdeStateVolume **ret) {
        AdeStateVolume *v;
        const char *s;
        int64_t n;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;

        const StringField fields[] = STRING_FIELDS(v);
        r = string_fields_from_json(o, fields, ELEMENTSOF(fields));
        if (r < 0)
                goto fail;
        r = -EBADMSG;
        if (isempty(v->device))
                goto fail;
        if (isempty(v->device_id)) {
                if (version >= 2)
                        goto fail;
                r = ade_strdup_to(&v->device_id, v->device);
                if (r < 0)
                        goto fail;
                r = -EBADMSG;
        }
        if (ade_json_get_string(o, "job", &s) < 0 || (v->kind = ade_job_kind_from_string(s)) < 0)
                goto fail;
        if (ade_json_get_string(o, "step", &s) < 0 || (v->step = ade_job_step_from_string(s)) < 0)
                goto fail;
        r = ade_json_get_bool(o, "detached", &v->detached);
        if (r < 0 && r != -ENOENT)
                goto fail;
        r = ade_json_get_bool(o, "skipSnapshotCheck", &v->skip_snapshot_check);
        if (r < 0 && r != -ENOENT)
                goto fail;
        r = ade_json_get_int64(o, "updatedUsec", &n);
        if (r < 0 && r != -ENOENT)
                goto fail;
        v->updated_usec = r == 0 && n > 0 ? (uint64_t)n : 0;
        r = ade_json_get_int64(o, "rotatedUsec", &n);
        if (r < 0 && r != -ENOENT)
                goto fail;
        v->rotated_usec = r == 0 && n > 0 ? (uint64_t)n : 0;
        r = ade_json_get_bool(o, "backupPending", &v->backup_pending);
        if (r < 0 && r != -ENOENT)
                goto fail;
        r = ade_json_get_int64(o, "backupPendingSince", &n);
        if (r < 0 && r != -ENOENT)
                goto fail;
        v->backup_pending_usec = v->backup_pending && r == 0 && n > 0 ? (uint64_t)n : 0;
        n = 0;
        r = ade_json_get_int64(o, "backupGeneration", &n);
        if (r < 0 && r != -ENOENT)
                goto fail;
        r = -EBADMSG;
        if (n < 0 || n > UINT_MAX)
                goto fail;
        v->backup_generation = (unsigned)n;
        *ret = v;
        return 0;

fail:
        ade_state_volume_free(v);
        return r;
}

static int fail_msg(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int fail_msg(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
                ade_log_debug("%s", *ret_error ?: "state file error");
        }
        return r;
}

int ade_state_load(const char *dir, AdeState **ret, char **ret_error) {
        _cleanup_(ade_state_freep) AdeState *s = NULL;
        _cleanup_json_ json_object *root = NULL;
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        json_object *volumes, *enrollment;
        size_t size = 0;
        int64_t version;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (isempty(dir) || !ret)
                return -EINVAL;

        r = ade_state_new(dir, &s);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/%s", dir, ADE_STATE_FILE_NAME) < 0)
                return -ENOMEM;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT) {
                        *ret = TAKE_PTR(s);
                        return 0;
                }
                r = -errno;
                return fail_msg(ret_error, r, "%s: cannot read the state file: %s", path, strerror(-r));
        }

        buf = malloc(ADE_STATE_SIZE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, ADE_STATE_SIZE_MAX + 1 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        return fail_msg(ret_error, r, "%s: read failed: %s", path, strerror(-r));
                }
                if (n == 0)
                        break;
                size += (size_t)n;
                if (size > ADE_STATE_SIZE_MAX)
                        return fail_msg(ret_error, -EFBIG,
                                "%s: the state file is larger than %u bytes; it is not aded's", path,
                                ADE_STATE_SIZE_MAX);
        }

        if (ade_json_parse(buf, size, &root) < 0 || !json_object_is_type(root, json_type_object))
                return fail_msg(ret_error, -EBADMSG,
                        "%s: the state file is corrupt (not a JSON object); aded will not guess where its jobs "
                        "stood: inspect the volumes with 'cryptsetup luksDump', then move the file away and restart",
                        path);

        r = ade_json_get_int64(root, "version", &version);
        if (r < 0)
                return fail_msg(ret_error, -EBADMSG,
                        "%s: the state file has no numeric 'version'; move it away and restart", path);
        if (version < 1 || version > ADE_STATE_VERSION)
                return fail_msg(ret_error, -EPROTONOSUPPORT,
                        "%s: state file version %" PRIi64 " is not supported (this aded knows versions 1 to %d); "
                        "use the aded that wrote it, or move the file away",
                        path, version, ADE_STATE_VERSION);
        s->loaded_version = (int)version;

        r = ade_json_get_array(root, "volumes", &volumes);
        if (r == -ENOENT)
                volumes = NULL;
        else if (r < 0)
                return fail_msg(ret_error, -EBADMSG, "%s: 'volumes' is not an array; the state file is corrupt", path);

        if (json_object_object_get_ex(root, "enrollment", &enrollment) &&
                !json_object_is_type(enrollment, json_type_null)) {
                r = enrollment_from_json(enrollment, &s->enrollment);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail_msg(ret_error, -EBADMSG,
                                "%s: the enrollment is malformed (needs volumeType); the state file is corrupt", path);
        }

        for (size_t i = 0; volumes && i < json_object_array_length(volumes); i++) {
                AdeStateVolume *v;

                r = volume_from_json(json_object_array_get_idx(volumes, i), version, &v);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail_msg(ret_error, -EBADMSG,
                                "%s: volume record %zu is malformed (needs deviceId, device, job and step); the "
                                "state file is corrupt",
                                path, i);
                if (ade_state_find(s, v->device_id)) {
                        ade_state_volume_free(v);
                        return fail_msg(ret_error, -EBADMSG,
                                "%s: two volume records name the same device; the state file is corrupt", path);
                }
                r = append(s, v);
                if (r < 0)
                        return ade_state_volume_free(v), r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

int ade_state_keep_old(AdeState *s) {
        _cleanup_free_ char *path = NULL, *copy = NULL;

        if (!s || s->loaded_version <= 0)
                return -EINVAL;
        if (asprintf(&path, "%s/%s", s->dir, ADE_STATE_FILE_NAME) < 0 ||
                asprintf(&copy, "%s.v%d", path, s->loaded_version) < 0)
                return -ENOMEM;
        /* A link, not a copy: the rename of the next save leaves the old file's inode here, whole. */
        if (link(path, copy) < 0 && errno != EEXIST)
                return ade_log_debug_errno(errno, "cannot keep %s as %s: %m", path, copy);
        return ade_fsync_parent(copy);
}

int ade_state_save(AdeState *s) {
        _cleanup_json_ json_object *root = NULL;
        _cleanup_free_ char *text = NULL, *path = NULL;
        json_object *volumes;
        int r;

        if (!s)
                return -EINVAL;

        root = json_object_new_object();
        volumes = json_object_new_array();
        if (!root || !volumes || json_object_object_add(root, "volumes", volumes) < 0) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        if (json_object_object_add(root, "version", json_object_new_int(ADE_STATE_VERSION)) < 0)
                return -ENOMEM;
        if (s->enrollment) {
                json_object *e;

                r = enrollment_to_json(s->enrollment, &e);
                if (r < 0)
                        return r;
                if (json_object_object_add(root, "enrollment", e) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < s->n_volumes; i++) {
                json_object *v;

                r = volume_to_json(s->volumes[i], &v);
                if (r < 0)
                        return r;
                if (json_object_array_add(volumes, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        if (asprintf(&text, "%s\n",
                    json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
                return -ENOMEM;

        r = ade_mkdir_private(s->dir);
        if (r < 0)
                return ade_log_debug_errno(r, "cannot create state folder %s: %m", s->dir);
        if (asprintf(&path, "%s/%s", s->dir, ADE_STATE_FILE_NAME) < 0)
                return -ENOMEM;
        /* 0600: the file names secrets' URLs. */
        r = ade_write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                return ade_log_debug_errno(r, "cannot write state file %s: %m", path);
        return 0;
}
