/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The emulator's own tests: plain libcurl over HTTPS with the test CA (not ade's clients), one
 * behaviour each, against the wire formats of docs/protocols.md. One emulator serves
 * the suite; tests that need another scenario start their own. */

#include <ftw.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ade-base64.h"
#include "ade-config.h"
#include "ade-json.h"
#include "ade-test.h"
#include "emu-harness.h"

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define SUB "0a1b2c3d-0000-4000-8000-000000000001"
#define APP_SECRET_ID "5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03"
#define APP_SECRET "ade~emulator.Secret-0123456789"
#define APP_CERT_ID "5f6a7b8c-4444-4d5e-9f0a-1b2c3d4e5f04"
#define USER_CLIENT_ID "3e4f5a6b-2222-4c2d-8e9f-0a1b2c3d4e02"
#define USER_OBJECT_ID "9d8c7b6a-2222-4f3e-8d2c-1b0a9f8e7d02"
#define SYSTEM_CLIENT_ID "3e4f5a6b-1111-4c2d-8e9f-0a1b2c3d4e01"
#define VAULT_RES "https://vault.azure.net"
/* The main emulator plays the public cloud, as Key Vault answers there; the harness's own default
 * (ADE_EMULATOR_KEYVAULT_RESOURCE) is checked on its own. */
#define PUBLIC_CLOUD "{\"keyvault\":{\"resource\":\"" VAULT_RES "\"}}"
#define ARM_RES "https://management.azure.com/"

static AdeEmulator *emu;

typedef struct Reply {
        long status;
        char *body;
        size_t size;
        char *headers;
        json_object *json; /* the body, when it is JSON */
} Reply;

static void reply_done(Reply *r) {
        free(r->body);
        free(r->headers);
        json_object_put(r->json);
        *r = (Reply){};
}
#define _cleanup_reply_ _cleanup_(reply_done)

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        char *b = realloc(r->body, r->size + size * n + 1);

        if (!b)
                return 0;
        memcpy(b + r->size, p, size * n);
        r->body = b;
        r->size += size * n;
        r->body[r->size] = 0;
        return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        size_t old = r->headers ? strlen(r->headers) : 0;
        char *h = realloc(r->headers, old + size * n + 1);

        if (!h)
                return 0;
        memcpy(h + old, p, size * n);
        h[old + size * n] = 0;
        r->headers = h;
        return size * n;
}

/* One request on @c (a handle kept by the caller to reuse its connection, or NULL for a fresh
 * one). @extra is one more header line or NULL. Returns curl's result. */
static CURLcode send_on(CURL *c, const char *method, const char *url, const char *token, const char *body,
        const char *extra, long timeout_ms, Reply *ret) {
        _cleanup_free_ char *auth = NULL;
        struct curl_slist *h = NULL;
        bool own = !c;
        CURLcode cc;

        *ret = (Reply){};
        if (own)
                c = curl_easy_init();
        ck_assert_ptr_nonnull(c);
        if (token) {
                ck_assert_int_ge(asprintf(&auth, "Authorization: Bearer %s", token), 0);
                h = curl_slist_append(h, auth);
        }
        h = curl_slist_append(h, "Content-Type: application/json");
        if (extra)
                h = curl_slist_append(h, extra);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_CAINFO, emu->ca_file);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, ret);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, ret);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 60000L);
        if (body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        else
                curl_easy_setopt(c, CURLOPT_NOBODY, streq(method, "HEAD") ? 1L : 0L);
        cc = curl_easy_perform(c);
        if (cc == CURLE_OK) {
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
                if (ret->body)
                        (void)ade_json_parse(ret->body, ret->size, &ret->json);
        }
        /* A kept handle must not point at our header list after we return. */
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_slist_free_all(h);
        if (own)
                curl_easy_cleanup(c);
        return cc;
}

static void send_req(
        const char *method, const char *url, const char *token, const char *body, const char *extra, Reply *ret) {
        ck_assert_int_eq(send_on(NULL, method, url, token, body, extra, 0, ret), CURLE_OK);
}

/* The value of header @name in @r (the last one), copied into @buf. */
static const char *header(const Reply *r, const char *name, char *buf, size_t size) {
        const char *p = r->headers, *found = NULL;
        size_t l = strlen(name);

        for (; p && *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n'))
                if (strncasecmp(p, name, l) == 0 && p[l] == ':')
                        found = p + l + 1;
        if (!found)
                return NULL;
        found += strspn(found, " ");
        snprintf(buf, size, "%.*s", (int)strcspn(found, "\r\n"), found);
        return buf;
}

static const char *jstr(json_object *o, const char *key) {
        const char *s = NULL;

        (void)ade_json_get_string(o, key, &s);
        return s;
}

static const char *err_code(const Reply *r) {
        const char *s = NULL;

        (void)ade_json_get_path_string(r->json, &s, "error", "code", NULL);
        return s ?: "";
}

static const char *err_message(const Reply *r) {
        const char *s = NULL;

        (void)ade_json_get_path_string(r->json, &s, "error", "message", NULL);
        return s ?: "";
}

static char *url(const char *base, const char *fmt, ...) _printf_(2, 3);
static char *url(const char *base, const char *fmt, ...) {
        _cleanup_free_ char *rest = NULL;
        char *s;
        va_list ap;

        va_start(ap, fmt);
        ck_assert_int_ge(vasprintf(&rest, fmt, ap), 0);
        va_end(ap);
        ck_assert_int_ge(asprintf(&s, "%s%s", base, rest), 0);
        return s;
}

/* A managed-identity token from IMDS: the system identity, or the one @selector names. */
static char *mi_token_for(AdeEmulator *e, const char *resource, const char *selector) {
        _cleanup_free_ char *u =
                url(e->imds_url, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s%s%s", resource,
                        selector ? "&" : "", selector ?: "");
        _cleanup_reply_ Reply r = {};
        AdeEmulator *saved = emu;

        emu = e;
        send_req("GET", u, NULL, NULL, "Metadata: true", &r);
        emu = saved;
        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_nonnull(jstr(r.json, "access_token"));
        return strdup(jstr(r.json, "access_token"));
}

static char *mi_token(const char *resource) {
        return mi_token_for(emu, resource, NULL);
}

static void setup(void) {
        ck_assert_int_eq(ade_emulator_clear_faults(emu), 0);
}

/* ---- Key Vault: the challenge ---- */

START_TEST(test_kv_challenge_without_token) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/challenge?api-version=7.4"), *expected = NULL;
        _cleanup_reply_ Reply r = {};
        char buf[512];

        send_req("PUT", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_int_ge(
                asprintf(&expected,
                        "Bearer authorization=\"https://localhost:%d/%s\", resource=\"https://vault.azure.net\"",
                        emu->https_port, TENANT),
                0);
        ck_assert_str_eq(header(&r, "WWW-Authenticate", buf, sizeof(buf)), expected);
        ck_assert_str_eq(r.body, "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10000: Request is missing a "
                                 "Bearer or PoP token.\"}}");
}
END_TEST

START_TEST(test_kv_challenge_before_route_and_api_version) {
        _cleanup_free_ char *u = url(emu->vault_url, "/no/such/route");
        _cleanup_reply_ Reply r = {};
        char buf[512];

        send_req("DELETE", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_ptr_nonnull(header(&r, "WWW-Authenticate", buf, sizeof(buf)));
}
END_TEST

START_TEST(test_kv_challenge_before_body_validation) {
        _cleanup_free_ char *u = url(emu->kek_url, "/unwrapkey?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        send_req("POST", u, NULL, "", NULL, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(err_code(&r), "Unauthorized");
}
END_TEST

START_TEST(test_kv_challenge_scope_variant) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *u = NULL;
        _cleanup_reply_ Reply r = {};
        AdeEmulator *saved = emu;
        char buf[512];

        ck_assert_int_eq(ade_emulator_start("{\"keyvault\":{\"challenge_scope\":true,\"challenge_authority\":\"https://"
                                            "login.windows.net\"}}",
                                 &e),
                0);
        u = url(e->vault_url, "/secrets/x?api-version=7.4");
        emu = e;
        send_req("GET", u, NULL, NULL, NULL, &r);
        emu = saved;
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(header(&r, "WWW-Authenticate", buf, sizeof(buf)),
                "Bearer authorization=\"https://login.windows.net/" TENANT "\", scope=\"https://localhost/.default\"");
}
END_TEST

START_TEST(test_kv_scenario_resource) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *u = NULL, *expected = NULL, *t = NULL, *arm = NULL;
        _cleanup_reply_ Reply r = {}, ok = {}, wrong = {};
        AdeEmulator *saved = emu;
        char buf[512];

        /* A private cloud's Key Vault resource: the challenge names it, tokens for it are issued and
         * accepted, and a wrong audience is told what was expected. */
        ck_assert_int_eq(ade_emulator_start("{\"keyvault\":{\"resource\":\"https://vault.example.test\"}}", &e), 0);
        ck_assert_str_eq(e->keyvault_resource, "https://vault.example.test");
        u = url(e->vault_url, "/secrets/x?api-version=7.4");
        emu = e;
        send_req("GET", u, NULL, NULL, NULL, &r);
        t = mi_token("https://vault.example.test");
        send_req("GET", u, t, NULL, NULL, &ok);
        arm = mi_token(ARM_RES);
        send_req("GET", u, arm, NULL, NULL, &wrong);
        emu = saved;
        ck_assert_int_eq(r.status, 401);
        ck_assert_int_ge(
                asprintf(&expected,
                        "Bearer authorization=\"https://localhost:%d/%s\", resource=\"https://vault.example.test\"",
                        e->https_port, TENANT),
                0);
        ck_assert_str_eq(header(&r, "WWW-Authenticate", buf, sizeof(buf)), expected);
        ck_assert_int_eq(ok.status, 404);
        ck_assert_int_eq(wrong.status, 401);
        ck_assert_str_eq(err_message(&wrong), "AKV10022: Invalid audience. Expected https://vault.example.test, found: "
                                              "https://management.azure.com/.");
}
END_TEST

START_TEST(test_kv_response_headers) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/headers?api-version=7.4");
        _cleanup_reply_ Reply r = {};
        char buf[256];

        send_req("GET", u, NULL, NULL, "x-ms-client-request-id: 0f0e0d0c-aaaa-4bbb-8ccc-000000000001", &r);
        ck_assert_str_eq(header(&r, "Content-Type", buf, sizeof(buf)), "application/json; charset=utf-8");
        ck_assert_str_eq(
                header(&r, "x-ms-client-request-id", buf, sizeof(buf)), "0f0e0d0c-aaaa-4bbb-8ccc-000000000001");
        ck_assert_str_eq(header(&r, "Cache-Control", buf, sizeof(buf)), "no-cache");
        ck_assert_str_eq(header(&r, "x-ms-keyvault-region", buf, sizeof(buf)), "westeurope");
        ck_assert_ptr_nonnull(header(&r, "x-ms-request-id", buf, sizeof(buf)));
        ck_assert_ptr_nonnull(header(&r, "x-ms-keyvault-service-version", buf, sizeof(buf)));
}
END_TEST

/* ---- Key Vault: tokens ---- */

START_TEST(test_kv_wrong_audience_refused) {
        _cleanup_free_ char *t = mi_token(ARM_RES), *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};
        char buf[512];

        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(err_message(&r),
                "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/.");
        ck_assert_ptr_nonnull(header(&r, "WWW-Authenticate", buf, sizeof(buf)));
}
END_TEST

START_TEST(test_kv_expired_token_refused) {
        _cleanup_free_ char *t = NULL, *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};
        char buf[512];

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"imds-token\",\"token\":\"expired\"}"), 0);
        t = mi_token(VAULT_RES);
        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(err_code(&r), "Unauthorized");
        ck_assert_str_eq(err_message(&r), "[TokenExpired] Error validating token: 'S2S12086'.");
        ck_assert_ptr_nonnull(header(&r, "WWW-Authenticate", buf, sizeof(buf)));
}
END_TEST

START_TEST(test_kv_token_fault_hits_only_the_next_token) {
        _cleanup_free_ char *t1 = NULL, *t2 = NULL, *u = url(emu->vault_url, "/keys/kek?api-version=7.4");
        _cleanup_reply_ Reply r1 = {}, r2 = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"imds-token\",\"token\":\"wrong-audience\"}"), 0);
        t1 = mi_token(VAULT_RES);
        t2 = mi_token(VAULT_RES);
        send_req("GET", u, t1, NULL, NULL, &r1);
        send_req("GET", u, t2, NULL, NULL, &r2);
        ck_assert_int_eq(r1.status, 401);
        ck_assert_int_eq(r2.status, 200);
}
END_TEST

