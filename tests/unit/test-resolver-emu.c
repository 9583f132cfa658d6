/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key resolver against the emulator: escrow and key file back, with and without a KEK, with
 * the KEK in another vault, from a token without Passphrase; one token per resource and reused
 * connections across calls and threads; vault URLs from a token through its one door. */
#include <sys/stat.h>
#include <pthread.h>

#include "ade-json.h"
#include "ade-keyfile.h"
#include "ade-resolver.h"
#include "ade-test.h"
#include "emu-harness.h"

#define THREADS 6

typedef struct Ctx {
        AdeConfig *config;
        AdeResolver *resolver;
} Ctx;

static void ctx_done(Ctx *c) {
        ade_resolver_free(c->resolver);
        ade_config_free(c->config);
}

static void ctx_start(Ctx *c) {
        AdeHttpOptions o;

        *c = (Ctx){};
        ck_assert_int_eq(ade_emulator_load_config(ade_emulator_suite, NULL, NULL, &c->config), 0);
        ade_emulator_http_options(ade_emulator_suite, 2, &o);
        ck_assert_int_eq(ade_resolver_new(c->config, &o, &c->resolver), 0);
}

static AdeSecret *key_file(void) {
        AdeSecret *k = NULL;

        ck_assert_int_eq(ade_keyfile_generate(&k), 0);
        return k;
}

/* The same URL on the emulator's other name (in its certificate, under its Key Vault domain
 * https://localhost): another origin, so another vault as far as ade knows. */
static char *on_other_vault(const char *url) {
        const char *rest = startswith(url, "https://localhost:");
        char *o = NULL;

        ck_assert_ptr_nonnull(rest);
        ck_assert_int_ge(asprintf(&o, "https://other.localhost:%s", rest), 0);
        return o;
}

static AdeLuksToken *escrow(Ctx *c, const AdeSecret *key, const char *kek_url) {
        AdeLuksToken *t = NULL;

        ck_assert_int_eq(ade_resolver_escrow(c->resolver,
                                 &(AdeResolverEscrow){
                                         .vault_url = ade_emulator_suite->vault_url,
                                         .vault_resource_id = ade_emulator_suite->vault_resource_id,
                                         .kek_url = kek_url,
                                         .key_file_name = "LinuxPassPhraseFileName_1_0",
                                         .volume_type = "Data",
                                         .device_id = "/dev/disk/azure/scsi1/lun0",
                                 },
                                 key, &t, NULL),
                0);
        return t;
}

/* Requests that carried a token, and token requests, since the last reset. */
static unsigned token_requests(void) {
        return ade_emulator_requests_to(ade_emulator_suite, "imds") +
               ade_emulator_requests_to(ade_emulator_suite, "entra");
}

START_TEST(test_escrow_and_resolve_without_kek) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file(), *back = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;

        ctx_start(&c);
        t = escrow(&c, key, NULL);
        ck_assert_str_eq(t->version, ADE_LUKS_TOKEN_VERSION);
        ck_assert_str_eq(t->key_vault_url, ade_emulator_suite->vault_url);
        ck_assert_str_eq(t->key_vault_resource_id, ade_emulator_suite->vault_resource_id);
        ck_assert(ade_secret_url_is_versioned(t->secret_url));
        ck_assert_ptr_null(t->kek_url);
        ck_assert_ptr_null(t->kek_vault_resource_id);
        ck_assert_ptr_null(t->kek_algorithm);
        ck_assert_ptr_null(t->passphrase);
        ck_assert_str_eq(t->volume_type, "Data");
        ck_assert_str_eq(t->device_id, "/dev/disk/azure/scsi1/lun0");
        ck_assert_int_eq(t->keyslot, -1);

        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, key));
        /* The vault's token was fetched once, for the escrow and the resolution both. */
        ck_assert_uint_eq(token_requests(), 1);
}
END_TEST

