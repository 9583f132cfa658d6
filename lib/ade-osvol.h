/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ade-precheck.h"
#include "ade-state.h"

/* Whether the OS volume can be encrypted, and how (docs/architecture.md §9, "OS volume").
 *
 * As with ade-precheck, the judgement is a pure function: ade_osvol_gather() reads what the system
 * says about "/" (pid 1's mount table, sysfs, the boot tools), ade_osvol_evaluate() turns those
 * facts into named checks, each with a reason a person can act on, and the path the volume would
 * take. Nothing here writes.
 *
 * Both paths keep the root's data where it is and its LUKS2 header detached, on a filesystem the
 * initramfs can read, so that the running root is never shrunk (XFS cannot be) and the header is
 * initialised while the system runs; the first reboot opens the root from the mapper and aded
 * encrypts it online. The only difference is where the header lives:
 *   - ADE_OSVOL_PATH_BOOT: a separate /boot (/boot/luks/).
 *   - ADE_OSVOL_PATH_ESP: no separate /boot, as in Debian's own Azure images (root on partition 1,
 *     the EFI system partition on 15): the EFI system partition mounted on /boot/efi. */

/* The detached header's file, and room for the backup taken before each change of it. */
#define ADE_OSVOL_HEADER_SIZE (32ULL * 1024ULL * 1024ULL)
#define ADE_OSVOL_HEADER_ROOM (2ULL * ADE_OSVOL_HEADER_SIZE)

typedef enum AdeOsvolPath {
        ADE_OSVOL_PATH_NONE, /* not eligible: a check failed */
        ADE_OSVOL_PATH_BOOT, /* the header on the separate /boot */
        ADE_OSVOL_PATH_ESP,  /* the header on the EFI system partition */
        _ADE_OSVOL_PATH_MAX,
        _ADE_OSVOL_PATH_INVALID = -EINVAL,
} AdeOsvolPath;

/* "none", "boot-header", "esp-header". */
const char *ade_osvol_path_to_string(AdeOsvolPath p);

/* A filesystem the header could live on. */
typedef struct AdeOsvolPlace {
        bool mounted;
        char *fstype;
        char *disk;          /* the whole disk it is on ("sda"), NULL when unknown */
        uint64_t free_bytes; /* for root, as statvfs says */
        bool read_only;
} AdeOsvolPlace;

/* What ade_osvol_evaluate() reads. */
typedef struct AdeOsvolFacts {
        int error;           /* < 0: "/" could not be looked at; error_message says why */
        char *error_message; /* set with error */

        /* "/" in pid 1's mount table */
        char *root_source; /* as mountinfo says, e.g. "/dev/sda1" */
        char *root_fstype;
        dev_t root_devnum;
        char *root_name;       /* the block device's kernel name ("sda1", "dm-0") */
        char *root_dm_uuid;    /* a device-mapper device's DM UUID ("LVM-…", "CRYPT-…"), else NULL */
        char *root_dm_name;    /* its name in /dev/mapper */
        bool root_partition;   /* a partition of a disk */
        unsigned root_partnum; /* its number, 0 when not a partition */
        char *root_disk;       /* the whole disk ("sda"); NULL when not a partition */
        char *root_holder;     /* the first device that holds it (sysfs holders/), NULL when none */

        AdeOsvolPlace boot; /* /boot when a filesystem of its own */
        AdeOsvolPlace esp;  /* /boot/efi */

        /* what the boot path needs */
        bool initramfs_tools;      /* update-initramfs and its hook functions */
        bool cryptsetup_initramfs; /* the cryptroot hook (cryptsetup-initramfs) */
        bool grub;                 /* update-grub */
        bool ade_initramfs;        /* ade's own hook and boot script (initramfs/, shipped in the .deb) */
        bool identity_managed;     /* [identity] type = managed */
} AdeOsvolFacts;

/* Reads the facts about the system under @sysroot ("/" for this machine; a test passes a folder
 * laid out like one: proc/1/mountinfo, sys/dev/block/MAJ:MIN, usr/sbin/...). @identity_managed is
 * the configuration's. Returns 0 (a failure to read "/" is a fact, in ->error) or -ENOMEM. */
int ade_osvol_gather(const char *sysroot, bool identity_managed, AdeOsvolFacts *ret);
void ade_osvol_facts_done(AdeOsvolFacts *f);

/* Appends the OS volume's checks to @list, each named (os-root-found, os-root-partition,
 * os-root-held, os-root-filesystem, os-header-place, os-boot-tools, os-boot-unlock, os-identity)
 * with the root's
 * device as target, and says in *ret_path the path the volume takes: ADE_OSVOL_PATH_NONE when any
 * of them failed. 0 or -ENOMEM. No I/O. */
int ade_osvol_evaluate(const AdeOsvolFacts *f, AdeCheckList *list, AdeOsvolPath *ret_path);

/* What the OS volume's state record asks for, from the record (NULL: none) and whether "/" is
 * mounted from /dev/mapper/ade-root sitting on the record's device (docs/architecture.md §9):
 * the same decision at aded's start (resume or wait) and in Show (VMRestartPending). No I/O. */
typedef enum AdeOsvolNext {
        ADE_OSVOL_NEXT_NOTHING, /* no unfinished encryption of the root, or stopped before the escrow
                                 * (nothing was written) */
        ADE_OSVOL_NEXT_ENABLE,  /* Enable stopped after the escrow and before the boot files named
                                 * ade-root: the next boot would not open it; Enable again finishes */
        ADE_OSVOL_NEXT_RESTART, /* the header is initialised and the boot files written: the
                                 * reencryption waits for the reboot; never resumed nor opened here */
        ADE_OSVOL_NEXT_RESUME,  /* "/" is on /dev/mapper/ade-root: the reencryption continues online */
        _ADE_OSVOL_NEXT_MAX,
        _ADE_OSVOL_NEXT_INVALID = -EINVAL,
} AdeOsvolNext;

/* "nothing", "enable", "restart", "resume". */
const char *ade_osvol_next_to_string(AdeOsvolNext n);
AdeOsvolNext ade_osvol_next(const AdeStateVolume *record, bool root_on_mapper);
