/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The varlink server on sd-event: listening sockets, connections (each on its own
 * ade-varlink-stream, so that a peer that does not read stalls nobody else), calls answered in
 * order, their checks (access policy, then the IDL), and org.varlink.service. */
#include <assert.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "ade-fd.h"
#include "ade-io.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-utf8.h"
#include "ade-varlink-idl.h"
#include "ade-varlink-stream.h"
#include "ade-varlink.h"

/* Above this much unsent output the next pipelined call waits until the peer reads. */
#define OUTPUT_HIGH (256U * 1024U)
/* Calls dispatched from one connection before the loop serves the others. */
#define DISPATCH_BUDGET 32U
/* Connections of peers other than root closed to let root in when descriptors run out: its own and
 * a few for what its call opens (Show reads the devices). */
#define ROOT_SHED 8U

/* clang-format off */
static const char service_idl[] =
        "# The Varlink Service Interface is provided by every varlink service. It\n"
        "# describes the service and the interfaces it implements.\n"
        "interface org.varlink.service\n"
        "\n"
        "# Get a list of all the interfaces a service provides and information\n"
        "# about the implementation.\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "# Get the description of an interface that is implemented by this service.\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "# The requested interface was not found.\n"
        "error InterfaceNotFound (interface: string)\n"
        "\n"
        "# The requested method was not found\n"
        "error MethodNotFound (method: string)\n"
        "\n"
        "# The interface defines the requested method, but the service does not\n"
        "# implement it.\n"
        "error MethodNotImplemented (method: string)\n"
        "\n"
        "# One of the passed parameters is invalid.\n"
        "error InvalidParameter (parameter: string)\n"
        "\n"
        "# Client is denied access\n"
        "error PermissionDenied ()\n"
        "\n"
        "# Method is expected to be called with 'more' set to true, but wasn't\n"
        "error ExpectedMore ()\n";
/* clang-format on */

typedef struct Binding {
        char *method;                     /* fully qualified */
        const AdeVarlinkInterface *iface; /* owned by the server */
        AdeVarlinkMethod callback;
        unsigned flags;
        void *userdata;
} Binding;

typedef struct Listener {
        int fd;
        sd_event_source *source;
} Listener;

typedef struct Connection Connection;

struct AdeVarlinkCall {
        unsigned n_ref;
        Connection *conn; /* NULL once answered or once the peer is gone */
        char *method;
        size_t method_len;                /* a peer's name may hold a NUL (\u0000): then strlen() is shorter */
        const AdeVarlinkInterface *iface; /* set once the method is found */
        unsigned flags;
        bool done;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        void *userdata;
        AdeVarlinkDisconnect disconnect;
};

struct Connection {
        AdeVarlinkServer *server;
        Connection *prev, *next;
        AdeVarlinkStream stream; /* the socket, its framing and its buffers */
        sd_event_source *io, *defer;
        sd_event_source *timer; /* the idle or partial-message deadline; NULL until first needed */
        uint64_t idle_since;    /* CLOCK_MONOTONIC µs since nothing is running, buffered or unsent; 0: busy */
        uint64_t partial_since; /* since a message began to arrive and is incomplete; 0: none */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        gid_t *groups;
        size_t n_groups;

        AdeVarlinkCall *current; /* the call being answered; later calls wait in the input buffer */
        bool read_eof;           /* the peer will send nothing more (it may still read) */
        bool write_dead;         /* the peer is gone: nothing can be sent */
        bool dead;               /* drop the connection at the next chance */
        bool processing;         /* inside connection_process(): do not recurse */
};

struct AdeVarlinkServer {
        sd_event *event;
        Listener *listeners;
        size_t n_listeners;
        Connection *connections;
        unsigned n_connections;
        AdeVarlinkInterface **interfaces;
        size_t n_interfaces;
        Binding *bindings;
        size_t n_bindings;
        char *vendor, *product, *version, *url;
        gid_t group;
        AdeVarlinkLimits limits;
        AdeVarlinkBudget budget_all, budget_unprivileged;
        json_object *empty; /* {} handed to methods called without parameters */
        bool validate_replies;
        sd_event_source *accept_retry; /* listeners paused after EMFILE and friends */
        int reserve_fd;                /* /dev/null, closed to take a connection when none is free */
        bool fd_short;                 /* out of descriptors since the last connection taken normally */
        AdeVarlinkFdShort fd_short_callback;
        void *fd_short_userdata;
};

/* ---- calls ------------------------------------------------------------------------------------ */

AdeVarlinkCall *ade_varlink_call_ref(AdeVarlinkCall *call) {
        if (call)
                call->n_ref++;
        return call;
}

AdeVarlinkCall *ade_varlink_call_unref(AdeVarlinkCall *call) {
        if (!call)
                return NULL;
        assert(call->n_ref > 0);
        if (--call->n_ref > 0)
                return NULL;
        free(call->method);
        return mfree(call);
}

const char *ade_varlink_call_get_method(AdeVarlinkCall *call) {
        return call->method;
}

unsigned ade_varlink_call_get_flags(AdeVarlinkCall *call) {
        return call->flags;
}

uid_t ade_varlink_call_get_peer_uid(AdeVarlinkCall *call) {
        return call->uid;
}

gid_t ade_varlink_call_get_peer_gid(AdeVarlinkCall *call) {
        return call->gid;
}

pid_t ade_varlink_call_get_peer_pid(AdeVarlinkCall *call) {
        return call->pid;
}

static bool connection_in_group(const Connection *c, gid_t gid) {
        if (gid == (gid_t)-1)
                return false;
        if (c->gid == gid)
                return true;
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == gid)
                        return true;
        return false;
}

bool ade_varlink_call_peer_in_group(AdeVarlinkCall *call, gid_t gid) {
        if (gid == (gid_t)-1)
                return false;
        if (call->gid == gid)
                return true;
        /* The supplementary groups live with the connection; once it is gone only the primary gid is known. */
        return call->conn && connection_in_group(call->conn, gid);
}

