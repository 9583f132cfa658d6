/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/random.h>

#include "ade-http.h"
#include "ade-json.h"
#include "ade-log.h"

/* Idle easy handles kept by a share; more than this many at once are closed when given back. */
#define SHARE_IDLE_MAX 16

struct AdeHttpShare {
        CURLSH *sh;
        pthread_mutex_t locks[CURL_LOCK_DATA_LAST]; /* one per kind of shared data, as libcurl asks */
        pthread_mutex_t pool_lock;                  /* guards the rest */
        CURL *idle[SHARE_IDLE_MAX];                 /* last in, first out: the warmest connections first */
        size_t n_idle;
        X509_STORE *store; /* the trust store of the clients whose extra CA file is @store_ca_file */
        char *store_ca_file;
};

struct AdeHttp {
        AdeHttpOptions opts;
        CURL *curl;           /* without a share: the one handle, used under @lock */
        pthread_mutex_t lock; /* without a share: one request at a time */
        char *ca_file;
        X509_STORE *store; /* system bundle + extra file, parsed once, given to every TLS context */
};

typedef struct Transfer {
        AdeHttpResponse *resp;
        size_t cap;
        const char *keep_prefix;
        bool overflow;
        char *retry_after;
        char *retry_after_ms;
} Transfer;

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userdata) {
        AdeHttpShare *s = userdata;

        (void)handle;
        (void)access;
        if (data >= 0 && data < CURL_LOCK_DATA_LAST)
                pthread_mutex_lock(&s->locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userdata) {
        AdeHttpShare *s = userdata;

        (void)handle;
        if (data >= 0 && data < CURL_LOCK_DATA_LAST)
                pthread_mutex_unlock(&s->locks[data]);
}

int ade_http_share_new(AdeHttpShare **ret) {
        AdeHttpShare *s;

        assert(ret);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(s->locks); i++)
                pthread_mutex_init(&s->locks[i], NULL);
        pthread_mutex_init(&s->pool_lock, NULL);
        s->sh = curl_share_init();
        if (!s->sh || curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
                curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
                curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s) != CURLSHE_OK ||
                curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
                curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
                ade_http_share_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

AdeHttpShare *ade_http_share_free(AdeHttpShare *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_idle; i++)
                curl_easy_cleanup(s->idle[i]);
        if (s->sh)
                curl_share_cleanup(s->sh);
        X509_STORE_free(s->store);
        free(s->store_ca_file);
        for (size_t i = 0; i < ELEMENTSOF(s->locks); i++)
                pthread_mutex_destroy(&s->locks[i]);
        pthread_mutex_destroy(&s->pool_lock);
        free(s);
        return NULL;
}

/* An easy handle for one request: an idle one (with its open connections), or a new one. */
static CURL *share_take(AdeHttpShare *s) {
        CURL *c = NULL;

        pthread_mutex_lock(&s->pool_lock);
        if (s->n_idle > 0)
                c = s->idle[--s->n_idle];
        pthread_mutex_unlock(&s->pool_lock);
        if (c)
                return c;

        c = curl_easy_init();
        if (c && curl_easy_setopt(c, CURLOPT_SHARE, s->sh) != CURLE_OK) {
                curl_easy_cleanup(c);
                return NULL;
        }
        return c;
}

static void share_give(AdeHttpShare *s, CURL *c) {
        pthread_mutex_lock(&s->pool_lock);
        if (s->n_idle < SHARE_IDLE_MAX) {
                s->idle[s->n_idle++] = c;
                c = NULL;
        }
        pthread_mutex_unlock(&s->pool_lock);
        if (c)
                curl_easy_cleanup(c);
}

void ade_http_options_init(AdeHttpOptions *o) {
        *o = (AdeHttpOptions){.max_retries = ADE_HTTP_RETRIES_DEFAULT};
}

void ade_http_response_done(AdeHttpResponse *r) {
        if (!r)
                return;
        if (r->body) {
                ade_memzero(r->body, r->capacity);
                free(r->body);
        }
        free(r->www_authenticate);
        free(r->content_type);
        strv_free(r->headers);
        *r = (AdeHttpResponse){};
}

/* The trust store: the system bundle plus, when configured, the extra file, after checking that the
 * extra file really holds a certificate (a typo'd path must not silently mean "system only"). Parsing
 * a bundle of ~140 certificates costs more than a TLS handshake, so it is done once per client (once
 * per share) instead of once per connection, as libcurl would with a CA file or blob. */