START_TEST(test_kv_forged_token_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};
        size_t n = strlen(t);

        /* Flip a character of the signature. */
        t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(err_code(&r), "Unauthorized");
}
END_TEST

START_TEST(test_kv_api_version_required) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->vault_url, "/secrets/x");
        _cleanup_reply_ Reply r = {};

        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "BadParameter");
}
END_TEST

/* ---- Key Vault: secrets ---- */

static void put_secret(const char *token, const char *name, const char *body, Reply *ret) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/%s?api-version=7.4", name);

        send_req("PUT", u, token, body, NULL, ret);
}

START_TEST(test_kv_set_and_get_latest_with_trailing_slash) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->vault_url, "/secrets/s-latest/?api-version=7.4");
        _cleanup_reply_ Reply put = {}, get = {};
        const char *tag = NULL;

        put_secret(
                t, "s-latest", "{\"value\":\"v1\",\"contentType\":\"BEK\",\"tags\":{\"MachineName\":\"vm1\"}}", &put);
        ck_assert_int_eq(put.status, 200);
        send_req("GET", u, t, NULL, NULL, &get);
        ck_assert_int_eq(get.status, 200);
        ck_assert_str_eq(jstr(get.json, "value"), "v1");
        ck_assert_str_eq(jstr(get.json, "contentType"), "BEK");
        ck_assert_str_eq(jstr(get.json, "id"), jstr(put.json, "id"));
        ck_assert_int_eq(ade_json_get_path_string(get.json, &tag, "tags", "MachineName", NULL), 0);
        ck_assert_str_eq(tag, "vm1");
}
END_TEST

START_TEST(test_kv_set_secret_id_is_versioned) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *prefix = url(emu->vault_url, "/secrets/s-id/");
        _cleanup_reply_ Reply put = {};
        const char *id;

        put_secret(t, "s-id", "{\"value\":\"x\"}", &put);
        id = jstr(put.json, "id");
        ck_assert_ptr_nonnull(id);
        ck_assert_ptr_nonnull(startswith(id, prefix));
        ck_assert_uint_eq(strlen(startswith(id, prefix)), 32);
        ck_assert_uint_eq(strspn(startswith(id, prefix), "0123456789abcdef"), 32);
}
END_TEST

START_TEST(test_kv_new_version_becomes_latest_old_stays) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *latest = url(emu->vault_url, "/secrets/s-ver?api-version=7.4"),
                            *old = NULL;
        _cleanup_reply_ Reply p1 = {}, p2 = {}, g1 = {}, g2 = {};

        put_secret(t, "s-ver", "{\"value\":\"first\"}", &p1);
        put_secret(t, "s-ver", "{\"value\":\"second\"}", &p2);
        ck_assert_str_ne(jstr(p1.json, "id"), jstr(p2.json, "id"));
        send_req("GET", latest, t, NULL, NULL, &g1);
        ck_assert_str_eq(jstr(g1.json, "value"), "second");
        old = url(jstr(p1.json, "id"), "?api-version=7.4");
        send_req("GET", old, t, NULL, NULL, &g2);
        ck_assert_str_eq(jstr(g2.json, "value"), "first");
}
END_TEST

START_TEST(test_kv_secret_not_found) {
        _cleanup_free_ char *t = mi_token(VAULT_RES),
                            *u = url(emu->vault_url, "/secrets/no-such-secret?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 404);
        ck_assert_str_eq(err_code(&r), "SecretNotFound");
        ck_assert_ptr_nonnull(
                startswith(err_message(&r), "A secret with (name/id) no-such-secret was not found in this key vault."));
}
END_TEST

START_TEST(test_kv_secret_unknown_version_not_found) {
        _cleanup_free_ char *t = mi_token(VAULT_RES),
                            *u = url(emu->vault_url, "/secrets/s-ver/00000000000000000000000000000000?api-version=7.4");
        _cleanup_reply_ Reply put = {}, r = {};

        put_secret(t, "s-ver", "{\"value\":\"x\"}", &put);
        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 404);
        ck_assert_str_eq(err_code(&r), "SecretNotFound");
}
END_TEST

START_TEST(test_kv_enabled_as_string_accepted) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        bool enabled = false;

        put_secret(t, "s-legacy", "{\"value\":\"x\",\"attributes\":{\"enabled\":\"true\"}}", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_object(r.json, "attributes", &(json_object *){NULL}), 0);
        ck_assert_int_eq(ade_json_get_bool(json_object_object_get(r.json, "attributes"), "enabled", &enabled), 0);
        ck_assert(enabled);
}
END_TEST

START_TEST(test_kv_set_secret_without_value_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};

        put_secret(t, "s-bad", "{\"contentType\":\"BEK\"}", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "BadParameter");
}
END_TEST

START_TEST(test_kv_set_secret_bad_json_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};

        put_secret(t, "s-bad", "{\"value\":", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "BadParameter");
}
END_TEST

START_TEST(test_kv_set_secret_bad_enabled_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};

        put_secret(t, "s-bad", "{\"value\":\"x\",\"attributes\":{\"enabled\":\"maybe\"}}", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "BadParameter");
}
END_TEST

START_TEST(test_kv_set_secret_bad_name_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};

        put_secret(t, "bad_name", "{\"value\":\"x\"}", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "BadParameter");
}
END_TEST

START_TEST(test_kv_patch_returns_bundle_without_value) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = NULL;
        _cleanup_reply_ Reply put = {}, patch = {};

        put_secret(t, "s-patch", "{\"value\":\"x\"}", &put);
        u = url(jstr(put.json, "id"), "?api-version=7.4");
        send_req("PATCH", u, t, "{\"contentType\":\"Wrapped BEK\",\"tags\":{\"k\":\"v\"}}", NULL, &patch);
        ck_assert_int_eq(patch.status, 200);
        ck_assert_ptr_null(jstr(patch.json, "value"));
        ck_assert_str_eq(jstr(patch.json, "contentType"), "Wrapped BEK");
}
END_TEST

START_TEST(test_kv_disabled_secret_forbidden) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->vault_url, "/secrets/s-off?api-version=7.4");
        _cleanup_reply_ Reply put = {}, get = {};

        put_secret(t, "s-off", "{\"value\":\"x\",\"attributes\":{\"enabled\":false}}", &put);
        ck_assert_int_eq(put.status, 200);
        send_req("GET", u, t, NULL, NULL, &get);
        ck_assert_int_eq(get.status, 403);
        ck_assert_str_eq(err_code(&get), "Forbidden");
}
END_TEST

/* ---- Key Vault: keys ---- */

START_TEST(test_kv_get_key_has_public_parts_only) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->kek_url, "?api-version=7.4");
        _cleanup_reply_ Reply r = {};
        json_object *key = NULL;

        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_object(r.json, "key", &key), 0);
        ck_assert_str_eq(jstr(key, "kid"), emu->kek_url);
        ck_assert_str_eq(jstr(key, "kty"), "RSA");
        ck_assert_str_eq(jstr(key, "e"), "AQAB");
        ck_assert_uint_eq(strlen(jstr(key, "n")), 342); /* 2048 bits, base64url unpadded */
        ck_assert_ptr_null(jstr(key, "d"));
        ck_assert_ptr_null(jstr(key, "p"));
}
END_TEST

START_TEST(test_kv_get_key_latest_with_trailing_slash) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->vault_url, "/keys/kek/?api-version=7.4");
        _cleanup_reply_ Reply r = {};
        const char *kid = NULL;

        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &kid, "key", "kid", NULL), 0);
        ck_assert_str_eq(kid, emu->kek_url);
}
END_TEST

START_TEST(test_kv_key_not_found) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->vault_url, "/keys/no-such-key?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        send_req("GET", u, t, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 404);
        ck_assert_str_eq(err_code(&r), "KeyNotFound");
        ck_assert_ptr_nonnull(
                startswith(err_message(&r), "A key with (name/id) no-such-key was not found in this key vault."));
}
END_TEST

static void key_op(const char *token, const char *kid, const char *op, const char *alg, const char *value, Reply *ret) {
        _cleanup_free_ char *u = url(kid, "/%s?api-version=7.4", op), *body = NULL;

        ck_assert_int_ge(asprintf(&body, "{\"alg\":\"%s\",\"value\":\"%s\"}", alg, value), 0);
        send_req("POST", u, token, body, NULL, ret);
}

static const char *const algs[] = {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"};

START_TEST(test_kv_remote_wrap_then_unwrap) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply w = {}, u = {};

        key_op(t, emu->kek_url, "wrapkey", algs[_i], "QSBzaW5nbGUgYmxvY2sgb2YgcGxhaW50ZXh0AA", &w);
        ck_assert_int_eq(w.status, 200);
        ck_assert_str_eq(jstr(w.json, "kid"), emu->kek_url);
        key_op(t, emu->kek_url, "unwrapkey", algs[_i], jstr(w.json, "value"), &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "QSBzaW5nbGUgYmxvY2sgb2YgcGxhaW50ZXh0AA");
}
END_TEST

/* Encrypts locally with the public key the emulator exports for @key_url, as the SDKs do. */
static char *local_wrap_with(const char *token, const char *key_url, const char *alg, const void *plain, size_t size) {
        _cleanup_free_ char *u = url(key_url, "?api-version=7.4");
        _cleanup_free_ void *n = NULL, *e = NULL;
        _cleanup_free_ unsigned char *out = NULL;
        _cleanup_reply_ Reply r = {};
        const char *n64 = NULL, *e64 = NULL;
        size_t n_size, e_size, out_size = 0;
        OSSL_PARAM_BLD *bld;
        OSSL_PARAM *params;
        EVP_PKEY_CTX *ctx;
        EVP_PKEY *pkey = NULL;
        BIGNUM *bn_n, *bn_e;
        char *ret;

        send_req("GET", u, token, NULL, NULL, &r);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &n64, "key", "n", NULL), 0);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &e64, "key", "e", NULL), 0);
        ck_assert_int_eq(ade_base64_decode(n64, strlen(n64), &n, &n_size), 0);
        ck_assert_int_eq(ade_base64_decode(e64, strlen(e64), &e, &e_size), 0);
        bn_n = BN_bin2bn(n, (int)n_size, NULL);
        bn_e = BN_bin2bn(e, (int)e_size, NULL);
        bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
        params = OSSL_PARAM_BLD_to_param(bld);
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
        ck_assert_int_eq(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn_n);
        BN_free(bn_e);

        ctx = EVP_PKEY_CTX_new(pkey, NULL);
        ck_assert_int_eq(EVP_PKEY_encrypt_init(ctx), 1);
        if (streq(alg, "RSA1_5"))
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
        else {
                const EVP_MD *md = streq(alg, "RSA-OAEP") ? EVP_sha1() : EVP_sha256();
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
        }
        ck_assert_int_eq(EVP_PKEY_encrypt(ctx, NULL, &out_size, plain, size), 1);
        out = malloc(out_size);
        ck_assert_int_eq(EVP_PKEY_encrypt(ctx, out, &out_size, plain, size), 1);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pkey);
        ret = ade_base64url_encode(out, out_size);
        ck_assert_ptr_nonnull(ret);
        return ret;
}

static char *local_wrap(const char *token, const char *alg, const void *plain, size_t size) {
        return local_wrap_with(token, emu->kek_url, alg, plain, size);
}

START_TEST(test_kv_local_wrap_remote_unwrap) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *wrapped = local_wrap(t, algs[_i], "My Key", 6);
        _cleanup_reply_ Reply u = {};

        key_op(t, emu->kek_url, "unwrapkey", algs[_i], wrapped, &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "TXkgS2V5");
}
END_TEST

START_TEST(test_kv_oaep_is_not_oaep_256) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *wrapped = local_wrap(t, "RSA-OAEP", "My Key", 6);
        _cleanup_reply_ Reply u = {};

        key_op(t, emu->kek_url, "unwrapkey", "RSA-OAEP-256", wrapped, &u);
        ck_assert_int_eq(u.status, 400);
        ck_assert_str_eq(err_code(&u), "BadParameter");
}
END_TEST

START_TEST(test_kv_encrypt_then_decrypt) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply w = {}, u = {};

        key_op(t, emu->kek_url, "encrypt", "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 200);
        key_op(t, emu->kek_url, "decrypt", "RSA-OAEP", jstr(w.json, "value"), &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "aGVsbG8");
}
END_TEST

START_TEST(test_kv_operation_segment_case_insensitive) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply a = {}, b = {};

        key_op(t, emu->kek_url, "wrapKey", "RSA-OAEP", "aGVsbG8", &a);
        key_op(t, emu->kek_url, "WRAPKEY", "RSA-OAEP", "aGVsbG8", &b);
        ck_assert_int_eq(a.status, 200);
        ck_assert_int_eq(b.status, 200);
}
END_TEST

