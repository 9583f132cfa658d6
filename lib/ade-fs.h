/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ade-util.h"

/* Filesystems on a block device: probing with libblkid, and the one place where ade runs programs
 * (e2fsck, resize2fs, mkfs.*). Programs get a fixed argv (no shell), their stdout+stderr are
 * captured and returned through *ret_output when they fail, so that a person sees why.
 *
 * Every function takes a block device (a loop device in tests), never an image file: resize2fs
 * on a file truncates it to the new size. */

typedef struct AdeFsInfo {
        char *type; /* "ext4", "xfs", "swap", "crypto_LUKS", ...; NULL when nothing is found */
        char *uuid;
        char *label;
        char *usage;     /* "filesystem", "crypto", "raid", "other"; NULL when nothing is found */
        char *part_uuid; /* a partition's entry UUID (GPT PARTUUID; MBR "<disk id>-<nn>"), else NULL */
} AdeFsInfo;

void ade_fs_info_done(AdeFsInfo *i);

/* Probes @device with libblkid (superblocks, no cache). Nothing found is success with all NULL.
 * Two signatures that contradict each other are -EUCLEAN. */
int ade_fs_probe(const char *device, AdeFsInfo *ret);

/* True for ext2, ext3 and ext4: the filesystems resize2fs can shrink. */
bool ade_fs_is_ext(const char *type);

/* Checks an ext filesystem with e2fsck -f. @repair false: "-n", read-only, no journal replay (for
 * plans and dry runs). @repair true: "-p", fixes what is safe, as resize2fs requires before a
 * shrink (the writing path, once writing is allowed). 0 when the filesystem is (now) clean,
 * -EUCLEAN when it has errors e2fsck will not fix unattended (its output in *ret_output). */
int ade_fs_check(const char *device, bool repair, char **ret_output);

/* Runs "resize2fs -P" and returns the minimum size of the filesystem in bytes, and its current size
 * (from the superblock block count) in *ret_size. Read-only. */
int ade_fs_min_size(const char *device, uint64_t *ret_min, uint64_t *ret_size, char **ret_output);

/* Runs "resize2fs @device <new_size>K" (never -f). The filesystem must have been checked with
 * ade_fs_check(repair=true) since it was last mounted, or resize2fs refuses. @new_size must be a
 * multiple of 1 KiB. */
int ade_fs_shrink(const char *device, uint64_t new_size, char **ret_output);

/* Runs "resize2fs @device" to grow the filesystem to the whole device (undo of a shrink). */
int ade_fs_grow(const char *device, char **ret_output);

/* Makes a new filesystem of @type ("ext2/3/4" or "xfs") on @device with @label (may be NULL) and
 * @uuid (may be NULL: a new one). -EOPNOTSUPP for other types. */
int ade_fs_make(const char *device, const char *type, const char *label, const char *uuid, char **ret_output);

/* Runs @argv[0] (an absolute path, or looked up in /usr/sbin:/sbin:/usr/bin:/bin) with @argv,
 * stdin from /dev/null, stdout and stderr captured together. Returns the exit status (>= 0), or a
 * negative errno when it could not be run or was killed. *ret_output (optional) always gets the
 * output on success of the call. */
int ade_fs_run(char *const argv[], char **ret_output);

/* How many programs ade_fs_run() runs right now (in any thread). They finish whatever signal the
 * service gets: a stopping daemon extends its stop timeout while this is not 0. */
unsigned ade_fs_programs_running(void);

/* Erases every signature libblkid finds on @device (LUKS headers, filesystem magic), as
 * "wipefs -a" would, leaving all other bytes alone. Used once a header was exported, so that the
 * device stops looking like LUKS while its data moves. */
int ade_fs_wipe_signatures(const char *device);

