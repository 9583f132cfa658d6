/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The emulator's keys and certificates: a test CA kept in DIR, a fresh server certificate for the
 * loopback and Azure host names, the Entra app's certificate, and RSA for Key Vault's algorithms. */

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ade-base64.h"
#include "emu.h"

static void x509_freep(X509 **x) {
        X509_free(*x);
}

static void evp_pkey_freep(EVP_PKEY **k) {
        EVP_PKEY_free(*k);
}

static void evp_pkey_ctx_freep(EVP_PKEY_CTX **c) {
        EVP_PKEY_CTX_free(*c);
}

static void bio_freep(BIO **b) {
        BIO_free(*b);
}

int emu_rsa_generate(unsigned bits, EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_RSA_gen(bits);

        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

/* JWK curve names (RFC 7518, and Key Vault's P-256K) to OpenSSL's. */
static const char *ec_curve_openssl(const char *crv) {
        static const char *const map[][2] = {
                {"P-256", "P-256"}, {"P-384", "P-384"}, {"P-521", "P-521"}, {"P-256K", "secp256k1"}};

        for (size_t i = 0; crv && i < ELEMENTSOF(map); i++)
                if (streq(crv, map[i][0]))
                        return map[i][1];
        return NULL;
}

int emu_ec_generate(const char *crv, EVP_PKEY **ret) {
        const char *name = ec_curve_openssl(crv);
        EVP_PKEY *k;

        if (!name)
                return -EINVAL;
        k = EVP_EC_gen(name);
        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

static int ec_coordinate_b64url(EVP_PKEY *key, const char *param, size_t size, char **ret) {
        _cleanup_free_ unsigned char *buf = malloc(size);
        BIGNUM *bn = NULL;
        int n;

        if (!buf)
                return -ENOMEM;
        if (!EVP_PKEY_get_bn_param(key, param, &bn))
                return -EIO;
        n = BN_bn2binpad(bn, buf, (int)size);
        BN_free(bn);
        if (n < 0)
                return -EIO;
        *ret = ade_base64url_encode(buf, size);
        return *ret ? 0 : -ENOMEM;
}

int emu_ec_public_xy(EVP_PKEY *key, char **ret_x, char **ret_y) {
        _cleanup_free_ char *x = NULL, *y = NULL;
        int bits = EVP_PKEY_get_bits(key), r;
        size_t size;

        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || bits <= 0)
                return -EINVAL;
        size = ((size_t)bits + 7) / 8;
        r = ec_coordinate_b64url(key, OSSL_PKEY_PARAM_EC_PUB_X, size, &x);
        if (r < 0)
                return r;
        r = ec_coordinate_b64url(key, OSSL_PKEY_PARAM_EC_PUB_Y, size, &y);
        if (r < 0)
                return r;
        *ret_x = TAKE_PTR(x);
        *ret_y = TAKE_PTR(y);
        return 0;
}

static int ec_generate(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_EC_gen("P-256");

        if (!k)
                return -ENOMEM;
        *ret = k;
        return 0;
}

int emu_pem_load_key(const char *path, EVP_PKEY **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        EVP_PKEY *k;

        if (!f)
                return -errno;
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!k)
                return -EBADMSG;
        *ret = k;
        return 0;
}

/* Writes @data to a temporary file next to @path and renames it over @path. */
static int write_file_atomic(const char *path, const char *data, size_t size, mode_t mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;

        if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, mode) < 0)
                goto fail;
        while (done < size) {
                ssize_t n = write(fd, data + done, size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                done += (size_t)n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                goto fail;
        return 0;
fail:;
        int r = -errno;
        (void)unlink(tmp);
        return r;
}

int emu_write_file_atomic(const char *path, const char *data, size_t size, mode_t mode) {
        return write_file_atomic(path, data, size, mode);
}

char *emu_pem_key_string(EVP_PKEY *key) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;

        if (!b || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
                return NULL;
        n = BIO_get_mem_data(b, &data);
        return strndup(data, (size_t)n);
}

int emu_pem_key_from_string(const char *pem, EVP_PKEY **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *k;

        if (!b)
                return -ENOMEM;
        k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        if (!k)
                return -EBADMSG;
        *ret = k;
        return 0;
}

int emu_pem_save_key(const char *path, EVP_PKEY *key) {
        _cleanup_free_ char *pem = emu_pem_key_string(key);

        if (!pem)
                return -ENOMEM;
        return write_file_atomic(path, pem, strlen(pem), 0600);
}

static char *cert_pem_string(X509 *cert) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;

        if (!b || !PEM_write_bio_X509(b, cert))
                return NULL;
        n = BIO_get_mem_data(b, &data);
        return strndup(data, (size_t)n);
}

