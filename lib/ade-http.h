/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ade-cloud-error.h"
#include "ade-secret.h"

/* An HTTP client over libcurl. TLS is always verified against the system's CA bundle plus, when
 * configured, an extra PEM file; there is no switch to turn that off.
 *
 * Connections: without a share, a client has one easy handle; its calls reuse one connection (and so
 * one TLS handshake) as long as the server keeps it open, and run one at a time (a client may be
 * used from several threads; they wait for each other). With a share (AdeHttpOptions.share), every
 * call borrows an idle easy handle from the share, with the connections it left open, and gives it
 * back: all clients made over one share reuse each other's connections, and calls run concurrently.
 * The share also holds the DNS cache, the TLS sessions (behind libcurl's lock callbacks) and the trust
 * store, read once for the share's lifetime (a changed CA file takes a new share). libcurl's
 * own shared connection cache is not used: its documentation does not support it across concurrent
 * threads; handing whole easy handles around gives the same reuse without that.
 *
 * Retries: connection failures, 408, 429 and 5xx (except 501/505) are retried with exponential
 * backoff and full jitter, honouring Retry-After (seconds or HTTP-date), retry-after-ms and
 * x-ms-retry-after-ms. In IMDS mode also 404 and 410 are retried, 410 for up to
 * @imds_gone_max_ms from the first attempt whatever @max_retries says, and no proxy is used.
 * Other 4xx are never retried.
 *
 * Programs call ade_http_global_init() once, before starting threads (libcurl's rule).
 * Secret hygiene: request bodies are passed to libcurl without a copy and answers are collected in
 * buffers wiped on free; libcurl copies a small body into its own send buffer, and bearer tokens
 * pass through its header list and receive buffer: ade_http_global_init() has libcurl's heap wiped
 * as libcurl frees it, and every TLS context cleanses a record's plaintext once it is read
 * (SSL_OP_CLEANSE_PLAINTEXT). What libcurl still holds in a buffer it keeps for its next transfer
 * stays there until overwritten. */

/* curl_global_init(CURL_GLOBAL_DEFAULT), with allocation functions that wipe what libcurl frees.
 * Once per process, before any thread; curl_global_cleanup() undoes it. 0 or -EIO. */
int ade_http_global_init(void);

typedef void (*AdeHttpSleepFunc)(uint64_t msec, void *userdata);

typedef struct AdeHttpShare AdeHttpShare;

/* A share for the clients of one process (see above). Thread-safe. Free it after every client made
 * with it. */
int ade_http_share_new(AdeHttpShare **ret);
AdeHttpShare *ade_http_share_free(AdeHttpShare *s);
static inline void ade_http_share_freep(AdeHttpShare **s) {
        ade_http_share_free(*s);
}

/* Builds the trust store (the system bundle and @ca_file, see ade_http_new()) that clients over @s
 * with the same @ca_file then share, so that the first request does not wait for it. */
int ade_http_share_load_trust(AdeHttpShare *s, const char *ca_file);

typedef struct AdeHttpOptions {
        const char *ca_file;         /* extra PEM trust anchors, or NULL */
        bool imds;                   /* IMDS rules: plain http allowed, no proxy, retry 404/410 */
        uint64_t connect_timeout_ms; /* 0: 10 s */
        uint64_t timeout_ms;         /* whole transfer; 0: 60 s */
        unsigned max_retries;        /* retries after the first attempt; (unsigned) -1: default 5 */
        uint64_t backoff_initial_ms; /* 0: 1 s */
        uint64_t backoff_max_ms;     /* cap of one computed delay; 0: 16 s (60 s in IMDS mode) */
        uint64_t retry_after_max_ms; /* cap of a server's Retry-After; 0: 60 s */
        uint64_t imds_gone_max_ms;   /* 0: 70 s */
        size_t max_response_size;    /* 0: 4 MiB; larger answers are -EFBIG */
        AdeHttpSleepFunc sleep;      /* NULL: nanosleep(); tests may count instead of sleeping */
        void *sleep_userdata;
        AdeHttpShare *share; /* borrowed; NULL: the client keeps its own connection */
} AdeHttpOptions;

#define ADE_HTTP_RETRIES_DEFAULT ((unsigned)-1)
#define ADE_HTTP_RESPONSE_MAX_DEFAULT (4U * 1024U * 1024U)

/* Fills @o with the defaults (all zero, retries default). */
void ade_http_options_init(AdeHttpOptions *o);

/* A cancel check for the requests the calling thread makes (thread-local; NULL: none): between
 * retries, every 100 ms of the wait before one, and about every second of a request in flight
 * (connecting, or waiting for an answer that does not come), a request asks
 * @cancelled(@userdata) and on a non-zero answer returns -ECANCELED (an AdeCloudError "Cancelled"
 * naming the URL) instead of going on. A job that is told to stop does not sit out a hanging
 * server's timeout nor minutes of retries. */
