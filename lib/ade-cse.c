/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "ade-base64.h"
#include "ade-cse.h"
#include "ade-json.h"
#include "ade-log.h"

/* Protocol 2.0 fixes the region size to 4 MiB, but readers take it from the metadata (the SDKs do);
 * a bound keeps a forged value from asking for absurd buffers. */
#define REGION_SIZE_MAX (64ULL * 1024ULL * 1024ULL)
#define REGION_OVERHEAD (ADE_CSE_NONCE_SIZE + ADE_CSE_TAG_SIZE)

static void cipher_ctx_freep(EVP_CIPHER_CTX **c) {
        EVP_CIPHER_CTX_free(*c);
}

AdeCseMetadata *ade_cse_metadata_free(AdeCseMetadata *m) {
        if (!m)
                return NULL;
        free(m->key_id);
        free(m->encrypted_key);
        free(m->algorithm);
        free(m->encryption_library);
        free(m);
        return NULL;
}

uint64_t ade_cse_body_size(uint64_t size, uint64_t region_size) {
        uint64_t regions = region_size ? (size + region_size - 1) / region_size : 0;
        return size + regions * REGION_OVERHEAD;
}

static void region_nonce(uint64_t index, uint8_t nonce[ADE_CSE_NONCE_SIZE]) {
        memset(nonce, 0, ADE_CSE_NONCE_SIZE);
        for (unsigned i = 0; i < 8; i++)
                nonce[ADE_CSE_NONCE_SIZE - 1 - i] = (uint8_t)(index >> (8 * i));
}

/* One region: @n plaintext bytes in, nonce ‖ ciphertext ‖ tag out at @out. */
static int seal_region(
        EVP_CIPHER_CTX *c, const AdeSecret *cek, uint64_t index, const uint8_t *in, size_t n, uint8_t *out) {
        int len = 0, fin = 0;

        region_nonce(index, out);
        if (n > INT_MAX)
                return -EINVAL;
        if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ADE_CSE_NONCE_SIZE, NULL) != 1 ||
                EVP_EncryptInit_ex(c, NULL, NULL, cek->data, out) != 1)
                return -EIO;
        if (n > 0 && EVP_EncryptUpdate(c, out + ADE_CSE_NONCE_SIZE, &len, in, (int)n) != 1)
                return -EIO;
        if (EVP_EncryptFinal_ex(c, out + ADE_CSE_NONCE_SIZE + len, &fin) != 1 || (size_t)len + (size_t)fin != n)
                return -EIO;
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, ADE_CSE_TAG_SIZE, out + ADE_CSE_NONCE_SIZE + n) != 1)
                return -EIO;
        return 0;
}

/* The inverse of seal_region(): -EBADMSG when the nonce is not @index's or the tag does not verify. */
static int open_region(
        EVP_CIPHER_CTX *c, const AdeSecret *cek, uint64_t index, const uint8_t *in, size_t n, uint8_t *out) {
        uint8_t nonce[ADE_CSE_NONCE_SIZE], tag[ADE_CSE_TAG_SIZE];
        int len = 0, fin = 0;

        region_nonce(index, nonce);
        if (memcmp(nonce, in, ADE_CSE_NONCE_SIZE) != 0)
                return -EBADMSG;
        if (n > INT_MAX)
                return -EINVAL;
        memcpy(tag, in + ADE_CSE_NONCE_SIZE + n, ADE_CSE_TAG_SIZE);
        if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, ADE_CSE_NONCE_SIZE, NULL) != 1 ||
                EVP_DecryptInit_ex(c, NULL, NULL, cek->data, nonce) != 1)
                return -EIO;
        if (n > 0 && EVP_DecryptUpdate(c, out, &len, in + ADE_CSE_NONCE_SIZE, (int)n) != 1)
                return -EIO;
        if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, ADE_CSE_TAG_SIZE, tag) != 1)
                return -EIO;
        if (EVP_DecryptFinal_ex(c, out + len, &fin) != 1)
                return -EBADMSG;
        if ((size_t)len + (size_t)fin != n)
                return -EIO;
        return 0;
}

int ade_cse_seal(const AdeSecret *cek, const void *plain, size_t size, void **ret_body, size_t *ret_size) {
        _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *c = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        const uint8_t *in = plain;
        uint64_t total;
        size_t off = 0, out = 0;
        int r;

        if (!cek || cek->size != ADE_CSE_CEK_SIZE || (!plain && size > 0) || !ret_body || !ret_size)
                return -EINVAL;
        total = ade_cse_body_size(size, ADE_CSE_REGION_SIZE);
        if (total > SIZE_MAX - 1)
                return -EFBIG;
        body = malloc(total ? (size_t)total : 1);
        c = EVP_CIPHER_CTX_new();
        if (!body || !c)
                return -ENOMEM;
        for (uint64_t i = 0; off < size; i++) {
                size_t n = size - off < ADE_CSE_REGION_SIZE ? size - off : ADE_CSE_REGION_SIZE;
                r = seal_region(c, cek, i, in + off, n, body + out);
                if (r < 0)
                        return r;
                off += n;
                out += n + REGION_OVERHEAD;
        }
        *ret_body = TAKE_PTR(body);
        *ret_size = out;
        return 0;
}

