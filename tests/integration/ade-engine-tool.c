/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives the volume engine from the command line, for the integration tests and the benchmark:
 *
 *   ade-engine-tool [options] probe|plan|prepare|encrypt|resume|decrypt|status|token|test-key DEVICE [KEYFILE]
 *   ade-engine-tool [options] rotate DEVICE OLDKEYFILE NEWKEYFILE
 *   ade-engine-tool [options] open DEVICE KEYFILE      (with --active-name; needs device-mapper)
 *   ade-engine-tool close NAME
 *   ade-engine-tool [--format-all] discover ADE.CONF|-
 *
 * --uuid UUID gives encrypt the UUID of the new header (AdeLuksOptions.uuid).
 * Online encryption (in the VM): encrypt --active-name N --init-only, mount /dev/mapper/N,
 * then resume --active-name N. prepare prints "prepared=FILE", a header for encrypt
 * --prepared-header FILE (ade_luks_prepare_header()).
 * Progress goes to stdout as "progress DONE TOTAL PERCENT" lines, flushed, so that a test can
 * kill the process at a chosen point. Exit codes: 0 done, 1 failed, 2 usage, 3 stopped (cancel). */
#include <assert.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "ade-log.h"
#include "ade-luks.h"
#include "ade-secret.h"
#include "ade-volume.h"

static uint64_t arg_cancel_at = 0; /* percent; 0 = never */
static uint64_t arg_pause_at = 0;  /* percent: print "paused" and wait to be killed */
static uint64_t arg_crash_at = 0;  /* percent: SIGKILL ourselves shortly after, inside the next hotzone;
                                    * 100: during libcryptsetup's finishing metadata updates */
static AdeLuksStep arg_hook_exit = _ADE_LUKS_STEP_INVALID;
static AdeLuksStep arg_hook_fail = _ADE_LUKS_STEP_INVALID;
static bool arg_quiet_progress = false;

static void log_to_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        (void)level;
        (void)userdata;
        fprintf(stderr, "%s\n", message);
}

/* Sleeps a little, so that libcryptsetup has marked the next hotzone in progress and is moving its
 * data, then dies as abruptly as a power cut allows in a test. */
static bool arg_crash_mid_hotzone = false;
static const char *crash_watch = NULL; /* the metadata to watch: the header file, else the device */

/* True while the LUKS2 metadata marks a segment in reencryption: data of the hotzone is being
 * written, the window in which a kill leaves libcryptsetup's CRASH state. Only the primary header
 * (the first 16 KiB) counts: the secondary copy lags it by one write. Read with O_DIRECT so that a
 * device's page cache cannot hide libcryptsetup's direct writes. */
static bool hotzone_in_flight(void) {
        _cleanup_close_ int fd = -EBADF;
        void *buf = NULL;
        bool found = false;
        ssize_t n;

        fd = open(crash_watch, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0)
                fd = open(crash_watch, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || posix_memalign(&buf, 4096, 16384) != 0)
                return false;
        n = pread(fd, buf, 16384, 0);
        if (n > 0)
                found = memmem(buf, n, "in-reencryption", strlen("in-reencryption")) != NULL;
        free(buf);
        return found;
}

/* ADE_TEST_CRASH_DELAY_US moves the kill around inside the hotzone (stress runs sweep it);
 * --crash-mid-hotzone waits (up to 20 s) until the metadata says a hotzone is being written. */
static void *crash_soon(void *p) {
        const char *e = getenv("ADE_TEST_CRASH_DELAY_US");
        unsigned long us = e ? strtoul(e, NULL, 10) : 20000;
        struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};

        (void)p;
        if (arg_crash_mid_hotzone) {
                struct timespec tick = {.tv_nsec = 200 * 1000};
                for (unsigned i = 0; i < 100000 && !hotzone_in_flight(); i++)
                        nanosleep(&tick, NULL);
        } else
                nanosleep(&ts, NULL);
        kill(getpid(), SIGKILL);
        return NULL;
}

