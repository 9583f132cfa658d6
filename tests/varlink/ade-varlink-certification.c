/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.varlink.certification on ade's varlink code, in both roles:
 *
 *   ade-varlink-certification --server PATH --idl FILE
 *       serves the interface (its text read from FILE, as Debian's golang-github-varlink-go-dev ships
 *       it) on PATH until SIGTERM; End answers all_ok only when every step got exactly what the
 *       certification defines, in order.
 *   ade-varlink-certification --client PATH
 *       drives a certification server on PATH through Start, Test01..Test11, End, checking each reply;
 *       prints one line per step like varlink-go-certification does and "End: 'true'" only when every
 *       reply was right and the server's End said all_ok. Exit 0 then, 1 otherwise. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <systemd/sd-event.h>

#include "ade-json.h"
#include "ade-log.h"
#include "ade-varlink.h"

#define IFACE "org.varlink.certification."

/* The values each step sends and expects (the certification's fixed script). */
static const char *const step_json[] = {
        /* 0: Test01 reply, Test02 input */ "{\"bool\":true}",
        /* 1: Test02 reply, Test03 input */ "{\"int\":1}",
        /* 2: Test03 reply, Test04 input */ "{\"float\":1.0}",
        /* 3: Test04 reply, Test05 input */ "{\"string\":\"ping\"}",
        /* 4: Test05 reply, Test06 input */
        "{\"bool\":false,\"int\":2,\"float\":3.141592653589793,\"string\":\"a lot of string\"}",
        /* 5: Test06 reply, Test07 input */
        "{\"struct\":{\"bool\":false,\"int\":2,\"float\":3.141592653589793,\"string\":\"a lot of string\"}}",
        /* 6: Test07 reply, Test08 input */ "{\"map\":{\"foo\":\"Foo\",\"bar\":\"Bar\"}}",
        /* 7: Test08 reply, Test09 input */ "{\"set\":{\"one\":{},\"two\":{},\"three\":{}}}",
        /* 8: Test09 reply, Test10 input */
        "{\"mytype\":{\"object\":{\"method\":\"org.varlink.certification.Test09\","
        "\"parameters\":{\"map\":{\"foo\":\"Foo\",\"bar\":\"Bar\"}}},"
        "\"enum\":\"two\",\"struct\":{\"first\":1,\"second\":\"2\"},\"array\":[\"one\",\"two\",\"three\"],"
        "\"dictionary\":{\"foo\":\"Foo\",\"bar\":\"Bar\"},\"stringset\":{\"one\":{},\"two\":{},\"three\":{}},"
        "\"interface\":{\"foo\":[null,{\"Foo\":\"foo\",\"Bar\":\"bar\"},null,{\"one\":\"foo\",\"two\":\"bar\"}],"
        "\"anon\":{\"foo\":true,\"bar\":false}}}}",
};

/* JSON equality as the certification means it: numbers by value (1 == 1.0), a missing field the same
 * as null. */
