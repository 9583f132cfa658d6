/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/loop.h>
#include <mntent.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-device.h>

#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-volume.h"

/* ADE's key-file volume carries this label; it must never be encrypted. */
#define BEK_LABEL "BEK VOLUME"

static const char *const type_table[_ADE_VOLUME_TYPE_MAX] = {
        [ADE_VOLUME_OS] = "OS",
        [ADE_VOLUME_DATA] = "Data",
        [ADE_VOLUME_RESOURCE] = "Resource",
};

static const char *const skip_table[_ADE_VOLUME_SKIP_MAX] = {
        [ADE_VOLUME_ELIGIBLE] = "eligible",
        [ADE_VOLUME_SKIP_NOT_BLOCK] = "not-block",
        [ADE_VOLUME_SKIP_BEK] = "bek",
        [ADE_VOLUME_SKIP_RESOURCE] = "resource",
        [ADE_VOLUME_SKIP_SWAP] = "swap",
        [ADE_VOLUME_SKIP_LUKS] = "luks",
        [ADE_VOLUME_SKIP_TOO_SMALL] = "too-small",
        [ADE_VOLUME_SKIP_HOLDERS] = "holders",
        [ADE_VOLUME_SKIP_READ_ONLY] = "read-only",
        [ADE_VOLUME_SKIP_UNKNOWN_FS] = "unknown-fs",
};

const char *ade_volume_type_to_string(AdeVolumeType t) {
        return t >= 0 && t < _ADE_VOLUME_TYPE_MAX ? type_table[t] : NULL;
}

AdeVolumeType ade_volume_type_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _ADE_VOLUME_TYPE_MAX; i++)
                        if (strcaseeq(s, type_table[i]))
                                return (AdeVolumeType)i;
        return _ADE_VOLUME_TYPE_INVALID;
}

const char *ade_volume_skip_to_string(AdeVolumeSkip s) {
        return s >= 0 && s < _ADE_VOLUME_SKIP_MAX ? skip_table[s] : NULL;
}

AdeVolume *ade_volume_free(AdeVolume *v) {
        if (!v)
                return NULL;
        free(v->device);
        free(v->stable_id);
        free(v->fstype);
        free(v->fs_uuid);
        free(v->label);
        free(v->mountpoint);
        free(v->reason);
        free(v);
        return NULL;
}

int ade_volume_copy(const AdeVolume *v, AdeVolume **ret) {
        AdeVolume *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        *c = (AdeVolume){.size = v->size, .lun = v->lun, .type = v->type, .skip = v->skip};
        if (ade_strdup_to(&c->device, v->device) < 0 || ade_strdup_to(&c->stable_id, v->stable_id) < 0 ||
                ade_strdup_to(&c->fstype, v->fstype) < 0 || ade_strdup_to(&c->fs_uuid, v->fs_uuid) < 0 ||
                ade_strdup_to(&c->label, v->label) < 0 || ade_strdup_to(&c->mountpoint, v->mountpoint) < 0 ||
                ade_strdup_to(&c->reason, v->reason) < 0) {
                ade_volume_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void ade_volume_free_many(AdeVolume **l) {
        if (!l)
                return;
        for (AdeVolume **i = l; *i; i++)
                ade_volume_free(*i);
        free(l);
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
static void endmntentp(FILE **f) {
        if (*f)
                endmntent(*f);
}

static bool dir_is_empty(const char *path) {
        _cleanup_(closedirp) DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return true;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        return false;
        return true;
}

/* Where the block device @devnum is mounted: in our mount table or the system's (pid 1's), so that a
 * volume the system uses never looks free to an aded started in a namespace of its own. */
static int mountpoint_of(dev_t devnum, char **ret) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = ade_fs_mounted_anywhere(devnum, &path);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(path);
        return r;
}

static bool is_active_swap(const char *device) {
        _cleanup_fclose_ FILE *f = fopen("/proc/swaps", "re");
        char line[4096], name[PATH_MAX];

        if (!f)
                return false;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "%4095s", name) == 1 && name[0] == '/') {
                        struct stat a, b;
                        if (stat(name, &a) == 0 && stat(device, &b) == 0 && S_ISBLK(a.st_mode) &&
                                a.st_rdev == b.st_rdev)
                                return true;
                }
        return false;
}