void ade_varlink_call_set_userdata(AdeVarlinkCall *call, void *userdata) {
        call->userdata = userdata;
}

void *ade_varlink_call_get_userdata(AdeVarlinkCall *call) {
        return call->userdata;
}

void ade_varlink_call_set_disconnect_callback(AdeVarlinkCall *call, AdeVarlinkDisconnect callback) {
        call->disconnect = callback;
}

bool ade_varlink_call_is_pending(AdeVarlinkCall *call) {
        return call && call->conn && !call->done && !call->conn->write_dead && !call->conn->dead;
}

/* ---- connections: output and replies ---------------------------------------------------------- */

static void connection_schedule(Connection *c) {
        if (!c->processing)
                (void)sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

static void connection_kill(Connection *c, const char *why) {
        if (!c->dead)
                ade_log_debug("varlink: dropping connection of pid %d uid %u: %s", (int)c->pid, (unsigned)c->uid, why);
        c->dead = true;
        connection_schedule(c);
}

static int connection_flush(Connection *c) {
        int r;

        r = ade_varlink_stream_flush(&c->stream);
        if (r >= 0 || r == -EAGAIN)
                return 0;
        c->write_dead = true;
        connection_kill(c, "write failed");
        return r;
}

static bool valid_error_name(const char *s) {
        if (isempty(s) || !strchr(s, '.'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                            *p == '_' || *p == '-'))
                        return false;
        return true;
}

static void call_finish(AdeVarlinkCall *call) {
        Connection *c = call->conn;

        call->done = true;
        call->conn = NULL;
        if (c && c->current == call) {
                c->current = NULL;
                connection_schedule(c);
                ade_varlink_call_unref(call); /* the connection's reference */
        }
}

static int call_send(AdeVarlinkCall *call, const char *error, json_object *parameters, bool continues);

/* With reply validation on: does this reply match the method's output, or this error its declaration
 * (for errors of the method's own interface)? A mismatch is a bug in the service; the caller gets an
 * ADE_VARLINK_ERROR_SYSTEM naming the field instead, and the method -EBADMSG. */
static int call_check_reply(AdeVarlinkCall *call, const char *error, json_object *parameters) {
        const char *iname = ade_varlink_interface_get_name(call->iface), *e;
        _cleanup_free_ char *field = NULL;
        _cleanup_json_ json_object *p = NULL;
        char message[512];
        int r;

        if (error && streq(error, ADE_VARLINK_ERROR_SYSTEM))
                return 0; /* our own replacement for a reply that failed this check */
        if (!error)
                r = ade_varlink_interface_validate_output(
                        call->iface, call->method + strlen(iname) + 1, parameters, &field);
        else if ((e = startswith(error, iname)) && *e == '.')
                r = ade_varlink_interface_validate_error(call->iface, e + 1, parameters, &field);
        else
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                return 0;

        snprintf(message, sizeof(message), "%s of %s does not match the interface%s%s", error ?: "reply", call->method,
                field ? ": field " : " (undeclared error)", field ?: "");
        ade_log_debug("varlink: %s", message);
        p = json_object_new_object();
        if (p) {
                (void)json_object_object_add(p, "errno", json_object_new_int(EBADMSG));
                (void)json_object_object_add(p, "message", json_object_new_string(message));
        }
        (void)call_send(call, ADE_VARLINK_ERROR_SYSTEM, p, false);
        return -EBADMSG;
}

/* Queues one reply message: {"error":...,"parameters":...,"continues":true}. */
static int call_send(AdeVarlinkCall *call, const char *error, json_object *parameters, bool continues) {
        _cleanup_json_ json_object *msg = NULL;
        Connection *c;
        int r;

        if (!call)
                return -EINVAL;
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;
        if (error && !valid_error_name(error))
                return -EINVAL;
        if (continues && !(call->flags & ADE_VARLINK_METHOD_MORE))
                return -EPROTO;
        if (call->flags & ADE_VARLINK_METHOD_ONEWAY)
                return 0;
        if (call->done)
                return -EALREADY;
        c = call->conn;
        if (!c || c->write_dead || c->dead)
                return -ENOTCONN;

        if (c->server->validate_replies && call->iface) {
                r = call_check_reply(call, error, parameters);
                if (r < 0)
                        return r;
        }

        msg = json_object_new_object();
        if (!msg)
                return -ENOMEM;
        if (error && ade_json_add_string(msg, "error", error) < 0)
                return -ENOMEM;
        if (json_object_object_add(
                    msg, "parameters", parameters ? json_object_get(parameters) : json_object_new_object()) < 0)
                return -ENOMEM;
        if (continues && json_object_object_add(msg, "continues", json_object_new_boolean(true)) < 0)
                return -ENOMEM;
        r = ade_varlink_stream_queue(&c->stream, msg);
        if (r < 0) {
                /* A peer that does not read while we keep producing is dropped, not buffered forever. */
                connection_kill(c, r == -ENOBUFS
                                           ? "output buffer full (peer does not read) or buffers of its peers full"
                                   : r == -E2BIG ? "reply exceeds 16 MiB"
                                                 : "out of memory");
                return r;
        }

        if (!continues)
                call_finish(call);

        (void)connection_flush(c);
        /* Let the loop update the poll mask (EPOLLOUT for what is left) or drop a dead connection. */
        connection_schedule(c);
        return 0;
}

int ade_varlink_reply(AdeVarlinkCall *call, json_object *parameters) {
        return call_send(call, NULL, parameters, false);
}

int ade_varlink_notify(AdeVarlinkCall *call, json_object *parameters) {
        return call_send(call, NULL, parameters, true);
}

int ade_varlink_error(AdeVarlinkCall *call, const char *error, json_object *parameters) {
        if (!error)
                return -EINVAL;
        return call_send(call, error, parameters, false);
}

static int call_error_string(AdeVarlinkCall *call, const char *error, const char *key, const char *value) {
        _cleanup_json_ json_object *p = NULL;

        p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        if (key && json_object_object_add(p, key, json_object_new_string(value ?: "")) < 0)
                return -ENOMEM;
        return ade_varlink_error(call, error, p);
}

int ade_varlink_error_invalid_parameter(AdeVarlinkCall *call, const char *name) {
        return call_error_string(call, ADE_VARLINK_ERROR_INVALID_PARAMETER, "parameter", name);
}

int ade_varlink_error_errno(AdeVarlinkCall *call, int r) {
        return call_error_string(call, ADE_VARLINK_ERROR_SYSTEM, "message", strerror(-r));
}

/* ---- connections: lifecycle -------------------------------------------------------------------- */

static void server_refill_reserve(AdeVarlinkServer *s);

static void connection_free(Connection *c) {
        AdeVarlinkServer *s = c->server;
        AdeVarlinkCall *call;

        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;

        c->io = sd_event_source_disable_unref(c->io);
        c->defer = sd_event_source_disable_unref(c->defer);
        c->timer = sd_event_source_disable_unref(c->timer);

        call = TAKE_PTR(c->current);
        if (call) {
                call->conn = NULL;
                if (!call->done && call->disconnect)
                        call->disconnect(call, call->userdata);
                ade_varlink_call_unref(call);
        }

        ade_varlink_stream_done(&c->stream);
        free(c->groups);
        free(c);
        /* The reserve spent on a connection while none was free: this one's descriptor is back. */
        server_refill_reserve(s);
}

/* Reads one chunk. Returns the number of bytes read, 0 when none came (EOF, EAGAIN, an error). */
static size_t connection_read(Connection *c) {
        int r;

        if (c->read_eof || c->dead)
                return 0;

        r = ade_varlink_stream_read(&c->stream);
        if (r > 0)
                return (size_t)r;
        if (r == 0)
                c->read_eof = true;
        else if (r == -E2BIG)
                connection_kill(c, "message exceeds 16 MiB");
        else if (r == -ENOMEM)
                connection_kill(c, "out of memory");
        else if (r == -ENOBUFS)
                connection_kill(c, "buffers of its peers are full");
        else if (r != -EAGAIN) {
                c->write_dead = c->read_eof = true;
                connection_kill(c, "read failed");
        }
        return 0;
}

static int connection_dispatch(Connection *c, const char *buf, size_t len);

static void connection_process(Connection *c) {
        unsigned budget = DISPATCH_BUDGET;

        c->processing = true;
        while (!c->dead && !c->current && (c->write_dead || budget-- > 0)) {
                const char *buf;
                size_t len;
                int r;

                /* Pipelined calls wait while the peer has not read what we already sent. */
                if (!c->write_dead && ade_varlink_stream_output_pending(&c->stream) > OUTPUT_HIGH)
                        break;

                r = ade_varlink_stream_peek(&c->stream, &buf, &len);
                if (r == -E2BIG) {
                        connection_kill(c, "message exceeds 16 MiB");
                        break;
                }
                if (r <= 0)
                        break;

                (void)connection_dispatch(c, buf, len);
                ade_varlink_stream_consume(&c->stream);
        }
        c->processing = false;
}

static int on_connection_timer(sd_event_source *source, uint64_t usec, void *userdata);

/* Sets (or stops) the one deadline @c may have: a peer other than root that keeps a connection open
 * with nothing going on holds a descriptor and a connection slot for nothing; a message that never
 * ends holds its buffer. Either way the connection is dropped at the deadline. */
static void connection_arm_timer(Connection *c, bool have_message, bool out_pending) {
        const AdeVarlinkLimits *l = &c->server->limits;
        bool idle, partial;
        uint64_t now, deadline = UINT64_MAX;

        idle = c->uid != 0 && l->idle_timeout_usec > 0 && !c->current && !out_pending &&
               ade_varlink_stream_input_pending(&c->stream) == 0;
        partial = l->partial_timeout_usec > 0 && !have_message && ade_varlink_stream_input_pending(&c->stream) > 0;
        if (!idle && !partial) {
                c->idle_since = c->partial_since = 0;
                if (c->timer)
                        (void)sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return;
        }

        if (sd_event_now(c->server->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (!idle)
                c->idle_since = 0;
        else if (c->idle_since == 0)
                c->idle_since = now;
        if (!partial)
                c->partial_since = 0;
        else if (c->partial_since == 0)
                c->partial_since = now;
        if (idle)
                deadline = c->idle_since + l->idle_timeout_usec;
        if (partial && c->partial_since + l->partial_timeout_usec < deadline)
                deadline = c->partial_since + l->partial_timeout_usec;

        if (!c->timer) {
                if (sd_event_add_time(
                            c->server->event, &c->timer, CLOCK_MONOTONIC, deadline, 0, on_connection_timer, c) < 0)
                        ade_log_debug(
                                "varlink: no timer for the connection of pid %d: it has no deadline", (int)c->pid);
                return;
        }
        (void)sd_event_source_set_time(c->timer, deadline);
        (void)sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* Frees @c when it is finished, or updates what the loop waits for. Called at the end of each event. */
static void connection_settle(Connection *c) {
        bool have_message, out_pending;
        uint32_t events = 0;

        if (c->dead || c->write_dead) {
                connection_free(c);
                return;
        }

        /* One over the cap counts too: processing it drops the connection. */
        have_message = ade_varlink_stream_peek(&c->stream, NULL, NULL) != 0;
        out_pending = ade_varlink_stream_output_pending(&c->stream) > 0;

        if (c->read_eof && !c->current && !have_message && !out_pending) {
                /* The peer half-closed and has every answer: done. */
                connection_free(c);
                return;
        }

        /* Keep reading while no complete message waits, so that a hang-up is noticed; once one waits
         * (behind a pending call or unread output) stop, which bounds the memory a pipelining peer
         * can make us hold. EPOLLHUP is reported regardless of the mask. */
        if (!c->read_eof && !have_message)
                events |= EPOLLIN;
        if (out_pending)
                events |= EPOLLOUT;
        (void)sd_event_source_set_io_events(c->io, events);

        /* A message already buffered and nothing blocking it: dispatch on the next iteration. */
        if (have_message && !c->current && ade_varlink_stream_output_pending(&c->stream) <= OUTPUT_HIGH)
                connection_schedule(c);

        connection_arm_timer(c, have_message, out_pending);
}

static int on_connection_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Connection *c = userdata;

        connection_kill(c, c->partial_since > 0 && usec >= c->partial_since + c->server->limits.partial_timeout_usec
                                   ? "message incomplete for too long"
                                   : "idle for too long");
        connection_settle(c);
        return 0;
}

static int on_connection_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;

        if (revents & (EPOLLHUP | EPOLLERR)) {
                /* The peer is gone. Take what it sent last: oneway calls in it still run. */
                while (connection_read(c) > 0)
                        ;
                c->read_eof = true;
                c->write_dead = true;
        } else {
                if (revents & EPOLLIN)
                        (void)connection_read(c);
                if (revents & EPOLLOUT)
                        (void)connection_flush(c);
        }

        connection_process(c);
        connection_settle(c);
        return 0;
}

static int on_connection_defer(sd_event_source *source, void *userdata) {
        Connection *c = userdata;

        connection_process(c);
        connection_settle(c);
        return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------------ */

static const AdeVarlinkInterface *server_find_interface(AdeVarlinkServer *s, const char *name, size_t len) {
        for (size_t i = 0; i < s->n_interfaces; i++) {
                const char *n = ade_varlink_interface_get_name(s->interfaces[i]);

                if (strlen(n) == len && strncmp(n, name, len) == 0)
                        return s->interfaces[i];
        }
        return NULL;
}

static const Binding *server_find_binding(AdeVarlinkServer *s, const char *method) {
        for (size_t i = 0; i < s->n_bindings; i++)
                if (streq(s->bindings[i].method, method))
                        return &s->bindings[i];
        return NULL;
}

static bool connection_allowed(Connection *c, unsigned flags) {
        if (flags & ADE_VARLINK_BIND_ROOT_ONLY)
                return c->uid == 0;
        if (flags & ADE_VARLINK_BIND_ROOT_OR_GROUP)
                return c->uid == 0 || connection_in_group(c, c->server->group);
        return true;
}

/* Checks the call in order: interface, method, binding, permission, "more", parameters; then runs it.
 * @key_nul: a key of the message held a NUL, which json-c cut the key at. */
static int call_run(Connection *c, AdeVarlinkCall *call, json_object *parameters, bool key_nul) {
        AdeVarlinkServer *s = c->server;
        _cleanup_free_ char *field = NULL;
        const AdeVarlinkInterface *iface;
        const Binding *b;
        const char *dot;
        int r;

        /* A name that is not text names no method: matching what precedes a NUL would run another
         * method than the one asked for. The answer repeats the name whole. */
        if (strlen(call->method) != call->method_len || !ade_utf8_valid(call->method, call->method_len)) {
                _cleanup_json_ json_object *p = json_object_new_object();

                if (!p || json_object_object_add(
                                  p, "method", json_object_new_string_len(call->method, (int)call->method_len)) < 0)
                        return -ENOMEM;
                return ade_varlink_error(call, ADE_VARLINK_ERROR_METHOD_NOT_FOUND, p);
        }

        dot = strrchr(call->method, '.');
        if (!dot || dot == call->method)
                return call_error_string(call, ADE_VARLINK_ERROR_METHOD_NOT_FOUND, "method", call->method);

        iface = server_find_interface(s, call->method, dot - call->method);
        if (!iface) {
                _cleanup_free_ char *name = strndup(call->method, dot - call->method);

                if (!name)
                        return -ENOMEM;
                return call_error_string(call, ADE_VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", name);
        }
        if (!ade_varlink_interface_has_method(iface, dot + 1))
                return call_error_string(call, ADE_VARLINK_ERROR_METHOD_NOT_FOUND, "method", call->method);
        call->iface = iface;

        b = server_find_binding(s, call->method);
        if (!b)
                return call_error_string(call, ADE_VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, "method", call->method);

        if (!connection_allowed(c, b->flags)) {
                char name[256];

                ade_log_debug("varlink: %s refused to uid %u", call->method, (unsigned)c->uid);
                if (ade_varlink_interface_has_error(iface, "PermissionDenied") &&
                        snprintf(name, sizeof(name), "%s.PermissionDenied", ade_varlink_interface_get_name(iface)) <
                                (int)sizeof(name))
                        return ade_varlink_error(call, name, NULL);
                return ade_varlink_error(call, ADE_VARLINK_ERROR_PERMISSION_DENIED, NULL);
        }

        if ((b->flags & ADE_VARLINK_BIND_REQUIRES_MORE) && !(call->flags & ADE_VARLINK_METHOD_MORE))
                return ade_varlink_error(call, ADE_VARLINK_ERROR_EXPECTED_MORE, NULL);

        /* The parameters cannot be what the peer meant: a cut key may pass for another one. */
        if (key_nul)
                return ade_varlink_error_invalid_parameter(call, "parameters");

        r = ade_varlink_interface_validate_input(iface, dot + 1, parameters, &field);
        if (r == -EBADMSG)
                return ade_varlink_error_invalid_parameter(call, field);
        if (r < 0)
                return r;

        r = b->callback(call, parameters ?: s->empty, call->flags, b->userdata);
        if (r < 0 && !call->done && call->conn) {
                _cleanup_json_ json_object *p = json_object_new_object();

                ade_log_debug_errno(r, "varlink: %s failed: %m", call->method);
                if (p) {
                        (void)json_object_object_add(p, "errno", json_object_new_int(-r));
                        (void)json_object_object_add(p, "message", json_object_new_string(strerror(-r)));
                }
                (void)ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, p);
        }
        return 0;
}

/* The \u0000 escapes in the text of a message that json-c parsed (so every backslash starts an escape). */
static size_t count_escaped_nuls(const char *buf, size_t len) {
        size_t n = 0;

        for (size_t i = 0; i < len; i++)
                if (buf[i] == '\\') {
                        if (len - i >= 6 && memcmp(buf + i + 1, "u0000", 5) == 0)
                                n++;
                        i++; /* the escaped character is no backslash of its own */
                }
        return n;
}

/* The NUL bytes in the string values under @v; json-c keeps those, but cuts keys at theirs. */
static size_t count_value_nuls(json_object *v) {
        size_t n = 0;

        switch (json_object_get_type(v)) {
        case json_type_string: {
                const char *s = json_object_get_string(v);
                size_t len = (size_t)json_object_get_string_len(v);

                for (const char *z; (z = memchr(s, '\0', len)); len -= z + 1 - s, s = z + 1)
                        n++;
                return n;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        n += count_value_nuls(json_object_array_get_idx(v, i));
                return n;
        case json_type_object: {
                json_object_object_foreach(v, key, val) {
                        (void)key;
                        n += count_value_nuls(val);
                }
                return n;
        }
        default:
                return 0;
        }
}

static int connection_dispatch(Connection *c, const char *buf, size_t len) {
        _cleanup_json_ json_object *msg = NULL;
        json_object *parameters = NULL, *v, *m;
        const char *method;
        size_t method_len;
        unsigned flags = 0;
        AdeVarlinkCall *call;
        bool b, key_nul;
        int r;

        /* Anything but a well-formed call means the peer does not speak varlink: no reply can help. */
        r = ade_json_parse(buf, len, &msg);
        if (r < 0 || !json_object_is_type(msg, json_type_object)) {
                connection_kill(c, "invalid JSON");
                return -EBADMSG;
        }
        if (!json_object_object_get_ex(msg, "method", &m) || !json_object_is_type(m, json_type_string)) {
                connection_kill(c, "message without a method");
                return -EBADMSG;
        }
        method = json_object_get_string(m);
        method_len = (size_t)json_object_get_string_len(m);
        key_nul = count_escaped_nuls(buf, len) > count_value_nuls(msg);
        if (json_object_object_get_ex(msg, "parameters", &v) && v) {
                if (!json_object_is_type(v, json_type_object)) {
                        connection_kill(c, "parameters is not an object");
                        return -EBADMSG;
                }
                parameters = v;
        }
        r = ade_json_get_bool(msg, "oneway", &b);
        if (r == -EBADMSG) {
                connection_kill(c, "oneway is not a boolean");
                return r;
        }
        if (r >= 0 && b)
                flags |= ADE_VARLINK_METHOD_ONEWAY;
        r = ade_json_get_bool(msg, "more", &b);
        if (r == -EBADMSG) {
                connection_kill(c, "more is not a boolean");
                return r;
        }
        if (r >= 0 && b)
                flags |= ADE_VARLINK_METHOD_MORE;
        if ((flags & ADE_VARLINK_METHOD_ONEWAY) && (flags & ADE_VARLINK_METHOD_MORE)) {
                connection_kill(c, "call with both oneway and more");
                return -EBADMSG;
        }

        /* The peer is gone: nobody would read an answer; oneway calls still run. */
        if (c->write_dead && !(flags & ADE_VARLINK_METHOD_ONEWAY))
                return 0;

        call = calloc(1, sizeof(AdeVarlinkCall));
        if (!call) {
                connection_kill(c, "out of memory");
                return -ENOMEM;
        }
        call->n_ref = 1;                       /* the connection's, dropped by the final reply or the disconnect */
        call->method = malloc(method_len + 1); /* not strndup(): that stops at a NUL */
        if (call->method) {
                memcpy(call->method, method, method_len);
                call->method[method_len] = '\0';
        }
        call->method_len = method_len;
        if (!call->method) {
                free(call);
                connection_kill(c, "out of memory");
                return -ENOMEM;
        }
        call->flags = flags;
        call->conn = c;
        call->uid = c->uid;
        call->gid = c->gid;
        call->pid = c->pid;
        c->current = call;

        /* Our own reference: the method may answer (and so drop the connection's) right away. */
        ade_varlink_call_ref(call);
        r = call_run(c, call, parameters, key_nul);
        if (r < 0 && !call->done && call->conn)
                (void)ade_varlink_error_errno(call, r);

        /* A oneway call is over once its method returned: the next call may start. */
        if ((flags & ADE_VARLINK_METHOD_ONEWAY) && c->current == call) {
                call->done = true;
                call->conn = NULL;
                c->current = NULL;
                ade_varlink_call_unref(call);
        }
        ade_varlink_call_unref(call);
        return 0;
}

/* ---- org.varlink.service ------------------------------------------------------------------------ */

static int method_get_info(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        AdeVarlinkServer *s = userdata;
        _cleanup_json_ json_object *p = NULL;
        json_object *list;

        p = json_object_new_object();
        list = json_object_new_array();
        if (!p || !list) {
                json_object_put(list);
                return -ENOMEM;
        }
        (void)json_object_object_add(p, "vendor", json_object_new_string(s->vendor ?: ""));
        (void)json_object_object_add(p, "product", json_object_new_string(s->product ?: ""));
        (void)json_object_object_add(p, "version", json_object_new_string(s->version ?: ""));
        (void)json_object_object_add(p, "url", json_object_new_string(s->url ?: ""));
        for (size_t i = 0; i < s->n_interfaces; i++)
                (void)json_object_array_add(
                        list, json_object_new_string(ade_varlink_interface_get_name(s->interfaces[i])));
        (void)json_object_object_add(p, "interfaces", list);
        return ade_varlink_reply(call, p);
}

static int method_get_interface_description(
        AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        AdeVarlinkServer *s = userdata;
        _cleanup_json_ json_object *p = NULL;
        const AdeVarlinkInterface *iface;
        const char *name;
        int r;

        r = ade_json_get_string(parameters, "interface", &name);
        if (r < 0)
                return ade_varlink_error_invalid_parameter(call, "interface");

        iface = server_find_interface(s, name, strlen(name));
        if (!iface)
                return call_error_string(call, ADE_VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", name);

        p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        r = ade_json_add_string(p, "description", ade_varlink_interface_get_text(iface));
        if (r < 0)
                return r;
        return ade_varlink_reply(call, p);
}

/* ---- server ------------------------------------------------------------------------------------- */

int ade_varlink_server_new(sd_event *event, AdeVarlinkServer **ret) {
        _cleanup_(ade_varlink_server_freep) AdeVarlinkServer *s = NULL;
        const char *e;
        int r;

        assert(event);
        assert(ret);

        s = calloc(1, sizeof(AdeVarlinkServer));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->group = (gid_t)-1;
        s->reserve_fd = -EBADF;
        server_refill_reserve(s);
        ade_varlink_server_set_limits(
                s, &(const AdeVarlinkLimits){
                           .connections_max = ADE_VARLINK_CONNECTIONS_MAX_DEFAULT,
                           .per_uid_max = ADE_VARLINK_CONNECTIONS_PER_UID_MAX_DEFAULT,
                           .unprivileged_max = ADE_VARLINK_UNPRIVILEGED_MAX_DEFAULT,
                           .unprivileged_per_uid_max = ADE_VARLINK_UNPRIVILEGED_PER_UID_MAX_DEFAULT,
                           .idle_timeout_usec = ADE_VARLINK_IDLE_TIMEOUT_USEC_DEFAULT,
                           .partial_timeout_usec = ADE_VARLINK_PARTIAL_TIMEOUT_USEC_DEFAULT,
                           .buffer_budget = ADE_VARLINK_BUFFER_BUDGET_DEFAULT,
                           .unprivileged_buffer_budget = ADE_VARLINK_UNPRIVILEGED_BUFFER_BUDGET_DEFAULT,
                   });
        s->empty = json_object_new_object();
        if (!s->empty)
                return -ENOMEM;
        e = getenv("ADE_VARLINK_VALIDATE_REPLIES");
        s->validate_replies = e && (streq(e, "1") || strcaseeq(e, "yes") || strcaseeq(e, "true"));

        r = ade_varlink_server_add_interface(s, service_idl);
        if (r < 0)
                return r;
        r = ade_varlink_server_bind_method(s, "org.varlink.service.GetInfo", method_get_info, 0, s);
        if (r < 0)
                return r;
        r = ade_varlink_server_bind_method(
                s, "org.varlink.service.GetInterfaceDescription", method_get_interface_description, 0, s);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

AdeVarlinkServer *ade_varlink_server_free(AdeVarlinkServer *s) {
        if (!s)
                return NULL;
        while (s->connections)
                connection_free(s->connections);
        sd_event_source_disable_unref(s->accept_retry);
        closep(&s->reserve_fd);
        for (size_t i = 0; i < s->n_listeners; i++) {
                sd_event_source_disable_unref(s->listeners[i].source);
                close(s->listeners[i].fd);
        }
        free(s->listeners);
        for (size_t i = 0; i < s->n_interfaces; i++)
                ade_varlink_interface_free(s->interfaces[i]);
        free(s->interfaces);
        for (size_t i = 0; i < s->n_bindings; i++)
                free(s->bindings[i].method);
        free(s->bindings);
        free(s->vendor);
        free(s->product);
        free(s->version);
        free(s->url);
        json_object_put(s->empty);
        sd_event_unref(s->event);
        return mfree(s);
}

int ade_varlink_server_set_info(
        AdeVarlinkServer *s, const char *vendor, const char *product, const char *version, const char *url) {
        if (ade_strdup_to(&s->vendor, vendor) < 0 || ade_strdup_to(&s->product, product) < 0 ||
                ade_strdup_to(&s->version, version) < 0 || ade_strdup_to(&s->url, url) < 0)
                return -ENOMEM;
        return 0;
}

void ade_varlink_server_set_validate_replies(AdeVarlinkServer *s, bool b) {
        s->validate_replies = b;
}

void ade_varlink_server_set_group(AdeVarlinkServer *s, gid_t gid) {
        s->group = gid;
}

void ade_varlink_server_set_fd_short_callback(AdeVarlinkServer *s, AdeVarlinkFdShort callback, void *userdata) {
        s->fd_short_callback = callback;
        s->fd_short_userdata = userdata;
}

void ade_varlink_server_set_connections_max(AdeVarlinkServer *s, unsigned total, unsigned per_uid) {
        if (total > 0)
                s->limits.connections_max = total;
        if (per_uid > 0)
                s->limits.per_uid_max = per_uid;
}

void ade_varlink_server_get_limits(AdeVarlinkServer *s, AdeVarlinkLimits *ret) {
        *ret = s->limits;
}

void ade_varlink_server_set_limits(AdeVarlinkServer *s, const AdeVarlinkLimits *l) {
        s->limits = *l;
        /* Lowering a budget below what is in use only stops growth until connections give back. */
        s->budget_all.max = l->buffer_budget;
        s->budget_unprivileged.max = l->unprivileged_buffer_budget;
}

unsigned ade_varlink_server_current_connections(AdeVarlinkServer *s) {
        return s->n_connections;
}

int ade_varlink_server_add_interface(AdeVarlinkServer *s, const char *idl) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = NULL;
        AdeVarlinkInterface **l;
        const char *name;
        int r;

        assert(s);
        assert(idl);

        r = ade_varlink_interface_parse(idl, &iface);
        if (r < 0)
                return r;
        name = ade_varlink_interface_get_name(iface);
        if (server_find_interface(s, name, strlen(name)))
                return -EEXIST;

        l = reallocarray(s->interfaces, s->n_interfaces + 1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        s->interfaces = l;
        s->interfaces[s->n_interfaces++] = TAKE_PTR(iface);
        return 0;
}

int ade_varlink_server_bind_method(
        AdeVarlinkServer *s, const char *method, AdeVarlinkMethod callback, unsigned flags, void *userdata) {
        const AdeVarlinkInterface *iface;
        const char *dot;
        Binding *l;
        char *copy;

        assert(s);
        assert(method);
        assert(callback);

        dot = strrchr(method, '.');
        if (!dot)
                return -ENOENT;
        iface = server_find_interface(s, method, dot - method);
        if (!iface || !ade_varlink_interface_has_method(iface, dot + 1))
                return -ENOENT;
        if (server_find_binding(s, method))
                return -EEXIST;

        copy = strdup(method);
        if (!copy)
                return -ENOMEM;
        l = reallocarray(s->bindings, s->n_bindings + 1, sizeof(*l));
        if (!l) {
                free(copy);
                return -ENOMEM;
        }
        s->bindings = l;
        s->bindings[s->n_bindings++] = (Binding){
                .method = copy,
                .iface = iface,
                .callback = callback,
                .flags = flags,
                .userdata = userdata,
        };
        return 0;
}

static int peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *groups = NULL;
        socklen_t len = 16 * sizeof(gid_t);

        for (int attempt = 0; attempt < 4; attempt++) {
                gid_t *g = realloc(groups, len);

                if (!g)
                        return -ENOMEM;
                groups = g;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) >= 0) {
                        *ret_n = len / sizeof(gid_t);
                        *ret = TAKE_PTR(groups);
                        return 0;
                }
                if (errno != ERANGE)
                        return -errno;
                /* len now holds the size needed. */
        }
        return -ERANGE;
}

static void listeners_set_enabled(AdeVarlinkServer *s, int enabled) {
        for (size_t i = 0; i < s->n_listeners; i++)
                (void)sd_event_source_set_enabled(s->listeners[i].source, enabled);
}

static int on_accept_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        AdeVarlinkServer *s = userdata;

        s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
        listeners_set_enabled(s, SD_EVENT_ON);
        return 0;
}

/* The descriptor numbers connections may reach: *ret_all for root's, ADE_VARLINK_FD_RESERVE below
 * the soft RLIMIT_NOFILE (half of a limit too small for that); *ret_unprivileged for the others',
 * ADE_VARLINK_ROOT_FD_SHARE lower still (half of what is left when that is small), so that peers
 * other than root never take root's share. Read at each accept: the service may change its limit. */
static void server_fd_caps(unsigned *ret_all, unsigned *ret_unprivileged) {
        struct rlimit rl;
        unsigned all, root_share;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT_MAX) {
                *ret_all = *ret_unprivileged = UINT_MAX;
                return;
        }
        all = rl.rlim_cur > 2 * ADE_VARLINK_FD_RESERVE ? (unsigned)rl.rlim_cur - ADE_VARLINK_FD_RESERVE
                                                       : (unsigned)rl.rlim_cur / 2;
        root_share = all > 2 * ADE_VARLINK_ROOT_FD_SHARE ? ADE_VARLINK_ROOT_FD_SHARE : all / 2;
        *ret_all = all;
        *ret_unprivileged = all - root_share;
}

/* The descriptor that stands in for a connection when none is free (server_accept()). */
static void server_refill_reserve(AdeVarlinkServer *s) {
        if (s->reserve_fd < 0)
                s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors: told once, until a connection is taken normally again. */
static void server_fd_short(AdeVarlinkServer *s) {
        unsigned n = 0, limit = 0;

        if (s->fd_short)
                return;
        s->fd_short = true;
        (void)ade_fd_free(&n, &limit);
        ade_log_debug("varlink: out of file descriptors (%u of %u free, %u connections)", n, limit, s->n_connections);
        if (s->fd_short_callback)
                s->fd_short_callback(s, limit, s->fd_short_userdata);
}

/* Closes up to @n connections of peers other than root to give their descriptors to root's: the
 * oldest idle ones first (the list holds the newest first), then the oldest of the others. Returns
 * how many were closed. */
static unsigned server_shed(AdeVarlinkServer *s, unsigned n) {
        unsigned shed = 0;

        for (int pass = 0; pass < 2 && shed < n; pass++) {
                Connection *c = s->connections, *prev;

                while (c && c->next)
                        c = c->next;
                for (; c && shed < n; c = prev) {
                        prev = c->prev;
                        if (c->uid == 0 || (pass == 0 && (c->current || c->idle_since == 0)))
                                continue;
                        ade_log_debug("varlink: closing the connection of pid %d uid %u to let root in", (int)c->pid,
                                (unsigned)c->uid);
                        connection_free(c);
                        shed++;
                }
        }
        return shed;
}

/* accept4(); when no descriptor is free, the reserve takes the connection (*ret_reserve): root's
 * then gets descriptors back from the others', anyone else's is closed at once rather than left
 * in the backlog, and the listener, readable until then, does not spin. */
static int server_accept(AdeVarlinkServer *s, int fd, bool *ret_reserve) {
        int cfd;

        *ret_reserve = false;
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0 || (errno != EMFILE && errno != ENFILE))
                return cfd < 0 ? -errno : cfd;
        server_fd_short(s);
        if (s->reserve_fd < 0)
                return -EMFILE;
        closep(&s->reserve_fd);
        s->reserve_fd = -EBADF;
        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                int r = -errno;

                server_refill_reserve(s);
                return r;
        }
        *ret_reserve = true;
        return cfd;
}

