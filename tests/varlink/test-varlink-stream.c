/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/socket.h>

#include "ade-json.h"
#include "ade-test.h"
#include "ade-varlink-stream.h"

/* A stream on one end of a non-blocking socket pair; the test drives the other end, *peer, by hand. */
static void pair(AdeVarlinkStream *s, int *peer) {
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        ade_varlink_stream_init(s, sv[0]);
        *peer = sv[1];
}

static void peer_send(int fd, const void *p, size_t n) {
        ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until a whole message (or an error) is there; returns what peek says then. */
static int read_until_message(AdeVarlinkStream *s, const char **ret, size_t *ret_len) {
        for (;;) {
                int r = ade_varlink_stream_peek(s, ret, ret_len);

                if (r != 0)
                        return r;
                r = ade_varlink_stream_read(s);
                if (r <= 0)
                        return r == 0 ? -ECONNRESET : r;
        }
}

START_TEST(test_queued_message_arrives_with_its_nul) {
        AdeVarlinkStream a, b;
        _cleanup_json_ json_object *msg = json_object_new_object();
        const char *text;
        size_t len;
        int fd;

        pair(&a, &fd);
        ade_varlink_stream_init(&b, fd);
        ck_assert_int_eq(ade_json_add_string(msg, "method", "org.example.Ping"), 0);
        ck_assert_int_eq(ade_varlink_stream_queue(&a, msg), 0);
        ck_assert_uint_eq(ade_varlink_stream_output_pending(&a), strlen("{\"method\":\"org.example.Ping\"}") + 1);
        ck_assert_int_eq(ade_varlink_stream_flush(&a), 0);
        ck_assert_uint_eq(ade_varlink_stream_output_pending(&a), 0);

        ck_assert_int_eq(read_until_message(&b, &text, &len), 1);
        ck_assert_uint_eq(len, strlen("{\"method\":\"org.example.Ping\"}"));
        ck_assert_mem_eq(text, "{\"method\":\"org.example.Ping\"}", len + 1);
        ade_varlink_stream_consume(&b);
        ck_assert_int_eq(ade_varlink_stream_peek(&b, NULL, NULL), 0);
        ade_varlink_stream_done(&a);
        ade_varlink_stream_done(&b);
}
END_TEST

START_TEST(test_two_messages_in_one_read_come_out_in_order) {
        static const char wire[] = "{}\0{\"x\":2}"; /* and the literal's own NUL */
        AdeVarlinkStream s;
        const char *text;
        size_t len;
        int fd;

        pair(&s, &fd);
        peer_send(fd, wire, sizeof(wire));
        ck_assert_int_eq(ade_varlink_stream_read(&s), (int)sizeof(wire));

        ck_assert_int_eq(ade_varlink_stream_peek(&s, &text, &len), 1);
        ck_assert_uint_eq(len, 2);
        ck_assert_mem_eq(text, "{}", 2);
        ade_varlink_stream_consume(&s);
        ck_assert_int_eq(ade_varlink_stream_peek(&s, &text, &len), 1);
        ck_assert_uint_eq(len, 7);
        ck_assert_mem_eq(text, "{\"x\":2}", 7);
        ade_varlink_stream_consume(&s);
        ck_assert_int_eq(ade_varlink_stream_peek(&s, &text, &len), 0);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_partial_message_waits_for_its_nul) {
        AdeVarlinkStream s;
        const char *text;
        size_t len;
        int fd;

        pair(&s, &fd);
        peer_send(fd, "{\"a\"", 4);
        ck_assert_int_eq(ade_varlink_stream_read(&s), 4);
        ck_assert_int_eq(ade_varlink_stream_peek(&s, &text, &len), 0);
        peer_send(fd, ":1}", 4); /* with the NUL */
        ck_assert_int_eq(ade_varlink_stream_read(&s), 4);
        ck_assert_int_eq(ade_varlink_stream_peek(&s, &text, &len), 1);
        ck_assert_uint_eq(len, 7);
        ck_assert_mem_eq(text, "{\"a\":1}", 8);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_read_without_data_is_eagain_and_eof_is_zero) {
        AdeVarlinkStream s;
        int fd;

        pair(&s, &fd);
        ck_assert_int_eq(ade_varlink_stream_read(&s), -EAGAIN);
        close(fd);
        ck_assert_int_eq(ade_varlink_stream_read(&s), 0);
        ade_varlink_stream_done(&s);
}
END_TEST

/* Sends @n bytes of 'a' (then a NUL when @nul) to a stream that reads them, interleaving so that
 * no socket buffer fills. Returns the first error of read or peek, or 1 for a whole message. */
static int feed(AdeVarlinkStream *s, int fd, size_t n, bool nul, size_t *ret_sent_at_error) {
        static char chunk[64 * 1024];
        size_t sent = 0, total = n + (nul ? 1 : 0);

        memset(chunk, 'a', sizeof(chunk));
        for (;;) {
                int r;

                while (sent < total) {
                        size_t k = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);
                        ssize_t w;

                        /* The last byte is the NUL when asked for. */
                        if (nul && sent + k == total)
                                chunk[k - 1] = 0;
                        w = send(fd, chunk, k, MSG_NOSIGNAL);
                        chunk[k - 1] = 'a';
                        if (w < 0) {
                                ck_assert_int_eq(errno, EAGAIN);
                                break;
                        }
                        sent += (size_t)w;
                        if ((size_t)w < k)
                                break;
                }
                r = ade_varlink_stream_read(s);
                if (r == -EAGAIN)
                        continue;
                if (r < 0 || (r = ade_varlink_stream_peek(s, NULL, NULL)) != 0) {
                        *ret_sent_at_error = sent;
                        return r;
                }
        }
}