START_TEST(test_kv_output_is_unpadded_base64url) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply w = {};

        key_op(t, emu->kek_url, "wrapkey", "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_uint_eq(strlen(jstr(w.json, "value")), 342);
        ck_assert_ptr_null(strpbrk(jstr(w.json, "value"), "+/="));
}
END_TEST

START_TEST(test_kv_standard_padded_base64_accepted) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *std = NULL;
        _cleanup_reply_ Reply w = {}, u = {};
        _cleanup_free_ void *raw = NULL;
        size_t size;

        /* Legacy ADE sends standard base64 with padding. */
        key_op(t, emu->kek_url, "wrapkey", "RSA-OAEP", "aGk=", &w);
        ck_assert_int_eq(w.status, 200);
        ck_assert_int_eq(ade_base64_decode(jstr(w.json, "value"), strlen(jstr(w.json, "value")), &raw, &size), 0);
        std = ade_base64_encode(raw, size);
        key_op(t, emu->kek_url, "unwrapkey", "RSA-OAEP", std, &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "aGk");
}
END_TEST

START_TEST(test_kv_aes_key_wrap_on_rsa_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply w = {};

        key_op(t, emu->kek_url, "wrapkey", "A256KW", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 400);
        ck_assert_str_eq(err_code(&w), "BadParameter");
}
END_TEST

START_TEST(test_kv_unknown_algorithm_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply w = {};

        key_op(t, emu->kek_url, "wrapkey", "RSA-PSS", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 400);
        ck_assert_str_eq(err_code(&w), "BadParameter");
}
END_TEST

START_TEST(test_kv_unwrap_garbage_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply u = {};

        key_op(t, emu->kek_url, "unwrapkey", "RSA-OAEP", "aGVsbG8", &u);
        ck_assert_int_eq(u.status, 400);
        ck_assert_str_eq(err_code(&u), "BadParameter");
}
END_TEST

START_TEST(test_kv_wrap_invalid_base64_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply u = {};

        key_op(t, emu->kek_url, "wrapkey", "RSA-OAEP", "not base64!", &u);
        ck_assert_int_eq(u.status, 400);
        ck_assert_str_eq(err_code(&u), "BadParameter");
}
END_TEST

START_TEST(test_kv_wrap_without_body_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->kek_url, "/wrapkey?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        send_req("POST", u, t, "", NULL, &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "BadParameter");
}
END_TEST

static void create_key(const char *token, const char *name, const char *body, Reply *ret) {
        _cleanup_free_ char *u = url(emu->vault_url, "/keys/%s/create?api-version=7.4", name);

        send_req("POST", u, token, body, NULL, ret);
}

START_TEST(test_kv_create_key_then_wrap) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {}, w = {};
        const char *kid = NULL;

        create_key(t, "k-new", "{\"kty\":\"RSA\",\"key_size\":2048}", &c);
        ck_assert_int_eq(c.status, 200);
        ck_assert_int_eq(ade_json_get_path_string(c.json, &kid, "key", "kid", NULL), 0);
        key_op(t, kid, "wrapkey", "RSA-OAEP-256", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 200);
        ck_assert_str_eq(jstr(w.json, "kid"), kid);
}
END_TEST

START_TEST(test_kv_create_ec_key) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {};
        json_object *key = NULL;

        create_key(t, "k-ec", "{\"kty\":\"EC\",\"crv\":\"P-384\"}", &c);
        ck_assert_int_eq(c.status, 200);
        ck_assert_int_eq(ade_json_get_object(c.json, "key", &key), 0);
        ck_assert_str_eq(jstr(key, "kty"), "EC");
        ck_assert_str_eq(jstr(key, "crv"), "P-384");
        ck_assert_uint_eq(strlen(jstr(key, "x")), 64); /* 48 bytes, base64url unpadded */
        ck_assert_ptr_null(jstr(key, "n"));
}
END_TEST

START_TEST(test_kv_create_ec_key_unknown_curve_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {};

        create_key(t, "k-ec-bad", "{\"kty\":\"EC\",\"crv\":\"P-192\"}", &c);
        ck_assert_int_eq(c.status, 400);
        ck_assert_str_eq(err_code(&c), "BadParameter");
}
END_TEST

START_TEST(test_kv_create_key_with_exp_returns_it) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {};
        json_object *attrs = NULL;
        int64_t exp = 0;

        create_key(t, "k-exp", "{\"kty\":\"RSA\",\"attributes\":{\"exp\":4102444800}}", &c);
        ck_assert_int_eq(c.status, 200);
        ck_assert_int_eq(ade_json_get_object(c.json, "attributes", &attrs), 0);
        ck_assert_int_eq(ade_json_get_int64(attrs, "exp", &exp), 0);
        ck_assert_int_eq(exp, 4102444800);
        ck_assert(!json_object_object_get_ex(attrs, "nbf", NULL));
}
END_TEST

START_TEST(test_kv_create_key_with_bad_exp_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {};

        create_key(t, "k-exp-bad", "{\"kty\":\"RSA\",\"attributes\":{\"exp\":\"tomorrow\"}}", &c);
        ck_assert_int_eq(c.status, 400);
        ck_assert_str_eq(err_code(&c), "BadParameter");
}
END_TEST

START_TEST(test_kv_disabled_key_forbidden) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {}, w = {};
        const char *kid = NULL;

        create_key(t, "k-off", "{\"kty\":\"RSA\",\"attributes\":{\"enabled\":false}}", &c);
        ck_assert_int_eq(c.status, 200);
        ck_assert_int_eq(ade_json_get_path_string(c.json, &kid, "key", "kid", NULL), 0);
        key_op(t, kid, "wrapkey", "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 403);
        ck_assert_str_eq(err_code(&w), "Forbidden");
}
END_TEST

START_TEST(test_kv_key_without_operation_forbidden) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply c = {}, w = {};
        const char *kid = NULL;

        create_key(t, "k-enc-only", "{\"kty\":\"RSA\",\"key_ops\":[\"encrypt\",\"decrypt\"]}", &c);
        ck_assert_int_eq(c.status, 200);
        ck_assert_int_eq(ade_json_get_path_string(c.json, &kid, "key", "kid", NULL), 0);
        key_op(t, kid, "wrapkey", "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 403);
        ck_assert_str_eq(err_code(&w), "Forbidden");
}
END_TEST

START_TEST(test_kv_versionless_operation_uses_latest) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *base = url(emu->vault_url, "/keys/kek");
        _cleanup_reply_ Reply w = {};

        key_op(t, base, "wrapkey", "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 200);
        ck_assert_str_eq(jstr(w.json, "kid"), emu->kek_url);
}
END_TEST

static int rm_rf(const char *dir);

/* ---- Key Vault: key validity windows and EC keys (a second emulator with these keys) ---- */

#define KEYS_SCENARIO                                                                                                  \
        "{\"vault\":{\"keys\":["                                                                                       \
        "{\"name\":\"kek\"},"                                                                                          \
        "{\"name\":\"k-expired\",\"expires_in_seconds\":-3600},"                                                       \
        "{\"name\":\"k-expired-abs\",\"exp\":1000000000},"                                                             \
        "{\"name\":\"k-future\",\"not_before_in_seconds\":3600},"                                                      \
        "{\"name\":\"k-window\",\"nbf\":1000000000,\"exp\":4102444800},"                                               \
        "{\"name\":\"ec-p256\",\"kty\":\"EC\",\"crv\":\"P-256\"},"                                                     \
        "{\"name\":\"ec-p384\",\"kty\":\"EC\",\"crv\":\"P-384\"},"                                                     \
        "{\"name\":\"ec-p521\",\"kty\":\"EC\",\"crv\":\"P-521\"},"                                                     \
        "{\"name\":\"ec-p256k\",\"kty\":\"EC\",\"crv\":\"P-256K\"},"                                                   \
        "{\"name\":\"ec-hsm\",\"kty\":\"EC-HSM\",\"crv\":\"P-384\","                                                   \
        "\"key_ops\":[\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\",\"encrypt\",\"decrypt\"]}"                         \
        "]}}"

static AdeEmulator *main_emu, *keys_emu;

/* The "keys" test case talks to keys_emu through the same helpers (Check forks each test). */
static void setup_keys(void) {
        emu = keys_emu;
        setup();
}

static void teardown_keys(void) {
        emu = main_emu;
}

/* The versioned id of key @name in keys_emu. */
static char *key_url(const char *token, const char *name) {
        _cleanup_free_ char *u = url(emu->vault_url, "/keys/%s?api-version=7.4", name);
        _cleanup_reply_ Reply r = {};
        const char *kid = NULL;

        send_req("GET", u, token, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &kid, "key", "kid", NULL), 0);
        return strdup(kid);
}

static void get_key_reply(const char *token, const char *name, Reply *ret) {
        _cleanup_free_ char *u = url(emu->vault_url, "/keys/%s?api-version=7.4", name);

        send_req("GET", u, token, NULL, NULL, ret);
        ck_assert_int_eq(ret->status, 200);
}

static json_object *attrs_of(const Reply *r) {
        json_object *a = NULL;

        ck_assert_int_eq(ade_json_get_object(r->json, "attributes", &a), 0);
        return a;
}

static const char *inner_code(const Reply *r) {
        const char *s = NULL;

        (void)ade_json_get_path_string(r->json, &s, "error", "innererror", "code", NULL);
        return s ?: "";
}

START_TEST(test_key_exp_nbf_absent_when_unset) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};

        get_key_reply(t, "kek", &r);
        ck_assert(!json_object_object_get_ex(attrs_of(&r), "exp", NULL));
        ck_assert(!json_object_object_get_ex(attrs_of(&r), "nbf", NULL));
}
END_TEST

START_TEST(test_key_absolute_nbf_exp_are_integers) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        json_object *v = NULL;

        get_key_reply(t, "k-window", &r);
        ck_assert(json_object_object_get_ex(attrs_of(&r), "nbf", &v));
        ck_assert(json_object_is_type(v, json_type_int));
        ck_assert_int_eq(json_object_get_int64(v), 1000000000);
        ck_assert(json_object_object_get_ex(attrs_of(&r), "exp", &v));
        ck_assert(json_object_is_type(v, json_type_int));
        ck_assert_int_eq(json_object_get_int64(v), 4102444800);
}
END_TEST

START_TEST(test_key_expires_in_seconds_is_relative_to_start) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        int64_t exp = 0, now = (int64_t)time(NULL);

        get_key_reply(t, "k-expired", &r);
        ck_assert_int_eq(ade_json_get_int64(attrs_of(&r), "exp", &exp), 0);
        /* an hour before the emulator started, which was less than a test case's timeout ago */
        ck_assert_int_le(exp, now - 3600);
        ck_assert_int_gt(exp, now - 3600 - 600);
}
END_TEST

START_TEST(test_key_not_before_in_seconds_is_relative_to_start) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        int64_t nbf = 0, now = (int64_t)time(NULL);

        get_key_reply(t, "k-future", &r);
        ck_assert_int_eq(ade_json_get_int64(attrs_of(&r), "nbf", &nbf), 0);
        ck_assert_int_le(nbf, now + 3600);
        ck_assert_int_gt(nbf, now + 3600 - 600);
        ck_assert(!json_object_object_get_ex(attrs_of(&r), "exp", NULL));
}
END_TEST

START_TEST(test_key_in_window_wraps) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "k-window");
        _cleanup_reply_ Reply w = {};

        key_op(t, kid, "wrapkey", "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 200);
}
END_TEST

static const char *const forward_ops[] = {"wrapkey", "encrypt"};

START_TEST(test_key_expired_refuses_forward_operation) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "k-expired");
        _cleanup_reply_ Reply w = {};

        key_op(t, kid, forward_ops[_i], "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 403);
        ck_assert_str_eq(err_code(&w), "Forbidden");
        ck_assert_str_eq(inner_code(&w), "KeyExpired");
        ck_assert_ptr_nonnull(strstr(err_message(&w), "expired key"));
}
END_TEST

START_TEST(test_key_expired_absolute_refuses_wrap) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "k-expired-abs");
        _cleanup_reply_ Reply w = {};

        key_op(t, kid, "wrapkey", "RSA-OAEP-256", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 403);
        ck_assert_str_eq(inner_code(&w), "KeyExpired");
}
END_TEST

START_TEST(test_key_not_yet_valid_refuses_forward_operation) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "k-future");
        _cleanup_reply_ Reply w = {};

        key_op(t, kid, forward_ops[_i], "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 403);
        ck_assert_str_eq(err_code(&w), "Forbidden");
        ck_assert_str_eq(inner_code(&w), "KeyNotYetValid");
}
END_TEST

