/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/sysmacros.h>

#include "ade-http.h"
#include "ade-json.h"
#include "ade-log.h"
#include "ade-osvol.h"
#include "ade-precheck.h"
#include "aded-enable.h"
#include "aded-errors.h"
#include "aded-keys.h"
#include "aded-manager.h"
#include "aded-newdisks.h"
#include "aded-show.h"
#include "aded-state.h"
#include "aded-task.h"
#include "aded-vaults.h"
#include "aded-waiter.h"

struct EnablePrep {
        AdedTask task; /* first: the preparation's thread, reaped by enable_preps_dispatch() */
        AdeVarlinkCall *call;
        unsigned flags;
        bool dry_run;
        const char *volume_type; /* static: "OS", "Data" or "All" */
        AdedEnableParams params;
        AdeVolume **volumes; /* the data volumes in scope (owned); none for "OS" */
        /* aded's own pass over new disks (aded-newdisks.h), with no caller: an ineligible volume is
         * left alone, not a refusal of the others. */
        bool auto_pass;
        char **excluded; /* the enrollment's exclusions (stable ids) */

        atomic_bool cancel; /* aded is stopping: the cloud checks' requests end (enable_preps_cancel()) */

        /* Written by the thread before it is done. */
        json_object *plan;
        json_object *checks, *steps; /* the plan's arrays */
        AdeVolume **eligible;        /* borrowed from @volumes */
        size_t n_eligible;
        bool os_refused; /* "All": the OS volume is left plain, its failed checks in the plan */
        char *error_name;
        json_object *error_parameters;
        int result;
        char **left_ids, **left_why; /* auto pass: the volumes left alone (stable ids) and why */
};

/* An Enable that arrived while a job, another Enable or a Disable, RotateKey or Unlock ran: its
 * preparation starts, as if it had just arrived, once aded is idle (enable_queue_dispatch()). The
 * volumes are not probed before then: a device under reencryption is its job's alone. */
struct QueuedEnable {
        QueuedEnable *next;
        AdeVarlinkCall *call; /* NULL when its caller, without "more", was answered "queued" at once */
        unsigned flags;
        const char *volume_type; /* static: "OS", "Data" or "All" */
        AdedEnableParams params;
};

static QueuedEnable *queued_free(QueuedEnable *q) {
        QueuedEnable *next;

        if (!q)
                return NULL;
        next = q->next;
        if (q->call)
                ade_varlink_call_unref(q->call);
        aded_enable_params_done(&q->params);
        free(q);
        return next;
}

static void enable_prep_free(EnablePrep *e) {
        if (!e)
                return;
        if (e->call)
                ade_varlink_call_unref(e->call);
        aded_enable_params_done(&e->params);
        ade_volume_free_many(e->volumes);
        json_object_put(e->plan);
        free(e->eligible);
        free(e->error_name);
        json_object_put(e->error_parameters);
        strv_free(e->excluded);
        strv_free(e->left_ids);
        strv_free(e->left_why);
        free(e);
}

/* ---- the plan, in the preparation's thread ---- */

static int plan_add_check(
        EnablePrep *e, const char *name, const char *device, bool passed, bool fatal, const char *message) {
        json_object *c = json_object_new_object();

        if (!c)
                return -ENOMEM;
        json_object_object_add(c, "name", json_object_new_string(name));
        json_object_object_add(c, "device", device ? json_object_new_string(device) : NULL);
        json_object_object_add(c, "passed", json_object_new_boolean(passed));
        json_object_object_add(c, "fatal", json_object_new_boolean(fatal));
        json_object_object_add(c, "message", message ? json_object_new_string(message) : NULL);
        return json_object_array_add(e->checks, c);
}

static void plan_add_step(EnablePrep *e, const char *what, const char *device) {
        _cleanup_free_ char *s = NULL;

        if (asprintf(&s, "%s: %s", device, what) >= 0)
                json_object_array_add(e->steps, json_object_new_string(s));
}

