/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ade-emulator: HTTP plumbing. Two libmicrohttpd daemons on loopback, a thread per connection
 * (keep-alive, concurrent clients): HTTPS for Key Vault, ARM and Entra ID, plain HTTP for IMDS
 * and the control API. Each request is classified, meets its faults, is answered by its service
 * under the one state mutex, and is logged. */

#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/rand.h>

#include "ade-base64.h"
#include "emu.h"

Emu emu = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
};

typedef struct EmuDaemonInfo {
        bool tls;
        int port;
} EmuDaemonInfo;

/* Per request: the raw URI (for the query exactly as sent) and the body as it arrives. */
typedef struct EmuRequestContext {
        char *uri;
        char *body;
        size_t body_size;
        bool started;
        bool too_large;
} EmuRequestContext;

static const char *const service_routes[_EMU_SERVICE_MAX] = {
        [EMU_SERVICE_KEYVAULT] = "keyvault",
        [EMU_SERVICE_IMDS_INSTANCE] = "imds-instance",
        [EMU_SERVICE_IMDS_TOKEN] = "imds-token",
        [EMU_SERVICE_ARM] = "arm",
        [EMU_SERVICE_ENTRA] = "entra",
        [EMU_SERVICE_CONTROL] = "control",
};

static const char *const service_log_names[_EMU_SERVICE_MAX] = {
        [EMU_SERVICE_KEYVAULT] = "keyvault",
        [EMU_SERVICE_IMDS_INSTANCE] = "imds",
        [EMU_SERVICE_IMDS_TOKEN] = "imds",
        [EMU_SERVICE_ARM] = "arm",
        [EMU_SERVICE_ENTRA] = "entra",
        [EMU_SERVICE_CONTROL] = "control",
};

const char *emu_service_route(EmuService s) {
        return s >= 0 && s < _EMU_SERVICE_MAX ? service_routes[s] : NULL;
}

const char *emu_service_log_name(EmuService s) {
        return s >= 0 && s < _EMU_SERVICE_MAX ? service_log_names[s] : NULL;
}

/* ---- small helpers shared by the services ---- */

int64_t emu_now(void) {
        return (int64_t)time(NULL);
}

