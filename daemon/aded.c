/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/resource.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
/* sd_journal_send() would otherwise stamp every message with this file's location (the sink's); the
 * sink sends the location of the ade_log_*() call instead. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "ade-config.h"
#include "ade-identity.h"
#include "ade-log.h"
#include "ade-secret.h"
#include "aded-manager.h"
#include "aded-worker.h"

/* The daemon's log sink: the journal when started by systemd (with the location of the call, as
 * systemd's own programs log), stderr on a terminal. */
/* One journal field, "NAME=value", into @iov[*n] (@buf holds it); nothing when @value is NULL. */
static void journal_field(struct iovec *iov, size_t *n, char *buf, size_t size, const char *name, const char *value) {
        int k;

        if (!value)
                return;
        k = snprintf(buf, size, "%s=%s", name, value);
        if (k < 0)
                return;
        iov[(*n)++] = (struct iovec){.iov_base = buf, .iov_len = (size_t)k < size ? (size_t)k : size - 1};
}

/* The daemon's log sink: the journal when started by systemd (with the location of the call, as
 * systemd's own programs log, and the volume, job and step the message is about: ade-log.h), stderr
 * on a terminal. */
static void log_to_journal_or_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        char priority[16], number[16], code_line[32], code_file[512], code_func[256], volume[300], job[48], step[48];
        _cleanup_free_ char *msg = NULL;
        struct iovec iov[9];
        size_t n = 0;

        (void)userdata;
        if (!getenv("JOURNAL_STREAM") && !getenv("INVOCATION_ID")) {
                fprintf(stderr, "aded: %s\n", message);
                return;
        }
        /* The message itself is not cut short. */
        if (asprintf(&msg, "MESSAGE=%s", message) < 0)
                return;
        iov[n++] = (struct iovec){.iov_base = msg, .iov_len = strlen(msg)};
        snprintf(priority, sizeof(priority), "PRIORITY=%i", level);
        iov[n++] = (struct iovec){.iov_base = priority, .iov_len = strlen(priority)};
        iov[n++] = (struct iovec){
                .iov_base = (char *)"SYSLOG_IDENTIFIER=aded", .iov_len = strlen("SYSLOG_IDENTIFIER=aded")};
        journal_field(iov, &n, code_file, sizeof(code_file), "CODE_FILE", strna(file));
        snprintf(number, sizeof(number), "%i", line);
        journal_field(iov, &n, code_line, sizeof(code_line), "CODE_LINE", number);
        journal_field(iov, &n, code_func, sizeof(code_func), "CODE_FUNC", strna(func));
        journal_field(iov, &n, volume, sizeof(volume), "ADE_VOLUME", ade_log_context_volume());
        journal_field(iov, &n, job, sizeof(job), "ADE_JOB", ade_log_context_job());
        journal_field(iov, &n, step, sizeof(step), "ADE_STEP", ade_log_context_step());
        sd_journal_sendv(iov, (int)n);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void)s;
        (void)si;
        manager_stop(userdata);
        return 0;
}

static Manager *manager_freep_helper(Manager *m) {
        return manager_free(m);
}

static void manager_freep(Manager **m) {
        manager_freep_helper(*m);
}

/* Descriptors aded wants: varlink connections may take all but ADE_VARLINK_FD_RESERVE of them, and
 * they are capped at 1024 (ade-varlink.h), so the default soft limit of 1024 would leave the
 * service short. The unit sets the same (LimitNOFILE=); this covers a start outside systemd. */
#define ADED_NOFILE 4096U

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= ADED_NOFILE)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > ADED_NOFILE ? ADED_NOFILE : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                ade_log_warning_errno(errno, "cannot raise the open files limit to %u: %m", ADED_NOFILE);
}

