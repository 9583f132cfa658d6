/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The credential's cache under threads (one fetch for many callers, fetches for different resources
 * side by side, a refused token replaced once), its tokens handed out as copies, and the one rule
 * that says a bearer token was refused. */
#include <pthread.h>
#include <time.h>

#include "ade-credential.h"
#include "ade-test.h"

#define THREADS 8

/* A token source that takes its time, so that callers overlap, and records how many fetches ran at
 * once for one resource (must be 1) and in all (may be more). */
typedef struct Slow {
        pthread_mutex_t lock;
        pthread_cond_t changed;
        unsigned calls;
        unsigned running, running_max;
        unsigned want_together; /* > 0: each fetch waits until this many run at once */
        bool together_reached;
        int fail;
} Slow;

static void slow_init(Slow *s) {
        *s = (Slow){};
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->changed, NULL);
}

static int slow_fetch(void *userdata, const char *resource, const char *tenant, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error) {
        Slow *s = userdata;
        struct timespec pause = {0, 50 * 1000 * 1000};
        char buf[64];
        unsigned n;

        (void)tenant;
        pthread_mutex_lock(&s->lock);
        n = ++s->calls;
        if (++s->running > s->running_max)
                s->running_max = s->running;
        if (s->want_together > 0) {
                struct timespec deadline;

                /* A deadline only so that a credential that serialises fetches fails instead of hanging. */
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_sec += 30;
                if (s->running >= s->want_together)
                        s->together_reached = true;
                pthread_cond_broadcast(&s->changed);
                while (!s->together_reached)
                        if (pthread_cond_timedwait(&s->changed, &s->lock, &deadline) != 0)
                                break;
        }
        pthread_mutex_unlock(&s->lock);

        /* Long enough for the other callers to arrive while this fetch runs. */
        nanosleep(&pause, NULL);

        pthread_mutex_lock(&s->lock);
        s->running--;
        pthread_mutex_unlock(&s->lock);

        if (s->fail) {
                (void)ade_cloud_error_set(ret_error, 400, "invalid_request", "Identity not found", "http://imds");
                return s->fail;
        }
        snprintf(buf, sizeof(buf), "%s-%u", resource, n);
        *ret_expires_on = (uint64_t)time(NULL) + 3600;
        return ade_secret_new_from(buf, strlen(buf), ret_token);
}

typedef struct Caller {
        pthread_t thread;
        AdeCredential *credential;
        const char *resource;
        const AdeSecret *refused;
        int result;
        AdeSecret *token;
        AdeCloudError error;
} Caller;

static void *call(void *userdata) {
        Caller *c = userdata;

        c->result = ade_credential_get_token(c->credential, c->resource, NULL, c->refused, &c->token, &c->error);
        return NULL;
}

static void run_callers(Caller *callers, size_t n) {
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(pthread_create(&callers[i].thread, NULL, call, &callers[i]), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(pthread_join(callers[i].thread, NULL), 0);
}

static void callers_done(Caller *callers, size_t n) {
        for (size_t i = 0; i < n; i++) {
                ade_secret_free(callers[i].token);
                ade_cloud_error_done(&callers[i].error);
        }
}

START_TEST(test_concurrent_callers_share_one_fetch) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        Caller callers[THREADS] = {};
        Slow s;

        slow_init(&s);
        ck_assert_int_eq(ade_credential_new(slow_fetch, &s, NULL, &c), 0);
        for (size_t i = 0; i < THREADS; i++)
                callers[i] = (Caller){.credential = c, .resource = "https://vault.azure.net"};
        run_callers(callers, THREADS);

        for (size_t i = 0; i < THREADS; i++) {
                ck_assert_int_eq(callers[i].result, 0);
                ck_assert_str_eq((char *)callers[i].token->data, "https://vault.azure.net-1");
        }
        ck_assert_uint_eq(s.calls, 1);
        ck_assert_uint_eq(ade_credential_fetch_count(c), 1);
        callers_done(callers, THREADS);
}
END_TEST

START_TEST(test_resources_fetch_side_by_side) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        Caller callers[4] = {};
        Slow s;

        /* Two resources, two callers each: two fetches, and they run at the same time. */
        slow_init(&s);
        s.want_together = 2;
        ck_assert_int_eq(ade_credential_new(slow_fetch, &s, NULL, &c), 0);
        for (size_t i = 0; i < ELEMENTSOF(callers); i++)
                callers[i] = (Caller){
                        .credential = c,
                        .resource = i % 2 ? "https://management.azure.com/" : "https://vault.azure.net",
                };
        run_callers(callers, ELEMENTSOF(callers));

        for (size_t i = 0; i < ELEMENTSOF(callers); i++)
                ck_assert_int_eq(callers[i].result, 0);
        ck_assert_uint_eq(s.calls, 2);
        ck_assert(s.together_reached);
        ck_assert_uint_eq(s.running_max, 2);
        callers_done(callers, ELEMENTSOF(callers));
}
END_TEST

START_TEST(test_refused_token_replaced_once) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        _cleanup_secret_ AdeSecret *first = NULL;
        Caller callers[THREADS] = {};
        Slow s;

        /* Every thread saw the same token refused: one new token for all of them. */
        slow_init(&s);
        ck_assert_int_eq(ade_credential_new(slow_fetch, &s, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &first, NULL), 0);
        for (size_t i = 0; i < THREADS; i++)
                callers[i] = (Caller){.credential = c, .resource = "r", .refused = first};
        run_callers(callers, THREADS);

        for (size_t i = 0; i < THREADS; i++) {
                ck_assert_int_eq(callers[i].result, 0);
                ck_assert_str_eq((char *)callers[i].token->data, "r-2");
        }
        ck_assert_uint_eq(s.calls, 2);
        callers_done(callers, THREADS);
}
END_TEST