int ade_cse_open(
        const AdeSecret *cek, uint64_t region_size, const void *body, size_t size, void **ret_plain, size_t *ret_size) {
        _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *c = NULL;
        _cleanup_free_ uint8_t *plain = NULL;
        const uint8_t *in = body;
        size_t off = 0, out = 0;
        int r;

        if (!cek || cek->size != ADE_CSE_CEK_SIZE || (!body && size > 0) || !ret_plain || !ret_size)
                return -EINVAL;
        if (region_size == 0 || region_size > REGION_SIZE_MAX)
                return -EBADMSG;
        plain = malloc(size ? size : 1);
        c = EVP_CIPHER_CTX_new();
        if (!plain || !c)
                return -ENOMEM;
        for (uint64_t i = 0; off < size; i++) {
                size_t left = size - off, n;

                /* Only the last region may be shorter, and none is empty: SDKs write no empty region. */
                if (left >= region_size + REGION_OVERHEAD)
                        n = (size_t)region_size;
                else if (left > REGION_OVERHEAD)
                        n = left - REGION_OVERHEAD;
                else
                        return -EBADMSG;
                r = open_region(c, cek, i, in + off, n, plain + out);
                if (r < 0) {
                        ade_memzero(plain, out + n);
                        return r;
                }
                off += n + REGION_OVERHEAD;
                out += n;
        }
        *ret_plain = TAKE_PTR(plain);
        *ret_size = out;
        return 0;
}

int ade_cse_wrap_input(const AdeSecret *cek, AdeSecret **ret) {
        AdeSecret *s;
        int r;

        if (!cek || cek->size != ADE_CSE_CEK_SIZE || !ret)
                return -EINVAL;
        r = ade_secret_new(ADE_CSE_WRAP_PREFIX_SIZE + ADE_CSE_CEK_SIZE, &s);
        if (r < 0)
                return r;
        memcpy(s->data, ADE_CSE_PROTOCOL, strlen(ADE_CSE_PROTOCOL));
        memcpy(s->data + ADE_CSE_WRAP_PREFIX_SIZE, cek->data, ADE_CSE_CEK_SIZE);
        *ret = s;
        return 0;
}

int ade_cse_cek_from_unwrapped(const AdeSecret *unwrapped, AdeSecret **ret_cek) {
        uint8_t prefix[ADE_CSE_WRAP_PREFIX_SIZE] = {0};

        if (!unwrapped || !ret_cek)
                return -EINVAL;
        memcpy(prefix, ADE_CSE_PROTOCOL, strlen(ADE_CSE_PROTOCOL));
        if (unwrapped->size != ADE_CSE_WRAP_PREFIX_SIZE + ADE_CSE_CEK_SIZE ||
                memcmp(unwrapped->data, prefix, sizeof(prefix)) != 0)
                return -EBADMSG;
        return ade_secret_new_from(unwrapped->data + ADE_CSE_WRAP_PREFIX_SIZE, ADE_CSE_CEK_SIZE, ret_cek);
}

