/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ade-adopt.h"
#include "ade-arm.h"
#include "ade-imds.h"
#include "ade-io.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-resolver.h"
#include "ade-tab.h"
#include "ade-url.h"
#include "ade-volume.h"
#include "aded-adopt.h"
#include "aded-boot.h"
#include "aded-errors.h"
#include "aded-manager.h"
#include "aded-state.h"
#include "aded-task.h"

#define ADOPT_BACKUP_SUFFIX ".ade-backup"
#define BEK_DEVICE_TIMEOUT "x-systemd.device-timeout=10s"

/* What @service said, or NULL when it said nothing (ade refused before asking, or no request). */
static char *cloud_said(const AdeCloudError *e, const char *service) {
        return e->code || e->status > 0 ? ade_cloud_error_to_string(e, service) : NULL;
}

/* What the thread found for one volume, beside its plan. */
typedef struct Found {
        char *secret_url; /* versioned */
        const char *from; /* "state", "arm", "keyvault" */
} Found;

typedef struct Adopt {
        AdedTask task; /* first: the task list holds Adopts */
        AdeVarlinkCall *call;
        bool dry_run;
        /* The thread's outcome. */
        int result;
        char *why;
        AdeAdoptPlanList plans;
        Found *found; /* one per plan */
        /* IMDS's instance, fetched once when a volume needs it. */
        AdeImdsInstance *instance;
        int instance_error;
        char *instance_why;
} Adopt;

static Adopt *adopt_free(Adopt *x) {
        if (!x)
                return NULL;
        ade_varlink_call_unref(x->call);
        free(x->why);
        for (size_t i = 0; x->found && i < x->plans.n; i++)
                free(x->found[i].secret_url);
        free(x->found);
        ade_adopt_plan_list_done(&x->plans);
        ade_imds_instance_free(x->instance);
        free(x->instance_why);
        free(x);
        return NULL;
}

static void adopt_freep(Adopt **x) {
        adopt_free(*x);
}

static bool adopt_is_recorded(const char *name, void *userdata) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        Manager *m = userdata;

        return aded_state_get_by_adopted_name(m->state, name, &record) >= 0 && record;
}

/* This VM as IMDS describes it (its disks by LUN, its name), asked once. */
static int adopt_instance(Adopt *x, AdeImdsInstance **ret) {
        Manager *m = x->task.manager;
        _cleanup_(ade_imds_freep) AdeImds *imds = NULL;
        _cleanup_cloud_error_ AdeCloudError error = ADE_CLOUD_ERROR_NULL;

        if (!x->instance && x->instance_error == 0) {
                x->instance_error = ade_imds_new(m->config->azure.imds, ade_resolver_http_options(m->resolver), &imds);
                if (x->instance_error >= 0)
                        x->instance_error = ade_imds_get_instance(imds, &x->instance, &error);
                if (x->instance_error >= 0)
                        x->instance_error = 1;
                else {
                        _cleanup_free_ char *said = cloud_said(&error, "IMDS");

                        if (asprintf(&x->instance_why, "IMDS did not describe this VM: %s",
                                    said ?: strerror(-x->instance_error)) < 0)
                                x->instance_why = NULL;
                }
        }
        *ret = x->instance;
        return x->instance ? 0 : x->instance_error;
}

/* The LUN of ADE's key file name "LinuxPassPhraseFileName_<controller>_<lun>", or -1. */
static int key_file_lun(const char *name) {
        const char *p = name ? startswith(name, ADE_ADOPT_KEY_FILE_PREFIX "_") : NULL;
        unsigned controller, lun;
        int end = 0;

        if (!p || sscanf(p, "%u_%u%n", &controller, &lun, &end) != 2 || p[end] || lun > 63)
                return -1;
        return (int)lun;
}

/* The secret ARM records for the data disk at @lun (its encryptionSettingsCollection, which ADE
 * sets): 1 and *ret_url, 0 when ARM names none, or a negative errno with *ret_why. */
