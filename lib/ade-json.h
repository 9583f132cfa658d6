/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "ade-util.h"

/* Typed access to json-c objects. Every getter returns 0 and writes its out-parameter only on
 * success; -ENOENT when the field is absent or null; -EBADMSG when it has another type. Returned
 * strings and objects are borrowed from @obj and live as long as it does. */

static inline void json_object_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Parses exactly @len bytes as one JSON value. Truncated input, trailing garbage, embedded NUL
 * bytes and nesting deeper than 64 levels are -EBADMSG. */
int ade_json_parse(const char *buf, size_t len, json_object **ret);

int ade_json_get_string(json_object *obj, const char *key, const char **ret);
int ade_json_get_object(json_object *obj, const char *key, json_object **ret);
int ade_json_get_array(json_object *obj, const char *key, json_object **ret);
int ade_json_get_bool(json_object *obj, const char *key, bool *ret);
int ade_json_get_int64(json_object *obj, const char *key, int64_t *ret);

/* Azure's IMDS and Entra v1 send every number and boolean as a string ("3599", "true"). These accept
 * both the JSON type and its string form, and nothing else ("12abc" is -EBADMSG). */
int ade_json_get_int64_lenient(json_object *obj, const char *key, int64_t *ret);
int ade_json_get_bool_lenient(json_object *obj, const char *key, bool *ret);

/* Walks nested objects: ade_json_get_path_string(o, &s, "compute", "location", NULL). */
int ade_json_get_path_string(json_object *obj, const char **ret, const char *first, ...) __attribute__((sentinel));

/* Compact serialization without escaped slashes (URLs stay readable). Returns a new string or NULL. */
char *ade_json_to_string(json_object *obj);

/* Adds @key = @value (a copied string) to @obj; a NULL @value adds nothing. Returns 0 or -ENOMEM. */
int ade_json_add_string(json_object *obj, const char *key, const char *value);
