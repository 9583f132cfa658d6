/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <ctype.h>

#include "ade-base64.h"
#include "ade-config.h"
#include "ade-entra.h"
#include "ade-envelope.h"
#include "ade-keyfile.h"
#include "ade-log.h"

int ade_envelope_key_file_name(int controller, int lun, char **ret) {
        assert(ret);

        if (lun < 0)
                *ret = strdup("LinuxPassPhraseFileName");
        else if (controller < 0 || asprintf(ret, "LinuxPassPhraseFileName_%d_%d", controller, lun) < 0)
                return controller < 0 ? -EINVAL : -ENOMEM;
        return *ret ? 0 : -ENOMEM;
}

static bool machine_name_ok(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
                        return false;
        return true;
}

static int strv_add_pair(char ***l, size_t *n, const char *k, const char *v) {
        char **nl = realloc(*l, (*n + 3) * sizeof(char *));

        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[*n] = strdup(k);
        nl[*n + 1] = strdup(v);
        nl[*n + 2] = NULL;
        if (!nl[*n] || !nl[*n + 1]) {
                free(nl[*n]);
                free(nl[*n + 1]);
                nl[*n] = NULL;
                return -ENOMEM;
        }
        *n += 2;
        return 0;
}

int ade_envelope_build_secret(const AdeSecret *key_file, const char *wrapped, const AdeEnvelopeParams *p,
        AdeSecret **ret_value, const char **ret_content_type, char ***ret_tags) {
        _cleanup_secret_ AdeSecret *value = NULL;
        _cleanup_(strv_freep) char **tags = NULL;
        const char *alg, *machine;
        char host[256] = {};
        size_t n = 0;
        int r;

        assert(key_file);
        assert(p);
        assert(ret_value);
        assert(ret_content_type);
        assert(ret_tags);

        if (!ade_keyfile_is_valid(key_file))
                return ade_log_debug_errno(-EINVAL, "Refusing to escrow something that is not a key file");
        if (!!wrapped != !!p->kek_url)
                return -EINVAL;
        alg = p->kek_algorithm ?: ADE_KEK_ALGORITHM_DEFAULT;
        if (!ade_kek_algorithm_is_valid(alg))
                return -EINVAL;

        if (wrapped)
                r = ade_secret_new_from(wrapped, strlen(wrapped), &value);
        else
                r = ade_base64_encode_secret(key_file, false, &value);
        if (r < 0)
                return r;

        machine = p->machine_name;
        if (!machine && gethostname(host, sizeof(host) - 1) >= 0)
                machine = host;

        tags = calloc(1, sizeof(char *));
        if (!tags)
                return -ENOMEM;
        if ((r = strv_add_pair(&tags, &n, ADE_TAG_KEY_FILE_NAME, p->key_file_name ?: "LinuxPassPhraseFileName")) < 0 ||
                (r = strv_add_pair(&tags, &n, ADE_TAG_ALGORITHM, alg)) < 0)
                return r;
        if (p->kek_url && (r = strv_add_pair(&tags, &n, ADE_TAG_KEK_URL, p->kek_url)) < 0)
                return r;
        /* ADE leaves out a host name it could not put in a tag. */
        if (machine_name_ok(machine) && (r = strv_add_pair(&tags, &n, ADE_TAG_MACHINE_NAME, machine)) < 0)
                return r;

        *ret_value = TAKE_PTR(value);
        *ret_content_type = wrapped ? ADE_CONTENT_TYPE_WRAPPED_BEK : ADE_CONTENT_TYPE_BEK;
        *ret_tags = TAKE_PTR(tags);
        return 0;
}

