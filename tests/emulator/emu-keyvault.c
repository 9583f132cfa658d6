/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Key Vault data plane (docs/protocols.md §1): the 401 challenge before anything else,
 * secrets with versions, keys with real RSA wrap/unwrap/encrypt/decrypt, and the service's error
 * envelope {"error":{"code","message"[,"innererror"]}}. */

#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>

#include "ade-base64.h"
#include "emu.h"

#define NOT_FOUND_HINT                                                                                                 \
        "If you recently deleted this %s you may be able to recover it using the correct recovery command. "           \
        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"

void emu_keyvault_headers(const EmuRequest *req, EmuResponse *resp) {
        _cleanup_free_ char *id = emu_new_guid();
        const char *client_id = emu_request_header(req, "x-ms-client-request-id");
        json_object *vault = emu_cfg_obj(emu.config, "vault");

        emu_response_header(resp, "Cache-Control", "no-cache");
        emu_response_header(resp, "Pragma", "no-cache");
        emu_response_header(resp, "Expires", "-1");
        emu_response_header(resp, "Strict-Transport-Security", "max-age=31536000;includeSubDomains");
        emu_response_header(resp, "X-Content-Type-Options", "nosniff");
        emu_response_header(
                resp, "x-ms-keyvault-network-info", "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;");
        emu_response_header(resp, "x-ms-keyvault-region", "%s", emu_cfg_str(vault, "location") ?: "westeurope");
        emu_response_header(resp, "x-ms-keyvault-service-version", "1.9.2164.2");
        if (id)
                emu_response_header(resp, "x-ms-request-id", "%s", id);
        if (client_id)
                emu_response_header(resp, "x-ms-client-request-id", "%s", client_id);
}

static void kv_error(EmuResponse *resp, unsigned status, const char *code, const char *inner, const char *fmt, ...)
        _printf_(5, 6);

static void kv_error(EmuResponse *resp, unsigned status, const char *code, const char *inner, const char *fmt, ...) {
        json_object *body = json_object_new_object(), *err = json_object_new_object();
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (!body || !err || r < 0) {
                json_object_put(body);
                json_object_put(err);
                emu_response_set(resp, 500, "text/plain", "out of memory\n", 14);
                return;
        }
        ade_json_add_string(err, "code", code);
        ade_json_add_string(err, "message", message);
        if (inner) {
                json_object *ie = json_object_new_object();
                if (ie) {
                        ade_json_add_string(ie, "code", inner);
                        json_object_object_add(err, "innererror", ie);
                }
        }
        json_object_object_add(body, "error", err);
        emu_response_json(resp, status, body);
}

#define KV_PUBLIC_RESOURCE "https://vault.azure.net"

const char *emu_keyvault_resource(void) {
        return emu_cfg_str(emu_cfg_obj(emu.config, "keyvault"), "resource") ?: KV_PUBLIC_RESOURCE;
}

static bool resource_is(const char *r, const char *resource) {
        size_t n = strlen(resource);

        return strncmp(r, resource, n) == 0 && (r[n] == 0 || streq(r + n, "/"));
}

bool emu_keyvault_resource_known(const char *r) {
        return r && (resource_is(r, KV_PUBLIC_RESOURCE) || resource_is(r, emu_keyvault_resource()));
}

static void challenge(const EmuRequest *req, EmuResponse *resp, const char *message) {
        json_object *kv = emu_cfg_obj(emu.config, "keyvault");
        const char *tenant = emu_cfg_str(emu.config, "tenant_id") ?: "",
                   *authority = emu_cfg_str(kv, "challenge_authority");
        _cleanup_free_ char *own = NULL;

        if (!authority) {
                if (asprintf(&own, "https://localhost:%d", emu.https_port) < 0)
                        return;
                authority = own;
        }
        if (emu_cfg_bool(kv, "challenge_scope", false)) {
                const char *host = emu_request_host(req);
                emu_response_header(resp, "WWW-Authenticate",
                        "Bearer authorization=\"%s/%s\", scope=\"https://%.*s/.default\"", authority, tenant,
                        (int)strcspn(host, ":"), host);
        } else
                emu_response_header(resp, "WWW-Authenticate", "Bearer authorization=\"%s/%s\", resource=\"%s\"",
                        authority, tenant, emu_keyvault_resource());
        kv_error(resp, 401, "Unauthorized", NULL, "%s", message);
}

