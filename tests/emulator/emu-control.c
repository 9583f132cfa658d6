/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fault injection, the request log and the control API (/_emulator/...) on the plain-HTTP port.
 * Everything here runs under emu.lock. */

#include <time.h>

#include "emu.h"

typedef struct EmuFault {
        char *route; /* a service route name or "*" */
        unsigned status;
        int retry_after; /* -1: none */
        unsigned latency_ms;
        bool hang;
        bool drop;
        char *body;
        size_t body_bytes;
        EmuTokenFault token;
        int count;           /* requests (or tokens) left; -1 when bound by time */
        uint64_t until_usec; /* CLOCK_MONOTONIC deadline when bound by time */
} EmuFault;

static EmuFault *faults;
static size_t n_faults;
static json_object *request_log;
static unsigned request_seq;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static void fault_done(EmuFault *f) {
        free(f->route);
        free(f->body);
}

static void faults_clear(void) {
        for (size_t i = 0; i < n_faults; i++)
                fault_done(&faults[i]);
        free(faults);
        faults = NULL;
        n_faults = 0;
}

static void fault_remove(size_t i) {
        fault_done(&faults[i]);
        memmove(faults + i, faults + i + 1, (n_faults - i - 1) * sizeof(EmuFault));
        n_faults--;
}

static bool fault_matches(const EmuFault *f, EmuService s) {
        return streq(f->route, "*") || streq(f->route, emu_service_route(s));
}

/* Drops faults whose time is up. */
static void faults_expire(void) {
        uint64_t now = now_usec();

        for (size_t i = 0; i < n_faults;)
                if (faults[i].count < 0 && faults[i].until_usec <= now)
                        fault_remove(i);
                else
                        i++;
}

static void fault_consume(size_t i) {
        if (faults[i].count > 0 && --faults[i].count == 0)
                fault_remove(i);
}

bool emu_faults_take(EmuService s, EmuFaultAction *ret) {
        faults_expire();
        for (size_t i = 0; i < n_faults; i++) {
                EmuFault *f = &faults[i];

                if (f->token != EMU_TOKEN_FAULT_NONE || !fault_matches(f, s))
                        continue;
                *ret = (EmuFaultAction){
                        .status = f->status,
                        .retry_after = f->retry_after,
                        .latency_ms = f->latency_ms,
                        .hang = f->hang,
                        .drop = f->drop,
                        .body = f->body ? strdup(f->body) : NULL,
                        .body_size = f->body_bytes,
                };
                fault_consume(i);
                return true;
        }
        return false;
}

EmuTokenFault emu_faults_take_token(EmuService s) {
        faults_expire();
        for (size_t i = 0; i < n_faults; i++) {
                EmuTokenFault t = faults[i].token;

                if (t == EMU_TOKEN_FAULT_NONE || !fault_matches(&faults[i], s))
                        continue;
                fault_consume(i);
                return t;
        }
        return EMU_TOKEN_FAULT_NONE;
}

void emu_log_request(const EmuRequest *req, unsigned status) {
        json_object *e;

        if (!request_log) {
                request_log = json_object_new_array();
                if (!request_log)
                        return;
        }
        e = json_object_new_object();
        if (!e)
                return;
        json_object_object_add(e, "seq", json_object_new_int((int)++request_seq));
        ade_json_add_string(e, "service", emu_service_log_name(req->service));
        ade_json_add_string(e, "route", emu_service_route(req->service));
        ade_json_add_string(e, "method", req->method);
        ade_json_add_string(e, "path", req->path);
        ade_json_add_string(e, "query", req->raw_query);
        json_object_object_add(e, "status", json_object_new_int((int)status));
        json_object_object_add(e, "connection", json_object_new_int((int)req->connection_id));
        json_object_object_add(e, "tls", json_object_new_boolean(req->tls));
        json_object_object_add(
                e, "authorization", json_object_new_boolean(emu_request_header(req, "Authorization") != NULL));
        json_object_array_add(request_log, e);
}

static void control_error(EmuResponse *resp, unsigned status, const char *message) {
        json_object *o = json_object_new_object();

        if (o)
                ade_json_add_string(o, "error", message);
        emu_response_json(resp, status, o);
}

static void control_ok(EmuResponse *resp) {
        emu_response_json(resp, 200, json_object_new_object());
}

static bool route_valid(const char *r) {
        if (streq(r, "*"))
                return true;
        for (EmuService s = 0; s < _EMU_SERVICE_MAX; s++)
                if (s != EMU_SERVICE_CONTROL && streq(r, emu_service_route(s)))
                        return true;
        return false;
}

