/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "ade-util.h"

/* Device-mapper status through libdevmapper, read-only: is device-mapper there, which dm-crypt
 * mappings are active and which device each one sits on, and what backs "/". aded's Show reports
 * from this (and from its jobs), never from what it remembers, so it cannot call a disk Encrypted and
 * unlocked when no mapping exists.
 *
 * Nothing here reads a key: mappings are listed with DM_DEVICE_LIST and their devices with
 * DM_DEVICE_DEPS, never with DM_DEVICE_TABLE (whose crypt parameters hold the volume key).
 *
 * Thread-safe: libdevmapper is not (it keeps process-wide state), so every function here that calls it
 * holds one process-wide lock while it does. */

/* That lock (recursive), for callers that reach libdevmapper indirectly: a libcryptsetup activation
 * or deactivation (crypt_activate_*, crypt_deactivate) runs libdevmapper tasks, and must not run
 * while another thread lists mappings here or activates another volume. ade-luks holds it around its
 * own activations and deactivations; anyone else calling libcryptsetup that way must too. The
 * functions below may still be called while holding it. */
void ade_dm_lock(void);
void ade_dm_unlock(void);

/* True when the kernel has device-mapper and we may talk to it (/dev/mapper/control opens and the
 * driver answers). False on hosts without the dm module, such as containers. */
bool ade_dm_available(void);

typedef struct AdeDmCrypt {
        char *name;    /* /dev/mapper/<name> */
        char *uuid;    /* the dm UUID: "CRYPT-LUKS2-<luks uuid without dashes>-<name>", or NULL */
        dev_t backing; /* the device the mapping sits on (its first dependency) */
} AdeDmCrypt;

/* Lists active crypt mappings (those whose dm UUID starts with "CRYPT-"). Returns 0 and an array of
 * *ret_n entries (possibly none, *ret NULL), -ENODEV when device-mapper is not available, or another
 * negative errno. */
int ade_dm_list_crypt(AdeDmCrypt **ret, size_t *ret_n);
void ade_dm_crypt_free_many(AdeDmCrypt *l, size_t n);

/* The name of the active crypt mapping that sits on @device (a path to a block device), in *ret_name
 * (optional). Returns 1 when there is one, 0 when none (also when device-mapper is not available),
 * or a negative errno (-ENOTBLK for a path that is not a block device). */
int ade_dm_find_crypt(const char *device, char **ret_name);

/* Returns 1 when @device (a path to a block device) backs the filesystem mounted on "/", directly, as a
 * partition of it, or through device-mapper layers (followed through sysfs slaves); 0 when not;
 * negative errno when @device cannot be examined. */
int ade_dm_device_backs_root(const char *device);
