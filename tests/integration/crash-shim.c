/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A test-only LD_PRELOAD library that kills aded with SIGKILL at a chosen point of a job, for the
 * crash matrix (tests/integration/crash-matrix.sh, docs/crash-matrix.md). aded itself knows nothing
 * of it: no switch, no environment variable, no code path of the installed binary is involved.
 * It watches two things aded does anyway:
 *
 *  - engine points: the engine logs "Reached step NAME" (lib/ade-luks-cryptsetup.c, luks_hook())
 *    at debug level before it tells its hook; aded, run with --log-level debug outside systemd,
 *    writes that line with fprintf(). The shim interposes fprintf() and dies on the line, i.e. at
 *    the instant the engine reports the point, before aded's own hook runs;
 *  - state steps: aded saves <state-dir>/state.json by rename() of a synced temporary file. The
 *    shim interposes rename() and, once a rename onto state.json has succeeded, compares the new
 *    file with the last one it saw: a record that reached JOB/STEP, a record that went away, or a
 *    secretUrl that changed.
 *
 *  - device opens: a thread of aded opening a path (blkid, libcryptsetup and aded itself open
 *    devices with open()/openat()). The shim interposes those.
 *
 * ADE_CRASH_AT is a comma-separated list of points; the first one reached kills the process:
 *   engine:NAME           (an AdeLuksStep name: header-written, rotate-token-swapped, ...)
 *   open:PATH             (a thread opens PATH, e.g. open:/dev/loop3)
 *   state:JOB:STEP        (a record of JOB, encrypt or decrypt, now at STEP)
 *   state:JOB:removed     (a record of JOB was removed)
 *   state:pending         (a record got a pendingSecretUrl: RotateKey's new secret, before the disk)
 *   state:secret          (a record's secretUrl changed: RotateKey's last write)
 * ADE_CRASH_MARK, when set, is a file the shim writes the point it killed at to (fsynced) first.
 * ADE_CRASH_ACTION=stop stops aded (SIGSTOP) there instead, for a test that changes the world (cuts
 * the network, fills a disk) at that point and lets it go on with SIGCONT.
 * ADE_CRASH_ACTION=wait holds only the thread that reached the point, until the file
 * ADE_CRASH_RELEASE exists, for a test that shows what the rest of aded does meanwhile (a device
 * that hangs). ADE_CRASH_AT_FILE, when set, names a file read instead of ADE_CRASH_AT whenever a
 * point could be reached: a test arms a point once aded has started (absent file: no point).
 * ADE_CRASH_STATE is the state file to read as the starting point (what was on disk when aded
 * started). */
#include <dlfcn.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static json_object *last_state; /* the "volumes" array of the last state.json seen, or NULL */
static bool fired;              /* a point was reached (only the first one counts) */
static __thread bool inside;    /* this thread is in the shim: its own opens are not points */

/* ADE_CRASH_ACTION=wait: until ADE_CRASH_RELEASE exists. */
static void wait_for_release(void) {
        const char *release = getenv("ADE_CRASH_RELEASE");

        while (release && access(release, F_OK) < 0)
                (void)poll(NULL, 0, 50);
}

static void die_at(const char *point) {
        const char *mark = getenv("ADE_CRASH_MARK");

        fired = true;
        if (mark) {
                int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        (void)!write(fd, point, strlen(point));
                        (void)!write(fd, "\n", 1);
                        fsync(fd);
                        close(fd);
                }
        }
        if (getenv("ADE_CRASH_ACTION") && strcmp(getenv("ADE_CRASH_ACTION"), "stop") == 0) {
                kill(getpid(), SIGSTOP);
                return;
        }
        if (getenv("ADE_CRASH_ACTION") && strcmp(getenv("ADE_CRASH_ACTION"), "wait") == 0) {
                wait_for_release();
                return;
        }
        kill(getpid(), SIGKILL);
        for (;;)
                pause();
}

/* ADE_CRASH_AT_FILE's first line into @buf, or "" when it does not exist. */
static const char *read_armed_file(const char *path, char *buf, size_t size) {
        FILE *f = fopen(path, "re");

        buf[0] = 0;
        if (!f)
                return buf;
        if (!fgets(buf, (int)size, f))
                buf[0] = 0;
        buf[strcspn(buf, "\n")] = 0;
        fclose(f);
        return buf;
}

/* Whether @point is one of ADE_CRASH_AT's (or ADE_CRASH_AT_FILE's). */
static bool armed(const char *point) {
        const char *list = getenv("ADE_CRASH_AT"), *p;
        size_t n = strlen(point);
        char buf[1024];

        if (fired)
                return false;
        if (getenv("ADE_CRASH_AT_FILE"))
                list = read_armed_file(getenv("ADE_CRASH_AT_FILE"), buf, sizeof(buf));
        for (p = list; p && *p;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                if (len == n && strncmp(p, point, n) == 0)
                        return true;
                p = end ? end + 1 : NULL;
        }
        return false;
}

static json_object *read_volumes(const char *path) {
        json_object *root = json_object_from_file(path), *v = NULL;

        if (!root)
                return NULL;
        if (!json_object_object_get_ex(root, "volumes", &v) || !json_object_is_type(v, json_type_array)) {
                json_object_put(root);
                return NULL;
        }
        json_object_get(v);
        json_object_put(root);
        return v;
}

