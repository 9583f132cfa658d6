/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ade-io.h"
#include "ade-log.h"
#include "ade-util.h"
#include "aded-worker.h"

/* The pipes' ends in the worker. */
#define WORKER_KEY_FD 3
#define WORKER_ANSWER_FD 4

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* ---- the caller's side ---------------------------------------------------------------------- */

/* A running worker, from the caller's side: its pid and our ends of its three pipes. */
typedef struct Worker {
        pid_t pid;
        int key;    /* write: the key file, then closed */
        int out;    /* read: the worker's lines */
        int answer; /* write: our answers to its "step" lines */
} Worker;

static int close_fd(int fd) {
        if (fd >= 0)
                close(fd);
        return -EBADF;
}

static void worker_close(Worker *w) {
        w->key = close_fd(w->key);
        w->out = close_fd(w->out);
        w->answer = close_fd(w->answer);
}

static int pipe_cloexec(int *ret_read, int *ret_write) {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        *ret_read = p[0];
        *ret_write = p[1];
        return 0;
}

/* Starts "aded --reencrypt-worker ..." (@argv) with its pipes: stdout, the key on WORKER_KEY_FD, our
 * answers on WORKER_ANSWER_FD. Our copies of the child's ends close here; theirs close at exec. */
static int worker_spawn(char *argv[], Worker *ret) {
        _cleanup_close_ int key_r = -EBADF, key_w = -EBADF, out_r = -EBADF, out_w = -EBADF, answer_r = -EBADF,
                            answer_w = -EBADF;
        pid_t pid;
        int r;

        r = pipe_cloexec(&key_r, &key_w);
        if (r >= 0)
                r = pipe_cloexec(&out_r, &out_w);
        if (r >= 0)
                r = pipe_cloexec(&answer_r, &answer_w);
        if (r < 0)
                return r;
        r = ade_spawn("/proc/self/exe", argv,
                (const AdeSpawnFd[]){{out_w, STDOUT_FILENO}, {key_r, WORKER_KEY_FD}, {answer_r, WORKER_ANSWER_FD}}, 3,
                NULL, &pid);
        if (r < 0)
                return r;
        *ret = (Worker){.pid = pid, .key = TAKE_FD(key_w), .out = TAKE_FD(out_r), .answer = TAKE_FD(answer_w)};
        return 0;
}

/* Relays the worker's lines to @o's callbacks until it closes its output: progress (a cancel there
 * sends it SIGTERM, and it stops at the next hotzone boundary), the engine's steps (each answered
 * with the hook's value), the header it exported, and its result. */
static int worker_relay(Worker *w, const AdeLuksOptions *o, bool *ret_have_result, int *ret_result, char **ret_header) {
        _cleanup_fclose_ FILE *out = NULL;
        _cleanup_free_ char *line = NULL;
        bool terminated = false;
        size_t size = 0;

        out = fdopen(w->out, "r");
        if (!out)
                return -errno;
        w->out = -EBADF;
        while (getline(&line, &size, out) >= 0) {
                uint64_t done, total;
                int step, value;

                if (sscanf(line, "progress %" SCNu64 " %" SCNu64, &done, &total) == 2) {
                        if (o->progress && o->progress(done, total, o->userdata) && !terminated) {
                                kill(w->pid, SIGTERM);
                                terminated = true;
                        }
                } else if (sscanf(line, "step %d", &step) == 1) {
                        char answer[32];
                        value = o->hook ? o->hook((AdeLuksStep)step, o->hook_userdata) : 0;
                        snprintf(answer, sizeof(answer), "%d\n", value);
                        (void)ade_write_all(w->answer, answer, strlen(answer));
                } else if (startswith(line, "header ")) {
                        free(*ret_header);
                        *ret_header = strndup(line + 7, strcspn(line + 7, "\n"));
                } else if (sscanf(line, "result %d", &value) == 1) {
                        *ret_result = value;
                        *ret_have_result = true;
                }
        }
        return 0;
}

