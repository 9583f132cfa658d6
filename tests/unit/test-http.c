/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ade-http and ade-cloud-error without a real server: parsing, backoff arithmetic, error mapping,
 * the failures that need no answer (bad CA file, refused connection, plain http, a cancel while a
 * server keeps its answer back), and the answer headers a request keeps (a canned answer). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ade-cloud-error.h"
#include "ade-http.h"
#include "ade-test.h"
#include "ade-url.h"

START_TEST(test_retry_after_seconds) {
        uint64_t ms = 1;

        ck_assert_int_eq(ade_http_parse_retry_after("7", 0, &ms), 0);
        ck_assert_uint_eq(ms, 7000);
        ck_assert_int_eq(ade_http_parse_retry_after("0", 0, &ms), 0);
        ck_assert_uint_eq(ms, 0);
}
END_TEST

START_TEST(test_retry_after_http_date_future) {
        uint64_t ms = 0;
        time_t now = curl_getdate("Wed, 21 Oct 2015 07:28:00 GMT", NULL);

        ck_assert_int_eq(ade_http_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now, &ms), 0);
        ck_assert_uint_eq(ms, 30000);
}
END_TEST

START_TEST(test_retry_after_http_date_past_is_zero) {
        uint64_t ms = 5;
        time_t now = curl_getdate("Wed, 21 Oct 2015 07:28:00 GMT", NULL);

        ck_assert_int_eq(ade_http_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now, &ms), 0);
        ck_assert_uint_eq(ms, 0);
}
END_TEST

START_TEST(test_retry_after_garbage_refused) {
        uint64_t ms = 42;

        ck_assert_int_eq(ade_http_parse_retry_after("soon", 0, &ms), -EINVAL);
        ck_assert_int_eq(ade_http_parse_retry_after("", 0, &ms), -EINVAL);
        ck_assert_int_eq(ade_http_parse_retry_after(NULL, 0, &ms), -EINVAL);
        ck_assert_int_eq(ade_http_parse_retry_after("-3", 0, &ms), -EINVAL);
        ck_assert_int_eq(ade_http_parse_retry_after("1.5", 0, &ms), -EINVAL);
        ck_assert_int_eq(ade_http_parse_retry_after("99999999999999", 0, &ms), -EINVAL);
        ck_assert_int_eq(ade_http_parse_retry_after("not a date at all", 0, &ms), -EINVAL);
        ck_assert_uint_eq(ms, 42);
}
END_TEST

START_TEST(test_backoff_grows_and_is_capped) {
        /* random = max: no jitter reduction */
        ck_assert_uint_eq(ade_http_backoff_ms(0, 1000, 16000, UINT32_MAX), 1000);
        ck_assert_uint_eq(ade_http_backoff_ms(1, 1000, 16000, UINT32_MAX), 2000);
        ck_assert_uint_eq(ade_http_backoff_ms(3, 1000, 16000, UINT32_MAX), 8000);
        ck_assert_uint_eq(ade_http_backoff_ms(10, 1000, 16000, UINT32_MAX), 16000);
        ck_assert_uint_eq(ade_http_backoff_ms(200, 1000, 16000, UINT32_MAX), 16000);
}
END_TEST

START_TEST(test_backoff_jitter_stays_in_half_to_full) {
        for (uint64_t rnd = 0; rnd <= UINT32_MAX; rnd += 0x10000000) {
                uint64_t d = ade_http_backoff_ms(2, 1000, 16000, (uint32_t)rnd);
                ck_assert_uint_ge(d, 2000);
                ck_assert_uint_le(d, 4000);
        }
        ck_assert_uint_eq(ade_http_backoff_ms(2, 1000, 16000, 0), 2000);
}
END_TEST

START_TEST(test_retryable_statuses) {
        ck_assert(ade_http_status_is_retryable(429, false));
        ck_assert(ade_http_status_is_retryable(500, false));
        ck_assert(ade_http_status_is_retryable(503, false));
        ck_assert(ade_http_status_is_retryable(408, false));
        ck_assert(ade_http_status_is_retryable(410, true));
        ck_assert(ade_http_status_is_retryable(404, true));
}
END_TEST

START_TEST(test_not_retryable_statuses) {
        ck_assert(!ade_http_status_is_retryable(200, false));
        ck_assert(!ade_http_status_is_retryable(400, true));
        ck_assert(!ade_http_status_is_retryable(401, true));
        ck_assert(!ade_http_status_is_retryable(403, false));
        ck_assert(!ade_http_status_is_retryable(404, false));
        ck_assert(!ade_http_status_is_retryable(410, false));
        ck_assert(!ade_http_status_is_retryable(501, false));
}
END_TEST

