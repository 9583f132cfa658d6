/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Key Vault client against the Azure emulator over real HTTPS with the emulator's test CA,
 * authenticated by the emulator's IMDS managed identity: every call, and each fault. */
#include <curl/curl.h>
#include <pthread.h>

#include "ade-imds.h"
#include "ade-json.h"
#include "ade-keyfile.h"
#include "ade-keyvault.h"
#include "ade-test.h"
#include "emu-harness.h"

/* One emulator for the suite (started once, in the runner's process); tests that need another
 * scenario start their own. Faults and the request log are cleared before each test. */
typedef struct Ctx {
        AdeEmulator *emu;
        bool own_emu;
        AdeCredential *cred;
        AdeKeyVault *kv;
} Ctx;

static void ctx_done(Ctx *c) {
        ade_keyvault_free(c->kv);
        ade_credential_free(c->cred);
        if (c->own_emu)
                ade_emulator_stop(c->emu);
}

/* Small delays so that retries do not slow the suite; Retry-After up to 1.5 s is still honoured. */
static AdeHttpOptions test_options(const AdeEmulator *emu) {
        AdeHttpOptions o;

        ade_emulator_http_options(emu, 3, &o);
        return o;
}

static void ctx_start_with(Ctx *c, const char *overlay, const AdeHttpOptions *override) {
        AdeHttpOptions o;

        *c = (Ctx){.emu = ade_emulator_suite};
        if (overlay) {
                ck_assert_int_eq(ade_emulator_start(overlay, &c->emu), 0);
                c->own_emu = true;
        }
        o = override ? *override : test_options(c->emu);
        o.ca_file = c->emu->ca_file;
        ck_assert_int_eq(ade_emulator_credential(c->emu, &o, &c->cred), 0);
        ck_assert_int_eq(ade_keyvault_new(c->emu->vault_url, c->cred, c->emu->keyvault_resource, &o, &c->kv), 0);
}

static void ctx_start(Ctx *c) {
        ctx_start_with(c, NULL, NULL);
}

static AdeSecret *key_file(void) {
        AdeSecret *k = NULL;

        ck_assert_int_eq(ade_keyfile_generate(&k), 0);
        return k;
}

START_TEST(test_set_and_get_secret_latest) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v = NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        _cleanup_free_ char *id = NULL, *url = NULL;
        char *tags[] = {(char *)"MachineName", (char *)"vm1", NULL};

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("hello", 5, &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "s1", v, "BEK", tags, &id, NULL), 0);
        ck_assert_ptr_nonnull(strstr(id, "/secrets/s1/"));
        ck_assert_int_ge(asprintf(&url, "%s/secrets/s1", c.emu->vault_url), 0);
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, url, &s, NULL), 0);
        ck_assert_str_eq((char *)s->value->data, "hello");
        ck_assert_str_eq(s->content_type, "BEK");
        ck_assert_str_eq(ade_kv_secret_tag(s, "MachineName"), "vm1");
        ck_assert_str_eq(s->id, id);
        ck_assert(s->enabled);
}
END_TEST

/* Adoption finds ADE's secret by its tags: every name, value pair must match, and a disabled secret
 * is not found. */
START_TEST(test_find_secrets_by_tags) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v = NULL;
        _cleanup_free_ char *ida = NULL, *idd = NULL;
        char **found = NULL;
        char *a[] = {(char *)"DiskEncryptionKeyFileName", (char *)"LinuxPassPhraseFileName_1_0", (char *)"MachineName",
                (char *)"vm1", NULL};
        char *b[] = {(char *)"DiskEncryptionKeyFileName", (char *)"LinuxPassPhraseFileName_1_1", (char *)"MachineName",
                (char *)"vm1", NULL};
        char *other_vm[] = {(char *)"DiskEncryptionKeyFileName", (char *)"LinuxPassPhraseFileName_1_0",
                (char *)"MachineName", (char *)"vm2", NULL};

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("k", 1, &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "sa", v, NULL, a, &ida, NULL), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "sb", v, NULL, b, NULL, NULL), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "sc", v, NULL, other_vm, NULL, NULL), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "sd", v, NULL, a, &idd, NULL), 0);
        ck_assert_int_eq(ade_keyvault_disable_secret(c.kv, idd, NULL), 0);

        ck_assert_int_eq(ade_keyvault_find_secrets(c.kv, a, &found, NULL), 0);
        ck_assert_int_eq((int)strv_length(found), 1);
        ck_assert_ptr_nonnull(strstr(found[0], "/secrets/sa"));
        strv_free(found);
        ck_assert_int_eq(
                ade_keyvault_find_secrets(c.kv, (char *[]){(char *)"MachineName", (char *)"vm3", NULL}, &found, NULL),
                0);
        ck_assert_ptr_nonnull(found);
        ck_assert_ptr_null(found[0]);
        strv_free(found);
}
END_TEST

