/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Varlink's framing on one AF_UNIX stream socket, shared by the server and the client
 * (ade-varlink.h): every message is one JSON object followed by one NUL byte. Input is buffered
 * until a whole message is there; output is queued and written as the socket takes it.
 *
 * Nothing here blocks or waits: each call does what the kernel allows now and says -EAGAIN for the
 * rest. The server waits on its sd_event loop, the client on poll(). A message (without its NUL)
 * longer than ADE_VARLINK_MESSAGE_MAX, or that many bytes without a NUL, cannot be framed: the
 * calls that meet one return -E2BIG and the owner drops the connection. Not thread-safe. */

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "ade-varlink.h"

/* Bytes that the buffers of several streams may hold together (their allocations, input and
 * output). A stream charges each budget it was given for every byte it allocates and gives them
 * back when it frees; growth that a budget cannot take fails with -ENOBUFS. */
typedef struct AdeVarlinkBudget {
        size_t used, max;
} AdeVarlinkBudget;

#define ADE_VARLINK_STREAM_BUDGETS_MAX 2

/* Embedded in its owner; the fields belong to ade-varlink-stream.c. */
typedef struct AdeVarlinkStream {
        int fd;
        AdeVarlinkBudget *budgets[ADE_VARLINK_STREAM_BUDGETS_MAX]; /* NULL: none */
        /* Input: [in_start, in_size) is unparsed; in_scanned marks how far a NUL was looked for. */
        char *in;
        size_t in_start, in_size, in_alloc, in_scanned;
        /* Output: [out_done, out_size) is still to be sent. */
        char *out;
        size_t out_done, out_size, out_alloc;
} AdeVarlinkStream;

/* Starts a stream on @fd, a connected non-blocking AF_UNIX stream socket it owns from now on
 * (-EBADF for none yet). */
void ade_varlink_stream_init(AdeVarlinkStream *s, int fd);

/* Makes the stream charge @a and @b (either may be NULL) for its buffers from now on. Call it
 * before the first read or queue. */
void ade_varlink_stream_set_budgets(AdeVarlinkStream *s, AdeVarlinkBudget *a, AdeVarlinkBudget *b);

/* Closes the socket and frees the buffers; the input is wiped first (calls may carry secrets). */
void ade_varlink_stream_done(AdeVarlinkStream *s);

/* One recv() of at most 64 KiB, so that a fast sender cannot starve the others of a loop. Returns
 * the number of bytes read, 0 at end of file, -EAGAIN when nothing can be read now, -E2BIG when
 * more than ADE_VARLINK_MESSAGE_MAX bytes wait without a NUL, -ENOBUFS when a budget cannot take
 * the larger buffer the next read needs, -ENOMEM, or recv()'s -errno. */
int ade_varlink_stream_read(AdeVarlinkStream *s);

/* The next whole message: returns 1 with its text in *ret and its length (without the NUL that
 * ends it) in *ret_len, both optional; 0 when no whole message is buffered; -E2BIG when the next
 * one is longer than ADE_VARLINK_MESSAGE_MAX. The text stays valid until
 * ade_varlink_stream_consume() or ade_varlink_stream_read(). */
int ade_varlink_stream_peek(AdeVarlinkStream *s, const char **ret, size_t *ret_len);

/* Drops the message that ade_varlink_stream_peek() returned. Once all input is consumed, a buffer
 * that a large message grew is wiped and given back. */
void ade_varlink_stream_consume(AdeVarlinkStream *s);

/* Queues @msg, serialized as plain JSON, and its NUL. JSON is UTF-8: a string that is not (a
 * device's label, a path) goes out with each offending byte as U+FFFD. Returns 0, -E2BIG for a
 * message longer than ADE_VARLINK_MESSAGE_MAX (no peer would take it), -ENOBUFS when more than
 * ADE_VARLINK_OUTPUT_MAX bytes would wait unsent or a budget cannot take them, -ENOMEM. Sends
 * nothing: see ade_varlink_stream_flush(). */
int ade_varlink_stream_queue(AdeVarlinkStream *s, json_object *msg);

/* Sends as much of the queued output as the socket takes now. Returns 0 when all of it is sent,
 * -EAGAIN when the rest must wait for the socket, or send()'s -errno (-EPIPE: the peer is gone). */
int ade_varlink_stream_flush(AdeVarlinkStream *s);

/* Bytes queued and not yet sent. */
size_t ade_varlink_stream_output_pending(const AdeVarlinkStream *s);

/* Bytes read and not yet consumed (a partial message, or whole ones waiting their turn). */
size_t ade_varlink_stream_input_pending(const AdeVarlinkStream *s);
