/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Varlink (varlink.org) over AF_UNIX stream sockets, server and client, on sd-event and json-c.
 *
 * Wire format: every message is one JSON object followed by one NUL byte. A call is
 * {"method": "iface.Method", "parameters": {...}, "oneway": bool, "more": bool}; a reply is
 * {"parameters": {...}, "continues": bool, "error": "iface.Error"}. Replies come back in call order.
 *
 * The server is modelled on systemd's sd-varlink: it runs on the caller's sd_event loop, never blocks,
 * buffers output per connection (with a cap), answers org.varlink.service.GetInfo and
 * GetInterfaceDescription from the interface texts it was given, validates parameters against them
 * (InvalidParameter), and checks a per-method access policy before it looks at the parameters.
 * Everything here is single-threaded: worker threads hand results to the loop (e.g. through an
 * eventfd source) and the loop calls ade_varlink_reply()/notify().
 *
 * Both sides frame messages with ade-varlink-stream.h. aded's own interface is in
 * ade-disk-encryption-idl.h. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "ade-util.h"

/* Limits. A message (without its NUL) longer than ADE_VARLINK_MESSAGE_MAX, or that many bytes
 * without a NUL, drops the connection: framing cannot be recovered. */
#define ADE_VARLINK_MESSAGE_MAX (16U * 1024U * 1024U)
/* Bytes of replies queued for one connection that does not read; beyond it the connection is dropped. */
#define ADE_VARLINK_OUTPUT_MAX (16U * 1024U * 1024U)
/* File descriptors the server never takes for connections: below RLIMIT_NOFILE by this many (half
 * the limit when it is smaller), so that the service's own opens (state file, devices, pipes)
 * never fail because peers hold every descriptor. */
#define ADE_VARLINK_FD_RESERVE 128U
/* Of the descriptors connections may take, this many (half when fewer are left) are root's alone:
 * the connections of other peers stay below them. When none is free at all the server takes the
 * connection with a descriptor it keeps in reserve: root's is let in and the connections of other
 * peers are closed to make room (the oldest idle ones first), anyone else's is closed at once. */
#define ADE_VARLINK_ROOT_FD_SHARE 64U

/* What peers may take from the server (ade_varlink_server_set_limits()). Root (uid 0) is the
 * server's owner; any other peer (a member of the group that may call Show) must not be able to
 * lock root out, so it gets small shares and the rest stays reserved for root. */
typedef struct AdeVarlinkLimits {
        unsigned connections_max;          /* every peer together; also kept ADE_VARLINK_FD_RESERVE below
                                            * RLIMIT_NOFILE, read at each accept */
        unsigned per_uid_max;              /* one uid, root included */
        unsigned unprivileged_max;         /* every peer but root together */
        unsigned unprivileged_per_uid_max; /* one uid other than root */
        uint64_t idle_timeout_usec;        /* a non-root peer's connection with no call running, nothing
                                            * buffered and nothing to send is closed after this long; 0:
                                            * never. Root's connections never idle out. */
        uint64_t partial_timeout_usec;     /* a message still incomplete this long after its first byte
                                            * arrived drops the connection, whoever the peer; 0: never */
        size_t buffer_budget;              /* bytes that the input and output buffers of every connection
                                            * may hold together */
        size_t unprivileged_buffer_budget; /* the same for the connections of peers other than root */
} AdeVarlinkLimits;

/* The defaults: 1024 connections (64 of them for peers other than root, 16 per such uid), idle
 * connections of such peers closed after 60 s, a message incomplete for 10 s dropped, 64 MiB of
 * buffers in all, of which the peers other than root may fill one message's worth (16 MiB and a read). */
#define ADE_VARLINK_CONNECTIONS_MAX_DEFAULT 1024U
#define ADE_VARLINK_CONNECTIONS_PER_UID_MAX_DEFAULT 1024U
#define ADE_VARLINK_UNPRIVILEGED_MAX_DEFAULT 64U
#define ADE_VARLINK_UNPRIVILEGED_PER_UID_MAX_DEFAULT 16U
#define ADE_VARLINK_IDLE_TIMEOUT_USEC_DEFAULT (60U * 1000U * 1000U)
#define ADE_VARLINK_PARTIAL_TIMEOUT_USEC_DEFAULT (10U * 1000U * 1000U)
#define ADE_VARLINK_BUFFER_BUDGET_DEFAULT (64U * 1024U * 1024U)
#define ADE_VARLINK_UNPRIVILEGED_BUFFER_BUDGET_DEFAULT (ADE_VARLINK_MESSAGE_MAX + 128U * 1024U)
/* Pipelining: a connection is answered one call at a time, in order. While a call is pending (or more
 * than 256 KiB of replies wait unread), the server stops reading that connection as soon as the next
 * complete call is buffered, so a pipelining or non-reading peer costs at most about one message of
 * input and ADE_VARLINK_OUTPUT_MAX of output; its hang-up is still noticed (EPOLLHUP). */

