/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/random.h>

#include "ade-base64.h"
#include "ade-entra.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-url.h"

struct AdeEntra {
        AdeHttp *http;
        char *authority;
        char *tenant;
        char *client_id;
        AdeSecret *secret; /* client-secret flavour */
        EVP_PKEY *key;     /* certificate flavour */
        X509 *cert;
        const char *alg;
};

int ade_guid_new(char **ret) {
        uint8_t b[16];

        assert(ret);

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno ?: -EIO;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        if (asprintf(ret, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                    b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]) < 0)
                return -ENOMEM;
        return 0;
}

static int entra_new(
        const char *authority, const char *tenant, const char *client_id, const AdeHttpOptions *opts, AdeEntra **ret) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        int r;

        if (isempty(tenant) || isempty(client_id))
                return -EINVAL;
        r = ade_url_origin(authority ?: "", NULL);
        if (r < 0)
                return ade_log_debug_errno(r, "Entra authority '%s' is not a URL", strna(authority));

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->alg = "PS256";
        if (!(e->authority = strdup(authority)) || !(e->tenant = strdup(tenant)) || !(e->client_id = strdup(client_id)))
                return -ENOMEM;
        r = ade_http_new(opts, &e->http);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

int ade_entra_new_secret(const char *authority, const char *tenant, const char *client_id, const AdeSecret *secret,
        const AdeHttpOptions *opts, AdeEntra **ret) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        int r;

        assert(ret);

        if (!secret || secret->size == 0)
                return -EINVAL;
        r = entra_new(authority, tenant, client_id, opts, &e);
        if (r < 0)
                return r;
        r = ade_secret_new_from(secret->data, secret->size, &e->secret);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

int ade_entra_new_certificate(const char *authority, const char *tenant, const char *client_id, const char *cert_file,
        const char *key_file, const AdeHttpOptions *opts, AdeEntra **ret) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        FILE *f;
        int r;

        assert(ret);

        if (isempty(cert_file))
                return -EINVAL;
        r = entra_new(authority, tenant, client_id, opts, &e);
        if (r < 0)
                return r;

        f = fopen(cert_file, "re");
        if (!f)
                return ade_log_debug_errno(-errno, "Cannot open certificate %s: %m", cert_file);
        e->cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (!e->cert)
                return ade_log_debug_errno(-EINVAL, "%s holds no PEM certificate", cert_file);

        f = fopen(key_file ?: cert_file, "re");
        if (!f)
                return ade_log_debug_errno(-errno, "Cannot open private key %s: %m", key_file ?: cert_file);
        e->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!e->key)
                return ade_log_debug_errno(-EINVAL, "%s holds no PEM private key", key_file ?: cert_file);
        if (EVP_PKEY_get_base_id(e->key) != EVP_PKEY_RSA)
                return ade_log_debug_errno(-EINVAL, "The key in %s is not RSA", key_file ?: cert_file);
        if (X509_check_private_key(e->cert, e->key) != 1)
                return ade_log_debug_errno(-EINVAL, "The key in %s does not belong to the certificate in %s",
                        key_file ?: cert_file, cert_file);

        *ret = TAKE_PTR(e);
        return 0;
}

AdeEntra *ade_entra_free(AdeEntra *e) {
        if (!e)
                return NULL;
        ade_http_free(e->http);
        free(e->authority);
        free(e->tenant);
        free(e->client_id);
        ade_secret_free(e->secret);
        EVP_PKEY_free(e->key);
        X509_free(e->cert);
        free(e);
        return NULL;
}

int ade_entra_set_assertion_alg(AdeEntra *e, const char *alg) {
        assert(e);

        if (streq_ptr(alg, "PS256"))
                e->alg = "PS256";
        else if (streq_ptr(alg, "RS256"))
                e->alg = "RS256";
        else
                return -EINVAL;
        return 0;
}

static char *b64url_json(json_object *o) {
        _cleanup_free_ char *s = ade_json_to_string(o);

        return s ? ade_base64url_encode(s, strlen(s)) : NULL;
}

static int cert_thumbprint(X509 *cert, const EVP_MD *md, char **ret) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (X509_digest(cert, md, d, &n) != 1)
                return -EIO;
        *ret = ade_base64url_encode(d, n);
        return *ret ? 0 : -ENOMEM;
}

