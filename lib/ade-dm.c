/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "ade-dm.h"
#include "ade-log.h"

/* libdevmapper prints to stderr by default; the library is silent except for debug messages. */
static void dm_log_to_debug(int level, const char *file, int line, int dm_errno_or_class, const char *f, ...) {
        char buf[512];
        va_list ap;

        (void)level;
        (void)file;
        (void)line;
        (void)dm_errno_or_class;
        va_start(ap, f);
        vsnprintf(buf, sizeof(buf), f, ap);
        va_end(ap);
        ade_log_debug("libdevmapper: %s", buf);
}

/* libdevmapper keeps process-wide state (its log function, udev cookies, caches) and is not safe to
 * enter from two threads at once: two unlock jobs activating volumes at once crashed aded. Every
 * function here that calls libdevmapper holds this lock; it is recursive, so that a caller holding it
 * around a libcryptsetup activation may still ask us. */
static pthread_mutex_t dm_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void ade_dm_lock(void) {
        pthread_mutex_lock(&dm_lock);
}

void ade_dm_unlock(void) {
        pthread_mutex_unlock(&dm_lock);
}

static void dm_unlockp(bool *locked) {
        if (*locked)
                ade_dm_unlock();
}

/* Takes the lock until the end of the scope. */
#define DM_LOCKED_SCOPE _cleanup_(dm_unlockp) _unused_ bool _dm_locked_ = (ade_dm_lock(), true)

static void dm_quiet(void) {
        dm_log_with_errno_init(dm_log_to_debug);
}

bool ade_dm_available(void) {
        char version[64];
        int fd;

        /* Checking the node first keeps libdevmapper from trying to create it (it would mknod). */
        fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return false;
        close(fd);

        DM_LOCKED_SCOPE;
        dm_quiet();
        return dm_driver_version(version, sizeof(version)) != 0;
}

void ade_dm_crypt_free_many(AdeDmCrypt *l, size_t n) {
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].name);
                free(l[i].uuid);
        }
        free(l);
}

static int mapping_describe(const char *name, char **ret_uuid, dev_t *ret_backing) {
        struct dm_task *dmt;
        struct dm_deps *deps;
        struct dm_info info;
        const char *uuid;
        int r = 0;

        dmt = dm_task_create(DM_DEVICE_DEPS);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) || !dm_task_get_info(dmt, &info) || !info.exists) {
                r = -ENOENT; /* gone since the list was taken */
                goto finish;
        }
        uuid = dm_task_get_uuid(dmt);
        deps = dm_task_get_deps(dmt);
        *ret_backing = deps && deps->count > 0 ? (dev_t)deps->device[0] : 0;
        *ret_uuid = NULL;
        if (!isempty(uuid)) {
                *ret_uuid = strdup(uuid);
                if (!*ret_uuid)
                        r = -ENOMEM;
        }
finish:
        dm_task_destroy(dmt);
        return r;
}

int ade_dm_list_crypt(AdeDmCrypt **ret, size_t *ret_n) {
        AdeDmCrypt *list = NULL;
        struct dm_task *dmt;
        struct dm_names *names;
        size_t n = 0;
        int r = 0;

        if (!ret || !ret_n)
                return -EINVAL;

        /* One hold over the whole list: the names and their dependencies come from one libdevmapper
         * session, and no other thread's task interleaves with ours. */
        DM_LOCKED_SCOPE;
        if (!ade_dm_available())
                return -ENODEV;

        dmt = dm_task_create(DM_DEVICE_LIST);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_run(dmt)) {
                r = ade_log_debug_errno(-EIO, "device-mapper refused to list its devices");
                goto finish;
        }
        names = dm_task_get_names(dmt);
        /* An empty list is one entry with dev == 0. */
        for (unsigned next = 0; names && names->dev; names = (struct dm_names *)((char *)names + next)) {
                _cleanup_free_ char *uuid = NULL;
                AdeDmCrypt *grown;
                dev_t backing;

                next = names->next;
                r = mapping_describe(names->name, &uuid, &backing);
                if (r == -ENOENT)
                        r = 0;
                else if (r < 0)
                        goto finish;
                else if (uuid && startswith(uuid, "CRYPT-")) {
                        grown = realloc(list, (n + 1) * sizeof(*list));
                        if (!grown) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        list = grown;
                        list[n] = (AdeDmCrypt){.name = strdup(names->name), .uuid = TAKE_PTR(uuid), .backing = backing};
                        if (!list[n++].name) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
                if (next == 0)
                        break;
        }

finish:
        dm_task_destroy(dmt);
        if (r < 0) {
                ade_dm_crypt_free_many(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

static int block_devnum(const char *device, dev_t *ret) {
        struct stat st;

        if (stat(device, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        *ret = st.st_rdev;
        return 0;
}

int ade_dm_find_crypt(const char *device, char **ret_name) {
        AdeDmCrypt *list = NULL;
        size_t n = 0;
        dev_t devnum = 0;
        int r;

        r = block_devnum(device, &devnum);
        if (r < 0)
                return r;
        r = ade_dm_list_crypt(&list, &n);
        if (r == -ENODEV)
                return 0;
        if (r < 0)
                return r;
        r = 0;
        for (size_t i = 0; i < n; i++)
                if (list[i].backing == devnum) {
                        if (ret_name) {
                                *ret_name = strdup(list[i].name);
                                r = *ret_name ? 1 : -ENOMEM;
                        } else
                                r = 1;
                        break;
                }
        ade_dm_crypt_free_many(list, n);
        return r;
}

/* True when @below is @top, a partition of @top's disk relation, or found under @top's slaves.
 * sysfs: /sys/dev/block/M:m/slaves/<name>/dev, recursively; /sys/dev/block/M:m/partition + ../dev. */
static bool devnum_under(dev_t top, dev_t below, unsigned depth) {
        char path[128];
        DIR *d;
        struct dirent *de;
        bool found = false;

        if (top == below)
                return true;
        if (depth > 16)
                return false;

        /* A partition's parent disk: the folder above the partition's sysfs node. */
        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", major(top), minor(top));
        {
                char partition[128];
                FILE *f;
                unsigned ma, mi;

                snprintf(partition, sizeof(partition), "/sys/dev/block/%u:%u/partition", major(top), minor(top));
                if (access(partition, F_OK) == 0 && (f = fopen(path, "re"))) {
                        if (fscanf(f, "%u:%u", &ma, &mi) == 2 && makedev(ma, mi) == below)
                                found = true;
                        fclose(f);
                        if (found)
                                return true;
                }
        }

        snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/slaves", major(top), minor(top));
        d = opendir(path);
        if (!d)
                return false;
        while (!found && (de = readdir(d))) {
                char dev_path[512];
                unsigned ma, mi;
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(dev_path, sizeof(dev_path), "%s/%s/dev", path, de->d_name);
                f = fopen(dev_path, "re");
                if (!f)
                        continue;
                if (fscanf(f, "%u:%u", &ma, &mi) == 2)
                        found = devnum_under(makedev(ma, mi), below, depth + 1);
                fclose(f);
        }
        closedir(d);
        return found;
}

int ade_dm_device_backs_root(const char *device) {
        struct stat root;
        dev_t devnum = 0;
        int r;

        r = block_devnum(device, &devnum);
        if (r < 0)
                return r;
        if (stat("/", &root) < 0)
                return -errno;
        /* Anonymous devices (overlay, tmpfs, 9p: major 0) are backed by no block device. */
        if (major(root.st_dev) == 0)
                return 0;
        return devnum_under(root.st_dev, devnum, 0);
}