/* Key Vault still unwraps and decrypts outside the window, so old data stays recoverable. */
START_TEST(test_key_expired_still_unwraps) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "k-expired"),
                            *wrapped = local_wrap_with(t, kid, "RSA-OAEP", "My Key", 6);
        _cleanup_reply_ Reply u = {};

        key_op(t, kid, "unwrapkey", "RSA-OAEP", wrapped, &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "TXkgS2V5");
}
END_TEST

START_TEST(test_key_not_yet_valid_still_decrypts) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "k-future"),
                            *wrapped = local_wrap_with(t, kid, "RSA-OAEP-256", "My Key", 6);
        _cleanup_reply_ Reply u = {};

        key_op(t, kid, "decrypt", "RSA-OAEP-256", wrapped, &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "TXkgS2V5");
}
END_TEST

static const struct {
        const char *name, *crv, *group;
        size_t coordinate; /* bytes */
} ec_keys[] = {
        {"ec-p256", "P-256", "P-256", 32},
        {"ec-p384", "P-384", "P-384", 48},
        {"ec-p521", "P-521", "P-521", 66},
        {"ec-p256k", "P-256K", "secp256k1", 32},
};

/* The exported point must lie on the named curve: OpenSSL builds and checks a public key from it. */
START_TEST(test_key_ec_public_point_on_curve) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_free_ void *x = NULL, *y = NULL;
        _cleanup_free_ unsigned char *point = NULL;
        _cleanup_reply_ Reply r = {};
        json_object *key = NULL;
        size_t x_size, y_size, c = ec_keys[_i].coordinate;
        OSSL_PARAM params[3];
        EVP_PKEY_CTX *ctx;
        EVP_PKEY *pkey = NULL;

        get_key_reply(t, ec_keys[_i].name, &r);
        ck_assert_int_eq(ade_json_get_object(r.json, "key", &key), 0);
        ck_assert_str_eq(jstr(key, "kty"), "EC");
        ck_assert_str_eq(jstr(key, "crv"), ec_keys[_i].crv);
        ck_assert_int_eq(ade_base64_decode(jstr(key, "x"), strlen(jstr(key, "x")), &x, &x_size), 0);
        ck_assert_int_eq(ade_base64_decode(jstr(key, "y"), strlen(jstr(key, "y")), &y, &y_size), 0);
        ck_assert_uint_eq(x_size, c);
        ck_assert_uint_eq(y_size, c);
        ck_assert_ptr_null(strpbrk(jstr(key, "x"), "+/="));

        point = malloc(1 + 2 * c);
        ck_assert_ptr_nonnull(point);
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, c);
        memcpy(point + 1 + c, y, c);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)ec_keys[_i].group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * c);
        params[2] = OSSL_PARAM_construct_end();
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
        ck_assert_int_eq(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
        EVP_PKEY_CTX_free(ctx);
        ctx = EVP_PKEY_CTX_new(pkey, NULL);
        ck_assert_int_eq(EVP_PKEY_public_check(ctx), 1);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pkey);
}
END_TEST

START_TEST(test_key_ec_has_no_private_or_rsa_parts) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        json_object *key = NULL;

        get_key_reply(t, "ec-p256", &r);
        ck_assert_int_eq(ade_json_get_object(r.json, "key", &key), 0);
        ck_assert(!json_object_object_get_ex(key, "d", NULL));
        ck_assert(!json_object_object_get_ex(key, "n", NULL));
        ck_assert(!json_object_object_get_ex(key, "e", NULL));
}
END_TEST

START_TEST(test_key_ec_default_ops_sign_verify) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        json_object *key = NULL, *ops = NULL;

        get_key_reply(t, "ec-p256", &r);
        ck_assert_int_eq(ade_json_get_object(r.json, "key", &key), 0);
        ck_assert_int_eq(ade_json_get_array(key, "key_ops", &ops), 0);
        ck_assert_uint_eq(json_object_array_length(ops), 2);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(ops, 0)), "sign");
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(ops, 1)), "verify");
}
END_TEST

START_TEST(test_key_ec_hsm_ops_as_configured) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};
        json_object *key = NULL, *ops = NULL;

        get_key_reply(t, "ec-hsm", &r);
        ck_assert_int_eq(ade_json_get_object(r.json, "key", &key), 0);
        ck_assert_str_eq(jstr(key, "kty"), "EC-HSM");
        ck_assert_str_eq(jstr(key, "crv"), "P-384");
        ck_assert_int_eq(ade_json_get_array(key, "key_ops", &ops), 0);
        ck_assert_uint_eq(json_object_array_length(ops), 6);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(ops, 2)), "wrapKey");
}
END_TEST

static const char *const all_crypt_ops[] = {"wrapkey", "unwrapkey", "encrypt", "decrypt"};

/* Even with the operation in key_ops, an EC key cannot encrypt: a key-type mismatch. */
START_TEST(test_key_ec_crypt_operation_bad_parameter) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "ec-hsm");
        _cleanup_reply_ Reply w = {};

        key_op(t, kid, all_crypt_ops[_i], "RSA-OAEP", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 400);
        ck_assert_str_eq(err_code(&w), "BadParameter");
        ck_assert_ptr_nonnull(strstr(err_message(&w), "EC-HSM"));
}
END_TEST

START_TEST(test_key_ec_wrap_without_op_bad_parameter) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *kid = key_url(t, "ec-p256");
        _cleanup_reply_ Reply w = {};

        key_op(t, kid, "wrapkey", "RSA-OAEP-256", "aGVsbG8", &w);
        ck_assert_int_eq(w.status, 400);
        ck_assert_str_eq(err_code(&w), "BadParameter");
}
END_TEST

START_TEST(test_key_state_dump_has_crv_and_exp) {
        _cleanup_json_ json_object *state = NULL;
        json_object *keys = NULL;
        bool ec = false, exp = false;

        ck_assert_int_eq(ade_emulator_state(emu, &state), 0);
        ck_assert_int_eq(ade_json_get_array(state, "keys", &keys), 0);
        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                json_object *k = json_object_array_get_idx(keys, i);
                int64_t v = 0;

                if (streq(jstr(k, "name"), "ec-p521") && streq_ptr(jstr(k, "crv"), "P-521"))
                        ec = true;
                if (streq(jstr(k, "name"), "k-expired-abs") && ade_json_get_int64(k, "exp", &v) == 0 && v == 1000000000)
                        exp = true;
        }
        ck_assert(ec);
        ck_assert(exp);
}
END_TEST

/* Starts an emulator in @dir with @overlay, reads key @name's JSON, stops it. */
static json_object *key_across_start(const char *dir, const char *overlay, const char *name) {
        AdeEmulator *e = NULL, *saved = emu;
        _cleanup_free_ char *t = NULL;
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_start_in(dir, overlay, &e), 0);
        emu = e;
        t = mi_token(VAULT_RES);
        get_key_reply(t, name, &r);
        emu = saved;
        ade_emulator_stop(e);
        return json_object_get(r.json);
}

START_TEST(test_state_persists_ec_key) {
        char dir[] = "/tmp/ade-emu-persist-ec.XXXXXX";
        static const char overlay[] = "{\"vault\":{\"keys\":[{\"name\":\"ec\",\"kty\":\"EC\",\"crv\":\"P-521\"}]}}";
        _cleanup_json_ json_object *a = NULL, *b = NULL;
        const char *xa = NULL, *xb = NULL, *crv = NULL;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        a = key_across_start(dir, overlay, "ec");
        /* the second start reads --state, not the scenario: same key, same point */
        b = key_across_start(dir, "{\"vault\":{\"keys\":[]}}", "ec");
        ck_assert_int_eq(ade_json_get_path_string(a, &xa, "key", "x", NULL), 0);
        ck_assert_int_eq(ade_json_get_path_string(b, &xb, "key", "x", NULL), 0);
        ck_assert_int_eq(ade_json_get_path_string(b, &crv, "key", "crv", NULL), 0);
        ck_assert_str_eq(xa, xb);
        ck_assert_str_eq(crv, "P-521");
        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

START_TEST(test_state_persists_key_validity) {
        char dir[] = "/tmp/ade-emu-persist-exp.XXXXXX";
        static const char overlay[] = "{\"vault\":{\"keys\":[{\"name\":\"k\",\"nbf\":1000000000,\"exp\":2000000000}]}}";
        _cleanup_json_ json_object *b = NULL;
        json_object *attrs = NULL;
        int64_t nbf = 0, exp = 0;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        json_object_put(key_across_start(dir, overlay, "k"));
        b = key_across_start(dir, "{\"vault\":{\"keys\":[]}}", "k");
        ck_assert_int_eq(ade_json_get_object(b, "attributes", &attrs), 0);
        ck_assert_int_eq(ade_json_get_int64(attrs, "nbf", &nbf), 0);
        ck_assert_int_eq(ade_json_get_int64(attrs, "exp", &exp), 0);
        ck_assert_int_eq(nbf, 1000000000);
        ck_assert_int_eq(exp, 2000000000);
        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

static const char *const bad_key_scenarios[] = {
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"kty\":\"EC\",\"crv\":\"P-192\"}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"kty\":\"EC\",\"key_size\":2048}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"kty\":\"RSA\",\"crv\":\"P-256\"}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"kty\":\"oct-HSM\"}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"exp\":\"tomorrow\"}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"exp\":0}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"expires_in_seconds\":1.5}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"exp\":2000000000,\"expires_in_seconds\":60}]}}",
        "{\"vault\":{\"keys\":[{\"name\":\"k\",\"nbf\":1000000000,\"not_before_in_seconds\":60}]}}",
};

START_TEST(test_key_bad_scenario_refused) {
        AdeEmulator *e = NULL;

        ck_assert_int_lt(ade_emulator_start(bad_key_scenarios[_i], &e), 0);
        ck_assert_ptr_null(e);
}
END_TEST

/* ---- connection reuse, the request log, the state dump ---- */

static json_object *log_entry(json_object *log, size_t i) {
        ck_assert_uint_gt(json_object_array_length(log), i);
        return json_object_array_get_idx(log, i);
}

static int64_t jint(json_object *o, const char *key) {
        int64_t v = -1;

        ck_assert_int_eq(ade_json_get_int64(o, key, &v), 0);
        return v;
}

START_TEST(test_log_one_handle_one_connection) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->kek_url, "?api-version=7.4");
        _cleanup_json_ json_object *log = NULL;
        _cleanup_reply_ Reply a = {}, b = {};
        CURL *c = curl_easy_init();
        bool tls = false;

        ck_assert_int_eq(ade_emulator_clear_requests(emu), 0);
        ck_assert_int_eq(send_on(c, "GET", u, t, NULL, NULL, 0, &a), CURLE_OK);
        ck_assert_int_eq(send_on(c, "GET", u, t, NULL, NULL, 0, &b), CURLE_OK);
        curl_easy_cleanup(c);
        ck_assert_int_eq(ade_emulator_requests(emu, &log), 0);
        ck_assert_uint_eq(json_object_array_length(log), 2);
        ck_assert_int_eq(jint(log_entry(log, 0), "connection"), jint(log_entry(log, 1), "connection"));
        ck_assert_int_eq(ade_json_get_bool(log_entry(log, 1), "tls", &tls), 0);
        ck_assert(tls);
}
END_TEST

START_TEST(test_log_two_handles_two_connections) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->kek_url, "?api-version=7.4");
        _cleanup_json_ json_object *log = NULL;
        _cleanup_reply_ Reply a = {}, b = {};

        ck_assert_int_eq(ade_emulator_clear_requests(emu), 0);
        send_req("GET", u, t, NULL, NULL, &a);
        send_req("GET", u, t, NULL, NULL, &b);
        ck_assert_int_eq(ade_emulator_requests(emu, &log), 0);
        ck_assert_uint_eq(json_object_array_length(log), 2);
        ck_assert_int_ne(jint(log_entry(log, 0), "connection"), jint(log_entry(log, 1), "connection"));
}
END_TEST

START_TEST(test_log_records_request) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/logged?api-version=7.4");
        _cleanup_json_ json_object *log = NULL;
        _cleanup_reply_ Reply r = {};
        json_object *e;
        bool auth = true;

        ck_assert_int_eq(ade_emulator_clear_requests(emu), 0);
        send_req("PUT", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(ade_emulator_requests(emu, &log), 0);
        e = log_entry(log, 0);
        ck_assert_int_eq(jint(e, "seq"), 1);
        ck_assert_str_eq(jstr(e, "service"), "keyvault");
        ck_assert_str_eq(jstr(e, "method"), "PUT");
        ck_assert_str_eq(jstr(e, "path"), "/secrets/logged");
        ck_assert_str_eq(jstr(e, "query"), "api-version=7.4");
        ck_assert_int_eq(jint(e, "status"), 401);
        ck_assert_int_eq(ade_json_get_bool(e, "authorization", &auth), 0);
        ck_assert(!auth);
}
END_TEST