/* "https://<host as the client named it>", without a default port, as Key Vault writes ids. */
static char *vault_base(const EmuRequest *req) {
        const char *host = emu_request_host(req);
        size_t n = strlen(host);
        char *s;

        if (n > 4 && streq(host + n - 4, ":443"))
                n -= 4;
        if (asprintf(&s, "https://%.*s", (int)n, host) < 0)
                return NULL;
        return s;
}

static bool name_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 127)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool api_version_valid(const char *v) {
        static const char *const known[] = {"2015-06-01", "2016-10-01", "2025-07-01"};

        if (startswith(v, "7.") && strlen(v) == 3 && isdigit((unsigned char)v[2]))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (streq(v, known[i]))
                        return true;
        return false;
}

static json_object *attributes_json(
        bool enabled, int64_t nbf, int64_t exp, int64_t created, int64_t updated, bool key) {
        json_object *a = json_object_new_object();
        const char *level;
        int64_t days;

        if (!a)
                return NULL;
        json_object_object_add(a, "enabled", json_object_new_boolean(enabled));
        if (nbf)
                json_object_object_add(a, "nbf", json_object_new_int64(nbf));
        if (exp)
                json_object_object_add(a, "exp", json_object_new_int64(exp));
        json_object_object_add(a, "created", json_object_new_int64(created));
        json_object_object_add(a, "updated", json_object_new_int64(updated));
        level = emu_vault_recovery_level(&days);
        if (days > 0)
                json_object_object_add(a, "recoverableDays", json_object_new_int64(days));
        ade_json_add_string(a, "recoveryLevel", level);
        if (key)
                json_object_object_add(a, "exportable", json_object_new_boolean(false));
        return a;
}

static json_object *secret_bundle(const EmuRequest *req, const EmuSecret *s, bool with_value) {
        _cleanup_free_ char *base = vault_base(req), *id = NULL;
        json_object *o = json_object_new_object();

        if (!o || !base || asprintf(&id, "%s/secrets/%s/%s", base, s->name, s->version) < 0) {
                json_object_put(o);
                return NULL;
        }
        if (with_value)
                ade_json_add_string(o, "value", s->value);
        ade_json_add_string(o, "contentType", s->content_type);
        ade_json_add_string(o, "id", id);
        json_object_object_add(
                o, "attributes", attributes_json(s->enabled, s->nbf, s->exp, s->created, s->updated, false));
        if (s->tags)
                json_object_object_add(o, "tags", json_object_get(s->tags));
        return o;
}

static int bn_param_b64url(EVP_PKEY *k, const char *param, char **ret) {
        BIGNUM *bn = NULL;
        _cleanup_free_ unsigned char *buf = NULL;
        int n;

        if (!EVP_PKEY_get_bn_param(k, param, &bn))
                return -EIO;
        n = BN_num_bytes(bn);
        buf = malloc((size_t)n + 1);
        if (!buf) {
                BN_free(bn);
                return -ENOMEM;
        }
        BN_bn2bin(bn, buf);
        BN_free(bn);
        *ret = ade_base64url_encode(buf, (size_t)n);
        return *ret ? 0 : -ENOMEM;
}

/* The public JWK: n and e for RSA, crv, x and y for EC; never a private part. */
static json_object *key_bundle(const EmuRequest *req, const EmuKey *k) {
        _cleanup_free_ char *base = vault_base(req), *kid = NULL, *a = NULL, *b = NULL;
        json_object *o = json_object_new_object(), *key = json_object_new_object();
        bool ec = emu_kty_is_ec(k->kty);

        if (!o || !key || !base || asprintf(&kid, "%s/keys/%s/%s", base, k->name, k->version) < 0 ||
                (ec ? emu_ec_public_xy(k->pkey, &a, &b) < 0
                    : (bn_param_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_N, &a) < 0 ||
                              bn_param_b64url(k->pkey, OSSL_PKEY_PARAM_RSA_E, &b) < 0))) {
                json_object_put(o);
                json_object_put(key);
                return NULL;
        }
        ade_json_add_string(key, "kid", kid);
        ade_json_add_string(key, "kty", k->kty);
        json_object_object_add(key, "key_ops", json_object_get(k->key_ops));
        if (ec) {
                ade_json_add_string(key, "crv", k->crv);
                ade_json_add_string(key, "x", a);
                ade_json_add_string(key, "y", b);
        } else {
                ade_json_add_string(key, "n", a);
                ade_json_add_string(key, "e", b);
        }
        json_object_object_add(o, "key", key);
        json_object_object_add(
                o, "attributes", attributes_json(k->enabled, k->nbf, k->exp, k->created, k->updated, true));
        if (k->tags)
                json_object_object_add(o, "tags", json_object_get(k->tags));
        return o;
}

