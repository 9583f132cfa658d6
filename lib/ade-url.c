/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>

#include "ade-log.h"
#include "ade-url.h"

static void curl_url_cleanupp(CURLU **u) {
        if (*u)
                curl_url_cleanup(*u);
}

static void curl_freep(char **s) {
        if (*s)
                curl_free(*s);
}

AdeUrl *ade_url_free(AdeUrl *u) {
        if (!u)
                return NULL;
        free(u->scheme);
        free(u->host);
        free(u->origin);
        free(u->path);
        free(u->query);
        free(u->fragment);
        free(u);
        return NULL;
}

static bool char_forbidden(char c) {
        /* Control characters and spaces are how header and request smuggling start; a backslash is
         * a path separator to some parsers and not to others. */
        return (unsigned char)c <= 0x20 || c == 0x7f || c == '\\';
}

/* Whether @url starts "letter [letters digits + - .]* ://" — a scheme, just not one we take. */
static bool has_other_scheme(const char *url) {
        const char *p = url;

        if (!isalpha((unsigned char)*p))
                return false;
        while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
                p++;
        return startswith(p, "://");
}

/* Lower-cases @host in place, drops one trailing dot, and checks what is left: an IPv6 literal in
 * brackets, or dot-separated non-empty labels of letters, digits, '-' and '_'. */
