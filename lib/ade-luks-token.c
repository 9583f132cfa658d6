/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The names of ade-luks.h's enums as they appear on the wire and in logs, and the
 * Azure_Disk_Encryption token (docs/architecture.md §3) as JSON. Nothing here touches a device. */
#include <assert.h>

#include "ade-json.h"
#include "ade-log.h"
#include "ade-luks.h"
#include "ade-url.h"

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const mode_table[_ADE_LUKS_MODE_MAX] = {
        [ADE_LUKS_MODE_IN_PLACE] = "InPlace",
        [ADE_LUKS_MODE_FORMAT_ALL] = "FormatAll",
};
static const char *const header_table[_ADE_LUKS_HEADER_MAX] = {
        [ADE_LUKS_HEADER_ATTACHED] = "Attached",
        [ADE_LUKS_HEADER_DETACHED] = "Detached",
};
static const char *const state_table[_ADE_LUKS_STATE_MAX] = {
        [ADE_LUKS_STATE_NONE] = "none",
        [ADE_LUKS_STATE_FINISHED] = "finished",
        [ADE_LUKS_STATE_CLEAN] = "clean",
        [ADE_LUKS_STATE_CRASH] = "crash",
        [ADE_LUKS_STATE_INVALID] = "invalid",
};
static const char *const step_table[_ADE_LUKS_STEP_MAX] = {
        [ADE_LUKS_STEP_HEADER_BACKED_UP] = "header-backed-up",
        [ADE_LUKS_STEP_PLANNED] = "planned",
        [ADE_LUKS_STEP_SHRUNK] = "shrunk",
        [ADE_LUKS_STEP_HEADER_WRITTEN] = "header-written",
        [ADE_LUKS_STEP_ACTIVATED] = "activated",
        [ADE_LUKS_STEP_ROTATE_KEYSLOT_ADDED] = "rotate-keyslot-added",
        [ADE_LUKS_STEP_ROTATE_TOKEN_SWAPPED] = "rotate-token-swapped",
        [ADE_LUKS_STEP_ROTATE_OLD_REMOVED] = "rotate-old-removed",
        [ADE_LUKS_STEP_DECRYPT_HEADER_EXPORTED] = "decrypt-header-exported",
        [ADE_LUKS_STEP_DECRYPT_DEVICE_WIPED] = "decrypt-device-wiped",
};

const char *ade_luks_mode_to_string(AdeLuksMode m) {
        return m >= 0 && m < _ADE_LUKS_MODE_MAX ? mode_table[m] : NULL;
}
const char *ade_luks_header_to_string(AdeLuksHeader h) {
        return h >= 0 && h < _ADE_LUKS_HEADER_MAX ? header_table[h] : NULL;
}
const char *ade_luks_state_to_string(AdeLuksState s) {
        return s >= 0 && s < _ADE_LUKS_STATE_MAX ? state_table[s] : NULL;
}
const char *ade_luks_step_to_string(AdeLuksStep s) {
        return s >= 0 && s < _ADE_LUKS_STEP_MAX ? step_table[s] : NULL;
}
AdeLuksStep ade_luks_step_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _ADE_LUKS_STEP_MAX; i++)
                        if (streq(s, step_table[i]))
                                return (AdeLuksStep)i;
        return _ADE_LUKS_STEP_INVALID;
}

/* ---- the token ------------------------------------------------------------------------------ */

AdeLuksToken *ade_luks_token_free(AdeLuksToken *t) {
        if (!t)
                return NULL;
        free(t->version);
        free(t->key_vault_url);
        free(t->key_vault_resource_id);
        free(t->secret_url);
        free(t->kek_url);
        free(t->kek_vault_resource_id);
        free(t->kek_algorithm);
        free(t->volume_type);
        free(t->passphrase);
        free(t->device_id);
        free(t);
        return NULL;
}

