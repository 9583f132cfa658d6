/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-entra.h"
#include "ade-identity.h"
#include "ade-imds.h"
#include "ade-log.h"

int ade_identity_read_client_secret(const char *path, AdeSecret **ret) {
        _cleanup_secret_ AdeSecret *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t n;
        int r;

        assert(path);
        assert(ret);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return ade_log_debug_errno(-errno, "Cannot open %s: %m", path);
        /* Checked on the file opened, not the name: what is read is what was judged. A secret that
         * another user may read or replace is no secret of ours. */
        if (fstat(fd, &st) < 0)
                return ade_log_debug_errno(-errno, "Cannot stat %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return ade_log_debug_errno(-EACCES, "%s is not a regular file", path);
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return ade_log_debug_errno(
                        -EACCES, "%s belongs to uid %u, not to root; chown root %s", path, (unsigned)st.st_uid, path);
        if (st.st_mode & 0077)
                return ade_log_debug_errno(-EACCES, "%s may be read or written by others (mode %04o); chmod 600 %s",
                        path, (unsigned)(st.st_mode & 07777), path);
        r = ade_secret_read_fd(fd, 4095, &s);
        if (r == -EFBIG)
                return ade_log_debug_errno(r, "%s is too large for a client secret", path);
        if (r == -EINVAL)
                return ade_log_debug_errno(r, "%s is empty", path);
        if (r < 0)
                return r;
        n = s->size;
        /* The secret is the file's first line; editors add a newline. */
        while (n > 0 && (s->data[n - 1] == '\n' || s->data[n - 1] == '\r'))
                n--;
        if (n == 0)
                return ade_log_debug_errno(-EINVAL, "%s is empty", path);
        r = ade_secret_truncate(s, n);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static int managed(const AdeConfig *config, const AdeHttpOptions *opts, AdeCredential **ret) {
        AdeImds *imds = NULL;
        int r;

        r = ade_imds_new(config->azure.imds, opts, &imds);
        if (r < 0)
                return r;
        r = ade_imds_credential_new(imds, true,
                config->identity.client_id ? ADE_IMDS_IDENTITY_CLIENT_ID : ADE_IMDS_IDENTITY_SYSTEM,
                config->identity.client_id, ret);
        if (r < 0)
                ade_imds_free(imds);
        return r;
}

static int entra(AdeEntra *e, AdeCredential **ret) {
        int r;

        r = ade_entra_credential_new(e, true, ret);
        if (r < 0)
                ade_entra_free(e);
        return r;
}

int ade_identity_credential_new(const AdeConfig *config, const AdeHttpOptions *opts, AdeCredential **ret) {
        AdeEntra *e = NULL;
        int r;

        assert(config);
        assert(ret);

        switch (config->identity.type) {
        case ADE_IDENTITY_MANAGED:
                return managed(config, opts, ret);
        case ADE_IDENTITY_CLIENT_SECRET: {
                _cleanup_secret_ AdeSecret *secret = NULL;

                if (!config->identity.client_secret_file || !config->identity.tenant_id || !config->identity.client_id)
                        return -EINVAL;
                r = ade_identity_read_client_secret(config->identity.client_secret_file, &secret);
                if (r < 0)
                        return r;
                r = ade_entra_new_secret(config->azure.authority, config->identity.tenant_id,
                        config->identity.client_id, secret, opts, &e);
                return r < 0 ? r : entra(e, ret);
        }
        case ADE_IDENTITY_CLIENT_CERTIFICATE:
                if (!config->identity.client_certificate_file || !config->identity.tenant_id ||
                        !config->identity.client_id)
                        return -EINVAL;
                r = ade_entra_new_certificate(config->azure.authority, config->identity.tenant_id,
                        config->identity.client_id, config->identity.client_certificate_file, NULL, opts, &e);
                return r < 0 ? r : entra(e, ret);
        default:
                return -EINVAL;
        }
}
