/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Job Job;
typedef struct Manager Manager;

/* A volume's life across reboots (docs/architecture.md §9): its crypttab line, which has
 * systemd-cryptsetup ask the key socket for its key at boot, and its fstab line pointed at the
 * mapping. Written when an encryption finishes, undone when a decryption finishes, both through
 * ade-tab (atomic, backed up, idempotent). A failure here never fails the job: the volume is
 * encrypted (or decrypted) all the same; it is logged and noted on the job with what to do. */

/* The options of crypttab's lines on the key socket. tries=1: aded itself retries Key Vault for a
 * while (aded-keysocket.h); headless=true: nobody is there to type a passphrase; nofail: a locked
 * data volume must not stop the boot. */
#define ADED_BOOT_CRYPTTAB_OPTIONS "luks,_netdev,nofail,headless=true,tries=1"

/* A line on the key socket went into crypttab: on the system's, remote-cryptsetup.target is enabled
 * (the "_netdev" lines are generated into its units). */
void aded_boot_line_added(Manager *m);

/* For the volume of @j, encrypted with the LUKS UUID @uuid and the detached header @header (NULL
 * when on the device): the crypttab line "ade-<uuid> UUID=<uuid> <key-socket>
 * luks,_netdev,nofail,headless=true,tries=1" (detached: the volume's stable id and header=), the
 * fstab line of its mount point repointed at /dev/mapper/ade-<uuid>; and, when the system's
 * /etc/crypttab was written, remote-cryptsetup.target enabled (Debian 12 leaves it disabled, and
 * "_netdev" lines belong to it). */
void aded_boot_add(Job *j, const char *uuid, const char *header);

/* Undoes aded_boot_add() for the LUKS UUID @uuid: the crypttab line gone, the fstab line back to
 * what it was. */
void aded_boot_remove(Job *j, const char *uuid);

/* The attached header of @j's volume (LUKS UUID @uuid) is about to leave its device for the export
 * @header, mid-decryption: its crypttab line then names the volume by its stable name with
 * header=@header, and systemd reloads. Otherwise systemd would close an open volume as the UUID its
 * line names vanishes from the device (a systemd-cryptsetup unit is bound to that device), and a
 * boot before the decryption ends could not open it. Undone by aded_boot_remove(). */
void aded_boot_detach(Job *j, const char *uuid, const char *header);

/* Unlock of a volume that has a crypttab line (named @name, in the system's /etc/crypttab): starts
 * its systemd-cryptsetup unit, which asks the key socket, as at boot, so that systemd's view of
 * the volume is ade's too; returns once the unit is active and the mapping /dev/mapper/@name is
 * there (1). 0 when there is
 * no such line (the caller opens the volume itself); a negative errno with *ret_why when systemd
 * could not open it or the job was cancelled. */
int aded_boot_open(Job *j, const char *name, char **ret_why);
