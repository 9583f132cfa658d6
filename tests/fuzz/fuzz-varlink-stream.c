/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Varlink's framing (ade-varlink-stream.h) on a real socket pair: the input (after its first byte,
 * which sets how many bytes each write carries, 1 to 7906) is written to one end in pieces and
 * read at the other, every whole message taken out, and each one that is a JSON object queued back
 * and flushed. Checks: a message holds no NUL and ends at one, and every queued message arrives on
 * the other end as exactly one NUL-terminated frame. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ade-json.h"
#include "ade-varlink-stream.h"
#include "fuzz.h"

/* Reads what the stream sent back; returns how many frames (NULs) came. */
static unsigned drain_peer(int fd) {
        char buf[65536];
        unsigned frames = 0;
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++)
                        frames += buf[i] == '\0';
        return frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AdeVarlinkStream s;
        unsigned queued = 0, echoed = 0;
        size_t chunk, off = 0;
        bool shut = false;
        int sv[2], r;

        if (size == 0)
                return 0;
        chunk = 1 + (size_t)data[0] * 31;
        data++;
        size--;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        ade_varlink_stream_init(&s, sv[0]);

        for (;;) {
                const char *msg;
                size_t len;

                if (off < size) {
                        ssize_t n = write(sv[1], data + off, size - off < chunk ? size - off : chunk);

                        if (n > 0)
                                off += (size_t)n;
                } else if (!shut) {
                        (void)shutdown(sv[1], SHUT_WR);
                        shut = true;
                }

                r = ade_varlink_stream_read(&s);
                FUZZ_ASSERT(r >= 0 || r == -EAGAIN, "read: unexpected error");

                while ((r = ade_varlink_stream_peek(&s, &msg, &len)) > 0) {
                        _cleanup_json_ json_object *o = NULL;

                        FUZZ_ASSERT(len <= ADE_VARLINK_MESSAGE_MAX, "message over the cap");
                        FUZZ_ASSERT(msg[len] == '\0' && !memchr(msg, '\0', len), "message not framed by one NUL");
                        if (ade_json_parse(msg, len, &o) >= 0 && json_object_is_type(o, json_type_object)) {
                                FUZZ_ASSERT(ade_varlink_stream_queue(&s, o) == 0, "queue failed");
                                queued++;
                        }
                        ade_varlink_stream_consume(&s);
                }
                FUZZ_ASSERT(r == 0, "peek: unexpected error");

                r = ade_varlink_stream_flush(&s);
                FUZZ_ASSERT(r == 0 || r == -EAGAIN, "flush: unexpected error");
                echoed += drain_peer(sv[1]);

                if (shut && off == size && ade_varlink_stream_read(&s) == 0)
                        break;
        }

        /* The peer is done: what is left is at most one message without its NUL. */
        FUZZ_ASSERT(ade_varlink_stream_peek(&s, NULL, NULL) == 0, "a whole message left unread");
        while (ade_varlink_stream_output_pending(&s) > 0) {
                r = ade_varlink_stream_flush(&s);
                FUZZ_ASSERT(r == 0 || r == -EAGAIN, "final flush failed");
                echoed += drain_peer(sv[1]);
        }
        echoed += drain_peer(sv[1]);
        FUZZ_ASSERT(echoed == queued, "queued messages and frames sent differ");

        ade_varlink_stream_done(&s);
        close(sv[1]);
        return 0;
}