/* The standard errors of org.varlink.service. */
#define ADE_VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define ADE_VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define ADE_VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define ADE_VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define ADE_VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
#define ADE_VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
/* Sent when a method callback fails with a negative errno without having replied itself.
 * Parameters: {"errno": N, "message": "strerror text"}. */
#define ADE_VARLINK_ERROR_SYSTEM "io.ade.System"

/* Flags passed to a method callback. */
enum {
        ADE_VARLINK_METHOD_ONEWAY = 1U << 0, /* the caller wants no reply: replies are dropped silently */
        ADE_VARLINK_METHOD_MORE = 1U << 1,   /* the caller accepts notify() replies before the last one */
};

/* Flags for ade_varlink_server_bind_method(). The access policy is checked before the parameters are
 * validated, so a caller without permission learns nothing about the parameters. */
enum {
        ADE_VARLINK_BIND_ANYONE = 0,              /* any peer that could connect */
        ADE_VARLINK_BIND_ROOT_ONLY = 1U << 0,     /* SO_PEERCRED uid 0 */
        ADE_VARLINK_BIND_ROOT_OR_GROUP = 1U << 1, /* uid 0, or the server's group as primary gid or
                                                   * among the peer's SO_PEERGROUPS */
        ADE_VARLINK_BIND_REQUIRES_MORE = 1U << 2, /* a call without "more" gets ExpectedMore */
};

/* Flags passed to a client reply callback. */
enum {
        ADE_VARLINK_REPLY_CONTINUES = 1U << 0, /* more replies follow */
};

typedef struct AdeVarlinkServer AdeVarlinkServer;
typedef struct AdeVarlinkCall AdeVarlinkCall;
typedef struct AdeVarlinkClient AdeVarlinkClient;

/* A method implementation. @parameters is the call's "parameters" object (an empty object when the
 * caller sent none), already validated against the method's declared input when its interface was
 * added; it is borrowed and lives until the callback returns (take a json_object_get() to keep it).
 *
 * The callback answers with ade_varlink_reply() or ade_varlink_error*(), now or later. To answer later
 * it returns 0 without replying and keeps the call with ade_varlink_call_ref(). Returning a negative
 * errno without having replied sends ADE_VARLINK_ERROR_SYSTEM. Later calls on the same connection are
 * queued until this one has its final reply (pipelined calls are answered in order). */
typedef int (*AdeVarlinkMethod)(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata);

/* Called once when the peer of a pending call goes away (hang-up, error, or dropped for misbehaving),
 * before the server drops its own reference. After it, reply/notify/error on the call return -ENOTCONN. */
typedef void (*AdeVarlinkDisconnect)(AdeVarlinkCall *call, void *userdata);

/* ---- Server ---------------------------------------------------------------------------------- */

/* Creates a server attached to @event (which it references). org.varlink.service is always present.
 * Returns 0, -ENOMEM. */
int ade_varlink_server_new(sd_event *event, AdeVarlinkServer **ret);

/* Closes every connection (pending calls see their disconnect callback) and listening socket. */
AdeVarlinkServer *ade_varlink_server_free(AdeVarlinkServer *s);
static inline void ade_varlink_server_freep(AdeVarlinkServer **s) {
        if (*s)
                ade_varlink_server_free(*s);
}

/* What GetInfo reports. Strings are copied; NULL leaves a field empty. */
int ade_varlink_server_set_info(
        AdeVarlinkServer *s, const char *vendor, const char *product, const char *version, const char *url);

/* Checks every reply (and notify) against the method's declared output, and every error of the
 * method's own interface against its declaration. A reply that does not match is not sent: the caller
 * gets ADE_VARLINK_ERROR_SYSTEM naming the field, and reply()/notify()/error() return -EBADMSG. Costs a
 * walk of each reply: meant for tests and debugging. Off by default; on when the environment has
 * ADE_VARLINK_VALIDATE_REPLIES=1 at ade_varlink_server_new(). */
void ade_varlink_server_set_validate_replies(AdeVarlinkServer *s, bool b);

/* The group that ADE_VARLINK_BIND_ROOT_OR_GROUP admits; (gid_t) -1 (the default) admits none. */
void ade_varlink_server_set_group(AdeVarlinkServer *s, gid_t gid);

/* Called once when the server runs short of file descriptors (a connection refused for want of
 * one, or accept() failing with EMFILE or ENFILE), not again until a connection of a peer other than
 * root is taken normally: the service tells whoever reads its log. @limit is the soft RLIMIT_NOFILE. */
typedef void (*AdeVarlinkFdShort)(AdeVarlinkServer *s, unsigned limit, void *userdata);
void ade_varlink_server_set_fd_short_callback(AdeVarlinkServer *s, AdeVarlinkFdShort callback, void *userdata);

