/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "ade-http.h"
#include "ade-url.h"
#include "fuzz-http.h"
#include "fuzz.h"

#define SEPARATOR "\n%%\n"
#define ORIGINS_MAX 4

static struct {
        const uint8_t *next, *end;
        const char *token_origins[ORIGINS_MAX];
        size_t n_token_origins;
        const char *only_origin;
        unsigned requests;
} script;

int __wrap_ade_http_request(AdeHttp *h, const AdeHttpRequest *req, AdeHttpResponse *ret, AdeCloudError *ret_error);

void fuzz_http_begin(const uint8_t *data, size_t size) {
        script.next = data;
        script.end = data + size;
        script.n_token_origins = 0;
        script.only_origin = NULL;
        script.requests = 0;
}

void fuzz_http_allow_token_origin(const char *origin) {
        FUZZ_ASSERT(script.n_token_origins < ORIGINS_MAX, "too many token origins");
        script.token_origins[script.n_token_origins++] = origin;
}

void fuzz_http_set_only_origin(const char *origin) {
        script.only_origin = origin;
}

unsigned fuzz_http_requests(void) {
        return script.requests;
}

void fuzz_http_end(void) {
        script.next = script.end = NULL;
}

static bool carries_token(const AdeHttpRequest *req) {
        for (const char *const *h = req->headers; h && *h; h++)
                if (strncasecmp(*h, "Authorization:", strlen("Authorization:")) == 0)
                        return true;
        return false;
}

static void check_destination(const AdeHttpRequest *req) {
        _cleanup_free_ char *origin = NULL;

        FUZZ_ASSERT(req->url, "request without a URL");
        FUZZ_ASSERT(req->method, "request without a method");
        if (ade_url_origin(req->url, &origin) < 0) {
                /* Plain http is the IMDS client's; ade_url_origin() refuses it. */
                _cleanup_(ade_url_freep) AdeUrl *u = NULL;

                FUZZ_ASSERT(ade_url_parse(req->url, ADE_URL_ALLOW_HTTP, &u) >= 0, "request to a URL ade-url refuses");
                origin = strdup(u->origin);
                if (!origin)
                        abort();
        }
        if (script.only_origin)
                FUZZ_ASSERT(strcmp(origin, script.only_origin) == 0, "request to an origin the client was not given");
        if (carries_token(req)) {
                bool allowed = false;

                for (size_t i = 0; i < script.n_token_origins; i++)
                        allowed = allowed || strcmp(origin, script.token_origins[i]) == 0;
                FUZZ_ASSERT(allowed, "bearer token sent to an origin the target did not allow");
        }
}

/* Cuts the next answer off the script: [*ret_start, *ret_end). False when the script ran out. */
static bool next_answer(const uint8_t **ret_start, const uint8_t **ret_end) {
        const uint8_t *start = script.next, *p;
        size_t sl = strlen(SEPARATOR);

        if (!start || start >= script.end)
                return false;
        for (p = start; p + sl <= script.end; p++)
                if (memcmp(p, SEPARATOR, sl) == 0)
                        break;
        if (p + sl > script.end) {
                *ret_end = script.end;
                script.next = script.end;
        } else {
                *ret_end = p;
                script.next = p + sl;
        }
        *ret_start = start;
        return true;
}

int __wrap_ade_http_request(AdeHttp *h, const AdeHttpRequest *req, AdeHttpResponse *ret, AdeCloudError *ret_error) {
        const uint8_t *start, *end, *line_end, *p;
        long status = 0;

        FUZZ_ASSERT(h, "request without a client");
        FUZZ_ASSERT(ret, "request without an answer to fill");
        check_destination(req);
        script.requests++;

        if (!next_answer(&start, &end))
                goto refused;
        line_end = memchr(start, '\n', end - start) ?: end;
        for (p = start; p < line_end && *p >= '0' && *p <= '9' && status < 1000; p++)
                status = status * 10 + (*p - '0');
        if (p == start || status < 100 || status > 599)
                goto refused;

        *ret = (AdeHttpResponse){.status = status, .attempts = 1};
        if (p < line_end && *p == ' ') {
                ret->www_authenticate = strndup((const char *)p + 1, line_end - p - 1);
                if (!ret->www_authenticate)
                        abort();
        }
        p = line_end < end ? line_end + 1 : end;
        ret->size = end - p;
        ret->capacity = ret->size + 1;
        ret->body = malloc(ret->capacity);
        ret->content_type = strdup("application/json; charset=utf-8");
        if (!ret->body || !ret->content_type)
                abort();
        memcpy(ret->body, p, ret->size);
        ret->body[ret->size] = '\0';
        return 0;

refused:
        (void)ade_cloud_error_set(ret_error, 0, "ConnectionRefused", "the fuzz script has no answer for it", req->url);
        return -ECONNREFUSED;
}