START_TEST(test_escrow_and_resolve_with_kek_is_one_unwrap) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file(), *back = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_json_ json_object *reqs = NULL;
        const char *path;
        size_t n;

        ctx_start(&c);
        t = escrow(&c, key, ade_emulator_suite->kek_url);
        ck_assert_str_eq(t->kek_url, ade_emulator_suite->kek_url);
        ck_assert_str_eq(t->kek_vault_resource_id, ade_emulator_suite->vault_resource_id);
        ck_assert_str_eq(t->kek_algorithm, "RSA-OAEP");
        ck_assert_ptr_nonnull(t->passphrase);
        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, key));

        /* challenge, wrapkey, set, get; then no challenge, no token, no secret: one unwrapkey, over
         * the connection the escrow left open. */
        ck_assert_int_eq(ade_emulator_requests(ade_emulator_suite, &reqs), 0);
        n = json_object_array_length(reqs);
        ck_assert_int_eq(ade_json_get_string(json_object_array_get_idx(reqs, n - 1), "path", &path), 0);
        ck_assert_ptr_nonnull(strstr(path, "/unwrapkey"));
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "keyvault"), 5);
        ck_assert_uint_eq(ade_emulator_connections_to(ade_emulator_suite, "keyvault"), 1);
        ck_assert_uint_eq(token_requests(), 1);
}
END_TEST

START_TEST(test_kek_in_another_vault) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file(), *back = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_free_ char *kek = on_other_vault(ade_emulator_suite->kek_url);
        AdeCredential *cred;

        /* A vault the configuration does not name: trusted as a root Enable naming --kek-url is. */
        ctx_start(&c);
        ck_assert_int_eq(ade_resolver_trust_vault(c.resolver, kek), 0);
        t = escrow(&c, key, kek);
        ck_assert_str_eq(t->kek_url, kek);
        ck_assert_ptr_nonnull(strstr(t->secret_url, "https://localhost:"));
        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, key));
        /* Each vault answered the challenge once; both want the same Key Vault token. */
        ck_assert_int_eq(ade_resolver_credential(c.resolver, &cred), 0);
        ck_assert_uint_eq(ade_credential_fetch_count(cred), 1);
}
END_TEST

START_TEST(test_token_without_passphrase_gets_it_from_the_secret) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file(), *back = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_free_ char *wrapped = NULL;

        /* A token rebuilt from the state file before the header exists lacks the Passphrase. */
        ctx_start(&c);
        t = escrow(&c, key, ade_emulator_suite->kek_url);
        wrapped = TAKE_PTR(t->passphrase);
        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, NULL), 0);
        ck_assert(ade_secret_equal(back, key));
        ck_assert_str_eq(t->passphrase, wrapped);
}
END_TEST

START_TEST(test_missing_secret_says_so) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *url = NULL;
        AdeLuksToken t = {};
        AdeSecret *back = NULL;

        ctx_start(&c);
        ck_assert_int_ge(asprintf(&url, "%s/secrets/nope/0123abcd", ade_emulator_suite->vault_url), 0);
        t.secret_url = url;
        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, &t, &back, &e), -ENOENT);
        ck_assert_str_eq(e.code, "SecretNotFound");
        ck_assert_ptr_null(back);
}
END_TEST

