/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Entra client pieces that need no server: the certificate's client assertion (verified here with
 * OpenSSL as an independent judge), GUIDs, scope/resource forms, and the credential's token cache. */
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-base64.h"
#include "ade-entra.h"
#include "ade-identity.h"
#include "ade-json.h"
#include "ade-test.h"
#include "ade-credential.h"
#include "ade-jwt.h"

static char tmpdir[] = "/tmp/ade-test-entra-XXXXXX";
static char cert_path[256], key_path[256], other_key_path[256], both_path[256];

/* Set-up runs before Check's runner, where ck_assert cannot report. */
#define must(x)                                                                                                        \
        do {                                                                                                           \
                if (!(x)) {                                                                                            \
                        fprintf(stderr, "set-up failed: %s\n", #x);                                                    \
                        exit(EXIT_FAILURE);                                                                            \
                }                                                                                                      \
        } while (0)

static void write_pem(const char *path, X509 *x, EVP_PKEY *k) {
        FILE *f = fopen(path, "we");

        must(f);
        if (x)
                must(PEM_write_X509(f, x) == 1);
        if (k)
                must(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
        fclose(f);
}

static void make_files(void) {
        EVP_PKEY *k = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048);
        X509 *x = X509_new();
        X509_NAME *n;

        must(mkdtemp(tmpdir));
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, k);
        n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ade-test-app", -1, -1, 0);
        X509_set_issuer_name(x, n);
        must(X509_sign(x, k, EVP_sha256()) > 0);

        snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", tmpdir);
        snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
        snprintf(other_key_path, sizeof(other_key_path), "%s/other.pem", tmpdir);
        snprintf(both_path, sizeof(both_path), "%s/both.pem", tmpdir);
        write_pem(cert_path, x, NULL);
        write_pem(key_path, NULL, k);
        write_pem(other_key_path, NULL, other);
        write_pem(both_path, x, k);
        X509_free(x);
        EVP_PKEY_free(k);
        EVP_PKEY_free(other);
}

static void cleanup_files(void) {
        unlink(cert_path);
        unlink(key_path);
        unlink(other_key_path);
        unlink(both_path);
        rmdir(tmpdir);
}

static json_object *decode_part(const char *s, size_t len) {
        _cleanup_free_ void *raw = NULL;
        json_object *o = NULL;
        size_t size;

        ck_assert_int_eq(ade_base64_decode(s, len, &raw, &size), 0);
        ck_assert_int_eq(ade_json_parse(raw, size, &o), 0);
        return o;
}

/* Checks the JWT's signature with the certificate's public key, the way Entra does. */
static void verify_assertion(const char *jwt, const char *alg) {
        _cleanup_free_ void *sig = NULL;
        _cleanup_json_ json_object *header = NULL;
        const char *dot1 = strchr(jwt, '.'), *dot2 = strrchr(jwt, '.'), *s;
        FILE *f = fopen(cert_path, "re");
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        EVP_PKEY *pub = X509_get_pubkey(x);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        unsigned char d[32];
        unsigned dl = 0;
        _cleanup_free_ char *thumb = NULL;
        size_t sig_len;

        fclose(f);
        ck_assert_ptr_ne(dot1, dot2);
        header = decode_part(jwt, dot1 - jwt);
        ck_assert_int_eq(ade_json_get_string(header, "alg", &s), 0);
        ck_assert_str_eq(s, alg);
        ck_assert_int_eq(ade_json_get_string(header, "typ", &s), 0);
        ck_assert_str_eq(s, "JWT");
        ck_assert_int_eq(X509_digest(x, EVP_sha256(), d, &dl), 1);
        thumb = ade_base64url_encode(d, dl);
        ck_assert_int_eq(ade_json_get_string(header, "x5t#S256", &s), 0);
        ck_assert_str_eq(s, thumb);

        ck_assert_int_eq(ade_base64_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sig_len), 0);
        ck_assert_int_eq(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pub), 1);
        if (streq(alg, "PS256")) {
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO), 1);
        }
        ck_assert_int_eq(EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)jwt, dot2 - jwt), 1);
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pub);
        X509_free(x);
}