/* Parses the request body as one JSON object; answers 400 itself when it is not. */
static json_object *body_object(const EmuRequest *req, EmuResponse *resp) {
        json_object *o = NULL;

        if (req->body_size == 0) {
                kv_error(resp, 400, "BadParameter", NULL, "The request body is missing. A JSON object is required.");
                return NULL;
        }
        if (ade_json_parse(req->body, req->body_size, &o) < 0 || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                kv_error(resp, 400, "BadParameter", NULL, "The request body is not a valid JSON object.");
                return NULL;
        }
        return o;
}

/* Legacy ADE sends "enabled":"true" and the service took it: accept booleans and their strings. */
static int parse_enabled(json_object *attrs, bool *ret) {
        json_object *v;

        if (!json_object_object_get_ex(attrs, "enabled", &v) || !v)
                return 0;
        if (json_object_is_type(v, json_type_boolean)) {
                *ret = json_object_get_boolean(v);
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                if (strcaseeq(json_object_get_string(v), "true"))
                        return *ret = true, 0;
                if (strcaseeq(json_object_get_string(v), "false"))
                        return *ret = false, 0;
        }
        return -EINVAL;
}

static int parse_time_attr(json_object *attrs, const char *key, int64_t *ret) {
        int r = ade_json_get_int64_lenient(attrs, key, ret);

        return r == -ENOENT ? 0 : r;
}

static int parse_tags(json_object *o, json_object **ret) {
        json_object *tags;

        if (!json_object_object_get_ex(o, "tags", &tags) || !tags) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(tags, json_type_object) || json_object_object_length(tags) > 15)
                return -EINVAL;
        json_object_object_foreach(tags, k, v) {
                (void)k;
                if (!json_object_is_type(v, json_type_string) || strlen(json_object_get_string(v)) > 256)
                        return -EINVAL;
        }
        *ret = json_object_get(tags);
        return 0;
}

/* Applies "contentType", "tags" and "attributes" of @o to @s; answers 400 itself on a bad field. */
static int apply_secret_fields(json_object *o, EmuSecret *s, EmuResponse *resp) {
        json_object *attrs = NULL, *ct, *tags;

        if (json_object_object_get_ex(o, "contentType", &ct) && ct) {
                if (!json_object_is_type(ct, json_type_string)) {
                        kv_error(resp, 400, "BadParameter", NULL, "Property 'contentType' must be a string.");
                        return -EINVAL;
                }
                free(s->content_type);
                s->content_type = strdup(json_object_get_string(ct));
        }
        if (json_object_object_get_ex(o, "tags", NULL)) {
                if (parse_tags(o, &tags) < 0) {
                        kv_error(resp, 400, "BadParameter", NULL,
                                "Property 'tags' must map at most 15 names to strings.");
                        return -EINVAL;
                }
                json_object_put(s->tags);
                s->tags = tags;
        }
        if (json_object_object_get_ex(o, "attributes", &attrs) && attrs) {
                if (!json_object_is_type(attrs, json_type_object) || parse_enabled(attrs, &s->enabled) < 0 ||
                        parse_time_attr(attrs, "nbf", &s->nbf) < 0 || parse_time_attr(attrs, "exp", &s->exp) < 0) {
                        kv_error(resp, 400, "BadParameter", NULL, "Property 'attributes' has an invalid value.");
                        return -EINVAL;
                }
        }
        return 0;
}