/* What Enable would write to Key Vault for @v, spelled out for the dry run. */
static void plan_add_escrow_step(EnablePrep *e, const AdeVolume *v) {
        const AdedEnableParams *p = &e->params;
        _cleanup_free_ char *file_name = NULL, *what = NULL;
        int r;

        (void)aded_keys_file_name(e->task.manager, v, &file_name);
        if (p->kek_url)
                r = asprintf(&what,
                        "wrap the key file with %s (%s) and write a new secret (a GUID) to %s: contentType "
                        "'Wrapped BEK', tags DiskEncryptionKeyFileName=%s, DiskEncryptionKeyEncryptionAlgorithm=%s, "
                        "DiskEncryptionKeyEncryptionKeyURL=%s, MachineName; read it back before any write to the disk",
                        p->kek_url, p->kek_algorithm ?: "RSA-OAEP", strna(p->keyvault_url), strna(file_name),
                        p->kek_algorithm ?: "RSA-OAEP", p->kek_url);
        else
                r = asprintf(&what,
                        "write a new secret (a GUID) to %s holding the key file in base64: contentType 'BEK', tags "
                        "DiskEncryptionKeyFileName=%s, DiskEncryptionKeyEncryptionAlgorithm=RSA-OAEP, MachineName; "
                        "read it back before any write to the disk",
                        strna(p->keyvault_url), strna(file_name));
        plan_add_step(e, r >= 0 ? what : "escrow the key file in Key Vault", v->device);
}

/* With [backup] url: the header backup once the encryption is done (docs/architecture.md §11). */
static void plan_add_backup_step(EnablePrep *e, const AdeVolume *v) {
        const char *url = e->task.manager->config->backup.url;
        _cleanup_free_ char *what = NULL;

        if (!url)
                return;
        if (!e->params.kek_url) {
                plan_add_step(e, "no KEK: no backup of the header to Blob Storage", v->device);
                return;
        }
        if (asprintf(&what,
                    "once encrypted, upload the header to %s in client-side encryption v2, its content key wrapped "
                    "with %s (a failed upload is retried; the volume is not affected)",
                    url, e->params.kek_url) < 0)
                what = NULL;
        plan_add_step(e, what ?: "once encrypted, upload the header backup", v->device);
}

/* The error Enable answers with: the first refusal is the one reported. */
static void prep_refuse_with(EnablePrep *e, const char *error_name, json_object *parameters) {
        if (e->error_name) {
                json_object_put(parameters);
                return;
        }
        e->error_name = strdup(error_name);
        e->error_parameters = parameters;
}

static void prep_refuse(EnablePrep *e, const char *check, const char *reason) {
        prep_refuse_with(e, ADED_ERROR("PreconditionFailed"), aded_error_precondition_parameters(check, reason));
}

/* @v cannot be encrypted, for @reason: Enable is refused; aded's own pass leaves @v alone, says so
 * once in the log and keeps the reason for Show. */
static void prep_ineligible(EnablePrep *e, const AdeVolume *v, const char *reason) {
        _cleanup_free_ char *why = NULL;

        if (!e->auto_pass) {
                prep_refuse(e, "volume-eligible", reason);
                return;
        }
        /* The sentence names the device as a person knows it; the id is for Show's lookup. */
        if (asprintf(&why, "%s is left alone: %s", v->device, reason) < 0 ||
                strv_extend(&e->left_ids, v->stable_id ?: v->device) < 0)
                return;
        if (strv_extend(&e->left_why, why) < 0) {
                size_t n = strv_length(e->left_ids);
                e->left_ids[n - 1] = mfree(e->left_ids[n - 1]);
        }
}

/* aded's own pass takes only what nobody has to decide about: a volume the operator disabled
 * stays plain, and an empty one (mkfs may be about to run) only with format-all. 1 when @v is
 * judged no further. */
static int prep_auto_filter(EnablePrep *e, AdeVolume *v) {
        if (!e->auto_pass)
                return 0;
        if (strv_contains(e->excluded, v->stable_id ?: v->device)) {
                prep_ineligible(
                        e, v, "disabled by the operator: aded leaves it plain; 'adectl enable' encrypts it again");
                return 1;
        }
        if (!v->fstype && !e->params.format_all) {
                prep_ineligible(e, v,
                        "no filesystem: aded encrypts an empty disk by itself only when enrolled with --format-all; "
                        "once it has a filesystem it is encrypted in place");
                return 1;
        }
        return 0;
}