START_TEST(test_assertion_ps256_verifies) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        _cleanup_free_ char *jwt = NULL;

        ck_assert_int_eq(ade_entra_new_certificate(
                                 "https://login.microsoftonline.com", "tid", "app-id", cert_path, key_path, NULL, &e),
                0);
        ck_assert_int_eq(ade_entra_build_assertion(
                                 e, "https://login.microsoftonline.com/tid/oauth2/v2.0/token", 1700000000, &jwt),
                0);
        verify_assertion(jwt, "PS256");
}
END_TEST

START_TEST(test_assertion_rs256_verifies) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        _cleanup_free_ char *jwt = NULL;

        ck_assert_int_eq(ade_entra_new_certificate(
                                 "https://login.microsoftonline.com", "tid", "app-id", both_path, NULL, NULL, &e),
                0);
        ck_assert_int_eq(ade_entra_set_assertion_alg(e, "RS256"), 0);
        ck_assert_int_eq(ade_entra_build_assertion(e, "aud", 1700000000, &jwt), 0);
        verify_assertion(jwt, "RS256");
}
END_TEST

START_TEST(test_assertion_claims) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;
        _cleanup_free_ char *jwt = NULL;
        _cleanup_json_ json_object *claims = NULL;
        const char *s;
        int64_t v;

        ck_assert_int_eq(
                ade_entra_new_certificate("https://localhost:8443", "tid", "app-id", cert_path, key_path, NULL, &e), 0);
        ck_assert_int_eq(
                ade_entra_build_assertion(e, "https://localhost:8443/tid/oauth2/v2.0/token", 1700000000, &jwt), 0);
        ck_assert_int_eq(ade_jwt_get_claims(jwt, strlen(jwt), &claims), 0);
        ck_assert_int_eq(ade_json_get_string(claims, "aud", &s), 0);
        ck_assert_str_eq(s, "https://localhost:8443/tid/oauth2/v2.0/token");
        ck_assert_int_eq(ade_json_get_string(claims, "iss", &s), 0);
        ck_assert_str_eq(s, "app-id");
        ck_assert_int_eq(ade_json_get_string(claims, "sub", &s), 0);
        ck_assert_str_eq(s, "app-id");
        ck_assert_int_eq(ade_json_get_string(claims, "jti", &s), 0);
        ck_assert_uint_eq(strlen(s), 36);
        ck_assert_int_eq(ade_json_get_int64(claims, "nbf", &v), 0);
        ck_assert_int_eq(v, 1700000000);
        ck_assert_int_eq(ade_json_get_int64(claims, "exp", &v), 0);
        ck_assert_int_eq(v, 1700000600);
}
END_TEST

START_TEST(test_certificate_with_foreign_key_refused) {
        AdeEntra *e = NULL;

        ck_assert_int_eq(ade_entra_new_certificate("https://login.microsoftonline.com", "tid", "app", cert_path,
                                 other_key_path, NULL, &e),
                -EINVAL);
        ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_certificate_file_without_key_refused) {
        AdeEntra *e = NULL;

        /* The certificate file alone holds no private key. */
        ck_assert_int_eq(
                ade_entra_new_certificate("https://login.microsoftonline.com", "tid", "app", cert_path, NULL, NULL, &e),
                -EINVAL);
        ck_assert_int_eq(ade_entra_new_certificate(
                                 "https://login.microsoftonline.com", "tid", "app", key_path, key_path, NULL, &e),
                -EINVAL);
        ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_certificate_missing_file_refused) {
        AdeEntra *e = NULL;

        ck_assert_int_eq(ade_entra_new_certificate(
                                 "https://login.microsoftonline.com", "tid", "app", "/nonexistent.pem", NULL, NULL, &e),
                -ENOENT);
        ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_unknown_assertion_alg_refused) {
        _cleanup_(ade_entra_freep) AdeEntra *e = NULL;

        ck_assert_int_eq(ade_entra_new_certificate("https://a", "tid", "app", both_path, NULL, NULL, &e), 0);
        ck_assert_int_eq(ade_entra_set_assertion_alg(e, "HS256"), -EINVAL);
        ck_assert_int_eq(ade_entra_set_assertion_alg(e, NULL), -EINVAL);
}
END_TEST

