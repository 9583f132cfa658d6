/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ade-blob.h"
#include "ade-config.h"
#include "ade-log.h"
#include "ade-url.h"
#include "ade-xml.h"

#define META_PREFIX "x-ms-meta-"
#define META_NAME_MAX 256U
#define LIST_PAGES_MAX 1000U

struct AdeBlobClient {
        AdeHttp *http;
        AdeCredential *credential;
        char *url;
        char *origin;
        char *resource;
};

int ade_blob_client_new(const char *container_url, AdeCredential *credential, const char *resource,
        const AdeHttpOptions *opts, AdeBlobClient **ret) {
        _cleanup_(ade_blob_client_freep) AdeBlobClient *c = NULL;
        AdeHttpOptions o;
        int r;

        assert(credential);
        assert(ret);

        if (!ade_config_container_url_is_valid(container_url))
                return ade_log_debug_errno(
                        -EINVAL, "'%s' does not name a Blob Storage container", strna(container_url));
        if (opts)
                o = *opts;
        else
                ade_http_options_init(&o);
        if (o.max_response_size == 0)
                o.max_response_size = ADE_BLOB_SIZE_MAX;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->credential = credential;
        r = ade_url_origin(container_url, &c->origin);
        if (r < 0)
                return r;
        c->url = strdup(container_url);
        c->resource = strdup(resource ?: ADE_BLOB_RESOURCE_DEFAULT);
        if (!c->url || !c->resource)
                return -ENOMEM;
        r = ade_http_new(&o, &c->http);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

AdeBlobClient *ade_blob_client_free(AdeBlobClient *c) {
        if (!c)
                return NULL;
        ade_http_free(c->http);
        free(c->url);
        free(c->origin);
        free(c->resource);
        free(c);
        return NULL;
}

const char *ade_blob_client_url(const AdeBlobClient *c) {
        return c->url;
}

bool ade_blob_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n == 0 || n > ADE_BLOB_NAME_MAX)
                return false;
        for (const char *seg = name;;) {
                size_t l = strcspn(seg, "/");

                if (l == 0 || (l == 1 && seg[0] == '.') || (l == 2 && seg[0] == '.' && seg[1] == '.'))
                        return false;
                for (size_t i = 0; i < l; i++)
                        if (!(isalnum((unsigned char)seg[i]) || strchr("._-", seg[i])))
                                return false;
                if (seg[l] == '\0')
                        return true;
                seg += l + 1;
        }
}

bool ade_blob_metadata_is_valid(const char *name, const char *value) {
        size_t n, v;

        if (!name || !value)
                return false;
        n = strlen(name);
        if (n == 0 || n > META_NAME_MAX || isdigit((unsigned char)name[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char)name[i]) || name[i] == '_'))
                        return false;
        v = strlen(value);
        if (v > 0 && (value[0] == ' ' || value[v - 1] == ' '))
                return false;
        for (size_t i = 0; i < v; i++)
                if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] > 0x7e)
                        return false;
        return true;
}

const char *ade_blob_metadata_get(char *const *pairs, const char *name) {
        for (char *const *p = pairs; p && p[0] && p[1]; p += 2)
                if (strcaseeq(p[0], name))
                        return p[1];
        return NULL;
}

static int blob_url(AdeBlobClient *c, const char *name, char **ret) {
        if (!ade_blob_name_is_valid(name))
                return ade_log_debug_errno(-EINVAL, "'%s' is not a blob name ade sends", strna(name));
        return ade_url_join(c->url, name, ret);
}

/* Storage's error body, <Error><Code/><Message/></Error>. */
typedef struct ErrorBody {
        char *code;
        char *message;
} ErrorBody;

static int error_element(const char *const *path, size_t depth, const char *text, void *userdata) {
        ErrorBody *e = userdata;
        char **f = NULL;

        if (depth != 2 || !text || !streq(path[0], "Error"))
                return 0;
        if (streq(path[1], "Code"))
                f = &e->code;
        else if (streq(path[1], "Message"))
                f = &e->message;
        if (f && !*f) {
                *f = strdup(text);
                if (!*f)
                        return -ENOMEM;
        }
        return 0;
}

