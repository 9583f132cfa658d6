/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File descriptors left to the process (ade-fd.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "ade-fd.h"
#include "ade-log.h"

int ade_fd_free(unsigned *ret_free, unsigned *ret_limit) {
        struct rlimit rl;
        unsigned limit, used = 0;
        struct dirent *de;
        DIR *d;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT_MAX ? UINT_MAX : (unsigned)rl.rlim_cur;

        d = opendir("/proc/self/fd");
        if (!d) {
                if (errno != EMFILE && errno != ENFILE)
                        return -errno;
                /* Not even one descriptor for the count. */
                if (ret_free)
                        *ret_free = 0;
                if (ret_limit)
                        *ret_limit = limit;
                return 0;
        }
        /* Only the numbers below the limit count: EMFILE means none of those is free; a descriptor
         * opened above it (before the limit was lowered) takes none of them. */
        while ((de = readdir(d))) {
                char *end;
                unsigned long fd;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                errno = 0;
                fd = strtoul(de->d_name, &end, 10);
                if (errno != 0 || *end != '\0' || (int)fd == dirfd(d))
                        continue;
                if (fd < limit)
                        used++;
        }
        closedir(d);

        if (ret_free)
                *ret_free = used < limit ? limit - used : 0;
        if (ret_limit)
                *ret_limit = limit;
        return 0;
}

bool ade_fd_short(void) {
        unsigned n;

        return ade_fd_free(&n, NULL) >= 0 && n < ADE_FD_HEADROOM;
}

int ade_fd_errno(int r) {
        if (r >= 0 || r == -EMFILE || r == -ENFILE || r == -ECANCELED || r == -ENOMEM)
                return r;
        return ade_fd_short() ? -EMFILE : r;
}

int ade_fd_check_headroom(const char *what) {
        unsigned n, limit;

        if (ade_fd_free(&n, &limit) < 0 || n >= ADE_FD_HEADROOM)
                return 0;
        return ade_log_debug_errno(
                EMFILE, "%s: only %u of %u file descriptors are free, %u are needed", what, n, limit, ADE_FD_HEADROOM);
}
