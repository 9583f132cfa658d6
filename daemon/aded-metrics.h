/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdatomic.h>
#include <stdint.h>
#include <json-c/json.h>

#include "ade-resolver.h"

/* aded's metrics for Prometheus (docs/architecture.md §13): a textfile-collector file at [metrics]
 * path, replaced whole every ADED_METRICS_BUSY_USEC while a job runs and every
 * ADED_METRICS_IDLE_USEC otherwise, from what Show says (an internal Show query: the device reads
 * happen in its thread, as for a caller) and from counters: the key resolver's Key Vault outcomes
 * and the key socket's unlock times. The text is made by a pure function, aded_metrics_format(),
 * tested on its own (tests/unit/test-metrics.c); `promtool check metrics` judges a real file
 * (tests/daemon/daemon-metrics.sh). */

typedef struct Manager Manager;

#define ADED_METRICS_BUSY_USEC (2U * 1000U * 1000U)
#define ADED_METRICS_IDLE_USEC (30U * 1000U * 1000U)

/* The key socket's deliveries: how many, and the time from request to key, in total. */
typedef struct AdedUnlockStats {
        _Atomic uint64_t count;
        _Atomic uint64_t usec_total;
} AdedUnlockStats;

/* What the file says. @show is Show's reply ({"os", "data", "volumes": [...]}); @kv the resolver's
 * counters; @version aded's. */
typedef struct AdedMetricsInput {
        json_object *show;
        const AdeResolverStats *kv;
        uint64_t unlock_count, unlock_usec_total;
        const char *version;
} AdedMetricsInput;

/* The text exposition format: HELP and TYPE before each family, label values escaped, every state
 * of ade_volume_state given (1 for the volume's own, 0 for the others), the rate only while it is
 * known. No I/O. 0 or -ENOMEM. */
int aded_metrics_format(const AdedMetricsInput *in, char **ret);

/* Starts the timer that keeps the file, when [metrics] path is set; the first file is written
 * right away. 0 or a negative errno. */
int aded_metrics_start(Manager *m);
/* A change worth a new file soon (a job started or ended): the timer fires now. */
void aded_metrics_poke(Manager *m);
void aded_metrics_stop(Manager *m);

/* The key socket delivered a key @usec after the request came (any thread). */
void aded_metrics_note_unlock(Manager *m, uint64_t usec);
