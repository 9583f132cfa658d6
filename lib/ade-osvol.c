/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ade-fs.h"
#include "ade-io.h"
#include "ade-osvol.h"

static const char *const path_names[_ADE_OSVOL_PATH_MAX] = {
        [ADE_OSVOL_PATH_NONE] = "none",
        [ADE_OSVOL_PATH_BOOT] = "boot-header",
        [ADE_OSVOL_PATH_ESP] = "esp-header",
};

const char *ade_osvol_path_to_string(AdeOsvolPath p) {
        return p >= 0 && p < _ADE_OSVOL_PATH_MAX ? path_names[p] : NULL;
}

static void place_done(AdeOsvolPlace *p) {
        free(p->fstype);
        free(p->disk);
        *p = (AdeOsvolPlace){};
}

void ade_osvol_facts_done(AdeOsvolFacts *f) {
        free(f->error_message);
        free(f->root_source);
        free(f->root_fstype);
        free(f->root_name);
        free(f->root_dm_uuid);
        free(f->root_dm_name);
        free(f->root_disk);
        free(f->root_holder);
        place_done(&f->boot);
        place_done(&f->esp);
        *f = (AdeOsvolFacts){};
}

/* ---- gathering ---- */

/* The first line of @dir/@name, without its newline; 0 with NULL when the file is missing. */
static int read_line(const char *dir, const char *name, char **ret) {
        _cleanup_free_ char *path = NULL, *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f) {
                *ret = NULL;
                return errno == ENOENT ? 0 : -errno;
        }
        if (getline(&line, &size, f) < 0) {
                *ret = NULL;
                return ferror(f) ? -EIO : 0;
        }
        line[strcspn(line, "\n")] = '\0';
        *ret = TAKE_PTR(line);
        return 0;
}

static bool exists(const char *sysroot, const char *path) {
        _cleanup_free_ char *p = NULL;

        return asprintf(&p, "%s%s", sysroot, path) >= 0 && access(p, F_OK) == 0;
}

/* The sysfs folder of the block device @devnum, resolved (".../block/sda/sda1"). */
static int sysfs_dir(const char *sysroot, dev_t devnum, char **ret) {
        _cleanup_free_ char *link = NULL;
        char *real;

        if (asprintf(&link, "%s/sys/dev/block/%u:%u", sysroot, major(devnum), minor(devnum)) < 0)
                return -ENOMEM;
        real = realpath(link, NULL);
        if (!real)
                return -errno;
        *ret = real;
        return 0;
}

/* The whole disk of the partition whose sysfs folder is @dir: the folder above it. */
static int disk_of_partition(const char *dir, char **ret) {
        _cleanup_free_ char *copy = strdup(dir);

        if (!copy)
                return -ENOMEM;
        return ade_strdup_to(ret, basename(dirname(copy)));
}

/* The first entry of @dir/holders, NULL when there is none. */
static int first_holder(const char *dir, char **ret) {
        _cleanup_free_ char *path = NULL;
        DIR *d;
        struct dirent *de;
        int r = 0;

        *ret = NULL;
        if (asprintf(&path, "%s/holders", dir) < 0)
                return -ENOMEM;
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        r = ade_strdup_to(ret, de->d_name);
                        break;
                }
        closedir(d);
        return r;
}

/* /boot or /boot/efi: mounted as a filesystem of its own, on which disk, with how much room. */
static int gather_place(const char *sysroot, const char *mountinfo, const char *path, AdeOsvolPlace *ret) {
        _cleanup_(ade_fs_mount_entry_done) AdeFsMountEntry e = {};
        _cleanup_free_ char *dir = NULL, *partition = NULL, *where = NULL;
        struct statvfs sv;
        int r;

        r = ade_fs_mount_entry(mountinfo, path, &e);
        if (r <= 0)
                return r == -ENOMEM ? r : 0;
        ret->mounted = true;
        ret->fstype = TAKE_PTR(e.fstype);
        if (sysfs_dir(sysroot, e.devnum, &dir) >= 0) {
                r = read_line(dir, "partition", &partition);
                if (r == -ENOMEM)
                        return r;
                if (partition && disk_of_partition(dir, &ret->disk) < 0)
                        return -ENOMEM;
        }
        if (asprintf(&where, "%s%s", sysroot, path) < 0)
                return -ENOMEM;
        if (statvfs(where, &sv) >= 0) {
                ret->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
                ret->read_only = sv.f_flag & ST_RDONLY;
        }
        return 0;
}