/* Errors after which the next accept may well succeed (those of sd-daemon's ERRNO_IS_ACCEPT_AGAIN):
 * the peer gave up, or the network it came from went away. */
static bool accept_again(int r) {
        switch (-r) {
        case EAGAIN:
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
                return true;
        default:
                return false;
        }
}

/* Closes a connection refused at once, and takes its descriptor back into the reserve when that was
 * spent. */
static int server_refuse(AdeVarlinkServer *s, int *cfd) {
        closep(cfd);
        *cfd = -EBADF;
        server_refill_reserve(s);
        return 0;
}

static int on_listen(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        AdeVarlinkServer *s = userdata;
        _cleanup_close_ int cfd = -EBADF;
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        unsigned same_uid = 0, unprivileged = 0, shed, cap_all, cap_unprivileged;
        bool reserve;
        Connection *c;
        int r;

        cfd = server_accept(s, fd, &reserve);
        if (cfd < 0) {
                if (accept_again(cfd))
                        return 0;
                ade_log_debug_errno(cfd, "varlink: accept failed, pausing new connections: %m");
                /* Out of fds (with no reserve) or memory: the listener stays readable, so polling it
                 * again at once would spin. Pause accepting for a moment; existing connections go on. */
                if (!s->accept_retry && sd_event_add_time_relative(s->event, &s->accept_retry, CLOCK_MONOTONIC,
                                                100 * 1000, 0, on_accept_retry, s) >= 0)
                        listeners_set_enabled(s, SD_EVENT_OFF);
                return 0;
        }
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                ade_log_debug_errno(errno, "varlink: SO_PEERCRED failed: %m");
                return server_refuse(s, &cfd);
        }

        for (Connection *i = s->connections; i; i = i->next) {
                if (i->uid == cred.uid)
                        same_uid++;
                if (i->uid != 0)
                        unprivileged++;
        }

        server_fd_caps(&cap_all, &cap_unprivileged);
        if (cred.uid == 0) {
                bool high = reserve || (unsigned)cfd >= cap_all;

                /* Root is let in: the descriptors it needs come from the others' connections. Only
                 * when its own connections hold its share already and nobody else's can go does it
                 * not reach into the service's. */
                if ((high || s->n_connections >= s->limits.connections_max) && (shed = server_shed(s, ROOT_SHED)) > 0)
                        unprivileged -= shed;
                else if (high && same_uid >= cap_all - cap_unprivileged) {
                        ade_log_debug("varlink: refusing connection of uid 0: file descriptors are reserved for the "
                                      "service");
                        return server_refuse(s, &cfd);
                }
        } else if (reserve || (unsigned)cfd >= cap_unprivileged) {
                /* accept() took the lowest free descriptor: this high, all below it are taken, and
                 * the rest is root's and the service's own (state, devices, pipes). */
                server_fd_short(s);
                ade_log_debug("varlink: refusing connection of uid %u: file descriptors are reserved for root and "
                              "the service",
                        (unsigned)cred.uid);
                return server_refuse(s, &cfd);
        }
        if (!reserve && (unsigned)cfd < cap_unprivileged)
                s->fd_short = false;

        if (s->n_connections >= s->limits.connections_max || same_uid >= s->limits.per_uid_max ||
                (cred.uid != 0 && (unprivileged >= s->limits.unprivileged_max ||
                                          same_uid >= s->limits.unprivileged_per_uid_max))) {
                ade_log_debug("varlink: refusing connection of uid %u: too many connections", (unsigned)cred.uid);
                return server_refuse(s, &cfd);
        }

        c = calloc(1, sizeof(Connection));
        if (!c)
                return server_refuse(s, &cfd);
        c->server = s;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
        r = peer_groups(cfd, &c->groups, &c->n_groups);
        if (r < 0)
                ade_log_debug_errno(r, "varlink: SO_PEERGROUPS failed, only the primary group counts: %m");

        r = sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, on_connection_io, c);
        if (r >= 0)
                r = sd_event_add_defer(s->event, &c->defer, on_connection_defer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        if (r < 0) {
                sd_event_source_disable_unref(c->io);
                sd_event_source_disable_unref(c->defer);
                free(c->groups);
                free(c);
                return server_refuse(s, &cfd);
        }
        ade_varlink_stream_init(&c->stream, TAKE_FD(cfd));
        ade_varlink_stream_set_budgets(&c->stream, &s->budget_all, c->uid != 0 ? &s->budget_unprivileged : NULL);

        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        /* A peer that connects and sends nothing idles from now. */
        connection_arm_timer(c, false, false);
        server_refill_reserve(s);
        return 0;
}