static void secret_not_found(EmuResponse *resp, const char *name, const char *version) {
        kv_error(resp, 404, "SecretNotFound", NULL,
                "A secret with (name/id) %s%s%s was not found in this key vault. " NOT_FOUND_HINT, name,
                isempty(version) ? "" : "/", isempty(version) ? "" : version, "secret");
}

static void key_not_found(EmuResponse *resp, const char *name, const char *version) {
        kv_error(resp, 404, "KeyNotFound", NULL,
                "A key with (name/id) %s%s%s was not found in this key vault. " NOT_FOUND_HINT, name,
                isempty(version) ? "" : "/", isempty(version) ? "" : version, "key");
}

static void set_secret(const EmuRequest *req, EmuResponse *resp, const char *name) {
        _cleanup_json_ json_object *o = body_object(req, resp);
        EmuSecret *s;
        const char *value;
        int r;

        if (!o)
                return;
        r = ade_json_get_string(o, "value", &value);
        if (r < 0) {
                kv_error(resp, 400, "BadParameter", NULL,
                        r == -ENOENT ? "Property 'value' is required." : "Property 'value' must be a string.");
                return;
        }
        s = calloc(1, sizeof(EmuSecret));
        if (!s)
                return;
        s->name = strdup(name);
        s->version = emu_new_version();
        s->value = strdup(value);
        s->enabled = true;
        s->created = s->updated = emu_now();
        if (!s->name || !s->version || !s->value || apply_secret_fields(o, s, resp) < 0) {
                emu_secret_free(s);
                return;
        }
        if (emu_vault_add_secret(s) < 0)
                return;
        (void)emu_vault_save();
        emu_response_json(resp, 200, secret_bundle(req, s, true));
}

static void get_secret(const EmuRequest *req, EmuResponse *resp, const char *name, const char *version) {
        EmuSecret *s = emu_vault_find_secret(name, version);

        if (!s) {
                secret_not_found(resp, name, version);
                return;
        }
        if (!s->enabled) {
                kv_error(
                        resp, 403, "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.");
                return;
        }
        emu_response_json(resp, 200, secret_bundle(req, s, true));
}

static void update_secret(const EmuRequest *req, EmuResponse *resp, const char *name, const char *version) {
        _cleanup_json_ json_object *o = NULL;
        EmuSecret *s = emu_vault_find_secret(name, version);

        if (!s) {
                secret_not_found(resp, name, version);
                return;
        }
        o = body_object(req, resp);
        if (!o || apply_secret_fields(o, s, resp) < 0)
                return;
        s->updated = emu_now();
        (void)emu_vault_save();
        /* UpdateSecret answers the bundle without its value. */
        emu_response_json(resp, 200, secret_bundle(req, s, false));
}

static void list_secrets(const EmuRequest *req, EmuResponse *resp, const char *versions_of) {
        json_object *o = json_object_new_object(), *value = json_object_new_array();
        _cleanup_free_ char *base = vault_base(req);

        if (!o || !value || !base) {
                json_object_put(o);
                json_object_put(value);
                return;
        }
        for (size_t i = 0; i < emu.n_secrets; i++) {
                EmuSecret *s = emu.secrets[i];
                _cleanup_free_ char *id = NULL;
                json_object *e;

                if (versions_of ? !strcaseeq(s->name, versions_of) : emu_vault_find_secret(s->name, NULL) != s)
                        continue;
                if ((versions_of ? asprintf(&id, "%s/secrets/%s/%s", base, s->name, s->version)
                                 : asprintf(&id, "%s/secrets/%s", base, s->name)) < 0) {
                        id = NULL;
                        continue;
                }
                e = json_object_new_object();
                if (!e)
                        continue;
                ade_json_add_string(e, "id", id);
                ade_json_add_string(e, "contentType", s->content_type);
                json_object_object_add(
                        e, "attributes", attributes_json(s->enabled, s->nbf, s->exp, s->created, s->updated, false));
                if (s->tags)
                        json_object_object_add(e, "tags", json_object_get(s->tags));
                json_object_array_add(value, e);
        }
        json_object_object_add(o, "value", value);
        json_object_object_add(o, "nextLink", NULL);
        emu_response_json(resp, 200, o);
}