START_TEST(test_get_secret_versioned) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v1 = NULL, *v2 = NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        _cleanup_free_ char *id1 = NULL, *id2 = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("one", 3, &v1), 0);
        ck_assert_int_eq(ade_secret_new_from("two", 3, &v2), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "s2", v1, NULL, NULL, &id1, NULL), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "s2", v2, NULL, NULL, &id2, NULL), 0);
        ck_assert_str_ne(id1, id2);
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, id1, &s, NULL), 0);
        ck_assert_str_eq((char *)s->value->data, "one");
}
END_TEST

/* RotateKey's revocation: one version disabled, the other still served; a URL without a version
 * (which would name whatever is latest) is refused before anything is sent. */
START_TEST(test_disable_secret_version) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v1 = NULL, *v2 = NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        _cleanup_free_ char *id1 = NULL, *id2 = NULL, *latest = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("old", 3, &v1), 0);
        ck_assert_int_eq(ade_secret_new_from("new", 3, &v2), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "s9", v1, NULL, NULL, &id1, NULL), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "s9", v2, NULL, NULL, &id2, NULL), 0);
        ck_assert_int_eq(ade_keyvault_disable_secret(c.kv, id1, NULL), 0);
        ck_assert_int_lt(ade_keyvault_get_secret(c.kv, id1, &s, NULL), 0);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, id2, &s, NULL), 0);
        ck_assert_str_eq((char *)s->value->data, "new");

        ck_assert_int_ge(asprintf(&latest, "%.*s", (int)(strrchr(id2, '/') - id2), id2), 0);
        ck_assert_int_eq(ade_keyvault_disable_secret(c.kv, latest, NULL), -EINVAL);
        s = ade_kv_secret_free(s);
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, id2, &s, NULL), 0);
}
END_TEST

START_TEST(test_secret_value_needing_json_escapes) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v = NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        _cleanup_free_ char *id = NULL;
        const char *text = "quote \" backslash \\ tab \t end";

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from(text, strlen(text), &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "esc", v, NULL, NULL, &id, NULL), 0);
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, id, &s, NULL), 0);
        ck_assert_str_eq((char *)s->value->data, text);
}
END_TEST

START_TEST(test_get_secret_not_found) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *url = NULL;
        AdeKvSecret *s = NULL;

        ctx_start(&c);
        ck_assert_int_ge(asprintf(&url, "%s/secrets/nope", c.emu->vault_url), 0);
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, url, &s, &e), -ENOENT);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(e.status, 404);
        ck_assert_str_eq(e.code, "SecretNotFound");
        ck_assert_ptr_nonnull(e.message);
        ck_assert_str_eq(e.url, url);
}
END_TEST

START_TEST(test_set_secret_bad_name_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *v = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_secret_new_from("x", 1, &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "a/b", v, NULL, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "", v, NULL, NULL, NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_get_key) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        ck_assert_str_eq(k->kty, "RSA");
        ck_assert(k->enabled);
        ck_assert(ade_kv_key_allows(k, "wrapKey"));
        ck_assert(ade_kv_key_allows(k, "unwrapKey"));
        ck_assert(!ade_kv_key_allows(k, "import"));
        ck_assert_str_eq(k->e, "AQAB");
        ck_assert_uint_ge(strlen(k->n), 340);
        ck_assert_ptr_nonnull(strstr(k->kid, "/keys/kek/"));
}
END_TEST

START_TEST(test_get_key_not_found) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *url = NULL;
        AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_ge(asprintf(&url, "%s/keys/missing", c.emu->vault_url), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, url, &k, &e), -ENOENT);
        ck_assert_str_eq(e.code, "KeyNotFound");
        ck_assert_ptr_null(k);
}
END_TEST

