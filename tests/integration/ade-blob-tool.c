/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helper for tests/integration/blob-azurite.sh (not a test itself): ade's Blob Storage client and
 * client-side encryption from the command line, with the emulator's managed identity for tokens
 * (Storage's and Key Vault's).
 *
 *   ade-blob-tool OPTIONS kek-url                      the vault's KEK "kek", versioned
 *   ade-blob-tool OPTIONS put NAME FILE [KEK_URL]      upload FILE (encrypted with the KEK when given)
 *   ade-blob-tool OPTIONS get NAME FILE [SIZE]         download (decrypted when it has encryptiondata,
 *                                                      its plaintext size checked when SIZE is given)
 *   ade-blob-tool OPTIONS list [PREFIX [PAGE_SIZE]]    "name size meta=value..." per blob
 *
 * OPTIONS: --container URL --imds URL --ca FILE [--vault URL [--vault-resource URL]]
 *          [--meta NAME=VALUE]... */
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "ade-blob.h"
#include "ade-cse.h"
#include "ade-fd.h"
#include "ade-imds.h"

static int fail(const char *what, int r, const AdeCloudError *e) {
        _cleanup_free_ char *msg = ade_cloud_error_to_string(e, "Azure");
        fprintf(stderr, "%s failed: %s%s%s\n", what, strerror(-r), msg ? ": " : "", strempty(msg));
        return 1;
}

