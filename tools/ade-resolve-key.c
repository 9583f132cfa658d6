/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ade-config.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-luks.h"
#include "ade-rescue.h"
#include "ade-resolver.h"
#include "ade-url.h"

/* ade-resolve-key: the key resolver (docs/architecture.md §3) on its own, for recovery, for the demo and for the
 * initramfs: reads the Azure_Disk_Encryption token of a device (or detached header), fetches the
 * escrowed key file from Key Vault with the identity of ade.conf, and either writes it to a new file
 * (mode 0600) that stock cryptsetup takes with --key-file, or (--activate NAME) opens the volume
 * itself through libcryptsetup, so that the key file never leaves this process's locked memory: the
 * initramfs's way to open the root (docs/architecture.md §9). Like aded, it sends a token
 * only to the vaults ade.conf names, those aded's state file recorded, those given with
 * --trust-vault, and those under [azure] keyvault-dns-suffix. */

static void log_to_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        (void)level;
        (void)userdata;
        fprintf(stderr, "ade-resolve-key: %s\n", message);
}

static void help(void) {
        printf("ade-resolve-key [OPTIONS] DEVICE\n\n"
               "Recovers the key file of an ade-encrypted volume from Key Vault, through its LUKS2 token.\n\n"
               "  -h --help           Show this help\n"
               "  -c --config FILE    Identity and endpoints from FILE (default " ADE_CONFIG_PATH_DEFAULT ")\n"
               "     --header FILE    The volume's detached LUKS2 header\n"
               "     --trust-vault URL\n"
               "                      Send a token to this vault too (its origin), for a volume\n"
               "                      whose vault neither ade.conf nor aded's state file names\n"
               "  -o --output FILE    Write the key file to FILE (created, mode 0600; must not exist)\n"
               "     --activate NAME  Open the volume as /dev/mapper/NAME with the key instead of\n"
               "                      writing it anywhere\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_HEADER = 0x100, ARG_TRUST_VAULT, ARG_ACTIVATE };
        static const struct option options[] = {{"help", no_argument, NULL, 'h'},
                {"config", required_argument, NULL, 'c'}, {"header", required_argument, NULL, ARG_HEADER},
                {"trust-vault", required_argument, NULL, ARG_TRUST_VAULT}, {"output", required_argument, NULL, 'o'},
                {"activate", required_argument, NULL, ARG_ACTIVATE}, {}};
        _cleanup_(ade_config_freep) AdeConfig *config = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_(ade_resolver_freep) AdeResolver *resolver = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *error = NULL, *text = NULL;
        _cleanup_(strv_freep) char **trust = NULL;
        const char *config_path = NULL, *header = NULL, *output = NULL, *activate = NULL, *device;
        int c, r, fd;

        /* It holds the key file: no core of it, OpenSSL's freed heap wiped (ade-secret.h). */
        r = ade_secret_protect_process();
        if (r < 0)
                fprintf(stderr, "ade-resolve-key: cannot keep the key out of cores and freed memory: %s\n",
                        strerror(-r));

        ade_log_set_callback(log_to_stderr, NULL);
        while ((c = getopt_long(argc, argv, "hc:o:", options, NULL)) >= 0)
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
                                fprintf(stderr, "ade-resolve-key: out of memory\n");
                                return 1;
                        }
                        break;
                case 'o':
                        output = optarg;
                        break;
                case ARG_ACTIVATE:
                        activate = optarg;
                        break;
                default:
                        return 2;
                }
        if (optind + 1 != argc || !output == !activate) {
                fprintf(stderr, "ade-resolve-key: needs one DEVICE and either --output FILE or --activate NAME; see "
                                "--help\n");
                return 2;
        }
        device = argv[optind];
        /* The name becomes a path under /dev/mapper: one component, as aded's own names (§16.5). */
        if (activate && !ade_luks_name_is_safe(activate)) {
                fprintf(stderr, "ade-resolve-key: --activate %s: not a device-mapper name\n", activate);
                return 2;
        }

        r = ade_config_load(config_path, &config, &error);
        if (r < 0) {
                fprintf(stderr, "ade-resolve-key: %s\n", error ?: "cannot load the configuration");
                return 1;
        }
        r = ade_luks_read_token(device, header, &token);
        if (r < 0) {
                fprintf(stderr, "ade-resolve-key: %s has no readable Azure_Disk_Encryption token: %s\n", device,
                        strerror(-r));
                return 1;
        }

        r = rescue_resolver_new("ade-resolve-key", config, trust, &resolver);
        if (r == -EDOM)
                return 2;
        if (r >= 0)
                r = ade_url_keyvault_object(token->secret_url, "secrets", false, NULL, NULL, NULL);
        if (r >= 0 && token->kek_url)
                r = ade_url_keyvault_object(token->kek_url, "keys", false, NULL, NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "ade-resolve-key: cannot set up a Key Vault client for %s: %s\n", token->secret_url,
                        strerror(-r));
                return 1;
        }
        r = ade_resolver_key_from_token(resolver, token, &keyfile, &cerr);
        if (r < 0) {
                text = ade_cloud_error_to_string(&cerr, "Key Vault");
                fprintf(stderr, "ade-resolve-key: cannot recover the key of %s from %s: %s\n", device,
                        token->secret_url, text ?: strerror(-r));
                return 1;
        }

        if (activate) {
                r = ade_luks_open(device, header, activate, keyfile);
                if (r < 0) {
                        fprintf(stderr, "ade-resolve-key: cannot open %s%s%s as /dev/mapper/%s: %s\n", device,
                                header ? " with the header " : "", header ?: "", activate,
                                r == -ENOKEY ? "the key from Key Vault opens no keyslot" : strerror(-r));
                        return 1;
                }
                fprintf(stderr, "ade-resolve-key: %s opened as /dev/mapper/%s with the key of %s\n", device, activate,
                        token->secret_url);
                return 0;
        }

        fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                fprintf(stderr, "ade-resolve-key: cannot create %s: %m\n", output);
                return 1;
        }
        /* A short write sets no errno: the error comes from ade_write_all(), not from %m. */
        r = ade_write_all(fd, keyfile->data, keyfile->size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                fprintf(stderr, "ade-resolve-key: cannot write %s: %s\n", output, strerror(-r));
                close(fd);
                (void)unlink(output);
                return 1;
        }
        close(fd);
        fprintf(stderr, "ade-resolve-key: key file of %s (secret %s) written to %s\n", device, token->secret_url,
                output);
        return 0;
}