static int trust_store_new(const char *ca_file, X509_STORE **ret) {
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        const char *system_path = v && v->cainfo ? v->cainfo : "/etc/ssl/certs/ca-certificates.crt";
        X509_STORE *store;
        FILE *f;
        X509 *x;

        if (!isempty(ca_file)) {
                f = fopen(ca_file, "re");
                if (!f)
                        return ade_log_debug_errno(-errno, "Cannot read CA file %s: %m", ca_file);
                x = PEM_read_X509(f, NULL, NULL, NULL);
                fclose(f);
                if (!x) {
                        ERR_clear_error();
                        return ade_log_debug_errno(-EINVAL, "CA file %s holds no PEM certificate", ca_file);
                }
                X509_free(x);
        }

        store = X509_STORE_new();
        if (!store)
                return -ENOMEM;
        /* A machine without a system bundle still trusts the extra file. */
        if (X509_STORE_load_file(store, system_path) != 1) {
                ERR_clear_error();
                ade_log_debug("System CA bundle %s not readable, trusting %s only", system_path, strna(ca_file));
        }
        if (v && v->capath && X509_STORE_load_path(store, v->capath) != 1)
                ERR_clear_error();
        if (!isempty(ca_file) && X509_STORE_load_file(store, ca_file) != 1) {
                ERR_clear_error();
                X509_STORE_free(store);
                return ade_log_debug_errno(-EINVAL, "Cannot load the certificates of CA file %s", ca_file);
        }
        *ret = store;
        return 0;
}

/* The share's store when it was made for @ca_file, with a new reference; NULL otherwise. */
static X509_STORE *share_trust(AdeHttpShare *s, const char *ca_file) {
        X509_STORE *store = NULL;

        pthread_mutex_lock(&s->pool_lock);
        if (s->store && streq_ptr(s->store_ca_file, ca_file) && X509_STORE_up_ref(s->store) == 1)
                store = s->store;
        pthread_mutex_unlock(&s->pool_lock);
        return store;
}

/* Gives @store (a reference of its own) to the share when it has none yet. */
static void share_keep_trust(AdeHttpShare *s, X509_STORE *store, const char *ca_file) {
        char *f = NULL;

        if (ca_file && !(f = strdup(ca_file)))
                return;
        pthread_mutex_lock(&s->pool_lock);
        if (!s->store && X509_STORE_up_ref(store) == 1) {
                s->store = store;
                s->store_ca_file = TAKE_PTR(f);
        }
        pthread_mutex_unlock(&s->pool_lock);
        free(f);
}

int ade_http_share_load_trust(AdeHttpShare *s, const char *ca_file) {
        X509_STORE *store;
        int r;

        assert(s);

        if (isempty(ca_file))
                ca_file = NULL;
        store = share_trust(s, ca_file);
        if (!store) {
                r = trust_store_new(ca_file, &store);
                if (r < 0)
                        return r;
                share_keep_trust(s, store, ca_file);
        }
        X509_STORE_free(store);
        return 0;
}

/* The store for @h: the share's when it was made for the same CA file, else a new one (which the
 * share keeps when it has none yet). */
static int http_load_ca(AdeHttp *h) {
        AdeHttpShare *s = h->opts.share;
        X509_STORE *store = s ? share_trust(s, h->opts.ca_file) : NULL;
        int r;

        if (!store) {
                r = trust_store_new(h->opts.ca_file, &store);
                if (r < 0)
                        return r;
                if (s)
                        share_keep_trust(s, store, h->opts.ca_file);
        }
        h->store = store;
        return 0;
}

static CURLcode ssl_ctx_trust(CURL *curl, void *ssl_ctx, void *userdata) {
        (void)curl;
        /* Shared by reference: X509_STORE is safe to read from several TLS contexts at once. */
        SSL_CTX_set1_cert_store(ssl_ctx, userdata);
        /* OpenSSL keeps a record's plaintext in its read buffer after handing it over: a secret's
         * value, an unwrapped key, a token. */
        SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
        return CURLE_OK;
}

/* libcurl's heap, wiped as it is given back: its send buffer holds a small request body (a client
 * secret, a key file being wrapped), its header lists the bearer token, its receive buffer the
 * answer. */
static void curl_wiping_free(void *p) {
        if (p) {
                ade_memzero(p, malloc_usable_size(p));
                free(p);
        }
}

