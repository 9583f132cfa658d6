/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>

#include "ade-cloud-error.h"
#include "ade-json.h"

void ade_cloud_error_done(AdeCloudError *e) {
        if (!e)
                return;
        free(e->code);
        free(e->message);
        free(e->url);
        *e = ADE_CLOUD_ERROR_NULL;
}

static char *url_without_query(const char *url) {
        if (!url)
                return NULL;
        return strndup(url, strcspn(url, "?#"));
}

int ade_cloud_error_set(AdeCloudError *e, long status, const char *code, const char *message, const char *url) {
        AdeCloudError n = {.status = status};

        if (!e)
                return 0;

        if ((code && !(n.code = strdup(code))) || (message && !(n.message = strdup(message))) ||
                (url && !(n.url = url_without_query(url)))) {
                ade_cloud_error_done(&n);
                return -ENOMEM;
        }

        ade_cloud_error_done(e);
        *e = n;
        return 0;
}

static const char *reason_phrase(long status) {
        switch (status) {
        case 400:
                return "BadRequest";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "NotFound";
        case 408:
                return "RequestTimeout";
        case 409:
                return "Conflict";
        case 410:
                return "Gone";
        case 413:
                return "PayloadTooLarge";
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
                return status >= 200 && status < 300 ? "UnexpectedReply" : "HttpError";
        }
}

int ade_cloud_error_from_reply(AdeCloudError *e, long status, const char *body, size_t size, const char *url) {
        _cleanup_json_ json_object *o = NULL;
        const char *code = NULL, *message = NULL;

        if (!e)
                return 0;

        if (body && size > 0 && ade_json_parse(body, size, &o) >= 0 && json_object_is_type(o, json_type_object)) {
                json_object *err;

                if (ade_json_get_object(o, "error", &err) >= 0) {
                        /* Key Vault and ARM: {"error":{"code":..., "message":...}} */
                        (void)ade_json_get_string(err, "code", &code);
                        (void)ade_json_get_string(err, "message", &message);
                } else if (ade_json_get_string(o, "error", &code) >= 0) {
                        /* IMDS and Entra: {"error":"invalid_request","error_description":"..."}; IMDS
                         * instance errors carry the whole text in "error". */
                        if (ade_json_get_string(o, "error_description", &message) < 0 && strchr(code, ' ')) {
                                message = code;
                                code = NULL;
                        }
                } else
                        (void)ade_json_get_string(o, "message", &message);
        }

        if (!message && body && size > 0 && !o) {
                char snippet[201];
                size_t n = 0;

                for (size_t i = 0; i < size && n < sizeof(snippet) - 1; i++)
                        snippet[n++] = isprint((unsigned char)body[i]) ? body[i] : ' ';
                snippet[n] = 0;
                return ade_cloud_error_set(e, status, code ?: reason_phrase(status), snippet, url);
        }

        return ade_cloud_error_set(e, status, code ?: reason_phrase(status), message, url);
}

int ade_cloud_errno_from_status(long status) {
        switch (status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
        case 410:
                return -ENOENT;
        case 409:
                return -EEXIST;
        case 400:
        case 422:
                return -EINVAL;
        case 408:
                return -ETIMEDOUT;
        case 413:
                return -EFBIG;
        case 429:
                return -EBUSY;
        default:
                return status >= 500 && status < 600 ? -EAGAIN : -EPROTO;
        }
}

static bool cloud_error_is_refusal(const AdeCloudError *e) {
        return e->status == 0 && e->code && (streq(e->code, "VaultNotAllowed") || streq(e->code, "OriginNotAllowed"));
}

AdeCloudErrorKind ade_cloud_error_kind(int r, const AdeCloudError *e) {
        if (e && cloud_error_is_refusal(e))
                return ADE_CLOUD_ERROR_REFUSED;
        if (e && e->status >= 500 && e->status < 600)
                return ADE_CLOUD_ERROR_SERVER;
        /* ade-http's transport failures: no answer, a code of its own (ConnectionRefused, Timeout,
         * HostNotFound, ConnectionDropped, CertificateNotTrusted, ...). */
        if (e && e->status == 0 && e->code && !streq(e->code, "OutOfMemory") && !streq(e->code, "Cancelled"))
                return ADE_CLOUD_ERROR_NETWORK;
        switch (e ? e->status : 0) {
        case 0:
                break;
        case 401:
        case 403:
                return ADE_CLOUD_ERROR_AUTH;
        case 404:
        case 410:
                return ADE_CLOUD_ERROR_NOT_FOUND;
        case 429:
                return ADE_CLOUD_ERROR_THROTTLED;
        default:
                return ADE_CLOUD_ERROR_CLIENT;
        }
        /* No error recorded: what the errno says. */
        switch (r) {
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -ETIMEDOUT:
        case -ECONNABORTED:
        case -EHOSTDOWN:
        case -ENOTCONN:
        case -EPIPE:
        case -EIO:
        case -ENXIO:
        case -EPROTO:
        case -EKEYREJECTED:
                return ADE_CLOUD_ERROR_NETWORK;
        default:
                return ADE_CLOUD_ERROR_OTHER;
        }
}

static const char *const kind_names[_ADE_CLOUD_ERROR_KIND_MAX] = {
        [ADE_CLOUD_ERROR_NETWORK] = "network",
        [ADE_CLOUD_ERROR_REFUSED] = "refused",
        [ADE_CLOUD_ERROR_AUTH] = "auth",
        [ADE_CLOUD_ERROR_NOT_FOUND] = "not_found",
        [ADE_CLOUD_ERROR_THROTTLED] = "throttled",
        [ADE_CLOUD_ERROR_SERVER] = "server",
        [ADE_CLOUD_ERROR_CLIENT] = "client",
        [ADE_CLOUD_ERROR_OTHER] = "other",
};

const char *ade_cloud_error_kind_to_string(AdeCloudErrorKind k) {
        return k >= 0 && k < _ADE_CLOUD_ERROR_KIND_MAX ? kind_names[k] : NULL;
}

char *ade_cloud_error_to_string(const AdeCloudError *e, const char *service) {
        char *s = NULL;
        int r;

        if (!e)
                return NULL;

        if (cloud_error_is_refusal(e))
                /* ade refused before sending anything: nothing failed to reach the service. */
                r = asprintf(&s, "%s was not contacted: %s: %s (%s)", service ?: "The service", e->code,
                        strna(e->message), strna(e->url));
        else if (e->status > 0)
                r = asprintf(&s, "%s answered %ld %s: %s (%s)", service ?: "The service", e->status, strna(e->code),
                        e->message ?: "no message", strna(e->url));
        else
                r = asprintf(&s, "%s could not be reached: %s%s%s (%s)", service ?: "The service", strna(e->code),
                        e->message ? ": " : "", e->message ?: "", strna(e->url));
        return r < 0 ? NULL : s;
}
