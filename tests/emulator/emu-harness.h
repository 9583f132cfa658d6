/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Starts and drives the Azure emulator (tests/emulator/ade-emulator) from a C test.
 *
 * The emulator serves Key Vault, ARM and Entra ID over HTTPS with a test CA, and IMDS plus the
 * control API (/_emulator/...) over plain HTTP, both on 127.0.0.1 only. tests/emulator/README.md
 * documents the scenario schema (@overlay_json), the faults and the request log.
 *
 * The binary is $ADE_EMULATOR, or else $top_builddir/tests/emulator/ade-emulator.
 * Link with $(EMU_HARNESS_LIBS) $(LIBADE_LIBS) $(CHECK_LIBS).
 *
 * Below the control API are the fixtures every client test shares (HTTP options, a managed-identity
 * credential, an ade.conf, request counts), so that no test file carries its own copy. */

#include <sys/types.h>
#include <json-c/json.h>

#include <stdbool.h>

#include "ade-config.h"
#include "ade-credential.h"
#include "ade-http.h"

/* The emulator binary's path ($ADE_EMULATOR, else under $top_builddir), allocated; NULL on ENOMEM. */
char *ade_emulator_binary(void);
/* Whether that binary exists: it is built only with libmicrohttpd, and suites skip (77) without it. */
bool ade_emulator_available(void);

/* The Key Vault resource of the cloud the harness's emulators play unless an overlay names another
 * (keyvault.resource): clients reach the vault as https://localhost:N, and Key Vault's challenge
 * is followed only when the vault's host lies within the resource's domain (ade-keyvault.h), as a
 * vault of the public cloud lies under https://vault.azure.net. ade_emulator_write_config() names
 * it in [azure] keyvault-resource. */
#define ADE_EMULATOR_KEYVAULT_RESOURCE "https://localhost"

typedef struct AdeEmulator {
        pid_t pid;
        char *dir; /* temporary folder, removed on stop */
        char *ca_file;
        int https_port, http_port;
        char *vault_url;     /* "https://localhost:N" */
        char *imds_url;      /* "http://127.0.0.1:M" */
        char *arm_url;       /* "https://localhost:N" */
        char *authority_url; /* "https://localhost:N" */
        char *kek_url;       /* versioned URL of the default vault's "kek" */
        char *vault_resource_id;
        char *keyvault_resource; /* what the challenge names: ADE_EMULATOR_KEYVAULT_RESOURCE by default */
        char *tenant_id, *subscription_id;
} AdeEmulator;

/* Starts the emulator with @overlay_json merged over the default scenario (NULL: default),
 * waits for ready.json (never a fixed sleep), fills the struct. -errno on failure. */
int ade_emulator_start(const char *overlay_json, AdeEmulator **ret);
/* Same, reusing @dir (for CA and --state persistence across restarts). @dir is kept on stop, so
 * e->dir is NULL for an emulator started this way. */
int ade_emulator_start_in(const char *dir, const char *overlay_json, AdeEmulator **ret);
AdeEmulator *ade_emulator_stop(AdeEmulator *e); /* SIGTERM, wait, rm -rf dir; NULL ok */
static inline void ade_emulator_stopp(AdeEmulator **e) {
        ade_emulator_stop(*e);
}

/* POST /_emulator/faults with @fault_json, e.g. {"route":"keyvault","status":429,"retry_after":1}.
 * Returns 0, -EINVAL when the emulator refuses the fault, -EIO when it cannot be reached. */
int ade_emulator_fault(AdeEmulator *e, const char *fault_json);
int ade_emulator_clear_faults(AdeEmulator *e);
int ade_emulator_requests(AdeEmulator *e, json_object **ret); /* the "requests" array */
int ade_emulator_clear_requests(AdeEmulator *e);
int ade_emulator_state(AdeEmulator *e, json_object **ret);
/* Writes an ade.conf pointing at this emulator (plus @extra lines appended verbatim) to @path. */
int ade_emulator_write_config(AdeEmulator *e, const char *path, const char *extra);

/* ---- fixtures ---- */

/* A Check suite's shared emulator, with the default scenario:
 *   tcase_add_unchecked_fixture(tc, ade_emulator_suite_setup, ade_emulator_suite_teardown);
 *   tcase_add_checked_fixture(tc, ade_emulator_test_setup, NULL);
 * The suite setup exits the runner when the emulator cannot start; the test setup clears the faults
 * and the request log, and aborts the test when the emulator cannot be reached. */
extern AdeEmulator *ade_emulator_suite;
void ade_emulator_suite_setup(void);
void ade_emulator_suite_teardown(void);
void ade_emulator_test_setup(void);

/* Clears the faults and the request log. */
int ade_emulator_reset(AdeEmulator *e);

/* HTTP options for clients of @e: its CA, and retries that stay on but cost milliseconds (backoff
 * 10 to 50 ms, a Retry-After honoured up to 1.5 s, IMDS' 410 window 200 ms), @max_retries retries. */
void ade_emulator_http_options(const AdeEmulator *e, unsigned max_retries, AdeHttpOptions *ret);

/* A credential of @e's system-assigned managed identity, through its IMDS with @opts (NULL:
 * ade_emulator_http_options() with 2 retries); the IMDS client belongs to the credential. */
int ade_emulator_credential(const AdeEmulator *e, const AdeHttpOptions *opts, AdeCredential **ret);

/* Writes ade.conf for @e (plus @extra) to @path (NULL: "ade.conf" in e->dir) and loads it. */
int ade_emulator_load_config(AdeEmulator *e, const char *path, const char *extra, AdeConfig **ret);

/* The logged requests to @service ("keyvault", "imds", "arm", "entra"; NULL: all), how many, and
 * over how many distinct connections (optional). */
int ade_emulator_count(AdeEmulator *e, const char *service, unsigned *ret_requests, unsigned *ret_connections);
/* The same for assertions: the count, or UINT_MAX when the log cannot be read. */
unsigned ade_emulator_requests_to(AdeEmulator *e, const char *service);
unsigned ade_emulator_connections_to(AdeEmulator *e, const char *service);