static void list_keys(const EmuRequest *req, EmuResponse *resp) {
        json_object *o = json_object_new_object(), *value = json_object_new_array();
        _cleanup_free_ char *base = vault_base(req);

        if (!o || !value || !base) {
                json_object_put(o);
                json_object_put(value);
                return;
        }
        for (size_t i = 0; i < emu.n_keys; i++) {
                EmuKey *k = emu.keys[i];
                _cleanup_free_ char *kid = NULL;
                json_object *e;

                if (emu_vault_find_key(k->name, NULL) != k || asprintf(&kid, "%s/keys/%s", base, k->name) < 0)
                        continue;
                e = json_object_new_object();
                if (!e)
                        continue;
                ade_json_add_string(e, "kid", kid);
                json_object_object_add(
                        e, "attributes", attributes_json(k->enabled, k->nbf, k->exp, k->created, k->updated, true));
                if (k->tags)
                        json_object_object_add(e, "tags", json_object_get(k->tags));
                json_object_array_add(value, e);
        }
        json_object_object_add(o, "value", value);
        json_object_object_add(o, "nextLink", NULL);
        emu_response_json(resp, 200, o);
}

static const char *const key_op_names[] = {
        "encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"};

static bool key_op_known(const char *op) {
        for (size_t i = 0; i < ELEMENTSOF(key_op_names); i++)
                if (streq(op, key_op_names[i]))
                        return true;
        return false;
}

static void create_key(const EmuRequest *req, EmuResponse *resp, const char *name) {
        _cleanup_json_ json_object *o = body_object(req, resp);
        json_object *ops = NULL, *attrs = NULL, *tags = NULL;
        const char *kty, *crv = "P-256";
        int64_t bits = 2048, nbf = 0, exp = 0;
        EmuKey *k;
        bool enabled = true, ec;
        int r;

        if (!o)
                return;
        if (ade_json_get_string(o, "kty", &kty) < 0) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Property 'kty' is required: RSA, RSA-HSM, EC, EC-HSM or oct-HSM.");
                return;
        }
        ec = emu_kty_is_ec(kty);
        if (!ec && !streq(kty, "RSA") && !streq(kty, "RSA-HSM")) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Key type '%s' is not supported here: this emulator creates RSA and EC keys only.", kty);
                return;
        }
        r = ade_json_get_string(o, "crv", &crv);
        if (ec && ((r < 0 && r != -ENOENT) || (!streq(crv, "P-256") && !streq(crv, "P-384") && !streq(crv, "P-521") &&
                                                      !streq(crv, "P-256K")))) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Property 'crv' must be P-256, P-384, P-521 or P-256K for EC keys.");
                return;
        }
        /* key_size means nothing for an EC key (the curve sets it); only RSA sizes are checked. */
        r = ade_json_get_int64(o, "key_size", &bits);
        if (!ec && ((r < 0 && r != -ENOENT) || (bits != 2048 && bits != 3072 && bits != 4096))) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Property 'key_size' must be 2048, 3072 or 4096 for RSA keys.");
                return;
        }
        r = ade_json_get_array(o, "key_ops", &ops);
        if (r == -EBADMSG) {
                kv_error(resp, 400, "BadParameter", NULL, "Property 'key_ops' must be an array.");
                return;
        }
        for (size_t i = 0; ops && i < json_object_array_length(ops); i++) {
                json_object *op = json_object_array_get_idx(ops, i);
                if (!json_object_is_type(op, json_type_string) || !key_op_known(json_object_get_string(op))) {
                        kv_error(resp, 400, "BadParameter", NULL, "Property 'key_ops' has an invalid value.");
                        return;
                }
        }
        if (json_object_object_get_ex(o, "attributes", &attrs) && attrs &&
                (!json_object_is_type(attrs, json_type_object) || parse_enabled(attrs, &enabled) < 0 ||
                        parse_time_attr(attrs, "nbf", &nbf) < 0 || parse_time_attr(attrs, "exp", &exp) < 0)) {
                kv_error(resp, 400, "BadParameter", NULL, "Property 'attributes' has an invalid value.");
                return;
        }
        if (parse_tags(o, &tags) < 0) {
                kv_error(resp, 400, "BadParameter", NULL, "Property 'tags' must map at most 15 names to strings.");
                return;
        }

        k = calloc(1, sizeof(EmuKey));
        if (!k) {
                json_object_put(tags);
                return;
        }
        k->tags = tags;
        k->name = strdup(name);
        k->version = emu_new_version();
        k->kty = strdup(kty);
        k->enabled = enabled;
        k->nbf = nbf;
        k->exp = exp;
        k->created = k->updated = emu_now();
        if (ops)
                k->key_ops = json_object_get(ops);
        else {
                /* Without key_ops an RSA key gets the first six operations, an EC key sign and verify. */
                k->key_ops = json_object_new_array();
                for (size_t i = ec ? 2 : 0; k->key_ops && i < (ec ? 4 : 6); i++)
                        json_object_array_add(k->key_ops, json_object_new_string(key_op_names[i]));
        }
        if (!k->name || !k->version || !k->kty || !k->key_ops || (ec && !(k->crv = strdup(crv))) ||
                (ec ? emu_ec_generate(crv, &k->pkey) : emu_rsa_generate((unsigned)bits, &k->pkey)) < 0) {
                emu_key_free(k);
                return;
        }
        if (emu_vault_add_key(k) < 0)
                return;
        (void)emu_vault_save();
        emu_response_json(resp, 200, key_bundle(req, k));
}