/* Adds @o (NULL: allocation failed) to @parent, dropping it when that fails. */
static int add_value(json_object *parent, const char *key, json_object *o) {
        if (!o)
                return -ENOMEM;
        if (json_object_object_add(parent, key, o) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        return 0;
}

static int add_object(json_object *parent, const char *key, json_object **ret) {
        json_object *o = json_object_new_object();
        int r = add_value(parent, key, o);

        if (r < 0)
                return r;
        *ret = o;
        return 0;
}

static int add_int(json_object *parent, const char *key, int64_t v) {
        return add_value(parent, key, json_object_new_int64(v));
}

int ade_cse_metadata_build(const char *key_id, const char *alg, const char *wrapped, char **ret) {
        _cleanup_json_ json_object *root = NULL;
        _cleanup_free_ void *raw = NULL;
        _cleanup_free_ char *b64 = NULL;
        json_object *wck, *agent, *region, *kwm;
        size_t raw_size;
        char *s;
        int r;

        if (isempty(key_id) || isempty(alg) || isempty(wrapped) || !ret)
                return -EINVAL;
        /* Key Vault answers in base64url; the SDKs store standard base64 with padding. */
        r = ade_base64_decode(wrapped, strlen(wrapped), &raw, &raw_size);
        if (r < 0)
                return r;
        if (raw_size == 0)
                return -EINVAL;
        b64 = ade_base64_encode(raw, raw_size);
        root = json_object_new_object();
        if (!b64 || !root)
                return -ENOMEM;
        /* The SDKs' field order (Java once depended on it). */
        if ((r = add_object(root, "WrappedContentKey", &wck)) < 0 ||
                (r = ade_json_add_string(wck, "KeyId", key_id)) < 0 ||
                (r = ade_json_add_string(wck, "EncryptedKey", b64)) < 0 ||
                (r = ade_json_add_string(wck, "Algorithm", alg)) < 0 ||
                (r = add_object(root, "EncryptionAgent", &agent)) < 0 ||
                (r = ade_json_add_string(agent, "Protocol", ADE_CSE_PROTOCOL)) < 0 ||
                (r = ade_json_add_string(agent, "EncryptionAlgorithm", ADE_CSE_ENCRYPTION_ALGORITHM)) < 0 ||
                (r = add_object(root, "EncryptedRegionInfo", &region)) < 0 ||
                (r = add_int(region, "DataLength", ADE_CSE_REGION_SIZE)) < 0 ||
                (r = add_int(region, "NonceLength", ADE_CSE_NONCE_SIZE)) < 0 ||
                (r = add_object(root, "KeyWrappingMetadata", &kwm)) < 0 ||
                (r = ade_json_add_string(kwm, "EncryptionLibrary", "ade " PACKAGE_VERSION)) < 0 ||
                (r = ade_json_add_string(root, "EncryptionMode", ADE_CSE_ENCRYPTION_MODE)) < 0)
                return r;
        s = ade_json_to_string(root);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* A length field, as a number or (older Java releases) a numeric string. */
static int get_length(json_object *o, const char *key, int64_t *ret) {
        int r = ade_json_get_int64_lenient(o, key, ret);
        return r == -ENOENT ? r : r < 0 ? -EBADMSG : 0;
}

static int dup_string(json_object *o, const char *key, bool required, char **ret) {
        const char *s;
        int r;

        r = ade_json_get_string(o, key, &s);
        if (r == -ENOENT && !required) {
                *ret = NULL;
                return 0;
        }
        if (r < 0 || (required && isempty(s)))
                return -EBADMSG;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ade_cse_metadata_parse(const char *json, AdeCseMetadata **ret) {
        _cleanup_(ade_cse_metadata_freep) AdeCseMetadata *m = NULL;
        _cleanup_json_ json_object *root = NULL;
        json_object *wck, *agent, *region, *kwm;
        const char *protocol, *enc_alg, *mode;
        int64_t data_len, nonce_len, tag_len;
        int r;

        if (!json || !ret)
                return -EINVAL;
        r = ade_json_parse(json, strlen(json), &root);
        if (r < 0)
                return -EBADMSG;
        if (!json_object_is_type(root, json_type_object))
                return -EBADMSG;
        if (ade_json_get_object(root, "EncryptionAgent", &agent) < 0 ||
                ade_json_get_string(agent, "Protocol", &protocol) < 0 ||
                ade_json_get_string(agent, "EncryptionAlgorithm", &enc_alg) < 0)
                return -EBADMSG;
        if (!streq(protocol, ADE_CSE_PROTOCOL) || !streq(enc_alg, ADE_CSE_ENCRYPTION_ALGORITHM))
                return -EOPNOTSUPP;

        r = ade_json_get_string(root, "EncryptionMode", &mode);
        if (r == 0 ? !streq(mode, ADE_CSE_ENCRYPTION_MODE) : r != -ENOENT)
                return -EBADMSG;

        if (ade_json_get_object(root, "EncryptedRegionInfo", &region) < 0)
                return -EBADMSG;
        r = get_length(region, "DataLength", &data_len);
        if (r == -ENOENT)
                r = get_length(region, "EncryptedRegionDataLength", &data_len);
        if (r == -ENOENT)
                r = get_length(region, "EncryptionRegionLength", &data_len);
        if (r < 0 || data_len <= 0 || (uint64_t)data_len > REGION_SIZE_MAX)
                return -EBADMSG;
        if (get_length(region, "NonceLength", &nonce_len) < 0 || nonce_len != ADE_CSE_NONCE_SIZE)
                return -EBADMSG;
        r = get_length(region, "TagLength", &tag_len);
        if (r != -ENOENT && (r < 0 || tag_len != ADE_CSE_TAG_SIZE))
                return -EBADMSG;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->region_size = (uint64_t)data_len;
        if (ade_json_get_object(root, "WrappedContentKey", &wck) < 0)
                return -EBADMSG;
        if ((r = dup_string(wck, "KeyId", true, &m->key_id)) < 0 ||
                (r = dup_string(wck, "EncryptedKey", true, &m->encrypted_key)) < 0 ||
                (r = dup_string(wck, "Algorithm", true, &m->algorithm)) < 0)
                return r;
        r = ade_json_get_object(root, "KeyWrappingMetadata", &kwm);
        if (r == 0)
                r = dup_string(kwm, "EncryptionLibrary", false, &m->encryption_library);
        if (r < 0 && r != -ENOENT)
                return r == -ENOMEM ? r : -EBADMSG;
        *ret = TAKE_PTR(m);
        return 0;
}

int ade_cse_encrypt(const void *plain, size_t size, const AdeCseKek *kek, void **ret_body, size_t *ret_size,
        char **ret_encryption_data, AdeCloudError *ret_error) {
        _cleanup_secret_ AdeSecret *cek = NULL, *to_wrap = NULL;
        _cleanup_free_ void *body = NULL;
        _cleanup_free_ char *wrapped = NULL, *metadata = NULL;
        size_t body_size;
        int r;

        if (!kek || isempty(kek->key_id) || isempty(kek->algorithm) || !kek->wrap || !ret_body || !ret_size ||
                !ret_encryption_data)
                return -EINVAL;
        r = ade_secret_new_random(ADE_CSE_CEK_SIZE, &cek);
        if (r < 0)
                return r;
        r = ade_cse_seal(cek, plain, size, &body, &body_size);
        if (r < 0)
                return r;
        r = ade_cse_wrap_input(cek, &to_wrap);
        if (r < 0)
                return r;
        r = kek->wrap(kek->userdata, kek->key_id, kek->algorithm, to_wrap, &wrapped, ret_error);
        if (r < 0)
                return r;
        r = ade_cse_metadata_build(kek->key_id, kek->algorithm, wrapped, &metadata);
        if (r < 0)
                return r;
        *ret_body = TAKE_PTR(body);
        *ret_size = body_size;
        *ret_encryption_data = TAKE_PTR(metadata);
        return 0;
}

int ade_cse_decrypt(const void *body, size_t size, const char *encryption_data, AdeCseUnwrapFunc unwrap, void *userdata,
        size_t expected_size, void **ret_plain, size_t *ret_size, AdeCloudError *ret_error) {
        _cleanup_(ade_cse_metadata_freep) AdeCseMetadata *m = NULL;
        _cleanup_secret_ AdeSecret *unwrapped = NULL, *cek = NULL;
        _cleanup_free_ void *plain = NULL;
        size_t plain_size;
        int r;

        if (!encryption_data || !unwrap || !ret_plain || !ret_size)
                return -EINVAL;
        r = ade_cse_metadata_parse(encryption_data, &m);
        if (r < 0)
                return ade_log_debug_errno(r, "cse: encryptiondata refused: %m");
        /* Nothing is unwrapped for a body that cannot be one: a cheap refusal before a Key Vault call. */
        if (size > 0 && size % (m->region_size + REGION_OVERHEAD) != 0 &&
                size % (m->region_size + REGION_OVERHEAD) <= REGION_OVERHEAD)
                return -EBADMSG;
        r = unwrap(userdata, m->key_id, m->algorithm, m->encrypted_key, &unwrapped, ret_error);
        if (r < 0)
                return r;
        r = ade_cse_cek_from_unwrapped(unwrapped, &cek);
        if (r < 0)
                return ade_log_debug_errno(
                        r, "cse: the unwrapped key is not a protocol %s content key", ADE_CSE_PROTOCOL);
        r = ade_cse_open(cek, m->region_size, body, size, &plain, &plain_size);
        if (r < 0)
                return r;
        if (expected_size != ADE_CSE_SIZE_UNKNOWN && plain_size != expected_size) {
                ade_memzero(plain, plain_size);
                return -EBADMSG;
        }
        *ret_plain = TAKE_PTR(plain);
        *ret_size = plain_size;
        return 0;
}

int ade_cse_keyvault_wrap(void *userdata, const char *key_id, const char *alg, const AdeSecret *plain,
        char **ret_wrapped, AdeCloudError *ret_error) {
        return ade_keyvault_wrap(userdata, key_id, alg, plain, ret_wrapped, ret_error);
}

int ade_cse_keyvault_unwrap(void *userdata, const char *key_id, const char *alg, const char *wrapped,
        AdeSecret **ret_plain, AdeCloudError *ret_error) {
        return ade_keyvault_unwrap(userdata, key_id, alg, wrapped, ret_plain, ret_error);
}
