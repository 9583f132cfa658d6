/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#include "ade-disk-encryption-idl.h"
#include "ade-json.h"
#include "ade-test.h"
#include "varlink-test-server.h"

static const char test_idl[] =
        "# A test interface.\n"
        "interface org.example.test\n"
        "\n"
        "type Item (name: string, size: int)\n"
        "\n"
        "# Echoes @text, or the last text Record got.\n"
        "method Ping(text: ?string) -> (text: string)\n"
        "method Types(b: bool, i: int, f: float, s: string, o: object, e: (one, two), a: []string,\n"
        "             m: [string]int, n: ?int, item: ?Item, items: ?[]Item) -> ()\n"
        "# Streams n replies with continues, then a last one.\n"
        "method Count(n: int) -> (i: int)\n"
        "method Record(text: string) -> ()\n"
        "method Admin(value: int) -> ()\n"
        "method Grouped(value: int) -> ()\n"
        "method Watch() -> (i: int)\n"
        "method Fail() -> ()\n"
        "method Unbound() -> ()\n"
        "method BadReply() -> (i: int)\n"
        "# Streams 64 KiB replies until the server refuses to queue more.\n"
        "method Flood() -> (data: string)\n"
        "# Answered later: a worker thread computes, the loop replies (like aded's jobs).\n"
        "method Later(n: int) -> (square: int)\n"
        "# Answers with the error named in @error and parameters @reason.\n"
        "method Raise(error: string, reason: ?object) -> ()\n"
        "# Answers with a string that is not UTF-8 (Latin-1 from a device label, say).\n"
        "method Latin1() -> (text: string)\n"
        "# Opens /dev/null and says whether it could.\n"
        "method Open() -> (errno: int)\n"
        "error Oops (reason: string)\n";

/* An interface that declares its own PermissionDenied, like io.ade.DiskEncryption. */
static const char secure_idl[] = "interface org.example.secure\n"
                                 "method Admin(value: int) -> ()\n"
                                 "error PermissionDenied ()\n";

#define TEST_GROUP ((gid_t)4242)

static TestServer ts;
static char recorded[64] = "nothing";
static int disconnect_pipe[2] = {-1, -1};

static int method_ping(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();
        const char *text = recorded;

        (void)ade_json_get_string(parameters, "text", &text);
        ck_assert_int_eq(ade_json_add_string(p, "text", text), 0);
        return ade_varlink_reply(call, p);
}

static int method_empty(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        return ade_varlink_reply(call, NULL);
}

static int method_count(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();
        int64_t n;

        ck_assert_int_eq(ade_json_get_int64(parameters, "n", &n), 0);
        if (!(flags & ADE_VARLINK_METHOD_MORE)) {
                /* Without "more", report what notify() said. */
                json_object_object_add(p, "i", json_object_new_int(ade_varlink_notify(call, NULL)));
                return ade_varlink_reply(call, p);
        }
        for (int64_t i = 0; i < n; i++) {
                json_object_object_add(p, "i", json_object_new_int64(i));
                ck_assert_int_eq(ade_varlink_notify(call, p), 0);
        }
        json_object_object_add(p, "i", json_object_new_int64(n));
        return ade_varlink_reply(call, p);
}

static int method_record(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        const char *text;

        ck_assert_int_eq(ade_json_get_string(parameters, "text", &text), 0);
        snprintf(recorded, sizeof(recorded), "%s%s", text, (flags & ADE_VARLINK_METHOD_ONEWAY) ? " (oneway)" : "");
        /* Replies to a oneway call are dropped, not errors. */
        return ade_varlink_reply(call, NULL);
}

static void on_watch_disconnect(AdeVarlinkCall *call, void *userdata) {
        int result[2] = {ade_varlink_notify(call, NULL), ade_varlink_call_is_pending(call)};

        ck_assert_int_eq(write(disconnect_pipe[1], result, sizeof(result)), (ssize_t)sizeof(result));
        ade_varlink_call_unref(call);
}

static int method_watch(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();

        /* Kept pending: answered never, only notified; the disconnect callback drops our reference. */
        ade_varlink_call_ref(call);
        ade_varlink_call_set_disconnect_callback(call, on_watch_disconnect);
        json_object_object_add(p, "i", json_object_new_int(1));
        return ade_varlink_notify(call, p);
}

static int method_fail(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        return -EIO;
}

static int flood_pipe[2] = {-1, -1};

static int method_flood(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();
        _cleanup_free_ char *data = malloc(64 * 1024 + 1);
        int r = 0;

        memset(data, 'x', 64 * 1024);
        data[64 * 1024] = '\0';
        ck_assert_int_eq(ade_json_add_string(p, "data", data), 0);
        /* 64 MiB in all, four times the output cap: the peer never reads. */
        for (int i = 0; i < 1024 && r == 0; i++)
                r = ade_varlink_notify(call, p);
        ck_assert_int_eq(write(flood_pipe[1], &r, sizeof(r)), (ssize_t)sizeof(r));
        return 0;
}

/* The daemon's pattern: a worker thread finishes, posts to an eventfd, and the loop answers the call
 * it kept. */
typedef struct LaterJob {
        AdeVarlinkCall *call;
        int64_t n, result;
        int efd;
        sd_event_source *source;
        pthread_t thread;
} LaterJob;

static void *later_worker(void *userdata) {
        LaterJob *j = userdata;
        uint64_t one = 1;

        j->result = j->n * j->n;
        if (write(j->efd, &one, sizeof(one)) < 0)
                abort();
        return NULL;
}

static int on_later_done(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        LaterJob *j = userdata;
        _cleanup_json_ json_object *p = json_object_new_object();

        (void)pthread_join(j->thread, NULL);
        json_object_object_add(p, "square", json_object_new_int64(j->result));
        if (ade_varlink_call_get_flags(j->call) & ADE_VARLINK_METHOD_MORE)
                ck_assert_int_eq(ade_varlink_notify(j->call, p), 0);
        ck_assert_int_eq(ade_varlink_reply(j->call, p), 0);
        ade_varlink_call_unref(j->call);
        sd_event_source_disable_unref(j->source);
        close(j->efd);
        free(j);
        return 0;
}

static int method_later(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        LaterJob *j = calloc(1, sizeof(LaterJob));

        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(ade_json_get_int64(parameters, "n", &j->n), 0);
        j->call = ade_varlink_call_ref(call);
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert_int_ge(j->efd, 0);
        ck_assert_int_ge(sd_event_add_io(ts.event, &j->source, j->efd, EPOLLIN, on_later_done, j), 0);
        ck_assert_int_eq(pthread_create(&j->thread, NULL, later_worker, j), 0);
        return 0; /* no reply yet */
}

static int method_bad_reply(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();

        ck_assert_int_eq(ade_json_add_string(p, "i", "not a number"), 0);
        ck_assert_int_eq(ade_varlink_reply(call, p), -EBADMSG);
        return 0;
}

static int method_oops(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        json_object *reason = NULL;
        const char *error;

        ck_assert_int_eq(ade_json_get_string(parameters, "error", &error), 0);
        (void)ade_json_get_object(parameters, "reason", &reason);
        return ade_varlink_error(call, error, reason);
}

static int method_latin1(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();

        ck_assert_int_eq(ade_json_add_string(p, "text", "caf\xe9 \xff!"), 0);
        return ade_varlink_reply(call, p);
}

static int method_open(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        json_object_object_add(p, "errno", json_object_new_int(fd < 0 ? errno : 0));
        if (fd >= 0)
                close(fd);
        return ade_varlink_reply(call, p);
}

static void setup_test(AdeVarlinkServer *s) {
        ck_assert_int_eq(ade_varlink_server_add_interface(s, test_idl), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Ping", method_ping, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Types", method_empty, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Count", method_count, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Record", method_record, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(
                                 s, "org.example.test.Admin", method_empty, ADE_VARLINK_BIND_ROOT_ONLY, NULL),
                0);
        ck_assert_int_eq(ade_varlink_server_bind_method(
                                 s, "org.example.test.Grouped", method_empty, ADE_VARLINK_BIND_ROOT_OR_GROUP, NULL),
                0);
        ck_assert_int_eq(ade_varlink_server_bind_method(
                                 s, "org.example.test.Watch", method_watch, ADE_VARLINK_BIND_REQUIRES_MORE, NULL),
                0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Fail", method_fail, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.BadReply", method_bad_reply, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Raise", method_oops, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_add_interface(s, secure_idl), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(
                                 s, "org.example.secure.Admin", method_empty, ADE_VARLINK_BIND_ROOT_ONLY, NULL),
                0);
        ade_varlink_server_set_group(s, TEST_GROUP);
        /* Every reply of these tests is checked against the interface. */
        ade_varlink_server_set_validate_replies(s, true);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Flood", method_flood, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Later", method_later, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Latin1", method_latin1, 0, NULL), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Open", method_open, 0, NULL), 0);
        ck_assert_int_eq(pipe2(disconnect_pipe, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(flood_pipe, O_CLOEXEC), 0);
}