void ade_http_set_thread_cancel(int (*cancelled)(void *userdata), void *userdata);
/* The calling thread's cancel check, for a thread it starts to make requests on its behalf. */
void ade_http_get_thread_cancel(int (**ret_cancelled)(void *userdata), void **ret_userdata);

typedef struct AdeHttp AdeHttp;

/* Creates a client. The extra CA file must exist and hold at least one PEM certificate, else -EINVAL
 * (-errno when unreadable). */
int ade_http_new(const AdeHttpOptions *opts, AdeHttp **ret);
AdeHttp *ade_http_free(AdeHttp *h);
static inline void ade_http_freep(AdeHttp **h) {
        ade_http_free(*h);
}
#define _cleanup_http_ _cleanup_(ade_http_freep)

typedef struct AdeHttpRequest {
        const char *method; /* "GET", "PUT", "POST", "PATCH", "DELETE" */
        const char *url;
        const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
        const void *body;           /* may be key material: it is never copied to the plain heap */
        size_t body_size;
        bool send_empty_body;     /* a POST/PUT with Content-Length: 0, to provoke a challenge */
        const char *keep_headers; /* answer headers whose name starts with this (any case) are kept */
} AdeHttpRequest;

/* The final answer. The body is NUL-terminated, and wiped when freed (it may carry key material). */
typedef struct AdeHttpResponse {
        long status;
        char *body;
        size_t size;
        size_t capacity;
        char *www_authenticate;
        char *content_type;
        char **headers;    /* the lines AdeHttpRequest.keep_headers asked for, as sent, or NULL */
        unsigned attempts; /* how many requests were sent */
} AdeHttpResponse;

void ade_http_response_done(AdeHttpResponse *r);
static inline void ade_http_response_donep(AdeHttpResponse *r) {
        ade_http_response_done(r);
}
#define _cleanup_http_response_ _cleanup_(ade_http_response_donep)

/* Sends @req, retrying as described above. Returns 0 when an HTTP answer came (whatever its status,
 * also a retryable one once retries ran out), with it in *ret. Otherwise a negative errno and
 * *ret_error filled (status 0): -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET (dropped, nothing received),
 * -EHOSTUNREACH (name not resolved), -EFBIG (answer over the cap), -EPERM (TLS certificate not
 * trusted: the message names the URL and the CA files), -EPROTONOSUPPORT (http:// outside IMDS
 * mode), -EPROTO (other TLS or protocol failures). */
int ade_http_request(AdeHttp *h, const AdeHttpRequest *req, AdeHttpResponse *ret, AdeCloudError *ret_error);

/* Parses a Retry-After value: delta-seconds or an HTTP-date (compared with @now). A date in the
 * past is 0. Returns 0 and milliseconds, or -EINVAL. */
int ade_http_parse_retry_after(const char *value, time_t now, uint64_t *ret_ms);

/* The delay before retry number @attempt (0-based) without Retry-After: @initial_ms * 2^attempt,
 * capped at @max_ms, with full jitter from @random (uniform in [delay/2, delay]). */
uint64_t ade_http_backoff_ms(unsigned attempt, uint64_t initial_ms, uint64_t max_ms, uint32_t random);

/* Whether @status is retried (IMDS mode: also 404 and 410). */
bool ade_http_status_is_retryable(long status, bool imds);

/* Percent-encodes @s for a query string or form body. Returns a new string or NULL. */
char *ade_http_escape(const char *s);

/* Reads a "WWW-Authenticate: Bearer k=\"v\", k2=v2" challenge: calls @each with every parameter,
 * key and value without quotes, in order (commas and/or spaces between them). Returns 0, -EBADMSG
 * when it is not a Bearer challenge or a parameter is malformed, or @each's negative result. */
typedef int (*AdeHttpAuthParamFunc)(
        const char *key, size_t key_len, const char *value, size_t value_len, void *userdata);
int ade_http_bearer_params(const char *header, AdeHttpAuthParamFunc each, void *userdata);

/* Turns a final answer into a JSON object: a 2xx whose body is one JSON object gives 0 and it in
 * *ret; a 2xx with anything else is -EPROTO (code "MalformedReply"); any other status fills
 * *ret_error from the service's error body and returns ade_cloud_errno_from_status(). */
struct json_object;
int ade_http_reply_json(
        const AdeHttpResponse *resp, const char *url, struct json_object **ret, AdeCloudError *ret_error);

/* Overwrites the string value of @key in @obj in place (json-c keeps its own copy of what it parsed,
 * and a reply may echo key material). Missing keys are ignored. */
void ade_json_wipe_string(struct json_object *obj, const char *key);