int ade_osvol_gather(const char *sysroot, bool identity_managed, AdeOsvolFacts *ret) {
        _cleanup_(ade_fs_mount_entry_done) AdeFsMountEntry root = {};
        _cleanup_free_ char *mountinfo = NULL, *dir = NULL, *partition = NULL;
        AdeOsvolFacts f = {.identity_managed = identity_managed};
        int r;

        if (streq(sysroot, "/"))
                sysroot = "";
        if (asprintf(&mountinfo, "%s%s", sysroot, ADE_FS_SYSTEM_MOUNTINFO) < 0)
                return -ENOMEM;

        f.initramfs_tools = exists(sysroot, "/usr/sbin/update-initramfs") &&
                            exists(sysroot, "/usr/share/initramfs-tools/hook-functions");
        f.cryptsetup_initramfs = exists(sysroot, "/usr/share/initramfs-tools/hooks/cryptroot");
        f.grub = exists(sysroot, "/usr/sbin/update-grub");
        f.ade_initramfs = exists(sysroot, "/usr/share/initramfs-tools/hooks/ade") &&
                          exists(sysroot, "/usr/share/initramfs-tools/scripts/local-top/ade");

        r = ade_fs_mount_entry(mountinfo, "/", &root);
        if (r <= 0) {
                if (r == -ENOMEM)
                        return r;
                f.error = r < 0 ? r : -ENOENT;
                if (asprintf(&f.error_message, "%s: %s", mountinfo, r < 0 ? strerror(-r) : "nothing is mounted on /") <
                        0) {
                        ade_osvol_facts_done(&f);
                        return -ENOMEM;
                }
                *ret = f;
                return 0;
        }
        f.root_devnum = root.devnum;
        f.root_source = TAKE_PTR(root.source);
        f.root_fstype = TAKE_PTR(root.fstype);

        r = sysfs_dir(sysroot, f.root_devnum, &dir);
        if (r < 0) {
                f.error = r;
                if (asprintf(&f.error_message, "the block device %u:%u under / is not in sysfs: %s",
                            major(f.root_devnum), minor(f.root_devnum), strerror(-r)) < 0)
                        r = -ENOMEM;
        } else {
                _cleanup_free_ char *copy = strdup(dir);

                r = copy ? ade_strdup_to(&f.root_name, basename(copy)) : -ENOMEM;
                if (r >= 0)
                        r = read_line(dir, "dm/uuid", &f.root_dm_uuid);
                if (r >= 0)
                        r = read_line(dir, "dm/name", &f.root_dm_name);
                if (r >= 0)
                        r = read_line(dir, "partition", &partition);
                if (r >= 0 && partition) {
                        f.root_partition = true;
                        f.root_partnum = (unsigned)strtoul(partition, NULL, 10);
                        r = disk_of_partition(dir, &f.root_disk);
                }
                if (r >= 0)
                        r = first_holder(dir, &f.root_holder);
        }
        if (r >= 0)
                r = gather_place(sysroot, mountinfo, "/boot", &f.boot);
        if (r >= 0)
                r = gather_place(sysroot, mountinfo, "/boot/efi", &f.esp);
        if (r == -ENOMEM) {
                ade_osvol_facts_done(&f);
                return r;
        }
        *ret = f;
        return 0;
}

/* ---- judging ---- */

static bool fstype_in(const char *fstype, const char *const *list) {
        for (; fstype && *list; list++)
                if (streq(fstype, *list))
                        return true;
        return false;
}