int ade_entra_build_assertion(AdeEntra *e, const char *audience, time_t now, char **ret) {
        _cleanup_json_ json_object *header = NULL, *claims = NULL;
        _cleanup_free_ char *x5t = NULL, *x5t256 = NULL, *jti = NULL, *h64 = NULL, *c64 = NULL, *input = NULL,
                            *sig64 = NULL, *jwt = NULL;
        _cleanup_free_ unsigned char *sig = NULL;
        EVP_MD_CTX *ctx = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        size_t sig_len = 0;
        int r;

        assert(e);
        assert(audience);
        assert(ret);

        if (!e->key || !e->cert)
                return -EINVAL;

        if ((r = cert_thumbprint(e->cert, EVP_sha1(), &x5t)) < 0 ||
                (r = cert_thumbprint(e->cert, EVP_sha256(), &x5t256)) < 0 || (r = ade_guid_new(&jti)) < 0)
                return r;

        header = json_object_new_object();
        claims = json_object_new_object();
        if (!header || !claims)
                return -ENOMEM;
        /* Both thumbprints: x5t#S256 is what Entra documents now, x5t what older tenants and MSAL used. */
        if (ade_json_add_string(header, "alg", e->alg) < 0 || ade_json_add_string(header, "typ", "JWT") < 0 ||
                ade_json_add_string(header, "x5t", x5t) < 0 || ade_json_add_string(header, "x5t#S256", x5t256) < 0 ||
                ade_json_add_string(claims, "aud", audience) < 0 ||
                ade_json_add_string(claims, "iss", e->client_id) < 0 ||
                ade_json_add_string(claims, "sub", e->client_id) < 0 || ade_json_add_string(claims, "jti", jti) < 0 ||
                json_object_object_add(claims, "nbf", json_object_new_int64(now)) < 0 ||
                json_object_object_add(claims, "iat", json_object_new_int64(now)) < 0 ||
                json_object_object_add(claims, "exp", json_object_new_int64(now + 600)) < 0)
                return -ENOMEM;

        h64 = b64url_json(header);
        c64 = b64url_json(claims);
        if (!h64 || !c64 || asprintf(&input, "%s.%s", h64, c64) < 0)
                return -ENOMEM;

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        r = -EIO;
        if (EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, e->key) != 1)
                goto finish;
        if (streq(e->alg, "PS256") && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                                              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
                goto finish;
        if (EVP_DigestSign(ctx, NULL, &sig_len, (unsigned char *)input, strlen(input)) != 1)
                goto finish;
        sig = malloc(sig_len);
        if (!sig) {
                r = -ENOMEM;
                goto finish;
        }
        if (EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)input, strlen(input)) != 1)
                goto finish;
        sig64 = ade_base64url_encode(sig, sig_len);
        if (!sig64 || asprintf(&jwt, "%s.%s", input, sig64) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        *ret = TAKE_PTR(jwt);
        r = 0;
finish:
        EVP_MD_CTX_free(ctx);
        return r;
}

/* Appends "&name=escaped(value)" (without '&' when first) to a form body kept in a secret. */
static int form_append(AdeSecret **body, size_t *len, const char *name, const void *value, size_t size) {
        _cleanup_secret_ AdeSecret *n = NULL;
        size_t need = strlen(name) + 2 + size * 3;
        size_t l = *len;
        int r;

        if ((*body)->size - l < need + 1) {
                r = ade_secret_new((*body)->size * 2 + need + 1, &n);
                if (r < 0)
                        return r;
                memcpy(n->data, (*body)->data, l);
                ade_secret_free(*body);
                *body = TAKE_PTR(n);
        }

        char *p = (char *)(*body)->data + l;
        if (l > 0)
                *p++ = '&';
        p = stpcpy(p, name);
        *p++ = '=';
        for (size_t i = 0; i < size; i++) {
                unsigned char c = ((const unsigned char *)value)[i];

                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '.' || c == '_' || c == '~')
                        *p++ = (char)c;
                else
                        p += sprintf(p, "%%%02X", c);
        }
        *len = p - (char *)(*body)->data;
        return 0;
}