int ade_varlink_server_listen_fd(AdeVarlinkServer *s, int fd) {
        _cleanup_close_ int owned = fd;
        sd_event_source *source = NULL;
        Listener *l;
        int flags, r;

        assert(s);

        if (fd < 0 || sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) <= 0)
                return -EINVAL;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;

        l = reallocarray(s->listeners, s->n_listeners + 1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        s->listeners = l;

        r = sd_event_add_io(s->event, &source, fd, EPOLLIN, on_listen, s);
        if (r < 0)
                return r;
        s->listeners[s->n_listeners++] = (Listener){.fd = TAKE_FD(owned), .source = source};
        return 0;
}

int ade_varlink_server_listen_auto(AdeVarlinkServer *s) {
        char **names = NULL;
        int n, taken = 0, r = 0;

        n = sd_listen_fds_with_names(false, &names);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++) {
                if (r >= 0 && names && streq_ptr(names[i], "varlink")) {
                        r = ade_varlink_server_listen_fd(s, SD_LISTEN_FDS_START + i);
                        if (r >= 0)
                                taken++;
                }
        }
        strv_free(names);
        return r < 0 ? r : taken;
}

int ade_varlink_server_listen_address(AdeVarlinkServer *s, const char *path, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *dir_copy = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *dir;

        assert(s);
        assert(path);

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        dir_copy = strdup(path);
        if (!dir_copy)
                return -ENOMEM;
        dir = dirname(dir_copy);
        if (mkdir(dir, 0750) >= 0) {
                /* mkdir() applies the umask; the folder guards the socket until chmod() below, so set it exactly. */
                if (chmod(dir, 0750) < 0)
                        return -errno;
                if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(dir, uid, gid) < 0)
                        return -errno;
        } else if (errno != EEXIST)
                return -errno;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                _cleanup_close_ int probe = -EBADF;

                if (errno != EADDRINUSE)
                        return -errno;
                /* Someone answering there is a live server; a socket nobody listens on is stale. */
                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return -errno;
                if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) >= 0)
                        return -EADDRINUSE;
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
                if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        return -errno;
        }
        if (chmod(path, mode) < 0)
                return -errno;
        if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;

        return ade_varlink_server_listen_fd(s, TAKE_FD(fd));
}
