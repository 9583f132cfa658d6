/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vault's contents: keys (with their private parts) and secrets, every version kept in order
 * of creation. Persisted to --state after each change so a restarted emulator still unwraps what
 * it wrapped. Everything here runs under emu.lock (or before the daemons start). */

#include "emu.h"

EmuKey *emu_key_free(EmuKey *k) {
        if (!k)
                return NULL;
        free(k->name);
        free(k->version);
        free(k->kty);
        free(k->crv);
        EVP_PKEY_free(k->pkey);
        json_object_put(k->key_ops);
        json_object_put(k->tags);
        free(k);
        return NULL;
}

EmuSecret *emu_secret_free(EmuSecret *s) {
        if (!s)
                return NULL;
        free(s->name);
        free(s->version);
        free(s->value);
        free(s->content_type);
        json_object_put(s->tags);
        free(s);
        return NULL;
}

static void emu_key_freep(EmuKey **k) {
        emu_key_free(*k);
}

static void emu_secret_freep(EmuSecret **s) {
        emu_secret_free(*s);
}

/* Names are case-insensitive in Key Vault; versions are lower-case hex. */
EmuKey *emu_vault_find_key(const char *name, const char *version) {
        for (size_t i = emu.n_keys; i > 0; i--) {
                EmuKey *k = emu.keys[i - 1];
                if (strcaseeq(k->name, name) && (isempty(version) || strcaseeq(k->version, version)))
                        return k;
        }
        return NULL;
}

EmuSecret *emu_vault_find_secret(const char *name, const char *version) {
        for (size_t i = emu.n_secrets; i > 0; i--) {
                EmuSecret *s = emu.secrets[i - 1];
                if (strcaseeq(s->name, name) && (isempty(version) || strcaseeq(s->version, version)))
                        return s;
        }
        return NULL;
}

int emu_vault_add_key(EmuKey *k) {
        EmuKey **l = realloc(emu.keys, (emu.n_keys + 1) * sizeof(EmuKey *));

        if (!l) {
                emu_key_free(k);
                return -ENOMEM;
        }
        emu.keys = l;
        emu.keys[emu.n_keys++] = k;
        return 0;
}

int emu_vault_add_secret(EmuSecret *s) {
        EmuSecret **l = realloc(emu.secrets, (emu.n_secrets + 1) * sizeof(EmuSecret *));

        if (!l) {
                emu_secret_free(s);
                return -ENOMEM;
        }
        emu.secrets = l;
        emu.secrets[emu.n_secrets++] = s;
        return 0;
}

const char *emu_vault_recovery_level(int64_t *ret_days) {
        json_object *v = emu_cfg_obj(emu.config, "vault");
        int64_t days = emu_cfg_int(v, "soft_delete_retention_days", 90);
        bool soft = emu_cfg_bool(v, "enable_soft_delete", true),
             purge = emu_cfg_bool(v, "enable_purge_protection", false);

        if (!soft) {
                *ret_days = 0;
                return "Purgeable";
        }
        *ret_days = days;
        if (days != 90)
                return purge ? "CustomizedRecoverable" : "CustomizedRecoverable+Purgeable";
        return purge ? "Recoverable" : "Recoverable+Purgeable";
}

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

bool emu_kty_is_ec(const char *kty) {
        return kty && (streq(kty, "EC") || streq(kty, "EC-HSM"));
}

/* A key's nbf or exp from the scenario: absolute unix seconds (@abs_key) or seconds relative to
 * @now (@rel_key, negative for the past), not both; 0 when neither is given. */
static int key_time_from_config(json_object *o, const char *abs_key, const char *rel_key, int64_t now, int64_t *ret) {
        json_object *a = NULL, *rel = NULL;
        bool has_abs = json_object_object_get_ex(o, abs_key, &a) && a,
             has_rel = json_object_object_get_ex(o, rel_key, &rel) && rel;

        if ((has_abs && !json_object_is_type(a, json_type_int)) ||
                (has_rel && !json_object_is_type(rel, json_type_int)) || (has_abs && has_rel))
                return -EINVAL;
        if (has_abs) {
                *ret = json_object_get_int64(a);
                return *ret > 0 ? 0 : -EINVAL;
        }
        *ret = has_rel ? now + json_object_get_int64(rel) : 0;
        return 0;
}

