/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdarg.h>

#include "ade-precheck.h"
#include "ade-url.h"

static const char *const verdict_names[_ADE_VERDICT_MAX] = {
        [ADE_VERDICT_OK] = "ok",
        [ADE_VERDICT_WARNING] = "warning",
        [ADE_VERDICT_FAIL] = "fail",
};

const char *ade_verdict_to_string(AdeVerdict v) {
        if (v < 0 || v >= _ADE_VERDICT_MAX)
                return NULL;
        return verdict_names[v];
}

bool ade_region_equal(const char *a, const char *b) {
        if (!a || !b)
                return false;
        for (;;) {
                while (isspace((unsigned char)*a))
                        a++;
                while (isspace((unsigned char)*b))
                        b++;
                if (!*a || !*b)
                        return !*a && !*b;
                if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
                        return false;
                a++;
                b++;
        }
}

static AdeCheck *check_add_v(AdeCheckList *list, const char *name, const char *target, AdeVerdict verdict,
        const char *format, va_list ap) _printf_(5, 0);
static AdeCheck *check_add_v(
        AdeCheckList *list, const char *name, const char *target, AdeVerdict verdict, const char *format, va_list ap) {
        AdeCheck *n, *c;

        n = realloc(list->checks, (list->n + 1) * sizeof(AdeCheck));
        if (!n)
                return NULL;
        list->checks = n;
        c = &n[list->n];
        *c = (AdeCheck){.verdict = verdict, .error = ADE_CHECK_ERROR_PRECONDITION};
        c->name = strdup(name);
        c->target = target ? strdup(target) : NULL;
        if (vasprintf(&c->reason, format, ap) < 0)
                c->reason = NULL;
        if (!c->name || !c->reason || (target && !c->target)) {
                free(c->name);
                free(c->target);
                free(c->reason);
                return NULL;
        }
        list->n++;
        return c;
}

static AdeCheck *check_add(AdeCheckList *list, const char *name, const char *target, AdeVerdict verdict,
        const char *format, ...) _printf_(5, 6);
static AdeCheck *check_add(
        AdeCheckList *list, const char *name, const char *target, AdeVerdict verdict, const char *format, ...) {
        AdeCheck *c;
        va_list ap;

        va_start(ap, format);
        c = check_add_v(list, name, target, verdict, format, ap);
        va_end(ap);
        return c;
}

int ade_check_list_add(
        AdeCheckList *list, const char *name, const char *target, AdeVerdict verdict, const char *reason_format, ...) {
        AdeCheck *c;
        va_list ap;

        va_start(ap, reason_format);
        c = check_add_v(list, name, target, verdict, reason_format, ap);
        va_end(ap);
        return c ? 0 : -ENOMEM;
}

const AdeCheck *ade_check_list_first_failure(const AdeCheckList *list) {
        for (size_t i = 0; i < list->n; i++)
                if (list->checks[i].verdict == ADE_VERDICT_FAIL)
                        return &list->checks[i];
        return NULL;
}

void ade_check_list_done(AdeCheckList *list) {
        for (size_t i = 0; i < list->n; i++) {
                free(list->checks[i].name);
                free(list->checks[i].target);
                free(list->checks[i].reason);
                free(list->checks[i].error_arg1);
                free(list->checks[i].error_arg2);
        }
        free(list->checks);
        *list = (AdeCheckList){};
}

static int set_error(AdeCheck *c, AdeCheckError e, const char *arg1, const char *arg2) {
        c->error = e;
        c->error_arg1 = arg1 ? strdup(arg1) : NULL;
        c->error_arg2 = arg2 ? strdup(arg2) : NULL;
        if ((arg1 && !c->error_arg1) || (arg2 && !c->error_arg2))
                return -ENOMEM;
        return 0;
}

static void format_age(int64_t sec, char *buf, size_t size) {
        if (sec < 0)
                sec = 0;
        if (sec < 120)
                snprintf(buf, size, "%llds", (long long)sec);
        else if (sec < 2 * 3600)
                snprintf(buf, size, "%lldm", (long long)(sec / 60));
        else if (sec < 2 * 86400)
                snprintf(buf, size, "%lldh", (long long)(sec / 3600));
        else
                snprintf(buf, size, "%lldd", (long long)(sec / 86400));
}

static bool arm_ids_contain(const char **l, const char *s) {
        if (!l)
                return false;
        for (; *l; l++)
                if (ade_url_arm_id_equal(*l, s))
                        return true;
        return false;
}

