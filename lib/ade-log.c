/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdatomic.h>
#include <pthread.h>

#include "ade-log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static AdeLogFunc log_func;
static void *log_userdata;
static atomic_int log_max_level = LOG_INFO;

static _Thread_local char ctx_volume[256], ctx_job[32], ctx_step[32];

static void ctx_copy(char *dst, size_t size, const char *s) {
        snprintf(dst, size, "%s", strempty(s));
}

void ade_log_context_set(const char *volume, const char *job) {
        ctx_copy(ctx_volume, sizeof(ctx_volume), volume);
        ctx_copy(ctx_job, sizeof(ctx_job), job);
        ctx_step[0] = 0;
}

void ade_log_context_set_step(const char *step) {
        ctx_copy(ctx_step, sizeof(ctx_step), step);
}

const char *ade_log_context_volume(void) {
        return ctx_volume[0] ? ctx_volume : NULL;
}

const char *ade_log_context_job(void) {
        return ctx_job[0] ? ctx_job : NULL;
}

const char *ade_log_context_step(void) {
        return ctx_step[0] ? ctx_step : NULL;
}

void ade_log_set_callback(AdeLogFunc func, void *userdata) {
        pthread_mutex_lock(&log_lock);
        log_func = func;
        log_userdata = userdata;
        pthread_mutex_unlock(&log_lock);
}

void ade_log_set_max_level(int level) {
        if (level < LOG_EMERG)
                level = LOG_EMERG;
        if (level > LOG_DEBUG)
                level = LOG_DEBUG;
        atomic_store(&log_max_level, level);
}

int ade_log_get_max_level(void) {
        return atomic_load(&log_max_level);
}

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",
        [LOG_ALERT] = "alert",
        [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",
        [LOG_DEBUG] = "debug",
};

const char *ade_log_level_to_string(int level) {
        if (level < 0 || (size_t)level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

int ade_log_level_from_string(const char *s) {
        if (isempty(s))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcaseeq(s, level_names[i]))
                        return (int)i;
        if (strcaseeq(s, "error"))
                return LOG_ERR;
        if (strcaseeq(s, "warn"))
                return LOG_WARNING;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

/* @format with each "%m" spelled out as ADE_LOG_NO_ERROR_TEXT ("%%" kept as it is), allocated; NULL
 * when out of memory. For a message logged without an error: "%m" has nothing to expand to. */
static char *format_without_errno(const char *format) {
        size_t n = 0, extra = strlen(ADE_LOG_NO_ERROR_TEXT);
        char *out, *w;

        for (const char *p = format; *p; p++)
                if (p[0] == '%' && (p[1] == 'm' || p[1] == '%')) {
                        n += p[1] == 'm' ? extra : 2;
                        p++;
                } else
                        n++;
        out = malloc(n + 1);
        if (!out)
                return NULL;
        w = out;
        for (const char *p = format; *p; p++)
                if (p[0] == '%' && p[1] == 'm') {
                        w = mempcpy(w, ADE_LOG_NO_ERROR_TEXT, extra);
                        p++;
                } else if (p[0] == '%' && p[1] == '%') {
                        w = mempcpy(w, p, 2);
                        p++;
                } else
                        *w++ = *p;
        *w = '\0';
        return out;
}

int ade_log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        _cleanup_free_ char *own_format = NULL;
        char buf[2048];
        va_list ap;
        int saved_errno = errno;

        if (error < 0)
                error = -error;

        if (level > atomic_load(&log_max_level))
                return -error;

        /* "%m" must show the error we were handed, not whatever errno happens to hold, and never
         * "Success" for a failure logged without one. */
        if (error == 0 && strstr(format, "%m"))
                own_format = format_without_errno(format);
        errno = error;
        va_start(ap, format);
        (void)vsnprintf(buf, sizeof(buf), own_format ?: format, ap);
        va_end(ap);

        pthread_mutex_lock(&log_lock);
        if (log_func)
                log_func(level, file, line, func, buf, log_userdata);
        pthread_mutex_unlock(&log_lock);

        errno = saved_errno;
        return -error;
}
