/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-blob.h"
#include "ade-config.h"
#include "ade-log.h"
#include "ade-rescue.h"
#include "ade-restore.h"
#include "ade-volume.h"

/* ade-restore-header: header restore (docs/architecture.md §11) without aded, for a rescue VM or a
 * machine whose aded cannot run: lists a device's header backups in ade.conf's [backup] url, or
 * downloads one, checks it (see ade-restore.h) and writes it. Reaches Storage and Key Vault with the
 * identity of ade.conf and trusts the vaults ade-resolve-key trusts. */

#define PROG "ade-restore-header"

static void log_to_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        (void)level;
        (void)file;
        (void)line;
        (void)func;
        (void)userdata;
        fprintf(stderr, PROG ": %s\n", message);
}

static void help(void) {
        printf(PROG " [OPTIONS] DEVICE\n\n"
                    "Restores the LUKS2 header of an ade-encrypted volume from its backups in Blob Storage.\n\n"
                    "  -h --help           Show this help\n"
                    "  -c --config FILE    Identity, endpoints and [backup] url from FILE\n"
                    "                      (default " ADE_CONFIG_PATH_DEFAULT ")\n"
                    "     --header FILE    The volume's detached LUKS2 header (may be missing)\n"
                    "     --list           List the device's generations and write nothing\n"
                    "     --generation N   Restore generation N (default: the newest)\n"
                    "     --dry-run        Download and check everything, write nothing\n"
                    "     --yes            Write the header (required unless --dry-run or --list)\n"
                    "     --trust-vault URL\n"
                    "                      Send a token to this vault too (its origin)\n");
}

static void say_error(const char *what, int r, const char *text, const AdeCloudError *e) {
        _cleanup_free_ char *cloud = (e->code || e->status > 0) ? ade_cloud_error_to_string(e, "Azure") : NULL;

        fprintf(stderr, PROG ": %s%s%s\n", text ?: what, text ? "" : ": ", text ? "" : strerror(-r));
        if (cloud)
                fprintf(stderr, PROG ": %s\n", cloud);
}

