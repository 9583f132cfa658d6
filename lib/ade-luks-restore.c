/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <unistd.h>

#include "ade-log.h"
#include "ade-luks-internal.h"
#include "ade-util.h"

int ade_luks_backup_file_size(const char *device, const char *file, uint64_t *ret) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        uint64_t metadata = 0, keyslots = 0, size;
        long page = sysconf(_SC_PAGESIZE);
        int r;

        assert(device);
        assert(file);
        assert(ret);

        r = luks_load(device, file, &cd);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;
        r = crypt_get_metadata_size(cd, &metadata, &keyslots);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot read the metadata size of %s: %m", file);
        /* What crypt_header_backup() writes: both metadata copies and the keyslots area, padded to a page. */
        size = 2 * metadata + keyslots;
        if (page > 0)
                size = (size + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
        *ret = size;
        return 0;
}

int ade_luks_restore_header(const char *device, const char *file) {
        _cleanup_crypt_ struct crypt_device *cd = NULL;
        int r;

        assert(device);
        assert(file);

        r = luks_init(device, NULL, &cd);
        if (r < 0)
                return r;
        r = crypt_header_restore(cd, CRYPT_LUKS2, file);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot write the header %s onto %s: %m", file, device);
        ade_log_debug("Header %s written onto %s", file, device);
        return 0;
}