static int secret_from_arm(Adopt *x, int lun, char **ret_url, char **ret_why) {
        Manager *m = x->task.manager;
        _cleanup_(ade_arm_freep) AdeArm *arm = NULL;
        _cleanup_(ade_arm_disk_freep) AdeArmDisk *disk = NULL;
        _cleanup_cloud_error_ AdeCloudError error = ADE_CLOUD_ERROR_NULL;
        AdeImdsInstance *instance;
        AdeCredential *credential;
        const char *disk_id = NULL;
        int r;

        if (lun < 0 || adopt_instance(x, &instance) < 0)
                return 0;
        for (size_t i = 0; i < instance->n_data_disks; i++)
                if (instance->data_disks[i].lun == lun)
                        disk_id = instance->data_disks[i].managed_disk_id;
        if (!disk_id)
                return 0;
        r = ade_resolver_credential(m->resolver, &credential);
        if (r >= 0)
                r = ade_arm_new(m->config->azure.arm, credential, m->config->azure.arm_resource,
                        ade_resolver_http_options(m->resolver), &arm);
        if (r >= 0)
                r = ade_arm_get_disk(arm, disk_id, &disk, &error);
        if (r < 0) {
                /* Key Vault's tags are the way on: ARM only says it sooner. */
                _cleanup_free_ char *said = cloud_said(&error, "ARM");

                ade_log_warning("adopt: cannot read the encryption settings of %s from ARM (%s); looking in Key Vault",
                        disk_id, said ?: strerror(-r));
                return 0;
        }
        if (!disk->secret_url)
                return 0;
        *ret_url = TAKE_PTR(disk->secret_url);
        (void)ret_why;
        return 1;
}

/* The secrets tagged as ADE tags the key file @key_file_name of this VM, in the configured vault:
 * their URLs in *ret_urls (maybe none). A negative errno with *ret_why. */
static int secrets_from_tags(Adopt *x, const char *key_file_name, char ***ret_urls, char **ret_why) {
        Manager *m = x->task.manager;
        _cleanup_cloud_error_ AdeCloudError error = ADE_CLOUD_ERROR_NULL;
        AdeImdsInstance *instance;
        AdeKeyVault *kv;
        int r;

        if (!key_file_name)
                return asprintf(ret_why,
                               "its crypttab line names no key file (ADE's keyscript) and ARM names no secret for "
                               "its disk: ade cannot tell which secret is its key") < 0
                               ? -ENOMEM
                               : -ENOENT;
        if (!m->config->keyvault.url)
                return asprintf(ret_why,
                               "ARM names no secret for its disk, and ade.conf has no [keyvault] url to look for "
                               "ADE's secret in; set it to the vault ADE escrowed to") < 0
                               ? -ENOMEM
                               : -ENOENT;
        r = adopt_instance(x, &instance);
        if (r < 0)
                return asprintf(ret_why, "%s", x->instance_why ?: strerror(-r)) < 0 ? -ENOMEM : r;
        r = ade_resolver_keyvault(m->resolver, m->config->keyvault.url, &kv, &error);
        if (r >= 0)
                r = ade_keyvault_find_secrets(kv,
                        (char *const[]){(char *)"DiskEncryptionKeyFileName", (char *)key_file_name,
                                (char *)"MachineName", instance->vm_name, NULL},
                        ret_urls, &error);
        if (r < 0) {
                _cleanup_free_ char *said = cloud_said(&error, "Key Vault");

                return asprintf(ret_why, "cannot list the secrets of %s: %s", m->config->keyvault.url,
                               said ?: strerror(-r)) < 0
                               ? -ENOMEM
                               : r;
        }
        return 0;
}

/* The token the secret @secret_url (versioned or not) makes for the volume @device_id: the secret is
 * read, and its ADE tags name the KEK; then the key file, through the resolver (KEK unwrap: the
 * boot path, not the BEK file). */