static int key_from_config(json_object *o, EmuKey **ret) {
        _cleanup_(emu_key_freep) EmuKey *k = calloc(1, sizeof(EmuKey));
        const char *name = emu_cfg_str(o, "name"), *kty = emu_cfg_str(o, "kty") ?: "RSA",
                   *crv = emu_cfg_str(o, "crv") ?: "P-256";
        json_object *ops = emu_cfg_array(o, "key_ops"), *tags = emu_cfg_obj(o, "tags");
        int64_t bits = emu_cfg_int(o, "key_size", 2048), now = emu_now();
        bool ec = emu_kty_is_ec(kty);
        int r;

        if (!k)
                return -ENOMEM;
        if (!name || (!ec && !streq(kty, "RSA") && !streq(kty, "RSA-HSM")))
                return -EINVAL;
        /* A curve on an RSA key or a size on an EC key is a scenario mistake, not something to ignore. */
        if (ec ? json_object_object_get_ex(o, "key_size", NULL)
               : (json_object_object_get_ex(o, "crv", NULL) || (bits != 2048 && bits != 3072 && bits != 4096)))
                return -EINVAL;
        k->name = strdup(name);
        k->version = emu_new_version();
        k->kty = strdup(kty);
        if (!k->name || !k->version || !k->kty || (ec && !(k->crv = strdup(crv))))
                return -ENOMEM;
        k->key_ops = ops ? json_object_get(ops) : NULL;
        if (!k->key_ops) {
                /* What Key Vault gives a key created without key_ops: EC keys only sign. */
                static const char *const all[] = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"};
                static const char *const ec_ops[] = {"sign", "verify"};
                k->key_ops = json_object_new_array();
                for (size_t i = 0; k->key_ops && i < (ec ? ELEMENTSOF(ec_ops) : ELEMENTSOF(all)); i++)
                        json_object_array_add(k->key_ops, json_object_new_string(ec ? ec_ops[i] : all[i]));
        }
        k->tags = tags ? json_object_get(tags) : NULL;
        k->enabled = emu_cfg_bool(o, "enabled", true);
        k->created = k->updated = now - emu_cfg_int(o, "age_seconds", 86400);
        r = key_time_from_config(o, "nbf", "not_before_in_seconds", now, &k->nbf);
        if (r < 0)
                return r;
        r = key_time_from_config(o, "exp", "expires_in_seconds", now, &k->exp);
        if (r < 0)
                return r;
        r = ec ? emu_ec_generate(crv, &k->pkey) : emu_rsa_generate((unsigned)bits, &k->pkey);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(k);
        return 0;
}

static int secret_from_config(json_object *o, EmuSecret **ret) {
        _cleanup_(emu_secret_freep) EmuSecret *s = calloc(1, sizeof(EmuSecret));
        const char *name = emu_cfg_str(o, "name"), *value = emu_cfg_str(o, "value");
        json_object *tags = emu_cfg_obj(o, "tags");

        if (!s)
                return -ENOMEM;
        if (!name || !value)
                return -EINVAL;
        s->name = strdup(name);
        s->value = strdup(value);
        s->version = emu_new_version();
        if (!s->name || !s->value || !s->version)
                return -ENOMEM;
        if (emu_cfg_str(o, "contentType")) {
                s->content_type = strdup(emu_cfg_str(o, "contentType"));
                if (!s->content_type)
                        return -ENOMEM;
        }
        s->tags = tags ? json_object_get(tags) : NULL;
        s->enabled = emu_cfg_bool(o, "enabled", true);
        s->created = s->updated = emu_now() - emu_cfg_int(o, "age_seconds", 3600);
        *ret = TAKE_PTR(s);
        return 0;
}