static int progress(uint64_t done, uint64_t total, void *userdata) {
        uint64_t pct = total ? done * 100 / total : 0;

        (void)userdata;
        if (!arg_quiet_progress) {
                printf("progress %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", done, total, pct);
                fflush(stdout);
        }
        if (arg_pause_at && pct >= arg_pause_at && done < total) {
                printf("paused %" PRIu64 "\n", pct);
                fflush(stdout);
                for (;;)
                        pause();
        }
        if (arg_crash_at && pct >= arg_crash_at && (done < total || arg_crash_at >= 100)) {
                static bool armed = false;
                pthread_t t;

                if (!armed && pthread_create(&t, NULL, crash_soon, NULL) == 0) {
                        armed = true;
                        printf("crashing %" PRIu64 "\n", pct);
                        fflush(stdout);
                }
        }
        return arg_cancel_at && pct >= arg_cancel_at && done < total;
}

static struct timespec planned_at;

static int hook(AdeLuksStep step, void *userdata) {
        (void)userdata;
        if (step == ADE_LUKS_STEP_PLANNED)
                clock_gettime(CLOCK_MONOTONIC, &planned_at);
        printf("step %s\n", ade_luks_step_to_string(step));
        fflush(stdout);
        if (step == arg_hook_exit)
                _exit(9); /* as abrupt as a kill -9: no cleanup, no flush of anything else */
        if (step == arg_hook_fail)
                return -EIO; /* an ordinary failure at that point: the engine must clean up */
        return 0;
}

static int read_key(const char *path, AdeSecret **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

        return fd < 0 ? -errno : ade_secret_read_fd(fd, 4096, ret);
}

static void print_volume(const AdeVolume *v) {
        printf("device=%s\nstable_id=%s\nsize=%" PRIu64 "\nfstype=%s\nlabel=%s\nmountpoint=%s\nlun=%d\ntype=%s\n"
               "eligible=%s\nskip=%s\nreason=%s\n",
                v->device, strna(v->stable_id), v->size, strna(v->fstype), strna(v->label), strna(v->mountpoint),
                v->lun, ade_volume_type_to_string(v->type), v->skip == ADE_VOLUME_ELIGIBLE ? "yes" : "no",
                ade_volume_skip_to_string(v->skip), strna(v->reason));
}

static void print_plan(const AdeLuksPlan *p) {
        printf("mode=%s\nheader=%s\nshrink=%s\nheader_path=%s\nfs_min_size=%" PRIu64 "\ndata_size=%" PRIu64
               "\nreason=%s\n",
                ade_luks_mode_to_string(p->mode), ade_luks_header_to_string(p->header), p->shrink ? "yes" : "no",
                p->header_path ?: "", p->fs_min_size, p->data_size, strna(p->reason));
}

static int finish(int r, const char *what, const char *device, const char *output) {
        if (r == -ECANCELED) {
                printf("stopped\n");
                return 3;
        }
        if (r < 0) {
                fprintf(stderr, "%s of %s failed: %s\n", what, device, strerror(-r));
                if (output)
                        fprintf(stderr, "%s\n", output);
                return 1;
        }
        printf("done\n");
        return 0;
}