/* The JSON names of docs/architecture.md §3, in the order they are written, with the field each maps to. */
#define TOKEN_FIELDS(X)                                                                                                \
        X("version", version)                                                                                          \
        X("KeyVaultURL", key_vault_url)                                                                                \
        X("KeyVaultResourceId", key_vault_resource_id)                                                                 \
        X("SecretURL", secret_url)                                                                                     \
        X("KeyEncryptionKeyURL", kek_url)                                                                              \
        X("KekVaultResourceId", kek_vault_resource_id)                                                                 \
        X("KeyEncryptionAlgorithm", kek_algorithm)                                                                     \
        X("VolumeType", volume_type)                                                                                   \
        X("Passphrase", passphrase)                                                                                    \
        X("DeviceId", device_id)

int ade_luks_token_copy(const AdeLuksToken *t, AdeLuksToken **ret) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *c = NULL;

        assert(t);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->keyslot = t->keyslot;
#define COPY(name, field)                                                                                              \
        if (t->field && !(c->field = strdup(t->field)))                                                                \
                return -ENOMEM;
        TOKEN_FIELDS(COPY)
#undef COPY
        *ret = TAKE_PTR(c);
        return 0;
}

int ade_luks_token_to_json(const AdeLuksToken *t, int keyslot, char **ret) {
        _cleanup_json_ json_object *o = NULL, *slots = NULL;
        char slot[16];
        char *s;

        assert(t);
        assert(ret);

        o = json_object_new_object();
        slots = json_object_new_array();
        if (!o || !slots)
                return -ENOMEM;
        if (ade_json_add_string(o, "type", ADE_LUKS_TOKEN_TYPE) < 0)
                return -ENOMEM;
        if (keyslot >= 0) {
                snprintf(slot, sizeof(slot), "%d", keyslot);
                if (json_object_array_add(slots, json_object_new_string(slot)) < 0)
                        return -ENOMEM;
        }
        if (json_object_object_add(o, "keyslots", TAKE_PTR(slots)) < 0)
                return -ENOMEM;
        if (ade_json_add_string(o, "version", t->version ?: ADE_LUKS_TOKEN_VERSION) < 0)
                return -ENOMEM;
#define ADD(name, field)                                                                                               \
        if (!streq(name, "version") && !isempty(t->field) && ade_json_add_string(o, name, t->field) < 0)               \
                return -ENOMEM;
        TOKEN_FIELDS(ADD)
#undef ADD
        s = ade_json_to_string(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int ade_luks_token_from_json(const char *json, AdeLuksToken **ret) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_json_ json_object *o = NULL;
        json_object *slots;
        const char *type, *v;
        int r;

        assert(json);
        assert(ret);

        r = ade_json_parse(json, strlen(json), &o);
        if (r < 0)
                return r;
        if (ade_json_get_string(o, "type", &type) < 0 || !streq(type, ADE_LUKS_TOKEN_TYPE))
                return -EBADMSG;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->keyslot = -1;
#define GET(name, field)                                                                                               \
        r = ade_json_get_string(o, name, &v);                                                                          \
        if (r == -EBADMSG)                                                                                             \
                return r;                                                                                              \
        if (r >= 0 && !isempty(v) && !(t->field = strdup(v)))                                                          \
                return -ENOMEM;
        TOKEN_FIELDS(GET)
#undef GET
        if (!t->version || !t->secret_url)
                return ade_log_debug_errno(EBADMSG, "Token %s lacks version or SecretURL", ADE_LUKS_TOKEN_TYPE);

        if (ade_json_get_array(o, "keyslots", &slots) >= 0 && json_object_array_length(slots) > 0) {
                json_object *e = json_object_array_get_idx(slots, 0);
                const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
                char *end;
                long k;

                if (!s)
                        return -EBADMSG;
                errno = 0;
                k = strtol(s, &end, 10);
                if (errno || *end || k < 0 || k > 31)
                        return -EBADMSG;
                t->keyslot = (int)k;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

bool ade_secret_url_is_versioned(const char *url) {
        return url && ade_url_keyvault_object(url, "secrets", true, NULL, NULL, NULL) >= 0;
}