static void get_key(const EmuRequest *req, EmuResponse *resp, const char *name, const char *version) {
        EmuKey *k = emu_vault_find_key(name, version);

        if (!k) {
                key_not_found(resp, name, version);
                return;
        }
        emu_response_json(resp, 200, key_bundle(req, k));
}

static bool key_has_op(const EmuKey *k, const char *op) {
        for (size_t i = 0; k->key_ops && i < json_object_array_length(k->key_ops); i++)
                if (streq(json_object_get_string(json_object_array_get_idx(k->key_ops, i)), op))
                        return true;
        return false;
}

static bool alg_is_symmetric(const char *alg) {
        return startswith(alg, "A128") || startswith(alg, "A192") || startswith(alg, "A256");
}

/* wrapkey / unwrapkey / encrypt / decrypt: @op is the key_ops name ("wrapKey", ...). */
static void key_operation(
        const EmuRequest *req, EmuResponse *resp, const char *name, const char *version, const char *op) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ void *in = NULL, *out = NULL;
        _cleanup_free_ char *base = NULL, *kid = NULL, *value64 = NULL;
        bool forward = streq(op, "wrapKey") || streq(op, "encrypt");
        EmuKey *k = emu_vault_find_key(name, version);
        const char *alg, *value;
        size_t in_size, out_size;
        json_object *reply;
        int r;

        if (!k) {
                key_not_found(resp, name, version);
                return;
        }
        if (!k->enabled) {
                kv_error(resp, 403, "Forbidden", "KeyDisabled", "Operation %s is not allowed on a disabled key.", op);
                return;
        }
        /* An EC key has no encryption algorithm at all, so whatever alg the body names is a
         * key-type mismatch: Key Vault answers 400 BadParameter (the exact message is not in any
         * trace we have; this wording is ours). */
        if (emu_kty_is_ec(k->kty)) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Operation %s is not supported by key '%s' of type %s: EC keys only sign and verify.", op,
                        k->name, k->kty);
                return;
        }
        if (!key_has_op(k, op)) {
                kv_error(resp, 403, "Forbidden", NULL, "Operation %s is not permitted on this key.", op);
                return;
        }
        /* "Not-yet-valid and expired keys, outside the nbf / exp window, will work for decrypt,
         * unwrap, and verify operations (won't return 403, Forbidden)" (about-keys-details): only
         * the forward operations are refused. The message follows the real secret one ("Operation
         * get is not allowed on a expired secret.", innererror SecretExpired, Azure/AzureKeyVault
         * issue 19); KeyExpired and KeyNotYetValid are assumed by analogy, not seen in a trace. */
        if (forward && k->exp > 0 && emu_now() >= k->exp) {
                kv_error(resp, 403, "Forbidden", "KeyExpired", "Operation %s is not allowed on a expired key.", op);
                return;
        }
        if (forward && k->nbf > 0 && emu_now() < k->nbf) {
                kv_error(resp, 403, "Forbidden", "KeyNotYetValid",
                        "Operation %s is not allowed on a not yet valid key.", op);
                return;
        }
        o = body_object(req, resp);
        if (!o)
                return;
        if (ade_json_get_string(o, "alg", &alg) < 0) {
                kv_error(resp, 400, "BadParameter", NULL, "Property 'alg' is required.");
                return;
        }
        if (alg_is_symmetric(alg)) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Algorithm %s is only supported by symmetric (oct-HSM) keys; key '%s' is %s.", alg, k->name,
                        k->kty);
                return;
        }
        if (!streq(alg, "RSA-OAEP") && !streq(alg, "RSA-OAEP-256") && !streq(alg, "RSA1_5")) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "Invalid algorithm '%s': expected RSA-OAEP, RSA-OAEP-256 or RSA1_5.", alg);
                return;
        }
        if (ade_json_get_string(o, "value", &value) < 0) {
                kv_error(resp, 400, "BadParameter", NULL, "Property 'value' is required (base64url).");
                return;
        }
        if (ade_base64_decode(value, strlen(value), &in, &in_size) < 0 || in_size == 0) {
                kv_error(resp, 400, "BadParameter", NULL, "Property 'value' is not valid base64url.");
                return;
        }

        r = forward ? emu_rsa_encrypt(k->pkey, alg, in, in_size, &out, &out_size)
                    : emu_rsa_decrypt(k->pkey, alg, in, in_size, &out, &out_size);
        if (r < 0) {
                kv_error(resp, 400, "BadParameter", NULL,
                        forward ? "The value is too long for key '%s' and algorithm %s."
                                : "The value could not be decrypted with key '%s' and algorithm %s.",
                        k->name, alg);
                return;
        }

        base = vault_base(req);
        value64 = ade_base64url_encode(out, out_size);
        reply = json_object_new_object();
        if (!base || !value64 || !reply || asprintf(&kid, "%s/keys/%s/%s", base, k->name, k->version) < 0) {
                json_object_put(reply);
                return;
        }
        ade_json_add_string(reply, "kid", kid);
        ade_json_add_string(reply, "value", value64);
        emu_response_json(resp, 200, reply);
}