int main(int argc, char *argv[]) {
        enum {
                ARG_HEADER = 0x100,
                ARG_HEADER_DIR,
                ARG_RUN_DIR,
                ARG_HOTZONE,
                ARG_RESILIENCE,
                ARG_DETACHED,
                ARG_CANCEL_AT,
                ARG_PAUSE_AT,
                ARG_CRASH_AT,
                ARG_HOOK_FAIL,
                ARG_ACTIVE_NAME,
                ARG_INIT_ONLY,
                ARG_RUNNING_ROOT,
                ARG_HOOK_EXIT,
                ARG_SECRET_URL,
                ARG_NO_ESCROW,
                ARG_FORMAT_ALL,
                ARG_YES,
                ARG_KEK_URL,
                ARG_DEBUG,
                ARG_QUIET,
                ARG_CRASH_MID_HOTZONE,
                ARG_PREPARED_HEADER,
                ARG_UUID
        };
        static const struct option options[] = {{"header", required_argument, NULL, ARG_HEADER},
                {"header-dir", required_argument, NULL, ARG_HEADER_DIR},
                {"run-dir", required_argument, NULL, ARG_RUN_DIR}, {"hotzone", required_argument, NULL, ARG_HOTZONE},
                {"resilience", required_argument, NULL, ARG_RESILIENCE}, {"detached", no_argument, NULL, ARG_DETACHED},
                {"cancel-at", required_argument, NULL, ARG_CANCEL_AT},
                {"pause-at", required_argument, NULL, ARG_PAUSE_AT},
                {"crash-at", required_argument, NULL, ARG_CRASH_AT},
                {"crash-mid-hotzone", no_argument, NULL, ARG_CRASH_MID_HOTZONE},
                {"prepared-header", required_argument, NULL, ARG_PREPARED_HEADER},
                {"uuid", required_argument, NULL, ARG_UUID}, {"hook-exit", required_argument, NULL, ARG_HOOK_EXIT},
                {"hook-fail", required_argument, NULL, ARG_HOOK_FAIL},
                {"active-name", required_argument, NULL, ARG_ACTIVE_NAME},
                {"init-only", no_argument, NULL, ARG_INIT_ONLY}, {"running-root", no_argument, NULL, ARG_RUNNING_ROOT},
                {"secret-url", required_argument, NULL, ARG_SECRET_URL},
                {"kek-url", required_argument, NULL, ARG_KEK_URL}, {"no-escrow", no_argument, NULL, ARG_NO_ESCROW},
                {"format-all", no_argument, NULL, ARG_FORMAT_ALL}, {"yes", no_argument, NULL, ARG_YES},
                {"debug", no_argument, NULL, ARG_DEBUG}, {"quiet", no_argument, NULL, ARG_QUIET}, {}};
        _cleanup_secret_ AdeSecret *key = NULL, *newkey = NULL;
        _cleanup_(ade_volume_freep) AdeVolume *v = NULL;
        _cleanup_free_ char *output = NULL, *header_out = NULL;
        AdeLuksOptions o = {
                .header_dir = "/var/lib/ade/headers", .progress = progress, .hook = hook, .escrow_confirmed = true};
        AdeLuksToken token = {.version = (char *)ADE_LUKS_TOKEN_VERSION,
                .key_vault_url = (char *)"https://contoso.vault.azure.net",
                .key_vault_resource_id = (char *)"/subscriptions/00000000-0000-0000-0000-000000000000/"
                                                 "resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso",
                .secret_url = (char *)"https://contoso.vault.azure.net/secrets/"
                                      "3f1c8e4a-0000-4000-8000-000000000001/0123456789abcdef0123456789abcdef",
                .volume_type = (char *)"Data"};
        const char *header = NULL, *cmd, *device;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_HEADER:
                        header = optarg;
                        break;
                case ARG_HEADER_DIR:
                        o.header_dir = optarg;
                        break;
                case ARG_RUN_DIR:
                        o.run_dir = optarg;
                        break;
                case ARG_HOTZONE:
                        o.hotzone_size = strtoull(optarg, NULL, 10);
                        break;
                case ARG_RESILIENCE:
                        o.resilience = optarg;
                        break;
                case ARG_DETACHED:
                        o.force_detached = true;
                        break;
                case ARG_CANCEL_AT:
                        arg_cancel_at = strtoull(optarg, NULL, 10);
                        break;
                case ARG_PAUSE_AT:
                        arg_pause_at = strtoull(optarg, NULL, 10);
                        break;
                case ARG_CRASH_AT:
                        arg_crash_at = strtoull(optarg, NULL, 10);
                        break;
                case ARG_HOOK_EXIT:
                        arg_hook_exit = ade_luks_step_from_string(optarg);
                        if (arg_hook_exit < 0) {
                                fprintf(stderr, "Unknown step %s\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_ACTIVE_NAME:
                        o.active_name = optarg;
                        break;
                case ARG_INIT_ONLY:
                        o.init_only = true;
                        break;
                case ARG_RUNNING_ROOT:
                        o.running_root = true;
                        break;
                case ARG_HOOK_FAIL:
                        arg_hook_fail = ade_luks_step_from_string(optarg);
                        if (arg_hook_fail < 0) {
                                fprintf(stderr, "Unknown step %s\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_SECRET_URL:
                        token.secret_url = optarg;
                        break;
                case ARG_KEK_URL:
                        token.kek_url = optarg;
                        token.kek_algorithm = (char *)"RSA-OAEP";
                        break;
                case ARG_NO_ESCROW:
                        o.escrow_confirmed = false;
                        break;
                case ARG_FORMAT_ALL:
                        o.format_all = true;
                        break;
                case ARG_YES:
                        o.format_all_confirmed = true;
                        break;
                case ARG_DEBUG:
                        ade_log_set_callback(log_to_stderr, NULL);
                        ade_log_set_max_level(LOG_DEBUG);
                        break;
                case ARG_QUIET:
                        arg_quiet_progress = true;
                        break;
                case ARG_PREPARED_HEADER:
                        o.prepared_header = optarg;
                        break;
                case ARG_CRASH_MID_HOTZONE:
                        arg_crash_mid_hotzone = true;
                        break;
                case ARG_UUID:
                        o.uuid = optarg;
                        break;
                default:
                        return 2;
                }

        if (argc - optind < 2) {
                fprintf(stderr, "Usage: %s [options] COMMAND DEVICE [KEYFILE [NEWKEYFILE]]\n", argv[0]);
                return 2;
        }
        cmd = argv[optind];
        device = argv[optind + 1];
        crash_watch = header ?: device;
        if (argc - optind >= 3) {
                r = read_key(argv[optind + 2], &key);
                if (r < 0) {
                        fprintf(stderr, "Cannot read key file %s: %s\n", argv[optind + 2], strerror(-r));
                        return 1;
                }
        }
        if (argc - optind >= 4) {
                r = read_key(argv[optind + 3], &newkey);
                if (r < 0) {
                        fprintf(stderr, "Cannot read key file %s: %s\n", argv[optind + 3], strerror(-r));
                        return 1;
                }
        }

        if (streq(cmd, "discover")) {
                /* DEVICE is an ade.conf here, or "-" for discovery without one. */
                _cleanup_(ade_config_freep) AdeConfig *config = NULL;
                _cleanup_(ade_volume_free_manyp) AdeVolume **l = NULL;
                _cleanup_free_ char *error = NULL;

                if (!streq(device, "-")) {
                        r = ade_config_load(device, &config, &error);
                        if (r < 0) {
                                fprintf(stderr, "%s\n", strna(error));
                                return 1;
                        }
                }
                r = ade_volume_discover(config, o.format_all, &l);
                if (r < 0)
                        return finish(r, "Discovery", device, NULL);
                for (AdeVolume **i = l; *i; i++) {
                        print_volume(*i);
                        printf("\n");
                }
                return 0;
        }

        if (streq(cmd, "probe") || streq(cmd, "plan") || streq(cmd, "prepare") || streq(cmd, "encrypt")) {
                r = ade_volume_probe(device, ADE_VOLUME_DATA, o.format_all, &v);
                if (r < 0)
                        return finish(r, "Probing", device, NULL);
                if (streq(cmd, "probe")) {
                        print_volume(v);
                        return 0;
                }
        }

        if (streq(cmd, "prepare")) {
                if (!key)
                        return 2;
                r = ade_luks_prepare_header(v, &token, key, &o, &header_out);
                if (r >= 0)
                        printf("prepared=%s\n", header_out);
                return finish(r, "Preparing a header", device, NULL);
        }
        if (streq(cmd, "plan")) {
                AdeLuksPlan p = {};
                r = ade_luks_plan(v, &o, &p, &output);
                if (r >= 0)
                        print_plan(&p);
                ade_luks_plan_done(&p);
                return finish(r, "Planning", device, output);
        }
        if (streq(cmd, "encrypt")) {
                AdeLuksPlan p = {};
                if (!key)
                        return 2;
                r = ade_luks_encrypt(v, &token, key, &o, &p, &output);
                if (r >= 0 || r == -ECANCELED)
                        print_plan(&p);
                if (r >= 0 && planned_at.tv_sec) {
                        /* For tests/bench: the time spent writing, after the read-only checks. */
                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        printf("seconds_after_plan=%.3f\n",
                                (double)(now.tv_sec - planned_at.tv_sec) + (now.tv_nsec - planned_at.tv_nsec) / 1e9);
                }
                ade_luks_plan_done(&p);
                return finish(r, "Encryption", device, output);
        }
        if (streq(cmd, "resume")) {
                if (!key)
                        return 2;
                return finish(ade_luks_resume(device, header, key, &o), "Resume", device, NULL);
        }
        if (streq(cmd, "decrypt")) {
                if (!key)
                        return 2;
                r = ade_luks_decrypt(device, header, key, &o, &header_out);
                if (header_out)
                        printf("header_path=%s\n", header_out);
                return finish(r, "Decryption", device, NULL);
        }
        if (streq(cmd, "rotate")) {
                if (!key || !newkey)
                        return 2;
                return finish(ade_luks_rotate(device, header, key, newkey, &token, &o), "Key rotation", device, NULL);
        }
        if (streq(cmd, "update-token")) {
                if (!key)
                        return 2;
                return finish(ade_luks_update_token(device, header, key, &token, &o), "Token update", device, NULL);
        }
        if (streq(cmd, "test-key")) {
                if (!key)
                        return 2;
                r = ade_luks_test_key(device, header, key);
                if (r < 0)
                        return finish(r, "Key test", device, NULL);
                printf("%s\n", r ? "opens" : "refused");
                return r ? 0 : 1;
        }
        if (streq(cmd, "status")) {
                AdeLuksStatus s;
                r = ade_luks_status(device, header, &s);
                if (r < 0)
                        return finish(r, "Status", device, NULL);
                printf("state=%s\nheader=%s\ntoken=%s\nuuid=%s\n", ade_luks_state_to_string(s.state),
                        ade_luks_header_to_string(s.header), s.has_token ? "yes" : "no", s.uuid);
                return 0;
        }
        if (streq(cmd, "token")) {
                _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
                r = ade_luks_read_token(device, header, &t);
                if (r < 0)
                        return finish(r, "Reading the token", device, NULL);
                printf("SecretURL=%s\nKeyEncryptionKeyURL=%s\nVolumeType=%s\nDeviceId=%s\nkeyslot=%d\n", t->secret_url,
                        strna(t->kek_url), strna(t->volume_type), strna(t->device_id), t->keyslot);
                return 0;
        }
        if (streq(cmd, "open")) {
                if (!key || !o.active_name)
                        return 2;
                return finish(ade_luks_open(device, header, o.active_name, key), "Opening", device, NULL);
        }
        if (streq(cmd, "close"))
                return finish(ade_luks_close(device), "Closing", device, NULL);
        if (streq(cmd, "find-header")) {
                r = ade_luks_find_header(o.header_dir, device, &header_out);
                if (r < 0)
                        return finish(r, "Finding the header", device, NULL);
                printf("%s\n", header_out);
                return 0;
        }
        fprintf(stderr, "Unknown command %s\n", cmd);
        return 2;
}