static bool ops_contain(const char **ops, const char *op) {
        if (!ops)
                return false;
        for (; *ops; ops++)
                if (streq(*ops, op))
                        return true;
        return false;
}

/* A versioned KEK URL: https://host[:port]/keys/<name>/<version>[/] with a non-empty version. */
static bool kek_url_is_versioned(const char *url) {
        const char *p = startswith_no_case(url, "https://");
        size_t n;

        if (!p)
                return false;
        p = strchr(p, '/');
        if (!p || !(p = startswith(p, "/keys/")))
                return false;
        n = strcspn(p, "/");
        if (n == 0 || p[n] != '/')
                return false;
        p += n + 1;
        n = strcspn(p, "/");
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)p[i]))
                        return false;
        p += n;
        return *p == '\0' || streq(p, "/");
}

static int evaluate_vault(const AdePrecheckFacts *f, AdeCheckList *list) {
        _cleanup_free_ char *vault_sub = NULL;
        const char *vault = f->vault_resource_id ?: f->vault_url ?: "(none)";
        AdeCheck *c;

        if (!f->vault_resource_id) {
                c = check_add(list, "vault-reachable", NULL, ADE_VERDICT_FAIL,
                        "no Key Vault resource id is configured: set [keyvault] resource-id in ade.conf or pass "
                        "--keyvault-resource-id, so the vault's region and settings can be checked");
                return c ? 0 : -ENOMEM;
        }
        if (f->vault_error < 0) {
                c = check_add(list, "vault-reachable", NULL, ADE_VERDICT_FAIL, "cannot read vault %s through ARM: %s%s",
                        vault, f->vault_error_message ?: strerror(-f->vault_error),
                        f->vault_error == -EACCES ? " (grant this VM's identity the Reader role on the vault)" : "");
                return c ? 0 : -ENOMEM;
        }
        if (!check_add(list, "vault-reachable", NULL, ADE_VERDICT_OK, "vault %s is readable with this identity", vault))
                return -ENOMEM;

        if (f->vault_enabled_for_disk_encryption)
                c = check_add(list, "vault-enabled-for-disk-encryption", NULL, ADE_VERDICT_OK,
                        "enabledForDiskEncryption is set");
        else
                c = check_add(list, "vault-enabled-for-disk-encryption", NULL, ADE_VERDICT_FAIL,
                        "vault %s is not enabled for disk encryption: run "
                        "'az keyvault update --name <vault> --enabled-for-disk-encryption true'",
                        vault);
        if (!c)
                return -ENOMEM;

        if (f->vm_error == 0 && f->vm_location) {
                if (ade_region_equal(f->vm_location, f->vault_location))
                        c = check_add(list, "same-region", NULL, ADE_VERDICT_OK, "VM and vault are both in %s",
                                f->vm_location);
                else {
                        c = check_add(list, "same-region", NULL,
                                f->require_same_region ? ADE_VERDICT_FAIL : ADE_VERDICT_WARNING,
                                "VM is in %s, vault %s is in %s: use a vault in %s%s", f->vm_location, vault,
                                f->vault_location ?: "an unknown region", f->vm_location,
                                f->require_same_region ? "" : " (allowed by require-same-region = no)");
                        if (c && set_error(c, ADE_CHECK_ERROR_REGION, f->vm_location, f->vault_location ?: "") < 0)
                                return -ENOMEM;
                }
                if (!c)
                        return -ENOMEM;

                if (ade_url_arm_id_subscription(f->vault_resource_id, &vault_sub) == -ENOMEM)
                        return -ENOMEM;
                if (vault_sub && f->vm_subscription && strcaseeq(vault_sub, f->vm_subscription))
                        c = check_add(list, "same-subscription", NULL, ADE_VERDICT_OK,
                                "VM and vault are both in subscription %s", f->vm_subscription);
                else
                        c = check_add(list, "same-subscription", NULL, ADE_VERDICT_FAIL,
                                "VM is in subscription %s, vault %s in %s: use a vault in the VM's subscription",
                                strna(f->vm_subscription), vault, strna(vault_sub));
                if (!c)
                        return -ENOMEM;
        }

        if (!check_add(list, "soft-delete", NULL, f->vault_soft_delete ? ADE_VERDICT_OK : ADE_VERDICT_WARNING,
                    f->vault_soft_delete ? "soft delete is on"
                                         : "soft delete is off: a deleted secret or key cannot be recovered, and "
                                           "with it the data; turn soft delete on"))
                return -ENOMEM;
        if (!check_add(list, "purge-protection", NULL, f->vault_purge_protection ? ADE_VERDICT_OK : ADE_VERDICT_WARNING,
                    f->vault_purge_protection ? "purge protection is on"
                                              : "purge protection is off: a purged key means lost data; run "
                                                "'az keyvault update --enable-purge-protection true'"))
                return -ENOMEM;
        return 0;
}