static const char *key_op_from_segment(const char *seg) {
        static const char *const map[][2] = {
                {"wrapkey", "wrapKey"},
                {"unwrapkey", "unwrapKey"},
                {"encrypt", "encrypt"},
                {"decrypt", "decrypt"},
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcaseeq(seg, map[i][0]))
                        return map[i][1];
        return NULL;
}

static void not_found(const EmuRequest *req, EmuResponse *resp) {
        kv_error(resp, 404, "NotFound", NULL, "The requested path %s %s is not served by Key Vault.", req->method,
                req->path);
}

static void method_not_allowed(const EmuRequest *req, EmuResponse *resp) {
        kv_error(resp, 405, "MethodNotAllowed", NULL, "The method %s is not allowed on %s.", req->method, req->path);
}

static void route(const EmuRequest *req, EmuResponse *resp) {
        _cleanup_(strv_freep) char **seg = NULL;
        const char *m = req->method, *name, *second;
        size_t n = 0;
        const char *p = req->path;

        /* Split "/a/b/" into "a", "b", "" so that a trailing slash stays visible. */
        seg = calloc(8, sizeof(char *));
        if (!seg)
                return;
        p += *p == '/';
        for (;;) {
                size_t l = strcspn(p, "/");
                if (n == 6) {
                        not_found(req, resp);
                        return;
                }
                seg[n++] = strndup(p, l);
                if (!seg[n - 1])
                        return;
                if (!p[l])
                        break;
                p += l + 1;
        }

        if (n == 1 || (n == 2 && isempty(seg[1]))) {
                if (!streq(m, "GET"))
                        method_not_allowed(req, resp);
                else if (strcaseeq(seg[0], "secrets"))
                        list_secrets(req, resp, NULL);
                else if (strcaseeq(seg[0], "keys"))
                        list_keys(req, resp);
                else
                        not_found(req, resp);
                return;
        }

        name = seg[1];
        second = n > 2 ? seg[2] : NULL;
        if (!name_valid(name)) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "The name '%s' is invalid: use 1-127 letters, digits and dashes.", name);
                return;
        }

        if (strcaseeq(seg[0], "secrets")) {
                if (n > 4 || (n == 4 && !isempty(seg[3]))) {
                        not_found(req, resp);
                        return;
                }
                if (second && strcaseeq(second, "versions") && streq(m, "GET")) {
                        list_secrets(req, resp, name);
                        return;
                }
                if (streq(m, "PUT") && isempty(second))
                        set_secret(req, resp, name);
                else if (streq(m, "GET"))
                        get_secret(req, resp, name, second);
                else if (streq(m, "PATCH"))
                        update_secret(req, resp, name, second);
                else
                        method_not_allowed(req, resp);
                return;
        }

        if (!strcaseeq(seg[0], "keys")) {
                not_found(req, resp);
                return;
        }
        if (n == 2 || (n == 3 && isempty(second)) ||
                (n == 4 && isempty(seg[3]) && !key_op_from_segment(second) && !strcaseeq(second, "create"))) {
                /* /keys/{name}, /keys/{name}/, /keys/{name}/{version}[/] */
                if (streq(m, "GET"))
                        get_key(req, resp, name, second);
                else
                        method_not_allowed(req, resp);
                return;
        }
        if (n == 3 && strcaseeq(second, "create")) {
                if (streq(m, "POST"))
                        create_key(req, resp, name);
                else
                        method_not_allowed(req, resp);
                return;
        }
        if (n == 3 && key_op_from_segment(second)) {
                /* Versionless: some clients send it, the latest version answers. */
                if (streq(m, "POST"))
                        key_operation(req, resp, name, NULL, key_op_from_segment(second));
                else
                        method_not_allowed(req, resp);
                return;
        }
        if (n == 3) {
                if (streq(m, "GET"))
                        get_key(req, resp, name, second);
                else
                        method_not_allowed(req, resp);
                return;
        }
        if ((n == 4 || (n == 5 && isempty(seg[4]))) && key_op_from_segment(seg[3])) {
                if (streq(m, "POST"))
                        key_operation(req, resp, name, second, key_op_from_segment(seg[3]));
                else
                        method_not_allowed(req, resp);
                return;
        }
        not_found(req, resp);
}

