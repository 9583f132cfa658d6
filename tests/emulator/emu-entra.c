/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Microsoft Entra ID (docs/protocols.md §2.3): the v1 (/{tenant}/oauth2/token, resource=) and v2
 * (/{tenant}/oauth2/v2.0/token, scope=) client-credentials endpoints, with a client secret or a
 * certificate assertion (RS256/PS256, x5t or x5t#S256), AADSTS error bodies, and the discovery
 * documents MSAL reads before it asks for a token. */

#include <time.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>

#include "ade-base64.h"
#include "emu.h"

static void evp_pkey_freep(EVP_PKEY **k) {
        EVP_PKEY_free(*k);
}

static void entra_headers(EmuResponse *resp) {
        _cleanup_free_ char *id = emu_new_guid();

        emu_response_header(resp, "Cache-Control", "no-store, no-cache");
        emu_response_header(resp, "Pragma", "no-cache");
        emu_response_header(resp, "X-Content-Type-Options", "nosniff");
        emu_response_header(resp, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
        if (id)
                emu_response_header(resp, "x-ms-request-id", "%s", id);
}

static void aadsts(EmuResponse *resp, unsigned status, const char *error, unsigned code, const char *fmt, ...)
        _printf_(5, 6);

static void aadsts(EmuResponse *resp, unsigned status, const char *error, unsigned code, const char *fmt, ...) {
        _cleanup_free_ char *message = NULL, *description = NULL, *trace = emu_new_guid(), *corr = emu_new_guid(),
                            *uri = NULL;
        json_object *o = json_object_new_object(), *codes = json_object_new_array();
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
        if (!o || !codes || r < 0 || !trace || !corr ||
                asprintf(&description, "AADSTS%u: %s Trace ID: %s Correlation ID: %s Timestamp: %s", code, message,
                        trace, corr, ts) < 0 ||
                asprintf(&uri, "https://login.microsoftonline.com/error?code=%u", code) < 0) {
                json_object_put(o);
                json_object_put(codes);
                return;
        }
        ade_json_add_string(o, "error", error);
        ade_json_add_string(o, "error_description", description);
        json_object_array_add(codes, json_object_new_int((int)code));
        json_object_object_add(o, "error_codes", codes);
        ade_json_add_string(o, "timestamp", ts);
        ade_json_add_string(o, "trace_id", trace);
        ade_json_add_string(o, "correlation_id", corr);
        ade_json_add_string(o, "error_uri", uri);
        emu_response_json(resp, status, o);
}

static json_object *find_app(const char *client_id) {
        json_object *apps = emu_cfg_array(emu.config, "apps");

        for (size_t i = 0; apps && i < json_object_array_length(apps); i++) {
                json_object *a = json_object_array_get_idx(apps, i);
                if (strcaseeq(client_id, emu_cfg_str(a, "client_id") ?: ""))
                        return a;
        }
        return NULL;
}

/* The assertion's audience must be a token endpoint of this tenant, under any name this
 * emulator answers to. */
static bool assertion_audience_ok(const EmuRequest *req, const char *tenant, const char *aud) {
        _cleanup_free_ char *local = NULL, *loopback = NULL;
        const char *hosts[5] = {emu_request_host(req), "login.microsoftonline.com", "login.windows.net"};
        const char *rest;

        if (asprintf(&local, "localhost:%d", emu.https_port) < 0 ||
                asprintf(&loopback, "127.0.0.1:%d", emu.https_port) < 0)
                return false;
        hosts[3] = local;
        hosts[4] = loopback;
        rest = startswith(aud, "https://");
        if (!rest)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                const char *p = startswith_no_case(rest, hosts[i]);
                if (!p || *p != '/')
                        continue;
                p = startswith_no_case(p + 1, tenant);
                if (p && (streq(p, "/oauth2/token") || streq(p, "/oauth2/v2.0/token") || streq(p, "/oauth2/token/") ||
                                 streq(p, "/oauth2/v2.0/token/") || streq(p, "/v2.0") || streq(p, "/")))
                        return true;
        }
        return false;
}

/* Checks a private_key_jwt client assertion. Answers the error itself and returns false. */
static bool check_assertion(const EmuRequest *req, EmuResponse *resp, json_object *app, const char *tenant,
        const char *client_id, const char *assertion) {
        _cleanup_json_ json_object *header = NULL, *claims = NULL;
        _cleanup_free_ char *x5t = NULL, *x5t256 = NULL;
        _cleanup_(evp_pkey_freep) EVP_PKEY *pub = NULL;
        const char *h_x5t = NULL, *h_x5t256 = NULL, *iss = NULL, *sub = NULL, *aud = NULL;
        int64_t exp = 0, nbf = 0, now = emu_now();
        int r;

        if (!emu_cfg_bool(app, "certificate", false)) {
                aadsts(resp, 401, "invalid_client", 700027,
                        "Client assertion contains an invalid signature. [Reason - The key was not found.] "
                        "No certificate is registered for app '%s'.",
                        client_id);
                return false;
        }
        r = emu_jwt_decode(assertion, &header, &claims);
        if (r < 0) {
                aadsts(resp, 400, "invalid_request", 50027, "JWT token is invalid or malformed.");
                return false;
        }
        (void)ade_json_get_string(header, "x5t", &h_x5t);
        (void)ade_json_get_string(header, "x5t#S256", &h_x5t256);
        if (emu_cert_thumbprints(emu.app_cert, &x5t, &x5t256) < 0)
                return false;
        if ((!h_x5t || !streq(h_x5t, x5t)) && (!h_x5t256 || !streq(h_x5t256, x5t256))) {
                aadsts(resp, 401, "invalid_client", 700027,
                       "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key "
                       "used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see "
                       "configured keys for app Id '%s'.]",
                       h_x5t256 ?: h_x5t ?: "", client_id);
                return false;
        }
        pub = X509_get_pubkey(emu.app_cert);
        if (!pub)
                return false;
        json_object_put(TAKE_PTR(header));
        json_object_put(TAKE_PTR(claims));
        if (emu_jwt_verify(pub, assertion, &header, &claims) < 0) {
                aadsts(resp, 401, "invalid_client", 700027, "Client assertion failed signature validation.");
                return false;
        }
        (void)ade_json_get_string(claims, "iss", &iss);
        (void)ade_json_get_string(claims, "sub", &sub);
        (void)ade_json_get_string(claims, "aud", &aud);
        (void)ade_json_get_int64(claims, "exp", &exp);
        (void)ade_json_get_int64(claims, "nbf", &nbf);
        if (!iss || !sub || !strcaseeq(iss, client_id) || !strcaseeq(sub, client_id)) {
                aadsts(resp, 401, "invalid_client", 700021,
                        "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
                        "documentation "
                        "at "
                        "https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                        "active-directory-certificate-credentials .");
                return false;
        }
        if (!aud || !assertion_audience_ok(req, tenant, aud)) {
                aadsts(resp, 401, "invalid_client", 700016,
                        "The client assertion's audience '%s' is not a token endpoint of tenant '%s'.", strna(aud),
                        tenant);
                return false;
        }
        if (exp == 0 || exp <= now || nbf > now + 300) {
                aadsts(resp, 401, "invalid_client", 700024,
                        "Client assertion is not within its valid time range. Current time: %" PRId64
                        ", assertion valid from "
                        "%" PRId64 ", expiry time of assertion %" PRId64 ".",
                        now, nbf, exp);
                return false;
        }
        return true;
}

/* client_secret_basic: "Authorization: Basic base64(client_id:client_secret)". */
static int basic_credentials(const EmuRequest *req, char **ret_id, char **ret_secret) {
        const char *auth = emu_request_header(req, "Authorization"), *b;
        _cleanup_free_ char *raw = NULL;
        size_t size;
        char *colon;

        if (!auth || !(b = startswith_no_case(auth, "Basic ")))
                return -ENOENT;
        if (ade_base64_decode(b, strlen(b), (void **)&raw, &size) < 0)
                return -EINVAL;
        raw = realloc(raw, size + 1);
        if (!raw)
                return -ENOMEM;
        raw[size] = 0;
        colon = strchr(raw, ':');
        if (!colon)
                return -EINVAL;
        *colon = 0;
        *ret_id = strdup(raw);
        *ret_secret = strdup(colon + 1);
        return *ret_id && *ret_secret ? 0 : -ENOMEM;
}

static void token(const EmuRequest *req, EmuResponse *resp, const char *tenant, bool v2) {
        _cleanup_(strv_freep) char **form = NULL;
        _cleanup_free_ char *resource_buf = NULL, *basic_id = NULL, *basic_secret = NULL, *access = NULL;
        const char *grant, *client_id, *secret, *assertion, *assertion_type, *resource;
        int64_t exp, iat;
        json_object *app, *o;
        char buf[32];

        if (!streq(req->method, "POST")) {
                aadsts(resp, 405, "invalid_request", 900561,
                        "The endpoint only accepts POST requests. Received a %s request.", req->method);
                return;
        }
        if (emu_parse_form(req->body, req->body_size, &form) < 0)
                return;
        (void)basic_credentials(req, &basic_id, &basic_secret);

        grant = emu_form_get(form, "grant_type");
        client_id = emu_form_get(form, "client_id") ?: basic_id;
        secret = emu_form_get(form, "client_secret") ?: basic_secret;
        assertion = emu_form_get(form, "client_assertion");
        assertion_type = emu_form_get(form, "client_assertion_type");

        if (isempty(grant)) {
                aadsts(resp, 400, "invalid_request", 900144,
                        "The request body must contain the following parameter: 'grant_type'.");
                return;
        }
        if (!streq(grant, "client_credentials")) {
                aadsts(resp, 400, "unsupported_grant_type", 70003,
                        "The app requested an unsupported grant type '%s'. This emulator serves client_credentials.",
                        grant);
                return;
        }
        if (isempty(client_id)) {
                aadsts(resp, 400, "invalid_request", 900144,
                        "The request body must contain the following parameter: 'client_id'.");
                return;
        }

        if (v2) {
                const char *scope = emu_form_get(form, "scope"), *s;
                _cleanup_free_ char *first = NULL;
                size_t l;

                if (isempty(scope)) {
                        aadsts(resp, 400, "invalid_request", 900144,
                                "The request body must contain the following parameter: 'scope'.");
                        return;
                }
                /* One resource's ".default"; MSAL may add the OIDC scopes, which are ignored. */
                for (s = scope; *s; s += l) {
                        s += strspn(s, " ");
                        l = strcspn(s, " ");
                        if (l == 0)
                                break;
                        if ((l == 6 && startswith(s, "openid")) || (l == 7 && startswith(s, "profile")) ||
                                (l == 14 && startswith(s, "offline_access")))
                                continue;
                        if (first) {
                                aadsts(resp, 400, "invalid_scope", 70011,
                                        "The provided value for the input parameter 'scope' is not valid. The scope %s "
                                        "is not valid.",
                                        scope);
                                return;
                        }
                        first = strndup(s, l);
                        if (!first)
                                return;
                }
                l = first ? strlen(first) : 0;
                if (l <= 9 || !streq(first + l - 9, "/.default")) {
                        aadsts(resp, 400, "invalid_scope", 1002012,
                                "The provided value for scope %s is not valid. Client credential flows must have a "
                                "scope value "
                                "with /.default suffixed to the resource identifier (application ID URI).",
                                scope);
                        return;
                }
                resource_buf = strndup(first, l - 9);
                if (!resource_buf)
                        return;
                resource = resource_buf;
        } else {
                resource = emu_form_get(form, "resource");
                if (isempty(resource)) {
                        aadsts(resp, 400, "invalid_request", 900144,
                                "The request body must contain the following parameter: 'resource'.");
                        return;
                }
        }

        app = find_app(client_id);
        if (!app) {
                aadsts(resp, 400, "unauthorized_client", 700016,
                        "Application with identifier '%s' was not found in the directory '%s'. This can happen if the "
                        "application has not been installed by the administrator of the tenant or consented to by any "
                        "user in "
                        "the tenant. You may have sent your authentication request to the wrong tenant.",
                        client_id, tenant);
                return;
        }

        if (assertion) {
                if (!streq_ptr(assertion_type, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) {
                        aadsts(resp, 400, "invalid_request", 50027,
                                "client_assertion_type must be "
                                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer.");
                        return;
                }
                if (!check_assertion(req, resp, app, tenant, client_id, assertion))
                        return;
        } else if (secret) {
                const char *expected = emu_cfg_str(app, "secret");
                if (!expected || !streq(secret, expected)) {
                        aadsts(resp, 401, "invalid_client", 7000215,
                                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                "client "
                                "secret value, not the client secret ID, for a secret added to app '%s'.",
                                client_id);
                        return;
                }
        } else {
                aadsts(resp, 401, "invalid_client", 7000218,
                        "The request body must contain the following parameter: 'client_assertion' or "
                        "'client_secret'.");
                return;
        }

        if (!emu_token_resource_known(resource)) {
                aadsts(resp, 400, v2 ? "invalid_resource" : "invalid_resource", 500011,
                        "The resource principal named %s was not found in the tenant named %s. This can happen if the "
                        "application has not been installed by the administrator of the tenant or consented to by any "
                        "user in "
                        "the tenant. You might have sent your authentication request to the wrong tenant.",
                        resource, tenant);
                return;
        }

        if (emu_token_issue(req->service, resource, app, &access, &exp, &iat) < 0)
                return;
        o = json_object_new_object();
        if (!o)
                return;
        ade_json_add_string(o, "token_type", "Bearer");
        if (v2) {
                /* v2 sends numbers; v1 strings. */
                json_object_object_add(o, "expires_in", json_object_new_int64(exp - iat));
                json_object_object_add(o, "ext_expires_in", json_object_new_int64(exp - iat));
        } else {
                snprintf(buf, sizeof(buf), "%" PRId64, exp - iat);
                ade_json_add_string(o, "expires_in", buf);
                ade_json_add_string(o, "ext_expires_in", buf);
                snprintf(buf, sizeof(buf), "%" PRId64, exp);
                ade_json_add_string(o, "expires_on", buf);
                snprintf(buf, sizeof(buf), "%" PRId64, iat);
                ade_json_add_string(o, "not_before", buf);
                ade_json_add_string(o, "resource", resource);
        }
        ade_json_add_string(o, "access_token", access);
        emu_response_json(resp, 200, o);
}

static json_object *strs(const char *const *l) {
        json_object *a = json_object_new_array();

        for (; a && *l; l++)
                json_object_array_add(a, json_object_new_string(*l));
        return a;
}

static void openid_configuration(const EmuRequest *req, EmuResponse *resp, const char *tenant, bool v2) {
        static const char *const auth_methods[] = {
                "client_secret_post", "private_key_jwt", "client_secret_basic", NULL};
        static const char *const response_types[] = {"code", "id_token", "code id_token", "id_token token", NULL};
        static const char *const algs[] = {"RS256", NULL};
        const char *host = emu_request_host(req), *ver = v2 ? "/v2.0" : "";
        json_object *o = json_object_new_object();
        char buf[512];

        if (!o)
                return;
#define URL(key, fmt)                                                                                                  \
        do {                                                                                                           \
                snprintf(buf, sizeof(buf), fmt, host, tenant, v2 ? "/v2.0" : "");                                      \
                ade_json_add_string(o, key, buf);                                                                      \
        } while (0)
        URL("token_endpoint", "https://%s/%s/oauth2%s/token");
        URL("authorization_endpoint", "https://%s/%s/oauth2%s/authorize");
        URL("device_authorization_endpoint", "https://%s/%s/oauth2%s/devicecode");
        URL("end_session_endpoint", "https://%s/%s/oauth2%s/logout");
        URL("kerberos_endpoint", "https://%s/%s/kerberos%.0s");
        URL("jwks_uri", "https://%s/%s/discovery%s/keys");
#undef URL
        json_object_object_add(o, "token_endpoint_auth_methods_supported", strs(auth_methods));
        json_object_object_add(o, "response_types_supported", strs(response_types));
        json_object_object_add(o, "id_token_signing_alg_values_supported", strs(algs));
        if (v2)
                snprintf(buf, sizeof(buf), "https://%s/%s%s", host, tenant, ver);
        else
                snprintf(buf, sizeof(buf), "https://sts.windows.net/%s/", tenant);
        ade_json_add_string(o, "issuer", buf);
        json_object_object_add(o, "request_uri_parameter_supported", json_object_new_boolean(false));
        ade_json_add_string(o, "tenant_region_scope", "EU");
        ade_json_add_string(o, "cloud_instance_name", "microsoftonline.com");
        ade_json_add_string(o, "cloud_graph_host_name", "graph.windows.net");
        ade_json_add_string(o, "msgraph_host", "graph.microsoft.com");
        emu_response_json(resp, 200, o);
}

static void instance_discovery(const EmuRequest *req, EmuResponse *resp) {
        const char *endpoint = emu_request_query(req, "authorization_endpoint"), *host = emu_request_host(req);
        json_object *o = json_object_new_object(), *meta = json_object_new_array(), *m = json_object_new_object(),
                    *aliases = json_object_new_array();
        _cleanup_free_ char *tenant = NULL, *disc = NULL;
        const char *p;

        if (!o || !meta || !m || !aliases) {
                json_object_put(o);
                json_object_put(meta);
                json_object_put(m);
                json_object_put(aliases);
                return;
        }
        /* https://<host>/<tenant>/oauth2/v2.0/authorize */
        p = endpoint ? startswith(endpoint, "https://") : NULL;
        p = p ? strchr(p, '/') : NULL;
        tenant = p ? strndup(p + 1, strcspn(p + 1, "/")) : strdup("common");
        if (!tenant || asprintf(&disc, "https://%s/%s/v2.0/.well-known/openid-configuration", host, tenant) < 0) {
                json_object_put(o);
                json_object_put(meta);
                json_object_put(m);
                json_object_put(aliases);
                return;
        }
        ade_json_add_string(o, "tenant_discovery_endpoint", disc);
        ade_json_add_string(o, "api-version", "1.1");
        ade_json_add_string(m, "preferred_network", host);
        ade_json_add_string(m, "preferred_cache", host);
        json_object_array_add(aliases, json_object_new_string(host));
        json_object_object_add(m, "aliases", aliases);
        json_object_array_add(meta, m);
        json_object_object_add(o, "metadata", meta);
        emu_response_json(resp, 200, o);
}

static void jwks(EmuResponse *resp) {
        json_object *o = json_object_new_object(), *keys = json_object_new_array(), *k = json_object_new_object();
        BIGNUM *n = NULL, *e = NULL;
        unsigned char buf[1024];
        _cleanup_free_ char *n64 = NULL, *e64 = NULL;

        if (!o || !keys || !k || !EVP_PKEY_get_bn_param(emu.token_key, OSSL_PKEY_PARAM_RSA_N, &n) ||
                !EVP_PKEY_get_bn_param(emu.token_key, OSSL_PKEY_PARAM_RSA_E, &e) ||
                BN_num_bytes(n) > (int)sizeof(buf)) {
                BN_free(n);
                BN_free(e);
                json_object_put(o);
                json_object_put(keys);
                json_object_put(k);
                return;
        }
        n64 = ade_base64url_encode(buf, (size_t)BN_bn2bin(n, buf));
        e64 = ade_base64url_encode(buf, (size_t)BN_bn2bin(e, buf));
        BN_free(n);
        BN_free(e);
        ade_json_add_string(k, "kty", "RSA");
        ade_json_add_string(k, "use", "sig");
        ade_json_add_string(k, "kid", emu.token_kid);
        ade_json_add_string(k, "x5t", emu.token_kid);
        ade_json_add_string(k, "n", n64);
        ade_json_add_string(k, "e", e64);
        json_object_array_add(keys, k);
        json_object_object_add(o, "keys", keys);
        emu_response_json(resp, 200, o);
}

void emu_entra_handle(const EmuRequest *req, EmuResponse *resp) {
        const char *tenant_cfg = emu_cfg_str(emu.config, "tenant_id") ?: "", *p = req->path + 1, *rest;
        _cleanup_free_ char *tenant = NULL;

        entra_headers(resp);
        if (streq(req->path, "/common/discovery/instance")) {
                instance_discovery(req, resp);
                return;
        }
        tenant = strndup(p, strcspn(p, "/"));
        if (!tenant)
                return;
        rest = p + strlen(tenant);
        if (!strcaseeq(tenant, tenant_cfg) && !streq(tenant, "organizations") && !streq(tenant, "common")) {
                aadsts(resp, 400, "invalid_request", 90002,
                        "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into "
                        "the "
                        "correct cloud. Check with your subscription administrator, this may happen if there are no "
                        "active "
                        "subscriptions for the tenant.",
                        tenant);
                return;
        }
        if (streq(rest, "/oauth2/token"))
                token(req, resp, tenant_cfg, false);
        else if (streq(rest, "/oauth2/v2.0/token"))
                token(req, resp, tenant_cfg, true);
        else if (streq(rest, "/v2.0/.well-known/openid-configuration"))
                openid_configuration(req, resp, tenant, true);
        else if (streq(rest, "/.well-known/openid-configuration"))
                openid_configuration(req, resp, tenant, false);
        else if (streq(rest, "/discovery/v2.0/keys") || streq(rest, "/discovery/keys"))
                jwks(resp);
        else
                aadsts(resp, 404, "invalid_request", 90011, "The requested endpoint %s is not served.", req->path);
}
