/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internals of ade-emulator, the Azure test double (README.md in this folder). One process holds
 * one scenario (a JSON configuration), one vault's contents, the faults to inject and the request
 * log, all behind one mutex: libmicrohttpd runs a thread per connection. */

#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ade-json.h"
#include "ade-util.h"

#define EMU_BODY_MAX (4U * 1024U * 1024U)

typedef enum EmuService {
        EMU_SERVICE_KEYVAULT,
        EMU_SERVICE_IMDS_INSTANCE,
        EMU_SERVICE_IMDS_TOKEN,
        EMU_SERVICE_ARM,
        EMU_SERVICE_ENTRA,
        EMU_SERVICE_CONTROL,
        _EMU_SERVICE_MAX,
} EmuService;

/* The fault route name ("keyvault", "imds-token", ...) and the request log's service name. */
const char *emu_service_route(EmuService s);
const char *emu_service_log_name(EmuService s);

typedef struct EmuRequest {
        struct MHD_Connection *connection;
        const char *method;
        const char *path;      /* without the query, percent-decoded */
        const char *raw_query; /* as sent, "" when none */
        char **query;          /* decoded name/value pairs, in order */
        const char *body;      /* NUL-terminated copy of the body */
        size_t body_size;
        bool tls;
        unsigned connection_id;
        EmuService service;
} EmuRequest;

typedef struct EmuResponse {
        unsigned status;
        char *body;
        size_t body_size;
        char **headers; /* name/value pairs */
} EmuResponse;

const char *emu_request_header(const EmuRequest *req, const char *name);
/* The value of query parameter @name (first occurrence), or NULL. */
const char *emu_request_query(const EmuRequest *req, const char *name);
/* The number of times @name appears in the query. */
unsigned emu_request_query_count(const EmuRequest *req, const char *name);
/* "Host" as sent, or "localhost:<port>". */
const char *emu_request_host(const EmuRequest *req);

void emu_response_set(EmuResponse *resp, unsigned status, const char *content_type, const char *body, size_t size);
/* Serializes @body (consumed) compactly with unescaped slashes. */
void emu_response_json(EmuResponse *resp, unsigned status, json_object *body);
void emu_response_header(EmuResponse *resp, const char *name, const char *fmt, ...) _printf_(3, 4);
void emu_response_done(EmuResponse *resp);

/* Splits a query string into decoded name/value pairs (form encoding: '+' is a space). */
int emu_parse_form(const char *s, size_t len, char ***ret);
const char *emu_form_get(char **form, const char *name);
unsigned emu_form_count(char **form, const char *name);

/* A random lower-case GUID, and 32 lower-case hex digits (Key Vault versions). */
char *emu_new_guid(void);
char *emu_new_version(void);
int64_t emu_now(void);
/* "2026-11-29T01:02:03.0000000+00:00" */
char *emu_format_time(int64_t t);

/* ---- keys, certificates, tokens (emu-crypto.c, emu-jwt.c) ---- */

int emu_rsa_generate(unsigned bits, EVP_PKEY **ret);
/* An EC key on the JWK curve @crv: "P-256", "P-384", "P-521" or "P-256K" (secp256k1). -EINVAL for
 * any other name. */
int emu_ec_generate(const char *crv, EVP_PKEY **ret);
/* The public point of an EC key as JWK "x" and "y": base64url, unpadded, each coordinate left-padded
 * with zeros to the field size (RFC 7518 6.2.1.2), so P-521 gives 66 bytes. */
int emu_ec_public_xy(EVP_PKEY *key, char **ret_x, char **ret_y);
int emu_pem_load_key(const char *path, EVP_PKEY **ret);
int emu_pem_save_key(const char *path, EVP_PKEY *key);
int emu_write_file_atomic(const char *path, const char *data, size_t size, mode_t mode);
int emu_read_file(const char *path, char **ret, size_t *ret_size);
char *emu_pem_key_string(EVP_PKEY *key);
int emu_pem_key_from_string(const char *pem, EVP_PKEY **ret);
/* Creates DIR/ca.pem and ca.key when missing, then a server certificate for loopback and the Azure
 * host names. Returns the server certificate and key as PEM strings for libmicrohttpd. */