static void *curl_wiping_realloc(void *p, size_t n) {
        size_t old;
        void *q;

        if (!p)
                return malloc(n);
        old = malloc_usable_size(p);
        if (n > 0 && n <= old)
                return p;
        /* Moved by hand, so that the old block is wiped before it is freed. */
        q = malloc(n ?: 1);
        if (!q)
                return NULL;
        memcpy(q, p, old < n ? old : n);
        curl_wiping_free(p);
        return q;
}

static char *curl_wiping_strdup(const char *s) {
        return strdup(s);
}

int ade_http_global_init(void) {
        if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, curl_wiping_free, curl_wiping_realloc, curl_wiping_strdup,
                    calloc) != CURLE_OK)
                return ade_log_debug_errno(-EIO, "libcurl cannot be initialised");
        return 0;
}

int ade_http_new(const AdeHttpOptions *opts, AdeHttp **ret) {
        AdeHttp *h;
        int r;

        assert(ret);

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        pthread_mutex_init(&h->lock, NULL);
        if (opts)
                h->opts = *opts;
        else
                ade_http_options_init(&h->opts);

        if (h->opts.connect_timeout_ms == 0)
                h->opts.connect_timeout_ms = 10 * 1000;
        if (h->opts.timeout_ms == 0)
                h->opts.timeout_ms = 60 * 1000;
        if (h->opts.max_retries == ADE_HTTP_RETRIES_DEFAULT)
                h->opts.max_retries = 5;
        if (h->opts.backoff_initial_ms == 0)
                h->opts.backoff_initial_ms = 1000;
        if (h->opts.backoff_max_ms == 0)
                h->opts.backoff_max_ms = h->opts.imds ? 60 * 1000 : 16 * 1000;
        if (h->opts.retry_after_max_ms == 0)
                h->opts.retry_after_max_ms = 60 * 1000;
        if (h->opts.imds_gone_max_ms == 0)
                h->opts.imds_gone_max_ms = 70 * 1000;
        if (h->opts.max_response_size == 0)
                h->opts.max_response_size = ADE_HTTP_RESPONSE_MAX_DEFAULT;
        h->opts.ca_file = NULL;
        if (opts && !isempty(opts->ca_file)) {
                h->ca_file = strdup(opts->ca_file);
                if (!h->ca_file) {
                        ade_http_free(h);
                        return -ENOMEM;
                }
                h->opts.ca_file = h->ca_file;
        }

        r = http_load_ca(h);
        if (r < 0) {
                ade_http_free(h);
                return r;
        }

        if (!h->opts.share) {
                h->curl = curl_easy_init();
                if (!h->curl) {
                        ade_http_free(h);
                        return -ENOMEM;
                }
        }

        *ret = h;
        return 0;
}

AdeHttp *ade_http_free(AdeHttp *h) {
        if (!h)
                return NULL;
        if (h->curl)
                curl_easy_cleanup(h->curl);
        pthread_mutex_destroy(&h->lock);
        X509_STORE_free(h->store);
        free(h->ca_file);
        free(h);
        return NULL;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        AdeHttpResponse *resp = t->resp;
        size_t n = size * nmemb;

        if (n > t->cap || resp->size > t->cap - n) {
                t->overflow = true;
                return 0; /* makes libcurl fail with CURLE_WRITE_ERROR */
        }

        if (resp->size + n + 1 > resp->capacity) {
                size_t c = resp->capacity ? resp->capacity : 4096;
                char *b;

                while (c < resp->size + n + 1)
                        c *= 2;
                /* Grow by copying, so the old buffer can be wiped: the body may be an unwrapped key. */
                b = malloc(c);
                if (!b)
                        return 0;
                if (resp->body) {
                        memcpy(b, resp->body, resp->size);
                        ade_memzero(resp->body, resp->capacity);
                        free(resp->body);
                }
                resp->body = b;
                resp->capacity = c;
        }

        memcpy(resp->body + resp->size, ptr, n);
        resp->size += n;
        resp->body[resp->size] = 0;
        return n;
}

