/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include "ade-dm.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-tab.h"
#include "aded-boot.h"
#include "aded-job.h"
#include "aded-manager.h"

#define BOOT_SYSTEM_CRYPTTAB "/etc/crypttab"
#define BOOT_CRYPTTAB_OPTIONS ADED_BOOT_CRYPTTAB_OPTIONS

static void bus_unrefp(sd_bus **b) {
        sd_bus_flush_close_unref(*b);
}

/* Calls systemd's Manager @method with the arguments of @types on @bus (NULL: a connection of its
 * own for this call), waiting for its answer; the error a person reads on failure. */
static int boot_systemd_call(sd_bus *bus, char **ret_error, const char *method, const char *types, ...) {
        _cleanup_(bus_unrefp) sd_bus *own = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        va_list ap;
        int r = 0;

        if (!bus) {
                r = sd_bus_open_system(&own);
                bus = own;
        }
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

        r = boot_systemd_call(NULL, &why, "EnableUnitFiles", "asbb", 1, "remote-cryptsetup.target", false, false);
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

void aded_boot_line_added(Manager *m) {
        if (streq(m->config->daemon.crypttab, BOOT_SYSTEM_CRYPTTAB))
                (void)boot_enable_remote_cryptsetup();
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
                aded_boot_line_added(m);
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
        r = boot_systemd_call(NULL, &why, "Reload", "");
        if (r < 0)
                ade_log_warning("%s: systemd did not reload (%s): if %s is open through crypttab, systemd closes it "
                                "as its LUKS header leaves the device",
                        job_device(j), strna(why), name);
}

/* "systemd-cryptsetup@<name>.service", with <name> escaped as systemd escapes a unit instance:
 * '-' and anything but letters, digits, ':', '_' and a '.' that does not lead become \xNN. */
static char *boot_cryptsetup_unit(const char *name) {
        char *unit = malloc(strlen("systemd-cryptsetup@") + 4 * strlen(name) + strlen(".service") + 1), *p;

        if (!unit)
                return NULL;
        p = stpcpy(unit, "systemd-cryptsetup@");
        for (const char *c = name; *c; c++)
                if (isalnum((unsigned char)*c) || *c == ':' || *c == '_' || (*c == '.' && c != name))
                        *p++ = *c;
                else
                        p += sprintf(p, "\\x%02x", (unsigned char)*c);
        strcpy(p, ".service");
        return unit;
}

/* The ActiveState of @unit, a new string, or NULL when systemd cannot say. */
static char *boot_unit_state(sd_bus *bus, const char *unit) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        char *state = NULL;

        if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                    "org.freedesktop.systemd1.Manager", "GetUnit", &error, &reply, "s", unit) >= 0 &&
                sd_bus_message_read(reply, "o", &path) >= 0)
                (void)sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                        "ActiveState", &error, &state);
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        return state;
}

/* Systemd-cryptsetup asks the key socket, which may hold a request up to 90 s while Key Vault is
 * slow: the unit gets that and a margin. */
#define BOOT_OPEN_TIMEOUT_USEC (150ULL * 1000000ULL)

int aded_boot_open(Job *j, const char *name, char **ret_why) {
        Manager *m = job_manager(j);
        _cleanup_(bus_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *unit = NULL, *why = NULL;
        uint64_t deadline;
        int r;

        if (!streq(m->config->daemon.crypttab, BOOT_SYSTEM_CRYPTTAB))
                return 0;
        r = ade_crypttab_has(m->config->daemon.crypttab, name, &why);
        if (r <= 0) {
                if (r < 0)
                        ade_log_warning("%s: cannot read %s (%s); opening %s without systemd", job_device(j),
                                m->config->daemon.crypttab, why ?: strerror(-r), name);
                return 0;
        }
        unit = boot_cryptsetup_unit(name);
        if (!unit)
                return -ENOMEM;
        why = mfree(why);
        /* One connection for the start and the watch. */
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = boot_systemd_call(bus, &why, "StartUnit", "ss", unit, "replace");
        if (r < 0) {
                if (asprintf(ret_why, "systemd did not start %s: %s", unit, why ?: strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }
        ade_log_info("%s: opening %s through %s, as at boot", job_device(j), name, unit);

        /* Done when the unit is active (systemd-cryptsetup has returned: the mapping and its node
         * are there, and systemd's view says so); failed when the unit is. */
        deadline = ade_now_monotonic_usec() + BOOT_OPEN_TIMEOUT_USEC;
        for (;;) {
                _cleanup_free_ char *active = NULL, *state = NULL;

                state = boot_unit_state(bus, unit);
                if (state && streq(state, "active") && ade_dm_find_crypt(job_device(j), &active) > 0 &&
                        streq(active, name))
                        return 1;
                if (state && streq(state, "failed")) {
                        if (asprintf(ret_why, "%s failed (see journalctl -u '%s')", unit, unit) < 0)
                                *ret_why = NULL;
                        return -EIO;
                }
                if (job_is_cancelled(j))
                        return -ECANCELED;
                if (ade_now_monotonic_usec() > deadline) {
                        if (asprintf(ret_why, "%s did not open %s within %llu s (it is %s)", unit, name,
                                    BOOT_OPEN_TIMEOUT_USEC / 1000000ULL, strna(state)) < 0)
                                *ret_why = NULL;
                        return -ETIMEDOUT;
                }
                (void)usleep(200 * 1000);
        }
}
