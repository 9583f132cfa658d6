/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "ade-json.h"
#include "ade-test.h"
#include "aded-metrics.h"
#include "aded-view.h"

/* The metrics file's text from Show's reply and the counters alone (aded-metrics-text.c); promtool
 * judges a real file in tests/daemon/daemon-metrics.sh. */

static json_object *show_of(const char *json) {
        json_object *o = json_tokener_parse(json);

        ck_assert_ptr_nonnull(o);
        return o;
}

static char *format(json_object *show, const AdeResolverStats *kv, uint64_t unlocks, uint64_t unlock_usec) {
        char *text = NULL;

        ck_assert_int_eq(aded_metrics_format(&(AdedMetricsInput){.show = show,
                                                     .kv = kv,
                                                     .unlock_count = unlocks,
                                                     .unlock_usec_total = unlock_usec,
                                                     .version = "1.2.3"},
                                 &text),
                0);
        ck_assert_ptr_nonnull(text);
        return text;
}

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);

        for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
                        return true;
        return false;
}

static size_t count_prefix(const char *text, const char *prefix) {
        size_t c = 0, n = strlen(prefix);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, prefix, n) == 0)
                        c++;
        return c;
}

#define RUNNING                                                                                                        \
        "{\"os\":\"NotEncrypted\",\"data\":\"EncryptionInProgress\",\"volumes\":[{\"device\":\"/dev/sdc\",\"type\":"   \
        "\"Data\",\"state\":\"EncryptionInProgress\",\"progress\":0.25,\"bytesDone\":250,\"bytesTotal\":1000,"         \
        "\"unlocked\":true,\"rate\":50,\"etaSeconds\":15}]}"

/* The header backup's state, for the volumes that have one; the generation once one is uploaded. */
START_TEST(test_backup_state) {
        _cleanup_json_ json_object *show = show_of(
                "{\"os\":\"NotEncrypted\",\"data\":\"Encrypted\",\"volumes\":["
                "{\"device\":\"/dev/sdc\",\"type\":\"Data\",\"state\":\"Encrypted\",\"unlocked\":true,"
                "\"backup\":{\"state\":\"Pending\",\"generation\":null,\"pendingSince\":\"2026-12-07T19:00:00Z\"}},"
                "{\"device\":\"/dev/sdd\",\"type\":\"Data\",\"state\":\"Encrypted\",\"unlocked\":true,"
                "\"backup\":{\"state\":\"Current\",\"generation\":4}},"
                "{\"device\":\"/dev/sde\",\"type\":\"Data\",\"state\":\"NotEncrypted\",\"unlocked\":false}]}");
        AdeResolverStats kv = {};
        _cleanup_free_ char *text = format(show, &kv, 0, 0);

        ck_assert(has_line(text, "ade_volume_backup_state{device=\"/dev/sdc\",type=\"Data\",state=\"Pending\"} 1"));
        ck_assert(has_line(text, "ade_volume_backup_state{device=\"/dev/sdc\",type=\"Data\",state=\"Current\"} 0"));
        ck_assert(has_line(text, "ade_volume_backup_state{device=\"/dev/sdd\",type=\"Data\",state=\"Current\"} 1"));
        ck_assert(has_line(text, "ade_volume_backup_state{device=\"/dev/sdd\",type=\"Data\",state=\"NoKek\"} 0"));
        /* Four states for each of the two volumes with a backup, none for the plain one. */
        ck_assert_uint_eq(count_prefix(text, "ade_volume_backup_state{"), 8);
        ck_assert_uint_eq(count_prefix(text, "ade_volume_backup_state{device=\"/dev/sde\""), 0);
        ck_assert(has_line(text, "ade_volume_backup_generation{device=\"/dev/sdd\",type=\"Data\"} 4"));
        ck_assert_uint_eq(count_prefix(text, "ade_volume_backup_generation{"), 1);
}
END_TEST

START_TEST(test_running_volume) {
        _cleanup_json_ json_object *show = show_of(RUNNING);
        AdeResolverStats kv = {.succeeded = 3, .last_success_usec = 1700000000123456ULL};
        _cleanup_free_ char *text = NULL;

        kv.failed[ADE_CLOUD_ERROR_THROTTLED] = 2;
        text = format(show, &kv, 2, 1500000);
        ck_assert(has_line(text, "ade_build_info{version=\"1.2.3\"} 1"));
        ck_assert(
                has_line(text, "ade_volume_state{device=\"/dev/sdc\",type=\"Data\",state=\"EncryptionInProgress\"} 1"));
        ck_assert(has_line(text, "ade_volume_state{device=\"/dev/sdc\",type=\"Data\",state=\"Encrypted\"} 0"));
        /* Every state, once each: a query for any of them finds a sample. */
        ck_assert_uint_eq(count_prefix(text, "ade_volume_state{"), _ADED_VOLUME_STATE_MAX);
        ck_assert(has_line(text, "ade_volume_unlocked{device=\"/dev/sdc\",type=\"Data\"} 1"));
        ck_assert(has_line(text, "ade_volume_progress_ratio{device=\"/dev/sdc\",type=\"Data\"} 0.25"));
        ck_assert(has_line(text, "ade_volume_done_bytes{device=\"/dev/sdc\",type=\"Data\"} 250"));
        ck_assert(has_line(text, "ade_volume_total_bytes{device=\"/dev/sdc\",type=\"Data\"} 1000"));
        ck_assert(has_line(text, "ade_volume_rate_bytes_per_second{device=\"/dev/sdc\",type=\"Data\"} 50"));
        ck_assert(has_line(text, "ade_volume_eta_seconds{device=\"/dev/sdc\",type=\"Data\"} 15"));
        ck_assert(has_line(text, "ade_keyvault_requests_succeeded_total 3"));
        ck_assert(has_line(text, "ade_keyvault_requests_failed_total{kind=\"throttled\"} 2"));
        ck_assert(has_line(text, "ade_keyvault_requests_failed_total{kind=\"network\"} 0"));
        ck_assert_uint_eq(count_prefix(text, "ade_keyvault_requests_failed_total{"), _ADE_CLOUD_ERROR_KIND_MAX);
        ck_assert(has_line(text, "ade_keyvault_last_success_timestamp_seconds 1700000000.123"));
        ck_assert(has_line(text, "ade_unlock_duration_seconds_sum 1.500000"));
        ck_assert(has_line(text, "ade_unlock_duration_seconds_count 2"));
}
END_TEST