START_TEST(test_hostile_vault_urls_from_a_token_go_nowhere) {
        /* Refused as URLs, by the one door every vault passes. */
        static const char *const bad_urls[] = {
                "https://localhost:1@evil.example/secrets/a/1",
                "https://u:p@localhost:1/secrets/a/1",
                "http://localhost:1/secrets/a/1",
                "https://localhost:1\\@evil.example/secrets/a/1",
                "https://%6cocalhost:1/secrets/a/1",
                "https:///secrets/a/1",
        };
        /* Fine URLs, but not a secret's. */
        static const char *const bad_paths[] = {
                "https://localhost:1/secrets/../keys/a/1",
                "https://localhost:1/secrets/%2e%2e/a/1",
                "https://localhost:1/secrets/a%2Fb/1",
                "https://localhost:1/secrets/a/1#x",
                "https://localhost:1/keys/a/1",
        };
        _cleanup_(ctx_done) Ctx c;

        ctx_start(&c);
        for (size_t i = 0; i < ELEMENTSOF(bad_urls); i++) {
                AdeLuksToken t = {.secret_url = (char *)bad_urls[i]};
                AdeSecret *back = NULL;
                AdeKeyVault *kv = NULL;

                ck_assert_msg(ade_resolver_check_vault(c.resolver, bad_urls[i], NULL) == -EINVAL, "%s", bad_urls[i]);
                ck_assert_int_eq(ade_resolver_keyvault(c.resolver, bad_urls[i], &kv, NULL), -EINVAL);
                ck_assert_ptr_null(kv);
                ck_assert_msg(ade_resolver_key_from_token(c.resolver, &t, &back, NULL) == -EINVAL, "%s", bad_urls[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_paths); i++) {
                AdeLuksToken t = {.secret_url = (char *)bad_paths[i]};
                AdeSecret *back = NULL;

                ck_assert_msg(ade_resolver_key_from_token(c.resolver, &t, &back, NULL) == -EINVAL, "%s", bad_paths[i]);
        }
        {
                _cleanup_free_ char *secret = NULL;
                AdeLuksToken t = {.kek_url = (char *)"https://evil.example@localhost:1/keys/k/1"};
                AdeSecret *back = NULL;

                ck_assert_int_ge(asprintf(&secret, "%s/secrets/a/1", ade_emulator_suite->vault_url), 0);
                t.secret_url = secret;
                ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, &t, &back, NULL), -EINVAL);
        }
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, NULL), 0);
}
END_TEST

START_TEST(test_escrow_to_a_hostile_vault_goes_nowhere) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file();
        AdeLuksToken *t = NULL;

        /* RotateKey escrows to the KeyVaultURL a token names: the same door. */
        ctx_start(&c);
        ck_assert_int_eq(
                ade_resolver_escrow(c.resolver,
                        &(AdeResolverEscrow){.vault_url = "https://localhost:1@evil.example", .volume_type = "Data"},
                        key, &t, NULL),
                -EINVAL);
        ck_assert_int_eq(ade_resolver_escrow(c.resolver,
                                 &(AdeResolverEscrow){.vault_url = ade_emulator_suite->vault_url,
                                         .kek_url = "https://u:p@localhost:1/keys/k/1",
                                         .volume_type = "Data"},
                                 key, &t, NULL),
                -EINVAL);
        ck_assert_ptr_null(t);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, NULL), 0);
}
END_TEST

START_TEST(test_token_naming_a_foreign_vault_gets_no_token) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_(ade_emulator_stopp) AdeEmulator *foreign = NULL;
        _cleanup_secret_ AdeSecret *key = key_file();
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_cloud_error_ AdeCloudError e = {};
        _cleanup_free_ char *secret = NULL, *kek = NULL, *other_kek = NULL;
        AdeSecret *back = NULL;
        AdeKeyVault *kv = NULL;

        /* A second server on the same host (another port): a volume's token naming it, as a disk an
         * attacker hands the VM would, sends nothing there, token or not. */
        ck_assert_int_eq(ade_emulator_start(NULL, &foreign), 0);
        ctx_start(&c);
        t = escrow(&c, key, ade_emulator_suite->kek_url);
        ck_assert_int_ge(asprintf(&secret, "%s/secrets/a/0123abcd", foreign->vault_url), 0);
        free(t->secret_url);
        t->secret_url = TAKE_PTR(secret);
        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, &e), -EPERM);
        ck_assert_ptr_null(back);
        ck_assert_str_eq(e.code, "VaultNotAllowed");
        ck_assert_ptr_nonnull(strstr(e.message, foreign->vault_url));
        ck_assert_ptr_nonnull(strstr(e.message, "[keyvault] url"));

        /* The secret on our vault, the KEK on the foreign one. */
        free(t->secret_url);
        ck_assert_int_ge(asprintf(&t->secret_url, "%s/secrets/a/0123abcd", ade_emulator_suite->vault_url), 0);
        ck_assert_int_ge(asprintf(&kek, "%s/keys/kek/0123abcd", foreign->vault_url), 0);
        free(t->kek_url);
        t->kek_url = TAKE_PTR(kek);
        ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, NULL), -EPERM);

        /* Another name of our own emulator, not named anywhere: refused as well. */
        other_kek = on_other_vault(ade_emulator_suite->kek_url);
        ck_assert_int_eq(ade_resolver_keyvault(c.resolver, other_kek, &kv, NULL), -EPERM);
        ck_assert_ptr_null(kv);

        ck_assert_uint_eq(ade_emulator_requests_to(foreign, NULL), 0);
}
END_TEST