/* The first symlink under the folders below that points at @devnum, in order of preference. */
static int stable_id_of(dev_t devnum, char **ret, int *ret_lun) {
        static const char *const patterns[] = {
                "/dev/disk/azure/scsi1/lun*",
                "/dev/disk/by-id/*",
                "/dev/disk/by-partuuid/*",
                "/dev/disk/by-uuid/*",
        };

        *ret = NULL;
        *ret_lun = -1;
        for (size_t i = 0; i < ELEMENTSOF(patterns); i++) {
                glob_t g = {};

                if (glob(patterns[i], 0, NULL, &g) != 0) {
                        globfree(&g);
                        continue;
                }
                for (size_t j = 0; j < g.gl_pathc; j++) {
                        struct stat st;
                        if (stat(g.gl_pathv[j], &st) < 0 || !S_ISBLK(st.st_mode) || st.st_rdev != devnum)
                                continue;
                        *ret = strdup(g.gl_pathv[j]);
                        if (i == 0) {
                                const char *p = strrchr(g.gl_pathv[j], '/') + strlen("/lun");
                                *ret_lun = atoi(p);
                        }
                        globfree(&g);
                        return *ret ? 0 : -ENOMEM;
                }
                globfree(&g);
        }
        return 0;
}

/* A loop device has no link under /dev/disk without udev, and its /dev/loopN name goes to whichever
 * image is attached next: its identity is the file behind it (device, inode, offset), which is the
 * same under any loop name and different for any other image. */
static int loop_stable_id(const char *device, dev_t devnum, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        struct loop_info64 info = {};

        *ret = NULL;
        if (major(devnum) != 7) /* LOOP_MAJOR */
                return 0;
        fd = open(device, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || ioctl(fd, LOOP_GET_STATUS64, &info) < 0)
                return 0; /* not attached: nothing better than its name */
        if (asprintf(ret, "loop:%u:%u:%" PRIu64 ":%" PRIu64, major((dev_t)info.lo_device), minor((dev_t)info.lo_device),
                    (uint64_t)info.lo_inode, (uint64_t)info.lo_offset) < 0)
                return -ENOMEM;
        return 0;
}