/* Every sample's family is declared (HELP, then TYPE) before it, once. */
START_TEST(test_families_declared_first) {
        _cleanup_json_ json_object *show = show_of(RUNNING);
        AdeResolverStats kv = {};
        _cleanup_free_ char *text = format(show, &kv, 0, 0);
        char declared[32][64];
        size_t n = 0;

        for (char *line = text; line && *line;) {
                char *end = strchr(line, '\n'), name[64];
                size_t len;

                ck_assert_ptr_nonnull(end);
                if (strncmp(line, "# TYPE ", 7) == 0) {
                        ck_assert_int_eq(sscanf(line + 7, "%63s", declared[n]), 1);
                        for (size_t i = 0; i < n; i++)
                                ck_assert_str_ne(declared[i], declared[n]);
                        n++;
                } else if (line[0] != '#') {
                        bool found = false;

                        len = strcspn(line, "{ ");
                        ck_assert_uint_lt(len, sizeof(name));
                        memcpy(name, line, len);
                        name[len] = 0;
                        for (size_t i = 0; i < n; i++) {
                                size_t d = strlen(declared[i]);
                                /* a summary's samples are its name plus _sum and _count */
                                if (strcmp(name, declared[i]) == 0 ||
                                        (strncmp(name, declared[i], d) == 0 &&
                                                (strcmp(name + d, "_sum") == 0 || strcmp(name + d, "_count") == 0)))
                                        found = true;
                        }
                        ck_assert_msg(found, "%s has no TYPE before it", name);
                }
                line = end + 1;
        }
        ck_assert_uint_ge(n, 10);
}
END_TEST

/* Nothing measured: no rate, no ETA and no time of a last success, rather than a made-up 0. */
START_TEST(test_unknowns_are_left_out) {
        _cleanup_json_ json_object *show = show_of(
                "{\"volumes\":[{\"device\":\"/dev/sdd\",\"type\":\"Data\",\"state\":\"Encrypted\",\"progress\":1,"
                "\"bytesDone\":7,\"bytesTotal\":7,\"unlocked\":false}]}");
        AdeResolverStats kv = {};
        _cleanup_free_ char *text = format(show, &kv, 0, 0);

        ck_assert_uint_eq(count_prefix(text, "ade_volume_rate_bytes_per_second{"), 0);
        ck_assert_uint_eq(count_prefix(text, "ade_volume_eta_seconds{"), 0);
        ck_assert_uint_eq(count_prefix(text, "ade_keyvault_last_success_timestamp_seconds"), 0);
        ck_assert(has_line(text, "ade_volume_state{device=\"/dev/sdd\",type=\"Data\",state=\"Encrypted\"} 1"));
        ck_assert(has_line(text, "ade_volume_unlocked{device=\"/dev/sdd\",type=\"Data\"} 0"));
}
END_TEST

/* A label value is escaped as the format says: backslash, double quote, newline. */
START_TEST(test_label_values_escaped) {
        _cleanup_json_ json_object *show =
                show_of("{\"volumes\":[{\"device\":\"/dev/disk/by-id/a\\\\b\\\"c\\nd\",\"type\":\"Data\",\"state\":"
                        "\"NotEncrypted\",\"progress\":0,\"bytesDone\":0,\"bytesTotal\":0,\"unlocked\":false}]}");
        AdeResolverStats kv = {};
        _cleanup_free_ char *text = format(show, &kv, 0, 0);

        ck_assert(has_line(text, "ade_volume_unlocked{device=\"/dev/disk/by-id/a\\\\b\\\"c\\nd\",type=\"Data\"} 0"));
}
END_TEST

START_TEST(test_no_volumes) {
        _cleanup_json_ json_object *show = show_of("{\"volumes\":[]}");
        AdeResolverStats kv = {};
        _cleanup_free_ char *text = format(show, &kv, 0, 0);

        ck_assert_uint_eq(count_prefix(text, "ade_volume_state{"), 0);
        ck_assert(has_line(text, "# TYPE ade_volume_state gauge"));
        ck_assert(has_line(text, "ade_keyvault_requests_succeeded_total 0"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = ade_test_case("metrics");

        tcase_add_test(tc, test_running_volume);
        tcase_add_test(tc, test_backup_state);
        tcase_add_test(tc, test_families_declared_first);
        tcase_add_test(tc, test_unknowns_are_left_out);
        tcase_add_test(tc, test_label_values_escaped);
        tcase_add_test(tc, test_no_volumes);
        suite_add_tcase(s, tc);
        return ade_test_run(s);
}
