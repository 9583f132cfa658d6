/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ade-io.h"
#include "ade-log.h"

extern char **environ;

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void)clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000U + (uint64_t)ts.tv_nsec / 1000U;
}

uint64_t ade_now_monotonic_usec(void) {
        return now_usec(CLOCK_MONOTONIC);
}

uint64_t ade_now_realtime_usec(void) {
        return now_usec(CLOCK_REALTIME);
}

int ade_format_rfc3339(uint64_t realtime_usec, char ret[static ADE_RFC3339_SIZE]) {
        time_t t = (time_t)(realtime_usec / 1000000U);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(ret, ADE_RFC3339_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        return 0;
}

int ade_write_all(int fd, const void *p, size_t n) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                c += k;
                n -= (size_t)k;
        }
        return 0;
}

int ade_strdup_to(char **field, const char *value) {
        char *copy = NULL;

        assert(field);

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*field);
        *field = copy;
        return 0;
}

int ade_fsync_path(const char *path, bool directory) {
        _cleanup_close_ int fd = -EBADF;

        fd = open(path, (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot open %s to sync it: %m", path);
        if (fsync(fd) < 0)
                return ade_log_debug_errno(errno, "Cannot sync %s: %m", path);
        return 0;
}

int ade_fsync_parent(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash)
                return ade_fsync_path(".", true);
        if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        return ade_fsync_path(dir, true);
}

int ade_mkdir_private(const char *dir) {
        struct stat st;

        if (isempty(dir))
                return -EINVAL;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return ade_log_debug_errno(errno, "Cannot create folder %s: %m", dir);
        if (stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return ade_log_debug_errno(ENOTDIR, "%s is not a folder", dir);
        return 0;
}

int ade_write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *slash;
        int r;

        assert(path);
        assert(data || size == 0);

        /* The temporary file sits beside @path ("dir/.name.XXXXXX"), so that rename() stays in one
         * filesystem and so is atomic. */
        slash = strrchr(path, '/');
        if (asprintf(&tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path, slash ? slash + 1 : path) < 0)
                return -ENOMEM;

        /* mkostemp creates the file 0600: nothing readable by others exists even for a moment. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot create a temporary file beside %s: %m", path);

        r = ade_write_all(fd, data, size);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlink(tmp);
                return ade_log_debug_errno(r, "Cannot write %s: %m", path);
        }
        /* The rename is durable only once the folder's entry is. */
        return ade_fsync_parent(path);
}

int ade_read_file(const char *path, char **ret, size_t *ret_size, mode_t *ret_mode) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        assert(path);
        assert(ret);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        for (;;) {
                ssize_t k;

                if (allocated - size < 4096) {
                        char *grown = realloc(buf, allocated + 65536);

                        if (!grown)
                                return -ENOMEM;
                        buf = grown;
                        allocated += 65536;
                }
                k = read(fd, buf + size, allocated - size - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                size += (size_t)k;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        if (ret_mode)
                *ret_mode = st.st_mode & 07777;
        return 0;
}

int ade_write_backup(const char *path, const void *data, size_t size, mode_t mode, char **ret_backup) {
        _cleanup_free_ char *name = NULL;
        char stamp[32];
        struct tm tm;
        time_t now = time(NULL);
        int r;

        assert(path);

        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
        for (unsigned i = 0;; i++) {
                name = mfree(name);
                if ((i == 0 ? asprintf(&name, "%s.ade-%s", path, stamp)
                            : asprintf(&name, "%s.ade-%s.%u", path, stamp, i)) < 0)
                        return -ENOMEM;
                if (access(name, F_OK) < 0 && errno == ENOENT)
                        break;
                if (i > 1000)
                        return -EEXIST;
        }
        r = ade_write_file_atomic(name, data, size, mode);
        if (r < 0)
                return r;
        if (ret_backup)
                *ret_backup = TAKE_PTR(name);
        return 0;
}

int ade_spawn(const char *path, char *const argv[], const AdeSpawnFd *fds, size_t n_fds, const sigset_t *blocked,
        pid_t *ret_pid) {
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        pid_t pid;
        int r;

        assert(path);
        assert(argv && argv[0]);
        assert(fds || n_fds == 0);
        assert(ret_pid);

        r = posix_spawn_file_actions_init(&actions);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&actions);
                return -r;
        }

        r = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        for (size_t i = 0; r == 0 && i < n_fds; i++)
                r = posix_spawn_file_actions_adddup2(&actions, fds[i].fd, fds[i].target);
        if (r == 0 && blocked) {
                r = posix_spawnattr_setsigmask(&attr, blocked);
                if (r == 0)
                        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        }
        if (r == 0)
                r = posix_spawn(&pid, path, &actions, &attr, argv, environ);

        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&actions);
        if (r != 0)
                return ade_log_debug_errno(r, "Cannot run %s: %m", path);
        *ret_pid = pid;
        return 0;
}

int ade_spawn_wait(pid_t pid, int *ret_status) {
        int status;

        assert(ret_status);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret_status = status;
        return 0;
}
