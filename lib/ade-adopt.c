/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The judgement of adoption (docs/architecture.md §12): facts in, plan out, no I/O. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ade-adopt.h"

static const char *const action_names[_ADE_ADOPT_ACTION_MAX] = {
        [ADE_ADOPT_ACTION_ADOPT] = "adopt",
        [ADE_ADOPT_ACTION_ADOPTED] = "adopted",
        [ADE_ADOPT_ACTION_REFUSED] = "refused",
};

const char *ade_adopt_action_to_string(AdeAdoptAction a) {
        return a >= 0 && a < _ADE_ADOPT_ACTION_MAX ? action_names[a] : NULL;
}

void ade_adopt_plan_done(AdeAdoptPlan *p) {
        if (!p)
                return;
        free(p->name);
        free(p->source);
        free(p->device);
        free(p->header);
        free(p->options);
        free(p->line);
        free(p->luks_uuid);
        free(p->key_file_name);
        free(p->mount_point);
        free(p->fs_type);
        free(p->reason);
        *p = (AdeAdoptPlan){};
}

void ade_adopt_plan_list_done(AdeAdoptPlanList *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                ade_adopt_plan_done(&l->plans[i]);
        free(l->plans);
        *l = (AdeAdoptPlanList){};
}

/* The basename of @key when it is ADE's key file, /mnt/azure_bek_disk/LinuxPassPhraseFileName*. */
static const char *ade_key_file_name(const char *key) {
        const char *p = key ? startswith(key, ADE_ADOPT_BEK_MOUNT "/") : NULL;

        if (!p || strchr(p, '/') || !startswith(p, ADE_ADOPT_KEY_FILE_PREFIX))
                return NULL;
        return p;
}

/* Whether the comma-separated @options hold keyscript=<...>/azure_crypt_key.sh (or the bare name). */
static bool has_ade_keyscript(const char *options) {
        const char *p = options;

        while (p && *p) {
                size_t len = strcspn(p, ",");
                const char *v = startswith(p, "keyscript=");

                if (v && (size_t)(v - p) < len) {
                        size_t vlen = len - (size_t)(v - p);
                        size_t slen = strlen(ADE_ADOPT_KEYSCRIPT);

                        if (vlen >= slen && strncmp(v + vlen - slen, ADE_ADOPT_KEYSCRIPT, slen) == 0 &&
                                (vlen == slen || v[vlen - slen - 1] == '/'))
                                return true;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        return false;
}

static bool is_key_socket_line(const AdeAdoptFacts *f) {
        return f->key_socket && streq_ptr(f->key, f->key_socket);
}

bool ade_adopt_is_ade_line(const AdeAdoptFacts *f) {
        if (!f || !f->name)
                return false;
        if (f->mount_point)
                return true;
        if (is_key_socket_line(f))
                return f->recorded;
        return ade_key_file_name(f->key) || has_ade_keyscript(f->options);
}

static int plan_refuse(AdeAdoptPlan *p, const char *fmt, ...) _printf_(2, 3);
static int plan_refuse(AdeAdoptPlan *p, const char *fmt, ...) {
        va_list ap;
        int r;

        p->action = ADE_ADOPT_ACTION_REFUSED;
        p->add_token = p->add_record = p->switch_line = false;
        va_start(ap, fmt);
        r = vasprintf(&p->reason, fmt, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : 0;
}

static int plan_fill(const AdeAdoptFacts *f, AdeAdoptPlan *p) {
        bool ours = is_key_socket_line(f);

        if (f->marker)
                return plan_refuse(p,
                        "ADE's marker %s says an operation of ADE's extension is in progress%s%s%s: "
                        "nothing is adopted while ADE may be writing; let ADE finish, or, once ADE's extension is "
                        "removed from the VM, remove the marker, then try again",
                        f->marker, f->marker_operation ? " (" : "", strempty(f->marker_operation),
                        f->marker_operation ? ")" : "");
        if (streq(f->name, ADE_ADOPT_OS_MAPPING))
                return plan_refuse(
                        p, "%s is ADE's OS volume: adopting it is not built yet; it keeps ADE's unlock", f->name);
        if (f->device_error < 0)
                return plan_refuse(p,
                        "cannot find %s (%s): attach the disk, or remove its stale crypttab line, then try again",
                        f->source, strerror(-f->device_error));
        if (f->luks_version < 0)
                return plan_refuse(p, "cannot read the LUKS header of %s (%s): check the disk, then try again",
                        f->header ?: f->device, strerror(-f->luks_version));
        if (f->luks_version == 0)
                return plan_refuse(p,
                        "%s carries no LUKS header although crypttab names ADE's key for it: it is not ADE's "
                        "volume; fix the crypttab line",
                        f->header ?: f->device);
        if (f->luks_version != 1 && f->luks_version != 2)
                return plan_refuse(p, "%s: unknown LUKS version %d", f->device, f->luks_version);
        if (f->reencrypting)
                return plan_refuse(p, "%s has a reencryption in progress: let ADE finish it (or resume it), then adopt",
                        f->device);

        p->add_token = f->luks_version == 2 && !f->has_token;
        p->add_record = !f->recorded;
        p->switch_line = !ours;
        if (!p->add_token && !p->add_record && !p->switch_line) {
                p->action = ADE_ADOPT_ACTION_ADOPTED;
                return asprintf(&p->reason, "%s (LUKS%d) is adopted already: ade's key socket unlocks it", f->device,
                               f->luks_version) < 0
                               ? -ENOMEM
                               : 0;
        }
        p->action = ADE_ADOPT_ACTION_ADOPT;
        return asprintf(&p->reason, "%s (LUKS%d): prove its escrowed key opens it%s%s%s%s%s", f->device,
                       f->luks_version, p->add_token ? ", add ade's token" : "",
                       p->add_record ? (f->luks_version == 1 ? ", record it (LUKS1 has no token)" : ", record it") : "",
                       !p->switch_line ? ""
                       : f->mount_point
                               ? ", give it a crypttab line on ade's key socket and an fstab line mounting it on "
                               : ", point its crypttab line at ade's key socket (ADE's line kept aside)",
                       p->switch_line && f->mount_point ? f->mount_point : "",
                       p->switch_line && f->mount_point
                               ? " (it is a line of ADE's azure_crypt_mount: ADE's extension opened it, late)"
                               : "") < 0
                       ? -ENOMEM
                       : 0;
}

int ade_adopt_evaluate(const AdeAdoptFacts *f, AdeAdoptPlan *ret) {
        AdeAdoptPlan p = {.luks_version = f ? f->luks_version : 0};
        const char *kf;
        int r;

        if (!f || !ret)
                return -EINVAL;
        if (!ade_adopt_is_ade_line(f))
                return -ENOENT;
        kf = f->mount_point ? f->bek_file_name : ade_key_file_name(f->key);
        if (!(p.name = strdup(f->name)) || (f->source && !(p.source = strdup(f->source))) ||
                (f->device && !(p.device = strdup(f->device))) || (f->header && !(p.header = strdup(f->header))) ||
                (f->options && !(p.options = strdup(f->options))) || (f->line && !(p.line = strdup(f->line))) ||
                (f->luks_uuid && !(p.luks_uuid = strdup(f->luks_uuid))) || (kf && !(p.key_file_name = strdup(kf))) ||
                (f->mount_point && !(p.mount_point = strdup(f->mount_point))) ||
                (f->fs_type && !(p.fs_type = strdup(f->fs_type)))) {
                ade_adopt_plan_done(&p);
                return -ENOMEM;
        }
        r = plan_fill(f, &p);
        if (r < 0) {
                ade_adopt_plan_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}