static void start(void) {
        test_server_start(&ts, setup_test);
}

static void stop(void) {
        test_server_stop(&ts);
}

/* Calls @method with @params (JSON text) through ade's client; returns the error name or "" for success,
 * and the reply parameters as text in *ret_reply when given. */
static char *call_text(const char *method, const char *params, char **ret_reply) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = NULL, *reply = NULL;
        char *error = NULL;

        if (params)
                ck_assert_int_eq(ade_json_parse(params, strlen(params), &p), 0);
        ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
        ck_assert_int_eq(ade_varlink_client_call(c, method, p, &reply, &error), 0);
        if (ret_reply)
                *ret_reply = ade_json_to_string(reply);
        return error ?: strdup("");
}

/* ---- org.varlink.service ---- */

START_TEST(test_get_info) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.varlink.service.GetInfo", NULL, &reply);
        ck_assert_str_eq(error, "");
        ck_assert_str_eq(reply,
                "{\"vendor\":\"ade\",\"product\":\"test\",\"version\":\"1\",\"url\":\"https://example.org\","
                "\"interfaces\":[\"org.varlink.service\",\"org.example.test\",\"org.example.secure\"]}");
}
END_TEST

START_TEST(test_get_interface_description) {
        _cleanup_free_ char *error = NULL, *reply = NULL;
        _cleanup_json_ json_object *o = NULL;
        const char *text;

        error = call_text(
                "org.varlink.service.GetInterfaceDescription", "{\"interface\":\"org.example.test\"}", &reply);
        ck_assert_str_eq(error, "");
        ck_assert_int_eq(ade_json_parse(reply, strlen(reply), &o), 0);
        ck_assert_int_eq(ade_json_get_string(o, "description", &text), 0);
        ck_assert_str_eq(text, test_idl);
}
END_TEST

START_TEST(test_get_interface_description_unknown) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text(
                "org.varlink.service.GetInterfaceDescription", "{\"interface\":\"org.example.nope\"}", &reply);
        ck_assert_str_eq(error, "org.varlink.service.InterfaceNotFound");
        ck_assert_str_eq(reply, "{\"interface\":\"org.example.nope\"}");
}
END_TEST

START_TEST(test_disk_encryption_interface_embedded) {
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(ade_varlink_server_new(e, &s), 0);
        ck_assert_int_eq(ade_varlink_server_add_interface(s, ade_varlink_idl_disk_encryption), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "io.ade.DiskEncryption.Show", method_empty, 0, NULL), 0);
        ade_varlink_server_free(s);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_add_interface_twice) {
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(ade_varlink_server_new(e, &s), 0);
        ck_assert_int_eq(ade_varlink_server_add_interface(s, test_idl), 0);
        ck_assert_int_eq(ade_varlink_server_add_interface(s, test_idl), -EEXIST);
        ade_varlink_server_free(s);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_bind_undeclared_method) {
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(ade_varlink_server_new(e, &s), 0);
        ck_assert_int_eq(ade_varlink_server_add_interface(s, test_idl), 0);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.test.Nope", method_empty, 0, NULL), -ENOENT);
        ck_assert_int_eq(ade_varlink_server_bind_method(s, "org.example.other.Ping", method_empty, 0, NULL), -ENOENT);
        ade_varlink_server_free(s);
        sd_event_unref(e);
}
END_TEST

/* ---- calls ---- */

START_TEST(test_more_streams_replies) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = json_object_new_object(), *replies = NULL;
        _cleanup_free_ char *error = NULL;

        json_object_object_add(p, "n", json_object_new_int(5));
        ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
        ck_assert_int_eq(ade_varlink_client_collect(c, "org.example.test.Count", p, &replies, &error), 0);
        ck_assert_ptr_null(error);
        ck_assert_int_eq(json_object_array_length(replies), 6);
        for (int i = 0; i < 6; i++) {
                int64_t v;

                ck_assert_int_eq(ade_json_get_int64(json_object_array_get_idx(replies, i), "i", &v), 0);
                ck_assert_int_eq(v, i);
        }
}
END_TEST

START_TEST(test_more_replies_carry_continues) {
        int fd = raw_connect(&ts);

        raw_send(fd, "{\"method\":\"org.example.test.Count\",\"parameters\":{\"n\":2},\"more\":true}");
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *m = raw_recv(fd);
                char want[64];

                snprintf(want, sizeof(want), "{\"parameters\":{\"i\":%d},\"continues\":true}", i);
                ck_assert_str_eq(m, want);
        }
        _cleanup_free_ char *last = raw_recv(fd);
        ck_assert_str_eq(last, "{\"parameters\":{\"i\":2}}");
        close(fd);
}
END_TEST

START_TEST(test_notify_refused_without_more) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.Count", "{\"n\":3}", &reply);
        ck_assert_str_eq(error, "");
        ck_assert_str_eq(reply, "{\"i\":-71}"); /* -EPROTO */
}
END_TEST

START_TEST(test_oneway_gets_no_reply) {
        int fd = raw_connect(&ts);
        _cleanup_free_ char *m = NULL;

        raw_send(fd, "{\"method\":\"org.example.test.Record\",\"parameters\":{\"text\":\"hello\"},\"oneway\":true}");
        raw_send(fd, "{\"method\":\"org.example.test.Ping\"}");
        /* The first reply is Ping's: the oneway call ran and answered nothing. */
        m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"hello (oneway)\"}}");
        close(fd);
}
END_TEST

START_TEST(test_oneway_through_client) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = json_object_new_object(), *reply = NULL;
        const char *text;

        ck_assert_int_eq(ade_json_add_string(p, "text", "bye"), 0);
        ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
        ck_assert_int_eq(ade_varlink_client_send_oneway(c, "org.example.test.Record", p), 0);
        ck_assert_int_eq(ade_varlink_client_call(c, "org.example.test.Ping", NULL, &reply, NULL), 0);
        ck_assert_int_eq(ade_json_get_string(reply, "text", &text), 0);
        ck_assert_str_eq(text, "bye (oneway)");
}
END_TEST

START_TEST(test_pipelined_calls_answered_in_order) {
        int fd = raw_connect(&ts);
        const char *want[] = {
                "{\"parameters\":{\"i\":0},\"continues\":true}",
                "{\"parameters\":{\"i\":1},\"continues\":true}",
                "{\"parameters\":{\"i\":2}}",
                "{\"parameters\":{\"text\":\"a\"}}",
                "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"org.example.test.X\"}}",
                "{\"parameters\":{\"text\":\"b\"}}",
        };
        /* All in one write: the server must not answer Ping before Count has finished streaming. */
        static const char burst[] = "{\"method\":\"org.example.test.Count\",\"parameters\":{\"n\":2},\"more\":true}\0"
                                    "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"a\"}}\0"
                                    "{\"method\":\"org.example.test.X\"}\0"
                                    "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"b\"}}";

        ck_assert_int_eq(send(fd, burst, sizeof(burst), MSG_NOSIGNAL), (ssize_t)sizeof(burst));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                _cleanup_free_ char *m = raw_recv(fd);
                ck_assert_str_eq(m, want[i]);
        }
        close(fd);
}
END_TEST

START_TEST(test_many_pipelined_calls_all_answered_in_order) {
        _cleanup_free_ char *burst = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&burst, &len);
        int fd = raw_connect(&ts);

        /* More calls than the server dispatches per turn: the rest must still come, in order. */
        for (int i = 0; i < 500; i++) {
                fprintf(f, "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"%d\"}}", i);
                fputc('\0', f);
        }
        ck_assert_int_eq(fclose(f), 0);
        for (size_t done = 0; done < len;) {
                ssize_t n = send(fd, burst + done, len - done, MSG_NOSIGNAL);
                ck_assert_int_gt(n, 0);
                done += n;
        }
        for (int i = 0; i < 500; i++) {
                _cleanup_free_ char *m = raw_recv(fd), *want = NULL;

                ck_assert_int_gt(asprintf(&want, "{\"parameters\":{\"text\":\"%d\"}}", i), 0);
                ck_assert_str_eq(m, want);
        }
        close(fd);
}
END_TEST