/* Where the header would go, or why nowhere: the place's check. */
static int judge_place(const AdeOsvolFacts *f, AdeCheckList *list, const char *target, AdeOsvolPath *ret_path) {
        static const char *const boot_types[] = {"ext2", "ext3", "ext4", "xfs", "vfat", NULL};
        const AdeOsvolPlace *p;
        const char *where;
        AdeOsvolPath path;

        if (f->boot.mounted) {
                p = &f->boot;
                path = ADE_OSVOL_PATH_BOOT;
                where = "/boot";
        } else if (f->esp.mounted) {
                p = &f->esp;
                path = ADE_OSVOL_PATH_ESP;
                where = "the EFI system partition on /boot/efi";
        } else {
                *ret_path = ADE_OSVOL_PATH_NONE;
                return ade_check_list_add(list, "os-header-place", target, ADE_VERDICT_FAIL,
                        "there is no separate /boot and no EFI system partition on /boot/efi: the root's LUKS2 "
                        "header must live where the initramfs can read it, outside the root, and the root cannot "
                        "give up room for it while it runs; give the VM a /boot partition or boot it by UEFI");
        }
        *ret_path = ADE_OSVOL_PATH_NONE;
        if (!fstype_in(p->fstype, boot_types))
                return ade_check_list_add(list, "os-header-place", target, ADE_VERDICT_FAIL,
                        "%s is %s, a filesystem the initramfs does not read the header from (ext2, ext3, ext4, XFS "
                        "or vfat)",
                        where, strna(p->fstype));
        if (p->read_only)
                return ade_check_list_add(list, "os-header-place", target, ADE_VERDICT_FAIL,
                        "%s is mounted read-only: the header is written there; remount it read-write", where);
        if (f->root_disk && p->disk && !streq(f->root_disk, p->disk))
                return ade_check_list_add(list, "os-header-place", target, ADE_VERDICT_FAIL,
                        "%s is on %s, the root on %s: the header must travel with the OS disk (a snapshot or a "
                        "copy of one disk alone would not open)",
                        where, p->disk, f->root_disk);
        if (p->free_bytes < ADE_OSVOL_HEADER_ROOM)
                return ade_check_list_add(list, "os-header-place", target, ADE_VERDICT_FAIL,
                        "%s has %llu MiB free; the header and its backup need %llu MiB: free some room there "
                        "(old kernels: apt autoremove)",
                        where, (unsigned long long)(p->free_bytes >> 20), ADE_OSVOL_HEADER_ROOM >> 20);
        *ret_path = path;
        return ade_check_list_add(list, "os-header-place", target, ADE_VERDICT_OK,
                "the header goes to %s (%llu MiB free), on the OS disk; the root is not shrunk", where,
                (unsigned long long)(p->free_bytes >> 20));
}