START_TEST(test_log_clear) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_json_ json_object *log = NULL;
        _cleanup_reply_ Reply r = {};

        send_req("GET", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(ade_emulator_clear_requests(emu), 0);
        ck_assert_int_eq(ade_emulator_requests(emu, &log), 0);
        ck_assert_uint_eq(json_object_array_length(log), 0);
}
END_TEST

START_TEST(test_state_lists_secret_and_key) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_json_ json_object *state = NULL;
        _cleanup_reply_ Reply put = {};
        json_object *secrets = NULL, *keys = NULL;
        bool found_secret = false, found_kek = false;

        put_secret(t, "s-state", "{\"value\":\"dumped\",\"contentType\":\"BEK\"}", &put);
        ck_assert_int_eq(ade_emulator_state(emu, &state), 0);
        ck_assert_int_eq(ade_json_get_array(state, "secrets", &secrets), 0);
        ck_assert_int_eq(ade_json_get_array(state, "keys", &keys), 0);
        for (size_t i = 0; i < json_object_array_length(secrets); i++) {
                json_object *s = json_object_array_get_idx(secrets, i);
                if (streq(jstr(s, "name"), "s-state") && streq(jstr(s, "value"), "dumped") &&
                        streq(jstr(s, "contentType"), "BEK"))
                        found_secret = true;
        }
        for (size_t i = 0; i < json_object_array_length(keys); i++)
                if (streq_ptr(jstr(json_object_array_get_idx(keys, i), "kid"), emu->kek_url))
                        found_kek = true;
        ck_assert(found_secret);
        ck_assert(found_kek);
}
END_TEST

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int rm_rf(const char *dir) {
        return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

START_TEST(test_state_persists_across_restart) {
        char dir[] = "/tmp/ade-emu-persist.XXXXXX";
        _cleanup_free_ char *t = NULL, *kek = NULL, *wrapped = NULL, *t2 = NULL;
        AdeEmulator *e = NULL, *saved = emu;
        _cleanup_reply_ Reply w = {}, u = {};

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(ade_emulator_start_in(dir, NULL, &e), 0);
        emu = e;
        t = mi_token(VAULT_RES);
        kek = strdup(e->kek_url);
        key_op(t, kek, "wrapkey", "RSA-OAEP", "cGVyc2lzdA", &w);
        ck_assert_int_eq(w.status, 200);
        wrapped = strdup(jstr(w.json, "value"));
        e = ade_emulator_stop(e);

        ck_assert_int_eq(ade_emulator_start_in(dir, NULL, &e), 0);
        emu = e;
        /* The port is new; the key and its version are the same. */
        ck_assert_str_eq(strstr(e->kek_url, "/keys/"), strstr(kek, "/keys/"));
        t2 = mi_token(VAULT_RES);
        key_op(t2, e->kek_url, "unwrapkey", "RSA-OAEP", wrapped, &u);
        ck_assert_int_eq(u.status, 200);
        ck_assert_str_eq(jstr(u.json, "value"), "cGVyc2lzdA");
        emu = saved;
        ade_emulator_stop(e);
        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

/* ---- IMDS ---- */

static void imds_get(const char *path_query, const char *extra, Reply *ret) {
        _cleanup_free_ char *u = url(emu->imds_url, "%s", path_query);

        send_req("GET", u, NULL, NULL, extra, ret);
}

static bool all_primitives_are_strings(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        (void)k;
                        if (!all_primitives_are_strings(v))
                                return false;
                }
                return true;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (!all_primitives_are_strings(json_object_array_get_idx(o, i)))
                                return false;
                return true;
        case json_type_string:
                return true;
        default:
                return false;
        }
}

START_TEST(test_imds_instance_primitives_are_strings) {
        _cleanup_reply_ Reply r = {};
        const char *lun = NULL;

        imds_get("/metadata/instance?api-version=2021-02-01", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert(all_primitives_are_strings(r.json));
        lun = jstr(json_object_array_get_idx(
                           json_object_object_get(
                                   json_object_object_get(json_object_object_get(r.json, "compute"), "storageProfile"),
                                   "dataDisks"),
                           1),
                "lun");
        ck_assert_str_eq(lun, "1");
}
END_TEST

START_TEST(test_imds_instance_describes_vm) {
        _cleanup_reply_ Reply r = {};
        const char *s = NULL;

        imds_get("/metadata/instance?api-version=2021-02-01", "Metadata: true", &r);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &s, "compute", "name", NULL), 0);
        ck_assert_str_eq(s, "ade-test-vm");
        ck_assert_int_eq(ade_json_get_path_string(r.json, &s, "compute", "subscriptionId", NULL), 0);
        ck_assert_str_eq(s, SUB);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &s, "compute", "storageProfile", "osDisk", "name", NULL), 0);
        ck_assert_str_eq(s, "ade-test-vm_OsDisk");
}
END_TEST

START_TEST(test_imds_requires_metadata_header) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance?api-version=2021-02-01", NULL, &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error"), "Bad request. Required metadata header not specified");
}
END_TEST

START_TEST(test_imds_metadata_header_must_be_true) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance?api-version=2021-02-01", "Metadata: yes", &r);
        ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_imds_refuses_forwarded_request) {
        _cleanup_free_ char *u = url(emu->imds_url, "/metadata/instance?api-version=2021-02-01");
        _cleanup_reply_ Reply r = {};
        CURL *c = curl_easy_init();
        struct curl_slist *h = curl_slist_append(NULL, "X-Forwarded-For: 10.0.0.1");

        /* Two extra headers: Metadata and X-Forwarded-For. */
        h = curl_slist_append(h, "Metadata: true");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_URL, u);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_imds_requires_api_version) {
        _cleanup_reply_ Reply r = {};
        json_object *v = NULL;

        imds_get("/metadata/instance", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_int_eq(ade_json_get_array(r.json, "newest-versions", &v), 0);
}
END_TEST

START_TEST(test_imds_leaf_as_text) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance/compute/location?api-version=2021-02-01&format=text", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "westeurope");
}
END_TEST

START_TEST(test_imds_leaf_as_json_refused) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance/compute/location?api-version=2021-02-01", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_imds_subtree_filtered) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance/compute/storageProfile/dataDisks/0?api-version=2021-02-01", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(jstr(r.json, "name"), "ade-test-vm_DataDisk_0");
        ck_assert_str_eq(jstr(r.json, "lun"), "0");
}
END_TEST

START_TEST(test_imds_unknown_path_not_found) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance/compute/nothing?api-version=2021-02-01&format=text", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 404);
}
END_TEST

START_TEST(test_imds_duplicate_parameter_refused) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/instance?api-version=2021-02-01&api-version=2021-02-01", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 400);
}
END_TEST

START_TEST(test_imds_token_fields_are_strings) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                "Metadata: true", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert(all_primitives_are_strings(r.json));
        ck_assert_str_eq(jstr(r.json, "token_type"), "Bearer");
        ck_assert_str_eq(jstr(r.json, "resource"), VAULT_RES);
        ck_assert_str_eq(jstr(r.json, "client_id"), SYSTEM_CLIENT_ID);
        ck_assert_int_gt(atoi(jstr(r.json, "expires_in")), 0);
}
END_TEST

static const char *const user_selectors[] = {
        "client_id=" USER_CLIENT_ID,
        "object_id=" USER_OBJECT_ID,
        "msi_res_id=/subscriptions/" SUB
        "/resourcegroups/ade-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ade-test-identity",
};

START_TEST(test_imds_token_user_assigned) {
        _cleanup_free_ char *path = NULL;
        _cleanup_reply_ Reply r = {};

        ck_assert_int_ge(
                asprintf(&path,
                        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&%s",
                        user_selectors[_i]),
                0);
        imds_get(path, "Metadata: true", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(jstr(r.json, "client_id"), USER_CLIENT_ID);
}
END_TEST

START_TEST(test_imds_token_path_trailing_slash) {
        _cleanup_reply_ Reply r = {};

        /* MSAL's managed identity client asks for ".../token/". */
        imds_get("/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https://vault.azure.net",
                "Metadata: true", &r);
        ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_imds_token_unknown_identity) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://"
                 "vault.azure.net&client_id=00000000-0000-0000-0000-000000000000",
                "Metadata: true", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error"), "invalid_request");
        ck_assert_str_eq(jstr(r.json, "error_description"), "Identity not found");
}
END_TEST

START_TEST(test_imds_token_without_resource_refused) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error"), "invalid_request");
}
END_TEST

START_TEST(test_imds_token_requires_metadata_header) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net", NULL, &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error_description"), "Required metadata header not specified");
}
END_TEST

START_TEST(test_imds_token_unknown_resource_refused) {
        _cleanup_reply_ Reply r = {};

        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://example.com",
                "Metadata: true", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error"), "invalid_resource");
}
END_TEST

/* ---- Entra ID ---- */

static void entra_post(const char *version_path, const char *form, Reply *ret) {
        _cleanup_free_ char *u = url(emu->authority_url, "/%s/oauth2/%s", TENANT, version_path);

        send_req("POST", u, NULL, form, "Content-Type: application/x-www-form-urlencoded", ret);
}

static int aadsts_code(const Reply *r) {
        json_object *codes = NULL;

        if (ade_json_get_array(r->json, "error_codes", &codes) < 0 || json_object_array_length(codes) < 1)
                return -1;
        return json_object_get_int(json_object_array_get_idx(codes, 0));
}