START_TEST(test_large_message_under_cap_accepted) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = json_object_new_object(), *reply = NULL;
        size_t size = 4 * 1024 * 1024;
        _cleanup_free_ char *text = malloc(size + 1);
        const char *back;

        memset(text, 'x', size);
        text[size] = '\0';
        ck_assert_int_eq(ade_json_add_string(p, "text", text), 0);
        ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
        ck_assert_int_eq(ade_varlink_client_call(c, "org.example.test.Ping", p, &reply, NULL), 0);
        ck_assert_int_eq(ade_json_get_string(reply, "text", &back), 0);
        ck_assert_uint_eq(strlen(back), size);
        /* The connection goes on serving small calls after it. */
        json_object_put(TAKE_PTR(reply));
        ck_assert_int_eq(ade_varlink_client_call(c, "org.example.test.Ping", NULL, &reply, NULL), 0);
}
END_TEST

START_TEST(test_reply_later_from_worker) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.Later", "{\"n\":12}", &reply);
        ck_assert_str_eq(error, "");
        ck_assert_str_eq(reply, "{\"square\":144}");
}
END_TEST

START_TEST(test_notify_later_from_worker) {
        int fd = raw_connect(&ts);
        _cleanup_free_ char *first = NULL, *last = NULL, *m = NULL;

        /* The pending call holds back the next one (Ping) until the worker's answer is in. */
        raw_send(fd, "{\"method\":\"org.example.test.Later\",\"parameters\":{\"n\":3},\"more\":true}");
        raw_send(fd, "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"after\"}}");
        first = raw_recv(fd);
        ck_assert_str_eq(first, "{\"parameters\":{\"square\":9},\"continues\":true}");
        last = raw_recv(fd);
        ck_assert_str_eq(last, "{\"parameters\":{\"square\":9}}");
        m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"after\"}}");
        close(fd);
}
END_TEST

START_TEST(test_method_not_found) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.Nope", NULL, &reply);
        ck_assert_str_eq(error, "org.varlink.service.MethodNotFound");
        ck_assert_str_eq(reply, "{\"method\":\"org.example.test.Nope\"}");
}
END_TEST

START_TEST(test_interface_not_found) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.nope.Ping", NULL, &reply);
        ck_assert_str_eq(error, "org.varlink.service.InterfaceNotFound");
        ck_assert_str_eq(reply, "{\"interface\":\"org.example.nope\"}");
}
END_TEST

START_TEST(test_method_not_implemented) {
        _cleanup_free_ char *error = NULL;

        error = call_text("org.example.test.Unbound", NULL, NULL);
        ck_assert_str_eq(error, "org.varlink.service.MethodNotImplemented");
}
END_TEST

START_TEST(test_expected_more) {
        _cleanup_free_ char *error = NULL;

        error = call_text("org.example.test.Watch", NULL, NULL);
        ck_assert_str_eq(error, "org.varlink.service.ExpectedMore");
}
END_TEST

START_TEST(test_method_failure_is_system_error) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.Fail", NULL, &reply);
        ck_assert_str_eq(error, "io.ade.System");
        ck_assert_ptr_nonnull(strstr(reply, "\"errno\":5"));
}
END_TEST

/* ---- reply validation ---- */

START_TEST(test_reply_not_matching_interface_refused) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.BadReply", NULL, &reply);
        ck_assert_str_eq(error, "io.ade.System");
        ck_assert_ptr_nonnull(
                strstr(reply, "reply of org.example.test.BadReply does not match the interface: field i"));
}
END_TEST

START_TEST(test_declared_error_passes) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.Raise",
                "{\"error\":\"org.example.test.Oops\",\"reason\":{\"reason\":\"x\"}}", &reply);
        ck_assert_str_eq(error, "org.example.test.Oops");
        ck_assert_str_eq(reply, "{\"reason\":\"x\"}");
}
END_TEST

START_TEST(test_error_not_matching_declaration_refused) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text(
                "org.example.test.Raise", "{\"error\":\"org.example.test.Oops\",\"reason\":{\"reason\":1}}", &reply);
        ck_assert_str_eq(error, "io.ade.System");
        ck_assert_ptr_nonnull(strstr(reply, "field reason"));
}
END_TEST

START_TEST(test_undeclared_error_of_own_interface_refused) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        error = call_text("org.example.test.Raise", "{\"error\":\"org.example.test.Nope\"}", &reply);
        ck_assert_str_eq(error, "io.ade.System");
        ck_assert_ptr_nonnull(strstr(reply, "undeclared error"));
}
END_TEST

START_TEST(test_foreign_error_passes) {
        _cleanup_free_ char *error = NULL;

        error = call_text("org.example.test.Raise", "{\"error\":\"org.example.other.Whatever\"}", NULL);
        ck_assert_str_eq(error, "org.example.other.Whatever");
}
END_TEST

START_TEST(test_bad_error_name_refused) {
        _cleanup_free_ char *error = NULL, *reply = NULL;

        /* ade_varlink_error() refuses a name that is not an error name; the method then never replied. */
        error = call_text("org.example.test.Raise", "{\"error\":\"bad name\\\"\"}", &reply);
        ck_assert_str_eq(error, "io.ade.System");
}
END_TEST

/* ---- parameter validation ---- */

#define VALID_TYPES                                                                                                    \
        "\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{\"any\":[1]},\"e\":\"two\",\"a\":[\"x\",\"y\"],"              \
        "\"m\":{\"k\":1}"

START_TEST(test_types_accepted) {
        _cleanup_free_ char *error = NULL;

        error = call_text("org.example.test.Types",
                "{" VALID_TYPES ",\"n\":null,\"item\":{\"name\":\"a\",\"size\":2},\"items\":[]}", NULL);
        ck_assert_str_eq(error, "");
}
END_TEST

START_TEST(test_float_accepts_integer) {
        _cleanup_free_ char *error = NULL;

        error = call_text("org.example.test.Types",
                "{\"b\":true,\"i\":1,\"f\":2,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", NULL);
        ck_assert_str_eq(error, "");
}
END_TEST