int ade_volume_stable_id(const char *device, char **ret, int *ret_lun) {
        _cleanup_free_ char *id = NULL, *canon = NULL;
        struct stat st;
        int lun = -1, r;

        assert(device);
        assert(ret);

        if (stat(device, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        r = stable_id_of(st.st_rdev, &id, &lun);
        if (r >= 0 && !id)
                r = loop_stable_id(device, st.st_rdev, &id);
        if (r < 0)
                return r;
        if (!id) {
                if (startswith(device, "/dev/disk/"))
                        id = strdup(device);
                else if ((canon = realpath(device, NULL)))
                        id = TAKE_PTR(canon);
                else
                        return -errno;
                if (!id)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(id);
        if (ret_lun)
                *ret_lun = lun;
        return 0;
}

static bool is_azure_resource(dev_t devnum) {
        static const char *const links[] = {
                "/dev/disk/azure/resource",
                "/dev/disk/azure/resource-part1",
                "/dev/disk/cloud/azure_resource",
                "/dev/disk/cloud/azure_resource-part1",
        };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                struct stat st;
                if (stat(links[i], &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == devnum)
                        return true;
        }
        return false;
}

int ade_volume_has_holders(const char *device) {
        _cleanup_(sd_device_unrefp) sd_device *d = NULL;
        _cleanup_free_ char *holders = NULL;
        const char *syspath, *devtype = NULL;
        int r;

        r = sd_device_new_from_devname(&d, device);
        if (r < 0)
                return r;
        r = sd_device_get_syspath(d, &syspath);
        if (r < 0)
                return r;
        if (asprintf(&holders, "%s/holders", syspath) < 0)
                return -ENOMEM;
        if (!dir_is_empty(holders))
                return 1;

        /* A whole disk is busy when one of its partitions is held or mounted. */
        (void)sd_device_get_devtype(d, &devtype);
        if (streq_ptr(devtype, "disk")) {
                _cleanup_(closedirp) DIR *dir = opendir(syspath);
                const char *sysname;
                struct dirent *de;

                if (!dir || sd_device_get_sysname(d, &sysname) < 0)
                        return 0;
                while ((de = readdir(dir))) {
                        _cleanup_free_ char *p = NULL, *devfile = NULL, *mnt = NULL;
                        unsigned maj, min;
                        FILE *f;

                        if (!startswith(de->d_name, sysname))
                                continue;
                        if (asprintf(&p, "%s/%s/holders", syspath, de->d_name) < 0 ||
                                asprintf(&devfile, "%s/%s/dev", syspath, de->d_name) < 0)
                                return -ENOMEM;
                        if (!dir_is_empty(p))
                                return 1;
                        f = fopen(devfile, "re");
                        if (!f)
                                continue;
                        r = fscanf(f, "%u:%u", &maj, &min);
                        fclose(f);
                        if (r == 2 && mountpoint_of(makedev(maj, min), &mnt) > 0)
                                return 1;
                }
        }
        return 0;
}

static int set_skip(AdeVolume *v, AdeVolumeSkip skip, const char *fmt, ...) _printf_(3, 4);
static int set_skip(AdeVolume *v, AdeVolumeSkip skip, const char *fmt, ...) {
        va_list ap;
        int r;

        v->skip = skip;
        free(v->reason);
        va_start(ap, fmt);
        r = vasprintf(&v->reason, fmt, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : 0;
}

int ade_volume_probe(const char *device, AdeVolumeType type, bool format_all, AdeVolume **ret) {
        _cleanup_(sd_device_unrefp) sd_device *d = NULL;
        _cleanup_(ade_volume_freep) AdeVolume *v = NULL;
        _cleanup_(ade_fs_info_done) AdeFsInfo fs = {};
        _cleanup_free_ char *canon = NULL;
        const char *ro = NULL, *sz = NULL;
        uint64_t sectors = 0;
        struct stat st;
        int r;

        assert(device);
        assert(ret);

        if (stat(device, &st) < 0)
                return ade_log_debug_errno(errno, "Cannot find %s: %m", device);
        if (!S_ISBLK(st.st_mode))
                return ade_log_debug_errno(ENOTBLK, "%s is not a block device", device);
        canon = realpath(device, NULL);
        if (!canon)
                return -errno;

        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->type = type;
        v->lun = -1;
        v->device = TAKE_PTR(canon);

        r = ade_volume_stable_id(device, &v->stable_id, &v->lun);
        if (r < 0)
                return r;

        r = sd_device_new_from_devnum(&d, 'b', st.st_rdev);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot find %s in sysfs: %m", v->device);
        if (sd_device_get_sysattr_value(d, "size", &sz) >= 0)
                (void)sscanf(sz, "%" SCNu64, &sectors);
        v->size = sectors * 512;

        r = mountpoint_of(st.st_rdev, &v->mountpoint);
        if (r < 0)
                return r;

        r = ade_fs_probe(v->device, &fs);
        if (r < 0 && r != -EUCLEAN)
                return r;
        v->fstype = TAKE_PTR(fs.type);
        v->fs_uuid = TAKE_PTR(fs.uuid);
        v->label = TAKE_PTR(fs.label);

        /* The skip rules, most specific first: the first that applies is the reason given. */
        if (r == -EUCLEAN)
                r = set_skip(v, ADE_VOLUME_SKIP_UNKNOWN_FS, "%s carries contradicting signatures; check it with wipefs",
                        v->device);
        else if (streq_ptr(v->label, BEK_LABEL))
                r = set_skip(v, ADE_VOLUME_SKIP_BEK, "%s is the BEK volume that holds key files", v->device);
        else if ((type == ADE_VOLUME_RESOURCE || is_azure_resource(st.st_rdev)) && !format_all)
                r = set_skip(v, ADE_VOLUME_SKIP_RESOURCE,
                        "%s is the resource disk; only format-all encrypts it (its data is temporary)", v->device);
        else if (streq_ptr(v->fstype, "swap") || is_active_swap(v->device))
                r = set_skip(v, ADE_VOLUME_SKIP_SWAP, "%s is swap space; it is not encrypted in place", v->device);
        else if (streq_ptr(v->fstype, "crypto_LUKS"))
                r = set_skip(v, ADE_VOLUME_SKIP_LUKS, "%s is already LUKS-encrypted", v->device);
        else if (v->size < ADE_VOLUME_SIZE_MIN)
                r = set_skip(v, ADE_VOLUME_SKIP_TOO_SMALL, "%s has %" PRIu64 " MiB; volumes under %llu MiB are skipped",
                        v->device, v->size >> 20, ADE_VOLUME_SIZE_MIN >> 20);
        else if (ade_volume_has_holders(v->device) > 0)
                r = set_skip(v, ADE_VOLUME_SKIP_HOLDERS,
                        "%s is in use by another device (device-mapper, RAID or a mounted partition)", v->device);
        else if (sd_device_get_sysattr_value(d, "ro", &ro) >= 0 && streq(ro, "1"))
                r = set_skip(v, ADE_VOLUME_SKIP_READ_ONLY, "%s is read-only", v->device);
        else if (v->fstype && !streq_ptr(fs.usage, "filesystem") && !format_all)
                r = set_skip(v, ADE_VOLUME_SKIP_UNKNOWN_FS, "%s holds %s, which ade does not encrypt in place",
                        v->device, v->fstype);
        else
                r = 0;
        if (r < 0)
                return r;

        *ret = TAKE_PTR(v);
        return 0;
}

static int push(AdeVolume ***l, size_t *n, AdeVolume *v) {
        AdeVolume **nl = realloc(*l, (*n + 2) * sizeof(AdeVolume *));

        if (!nl)
                return -ENOMEM;
        nl[(*n)++] = v;
        nl[*n] = NULL;
        *l = nl;
        return 0;
}

static bool listed(AdeVolume **l, size_t n, const char *device) {
        struct stat a, b;

        if (stat(device, &a) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (stat(l[i]->device, &b) == 0 && a.st_rdev == b.st_rdev)
                        return true;
        return false;
}

/* The whole disk that @devnum belongs to (itself when it is a disk). */
static dev_t disk_of(dev_t devnum) {
        _cleanup_(sd_device_unrefp) sd_device *d = NULL;
        sd_device *parent = NULL;
        dev_t r = devnum;

        if (sd_device_new_from_devnum(&d, 'b', devnum) < 0)
                return devnum;
        if (sd_device_get_parent_with_subsystem_devtype(d, "block", "disk", &parent) >= 0)
                (void)sd_device_get_devnum(parent, &r);
        return r;
}

/* The devices at the bottom of the mapping @devnum (sysfs under @sysfs): itself when it is no
 * device-mapper device, else those under its slaves, recursively. A mapping in the middle of an
 * online reencryption sits on helper mappings of libcryptsetup's (<name>-overlay,
 * <name>-hotzone-*) that all end on the one partition. *n grows; the first leaf found is in
 * *ret_leaf; 1 as soon as a second, different leaf is seen. */
static int mapping_leaves(const char *sysfs, dev_t devnum, unsigned depth, dev_t *ret_leaf, unsigned *n) {
        _cleanup_free_ char *dm = NULL, *slaves = NULL;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (asprintf(&dm, "%s/dev/block/%u:%u/dm", sysfs, major(devnum), minor(devnum)) < 0 ||
                asprintf(&slaves, "%s/dev/block/%u:%u/slaves", sysfs, major(devnum), minor(devnum)) < 0)
                return -ENOMEM;
        if (access(dm, F_OK) < 0) {
                if (*n > 0 && *ret_leaf != devnum)
                        return 1;
                *ret_leaf = devnum;
                (*n)++;
                return 0;
        }
        if (depth > 16)
                return -ELOOP;
        d = opendir(slaves);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while (r == 0 && (de = readdir(d))) {
                _cleanup_free_ char *dev = NULL, *text = NULL;
                unsigned maj, min;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&dev, "%s/%s/dev", slaves, de->d_name) < 0)
                        r = -ENOMEM;
                else if ((r = ade_read_file(dev, &text, NULL, NULL)) >= 0)
                        r = sscanf(text, "%u:%u", &maj, &min) != 2
                                    ? -EBADMSG
                                    : mapping_leaves(sysfs, makedev(maj, min), depth + 1, ret_leaf, n);
        }
        closedir(d);
        return r;
}

int ade_volume_mapping_backing(const char *sysfs, dev_t devnum, const char *name, dev_t *ret) {
        _cleanup_free_ char *path = NULL, *dm_name = NULL;
        dev_t backing = 0;
        unsigned n = 0;
        int r;

        assert(sysfs);
        assert(name);

        if (asprintf(&path, "%s/dev/block/%u:%u/dm/name", sysfs, major(devnum), minor(devnum)) < 0)
                return -ENOMEM;
        r = ade_read_file(path, &dm_name, NULL, NULL);
        if (r == -ENOENT)
                return 0; /* not a device-mapper device */
        if (r < 0)
                return r;
        dm_name[strcspn(dm_name, "\n")] = 0;
        if (!streq(dm_name, name))
                return 0;
        r = mapping_leaves(sysfs, devnum, 0, &backing, &n);
        if (r < 0)
                return r;
        if (r > 0 || n == 0)
                return 0; /* over several devices (or none): not ade's root */
        if (ret)
                *ret = backing;
        return 1;
}

int ade_volume_root_mapper_backing(const char *name, dev_t *ret) {
        struct stat root;

        if (stat("/", &root) < 0)
                return -errno;
        if (major(root.st_dev) == 0)
                return 0;
        return ade_volume_mapping_backing("/sys", root.st_dev, name, ret);
}

static int add_probe(AdeVolume ***l, size_t *n, const char *device, AdeVolumeType type, bool format_all) {
        AdeVolume *v = NULL;
        int r;

        if (listed(*l, *n, device))
                return 0;
        r = ade_volume_probe(device, type, format_all, &v);
        if (r == -ENOENT || r == -ENOTBLK)
                return 0; /* fstab may name what is not there today */
        if (r < 0)
                return r;
        r = push(l, n, v);
        if (r < 0)
                ade_volume_free(v);
        return r;
}

/* Whether @devnum is a device-mapper device: an open crypt mapping (ade's own among them, which
 * fstab mounts once a volume is encrypted), LVM, multipath. ade encrypts disks and partitions; a
 * filesystem on a mapping lives on a device ade would find by its own name. */
static bool is_device_mapper(dev_t devnum) {
        char path[64];

        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm", major(devnum), minor(devnum));
        return access(path, F_OK) == 0;
}

int ade_volume_discover(const AdeConfig *config, bool format_all, AdeVolume ***ret) {
        _cleanup_(ade_volume_free_manyp) AdeVolume **l = NULL;
        _cleanup_(endmntentp) FILE *fstab = NULL;
        struct stat root_st = {};
        dev_t os_disk = 0;
        size_t n = 0;
        glob_t g = {};
        int r;

        assert(ret);

        l = calloc(1, sizeof(AdeVolume *));
        if (!l)
                return -ENOMEM;

        /* The OS volume. */
        if (config && config->volumes.os)
                r = add_probe(&l, &n, config->volumes.os, ADE_VOLUME_OS, format_all);
        else if (stat("/", &root_st) == 0 && major(root_st.st_dev) != 0) {
                dev_t root_dev = root_st.st_dev;
                char node[64];

                /* Opened by the initramfs (docs/architecture.md §9): the OS volume is the partition
                 * under ade-root, as a data volume is its device and not its mapping. */
                if (ade_volume_root_mapper_backing("ade-root", &root_dev) < 0)
                        root_dev = root_st.st_dev;
                snprintf(node, sizeof(node), "/dev/block/%u:%u", major(root_dev), minor(root_dev));
                os_disk = disk_of(root_dev);
                r = add_probe(&l, &n, node, ADE_VOLUME_OS, format_all);
        } else
                r = 0; /* / on a virtual filesystem (a container): no OS volume to speak of */
        if (r < 0)
                return r;

        if (config && config->volumes.data) {
                for (char **d = config->volumes.data; *d; d++) {
                        r = add_probe(&l, &n, *d, ADE_VOLUME_DATA, format_all);
                        if (r < 0)
                                return r;
                }
                *ret = TAKE_PTR(l);
                return 0;
        }

        /* Azure data disks, with their LUN. */
        if (glob("/dev/disk/azure/scsi1/lun*", 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++) {
                        /* A partitioned data disk is taken by its partitions (lunN-partM). */
                        if (!strstr(g.gl_pathv[i], "-part")) {
                                _cleanup_free_ char *part = NULL;
                                if (asprintf(&part, "%s-part1", g.gl_pathv[i]) < 0) {
                                        globfree(&g);
                                        return -ENOMEM;
                                }
                                if (access(part, F_OK) == 0)
                                        continue;
                        }
                        r = add_probe(&l, &n, g.gl_pathv[i], ADE_VOLUME_DATA, format_all);
                        if (r < 0) {
                                globfree(&g);
                                return r;
                        }
                }
        globfree(&g);

        /* fstab filesystems on other disks than the OS disk. */
        fstab = setmntent("/etc/fstab", "re");
        if (fstab) {
                struct mntent *me, entry;
                char buf[4096];

                /* getmntent_r(): Enable's and Show's threads may discover at once. */
                while ((me = getmntent_r(fstab, &entry, buf, sizeof(buf)))) {
                        _cleanup_free_ char *dev = NULL;
                        struct stat st;
                        const char *p;

                        if ((p = startswith(me->mnt_fsname, "UUID=")))
                                r = asprintf(&dev, "/dev/disk/by-uuid/%s", p);
                        else if ((p = startswith(me->mnt_fsname, "LABEL=")))
                                r = asprintf(&dev, "/dev/disk/by-label/%s", p);
                        else if ((p = startswith(me->mnt_fsname, "PARTUUID=")))
                                r = asprintf(&dev, "/dev/disk/by-partuuid/%s", p);
                        else if (me->mnt_fsname[0] == '/')
                                r = (dev = strdup(me->mnt_fsname)) ? 0 : -1;
                        else
                                continue;
                        if (r < 0)
                                return -ENOMEM;
                        if (streq(me->mnt_dir, "/") || stat(dev, &st) < 0 || !S_ISBLK(st.st_mode))
                                continue;
                        if (os_disk != 0 && disk_of(st.st_rdev) == os_disk)
                                continue; /* /boot, /var on the OS disk belong to OS encryption */
                        if (is_device_mapper(st.st_rdev))
                                continue; /* never a mapping: encrypting ade's own would nest */
                        r = add_probe(&l, &n, dev,
                                is_azure_resource(st.st_rdev) ? ADE_VOLUME_RESOURCE : ADE_VOLUME_DATA, format_all);
                        if (r < 0)
                                return r;
                }
        }

        /* The resource disk, so that it is reported (and taken with format-all). */
        for (const char *const *p = (const char *const[]){"/dev/disk/azure/resource-part1",
                     "/dev/disk/cloud/azure_resource-part1", NULL};
                *p; p++) {
                r = add_probe(&l, &n, *p, ADE_VOLUME_RESOURCE, format_all);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(l);
        return 0;
}