static int header_value(const char *line, size_t len, const char *name, char **ret) {
        size_t l = strlen(name);
        const char *v, *end = line + len;

        if (len <= l || strncasecmp(line, name, l) != 0 || line[l] != ':')
                return 0;
        v = line + l + 1;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                end--;
        free(*ret);
        *ret = strndup(v, end - v);
        return *ret ? 1 : -ENOMEM;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata) {
        Transfer *t = userdata;
        size_t n = size * nitems;

        /* A new status line (after "100 Continue", say): forget what the previous one said. */
        if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                t->resp->www_authenticate = mfree(t->resp->www_authenticate);
                t->resp->content_type = mfree(t->resp->content_type);
                t->retry_after = mfree(t->retry_after);
                t->retry_after_ms = mfree(t->retry_after_ms);
                strv_free(t->resp->headers);
                t->resp->headers = NULL;
                return n;
        }

        if (t->keep_prefix && n > strlen(t->keep_prefix) &&
                strncasecmp(buf, t->keep_prefix, strlen(t->keep_prefix)) == 0) {
                size_t len = n;

                while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
                        len--;
                _cleanup_free_ char *line = strndup(buf, len);
                if (!line || strv_extend(&t->resp->headers, line) < 0)
                        return 0;
        }

        if (header_value(buf, n, "WWW-Authenticate", &t->resp->www_authenticate) < 0 ||
                header_value(buf, n, "Content-Type", &t->resp->content_type) < 0 ||
                header_value(buf, n, "Retry-After", &t->retry_after) < 0 ||
                header_value(buf, n, "retry-after-ms", &t->retry_after_ms) < 0 ||
                header_value(buf, n, "x-ms-retry-after-ms", &t->retry_after_ms) < 0)
                return 0;
        return n;
}

static void slist_free_wiped(struct curl_slist *l) {
        /* Header lines may carry a bearer token. */
        for (struct curl_slist *i = l; i; i = i->next)
                ade_memzero(i->data, strlen(i->data));
        curl_slist_free_all(l);
}

static bool has_header(const char *const *headers, const char *name) {
        size_t l = strlen(name);

        for (const char *const *i = headers; i && *i; i++)
                if (strncasecmp(*i, name, l) == 0 && (*i)[l] == ':')
                        return true;
        return false;
}

static int map_curl_error(
        AdeHttp *h, CURLcode c, const char *errbuf, const Transfer *t, const char *url, AdeCloudError *ret_error) {
        const char *code, *detail = errbuf[0] ? errbuf : curl_easy_strerror(c);
        _cleanup_free_ char *msg = NULL;
        int r, n;

        switch (c) {
        case CURLE_COULDNT_CONNECT:
                r = -ECONNREFUSED, code = "ConnectionRefused";
                break;
        case CURLE_OPERATION_TIMEDOUT:
                r = -ETIMEDOUT, code = "Timeout";
                break;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                r = -EHOSTUNREACH, code = "HostNotFound";
                break;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
                r = -ECONNRESET, code = "ConnectionDropped";
                break;
        case CURLE_FILESIZE_EXCEEDED:
                r = -EFBIG, code = "ResponseTooLarge";
                break;
        case CURLE_WRITE_ERROR:
                r = t->overflow ? -EFBIG : -ENOMEM;
                code = t->overflow ? "ResponseTooLarge" : "OutOfMemory";
                break;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                r = -EPERM, code = "CertificateNotTrusted";
                break;
        case CURLE_UNSUPPORTED_PROTOCOL:
                r = -EPROTONOSUPPORT, code = "ProtocolNotAllowed";
                break;
        case CURLE_ABORTED_BY_CALLBACK: /* only transfer_progress() aborts */
                r = -ECANCELED, code = "Cancelled";
                break;
        default:
                r = -EPROTO, code = "TransferFailed";
                break;
        }

        if (r == -EPERM)
                n = asprintf(&msg,
                        "the TLS certificate of %s is not trusted by the system CA bundle%s%s (%s); "
                        "add its issuing CA to [azure] ca-file or fix the endpoint",
                        url, h->opts.ca_file ? " nor by " : "", h->opts.ca_file ?: "", detail);
        else if (r == -EFBIG)
                n = asprintf(&msg, "the answer from %s is larger than %zu bytes", url, h->opts.max_response_size);
        else if (r == -EPROTONOSUPPORT)
                n = asprintf(&msg, "%s: only https:// is allowed here (plain http only for IMDS)", url);
        else if (r == -ECANCELED)
                n = asprintf(&msg, "the request to %s was cancelled before it was answered", url);
        else
                n = asprintf(&msg, "%s", detail);

        if (n < 0)
                msg = NULL; /* asprintf leaves it undefined; the bare detail is said instead */

        (void)ade_cloud_error_set(ret_error, 0, code, msg ?: detail, url);
        return ade_log_debug_errno(r, "%s %s failed: %s", code, url, msg ?: detail);
}