static int read_file(const char *path, void **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        buf = malloc(st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        if (read(fd, buf, st.st_size) != st.st_size)
                return -EIO;
        *ret = TAKE_PTR(buf);
        *ret_size = st.st_size;
        return 0;
}

static int write_file(const char *path, const void *data, size_t size) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        if (size > 0 && write(fd, data, size) != (ssize_t)size)
                return -EIO;
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"container", required_argument, NULL, 'b'},
                {"imds", required_argument, NULL, 'i'},
                {"ca", required_argument, NULL, 'c'},
                {"vault", required_argument, NULL, 'v'},
                {"vault-resource", required_argument, NULL, 'r'},
                {"meta", required_argument, NULL, 'm'},
                {},
        };
        const char *container = NULL, *imds_url = NULL, *ca = NULL, *vault = NULL, *vault_resource = NULL, *cmd;
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_(ade_credential_freep) AdeCredential *cred = NULL;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_(ade_blob_client_freep) AdeBlobClient *blob = NULL;
        _cleanup_(strv_freep) char **meta = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpOptions o;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'b':
                        container = optarg;
                        break;
                case 'i':
                        imds_url = optarg;
                        break;
                case 'c':
                        ca = optarg;
                        break;
                case 'v':
                        vault = optarg;
                        break;
                case 'r':
                        vault_resource = optarg;
                        break;
                case 'm': {
                        const char *eq = strchr(optarg, '=');
                        _cleanup_free_ char *n = eq ? strndup(optarg, eq - optarg) : NULL;

                        if (!n || strv_extend(&meta, n) < 0 || strv_extend(&meta, eq + 1) < 0)
                                return 2;
                        break;
                }
                default:
                        return 2;
                }
        if (!container || !imds_url || !ca || optind >= argc) {
                fprintf(stderr,
                        "usage: %s --container URL --imds URL --ca FILE [--vault URL] [--meta N=V]... "
                        "kek-url | put NAME FILE [KEK_URL] | get NAME FILE [SIZE] | delete NAME | list [PREFIX "
                        "[PAGE]]\n",
                        argv[0]);
                return 2;
        }
        cmd = argv[optind++];

        curl_global_init(CURL_GLOBAL_DEFAULT);
        ade_http_options_init(&o);
        o.ca_file = ca;
        if ((r = ade_imds_new(imds_url, &o, &imds)) < 0 ||
                (r = ade_imds_credential_new(imds, false, ADE_IMDS_IDENTITY_SYSTEM, NULL, &cred)) < 0 ||
                (r = ade_blob_client_new(container, cred, NULL, &o, &blob)) < 0 ||
                (vault && (r = ade_keyvault_new(vault, cred, vault_resource, &o, &kv)) < 0)) {
                fprintf(stderr, "set-up failed: %s\n", strerror(-r));
                return 1;
        }

        if (streq(cmd, "kek-url") && kv) {
                _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
                _cleanup_free_ char *url = NULL;

                if (asprintf(&url, "%s/keys/kek", vault) < 0)
                        return 1;
                r = ade_keyvault_get_key(kv, url, &k, &e);
                if (r < 0)
                        return fail("get key", r, &e);
                printf("%s\n", k->kid);
                return 0;
        }

        if (streq(cmd, "put") && argc - optind >= 2) {
                const char *name = argv[optind], *path = argv[optind + 1], *kek = argv[optind + 2];
                _cleanup_free_ void *data = NULL, *body = NULL;
                _cleanup_free_ char *encryption_data = NULL;
                size_t size = 0, body_size = 0;

                r = read_file(path, &data, &size);
                if (r < 0)
                        return fail(path, r, NULL);
                if (kek) {
                        if (!kv) {
                                fprintf(stderr, "put with a KEK needs --vault\n");
                                return 2;
                        }
                        r = ade_cse_encrypt(data, size,
                                &(AdeCseKek){.key_id = kek,
                                        .algorithm = "RSA-OAEP",
                                        .wrap = ade_cse_keyvault_wrap,
                                        .userdata = kv},
                                &body, &body_size, &encryption_data, &e);
                        if (r < 0)
                                return fail("encrypt", r, &e);
                        if (strv_extend(&meta, ADE_CSE_METADATA_NAME) < 0 || strv_extend(&meta, encryption_data) < 0)
                                return 1;
                }
                r = ade_blob_put(blob, name, kek ? body : data, kek ? body_size : size, meta, &e);
                if (r < 0)
                        return fail("put", r, &e);
                return 0;
        }

        if (streq(cmd, "get") && argc - optind >= 2) {
                const char *name = argv[optind], *path = argv[optind + 1], *want = argv[optind + 2];
                _cleanup_free_ void *data = NULL, *plain = NULL;
                _cleanup_(strv_freep) char **md = NULL;
                const char *encryption_data;
                size_t size = 0, plain_size = 0;

                r = ade_blob_get(blob, name, &data, &size, &md, &e);
                if (r < 0)
                        return fail("get", r, &e);
                for (char **m = md; m && m[0] && m[1]; m += 2)
                        if (!strcaseeq(m[0], ADE_CSE_METADATA_NAME))
                                printf("%s=%s\n", m[0], m[1]);
                encryption_data = ade_blob_metadata_get(md, ADE_CSE_METADATA_NAME);
                if (!encryption_data) {
                        r = write_file(path, data, size);
                        return r < 0 ? fail(path, r, NULL) : 0;
                }
                if (!kv) {
                        fprintf(stderr, "an encrypted blob needs --vault\n");
                        return 2;
                }
                r = ade_cse_decrypt(data, size, encryption_data, ade_cse_keyvault_unwrap, kv,
                        want ? strtoull(want, NULL, 10) : ADE_CSE_SIZE_UNKNOWN, &plain, &plain_size, &e);
                if (r < 0)
                        return fail("decrypt", r, &e);
                r = write_file(path, plain, plain_size);
                return r < 0 ? fail(path, r, NULL) : 0;
        }

        if (streq(cmd, "delete") && argc - optind >= 1) {
                r = ade_blob_delete(blob, argv[optind], &e);
                return r < 0 ? fail("delete", r, &e) : 0;
        }

        if (streq(cmd, "list")) {
                const char *prefix = optind < argc ? argv[optind] : NULL;
                unsigned page = optind + 1 < argc ? (unsigned)strtoul(argv[optind + 1], NULL, 10) : 0;
                AdeBlobItem *items = NULL;
                size_t n = 0;

                r = ade_blob_list(blob, prefix, page, &items, &n, &e);
                if (r < 0)
                        return fail("list", r, &e);
                for (size_t i = 0; i < n; i++) {
                        printf("%s %" PRIu64, items[i].name, items[i].size);
                        for (char **m = items[i].metadata; m && m[0] && m[1]; m += 2)
                                if (!strcaseeq(m[0], ADE_CSE_METADATA_NAME))
                                        printf(" %s=%s", m[0], m[1]);
                        printf("%s\n",
                                ade_blob_metadata_get(items[i].metadata, ADE_CSE_METADATA_NAME) ? " (encrypted)" : "");
                }
                ade_blob_items_free(items, n);
                return 0;
        }

        fprintf(stderr, "unknown command or missing arguments: %s\n", cmd);
        return 2;
}
