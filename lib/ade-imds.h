/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ade-cloud-error.h"
#include "ade-http.h"
#include "ade-secret.h"
#include "ade-credential.h"

/* The Azure Instance Metadata Service: what this VM is, and managed-identity tokens. Plain http on a
 * link-local address, no proxy, "Metadata: true" on every request, IMDS retry rules (ade-http.h). */

typedef struct AdeImds AdeImds;

/* @base_url: "http://169.254.169.254" or a test's "http://127.0.0.1:N". @opts may be NULL; IMDS
 * mode is forced on. */
int ade_imds_new(const char *base_url, const AdeHttpOptions *opts, AdeImds **ret);
AdeImds *ade_imds_free(AdeImds *imds);
static inline void ade_imds_freep(AdeImds **i) {
        ade_imds_free(*i);
}

typedef struct AdeImdsDisk {
        char *name;
        int lun;               /* -1 for the OS disk */
        char *managed_disk_id; /* NULL for an unmanaged disk */
} AdeImdsDisk;

typedef struct AdeImdsInstance {
        char *location;
        char *subscription_id;
        char *resource_group;
        char *vm_name;
        char *vm_id;
        char *resource_id;
        char *os_type;
        AdeImdsDisk os_disk;
        AdeImdsDisk *data_disks;
        size_t n_data_disks;
} AdeImdsInstance;

AdeImdsInstance *ade_imds_instance_free(AdeImdsInstance *i);
static inline void ade_imds_instance_freep(AdeImdsInstance **i) {
        ade_imds_instance_free(*i);
}

/* GET /metadata/instance. -EPROTO when the answer lacks compute.location, subscriptionId,
 * resourceGroupName, name or vmId, or a LUN is not a number. */
int ade_imds_get_instance(AdeImds *imds, AdeImdsInstance **ret, AdeCloudError *ret_error);

/* The parser behind it, for tests: every IMDS primitive is a string ("lun": "0"). */
int ade_imds_parse_instance(const char *json, size_t len, AdeImdsInstance **ret);

typedef enum AdeImdsIdentity {
        ADE_IMDS_IDENTITY_SYSTEM, /* the system-assigned identity (or the only one) */
        ADE_IMDS_IDENTITY_CLIENT_ID,
        ADE_IMDS_IDENTITY_OBJECT_ID,
        ADE_IMDS_IDENTITY_MSI_RES_ID,
        _ADE_IMDS_IDENTITY_MAX,
        _ADE_IMDS_IDENTITY_INVALID = -EINVAL,
} AdeImdsIdentity;

/* GET /metadata/identity/oauth2/token for @resource (a trailing "/.default" is dropped) and the
 * identity @kind/@id. Not cached: use a credential. Returns the token and its expiry (Unix s). */
int ade_imds_get_token(AdeImds *imds, const char *resource, AdeImdsIdentity kind, const char *id, AdeSecret **ret_token,
        uint64_t *ret_expires_on, AdeCloudError *ret_error);

/* Reads a managed-identity token answer (strings: "expires_on", "expires_in"). */
int ade_imds_parse_token(const char *json, size_t len, time_t now, AdeSecret **ret_token, uint64_t *ret_expires_on);

/* A cached credential over @imds for one identity. With @take_imds it frees @imds with itself. */
int ade_imds_credential_new(AdeImds *imds, bool take_imds, AdeImdsIdentity kind, const char *id, AdeCredential **ret);
