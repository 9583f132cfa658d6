/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How many file descriptors the process has left below its soft RLIMIT_NOFILE, and what a failure
 * means when it has too few. libcryptsetup reports a failed open() inside it as EINVAL ("not a
 * LUKS device"), EIO or EBUSY (a lock it could not take): the cause, EMFILE, is lost on the way,
 * and "no LUKS header" would even be read as a fact about the device. Its callers ask here instead. */

#include <stdbool.h>

/* Descriptors an operation on a volume (libcryptsetup with its locks, a header file, blkid, the
 * state file) may need at once; fewer free than this and one of its opens may fail. */
#define ADE_FD_HEADROOM 16U

/* The descriptors free below the soft RLIMIT_NOFILE in *ret_free and that limit in *ret_limit
 * (either may be NULL; UINT_MAX for no limit). None free when even the count cannot open its
 * folder for want of one. Returns 0, or a negative errno when the count cannot be made. */
int ade_fd_free(unsigned *ret_free, unsigned *ret_limit);

/* True when fewer than ADE_FD_HEADROOM descriptors are free (false when that cannot be told). */
bool ade_fd_short(void);

/* -EMFILE when the process is short of descriptors (ade_fd_short()) and @r is a failure it may
 * have caused; @r otherwise. -ECANCELED (a stop asked for) and -ENOMEM are kept. For the result of
 * a library that loses errno. */
int ade_fd_errno(int r);

/* 0 when ADE_FD_HEADROOM descriptors are free, else -EMFILE (logged at debug level with the
 * figures): checked before an operation that must not be cut short half-way by a failed open. */
int ade_fd_check_headroom(const char *what);