static int host_normalize(char *host) {
        size_t l;

        for (char *p = host; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        l = strlen(host);
        if (l > 0 && host[l - 1] == '.')
                host[--l] = 0;
        if (l == 0)
                return -EDESTADDRREQ;
        if (l > 255)
                return -EINVAL;

        if (host[0] == '[') {
                if (l < 3 || host[l - 1] != ']')
                        return -EINVAL;
                for (size_t i = 1; i < l - 1; i++)
                        if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.')
                                return -EINVAL;
                return 0;
        }

        for (size_t i = 0, label = 0; i <= l; i++) {
                if (i == l || host[i] == '.') {
                        if (label == 0)
                                return -EINVAL;
                        label = 0;
                } else if (isalnum((unsigned char)host[i]) || host[i] == '-' || host[i] == '_')
                        label++;
                else
                        return -EINVAL;
        }
        return 0;
}

/* Whether libcurl reads @host (normalized, its trailing dot dropped) as written. libcurl reads
 * "888" as the address 0.0.3.120 but "888." as a name: the origin of "https://888." must not
 * be a URL that dials another host. */
static int host_reads_as_itself(const char *host) {
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        _cleanup_(curl_freep) char *again = NULL;
        _cleanup_free_ char *url = NULL;
        CURLUcode rc;

        /* libcurl reads numbers as an address only in a whole URL, not in a host set alone. */
        if (asprintf(&url, "https://%s/", host) < 0)
                return -ENOMEM;
        h = curl_url();
        if (!h)
                return -ENOMEM;
        rc = curl_url_set(h, CURLUPART_URL, url, 0);
        if (rc == CURLUE_OK)
                rc = curl_url_get(h, CURLUPART_HOST, &again, 0);
        if (rc == CURLUE_OUT_OF_MEMORY)
                return -ENOMEM;
        return rc == CURLUE_OK && again && strcasecmp(again, host) == 0;
}

static int curl_get(CURLU *h, CURLUPart part, char **ret) {
        _cleanup_(curl_freep) char *s = NULL;
        CURLUcode rc;

        rc = curl_url_get(h, part, &s, 0);
        if (rc == CURLUE_OUT_OF_MEMORY)
                return -ENOMEM;
        if (rc != CURLUE_OK || !s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 1 : -ENOMEM;
}

int ade_url_parse(const char *url, AdeUrlFlags flags, AdeUrl **ret) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        _cleanup_(curl_url_cleanupp) CURLU *h = NULL;
        _cleanup_free_ char *user = NULL, *password = NULL, *zone = NULL, *port = NULL;
        const char *authority;
        bool https;
        size_t n;
        CURLUcode rc;
        int r;

        assert(ret);

        if (!url || strlen(url) > ADE_URL_LENGTH_MAX)
                return -EINVAL;
        for (const char *p = url; *p; p++)
                if (char_forbidden(*p))
                        return -EINVAL;

        authority = startswith_no_case(url, "https://");
        https = authority;
        if (!authority) {
                authority = startswith_no_case(url, "http://");
                if (!authority)
                        return has_other_scheme(url) ? -EPROTONOSUPPORT : -EINVAL;
                if (!(flags & ADE_URL_ALLOW_HTTP))
                        return -EPROTONOSUPPORT;
        }
        /* libcurl reads "https:///x" as host "x"; we read it as what it is, no host. */
        n = strcspn(authority, "/?#");
        if (n == 0)
                return -EDESTADDRREQ;
        if (memchr(authority, '@', n))
                return -EPERM;
        /* A percent-encoded host is decoded by libcurl, so "%76ault" would compare unlike what is
         * dialled; IPv6 zone ids ("%25eth0") name an interface, never a vault. */
        if (memchr(authority, '%', n))
                return -EINVAL;

        h = curl_url();
        if (!h)
                return -ENOMEM;
        /* PATH_AS_IS: see the path as written, so that callers can refuse dot segments. */
        rc = curl_url_set(h, CURLUPART_URL, url, CURLU_PATH_AS_IS);
        if (rc == CURLUE_OUT_OF_MEMORY)
                return -ENOMEM;
        if (rc != CURLUE_OK)
                return ade_log_debug_errno(-EINVAL, "'%s' is not a URL: %s", url, curl_url_strerror(rc));

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        if ((r = curl_get(h, CURLUPART_USER, &user)) < 0 || (r = curl_get(h, CURLUPART_PASSWORD, &password)) < 0 ||
                (r = curl_get(h, CURLUPART_ZONEID, &zone)) < 0 || (r = curl_get(h, CURLUPART_PORT, &port)) < 0 ||
                (r = curl_get(h, CURLUPART_HOST, &u->host)) < 0 || (r = curl_get(h, CURLUPART_PATH, &u->path)) < 0 ||
                (r = curl_get(h, CURLUPART_QUERY, &u->query)) < 0 ||
                (r = curl_get(h, CURLUPART_FRAGMENT, &u->fragment)) < 0)
                return r;
        if (user || password)
                return -EPERM;
        if (zone)
                return -EINVAL;
        if (!u->host)
                return -EDESTADDRREQ;
        n = strlen(u->host);
        r = host_normalize(u->host);
        if (r < 0)
                return r;
        if (strlen(u->host) != n) {
                r = host_reads_as_itself(u->host);
                if (r <= 0)
                        return r < 0 ? r : -EINVAL;
        }

        u->port = https ? 443 : 80;
        if (port) {
                char *end;
                unsigned long p;

                errno = 0;
                p = strtoul(port, &end, 10);
                if (errno != 0 || *end || p == 0 || p > 65535)
                        return -EINVAL;
                u->port = (uint16_t)p;
        }

        u->scheme = strdup(https ? "https" : "http");
        if (!u->scheme)
                return -ENOMEM;
        if (u->port == (https ? 443 : 80))
                r = asprintf(&u->origin, "%s://%s", u->scheme, u->host);
        else
                r = asprintf(&u->origin, "%s://%s:%u", u->scheme, u->host, (unsigned)u->port);
        if (r < 0) {
                u->origin = NULL;
                return -ENOMEM;
        }
        if (!u->path && !(u->path = strdup("/")))
                return -ENOMEM;

        *ret = TAKE_PTR(u);
        return 0;
}

int ade_url_origin(const char *url, char **ret_origin) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        int r;

        r = ade_url_parse(url, ADE_URL_ALLOW_HTTP, &u);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (ret_origin)
                *ret_origin = TAKE_PTR(u->origin);
        return 0;
}

bool ade_url_same_origin(const char *a, const char *b) {
        _cleanup_free_ char *oa = NULL, *ob = NULL;

        return ade_url_origin(a, &oa) >= 0 && ade_url_origin(b, &ob) >= 0 && streq(oa, ob);
}

bool ade_url_host_is_within(const char *host, const char *domain) {
        size_t hl, dl;

        if (isempty(host) || isempty(domain))
                return false;
        hl = strlen(host);
        dl = strlen(domain);
        if (host[hl - 1] == '.')
                hl--;
        if (domain[dl - 1] == '.')
                dl--;
        if (hl == 0 || dl == 0 || hl < dl)
                return false;
        if (strncasecmp(host + hl - dl, domain, dl) != 0)
                return false;
        return hl == dl || host[hl - dl - 1] == '.';
}