static const struct {
        const char *params;
        const char *parameter;
} invalid[] = {
        {"{\"b\":\"yes\",\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "b"},
        {"{\"b\":true,\"i\":1.5,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "i"},
        {"{\"b\":true,\"i\":\"1\",\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "i"},
        {"{\"b\":true,\"i\":1,\"f\":\"1.5\",\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "f"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":7,\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "s"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":[],\"e\":\"one\",\"a\":[],\"m\":{}}", "o"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"three\",\"a\":[],\"m\":{}}", "e"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":\"x\",\"m\":{}}", "a"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[\"x\",2],\"m\":{}}", "a[1]"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{\"k\":\"v\"}}", "m.k"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":[]}", "m"},
        {"{\"b\":true,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{},\"n\":\"1\"}", "n"},
        {"{" VALID_TYPES ",\"item\":{\"name\":\"a\",\"size\":\"big\"}}", "item.size"},
        {"{" VALID_TYPES ",\"item\":{\"name\":\"a\"}}", "item.size"},
        {"{" VALID_TYPES ",\"item\":{\"name\":\"a\",\"size\":1,\"colour\":\"red\"}}", "item.colour"},
        {"{" VALID_TYPES ",\"items\":[{\"name\":\"a\",\"size\":1},{\"name\":2,\"size\":1}]}", "items[1].name"},
        {"{\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "b"},
        {"{\"b\":null,\"i\":1,\"f\":1.5,\"s\":\"x\",\"o\":{},\"e\":\"one\",\"a\":[],\"m\":{}}", "b"},
        {"{" VALID_TYPES ",\"extra\":1}", "extra"},
};

START_TEST(test_invalid_parameter) {
        _cleanup_free_ char *error = NULL, *reply = NULL, *want = NULL;

        error = call_text("org.example.test.Types", invalid[_i].params, &reply);
        ck_assert_str_eq(error, "org.varlink.service.InvalidParameter");
        ck_assert_int_gt(asprintf(&want, "{\"parameter\":\"%s\"}", invalid[_i].parameter), 0);
        ck_assert_str_eq(reply, want);
}
END_TEST

/* ---- strings that are not what they seem ---- */

static void assert_server_still_answers(void);

/* Whether @s is valid UTF-8 (the judge here is independent of the server's own check). */
static bool utf8_ok(const char *s) {
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                unsigned n = *p < 0x80             ? 0
                             : (*p & 0xe0) == 0xc0 ? 1
                             : (*p & 0xf0) == 0xe0 ? 2
                             : (*p & 0xf8) == 0xf0 ? 3
                                                   : 9;

                if (n == 9)
                        return false;
                p++;
                for (unsigned i = 0; i < n; i++, p++)
                        if ((*p & 0xc0) != 0x80)
                                return false;
        }
        return true;
}

/* Sends @text as one message on a fresh connection and returns the reply. */
static char *raw_call(const char *text) {
        int fd = raw_connect(&ts);
        char *m;

        raw_send(fd, text);
        m = raw_recv(fd);
        close(fd);
        ck_assert_ptr_nonnull(m);
        return m;
}

START_TEST(test_method_with_nul_does_not_run_truncated) {
        /* json-c ends the C string at the NUL: without a check this ran Ping. */
        _cleanup_free_ char *m =
                raw_call("{\"method\":\"org.example.test.Ping\\u0000.Admin\",\"parameters\":{\"text\":\"pong\"}}");

        ck_assert_str_eq(m, "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":"
                            "\"org.example.test.Ping\\u0000.Admin\"}}");
        assert_server_still_answers();
}
END_TEST

START_TEST(test_parameter_with_nul_is_invalid) {
        _cleanup_free_ char *m =
                raw_call("{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"/dev/sda\\u0000x\"}}");

        ck_assert_str_eq(m, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":"
                            "\"text\"}}");
}
END_TEST

START_TEST(test_key_with_nul_is_invalid) {
        /* json-c cuts a key at its NUL ("text"): it must not pass for the key it was cut to. */
        _cleanup_free_ char *m =
                raw_call("{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\\u0000x\":\"pong\"}}");

        ck_assert_str_eq(m, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":"
                            "\"parameters\"}}");
}
END_TEST

START_TEST(test_escaped_backslash_before_u0000_is_no_nul) {
        /* "\\u0000" is a backslash and the text u0000: no NUL. */
        _cleanup_free_ char *m =
                raw_call("{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"a\\\\u0000\"}}");

        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"a\\\\u0000\"}}");
}
END_TEST

START_TEST(test_method_not_utf8_never_echoed_raw) {
        _cleanup_free_ char *m = raw_call("{\"method\":\"org.example.test.P\xffing\",\"parameters\":{}}");

        ck_assert(utf8_ok(m));
        ck_assert_ptr_null(strchr(m, '\xff'));
        ck_assert_ptr_nonnull(startswith(m, "{\"error\":\"org.varlink.service.MethodNotFound\""));
}
END_TEST

START_TEST(test_interface_not_utf8_never_echoed_raw) {
        _cleanup_free_ char *m = raw_call("{\"method\":\"org.\xc3(ample.Ping\"}");

        ck_assert(utf8_ok(m));
        ck_assert_ptr_nonnull(startswith(m, "{\"error\":\"org.varlink.service.MethodNotFound\""));
}
END_TEST

START_TEST(test_parameter_not_utf8_is_invalid) {
        _cleanup_free_ char *m =
                raw_call("{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"\xe9t\xe9\"}}");

        ck_assert_str_eq(m, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":"
                            "\"text\"}}");
}
END_TEST

START_TEST(test_unknown_key_not_utf8_never_echoed_raw) {
        _cleanup_free_ char *m =
                raw_call("{\"method\":\"org.example.test.Types\",\"parameters\":{" VALID_TYPES ",\"\xff\":1}}");

        ck_assert(utf8_ok(m));
        ck_assert_ptr_null(strchr(m, '\xff'));
        ck_assert_ptr_nonnull(startswith(m, "{\"error\":\"org.varlink.service.InvalidParameter\""));
}
END_TEST

START_TEST(test_utf8_parameters_pass) {
        _cleanup_free_ char *m = raw_call("{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":"
                                          "\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x91\"}}");

        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x91\"}}");
}
END_TEST

START_TEST(test_reply_not_utf8_is_sent_as_utf8) {
        _cleanup_free_ char *m = raw_call("{\"method\":\"org.example.test.Latin1\"}");

        /* Each byte that is not UTF-8 becomes U+FFFD. */
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"caf\xef\xbf\xbd \xef\xbf\xbd!\"}}");
}
END_TEST

/* ---- access policy ---- */

/* Calls @method as an ordinary user: in a child that drops to uid 65534 (with supplementary group
 * @group unless it is -1) when we are root, as ourselves otherwise. Returns the error name or "". */
static char *call_unprivileged(const char *method, const char *params, gid_t group) {
        int p[2];
        pid_t pid;
        char buf[256] = {};
        ssize_t n;
        int status;

        if (geteuid() != 0)
                return call_text(method, params, NULL);

        ck_assert_int_eq(pipe(p), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                _cleanup_free_ char *e = NULL;
                gid_t groups[1] = {group};

                close(p[0]);
                if (setgroups(group == (gid_t)-1 ? 0 : 1, groups) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                        setresuid(65534, 65534, 65534) < 0)
                        _exit(2);
                e = call_text(method, params, NULL);
                if (write(p[1], e, strlen(e)) < 0)
                        _exit(3);
                _exit(0);
        }
        close(p[1]);
        n = read(p[0], buf, sizeof(buf) - 1);
        close(p[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return strndup(buf, n > 0 ? (size_t)n : 0);
}

START_TEST(test_root_only_refuses_user) {
        _cleanup_free_ char *error = call_unprivileged("org.example.test.Admin", "{\"value\":1}", (gid_t)-1);

        ck_assert_str_eq(error, "org.varlink.service.PermissionDenied");
}
END_TEST

START_TEST(test_permission_checked_before_parameters) {
        _cleanup_free_ char *error =
                call_unprivileged("org.example.test.Admin", "{\"value\":\"bad\",\"x\":1}", (gid_t)-1);

        ck_assert_str_eq(error, "org.varlink.service.PermissionDenied");
}
END_TEST

START_TEST(test_interface_permission_denied_used) {
        _cleanup_free_ char *error = call_unprivileged("org.example.secure.Admin", "{\"value\":1}", TEST_GROUP);

        ck_assert_str_eq(error, "org.example.secure.PermissionDenied");
}
END_TEST

START_TEST(test_root_passes_root_only) {
        _cleanup_free_ char *error = NULL;

        if (geteuid() != 0)
                return; /* needs uid 0 */
        error = call_text("org.example.secure.Admin", "{\"value\":1}", NULL);
        ck_assert_str_eq(error, "");
}
END_TEST

START_TEST(test_root_or_group_admits_member) {
        _cleanup_free_ char *error = NULL;

        if (geteuid() != 0)
                return; /* needs a peer with TEST_GROUP among its groups */
        error = call_unprivileged("org.example.test.Grouped", "{\"value\":1}", TEST_GROUP);
        ck_assert_str_eq(error, "");
}
END_TEST

START_TEST(test_root_or_group_refuses_non_member) {
        _cleanup_free_ char *error = call_unprivileged("org.example.test.Grouped", "{\"value\":1}", (gid_t)-1);

        ck_assert_str_eq(error, "org.varlink.service.PermissionDenied");
}
END_TEST

START_TEST(test_member_still_gets_invalid_parameter) {
        _cleanup_free_ char *error = NULL;

        if (geteuid() != 0)
                return;
        error = call_unprivileged("org.example.test.Grouped", "{\"value\":true}", TEST_GROUP);
        ck_assert_str_eq(error, "org.varlink.service.InvalidParameter");
}
END_TEST

/* ---- hostile and broken peers ---- */

static void assert_server_still_answers(void) {
        _cleanup_free_ char *error = call_text("org.example.test.Ping", "{\"text\":\"alive\"}", NULL);

        ck_assert_str_eq(error, "");
}

START_TEST(test_no_nul_within_cap_drops_connection) {
        size_t size = ADE_VARLINK_MESSAGE_MAX + 128 * 1024, done = 0;
        _cleanup_free_ char *junk = malloc(size);
        int fd = raw_connect(&ts);

        memset(junk, ' ', size);
        junk[0] = '{';
        while (done < size) {
                ssize_t n = send(fd, junk + done, size - done, MSG_NOSIGNAL);
                if (n <= 0)
                        break; /* the server hung up: expected */
                done += n;
        }
        ck_assert(raw_closed(fd));
        close(fd);
        assert_server_still_answers();
}
END_TEST

START_TEST(test_message_over_cap_drops_connection) {
        /* A syntactically valid 20 MiB call, NUL-terminated. */
        size_t size = 20 * 1024 * 1024, done = 0;
        _cleanup_free_ char *msg = malloc(size + 1);
        static const char head[] = "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"";
        int fd = raw_connect(&ts);

        memset(msg, 'a', size);
        memcpy(msg, head, sizeof(head) - 1);
        memcpy(msg + size - 3, "\"}}", 3);
        msg[size] = '\0';
        while (done < size + 1) {
                ssize_t n = send(fd, msg + done, size + 1 - done, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                done += n;
        }
        ck_assert(raw_closed(fd));
        close(fd);
        assert_server_still_answers();
}
END_TEST

START_TEST(test_invalid_json_drops_connection) {
        int fd = raw_connect(&ts);

        raw_send(fd, "{\"method\": nope");
        ck_assert(raw_closed(fd));
        close(fd);
        assert_server_still_answers();
}
END_TEST

START_TEST(test_message_without_method_drops_connection) {
        int fd = raw_connect(&ts);

        raw_send(fd, "{\"parameters\":{}}");
        ck_assert(raw_closed(fd));
        close(fd);
}
END_TEST

START_TEST(test_non_object_message_drops_connection) {
        int fd = raw_connect(&ts);

        raw_send(fd, "[\"org.example.test.Ping\"]");
        ck_assert(raw_closed(fd));
        close(fd);
}
END_TEST

START_TEST(test_oneway_and_more_drops_connection) {
        int fd = raw_connect(&ts);

        raw_send(fd, "{\"method\":\"org.example.test.Ping\",\"oneway\":true,\"more\":true}");
        ck_assert(raw_closed(fd));
        close(fd);
}
END_TEST

START_TEST(test_silent_reader_does_not_stall_others) {
        int hog = raw_connect(&ts);
        static const char call[] = "{\"method\":\"org.example.test.Count\",\"parameters\":{\"n\":50},\"more\":true}";
        unsigned sent = 0;

        /* Pipeline calls without ever reading, until our own socket buffer is full. */
        ck_assert_int_eq(fcntl(hog, F_SETFL, O_NONBLOCK), 0);
        for (;;) {
                ssize_t n = send(hog, call, sizeof(call), MSG_NOSIGNAL);
                if (n < 0) {
                        struct pollfd p = {.fd = hog, .events = POLLOUT};

                        ck_assert_int_eq(errno, EAGAIN);
                        /* Give the server a moment to drain what it can; stop once it does not. */
                        if (poll(&p, 1, 500) == 0 || sent > 100000)
                                break;
                        continue;
                }
                ck_assert_int_eq(n, (ssize_t)sizeof(call)); /* small messages go whole or not at all */
                sent++;
        }

        for (int i = 0; i < 100; i++) {
                _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
                _cleanup_json_ json_object *reply = NULL;
                _cleanup_free_ char *error = NULL;

                ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
                ade_varlink_client_set_timeout(c, 20 * 1000000ULL);
                ck_assert_int_eq(ade_varlink_client_call(c, "org.varlink.service.GetInfo", NULL, &reply, &error), 0);
                ck_assert_ptr_null(error);
        }
        close(hog);
}
END_TEST

START_TEST(test_output_cap_drops_reader_that_never_reads) {
        struct pollfd p = {.fd = flood_pipe[0], .events = POLLIN};
        int fd = raw_connect(&ts), r;
        char buf[64 * 1024];

        raw_send(fd, "{\"method\":\"org.example.test.Flood\",\"more\":true}");
        ck_assert_int_eq(poll(&p, 1, 20000), 1);
        ck_assert_int_eq(read(flood_pipe[0], &r, sizeof(r)), (ssize_t)sizeof(r));
        ck_assert_int_eq(r, -ENOBUFS);

        /* What the kernel buffered still arrives, then the end: the server dropped us. */
        for (;;) {
                struct pollfd q = {.fd = fd, .events = POLLIN};
                ssize_t n;

                ck_assert_int_eq(poll(&q, 1, 20000), 1);
                n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        break;
        }
        close(fd);
        assert_server_still_answers();
}
END_TEST

START_TEST(test_hundred_concurrent_clients) {
        AdeVarlinkClient *c[100];

        /* All connected at once, each calling in turn: none waits for another. */
        for (int i = 0; i < 100; i++)
                ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c[i]), 0);
        for (int i = 99; i >= 0; i--) {
                _cleanup_json_ json_object *reply = NULL;
                _cleanup_free_ char *error = NULL;

                ck_assert_int_eq(ade_varlink_client_call(c[i], "org.example.test.Ping", NULL, &reply, &error), 0);
                ck_assert_ptr_null(error);
                ade_varlink_client_free(c[i]);
        }
}
END_TEST

START_TEST(test_half_closed_gets_reply) {
        int fd = raw_connect(&ts);
        _cleanup_free_ char *m = NULL;

        raw_send(fd, "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"half\"}}");
        ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
        m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"half\"}}");
        /* Then the server closes its side. */
        ck_assert(raw_closed(fd));
        close(fd);
}
END_TEST

START_TEST(test_trickled_call_does_not_stall_others) {
        static const char call[] = "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"slow\"}}";
        int fd = raw_connect(&ts);
        _cleanup_free_ char *m = NULL;

        for (size_t i = 0; i < sizeof(call); i++) {
                ck_assert_int_eq(send(fd, call + i, 1, MSG_NOSIGNAL), 1);
                if (i == sizeof(call) / 2)
                        assert_server_still_answers();
        }
        m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"slow\"}}");
        close(fd);
}
END_TEST

START_TEST(test_oneway_then_close_still_runs) {
        int fd = raw_connect(&ts);

        /* What "adectl disable --no-wait" does: send oneway, hang up at once. */
        raw_send(fd, "{\"method\":\"org.example.test.Record\",\"parameters\":{\"text\":\"fire and "
                     "forget\"},\"oneway\":true}");
        close(fd);

        /* Ask until the server has handled the hang-up (other connections may be served first). */
        for (int i = 0; i < 2000; i++) {
                _cleanup_free_ char *error = NULL, *reply = NULL;

                error = call_text("org.example.test.Ping", NULL, &reply);
                ck_assert_str_eq(error, "");
                if (streq(reply, "{\"text\":\"fire and forget (oneway)\"}"))
                        return;
                usleep(10 * 1000);
        }
        ck_abort_msg("the oneway call sent before hanging up never ran");
}
END_TEST

START_TEST(test_disconnect_during_more_is_noticed) {
        int fd = raw_connect(&ts);
        _cleanup_free_ char *m = NULL;
        struct pollfd p = {.fd = disconnect_pipe[0], .events = POLLIN};
        int result[2];

        raw_send(fd, "{\"method\":\"org.example.test.Watch\",\"more\":true}");
        m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"i\":1},\"continues\":true}");
        close(fd);

        ck_assert_int_eq(poll(&p, 1, 20000), 1);
        ck_assert_int_eq(read(disconnect_pipe[0], result, sizeof(result)), (ssize_t)sizeof(result));
        ck_assert_int_eq(result[0], -ENOTCONN);
        ck_assert_int_eq(result[1], false);
}
END_TEST