static int key_from_secret(Adopt *x, const char *secret_url, const char *device_id, AdeLuksToken **ret_token,
        AdeSecret **ret_key, char **ret_why) {
        Manager *m = x->task.manager;
        _cleanup_cloud_error_ AdeCloudError error = ADE_CLOUD_ERROR_NULL;
        _cleanup_(ade_kv_secret_freep) AdeKvSecret *secret = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
        _cleanup_free_ char *origin = NULL, *said = NULL;
        AdeKeyVault *kv;
        int r;

        r = ade_url_keyvault_object(secret_url, "secrets", false, &origin, NULL, NULL);
        if (r < 0)
                return asprintf(ret_why, "'%s' is not a Key Vault secret URL", secret_url) < 0 ? -ENOMEM : r;
        r = ade_resolver_keyvault(m->resolver, secret_url, &kv, &error);
        if (r >= 0)
                r = ade_keyvault_get_secret(kv, secret_url, &secret, &error);
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        if (r >= 0) {
                const char *kek = ade_kv_secret_tag(secret, "DiskEncryptionKeyEncryptionKeyURL");

                t->keyslot = -1;
                if (ade_strdup_to(&t->version, ADE_LUKS_TOKEN_VERSION) < 0 ||
                        ade_strdup_to(&t->key_vault_url, origin) < 0 || ade_strdup_to(&t->secret_url, secret->id) < 0 ||
                        ade_strdup_to(&t->volume_type, "Data") < 0 || ade_strdup_to(&t->device_id, device_id) < 0)
                        return -ENOMEM;
                if (kek && (ade_strdup_to(&t->kek_url, kek) < 0 ||
                                   ade_strdup_to(&t->kek_algorithm,
                                           ade_kv_secret_tag(secret, "DiskEncryptionKeyEncryptionAlgorithm")) < 0 ||
                                   ade_strdup_to(&t->passphrase, (const char *)secret->value->data) < 0))
                        return -ENOMEM;
                r = ade_resolver_key_from_token(m->resolver, t, ret_key, &error);
        }
        if (r < 0) {
                said = cloud_said(&error, "Key Vault");
                return asprintf(ret_why, "cannot resolve the secret %s to a key file: %s", secret_url,
                               said ?: strerror(-r)) < 0
                               ? -ENOMEM
                               : r;
        }
        *ret_token = TAKE_PTR(t);
        return 0;
}

typedef struct RecordFill {
        const AdeAdoptPlan *plan;
        const AdeLuksToken *token;
} RecordFill;

static void record_fill(AdeStateVolume *v, void *userdata) {
        const RecordFill *f = userdata;

        (void)ade_strdup_to(&v->volume_type, "Data");
        (void)ade_strdup_to(&v->keyvault_url, f->token->key_vault_url);
        (void)ade_strdup_to(&v->secret_url, f->token->secret_url);
        (void)ade_strdup_to(&v->kek_url, f->token->kek_url);
        (void)ade_strdup_to(&v->kek_algorithm, f->token->kek_algorithm);
        (void)ade_strdup_to(&v->uuid, f->plan->luks_uuid);
        v->detached = f->plan->header != NULL;
        (void)ade_strdup_to(&v->header_path, f->plan->header);
        (void)ade_strdup_to(&v->adopted_name, f->plan->name);
}

/* ADE's line, verbatim, appended to "<crypttab>.ade-backup" unless it is there already. */
static int backup_line(const char *crypttab, const char *line) {
        _cleanup_free_ char *path = NULL, *old = NULL, *text = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t size = 0;

        if (asprintf(&path, "%s" ADOPT_BACKUP_SUFFIX, crypttab) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f && errno != ENOENT)
                return -errno;
        if (f) {
                FILE *mem = open_memstream(&old, &size);
                char buf[4096];
                size_t n;

                if (!mem)
                        return -ENOMEM;
                while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                        fwrite(buf, 1, n, mem);
                if (fclose(mem) != 0)
                        return -ENOMEM;
                if (ferror(f))
                        return -EIO;
        }
        for (const char *p = old; p && *p;) {
                size_t len = strcspn(p, "\n");

                if (len == strlen(line) && strncmp(p, line, len) == 0)
                        return 0;
                p += len + (p[len] == '\n');
        }
        if (asprintf(&text, "%s%s%s\n",
                    old ? old
                        : "# ADE's crypttab lines, as they were before \"adectl adopt\" pointed them at ade's key "
                          "socket.\n",
                    old && size > 0 && old[size - 1] != '\n' ? "\n" : "", line) < 0)
                return -ENOMEM;
        return ade_write_file_atomic(path, text, strlen(text), 0600);
}

/* A volume of ADE's azure_crypt_mount had no fstab line (ADE's extension mounted it): one that mounts
 * its mapping on its mount point, with the boot flags. A line already there for its filesystem (the
 * mapping, open now) is repointed as ade_fstab_repoint() does. */