static bool cancelled_now(void);

/* libcurl calls this at least about once a second, also while a server keeps an answer back: a
 * cancel ends a request in flight, not only the wait before a retry (a vault that never answers
 * would otherwise hold a stopping daemon for the whole timeout, and then for every retry). */
static int transfer_progress(
        void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        (void)userdata, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        return cancelled_now() ? 1 : 0;
}

static int perform_once(AdeHttp *h, CURL *c, const AdeHttpRequest *req, AdeHttpResponse *resp,
        uint64_t *ret_retry_after_ms, AdeCloudError *ret_error) {
        struct curl_slist *headers = NULL;
        Transfer t = {.resp = resp, .cap = h->opts.max_response_size, .keep_prefix = req->keep_headers};
        const char *method = req->method ?: "GET";
        bool body = req->body || req->send_empty_body;
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode cc;
        int r = 0;

        *ret_retry_after_ms = UINT64_MAX;

        /* Resetting keeps the connection cache (and the share), so the next request reuses the open
         * connection. */
        curl_easy_reset(c);

        for (const char *const *i = req->headers; i && *i; i++) {
                struct curl_slist *n = curl_slist_append(headers, *i);
                if (!n) {
                        r = -ENOMEM;
                        goto finish;
                }
                headers = n;
        }
        if (!has_header(req->headers, "Accept"))
                headers = curl_slist_append(headers, "Accept: application/json");
        if (headers && body && !has_header(req->headers, "Content-Type"))
                headers = curl_slist_append(headers, "Content-Type: application/json");
        /* No "Expect: 100-continue" round trip. */
        if (headers)
                headers = curl_slist_append(headers, "Expect:");
        if (!headers) {
                r = -ENOMEM;
                goto finish;
        }

        if (curl_easy_setopt(c, CURLOPT_URL, req->url) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, h->opts.imds ? "http,https" : "https") != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->opts.connect_timeout_ms) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->opts.timeout_ms) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->opts.max_response_size) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_WRITEDATA, &t) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_HEADERDATA, &t) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, transfer_progress) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_USERAGENT, "ade/" PACKAGE_VERSION) != CURLE_OK) {
                r = -EINVAL;
                goto finish;
        }

        /* Our store instead of a CA file libcurl would parse again for every connection. */
        if (curl_easy_setopt(c, CURLOPT_CAINFO, NULL) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_trust) != CURLE_OK ||
                curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, h->store) != CURLE_OK) {
                r = ade_log_debug_errno(-EINVAL, "libcurl takes no TLS context callback (not built with OpenSSL?)");
                goto finish;
        }
        /* IMDS is link-local: a proxy would answer for the wrong machine, or leak the token. */
        if (h->opts.imds)
                (void)curl_easy_setopt(c, CURLOPT_NOPROXY, "*");

        if (body) {
                (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ?: "");
                (void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_size : 0));
                (void)curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        } else if (streq(method, "GET"))
                (void)curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        else
                (void)curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);

        cc = curl_easy_perform(c);
        if (cc != CURLE_OK) {
                r = map_curl_error(h, cc, errbuf, &t, req->url, ret_error);
                goto finish;
        }

        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
        if (!resp->body) {
                resp->body = calloc(1, 1);
                resp->capacity = 1;
                if (!resp->body) {
                        r = -ENOMEM;
                        goto finish;
                }
        }

        if (t.retry_after_ms) {
                char *end;
                unsigned long long v;

                errno = 0;
                v = strtoull(t.retry_after_ms, &end, 10);
                if (errno == 0 && end != t.retry_after_ms && *end == 0)
                        *ret_retry_after_ms = v;
        }
        if (*ret_retry_after_ms == UINT64_MAX && t.retry_after)
                (void)ade_http_parse_retry_after(t.retry_after, time(NULL), ret_retry_after_ms);

finish:
        free(t.retry_after);
        free(t.retry_after_ms);
        slist_free_wiped(headers);
        /* Do not leave pointers to the caller's body behind in the handle. */
        curl_easy_reset(c);
        return r;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The calling thread's cancel check (ade_http_set_thread_cancel()). */