/* The cloud checks of docs/architecture.md §5, through ade-precheck. */
static void prep_cloud_checks(EnablePrep *e) {
        Manager *m = e->task.manager;
        AdeCheckList list = {};
        AdePrecheckRequest req = {
                .config = m->config,
                .resolver = m->resolver,
                .vault_url = e->params.keyvault_url,
                .vault_resource_id = e->params.keyvault_resource_id,
                .kek_url = e->params.kek_url,
                .kek_algorithm = e->params.kek_algorithm,
                .scope_data = true,
                .skip_snapshot_check = e->params.skip_snapshot_check,
        };
        int r;

        r = ade_precheck_run(&req, &list, NULL);
        if (r < 0) {
                prep_refuse(e, "preconditions", "the preconditions could not be evaluated (out of memory?)");
                return;
        }
        for (size_t i = 0; i < list.n; i++) {
                const AdeCheck *c = &list.checks[i];
                bool failed = c->verdict == ADE_VERDICT_FAIL;
                json_object *p;

                plan_add_check(e, c->name, c->target, c->verdict == ADE_VERDICT_OK, failed, c->reason);
                if (!failed || e->error_name)
                        continue;
                if (c->error == ADE_CHECK_ERROR_REGION && c->error_arg1 && c->error_arg2) {
                        p = json_object_new_object();
                        json_object_object_add(p, "vmLocation", json_object_new_string(c->error_arg1));
                        json_object_object_add(p, "vaultLocation", json_object_new_string(c->error_arg2));
                        prep_refuse_with(e, ADED_ERROR("RegionMismatch"), p);
                } else if (c->error == ADE_CHECK_ERROR_SNAPSHOT && c->error_arg1) {
                        p = json_object_new_object();
                        json_object_object_add(p, "disk", json_object_new_string(c->error_arg1));
                        prep_refuse_with(e, ADED_ERROR("SnapshotMissing"), p);
                } else
                        prep_refuse(e, c->name, c->reason);
        }
        ade_check_list_done(&list);
}

static void prep_eligible(EnablePrep *e, AdeVolume *v) {
        e->eligible[e->n_eligible++] = v;
}

/* A volume with a LUKS header: 1 when it is ours and the plan says what happens to it, 0 to judge it
 * as a plain volume. */
static int prep_volume_luks(EnablePrep *e, AdeVolume *v) {
        AdeLuksStatus st;

        if (ade_luks_status(v->device, NULL, &st) < 0 || st.state == ADE_LUKS_STATE_NONE || !st.has_token)
                return 0;
        if (st.state == ADE_LUKS_STATE_FINISHED) {
                plan_add_check(e, "volume-eligible", v->device, true, false, "already encrypted by ade; nothing to do");
                return 1;
        }
        if (st.state == ADE_LUKS_STATE_CLEAN || st.state == ADE_LUKS_STATE_CRASH) {
                plan_add_check(
                        e, "volume-eligible", v->device, true, true, "an interrupted encryption by ade; it is resumed");
                plan_add_step(e, "resume the interrupted encryption", v->device);
                prep_eligible(e, v);
                return 1;
        }
        return 0;
}

/* A mounted volume is encrypted online when device-mapper is there (e2fsck -fn on a live
 * filesystem proves nothing: the job checks after unmounting), refused otherwise. */
static void prep_volume_mounted(EnablePrep *e, AdeVolume *v) {
        _cleanup_free_ char *reason = NULL;
        const char *why;

        if (e->task.manager->dm && !e->task.manager->mount_ns_foreign) {
                plan_add_check(e, "volume-eligible", v->device, true, true,
                        "mounted: encrypted online (unmounted, header written, mounted again from "
                        "/dev/mapper, then encrypted underneath)");
                plan_add_escrow_step(e, v);
                plan_add_step(e, "unmount, write the LUKS2 header with the token, activate", v->device);
                plan_add_step(e, "mount again from /dev/mapper and encrypt in the background", v->device);
                plan_add_backup_step(e, v);
                prep_eligible(e, v);
                return;
        }
        /* Unmounting in a namespace of our own would leave the filesystem mounted for everyone else,
         * and e2fsck would repair it mounted (issue 11 item 0). */
        why = e->task.manager->mount_ns_foreign
                      ? "aded runs in a mount namespace of its own (not pid 1's), where unmounting it would not "
                        "unmount it for the system; start aded from aded.service (its unit creates no mount "
                        "namespace), or unmount it and run enable again"
                      : "device-mapper is not available on this host, so it cannot be encrypted online; unmount it "
                        "and run enable again (ade never unmounts behind your back)";
        if (asprintf(&reason, "%s is mounted at %s and %s", v->device, v->mountpoint, why) < 0)
                reason = NULL;
        plan_add_check(e, "volume-eligible", v->device, false, true, reason ?: "not eligible");
        prep_ineligible(e, v, reason ?: "not eligible");
}