static int legacy_fstab(Manager *m, const AdeAdoptPlan *p, char **ret_why) {
        _cleanup_free_ char *mapper = NULL;
        AdeFsId id = {};
        struct stat st;
        int r;

        if (asprintf(&mapper, "/dev/mapper/%s", p->name) < 0)
                return -ENOMEM;
        if (stat(mapper, &st) >= 0 && S_ISBLK(st.st_mode))
                id.devnum = st.st_rdev;
        r = ade_fstab_repoint(m->config->daemon.fstab, &id, p->mount_point, p->name, p->fs_type, NULL, NULL, ret_why);
        if (r > 0)
                ade_log_info("adopt: %s: %s mounts %s on %s now", p->device, m->config->daemon.fstab, mapper,
                        p->mount_point);
        return r;
}

static int adopt_one(Adopt *x, AdeAdoptPlan *p, Found *found, char **ret_why) {
        Manager *m = x->task.manager;
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_secret_ AdeSecret *key = NULL;
        _cleanup_free_ char *device_id = NULL, *options = NULL, *why = NULL;
        _cleanup_(strv_freep) char **candidates = NULL;
        int lun = -1, r;

        r = ade_volume_stable_id(p->device, &device_id, &lun);
        if (r < 0)
                return asprintf(ret_why, "cannot name %s stably: %s", p->device, strerror(-r)) < 0 ? -ENOMEM : r;
        if (key_file_lun(p->key_file_name) >= 0)
                lun = key_file_lun(p->key_file_name);

        /* Where its secret is: the record of an adoption begun before, ARM, Key Vault's tags. */
        r = aded_state_get_by_adopted_name(m->state, p->name, &record);
        if (r < 0)
                return r;
        if (record && record->secret_url) {
                r = strv_extend(&candidates, record->secret_url);
                found->from = "state";
        } else {
                _cleanup_free_ char *url = NULL;

                r = secret_from_arm(x, lun, &url, &why);
                if (r > 0) {
                        r = strv_extend(&candidates, url);
                        found->from = "arm";
                } else if (r == 0) {
                        r = secrets_from_tags(x, p->key_file_name, &candidates, &why);
                        found->from = "keyvault";
                        if (r >= 0 && strv_length(candidates) == 0) {
                                AdeImdsInstance *instance = NULL;

                                (void)adopt_instance(x, &instance);
                                return asprintf(ret_why,
                                               "ARM names no secret for its disk, and %s holds no enabled secret "
                                               "tagged DiskEncryptionKeyFileName=%s and MachineName=%s: escrow ADE's "
                                               "key there (or name it on the disk), then try again",
                                               m->config->keyvault.url, p->key_file_name,
                                               instance ? instance->vm_name : "?") < 0
                                               ? -ENOMEM
                                               : -ENOENT;
                        }
                }
        }
        if (r < 0) {
                *ret_why = TAKE_PTR(why);
                return r;
        }

        /* The first candidate whose key opens the volume: ADE may have escrowed more than once. */
        for (size_t i = 0; candidates[i]; i++) {
                _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL;
                _cleanup_secret_ AdeSecret *k = NULL;

                why = mfree(why);
                r = key_from_secret(x, candidates[i], device_id, &t, &k, &why);
                if (r < 0)
                        continue;
                r = ade_luks_test_key_any(p->device, p->header, k);
                if (r > 0) {
                        token = TAKE_PTR(t);
                        key = TAKE_PTR(k);
                        break;
                }
                why = mfree(why);
                if (r == 0 && asprintf(&why,
                                      "the key escrowed in %s opens no keyslot of %s: it is not this volume's key; "
                                      "nothing was changed",
                                      candidates[i], p->header ?: p->device) < 0)
                        return -ENOMEM;
                if (r == 0)
                        r = -ENOKEY;
                else if (asprintf(&why, "cannot try the escrowed key on %s: %s", p->device, strerror(-r)) < 0)
                        return -ENOMEM;
        }
        if (!token) {
                *ret_why = TAKE_PTR(why);
                return r < 0 ? r : -ENOKEY;
        }
        if (ade_strdup_to(&found->secret_url, token->secret_url) < 0)
                return -ENOMEM;
        if (x->dry_run)
                return 0;

        /* Each step is idempotent; the order makes a resume find what is left: token, record, line. */
        if (p->add_token) {
                r = ade_luks_update_token(p->device, p->header, key, token,
                        &(const AdeLuksOptions){.header_dir = m->config->volumes.header_dir, .escrow_confirmed = true});
                if (r < 0)
                        return asprintf(ret_why, "cannot add ade's token to %s: %s", p->device, strerror(-r)) < 0
                                       ? -ENOMEM
                                       : r;
                ade_log_info("adopt: %s: ade's token added (secret %s)", p->device, token->secret_url);
        }
        if (p->add_record) {
                r = aded_state_add(m->state, device_id, p->device, ADE_JOB_ENCRYPT, ADE_STEP_DONE, record_fill,
                        &(RecordFill){.plan = p, .token = token});
                if (r < 0)
                        return asprintf(ret_why, "cannot record %s in the state file: %s", p->device, strerror(-r)) < 0
                                       ? -ENOMEM
                                       : r;
        }
        if (p->switch_line) {
                /* ADE's mount of the mapping waits for it to be opened from the key socket, after the
                 * network; first, so that a failure leaves ADE's crypttab line working. */
                if (p->mount_point) {
                        r = legacy_fstab(m, p, &why);
                        if (r < 0)
                                return asprintf(ret_why, "cannot make %s mount /dev/mapper/%s on %s: %s",
                                               m->config->daemon.fstab, p->name, p->mount_point,
                                               why ?: strerror(-r)) < 0
                                               ? -ENOMEM
                                               : r;
                        why = mfree(why);
                }
                r = ade_fstab_adopt(m->config->daemon.fstab, p->name, NULL, &why);
                if (r < 0)
                        return asprintf(ret_why, "cannot add _netdev to the lines of %s that mount /dev/mapper/%s: %s",
                                       m->config->daemon.fstab, p->name, why ?: strerror(-r)) < 0
                                       ? -ENOMEM
                                       : r;
                if (r > 0)
                        ade_log_info("adopt: %s: %s mounts /dev/mapper/%s after the network now", p->device,
                                m->config->daemon.fstab, p->name);
                why = mfree(why);
                if (p->line) {
                        r = backup_line(m->config->daemon.crypttab, p->line);
                        if (r < 0)
                                return asprintf(ret_why, "cannot keep ADE's line in %s" ADOPT_BACKUP_SUFFIX ": %s",
                                               m->config->daemon.crypttab, strerror(-r)) < 0
                                               ? -ENOMEM
                                               : r;
                }
                if ((p->header ? asprintf(&options, ADED_BOOT_CRYPTTAB_OPTIONS ",header=%s", p->header)
                               : asprintf(&options, ADED_BOOT_CRYPTTAB_OPTIONS)) < 0)
                        return -ENOMEM;
                r = ade_crypttab_set(m->config->daemon.crypttab, p->name, p->source, m->config->daemon.key_socket,
                        options, NULL, &why);
                if (r < 0) {
                        if (asprintf(ret_why, "cannot point %s's line in %s at the key socket: %s", p->name,
                                    m->config->daemon.crypttab, why ?: strerror(-r)) < 0)
                                return -ENOMEM;
                        return r;
                }
                if (r > 0)
                        aded_boot_line_added(m);
                /* ADE's BEK VOLUME stays mounted while it is there (the fallback), but once ADE's
                 * encryption settings are gone from the VM, so is the disk, and its nofail mount
                 * would hold the boot's jobs until systemd's device timeout (minutes): 10 s now. */
                why = mfree(why);
                r = ade_fstab_add_option(
                        m->config->daemon.fstab, ADE_ADOPT_BEK_MOUNT, BEK_DEVICE_TIMEOUT, "azure_bek_disk", NULL, &why);
                if (r < 0)
                        ade_log_warning("adopt: cannot add %s to the line of %s that mounts %s (%s); once ADE's BEK "
                                        "VOLUME is gone, remove that line",
                                BEK_DEVICE_TIMEOUT, m->config->daemon.fstab, ADE_ADOPT_BEK_MOUNT, why ?: strerror(-r));
                else if (r > 0)
                        ade_log_info("adopt: %s waits at most 10 s for ADE's BEK VOLUME at boot now",
                                m->config->daemon.fstab);
        }
        ade_log_info("adopt: %s (%s, LUKS%d) adopted from ADE", p->name, p->device, p->luks_version);
        return 0;
}