START_TEST(test_entra_v2_client_secret) {
        _cleanup_free_ char *u = url(emu->vault_url, "/keys/kek?api-version=7.4");
        _cleanup_reply_ Reply r = {}, kv = {};
        json_object *exp = NULL;

        entra_post("v2.0/token",
                "client_id=" APP_SECRET_ID
                "&scope=https%3A%2F%2Fvault.azure.net%2F.default&client_secret=ade~emulator.Secret-0123456789"
                "&grant_type=client_credentials",
                &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert(json_object_object_get_ex(r.json, "expires_in", &exp));
        ck_assert(json_object_is_type(exp, json_type_int));
        send_req("GET", u, jstr(r.json, "access_token"), NULL, NULL, &kv);
        ck_assert_int_eq(kv.status, 200);
}
END_TEST

START_TEST(test_entra_v1_client_secret) {
        _cleanup_reply_ Reply r = {};

        entra_post("token",
                "resource=https%3A%2F%2Fvault.azure.net&client_id=" APP_SECRET_ID
                "&client_secret=ade~emulator.Secret-0123456789"
                "&client_info=1&grant_type=client_credentials",
                &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert(all_primitives_are_strings(r.json));
        ck_assert_str_eq(jstr(r.json, "resource"), VAULT_RES);
}
END_TEST

START_TEST(test_entra_basic_auth_accepted) {
        _cleanup_free_ char *u = url(emu->authority_url, "/%s/oauth2/v2.0/token", TENANT), *cred = NULL, *hdr = NULL;
        _cleanup_reply_ Reply r = {};

        cred = ade_base64_encode(APP_SECRET_ID ":" APP_SECRET, strlen(APP_SECRET_ID ":" APP_SECRET));
        ck_assert_int_ge(asprintf(&hdr, "Authorization: Basic %s", cred), 0);
        send_req("POST", u, NULL, "scope=https%3A%2F%2Fvault.azure.net%2F.default&grant_type=client_credentials", hdr,
                &r);
        ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_entra_wrong_secret) {
        _cleanup_reply_ Reply r = {};

        entra_post("v2.0/token",
                "client_id=" APP_SECRET_ID "&scope=https%3A%2F%2Fvault.azure.net%2F.default&client_secret=nope"
                "&grant_type=client_credentials",
                &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(jstr(r.json, "error"), "invalid_client");
        ck_assert_int_eq(aadsts_code(&r), 7000215);
        ck_assert_ptr_nonnull(startswith(jstr(r.json, "error_description"), "AADSTS7000215: "));
}
END_TEST

START_TEST(test_entra_unknown_client) {
        _cleanup_reply_ Reply r = {};

        entra_post("v2.0/token",
                "client_id=00000000-0000-0000-0000-000000000000&scope=https%3A%2F%2Fvault.azure.net%2F.default"
                "&client_secret=x&grant_type=client_credentials",
                &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error"), "unauthorized_client");
        ck_assert_int_eq(aadsts_code(&r), 700016);
}
END_TEST

START_TEST(test_entra_scope_without_default_refused) {
        _cleanup_reply_ Reply r = {};

        entra_post("v2.0/token",
                "client_id=" APP_SECRET_ID "&scope=https%3A%2F%2Fvault.azure.net&client_secret=" APP_SECRET
                "&grant_type=client_credentials",
                &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(jstr(r.json, "error"), "invalid_scope");
}
END_TEST

START_TEST(test_entra_missing_grant_type) {
        _cleanup_reply_ Reply r = {};

        entra_post("v2.0/token",
                "client_id=" APP_SECRET_ID "&scope=https%3A%2F%2Fvault.azure.net%2F.default&client_secret=" APP_SECRET,
                &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_int_eq(aadsts_code(&r), 900144);
}
END_TEST

START_TEST(test_entra_unknown_tenant) {
        _cleanup_free_ char *u = url(emu->authority_url, "/00000000-0000-0000-0000-00000000dead/oauth2/v2.0/token");
        _cleanup_reply_ Reply r = {};

        send_req("POST", u, NULL,
                "client_id=" APP_SECRET_ID "&scope=https%3A%2F%2Fvault.azure.net%2F.default&client_secret=" APP_SECRET
                "&grant_type=client_credentials",
                "Content-Type: application/x-www-form-urlencoded", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_int_eq(aadsts_code(&r), 90002);
}
END_TEST

/* A client assertion as MSAL builds it, signed with @key_path's key. */
static char *assertion(const char *key_path, const char *alg, bool s256, const char *aud, int64_t exp_offset) {
        _cleanup_free_ char *cert_path = NULL, *header = NULL, *claims = NULL, *h64 = NULL, *c64 = NULL, *input = NULL,
                            *thumb = NULL, *sig64 = NULL;
        unsigned char digest[EVP_MAX_MD_SIZE], sig[1024];
        unsigned n = 0;
        size_t sig_size = sizeof(sig);
        EVP_PKEY_CTX *pctx = NULL;
        EVP_MD_CTX *md;
        EVP_PKEY *key;
        X509 *cert;
        FILE *f;
        char *out;
        int64_t now = (int64_t)time(NULL);

        ck_assert_int_ge(asprintf(&cert_path, "%s/app-cert.pem", emu->dir), 0);
        f = fopen(cert_path, "re");
        ck_assert_ptr_nonnull(f);
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        ck_assert_ptr_nonnull(cert);
        ck_assert_int_eq(X509_digest(cert, s256 ? EVP_sha256() : EVP_sha1(), digest, &n), 1);
        X509_free(cert);
        thumb = ade_base64url_encode(digest, n);

        f = fopen(key_path, "re");
        ck_assert_ptr_nonnull(f);
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        ck_assert_ptr_nonnull(key);

        ck_assert_int_ge(asprintf(&header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"%s\":\"%s\"}", alg,
                                 s256 ? "x5t#S256" : "x5t", thumb),
                0);
        ck_assert_int_ge(asprintf(&claims,
                                 "{\"aud\":\"%s\",\"iss\":\"" APP_CERT_ID "\",\"sub\":\"" APP_CERT_ID
                                 "\",\"jti\":\"8d1b0f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b\","
                                 "\"nbf\":%" PRId64 ",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "}",
                                 aud, now - 60, now - 60, now + exp_offset),
                0);
        h64 = ade_base64url_encode(header, strlen(header));
        c64 = ade_base64url_encode(claims, strlen(claims));
        ck_assert_int_ge(asprintf(&input, "%s.%s", h64, c64), 0);

        md = EVP_MD_CTX_new();
        ck_assert_int_eq(EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key), 1);
        if (streq(alg, "PS256")) {
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
        }
        ck_assert_int_eq(EVP_DigestSign(md, sig, &sig_size, (unsigned char *)input, strlen(input)), 1);
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(key);
        sig64 = ade_base64url_encode(sig, sig_size);
        ck_assert_int_ge(asprintf(&out, "%s.%s", input, sig64), 0);
        return out;
}

static void assertion_token(const char *jwt, Reply *ret) {
        _cleanup_free_ char *form = NULL;

        ck_assert_int_ge(
                asprintf(&form,
                        "client_id=" APP_CERT_ID
                        "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default&grant_type=client_credentials"
                        "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer"
                        "&client_assertion=%s",
                        jwt),
                0);
        entra_post("v2.0/token", form, ret);
}

static char *app_key_path(void) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/app-key.pem", emu->dir), 0);
        return p;
}

static char *token_endpoint(void) {
        return url(emu->authority_url, "/%s/oauth2/v2.0/token", TENANT);
}

START_TEST(test_entra_assertion_rs256_x5t) {
        _cleanup_free_ char *key = app_key_path(), *aud = token_endpoint(),
                            *jwt = assertion(key, "RS256", false, aud, 600);
        _cleanup_free_ char *u = url(emu->vault_url, "/keys/kek?api-version=7.4");
        _cleanup_reply_ Reply r = {}, kv = {};

        assertion_token(jwt, &r);
        ck_assert_int_eq(r.status, 200);
        send_req("GET", u, jstr(r.json, "access_token"), NULL, NULL, &kv);
        ck_assert_int_eq(kv.status, 200);
}
END_TEST

START_TEST(test_entra_assertion_ps256_x5t_s256) {
        _cleanup_free_ char *key = app_key_path(), *aud = token_endpoint(),
                            *jwt = assertion(key, "PS256", true, aud, 600);
        _cleanup_reply_ Reply r = {};

        assertion_token(jwt, &r);
        ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_entra_assertion_login_host_audience) {
        _cleanup_free_ char *key = app_key_path(),
                            *jwt = assertion(key, "RS256", false,
                                    "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token", 600);
        _cleanup_reply_ Reply r = {};

        assertion_token(jwt, &r);
        ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_entra_assertion_wrong_key_refused) {
        _cleanup_free_ char *key = NULL, *aud = token_endpoint(), *jwt = NULL;
        _cleanup_reply_ Reply r = {};

        /* The CA's key is not the certificate's. */
        ck_assert_int_ge(asprintf(&key, "%s/token-key.pem", emu->dir), 0);
        jwt = assertion(key, "RS256", false, aud, 600);
        assertion_token(jwt, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_int_eq(aadsts_code(&r), 700027);
}
END_TEST

START_TEST(test_entra_assertion_expired_refused) {
        _cleanup_free_ char *key = app_key_path(), *aud = token_endpoint(),
                            *jwt = assertion(key, "RS256", false, aud, -30);
        _cleanup_reply_ Reply r = {};

        assertion_token(jwt, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_int_eq(aadsts_code(&r), 700024);
}
END_TEST

START_TEST(test_entra_assertion_wrong_audience_refused) {
        _cleanup_free_ char *key = app_key_path(),
                            *jwt = assertion(key, "RS256", false, "https://example.com/token", 600);
        _cleanup_reply_ Reply r = {};

        assertion_token(jwt, &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(jstr(r.json, "error"), "invalid_client");
}
END_TEST

START_TEST(test_entra_secret_app_cannot_use_assertion) {
        _cleanup_free_ char *key = app_key_path(), *aud = token_endpoint(),
                            *jwt = assertion(key, "RS256", false, aud, 600), *form = NULL;
        _cleanup_reply_ Reply r = {};

        ck_assert_int_ge(
                asprintf(&form,
                        "client_id=" APP_SECRET_ID
                        "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default&grant_type=client_credentials"
                        "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer"
                        "&client_assertion=%s",
                        jwt),
                0);
        entra_post("v2.0/token", form, &r);
        ck_assert_int_eq(r.status, 401);
}
END_TEST

/* ---- ARM ---- */

static void arm_get(AdeEmulator *e, const char *token, const char *path, Reply *ret) {
        _cleanup_free_ char *u = url(e->arm_url, "%s", path);
        AdeEmulator *saved = emu;

        emu = e;
        send_req("GET", u, token, NULL, NULL, ret);
        emu = saved;
}

#define RG_PATH "/subscriptions/" SUB "/resourceGroups/ade-rg"

START_TEST(test_arm_vault_properties) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};
        json_object *p = NULL;
        bool b = false;

        arm_get(emu, t, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso?api-version=2023-07-01", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(jstr(r.json, "location"), "westeurope");
        ck_assert_int_eq(ade_json_get_object(r.json, "properties", &p), 0);
        ck_assert_str_eq(jstr(p, "tenantId"), TENANT);
        ck_assert_int_eq(ade_json_get_bool(p, "enabledForDiskEncryption", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(ade_json_get_bool(p, "enableSoftDelete", &b), 0);
        ck_assert(b);
        ck_assert_int_eq(ade_json_get_bool(p, "enablePurgeProtection", &b), 0);
        ck_assert(b);
        ck_assert_str_eq(jstr(p, "vaultUri"), "https://contoso.vault.azure.net/");
}
END_TEST

START_TEST(test_arm_challenge_without_token) {
        _cleanup_reply_ Reply r = {};
        char buf[512];

        arm_get(emu, NULL, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso?api-version=2023-07-01", &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(err_code(&r), "AuthenticationFailed");
        ck_assert_ptr_nonnull(startswith(header(&r, "WWW-Authenticate", buf, sizeof(buf)),
                "Bearer authorization_uri=\"https://login.windows.net/\""));
}
END_TEST

START_TEST(test_arm_vault_token_refused) {
        _cleanup_free_ char *t = mi_token(VAULT_RES);
        _cleanup_reply_ Reply r = {};

        arm_get(emu, t, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso?api-version=2023-07-01", &r);
        ck_assert_int_eq(r.status, 401);
        ck_assert_str_eq(err_code(&r), "InvalidAuthenticationTokenAudience");
}
END_TEST

START_TEST(test_arm_vault_not_found) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};

        arm_get(emu, t, RG_PATH "/providers/Microsoft.KeyVault/vaults/other?api-version=2023-07-01", &r);
        ck_assert_int_eq(r.status, 404);
        ck_assert_str_eq(err_code(&r), "ResourceNotFound");
}
END_TEST

START_TEST(test_arm_api_version_required) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};

        arm_get(emu, t, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso", &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(err_code(&r), "MissingApiVersionParameter");
}
END_TEST

START_TEST(test_arm_snapshots_paged_by_subscription) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply p1 = {}, p2 = {};
        json_object *v1 = NULL, *v2 = NULL;
        const char *next;

        arm_get(emu, t, "/subscriptions/" SUB "/providers/Microsoft.Compute/snapshots?api-version=2023-10-02", &p1);
        ck_assert_int_eq(p1.status, 200);
        ck_assert_int_eq(ade_json_get_array(p1.json, "value", &v1), 0);
        ck_assert_uint_eq(json_object_array_length(v1), 2);
        next = jstr(p1.json, "nextLink");
        ck_assert_ptr_nonnull(next);
        send_req("GET", next, t, NULL, NULL, &p2);
        ck_assert_int_eq(p2.status, 200);
        ck_assert_int_eq(ade_json_get_array(p2.json, "value", &v2), 0);
        ck_assert_uint_eq(json_object_array_length(v2), 1);
        ck_assert_ptr_null(jstr(p2.json, "nextLink"));
}
END_TEST

START_TEST(test_arm_snapshots_by_resource_group) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};
        json_object *v = NULL;
        const char *src = NULL, *state = NULL;

        arm_get(emu, t, RG_PATH "/providers/Microsoft.Compute/snapshots?api-version=2023-10-02", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_array(r.json, "value", &v), 0);
        ck_assert_int_eq(ade_json_get_path_string(json_object_array_get_idx(v, 0), &src, "properties", "creationData",
                                 "sourceResourceId", NULL),
                0);
        ck_assert_str_eq(src, RG_PATH "/providers/Microsoft.Compute/disks/ade-test-vm_OsDisk");
        ck_assert_int_eq(ade_json_get_path_string(
                                 json_object_array_get_idx(v, 0), &state, "properties", "provisioningState", NULL),
                0);
        ck_assert_str_eq(state, "Succeeded");
}
END_TEST

START_TEST(test_arm_single_snapshot) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};

        arm_get(emu, t,
                RG_PATH "/providers/Microsoft.Compute/snapshots/ade-test-vm_DataDisk_1_snapshot?api-version=2023-10-02",
                &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(jstr(r.json, "name"), "ade-test-vm_DataDisk_1_snapshot");
}
END_TEST

START_TEST(test_arm_unknown_snapshot_not_found) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};

        arm_get(emu, t, RG_PATH "/providers/Microsoft.Compute/snapshots/nope?api-version=2023-10-02", &r);
        ck_assert_int_eq(r.status, 404);
        ck_assert_str_eq(err_code(&r), "ResourceNotFound");
}
END_TEST

START_TEST(test_arm_disk) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};
        const char *uid = NULL;

        arm_get(emu, t, RG_PATH "/providers/Microsoft.Compute/disks/ade-test-vm_DataDisk_0?api-version=2023-10-02", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_path_string(r.json, &uid, "properties", "uniqueId", NULL), 0);
        ck_assert_str_eq(uid, "8a6c2f1e-0b7d-4c3e-9f5a-1d2e3f4a5b61");
}
END_TEST