static int evaluate_kek(const AdePrecheckFacts *f, AdeCheckList *list) {
        const char *why = NULL;
        char buf[512];
        AdeCheck *c;

        if (!f->kek_url)
                return 0;

        if (!kek_url_is_versioned(f->kek_url))
                why = "the URL has no key version; use the versioned URL "
                      "(https://<vault>/keys/<name>/<version>) so the key can never change under the volume";
        else if (f->kek_algorithm && !streq(f->kek_algorithm, "RSA-OAEP") && !streq(f->kek_algorithm, "RSA-OAEP-256") &&
                 !streq(f->kek_algorithm, "RSA1_5")) {
                snprintf(buf, sizeof(buf), "algorithm %s is not one of RSA-OAEP, RSA-OAEP-256, RSA1_5",
                        f->kek_algorithm);
                why = buf;
        } else if (f->kek_error < 0) {
                snprintf(buf, sizeof(buf), "cannot read the key: %s%s", f->kek_error_message ?: strerror(-f->kek_error),
                        f->kek_error == -EACCES ? " (grant this identity get, wrapKey and unwrapKey on keys)" : "");
                why = buf;
        } else if (!f->kek_kty || !(streq(f->kek_kty, "RSA") || streq(f->kek_kty, "RSA-HSM"))) {
                snprintf(
                        buf, sizeof(buf), "the key is of type %s; a key-encryption key must be RSA", strna(f->kek_kty));
                why = buf;
        } else if (!f->kek_enabled)
                why = "the key is disabled; enable it or choose another version";
        else if (f->kek_expires > 0 && f->kek_expires <= f->now)
                why = "the key has expired; choose a key version that is valid";
        else if (f->kek_not_before > 0 && f->kek_not_before > f->now)
                why = "the key is not valid yet (nbf is in the future)";
        else if (!ops_contain(f->kek_ops, "wrapKey") || !ops_contain(f->kek_ops, "unwrapKey"))
                why = "the key does not allow both wrapKey and unwrapKey in its key_ops";

        if (why)
                c = check_add(list, "kek-valid", NULL, ADE_VERDICT_FAIL, "KEK %s: %s", f->kek_url, why);
        else
                c = check_add(list, "kek-valid", NULL, ADE_VERDICT_OK,
                        "KEK %s is an enabled RSA key allowing wrapKey and unwrapKey (%s)", f->kek_url,
                        f->kek_algorithm ?: "RSA-OAEP");
        return c ? 0 : -ENOMEM;
}

static bool restore_point_covers(const AdePrecheckRestorePoint *rp, const AdePrecheckDisk *d) {
        if (arm_ids_contain(rp->excluded_disk_ids, d->id))
                return false;
        return !rp->disk_ids || arm_ids_contain(rp->disk_ids, d->id);
}