START_TEST(test_url_join) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        ck_assert_int_eq(ade_url_join("https://v.vault.azure.net/", "/secrets/x", &a), 0);
        ck_assert_str_eq(a, "https://v.vault.azure.net/secrets/x");
        ck_assert_int_eq(ade_url_join("https://localhost:8443", "keys/k/1/wrapkey", &b), 0);
        ck_assert_str_eq(b, "https://localhost:8443/keys/k/1/wrapkey");
}
END_TEST

START_TEST(test_url_origin) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        ck_assert_int_eq(ade_url_origin("https://localhost:8443/secrets/x?api-version=7.4", &a), 0);
        ck_assert_str_eq(a, "https://localhost:8443");
        ck_assert_int_eq(ade_url_origin("http://127.0.0.1", &b), 0);
        ck_assert_str_eq(b, "http://127.0.0.1");
}
END_TEST

START_TEST(test_url_origin_refuses_non_urls) {
        char *o = NULL;

        ck_assert_int_eq(ade_url_origin("ftp://x/y", &o), -EINVAL);
        ck_assert_int_eq(ade_url_origin("https:///path", &o), -EINVAL);
        ck_assert_int_eq(ade_url_origin("localhost:8443", &o), -EINVAL);
        ck_assert_int_eq(ade_url_origin("", &o), -EINVAL);
        ck_assert_ptr_null(o);
}
END_TEST

START_TEST(test_same_origin) {
        ck_assert(ade_url_same_origin(
                "https://management.azure.com:443/subscriptions/x?$skiptoken=1", "https://Management.Azure.com"));
        ck_assert(ade_url_same_origin("https://localhost:8443/keys/k/1", "https://localhost:8443"));
        ck_assert(ade_url_same_origin("http://127.0.0.1:80/metadata", "http://127.0.0.1"));
}
END_TEST

START_TEST(test_different_origin) {
        ck_assert(!ade_url_same_origin("https://localhost:8443/x", "https://localhost:8444"));
        ck_assert(!ade_url_same_origin("http://localhost/x", "https://localhost"));
        ck_assert(
                !ade_url_same_origin("https://contoso.vault.azure.net.evil.com/x", "https://contoso.vault.azure.net"));
        ck_assert(!ade_url_same_origin(NULL, "https://a"));
        ck_assert(!ade_url_same_origin("not a url", "not a url"));
}
END_TEST

START_TEST(test_cloud_error_keyvault_envelope) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        const char *body =
                "{\"error\":{\"code\":\"SecretNotFound\",\"message\":\"A secret with (name/id) x was not found\"}}";

        ck_assert_int_eq(
                ade_cloud_error_from_reply(&e, 404, body, strlen(body), "https://v/secrets/x?api-version=7.4"), 0);
        ck_assert_int_eq(e.status, 404);
        ck_assert_str_eq(e.code, "SecretNotFound");
        ck_assert_str_eq(e.message, "A secret with (name/id) x was not found");
        ck_assert_str_eq(e.url, "https://v/secrets/x");
}
END_TEST

START_TEST(test_cloud_error_imds_envelope) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        const char *body = "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}";

        ck_assert_int_eq(ade_cloud_error_from_reply(&e, 400, body, strlen(body), "http://169.254.169.254/x"), 0);
        ck_assert_str_eq(e.code, "invalid_request");
        ck_assert_str_eq(e.message, "Identity not found");
}
END_TEST

START_TEST(test_cloud_error_imds_instance_text) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        const char *body = "{\"error\":\"Bad request. api-version was not specified in the request.\"}";

        ck_assert_int_eq(ade_cloud_error_from_reply(&e, 400, body, strlen(body), "http://i/metadata/instance"), 0);
        ck_assert_str_eq(e.code, "BadRequest");
        ck_assert_str_eq(e.message, "Bad request. api-version was not specified in the request.");
}
END_TEST

START_TEST(test_cloud_error_non_json_body) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        const char *body = "<html>\r\nBad Gateway</html>";

        ck_assert_int_eq(ade_cloud_error_from_reply(&e, 502, body, strlen(body), "https://v/x"), 0);
        ck_assert_str_eq(e.code, "BadGateway");
        ck_assert_str_eq(e.message, "<html>  Bad Gateway</html>");
}
END_TEST

START_TEST(test_cloud_error_empty_body) {
        _cleanup_cloud_error_ AdeCloudError e = {};

        ck_assert_int_eq(ade_cloud_error_from_reply(&e, 503, "", 0, "https://v/x"), 0);
        ck_assert_str_eq(e.code, "ServiceUnavailable");
        ck_assert_ptr_null(e.message);
}
END_TEST

