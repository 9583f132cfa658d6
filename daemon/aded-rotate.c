/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-io.h"
#include "ade-keyfile.h"
#include "ade-log.h"
#include "aded-backup.h"
#include "aded-job.h"
#include "aded-keys.h"
#include "aded-manager.h"
#include "aded-rotate.h"
#include "aded-vaults.h"
#include "aded-verify.h"

/* RotateKey (docs/architecture.md §4): the new key file is escrowed and recorded as pending in the
 * state file before the disk changes; the engine adds its keyslot, swaps the token, removes the old
 * keyslot; then the record names the new secret. A rotation killed anywhere in between is finished
 * at the next start (or the next RotateKey) with the same two key files, fetched back from Key
 * Vault: no third secret, no keyslot left behind that opens the volume with a key nobody records. */

static void set_pending(AdeStateVolume *v, void *userdata) {
        (void)ade_strdup_to(&v->pending_secret_url, userdata);
}

/* Revocation (docs/architecture.md §4): the secret replaced is disabled, not deleted, so that a
 * snapshot taken before the rotation can still be opened once its owner enables it again. The
 * rotation itself is done: a failure here is said, not the job's. */
static void rotate_disable_old(Job *j, const char *old_secret_url, const char *new_secret_url) {
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        int r;

        if (!old_secret_url || streq_ptr(old_secret_url, new_secret_url))
                return;
        job_set_phase(j, "disabling the old secret");
        r = aded_keys_disable_secret(job_manager(j), old_secret_url, &cerr);
        if (r < 0)
                ade_log_warning_errno(r,
                        "%s: the key was rotated, but the old secret %s is still enabled: %s. Disable it in Key Vault",
                        job_device(j), old_secret_url, cerr.message ?: strerror(-r));
}

static void set_rotated(AdeStateVolume *v, void *userdata) {
        const AdeLuksToken *t = userdata;

        (void)ade_strdup_to(&v->secret_url, t->secret_url);
        (void)ade_strdup_to(&v->kek_url, t->kek_url);
        v->pending_secret_url = mfree(v->pending_secret_url);
        v->rotated_usec = ade_now_realtime_usec();
}

/* The header changed for good (new keyslot and token): its next backup generation
 * (docs/architecture.md §11). A failure is the backup's, retried later, not the rotation's. */
static void rotate_backup(Job *j, const char *header, const AdeLuksToken *new_token) {
        if (!job_manager(j)->config->backup.url)
                return;
        job_set_phase(j, "uploading the header backup");
        aded_backup_upload(job_manager(j), job_device(j), header, job_key(j), new_token);
}

/* A token like the one on the disk (@current) naming @secret_url, and its key file from Key Vault:
 * for either side of an interrupted rotation. */
static int fetch_side(Job *j, const AdeLuksToken *current, const char *secret_url, const char *kek_url,
        AdeLuksToken **ret_token, AdeSecret **ret_keyfile) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        int r;

        r = ade_luks_token_copy(current, &t);
        if (r < 0)
                return r;
        if (ade_strdup_to(&t->secret_url, secret_url) < 0 || ade_strdup_to(&t->kek_url, kek_url) < 0)
                return -ENOMEM;
        /* The wrapped key file (a KEK) is the secret's value: the resolver reads it from there. */
        t->passphrase = mfree(t->passphrase);
        r = aded_keys_resolve(job_manager(j), t, ret_keyfile, &cerr);
        if (r < 0)
                return job_fail_cloud(j, r, &cerr, "fetching a key file of the interrupted rotation");
        *ret_token = TAKE_PTR(t);
        return 0;
}

/* Finishes the rotation @record says was under way: from its secretUrl to its pendingSecretUrl. */
static int rotate_resume(
        Job *j, const AdeStateVolume *record, const char *header, const AdeLuksToken *current, AdeLuksOptions *o) {
        _cleanup_(ade_luks_token_freep) AdeLuksToken *old_token = NULL, *new_token = NULL;
        _cleanup_secret_ AdeSecret *old_keyfile = NULL, *new_keyfile = NULL;
        int r;

        job_set_phase(j, "finishing the interrupted key rotation");
        r = fetch_side(j, current, record->secret_url, record->kek_url, &old_token, &old_keyfile);
        if (r >= 0)
                r = fetch_side(j, current, record->pending_secret_url, record->kek_url, &new_token, &new_keyfile);
        if (r < 0)
                return r;
        r = ade_luks_rotate(job_device(j), header, old_keyfile, new_keyfile, new_token, o);
        if (r < 0)
                return job_fail(
                        j, r, NULL, NULL, "finishing the key rotation of %s failed: %s", job_device(j), strerror(-r));
        r = job_record_step(j, _ADE_JOB_STEP_INVALID, set_rotated, new_token);
        if (r < 0)
                return r;
        rotate_disable_old(j, record->secret_url, new_token->secret_url);
        rotate_backup(j, header, new_token);
        return 0;
}

int aded_rotate_run(Job *j) {
        Manager *m = job_manager(j);
        const AdedEnableParams *params = job_params(j);
        const char *device = job_device(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL, *new_token = NULL;
        _cleanup_secret_ AdeSecret *keyfile = NULL, *new_keyfile = NULL;
        _cleanup_cloud_error_ AdeCloudError cerr = ADE_CLOUD_ERROR_NULL;
        _cleanup_free_ char *header = NULL;
        AdeLuksOptions o;
        int r;

        job_engine_options(j, &o);
        (void)job_header(j, &header);
        /* A resume has no caller: its vaults were trusted from the state file at start. */
        if (params) {
                r = aded_vaults_trust_params(m, params);
                if (r < 0)
                        return r;
        }
        (void)aded_state_get(m->state, job_key(j), &record);
        r = aded_verify_job(j, record, header);
        if (r < 0)
                return r;

        if (record && record->pending_secret_url && record->secret_url) {
                r = ade_luks_read_token(device, header, &token);
                if (r < 0)
                        return job_fail(j, r, NULL, NULL, "%s carries no Azure_Disk_Encryption token: %s", device,
                                strerror(-r));
                return rotate_resume(j, record, header, token, &o);
        }

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
                /* A new KEK re-wraps the same key file: only the secret and the token change, in one
                 * metadata write; a rerun simply wraps again. */
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
                /* Before the disk changes: the rotation can be finished with these two key files. */
                if (record && record->secret_url && streq(record->secret_url, token->secret_url)) {
                        r = job_record_step(j, _ADE_JOB_STEP_INVALID, set_pending, new_token->secret_url);
                        if (r < 0)
                                return job_fail(j, r, NULL, NULL,
                                        "cannot record the new secret of %s in the state file: %s; nothing was "
                                        "changed on the disk",
                                        device, strerror(-r));
                }
                job_set_phase(j, "replacing the keyslot");
                r = ade_luks_rotate(device, header, keyfile, new_keyfile, new_token, &o);
        }
        if (r < 0)
                return job_fail(j, r, NULL, NULL, "rotating the key of %s failed: %s", device, strerror(-r));

        (void)aded_state_update(m->state, job_key(j), _ADE_JOB_STEP_INVALID, set_rotated, new_token);
        rotate_disable_old(j, token->secret_url, new_token->secret_url);
        rotate_backup(j, header, new_token);
        return 0;
}