START_TEST(test_call_after_pending_more_waits) {
        int fd = raw_connect(&ts);
        _cleanup_free_ char *m = NULL;
        struct pollfd p = {.fd = fd, .events = POLLIN};

        raw_send(fd, "{\"method\":\"org.example.test.Watch\",\"more\":true}");
        raw_send(fd, "{\"method\":\"org.example.test.Ping\"}");
        m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"i\":1},\"continues\":true}");
        /* Watch never ends, so Ping must not be answered. */
        ck_assert_int_eq(poll(&p, 1, 300), 0);
        close(fd);
}
END_TEST

START_TEST(test_client_connect_missing_socket) {
        AdeVarlinkClient *c = NULL;

        ck_assert_int_eq(ade_varlink_client_connect("/nonexistent/ade/io.example.sock", &c), -ENOENT);
        ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_client_times_out) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;

        ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
        ade_varlink_client_set_timeout(c, 200 * 1000ULL);
        /* Watch needs "more" (a plain call gets ExpectedMore) and then only notifies: no last reply comes. */
        ck_assert_int_eq(ade_varlink_client_call(c, "org.example.test.Watch", NULL, NULL, NULL), 0);
        ck_assert_int_eq(ade_varlink_client_collect(c, "org.example.test.Watch", NULL, NULL, NULL), -ETIMEDOUT);
        /* After a timeout the connection is unusable. */
        ck_assert_int_eq(ade_varlink_client_call(c, "org.example.test.Ping", NULL, NULL, NULL), -ENOTCONN);
}
END_TEST