START_TEST(test_cloud_error_to_string_names_everything) {
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *s = NULL;

        ck_assert_int_eq(ade_cloud_error_set(&e, 403, "Forbidden", "no wrapKey permission", "https://v/keys/k/1"), 0);
        s = ade_cloud_error_to_string(&e, "Key Vault");
        ck_assert_str_eq(s, "Key Vault answered 403 Forbidden: no wrapKey permission (https://v/keys/k/1)");
}
END_TEST

START_TEST(test_errno_from_status) {
        ck_assert_int_eq(ade_cloud_errno_from_status(401), -EACCES);
        ck_assert_int_eq(ade_cloud_errno_from_status(403), -EACCES);
        ck_assert_int_eq(ade_cloud_errno_from_status(404), -ENOENT);
        ck_assert_int_eq(ade_cloud_errno_from_status(429), -EBUSY);
        ck_assert_int_eq(ade_cloud_errno_from_status(503), -EAGAIN);
        ck_assert_int_eq(ade_cloud_errno_from_status(400), -EINVAL);
        ck_assert_int_eq(ade_cloud_errno_from_status(302), -EPROTO);
}
END_TEST

/* The kinds aded's metrics count Key Vault's failures by. */
START_TEST(test_error_kind) {
        AdeCloudError e = {.status = 429};

        ck_assert_int_eq(ade_cloud_error_kind(-EBUSY, &e), ADE_CLOUD_ERROR_THROTTLED);
        e.status = 403;
        ck_assert_int_eq(ade_cloud_error_kind(-EACCES, &e), ADE_CLOUD_ERROR_AUTH);
        e.status = 410;
        ck_assert_int_eq(ade_cloud_error_kind(-ENOENT, &e), ADE_CLOUD_ERROR_NOT_FOUND);
        e.status = 503;
        ck_assert_int_eq(ade_cloud_error_kind(-EAGAIN, &e), ADE_CLOUD_ERROR_SERVER);
        e.status = 409;
        ck_assert_int_eq(ade_cloud_error_kind(-EEXIST, &e), ADE_CLOUD_ERROR_CLIENT);
        /* No answer: ade-http's own codes, or only an errno. */
        e = (AdeCloudError){.code = (char *)"ConnectionRefused"};
        ck_assert_int_eq(ade_cloud_error_kind(-ECONNREFUSED, &e), ADE_CLOUD_ERROR_NETWORK);
        e.code = (char *)"CertificateNotTrusted";
        ck_assert_int_eq(ade_cloud_error_kind(-EPERM, &e), ADE_CLOUD_ERROR_NETWORK);
        e.code = (char *)"VaultNotAllowed";
        ck_assert_int_eq(ade_cloud_error_kind(-EPERM, &e), ADE_CLOUD_ERROR_REFUSED);
        e.code = (char *)"OutOfMemory";
        ck_assert_int_eq(ade_cloud_error_kind(-ENOMEM, &e), ADE_CLOUD_ERROR_OTHER);
        ck_assert_int_eq(ade_cloud_error_kind(-ETIMEDOUT, NULL), ADE_CLOUD_ERROR_NETWORK);
        ck_assert_int_eq(ade_cloud_error_kind(-EBADMSG, NULL), ADE_CLOUD_ERROR_OTHER);
        for (AdeCloudErrorKind k = 0; k < _ADE_CLOUD_ERROR_KIND_MAX; k++)
                ck_assert_ptr_nonnull(ade_cloud_error_kind_to_string(k));
        ck_assert_str_eq(ade_cloud_error_kind_to_string(ADE_CLOUD_ERROR_NOT_FOUND), "not_found");
        ck_assert_ptr_null(ade_cloud_error_kind_to_string(_ADE_CLOUD_ERROR_KIND_MAX));
}
END_TEST

START_TEST(test_missing_ca_file_refused) {
        AdeHttpOptions o;
        AdeHttp *h = NULL;

        ade_http_options_init(&o);
        o.ca_file = "/nonexistent/ca.pem";
        ck_assert_int_eq(ade_http_new(&o, &h), -ENOENT);
        ck_assert_ptr_null(h);
}
END_TEST

START_TEST(test_ca_file_without_certificate_refused) {
        char path[] = "/tmp/ade-test-ca-XXXXXX";
        AdeHttpOptions o;
        AdeHttp *h = NULL;
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "not a certificate\n", 18), 18);
        close(fd);
        ade_http_options_init(&o);
        o.ca_file = path;
        ck_assert_int_eq(ade_http_new(&o, &h), -EINVAL);
        ck_assert_ptr_null(h);
        unlink(path);
}
END_TEST