/* Runs "aded --reencrypt-worker OP DEVICE ..." and relays its lines to @o's callbacks. */
static int worker_run(const char *op, const char *device, const char *header, const AdeSecret *keyfile,
        const AdeLuksOptions *o, char **ret_header) {
        _cleanup_free_ char *hotzone = NULL, *exported = NULL;
        Worker w = {.key = -EBADF, .out = -EBADF, .answer = -EBADF};
        bool have_result = false;
        int result = -EIO, status, r, k;

        r = aded_worker_wait_orphans(device, o->run_dir, ADED_WORKER_ORPHAN_WAIT_USEC, o->cancelled, o->userdata);
        if (r < 0)
                return r;
        if (r > 0)
                ade_log_info("%s: the worker of an earlier aded finished; continuing", device);

        if (asprintf(&hotzone, "%" PRIu64, o->hotzone_size) < 0)
                return -ENOMEM;
        char *argv[] = {
                (char *)"aded",
                (char *)ADED_WORKER_ARG,
                (char *)op,
                (char *)device,
                (char *)(header ?: "-"),
                (char *)o->active_name,
                (char *)(o->header_dir ?: "-"),
                (char *)(o->run_dir ?: "-"),
                hotzone,
                (char *)(o->resilience ?: "-"),
                NULL,
        };

        r = worker_spawn(argv, &w);
        if (r < 0)
                return ade_log_error_errno(r, "%s: cannot start the reencryption worker: %m", device);

        /* A key file is 172 bytes: far below a pipe's buffer, so this never blocks. */
        r = ade_write_all(w.key, keyfile->data, keyfile->size);
        w.key = close_fd(w.key);
        if (r >= 0)
                r = worker_relay(&w, o, &have_result, &result, &exported);
        if (r < 0)
                kill(w.pid, SIGTERM);
        worker_close(&w);

        k = ade_spawn_wait(w.pid, &status);
        if (k < 0)
                return k;
        if (r < 0)
                return r;
        if (!have_result)
                return ade_log_error_errno(EIO, "%s: the reencryption worker (pid %d) died (%s %d) without a result",
                        device, (int)w.pid, WIFSIGNALED(status) ? "signal" : "exit",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        if (ret_header && exported)
                *ret_header = TAKE_PTR(exported);
        return result;
}

int aded_worker_resume(const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o) {
        if (!o->active_name)
                return ade_luks_resume(device, header, keyfile, o);
        return worker_run("resume", device, header, keyfile, o, NULL);
}

int aded_worker_decrypt(
        const char *device, const char *header, const AdeSecret *keyfile, const AdeLuksOptions *o, char **ret_header) {
        if (!o->active_name)
                return ade_luks_decrypt(device, header, keyfile, o, ret_header);
        return worker_run("decrypt", device, header, keyfile, o, ret_header);
}

/* ---- a worker's identity: its lock ------------------------------------------------------------ */

int aded_worker_lock(const char *device, const char *run_dir, bool wait, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        char path[PATH_MAX];
        struct stat st;

        if (stat(device, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
                return -ENOTBLK;
        run_dir = run_dir ?: ADE_LUKS_RUN_DIR_DEFAULT;
        if (mkdir(run_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* By device number: the path may name another disk after a rename, the number does not
         * while the worker runs (it holds the device open). */
        if (snprintf(path, sizeof(path), "%s/worker-%u-%u.lock", run_dir, major(st.st_rdev), minor(st.st_rdev)) >=
                (int)sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        /* In the service's own folder, which only root may write: a file someone else made there
         * is no lock of ours. */
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return -EPERM;
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EBUSY : -errno;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The process that looks like the worker for @device: root's, running our own program, with
 * "--reencrypt-worker OP @device" as its arguments; 0 when none. Only for the log: the lock says
 * whether a worker is at work. */
static pid_t find_worker(const char *device) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        struct stat self;
        struct dirent *de;

        if (!d || stat("/proc/self/exe", &self) < 0)
                return 0;
        while ((de = readdir(d))) {
                char path[64], buf[4096];
                _cleanup_close_ int fd = -EBADF;
                struct stat st, exe;
                ssize_t n;
                pid_t pid;
                const char *a[4] = {};
                size_t i = 0, off = 0;

                pid = (pid_t)strtol(de->d_name, NULL, 10);
                if (pid <= 0 || pid == getpid())
                        continue;
                snprintf(path, sizeof(path), "/proc/%d", (int)pid);
                if (stat(path, &st) < 0 || st.st_uid != 0)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
                if (stat(path, &exe) < 0 || exe.st_dev != self.st_dev || exe.st_ino != self.st_ino)
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                n = read(fd, buf, sizeof(buf) - 1);
                if (n <= 0)
                        continue;
                buf[n] = 0;
                while (i < 4 && off < (size_t)n) {
                        a[i++] = buf + off;
                        off += strlen(buf + off) + 1;
                }
                if (i == 4 && streq(a[1], ADED_WORKER_ARG) && streq(a[3], device))
                        return pid;
        }
        return 0;
}

int aded_worker_wait_orphans(const char *device, const char *run_dir, uint64_t timeout_usec,
        int (*cancelled)(void *userdata), void *userdata) {
        const struct timespec tick = {.tv_nsec = 200 * 1000 * 1000};
        uint64_t waited = 0;
        int r;

        for (;;) {
                _cleanup_close_ int fd = -EBADF;
                pid_t pid;

                /* Free: no worker at work. Released at once: the worker we start takes it. */
                r = aded_worker_lock(device, run_dir, false, &fd);
                if (r >= 0)
                        return waited > 0;
                if (r != -EBUSY)
                        return ade_log_error_errno(
                                r, "%s: cannot check for a reencryption worker still at work: %m", device);
                if (waited == 0) {
                        pid = find_worker(device);
                        ade_log_info("%s: a reencryption worker of an earlier aded (pid %d) is still at work; waiting "
                                     "for it to finish or stop",
                                device, (int)pid);
                }
                if (cancelled && cancelled(userdata))
                        return -ECANCELED;
                if (waited >= timeout_usec) {
                        pid = find_worker(device);
                        return ade_log_error_errno(ETIMEDOUT,
                                "%s: a reencryption worker of an earlier aded (pid %d) is still at work after %" PRIu64
                                " s; stop it (kill -TERM %d: it stops at the next hotzone boundary) or wait for it",
                                device, (int)pid, timeout_usec / 1000000U, (int)pid);
                }
                nanosleep(&tick, NULL);
                waited += 200 * 1000;
        }
}

/* ---- the worker's side -------------------------------------------------------------------- */

static volatile sig_atomic_t worker_stop = 0;

static void worker_on_signal(int sig) {
        (void)sig;
        worker_stop = 1;
}

static void worker_log(int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        (void)userdata;
        if (level <= LOG_INFO)
                fprintf(stderr, "aded-worker: %s\n", message);
}

/* Writes to aded; once aded is gone (EPIPE, SIGPIPE ignored) the work goes on regardless. */
static void worker_say(const char *format, ...) _printf_(1, 2);
static void worker_say(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vprintf(format, ap);
        va_end(ap);
        fflush(stdout);
}

static int worker_progress(uint64_t done, uint64_t total, void *userdata) {
        (void)userdata;
        worker_say("progress %" PRIu64 " %" PRIu64 "\n", done, total);
        return worker_stop ? 1 : 0;
}

static int worker_hook(AdeLuksStep step, void *userdata) {
        char buf[32];
        size_t n = 0;

        (void)userdata;
        worker_say("step %d\n", (int)step);
        /* aded answers with its hook's value; without aded (EOF) carry on. */
        while (n < sizeof(buf) - 1) {
                ssize_t k = read(WORKER_ANSWER_FD, buf + n, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return worker_stop ? 1 : 0;
                if (buf[n] == '\n')
                        break;
                n++;
        }
        buf[n] = 0;
        return worker_stop ? 1 : atoi(buf);
}

static const char *arg_or_null(const char *a) {
        return streq(a, "-") ? NULL : a;
}

int aded_worker_main(int argc, char *argv[]) {
        _cleanup_secret_ AdeSecret *key = NULL;
        _cleanup_free_ char *exported = NULL;
        struct sigaction sa = {.sa_handler = worker_on_signal};
        AdeLuksOptions o = {};
        const char *op, *device, *header;
        _cleanup_close_ int lock = -EBADF;
        int r;

        /* aded --reencrypt-worker OP DEVICE HEADER NAME HEADER_DIR RUN_DIR HOTZONE RESILIENCE */
        if (argc != 10)
                return 2;
        op = argv[2];
        device = argv[3];
        header = arg_or_null(argv[4]);
        o.active_name = argv[5];
        o.header_dir = arg_or_null(argv[6]);
        o.run_dir = arg_or_null(argv[7]);
        o.hotzone_size = strtoull(argv[8], NULL, 10);
        o.resilience = arg_or_null(argv[9]);
        o.escrow_confirmed = true;
        o.progress = worker_progress;
        o.hook = worker_hook;

        /* Its own session: a Ctrl-C or hang-up meant for aded's terminal must not kill it mid-step.
         * aded blocks the signals sd-event handles, and a spawned child inherits that mask. */
        (void)setsid();
        /* Nothing of aded's (its varlink sockets, the journal) stays open in here. */
        (void)close_range(WORKER_ANSWER_FD + 1, ~0U, 0);
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        sigprocmask(SIG_SETMASK, &sa.sa_mask, NULL);
        ade_log_set_callback(worker_log, NULL);

        r = ade_secret_read_fd(WORKER_KEY_FD, 4096, &key);
        close(WORKER_KEY_FD);
        if (r < 0) {
                worker_say("result %d\n", r);
                return 1;
        }
        /* Held until we exit: how the next aded knows that a worker is at work here. */
        r = aded_worker_lock(device, o.run_dir, false, &lock);
        if (r < 0) {
                worker_say("result %d\n", r);
                return 1;
        }

        if (streq(op, "resume"))
                r = ade_luks_resume(device, header, key, &o);
        else if (streq(op, "decrypt"))
                r = ade_luks_decrypt(device, header, key, &o, &exported);
        else
                r = -EINVAL;
        if (exported)
                worker_say("header %s\n", exported);
        worker_say("result %d\n", r);
        return r < 0 && r != -ECANCELED ? 1 : 0;
}