static int run(AdeConfig *config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        /* Files we create (state, headers) are ours alone. */
        umask(0077);

        /* Reencryption buffers are megabytes: with a fixed mmap threshold they are mapped and unmapped
         * each time, instead of glibc raising the threshold and keeping them in a worker's arena for
         * good (an idle aded stayed ~20 MiB larger after one job). */
        (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);

        raise_nofile();

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return 1;

        /* Said once, as aded starts: key files are then swappable (aded.service sets LimitMEMLOCK=). */
        r = ade_secret_check_lock(ADE_SECRET_SIZE_MAX);
        if (r < 0) {
                struct rlimit rl = {};

                (void)getrlimit(RLIMIT_MEMLOCK, &rl);
                ade_log_warning_errno(r,
                        "key material cannot be locked in RAM (%m; RLIMIT_MEMLOCK is %llu bytes): key files may be "
                        "written to swap. Raise LimitMEMLOCK= (aded.service sets 64M) or ulimit -l",
                        (unsigned long long)rl.rlim_cur);
        }

        /* A client secret others may read is refused at every use (ade-identity.h); said here once,
         * with the fix, rather than only as each job's failure. */
        if (config->identity.type == ADE_IDENTITY_CLIENT_SECRET && config->identity.client_secret_file) {
                _cleanup_secret_ AdeSecret *secret = NULL;

                r = ade_identity_read_client_secret(config->identity.client_secret_file, &secret);
                if (r == -EACCES)
                        ade_log_error("%s: the client secret must be a regular file owned by root that group and "
                                      "others may neither read nor write (chown root, chmod 600); it is not used "
                                      "until then",
                                config->identity.client_secret_file);
                else if (r < 0)
                        ade_log_error_errno(
                                r, "cannot read the client secret %s: %m", config->identity.client_secret_file);
        }

        r = manager_new(config, &m);
        if (r < 0) {
                ade_log_error_errno(r, "cannot start: %m");
                return 1;
        }
        if (sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m) < 0 ||
                sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m) < 0)
                return 1;
        /* Pings the watchdog from the loop when WATCHDOG_USEC is set: a stuck loop gets restarted. */
        (void)sd_event_set_watchdog(m->event, true);

        r = manager_start(m);
        if (r < 0) {
                (void)sd_notifyf(false, "STATUS=Failed to start: %s", strerror(-r));
                return 1;
        }
        r = sd_event_loop(m->event);
        if (r < 0) {
                ade_log_error_errno(r, "event loop failed: %m");
                return 1;
        }
        ade_log_info("stopped");
        return 0;
}

static void help(void) {
        printf("aded [OPTIONS]\n\n"
               "The ade disk-encryption daemon.\n\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "  -c --config FILE     Read FILE instead of " ADE_CONFIG_PATH_DEFAULT "\n"
               "     --check-config    Parse the configuration, report the first error, and exit\n"
               "     --log-level LEVEL err, warning, info or debug\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_CHECK_CONFIG, ARG_LOG_LEVEL };
        static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION}, {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, ARG_CHECK_CONFIG},
                {"log-level", required_argument, NULL, ARG_LOG_LEVEL}, {}};
        _cleanup_(ade_config_freep) AdeConfig *config = NULL;
        _cleanup_free_ char *error = NULL;
        const char *config_path = NULL;
        bool check_only = false;
        int c, r;

        /* Before anything else, the worker too: no core of a process that holds key files, and
         * OpenSSL's freed heap wiped (ade-secret.h). */
        r = ade_secret_protect_process();

        /* Online reencryption runs in a child started from this binary (aded-worker.h). */
        if (argc > 1 && streq(argv[1], ADED_WORKER_ARG))
                return aded_worker_main(argc, argv);

        ade_log_set_callback(log_to_journal_or_stderr, NULL);
        if (r < 0)
                ade_log_warning_errno(r, "cannot keep key material out of cores and freed memory: %m");

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("aded %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        check_only = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = ade_log_level_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "aded: unknown log level '%s' (err, warning, info, debug)\n", optarg);
                                return 2;
                        }
                        ade_log_set_max_level(r);
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "aded: unexpected argument '%s'; see aded --help\n", argv[optind]);
                return 2;
        }

        r = ade_config_load(config_path, &config, &error);
        if (r < 0) {
                ade_log_error("%s", error ?: "cannot load the configuration");
                return 1;
        }
        if (check_only) {
                printf("%s: configuration is valid\n", config->path);
                return 0;
        }

        return run(config);
}