static const char *field(json_object *o, const char *name) {
        json_object *v;
        return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static bool same(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static json_object *find(json_object *volumes, const char *id) {
        for (size_t i = 0; volumes && i < json_object_array_length(volumes); i++) {
                json_object *o = json_object_array_get_idx(volumes, i);
                if (same(field(o, "deviceId") ?: field(o, "device"), id))
                        return o;
        }
        return NULL;
}

/* The point the change from @old to @new reached, in @buf, or NULL. */
static const char *state_point(json_object *old, json_object *new, char *buf, size_t size) {
        for (size_t i = 0; new &&i < json_object_array_length(new); i++) {
                json_object *o = json_object_array_get_idx(new, i);
                json_object *before = find(old, field(o, "deviceId") ?: field(o, "device"));

                if (!before || !same(field(before, "step"), field(o, "step")) ||
                        !same(field(before, "job"), field(o, "job"))) {
                        snprintf(buf, size, "state:%s:%s", field(o, "job") ?: "?", field(o, "step") ?: "?");
                        if (armed(buf))
                                return buf;
                }
                if (before && !same(field(before, "secretUrl"), field(o, "secretUrl")) && armed("state:secret"))
                        return "state:secret";
                if (field(o, "pendingSecretUrl") &&
                        !same(before ? field(before, "pendingSecretUrl") : NULL, field(o, "pendingSecretUrl")) &&
                        armed("state:pending"))
                        return "state:pending";
        }
        for (size_t i = 0; old && i < json_object_array_length(old); i++) {
                json_object *o = json_object_array_get_idx(old, i);
                if (!find(new, field(o, "deviceId") ?: field(o, "device"))) {
                        snprintf(buf, size, "state:%s:removed", field(o, "job") ?: "?");
                        if (armed(buf))
                                return buf;
                }
        }
        return NULL;
}

__attribute__((constructor)) static void load_start(void) {
        const char *start = getenv("ADE_CRASH_STATE");

        last_state = start ? read_volumes(start) : NULL;
}

int rename(const char *old, const char *new) {
        static int (*real)(const char *, const char *);
        const char *base = strrchr(new, '/');
        int r;

        if (!real)
                real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
        r = real(old, new);
        if (r < 0 || !base || strcmp(base, "/state.json") != 0)
                return r;

        pthread_mutex_lock(&lock);
        inside = true; /* reading the state file opens it: not a point, and the lock is held */
        {
                char buf[256];
                const char *point;
                json_object *now = read_volumes(new);

                point = state_point(last_state, now, buf, sizeof(buf));
                if (point)
                        die_at(point);
                json_object_put(last_state);
                last_state = now;
        }
        inside = false;
        pthread_mutex_unlock(&lock);
        return r;
}

/* The engine's points, from aded's own debug log line. */
static void check_line(const char *format, va_list ap) {
        char line[512], point[300];
        const char *s;
        va_list copy;

        va_copy(copy, ap);
        vsnprintf(line, sizeof(line), format, copy);
        va_end(copy);
        s = strstr(line, "Reached step ");
        if (!s)
                return;
        snprintf(point, sizeof(point), "engine:%.*s", (int)strcspn(s + 13, "\n"), s + 13);
        if (armed(point))
                die_at(point);
}

int vfprintf(FILE *f, const char *format, va_list ap) {
        static int (*real)(FILE *, const char *, va_list);

        if (!real)
                real = (int (*)(FILE *, const char *, va_list))dlsym(RTLD_NEXT, "vfprintf");
        if (f == stderr)
                check_line(format, ap);
        return real(f, format, ap);
}

int fprintf(FILE *f, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vfprintf(f, format, ap);
        va_end(ap);
        return r;
}

int __fprintf_chk(FILE *f, int flag, const char *format, ...) {
        va_list ap;
        int r;

        (void)flag;
        va_start(ap, format);
        r = vfprintf(f, format, ap);
        va_end(ap);
        return r;
}

/* The device opens: the point is reached before the open, as a hanging device would hang it. */
static void check_open(const char *path) {
        char point[4200];

        if (inside || !path)
                return;
        inside = true;
        snprintf(point, sizeof(point), "open:%s", path);
        pthread_mutex_lock(&lock);
        if (armed(point)) {
                fired = true;
                pthread_mutex_unlock(&lock);
                die_at(point);
        } else
                pthread_mutex_unlock(&lock);
        inside = false;
}

#define OPEN_MODE(flags, mode)                                                                                         \
        do {                                                                                                           \
                if ((flags) & (O_CREAT | __O_TMPFILE)) {                                                               \
                        va_list ap;                                                                                    \
                        va_start(ap, flags);                                                                           \
                        mode = va_arg(ap, mode_t);                                                                     \
                        va_end(ap);                                                                                    \
                }                                                                                                      \
        } while (0)

typedef int (*OpenFn)(const char *, int, ...);
typedef int (*OpenatFn)(int, const char *, int, ...);
#define REAL(type, name)                                                                                               \
        static type real_##name;                                                                                       \
        if (!real_##name)                                                                                              \
        real_##name = (type)dlsym(RTLD_NEXT, #name)

int open(const char *path, int flags, ...) {
        mode_t mode = 0;
        REAL(OpenFn, open);

        OPEN_MODE(flags, mode);
        check_open(path);
        return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
        mode_t mode = 0;
        REAL(OpenFn, open64);

        OPEN_MODE(flags, mode);
        check_open(path);
        return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
        mode_t mode = 0;
        REAL(OpenatFn, openat);

        OPEN_MODE(flags, mode);
        check_open(path);
        return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
        mode_t mode = 0;
        REAL(OpenatFn, openat64);

        OPEN_MODE(flags, mode);
        check_open(path);
        return real_openat64(dirfd, path, flags, mode);
}

/* What _FORTIFY_SOURCE makes of open() without a mode. */
int __open_2(const char *path, int flags) {
        REAL(OpenFn, open);

        check_open(path);
        return real_open(path, flags);
}

int __open64_2(const char *path, int flags) {
        REAL(OpenFn, open64);

        check_open(path);
        return real_open64(path, flags);
}