int main(int argc, char *argv[]) {
        enum { ARG_HEADER = 0x100, ARG_TRUST_VAULT, ARG_LIST, ARG_GENERATION, ARG_DRY_RUN, ARG_YES };
        static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                {"config", required_argument, NULL, 'c'}, {"header", required_argument, NULL, ARG_HEADER},
                {"trust-vault", required_argument, NULL, ARG_TRUST_VAULT}, {"list", no_argument, NULL, ARG_LIST},
                {"generation", required_argument, NULL, ARG_GENERATION}, {"dry-run", no_argument, NULL, ARG_DRY_RUN},
                {"yes", no_argument, NULL, ARG_YES}, {}};
        _cleanup_(ade_config_freep) AdeConfig *config = NULL;
        _cleanup_(ade_resolver_freep) AdeResolver *resolver = NULL;
        _cleanup_(ade_blob_client_freep) AdeBlobClient *blob = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *error = NULL, *device_id = NULL;
        _cleanup_(strv_freep) char **trust = NULL;
        const char *config_path = NULL, *header = NULL, *device;
        bool list = false, dry_run = false, yes = false;
        unsigned generation = 0;
        AdeCredential *cred;
        AdeRestoreRequest req;
        AdeRestoreResult res = {};
        AdeHttpOptions o;
        AdeLuksStatus st;
        int c, r;

        /* It holds the key file while it tests it: no core of it, OpenSSL's freed heap wiped. */
        r = ade_secret_protect_process();
        if (r < 0)
                fprintf(stderr, PROG ": cannot keep the key out of cores and freed memory: %s\n", strerror(-r));

        ade_log_set_callback(log_to_stderr, NULL);
        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_HEADER:
                        header = optarg;
                        break;
                case ARG_TRUST_VAULT:
                        if (strv_extend(&trust, optarg) < 0) {
                                fprintf(stderr, PROG ": out of memory\n");
                                return 1;
                        }
                        break;
                case ARG_LIST:
                        list = true;
                        break;
                case ARG_GENERATION:
                        if (!ade_restore_parse_generation(optarg, &generation)) {
                                fprintf(stderr, PROG ": --generation %s: not a generation (1 to 999999)\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_DRY_RUN:
                        dry_run = true;
                        break;
                case ARG_YES:
                        yes = true;
                        break;
                default:
                        return 2;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, PROG ": needs one DEVICE; see --help\n");
                return 2;
        }
        if (!list && !dry_run && !yes) {
                fprintf(stderr, PROG ": writing a header needs --yes (or check first with --dry-run)\n");
                return 2;
        }
        device = argv[optind];

        r = ade_config_load(config_path, &config, &error);
        if (r < 0) {
                fprintf(stderr, PROG ": %s\n", error ?: "cannot load the configuration");
                return 1;
        }
        if (!config->backup.url) {
                fprintf(stderr, PROG ": %s has no [backup] url: there are no header backups to restore\n",
                        config->path);
                return 1;
        }
        r = ade_volume_stable_id(device, &device_id, NULL);
        if (r < 0) {
                fprintf(stderr, PROG ": %s is not a block device: %s\n", device, strerror(-r));
                return 1;
        }

        r = rescue_resolver_new(PROG, config, trust, &resolver);
        if (r == -EDOM)
                return 2;
        if (r >= 0)
                r = ade_resolver_credential(resolver, &cred);
        if (r >= 0) {
                o = *ade_resolver_http_options(resolver);
                o.max_response_size = 0;
                r = ade_blob_client_new(config->backup.url, cred, NULL, &o, &blob);
        }
        if (r < 0) {
                fprintf(stderr, PROG ": cannot set up the clients for %s: %s\n", config->backup.url, strerror(-r));
                return 1;
        }

        if (list) {
                AdeRestoreGeneration *gens = NULL;
                bool by_uuid = (!header || access(header, F_OK) == 0) && ade_luks_status(device, header, &st) >= 0 &&
                               ade_luks_uuid_is_valid(st.uuid);
                size_t n = 0;

                r = ade_restore_list(blob, by_uuid ? st.uuid : NULL, device_id, &gens, &n, &cerr);
                if (r < 0) {
                        say_error("cannot list the header backups", r, NULL, &cerr);
                        return 1;
                }
                for (size_t i = 0; i < n; i++)
                        printf("%u %s %s %" PRIu64 "%s%s\n", gens[i].generation, gens[i].volume, gens[i].name,
                                gens[i].size, gens[i].obsolete ? " obsolete " : "", strempty(gens[i].obsolete));
                if (n == 0)
                        fprintf(stderr, PROG ": no header backup of %s (%s %s) in %s\n", device,
                                by_uuid ? "volume" : "device id", by_uuid ? st.uuid : device_id, config->backup.url);
                ade_restore_generations_free(gens, n);
                return n == 0 ? 1 : 0;
        }

        req = (AdeRestoreRequest){.device = device,
                .header = header,
                .device_id = device_id,
                .header_dir = config->volumes.header_dir,
                .generation = generation,
                .dry_run = dry_run};
        r = ade_restore_header(blob, resolver, &req, &res, &cerr, &error);
        if (r < 0) {
                say_error("cannot restore the header", r, error, &cerr);
                return 1;
        }
        if (dry_run)
                printf("%s: generation %u (%s) of volume %s checks out and opens with the escrowed key; nothing "
                       "was written (dry run)\n",
                        header ?: device, res.generation, res.blob, res.uuid);
        else
                printf("%s: header restored from generation %u (%s) of volume %s; the escrowed key opens it%s%s\n",
                        header ?: device, res.generation, res.blob, res.uuid,
                        res.kept ? "; what it held before is in " : "", strempty(res.kept));
        ade_restore_result_done(&res);
        return 0;
}
