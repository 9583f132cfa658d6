/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The varlink IDL parser (ade-varlink-idl.h) and the validator built on it. The input is an
 * interface text, optionally followed by a NUL byte and a JSON object that is then validated as the
 * input and output of every method and as the parameters of every error. */
#include <stdlib.h>
#include <string.h>

#include "ade-json.h"
#include "ade-varlink-idl.h"
#include "fuzz.h"

static void check_result(int r, char *field) {
        FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOENT || r == -ENOMEM, "validate: unexpected error");
        FUZZ_ASSERT(r != -EBADMSG || field, "refusal without a field");
        free(field);
}

static const char *const errors[] = {
        "PermissionDenied",
        "KeyVaultError",
        "NoSuchVolume",
        "PreconditionFailed",
        "E",
        "Error",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size);
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = NULL;
        _cleanup_json_ json_object *params = NULL;
        size_t text_len = strlen(text);
        int r;

        r = ade_varlink_interface_parse(text, &iface);
        FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM, "parse: unexpected error");
        if (r < 0)
                return 0;
        FUZZ_ASSERT(ade_varlink_interface_get_name(iface), "interface without a name");
        FUZZ_ASSERT(strcmp(ade_varlink_interface_get_text(iface), text) == 0, "text not kept as given");

        if (text_len < size && ade_json_parse(text + text_len + 1, size - text_len - 1, &params) < 0)
                params = NULL;

        for (const char *const *m = ade_varlink_interface_get_methods(iface); m && *m; m++) {
                char *field = NULL;

                FUZZ_ASSERT(ade_varlink_interface_has_method(iface, *m), "listed method not declared");
                r = ade_varlink_interface_validate_input(iface, *m, params, &field);
                check_result(r, field);
                field = NULL;
                r = ade_varlink_interface_validate_output(iface, *m, params, &field);
                check_result(r, field);
                field = NULL;
        }
        /* There is no list of errors: try the names the seeds and aded's own interface use. */
        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                char *field = NULL;

                r = ade_varlink_interface_validate_error(iface, errors[i], params, &field);
                check_result(r, field);
        }
        return 0;
}