/* ---- the client against a scripted peer ---- */

typedef struct FakeServer {
        int listen_fd;
        const char *reply; /* sent (with its length, NUL bytes included) after the first message */
        size_t reply_len;
        pthread_t thread;
} FakeServer;

static void *fake_server_thread(void *userdata) {
        FakeServer *f = userdata;
        int fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        char c;

        if (fd < 0)
                return NULL;
        /* Read the call up to its NUL, answer with the script, hang up. */
        while (recv(fd, &c, 1, 0) == 1 && c != '\0')
                ;
        if (f->reply_len > 0)
                (void)send(fd, f->reply, f->reply_len, MSG_NOSIGNAL);
        close(fd);
        return NULL;
}

/* Calls Ping through ade's client against a peer that answers @reply (@len bytes). */
static int client_against(const char *reply, size_t len, json_object **ret_params, char **ret_error) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        FakeServer f = {.reply = reply, .reply_len = len};
        AdeVarlinkClient *c = NULL;
        int r;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/fake.sock", ts.dir);
        f.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(f.listen_fd, 0);
        ck_assert_int_eq(bind(f.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(f.listen_fd, 1), 0);
        ck_assert_int_eq(pthread_create(&f.thread, NULL, fake_server_thread, &f), 0);

        ck_assert_int_eq(ade_varlink_client_connect(sa.sun_path, &c), 0);
        ade_varlink_client_set_timeout(c, 20 * 1000000ULL);
        r = ade_varlink_client_call(c, "org.example.test.Ping", NULL, ret_params, ret_error);
        ade_varlink_client_free(c);
        ck_assert_int_eq(pthread_join(f.thread, NULL), 0);
        close(f.listen_fd);
        unlink(sa.sun_path);
        return r;
}

#define SCRIPT(s) s, sizeof(s) /* with the literal's NUL: the message separator */

START_TEST(test_client_reads_reply) {
        _cleanup_json_ json_object *p = NULL;
        _cleanup_free_ char *error = NULL;
        const char *text;

        ck_assert_int_eq(client_against(SCRIPT("{\"parameters\":{\"text\":\"hi\"}}"), &p, &error), 0);
        ck_assert_ptr_null(error);
        ck_assert_int_eq(ade_json_get_string(p, "text", &text), 0);
        ck_assert_str_eq(text, "hi");
}
END_TEST

START_TEST(test_client_reads_error_reply) {
        _cleanup_json_ json_object *p = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(
                client_against(
                        SCRIPT("{\"error\":\"org.example.test.Oops\",\"parameters\":{\"reason\":\"r\"}}"), &p, &error),
                0);
        ck_assert_str_eq(error, "org.example.test.Oops");
        ck_assert_int_eq(json_object_object_length(p), 1);
}
END_TEST

START_TEST(test_client_reply_without_parameters_is_empty_object) {
        _cleanup_json_ json_object *p = NULL;

        ck_assert_int_eq(client_against(SCRIPT("{}"), &p, NULL), 0);
        ck_assert(json_object_is_type(p, json_type_object));
        ck_assert_int_eq(json_object_object_length(p), 0);
}
END_TEST

