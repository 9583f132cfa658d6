/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include "ade-fs.h"
#include "ade-log.h"
#include "ade-tab.h"
#include "aded-boot.h"
#include "aded-job.h"
#include "aded-manager.h"

#define BOOT_SYSTEM_CRYPTTAB "/etc/crypttab"
/* tries=1: aded itself retries Key Vault for a while (aded-keysocket.h); headless=true: nobody is
 * there to type a passphrase; nofail: a locked data volume must not stop the boot. */
#define BOOT_CRYPTTAB_OPTIONS "luks,_netdev,nofail,headless=true,tries=1"

static void bus_unrefp(sd_bus **b) {
        sd_bus_flush_close_unref(*b);
}

/* Calls systemd's Manager @method with the arguments of @types, waiting for its answer; the error
 * a person reads on failure. */
static int boot_systemd_call(char **ret_error, const char *method, const char *types, ...) {
        _cleanup_(bus_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        va_list ap;
        int r;

        r = sd_bus_open_system(&bus);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_call_methodv(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                        "org.freedesktop.systemd1.Manager", method, &error, &reply, types, ap);
                va_end(ap);
        }
        if (r < 0 && ret_error && !(*ret_error = strdup(error.message ?: strerror(-r))))
                r = -ENOMEM;
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        return r;
}

/* Debian 12 ships remote-cryptsetup.target disabled: without it the "_netdev" lines would be
 * generated into units that nothing pulls in at boot. */
static int boot_enable_remote_cryptsetup(void) {
        _cleanup_free_ char *why = NULL;
        int r;

        r = boot_systemd_call(&why, "EnableUnitFiles", "asbb", 1, "remote-cryptsetup.target", false, false);
        if (r < 0)
                ade_log_warning("cannot enable remote-cryptsetup.target: %s; run \"systemctl enable "
                                "remote-cryptsetup.target\", or encrypted volumes stay locked after a reboot",
                        strna(why));
        return r;
}

/* What fstab may call the volume's filesystem: as probed before the job began, or, for a job
 * resumed after the header was written, as the open mapping shows it. */
static int boot_fs_id(Job *j, const char *mapper, AdeFsInfo *info, AdeFsId *ret, const char **ret_type) {
        const AdeVolume *v = job_volume(j);
        struct stat st;

        if (stat(v->device, &st) < 0 || !S_ISBLK(st.st_mode))
                return -ENODEV;
        *ret = (AdeFsId){.devnum = st.st_rdev};
        if (v->fstype && !streq(v->fstype, "crypto_LUKS")) {
                ret->uuid = v->fs_uuid;
                ret->label = v->label;
                *ret_type = v->fstype;
                return 0;
        }
        if (ade_fs_probe(mapper, info) < 0 || !info->type)
                return -ENOMEDIUM;
        ret->uuid = info->uuid;
        ret->label = info->label;
        *ret_type = info->type;
        return 0;
}

void aded_boot_add(Job *j, const char *uuid, const char *header) {
        Manager *m = job_manager(j);
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        _cleanup_free_ char *name = NULL, *source = NULL, *options = NULL, *mapper = NULL, *why = NULL, *note = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo info = {};
        const char *type = NULL;
        AdeFsId id;
        int r;

        (void)aded_state_get(m->state, job_key(j), &record);
        if (asprintf(&name, "ade-%s", uuid) < 0 || asprintf(&mapper, "/dev/mapper/ade-%s", uuid) < 0)
                return;
        if (header) {
                /* No UUID on the device: crypttab finds it by its stable name, its header by path. */
                const char *stable = startswith(job_key(j), "/dev/") ? job_key(j) : job_device(j);

                if (asprintf(&source, "%s", stable) < 0 ||
                        asprintf(&options, BOOT_CRYPTTAB_OPTIONS ",header=%s", header) < 0)
                        return;
        } else if (asprintf(&source, "UUID=%s", uuid) < 0 || !(options = strdup(BOOT_CRYPTTAB_OPTIONS)))
                return;

        r = ade_crypttab_set(
                m->config->daemon.crypttab, name, source, m->config->daemon.key_socket, options, NULL, &why);
        if (r < 0) {
                if (asprintf(&note,
                            "%s is encrypted, but %s has no line for it (%s): it stays locked after a reboot until "
                            "\"adectl unlock\"",
                            job_device(j), m->config->daemon.crypttab, why ?: strerror(-r)) >= 0) {
                        ade_log_warning("%s", note);
                        job_note(j, note);
                }
                return;
        }
        if (r > 0) {
                ade_log_info("%s: %s line %s added", job_device(j), m->config->daemon.crypttab, name);
                if (streq(m->config->daemon.crypttab, BOOT_SYSTEM_CRYPTTAB))
                        (void)boot_enable_remote_cryptsetup();
        }

        /* Mounted nowhere, and in no fstab line: nothing to mount at boot. */
        if (!record || !record->mount_point)
                return;
        r = boot_fs_id(j, mapper, &info, &id, &type);
        if (r < 0) {
                ade_log_warning("%s: cannot tell which filesystem fstab mounts on %s (%s); point its fstab line at %s "
                                "with the options _netdev,nofail",
                        job_device(j), record->mount_point, strerror(-r), mapper);
                return;
        }
        why = mfree(why);
        r = ade_fstab_repoint(
                m->config->daemon.fstab, &id, record->mount_point, name, type, record->mount_options, NULL, &why);
        if (r < 0) {
                note = mfree(note);
                if (asprintf(&note, "%s is encrypted, but %s does not mount %s on %s (%s)", job_device(j),
                            m->config->daemon.fstab, mapper, record->mount_point, why ?: strerror(-r)) >= 0) {
                        ade_log_warning("%s", note);
                        job_note(j, note);
                }
                return;
        }
        if (r > 0)
                ade_log_info("%s: %s mounts %s on %s now", job_device(j), m->config->daemon.fstab, mapper,
                        record->mount_point);
}