void emu_keyvault_handle(const EmuRequest *req, EmuResponse *resp) {
        _cleanup_free_ char *slashed = NULL;
        _cleanup_json_ json_object *claims = NULL;
        const char *api, *aud = NULL;
        const char *audiences[] = {KV_PUBLIC_RESOURCE, KV_PUBLIC_RESOURCE "/", emu_keyvault_resource(), NULL, NULL};

        if (asprintf(&slashed, "%s/", emu_keyvault_resource()) < 0)
                return;
        audiences[3] = slashed;

        emu_keyvault_headers(req, resp);

        /* Authentication comes first, whatever the method, path or body: SDKs probe with an empty
         * body just to get this challenge. */
        switch (emu_token_check(req, audiences, &claims)) {
        case EMU_TOKEN_MISSING:
                challenge(req, resp, "AKV10000: Request is missing a Bearer or PoP token.");
                return;
        case EMU_TOKEN_INVALID:
                challenge(req, resp,
                        "AKV10032: Invalid issuer or signature. The access token was not issued by this tenant.");
                return;
        case EMU_TOKEN_EXPIRED:
                challenge(req, resp, "[TokenExpired] Error validating token: 'S2S12086'.");
                return;
        case EMU_TOKEN_WRONG_AUDIENCE: {
                _cleanup_free_ char *message = NULL;
                (void)ade_json_get_string(claims, "aud", &aud);
                if (asprintf(&message, "AKV10022: Invalid audience. Expected %s, found: %s.", emu_keyvault_resource(),
                            strna(aud)) < 0)
                        return;
                challenge(req, resp, message);
                return;
        }
        case EMU_TOKEN_OK:
                break;
        }

        api = emu_request_query(req, "api-version");
        if (isempty(api)) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "The api-version query parameter is missing: there is no default. Use api-version=7.4.");
                return;
        }
        if (!api_version_valid(api)) {
                kv_error(resp, 400, "BadParameter", NULL,
                        "The specified version (%s) is not recognized. Consider using the latest supported version "
                        "(7.5).",
                        api);
                return;
        }
        route(req, resp);
}
