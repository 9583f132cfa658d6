/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The varlink interface definition language (varlink.org/Interface-Definition), parsed far enough to
 * validate JSON against it: interfaces, "type", "method" and "error" members, struct and enum types,
 * the basic types bool, int, float, string and object, arrays "[]T", maps "[string]T", sets
 * "[string]()", nullable "?T", and references to named types of the same interface. "#" comments are
 * skipped. */

#include <stdbool.h>
#include <json-c/json.h>

#include "ade-util.h"

typedef struct AdeVarlinkInterface AdeVarlinkInterface;

/* Parses @text (copied). Returns 0, -EBADMSG for text that is not a valid interface (a syntax error,
 * a duplicate member or field, a reference to an undeclared type; the reason goes to ade_log_debug),
 * -ENOMEM. */
int ade_varlink_interface_parse(const char *text, AdeVarlinkInterface **ret);

AdeVarlinkInterface *ade_varlink_interface_free(AdeVarlinkInterface *iface);
static inline void ade_varlink_interface_freep(AdeVarlinkInterface **iface) {
        if (*iface)
                ade_varlink_interface_free(*iface);
}

/* The name from the "interface" line, and the text exactly as given to parse. */
const char *ade_varlink_interface_get_name(const AdeVarlinkInterface *iface);
const char *ade_varlink_interface_get_text(const AdeVarlinkInterface *iface);

/* Whether the interface declares method (or error) @name (the short name, "Show"). */
bool ade_varlink_interface_has_method(const AdeVarlinkInterface *iface, const char *name);
bool ade_varlink_interface_has_error(const AdeVarlinkInterface *iface, const char *name);

/* The short names of the declared methods, in declaration order, NULL-terminated; borrowed. */
const char *const *ade_varlink_interface_get_methods(const AdeVarlinkInterface *iface);

/* Checks @parameters (a JSON object; NULL counts as {}) against the input (or output) of method
 * @name. Non-nullable fields must be present and not null, every value must have its declared type
 * (an int is accepted for float; an enum value must be one of its names; a set's values must be {}),
 * and fields that are not declared are refused.
 * Returns 0; -EBADMSG with the offending field's path in *ret_field ("struct.int", "list[2]",
 * "map.key"; free() it; "" when @parameters itself is not an object); -ENOENT for an undeclared method;
 * -ENOMEM. */
int ade_varlink_interface_validate_input(
        const AdeVarlinkInterface *iface, const char *name, json_object *parameters, char **ret_field);
int ade_varlink_interface_validate_output(
        const AdeVarlinkInterface *iface, const char *name, json_object *parameters, char **ret_field);

/* Checks the parameters of error @name (short name) the same way. -ENOENT for an undeclared error. */
int ade_varlink_interface_validate_error(
        const AdeVarlinkInterface *iface, const char *name, json_object *parameters, char **ret_field);