static int load_cert(const char *path, X509 **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        X509 *x;

        if (!f)
                return -errno;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

static int save_cert(const char *path, X509 *cert) {
        _cleanup_free_ char *pem = cert_pem_string(cert);

        if (!pem)
                return -ENOMEM;
        return write_file_atomic(path, pem, strlen(pem), 0644);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -ENOMEM;
}

/* A certificate for @key named @cn, signed by @issuer_key (self-signed when @issuer is NULL). */
static int make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca, const char *san,
        long days, X509 **ret) {
        _cleanup_(x509_freep) X509 *x = X509_new();
        unsigned char serial[12];
        BIGNUM *bn;
        X509_NAME *name;
        int r;

        if (!x)
                return -ENOMEM;
        if (RAND_bytes(serial, sizeof(serial)) != 1)
                return -EIO;
        serial[0] &= 0x7f;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn)
                return -ENOMEM;
        r = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ? 0 : -ENOMEM;
        BN_free(bn);
        if (r < 0)
                return r;

        if (!X509_set_version(x, 2) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
                !X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L) || !X509_set_pubkey(x, key))
                return -ENOMEM;
        name = X509_get_subject_name(x);
        if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"ade test", -1, -1, 0) ||
                !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0))
                return -ENOMEM;
        if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
                return -ENOMEM;

        r = add_ext(x, issuer ?: x, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        if (r >= 0)
                r = add_ext(x, issuer ?: x, NID_key_usage,
                        ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
        if (r >= 0)
                r = add_ext(x, issuer ?: x, NID_subject_key_identifier, "hash");
        if (r >= 0 && issuer)
                r = add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
        if (r >= 0 && !ca && issuer)
                r = add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
        if (r >= 0 && san)
                r = add_ext(x, issuer ?: x, NID_subject_alt_name, san);
        if (r < 0)
                return r;

        if (!X509_sign(x, issuer_key, EVP_sha256()))
                return -EINVAL;
        *ret = TAKE_PTR(x);
        return 0;
}

int emu_tls_setup(const char *dir, char **ret_cert_pem, char **ret_key_pem) {
        _cleanup_(x509_freep) X509 *ca = NULL, *server = NULL;
        _cleanup_(evp_pkey_freep) EVP_PKEY *ca_key = NULL, *server_key = NULL;
        _cleanup_free_ char *ca_path = NULL, *ca_key_path = NULL, *cert_pem = NULL, *key_pem = NULL;
        int r;

        if (asprintf(&ca_path, "%s/ca.pem", dir) < 0 || asprintf(&ca_key_path, "%s/ca.key", dir) < 0)
                return -ENOMEM;

        if (load_cert(ca_path, &ca) < 0 || emu_pem_load_key(ca_key_path, &ca_key) < 0) {
                X509_free(TAKE_PTR(ca));
                EVP_PKEY_free(TAKE_PTR(ca_key));
                /* P-256 keeps start-up fast; every TLS stack in use here takes ECDSA. */
                r = ec_generate(&ca_key);
                if (r < 0)
                        return r;
                r = make_cert(ca_key, "ade emulator test CA", NULL, ca_key, true, NULL, 3650, &ca);
                if (r < 0)
                        return r;
                r = emu_pem_save_key(ca_key_path, ca_key);
                if (r < 0)
                        return r;
                r = save_cert(ca_path, ca);
                if (r < 0)
                        return r;
        }

        r = ec_generate(&server_key);
        if (r < 0)
                return r;
        r = make_cert(server_key, "localhost", ca, ca_key, false,
                "DNS:localhost,DNS:other.localhost,IP:127.0.0.1,DNS:*.vault.azure.net,DNS:management.azure.com,"
                "DNS:login.microsoftonline.com,DNS:login.windows.net",
                365, &server);
        if (r < 0)
                return r;

        cert_pem = cert_pem_string(server);
        key_pem = emu_pem_key_string(server_key);
        if (!cert_pem || !key_pem)
                return -ENOMEM;
        *ret_cert_pem = TAKE_PTR(cert_pem);
        *ret_key_pem = TAKE_PTR(key_pem);
        return 0;
}

int emu_app_cert_setup(const char *dir, X509 **ret) {
        _cleanup_(x509_freep) X509 *cert = NULL;
        _cleanup_(evp_pkey_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *cert_path = NULL, *key_path = NULL;
        int r;

        if (asprintf(&cert_path, "%s/app-cert.pem", dir) < 0 || asprintf(&key_path, "%s/app-key.pem", dir) < 0)
                return -ENOMEM;

        if (load_cert(cert_path, &cert) >= 0 && emu_pem_load_key(key_path, &key) >= 0) {
                *ret = TAKE_PTR(cert);
                return 0;
        }
        X509_free(TAKE_PTR(cert));
        EVP_PKEY_free(TAKE_PTR(key));

        r = emu_rsa_generate(2048, &key);
        if (r < 0)
                return r;
        r = make_cert(key, "ade-test-app", NULL, key, false, NULL, 365, &cert);
        if (r < 0)
                return r;
        r = emu_pem_save_key(key_path, key);
        if (r < 0)
                return r;
        r = save_cert(cert_path, cert);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cert);
        return 0;
}

int emu_cert_thumbprints(X509 *cert, char **ret_x5t, char **ret_x5t_s256) {
        unsigned char sha1[EVP_MAX_MD_SIZE], sha256[EVP_MAX_MD_SIZE];
        unsigned n1 = 0, n256 = 0;
        _cleanup_free_ char *a = NULL, *b = NULL;

        if (!X509_digest(cert, EVP_sha1(), sha1, &n1) || !X509_digest(cert, EVP_sha256(), sha256, &n256))
                return -EINVAL;
        a = ade_base64url_encode(sha1, n1);
        b = ade_base64url_encode(sha256, n256);
        if (!a || !b)
                return -ENOMEM;
        *ret_x5t = TAKE_PTR(a);
        *ret_x5t_s256 = TAKE_PTR(b);
        return 0;
}

static int rsa_setup(EVP_PKEY_CTX *ctx, const char *alg) {
        const EVP_MD *md;

        if (streq(alg, "RSA1_5"))
                return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 ? 0 : -EIO;
        if (streq(alg, "RSA-OAEP"))
                md = EVP_sha1(); /* RFC 3447's defaults: SHA-1 and MGF1 with SHA-1 */
        else if (streq(alg, "RSA-OAEP-256"))
                md = EVP_sha256();
        else
                return -EINVAL;
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
                EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) <= 0)
                return -EIO;
        return 0;
}