static void *adopt_thread(void *userdata) {
        Adopt *x = userdata;
        Manager *m = x->task.manager;
        int r;

        r = ade_adopt_gather(m->config->daemon.crypttab, m->config->daemon.key_socket, m->config->daemon.ade_dir,
                adopt_is_recorded, m, &x->plans, &x->why);
        if (r >= 0 && x->plans.n > 0 && !(x->found = calloc(x->plans.n, sizeof(Found))))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < x->plans.n; i++) {
                AdeAdoptPlan *p = &x->plans.plans[i];
                _cleanup_free_ char *why = NULL;
                int k;

                if (p->action != ADE_ADOPT_ACTION_ADOPT)
                        continue;
                k = adopt_one(x, p, &x->found[i], &why);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0) {
                        p->action = ADE_ADOPT_ACTION_REFUSED;
                        free(p->reason);
                        p->reason = why ? TAKE_PTR(why) : strdup(strerror(-k));
                        ade_log_warning("adopt: %s: not adopted: %s", p->name, strna(p->reason));
                } else if (x->dry_run) {
                        char *reason = NULL;

                        if (asprintf(&reason, "%s (secret %s, found in %s); dry run: nothing written", p->reason,
                                    x->found[i].secret_url, x->found[i].from) >= 0) {
                                free(p->reason);
                                p->reason = reason;
                        }
                } else {
                        char *reason = NULL;

                        p->action = ADE_ADOPT_ACTION_ADOPTED;
                        if (asprintf(&reason,
                                    "adopted: the key of secret %s (found in %s) opens it, and ade's key socket "
                                    "unlocks "
                                    "it from now on; ADE's BEK file is left as a fallback",
                                    x->found[i].secret_url, x->found[i].from) >= 0) {
                                free(p->reason);
                                p->reason = reason;
                        }
                }
        }
        x->result = r;
        aded_task_done(&x->task);
        return NULL;
}

