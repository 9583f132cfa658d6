/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ade-blob.h"
#include "ade-cse.h"
#include "ade-log.h"
#include "ade-resolver.h"
#include "aded-backup.h"
#include "aded-manager.h"

#define GENERATION_DIGITS 6
#define HEADER_SIZE_MAX (64U * 1024U * 1024U)

/* The machine's part of blob names: its host name when it is a blob name segment, else "vm". */
static void machine_segment(char *buf, size_t size) {
        if (gethostname(buf, size - 1) < 0 || !ade_blob_name_is_valid(buf) || strchr(buf, '/'))
                snprintf(buf, size, "vm");
        buf[size - 1] = 0;
}

/* The header as a file would hold it: a backup into a private folder under header-dir, read back
 * and removed. */
static int read_header(const char *device, const char *header, const char *header_dir, void **ret, size_t *ret_size) {
        _cleanup_free_ char *tmpl = NULL, *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        ssize_t n;
        int r;

        if (asprintf(&tmpl, "%s/.backup-upload.XXXXXX", header_dir) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmpl))
                return -errno;
        r = ade_luks_backup_header(device, header, tmpl, &path);
        if (r >= 0) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0)
                        r = -errno;
                else if (st.st_size <= 0 || (uint64_t)st.st_size > HEADER_SIZE_MAX)
                        r = -EFBIG;
                else if (!(buf = malloc(st.st_size)))
                        r = -ENOMEM;
                else if ((n = read(fd, buf, st.st_size)) != st.st_size)
                        r = n < 0 ? -errno : -EIO;
                (void)unlink(path);
        }
        (void)rmdir(tmpl);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        *ret_size = st.st_size;
        return 0;
}

/* The next generation under @prefix: one more than the highest there, 1 for the first. */
static int next_generation(AdeBlobClient *blob, const char *prefix, unsigned *ret, AdeCloudError *ret_error) {
        AdeBlobItem *items = NULL;
        unsigned max = 0;
        size_t n = 0;
        int r;

        r = ade_blob_list(blob, prefix, 0, &items, &n, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const char *rest = items[i].name + strlen(prefix);
                char *end;
                unsigned long g = strtoul(rest, &end, 10);

                if (end == rest + GENERATION_DIGITS && *end == '-' && g > max && g < 999999)
                        max = (unsigned)g;
        }
        ade_blob_items_free(items, n);
        *ret = max + 1;
        return 0;
}

static int upload(Manager *m, const char *device, const char *header, const char *device_id, const AdeLuksToken *token,
        char **ret_name, AdeCloudError *e) {
        _cleanup_(ade_blob_client_freep) AdeBlobClient *blob = NULL;
        _cleanup_free_ void *plain = NULL, *body = NULL;
        _cleanup_free_ char *encryption_data = NULL, *prefix = NULL, *name = NULL, *gen_text = NULL;
        _cleanup_(strv_freep) char **meta = NULL;
        AdeCredential *credential;
        AdeKeyVault *kv;
        AdeLuksStatus st;
        AdeHttpOptions o;
        char machine[256], stamp[32];
        size_t plain_size = 0, body_size = 0;
        unsigned generation;
        struct tm tm;
        time_t now;
        int r;

        r = ade_luks_status(device, header, &st);
        if (r < 0)
                return r;
        if (!ade_luks_uuid_is_valid(st.uuid))
                return -EBADMSG;
        r = read_header(device, header, m->config->volumes.header_dir, &plain, &plain_size);
        if (r < 0)
                return r;

        r = ade_resolver_keyvault(m->resolver, token->kek_url, &kv, e);
        if (r < 0)
                return r;
        r = ade_cse_encrypt(plain, plain_size,
                &(AdeCseKek){.key_id = token->kek_url,
                        .algorithm = token->kek_algorithm ?: m->config->keyvault.kek_algorithm,
                        .wrap = ade_cse_keyvault_wrap,
                        .userdata = kv},
                &body, &body_size, &encryption_data, e);
        if (r < 0)
                return r;

        r = ade_resolver_credential(m->resolver, &credential);
        if (r < 0)
                return r;
        o = *ade_resolver_http_options(m->resolver);
        /* The job waits for this: a Storage that is down costs it a minute at most, not several. */
        o.max_retries = 2;
        o.timeout_ms = 60 * 1000;
        o.max_response_size = 0;
        r = ade_blob_client_new(m->config->backup.url, credential, NULL, &o, &blob);
        if (r < 0)
                return r;

        machine_segment(machine, sizeof(machine));
        if (asprintf(&prefix, "%s/%s/", machine, st.uuid) < 0)
                return -ENOMEM;
        r = next_generation(blob, prefix, &generation, e);
        if (r < 0)
                return r;
        now = time(NULL);
        if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return -EINVAL;
        if (asprintf(&name, "%s%0*u-%s", prefix, GENERATION_DIGITS, generation, stamp) < 0 ||
                asprintf(&gen_text, "%u", generation) < 0)
                return -ENOMEM;

        if (strv_extend(&meta, "AdeVolume") < 0 || strv_extend(&meta, st.uuid) < 0 ||
                strv_extend(&meta, "AdeGeneration") < 0 || strv_extend(&meta, gen_text) < 0 ||
                strv_extend(&meta, "AdeSecretUrl") < 0 || strv_extend(&meta, token->secret_url) < 0)
                return -ENOMEM;
        /* A stable id outside printable ASCII cannot travel in a header; the UUID still names the volume. */
        if (device_id && ade_blob_metadata_is_valid("AdeDeviceId", device_id) &&
                (strv_extend(&meta, "AdeDeviceId") < 0 || strv_extend(&meta, device_id) < 0))
                return -ENOMEM;
        if (strv_extend(&meta, ADE_CSE_METADATA_NAME) < 0 || strv_extend(&meta, encryption_data) < 0)
                return -ENOMEM;

        r = ade_blob_put(blob, name, body, body_size, meta, e);
        if (r < 0)
                return r;
        *ret_name = TAKE_PTR(name);
        return 0;
}

void aded_backup_upload(
        Manager *m, const char *device, const char *header, const char *device_id, const AdeLuksToken *token) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *name = NULL, *msg = NULL;
        int r;

        if (!m->config->backup.url)
                return;
        if (!token || !token->kek_url) {
                ade_log_info("%s: no KEK: no backup", device);
                return;
        }
        r = upload(m, device, header, device_id, token, &name, &e);
        if (r < 0) {
                if (e.code || e.status > 0)
                        msg = ade_cloud_error_to_string(&e, "Azure");
                ade_log_warning("%s: the header backup was not uploaded to %s: %s%s%s; the volume is not affected",
                        device, m->config->backup.url, strerror(-r), msg ? ": " : "", strempty(msg));
                return;
        }
        ade_log_info("%s: header backup uploaded to %s/%s", device, m->config->backup.url, name);
}
