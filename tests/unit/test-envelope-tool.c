/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helper for tests/integration/offline-unlock.sh (not a test itself): generates a key file, escrows
 * it through ade's envelope with the emulator's managed identity, writes the key file to --key-file
 * (0600) and prints the versioned secret URL. The script then recovers the key file the way
 * Microsoft documents it, without ade's code. */
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>

#include "ade-envelope.h"
#include "ade-imds.h"
#include "ade-keyfile.h"

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"vault", required_argument, NULL, 'v'},
                {"imds", required_argument, NULL, 'i'},
                {"ca", required_argument, NULL, 'c'},
                {"kek", required_argument, NULL, 'k'},
                {"alg", required_argument, NULL, 'a'},
                {"resource", required_argument, NULL, 'r'},
                {"key-file", required_argument, NULL, 'o'},
                {},
        };
        const char *vault = NULL, *imds_url = NULL, *ca = NULL, *kek = NULL, *alg = NULL, *out = NULL, *resource = NULL;
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_(ade_credential_freep) AdeCredential *cred = NULL;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_secret_ AdeSecret *key_file = NULL;
        _cleanup_free_ char *url = NULL, *msg = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_close_ int fd = -EBADF;
        AdeHttpOptions o;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'v':
                        vault = optarg;
                        break;
                case 'i':
                        imds_url = optarg;
                        break;
                case 'c':
                        ca = optarg;
                        break;
                case 'k':
                        kek = optarg;
                        break;
                case 'a':
                        alg = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                case 'r':
                        resource = optarg;
                        break;
                default:
                        return 2;
                }
        if (!vault || !imds_url || !ca || !out) {
                fprintf(stderr,
                        "usage: %s --vault URL --imds URL --ca FILE [--resource URL] [--kek URL [--alg ALG]] "
                        "--key-file OUT\n",
                        argv[0]);
                return 2;
        }

        curl_global_init(CURL_GLOBAL_DEFAULT);
        ade_http_options_init(&o);
        o.ca_file = ca;
        if ((r = ade_imds_new(imds_url, &o, &imds)) < 0 ||
                (r = ade_imds_credential_new(imds, false, ADE_IMDS_IDENTITY_SYSTEM, NULL, &cred)) < 0 ||
                (r = ade_keyvault_new(vault, cred, resource, &o, &kv)) < 0 ||
                (r = ade_keyfile_generate(&key_file)) < 0) {
                fprintf(stderr, "set-up failed: %s\n", strerror(-r));
                return 1;
        }

        r = ade_envelope_escrow(kv, NULL, key_file,
                &(AdeEnvelopeParams){
                        .kek_url = kek, .kek_algorithm = alg, .key_file_name = "LinuxPassPhraseFileName_0_0"},
                &url, NULL, &e);
        if (r < 0) {
                msg = ade_cloud_error_to_string(&e, "Key Vault");
                fprintf(stderr, "escrow failed: %s: %s\n", strerror(-r), strna(msg));
                return 1;
        }

        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, key_file->data, key_file->size) != (ssize_t)key_file->size) {
                fprintf(stderr, "cannot write %s: %m\n", out);
                return 1;
        }
        printf("%s\n", url);
        return 0;
}