START_TEST(test_secret_client_needs_tenant_and_id) {
        _cleanup_secret_ AdeSecret *s = NULL;
        AdeEntra *e = NULL;

        ck_assert_int_eq(ade_secret_new_from("pw", 2, &s), 0);
        ck_assert_int_eq(ade_entra_new_secret("https://a", NULL, "app", s, NULL, &e), -EINVAL);
        ck_assert_int_eq(ade_entra_new_secret("https://a", "tid", "", s, NULL, &e), -EINVAL);
        ck_assert_int_eq(ade_entra_new_secret("login.microsoftonline.com", "tid", "app", s, NULL, &e), -EINVAL);
        ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_guid_shape) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        ck_assert_int_eq(ade_guid_new(&a), 0);
        ck_assert_int_eq(ade_guid_new(&b), 0);
        ck_assert_uint_eq(strlen(a), 36);
        ck_assert_int_eq(a[8], '-');
        ck_assert_int_eq(a[14], '4');
        ck_assert(strchr("89ab", a[19]));
        ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_resource_scope_forms) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        ck_assert_int_eq(ade_credential_resource_to_scope("https://vault.azure.net", &a), 0);
        ck_assert_str_eq(a, "https://vault.azure.net/.default");
        ck_assert_int_eq(ade_credential_resource_to_scope("https://management.azure.com/", &b), 0);
        ck_assert_str_eq(b, "https://management.azure.com/.default");
        ck_assert_int_eq(ade_credential_scope_to_resource("https://test.vault.azure.net/.default", &c), 0);
        ck_assert_str_eq(c, "https://test.vault.azure.net");
        ck_assert_int_eq(ade_credential_scope_to_resource("https://vault.azure.net", &d), 0);
        ck_assert_str_eq(d, "https://vault.azure.net");
}
END_TEST

START_TEST(test_jwt_claims_refuses_garbage) {
        json_object *o = NULL;

        ck_assert_int_eq(ade_jwt_get_claims("abc", 3, &o), -EBADMSG);
        ck_assert_int_eq(ade_jwt_get_claims("a..c", 4, &o), -EBADMSG);
        ck_assert_int_eq(ade_jwt_get_claims("a.!!!.c", 7, &o), -EBADMSG);
        ck_assert_ptr_null(o);
}
END_TEST

/* A fake token source: counts calls, hands out "tok-N" expiring at *expiry. */
typedef struct Fake {
        unsigned calls;
        uint64_t expires_on;
        int fail;
} Fake;

static int fake_fetch(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        Fake *f = userdata;
        char buf[32];

        if (f->fail) {
                (void)ade_cloud_error_set(ret_error, 400, "invalid_request", "Identity not found", "http://imds");
                return f->fail;
        }
        f->calls++;
        snprintf(buf, sizeof(buf), "tok-%u", f->calls);
        *ret_expires_on = f->expires_on;
        return ade_secret_new_from(buf, strlen(buf), ret_token);
}

START_TEST(test_cache_serves_second_call) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        Fake f = {.expires_on = (uint64_t)time(NULL) + 3600};
        _cleanup_secret_ AdeSecret *t1 = NULL, *t = NULL;

        ck_assert_int_eq(ade_credential_new(fake_fetch, &f, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://vault.azure.net", "t", NULL, &t1, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://vault.azure.net", "t", NULL, &t, NULL), 0);
        ck_assert_str_eq((char *)t->data, "tok-1");
        ck_assert_uint_eq(f.calls, 1);
        ck_assert_uint_eq(ade_credential_fetch_count(c), 1);
}
END_TEST

START_TEST(test_cache_is_per_resource) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        Fake f = {.expires_on = (uint64_t)time(NULL) + 3600};
        _cleanup_secret_ AdeSecret *t1 = NULL, *t2 = NULL, *t3 = NULL;

        ck_assert_int_eq(ade_credential_new(fake_fetch, &f, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://vault.azure.net", NULL, NULL, &t1, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "https://management.azure.com/", NULL, NULL, &t2, NULL), 0);
        ck_assert_str_eq((char *)t2->data, "tok-2");
        ck_assert_int_eq(ade_credential_get_token(c, "https://vault.azure.net", NULL, NULL, &t3, NULL), 0);
        ck_assert_str_eq((char *)t3->data, "tok-1");
        ck_assert_uint_eq(f.calls, 2);
}
END_TEST

START_TEST(test_cache_refetches_near_expiry) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        /* Inside the refresh margin: treated as expired. */
        Fake f = {.expires_on = (uint64_t)time(NULL) + ADE_CREDENTIAL_REFRESH_MARGIN_SEC / 2};
        _cleanup_secret_ AdeSecret *t1 = NULL, *t = NULL;

        ck_assert_int_eq(ade_credential_new(fake_fetch, &f, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &t1, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &t, NULL), 0);
        ck_assert_str_eq((char *)t->data, "tok-2");
}
END_TEST

START_TEST(test_cache_force_refresh) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        Fake f = {.expires_on = (uint64_t)time(NULL) + 3600};
        _cleanup_secret_ AdeSecret *t1 = NULL, *t = NULL;

        /* A token the service refused is replaced. */
        ck_assert_int_eq(ade_credential_new(fake_fetch, &f, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &t1, NULL), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, t1, &t, NULL), 0);
        ck_assert_str_eq((char *)t->data, "tok-2");
        ck_assert_uint_eq(f.calls, 2);
}
END_TEST

