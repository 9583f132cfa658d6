/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ade-keysocket.h"
#include "ade-test.h"

/* An abstract address from @name, whose first byte stands for the leading NUL ("@…" as systemd
 * writes it); @n bytes of it, or all of it when @n is 0. */
static socklen_t address(struct sockaddr_un *sa, const char *name, size_t n) {
        if (n == 0)
                n = strlen(name);
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, name, n);
        if (name[0] == '@')
                sa->sun_path[0] = 0;
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static int parse(const char *name, size_t n, char **ret) {
        struct sockaddr_un sa;
        socklen_t len = address(&sa, name, n);

        return ade_keysocket_volume_from_address(&sa, len, ret);
}

START_TEST(test_address_plain) {
        _cleanup_free_ char *v = NULL;

        ck_assert_int_eq(parse("@3f2a9c0e1b7d4a55/cryptsetup/ade-0b2b5f4e-5d1c-4c4e-9d4f-0a3c2b1d9e8f", 0, &v), 0);
        ck_assert_str_eq(v, "ade-0b2b5f4e-5d1c-4c4e-9d4f-0a3c2b1d9e8f");
        free(v);
        v = NULL;
        ck_assert_int_eq(parse("@a/cryptsetup/x", 0, &v), 0); /* PRIx64 drops leading zeros */
        ck_assert_str_eq(v, "x");
}
END_TEST

/* Every malformed or unsupported address is refused; nothing is returned. */
START_TEST(test_address_refused) {
        static const struct {
                const char *name;
                int error;
        } rows[] = {
                {"@3f2a/cryptsetup-pkcs11/data", -EPROTONOSUPPORT},
                {"@3f2a/cryptsetup-fido2/data", -EPROTONOSUPPORT},
                {"@3f2a/cryptsetup-tpm2/data", -EPROTONOSUPPORT},
                {"/run/some/path", -EINVAL},                      /* bound to a path */
                {"@", -EINVAL},                                   /* abstract, empty */
                {"@/cryptsetup/data", -EINVAL},                   /* no random part */
                {"@3f2a9c0e1b7d4a5511/cryptsetup/data", -EINVAL}, /* more than 64 bits */
                {"@3g2a/cryptsetup/data", -EINVAL},               /* not hex */
                {"@3f2a/cryptsetup/", -EINVAL},                   /* no volume */
                {"@3f2a/cryptsetup", -EINVAL},
                {"@3f2a/cryptsetupdata", -EINVAL},
                {"@3f2a/luks/data", -EINVAL},
                {"@3f2a/cryptsetup/a/b", -EINVAL}, /* a path, not a name */
                {"@3f2a/cryptsetup/..", -EINVAL},
                {"@3f2a/cryptsetup/.", -EINVAL},
                {"@3f2a/cryptsetup/da ta", -EINVAL},
                {"@3f2a/cryptsetup/da\tta", -EINVAL},
                {"@3f2a/cryptsetup/d\xc3\xa4ta", -EINVAL},
        };

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                char *v = NULL;

                ck_assert_msg(parse(rows[i].name, 0, &v) == rows[i].error, "row %zu: %s", i, rows[i].name);
                ck_assert_ptr_null(v);
        }
}
END_TEST

START_TEST(test_address_embedded_nul_and_length) {
        char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
        char *v = NULL;

        /* A NUL inside the volume name: the peer's name is the whole address, not a C string. */
        ck_assert_int_eq(parse("@3f2a/cryptsetup/ab\0cd", 22, &v), -EINVAL);
        ck_assert_ptr_null(v);

        /* A volume filling the rest of sun_path is read whole, without a terminating NUL. */
        memset(name, 'v', sizeof(name));
        memcpy(name, "@3f2a/cryptsetup/", 17);
        ck_assert_int_eq(parse(name, sizeof(((struct sockaddr_un *)0)->sun_path), &v), 0);
        ck_assert_uint_eq(strlen(v), sizeof(((struct sockaddr_un *)0)->sun_path) - 17);
        free(v);
}
END_TEST

static char dir[] = "/tmp/ade-test-keysocket.XXXXXX";
static char path[sizeof(dir) + 16];

/* A listening socket at @path. */
static int listen_here(void) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        unlink(path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        return fd;
}

struct request {
        const char *volume;
        AdeSecret *key;
        int r;
};