START_TEST(test_client_refuses_invalid_json) {
        ck_assert_int_eq(client_against(SCRIPT("{\"parameters\": nope"), NULL, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_client_refuses_continues_on_plain_call) {
        ck_assert_int_eq(client_against(SCRIPT("{\"parameters\":{},\"continues\":true}"), NULL, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_client_refuses_parameters_not_object) {
        ck_assert_int_eq(client_against(SCRIPT("{\"parameters\":[1]}"), NULL, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_client_refuses_error_not_string) {
        ck_assert_int_eq(client_against(SCRIPT("{\"error\":5}"), NULL, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_client_sees_hang_up) {
        ck_assert_int_eq(client_against("", 0, NULL, NULL), -ECONNRESET);
}
END_TEST

START_TEST(test_client_sees_truncated_reply) {
        /* No NUL: the peer hung up mid-message. */
        ck_assert_int_eq(client_against("{\"parameters\":{}}", 16, NULL, NULL), -ECONNRESET);
}
END_TEST

/* ---- limits and the socket ---- */

static void setup_limited(AdeVarlinkServer *s) {
        setup_test(s);
        ade_varlink_server_set_connections_max(s, 0, 2);
}

START_TEST(test_connections_per_uid_capped) {
        int a, b, c;

        test_server_stop(&ts);
        test_server_start(&ts, setup_limited);
        a = raw_connect(&ts);
        b = raw_connect(&ts);
        c = raw_connect(&ts);
        ck_assert(raw_closed(c));
        raw_send(a, "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"a\"}}");
        _cleanup_free_ char *m = raw_recv(a);
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"a\"}}");
        close(a);
        close(b);
        close(c);
}
END_TEST

static void setup_limited_total(AdeVarlinkServer *s) {
        setup_test(s);
        ade_varlink_server_set_connections_max(s, 3, 0);
}

START_TEST(test_connections_total_capped) {
        int a, b, c, d;

        test_server_stop(&ts);
        test_server_start(&ts, setup_limited_total);
        a = raw_connect(&ts);
        b = raw_connect(&ts);
        c = raw_connect(&ts);
        d = raw_connect(&ts);
        ck_assert(raw_closed(d));
        raw_send(c, "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"c\"}}");
        _cleanup_free_ char *m = raw_recv(c);
        ck_assert_str_eq(m, "{\"parameters\":{\"text\":\"c\"}}");
        close(a);
        close(b);
        close(c);
        close(d);
}
END_TEST

/* ---- peers other than root: small shares, so that root is never locked out ---- */

static AdeVarlinkLimits limits;

static void setup_with_limits(AdeVarlinkServer *s) {
        setup_test(s);
        ade_varlink_server_set_limits(s, &limits);
}

static void restart_with_limits(void (*change)(AdeVarlinkLimits *l)) {
        AdeVarlinkLimits l;

        ade_varlink_server_get_limits(ts.server, &l);
        change(&l);
        limits = l;
        test_server_stop(&ts);
        test_server_start(&ts, setup_with_limits);
}

/* A connection that answers a Ping within 20 s (an open one), or not (closed by the server). Never
 * asserts: used in children too. */
static bool fd_answers(int fd) {
        static const char ping[] = "{\"method\":\"org.example.test.Ping\",\"parameters\":{\"text\":\"x\"}}";
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[256];

        if (send(fd, ping, sizeof(ping), MSG_NOSIGNAL) != (ssize_t)sizeof(ping))
                return false;
        if (poll(&p, 1, 20000) != 1)
                return false;
        return recv(fd, buf, sizeof(buf), 0) > 0;
}

static int connect_fd(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        strcpy(sa.sun_path, path);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* A peer in a child: drops to @uid (when we are root), opens @n connections and calls Ping on each,
 * then writes how many were answered to @report and holds them all open until @hold is closed. */
static pid_t peer_start(uid_t uid, unsigned n, int *ret_report, int *ret_hold) {
        int report[2], hold[2];
        pid_t pid;

        ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit rl;
                unsigned answered = 0;
                char c;

                /* Nothing of the parent's stays open here (another peer's hold pipe would keep that
                 * peer waiting), but our two pipes. */
                for (int fd = 3; fd < 1024; fd++)
                        if (fd != report[1] && fd != hold[0])
                                (void)close(fd);
                if (uid != 0 &&
                        (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                        _exit(2);
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                        rl.rlim_cur = rl.rlim_max;
                        (void)setrlimit(RLIMIT_NOFILE, &rl);
                }
                for (unsigned i = 0; i < n; i++) {
                        int fd = connect_fd(ts.path);

                        if (fd >= 0 && fd_answers(fd))
                                answered++;
                }
                if (write(report[1], &answered, sizeof(answered)) != sizeof(answered))
                        _exit(3);
                (void)!read(hold[0], &c, 1);
                _exit(0);
        }
        close(report[1]);
        close(hold[0]);
        *ret_report = report[0];
        *ret_hold = hold[1];
        return pid;
}

static unsigned peer_answered(int report) {
        unsigned n = 0;
        struct pollfd p = {.fd = report, .events = POLLIN};

        ck_assert_int_eq(poll(&p, 1, 60000), 1);
        ck_assert_int_eq(read(report, &n, sizeof(n)), (ssize_t)sizeof(n));
        return n;
}

static void peer_stop(pid_t pid, int report, int hold) {
        int status;

        close(hold);
        close(report);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void small_unprivileged_caps(AdeVarlinkLimits *l) {
        l->unprivileged_max = 3;
        l->unprivileged_per_uid_max = 2;
}

START_TEST(test_unprivileged_peer_capped_per_uid_root_still_answered) {
        int report, hold;
        pid_t pid;

        if (geteuid() != 0)
                return; /* needs to be another uid than the server's peers */
        restart_with_limits(small_unprivileged_caps);
        pid = peer_start(65534, 5, &report, &hold);
        ck_assert_uint_eq(peer_answered(report), 2);
        /* While the peer holds its connections open, root is served, and more than once. */
        for (int i = 0; i < 5; i++)
                assert_server_still_answers();
        peer_stop(pid, report, hold);
}
END_TEST

START_TEST(test_unprivileged_peers_capped_together) {
        int report1, hold1, report2, hold2;
        pid_t a, b;

        if (geteuid() != 0)
                return;
        restart_with_limits(small_unprivileged_caps);
        a = peer_start(65534, 2, &report1, &hold1);
        ck_assert_uint_eq(peer_answered(report1), 2);
        b = peer_start(65533, 2, &report2, &hold2);
        ck_assert_uint_eq(peer_answered(report2), 1);
        assert_server_still_answers();
        peer_stop(a, report1, hold1);
        peer_stop(b, report2, hold2);
}
END_TEST

static void short_idle_timeout(AdeVarlinkLimits *l) {
        l->idle_timeout_usec = 100 * 1000;
}

START_TEST(test_unprivileged_idle_connection_closed_root_kept) {
        int root_fd, status;
        pid_t pid;

        if (geteuid() != 0)
                return;
        restart_with_limits(short_idle_timeout);
        root_fd = raw_connect(&ts);
        /* The peer's connections are closed while it waits: answered once, then gone. */
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct pollfd p;
                char c;
                int fd;

                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(2);
                fd = connect_fd(ts.path);
                if (fd < 0)
                        _exit(3);
                p = (struct pollfd){.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 20000) != 1 || recv(fd, &c, 1, 0) > 0)
                        _exit(4); /* still open after 20 s, or the server sent something */
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        /* Root's idle connection is still there and served. */
        ck_assert(fd_answers(root_fd));
        close(root_fd);
}
END_TEST

static void short_partial_timeout(AdeVarlinkLimits *l) {
        l->partial_timeout_usec = 100 * 1000;
}

START_TEST(test_partial_message_times_out) {
        int fd;

        restart_with_limits(short_partial_timeout);
        fd = raw_connect(&ts);
        ck_assert_int_eq(send(fd, "{\"method\":", 10, MSG_NOSIGNAL), 10);
        ck_assert(raw_closed(fd));
        close(fd);
        assert_server_still_answers();
}
END_TEST

static void small_unprivileged_budget(AdeVarlinkLimits *l) {
        l->unprivileged_buffer_budget = 1536 * 1024;
        l->partial_timeout_usec = 0;
}

START_TEST(test_unprivileged_buffer_budget_drops_connections) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = json_object_new_object(), *reply = NULL;
        size_t size = 4 * 1024 * 1024;
        _cleanup_free_ char *text = malloc(size + 1);
        pid_t pid;
        int status;

        if (geteuid() != 0)
                return;
        restart_with_limits(small_unprivileged_budget);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* Three unterminated 600 KiB messages: together beyond the peers' budget. */
                static char junk[600 * 1024];
                struct pollfd pf[3];
                int fds[3];

                memset(junk, ' ', sizeof(junk));
                junk[0] = '{';
                if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(2);
                for (int i = 0; i < 3; i++) {
                        size_t done = 0;

                        fds[i] = connect_fd(ts.path);
                        if (fds[i] < 0)
                                _exit(3);
                        while (done < sizeof(junk)) {
                                ssize_t n = send(fds[i], junk + done, sizeof(junk) - done, MSG_NOSIGNAL);
                                if (n <= 0)
                                        break; /* dropped */
                                done += n;
                        }
                        pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                }
                /* At least one is closed by the server. */
                if (poll(pf, 3, 20000) < 1)
                        _exit(4);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);

        /* Root's large call still fits. */
        memset(text, 'x', size);
        text[size] = '\0';
        ck_assert_int_eq(ade_json_add_string(p, "text", text), 0);
        ck_assert_int_eq(ade_varlink_client_connect(ts.path, &c), 0);
        ck_assert_int_eq(ade_varlink_client_call(c, "org.example.test.Ping", p, &reply, NULL), 0);
}
END_TEST

START_TEST(test_connections_leave_fds_for_the_server) {
        struct rlimit saved, low;
        int fd, report, hold;
        pid_t pid;

        /* The server's own process may open no more than 256 files; a peer (root here: the caps for
         * other peers are far lower) opens 400 connections. */
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        low = saved;
        low.rlim_cur = 256;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        fd = raw_connect(&ts);
        pid = peer_start(geteuid(), 400, &report, &hold);
        ck_assert_uint_lt(peer_answered(report), 256);
        /* The connection made before still works, and the server can still open a file. */
        raw_send(fd, "{\"method\":\"org.example.test.Open\"}");
        _cleanup_free_ char *m = raw_recv(fd);
        ck_assert_str_eq(m, "{\"parameters\":{\"errno\":0}}");
        peer_stop(pid, report, hold);
        close(fd);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
}
END_TEST

/* Every descriptor taken (the limit lowered under the server) while a peer other than root holds
 * idle connections: root's connection is still taken (with the descriptor kept in reserve), and its
 * call can open a file (the peer's connections make room). */
START_TEST(test_out_of_fds_root_let_in) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct rlimit saved, low;
        int fd, probe, report, hold;
        pid_t pid;

        if (geteuid() != 0)
                return; /* needs another uid for the peer */
        pid = peer_start(65534, 12, &report, &hold);
        ck_assert_uint_eq(peer_answered(report), 12);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        /* The lowest free descriptor: with the limit there, none is free. */
        probe = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        ck_assert_int_ge(probe, 0);
        close(probe);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        low = saved;
        low.rlim_cur = (rlim_t)probe;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        strcpy(sa.sun_path, ts.path);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        raw_send(fd, "{\"method\":\"org.example.test.Open\"}");
        _cleanup_free_ char *m = raw_recv(fd);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
        ck_assert_str_eq(m, "{\"parameters\":{\"errno\":0}}");
        close(fd);
        peer_stop(pid, report, hold);
}
END_TEST

/* Runs in a child: fd 3 must be free for the socket systemd would pass. */
static int listen_auto_child(const char *fdname, int *ret_taken) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;
        char pid[32];
        int fd, r;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/activated.sock", ts.dir);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
                return -errno;
        if (dup2(fd, SD_LISTEN_FDS_START) < 0)
                return -errno;
        if (fd != SD_LISTEN_FDS_START)
                close(fd);
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_FDNAMES", fdname, 1);
        if (sd_event_new(&e) < 0 || ade_varlink_server_new(e, &s) < 0)
                return -ENOMEM;
        r = ade_varlink_server_listen_auto(s);
        ade_varlink_server_free(s);
        sd_event_unref(e);
        if (r < 0)
                return r;
        *ret_taken = r;
        return 0;
}

static int listen_auto_in_child(const char *fdname) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int taken = -1;

                _exit(listen_auto_child(fdname, &taken) < 0 ? 100 : taken);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

START_TEST(test_listen_auto_takes_varlink_fd) {
        ck_assert_int_eq(listen_auto_in_child("varlink"), 1);
}
END_TEST

START_TEST(test_listen_auto_ignores_other_names) {
        ck_assert_int_eq(listen_auto_in_child("key"), 0);
}
END_TEST

START_TEST(test_listen_address_modes) {
        struct stat st;

        ck_assert_int_eq(stat(ts.path, &st), 0);
        ck_assert(S_ISSOCK(st.st_mode));
        ck_assert_int_eq(st.st_mode & 07777, 0666);
}
END_TEST

START_TEST(test_listen_address_creates_folder_0750) {
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;
        char path[192];
        struct stat st;

        snprintf(path, sizeof(path), "%s/sub/io.example.sock", ts.dir);
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(ade_varlink_server_new(e, &s), 0);
        ck_assert_int_eq(ade_varlink_server_listen_address(s, path, 0660, (uid_t)-1, (gid_t)-1), 0);
        snprintf(path, sizeof(path), "%s/sub", ts.dir);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0750);
        ade_varlink_server_free(s);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_listen_address_refuses_live_socket) {
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(ade_varlink_server_new(e, &s), 0);
        ck_assert_int_eq(ade_varlink_server_listen_address(s, ts.path, 0660, (uid_t)-1, (gid_t)-1), -EADDRINUSE);
        ade_varlink_server_free(s);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_listen_address_too_long) {
        AdeVarlinkServer *s = NULL;
        sd_event *e = NULL;
        char path[200];

        memset(path, 'a', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = '\0';
        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(ade_varlink_server_new(e, &s), 0);
        ck_assert_int_eq(ade_varlink_server_listen_address(s, path, 0660, (uid_t)-1, (gid_t)-1), -ENAMETOOLONG);
        ade_varlink_server_free(s);
        sd_event_unref(e);
}
END_TEST

static Suite *varlink_suite(void) {
        Suite *s = suite_create("varlink");
        TCase *tc;

        tc = ade_test_case("service");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_get_info);
        tcase_add_test(tc, test_get_interface_description);
        tcase_add_test(tc, test_get_interface_description_unknown);
        tcase_add_test(tc, test_disk_encryption_interface_embedded);
        tcase_add_test(tc, test_add_interface_twice);
        tcase_add_test(tc, test_bind_undeclared_method);
        suite_add_tcase(s, tc);

        tc = ade_test_case("calls");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_more_streams_replies);
        tcase_add_test(tc, test_more_replies_carry_continues);
        tcase_add_test(tc, test_notify_refused_without_more);
        tcase_add_test(tc, test_oneway_gets_no_reply);
        tcase_add_test(tc, test_oneway_through_client);
        tcase_add_test(tc, test_pipelined_calls_answered_in_order);
        tcase_add_test(tc, test_many_pipelined_calls_all_answered_in_order);
        tcase_add_test(tc, test_reply_later_from_worker);
        tcase_add_test(tc, test_notify_later_from_worker);
        tcase_add_test(tc, test_large_message_under_cap_accepted);
        tcase_add_test(tc, test_method_not_found);
        tcase_add_test(tc, test_interface_not_found);
        tcase_add_test(tc, test_method_not_implemented);
        tcase_add_test(tc, test_expected_more);
        tcase_add_test(tc, test_method_failure_is_system_error);
        tcase_add_test(tc, test_call_after_pending_more_waits);
        tcase_add_test(tc, test_client_connect_missing_socket);
        tcase_add_test(tc, test_client_times_out);
        suite_add_tcase(s, tc);

        tc = ade_test_case("replies");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_reply_not_matching_interface_refused);
        tcase_add_test(tc, test_declared_error_passes);
        tcase_add_test(tc, test_error_not_matching_declaration_refused);
        tcase_add_test(tc, test_undeclared_error_of_own_interface_refused);
        tcase_add_test(tc, test_foreign_error_passes);
        tcase_add_test(tc, test_bad_error_name_refused);
        suite_add_tcase(s, tc);

        tc = ade_test_case("parameters");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_types_accepted);
        tcase_add_test(tc, test_float_accepts_integer);
        tcase_add_loop_test(tc, test_invalid_parameter, 0, ELEMENTSOF(invalid));
        suite_add_tcase(s, tc);

        tc = ade_test_case("access");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_root_only_refuses_user);
        tcase_add_test(tc, test_permission_checked_before_parameters);
        tcase_add_test(tc, test_interface_permission_denied_used);
        tcase_add_test(tc, test_root_passes_root_only);
        tcase_add_test(tc, test_root_or_group_admits_member);
        tcase_add_test(tc, test_root_or_group_refuses_non_member);
        tcase_add_test(tc, test_member_still_gets_invalid_parameter);
        suite_add_tcase(s, tc);

        tc = ade_test_case("hostile");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_no_nul_within_cap_drops_connection);
        tcase_add_test(tc, test_message_over_cap_drops_connection);
        tcase_add_test(tc, test_invalid_json_drops_connection);
        tcase_add_test(tc, test_message_without_method_drops_connection);
        tcase_add_test(tc, test_non_object_message_drops_connection);
        tcase_add_test(tc, test_oneway_and_more_drops_connection);
        tcase_add_test(tc, test_silent_reader_does_not_stall_others);
        tcase_add_test(tc, test_output_cap_drops_reader_that_never_reads);
        tcase_add_test(tc, test_hundred_concurrent_clients);
        tcase_add_test(tc, test_half_closed_gets_reply);
        tcase_add_test(tc, test_trickled_call_does_not_stall_others);
        tcase_add_test(tc, test_disconnect_during_more_is_noticed);
        tcase_add_test(tc, test_oneway_then_close_still_runs);
        suite_add_tcase(s, tc);

        tc = ade_test_case("strings");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_method_with_nul_does_not_run_truncated);
        tcase_add_test(tc, test_parameter_with_nul_is_invalid);
        tcase_add_test(tc, test_key_with_nul_is_invalid);
        tcase_add_test(tc, test_escaped_backslash_before_u0000_is_no_nul);
        tcase_add_test(tc, test_method_not_utf8_never_echoed_raw);
        tcase_add_test(tc, test_interface_not_utf8_never_echoed_raw);
        tcase_add_test(tc, test_parameter_not_utf8_is_invalid);
        tcase_add_test(tc, test_unknown_key_not_utf8_never_echoed_raw);
        tcase_add_test(tc, test_utf8_parameters_pass);
        tcase_add_test(tc, test_reply_not_utf8_is_sent_as_utf8);
        suite_add_tcase(s, tc);

        tc = ade_test_case("client");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_client_reads_reply);
        tcase_add_test(tc, test_client_reads_error_reply);
        tcase_add_test(tc, test_client_reply_without_parameters_is_empty_object);
        tcase_add_test(tc, test_client_refuses_invalid_json);
        tcase_add_test(tc, test_client_refuses_continues_on_plain_call);
        tcase_add_test(tc, test_client_refuses_parameters_not_object);
        tcase_add_test(tc, test_client_refuses_error_not_string);
        tcase_add_test(tc, test_client_sees_hang_up);
        tcase_add_test(tc, test_client_sees_truncated_reply);
        suite_add_tcase(s, tc);

        tc = ade_test_case("socket");
        tcase_add_checked_fixture(tc, start, stop);
        tcase_add_test(tc, test_connections_per_uid_capped);
        tcase_add_test(tc, test_connections_total_capped);
        tcase_add_test(tc, test_unprivileged_peer_capped_per_uid_root_still_answered);
        tcase_add_test(tc, test_unprivileged_peers_capped_together);
        tcase_add_test(tc, test_unprivileged_idle_connection_closed_root_kept);
        tcase_add_test(tc, test_partial_message_times_out);
        tcase_add_test(tc, test_unprivileged_buffer_budget_drops_connections);
        tcase_add_test(tc, test_connections_leave_fds_for_the_server);
        tcase_add_test(tc, test_out_of_fds_root_let_in);
        tcase_add_test(tc, test_listen_auto_takes_varlink_fd);
        tcase_add_test(tc, test_listen_auto_ignores_other_names);
        tcase_add_test(tc, test_listen_address_modes);
        tcase_add_test(tc, test_listen_address_creates_folder_0750);
        tcase_add_test(tc, test_listen_address_refuses_live_socket);
        tcase_add_test(tc, test_listen_address_too_long);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        return ade_test_run(varlink_suite());
}