static const char *const algs[] = {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"};

START_TEST(test_wrap_unwrap_round_trip) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *plain = key_file(), *back = NULL;
        _cleanup_free_ char *wrapped = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, algs[_i], plain, &wrapped, NULL), 0);
        /* base64url of a 2048-bit RSA block, unpadded */
        ck_assert_uint_eq(strlen(wrapped), 342);
        ck_assert_int_eq(ade_keyvault_unwrap(c.kv, c.emu->kek_url, algs[_i], wrapped, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, plain));
}
END_TEST

START_TEST(test_unwrap_with_other_algorithm_fails) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *plain = key_file();
        _cleanup_free_ char *wrapped = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeSecret *back = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, "RSA-OAEP-256", plain, &wrapped, NULL), 0);
        ck_assert_int_lt(ade_keyvault_unwrap(c.kv, c.emu->kek_url, "RSA-OAEP", wrapped, &back, &e), 0);
        ck_assert_int_eq(e.status, 400);
        ck_assert_ptr_null(back);
}
END_TEST

START_TEST(test_wrap_unknown_algorithm_refused_locally) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *plain = key_file();
        char *wrapped = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, "A256KW", plain, &wrapped, NULL), -EINVAL);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 0);
}
END_TEST

START_TEST(test_wrap_unversioned_kek_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *plain = key_file();
        _cleanup_free_ char *url = NULL;
        char *wrapped = NULL;

        ctx_start(&c);
        ck_assert_int_ge(asprintf(&url, "%s/keys/kek", c.emu->vault_url), 0);
        ck_assert_int_eq(ade_keyvault_wrap(c.kv, url, "RSA-OAEP", plain, &wrapped, NULL), -EINVAL);
        ck_assert_ptr_null(wrapped);
}
END_TEST

START_TEST(test_url_on_other_host_refused) {
        _cleanup_(ctx_done) Ctx c;
        AdeKvSecret *s = NULL;

        ctx_start(&c);
        /* A token for this vault is never sent to another host. */
        ck_assert_int_eq(ade_keyvault_get_secret(c.kv, "https://evil.example.com/secrets/x", &s, NULL), -EINVAL);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 0);
}
END_TEST

START_TEST(test_first_call_answers_challenge) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        _cleanup_json_ json_object *reqs = NULL;
        int64_t status;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        ck_assert_int_eq(ade_emulator_requests(c.emu, &reqs), 0);
        /* 401 challenge, IMDS token, 200 */
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 2);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "imds"), 1);
        ck_assert_int_eq(ade_json_get_int64(json_object_array_get_idx(reqs, 0), "status", &status), 0);
        ck_assert_int_eq(status, 401);
}
END_TEST

START_TEST(test_cached_wrap_and_set_cost_two_requests_on_one_connection) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        _cleanup_secret_ AdeSecret *plain = key_file(), *v = NULL;
        _cleanup_free_ char *wrapped = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        ck_assert_int_eq(ade_emulator_clear_requests(c.emu), 0);

        ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, "RSA-OAEP", plain, &wrapped, NULL), 0);
        ck_assert_int_eq(ade_secret_new_from(wrapped, strlen(wrapped), &v), 0);
        ck_assert_int_eq(ade_keyvault_set_secret(c.kv, "cost", v, "Wrapped BEK", NULL, NULL, NULL), 0);

        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 2);
        ck_assert_int_eq(ade_emulator_connections_to(c.emu, "keyvault"), 1);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "imds"), 0);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "entra"), 0);
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 1);
}
END_TEST

START_TEST(test_many_calls_share_one_connection) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *plain = key_file();

        ctx_start(&c);
        for (unsigned i = 0; i < 20; i++) {
                _cleanup_free_ char *wrapped = NULL;

                ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, "RSA-OAEP-256", plain, &wrapped, NULL), 0);
        }
        /* the challenge and 20 wraps, one TLS handshake */
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 21);
        ck_assert_int_eq(ade_emulator_connections_to(c.emu, "keyvault"), 1);
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 1);
}
END_TEST

START_TEST(test_prepare_gets_challenge_and_token_ahead) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_prepare(c.kv, NULL), 0);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 1);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "imds"), 1);
        ck_assert_int_eq(ade_emulator_clear_requests(c.emu), 0);
        /* The call itself is one request now. */
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 1);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "imds"), 0);
        /* Prepared again: nothing to do. */
        ck_assert_int_eq(ade_keyvault_prepare(c.kv, NULL), 0);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, NULL), 1);
}
END_TEST

