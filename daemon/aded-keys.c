/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <unistd.h>

#include "ade-envelope.h"
#include "ade-keyvault.h"
#include "ade-log.h"
#include "aded-keys.h"
#include "aded-manager.h"

/* The escrow format and the resolver are ade-envelope's; this file only builds the Key Vault clients
 * (one per call: workers run concurrently and a client is not thread-safe) and fills the token. */

static int keyvault_open(Manager *m, const char *vault_url, AdeCredential **ret_cred, AdeKeyVault **ret_kv) {
        _cleanup_(ade_credential_freep) AdeCredential *cred = NULL;
        AdeHttpOptions opts;
        int r;

        ade_http_options_init(&opts);
        opts.ca_file = m->config->azure.ca_file;
        r = ade_credential_new_from_config(m->config, &opts, &cred);
        if (r < 0)
                return ade_log_debug_errno(r, "cannot set up the identity from %s: %m", m->config->path);
        r = ade_keyvault_new(vault_url, cred, m->config->azure.keyvault_resource, &opts, ret_kv);
        if (r < 0)
                return r;
        *ret_cred = TAKE_PTR(cred);
        return 0;
}

/* The vault of a secret or key URL is its origin. */
static int origin_of(const char *url, const char *kind, char **ret) {
        return ade_keyvault_parse_object_url(url, kind, false, ret, NULL, NULL);
}

/* A second client when the KEK lives in another vault; NULL (use the first) when it does not. */
static int kek_client(
        Manager *m, const char *vault_url, const char *kek_url, AdeCredential **ret_cred, AdeKeyVault **ret_kv) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        int r;

        *ret_cred = NULL;
        *ret_kv = NULL;
        if (!kek_url)
                return 0;
        r = origin_of(kek_url, "keys", &b);
        if (r < 0)
                return r;
        if (vault_url && ade_url_origin(vault_url, &a) >= 0 && strcaseeq(a, b))
                return 0;
        return keyvault_open(m, b, ret_cred, ret_kv);
}

/* ADE's file-name tag: "LinuxPassPhraseFileName" for the OS volume; "_1_<lun>" for an Azure data
 * disk (SCSI controller 1, /dev/disk/azure/scsi1/lunN); a [volumes] device without a LUN is
 * "_0_<index>", its place in the data list, so that two such devices never share a name. */
static int key_file_controller(Manager *m, const AdeVolume *v) {
        return v->type != ADE_VOLUME_OS && v->lun < 0 ? 0 : 1;
}

static int key_file_lun(Manager *m, const AdeVolume *v) {
        char **data = m->config ? m->config->volumes.data : NULL;

        if (v->type == ADE_VOLUME_OS)
                return -1;
        if (v->lun >= 0)
                return v->lun;
        for (size_t i = 0; data && data[i]; i++) {
                _cleanup_free_ char *canonical = realpath(data[i], NULL);

                if (streq_ptr(data[i], v->device) || streq_ptr(canonical, v->device))
                        return (int)i;
        }
        return 0;
}

int aded_keys_file_name(Manager *m, const AdeVolume *v, char **ret) {
        return ade_envelope_key_file_name(key_file_controller(m, v), key_file_lun(m, v), ret);
}

int aded_keys_escrow(Manager *m, const AdedEnableParams *p, const AdeVolume *v, const AdeSecret *keyfile,
        AdeLuksToken **ret_token, AdeCloudError *ret_error) {
        _cleanup_(ade_credential_freep) AdeCredential *cred = NULL, *kek_cred = NULL;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL, *kek_kv = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_free_ char *secret_url = NULL, *wrapped = NULL, *file_name = NULL;
        const char *alg = p->kek_algorithm ?: ADE_KEK_ALGORITHM_DEFAULT;
        int r;

        if (!p->keyvault_url)
                return -EINVAL;
        r = keyvault_open(m, p->keyvault_url, &cred, &kv);
        if (r < 0)
                return r;
        r = kek_client(m, p->keyvault_url, p->kek_url, &kek_cred, &kek_kv);
        if (r < 0)
                return r;

        r = aded_keys_file_name(m, v, &file_name);
        if (r < 0)
                return r;
        AdeEnvelopeParams ep = {
                .key_file_name = file_name,
                .kek_url = p->kek_url,
                .kek_algorithm = p->kek_url ? alg : NULL,
        };
        r = ade_envelope_escrow(kv, kek_kv, keyfile, &ep, &secret_url, &wrapped, ret_error);
        if (r < 0)
                return r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->keyslot = -1;
        if (ade_strdup_to(&t->version, ADE_LUKS_TOKEN_VERSION) < 0 ||
                ade_strdup_to(&t->key_vault_url, p->keyvault_url) < 0 ||
                ade_strdup_to(&t->key_vault_resource_id, p->keyvault_resource_id) < 0 ||
                ade_strdup_to(&t->secret_url, secret_url) < 0 || ade_strdup_to(&t->kek_url, p->kek_url) < 0 ||
                ade_strdup_to(&t->kek_vault_resource_id,
                        p->kek_url ? (p->kek_vault_resource_id ?: p->keyvault_resource_id) : NULL) < 0 ||
                ade_strdup_to(&t->kek_algorithm, p->kek_url ? alg : NULL) < 0 ||
                ade_strdup_to(&t->volume_type, ade_volume_type_to_string(v->type)) < 0 ||
                ade_strdup_to(&t->passphrase, wrapped) < 0 || ade_strdup_to(&t->device_id, v->stable_id) < 0)
                return -ENOMEM;
        *ret_token = TAKE_PTR(t);
        return 0;
}

int aded_keys_resolve(Manager *m, AdeLuksToken *token, AdeSecret **ret_keyfile, AdeCloudError *ret_error) {
        _cleanup_(ade_credential_freep) AdeCredential *cred = NULL, *kek_cred = NULL;
        _cleanup_(ade_keyvault_freep) AdeKeyVault *kv = NULL, *kek_kv = NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *secret = NULL;
        _cleanup_free_ char *origin = NULL;
        int r;

        if (!token || !token->secret_url)
                return -EINVAL;
        r = origin_of(token->secret_url, "secrets", &origin);
        if (r < 0)
                return r;
        r = keyvault_open(m, origin, &cred, &kv);
        if (r < 0)
                return r;
        r = kek_client(m, origin, token->kek_url, &kek_cred, &kek_kv);
        if (r < 0)
                return r;

        if (token->kek_url && !token->passphrase) {
                /* Rebuilding a token before its header exists: the wrapped value is the secret's. */
                r = ade_keyvault_get_secret(kv, token->secret_url, &secret, ret_error);
                if (r < 0)
                        return r;
                if (!secret->value)
                        return -EBADMSG;
                r = ade_strdup_to(&token->passphrase, (const char *)secret->value->data);
                if (r < 0)
                        return r;
        }
        return ade_envelope_resolve(kv, kek_kv, token->secret_url, token->kek_url, token->kek_algorithm,
                token->passphrase, ret_keyfile, ret_error);
}