void aded_boot_remove(Job *j, const char *uuid) {
        Manager *m = job_manager(j);
        _cleanup_free_ char *name = NULL, *why = NULL, *note = NULL;
        int r;

        if (!uuid || asprintf(&name, "ade-%s", uuid) < 0)
                return;
        r = ade_crypttab_remove(m->config->daemon.crypttab, name, NULL, &why);
        if (r > 0)
                ade_log_info("%s: %s line %s removed", job_device(j), m->config->daemon.crypttab, name);
        if (r >= 0) {
                why = mfree(why);
                r = ade_fstab_restore(m->config->daemon.fstab, name, NULL, &why);
                if (r > 0)
                        ade_log_info("%s: %s line for it put back as it was", job_device(j), m->config->daemon.fstab);
        }
        if (r < 0 && asprintf(&note,
                             "%s is decrypted, but its boot lines were not undone (%s): remove the line %s "
                             "from %s and put back its %s line as the comment \"# ade: %s was:\" says",
                             job_device(j), why ?: strerror(-r), name, m->config->daemon.crypttab,
                             m->config->daemon.fstab, name) >= 0) {
                ade_log_warning("%s", note);
                job_note(j, note);
        }
}

void aded_boot_detach(Job *j, const char *uuid, const char *header) {
        Manager *m = job_manager(j);
        _cleanup_free_ char *name = NULL, *options = NULL, *why = NULL;
        const char *stable = startswith(job_key(j), "/dev/") ? job_key(j) : job_device(j);
        int r;

        if (!uuid || asprintf(&name, "ade-%s", uuid) < 0 ||
                asprintf(&options, BOOT_CRYPTTAB_OPTIONS ",header=%s", header) < 0)
                return;
        r = ade_crypttab_set(
                m->config->daemon.crypttab, name, stable, m->config->daemon.key_socket, options, NULL, &why);
        if (r < 0) {
                ade_log_warning("%s: cannot point %s line %s at the exported header %s (%s): if %s is open "
                                "through that line, systemd closes it as its LUKS header leaves the device",
                        job_device(j), m->config->daemon.crypttab, name, header, why ?: strerror(-r), name);
                return;
        }
        if (r == 0)
                return;
        ade_log_info("%s: %s line %s names %s and the exported header %s while it is decrypted", job_device(j),
                m->config->daemon.crypttab, name, stable, header);
        if (!streq(m->config->daemon.crypttab, BOOT_SYSTEM_CRYPTTAB))
                return;
        /* The open volume's systemd-cryptsetup unit is bound to the device its line named: reloaded,
         * it is bound to the stable name, which stays. */
        why = mfree(why);
        r = boot_systemd_call(&why, "Reload", "");
        if (r < 0)
                ade_log_warning("%s: systemd did not reload (%s): if %s is open through crypttab, systemd closes it "
                                "as its LUKS header leaves the device",
                        job_device(j), strna(why), name);
}