/* The limits in force, and new ones. A connection beyond a cap is accepted and closed at once; one
 * whose buffers would take more than a budget allows is dropped (the others go on). */
void ade_varlink_server_get_limits(AdeVarlinkServer *s, AdeVarlinkLimits *ret);
void ade_varlink_server_set_limits(AdeVarlinkServer *s, const AdeVarlinkLimits *limits);

/* Caps connections in total and per peer uid (0 leaves a value unchanged). */
void ade_varlink_server_set_connections_max(AdeVarlinkServer *s, unsigned total, unsigned per_uid);

/* Adds an interface from its varlink IDL text (copied). Its name comes from the text's "interface"
 * line. GetInterfaceDescription returns the text as given; calls to its methods are validated against
 * it: a missing non-nullable field, a field of another type, or an unknown field is InvalidParameter
 * naming the field (dotted path for nested ones, e.g. "volumes[0].device").
 * Returns 0, -EBADMSG when the text does not parse (details go to ade_log_debug), -EEXIST for an
 * interface already added, -ENOMEM. */
int ade_varlink_server_add_interface(AdeVarlinkServer *s, const char *idl);

/* Binds @callback to @method ("io.ade.DiskEncryption.Show"); @flags are ADE_VARLINK_BIND_*.
 * The method must be declared in an interface added before. A declared method without a binding
 * answers MethodNotImplemented. When the method's interface declares an error named PermissionDenied,
 * refusals use that name ("io.ade.DiskEncryption.PermissionDenied"), otherwise
 * org.varlink.service.PermissionDenied.
 * Returns 0, -ENOENT when no added interface declares @method, -EEXIST when already bound, -ENOMEM. */
int ade_varlink_server_bind_method(
        AdeVarlinkServer *s, const char *method, AdeVarlinkMethod callback, unsigned flags, void *userdata);

/* Takes the sockets passed by systemd (sd_listen_fds_with_names) named "varlink" and listens on
 * them. Returns the number of sockets taken (0 when none were passed), or a negative errno. */
int ade_varlink_server_listen_auto(AdeVarlinkServer *s);

/* Listens on an already bound and listening AF_UNIX stream socket; the server owns @fd from now on,
 * also on failure. Returns 0, -EINVAL for a bad fd, -ENOMEM. */
int ade_varlink_server_listen_fd(AdeVarlinkServer *s, int fd);

/* Binds @path itself: creates its folder with mode 0750 when missing (owner and group as given), removes
 * a stale socket file, binds, sets the socket's mode to @mode and its owner to @uid:@gid (-1 keeps a
 * value), and listens. Returns 0 or the errno of the step that failed (-EADDRINUSE when a live server
 * already answers on @path, -ENAMETOOLONG for a path beyond sun_path). */