/* An unmounted plain volume: the engine's plan (checks, shrink, header placement). */
static void prep_volume_offline(EnablePrep *e, AdeVolume *v) {
        const AdedEnableParams *p = &e->params;
        AdeLuksOptions o = {
                .header_dir = e->task.manager->config->volumes.header_dir,
                .escrow_confirmed = true,
                .format_all = p->format_all,
                .format_all_confirmed = p->format_all,
        };
        _cleanup_free_ char *err = NULL, *reason = NULL;
        AdeLuksPlan lp = {};
        int r;

        r = ade_luks_plan(v, &o, &lp, &err);
        if (r < 0) {
                if (asprintf(&reason, "%s cannot be encrypted: %s", v->device,
                            v->skip != ADE_VOLUME_ELIGIBLE && v->reason ? v->reason
                            : err                                       ? err
                                                                        : strerror(-r)) < 0)
                        reason = NULL;
                plan_add_check(e, "volume-eligible", v->device, false, true, reason ?: "not eligible");
                prep_ineligible(e, v, reason ?: "not eligible");
                ade_luks_plan_done(&lp);
                return;
        }
        plan_add_check(e, "volume-eligible", v->device, true, true, lp.reason);
        plan_add_step(e, "generate a key file", v->device);
        plan_add_escrow_step(e, v);
        if (lp.shrink)
                plan_add_step(e, "shrink the filesystem by 32 MiB", v->device);
        plan_add_step(e,
                lp.header == ADE_LUKS_HEADER_DETACHED ? "write a detached LUKS2 header with the token"
                                                      : "write the LUKS2 header with the token",
                v->device);
        plan_add_step(e, "encrypt in place", v->device);
        plan_add_backup_step(e, v);
        ade_luks_plan_done(&lp);
        prep_eligible(e, v);
}

/* The OS volume (docs/architecture.md §9): its checks (ade-osvol) go into the plan. Refused, "OS"
 * refuses the Enable and "All" leaves it plain while the data volumes go on (adectl exits 3).
 * Eligible, it joins the volumes of the Enable: its job (aded-osroot.c) escrows the key,
 * initialises the detached header while the root stays mounted, writes the boot contract and
 * leaves it VMRestartPending until the reboot. */
/* The eligible root, as discovery describes it, joins the volumes of the Enable. */
static int prep_os_volume(EnablePrep *e, const AdeOsvolFacts *f) {
        _cleanup_(ade_volume_freep) AdeVolume *v = NULL;
        AdeVolume **grown;
        char node[64];
        size_t n = 0;
        int r;

        snprintf(node, sizeof(node), "/dev/block/%u:%u", major(f->root_devnum), minor(f->root_devnum));
        r = ade_volume_probe(node, ADE_VOLUME_OS, false, &v);
        if (r < 0)
                return r;
        while (e->volumes[n])
                n++;
        grown = realloc(e->volumes, (n + 2) * sizeof(AdeVolume *));
        if (!grown)
                return -ENOMEM;
        e->volumes = grown;
        e->volumes[n] = v;
        e->volumes[n + 1] = NULL;
        prep_eligible(e, TAKE_PTR(v));
        return 0;
}

