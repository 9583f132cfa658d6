/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The varlink client: one call at a time on one connection, waiting for its replies with poll(). */
#include <assert.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ade-io.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-varlink-stream.h"
#include "ade-varlink.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

struct AdeVarlinkClient {
        AdeVarlinkStream stream;
        uint64_t timeout;
        bool broken; /* a call failed midway: the next reply could be read as another call's */
};

#define CLIENT_TIMEOUT_DEFAULT (45ULL * 1000000ULL)

int ade_varlink_client_connect(const char *path, AdeVarlinkClient **ret) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        AdeVarlinkClient *c;
        uint64_t deadline;

        assert(path);
        assert(ret);

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A blocking connect() to a server whose backlog is full would wait forever; a non-blocking
         * one fails with EAGAIN, so retry for as long as a reply may take. */
        deadline = ade_now_monotonic_usec() + CLIENT_TIMEOUT_DEFAULT;
        while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return ade_log_debug_errno(errno, "varlink: cannot connect to %s: %m", path);
                if (ade_now_monotonic_usec() >= deadline)
                        return ade_log_debug_errno(ETIMEDOUT, "varlink: %s accepts no connections", path);
                (void)poll(NULL, 0, 10);
        }

        c = calloc(1, sizeof(AdeVarlinkClient));
        if (!c)
                return -ENOMEM;
        ade_varlink_stream_init(&c->stream, TAKE_FD(fd));
        c->timeout = CLIENT_TIMEOUT_DEFAULT;
        *ret = c;
        return 0;
}

AdeVarlinkClient *ade_varlink_client_free(AdeVarlinkClient *c) {
        if (!c)
                return NULL;
        ade_varlink_stream_done(&c->stream);
        return mfree(c);
}

void ade_varlink_client_set_timeout(AdeVarlinkClient *c, uint64_t usec) {
        c->timeout = usec;
}

int ade_varlink_client_get_fd(AdeVarlinkClient *c) {
        return c->stream.fd;
}

static void client_break(AdeVarlinkClient *c) {
        c->broken = true;
        if (c->stream.fd >= 0)
                (void)shutdown(c->stream.fd, SHUT_RDWR);
}

/* Waits for @events until @deadline (0: forever). Returns 0, -ETIMEDOUT or -errno. */
static int client_wait(AdeVarlinkClient *c, short events, uint64_t deadline) {
        struct pollfd p = {.fd = c->stream.fd, .events = events};
        int ms = -1, r;

        if (deadline > 0) {
                uint64_t n = ade_now_monotonic_usec();

                if (n >= deadline)
                        return -ETIMEDOUT;
                ms = (int)MIN((deadline - n + 999) / 1000, (uint64_t)INT32_MAX);
        }
        r = poll(&p, 1, ms);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (r == 0)
                return -ETIMEDOUT;
        return 0;
}

static int client_send(AdeVarlinkClient *c, const char *method, json_object *parameters, const char *flag) {
        _cleanup_json_ json_object *msg = NULL;
        uint64_t deadline;
        int r;

        assert(c);
        assert(method);

        if (c->broken)
                return -ENOTCONN;
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;

        msg = json_object_new_object();
        if (!msg)
                return -ENOMEM;
        r = ade_json_add_string(msg, "method", method);
        if (r < 0)
                return r;
        if (parameters && json_object_object_add(msg, "parameters", json_object_get(parameters)) < 0)
                return -ENOMEM;
        if (flag && json_object_object_add(msg, flag, json_object_new_boolean(true)) < 0)
                return -ENOMEM;

        r = ade_varlink_stream_queue(&c->stream, msg);
        if (r < 0)
                return r;

        deadline = c->timeout > 0 ? ade_now_monotonic_usec() + c->timeout : 0;
        for (;;) {
                r = ade_varlink_stream_flush(&c->stream);
                if (r >= 0)
                        return 0;
                if (r == -EAGAIN)
                        r = client_wait(c, POLLOUT, deadline);
                else if (r == -EPIPE)
                        r = -ECONNRESET;
                if (r < 0) {
                        client_break(c);
                        return r;
                }
        }
}

/* Reads one reply. Returns 0 with the message, or a negative errno (the connection is then broken). */
static int client_receive(AdeVarlinkClient *c, json_object **ret_msg) {
        uint64_t deadline = c->timeout > 0 ? ade_now_monotonic_usec() + c->timeout : 0;
        int r;

        for (;;) {
                const char *buf;
                size_t len;

                r = ade_varlink_stream_peek(&c->stream, &buf, &len);
                if (r > 0) {
                        json_object *msg = NULL;

                        r = ade_json_parse(buf, len, &msg);
                        ade_varlink_stream_consume(&c->stream);
                        if (r < 0 || !json_object_is_type(msg, json_type_object)) {
                                json_object_put(msg);
                                client_break(c);
                                return -EBADMSG;
                        }
                        *ret_msg = msg;
                        return 0;
                }
                if (r == 0) {
                        r = ade_varlink_stream_read(&c->stream);
                        if (r > 0)
                                continue;
                        if (r == 0)
                                r = -ECONNRESET;
                        else if (r == -EAGAIN)
                                r = client_wait(c, POLLIN, deadline);
                }
                if (r < 0) {
                        client_break(c);
                        return r;
                }
        }
}