START_TEST(test_escrow_to_an_unnamed_vault_goes_nowhere) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file();
        _cleanup_free_ char *other = on_other_vault(ade_emulator_suite->vault_url);
        _cleanup_cloud_error_ AdeCloudError e = {};
        AdeLuksToken *t = NULL;

        /* RotateKey escrows to the KeyVaultURL a volume's token names. */
        ctx_start(&c);
        ck_assert_int_eq(ade_resolver_escrow(c.resolver,
                                 &(AdeResolverEscrow){.vault_url = other, .volume_type = "Data"}, key, &t, &e),
                -EPERM);
        ck_assert_str_eq(e.code, "VaultNotAllowed");
        ck_assert_ptr_null(t);
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, NULL), 0);
}
END_TEST

typedef struct Resolve {
        pthread_t thread;
        AdeResolver *resolver;
        AdeLuksToken *token;
        AdeSecret *key;
        int result;
} Resolve;

static void *resolve(void *userdata) {
        Resolve *r = userdata;

        r->result = ade_resolver_key_from_token(r->resolver, r->token, &r->key, NULL);
        return NULL;
}

START_TEST(test_threads_share_token_and_connections) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file();
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        Resolve r[THREADS] = {};
        AdeCredential *cred;
        unsigned conns;

        ctx_start(&c);
        t = escrow(&c, key, ade_emulator_suite->kek_url);
        for (size_t i = 0; i < THREADS; i++) {
                r[i] = (Resolve){.resolver = c.resolver};
                ck_assert_int_eq(ade_luks_token_copy(t, &r[i].token), 0);
                ck_assert_int_eq(pthread_create(&r[i].thread, NULL, resolve, &r[i]), 0);
        }
        for (size_t i = 0; i < THREADS; i++) {
                ck_assert_int_eq(pthread_join(r[i].thread, NULL), 0);
                ck_assert_int_eq(r[i].result, 0);
                ck_assert(ade_secret_equal(r[i].key, key));
                ade_secret_free(r[i].key);
                ade_luks_token_free(r[i].token);
        }
        ck_assert_int_eq(ade_resolver_credential(c.resolver, &cred), 0);
        ck_assert_uint_eq(ade_credential_fetch_count(cred), 1);
        ck_assert_uint_eq(token_requests(), 1);
        /* 1 challenge, wrap, set, get, and one unwrap per thread: never more connections than callers
         * at once, and the escrow's sequential calls shared one. */
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "keyvault"), 4 + THREADS);
        conns = ade_emulator_connections_to(ade_emulator_suite, "keyvault");
        ck_assert_uint_ge(conns, 1);
        ck_assert_uint_le(conns, THREADS);
}
END_TEST