/* Mounts @device on @path as @fstype, with @options written as in fstab ("rw,noatime,errors=remount-ro";
 * NULL or "" for the defaults): the VFS options (ro, nosuid, nodev, noexec, noatime, relatime, ...)
 * become mount(2) flags, those only mount(8) reads (defaults, auto, noauto, nofail, _netdev, user,
 * x-*, comment=...) are dropped, and the rest goes to the filesystem. @path must be a directory
 * reached without a symbolic link anywhere on the way (-ELOOP otherwise), and the mount goes on the
 * directory that was opened. Returns 0 or the negative errno of mount(2). */
int ade_fs_mount(const char *device, const char *path, const char *fstype, const char *options);

/* As ade_fs_mount(), and when that fails with @options, once more with only the options that protect
 * the system (ade_fs_options_security()): a filesystem put back after an operation must not stay
 * unmounted over an option the kernel refuses now, nor come back with set-uid programs or device
 * nodes it was mounted without. Returns 0 or the last attempt's negative errno. */
int ade_fs_mount_or_defaults(const char *device, const char *path, const char *fstype, const char *options);

/* Of @options (fstab's syntax; may be NULL), "ro", "nosuid", "nodev" and "noexec", in their order: a
 * new string, "" when none; NULL when out of memory. */
char *ade_fs_options_security(const char *options);

/* Unmounts the filesystem mounted on @path (umount2(), no flags: a busy filesystem stays). Returns 0
 * or the negative errno of umount2(2) (-EBUSY while something uses it). */
int ade_fs_unmount(const char *path);

/* Unmounts @path as ade_fs_unmount() does, and while it is busy tries again every 100 ms for up to
 * @timeout_usec: something that touches the filesystem now and then must not fail the caller at
 * once. Still busy then: -EBUSY, with the processes that use it in *ret_holders (optional; NULL when
 * none are found, see ade_fs_holders()). */
int ade_fs_unmount_patiently(const char *path, uint64_t timeout_usec, char **ret_holders);

/* The processes other than ours that use the filesystem holding @path (their working folder, root,
 * program, an open or mapped file), as "pid 812 (less), pid 913 (bash)", at most ten and then
 * "and N more", in *ret (NULL when none). Returns how many, or a negative errno. Processes whose
 * /proc entries we may not read are not found. */
int ade_fs_holders(const char *path, char **ret);

/* ---- where filesystems are mounted: mountinfo and fstab ----
 *
 * Each function that reads a file takes its path, NULL for the system's (/proc/self/mountinfo,
 * /etc/fstab), so that tests can give it their own. */

/* ade_fs_mount_of: where the block device @devnum is mounted (its first mount) and that mount's VFS
 * options ("rw,nosuid,relatime"); 1 with both strings, 0 (NULLs) when it is not mounted.
 * ade_fs_mounted_on: whether anything is mounted exactly on @path (canonical, as mountinfo writes
 * it); 1 with the device number of the topmost mount there in *ret_devnum (optional), 0 when nothing
 * is. Both return a negative errno when @mountinfo cannot be read. */
int ade_fs_mount_of(const char *mountinfo, dev_t devnum, char **ret_path, char **ret_options);
int ade_fs_mounted_on(const char *mountinfo, const char *path, dev_t *ret_devnum);

/* The topmost mount on @path (canonical) in @mountinfo: its device number, filesystem type and
 * source as mountinfo gives them (either string NULL when the line lacks it). 1 with *ret filled
 * (optional), 0 when nothing is mounted there, a negative errno when @mountinfo cannot be read. */
typedef struct AdeFsMountEntry {
        dev_t devnum;
        char *fstype;
        char *source;
} AdeFsMountEntry;
int ade_fs_mount_entry(const char *mountinfo, const char *path, AdeFsMountEntry *ret);
void ade_fs_mount_entry_done(AdeFsMountEntry *e);

/* The mount table of pid 1's mount namespace: the system's, whatever namespace we run in. */
#define ADE_FS_SYSTEM_MOUNTINFO "/proc/1/mountinfo"