static int load_state(const char *text, size_t size) {
        _cleanup_json_ json_object *o = NULL;
        json_object *keys, *secrets;
        int r;

        r = ade_json_parse(text, size, &o);
        if (r < 0)
                return r;
        keys = emu_cfg_array(o, "keys");
        secrets = emu_cfg_array(o, "secrets");
        if (!keys || !secrets)
                return -EBADMSG;

        for (size_t i = 0; i < json_object_array_length(keys); i++) {
                json_object *e = json_object_array_get_idx(keys, i);
                _cleanup_(emu_key_freep) EmuKey *k = calloc(1, sizeof(EmuKey));
                const char *pem = emu_cfg_str(e, "pem");

                if (!k)
                        return -ENOMEM;
                if (!emu_cfg_str(e, "name") || !emu_cfg_str(e, "version") || !pem)
                        return -EBADMSG;
                k->name = strdup(emu_cfg_str(e, "name"));
                k->version = strdup(emu_cfg_str(e, "version"));
                k->kty = strdup(emu_cfg_str(e, "kty") ?: "RSA");
                if (!k->name || !k->version || !k->kty)
                        return -ENOMEM;
                if (emu_kty_is_ec(k->kty)) {
                        if (!emu_cfg_str(e, "crv"))
                                return -EBADMSG;
                        k->crv = strdup(emu_cfg_str(e, "crv"));
                        if (!k->crv)
                                return -ENOMEM;
                }
                r = emu_pem_key_from_string(pem, &k->pkey);
                if (r < 0)
                        return r;
                k->key_ops = json_object_get(emu_cfg_array(e, "key_ops"));
                k->tags = json_object_get(emu_cfg_obj(e, "tags"));
                k->enabled = emu_cfg_bool(e, "enabled", true);
                k->nbf = emu_cfg_int(e, "nbf", 0);
                k->exp = emu_cfg_int(e, "exp", 0);
                k->created = emu_cfg_int(e, "created", 0);
                k->updated = emu_cfg_int(e, "updated", 0);
                r = emu_vault_add_key(TAKE_PTR(k));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < json_object_array_length(secrets); i++) {
                json_object *e = json_object_array_get_idx(secrets, i);
                _cleanup_(emu_secret_freep) EmuSecret *s = calloc(1, sizeof(EmuSecret));

                if (!s)
                        return -ENOMEM;
                if (!emu_cfg_str(e, "name") || !emu_cfg_str(e, "version") || !emu_cfg_str(e, "value"))
                        return -EBADMSG;
                s->name = strdup(emu_cfg_str(e, "name"));
                s->version = strdup(emu_cfg_str(e, "version"));
                s->value = strdup(emu_cfg_str(e, "value"));
                if (!s->name || !s->version || !s->value)
                        return -ENOMEM;
                if (emu_cfg_str(e, "contentType") && !(s->content_type = strdup(emu_cfg_str(e, "contentType"))))
                        return -ENOMEM;
                s->tags = json_object_get(emu_cfg_obj(e, "tags"));
                s->enabled = emu_cfg_bool(e, "enabled", true);
                s->nbf = emu_cfg_int(e, "nbf", 0);
                s->exp = emu_cfg_int(e, "exp", 0);
                s->created = emu_cfg_int(e, "created", 0);
                s->updated = emu_cfg_int(e, "updated", 0);
                r = emu_vault_add_secret(TAKE_PTR(s));
                if (r < 0)
                        return r;
        }
        return 0;
}

int emu_vault_init(void) {
        json_object *v = emu_cfg_obj(emu.config, "vault"), *keys = emu_cfg_array(v, "keys"),
                    *secrets = emu_cfg_array(v, "secrets");
        int r;

        if (emu.state_path) {
                _cleanup_free_ char *text = NULL;
                size_t size;

                r = emu_read_file(emu.state_path, &text, &size);
                if (r >= 0)
                        return load_state(text, size);
                if (r != -ENOENT)
                        return r;
        }

        for (size_t i = 0; keys && i < json_object_array_length(keys); i++) {
                EmuKey *k;
                r = key_from_config(json_object_array_get_idx(keys, i), &k);
                if (r < 0) {
                        fprintf(stderr,
                                "ade-emulator: vault.keys[%zu] is invalid (name, kty RSA/RSA-HSM/EC/EC-HSM, "
                                "key_size or crv, nbf/not_before_in_seconds, exp/expires_in_seconds)\n",
                                i);
                        return r;
                }
                r = emu_vault_add_key(k);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; secrets && i < json_object_array_length(secrets); i++) {
                EmuSecret *s;
                r = secret_from_config(json_object_array_get_idx(secrets, i), &s);
                if (r < 0)
                        return r;
                r = emu_vault_add_secret(s);
                if (r < 0)
                        return r;
        }
        return emu_vault_save();
}

static json_object *secret_state(const EmuSecret *s) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        ade_json_add_string(o, "name", s->name);
        ade_json_add_string(o, "version", s->version);
        ade_json_add_string(o, "value", s->value);
        ade_json_add_string(o, "contentType", s->content_type);
        if (s->tags)
                json_object_object_add(o, "tags", json_object_get(s->tags));
        json_object_object_add(o, "enabled", json_object_new_boolean(s->enabled));
        json_object_object_add(o, "nbf", json_object_new_int64(s->nbf));
        json_object_object_add(o, "exp", json_object_new_int64(s->exp));
        json_object_object_add(o, "created", json_object_new_int64(s->created));
        json_object_object_add(o, "updated", json_object_new_int64(s->updated));
        return o;
}