static int fault_parse(json_object *o, EmuFault *f, const char **ret_error) {
        const char *route, *s;
        int64_t v;
        bool b;

        *f = (EmuFault){.retry_after = -1, .count = 1};
        if (!json_object_is_type(o, json_type_object))
                return *ret_error = "the fault must be a JSON object", -EINVAL;
        if (ade_json_get_string(o, "route", &route) < 0 || !route_valid(route))
                return *ret_error = "\"route\" must be keyvault, imds-instance, imds-token, arm, entra or *", -EINVAL;
        f->route = strdup(route);
        if (!f->route)
                return -ENOMEM;

        if (ade_json_get_int64(o, "status", &v) >= 0) {
                if (v < 100 || v > 599)
                        return *ret_error = "\"status\" must be an HTTP status", -EINVAL;
                f->status = (unsigned)v;
        }
        if (ade_json_get_int64(o, "retry_after", &v) >= 0) {
                if (v < 0 || v > 86400)
                        return *ret_error = "\"retry_after\" must be 0..86400 seconds", -EINVAL;
                f->retry_after = (int)v;
        }
        if (ade_json_get_int64(o, "latency_ms", &v) >= 0) {
                if (v < 0 || v > 600000)
                        return *ret_error = "\"latency_ms\" must be 0..600000", -EINVAL;
                f->latency_ms = (unsigned)v;
        }
        if (ade_json_get_bool(o, "hang", &b) >= 0)
                f->hang = b;
        if (ade_json_get_bool(o, "drop", &b) >= 0)
                f->drop = b;
        if (ade_json_get_string(o, "body", &s) >= 0) {
                f->body = strdup(s);
                if (!f->body)
                        return -ENOMEM;
        }
        if (ade_json_get_int64(o, "body_bytes", &v) >= 0) {
                if (v < 1 || v > 64 * 1024 * 1024)
                        return *ret_error = "\"body_bytes\" must be 1..67108864", -EINVAL;
                f->body_bytes = (size_t)v;
        }
        if (ade_json_get_string(o, "token", &s) >= 0) {
                if (streq(s, "expired"))
                        f->token = EMU_TOKEN_FAULT_EXPIRED;
                else if (streq(s, "wrong-audience"))
                        f->token = EMU_TOKEN_FAULT_WRONG_AUDIENCE;
                else
                        return *ret_error = "\"token\" must be \"expired\" or \"wrong-audience\"", -EINVAL;
        }
        if (ade_json_get_int64(o, "count", &v) >= 0) {
                if (v < 1)
                        return *ret_error = "\"count\" must be at least 1", -EINVAL;
                f->count = (int)v;
        }
        if (ade_json_get_int64(o, "seconds", &v) >= 0) {
                if (v < 1 || v > 3600)
                        return *ret_error = "\"seconds\" must be 1..3600", -EINVAL;
                if (json_object_object_get_ex(o, "count", NULL))
                        return *ret_error = "give \"count\" or \"seconds\", not both", -EINVAL;
                f->count = -1;
                f->until_usec = now_usec() + (uint64_t)v * 1000000ULL;
        }
        if (f->status == 0 && !f->drop && !f->body && f->body_bytes == 0 && f->latency_ms == 0 && !f->hang &&
                f->token == EMU_TOKEN_FAULT_NONE)
                return *ret_error = "the fault does nothing: give status, drop, body, body_bytes, latency_ms, hang or "
                                    "token",
                       -EINVAL;
        if (f->token != EMU_TOKEN_FAULT_NONE &&
                (f->status || f->drop || f->body || f->body_bytes || f->latency_ms || f->hang))
                return *ret_error = "a token fault cannot be combined with a response fault", -EINVAL;
        return 0;
}

static void control_faults(const EmuRequest *req, EmuResponse *resp) {
        _cleanup_json_ json_object *o = NULL;
        const char *error = "invalid fault";
        EmuFault f, *nf;
        int r;

        if (streq(req->method, "DELETE")) {
                faults_clear();
                emu_faults_release();
                control_ok(resp);
                return;
        }
        if (streq(req->method, "GET")) {
                json_object *held = json_object_new_object();

                if (held)
                        json_object_object_add(held, "held", json_object_new_int64(emu_faults_held()));
                emu_response_json(resp, 200, held);
                return;
        }
        if (!streq(req->method, "POST")) {
                control_error(resp, 405, "use POST to add a fault, DELETE to clear them, GET to count held requests");
                return;
        }
        if (ade_json_parse(req->body, req->body_size, &o) < 0) {
                control_error(resp, 400, "the body is not JSON");
                return;
        }
        r = fault_parse(o, &f, &error);
        if (r < 0) {
                fault_done(&f);
                control_error(resp, 400, error);
                return;
        }
        nf = realloc(faults, (n_faults + 1) * sizeof(EmuFault));
        if (!nf) {
                fault_done(&f);
                control_error(resp, 500, "out of memory");
                return;
        }
        faults = nf;
        faults[n_faults++] = f;
        control_ok(resp);
}

static void control_requests(const EmuRequest *req, EmuResponse *resp) {
        json_object *o;

        if (streq(req->method, "DELETE")) {
                json_object_put(request_log);
                request_log = NULL;
                request_seq = 0;
                control_ok(resp);
                return;
        }
        if (!streq(req->method, "GET")) {
                control_error(resp, 405, "use GET to read the log, DELETE to clear it");
                return;
        }
        o = json_object_new_object();
        if (o)
                json_object_object_add(
                        o, "requests", request_log ? json_object_get(request_log) : json_object_new_array());
        emu_response_json(resp, 200, o);
}

static void control_state(const EmuRequest *req, EmuResponse *resp) {
        _cleanup_free_ char *base = NULL;

        if (!streq(req->method, "GET")) {
                control_error(resp, 405, "use GET");
                return;
        }
        if (asprintf(&base, "https://localhost:%d", emu.https_port) < 0) {
                control_error(resp, 500, "out of memory");
                return;
        }
        emu_response_json(resp, 200, emu_vault_dump(base));
}

static void control_config(const EmuRequest *req, EmuResponse *resp) {
        if (!streq(req->method, "GET")) {
                control_error(resp, 405, "use GET");
                return;
        }
        emu_response_json(resp, 200, json_object_get(emu.config));
}

void emu_control_handle(const EmuRequest *req, EmuResponse *resp) {
        if (streq(req->path, "/_emulator/faults"))
                control_faults(req, resp);
        else if (streq(req->path, "/_emulator/requests"))
                control_requests(req, resp);
        else if (streq(req->path, "/_emulator/state"))
                control_state(req, resp);
        else if (streq(req->path, "/_emulator/config"))
                control_config(req, resp);
        else
                control_error(resp, 404, "unknown control path: /_emulator/faults, requests, state or config");
}

void emu_control_done(void) {
        faults_clear();
        json_object_put(request_log);
        request_log = NULL;
}