int ade_osvol_evaluate(const AdeOsvolFacts *f, AdeCheckList *list, AdeOsvolPath *ret_path) {
        static const char *const root_types[] = {"ext4", "xfs", NULL};
        const char *target = f->root_source;
        AdeOsvolPath path = ADE_OSVOL_PATH_NONE;
        size_t first = list->n;
        int r;

        *ret_path = ADE_OSVOL_PATH_NONE;
        if (f->error < 0)
                return ade_check_list_add(list, "os-root-found", NULL, ADE_VERDICT_FAIL,
                        "cannot tell which device holds /: %s", strna(f->error_message));
        r = ade_check_list_add(list, "os-root-found", target, ADE_VERDICT_OK, "/ is %s (%s)", strna(f->root_source),
                strna(f->root_fstype));
        if (r < 0)
                return r;

        /* The device under /: a plain partition of a disk, nothing else. */
        if (f->root_dm_uuid && startswith(f->root_dm_uuid, "CRYPT-"))
                r = ade_check_list_add(list, "os-root-partition", target, ADE_VERDICT_FAIL,
                        "/ is on an encrypted mapping already (/dev/mapper/%s): it is not encrypted again",
                        strna(f->root_dm_name));
        else if (f->root_dm_uuid && startswith(f->root_dm_uuid, "LVM-"))
                r = ade_check_list_add(list, "os-root-partition", target, ADE_VERDICT_FAIL,
                        "/ is on the LVM logical volume %s: ade encrypts an OS volume only when / is a partition "
                        "of the OS disk",
                        strna(f->root_dm_name));
        else if (f->root_dm_uuid || (f->root_name && startswith(f->root_name, "dm-")))
                r = ade_check_list_add(list, "os-root-partition", target, ADE_VERDICT_FAIL,
                        "/ is on the device-mapper device %s: ade encrypts an OS volume only when / is a partition "
                        "of the OS disk",
                        strna(f->root_dm_name ?: f->root_name));
        else if (!f->root_partition)
                r = ade_check_list_add(list, "os-root-partition", target, ADE_VERDICT_FAIL,
                        "/ is on %s, which is not a partition of a disk: ade encrypts an OS volume only when / is "
                        "a partition of the OS disk",
                        strna(f->root_name));
        else
                r = ade_check_list_add(list, "os-root-partition", target, ADE_VERDICT_OK, "/ is partition %u of %s",
                        f->root_partnum, strna(f->root_disk));
        if (r < 0)
                return r;

        if (f->root_holder)
                r = ade_check_list_add(list, "os-root-held", target, ADE_VERDICT_FAIL,
                        "%s is held by %s (sysfs holders): stop what holds it, or it is not the OS volume ade can "
                        "encrypt",
                        strna(f->root_name), f->root_holder);
        else
                r = ade_check_list_add(
                        list, "os-root-held", target, ADE_VERDICT_OK, "nothing else holds %s", strna(f->root_name));
        if (r < 0)
                return r;

        if (fstype_in(f->root_fstype, root_types))
                r = ade_check_list_add(list, "os-root-filesystem", target, ADE_VERDICT_OK, "/ is %s", f->root_fstype);
        else
                r = ade_check_list_add(list, "os-root-filesystem", target, ADE_VERDICT_FAIL,
                        "/ is %s: ade encrypts an OS volume with ext4 or XFS", strna(f->root_fstype));
        if (r < 0)
                return r;

        r = judge_place(f, list, target, &path);
        if (r < 0)
                return r;

        if (f->initramfs_tools && f->cryptsetup_initramfs && f->grub)
                r = ade_check_list_add(list, "os-boot-tools", target, ADE_VERDICT_OK,
                        "initramfs-tools, cryptsetup-initramfs and grub are installed");
        else
                r = ade_check_list_add(list, "os-boot-tools", target, ADE_VERDICT_FAIL,
                        "the initramfs that opens the root is built with initramfs-tools and cryptsetup-initramfs, "
                        "and grub boots it; missing: %s%s%s; install them (apt-get install initramfs-tools "
                        "cryptsetup-initramfs grub2-common)",
                        f->initramfs_tools ? "" : "initramfs-tools ",
                        f->cryptsetup_initramfs ? "" : "cryptsetup-initramfs ", f->grub ? "" : "grub");
        if (r < 0)
                return r;

        /* Without ade's hook the initramfs has no way to the key: the root would ask for a passphrase
         * nobody knows at every boot. */
        if (f->ade_initramfs)
                r = ade_check_list_add(list, "os-boot-unlock", target, ADE_VERDICT_OK,
                        "ade's initramfs hook and boot script are installed: the initramfs opens the root with "
                        "the key from Key Vault");
        else
                r = ade_check_list_add(list, "os-boot-unlock", target, ADE_VERDICT_FAIL,
                        "ade's initramfs hook (/usr/share/initramfs-tools/hooks/ade) or its boot script "
                        "(scripts/local-top/ade) is missing, so the initramfs could not open the root; install "
                        "ade from its package (or \"make install\" with --prefix=/usr)");
        if (r < 0)
                return r;

        if (f->identity_managed)
                r = ade_check_list_add(list, "os-identity", target, ADE_VERDICT_OK,
                        "the initramfs takes its token from the VM's managed identity (IMDS)");
        else
                r = ade_check_list_add(list, "os-identity", target, ADE_VERDICT_FAIL,
                        "the initramfs takes its token from IMDS only: a client secret or certificate is never "
                        "copied to the unencrypted boot partition; set [identity] type = managed and give the VM's "
                        "identity access to the vault");
        if (r < 0)
                return r;

        /* The list may hold other checks before ours: only ours decide. */
        for (size_t i = first; i < list->n; i++)
                if (list->checks[i].verdict == ADE_VERDICT_FAIL)
                        return 0;
        *ret_path = path;
        return 0;
}

static const char *const next_names[_ADE_OSVOL_NEXT_MAX] = {
        [ADE_OSVOL_NEXT_NOTHING] = "nothing",
        [ADE_OSVOL_NEXT_ENABLE] = "enable",
        [ADE_OSVOL_NEXT_RESTART] = "restart",
        [ADE_OSVOL_NEXT_RESUME] = "resume",
};

const char *ade_osvol_next_to_string(AdeOsvolNext n) {
        return n >= 0 && n < _ADE_OSVOL_NEXT_MAX ? next_names[n] : NULL;
}

AdeOsvolNext ade_osvol_next(const AdeStateVolume *record, bool root_on_mapper) {
        if (!record || record->kind != ADE_JOB_ENCRYPT || record->step == ADE_STEP_DONE ||
                record->step < ADE_STEP_ESCROW)
                return ADE_OSVOL_NEXT_NOTHING;
        /* The initramfs opened it: the header exists and is the one the boot took, whatever step
         * the record got to before the reboot. */
        if (root_on_mapper)
                return ADE_OSVOL_NEXT_RESUME;
        /* ADE_STEP_HEADER is recorded only once the boot files name ade-root (aded-encrypt.c). */
        return record->step >= ADE_STEP_HEADER ? ADE_OSVOL_NEXT_RESTART : ADE_OSVOL_NEXT_ENABLE;
}