int emu_tls_setup(const char *dir, char **ret_cert_pem, char **ret_key_pem);
/* DIR/app-cert.pem and DIR/app-key.pem, reused when present: the Entra app's certificate. */
int emu_app_cert_setup(const char *dir, X509 **ret);
/* base64url of the SHA-1 (x5t) and SHA-256 (x5t#S256) of the certificate's DER. */
int emu_cert_thumbprints(X509 *cert, char **ret_x5t, char **ret_x5t_s256);

/* RSA encryption for Key Vault's algorithms. Returns -EINVAL for an unknown @alg, -EBADMSG when
 * the input does not fit or does not decrypt. */
int emu_rsa_encrypt(EVP_PKEY *key, const char *alg, const void *in, size_t in_size, void **ret, size_t *ret_size);
int emu_rsa_decrypt(EVP_PKEY *key, const char *alg, const void *in, size_t in_size, void **ret, size_t *ret_size);

/* Signs @claims (consumed) as an RS256 JWT with @key. */
int emu_jwt_sign(EVP_PKEY *key, const char *kid, json_object *claims, char **ret);
/* Verifies the signature of @jwt with @key and returns its header and claims. Only RS256 and
 * PS256 are accepted. -EBADMSG for a malformed token, -EPERM for a bad signature. */
int emu_jwt_verify(EVP_PKEY *key, const char *jwt, json_object **ret_header, json_object **ret_claims);
/* Parses without verifying (for messages and selectors). */
int emu_jwt_decode(const char *jwt, json_object **ret_header, json_object **ret_claims);

/* ---- the scenario (emu-config.c) ---- */

/* The default scenario with @overlay (a JSON object, NULL for none) merged over it. */
int emu_config_build(json_object *overlay, json_object **ret);
/* Merges @overlay into @base: objects key by key, anything else replaces. */
int emu_json_merge(json_object *base, json_object *overlay);
const char *emu_cfg_str(json_object *o, const char *key);
bool emu_cfg_bool(json_object *o, const char *key, bool def);
int64_t emu_cfg_int(json_object *o, const char *key, int64_t def);
json_object *emu_cfg_obj(json_object *o, const char *key);
json_object *emu_cfg_array(json_object *o, const char *key);

/* ---- the vault's contents (emu-vault.c) ---- */

typedef struct EmuKey {
        char *name, *version, *kty;
        char *crv; /* JWK curve name ("P-256", ...) for EC and EC-HSM keys, else NULL */
        EVP_PKEY *pkey;
        json_object *key_ops; /* array of strings */
        json_object *tags;    /* object or NULL */
        bool enabled;
        int64_t nbf, exp; /* unix seconds, 0 when unset */
        int64_t created, updated;
} EmuKey;

/* "EC" and "EC-HSM": keys that sign and verify but never encrypt or wrap. */
bool emu_kty_is_ec(const char *kty);

typedef struct EmuSecret {
        char *name, *version, *value, *content_type;
        json_object *tags; /* object or NULL */
        bool enabled;
        int64_t nbf, exp; /* 0 when unset */
        int64_t created, updated;
} EmuSecret;

/* @version NULL or "" means the latest. */
EmuKey *emu_vault_find_key(const char *name, const char *version);
EmuSecret *emu_vault_find_secret(const char *name, const char *version);
int emu_vault_add_key(EmuKey *k);       /* takes ownership */
int emu_vault_add_secret(EmuSecret *s); /* takes ownership */
EmuKey *emu_key_free(EmuKey *k);
EmuSecret *emu_secret_free(EmuSecret *s);
/* Loads --state when it exists, else creates the scenario's keys and secrets. */
int emu_vault_init(void);
/* Saves to --state (atomically) when one was given. */
int emu_vault_save(void);
void emu_vault_done(void);
/* The control API's state dump; @base is the vault URL for ids. */
json_object *emu_vault_dump(const char *base);
/* "Recoverable+Purgeable" etc. from the vault's soft-delete settings. */
const char *emu_vault_recovery_level(int64_t *ret_days);

