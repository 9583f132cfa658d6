/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ade's engine online, for the VM tests: what the daemon's online flow does around the engine,
 * driven from a guest script that measures the downtime and reads and writes files meanwhile.
 *
 *   ade-vm-online [options] encrypt DEVICE KEYFILE NAME
 *   ade-vm-online [options] decrypt DEVICE KEYFILE NAME
 *   ade-vm-online [options] resume DEVICE KEYFILE NAME
 *
 * encrypt: DEVICE is a filesystem the caller has just unmounted. ade_luks_encrypt() with the active
 * name NAME shrinks it (ext*), writes the header, activates /dev/mapper/NAME and reencrypts. With
 * --mount DIR the mapper is mounted on DIR (type --fstype) as soon as the engine has activated it
 * (its ACTIVATED step, before any data is moved), and "mounted" is printed: the rest of the
 * encryption runs under a mounted filesystem.
 * decrypt: /dev/mapper/NAME is active (and mounted); ade_luks_decrypt() online.
 * resume: continues an interrupted encryption or decryption of the active NAME.
 *
 * --start-on FILE: probe the volume (it may still be mounted), build the header for the front of an
 * ext filesystem (ade_luks_prepare_header()), print "ready", and go on only when
 * FILE exists (the caller has unmounted it by then). aded is a running daemon that has discovered
 * the volume when an operator asks for an encryption: this keeps the program's own start (loading
 * its libraries, slow under TCG) and the probe out of the measured downtime, as they are out of
 * aded's.
 * Options: --header-dir DIR (default /var/lib/ade/headers), --header FILE, --detached,
 * --mount DIR, --fstype TYPE (default ext4), --quiet (no progress lines), --debug (the engine's
 * messages, time-stamped, on stderr), --debug-cryptsetup (libcryptsetup's as well).
 * Prints "header_path=..." for a detached or exported header, "progress DONE TOTAL" lines, "done".
 * Exit codes: 0 done, 1 failed, 2 usage. The engine's own command-line tool
 * (tests/integration/ade-engine-tool) has no active name; this one has nothing else. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libcryptsetup.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "ade-fs.h"
#include "ade-log.h"
#include "ade-luks.h"
#include "ade-secret.h"
#include "ade-volume.h"

static const char *arg_mount = NULL;
static const char *arg_start_on = NULL;
static const char *arg_fstype = "ext4";
static const char *arg_name = NULL;
static bool arg_quiet = false;
static bool mounted = false;
static int mount_error = 0;

/* With --debug, the engine's messages with a monotonic time stamp: where the downtime goes. */
static void log_to_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        struct timespec ts;

        (void)level;
        (void)userdata;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(stderr, "[%5lld.%03ld] %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000, message);
}

/* The engine calls this once /dev/mapper/NAME is active, before any data is moved: mount it now,
 * as aded does between the header and the reencryption, so that the downtime ends there. */
static int hook(AdeLuksStep step, void *userdata) {
        struct timespec ts;
        char node[256];

        (void)userdata;
        if (step != ADE_LUKS_STEP_ACTIVATED || !arg_mount || mounted)
                return 0;
        snprintf(node, sizeof(node), "/dev/mapper/%s", arg_name);
        if (mount(node, arg_mount, arg_fstype, 0, NULL) < 0) {
                mount_error = errno;
                fprintf(stderr, "Cannot mount %s on %s: %s\n", node, arg_mount, strerror(errno));
                return 1; /* stop before the reencryption starts; the volume stays resumable */
        }
        mounted = true;
        /* The moment, on the clock of /proc/uptime, for the guest's downtime figure: a script
         * polling for the line would add its own latency. */
        clock_gettime(CLOCK_BOOTTIME, &ts);
        printf("mounted\nmounted_at=%.2f\n", (double)ts.tv_sec + ts.tv_nsec / 1e9);
        fflush(stdout);
        return 0;
}

static int progress(uint64_t done, uint64_t total, void *userdata) {
        (void)userdata;
        if (!arg_quiet) {
                printf("progress %" PRIu64 " %" PRIu64 "\n", done, total);
                fflush(stdout);
        }
        return 0;
}

static int read_key(const char *path, AdeSecret **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

        return fd < 0 ? -errno : ade_secret_read_fd(fd, 4096, ret);
}

static int finish(int r, const char *what, const char *device, const char *output) {
        if (r < 0) {
                fprintf(stderr, "%s of %s (online, as %s) failed: %s\n", what, device, arg_name, strerror(-r));
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
                ARG_DETACHED,
                ARG_MOUNT,
                ARG_FSTYPE,
                ARG_QUIET,
                ARG_DEBUG,
                ARG_DEBUG_CRYPTSETUP,
                ARG_START_ON
        };
        static const struct option options[] = {{"header", required_argument, NULL, ARG_HEADER},
                {"header-dir", required_argument, NULL, ARG_HEADER_DIR}, {"detached", no_argument, NULL, ARG_DETACHED},
                {"mount", required_argument, NULL, ARG_MOUNT}, {"fstype", required_argument, NULL, ARG_FSTYPE},
                {"quiet", no_argument, NULL, ARG_QUIET}, {"debug", no_argument, NULL, ARG_DEBUG},
                {"debug-cryptsetup", no_argument, NULL, ARG_DEBUG_CRYPTSETUP},
                {"start-on", required_argument, NULL, ARG_START_ON}, {}};
        _cleanup_secret_ AdeSecret *key = NULL;
        _cleanup_(ade_volume_freep) AdeVolume *v = NULL;
        _cleanup_free_ char *output = NULL, *header_out = NULL, *prepared = NULL;
        AdeLuksOptions o = {
                .header_dir = "/var/lib/ade/headers", .progress = progress, .hook = hook, .escrow_confirmed = true};
        /* A token of the shape the daemon writes; the VM tests resolve no key through it. */
        AdeLuksToken token = {.version = (char *)ADE_LUKS_TOKEN_VERSION,
                .key_vault_url = (char *)"https://contoso.vault.azure.net",
                .key_vault_resource_id = (char *)"/subscriptions/00000000-0000-0000-0000-000000000000/"
                                                 "resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso",
                .secret_url = (char *)"https://contoso.vault.azure.net/secrets/"
                                      "3f1c8e4a-0000-4000-8000-000000000002/0123456789abcdef0123456789abcdef",
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
                case ARG_DETACHED:
                        o.force_detached = true;
                        break;
                case ARG_MOUNT:
                        arg_mount = optarg;
                        break;
                case ARG_FSTYPE:
                        arg_fstype = optarg;
                        break;
                case ARG_QUIET:
                        arg_quiet = true;
                        break;
                case ARG_DEBUG:
                        ade_log_set_callback(log_to_stderr, NULL);
                        ade_log_set_max_level(LOG_DEBUG);
                        break;
                case ARG_START_ON:
                        arg_start_on = optarg;
                        break;
                case ARG_DEBUG_CRYPTSETUP:
                        /* libcryptsetup's own steps too, through the engine's log: the fine grain of
                         * where the downtime goes. */
                        ade_log_set_callback(log_to_stderr, NULL);
                        ade_log_set_max_level(LOG_DEBUG);
                        crypt_set_debug_level(CRYPT_DEBUG_ALL);
                        break;
                default:
                        return 2;
                }

        if (argc - optind != 4) {
                fprintf(stderr, "Usage: %s [options] encrypt|decrypt|resume DEVICE KEYFILE NAME\n", argv[0]);
                return 2;
        }
        cmd = argv[optind];
        device = argv[optind + 1];
        arg_name = o.active_name = argv[optind + 3];
        r = read_key(argv[optind + 2], &key);
        if (r < 0) {
                fprintf(stderr, "Cannot read key file %s: %s\n", argv[optind + 2], strerror(-r));
                return 1;
        }

        /* aded knows the volume (discovered, eligible, mounted there) before it unmounts it: so
         * does this driver, with --start-on, before it is told to begin. */
        if (streq(cmd, "encrypt")) {
                r = ade_volume_probe(device, ADE_VOLUME_DATA, false, &v);
                if (r < 0)
                        return finish(r, "Probing", device, NULL);
                /* As aded: the header for the front is built before the volume goes offline. */
                if (arg_start_on && ade_fs_is_ext(v->fstype) &&
                        ade_luks_prepare_header(v, &token, key, &o, &prepared) >= 0)
                        o.prepared_header = prepared;
        }
        if (arg_start_on) {
                const struct timespec tick = {.tv_nsec = 10 * 1000 * 1000};

                printf("ready\n");
                fflush(stdout);
                while (access(arg_start_on, F_OK) < 0)
                        nanosleep(&tick, NULL);
                /* The caller has unmounted it meanwhile, as aded does before the engine runs. */
                if (v)
                        v->mountpoint = mfree(v->mountpoint);
        }

        if (streq(cmd, "encrypt")) {
                AdeLuksPlan p = {};

                r = ade_luks_encrypt(v, &token, key, &o, &p, &output);
                if (prepared)
                        (void)unlink(prepared); /* used and gone already, or unused */
                if (p.header_path)
                        printf("header_path=%s\n", p.header_path);
                ade_luks_plan_done(&p);
                if (r >= 0 && arg_mount && !mounted)
                        r = mount_error ? -mount_error : -EIO; /* never activated: never mounted */
                return finish(r, "Encryption", device, output);
        }
        if (streq(cmd, "decrypt")) {
                r = ade_luks_decrypt(device, header, key, &o, &header_out);
                if (header_out)
                        printf("header_path=%s\n", header_out);
                return finish(r, "Decryption", device, NULL);
        }
        if (streq(cmd, "resume"))
                return finish(ade_luks_resume(device, header, key, &o), "Resume", device, NULL);

        fprintf(stderr, "Unknown command %s\n", cmd);
        return 2;
}