int emu_vault_save(void) {
        _cleanup_json_ json_object *o = json_object_new_object(), *keys = json_object_new_array(),
                                   *secrets = json_object_new_array();
        _cleanup_free_ char *text = NULL;

        if (!emu.state_path)
                return 0;
        if (!o || !keys || !secrets)
                return -ENOMEM;
        for (size_t i = 0; i < emu.n_keys; i++) {
                EmuKey *k = emu.keys[i];
                _cleanup_free_ char *pem = emu_pem_key_string(k->pkey);
                json_object *e = json_object_new_object();

                if (!e || !pem) {
                        json_object_put(e);
                        return -ENOMEM;
                }
                ade_json_add_string(e, "name", k->name);
                ade_json_add_string(e, "version", k->version);
                ade_json_add_string(e, "kty", k->kty);
                ade_json_add_string(e, "crv", k->crv);
                json_object_object_add(e, "key_ops", json_object_get(k->key_ops));
                if (k->tags)
                        json_object_object_add(e, "tags", json_object_get(k->tags));
                json_object_object_add(e, "enabled", json_object_new_boolean(k->enabled));
                json_object_object_add(e, "nbf", json_object_new_int64(k->nbf));
                json_object_object_add(e, "exp", json_object_new_int64(k->exp));
                json_object_object_add(e, "created", json_object_new_int64(k->created));
                json_object_object_add(e, "updated", json_object_new_int64(k->updated));
                ade_json_add_string(e, "pem", pem);
                json_object_array_add(keys, e);
        }
        for (size_t i = 0; i < emu.n_secrets; i++)
                json_object_array_add(secrets, secret_state(emu.secrets[i]));
        json_object_object_add(o, "keys", TAKE_PTR(keys));
        json_object_object_add(o, "secrets", TAKE_PTR(secrets));
        text = ade_json_to_string(o);
        if (!text)
                return -ENOMEM;
        return emu_write_file_atomic(emu.state_path, text, strlen(text), 0600);
}

json_object *emu_vault_dump(const char *base) {
        json_object *o = json_object_new_object(), *keys = json_object_new_array(), *secrets = json_object_new_array();

        if (!o || !keys || !secrets) {
                json_object_put(o);
                json_object_put(keys);
                json_object_put(secrets);
                return NULL;
        }
        for (size_t i = 0; i < emu.n_secrets; i++) {
                EmuSecret *s = emu.secrets[i];
                json_object *e = json_object_new_object(), *attrs = json_object_new_object();
                _cleanup_free_ char *id = NULL;

                if (!e || !attrs || asprintf(&id, "%s/secrets/%s/%s", base, s->name, s->version) < 0) {
                        json_object_put(e);
                        json_object_put(attrs);
                        continue;
                }
                ade_json_add_string(e, "name", s->name);
                ade_json_add_string(e, "version", s->version);
                ade_json_add_string(e, "id", id);
                ade_json_add_string(e, "value", s->value);
                json_object_object_add(e, "contentType", string_or_null(s->content_type));
                json_object_object_add(e, "tags", s->tags ? json_object_get(s->tags) : json_object_new_object());
                json_object_object_add(attrs, "enabled", json_object_new_boolean(s->enabled));
                if (s->nbf)
                        json_object_object_add(attrs, "nbf", json_object_new_int64(s->nbf));
                if (s->exp)
                        json_object_object_add(attrs, "exp", json_object_new_int64(s->exp));
                json_object_object_add(attrs, "created", json_object_new_int64(s->created));
                json_object_object_add(attrs, "updated", json_object_new_int64(s->updated));
                json_object_object_add(e, "attributes", attrs);
                json_object_array_add(secrets, e);
        }
        for (size_t i = 0; i < emu.n_keys; i++) {
                EmuKey *k = emu.keys[i];
                json_object *e = json_object_new_object();
                _cleanup_free_ char *kid = NULL;

                if (!e || asprintf(&kid, "%s/keys/%s/%s", base, k->name, k->version) < 0) {
                        json_object_put(e);
                        continue;
                }
                ade_json_add_string(e, "name", k->name);
                ade_json_add_string(e, "version", k->version);
                ade_json_add_string(e, "kid", kid);
                ade_json_add_string(e, "kty", k->kty);
                if (k->crv)
                        ade_json_add_string(e, "crv", k->crv);
                json_object_object_add(e, "key_ops", json_object_get(k->key_ops));
                json_object_object_add(e, "enabled", json_object_new_boolean(k->enabled));
                if (k->nbf)
                        json_object_object_add(e, "nbf", json_object_new_int64(k->nbf));
                if (k->exp)
                        json_object_object_add(e, "exp", json_object_new_int64(k->exp));
                json_object_array_add(keys, e);
        }
        json_object_object_add(o, "secrets", secrets);
        json_object_object_add(o, "keys", keys);
        return o;
}

void emu_vault_done(void) {
        for (size_t i = 0; i < emu.n_keys; i++)
                emu_key_free(emu.keys[i]);
        for (size_t i = 0; i < emu.n_secrets; i++)
                emu_secret_free(emu.secrets[i]);
        free(emu.keys);
        free(emu.secrets);
        emu.keys = NULL;
        emu.secrets = NULL;
        emu.n_keys = emu.n_secrets = 0;
}