START_TEST(test_cache_fetch_error_passes_through) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        Fake f = {.fail = -EINVAL};
        AdeSecret *t = NULL;

        ck_assert_int_eq(ade_credential_new(fake_fetch, &f, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &t, &e), -EINVAL);
        ck_assert_ptr_null(t);
        ck_assert_str_eq(e.code, "invalid_request");
        ck_assert_uint_eq(ade_credential_fetch_count(c), 0);
}
END_TEST

/* A client secret others can read is no secret: ade refuses a file that group or others may read
 * or write, or that someone else owns, and says how to fix it. */
START_TEST(test_client_secret_file_permissions) {
        _cleanup_secret_ AdeSecret *s = NULL;
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "%s/app-secret", tmpdir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "s3cret\n", 7), 7);
        close(fd);

        ck_assert_int_eq(ade_identity_read_client_secret(path, &s), 0);
        ck_assert_int_eq(s->size, 6);
        s = ade_secret_free(s);

        static const mode_t loose[] = {0604, 0640, 0620, 0602, 0644};
        for (size_t i = 0; i < ELEMENTSOF(loose); i++) {
                ck_assert_int_eq(chmod(path, loose[i]), 0);
                ck_assert_int_eq(ade_identity_read_client_secret(path, &s), -EACCES);
                ck_assert_ptr_null(s);
        }
        ck_assert_int_eq(chmod(path, 0400), 0);
        ck_assert_int_eq(ade_identity_read_client_secret(path, &s), 0);
        s = ade_secret_free(s);

        if (geteuid() == 0) {
                ck_assert_int_eq(chown(path, 65534, 65534), 0);
                ck_assert_int_eq(ade_identity_read_client_secret(path, &s), -EACCES);
                ck_assert_ptr_null(s);
        }
        ck_assert_int_eq(unlink(path), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("entra");
        TCase *tc = ade_test_case("entra");
        int r;

        make_files();
        tcase_add_test(tc, test_assertion_ps256_verifies);
        tcase_add_test(tc, test_assertion_rs256_verifies);
        tcase_add_test(tc, test_assertion_claims);
        tcase_add_test(tc, test_certificate_with_foreign_key_refused);
        tcase_add_test(tc, test_certificate_file_without_key_refused);
        tcase_add_test(tc, test_certificate_missing_file_refused);
        tcase_add_test(tc, test_unknown_assertion_alg_refused);
        tcase_add_test(tc, test_secret_client_needs_tenant_and_id);
        tcase_add_test(tc, test_client_secret_file_permissions);
        tcase_add_test(tc, test_guid_shape);
        tcase_add_test(tc, test_resource_scope_forms);
        tcase_add_test(tc, test_jwt_claims_refuses_garbage);
        tcase_add_test(tc, test_cache_serves_second_call);
        tcase_add_test(tc, test_cache_is_per_resource);
        tcase_add_test(tc, test_cache_refetches_near_expiry);
        tcase_add_test(tc, test_cache_force_refresh);
        tcase_add_test(tc, test_cache_fetch_error_passes_through);
        suite_add_tcase(s, tc);
        r = ade_test_run(s);
        cleanup_files();
        return r;
}