static void prep_os(EnablePrep *e) {
        Manager *m = e->task.manager;
        _cleanup_(ade_osvol_facts_done) AdeOsvolFacts f = {};
        _cleanup_free_ char *header_dir = NULL, *what = NULL;
        AdeCheckList list = {};
        AdeOsvolPath path = ADE_OSVOL_PATH_NONE;
        const char *refused = NULL, *reason = NULL; /* the first failed check */
        const char *device;
        int r;

        r = ade_osvol_gather("/", m->config->identity.type == ADE_IDENTITY_MANAGED, &f);
        if (r >= 0)
                r = ade_osvol_evaluate(&f, &list, &path);
        if (r < 0) {
                plan_add_check(
                        e, "os-root-found", NULL, false, true, "the OS volume could not be judged (out of memory)");
                prep_refuse(e, "os-root-found", "the OS volume could not be judged (out of memory)");
                ade_check_list_done(&list);
                return;
        }
        for (size_t i = 0; i < list.n; i++) {
                const AdeCheck *c = &list.checks[i];
                bool failed = c->verdict == ADE_VERDICT_FAIL;

                plan_add_check(e, c->name, c->target, !failed, true, c->reason);
                if (failed && !refused) {
                        refused = c->name;
                        reason = c->reason;
                }
        }
        device = f.root_source ?: "/";
        if (path != ADE_OSVOL_PATH_NONE) {
                header_dir = path == ADE_OSVOL_PATH_BOOT ? strdup("/boot/luks") : strdup("/boot/efi/luks");
                if (asprintf(&what,
                            "initialise a detached LUKS2 header with the token in %s (%s); nothing is written "
                            "to the running root",
                            strna(header_dir), ade_osvol_path_to_string(path)) < 0)
                        what = NULL;
                plan_add_step(e, "generate a key file", device);
                plan_add_step(e, "escrow the key file in Key Vault, read it back before any write", device);
                plan_add_step(e, what ?: "initialise a detached LUKS2 header", device);
                plan_add_step(e,
                        "crypttab gets ade-root; fstab and grub name /dev/mapper/ade-root; the initramfs is "
                        "regenerated "
                        "(each file backed up first)",
                        device);
                plan_add_step(e,
                        "state VMRestartPending: reboot when convenient (ade never reboots by itself); the initramfs "
                        "opens the root with the key from Key Vault and aded encrypts it online",
                        device);
                if (prep_os_volume(e, &f) >= 0) {
                        ade_check_list_done(&list);
                        return;
                }
                refused = "os-root-found";
                reason = "the OS volume could not be probed as a block device";
                plan_add_check(e, refused, device, false, true, reason);
        }
        if (!refused) {
                ade_check_list_done(&list);
                return;
        }
        if (streq(e->volume_type, "OS"))
                prep_refuse(e, refused, reason);
        else
                e->os_refused = true;
        ade_check_list_done(&list);
}

static int prep_cancelled(void *userdata) {
        EnablePrep *e = userdata;

        return atomic_load(&e->cancel) ? 1 : 0;
}

static void *prep_thread(void *userdata) {
        EnablePrep *e = userdata;
        size_t n = 0;

        /* A stop must not wait for a cloud that does not answer (issue 11, fault injection). */
        ade_http_set_thread_cancel(prep_cancelled, e);

        e->plan = json_object_new_object();
        e->checks = json_object_new_array();
        e->steps = json_object_new_array();
        json_object_object_add(e->plan, "checks", e->checks);
        json_object_object_add(e->plan, "steps", e->steps);
        while (e->volumes[n])
                n++;
        e->eligible = calloc(n + 2, sizeof(AdeVolume *)); /* the data volumes, and the OS volume */
        if (!e->eligible) {
                e->result = -ENOMEM;
                goto finish;
        }

        if (!e->params.keyvault_url) {
                plan_add_check(e, "vault-configured", NULL, false, true, "no Key Vault URL");
                prep_refuse(e, "vault-configured",
                        "no Key Vault URL: set [keyvault] url in the configuration or pass --keyvault-url");
        }
        if (!streq(e->volume_type, "Data") && !e->auto_pass)
                prep_os(e);
        if (n == 0 && !e->auto_pass && !streq(e->volume_type, "OS")) {
                plan_add_check(e, "volume-eligible", NULL, false, true, "no data volume");
                prep_refuse(e, "volume-eligible",
                        "there is no data volume to encrypt: list devices in [volumes] data, or attach a data disk");
        }

        for (size_t i = 0; i < n; i++) {
                AdeVolume *v = e->volumes[i];

                if (prep_volume_luks(e, v) > 0 || prep_auto_filter(e, v) > 0)
                        continue;
                if (v->mountpoint)
                        prep_volume_mounted(e, v);
                else
                        prep_volume_offline(e, v);
        }

        /* The cloud is asked only when there is something to do: a vault and eligible volumes. */
        if (e->params.keyvault_url && e->n_eligible > 0)
                prep_cloud_checks(e);

finish:
        aded_task_done(&e->task);
        return NULL;
}