static int form_append_str(AdeSecret **body, size_t *len, const char *name, const char *value) {
        return form_append(body, len, name, value, strlen(value));
}

int ade_entra_get_token(AdeEntra *e, const char *scope, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
        _cleanup_http_response_ AdeHttpResponse resp = {};
        _cleanup_secret_ AdeSecret *body = NULL, *token = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *sc = NULL, *path = NULL, *url = NULL, *assertion = NULL;
        const char *access_token;
        size_t len = 0;
        int64_t expires_in;
        int r;

        assert(e);
        assert(scope);
        assert(ret_token);
        assert(ret_expires_on);

        tenant = isempty(tenant) ? e->tenant : tenant;
        r = ade_credential_resource_to_scope(scope, &sc);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/oauth2/v2.0/token", tenant) < 0)
                return -ENOMEM;
        r = ade_url_join(e->authority, path, &url);
        if (r < 0)
                return r;

        r = ade_secret_new(1024, &body);
        if (r < 0)
                return r;
        if ((r = form_append_str(&body, &len, "client_id", e->client_id)) < 0 ||
                (r = form_append_str(&body, &len, "scope", sc)) < 0 ||
                (r = form_append_str(&body, &len, "grant_type", "client_credentials")) < 0)
                return r;
        if (e->secret)
                r = form_append(&body, &len, "client_secret", e->secret->data, e->secret->size);
        else {
                r = ade_entra_build_assertion(e, url, time(NULL), &assertion);
                if (r < 0)
                        return r;
                r = form_append_str(
                        &body, &len, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
                if (r >= 0)
                        r = form_append_str(&body, &len, "client_assertion", assertion);
        }
        if (r < 0)
                return r;

        r = ade_http_request(e->http,
                &(AdeHttpRequest){
                        .method = "POST", .url = url, .headers = headers, .body = body->data, .body_size = len},
                &resp, ret_error);
        if (r < 0)
                return r;

        r = ade_http_reply_json(&resp, url, &o, ret_error);
        if (r < 0) {
                /* Entra refuses bad credentials with 400 (or 401) invalid_client, unauthorized_client or
                 * invalid_grant: that is a refusal of our identity, not a malformed request. */
                if (resp.status == 400 && ret_error &&
                        (streq_ptr(ret_error->code, "invalid_client") ||
                                streq_ptr(ret_error->code, "unauthorized_client") ||
                                streq_ptr(ret_error->code, "invalid_grant")))
                        return -EACCES;
                return r;
        }

        r = ade_json_get_string(o, "access_token", &access_token);
        if (r < 0 || isempty(access_token) || ade_json_get_int64_lenient(o, "expires_in", &expires_in) < 0 ||
                expires_in <= 0) {
                ade_json_wipe_string(o, "access_token");
                (void)ade_cloud_error_set(
                        ret_error, resp.status, "MalformedReply", "token answer lacks access_token or expires_in", url);
                return -EPROTO;
        }
        r = ade_secret_new_from(access_token, strlen(access_token), &token);
        ade_json_wipe_string(o, "access_token");
        if (r < 0)
                return r;

        *ret_token = TAKE_PTR(token);
        *ret_expires_on = (uint64_t)time(NULL) + (uint64_t)expires_in;
        return 0;
}

typedef struct EntraCredential {
        AdeEntra *entra;
        bool own;
} EntraCredential;

static void entra_credential_free(void *p) {
        EntraCredential *c = p;

        if (!c)
                return;
        if (c->own)
                ade_entra_free(c->entra);
        free(c);
}

static int entra_credential_fetch(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        EntraCredential *c = userdata;

        /* The app lives in its configured tenant; a challenge naming another one is not followed. */
        return ade_entra_get_token(c->entra, resource, NULL, ret_token, ret_expires_on, ret_error);
}

int ade_entra_credential_new(AdeEntra *e, bool take_entra, AdeCredential **ret) {
        EntraCredential *c;
        int r;

        assert(e);
        assert(ret);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->entra = e;
        r = ade_credential_new(entra_credential_fetch, c, entra_credential_free, ret);
        if (r < 0) {
                free(c);
                return r;
        }
        c->own = take_entra;
        return 0;
}