START_TEST(test_arm_paths_case_insensitive) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};

        arm_get(emu, t,
                "/SUBSCRIPTIONS/" SUB
                "/resourcegroups/ADE-RG/providers/microsoft.keyvault/VAULTS/Contoso?api-version=2023-07-01",
                &r);
        ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_arm_no_restore_points_by_default) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};
        json_object *v = NULL;

        arm_get(emu, t, RG_PATH "/providers/Microsoft.Compute/restorePointCollections?api-version=2023-09-01", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_array(r.json, "value", &v), 0);
        ck_assert_uint_eq(json_object_array_length(v), 0);
}
END_TEST

START_TEST(test_arm_restore_points_expanded) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *t = NULL;
        _cleanup_reply_ Reply r = {};
        json_object *rps = NULL;
        const char *mode = NULL;

        ck_assert_int_eq(
                ade_emulator_start(
                        "{\"restore_point_collections\":[{\"name\":\"rpc1\",\"restore_points\":"
                        "[{\"name\":\"rp1\",\"consistency_mode\":\"ApplicationConsistent\",\"exclude_luns\":[1]}]}]}",
                        &e),
                0);
        t = mi_token_for(e, ARM_RES, NULL);
        arm_get(e, t,
                RG_PATH "/providers/Microsoft.Compute/restorePointCollections/"
                        "rpc1?api-version=2023-09-01&$expand=restorePoints",
                &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(ade_json_get_array(json_object_object_get(r.json, "properties"), "restorePoints", &rps), 0);
        ck_assert_uint_eq(json_object_array_length(rps), 1);
        ck_assert_int_eq(ade_json_get_path_string(
                                 json_object_array_get_idx(rps, 0), &mode, "properties", "consistencyMode", NULL),
                0);
        ck_assert_str_eq(mode, "ApplicationConsistent");
}
END_TEST

START_TEST(test_arm_snapshots_forbidden_without_reader) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *t = NULL;
        _cleanup_reply_ Reply r = {}, v = {};

        ck_assert_int_eq(ade_emulator_start("{\"identities\":{\"system\":{\"snapshot_reader\":false}}}", &e), 0);
        t = mi_token_for(e, ARM_RES, NULL);
        arm_get(e, t, RG_PATH "/providers/Microsoft.Compute/snapshots?api-version=2023-10-02", &r);
        ck_assert_int_eq(r.status, 403);
        ck_assert_str_eq(err_code(&r), "AuthorizationFailed");
        /* The vault itself is still readable. */
        arm_get(e, t, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso?api-version=2023-07-01", &v);
        ck_assert_int_eq(v.status, 200);
}
END_TEST

/* ---- faults ---- */

START_TEST(test_fault_keyvault_429_with_retry_after) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->kek_url, "?api-version=7.4");
        _cleanup_reply_ Reply r1 = {}, r2 = {};
        char buf[64];

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"status\":429,\"retry_after\":2}"), 0);
        send_req("GET", u, t, NULL, NULL, &r1);
        ck_assert_int_eq(r1.status, 429);
        ck_assert_str_eq(err_code(&r1), "Throttled");
        ck_assert_str_eq(header(&r1, "Retry-After", buf, sizeof(buf)), "2");
        send_req("GET", u, t, NULL, NULL, &r2);
        ck_assert_int_eq(r2.status, 200);
}
END_TEST

START_TEST(test_fault_count) {
        _cleanup_free_ char *t = mi_token(VAULT_RES), *u = url(emu->kek_url, "?api-version=7.4");
        _cleanup_reply_ Reply r1 = {}, r2 = {}, r3 = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"status\":503,\"count\":2}"), 0);
        send_req("GET", u, t, NULL, NULL, &r1);
        send_req("GET", u, t, NULL, NULL, &r2);
        send_req("GET", u, t, NULL, NULL, &r3);
        ck_assert_int_eq(r1.status, 503);
        ck_assert_int_eq(r2.status, 503);
        ck_assert_int_eq(r3.status, 200);
}
END_TEST

START_TEST(test_fault_seconds_hits_every_request) {
        _cleanup_reply_ Reply r1 = {}, r2 = {}, r3 = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"imds-token\",\"status\":410,\"seconds\":300}"), 0);
        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                "Metadata: true", &r1);
        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                "Metadata: true", &r2);
        ck_assert_int_eq(r1.status, 410);
        ck_assert_int_eq(r2.status, 410);
        ck_assert_int_eq(ade_emulator_clear_faults(emu), 0);
        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                "Metadata: true", &r3);
        ck_assert_int_eq(r3.status, 200);
}
END_TEST

START_TEST(test_fault_route_is_respected) {
        _cleanup_reply_ Reply r1 = {}, r2 = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"imds-token\",\"status\":500}"), 0);
        imds_get("/metadata/instance/compute/location?api-version=2021-02-01&format=text", "Metadata: true", &r1);
        ck_assert_int_eq(r1.status, 200);
        imds_get("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net",
                "Metadata: true", &r2);
        ck_assert_int_eq(r2.status, 500);
}
END_TEST

START_TEST(test_fault_wildcard_route) {
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"*\",\"status\":500}"), 0);
        imds_get("/metadata/instance/compute/location?api-version=2021-02-01&format=text", "Metadata: true", &r);
        ck_assert_int_eq(r.status, 500);
}
END_TEST

START_TEST(test_fault_arm_429_headers) {
        _cleanup_free_ char *t = mi_token(ARM_RES);
        _cleanup_reply_ Reply r = {};
        char buf[64];

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"arm\",\"status\":429,\"retry_after\":7}"), 0);
        arm_get(emu, t, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso?api-version=2023-07-01", &r);
        ck_assert_int_eq(r.status, 429);
        ck_assert_str_eq(header(&r, "Retry-After", buf, sizeof(buf)), "7");
        ck_assert_str_eq(header(&r, "x-ms-ratelimit-remaining-subscription-reads", buf, sizeof(buf)), "0");
}
END_TEST

START_TEST(test_fault_drop_closes_connection) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_json_ json_object *log = NULL;
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_clear_requests(emu), 0);
        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"drop\":true}"), 0);
        ck_assert_int_ne(send_on(NULL, "GET", u, NULL, NULL, NULL, 0, &r), CURLE_OK);
        ck_assert_int_eq(ade_emulator_requests(emu, &log), 0);
        ck_assert_int_eq(jint(log_entry(log, 0), "status"), 0);
}
END_TEST

START_TEST(test_fault_raw_body) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"body\":\"{\\\"value\\\":\\\"trunc\"}"), 0);
        send_req("GET", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.body, "{\"value\":\"trunc");
}
END_TEST

START_TEST(test_fault_body_bytes) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"body_bytes\":100000}"), 0);
        send_req("GET", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_uint_eq(r.size, 100000);
        ck_assert_ptr_nonnull(r.json);
}
END_TEST

START_TEST(test_fault_latency_beats_client_timeout) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"latency_ms\":3000}"), 0);
        ck_assert_int_eq(send_on(NULL, "GET", u, NULL, NULL, NULL, 300, &r), CURLE_OPERATION_TIMEDOUT);
}
END_TEST

START_TEST(test_fault_hang_until_cleared) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_json_ json_object *log = NULL;
        _cleanup_reply_ Reply r = {}, again = {};
        unsigned i;

        ck_assert_int_eq(ade_emulator_clear_requests(emu), 0);
        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"hang\":true}"), 0);
        ck_assert_int_eq(send_on(NULL, "GET", u, NULL, NULL, NULL, 300, &r), CURLE_OPERATION_TIMEDOUT);
        /* Still held: not answered, so not in the log. */
        ck_assert_uint_eq(ade_emulator_requests_to(emu, "keyvault"), 0);
        ck_assert_int_eq(ade_emulator_clear_faults(emu), 0);
        for (i = 0; i < 200 && ade_emulator_requests_to(emu, "keyvault") == 0; i++)
                usleep(50 * 1000);
        ck_assert_int_eq(ade_emulator_requests(emu, &log), 0);
        ck_assert_int_eq(jint(log_entry(log, 0), "status"), 0); /* released, then dropped */
        send_req("GET", u, NULL, NULL, NULL, &again);
        ck_assert_int_eq(again.status, 401);
}
END_TEST

START_TEST(test_fault_latency_alone_keeps_answer) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"latency_ms\":10}"), 0);
        send_req("GET", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
}
END_TEST

START_TEST(test_fault_clear) {
        _cleanup_free_ char *u = url(emu->vault_url, "/secrets/x?api-version=7.4");
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_fault(emu, "{\"route\":\"keyvault\",\"status\":500,\"count\":5}"), 0);
        ck_assert_int_eq(ade_emulator_clear_faults(emu), 0);
        send_req("GET", u, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 401);
}
END_TEST

static const char *const bad_faults[] = {
        "{\"route\":\"nowhere\",\"status\":500}",
        "{\"status\":500}",
        "{\"route\":\"keyvault\"}",
        "{\"route\":\"keyvault\",\"status\":42}",
        "{\"route\":\"keyvault\",\"token\":\"stale\"}",
        "{\"route\":\"keyvault\",\"status\":500,\"count\":0}",
        "{\"route\":\"keyvault\",\"status\":500,\"count\":1,\"seconds\":5}",
        "[1,2]",
        "not json",
};

START_TEST(test_fault_invalid_refused) {
        ck_assert_int_eq(ade_emulator_fault(emu, bad_faults[_i]), -EINVAL);
}
END_TEST

/* ---- the harness ---- */

START_TEST(test_harness_fills_urls) {
        _cleanup_free_ char *v = NULL;

        ck_assert_int_ge(asprintf(&v, "https://localhost:%d", emu->https_port), 0);
        ck_assert_str_eq(emu->vault_url, v);
        ck_assert_str_eq(emu->arm_url, v);
        ck_assert_str_eq(emu->authority_url, v);
        ck_assert_str_eq(emu->tenant_id, TENANT);
        ck_assert_str_eq(emu->subscription_id, SUB);
        ck_assert_str_eq(emu->vault_resource_id, RG_PATH "/providers/Microsoft.KeyVault/vaults/contoso");
        ck_assert_ptr_nonnull(startswith(emu->kek_url, v));
}
END_TEST

START_TEST(test_harness_refuses_bad_overlay) {
        AdeEmulator *e = NULL;

        ck_assert_int_eq(ade_emulator_start("{\"vm\":", &e), -EINVAL);
        ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_harness_overlay_merges) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *u = NULL;
        _cleanup_reply_ Reply loc = {}, name = {};
        AdeEmulator *saved = emu;

        ck_assert_int_eq(ade_emulator_start("{\"vm\":{\"location\":\"East US\"}}", &e), 0);
        emu = e;
        imds_get("/metadata/instance/compute/location?api-version=2021-02-01&format=text", "Metadata: true", &loc);
        imds_get("/metadata/instance/compute/name?api-version=2021-02-01&format=text", "Metadata: true", &name);
        emu = saved;
        ck_assert_str_eq(loc.body, "East US");
        ck_assert_str_eq(name.body, "ade-test-vm");
}
END_TEST

START_TEST(test_harness_plays_a_cloud_holding_localhost) {
        _cleanup_(ade_emulator_stopp) AdeEmulator *e = NULL;
        _cleanup_free_ char *u = NULL;
        _cleanup_reply_ Reply r = {};
        AdeEmulator *saved = emu;
        char buf[512];

        ck_assert_int_eq(ade_emulator_start(NULL, &e), 0);
        ck_assert_str_eq(e->keyvault_resource, ADE_EMULATOR_KEYVAULT_RESOURCE);
        u = url(e->vault_url, "/secrets/x?api-version=7.4");
        emu = e;
        send_req("GET", u, NULL, NULL, NULL, &r);
        emu = saved;
        ck_assert_ptr_nonnull(strstr(
                header(&r, "WWW-Authenticate", buf, sizeof(buf)), "resource=\"" ADE_EMULATOR_KEYVAULT_RESOURCE "\""));
}
END_TEST

START_TEST(test_harness_config_parses) {
        _cleanup_(ade_config_freep) AdeConfig *c = NULL;
        _cleanup_free_ char *path = NULL, *error = NULL;

        ck_assert_int_ge(asprintf(&path, "%s/ade.conf", emu->dir), 0);
        ck_assert_int_eq(ade_emulator_write_config(emu, path, "[identity]\ntype = managed\n"), 0);
        ck_assert_int_eq(ade_config_load(path, &c, &error), 0);
        ck_assert_str_eq(c->keyvault.url, emu->vault_url);
        ck_assert_str_eq(c->azure.imds, emu->imds_url);
        ck_assert_str_eq(c->azure.ca_file, emu->ca_file);
        ck_assert_str_eq(c->azure.keyvault_resource, emu->keyvault_resource);
        unlink(path);
}
END_TEST