static int adopt_answer(Adopt *x) {
        _cleanup_json_ json_object *reply = NULL;
        json_object *volumes;

        if (!ade_varlink_call_is_pending(x->call))
                return 0; /* the caller left */
        if (x->result < 0) {
                _cleanup_json_ json_object *p = json_object_new_object();

                if (!p)
                        return -ENOMEM;
                json_object_object_add(p, "reason", json_object_new_string(x->why ?: strerror(-x->result)));
                return ade_varlink_error(x->call, ADED_ERROR("AdoptFailed"), p);
        }
        reply = json_object_new_object();
        volumes = json_object_new_array();
        if (!reply || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        json_object_object_add(reply, "volumes", volumes);
        for (size_t i = 0; i < x->plans.n; i++) {
                const AdeAdoptPlan *p = &x->plans.plans[i];
                json_object *v = json_object_new_object();

                if (!v)
                        return -ENOMEM;
                json_object_array_add(volumes, v);
                json_object_object_add(v, "name", json_object_new_string(p->name));
                if (p->device)
                        json_object_object_add(v, "device", json_object_new_string(p->device));
                json_object_object_add(v, "luksVersion", json_object_new_int(p->luks_version));
                json_object_object_add(v, "action", json_object_new_string(ade_adopt_action_to_string(p->action)));
                if (x->found && x->found[i].secret_url)
                        json_object_object_add(v, "secretUrl", json_object_new_string(x->found[i].secret_url));
                json_object_object_add(v, "reason", json_object_new_string(p->reason));
        }
        json_object_object_add(reply, "dryRun", json_object_new_boolean(x->dry_run));
        return ade_varlink_reply(x->call, reply);
}

static int adopt_task_finish(AdedTask *t) {
        (void)adopt_answer((Adopt *)t);
        return 0;
}

static void adopt_task_free(AdedTask *t) {
        adopt_free((Adopt *)t);
}

int aded_adopt_start(Manager *m, AdeVarlinkCall *call, bool dry_run) {
        _cleanup_(adopt_freep) Adopt *x = NULL;
        int r;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->dry_run = dry_run;
        x->call = ade_varlink_call_ref(call);
        r = aded_task_start(m, &m->adopts, &x->task, adopt_thread);
        if (r < 0)
                return r;
        TAKE_PTR(x);
        return 0;
}

bool aded_adopt_dispatch(Manager *m) {
        return aded_tasks_reap(&m->adopts, adopt_task_finish, adopt_task_free);
}

void aded_adopt_free_all(Manager *m) {
        aded_tasks_free_all(&m->adopts, adopt_task_free);
}