typedef struct KeyCall {
        pthread_t thread;
        AdeKeyVault *kv;
        const char *url;
        int result;
} KeyCall;

static void *get_key(void *userdata) {
        KeyCall *k = userdata;
        _cleanup_(ade_kv_key_freep) AdeKvKey *key = NULL;

        k->result = ade_keyvault_get_key(k->kv, k->url, &key, NULL);
        return NULL;
}

START_TEST(test_concurrent_first_calls_answer_one_challenge) {
        _cleanup_(ctx_done) Ctx c;
        KeyCall calls[6] = {};
        _cleanup_json_ json_object *reqs = NULL;
        unsigned challenges = 0;

        ctx_start(&c);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                calls[i] = (KeyCall){.kv = c.kv, .url = c.emu->kek_url};
                ck_assert_int_eq(pthread_create(&calls[i].thread, NULL, get_key, &calls[i]), 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                ck_assert_int_eq(pthread_join(calls[i].thread, NULL), 0);
                ck_assert_int_eq(calls[i].result, 0);
        }
        ck_assert_int_eq(ade_emulator_requests(c.emu, &reqs), 0);
        for (size_t i = 0; i < json_object_array_length(reqs); i++) {
                int64_t status = 0;

                (void)ade_json_get_int64(json_object_array_get_idx(reqs, i), "status", &status);
                challenges += status == 401;
        }
        ck_assert_uint_eq(challenges, 1);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 1 + ELEMENTSOF(calls));
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 1);
}
END_TEST

/* Records the delays asked for instead of sleeping: what the client computed, not how long it took. */
static uint64_t delays[16];
static unsigned n_delays;

static void record_sleep(uint64_t ms, void *userdata) {
        if (n_delays < ELEMENTSOF(delays))
                delays[n_delays++] = ms;
}

START_TEST(test_retry_after_honoured) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        AdeHttpOptions o = test_options(ade_emulator_suite);

        o.sleep = record_sleep;
        o.retry_after_max_ms = 60 * 1000;
        ctx_start_with(&c, NULL, &o);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"status\":429,\"retry_after\":7}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        ck_assert_uint_eq(n_delays, 1);
        ck_assert_uint_eq(delays[0], 7000);
}
END_TEST

START_TEST(test_backoff_without_retry_after) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        AdeHttpOptions o = test_options(ade_emulator_suite);

        o.sleep = record_sleep;
        o.backoff_initial_ms = 1000;
        o.backoff_max_ms = 16000;
        ctx_start_with(&c, NULL, &o);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"status\":503,\"count\":3}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        /* 1 s, 2 s, 4 s, each with jitter down to half */
        ck_assert_uint_eq(n_delays, 3);
        ck_assert(delays[0] >= 500 && delays[0] <= 1000);
        ck_assert(delays[1] >= 1000 && delays[1] <= 2000);
        ck_assert(delays[2] >= 2000 && delays[2] <= 4000);
}
END_TEST

START_TEST(test_throttled_then_success) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(
                ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"status\":429,\"retry_after\":1,\"count\":1}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        /* 429, then 401 challenge, then 200 */
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 3);
}
END_TEST

START_TEST(test_throttled_until_retries_run_out) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(
                ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"status\":429,\"retry_after\":0,\"count\":50}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EBUSY);
        ck_assert_int_eq(e.status, 429);
        ck_assert_ptr_null(k);
        /* the first try and 3 retries */
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 4);
}
END_TEST

START_TEST(test_server_errors_until_retries_run_out) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"status\":503,\"count\":50}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EAGAIN);
        ck_assert_int_eq(e.status, 503);
        ck_assert_ptr_nonnull(e.url);
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 4);
}
END_TEST

START_TEST(test_server_error_then_success) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"status\":500,\"count\":2}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
}
END_TEST

START_TEST(test_expired_token_refreshed_once) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"imds-token\",\"token\":\"expired\",\"count\":1}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 2);
        /* challenge, expired, retried */
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "keyvault"), 3);
}
END_TEST

START_TEST(test_expired_token_twice_fails) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"imds-token\",\"token\":\"expired\",\"count\":5}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EACCES);
        ck_assert_int_eq(e.status, 401);
        ck_assert_ptr_nonnull(strstr(e.message, "TokenExpired"));
        /* one refresh only */
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 2);
}
END_TEST