static _Thread_local int (*thread_cancelled)(void *userdata);
static _Thread_local void *thread_cancelled_userdata;

void ade_http_set_thread_cancel(int (*cancelled)(void *userdata), void *userdata) {
        thread_cancelled = cancelled;
        thread_cancelled_userdata = userdata;
}

void ade_http_get_thread_cancel(int (**ret_cancelled)(void *userdata), void **ret_userdata) {
        *ret_cancelled = thread_cancelled;
        *ret_userdata = thread_cancelled_userdata;
}

static bool cancelled_now(void) {
        return thread_cancelled && thread_cancelled(thread_cancelled_userdata);
}

/* Sleeps in slices, so that a cancel ends a wait of up to a minute (Retry-After) at once. */
static void default_sleep(uint64_t msec, void *userdata) {
        while (msec > 0 && !cancelled_now()) {
                uint64_t slice = msec < 100 ? msec : 100;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000};

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                msec -= slice;
        }
}

static bool transport_is_retryable(int r) {
        /* A refused or dropped connection and a timeout may pass; a certificate or a cap will not. */
        return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EHOSTUNREACH;
}

bool ade_http_status_is_retryable(long status, bool imds) {
        if (status == 408 || status == 429)
                return true;
        if (status >= 500 && status < 600)
                return status != 501 && status != 505;
        return imds && (status == 404 || status == 410);
}

uint64_t ade_http_backoff_ms(unsigned attempt, uint64_t initial_ms, uint64_t max_ms, uint32_t random) {
        uint64_t d = initial_ms;

        for (unsigned i = 0; i < attempt && d < max_ms; i++)
                d *= 2;
        if (d > max_ms)
                d = max_ms;
        /* Jitter keeps many VMs booting together from retrying in lockstep. */
        return d / 2 + (d - d / 2) * (uint64_t)random / UINT32_MAX;
}

int ade_http_parse_retry_after(const char *value, time_t now, uint64_t *ret_ms) {
        const char *p;
        time_t t;

        assert(ret_ms);

        if (isempty(value))
                return -EINVAL;

        for (p = value; *p >= '0' && *p <= '9'; p++)
                ;
        if (*p == 0) {
                unsigned long long v;

                if (p - value > 9)
                        return -EINVAL;
                v = strtoull(value, NULL, 10);
                *ret_ms = (uint64_t)v * 1000;
                return 0;
        }

        /* An HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"); curl_getdate() parses the RFC formats. */
        if (!strchr(value, ' '))
                return -EINVAL;
        t = curl_getdate(value, NULL);
        if (t < 0)
                return -EINVAL;
        *ret_ms = t > now ? (uint64_t)(t - now) * 1000 : 0;
        return 0;
}

static int request_with(
        AdeHttp *h, CURL *c, const AdeHttpRequest *req, AdeHttpResponse *ret, AdeCloudError *ret_error) {
        uint64_t start = now_ms();
        unsigned attempts = 0;

        for (unsigned retry = 0;; retry++) {
                _cleanup_cloud_error_ AdeCloudError err = {};
                _cleanup_http_response_ AdeHttpResponse resp = {};
                uint64_t retry_after = UINT64_MAX, delay, elapsed;
                bool retryable, gone;
                uint32_t rnd = 0;
                int r;

                r = perform_once(h, c, req, &resp, &retry_after, &err);
                attempts++;

                if (r < 0)
                        retryable = transport_is_retryable(r);
                else
                        retryable = ade_http_status_is_retryable(resp.status, h->opts.imds);

                elapsed = now_ms() - start;
                gone = h->opts.imds && r >= 0 && resp.status == 410;

                if (!retryable || (gone ? elapsed >= h->opts.imds_gone_max_ms : retry >= h->opts.max_retries)) {
                        if (r < 0) {
                                if (ret_error) {
                                        ade_cloud_error_done(ret_error);
                                        *ret_error = err;
                                        err = (AdeCloudError){};
                                }
                                return r;
                        }
                        resp.attempts = attempts;
                        ade_log_debug("%s %s: %ld after %" PRIu64 " ms, %u attempt%s", req->method ?: "GET", req->url,
                                resp.status, elapsed, attempts, attempts == 1 ? "" : "s");
                        *ret = resp;
                        resp = (AdeHttpResponse){};
                        return 0;
                }

                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                        rnd = (uint32_t)now_ms();

                if (retry_after != UINT64_MAX)
                        delay = retry_after < h->opts.retry_after_max_ms ? retry_after : h->opts.retry_after_max_ms;
                else
                        delay = ade_http_backoff_ms(retry, h->opts.backoff_initial_ms, h->opts.backoff_max_ms, rnd);
                if (gone && elapsed + delay > h->opts.imds_gone_max_ms)
                        delay = h->opts.imds_gone_max_ms - elapsed;

                /* Retries take minutes: a job being stopped must not sit them out (issue 11 item 10). */
                if (cancelled_now())
                        return ade_log_debug_errno(ECANCELED, "%s %s: cancelled before retry %u", req->method ?: "GET",
                                req->url, retry + 1);
                ade_log_debug("%s %s: %s, retry %u in %" PRIu64 " ms", req->method ?: "GET", req->url,
                        r < 0 ? strerror(-r) : "retryable status", retry + 1, delay);

                (h->opts.sleep ?: default_sleep)(delay, h->opts.sleep_userdata);
                if (cancelled_now())
                        return ade_log_debug_errno(ECANCELED, "%s %s: cancelled before retry %u", req->method ?: "GET",
                                req->url, retry + 1);
        }
}