char *emu_format_time(int64_t t) {
        time_t tt = (time_t)t;
        struct tm tm;
        char buf[64];

        if (!gmtime_r(&tt, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.0000000+00:00", &tm) == 0)
                return NULL;
        return strdup(buf);
}

char *emu_new_guid(void) {
        unsigned char b[16];
        char *s;

        if (RAND_bytes(b, sizeof(b)) != 1)
                return NULL;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        if (asprintf(&s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                    b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]) < 0)
                return NULL;
        return s;
}

char *emu_new_version(void) {
        unsigned char b[16];
        char *s = malloc(33);

        if (!s || RAND_bytes(b, sizeof(b)) != 1)
                return mfree(s);
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(s + 2 * i, 3, "%02x", b[i]);
        return s;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static char *form_decode(const char *s, size_t len) {
        char *out = malloc(len + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '+')
                        *o++ = ' ';
                else if (s[i] == '%' && i + 2 < len && unhex(s[i + 1]) >= 0 && unhex(s[i + 2]) >= 0) {
                        *o++ = (char)(unhex(s[i + 1]) * 16 + unhex(s[i + 2]));
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return out;
}

int emu_parse_form(const char *s, size_t len, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        size_t n = 0, i = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        while (i < len) {
                size_t end = i, eq;
                char **nl;

                while (end < len && s[end] != '&')
                        end++;
                if (end > i) {
                        eq = i;
                        while (eq < end && s[eq] != '=')
                                eq++;
                        nl = realloc(l, (n + 3) * sizeof(char *));
                        if (!nl)
                                return -ENOMEM;
                        l = nl;
                        l[n] = form_decode(s + i, eq - i);
                        l[n + 1] = eq < end ? form_decode(s + eq + 1, end - eq - 1) : strdup("");
                        l[n + 2] = NULL;
                        if (!l[n] || !l[n + 1])
                                return -ENOMEM;
                        n += 2;
                }
                i = end + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

const char *emu_form_get(char **form, const char *name) {
        for (size_t i = 0; form && form[i]; i += 2)
                if (streq(form[i], name))
                        return form[i + 1];
        return NULL;
}

unsigned emu_form_count(char **form, const char *name) {
        unsigned n = 0;

        for (size_t i = 0; form && form[i]; i += 2)
                if (streq(form[i], name))
                        n++;
        return n;
}

const char *emu_request_header(const EmuRequest *req, const char *name) {
        return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

const char *emu_request_query(const EmuRequest *req, const char *name) {
        return emu_form_get(req->query, name);
}

unsigned emu_request_query_count(const EmuRequest *req, const char *name) {
        return emu_form_count(req->query, name);
}

const char *emu_request_host(const EmuRequest *req) {
        static __thread char buf[64];
        const char *h = emu_request_header(req, "Host");

        if (!isempty(h))
                return h;
        snprintf(buf, sizeof(buf), "localhost:%d", req->tls ? emu.https_port : emu.http_port);
        return buf;
}

void emu_response_set(EmuResponse *resp, unsigned status, const char *content_type, const char *body, size_t size) {
        free(resp->body);
        resp->status = status;
        resp->body = malloc(size + 1);
        resp->body_size = resp->body ? size : 0;
        if (resp->body) {
                memcpy(resp->body, body, size);
                resp->body[size] = 0;
        }
        if (content_type)
                emu_response_header(resp, "Content-Type", "%s", content_type);
}

void emu_response_json(EmuResponse *resp, unsigned status, json_object *body) {
        _cleanup_free_ char *s = ade_json_to_string(body);

        json_object_put(body);
        if (!s) {
                emu_response_set(resp, 500, "text/plain", "out of memory\n", 14);
                return;
        }
        emu_response_set(resp, status, "application/json; charset=utf-8", s, strlen(s));
}

void emu_response_header(EmuResponse *resp, const char *name, const char *fmt, ...) {
        size_t n = strv_length(resp->headers);
        char *value = NULL, **l;
        va_list ap;
        int r;

        /* A later value replaces an earlier one, so services can override Content-Type. */
        for (size_t i = 0; i < n; i += 2)
                if (strcaseeq(resp->headers[i], name)) {
                        va_start(ap, fmt);
                        r = vasprintf(&value, fmt, ap);
                        va_end(ap);
                        if (r >= 0) {
                                free(resp->headers[i + 1]);
                                resp->headers[i + 1] = value;
                        }
                        return;
                }

        va_start(ap, fmt);
        r = vasprintf(&value, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        l = realloc(resp->headers, (n + 3) * sizeof(char *));
        if (!l) {
                free(value);
                return;
        }
        resp->headers = l;
        l[n] = strdup(name);
        l[n + 1] = value;
        l[n + 2] = NULL;
        if (!l[n]) {
                free(value);
                l[n] = NULL;
        }
}

void emu_response_done(EmuResponse *resp) {
        free(resp->body);
        strv_free(resp->headers);
        *resp = (EmuResponse){};
}

/* ---- classification and faults ---- */

static EmuService classify(bool tls, const char *path) {
        if (!tls) {
                if (startswith(path, "/_emulator/") || streq(path, "/_emulator"))
                        return EMU_SERVICE_CONTROL;
                if (startswith(path, "/metadata/identity/"))
                        return EMU_SERVICE_IMDS_TOKEN;
                return EMU_SERVICE_IMDS_INSTANCE;
        }
        if (startswith_no_case(path, "/subscriptions/") || strcaseeq(path, "/subscriptions"))
                return EMU_SERVICE_ARM;
        if (startswith_no_case(path, "/secrets") || startswith_no_case(path, "/keys"))
                return EMU_SERVICE_KEYVAULT;
        if (strstr(path, "/oauth2/") || strstr(path, "/.well-known/openid-configuration") ||
                startswith(path, "/common/discovery/"))
                return EMU_SERVICE_ENTRA;
        /* The vault's host answers anything else, after its challenge. */
        return EMU_SERVICE_KEYVAULT;
}

static const char *status_code_name(unsigned status) {
        switch (status) {
        case 400:
                return "BadRequest";
        case 404:
                return "NotFound";
        case 410:
                return "Gone";
        case 429:
                return "TooManyRequests";
        case 500:
                return "InternalServerError";
        case 502:
                return "BadGateway";
        case 503:
                return "ServiceUnavailable";
        case 504:
                return "GatewayTimeout";
        default:
                return "Error";
        }
}

static void fault_response(const EmuRequest *req, const EmuFaultAction *fa, EmuResponse *resp) {
        _cleanup_json_ json_object *body = json_object_new_object(), *err = json_object_new_object();
        char message[256];

        if (!body || !err)
                return;
        switch (req->service) {
        case EMU_SERVICE_KEYVAULT:
                if (fa->status == 429) {
                        ade_json_add_string(err, "code", "Throttled");
                        ade_json_add_string(err, "message",
                                "Request was not processed because too many requests were received. "
                                "Reason: VaultRequestTypeLimitReached");
                } else {
                        snprintf(message, sizeof(message), "The service answered %u (injected fault).", fa->status);
                        ade_json_add_string(err, "code", status_code_name(fa->status));
                        ade_json_add_string(err, "message", message);
                }
                json_object_object_add(body, "error", TAKE_PTR(err));
                emu_keyvault_headers(req, resp);
                break;
        case EMU_SERVICE_ARM:
                if (fa->status == 429) {
                        ade_json_add_string(err, "code", "TooManyRequests");
                        ade_json_add_string(err, "message",
                                "The request is being throttled as the limit has been reached for operation type - "
                                "Read_ObservationWindow_00:05:00. For more information, see - "
                                "https://aka.ms/srpthrottlinglimits");
                        emu_response_header(resp, "x-ms-ratelimit-remaining-subscription-reads", "0");
                } else {
                        snprintf(message, sizeof(message), "The server answered %u (injected fault).", fa->status);
                        ade_json_add_string(err, "code", status_code_name(fa->status));
                        ade_json_add_string(err, "message", message);
                }
                json_object_object_add(body, "error", TAKE_PTR(err));
                break;
        case EMU_SERVICE_IMDS_INSTANCE:
                if (fa->status == 410)
                        ade_json_add_string(body, "error",
                                "IMDS is being updated. Retry after some time for a max "
                                "of 70 seconds. For more information refer to aka.ms/azureimds");
                else if (fa->status == 429)
                        ade_json_add_string(body, "error", "Too many requests");
                else {
                        snprintf(message, sizeof(message), "Injected fault %u", fa->status);
                        ade_json_add_string(body, "error", message);
                }
                break;
        case EMU_SERVICE_IMDS_TOKEN:
                ade_json_add_string(body, "error",
                        fa->status == 429   ? "too_many_requests"
                        : fa->status == 404 ? "not_found"
                        : fa->status >= 500 ? "server_error"
                                            : "service_unavailable");
                ade_json_add_string(body, "error_description",
                        fa->status == 410 ? "IMDS is being updated. Retry after some time for a max of 70 seconds."
                                          : "The managed identity service answered with an injected fault.");
                break;
        case EMU_SERVICE_ENTRA:
        default:
                ade_json_add_string(body, "error", fa->status == 429 ? "temporarily_unavailable" : "server_error");
                snprintf(message, sizeof(message),
                        "AADSTS90033: A transient error has occurred. Please try again. (injected %u)", fa->status);
                ade_json_add_string(body, "error_description", message);
                break;
        }
        emu_response_json(resp, fa->status, TAKE_PTR(body));
        if (fa->retry_after >= 0)
                emu_response_header(resp, "Retry-After", "%d", fa->retry_after);
}

static void fault_body(const EmuFaultAction *fa, EmuResponse *resp) {
        _cleanup_free_ char *buf = NULL;
        size_t n = fa->body_size;

        if (fa->body) {
                emu_response_set(resp, 200, "application/json; charset=utf-8", fa->body, strlen(fa->body));
                return;
        }
        /* A syntactically valid JSON document of exactly n bytes, for the clients' size cap. */
        buf = malloc(n + 1);
        if (!buf)
                return;
        if (n >= 12) {
                memcpy(buf, "{\"value\":\"", 10);
                memset(buf + 10, 'a', n - 12);
                memcpy(buf + n - 2, "\"}", 2);
        } else {
                memset(buf, ' ', n);
                if (n >= 2)
                        memcpy(buf, "{}", 2);
        }
        emu_response_set(resp, 200, "application/json; charset=utf-8", buf, n);
}

/* ---- injected latency ---- */

/* Waits on a condition rather than sleeping, so that SIGTERM does not wait out a long latency. */
static pthread_cond_t stop_cond;
static bool stopping;

static void delay(unsigned ms) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&emu.lock);
        while (!stopping && pthread_cond_timedwait(&stop_cond, &emu.lock, &until) != ETIMEDOUT)
                ;
        pthread_mutex_unlock(&emu.lock);
}

static int delay_init(void) {
        pthread_condattr_t attr;
        int r;

        r = pthread_condattr_init(&attr);
        if (r == 0)
                r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (r == 0)
                r = pthread_cond_init(&stop_cond, &attr);
        (void)pthread_condattr_destroy(&attr);
        return -r;
}

/* A "hang" fault: the request waits until the faults are cleared or the emulator stops, as a
 * server that accepted the request and never answers (the client gets nothing, not even a close),
 * and is then dropped unanswered and undone, so that a test knows nothing of it was stored. */
static unsigned hang_generation, hang_held;

static void hang(void) {
        unsigned generation;

        pthread_mutex_lock(&emu.lock);
        generation = hang_generation;
        hang_held++;
        while (!stopping && generation == hang_generation)
                pthread_cond_wait(&stop_cond, &emu.lock);
        hang_held--;
        pthread_mutex_unlock(&emu.lock);
}

void emu_faults_release(void) {
        hang_generation++;
        pthread_cond_broadcast(&stop_cond);
}

unsigned emu_faults_held(void) {
        return hang_held;
}

static void delay_stop(void) {
        pthread_mutex_lock(&emu.lock);
        stopping = true;
        pthread_cond_broadcast(&stop_cond);
        pthread_mutex_unlock(&emu.lock);
}

/* ---- libmicrohttpd callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
        EmuRequestContext *ctx = calloc(1, sizeof(EmuRequestContext));

        (void)cls;
        (void)c;
        if (ctx)
                ctx->uri = strdup(uri);
        return ctx;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe) {
        EmuRequestContext *ctx = *req_cls;

        (void)cls;
        (void)c;
        (void)toe;
        if (!ctx)
                return;
        free(ctx->uri);
        free(ctx->body);
        free(ctx);
        *req_cls = NULL;
}

static void on_connection(
        void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
        (void)cls;
        (void)c;
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                unsigned *id = malloc(sizeof(unsigned));
                if (!id)
                        return;
                pthread_mutex_lock(&emu.lock);
                *id = ++emu.next_connection_id;
                pthread_mutex_unlock(&emu.lock);
                *socket_context = id;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                free(*socket_context);
                *socket_context = NULL;
        }
}

static enum MHD_Result queue(struct MHD_Connection *c, EmuResponse *resp) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        r = MHD_create_response_from_buffer(resp->body_size, resp->body ?: (char *)"", MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        for (size_t i = 0; resp->headers && resp->headers[i] && resp->headers[i + 1]; i += 2)
                (void)MHD_add_response_header(r, resp->headers[i], resp->headers[i + 1]);
        ret = MHD_queue_response(c, resp->status ?: 500, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
        const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls) {
        EmuDaemonInfo *info = cls;
        EmuRequestContext *ctx = *req_cls;
        _cleanup_(strv_freep) char **query = NULL;
        EmuResponse resp = {};
        EmuFaultAction fa = {.retry_after = -1};
        const union MHD_ConnectionInfo *ci;
        const char *q;
        EmuRequest req;
        enum MHD_Result ret;
        bool faulted = false;

        (void)version;
        if (!ctx)
                return MHD_NO;
        if (!ctx->started) {
                ctx->started = true;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (ctx->body_size + *upload_data_size > EMU_BODY_MAX)
                        ctx->too_large = true;
                else {
                        char *b = realloc(ctx->body, ctx->body_size + *upload_data_size + 1);
                        if (!b)
                                return MHD_NO;
                        memcpy(b + ctx->body_size, upload_data, *upload_data_size);
                        ctx->body = b;
                        ctx->body_size += *upload_data_size;
                        ctx->body[ctx->body_size] = 0;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        q = ctx->uri ? strchr(ctx->uri, '?') : NULL;
        q = q ? q + 1 : "";
        if (emu_parse_form(q, strcspn(q, "#"), &query) < 0)
                return MHD_NO;
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        req = (EmuRequest){
                .connection = c,
                .method = method,
                .path = url,
                .raw_query = q,
                .query = query,
                .body = ctx->body ?: "",
                .body_size = ctx->body_size,
                .tls = info->tls,
                .connection_id = ci && ci->socket_context ? *(unsigned *)ci->socket_context : 0,
                .service = classify(info->tls, url),
        };

        if (req.service == EMU_SERVICE_CONTROL) {
                pthread_mutex_lock(&emu.lock);
                emu_control_handle(&req, &resp);
                pthread_mutex_unlock(&emu.lock);
                ret = queue(c, &resp);
                emu_response_done(&resp);
                return ret;
        }

        pthread_mutex_lock(&emu.lock);
        faulted = emu_faults_take(req.service, &fa);
        pthread_mutex_unlock(&emu.lock);

        if (faulted && fa.hang)
                hang();
        if (faulted && fa.latency_ms > 0)
                delay(fa.latency_ms);

        pthread_mutex_lock(&emu.lock);
        if (faulted && (fa.drop || fa.hang)) {
                emu_log_request(&req, 0);
                pthread_mutex_unlock(&emu.lock);
                free(fa.body);
                return MHD_NO;
        }
        if (ctx->too_large)
                emu_response_set(&resp, 413, "text/plain", "request body too large\n", 23);
        else if (faulted && fa.status > 0)
                fault_response(&req, &fa, &resp);
        else if (faulted && (fa.body || fa.body_size > 0))
                fault_body(&fa, &resp);
        else
                switch (req.service) {
                case EMU_SERVICE_KEYVAULT:
                        emu_keyvault_handle(&req, &resp);
                        break;
                case EMU_SERVICE_IMDS_INSTANCE:
                case EMU_SERVICE_IMDS_TOKEN:
                        emu_imds_handle(&req, &resp);
                        break;
                case EMU_SERVICE_ARM:
                        emu_arm_handle(&req, &resp);
                        break;
                case EMU_SERVICE_ENTRA:
                        emu_entra_handle(&req, &resp);
                        break;
                default:
                        emu_response_set(&resp, 404, "text/plain", "not found\n", 10);
                }
        emu_log_request(&req, resp.status);
        pthread_mutex_unlock(&emu.lock);
        free(fa.body);

        ret = queue(c, &resp);
        emu_response_done(&resp);
        return ret;
}

static struct MHD_Daemon *start_daemon(EmuDaemonInfo *info, const char *listen, const char *cert, const char *key) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)info->port)};
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
        struct MHD_Daemon *d;
        const union MHD_DaemonInfo *di;

        if (inet_pton(AF_INET, listen, &sa.sin_addr) != 1)
                return NULL;
        if (info->tls)
                d = MHD_start_daemon(flags | MHD_USE_TLS, (uint16_t)info->port, NULL, NULL, on_request, info,
                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_HTTPS_MEM_CERT, cert,
                        MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
                        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
        else
                d = MHD_start_daemon(flags, (uint16_t)info->port, NULL, NULL, on_request, info, MHD_OPTION_SOCK_ADDR,
                        (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                        on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
        if (!d)
                return NULL;
        di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        if (!di || di->port == 0) {
                MHD_stop_daemon(d);
                return NULL;
        }
        info->port = di->port;
        return d;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return -errno;
        for (;;) {
                char *b;
                size_t k;

                if (n + 4096 > cap) {
                        cap = cap * 2 + 4096;
                        b = realloc(buf, cap + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                k = fread(buf + n, 1, cap - n, f);
                n += k;
                if (k == 0)
                        break;
        }
        if (ferror(f))
                return -EIO;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int emu_read_file(const char *path, char **ret, size_t *ret_size) {
        return read_file(path, ret, ret_size);
}

static int write_ready(const char *dir, int https_port, int http_port) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ char *path = NULL, *ca = NULL, *s = NULL;

        if (!o || asprintf(&path, "%s/ready.json", dir) < 0 || asprintf(&ca, "%s/ca.pem", dir) < 0)
                return -ENOMEM;
        json_object_object_add(o, "https_port", json_object_new_int(https_port));
        json_object_object_add(o, "http_port", json_object_new_int(http_port));
        ade_json_add_string(o, "ca_file", ca);
        json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
        s = ade_json_to_string(o);
        if (!s)
                return -ENOMEM;
        return emu_write_file_atomic(path, s, strlen(s), 0644);
}

static int token_key_setup(const char *dir) {
        _cleanup_free_ char *path = NULL, *x5t = NULL, *x5t256 = NULL;
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned char *der = NULL;
        unsigned n = 0;
        int r, len;

        if (asprintf(&path, "%s/token-key.pem", dir) < 0)
                return -ENOMEM;
        if (emu_pem_load_key(path, &emu.token_key) < 0) {
                r = emu_rsa_generate(2048, &emu.token_key);
                if (r < 0)
                        return r;
                r = emu_pem_save_key(path, emu.token_key);
                if (r < 0)
                        return r;
        }
        /* The key id is the public key's SHA-1, base64url, like Entra's x5t. */
        len = i2d_PUBKEY(emu.token_key, &der);
        if (len <= 0)
                return -ENOMEM;
        r = EVP_Digest(der, (size_t)len, digest, &n, EVP_sha1(), NULL) ? 0 : -EIO;
        OPENSSL_free(der);
        if (r < 0)
                return r;
        emu.token_kid = ade_base64url_encode(digest, n);
        return emu.token_kid ? 0 : -ENOMEM;
}

static void help(void) {
        printf("ade-emulator --dir DIR [--config FILE.json] [--https-port N] [--http-port N]\n"
               "             [--state FILE] [--listen 127.0.0.1]\n\n"
               "A local Azure (Key Vault, IMDS, Entra ID, ARM) for ade's tests; see tests/emulator/README.md.\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {{"dir", required_argument, NULL, 'd'},
                {"config", required_argument, NULL, 'c'}, {"https-port", required_argument, NULL, 's'},
                {"http-port", required_argument, NULL, 'p'}, {"state", required_argument, NULL, 't'},
                {"listen", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'}, {}};
        _cleanup_free_ char *cert = NULL, *key = NULL;
        _cleanup_json_ json_object *overlay = NULL;
        EmuDaemonInfo https = {.tls = true}, http = {.tls = false};
        const char *config_path = NULL, *listen = "127.0.0.1";
        struct MHD_Daemon *d_https = NULL, *d_http = NULL;
        sigset_t mask;
        int c, r, sig;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        free(emu.dir);
                        emu.dir = strdup(optarg);
                        break;
                case 'c':
                        config_path = optarg;
                        break;
                case 's':
                        https.port = atoi(optarg);
                        break;
                case 'p':
                        http.port = atoi(optarg);
                        break;
                case 't':
                        free(emu.state_path);
                        emu.state_path = strdup(optarg);
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        if (!emu.dir) {
                fprintf(stderr, "ade-emulator: --dir is required (run with --help)\n");
                return 2;
        }
        /* Tests must never expose key material beyond this machine. */
        if (!startswith(listen, "127.")) {
                fprintf(stderr, "ade-emulator: --listen %s refused: only loopback (127.0.0.0/8) is served\n", listen);
                return 2;
        }
        if (https.port < 0 || https.port > 65535 || http.port < 0 || http.port > 65535) {
                fprintf(stderr, "ade-emulator: ports must be 0..65535\n");
                return 2;
        }
        if (mkdir(emu.dir, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "ade-emulator: cannot create %s: %m\n", emu.dir);
                return 1;
        }

        if (config_path) {
                _cleanup_free_ char *text = NULL;
                size_t size;

                r = read_file(config_path, &text, &size);
                if (r < 0) {
                        fprintf(stderr, "ade-emulator: cannot read %s: %s\n", config_path, strerror(-r));
                        return 1;
                }
                r = ade_json_parse(text, size, &overlay);
                if (r < 0 || !json_object_is_type(overlay, json_type_object)) {
                        fprintf(stderr, "ade-emulator: %s is not a JSON object\n", config_path);
                        return 1;
                }
        }
        r = emu_config_build(overlay, &emu.config);
        if (r < 0) {
                fprintf(stderr, "ade-emulator: cannot build the scenario: %s\n", strerror(-r));
                return 1;
        }

        r = emu_tls_setup(emu.dir, &cert, &key);
        if (r >= 0)
                r = emu_app_cert_setup(emu.dir, &emu.app_cert);
        if (r >= 0)
                r = token_key_setup(emu.dir);
        if (r < 0) {
                fprintf(stderr, "ade-emulator: cannot create keys and certificates in %s: %s\n", emu.dir, strerror(-r));
                return 1;
        }
        r = emu_vault_init();
        if (r < 0) {
                fprintf(stderr, "ade-emulator: cannot set up the vault%s%s: %s\n", emu.state_path ? " from " : "",
                        emu.state_path ?: "", strerror(-r));
                return 1;
        }

        r = delay_init();
        if (r < 0) {
                fprintf(stderr, "ade-emulator: cannot set up a condition variable: %s\n", strerror(-r));
                return 1;
        }

        /* A signal ignored by whoever started us (a shell's "&" ignores SIGINT) would never reach
         * sigwait(). Threads inherit the mask: only the main thread takes SIGTERM, in sigwait(). */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        d_https = start_daemon(&https, listen, cert, key);
        d_http = d_https ? start_daemon(&http, listen, NULL, NULL) : NULL;
        if (!d_https || !d_http) {
                fprintf(stderr, "ade-emulator: cannot listen on %s (ports %d, %d): %m\n", listen, https.port,
                        http.port);
                if (d_https)
                        MHD_stop_daemon(d_https);
                return 1;
        }
        emu.https_port = https.port;
        emu.http_port = http.port;

        r = write_ready(emu.dir, https.port, http.port);
        if (r < 0) {
                fprintf(stderr, "ade-emulator: cannot write %s/ready.json: %s\n", emu.dir, strerror(-r));
                MHD_stop_daemon(d_http);
                MHD_stop_daemon(d_https);
                return 1;
        }

        while (sigwait(&mask, &sig) != 0)
                ;

        delay_stop();
        MHD_stop_daemon(d_http);
        MHD_stop_daemon(d_https);
        pthread_cond_destroy(&stop_cond);
        emu_control_done();
        emu_vault_done();
        json_object_put(emu.config);
        EVP_PKEY_free(emu.token_key);
        X509_free(emu.app_cert);
        free(emu.token_kid);
        free(emu.dir);
        free(emu.state_path);
        return 0;
}
