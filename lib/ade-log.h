/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <syslog.h>

#include "ade-util.h"

/* libade never prints. Every message goes through one process-wide callback that the program
 * installs: aded sends it to the journal, adectl to stderr, the tests to a buffer. Without a
 * callback messages are dropped. Levels are syslog's (LOG_ERR ... LOG_DEBUG).
 *
 * The library itself logs at LOG_DEBUG only: it returns errors to its caller, and the caller
 * decides what a person reads. Secrets must never be passed to these functions. */

/* @file, @line and @func say where the message was logged: the caller of ade_log_*() (the
 * __FILE__, __LINE__ and __func__ there). aded's journal sink sends them as CODE_FILE=, CODE_LINE=
 * and CODE_FUNC=, the fields journalctl and systemd's own log functions use. */
typedef void (*AdeLogFunc)(
        int level, const char *file, int line, const char *func, const char *message, void *userdata);

/* What the messages of this thread are about, for structured logs: a volume (its device), the job on
 * it ("encrypt", "decrypt", "rotate", "unlock") and the job's step (the state file's names). aded's
 * journal sink sends them as ADE_VOLUME=, ADE_JOB= and ADE_STEP=, so that "journalctl
 * ADE_VOLUME=/dev/sdc" shows one volume's history. Per thread; copied (cut at 255 bytes); NULL or
 * an empty string clears. ade_log_context_set() clears the step too. */
void ade_log_context_set(const char *volume, const char *job);
void ade_log_context_set_step(const char *step);
/* The current thread's, or NULL where none is set. */
const char *ade_log_context_volume(void);
const char *ade_log_context_job(void);
const char *ade_log_context_step(void);

/* Installs @func (NULL to drop everything) with @userdata, and the most verbose level passed on. */
void ade_log_set_callback(AdeLogFunc func, void *userdata);
void ade_log_set_max_level(int level);
int ade_log_get_max_level(void);

/* Parses "err", "warning", "info", "debug" (or a syslog number). Returns the level or -EINVAL. */
int ade_log_level_from_string(const char *s);
const char *ade_log_level_to_string(int level);

/* Formats and delivers a message. When @error is non-zero, "%m" expands to strerror(|error|); when it
 * is 0, "%m" expands to ADE_LOG_NO_ERROR_TEXT (strerror(0) would say "Success" in a failure message).
 * Returns -|error| so that callers can write "return ade_log_debug_errno(r, ...)". */
#define ADE_LOG_NO_ERROR_TEXT "unknown error"
int ade_log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define ade_log_full_errno(level, error, ...)                                                                          \
        ade_log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)

#define ade_log_debug(...) (void)ade_log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define ade_log_info(...) (void)ade_log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define ade_log_notice(...) (void)ade_log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define ade_log_warning(...) (void)ade_log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define ade_log_error(...) (void)ade_log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define ade_log_debug_errno(error, ...) ade_log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define ade_log_info_errno(error, ...) ade_log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define ade_log_warning_errno(error, ...) ade_log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define ade_log_error_errno(error, ...) ade_log_full_errno(LOG_ERR, (error), __VA_ARGS__)