START_TEST(test_waiters_share_the_error) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        Caller callers[THREADS] = {};
        Slow s;

        slow_init(&s);
        s.fail = -EACCES;
        ck_assert_int_eq(ade_credential_new(slow_fetch, &s, NULL, &c), 0);
        for (size_t i = 0; i < THREADS; i++)
                callers[i] = (Caller){.credential = c, .resource = "r"};
        run_callers(callers, THREADS);

        for (size_t i = 0; i < THREADS; i++) {
                ck_assert_int_eq(callers[i].result, -EACCES);
                ck_assert_ptr_null(callers[i].token);
                ck_assert_str_eq(callers[i].error.code, "invalid_request");
                ck_assert_str_eq(callers[i].error.message, "Identity not found");
        }
        ck_assert_uint_eq(s.running_max, 1);
        ck_assert_uint_eq(ade_credential_fetch_count(c), 0);
        callers_done(callers, THREADS);
}
END_TEST

START_TEST(test_tokens_are_copies) {
        _cleanup_(ade_credential_freep) AdeCredential *c = NULL;
        _cleanup_secret_ AdeSecret *a = NULL, *b = NULL;
        Slow s;

        slow_init(&s);
        ck_assert_int_eq(ade_credential_new(slow_fetch, &s, NULL, &c), 0);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &a, NULL), 0);
        /* Scribbling on one copy, or flushing the cache, touches no other holder. */
        a->data[0] = 'X';
        ade_credential_flush(c);
        ck_assert_int_eq(ade_credential_get_token(c, "r", NULL, NULL, &b, NULL), 0);
        ck_assert_str_eq((char *)a->data, "X-1");
        ck_assert_str_eq((char *)b->data, "r-2");
        ck_assert(ade_secret_is_locked(b));
}
END_TEST

/* ---- the one rule for a refused token ---- */

static bool refused(long status, const char *www_authenticate, const char *body) {
        AdeHttpResponse r = {
                .status = status,
                .www_authenticate = (char *)www_authenticate,
                .body = (char *)body,
                .size = body ? strlen(body) : 0,
        };

        return ade_credential_token_refused(&r);
}

START_TEST(test_refused_by_invalid_token_challenge) {
        /* ARM's ExpiredAuthenticationToken answer. */
        ck_assert(refused(401,
                "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", "
                "error_description=\"The access token expiry UTC time is earlier than current UTC time.\"",
                "{\"error\":{\"code\":\"ExpiredAuthenticationToken\"}}"));
        ck_assert(refused(401, "Bearer realm=\"x\",error=invalid_token", NULL));
        ck_assert(refused(401, "Bearer ERROR=\"Invalid_Token\"", "{}"));
}
END_TEST

START_TEST(test_refused_by_body) {
        /* Key Vault's: a fresh challenge without an error parameter, the reason in the body. */
        ck_assert(refused(401, "Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"r\"",
                "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"[TokenExpired] Error validating token\"}}"));
        ck_assert(refused(401, NULL, "{\"error\":\"invalid_grant\",\"error_description\":\"token is expired\"}"));
}
END_TEST

START_TEST(test_not_refused) {
        /* A wrong audience at Key Vault, any other status, another error, a broken challenge. */
        ck_assert(!refused(401, "Bearer authorization=\"https://login.microsoftonline.com/t\", resource=\"r\"",
                "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10022: Invalid audience.\"}}"));
        ck_assert(!refused(403, "Bearer error=\"invalid_token\"", "TokenExpired"));
        ck_assert(!refused(200, NULL, "TokenExpired"));
        ck_assert(!refused(401, "Bearer error=\"insufficient_scope\"", "{}"));
        ck_assert(!refused(401, "Bearer error_description=\"invalid_token\"", NULL));
        ck_assert(!refused(401, "Basic error=\"invalid_token\"", NULL));
        ck_assert(!refused(401, "Bearer error=\"invalid_token", NULL));
        ck_assert(!refused(401, NULL, NULL));
        ck_assert(!ade_credential_token_refused(NULL));
}
END_TEST

START_TEST(test_scope_and_resource) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        ck_assert_int_eq(ade_credential_resource_to_scope("https://management.azure.com//", &a), 0);
        ck_assert_str_eq(a, "https://management.azure.com/.default");
        ck_assert_int_eq(ade_credential_resource_to_scope("https://x/.default", &b), 0);
        ck_assert_str_eq(b, "https://x/.default");
        ck_assert_int_eq(ade_credential_scope_to_resource("https://x.vault.azure.net/.default", &c), 0);
        ck_assert_str_eq(c, "https://x.vault.azure.net");
        ck_assert_int_eq(ade_credential_scope_to_resource("https://vault.azure.net", &d), 0);
        ck_assert_str_eq(d, "https://vault.azure.net");
}
END_TEST

int main(void) {
        Suite *s = suite_create("credential");
        TCase *threads = ade_test_case("threads"), *rule = ade_test_case("rule");

        tcase_add_test(threads, test_concurrent_callers_share_one_fetch);
        tcase_add_test(threads, test_resources_fetch_side_by_side);
        tcase_add_test(threads, test_refused_token_replaced_once);
        tcase_add_test(threads, test_waiters_share_the_error);
        tcase_add_test(threads, test_tokens_are_copies);
        tcase_add_test(rule, test_refused_by_invalid_token_challenge);
        tcase_add_test(rule, test_refused_by_body);
        tcase_add_test(rule, test_not_refused);
        tcase_add_test(rule, test_scope_and_resource);
        suite_add_tcase(s, threads);
        suite_add_tcase(s, rule);
        return ade_test_run(s);
}