START_TEST(test_message_at_the_cap_is_taken) {
        AdeVarlinkStream s;
        const char *text;
        size_t len, sent;
        int fd;

        pair(&s, &fd);
        ck_assert_int_eq(feed(&s, fd, ADE_VARLINK_MESSAGE_MAX, true, &sent), 1);
        ck_assert_int_eq(ade_varlink_stream_peek(&s, &text, &len), 1);
        ck_assert_uint_eq(len, ADE_VARLINK_MESSAGE_MAX);
        ck_assert_int_eq(text[0], 'a');
        ck_assert_int_eq(text[len], 0);
        ade_varlink_stream_consume(&s);
        /* The buffer a big message grew is given back once consumed. */
        ck_assert_ptr_null(s.in);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_message_over_the_cap_is_e2big) {
        AdeVarlinkStream s;
        size_t sent;
        int fd;

        pair(&s, &fd);
        ck_assert_int_eq(feed(&s, fd, ADE_VARLINK_MESSAGE_MAX + 1, true, &sent), -E2BIG);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_no_nul_beyond_the_cap_is_e2big) {
        AdeVarlinkStream s;
        size_t sent;
        int fd;

        pair(&s, &fd);
        ck_assert_int_eq(feed(&s, fd, ADE_VARLINK_MESSAGE_MAX + 4096, false, &sent), -E2BIG);
        /* Not before the cap was passed. */
        ck_assert_uint_gt(sent, ADE_VARLINK_MESSAGE_MAX);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

static json_object *message_of(size_t n) {
        _cleanup_free_ char *big = malloc(n + 1);
        json_object *o = json_object_new_object();

        ck_assert_ptr_nonnull(big);
        ck_assert_ptr_nonnull(o);
        memset(big, 'b', n);
        big[n] = 0;
        ck_assert_int_eq(ade_json_add_string(o, "s", big), 0);
        return o;
}

START_TEST(test_queue_over_the_cap_is_e2big_and_queues_nothing) {
        _cleanup_json_ json_object *msg = message_of(ADE_VARLINK_MESSAGE_MAX);
        AdeVarlinkStream s;
        int fd;

        pair(&s, &fd);
        ck_assert_int_eq(ade_varlink_stream_queue(&s, msg), -E2BIG);
        ck_assert_uint_eq(ade_varlink_stream_output_pending(&s), 0);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_unread_output_beyond_the_cap_is_enobufs) {
        _cleanup_json_ json_object *msg = message_of(1024 * 1024);
        AdeVarlinkStream s;
        unsigned queued = 0;
        int fd, r;

        pair(&s, &fd);
        /* The peer never reads: what the kernel takes leaves the buffer, the rest stays. */
        while ((r = ade_varlink_stream_queue(&s, msg)) == 0) {
                queued++;
                ck_assert_int_eq(ade_varlink_stream_flush(&s), -EAGAIN);
                ck_assert_uint_lt(queued, 64);
        }
        ck_assert_int_eq(r, -ENOBUFS);
        ck_assert_uint_le(ade_varlink_stream_output_pending(&s), ADE_VARLINK_OUTPUT_MAX);
        ck_assert_uint_gt(ade_varlink_stream_output_pending(&s), ADE_VARLINK_OUTPUT_MAX - 1024 * 1024 - 16);
        close(fd);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_partial_writes_deliver_the_message_whole) {
        _cleanup_json_ json_object *msg = message_of(4 * 1024 * 1024);
        AdeVarlinkStream a, b;
        const char *text, *want;
        size_t len;
        int fd, r;

        pair(&a, &fd);
        ade_varlink_stream_init(&b, fd);
        ck_assert_int_eq(ade_varlink_stream_queue(&a, msg), 0);
        ck_assert_int_eq(ade_varlink_stream_flush(&a), -EAGAIN);
        for (;;) {
                r = ade_varlink_stream_read(&b);
                if (r == -EAGAIN) {
                        r = ade_varlink_stream_flush(&a);
                        ck_assert(r == 0 || r == -EAGAIN);
                        continue;
                }
                ck_assert_int_gt(r, 0);
                if (ade_varlink_stream_peek(&b, &text, &len) == 1)
                        break;
        }
        want = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        ck_assert_uint_eq(len, strlen(want));
        ck_assert_mem_eq(text, want, len + 1);
        ck_assert_uint_eq(ade_varlink_stream_output_pending(&a), 0);
        ade_varlink_stream_done(&a);
        ade_varlink_stream_done(&b);
}
END_TEST

START_TEST(test_flush_to_a_closed_peer_is_epipe) {
        _cleanup_json_ json_object *msg = json_object_new_object();
        AdeVarlinkStream s;
        int fd;

        pair(&s, &fd);
        close(fd);
        ck_assert_int_eq(ade_varlink_stream_queue(&s, msg), 0);
        ck_assert_int_eq(ade_varlink_stream_flush(&s), -EPIPE);
        ade_varlink_stream_done(&s);
}
END_TEST

START_TEST(test_done_closes_the_socket) {
        AdeVarlinkStream s;
        char c;
        int fd;

        pair(&s, &fd);
        ade_varlink_stream_done(&s);
        ck_assert_int_eq(s.fd, -EBADF);
        ck_assert_int_eq(recv(fd, &c, 1, MSG_DONTWAIT), 0);
        close(fd);
        ade_varlink_stream_done(&s); /* twice is harmless */
}
END_TEST

int main(void) {
        Suite *s = suite_create("varlink-stream");
        TCase *tc = ade_test_case("stream");

        tcase_add_test(tc, test_queued_message_arrives_with_its_nul);
        tcase_add_test(tc, test_two_messages_in_one_read_come_out_in_order);
        tcase_add_test(tc, test_partial_message_waits_for_its_nul);
        tcase_add_test(tc, test_read_without_data_is_eagain_and_eof_is_zero);
        tcase_add_test(tc, test_message_at_the_cap_is_taken);
        tcase_add_test(tc, test_message_over_the_cap_is_e2big);
        tcase_add_test(tc, test_no_nul_beyond_the_cap_is_e2big);
        tcase_add_test(tc, test_queue_over_the_cap_is_e2big_and_queues_nothing);
        tcase_add_test(tc, test_unread_output_beyond_the_cap_is_enobufs);
        tcase_add_test(tc, test_partial_writes_deliver_the_message_whole);
        tcase_add_test(tc, test_flush_to_a_closed_peer_is_epipe);
        tcase_add_test(tc, test_done_closes_the_socket);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