START_TEST(test_harness_stop_not_held_by_latency) {
        AdeEmulator *e = NULL, *saved = emu;
        _cleanup_free_ char *u = NULL;
        _cleanup_reply_ Reply r = {};

        ck_assert_int_eq(ade_emulator_start(NULL, &e), 0);
        u = url(e->vault_url, "/secrets/x?api-version=7.4");
        ck_assert_int_eq(ade_emulator_fault(e, "{\"route\":\"keyvault\",\"latency_ms\":600000}"), 0);
        emu = e;
        ck_assert_int_eq(send_on(NULL, "GET", u, NULL, NULL, NULL, 200, &r), CURLE_OPERATION_TIMEDOUT);
        emu = saved;
        /* A request still waiting out its latency must not keep SIGTERM waiting (the case's
         * timeout would end this test first). */
        ck_assert_ptr_null(ade_emulator_stop(e));
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("emulator");
        TCase *kv = ade_test_case("keyvault"), *log = ade_test_case("log"), *imds = ade_test_case("imds"),
              *entra = ade_test_case("entra"), *arm = ade_test_case("arm"), *faults = ade_test_case("faults"),
              *harness = ade_test_case("harness"), *keys = ade_test_case("keys");
        TCase *all[] = {kv, log, imds, entra, arm, faults, harness};

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                tcase_add_checked_fixture(all[i], setup, NULL);
                suite_add_tcase(s, all[i]);
        }

        tcase_add_test(kv, test_kv_challenge_without_token);
        tcase_add_test(kv, test_kv_challenge_before_route_and_api_version);
        tcase_add_test(kv, test_kv_scenario_resource);
        tcase_add_test(kv, test_kv_challenge_before_body_validation);
        tcase_add_test(kv, test_kv_challenge_scope_variant);
        tcase_add_test(kv, test_kv_response_headers);
        tcase_add_test(kv, test_kv_wrong_audience_refused);
        tcase_add_test(kv, test_kv_expired_token_refused);
        tcase_add_test(kv, test_kv_token_fault_hits_only_the_next_token);
        tcase_add_test(kv, test_kv_forged_token_refused);
        tcase_add_test(kv, test_kv_api_version_required);
        tcase_add_test(kv, test_kv_set_and_get_latest_with_trailing_slash);
        tcase_add_test(kv, test_kv_set_secret_id_is_versioned);
        tcase_add_test(kv, test_kv_new_version_becomes_latest_old_stays);
        tcase_add_test(kv, test_kv_secret_not_found);
        tcase_add_test(kv, test_kv_secret_unknown_version_not_found);
        tcase_add_test(kv, test_kv_enabled_as_string_accepted);
        tcase_add_test(kv, test_kv_set_secret_without_value_refused);
        tcase_add_test(kv, test_kv_set_secret_bad_json_refused);
        tcase_add_test(kv, test_kv_set_secret_bad_enabled_refused);
        tcase_add_test(kv, test_kv_set_secret_bad_name_refused);
        tcase_add_test(kv, test_kv_patch_returns_bundle_without_value);
        tcase_add_test(kv, test_kv_disabled_secret_forbidden);
        tcase_add_test(kv, test_kv_get_key_has_public_parts_only);
        tcase_add_test(kv, test_kv_get_key_latest_with_trailing_slash);
        tcase_add_test(kv, test_kv_key_not_found);
        tcase_add_loop_test(kv, test_kv_remote_wrap_then_unwrap, 0, ELEMENTSOF(algs));
        tcase_add_loop_test(kv, test_kv_local_wrap_remote_unwrap, 0, ELEMENTSOF(algs));
        tcase_add_test(kv, test_kv_oaep_is_not_oaep_256);
        tcase_add_test(kv, test_kv_encrypt_then_decrypt);
        tcase_add_test(kv, test_kv_operation_segment_case_insensitive);
        tcase_add_test(kv, test_kv_output_is_unpadded_base64url);
        tcase_add_test(kv, test_kv_standard_padded_base64_accepted);
        tcase_add_test(kv, test_kv_aes_key_wrap_on_rsa_refused);
        tcase_add_test(kv, test_kv_unknown_algorithm_refused);
        tcase_add_test(kv, test_kv_unwrap_garbage_refused);
        tcase_add_test(kv, test_kv_wrap_invalid_base64_refused);
        tcase_add_test(kv, test_kv_wrap_without_body_refused);
        tcase_add_test(kv, test_kv_create_key_then_wrap);
        tcase_add_test(kv, test_kv_create_ec_key);
        tcase_add_test(kv, test_kv_create_ec_key_unknown_curve_refused);
        tcase_add_test(kv, test_kv_create_key_with_exp_returns_it);
        tcase_add_test(kv, test_kv_create_key_with_bad_exp_refused);
        tcase_add_test(kv, test_kv_disabled_key_forbidden);
        tcase_add_test(kv, test_kv_key_without_operation_forbidden);
        tcase_add_test(kv, test_kv_versionless_operation_uses_latest);

        tcase_add_checked_fixture(keys, setup_keys, teardown_keys);
        suite_add_tcase(s, keys);
        tcase_add_test(keys, test_key_exp_nbf_absent_when_unset);
        tcase_add_test(keys, test_key_absolute_nbf_exp_are_integers);
        tcase_add_test(keys, test_key_expires_in_seconds_is_relative_to_start);
        tcase_add_test(keys, test_key_not_before_in_seconds_is_relative_to_start);
        tcase_add_test(keys, test_key_in_window_wraps);
        tcase_add_loop_test(keys, test_key_expired_refuses_forward_operation, 0, ELEMENTSOF(forward_ops));
        tcase_add_test(keys, test_key_expired_absolute_refuses_wrap);
        tcase_add_loop_test(keys, test_key_not_yet_valid_refuses_forward_operation, 0, ELEMENTSOF(forward_ops));
        tcase_add_test(keys, test_key_expired_still_unwraps);
        tcase_add_test(keys, test_key_not_yet_valid_still_decrypts);
        tcase_add_loop_test(keys, test_key_ec_public_point_on_curve, 0, ELEMENTSOF(ec_keys));
        tcase_add_test(keys, test_key_ec_has_no_private_or_rsa_parts);
        tcase_add_test(keys, test_key_ec_default_ops_sign_verify);
        tcase_add_test(keys, test_key_ec_hsm_ops_as_configured);
        tcase_add_loop_test(keys, test_key_ec_crypt_operation_bad_parameter, 0, ELEMENTSOF(all_crypt_ops));
        tcase_add_test(keys, test_key_ec_wrap_without_op_bad_parameter);
        tcase_add_test(keys, test_key_state_dump_has_crv_and_exp);
        tcase_add_test(keys, test_state_persists_ec_key);
        tcase_add_test(keys, test_state_persists_key_validity);
        tcase_add_loop_test(keys, test_key_bad_scenario_refused, 0, ELEMENTSOF(bad_key_scenarios));

        tcase_add_test(log, test_log_one_handle_one_connection);
        tcase_add_test(log, test_log_two_handles_two_connections);
        tcase_add_test(log, test_log_records_request);
        tcase_add_test(log, test_log_clear);
        tcase_add_test(log, test_state_lists_secret_and_key);
        tcase_add_test(log, test_state_persists_across_restart);

        tcase_add_test(imds, test_imds_instance_primitives_are_strings);
        tcase_add_test(imds, test_imds_instance_describes_vm);
        tcase_add_test(imds, test_imds_requires_metadata_header);
        tcase_add_test(imds, test_imds_metadata_header_must_be_true);
        tcase_add_test(imds, test_imds_refuses_forwarded_request);
        tcase_add_test(imds, test_imds_requires_api_version);
        tcase_add_test(imds, test_imds_leaf_as_text);
        tcase_add_test(imds, test_imds_leaf_as_json_refused);
        tcase_add_test(imds, test_imds_subtree_filtered);
        tcase_add_test(imds, test_imds_unknown_path_not_found);
        tcase_add_test(imds, test_imds_duplicate_parameter_refused);
        tcase_add_test(imds, test_imds_token_fields_are_strings);
        tcase_add_loop_test(imds, test_imds_token_user_assigned, 0, ELEMENTSOF(user_selectors));
        tcase_add_test(imds, test_imds_token_path_trailing_slash);
        tcase_add_test(imds, test_imds_token_unknown_identity);
        tcase_add_test(imds, test_imds_token_without_resource_refused);
        tcase_add_test(imds, test_imds_token_requires_metadata_header);
        tcase_add_test(imds, test_imds_token_unknown_resource_refused);

        tcase_add_test(entra, test_entra_v2_client_secret);
        tcase_add_test(entra, test_entra_v1_client_secret);
        tcase_add_test(entra, test_entra_basic_auth_accepted);
        tcase_add_test(entra, test_entra_wrong_secret);
        tcase_add_test(entra, test_entra_unknown_client);
        tcase_add_test(entra, test_entra_scope_without_default_refused);
        tcase_add_test(entra, test_entra_missing_grant_type);
        tcase_add_test(entra, test_entra_unknown_tenant);
        tcase_add_test(entra, test_entra_assertion_rs256_x5t);
        tcase_add_test(entra, test_entra_assertion_ps256_x5t_s256);
        tcase_add_test(entra, test_entra_assertion_login_host_audience);
        tcase_add_test(entra, test_entra_assertion_wrong_key_refused);
        tcase_add_test(entra, test_entra_assertion_expired_refused);
        tcase_add_test(entra, test_entra_assertion_wrong_audience_refused);
        tcase_add_test(entra, test_entra_secret_app_cannot_use_assertion);

        tcase_add_test(arm, test_arm_vault_properties);
        tcase_add_test(arm, test_arm_challenge_without_token);
        tcase_add_test(arm, test_arm_vault_token_refused);
        tcase_add_test(arm, test_arm_vault_not_found);
        tcase_add_test(arm, test_arm_api_version_required);
        tcase_add_test(arm, test_arm_snapshots_paged_by_subscription);
        tcase_add_test(arm, test_arm_snapshots_by_resource_group);
        tcase_add_test(arm, test_arm_single_snapshot);
        tcase_add_test(arm, test_arm_unknown_snapshot_not_found);
        tcase_add_test(arm, test_arm_disk);
        tcase_add_test(arm, test_arm_paths_case_insensitive);
        tcase_add_test(arm, test_arm_no_restore_points_by_default);
        tcase_add_test(arm, test_arm_restore_points_expanded);
        tcase_add_test(arm, test_arm_snapshots_forbidden_without_reader);

        tcase_add_test(faults, test_fault_keyvault_429_with_retry_after);
        tcase_add_test(faults, test_fault_count);
        tcase_add_test(faults, test_fault_seconds_hits_every_request);
        tcase_add_test(faults, test_fault_route_is_respected);
        tcase_add_test(faults, test_fault_wildcard_route);
        tcase_add_test(faults, test_fault_arm_429_headers);
        tcase_add_test(faults, test_fault_drop_closes_connection);
        tcase_add_test(faults, test_fault_hang_until_cleared);
        tcase_add_test(faults, test_fault_raw_body);
        tcase_add_test(faults, test_fault_body_bytes);
        tcase_add_test(faults, test_fault_latency_beats_client_timeout);
        tcase_add_test(faults, test_fault_latency_alone_keeps_answer);
        tcase_add_test(faults, test_fault_clear);
        tcase_add_loop_test(faults, test_fault_invalid_refused, 0, ELEMENTSOF(bad_faults));

        tcase_add_test(harness, test_harness_fills_urls);
        tcase_add_test(harness, test_harness_refuses_bad_overlay);
        tcase_add_test(harness, test_harness_overlay_merges);
        tcase_add_test(harness, test_harness_plays_a_cloud_holding_localhost);
        tcase_add_test(harness, test_harness_config_parses);
        tcase_add_test(harness, test_harness_stop_not_held_by_latency);
        return s;
}

int main(void) {
        int r;

        curl_global_init(CURL_GLOBAL_DEFAULT);
        r = ade_emulator_start(PUBLIC_CLOUD, &main_emu);
        if (r >= 0)
                r = ade_emulator_start(KEYS_SCENARIO, &keys_emu);
        if (r < 0) {
                fprintf(stderr, "test-emulator: cannot start the emulator: %s\n", strerror(-r));
                ade_emulator_stop(main_emu);
                return EXIT_FAILURE;
        }
        emu = main_emu;
        /* Check forks each test; they share these emulators and keep their names apart. */
        r = ade_test_run(suite());
        emu = main_emu = ade_emulator_stop(main_emu);
        keys_emu = ade_emulator_stop(keys_emu);
        curl_global_cleanup();
        return r;
}