static void sleep_counter(uint64_t ms, void *userdata) {
        (*(unsigned *)userdata)++;
}

START_TEST(test_connection_refused_after_retries) {
        _cleanup_http_ AdeHttp *h = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpResponse resp = {};
        AdeHttpOptions o;
        unsigned sleeps = 0;

        ade_http_options_init(&o);
        o.imds = true;
        o.max_retries = 2;
        o.sleep = sleep_counter;
        o.sleep_userdata = &sleeps;
        ck_assert_int_eq(ade_http_new(&o, &h), 0);
        /* Port 1 on loopback: nothing listens there (tcpmux is not run on build machines). */
        ck_assert_int_eq(
                ade_http_request(h, &(AdeHttpRequest){.url = "http://127.0.0.1:1/metadata/instance"}, &resp, &e),
                -ECONNREFUSED);
        ck_assert_uint_eq(sleeps, 2);
        ck_assert_str_eq(e.code, "ConnectionRefused");
        ck_assert_str_eq(e.url, "http://127.0.0.1:1/metadata/instance");
        ck_assert_int_eq(e.status, 0);
}
END_TEST

static int cancel_counter(void *userdata) {
        (*(unsigned *)userdata)++;
        return 1;
}

/* A stopping job is not held for minutes of retries (issue 11 item 10). */
START_TEST(test_cancel_ends_retries) {
        _cleanup_http_ AdeHttp *h = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpResponse resp = {};
        AdeHttpOptions o;
        unsigned sleeps = 0, asked = 0;

        ade_http_options_init(&o);
        o.imds = true;
        o.max_retries = 5;
        o.sleep = sleep_counter;
        o.sleep_userdata = &sleeps;
        ck_assert_int_eq(ade_http_new(&o, &h), 0);
        ade_http_set_thread_cancel(cancel_counter, &asked);
        ck_assert_int_eq(
                ade_http_request(h, &(AdeHttpRequest){.url = "http://127.0.0.1:1/metadata/instance"}, &resp, &e),
                -ECANCELED);
        ade_http_set_thread_cancel(NULL, NULL);
        ck_assert_uint_eq(sleeps, 0);
        ck_assert_uint_ge(asked, 1);
}
END_TEST

/* A server that took the connection and never answers: the listening socket's backlog completes
 * the handshake, nobody accepts, nothing is ever sent. A cancel ends the request in flight, with
 * an error that names the URL, instead of waiting out the timeout (issue 11, fault injection). */
START_TEST(test_cancel_ends_request_in_flight) {
        _cleanup_http_ AdeHttp *h = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *u = NULL;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        AdeHttpResponse resp = {};
        AdeHttpOptions o;
        unsigned sleeps = 0, asked = 0;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        ck_assert_int_ge(asprintf(&u, "http://127.0.0.1:%u/metadata/instance", ntohs(sa.sin_port)), 0);

        ade_http_options_init(&o);
        o.imds = true;
        o.max_retries = 0;
        o.timeout_ms = 5000; /* without the cancel, a Timeout after this long */
        o.sleep = sleep_counter;
        o.sleep_userdata = &sleeps;
        ck_assert_int_eq(ade_http_new(&o, &h), 0);
        ade_http_set_thread_cancel(cancel_counter, &asked);
        ck_assert_int_eq(ade_http_request(h, &(AdeHttpRequest){.url = u}, &resp, &e), -ECANCELED);
        ade_http_set_thread_cancel(NULL, NULL);
        ck_assert_uint_ge(asked, 1);
        ck_assert_ptr_nonnull(e.code);
        ck_assert_str_eq(e.code, "Cancelled");
        ck_assert_str_eq(e.url, u);
}
END_TEST

/* A server that answers each of its connections' requests with the next canned answer. */
typedef struct Canned {
        int fd;
        const char *const *answers;
} Canned;

static void *canned_serve(void *userdata) {
        Canned *c = userdata;
        char buf[4096];

        for (const char *const *a = c->answers; *a; a++) {
                int conn = accept(c->fd, NULL, NULL);
                if (conn < 0)
                        break;
                bool ok = read(conn, buf, sizeof(buf)) > 0 && write(conn, *a, strlen(*a)) == (ssize_t)strlen(*a);
                close(conn);
                if (!ok)
                        break;
        }
        return NULL;
}

/* keep_headers: the final answer's lines with the prefix, in any case, as sent; those of an
 * attempt that was retried, and of an interim answer (100 Continue), are forgotten. */