static bool path_is_clean(const char *path, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (char_forbidden(path[i]) || path[i] == '#')
                        return false;
                if (path[i] == '%' && n - i >= 3 &&
                        (strncasecmp(path + i, "%2e", 3) == 0 || strncasecmp(path + i, "%2f", 3) == 0 ||
                                strncasecmp(path + i, "%5c", 3) == 0))
                        return false;
        }
        /* No "." or ".." segment: the joined URL must stay under the base. */
        for (size_t i = 0; i < n;) {
                size_t l = strcspn(path + i, "/");

                if (l > n - i)
                        l = n - i;
                if ((l == 1 && path[i] == '.') || (l == 2 && path[i] == '.' && path[i + 1] == '.'))
                        return false;
                i += l + 1;
        }
        return true;
}

int ade_url_join(const char *base, const char *path, char **ret) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        size_t bl;
        int r;

        assert(base);
        assert(path);
        assert(ret);

        r = ade_url_parse(base, ADE_URL_ALLOW_HTTP, &u);
        if (r < 0)
                return -EINVAL;
        if (u->query || u->fragment || strchr(base, '?') || strchr(base, '#'))
                return -EINVAL;
        while (*path == '/')
                path++;
        if (strchr(path, '#') || !path_is_clean(path, strcspn(path, "?")))
                return -EINVAL;
        for (const char *p = path; *p; p++)
                if (char_forbidden(*p))
                        return -EINVAL;

        bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/')
                bl--;
        return asprintf(ret, "%.*s/%s", (int)bl, base, path) < 0 ? -ENOMEM : 0;
}

static bool span_ok(const char *s, size_t n, bool dash) {
        if (n == 0 || n > 127)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !(dash && s[i] == '-'))
                        return false;
        return true;
}

bool ade_url_keyvault_name_is_valid(const char *name) {
        return name && span_ok(name, strlen(name), true);
}

int ade_url_keyvault_object(const char *url, const char *kind, bool require_version, char **ret_origin, char **ret_name,
        char **ret_version) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        _cleanup_free_ char *name = NULL, *version = NULL;
        const char *p, *n, *v;
        size_t nl, vl = 0;
        int r;

        assert(kind);

        r = ade_url_parse(url, 0, &u);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || u->query || u->fragment)
                return -EINVAL;

        /* "/" kind "/" name [ "/" [ version [ "/" ] ] ] */
        p = startswith(u->path, "/");
        p = p ? startswith(p, kind) : NULL;
        n = p ? startswith(p, "/") : NULL;
        if (!n)
                return -EINVAL;
        nl = strcspn(n, "/");
        if (!span_ok(n, nl, true))
                return -EINVAL;
        v = n + nl;
        if (*v == '/') {
                v++;
                vl = strcspn(v, "/");
                if (vl > 0 && !span_ok(v, vl, false))
                        return -EINVAL;
                if (v[vl] == '/' && (vl == 0 || v[vl + 1] != 0))
                        return -EINVAL;
        }
        if (vl == 0 && require_version)
                return -EINVAL;

        if ((ret_name && !(name = strndup(n, nl))) || (ret_version && vl > 0 && !(version = strndup(v, vl))))
                return -ENOMEM;
        if (ret_origin)
                *ret_origin = TAKE_PTR(u->origin);
        if (ret_name)
                *ret_name = TAKE_PTR(name);
        if (ret_version)
                *ret_version = TAKE_PTR(version);
        return 0;
}

/* ---- ARM resource ids ---- */

void ade_url_arm_id_done(AdeUrlArmId *id) {
        if (!id)
                return;
        free(id->subscription);
        free(id->resource_group);
        free(id->provider);
        free(id->type);
        free(id->name);
        *id = (AdeUrlArmId){};
}

static void arm_id_donep(AdeUrlArmId *id) {
        ade_url_arm_id_done(id);
}

