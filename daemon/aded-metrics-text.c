/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>

#include "ade-json.h"
#include "aded-metrics.h"
#include "aded-view.h"

/* aded_metrics_format(): the text of the metrics file, from what Show says and the counters. Kept
 * apart from the timer and the file (aded-metrics.c) so that its unit test needs no manager. */

/* A label value as the exposition format wants it: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *value) {
        for (const char *p = value ? value : ""; *p; p++)
                switch (*p) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*p, f);
                }
}

static void put_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{device="...",type="..."[,extra="..."]} */
static void put_volume_sample(FILE *f, const char *name, json_object *v, const char *extra, const char *extra_value) {
        const char *device = NULL, *type = NULL;

        (void)ade_json_get_string(v, "device", &device);
        (void)ade_json_get_string(v, "type", &type);
        fprintf(f, "%s{device=\"", name);
        put_label(f, device);
        fputs("\",type=\"", f);
        put_label(f, type);
        if (extra) {
                fprintf(f, "\",%s=\"", extra);
                put_label(f, extra_value);
        }
        fputs("\"} ", f);
}

static int64_t get_int(json_object *v, const char *key, bool *present) {
        int64_t n = 0;

        *present = ade_json_get_int64(v, key, &n) >= 0;
        return n;
}

/* A family of one integer per volume, Show's @key: every volume's (0 when it has none), or with
 * @only_present only those that have it (a rate that is not measured has no sample, not a 0). */
static void put_volume_ints(FILE *f, json_object *volumes, size_t n, const char *name, const char *help,
        const char *key, bool only_present) {
        bool present;

        put_family(f, name, "gauge", help);
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(volumes, i);
                int64_t value = get_int(v, key, &present);

                if (!present && only_present)
                        continue;
                put_volume_sample(f, name, v, NULL, NULL);
                fprintf(f, "%" PRId64 "\n", value);
        }
}

static void put_volumes(FILE *f, json_object *volumes) {
        size_t n = volumes ? json_object_array_length(volumes) : 0;
        bool present;

        put_family(f, "ade_volume_state", "gauge",
                "The volume's state (ADE's names): 1 for the state it is in, 0 for the others.");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(volumes, i);
                const char *state = NULL;

                (void)ade_json_get_string(v, "state", &state);
                for (AdedVolumeState s = 0; s < _ADED_VOLUME_STATE_MAX; s++) {
                        put_volume_sample(f, "ade_volume_state", v, "state", aded_volume_state_to_string(s));
                        fprintf(f, "%d\n", streq_ptr(state, aded_volume_state_to_string(s)) ? 1 : 0);
                }
        }

        put_family(f, "ade_volume_unlocked", "gauge", "Whether a dm-crypt mapping is active for the volume.");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(volumes, i);
                bool unlocked = false;

                (void)ade_json_get_bool(v, "unlocked", &unlocked);
                put_volume_sample(f, "ade_volume_unlocked", v, NULL, NULL);
                fprintf(f, "%d\n", unlocked ? 1 : 0);
        }

        put_family(f, "ade_volume_progress_ratio", "gauge",
                "Fraction of the volume's current or last reencryption that is done, 0 to 1.");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(volumes, i);
                json_object *p = json_object_object_get(v, "progress");

                put_volume_sample(f, "ade_volume_progress_ratio", v, NULL, NULL);
                fprintf(f, "%.6g\n", p ? json_object_get_double(p) : 0.0);
        }

        put_volume_ints(f, volumes, n, "ade_volume_done_bytes", "Bytes of the volume's current reencryption done.",
                "bytesDone", false);
        put_volume_ints(f, volumes, n, "ade_volume_total_bytes", "Bytes the volume's current reencryption covers.",
                "bytesTotal", false);

        /* Only while a job runs and aded has measured it: no sample is better than a made-up 0. */
        put_volume_ints(f, volumes, n, "ade_volume_rate_bytes_per_second",
                "Bytes per second of the job running on the volume, as aded measures it.", "rate", true);

        /* Only volumes ade encrypted have a header backup (Show's "backup"). */
        put_family(f, "ade_volume_backup_state", "gauge",
                "Where the volume's header backup stands (Current, Pending, NoKek, Off): 1 for its state, 0 for the "
                "others.");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(volumes, i), *b = NULL;
                const char *state = NULL;

                if (!json_object_object_get_ex(v, "backup", &b) || ade_json_get_string(b, "state", &state) < 0)
                        continue;
                for (AdedBackupState s = ADED_BACKUP_NONE + 1; s < _ADED_BACKUP_STATE_MAX; s++) {
                        put_volume_sample(f, "ade_volume_backup_state", v, "state", aded_backup_state_to_string(s));
                        fprintf(f, "%d\n", streq(state, aded_backup_state_to_string(s)) ? 1 : 0);
                }
        }

        put_family(f, "ade_volume_backup_generation", "gauge",
                "The last generation of the volume's header backup that was uploaded.");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(volumes, i), *b = NULL;
                int64_t generation;

                if (!json_object_object_get_ex(v, "backup", &b))
                        continue;
                generation = get_int(b, "generation", &present);
                if (!present)
                        continue;
                put_volume_sample(f, "ade_volume_backup_generation", v, NULL, NULL);
                fprintf(f, "%" PRId64 "\n", generation);
        }

        put_volume_ints(f, volumes, n, "ade_volume_eta_seconds",
                "Seconds the job running on the volume needs at that rate.", "etaSeconds", true);
}

static void put_keyvault(FILE *f, const AdeResolverStats *kv) {
        put_family(f, "ade_keyvault_requests_succeeded_total", "counter",
                "Key Vault operations (escrow, a volume's key, disabling a secret) that succeeded since aded started.");
        fprintf(f, "ade_keyvault_requests_succeeded_total %" PRIu64 "\n", kv->succeeded);
        put_family(f, "ade_keyvault_requests_failed_total", "counter",
                "Key Vault operations that failed since aded started, by kind of failure.");
        for (AdeCloudErrorKind k = 0; k < _ADE_CLOUD_ERROR_KIND_MAX; k++)
                fprintf(f, "ade_keyvault_requests_failed_total{kind=\"%s\"} %" PRIu64 "\n",
                        ade_cloud_error_kind_to_string(k), kv->failed[k]);
        if (kv->last_success_usec == 0)
                return;
        put_family(f, "ade_keyvault_last_success_timestamp_seconds", "gauge",
                "When a Key Vault operation last succeeded, in seconds since the epoch.");
        fprintf(f, "ade_keyvault_last_success_timestamp_seconds %" PRIu64 ".%03" PRIu64 "\n",
                kv->last_success_usec / 1000000U, kv->last_success_usec / 1000U % 1000U);
}

int aded_metrics_format(const AdedMetricsInput *in, char **ret) {
        _cleanup_free_ char *text = NULL;
        json_object *volumes = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        put_family(f, "ade_build_info", "gauge", "aded's version; always 1.");
        fputs("ade_build_info{version=\"", f);
        put_label(f, in->version);
        fputs("\"} 1\n", f);

        (void)ade_json_get_array(in->show, "volumes", &volumes);
        put_volumes(f, volumes);
        put_keyvault(f, in->kv);

        put_family(f, "ade_unlock_duration_seconds", "summary",
                "Time from a request on the key socket (systemd-cryptsetup at boot) to its key.");
        fprintf(f, "ade_unlock_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n", in->unlock_usec_total / 1000000U,
                in->unlock_usec_total % 1000000U);
        fprintf(f, "ade_unlock_duration_seconds_count %" PRIu64 "\n", in->unlock_count);

        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}