START_TEST(test_keep_headers) {
        static const char *const answers[] = {
                "HTTP/1.1 503 Service Unavailable\r\nx-ms-meta-stale: yes\r\nRetry-After: 0\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n",
                "HTTP/1.1 100 Continue\r\nx-ms-meta-interim: yes\r\n\r\n"
                "HTTP/1.1 200 OK\r\nx-ms-meta-AdeVolume: v1\r\nX-MS-META-encryptiondata: {\"a\": 1}\r\n"
                "x-ms-version: 2021-12-02\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                NULL,
        };
        _cleanup_http_ AdeHttp *h = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *u = NULL;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        AdeHttpOptions o;
        unsigned sleeps = 0;
        pthread_t t;
        Canned c;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(fd, 4), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        ck_assert_int_ge(asprintf(&u, "http://127.0.0.1:%u/metadata/x", ntohs(sa.sin_port)), 0);
        c = (Canned){.fd = fd, .answers = answers};
        ck_assert_int_eq(pthread_create(&t, NULL, canned_serve, &c), 0);

        ade_http_options_init(&o);
        o.imds = true; /* plain http, for a test server */
        o.max_retries = 1;
        o.sleep = sleep_counter;
        o.sleep_userdata = &sleeps;
        ck_assert_int_eq(ade_http_new(&o, &h), 0);
        ck_assert_int_eq(ade_http_request(h, &(AdeHttpRequest){.url = u, .keep_headers = "x-ms-meta-"}, &resp, &e), 0);
        pthread_join(t, NULL);
        ck_assert_int_eq(resp.status, 200);
        ck_assert_uint_eq(resp.attempts, 2);
        ck_assert_ptr_nonnull(resp.headers);
        ck_assert_str_eq(resp.headers[0], "x-ms-meta-AdeVolume: v1");
        ck_assert_str_eq(resp.headers[1], "X-MS-META-encryptiondata: {\"a\": 1}");
        ck_assert_ptr_null(resp.headers[2]);
}
END_TEST

START_TEST(test_plain_http_refused_outside_imds) {
        _cleanup_http_ AdeHttp *h = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpResponse resp = {};

        ck_assert_int_eq(ade_http_new(NULL, &h), 0);
        ck_assert_int_eq(ade_http_request(h, &(AdeHttpRequest){.url = "http://127.0.0.1:1/secrets/x"}, &resp, &e),
                -EPROTONOSUPPORT);
        ck_assert_str_eq(e.code, "ProtocolNotAllowed");
}
END_TEST

int main(void) {
        Suite *s = suite_create("http");
        TCase *tc = ade_test_case("http");

        curl_global_init(CURL_GLOBAL_DEFAULT);
        tcase_add_test(tc, test_retry_after_seconds);
        tcase_add_test(tc, test_retry_after_http_date_future);
        tcase_add_test(tc, test_retry_after_http_date_past_is_zero);
        tcase_add_test(tc, test_retry_after_garbage_refused);
        tcase_add_test(tc, test_backoff_grows_and_is_capped);
        tcase_add_test(tc, test_backoff_jitter_stays_in_half_to_full);
        tcase_add_test(tc, test_retryable_statuses);
        tcase_add_test(tc, test_not_retryable_statuses);
        tcase_add_test(tc, test_url_join);
        tcase_add_test(tc, test_url_origin);
        tcase_add_test(tc, test_url_origin_refuses_non_urls);
        tcase_add_test(tc, test_same_origin);
        tcase_add_test(tc, test_different_origin);
        tcase_add_test(tc, test_cloud_error_keyvault_envelope);
        tcase_add_test(tc, test_cloud_error_imds_envelope);
        tcase_add_test(tc, test_cloud_error_imds_instance_text);
        tcase_add_test(tc, test_cloud_error_non_json_body);
        tcase_add_test(tc, test_cloud_error_empty_body);
        tcase_add_test(tc, test_cloud_error_to_string_names_everything);
        tcase_add_test(tc, test_errno_from_status);
        tcase_add_test(tc, test_missing_ca_file_refused);
        tcase_add_test(tc, test_ca_file_without_certificate_refused);
        tcase_add_test(tc, test_connection_refused_after_retries);
        tcase_add_test(tc, test_cancel_ends_retries);
        tcase_add_test(tc, test_cancel_ends_request_in_flight);
        tcase_add_test(tc, test_keep_headers);
        tcase_add_test(tc, test_plain_http_refused_outside_imds);
        tcase_add_test(tc, test_error_kind);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
