/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-io.h"
#include "ade-keyfile.h"
#include "ade-log.h"
#include "aded-job.h"
#include "aded-keys.h"
#include "aded-manager.h"
#include "aded-rotate.h"
#include "aded-vaults.h"

static void set_rotated(AdeStateVolume *v, void *userdata) {
        const AdeLuksToken *t = userdata;

        (void)ade_strdup_to(&v->secret_url, t->secret_url);
        (void)ade_strdup_to(&v->kek_url, t->kek_url);
}

int aded_rotate_run(Job *j) {
        Manager *m = job_manager(j);
        const AdedEnableParams *params = job_params(j);
        const char *device = job_device(j);
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL, *new_token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL, *new_keyfile = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *header = NULL;
        AdeLuksOptions o;
        int r;

        job_engine_options(j, &o);
        (void)job_header(j, &header);
        r = aded_vaults_trust_params(m, params);
        if (r < 0)
                return r;

        r = job_fetch_key(j, header, "the current key file", &token, &keyfile);
        if (r < 0)
                return r;

        /* The new secret goes to the same vault; a new KEK when asked, else the same KEK (if any). */
        AdedEnableParams p = {
                .keyvault_url = token->key_vault_url,
                .keyvault_resource_id = token->key_vault_resource_id,
                .kek_url = params->kek_url ?: token->kek_url,
                .kek_vault_resource_id = params->kek_vault_resource_id ?: token->kek_vault_resource_id,
                .kek_algorithm = params->kek_algorithm ?: token->kek_algorithm,
        };

        job_set_phase(j, "escrowing the new key in Key Vault");
        if (params->kek_url) {
                /* A new KEK re-wraps the same key file: only the secret and the token change. */
                r = aded_keys_escrow(m, &p, job_volume(j), keyfile, &new_token, &cerr);
                if (r < 0)
                        return job_fail_cloud(j, r, &cerr, "escrowing the re-wrapped key file");
                job_set_phase(j, "updating the token");
                r = ade_luks_update_token(device, header, keyfile, new_token, &o);
        } else {
                r = ade_keyfile_generate(&new_keyfile);
                if (r < 0)
                        return r;
                r = aded_keys_escrow(m, &p, job_volume(j), new_keyfile, &new_token, &cerr);
                if (r < 0)
                        return job_fail_cloud(j, r, &cerr, "escrowing the new key file");
                job_set_phase(j, "replacing the keyslot");
                r = ade_luks_rotate(device, header, keyfile, new_keyfile, new_token, &o);
        }
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "rotating the key of %s failed: %s", device, strerror(-r));

        (void)aded_state_update(m->state, device, _ADE_JOB_STEP_INVALID, set_rotated, new_token);

        /* Revocation (docs/architecture.md §3): the secret replaced is disabled, not deleted, so
         * that a snapshot taken before the rotation can still be opened once its owner enables it
         * again. The rotation itself is done: a failure here is said, not the job's. */
        if (!streq_ptr(token->secret_url, new_token->secret_url)) {
                job_set_phase(j, "disabling the old secret");
                r = aded_keys_disable_secret(m, token->secret_url, &cerr);
                if (r < 0)
                        ade_log_warning_errno(r,
                                "%s: the key was rotated, but the old secret %s is still enabled: %s. Disable it "
                                "in Key Vault",
                                device, token->secret_url, cerr.message ?: strerror(-r));
        }
        return 0;
}