/* ---- faults and the request log (emu-control.c) ---- */

typedef enum EmuTokenFault {
        EMU_TOKEN_FAULT_NONE,
        EMU_TOKEN_FAULT_EXPIRED,
        EMU_TOKEN_FAULT_WRONG_AUDIENCE,
} EmuTokenFault;

typedef struct EmuFaultAction {
        unsigned status; /* 0: none */
        int retry_after; /* -1: no header */
        unsigned latency_ms;
        bool hang; /* held until the faults are cleared (emu_faults_release()), then dropped */
        bool drop;
        char *body; /* raw 200 body, or NULL */
        size_t body_size;
} EmuFaultAction;

/* Consumes the first fault matching @s that acts on requests. Returns true when one matched. */
bool emu_faults_take(EmuService s, EmuFaultAction *ret);
EmuTokenFault emu_faults_take_token(EmuService s);
void emu_log_request(const EmuRequest *req, unsigned status);
/* Under emu.lock: lets every request held by a "hang" fault go on; how many are held now. */
void emu_faults_release(void);
unsigned emu_faults_held(void);
void emu_control_handle(const EmuRequest *req, EmuResponse *resp);
void emu_control_done(void);

/* ---- services ---- */

void emu_keyvault_handle(const EmuRequest *req, EmuResponse *resp);
/* The Key Vault resource of the cloud this emulator plays (scenario keyvault.resource, default
 * https://vault.azure.net): what the challenge names and what tokens for Key Vault are for. */
const char *emu_keyvault_resource(void);
/* Whether @r is a Key Vault resource a token may be issued for and Key Vault accepts: the public
 * cloud's or the scenario's, with or without a trailing slash. */
bool emu_keyvault_resource_known(const char *r);
/* The headers every Key Vault answer carries (request ids, no-cache, x-ms-keyvault-*). */
void emu_keyvault_headers(const EmuRequest *req, EmuResponse *resp);
void emu_imds_handle(const EmuRequest *req, EmuResponse *resp);
void emu_entra_handle(const EmuRequest *req, EmuResponse *resp);
void emu_arm_handle(const EmuRequest *req, EmuResponse *resp);

/* Whether IMDS and Entra ID issue tokens for @r: Key Vault's (emu_keyvault_resource_known()), ARM's
 * and Storage's App ID URIs, with or without a trailing slash, as the real services do. */
bool emu_token_resource_known(const char *r);

/* Builds and signs an access token for @aud as @identity (an identity or app object of the
 * scenario), applying any pending token fault of @s. Returns the token and its expiry. */
int emu_token_issue(
        EmuService s, const char *aud, json_object *identity, char **ret, int64_t *ret_exp, int64_t *ret_iat);

typedef enum EmuTokenCheck {
        EMU_TOKEN_OK,
        EMU_TOKEN_MISSING,
        EMU_TOKEN_INVALID,
        EMU_TOKEN_EXPIRED,
        EMU_TOKEN_WRONG_AUDIENCE,
} EmuTokenCheck;

/* Checks the request's bearer token against our signing key, expiry and one of @audiences
 * (NULL-terminated). On return *ret_claims (when given) holds the claims of a parsed token. */
EmuTokenCheck emu_token_check(const EmuRequest *req, const char *const *audiences, json_object **ret_claims);

typedef struct Emu {
        pthread_mutex_t lock;
        json_object *config;
        char *dir;
        char *state_path;
        int https_port, http_port;
        EVP_PKEY *token_key;
        char *token_kid;
        X509 *app_cert;
        EmuKey **keys;
        size_t n_keys;
        EmuSecret **secrets;
        size_t n_secrets;
        unsigned next_connection_id;
} Emu;

extern Emu emu;