static bool values_equal(json_object *a, json_object *b) {
        json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

        if ((ta == json_type_int || ta == json_type_double) && (tb == json_type_int || tb == json_type_double))
                return json_object_get_double(a) == json_object_get_double(b);
        if (ta != tb)
                return false;
        switch (ta) {
        case json_type_null:
                return true;
        case json_type_boolean:
                return json_object_get_boolean(a) == json_object_get_boolean(b);
        case json_type_string:
                return streq(json_object_get_string(a), json_object_get_string(b));
        case json_type_array:
                if (json_object_array_length(a) != json_object_array_length(b))
                        return false;
                for (size_t i = 0; i < json_object_array_length(a); i++)
                        if (!values_equal(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
                                return false;
                return true;
        case json_type_object: {
                json_object_object_foreach(a, ka, va) {
                        json_object *vb = NULL;

                        (void)json_object_object_get_ex(b, ka, &vb);
                        if (!values_equal(va, vb))
                                return false;
                }
                json_object_object_foreach(b, kb, vb) {
                        json_object *other = NULL;

                        (void)json_object_object_get_ex(a, kb, &other);
                        if (!other && !values_equal(other, vb))
                                return false;
                }
                return true;
        }
        default:
                return false;
        }
}

static json_object *step(unsigned i) {
        json_object *o = NULL;

        if (ade_json_parse(step_json[i], strlen(step_json[i]), &o) < 0)
                abort();
        return o;
}

/* @parameters without client_id equals @want (a JSON text)? */
static bool parameters_are(json_object *parameters, const char *want) {
        _cleanup_json_ json_object *copy = NULL, *w = NULL;

        if (json_object_deep_copy(parameters, &copy, NULL) < 0 || ade_json_parse(want, strlen(want), &w) < 0)
                return false;
        json_object_object_del(copy, "client_id");
        return values_equal(copy, w);
}

/* ---- server ---- */

typedef struct Client {
        char id[40];
        unsigned next; /* the next test number expected: 1 .. 11, then 12 for End */
        bool ok;
} Client;

static Client clients[64];
static unsigned n_clients;

static Client *client_find(json_object *parameters) {
        const char *id;

        if (ade_json_get_string(parameters, "client_id", &id) < 0)
                return NULL;
        for (unsigned i = 0; i < n_clients; i++)
                if (streq(clients[i].id, id))
                        return &clients[i];
        return NULL;
}

static int certification_error(AdeVarlinkCall *call, Client *cl, const char *wants, json_object *got) {
        _cleanup_json_ json_object *p = json_object_new_object(), *w = NULL;

        cl->ok = false;
        if (ade_json_parse(wants, strlen(wants), &w) < 0)
                return -EINVAL;
        json_object_object_add(p, "wants", json_object_get(w));
        json_object_object_add(p, "got", json_object_get(got));
        return ade_varlink_error(call, IFACE "CertificationError", p);
}

static int method_start(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();
        Client *cl;

        if (n_clients >= ELEMENTSOF(clients))
                n_clients = 0;
        cl = &clients[n_clients++];
        snprintf(cl->id, sizeof(cl->id), "ade-%u-%d", n_clients, (int)getpid());
        cl->next = 1;
        cl->ok = true;
        ade_json_add_string(p, "client_id", cl->id);
        return ade_varlink_reply(call, p);
}

static int method_test(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        unsigned n = (unsigned)(uintptr_t)userdata; /* 1 .. 11 */
        Client *cl = client_find(parameters);

        if (!cl)
                return ade_varlink_error(call, IFACE "ClientIdError", NULL);
        if (cl->next != n)
                cl->ok = false; /* out of order: keep answering, End will say false */
        cl->next = n + 1;

        /* What this test must receive: the previous test's reply (Test01 only the id). */
        if (n >= 2 && n <= 10 && !parameters_are(parameters, step_json[n - 2]))
                return certification_error(call, cl, step_json[n - 2], parameters);

        if (n == 10) {
                if (!(flags & ADE_VARLINK_METHOD_MORE))
                        return certification_error(call, cl, "{\"more\":true}", parameters);
                for (int i = 1; i <= 10; i++) {
                        _cleanup_json_ json_object *p = json_object_new_object();
                        char s[32];
                        int r;

                        snprintf(s, sizeof(s), "Reply number %d", i);
                        ade_json_add_string(p, "string", s);
                        r = i < 10 ? ade_varlink_notify(call, p) : ade_varlink_reply(call, p);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (n == 11) {
                json_object *list;
                bool good = (flags & ADE_VARLINK_METHOD_ONEWAY) &&
                            ade_json_get_array(parameters, "last_more_replies", &list) >= 0 &&
                            json_object_array_length(list) == 10;

                for (int i = 0; good && i < 10; i++) {
                        char s[32];

                        snprintf(s, sizeof(s), "Reply number %d", i + 1);
                        good = streq_ptr(json_object_get_string(json_object_array_get_idx(list, i)), s);
                }
                if (!good)
                        return certification_error(
                                call, cl, "{\"last_more_replies\":\"Reply number 1..10\"}", parameters);
                return ade_varlink_reply(call, NULL);
        }

        _cleanup_json_ json_object *reply = step(n - 1);
        return ade_varlink_reply(call, reply);
}

static int method_end(AdeVarlinkCall *call, json_object *parameters, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *p = json_object_new_object();
        Client *cl = client_find(parameters);

        if (!cl)
                return ade_varlink_error(call, IFACE "ClientIdError", NULL);
        json_object_object_add(p, "all_ok", json_object_new_boolean(cl->ok && cl->next == 12));
        cl->id[0] = '\0';
        return ade_varlink_reply(call, p);
}

static int run_server(const char *path, const char *idl_path) {
        _cleanup_(ade_varlink_server_freep) AdeVarlinkServer *s = NULL;
        _cleanup_free_ char *idl = NULL;
        sd_event *e = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        f = fopen(idl_path, "re");
        if (!f) {
                fprintf(stderr, "Cannot open %s: %m\n", idl_path);
                return 1;
        }
        r = getdelim(&idl, &size, '\0', f) < 0 ? -EIO : 0;
        fclose(f);
        if (r < 0)
                return 1;

        if (sd_event_default(&e) < 0)
                return 1;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        (void)sd_event_add_signal(e, NULL, SIGTERM, NULL, NULL);
        (void)sd_event_add_signal(e, NULL, SIGINT, NULL, NULL);

        r = ade_varlink_server_new(e, &s);
        if (r >= 0)
                r = ade_varlink_server_set_info(
                        s, "ade", "ade certification server", PACKAGE_VERSION, "https://github.com/ade");
        if (r >= 0)
                r = ade_varlink_server_add_interface(s, idl);
        if (r < 0) {
                fprintf(stderr, "Cannot set up the interface from %s: %s\n", idl_path, strerror(-r));
                return 1;
        }
        r = ade_varlink_server_bind_method(s, IFACE "Start", method_start, 0, NULL);
        for (uintptr_t i = 1; r >= 0 && i <= 11; i++) {
                char name[64];

                snprintf(name, sizeof(name), IFACE "Test%02u", (unsigned)i);
                r = ade_varlink_server_bind_method(s, name, method_test, 0, (void *)i);
        }
        if (r >= 0)
                r = ade_varlink_server_bind_method(s, IFACE "End", method_end, 0, NULL);
        if (r >= 0)
                r = ade_varlink_server_listen_address(s, path, 0600, (uid_t)-1, (gid_t)-1);
        if (r < 0) {
                fprintf(stderr, "Cannot serve on %s: %s\n", path, strerror(-r));
                return 1;
        }
        r = sd_event_loop(e);
        s = ade_varlink_server_free(s);
        sd_event_unref(e);
        return r < 0 ? 1 : 0;
}

/* ---- client ---- */

static bool all_good = true;

/* Calls Test@n with client_id plus @params, prints the reply, and checks it equals @want. */
static json_object *client_step(
        AdeVarlinkClient *c, const char *method, const char *id, json_object *params, const char *want) {
        _cleanup_json_ json_object *p = params ? json_object_get(params) : json_object_new_object();
        _cleanup_free_ char *error = NULL;
        json_object *reply = NULL;
        int r;

        ade_json_add_string(p, "client_id", id);
        r = ade_varlink_client_call(c, method, p, &reply, &error);
        if (r < 0 || error) {
                printf("%s() failed: %s\n", method, r < 0 ? strerror(-r) : error);
                all_good = false;
                json_object_put(reply);
                return NULL;
        }
        if (want && !parameters_are(reply, want)) {
                printf("%s: unexpected reply %s\n", method, json_object_to_json_string(reply));
                all_good = false;
        }
        printf("%s: '%s'\n", method + strlen(IFACE), json_object_to_json_string(reply));
        return reply;
}

typedef struct More {
        json_object *strings;
        int n;
        bool bad;
} More;

static int on_test10(json_object *parameters, const char *error, unsigned flags, void *userdata) {
        More *m = userdata;
        const char *s;
        char want[32];

        m->n++;
        snprintf(want, sizeof(want), "Reply number %d", m->n);
        if (error || ade_json_get_string(parameters, "string", &s) < 0 || !streq(s, want) ||
                (m->n < 10) != !!(flags & ADE_VARLINK_REPLY_CONTINUES))
                m->bad = true;
        else
                json_object_array_add(m->strings, json_object_new_string(s));
        printf("  Receive: '%s'\n", json_object_to_json_string(parameters));
        return 0;
}

static int run_client(const char *path) {
        _cleanup_(ade_varlink_client_freep) AdeVarlinkClient *c = NULL;
        _cleanup_json_ json_object *start = NULL, *last = NULL, *end = NULL;
        const char *id;
        bool all_ok = false;
        More more = {};
        int r;

        r = ade_varlink_client_connect(path, &c);
        if (r < 0) {
                printf("Failed to connect to %s: %s\n", path, strerror(-r));
                return 1;
        }
        ade_varlink_client_set_timeout(c, 30 * 1000000ULL);

        r = ade_varlink_client_call(c, IFACE "Start", NULL, &start, NULL);
        if (r < 0 || ade_json_get_string(start, "client_id", &id) < 0) {
                printf("Start() failed\n");
                return 1;
        }
        printf("Start: '%s'\n", id);

        last = client_step(c, IFACE "Test01", id, NULL, step_json[0]);
        for (unsigned n = 2; last && n <= 9; n++) {
                char method[64];
                json_object *next;

                snprintf(method, sizeof(method), IFACE "Test%02u", n);
                next = client_step(c, method, id, last, step_json[n - 1]);
                json_object_put(last);
                last = next;
        }
        if (!last)
                return 1;

        more.strings = json_object_new_array();
        ade_json_add_string(last, "client_id", id);
        printf("Test10() Send:\n");
        r = ade_varlink_client_call_more(c, IFACE "Test10", last, on_test10, &more);
        if (r < 0 || more.bad || more.n != 10) {
                printf("Test10() failed\n");
                all_good = false;
        }
        printf("Test10: '%s'\n", json_object_to_json_string(more.strings));

        {
                _cleanup_json_ json_object *p = json_object_new_object();

                ade_json_add_string(p, "client_id", id);
                json_object_object_add(p, "last_more_replies", more.strings);
                r = ade_varlink_client_send_oneway(c, IFACE "Test11", p);
                if (r < 0) {
                        printf("Test11() failed\n");
                        all_good = false;
                }
                printf("Test11: ''\n");
        }

        end = client_step(c, IFACE "End", id, NULL, NULL);
        if (end)
                (void)ade_json_get_bool(end, "all_ok", &all_ok);
        printf("End: '%s'\n", all_ok && all_good ? "true" : "false");
        return all_ok && all_good ? 0 : 1;
}

static void log_to_stderr(
        int level, const char *file, int line, const char *func, const char *message, void *userdata) {
        fprintf(stderr, "%s\n", message);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {{"server", required_argument, NULL, 's'},
                {"client", required_argument, NULL, 'c'}, {"idl", required_argument, NULL, 'i'},
                {"debug", no_argument, NULL, 'd'}, {}};
        const char *server = NULL, *client = NULL, *idl = NULL;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        server = optarg;
                        break;
                case 'c':
                        client = optarg;
                        break;
                case 'i':
                        idl = optarg;
                        break;
                case 'd':
                        ade_log_set_callback(log_to_stderr, NULL);
                        ade_log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return 2;
                }

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (server && idl)
                return run_server(server, idl);
        if (client)
                return run_client(client);
        fprintf(stderr, "Usage: %s --server PATH --idl FILE | --client PATH\n", argv[0]);
        return 2;
}