START_TEST(test_sequential_calls_reuse_one_connection) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_secret_ AdeSecret *key = key_file();

        ctx_start(&c);
        for (unsigned i = 0; i < 3; i++) {
                _cleanup_(ade_luks_token_freep) AdeLuksToken *t = escrow(&c, key, ade_emulator_suite->kek_url);
                _cleanup_secret_ AdeSecret *back = NULL;

                ck_assert_int_eq(ade_resolver_key_from_token(c.resolver, t, &back, NULL), 0);
        }
        /* Key Vault and the identity, each over one connection for all 13 requests. */
        ck_assert_uint_eq(ade_emulator_requests_to(ade_emulator_suite, "keyvault"), 1 + 3 * 4);
        ck_assert_uint_eq(ade_emulator_connections_to(ade_emulator_suite, "keyvault"), 1);
}
END_TEST

START_TEST(test_broken_identity_reported_then_retried) {
        _cleanup_(ctx_done) Ctx c;
        _cleanup_free_ char *secret_file = NULL, *extra = NULL;
        AdeCredential *cred = NULL;
        AdeHttpOptions o;
        FILE *f;

        /* An identity whose secret file is missing fails at use, and works once the file is there. */
        ck_assert_int_ge(asprintf(&secret_file, "%s/app-secret", ade_emulator_suite->dir), 0);
        (void)unlink(secret_file);
        ck_assert_int_ge(asprintf(&extra,
                                 "[identity]\ntype = client-secret\nclient-id = 5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03\n"
                                 "tenant-id = %s\nclient-secret-file = %s\n",
                                 ade_emulator_suite->tenant_id, secret_file),
                0);
        c = (Ctx){};
        ck_assert_int_eq(ade_emulator_load_config(ade_emulator_suite, NULL, extra, &c.config), 0);
        ade_emulator_http_options(ade_emulator_suite, 2, &o);
        ck_assert_int_eq(ade_resolver_new(c.config, &o, &c.resolver), 0);
        ck_assert_int_eq(ade_resolver_credential(c.resolver, &cred), -ENOENT);
        ck_assert_ptr_null(cred);

        f = fopen(secret_file, "we");
        ck_assert_ptr_nonnull(f);
        fputs("ade~emulator.Secret-0123456789\n", f);
        fclose(f);
        ck_assert_int_eq(chmod(secret_file, 0600), 0); /* ade refuses a secret others may read */
        ck_assert_int_eq(ade_resolver_credential(c.resolver, &cred), 0);
        ck_assert_ptr_nonnull(cred);
        (void)unlink(secret_file);
}
END_TEST

int main(void) {
        Suite *s = suite_create("resolver-emu");
        TCase *tc = ade_test_case("resolver-emu");

        if (!ade_emulator_available())
                return 77;

        tcase_add_unchecked_fixture(tc, ade_emulator_suite_setup, ade_emulator_suite_teardown);
        tcase_add_checked_fixture(tc, ade_emulator_test_setup, NULL);
        tcase_add_test(tc, test_escrow_and_resolve_without_kek);
        tcase_add_test(tc, test_escrow_and_resolve_with_kek_is_one_unwrap);
        tcase_add_test(tc, test_kek_in_another_vault);
        tcase_add_test(tc, test_token_without_passphrase_gets_it_from_the_secret);
        tcase_add_test(tc, test_missing_secret_says_so);
        tcase_add_test(tc, test_hostile_vault_urls_from_a_token_go_nowhere);
        tcase_add_test(tc, test_escrow_to_a_hostile_vault_goes_nowhere);
        tcase_add_test(tc, test_token_naming_a_foreign_vault_gets_no_token);
        tcase_add_test(tc, test_escrow_to_an_unnamed_vault_goes_nowhere);
        tcase_add_test(tc, test_threads_share_token_and_connections);
        tcase_add_test(tc, test_sequential_calls_reuse_one_connection);
        tcase_add_test(tc, test_broken_identity_reported_then_retried);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
