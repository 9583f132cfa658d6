/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "ade-cloud-error.h"
#include "ade-varlink.h"

/* The interface aded serves and its errors with their parameters (docs/architecture.md §7; the
 * interface text is daemon/io.ade.DiskEncryption.varlink). */

#define ADED_INTERFACE "io.ade.DiskEncryption"
#define ADED_ERROR(name) ADED_INTERFACE "." name

/* PreconditionFailed(check, reason): the parameters, and the error sent on @call. */
json_object *aded_error_precondition_parameters(const char *check, const char *reason);
int aded_error_precondition(AdeVarlinkCall *call, const char *check, const char *reason);

/* PreconditionFailed for a call that arrives while aded stops. */
int aded_error_stopping(AdeVarlinkCall *call);

/* PreconditionFailed for an Unlock on a host without device-mapper. */
int aded_error_unlock_without_dm(AdeVarlinkCall *call);

/* KeyVaultError(status, code, message) from what the service said. */
json_object *aded_error_keyvault_parameters(const AdeCloudError *e);

int aded_error_no_such_volume(AdeVarlinkCall *call, const char *device);

/* OperationInProgress(device): @device is the volume whose job holds the call back, NULL when what
 * runs has no volume yet (an Enable's checks, a choice of volumes). */
int aded_error_in_progress(AdeVarlinkCall *call, const char *device);