START_TEST(test_wrong_audience_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(
                ade_emulator_fault(c.emu, "{\"route\":\"imds-token\",\"token\":\"wrong-audience\",\"count\":5}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EACCES);
        ck_assert_int_eq(e.status, 401);
        ck_assert_str_eq(e.code, "Unauthorized");
        ck_assert_ptr_nonnull(strstr(e.message, "AKV10022"));
        ck_assert_uint_eq(ade_credential_fetch_count(c.cred), 1);
}
END_TEST

/* The challenge is answered first; these faults then hit the real request. */
static void prime(Ctx *c) {
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ck_assert_int_eq(ade_keyvault_get_key(c->kv, c->emu->kek_url, &k, NULL), 0);
}

START_TEST(test_malformed_json_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        prime(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"body\":\"{\\\"key\\\": [}\"}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EPROTO);
        ck_assert_str_eq(e.code, "MalformedReply");
        ck_assert_ptr_null(k);
}
END_TEST

START_TEST(test_truncated_json_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_secret_ AdeSecret *plain = key_file();
        char *wrapped = NULL;

        ctx_start(&c);
        prime(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu,
                                 "{\"route\":\"keyvault\",\"body\":\"{\\\"kid\\\":\\\"x\\\",\\\"value\\\":\\\"abc\"}"),
                0);
        ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, "RSA-OAEP", plain, &wrapped, &e), -EPROTO);
        ck_assert_str_eq(e.code, "MalformedReply");
        ck_assert_ptr_null(wrapped);
}
END_TEST

START_TEST(test_reply_without_expected_field_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_secret_ AdeSecret *plain = key_file();
        char *wrapped = NULL;

        ctx_start(&c);
        prime(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"body\":\"{\\\"kid\\\":\\\"x\\\"}\"}"), 0);
        ck_assert_int_eq(ade_keyvault_wrap(c.kv, c.emu->kek_url, "RSA-OAEP", plain, &wrapped, &e), -EPROTO);
        ck_assert_ptr_null(wrapped);
}
END_TEST

START_TEST(test_body_over_cap_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        prime(&c);
        /* The default cap is 4 MiB. */
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"body_bytes\":5242880}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EFBIG);
        ck_assert_str_eq(e.code, "ResponseTooLarge");
        ck_assert_ptr_null(k);
}
END_TEST

START_TEST(test_body_under_cap_accepted_as_json) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        prime(&c);
        /* A large but allowed answer is read whole; it is no key, so the parse says so. */
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"body_bytes\":1048576}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -EPROTO);
        ck_assert_str_eq(e.code, "MalformedReply");
}
END_TEST

START_TEST(test_too_slow_server_times_out) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpOptions o;
        AdeKvKey *k = NULL;

        o = test_options(ade_emulator_suite);
        o.timeout_ms = 300;
        o.max_retries = 1;
        ctx_start_with(&c, NULL, &o);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"latency_ms\":3000,\"count\":2}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -ETIMEDOUT);
        ck_assert_str_eq(e.code, "Timeout");
        ck_assert_int_eq(e.status, 0);
}
END_TEST

START_TEST(test_dropped_connection_retried) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"drop\":true,\"count\":1}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
}
END_TEST

START_TEST(test_dropped_connections_fail) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeKvKey *k = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_emulator_fault(c.emu, "{\"route\":\"keyvault\",\"drop\":true,\"count\":50}"), 0);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, &e), -ECONNRESET);
        ck_assert_str_eq(e.code, "ConnectionDropped");
}
END_TEST

START_TEST(test_untrusted_certificate_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_emulator_stopp) AdeEmulator *other = NULL;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpOptions o;
        AdeKvKey *k = NULL;

        ctx_start(&c);
        /* A second emulator has its own CA; the client trusts only the first one's. */
        ck_assert_int_eq(ade_emulator_start(NULL, &other), 0);
        o = test_options(c.emu);
        ck_assert_int_eq(ade_keyvault_new(other->vault_url, c.cred, other->keyvault_resource, &o, &kv), 0);
        ck_assert_int_eq(ade_keyvault_get_key(kv, other->kek_url, &k, &e), -EPERM);
        ck_assert_str_eq(e.code, "CertificateNotTrusted");
        ck_assert_ptr_nonnull(strstr(e.message, other->vault_url));
        ck_assert_ptr_nonnull(strstr(e.message, c.emu->ca_file));
        ck_assert_int_eq(ade_emulator_requests_to(other, "keyvault"), 0);
}
END_TEST