/* A non-2xx answer into *ret_error and an errno. */
static int reply_error(const AdeHttpResponse *resp, const char *url, AdeCloudError *ret_error) {
        ErrorBody e = {};
        int r = ade_cloud_errno_from_status(resp->status);

        if (resp->body && resp->size > 0 && ade_xml_walk(resp->body, resp->size, error_element, &e) == 0 && e.code) {
                /* Storage ends its messages with "\nRequestId:…\nTime:…": keep the first line. */
                if (e.message)
                        e.message[strcspn(e.message, "\r\n")] = 0;
                (void)ade_cloud_error_set(ret_error, resp->status, e.code, e.message ?: e.code, url);
        } else
                (void)ade_cloud_error_from_reply(ret_error, resp->status, resp->body, resp->size, url);
        free(e.code);
        free(e.message);
        return ade_log_debug_errno(r, "Blob Storage answered %ld to %s", resp->status, url);
}

static int request(AdeBlobClient *c, AdeHttpRequest *req, char **extra_headers, AdeHttpResponse *ret_resp,
        AdeCloudError *ret_error) {
        char date[64], date_header[96];
        const char **headers;
        size_t n = 0, k = 0;
        struct tm tm;
        time_t now;
        int r;

        /* Every URL is the container's or one of its blobs (see blob_url()); checked once more
         * here, where the token is attached. */
        if (!ade_url_same_origin(req->url, c->origin)) {
                (void)ade_cloud_error_set(ret_error, 0, "OriginNotAllowed",
                        "the URL is not on the configured container's origin; no token is sent there", req->url);
                return -EPROTO;
        }
        now = time(NULL);
        if (!gmtime_r(&now, &tm) || strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
                return -EINVAL;
        snprintf(date_header, sizeof(date_header), "x-ms-date: %s", date);

        n = strv_length(extra_headers);
        headers = calloc(n + 3, sizeof(char *));
        if (!headers)
                return -ENOMEM;
        headers[k++] = "x-ms-version: " ADE_BLOB_API_VERSION;
        headers[k++] = date_header;
        for (size_t i = 0; i < n; i++)
                headers[k++] = extra_headers[i];
        headers[k] = NULL;
        req->headers = headers;
        r = ade_credential_bearer_request(c->credential, c->http, c->resource, NULL, req, ret_resp, ret_error);
        free(headers);
        return r;
}

/* @metadata's name/value pairs as "x-ms-meta-name: value" lines, appended to *@headers. */
static int metadata_headers(char *const *metadata, char ***headers) {
        for (char *const *m = metadata; m && m[0]; m += 2) {
                _cleanup_free_ char *line = NULL;

                if (!m[1] || !ade_blob_metadata_is_valid(m[0], m[1]))
                        return ade_log_debug_errno(-EINVAL, "metadata '%s' cannot be sent", m[0]);
                if (asprintf(&line, META_PREFIX "%s: %s", m[0], m[1]) < 0 || strv_extend(headers, line) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int ade_blob_put(AdeBlobClient *c, const char *name, const void *data, size_t size, char *const *metadata,
        AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_(strv_freep) char **headers = NULL;
        _cleanup_free_ char *url = NULL;
        int r;

        assert(c);
        if (size > ADE_BLOB_SIZE_MAX)
                return -EFBIG;
        r = blob_url(c, name, &url);
        if (r < 0)
                return r;
        if (strv_extend(&headers, "x-ms-blob-type: BlockBlob") < 0 ||
                strv_extend(&headers, "Content-Type: application/octet-stream") < 0)
                return -ENOMEM;
        r = metadata_headers(metadata, &headers);
        if (r < 0)
                return r;

        r = request(c,
                &(AdeHttpRequest){
                        .method = "PUT", .url = url, .body = data, .body_size = size, .send_empty_body = size == 0},
                headers, &resp, ret_error);
        if (r < 0)
                return r;
        if (resp.status != 201)
                return reply_error(&resp, url, ret_error);
        return 0;
}

int ade_blob_set_metadata(AdeBlobClient *c, const char *name, char *const *metadata, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_(strv_freep) char **headers = NULL;
        _cleanup_free_ char *blob = NULL, *url = NULL;
        int r;

        assert(c);
        r = blob_url(c, name, &blob);
        if (r < 0)
                return r;
        if (asprintf(&url, "%s?comp=metadata", blob) < 0)
                return -ENOMEM;
        r = metadata_headers(metadata, &headers);
        if (r < 0)
                return r;
        r = request(
                c, &(AdeHttpRequest){.method = "PUT", .url = url, .send_empty_body = true}, headers, &resp, ret_error);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return reply_error(&resp, url, ret_error);
        return 0;
}

int ade_blob_delete(AdeBlobClient *c, const char *name, AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        int r;

        assert(c);
        r = blob_url(c, name, &url);
        if (r < 0)
                return r;
        r = request(c, &(AdeHttpRequest){.method = "DELETE", .url = url}, NULL, &resp, ret_error);
        if (r < 0)
                return r;
        if (resp.status != 202)
                return reply_error(&resp, url, ret_error);
        return 0;
}

/* "x-ms-meta-name: value" lines into name/value pairs. */
static int metadata_from_headers(char *const *lines, char ***ret) {
        _cleanup_(strv_freep) char **pairs = NULL;

        for (char *const *l = lines; l && *l; l++) {
                const char *name = *l + strlen(META_PREFIX), *colon = strchr(name, ':');
                _cleanup_free_ char *n = NULL;
                const char *v;

                if (!colon || colon == name)
                        return -EPROTO;
                n = strndup(name, colon - name);
                if (!n)
                        return -ENOMEM;
                v = colon + 1;
                v += strspn(v, " \t");
                if (strv_extend(&pairs, n) < 0 || strv_extend(&pairs, v) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(pairs);
        return 0;
}

int ade_blob_get(AdeBlobClient *c, const char *name, void **ret_data, size_t *ret_size, char ***ret_metadata,
        AdeCloudError *ret_error) {
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_(strv_freep) char **pairs = NULL;
        _cleanup_free_ char *url = NULL;
        char *data;
        int r;

        assert(c);
        assert(ret_data);
        assert(ret_size);
        r = blob_url(c, name, &url);
        if (r < 0)
                return r;
        r = request(
                c, &(AdeHttpRequest){.method = "GET", .url = url, .keep_headers = META_PREFIX}, NULL, &resp, ret_error);
        if (r < 0)
                return r;
        if (resp.status != 200)
                return reply_error(&resp, url, ret_error);
        r = metadata_from_headers(resp.headers, &pairs);
        if (r < 0) {
                (void)ade_cloud_error_set(
                        ret_error, resp.status, "MalformedReply", "a metadata header has no name", url);
                return r;
        }
        /* The body buffer is the response's; hand over a copy of its exact size. */
        data = malloc(resp.size + 1);
        if (!data)
                return -ENOMEM;
        if (resp.size > 0)
                memcpy(data, resp.body, resp.size);
        data[resp.size] = 0;
        *ret_data = data;
        *ret_size = resp.size;
        if (ret_metadata)
                *ret_metadata = TAKE_PTR(pairs);
        return 0;
}

void ade_blob_items_free(AdeBlobItem *items, size_t n) {
        for (size_t i = 0; items && i < n; i++) {
                free(items[i].name);
                strv_free(items[i].metadata);
        }
        free(items);
}

typedef struct ListPage {
        AdeBlobItem *items;
        size_t n;
        AdeBlobItem cur;
        bool in_blob;
        char *next_marker;
} ListPage;

static int list_element(const char *const *path, size_t depth, const char *text, void *userdata) {
        ListPage *p = userdata;
        char *end;

        if (depth == 0 || !streq(path[0], "EnumerationResults"))
                return -EBADMSG;
        if (depth == 2 && streq(path[1], "NextMarker") && text) {
                free(p->next_marker);
                p->next_marker = strdup(text);
                return p->next_marker ? 0 : -ENOMEM;
        }
        if (depth < 3 || !streq(path[1], "Blobs") || !streq(path[2], "Blob"))
                return 0;
        if (depth == 4 && streq(path[3], "Name") && text) {
                if (p->cur.name)
                        return -EBADMSG;
                p->cur.name = strdup(text);
                return p->cur.name ? 0 : -ENOMEM;
        }
        if (depth == 5 && streq(path[3], "Properties") && streq(path[4], "Content-Length") && text) {
                errno = 0;
                p->cur.size = strtoull(text, &end, 10);
                if (errno != 0 || end == text || *end)
                        return -EBADMSG;
                return 0;
        }
        if (depth == 5 && streq(path[3], "Metadata") && text) {
                if (strv_extend(&p->cur.metadata, path[4]) < 0 || strv_extend(&p->cur.metadata, text) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (depth == 3) {
                AdeBlobItem *t;

                if (!p->cur.name)
                        return -EBADMSG;
                t = reallocarray(p->items, p->n + 1, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                p->items = t;
                p->items[p->n++] = p->cur;
                p->cur = (AdeBlobItem){};
        }
        return 0;
}

int ade_blob_list(AdeBlobClient *c, const char *prefix, unsigned page_size, AdeBlobItem **ret_items, size_t *ret_n,
        AdeCloudError *ret_error) {
        ListPage p = {};
        _cleanup_free_ char *marker = NULL;
        int r = 0;

        assert(c);
        assert(ret_items);
        assert(ret_n);

        for (unsigned page = 0;; page++) {
                _cleanup_http_response_ AdeHttpResponse resp = {};
                _cleanup_free_ char *url = NULL, *ep = NULL, *em = NULL;
                char size_arg[32] = "";

                if (page == LIST_PAGES_MAX) {
                        r = ade_log_debug_errno(-E2BIG, "List Blobs on %s: more than %u pages", c->url, LIST_PAGES_MAX);
                        (void)ade_cloud_error_set(ret_error, 0, "TooManyPages", "the listing did not end", c->url);
                        break;
                }
                ep = ade_http_escape(prefix ?: "");
                em = ade_http_escape(marker ?: "");
                if (!ep || !em) {
                        r = -ENOMEM;
                        break;
                }
                if (page_size > 0)
                        snprintf(size_arg, sizeof(size_arg), "&maxresults=%u", page_size);
                if (asprintf(&url, "%s?restype=container&comp=list&include=metadata%s%s%s%s%s", c->url,
                            isempty(prefix) ? "" : "&prefix=", isempty(prefix) ? "" : ep,
                            isempty(marker) ? "" : "&marker=", isempty(marker) ? "" : em, size_arg) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = request(c, &(AdeHttpRequest){.method = "GET", .url = url}, NULL, &resp, ret_error);
                if (r < 0)
                        break;
                if (resp.status != 200) {
                        r = reply_error(&resp, url, ret_error);
                        break;
                }
                p.next_marker = mfree(p.next_marker);
                r = ade_xml_walk(resp.body ?: "", resp.size, list_element, &p);
                if (r < 0) {
                        free(p.cur.name);
                        strv_free(p.cur.metadata);
                        p.cur = (AdeBlobItem){};
                        if (r != -ENOMEM) {
                                (void)ade_cloud_error_set(ret_error, resp.status, "MalformedReply",
                                        "the blob listing is not the XML Storage sends", url);
                                r = -EPROTO;
                        }
                        break;
                }
                if (isempty(p.next_marker))
                        break;
                free(marker);
                marker = TAKE_PTR(p.next_marker);
        }
        free(p.next_marker);
        if (r < 0) {
                ade_blob_items_free(p.items, p.n);
                return r;
        }
        *ret_items = p.items;
        *ret_n = p.n;
        return 0;
}
