/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

/* The claims of a JWT (the middle part, base64url JSON), without verifying anything: for reading
 * "exp" when a service does not say, and for tests. Returns 0, -EBADMSG for something else. */
int ade_jwt_get_claims(const char *jwt, size_t len, json_object **ret);