/* Starts @e's thread and lists it; frees @e on failure. */
static int prep_launch(Manager *m, EnablePrep *e) {
        int r;

        r = aded_task_start(m, &m->preps, &e->task, prep_thread);
        if (r < 0)
                enable_prep_free(e);
        return r;
}

/* "OS", "Data" or "All" (static), as Enable was asked; anything else means "Data" (the new-disk pass's
 * enrollments of old state files). */
static const char *enable_volume_type(const char *volume_type) {
        if (strcaseeq(volume_type, "OS"))
                return "OS";
        return strcaseeq(volume_type, "All") ? "All" : "Data";
}

/* A preparation over the data volumes with @params (copied; their vaults trusted: root named them),
 * for @volume_type (enable_volume_type()). */
static int prep_new(Manager *m, const char *volume_type, const AdedEnableParams *params, EnablePrep **ret) {
        EnablePrep *e;
        int r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->volume_type = enable_volume_type(volume_type);
        r = aded_enable_params_copy(params, &e->params);
        if (r >= 0)
                r = aded_vaults_trust_params(m, params);
        if (r >= 0 && streq(e->volume_type, "OS"))
                r = (e->volumes = calloc(1, sizeof(AdeVolume *))) ? 0 : -ENOMEM;
        else if (r >= 0)
                r = manager_data_volumes(m, &e->volumes);
        if (r < 0) {
                enable_prep_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

int enable_prep_start(Manager *m, AdeVarlinkCall *call, unsigned flags, bool dry_run, const char *volume_type,
        const AdedEnableParams *params) {
        EnablePrep *e;
        int r;

        r = prep_new(m, volume_type, params, &e);
        if (r < 0)
                return r;
        e->call = call ? ade_varlink_call_ref(call) : NULL;
        e->flags = flags;
        e->dry_run = dry_run;
        return prep_launch(m, e);
}

int enable_queue_add(
        Manager *m, AdeVarlinkCall *call, unsigned flags, const char *volume_type, const AdedEnableParams *params) {
        _cleanup_json_ json_object *reply = NULL;
        QueuedEnable *q, **tail;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->volume_type = enable_volume_type(volume_type);
        q->flags = flags;
        r = aded_enable_params_copy(params, &q->params);
        if (r < 0) {
                queued_free(q);
                return r;
        }
        reply = json_object_new_object();
        if (!reply || json_object_object_add(reply, "volumes", json_object_new_array()) < 0 ||
                json_object_object_add(reply, "queued", json_object_new_boolean(true)) < 0) {
                queued_free(q);
                return -ENOMEM;
        }
        /* With "more" the caller follows it to the end; without, it asked not to wait: it is told now,
         * and what becomes of the Enable goes to the log and to Show. */
        if (flags & ADE_VARLINK_METHOD_MORE) {
                q->call = ade_varlink_call_ref(call);
                r = ade_varlink_notify(call, reply);
        } else
                r = ade_varlink_reply(call, reply);
        if (r < 0) {
                queued_free(q);
                return r == -ENOTCONN ? 0 : r;
        }
        for (tail = &m->enable_queue; *tail; tail = &(*tail)->next)
                ;
        *tail = q;
        ade_log_info("Enable of the %s volumes queued: it starts once the running job or call is done", q->volume_type);
        return 0;
}

bool enable_queue_dispatch(Manager *m) {
        while (m->enable_queue && !m->stopping) {
                QueuedEnable *q = m->enable_queue;
                int r;

                m->enable_queue = q->next;
                q->next = NULL;
                if (q->call && !ade_varlink_call_is_pending(q->call)) {
                        /* Its caller left while it waited: nothing is started on its behalf. */
                        queued_free(q);
                        continue;
                }
                ade_log_info("starting the queued Enable of the %s volumes", q->volume_type);
                r = enable_prep_start(m, q->call, q->flags, false, q->volume_type, &q->params);
                if (r < 0) {
                        ade_log_error_errno(r, "cannot start the queued Enable of the %s volumes: %m", q->volume_type);
                        if (q->call)
                                (void)ade_varlink_error_errno(q->call, r);
                        queued_free(q);
                        continue;
                }
                queued_free(q);
                return true;
        }
        return false;
}

void enable_queue_drop(Manager *m) {
        while (m->enable_queue) {
                QueuedEnable *q = m->enable_queue;

                if (q->call)
                        (void)aded_error_stopping(q->call);
                else
                        ade_log_warning("the queued Enable of the %s volumes did not start before aded stopped: run "
                                        "'adectl enable' again",
                                q->volume_type);
                m->enable_queue = queued_free(q);
        }
}

int enable_prep_start_auto(Manager *m, const AdeStateEnrollment *enrollment) {
        AdedEnableParams params = aded_enable_params_of_enrollment(enrollment);
        EnablePrep *e;
        int r;

        /* Root named these vaults in the Enable that enrolled the machine. */
        r = prep_new(m, enrollment->volume_type, &params, &e);
        if (r < 0)
                return r;
        e->auto_pass = true;
        for (size_t i = 0; r >= 0 && enrollment->excluded && enrollment->excluded[i]; i++)
                r = strv_extend(&e->excluded, enrollment->excluded[i]);
        if (r < 0) {
                enable_prep_free(e);
                return r;
        }
        return prep_launch(m, e);
}

/* ---- in the loop, once the preparation is done ---- */

/* A dry run, or nothing to do: the plan and the volumes as they are. */
static int enable_answer_plan(Manager *m, EnablePrep *e) {
        _cleanup_json_ json_object *reply = json_object_new_object();
        json_object *volumes = json_object_new_array();

        if (!reply || !volumes) {
                json_object_put(volumes);
                return -ENOMEM;
        }
        json_object_object_add(reply, "plan", json_object_get(e->plan));
        json_object_object_add(reply, "volumes", volumes);
        for (size_t i = 0; e->volumes[i]; i++) {
                json_object *v;
                if (aded_show_volume_json(m, e->volumes[i], &v) >= 0)
                        json_object_array_add(volumes, v);
        }
        return ade_varlink_reply(e->call, reply);
}

/* What the accepted Enable asked for is what "enrolled" means (disks that appear later get the same
 * choices). Recorded even when nothing was left to encrypt: the request stands. A failed save does
 * not fail the Enable: the volumes' own records are what resumes need. */
static void enable_enroll(Manager *m, EnablePrep *e) {
        AdeStateEnrollment enrollment = aded_enable_params_enrollment(&e->params, e->volume_type);
        int r;

        r = aded_state_set_enrollment(m->state, &enrollment);
        if (r < 0)
                ade_log_error_errno(r, "cannot record the enrollment in the state file: %m; the volumes are encrypted "
                                       "all the same, and the next Enable records it");
}

/* aded's own pass: the failed checks' sentences, joined, for the log. */
static char *prep_failed_checks(EnablePrep *e) {
        _cleanup_free_ char *all = NULL;

        for (size_t i = 0; i < json_object_array_length(e->checks); i++) {
                json_object *c = json_object_array_get_idx(e->checks, i);
                json_object *passed, *fatal, *message;
                char *joined;

                if (!json_object_object_get_ex(c, "passed", &passed) || json_object_get_boolean(passed) ||
                        !json_object_object_get_ex(c, "fatal", &fatal) || !json_object_get_boolean(fatal) ||
                        !json_object_object_get_ex(c, "message", &message) || !json_object_get_string(message))
                        continue;
                if (asprintf(&joined, "%s%s%s", all ?: "", all ? "; " : "", json_object_get_string(message)) < 0)
                        return NULL;
                free(all);
                all = joined;
        }
        return TAKE_PTR(all);
}

/* No caller to answer: aded's own pass over new disks (what it left alone goes to the log and to
 * Show; the eligible volumes are encrypted with the enrollment's choices unless a check of the whole
 * machine failed), or a queued Enable whose caller was answered "queued" already (recorded and
 * started as for a caller). Refusals and failures go to the log. */
static void enable_finish_unattended(Manager *m, EnablePrep *e) {
        _cleanup_free_ Job **jobs = NULL;
        _cleanup_free_ char *why = NULL, *what = NULL;
        int r;

        if (e->auto_pass ? !(what = strdup("new disks"))
                         : asprintf(&what, "the queued Enable of the %s volumes", e->volume_type) < 0) {
                ade_log_error("%s", "out of memory: an Enable without a caller was dropped");
                return;
        }
        /* A stop cancels the cloud checks: their failures then say nothing. */
        if (m->stopping) {
                if (!e->auto_pass)
                        ade_log_warning("%s was stopped with aded: run 'adectl enable' again", what);
                return;
        }
        if (e->auto_pass)
                aded_newdisks_left_alone(m, e->left_ids, e->left_why);
        if (e->result < 0) {
                ade_log_error_errno(e->result, "%s: the pass over the data volumes failed: %m", what);
                return;
        }
        if (e->error_name) {
                why = prep_failed_checks(e);
                ade_log_error("%s: %zu eligible volume(s) left plain: %s; fix that and %s", what, e->n_eligible,
                        why ?: e->error_name,
                        e->auto_pass ? "restart aded, or run 'adectl enable'"
                                     : "run 'adectl enable' again ('adectl enable --dry-run' shows every check)");
                return;
        }
        if (!e->auto_pass)
                enable_enroll(m, e);
        if (e->os_refused) {
                why = prep_failed_checks(e);
                ade_log_warning("%s: the OS volume is left plain: %s", what, why ?: "refused");
        }
        if (e->n_eligible == 0) {
                if (!e->auto_pass)
                        ade_log_info("%s: nothing left to encrypt", what);
                return;
        }
        r = manager_start_jobs(m, ADED_JOB_ENCRYPT, e->eligible, e->n_eligible, &e->params, &jobs);
        if (r < 0)
                ade_log_error_errno(r, "%s: cannot start encrypting them: %m", what);
}

/* Refuses, answers a dry run, or starts the jobs. */
static int enable_finish(Manager *m, EnablePrep *e) {
        _cleanup_free_ Job **jobs = NULL;
        _cleanup_json_ json_object *reply = NULL;
        AdeVarlinkCall *call = e->call;
        Waiter *w;
        int r;

        if (!ade_varlink_call_is_pending(call))
                return 0; /* the caller left: nothing is started on its behalf */
        /* Before the checks' verdict: a stop cancels the cloud checks, whose failures then say nothing. */
        if (m->stopping)
                return aded_error_stopping(call);
        if (e->result < 0)
                return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, NULL);
        /* A dry run reports every check, failed ones too (docs/architecture.md §5); the caller judges the plan. */
        if (e->error_name && !e->dry_run)
                return ade_varlink_error(call, e->error_name, e->error_parameters);
        if (!e->dry_run)
                enable_enroll(m, e);
        if (e->dry_run || e->n_eligible == 0)
                return enable_answer_plan(m, e);

        r = manager_start_jobs(m, ADED_JOB_ENCRYPT, e->eligible, e->n_eligible, &e->params, &jobs);
        if (r < 0)
                return ade_varlink_error(call, ADE_VARLINK_ERROR_SYSTEM, NULL);
        if (e->flags & ADE_VARLINK_METHOD_MORE) {
                r = waiter_add(m, call, jobs, e->n_eligible, e->plan, &w);
                if (r < 0)
                        return r;
                return waiter_notify_progress(m, w);
        }

        /* Without "more" the caller asked not to wait: the jobs are running. */
        r = aded_jobs_volumes_json(m, jobs, e->n_eligible, e->plan, &reply);
        if (r < 0)
                return r;
        return ade_varlink_reply(call, reply);
}

void enable_preps_cancel(Manager *m) {
        for (AdedTask *t = m->preps; t; t = t->next)
                atomic_store(&((EnablePrep *)t)->cancel, true);
}

static void prep_task_free(AdedTask *t) {
        enable_prep_free((EnablePrep *)t);
}

void enable_preps_free_all(Manager *m) {
        enable_queue_drop(m);
        aded_tasks_free_all(&m->preps, prep_task_free);
}

static int prep_task_finish(AdedTask *t) {
        EnablePrep *e = (EnablePrep *)t;

        if (e->auto_pass || !e->call)
                enable_finish_unattended(t->manager, e);
        else
                (void)enable_finish(t->manager, e);
        return 0;
}

bool enable_preps_dispatch(Manager *m) {
        return aded_tasks_reap(&m->preps, prep_task_finish, prep_task_free);
}
