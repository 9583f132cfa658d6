/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-config.h"
#include "ade-util.h"

/* Volumes: what ade may encrypt, found through sd-device (sysfs) and described with what libblkid
 * reads from the device itself. Everything here is read-only: no mount, no journal replay, no
 * write to any device. A device that cannot be encrypted is still described, with the reason. */

/* Volumes smaller than this are never encrypted: the LUKS2 header and the datashift need 32 MiB. */
#define ADE_VOLUME_SIZE_MIN (150ULL * 1024ULL * 1024ULL)

typedef enum AdeVolumeType {
        ADE_VOLUME_OS,       /* the device under / */
        ADE_VOLUME_DATA,     /* a data disk, an fstab filesystem on another disk, or [volumes] data */
        ADE_VOLUME_RESOURCE, /* Azure's temporary resource disk (only format-all takes it) */
        _ADE_VOLUME_TYPE_MAX,
        _ADE_VOLUME_TYPE_INVALID = -EINVAL,
} AdeVolumeType;

/* "OS", "Data", "Resource" (ADE's names, as on the wire). from_string ignores case. */
const char *ade_volume_type_to_string(AdeVolumeType t);
AdeVolumeType ade_volume_type_from_string(const char *s);

/* Why a volume is not eligible. ADE_VOLUME_ELIGIBLE (0) when it is. */
typedef enum AdeVolumeSkip {
        ADE_VOLUME_ELIGIBLE,
        ADE_VOLUME_SKIP_NOT_BLOCK,  /* not a block device, or gone */
        ADE_VOLUME_SKIP_BEK,        /* the BEK VOLUME that holds ADE's key files */
        ADE_VOLUME_SKIP_RESOURCE,   /* the resource disk, unless format-all */
        ADE_VOLUME_SKIP_SWAP,       /* swap space */
        ADE_VOLUME_SKIP_LUKS,       /* already LUKS (has a LUKS header on it) */
        ADE_VOLUME_SKIP_TOO_SMALL,  /* under ADE_VOLUME_SIZE_MIN */
        ADE_VOLUME_SKIP_HOLDERS,    /* something holds it (dm, md, a partition table in use) */
        ADE_VOLUME_SKIP_READ_ONLY,  /* the block device is read-only */
        ADE_VOLUME_SKIP_UNKNOWN_FS, /* a signature we do not know (RAID member, LVM PV, ...) */
        _ADE_VOLUME_SKIP_MAX,
        _ADE_VOLUME_SKIP_INVALID = -EINVAL,
} AdeVolumeSkip;

/* Short token for logs and state files: "eligible", "bek", "resource", "swap", "luks", "too-small",
 * "holders", "read-only", "unknown-fs", "not-block". */
const char *ade_volume_skip_to_string(AdeVolumeSkip s);

typedef struct AdeVolume {
        char *device;     /* the node the engine opens: /dev/sdc1, /dev/loop3 (canonical path) */
        char *stable_id;  /* survives reboots and renames: /dev/disk/azure/scsi1/lun0-part1, then
                           * /dev/disk/by-id/..., then /dev/disk/by-partuuid/...; for a loop device
                           * without such a link "loop:MAJ:MIN:INODE:OFFSET" of its backing file;
                           * @device when none (ade_volume_stable_id()) */
        uint64_t size;    /* bytes */
        char *fstype;     /* libblkid TYPE: "ext4", "xfs", "swap", "crypto_LUKS", ...; NULL when none */
        char *fs_uuid;    /* filesystem (or LUKS) UUID, NULL when none */
        char *label;      /* filesystem label, NULL when none */
        char *mountpoint; /* where it is mounted now (from /proc/self/mountinfo), or NULL */
        int lun;          /* Azure data-disk LUN (from /dev/disk/azure/scsi1/lunN), or -1 */
        AdeVolumeType type;
        AdeVolumeSkip skip; /* ADE_VOLUME_ELIGIBLE when it may be encrypted */
        char *reason;       /* a sentence for a person when skip != ELIGIBLE, naming the device */
} AdeVolume;

/* Describes one device, given by any path that resolves to a block device (symlinks under
 * /dev/disk/ are followed). @type is what the caller takes it for (from discovery or [volumes]);
 * @format_all says whether the resource disk counts as eligible. Returns 0, -ENOENT when the path
 * does not exist, -ENOTBLK when it is not a block device (then nothing is returned: a caller who
 * wants to report it uses the error), or another negative errno. A device that exists but is not
 * eligible is returned with skip and reason set: that is not an error. */
int ade_volume_probe(const char *device, AdeVolumeType type, bool format_all, AdeVolume **ret);

/* Lists the volumes of this machine: the OS volume (the device under /), data volumes (mounted
 * filesystems of other disks listed in fstab, never on a device-mapper device such as the
 * mapping of a volume ade encrypted, and the Azure data disks under /dev/disk/azure/scsi1/lun*),
 * and the resource disk; each classified. When @config has [volumes]
 * os or data set, those devices replace discovery for that type, taken as given (mounted or not).
 * Returns 0 and a NULL-terminated vector (possibly empty) in *ret, or a negative errno. */
int ade_volume_discover(const AdeConfig *config, bool format_all, AdeVolume ***ret);

AdeVolume *ade_volume_free(AdeVolume *v);
static inline void ade_volume_freep(AdeVolume **v) {
        ade_volume_free(*v);
}
/* A deep copy of @v, for a thread that must not share the original with its owner. */
int ade_volume_copy(const AdeVolume *v, AdeVolume **ret);
void ade_volume_free_many(AdeVolume **l);
static inline void ade_volume_free_manyp(AdeVolume ***l) {
        ade_volume_free_many(*l);
}

/* The stable id of the block device at @device (see AdeVolume.stable_id) and its Azure LUN (-1 when
 * none; @ret_lun optional). -ENOENT when @device does not exist, -ENOTBLK when it is no block
 * device. The state file keys its records by it, and a detached header's token names it. */
int ade_volume_stable_id(const char *device, char **ret, int *ret_lun);

/* When "/" is mounted from the device-mapper device /dev/mapper/@name (the OS volume opened by the
 * initramfs as "ade-root", docs/architecture.md §9) and that mapping sits on exactly one device
 * that is not a mapping (followed through the helper mappings an online reencryption stacks under
 * it): 1 and that device's number in *ret (optional). 0 when "/" is mounted from anything else (a
 * partition, another mapping, a virtual filesystem), or a negative errno when sysfs cannot be read. */
int ade_volume_root_mapper_backing(const char *name, dev_t *ret);

/* The same judgement for the block device @devnum, reading sysfs under @sysfs ("/sys"; tests pass
 * a folder laid out like it: dev/block/MAJ:MIN/{dm/name,slaves/<x>/dev}). */
int ade_volume_mapping_backing(const char *sysfs, dev_t devnum, const char *name, dev_t *ret);

/* True when anything holds @device: /sys/class/block/<dev>/holders is not empty, or (for a whole
 * disk) one of its partitions is held or mounted. Returns 1, 0 or a negative errno. */
int ade_volume_has_holders(const char *device);