static int evaluate_snapshot_disk(const AdePrecheckFacts *f, const AdePrecheckDisk *d, AdeCheckList *list) {
        const AdePrecheckSnapshot *best_any = NULL;
        const char *near_miss = NULL;
        char age[32], max[32];
        AdeCheck *c;

        format_age((int64_t)f->snapshot_max_age_sec, max, sizeof(max));

        for (size_t i = 0; i < f->n_snapshots; i++) {
                const AdePrecheckSnapshot *s = &f->snapshots[i];

                if (!ade_url_arm_id_equal(s->source_id, d->id))
                        continue;
                if (!s->state || !strcaseeq(s->state, "Succeeded")) {
                        near_miss = "a snapshot exists but its provisioningState is not Succeeded";
                        continue;
                }
                if (s->created <= 0 || f->now - s->created > (int64_t)f->snapshot_max_age_sec) {
                        if (!best_any || s->created > best_any->created)
                                best_any = s;
                        continue;
                }
                format_age(f->now - s->created, age, sizeof(age));
                c = check_add(list, "snapshot", d->name, ADE_VERDICT_OK, "snapshot %s of disk %s is %s old (limit %s)",
                        strna(s->name), d->name, age, max);
                return c ? 0 : -ENOMEM;
        }

        for (size_t i = 0; i < f->n_restore_points; i++) {
                const AdePrecheckRestorePoint *rp = &f->restore_points[i];

                if (!ade_url_arm_id_equal(rp->vm_id, f->vm_resource_id) || !restore_point_covers(rp, d))
                        continue;
                if (!rp->state || !strcaseeq(rp->state, "Succeeded"))
                        continue;
                if (rp->created <= 0 || f->now - rp->created > (int64_t)f->snapshot_max_age_sec)
                        continue;
                format_age(f->now - rp->created, age, sizeof(age));
                c = check_add(list, "snapshot", d->name, ADE_VERDICT_OK,
                        "restore point %s of this VM is %s old (limit %s)", strna(rp->name), age, max);
                return c ? 0 : -ENOMEM;
        }

        if (best_any) {
                format_age(f->now - best_any->created, age, sizeof(age));
                c = check_add(list, "snapshot", d->name, ADE_VERDICT_FAIL,
                        "the newest snapshot of disk %s (%s) is %s old, older than snapshot-max-age %s: "
                        "take a new snapshot, or pass --skip-snapshot-check",
                        d->name, strna(best_any->name), age, max);
        } else
                c = check_add(list, "snapshot", d->name, ADE_VERDICT_FAIL,
                        "no snapshot of disk %s younger than %s%s%s%s: take one "
                        "('az snapshot create --source %s'), or pass --skip-snapshot-check",
                        d->name, max, near_miss ? " (" : "", strempty(near_miss), near_miss ? ")" : "", d->id);
        if (!c)
                return -ENOMEM;
        return set_error(c, ADE_CHECK_ERROR_SNAPSHOT, d->name, NULL);
}

static int evaluate_snapshots(const AdePrecheckFacts *f, AdeCheckList *list) {
        AdeCheck *c;
        int r;

        if (f->skip_snapshot_check) {
                c = check_add(list, "snapshot", NULL, ADE_VERDICT_WARNING,
                        "skipped by --skip-snapshot-check; the override is recorded in the state and the log");
                return c ? 0 : -ENOMEM;
        }
        if (f->snapshot_error < 0) {
                c = check_add(list, "snapshot", NULL, ADE_VERDICT_FAIL, "cannot list snapshots: %s%s",
                        f->snapshot_error_message ?: strerror(-f->snapshot_error),
                        f->snapshot_error == -EACCES
                                ? ": grant this VM's identity the Reader role on the disks' resource group "
                                  "(Microsoft.Compute/snapshots/read), or pass --skip-snapshot-check after taking a "
                                  "backup"
                                : "");
                if (!c)
                        return -ENOMEM;
                return set_error(c, ADE_CHECK_ERROR_SNAPSHOT, f->n_disks > 0 ? f->disks[0].name : "", NULL);
        }
        if (f->n_disks == 0) {
                c = check_add(list, "snapshot", NULL, ADE_VERDICT_OK, "no managed disk is in scope");
                return c ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < f->n_disks; i++) {
                r = evaluate_snapshot_disk(f, &f->disks[i], list);
                if (r < 0)
                        return r;
        }
        return 0;
}

int ade_precheck_evaluate(const AdePrecheckFacts *f, AdeCheckList *list) {
        int r;

        if (!f || !list)
                return -EINVAL;

        if (f->vm_error < 0) {
                if (!check_add(list, "vm-identity", NULL, ADE_VERDICT_FAIL,
                            "cannot read this VM's instance metadata from IMDS: %s; ade needs IMDS to know the VM's "
                            "region, subscription and disks (is this an Azure VM, and is 169.254.169.254 reachable "
                            "without a proxy?)",
                            f->vm_error_message ?: strerror(-f->vm_error)))
                        return -ENOMEM;
        } else if (!check_add(list, "vm-identity", NULL, ADE_VERDICT_OK, "VM %s in %s", strna(f->vm_resource_id),
                           strna(f->vm_location)))
                return -ENOMEM;

        r = evaluate_vault(f, list);
        if (r < 0)
                return r;
        r = evaluate_kek(f, list);
        if (r < 0)
                return r;
        if (f->vm_error == 0) {
                r = evaluate_snapshots(f, list);
                if (r < 0)
                        return r;
        }
        return 0;
}
