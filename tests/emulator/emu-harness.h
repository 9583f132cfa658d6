/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Starts and drives the Azure emulator (tests/emulator/ade-emulator) from a C test.
 *
 * The emulator serves Key Vault, ARM and Entra ID over HTTPS with a test CA, and IMDS plus the
 * control API (/_emulator/...) over plain HTTP, both on 127.0.0.1 only. tests/emulator/README.md
 * documents the scenario schema (@overlay_json), the faults and the request log.
 *
 * The binary is $ADE_EMULATOR, or else $top_builddir/tests/emulator/ade-emulator.
 * Link with $(EMU_HARNESS_LIBS) $(LIBADE_LIBS) $(CHECK_LIBS). */

#include <sys/types.h>
#include <json-c/json.h>

#include <stdbool.h>

/* The emulator binary's path ($ADE_EMULATOR, else under $top_builddir), allocated; NULL on ENOMEM. */
char *ade_emulator_binary(void);
/* Whether that binary exists: it is built only with libmicrohttpd, and suites skip (77) without it. */
bool ade_emulator_available(void);

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