START_TEST(test_challenge_scope_variant) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start_with(&c, "{\"keyvault\":{\"challenge_scope\":true}}", NULL);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
}
END_TEST

START_TEST(test_challenge_login_windows_net_authority) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;

        ctx_start_with(&c, "{\"keyvault\":{\"challenge_authority\":\"https://login.windows.net\"}}", NULL);
        ck_assert_int_eq(ade_keyvault_get_key(c.kv, c.emu->kek_url, &k, NULL), 0);
}
END_TEST

START_TEST(test_challenge_for_foreign_resource_refused) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpOptions o;
        AdeKvKey *k = NULL;

        ctx_start(&c);
        o = test_options(c.emu);
        /* This client expects a sovereign cloud's resource; the vault asks for the public one. */
        ck_assert_int_eq(ade_keyvault_new(c.emu->vault_url, c.cred, "https://vault.azure.cn", &o, &kv), 0);
        ck_assert_int_eq(ade_keyvault_get_key(kv, c.emu->kek_url, &k, &e), -EPERM);
        ck_assert_str_eq(e.code, "ChallengeResourceMismatch");
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "imds"), 0);
}
END_TEST

/* How many requests reached Key Vault with a token. */
static unsigned requests_with_token(AdeEmulator *e) {
        _cleanup_json_ json_object *reqs = NULL;
        unsigned n = 0;

        ck_assert_int_eq(ade_emulator_requests(e, &reqs), 0);
        for (size_t i = 0; i < json_object_array_length(reqs); i++) {
                json_object *q = json_object_array_get_idx(reqs, i);
                const char *service = NULL;
                bool auth = false;

                (void)ade_json_get_string(q, "service", &service);
                (void)ade_json_get_bool(q, "authorization", &auth);
                n += streq_ptr(service, "keyvault") && auth;
        }
        return n;
}

/* A client for the public cloud's Key Vault resource, against the emulator answering with the
 * challenge @overlay configures: the call is refused with ChallengeResourceMismatch (its message
 * naming the vault and containing @needle), and neither a token is asked for nor one sent. */
static void check_challenge_refused(const char *overlay, const char *needle) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeHttpOptions o;
        AdeKvKey *k = NULL;

        ctx_start_with(&c, overlay, NULL);
        o = test_options(c.emu);
        ck_assert_int_eq(ade_keyvault_new(c.emu->vault_url, c.cred, "https://vault.azure.net", &o, &kv), 0);
        ck_assert_int_eq(ade_keyvault_get_key(kv, c.emu->kek_url, &k, &e), -EPERM);
        ck_assert_str_eq(e.code, "ChallengeResourceMismatch");
        ck_assert_ptr_nonnull(strstr(e.message, c.emu->vault_url));
        ck_assert_ptr_nonnull(strstr(e.message, needle));
        ck_assert_int_eq(ade_emulator_requests_to(c.emu, "imds"), 0);
        ck_assert_uint_eq(requests_with_token(c.emu), 0);
}

/* The vault answers as Key Vault of the public cloud does, resource="https://vault.azure.net", but
 * from localhost, which does not lie within vault.azure.net: a look-alike naming our resource gets
 * no token (the SDKs' verify_challenge_resource). */
START_TEST(test_challenge_naming_our_resource_from_a_foreign_host_refused) {
        check_challenge_refused("{\"keyvault\":{\"resource\":\"https://vault.azure.net\"}}", "does not lie within");
}
END_TEST

/* "scope=https://localhost/.default" from localhost: the host lies within what it names, but that
 * is not a Key Vault domain of our cloud (https://vault.azure.net), so it gets no Key Vault token. */
START_TEST(test_challenge_of_a_host_naming_itself_not_mapped_to_our_resource) {
        check_challenge_refused("{\"keyvault\":{\"challenge_scope\":true}}", "Key Vault resource");
}
END_TEST

START_TEST(test_challenge_from_a_vault_under_the_resource_domain) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL;
        _cleanup_(ade_kv_key_freep) AdeKvKey *k = NULL;
        _cleanup_free_ char *vault = NULL, *kek = NULL;
        AdeHttpOptions o;

        /* other.localhost lies under https://localhost, as contoso.vault.azure.net under
         * https://vault.azure.net. */
        ctx_start(&c);
        o = test_options(c.emu);
        ck_assert_int_ge(asprintf(&vault, "https://other.localhost:%d", c.emu->https_port), 0);
        ck_assert_int_ge(asprintf(&kek, "%s%s", vault, c.emu->kek_url + strlen(c.emu->vault_url)), 0);
        ck_assert_int_eq(ade_keyvault_new(vault, c.cred, c.emu->keyvault_resource, &o, &kv), 0);
        ck_assert_int_eq(ade_keyvault_get_key(kv, kek, &k, NULL), 0);
}
END_TEST