/* Splits a reply into its parts; *ret_parameters always gets an object. */
static int reply_parse(json_object *msg, json_object **ret_parameters, const char **ret_error, bool *ret_continues) {
        json_object *p = NULL;
        const char *error = NULL;
        bool continues = false;
        int r;

        r = ade_json_get_string(msg, "error", &error);
        if (r < 0 && r != -ENOENT)
                return -EBADMSG;
        r = ade_json_get_bool(msg, "continues", &continues);
        if (r < 0 && r != -ENOENT)
                return -EBADMSG;
        if (json_object_object_get_ex(msg, "parameters", &p) && p) {
                if (!json_object_is_type(p, json_type_object))
                        return -EBADMSG;
                json_object_get(p);
        } else {
                p = json_object_new_object();
                if (!p)
                        return -ENOMEM;
        }
        *ret_parameters = p;
        *ret_error = error;
        *ret_continues = continues;
        return 0;
}

int ade_varlink_client_call(AdeVarlinkClient *c, const char *method, json_object *parameters,
        json_object **ret_parameters, char **ret_error) {
        _cleanup_json_ json_object *msg = NULL, *p = NULL;
        _cleanup_free_ char *error_copy = NULL;
        const char *error;
        bool continues;
        int r;

        r = client_send(c, method, parameters, NULL);
        if (r < 0)
                return r;
        r = client_receive(c, &msg);
        if (r < 0)
                return r;
        r = reply_parse(msg, &p, &error, &continues);
        if (r >= 0 && continues)
                r = -EBADMSG;
        if (r < 0) {
                client_break(c);
                return r;
        }

        if (ret_error && error) {
                error_copy = strdup(error);
                if (!error_copy)
                        return -ENOMEM;
        }
        if (ret_error)
                *ret_error = TAKE_PTR(error_copy);
        if (ret_parameters)
                *ret_parameters = TAKE_PTR(p);
        return 0;
}

int ade_varlink_client_call_more(AdeVarlinkClient *c, const char *method, json_object *parameters,
        AdeVarlinkReplyFunc callback, void *userdata) {
        int r;

        assert(callback);

        r = client_send(c, method, parameters, "more");
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_json_ json_object *msg = NULL, *p = NULL;
                const char *error;
                bool continues;

                r = client_receive(c, &msg);
                if (r < 0)
                        return r;
                r = reply_parse(msg, &p, &error, &continues);
                if (r < 0) {
                        client_break(c);
                        return r;
                }
                /* An error always ends the call, whatever "continues" says. */
                if (error)
                        continues = false;
                r = callback(p, error, continues ? ADE_VARLINK_REPLY_CONTINUES : 0, userdata);
                if (r < 0) {
                        /* Closing is the only way to cancel a varlink call. */
                        client_break(c);
                        return r;
                }
                if (!continues)
                        return 0;
        }
}

typedef struct Collect {
        json_object *replies;
        char *error;
} Collect;

static int collect_one(json_object *parameters, const char *error, unsigned flags, void *userdata) {
        Collect *col = userdata;

        if (json_object_array_length(col->replies) >= 64 * 1024)
                return -E2BIG;
        if (error) {
                col->error = strdup(error);
                if (!col->error)
                        return -ENOMEM;
        }
        if (json_object_array_add(col->replies, json_object_get(parameters)) < 0) {
                json_object_put(parameters);
                return -ENOMEM;
        }
        return 0;
}

int ade_varlink_client_collect(
        AdeVarlinkClient *c, const char *method, json_object *parameters, json_object **ret_replies, char **ret_error) {
        Collect col = {};
        int r;

        col.replies = json_object_new_array();
        if (!col.replies)
                return -ENOMEM;
        r = ade_varlink_client_call_more(c, method, parameters, collect_one, &col);
        if (r < 0) {
                json_object_put(col.replies);
                free(col.error);
                return r;
        }
        if (ret_replies)
                *ret_replies = col.replies;
        else
                json_object_put(col.replies);
        if (ret_error)
                *ret_error = col.error;
        else
                free(col.error);
        return 0;
}

int ade_varlink_client_send_oneway(AdeVarlinkClient *c, const char *method, json_object *parameters) {
        return client_send(c, method, parameters, "oneway");
}
