/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "ade-envelope.h"
#include "ade-resolver.h"
#include "aded-keys.h"
#include "aded-manager.h"

/* The escrow format and the key resolver are the library's (ade-envelope, ade-resolver); this file
 * names the key file of a volume and maps Enable's parameters onto them. */

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
        _cleanup_free_ char *file_name = NULL;
        int r;

        if (!p->keyvault_url)
                return -EINVAL;
        r = aded_keys_file_name(m, v, &file_name);
        if (r < 0)
                return r;
        return ade_resolver_escrow(m->resolver,
                &(AdeResolverEscrow){
                        .vault_url = p->keyvault_url,
                        .vault_resource_id = p->keyvault_resource_id,
                        .kek_url = p->kek_url,
                        .kek_vault_resource_id = p->kek_vault_resource_id,
                        .kek_algorithm = p->kek_algorithm,
                        .key_file_name = file_name,
                        .volume_type = ade_volume_type_to_string(v->type),
                        .device_id = v->stable_id,
                },
                keyfile, ret_token, ret_error);
}

int aded_keys_resolve(Manager *m, AdeLuksToken *token, AdeSecret **ret_keyfile, AdeCloudError *ret_error) {
        return ade_resolver_key_from_token(m->resolver, token, ret_keyfile, ret_error);
}

int aded_keys_disable_secret(Manager *m, const char *secret_url, AdeCloudError *ret_error) {
        return ade_resolver_disable_secret(m->resolver, secret_url, ret_error);
}