/* Whether the block device @devnum is mounted in our mount namespace or in the system's (pid 1's),
 * which differ when we were started in a namespace of our own: 1 with the mount point in *ret_path
 * (optional), 0 when it is mounted in neither, a negative errno when either table cannot be read
 * (so that a caller about to write refuses rather than guesses). ade_fs_check() with @repair,
 * ade_fs_shrink() refuse a device mounted in either (-EBUSY, with a sentence in *ret_output). */
int ade_fs_mounted_anywhere(dev_t devnum, char **ret_path);

/* 1 when this process runs in pid 1's mount namespace (so that what it mounts and unmounts is
 * mounted and unmounted for the system), 0 when in another, a negative errno when either cannot be
 * read. */
int ade_fs_mount_namespace_is_system(void);

/* A filesystem as fstab may name it: its block device, and the UUID and label on it. */
typedef struct AdeFsId {
        dev_t devnum;
        const char *uuid;  /* NULL when it has none */
        const char *label; /* NULL when it has none */
} AdeFsId;

/* Whether fstab's device field @spec names the filesystem @id: "UUID=" (case ignored), "LABEL=",
 * "PARTUUID=" and "PARTLABEL=" (through their /dev/disk links), or a path to its block device. */
bool ade_fs_spec_names(const char *spec, const AdeFsId *id);

/* Where the filesystem @id belongs, so that it can be mounted there again later (after a reboot,
 * once it is encrypted): where it is mounted now, with that mount's VFS options, or fstab's options
 * when fstab mounts it at that place; else where fstab mounts it at boot, from an entry without
 * "noauto" (nobody wants that one mounted unasked). Never "/" nor swap. Returns 0 with both strings,
 * or NULLs when it belongs nowhere (a missing fstab is no error); a negative errno when @mountinfo
 * cannot be read. */
int ade_fs_mount_target(
        const AdeFsId *id, const char *fstab, const char *mountinfo, char **ret_path, char **ret_options);

/* Where an opened volume's filesystem (on a mapper device) stands against the mount point that the
 * state file recorded for it: read by ade_fs_mount_check_read(), judged by
 * ade_fs_mount_check_verdict(), which does no I/O. */
typedef struct AdeFsMountCheck {
        char *mounted_on; /* where the mapper is mounted now (its first mount), or NULL */
        char *canonical;  /* the mount point with its links resolved; NULL when it does not exist */
        bool directory;   /* @canonical is a directory */
        bool busy;        /* something is mounted exactly on @canonical: the device @busy_devnum */
        dev_t busy_devnum;
} AdeFsMountCheck;

void ade_fs_mount_check_done(AdeFsMountCheck *c);

/* Reads the facts for the mapper device @mapper and @mount_point from @mountinfo and the file
 * system. Returns 0, or a negative errno when @mountinfo cannot be read. */
int ade_fs_mount_check_read(dev_t mapper, const char *mount_point, const char *mountinfo, AdeFsMountCheck *ret);

/* Whether the volume open on @mapper (/dev/mapper/NAME, for the sentence) can be mounted on
 * @mount_point: 1 when it is mounted there already, 0 when it can be mounted now. Otherwise a
 * negative errno and, in *ret_why, a sentence for a person naming @mapper and @mount_point and what
 * to do: -EALREADY (mounted elsewhere: aded leaves it there), -ENOENT or -ENOTDIR (no directory at
 * @mount_point), -ELOOP (its real path differs: a symbolic link on the way), -EBUSY (something else
 * is mounted on it); -ENOMEM without a sentence. */
int ade_fs_mount_check_verdict(const AdeFsMountCheck *c, const char *mapper, const char *mount_point, char **ret_why);

/* Both, for the block device @mapper and /proc/self/mountinfo. -ENODEV (no sentence) when @mapper is
 * not a block device. */
int ade_fs_mount_check(const char *mapper, const char *mount_point, char **ret_why);