static void *request_thread(void *p) {
        struct request *req = p;

        req->r = ade_keysocket_request(path, req->volume, &req->key);
        return NULL;
}

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/key.socket", dir);
}

static void teardown(void) {
        unlink(path);
        rmdir(dir);
        memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

/* systemd-cryptsetup's side against ours: the server learns the volume from the address, the
 * client reads exactly the key. */
START_TEST(test_round_trip) {
        _cleanup_close_ int lfd = listen_here(), cfd = -EBADF;
        _cleanup_secret_ AdeSecret *key = NULL;
        _cleanup_free_ char *volume = NULL;
        struct request req = {.volume = "ade-0b2b5f4e-5d1c-4c4e-9d4f-0a3c2b1d9e8f"};
        pthread_t t;

        if (geteuid() != 0)
                return; /* the peer must be root: covered when run as root, as CI does */
        ck_assert_int_eq(ade_secret_new_random(172, &key), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, request_thread, &req), 0);
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(cfd, 0);
        ck_assert_int_eq(ade_keysocket_peer_volume(cfd, &volume), 0);
        ck_assert_str_eq(volume, req.volume);
        ck_assert_int_eq(ade_keysocket_send_key(cfd, key), 0);
        close(TAKE_FD(cfd));
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(req.r, 0);
        ck_assert(ade_secret_equal(req.key, key));
        ade_secret_free(req.key);
}
END_TEST

/* A refusal is a close without a byte: the client tells it from a key. */
START_TEST(test_refusal_is_empty) {
        _cleanup_close_ int lfd = listen_here();
        struct request req = {.volume = "data"};
        pthread_t t;
        int cfd;

        ck_assert_int_eq(pthread_create(&t, NULL, request_thread, &req), 0);
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(cfd, 0);
        close(cfd);
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(req.r, -ENOKEY);
        ck_assert_ptr_null(req.key);
}
END_TEST

START_TEST(test_nobody_listens) {
        AdeSecret *key = NULL;

        ck_assert_int_eq(ade_keysocket_request(path, "data", &key), -ENOENT);
        ck_assert_ptr_null(key);
}
END_TEST

/* A peer that is not root is refused before its address is even read. */
START_TEST(test_non_root_peer) {
        _cleanup_close_ int lfd = listen_here(), cfd = -EBADF;
        char *volume = NULL;
        pid_t pid;
        int status;

        if (geteuid() != 0)
                return;
        ck_assert_int_eq(chmod(dir, 0755), 0);
        ck_assert_int_eq(chmod(path, 0666), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                AdeSecret *key = NULL;

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                _exit(ade_keysocket_request(path, "data", &key) == -ENOKEY ? 0 : 1);
        }
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(cfd, 0);
        ck_assert_int_eq(ade_keysocket_peer_volume(cfd, &volume), -EPERM);
        ck_assert_ptr_null(volume);
        close(TAKE_FD(cfd));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A peer that went away mid-answer costs an error, never a SIGPIPE. */
START_TEST(test_peer_gone) {
        _cleanup_close_ int lfd = listen_here(), cfd = -EBADF, client = -EBADF;
        _cleanup_secret_ AdeSecret *key = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int r;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(client, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(cfd, 0);
        close(TAKE_FD(client));
        ck_assert_int_eq(ade_secret_new_random(ADE_KEYSOCKET_KEY_MAX, &key), 0);
        r = ade_keysocket_send_key(cfd, key);
        ck_assert_msg(r == -EPIPE || r == -ECONNRESET, "send_key: %d", r);
}
END_TEST

static Suite *keysocket_suite(void) {
        Suite *s = suite_create("keysocket");
        TCase *tc = ade_test_case("address");

        tcase_add_test(tc, test_address_plain);
        tcase_add_test(tc, test_address_refused);
        tcase_add_test(tc, test_address_embedded_nul_and_length);
        suite_add_tcase(s, tc);

        tc = ade_test_case("protocol");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_refusal_is_empty);
        tcase_add_test(tc, test_nobody_listens);
        tcase_add_test(tc, test_non_root_peer);
        tcase_add_test(tc, test_peer_gone);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        /* SIGPIPE keeps its default action here: test_peer_gone proves send_key never raises it. */
        return ade_test_run(keysocket_suite());
}