int ade_varlink_server_listen_address(AdeVarlinkServer *s, const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Open connections now; for tests and status. */
unsigned ade_varlink_server_current_connections(AdeVarlinkServer *s);

/* ---- A call, inside and after its method callback -------------------------------------------- */

AdeVarlinkCall *ade_varlink_call_ref(AdeVarlinkCall *call);
AdeVarlinkCall *ade_varlink_call_unref(AdeVarlinkCall *call);
static inline void ade_varlink_call_unrefp(AdeVarlinkCall **call) {
        if (*call)
                ade_varlink_call_unref(*call);
}

/* The fully qualified method name and the ADE_VARLINK_METHOD_* flags of the call. */
const char *ade_varlink_call_get_method(AdeVarlinkCall *call);
unsigned ade_varlink_call_get_flags(AdeVarlinkCall *call);

/* The peer's credentials, taken with SO_PEERCRED when it connected. */
uid_t ade_varlink_call_get_peer_uid(AdeVarlinkCall *call);
gid_t ade_varlink_call_get_peer_gid(AdeVarlinkCall *call);
pid_t ade_varlink_call_get_peer_pid(AdeVarlinkCall *call);
/* True when @gid is the peer's primary group or among its supplementary groups (SO_PEERGROUPS).
 * Once the peer is gone only the primary group is known. */
bool ade_varlink_call_peer_in_group(AdeVarlinkCall *call, gid_t gid);

/* Per-call user data, for the code that answers later. */
void ade_varlink_call_set_userdata(AdeVarlinkCall *call, void *userdata);
void *ade_varlink_call_get_userdata(AdeVarlinkCall *call);

/* Registers @callback for when the peer disconnects before the final reply (see AdeVarlinkDisconnect). */
void ade_varlink_call_set_disconnect_callback(AdeVarlinkCall *call, AdeVarlinkDisconnect callback);

/* True while the peer is connected and the call has no final reply yet. */
bool ade_varlink_call_is_pending(AdeVarlinkCall *call);

/* The final reply. @parameters (NULL for none) is borrowed and serialized at once. For a oneway call
 * nothing is sent and 0 is returned. Returns 0, -ENOTCONN when the peer is gone, -EALREADY after the
 * final reply, -EINVAL when @parameters is not an object, -ENOBUFS when the peer has left more than
 * ADE_VARLINK_OUTPUT_MAX unread, -E2BIG for a reply longer than ADE_VARLINK_MESSAGE_MAX (either
 * way the connection is then dropped), -ENOMEM. Never blocks: output is queued and written as the
 * socket allows. */
int ade_varlink_reply(AdeVarlinkCall *call, json_object *parameters);

/* A reply with "continues": true. Only for calls made with "more": -EPROTO otherwise. Same returns as
 * ade_varlink_reply(). */
int ade_varlink_notify(AdeVarlinkCall *call, json_object *parameters);

/* A final error reply named @error (fully qualified, "io.ade.DiskEncryption.NoSuchVolume"), with
 * @parameters (NULL for none). -EINVAL for a name that is not one. Otherwise as ade_varlink_reply(). */
int ade_varlink_error(AdeVarlinkCall *call, const char *error, json_object *parameters);

/* org.varlink.service.InvalidParameter with {"parameter": @name}. */
int ade_varlink_error_invalid_parameter(AdeVarlinkCall *call, const char *name);

/* ADE_VARLINK_ERROR_SYSTEM for the negative errno @r, as the server sends it when a method returns
 * @r without replying: for a method that answers later, from a thread's result. */
int ade_varlink_error_errno(AdeVarlinkCall *call, int r);

/* ---- Client ----------------------------------------------------------------------------------- */

/* Connects to the AF_UNIX socket at @path (waiting up to 45 s while the server's backlog is full).
 * Returns 0, or -ENOENT (no socket there), -ECONNREFUSED (nobody listening), -EACCES (not allowed to
 * connect), -ETIMEDOUT, -ENAMETOOLONG. */
int ade_varlink_client_connect(const char *path, AdeVarlinkClient **ret);

AdeVarlinkClient *ade_varlink_client_free(AdeVarlinkClient *c);
static inline void ade_varlink_client_freep(AdeVarlinkClient **c) {
        if (*c)
                ade_varlink_client_free(*c);
}

/* The longest wait for each reply message, in microseconds; 0 waits forever. Default 45 s.
 * A timeout closes the connection (a late reply would otherwise be read as the next call's). */
void ade_varlink_client_set_timeout(AdeVarlinkClient *c, uint64_t usec);

/* Calls @method with @parameters (borrowed; NULL for none) and waits for its single reply.
 * Returns 0 when a reply arrived: *ret_error is NULL for success or the error's name (free() it), and
 * *ret_parameters the reply's or error's parameters (an empty object when none; json_object_put() it).
 * Either ret_ pointer may be NULL. Returns -ETIMEDOUT, -ECONNRESET (peer closed), -EBADMSG (a reply we
 * cannot parse, or one with "continues"), -E2BIG (reply over the message cap); each of these closes the
 * connection, and later calls on it return -ENOTCONN. A call over the cap is refused with -E2BIG
 * before anything is sent; the connection stays usable. */
int ade_varlink_client_call(AdeVarlinkClient *c, const char *method, json_object *parameters,
        json_object **ret_parameters, char **ret_error);

/* Called for each reply of a "more" call. @error is NULL or the error name; @parameters borrowed.
 * @flags has ADE_VARLINK_REPLY_CONTINUES on all but the last. Returning a negative errno stops the
 * call: the connection is closed (the only way varlink cancels) and the errno returned. */
typedef int (*AdeVarlinkReplyFunc)(json_object *parameters, const char *error, unsigned flags, void *userdata);

/* Calls @method with "more" and hands every reply to @callback until the last one (no "continues",
 * or an error). Returns 0, the callback's negative errno, or the errors of ade_varlink_client_call(). */
int ade_varlink_client_call_more(
        AdeVarlinkClient *c, const char *method, json_object *parameters, AdeVarlinkReplyFunc callback, void *userdata);

/* Like call_more, collecting the replies' parameters into a new array in *ret_replies; on an error
 * reply *ret_error gets its name (free() it) and the array ends with the error's parameters. */
int ade_varlink_client_collect(
        AdeVarlinkClient *c, const char *method, json_object *parameters, json_object **ret_replies, char **ret_error);

/* Sends @method with "oneway": no reply comes. Returns 0 once the message is written. */
int ade_varlink_client_send_oneway(AdeVarlinkClient *c, const char *method, json_object *parameters);

/* The socket, e.g. to poll() it alongside other input while streaming. */
int ade_varlink_client_get_fd(AdeVarlinkClient *c);