int ade_envelope_escrow(AdeKeyVault *kv, AdeKeyVault *kek_kv, const AdeSecret *key_file, const AdeEnvelopeParams *p,
        char **ret_secret_url, char **ret_wrapped, AdeCloudError *ret_error) {
        _cleanup_secret_ AdeSecret *value = NULL;
        _cleanup_(strv_freep) char **tags = NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *back = NULL;
        _cleanup_free_ char *wrapped = NULL, *name = NULL, *id = NULL;
        const char *content_type;
        int r;

        assert(kv);
        assert(key_file);
        assert(p);
        assert(ret_secret_url);

        if (!ade_keyfile_is_valid(key_file))
                return ade_log_debug_errno(-EINVAL, "Refusing to escrow something that is not a key file");

        if (p->kek_url) {
                r = ade_keyvault_wrap(kek_kv ?: kv, p->kek_url, p->kek_algorithm ?: ADE_KEK_ALGORITHM_DEFAULT, key_file,
                        &wrapped, ret_error);
                if (r < 0)
                        return r;
        }

        r = ade_envelope_build_secret(key_file, wrapped, p, &value, &content_type, &tags);
        if (r < 0)
                return r;
        r = ade_guid_new(&name);
        if (r < 0)
                return r;

        r = ade_keyvault_set_secret(kv, name, value, content_type, tags, &id, ret_error);
        if (r < 0)
                return r;

        /* Read it back: the disk is only touched once the vault demonstrably holds the key. */
        r = ade_keyvault_get_secret(kv, id, &back, ret_error);
        if (r < 0)
                return r;
        if (!ade_secret_equal(back->value, value) || !streq_ptr(back->content_type, content_type)) {
                (void)ade_cloud_error_set(
                        ret_error, 200, "EscrowMismatch", "the secret read back differs from the one written", id);
                return ade_log_debug_errno(-EIO, "Secret %s read back differs from what was written", id);
        }

        *ret_secret_url = TAKE_PTR(id);
        if (ret_wrapped)
                *ret_wrapped = TAKE_PTR(wrapped);
        return 0;
}

static int check_key_file(AdeSecret **k, const char *what, AdeCloudError *ret_error) {
        if (ade_keyfile_is_valid(*k))
                return 0;
        *k = ade_secret_free(*k);
        (void)ade_cloud_error_set(
                ret_error, 0, "NotAKeyFile", "the recovered value is not a 172-character key file", what);
        return ade_log_debug_errno(-EBADMSG, "%s does not hold an ADE key file", what);
}

int ade_envelope_resolve(AdeKeyVault *kv, AdeKeyVault *kek_kv, const char *secret_url, const char *kek_url,
        const char *alg, const char *wrapped, AdeSecret **ret_key_file, AdeCloudError *ret_error) {
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *s = NULL;
        _cleanup_secret_ AdeSecret *k = NULL;
        const char *kek, *a;
        int r;

        assert(kv);
        assert(ret_key_file);

        if (wrapped && kek_url) {
                r = ade_keyvault_unwrap(
                        kek_kv ?: kv, kek_url, alg ?: ADE_KEK_ALGORITHM_DEFAULT, wrapped, &k, ret_error);
                if (r < 0)
                        return r;
                r = check_key_file(&k, kek_url, ret_error);
                if (r < 0)
                        return r;
                *ret_key_file = TAKE_PTR(k);
                return 0;
        }

        if (!secret_url)
                return -EINVAL;
        r = ade_keyvault_get_secret(kv, secret_url, &s, ret_error);
        if (r < 0)
                return r;

        kek = kek_url ?: ade_kv_secret_tag(s, ADE_TAG_KEK_URL);
        if (kek) {
                a = alg ?: ade_kv_secret_tag(s, ADE_TAG_ALGORITHM) ?: ADE_KEK_ALGORITHM_DEFAULT;
                r = ade_keyvault_unwrap(kek_kv ?: kv, kek, a, (const char *)s->value->data, &k, ret_error);
        } else if (streq_ptr(s->content_type, ADE_CONTENT_TYPE_WRAPPED_BEK)) {
                (void)ade_cloud_error_set(ret_error, 0, "NoKekUrl",
                        "the secret is a Wrapped BEK but names no KEK; pass the KEK URL", secret_url);
                return -EBADMSG;
        } else
                r = ade_base64_decode_secret((const char *)s->value->data, s->value->size, &k);
        if (r < 0)
                return r == -EINVAL && !kek ? -EBADMSG : r;

        r = check_key_file(&k, secret_url, ret_error);
        if (r < 0)
                return r;
        *ret_key_file = TAKE_PTR(k);
        return 0;
}