START_TEST(test_new_refuses_plain_http_vault) {
        _cleanup_(ctx_done) Ctx c;
        AdeKeyVault *kv = NULL;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyvault_new("http://localhost:1", c.cred, NULL, NULL, &kv), -EINVAL);
        ck_assert_ptr_null(kv);
}
END_TEST

int main(void) {
        Suite *s = suite_create("keyvault-emu");
        TCase *tc = ade_test_case("keyvault-emu");

        if (!ade_emulator_available()) {
                fprintf(stderr, "No emulator binary (built only with libmicrohttpd): skipping.\n");
                return 77;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);

        tcase_add_unchecked_fixture(tc, ade_emulator_suite_setup, ade_emulator_suite_teardown);
        tcase_add_checked_fixture(tc, ade_emulator_test_setup, NULL);
        tcase_add_test(tc, test_set_and_get_secret_latest);
        tcase_add_test(tc, test_find_secrets_by_tags);
        tcase_add_test(tc, test_get_secret_versioned);
        tcase_add_test(tc, test_disable_secret_version);
        tcase_add_test(tc, test_secret_value_needing_json_escapes);
        tcase_add_test(tc, test_get_secret_not_found);
        tcase_add_test(tc, test_set_secret_bad_name_refused);
        tcase_add_test(tc, test_get_key);
        tcase_add_test(tc, test_get_key_not_found);
        tcase_add_loop_test(tc, test_wrap_unwrap_round_trip, 0, (int)ELEMENTSOF(algs));
        tcase_add_test(tc, test_unwrap_with_other_algorithm_fails);
        tcase_add_test(tc, test_wrap_unknown_algorithm_refused_locally);
        tcase_add_test(tc, test_wrap_unversioned_kek_refused);
        tcase_add_test(tc, test_url_on_other_host_refused);
        tcase_add_test(tc, test_first_call_answers_challenge);
        tcase_add_test(tc, test_cached_wrap_and_set_cost_two_requests_on_one_connection);
        tcase_add_test(tc, test_many_calls_share_one_connection);
        tcase_add_test(tc, test_prepare_gets_challenge_and_token_ahead);
        tcase_add_test(tc, test_concurrent_first_calls_answer_one_challenge);
        tcase_add_test(tc, test_retry_after_honoured);
        tcase_add_test(tc, test_backoff_without_retry_after);
        tcase_add_test(tc, test_throttled_then_success);
        tcase_add_test(tc, test_throttled_until_retries_run_out);
        tcase_add_test(tc, test_server_errors_until_retries_run_out);
        tcase_add_test(tc, test_server_error_then_success);
        tcase_add_test(tc, test_expired_token_refreshed_once);
        tcase_add_test(tc, test_expired_token_twice_fails);
        tcase_add_test(tc, test_wrong_audience_refused);
        tcase_add_test(tc, test_malformed_json_refused);
        tcase_add_test(tc, test_truncated_json_refused);
        tcase_add_test(tc, test_reply_without_expected_field_refused);
        tcase_add_test(tc, test_body_over_cap_refused);
        tcase_add_test(tc, test_body_under_cap_accepted_as_json);
        tcase_add_test(tc, test_too_slow_server_times_out);
        tcase_add_test(tc, test_dropped_connection_retried);
        tcase_add_test(tc, test_dropped_connections_fail);
        tcase_add_test(tc, test_untrusted_certificate_refused);
        tcase_add_test(tc, test_challenge_scope_variant);
        tcase_add_test(tc, test_challenge_login_windows_net_authority);
        tcase_add_test(tc, test_challenge_for_foreign_resource_refused);
        tcase_add_test(tc, test_challenge_naming_our_resource_from_a_foreign_host_refused);
        tcase_add_test(tc, test_challenge_of_a_host_naming_itself_not_mapped_to_our_resource);
        tcase_add_test(tc, test_challenge_from_a_vault_under_the_resource_domain);
        tcase_add_test(tc, test_new_refuses_plain_http_vault);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