static int rsa_crypt(
        EVP_PKEY *key, const char *alg, bool encrypt, const void *in, size_t in_size, void **ret, size_t *ret_size) {
        _cleanup_(evp_pkey_ctx_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
        _cleanup_free_ unsigned char *out = NULL;
        size_t n = 0;
        int r;

        if (!ctx)
                return -ENOMEM;
        if ((encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0)
                return -EIO;
        r = rsa_setup(ctx, alg);
        if (r < 0)
                return r;
        if ((encrypt ? EVP_PKEY_encrypt(ctx, NULL, &n, in, in_size) : EVP_PKEY_decrypt(ctx, NULL, &n, in, in_size)) <=
                0)
                return -EBADMSG;
        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        if ((encrypt ? EVP_PKEY_encrypt(ctx, out, &n, in, in_size) : EVP_PKEY_decrypt(ctx, out, &n, in, in_size)) <= 0)
                return -EBADMSG;
        *ret = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}

int emu_rsa_encrypt(EVP_PKEY *key, const char *alg, const void *in, size_t in_size, void **ret, size_t *ret_size) {
        return rsa_crypt(key, alg, true, in, in_size, ret, ret_size);
}

int emu_rsa_decrypt(EVP_PKEY *key, const char *alg, const void *in, size_t in_size, void **ret, size_t *ret_size) {
        return rsa_crypt(key, alg, false, in, in_size, ret, ret_size);
}
