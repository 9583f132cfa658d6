/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* URLs and ARM resource ids (ade-url.h), the parser that decides where a bearer token may go. The
 * input is two strings, A and B, split at the first newline. Besides not crashing, it checks the
 * promises the callers rely on: an origin is stable (the origin of an origin is itself), a URL has
 * its own origin, ade_url_join() never leaves the base's origin, and what keyvault_object() accepts
 * names a valid object. */
#include <stdlib.h>
#include <string.h>

#include "ade-url.h"
#include "fuzz.h"

static void check_url(const char *a) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL, *h = NULL;
        _cleanup_free_ char *origin = NULL, *again = NULL;
        int r;

        r = ade_url_parse(a, 0, &u);
        if (r >= 0) {
                FUZZ_ASSERT(u->scheme && u->host && u->origin && u->path, "parsed URL lacks a part");
                FUZZ_ASSERT(strcmp(u->scheme, "https") == 0, "https-only parse gave another scheme");
                FUZZ_ASSERT(u->port > 0, "port 0");
                FUZZ_ASSERT(ade_url_origin(a, &origin) == 0 && strcmp(origin, u->origin) == 0,
                        "origin differs from the parsed one");
                FUZZ_ASSERT(ade_url_origin(origin, &again) == 0 && strcmp(again, origin) == 0, "origin not stable");
                FUZZ_ASSERT(ade_url_same_origin(a, a), "URL not on its own origin");
                FUZZ_ASSERT(ade_url_same_origin(a, origin), "URL not on its origin");
                FUZZ_ASSERT(ade_url_host_is_within(u->host, u->host), "host not within itself");
        }

        /* Origins are taken of http URLs too (IMDS'). */
        r = ade_url_parse(a, ADE_URL_ALLOW_HTTP, &h);
        FUZZ_ASSERT(r < 0 || strcmp(h->scheme, "https") == 0 || strcmp(h->scheme, "http") == 0, "other scheme");
        FUZZ_ASSERT((r >= 0) == (ade_url_origin(a, NULL) >= 0), "origin and parse disagree");
}

static void check_join(const char *a, const char *b) {
        _cleanup_free_ char *joined = NULL;
        _cleanup_(ade_url_freep) AdeUrl *base = NULL, *j = NULL;
        size_t n;

        if (ade_url_join(a, b, &joined) < 0)
                return;
        FUZZ_ASSERT(ade_url_parse(a, ADE_URL_ALLOW_HTTP, &base) == 0, "join accepted a base that does not parse");
        FUZZ_ASSERT(ade_url_parse(joined, ADE_URL_ALLOW_HTTP, &j) == 0, "join made a URL that does not parse");
        FUZZ_ASSERT(strcmp(base->origin, j->origin) == 0, "join left the base's origin");
        n = strlen(base->path);
        while (n > 0 && base->path[n - 1] == '/')
                n--;
        FUZZ_ASSERT(strncmp(j->path, base->path, n) == 0, "join left the base's path");
}

static void check_keyvault_object(const char *a) {
        static const char *const kinds[] = {"secrets", "keys"};

        for (size_t k = 0; k < 2; k++)
                for (int v = 0; v < 2; v++) {
                        _cleanup_free_ char *origin = NULL, *name = NULL, *version = NULL;

                        if (ade_url_keyvault_object(a, kinds[k], v, &origin, &name, &version) < 0)
                                continue;
                        FUZZ_ASSERT(ade_url_same_origin(a, origin), "object not on its origin");
                        FUZZ_ASSERT(ade_url_keyvault_name_is_valid(name), "object name not valid");
                        FUZZ_ASSERT(!v || version, "versioned object without version");
                        FUZZ_ASSERT(!version || ade_url_keyvault_name_is_valid(version), "version not valid");
                }
}

static void check_arm(const char *a, const char *b) {
        _cleanup_free_ char *sub = NULL, *vault = NULL, *sub2 = NULL;
        AdeUrlArmId id = {};

        if (ade_url_arm_id_parse(a, &id) == 0) {
                FUZZ_ASSERT(id.subscription && id.resource_group && id.provider && id.type && id.name,
                        "ARM id lacks a part");
                FUZZ_ASSERT(ade_url_arm_id_is(a, id.provider, id.type), "ARM id not of its own type");
                FUZZ_ASSERT(ade_url_arm_id_equal(a, a), "ARM id not equal to itself");
                ade_url_arm_id_done(&id);
        }
        if (ade_url_arm_vault_id(a, &sub, &vault) == 0)
                FUZZ_ASSERT(sub && vault && ade_url_arm_id_is(a, "Microsoft.KeyVault", "vaults"), "vault id");
        if (ade_url_arm_id_subscription(a, &sub2) == 0)
                FUZZ_ASSERT(sub2 && *sub2, "empty subscription");
        (void)ade_url_arm_id_equal(a, b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *a = fuzz_strndup(data, size);
        char *b = strchr(a, '\n');

        if (b)
                *b++ = '\0';
        else
                b = (char *)"";

        check_url(a);
        check_url(b);
        (void)ade_url_same_origin(a, b);
        (void)ade_url_host_is_within(a, b);
        check_join(a, b);
        check_keyvault_object(a);
        check_arm(a, b);
        return 0;
}