int ade_http_request(AdeHttp *h, const AdeHttpRequest *req, AdeHttpResponse *ret, AdeCloudError *ret_error) {
        CURL *c;
        int r;

        assert(h);
        assert(req && req->url);
        assert(ret);

        if (!h->opts.share) {
                pthread_mutex_lock(&h->lock);
                r = request_with(h, h->curl, req, ret, ret_error);
                pthread_mutex_unlock(&h->lock);
                return r;
        }

        c = share_take(h->opts.share);
        if (!c)
                return -ENOMEM;
        r = request_with(h, c, req, ret, ret_error);
        share_give(h->opts.share, c);
        return r;
}

char *ade_http_escape(const char *s) {
        char *e, *ret;

        e = curl_easy_escape(NULL, s, 0);
        if (!e)
                return NULL;
        ret = strdup(e);
        curl_free(e);
        return ret;
}

int ade_http_bearer_params(const char *header, AdeHttpAuthParamFunc each, void *userdata) {
        const char *p;
        int r;

        assert(each);

        if (!header)
                return -EBADMSG;
        p = header;
        while (*p == ' ')
                p++;
        p = startswith_no_case(p, "Bearer");
        if (!p || (*p != ' ' && *p != '\t'))
                return -EBADMSG;

        for (;;) {
                const char *key, *val;
                size_t key_len, val_len;

                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (!*p)
                        return 0;

                key = p;
                while (*p && *p != '=' && *p != ' ' && *p != ',')
                        p++;
                key_len = p - key;
                if (*p != '=' || key_len == 0)
                        return -EBADMSG;
                p++;
                if (*p == '"') {
                        val = ++p;
                        p = strchr(p, '"');
                        if (!p)
                                return -EBADMSG;
                        val_len = p - val;
                        p++;
                } else {
                        val = p;
                        while (*p && *p != ',' && *p != ' ')
                                p++;
                        val_len = p - val;
                }

                r = each(key, key_len, val, val_len, userdata);
                if (r < 0)
                        return r;
        }
}

int ade_http_reply_json(const AdeHttpResponse *resp, const char *url, json_object **ret, AdeCloudError *ret_error) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        assert(resp);
        assert(ret);

        if (resp->status < 200 || resp->status >= 300) {
                (void)ade_cloud_error_from_reply(ret_error, resp->status, resp->body, resp->size, url);
                r = ade_cloud_errno_from_status(resp->status);
                return ade_log_debug_errno(r, "%s answered HTTP %ld", url, resp->status);
        }

        r = ade_json_parse(resp->body, resp->size, &o);
        if (r < 0 || !json_object_is_type(o, json_type_object)) {
                (void)ade_cloud_error_set(ret_error, resp->status, "MalformedReply",
                        resp->size == 0 ? "the answer is empty, expected a JSON object"
                                        : "the answer is not a JSON object (malformed or truncated)",
                        url);
                return ade_log_debug_errno(-EPROTO, "%s answered %ld with %zu bytes that are not a JSON object", url,
                        resp->status, resp->size);
        }

        *ret = TAKE_PTR(o);
        return 0;
}

void ade_json_wipe_string(json_object *obj, const char *key) {
        json_object *v;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
                return;
        ade_memzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}
