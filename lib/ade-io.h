/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ade-util.h"

/* Small I/O and time helpers that several modules need, defined once. */

/* Microseconds on CLOCK_MONOTONIC: for intervals, timeouts and rates (never goes back). */
uint64_t ade_now_monotonic_usec(void);

/* Microseconds on CLOCK_REALTIME: for timestamps that outlive the process (the state file's
 * "updated" stamps, backups' names), comparable across reboots. */
uint64_t ade_now_realtime_usec(void);

/* @realtime_usec (CLOCK_REALTIME) as RFC 3339 in UTC, to the second: "2026-12-07T18:31:19Z".
 * Returns 0, or -EINVAL for a time gmtime() cannot take. */
#define ADE_RFC3339_SIZE sizeof("YYYY-MM-DDTHH:MM:SSZ")
int ade_format_rfc3339(uint64_t realtime_usec, char ret[static ADE_RFC3339_SIZE]);

/* Writes all @n bytes of @p to @fd, retrying after EINTR and short writes. Returns 0 or -errno. */
int ade_write_all(int fd, const void *p, size_t n);

/* Replaces *@field with a copy of @value (NULL clears it), freeing the old string. Returns 0 or
 * -ENOMEM, leaving *@field as it was on failure. */
int ade_strdup_to(char **field, const char *value);

/* fsync()s @path (a folder when @directory). Returns 0 or -errno. */
int ade_fsync_path(const char *path, bool directory);

/* fsync()s the folder that holds @path, so that a new or renamed entry survives a power cut. */
int ade_fsync_parent(const char *path);

/* Creates the folder @dir with mode 0700 when missing. -ENOTDIR when @dir exists and is not a folder. */
int ade_mkdir_private(const char *dir);

/* Replaces @path atomically with @size bytes of @data and @mode: a temporary file in the same
 * folder, written and fsynced, renamed over @path, then the folder fsynced. A reader sees the old
 * file or the new one, never a mix; after a power cut one of the two is on disk. Returns 0 or
 * -errno (the temporary file is removed on failure). */
int ade_write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Reads the whole file @path: 0 with its bytes in *ret (NUL-terminated, *ret_size without the NUL;
 * optional) and its permission bits in *ret_mode (optional), or -errno (-ENOENT when missing). */
int ade_read_file(const char *path, char **ret, size_t *ret_size, mode_t *ret_mode);

/* Keeps @size bytes of @data (a file's old contents, before ade changes it) in a new file
 * "<path>.ade-<UTC time>" with @mode ("<path>.ade-<UTC time>.<N>" when that exists: never over an
 * earlier backup), written as ade_write_file_atomic() writes. Returns 0 and its name in
 * *ret_backup (optional), or -errno. */
int ade_write_backup(const char *path, const void *data, size_t size, mode_t mode, char **ret_backup);

/* A descriptor a child process receives: @fd becomes @target in the child (dup2(), so the copy stays
 * open across exec). */
typedef struct AdeSpawnFd {
        int fd;
        int target;
} AdeSpawnFd;

/* Starts the program @path with @argv and the caller's environment (posix_spawn(): no shell, no
 * fork of a large address space). In the child stdin reads /dev/null, each of the @n_fds entries of
 * @fds is dup2()ed onto its target, and every descriptor the caller opened O_CLOEXEC is closed; the
 * callers open theirs so. With @blocked the child starts with those signals blocked (a program that
 * must not be stopped half-way: only SIGKILL ends it early); with NULL it inherits the calling
 * thread's mask. Returns 0 and the child's pid in *ret_pid, or a negative errno. The caller reaps the
 * child with ade_spawn_wait(). */
int ade_spawn(const char *path, char *const argv[], const AdeSpawnFd *fds, size_t n_fds, const sigset_t *blocked,
        pid_t *ret_pid);

/* Waits for the child @pid to end, retrying after EINTR. Returns 0 and its wait status (see
 * waitpid(2)) in *ret_status, or a negative errno. */
int ade_spawn_wait(pid_t pid, int *ret_status);
