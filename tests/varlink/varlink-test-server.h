/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A varlink server on a socket in a temporary folder, its sd-event loop running in a thread, and raw
 * socket helpers to speak the wire protocol (or break it) without ade's client. */

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <check.h>

#include "ade-varlink.h"

typedef void (*TestServerSetup)(AdeVarlinkServer *s);

typedef struct TestServer {
        sd_event *event;
        AdeVarlinkServer *server;
        pthread_t thread;
        int stop_fd;
        char dir[64];
        char path[128];
} TestServer;

static inline int test_server_on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static inline void *test_server_thread(void *userdata) {
        TestServer *ts = userdata;

        (void)sd_event_loop(ts->event);
        return NULL;
}

/* Creates the server, lets @setup add interfaces and bindings, binds the socket, starts the loop. */
static inline void test_server_start(TestServer *ts, TestServerSetup setup) {
        strcpy(ts->dir, "/tmp/ade-varlink-test-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(ts->dir));
        /* Tests running as root drop privileges in a child to be an ordinary peer. */
        ck_assert_int_eq(chmod(ts->dir, 0755), 0);
        snprintf(ts->path, sizeof(ts->path), "%s/io.example.sock", ts->dir);

        ck_assert_int_ge(sd_event_new(&ts->event), 0);
        ck_assert_int_eq(ade_varlink_server_new(ts->event, &ts->server), 0);
        ck_assert_int_eq(ade_varlink_server_set_info(ts->server, "ade", "test", "1", "https://example.org"), 0);
        setup(ts->server);
        ck_assert_int_eq(ade_varlink_server_listen_address(ts->server, ts->path, 0666, (uid_t)-1, (gid_t)-1), 0);

        ts->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert_int_ge(ts->stop_fd, 0);
        ck_assert_int_ge(sd_event_add_io(ts->event, NULL, ts->stop_fd, EPOLLIN, test_server_on_stop, NULL), 0);
        ck_assert_int_eq(pthread_create(&ts->thread, NULL, test_server_thread, ts), 0);
}

static inline void test_server_stop(TestServer *ts) {
        uint64_t one = 1;
        char cmd[128];

        ck_assert_int_eq(write(ts->stop_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
        ck_assert_int_eq(pthread_join(ts->thread, NULL), 0);
        ade_varlink_server_free(ts->server);
        sd_event_unref(ts->event);
        close(ts->stop_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ts->dir);
        ck_assert_int_eq(system(cmd), 0);
}

static inline int raw_connect(const TestServer *ts) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        strcpy(sa.sun_path, ts->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

/* Sends @s and its NUL. */
static inline void raw_send(int fd, const char *s) {
        size_t len = strlen(s) + 1, done = 0;

        while (done < len) {
                ssize_t n = send(fd, s + done, len - done, MSG_NOSIGNAL);
                ck_assert_int_gt(n, 0);
                done += n;
        }
}

/* Reads one message (up to its NUL) within 20 s; NULL on EOF or error. One byte at a time, so that
 * nothing of the next message is lost: fine for tests. */
static inline char *raw_recv(int fd) {
        size_t size = 0, alloc = 256;
        char *buf = malloc(alloc);

        ck_assert_ptr_nonnull(buf);
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                ck_assert_int_eq(poll(&p, 1, 20000), 1);
                n = recv(fd, buf + size, 1, 0);
                if (n <= 0) {
                        free(buf);
                        return NULL;
                }
                if (buf[size] == '\0')
                        return buf;
                if (++size == alloc) {
                        alloc *= 2;
                        buf = realloc(buf, alloc);
                        ck_assert_ptr_nonnull(buf);
                }
        }
}

/* True when the server closed the connection (EOF or reset) within 20 s, having sent nothing. */
static inline bool raw_closed(int fd) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;

        ck_assert_int_eq(poll(&p, 1, 20000), 1);
        return recv(fd, &c, 1, 0) <= 0;
}