static bool segment_ok(const char *s, size_t n, const char *extra) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (extra ? !isalnum((unsigned char)s[i]) && !strchr(extra, s[i])
                          : char_forbidden(s[i]) || strchr("%?#", s[i]))
                        return false;
        return true;
}

/* Takes "<literal>/" (case-insensitive) then one segment from *p; the segment into *ret. */
static int take(const char **p, const char *literal, char **ret) {
        const char *s = startswith_no_case(*p, literal);
        size_t n;

        if (!s || *s != '/')
                return -EINVAL;
        s++;
        n = strcspn(s, "/");
        if (!segment_ok(s, n, NULL))
                return -EINVAL;
        *ret = strndup(s, n);
        if (!*ret)
                return -ENOMEM;
        *p = s + n;
        if (**p == '/')
                (*p)++;
        return 0;
}

int ade_url_arm_id_parse(const char *id, AdeUrlArmId *ret) {
        _cleanup_(arm_id_donep) AdeUrlArmId a = {};
        const char *p = id;
        int r;

        assert(ret);

        if (isempty(id))
                return -EINVAL;
        if (*p == '/')
                p++;
        if ((r = take(&p, "subscriptions", &a.subscription)) < 0 ||
                (r = take(&p, "resourceGroups", &a.resource_group)) < 0 || (r = take(&p, "providers", &a.provider)) < 0)
                return r;
        /* "TYPE/NAME" after the provider namespace, and nothing but one optional '/' after it. */
        {
                size_t tl = strcspn(p, "/"), nl;

                if (!segment_ok(p, tl, NULL) || p[tl] != '/')
                        return -EINVAL;
                nl = strcspn(p + tl + 1, "/");
                if (!segment_ok(p + tl + 1, nl, NULL))
                        return -EINVAL;
                if (p[tl + 1 + nl] == '/' ? p[tl + 2 + nl] != 0 : p[tl + 1 + nl] != 0)
                        return -EINVAL;
                a.type = strndup(p, tl);
                a.name = strndup(p + tl + 1, nl);
                if (!a.type || !a.name)
                        return -ENOMEM;
        }

        *ret = a;
        a = (AdeUrlArmId){};
        return 0;
}

bool ade_url_arm_id_is(const char *id, const char *provider, const char *type) {
        _cleanup_(arm_id_donep) AdeUrlArmId a = {};

        return ade_url_arm_id_parse(id, &a) >= 0 && strcaseeq(a.provider, provider) && strcaseeq(a.type, type);
}

int ade_url_arm_vault_id(const char *id, char **ret_subscription, char **ret_vault) {
        _cleanup_(arm_id_donep) AdeUrlArmId a = {};
        int r;

        r = ade_url_arm_id_parse(id, &a);
        if (r < 0)
                return r;
        if (!strcaseeq(a.provider, "Microsoft.KeyVault") || !strcaseeq(a.type, "vaults") ||
                !segment_ok(a.subscription, strlen(a.subscription), "-") ||
                !segment_ok(a.resource_group, strlen(a.resource_group), "-_.()") ||
                !segment_ok(a.name, strlen(a.name), "-"))
                return -EINVAL;
        if (ret_subscription)
                *ret_subscription = TAKE_PTR(a.subscription);
        if (ret_vault)
                *ret_vault = TAKE_PTR(a.name);
        return 0;
}

int ade_url_arm_id_subscription(const char *id, char **ret) {
        const char *p;
        size_t n;

        assert(ret);

        if (!id)
                return -EINVAL;
        while (*id == '/')
                id++;
        p = startswith_no_case(id, "subscriptions/");
        if (!p)
                return -EINVAL;
        n = strcspn(p, "/");
        if (!segment_ok(p, n, NULL))
                return -EINVAL;
        *ret = strndup(p, n);
        return *ret ? 0 : -ENOMEM;
}

bool ade_url_arm_id_equal(const char *a, const char *b) {
        size_t la, lb;

        if (!a || !b)
                return false;
        while (*a == '/')
                a++;
        while (*b == '/')
                b++;
        la = strlen(a);
        lb = strlen(b);
        while (la > 0 && a[la - 1] == '/')
                la--;
        while (lb > 0 && b[lb - 1] == '/')
                lb--;
        return la > 0 && la == lb && strncasecmp(a, b, la) == 0;
}
