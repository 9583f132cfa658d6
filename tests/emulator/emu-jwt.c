/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON Web Tokens: the emulator signs its access tokens (RS256) and verifies client assertions
 * (RS256 or PS256) with the app certificate's public key. */

#include <openssl/rsa.h>

#include "ade-base64.h"
#include "emu.h"

static void md_ctx_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

static char *b64url_json(json_object *o) {
        _cleanup_free_ char *s = ade_json_to_string(o);

        if (!s)
                return NULL;
        return ade_base64url_encode(s, strlen(s));
}

int emu_jwt_sign(EVP_PKEY *key, const char *kid, json_object *claims, char **ret) {
        _cleanup_json_ json_object *header = json_object_new_object(), *owned = claims;
        _cleanup_free_ char *h = NULL, *p = NULL, *input = NULL, *sig64 = NULL, *out = NULL;
        _cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        _cleanup_free_ unsigned char *sig = NULL;
        size_t n = 0;

        if (!header || !md || !claims)
                return -ENOMEM;
        if (ade_json_add_string(header, "typ", "JWT") < 0 || ade_json_add_string(header, "alg", "RS256") < 0 ||
                ade_json_add_string(header, "kid", kid) < 0 || ade_json_add_string(header, "x5t", kid) < 0)
                return -ENOMEM;
        h = b64url_json(header);
        p = b64url_json(claims);
        if (!h || !p || asprintf(&input, "%s.%s", h, p) < 0)
                return -ENOMEM;

        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
                EVP_DigestSign(md, NULL, &n, (const unsigned char *)input, strlen(input)) <= 0)
                return -EIO;
        sig = malloc(n);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(md, sig, &n, (const unsigned char *)input, strlen(input)) <= 0)
                return -EIO;
        sig64 = ade_base64url_encode(sig, n);
        if (!sig64 || asprintf(&out, "%s.%s", input, sig64) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

static int decode_part(const char *s, size_t len, json_object **ret) {
        _cleanup_free_ void *raw = NULL;
        size_t size;
        int r;

        r = ade_base64_decode(s, len, &raw, &size);
        if (r < 0)
                return -EBADMSG;
        r = ade_json_parse(raw, size, ret);
        if (r < 0)
                return -EBADMSG;
        if (!json_object_is_type(*ret, json_type_object)) {
                json_object_put(TAKE_PTR(*ret));
                return -EBADMSG;
        }
        return 0;
}

int emu_jwt_decode(const char *jwt, json_object **ret_header, json_object **ret_claims) {
        _cleanup_json_ json_object *header = NULL, *claims = NULL;
        const char *dot1, *dot2;
        int r;

        dot1 = strchr(jwt, '.');
        if (!dot1)
                return -EBADMSG;
        dot2 = strchr(dot1 + 1, '.');
        if (!dot2 || strchr(dot2 + 1, '.'))
                return -EBADMSG;
        r = decode_part(jwt, (size_t)(dot1 - jwt), &header);
        if (r < 0)
                return r;
        r = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims);
        if (r < 0)
                return r;
        if (ret_header)
                *ret_header = TAKE_PTR(header);
        if (ret_claims)
                *ret_claims = TAKE_PTR(claims);
        return 0;
}

int emu_jwt_verify(EVP_PKEY *key, const char *jwt, json_object **ret_header, json_object **ret_claims) {
        _cleanup_json_ json_object *header = NULL, *claims = NULL;
        _cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        _cleanup_free_ void *sig = NULL;
        EVP_PKEY_CTX *pctx = NULL;
        const char *alg, *dot2;
        size_t sig_size;
        bool pss;
        int r;

        if (!md)
                return -ENOMEM;
        r = emu_jwt_decode(jwt, &header, &claims);
        if (r < 0)
                return r;
        if (ade_json_get_string(header, "alg", &alg) < 0)
                return -EBADMSG;
        if (streq(alg, "RS256"))
                pss = false;
        else if (streq(alg, "PS256"))
                pss = true;
        else
                return -EPERM;

        dot2 = strrchr(jwt, '.');
        r = ade_base64_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sig_size);
        if (r < 0)
                return -EBADMSG;

        if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key) <= 0)
                return -EIO;
        if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
                           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) <= 0))
                return -EIO;
        if (EVP_DigestVerify(md, sig, sig_size, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) != 1)
                return -EPERM;

        if (ret_header)
                *ret_header = TAKE_PTR(header);
        if (ret_claims)
                *ret_claims = TAKE_PTR(claims);
        return 0;
}
