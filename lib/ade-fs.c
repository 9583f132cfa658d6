/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <blkid/blkid.h>
#include <dirent.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mntent.h>
#include <signal.h>
#include <stdarg.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"

/* Output of a program beyond this is cut: e2fsck on a badly broken filesystem can print megabytes,
 * and a person needs the start of it. */
#define ADE_FS_OUTPUT_MAX (64U * 1024U)

void ade_fs_info_done(AdeFsInfo *i) {
        if (!i)
                return;
        i->type = mfree(i->type);
        i->uuid = mfree(i->uuid);
        i->label = mfree(i->label);
        i->usage = mfree(i->usage);
        i->part_uuid = mfree(i->part_uuid);
}

static void blkid_free_probep(blkid_probe *p) {
        if (*p)
                blkid_free_probe(*p);
}

static int probe_dup(blkid_probe pr, const char *name, char **ret) {
        const char *v;

        if (blkid_probe_lookup_value(pr, name, &v, NULL) < 0 || isempty(v)) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

int ade_fs_probe(const char *device, AdeFsInfo *ret) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        AdeFsInfo info = {};
        int r;

        assert(device);
        assert(ret);

        errno = 0;
        pr = blkid_new_probe_from_filename(device);
        if (!pr)
                return ade_log_debug_errno(errno > 0 ? errno : EIO, "Cannot open %s for probing: %m", device);

        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(
                pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_USAGE);
        blkid_probe_enable_partitions(pr, 1);
        blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);

        r = blkid_do_safeprobe(pr);
        if (r == -2)
                return ade_log_debug_errno(EUCLEAN, "%s carries contradicting signatures", device);
        if (r < 0)
                return ade_log_debug_errno(EIO, "Probing %s failed", device);
        if (r == 1) { /* nothing found */
                *ret = info;
                return 0;
        }

        if (probe_dup(pr, "TYPE", &info.type) < 0 || probe_dup(pr, "UUID", &info.uuid) < 0 ||
                probe_dup(pr, "LABEL", &info.label) < 0 || probe_dup(pr, "USAGE", &info.usage) < 0 ||
                probe_dup(pr, "PART_ENTRY_UUID", &info.part_uuid) < 0) {
                ade_fs_info_done(&info);
                return -ENOMEM;
        }
        if (!info.type) {
                const char *pttype;

                /* A partition table is not a filesystem, but it is not an empty device either. */
                if (blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL) >= 0) {
                        info.usage = strdup("other");
                        info.type = strdup(pttype);
                        if (!info.usage || !info.type) {
                                ade_fs_info_done(&info);
                                return -ENOMEM;
                        }
                }
        }

        *ret = info;
        return 0;
}

bool ade_fs_is_ext(const char *type) {
        return type && (streq(type, "ext2") || streq(type, "ext3") || streq(type, "ext4"));
}

static int find_program(const char *name, char **ret) {
        static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};

        if (strchr(name, '/')) {
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s/%s", dirs[i], name) < 0)
                        return -ENOMEM;
                if (access(p, X_OK) == 0) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return ade_log_debug_errno(ENOENT, "Program %s not found in /usr/sbin, /sbin, /usr/bin, /bin", name);
}

/* Programs of ade_fs_run() running now, in every thread. */
static atomic_uint programs_running;

unsigned ade_fs_programs_running(void) {
        return atomic_load(&programs_running);
}

int ade_fs_run(char *const argv[], char **ret_output) {
        _cleanup_free_ char *path = NULL, *out = NULL;
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        sigset_t stop;
        size_t n = 0;
        pid_t pid;
        int pipefd[2], status, r;

        assert(argv && argv[0]);

        r = find_program(argv[0], &path);
        if (r < 0)
                return r;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rfd = pipefd[0];
        wfd = pipefd[1];

        out = malloc(ADE_FS_OUTPUT_MAX + 1);
        if (!out)
                return -ENOMEM;

        /* A resize2fs or e2fsck stopped half-way can leave a filesystem worse than it found it: the
         * signals that stop a service (systemd sends SIGTERM to the whole unit) stay blocked in the
         * child, which finishes; only SIGKILL ends it early. */
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGHUP);
        r = ade_spawn(path, argv, (const AdeSpawnFd[]){{wfd, STDOUT_FILENO}, {wfd, STDERR_FILENO}}, 2, &stop, &pid);
        if (r < 0)
                return r;
        atomic_fetch_add(&programs_running, 1);
        close(TAKE_FD(wfd)); /* the child holds the write end now; EOF comes when it exits */

        for (;;) {
                char buf[4096];
                ssize_t k = read(rfd, buf, sizeof(buf));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (n < ADE_FS_OUTPUT_MAX) {
                        size_t m = (size_t)k < ADE_FS_OUTPUT_MAX - n ? (size_t)k : ADE_FS_OUTPUT_MAX - n;
                        memcpy(out + n, buf, m);
                        n += m;
                }
        }
        out[n] = 0;

        r = ade_spawn_wait(pid, &status);
        atomic_fetch_sub(&programs_running, 1);
        if (r < 0)
                return r;

        ade_log_debug("%s exited with status %d", path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);

        if (ret_output)
                *ret_output = TAKE_PTR(out);
        if (!WIFEXITED(status))
                return ade_log_debug_errno(
                        EIO, "%s was killed by signal %d", path, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return WEXITSTATUS(status);
}

/* Before a program writes to @device: -EBUSY, with a sentence in *ret_output, when the system has it
 * mounted. e2fsck and resize2fs look only at their own namespace's mounts: in another one than
 * pid 1's, a filesystem the system uses would look free (issue 11 item 0). */
static int refuse_mounted(const char *device, char **ret_output) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r;

        if (stat(device, &st) < 0)
                return -errno;
        if (!S_ISBLK(st.st_mode))
                return 0;
        r = ade_fs_mounted_anywhere(st.st_rdev, &path);
        if (r < 0)
                return ade_log_debug_errno(r, "Cannot read the mount tables to check that %s is unmounted: %m", device);
        if (r == 0)
                return 0;
        if (ret_output && asprintf(ret_output, "%s is mounted on %s; it must be unmounted for the whole system first",
                                  device, path) < 0)
                *ret_output = NULL;
        return ade_log_debug_errno(EBUSY, "%s is mounted on %s", device, path);
}

int ade_fs_check(const char *device, bool repair, char **ret_output) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {(char *)"e2fsck", (char *)"-f", (char *)(repair ? "-p" : "-n"), (char *)device, NULL};
        int r;

        if (repair) {
                r = refuse_mounted(device, ret_output);
                if (r < 0)
                        return r;
        }
        r = ade_fs_run(argv, &out);
        if (r < 0)
                return r;
        /* With -p, exit 1 means it fixed something harmless: clean now. */
        if (r > (repair ? 1 : 0)) {
                if (ret_output)
                        *ret_output = TAKE_PTR(out);
                return ade_log_debug_errno(EUCLEAN, "e2fsck -f %s %s exited with %d", repair ? "-p" : "-n", device, r);
        }
        return 0;
}

/* The block count in an ext2/3/4 superblock (1024 bytes in), 0 when unreadable. Read here rather
 * than by running dumpe2fs: every program started while a volume is offline for online encryption
 * is downtime. */
static uint64_t ext_blocks(const char *device) {
        _cleanup_close_ int fd = -EBADF;
        uint8_t sb[1024];
        uint64_t blocks;

        fd = open(device, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || pread(fd, sb, sizeof(sb), 1024) != (ssize_t)sizeof(sb))
                return 0;
        if (sb[0x38] != 0x53 || sb[0x39] != 0xEF) /* s_magic */
                return 0;
        blocks = (uint64_t)sb[0x04] | (uint64_t)sb[0x05] << 8 | (uint64_t)sb[0x06] << 16 | (uint64_t)sb[0x07] << 24;
        if (sb[0x60] & 0x80) /* INCOMPAT_64BIT: s_blocks_count_hi */
                blocks |= ((uint64_t)sb[0x150] | (uint64_t)sb[0x151] << 8 | (uint64_t)sb[0x152] << 16 |
                                  (uint64_t)sb[0x153] << 24)
                          << 32;
        return blocks;
}

int ade_fs_min_size(const char *device, uint64_t *ret_min, uint64_t *ret_size, char **ret_output) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {(char *)"resize2fs", (char *)"-P", (char *)device, NULL};
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        uint64_t blocks = 0, bsize = 0, size = 0;
        const char *p, *v;
        int r;

        r = ade_fs_run(argv, &out);
        if (r < 0)
                return r;
        p = out ? strstr(out, "Estimated minimum size of the filesystem:") : NULL;
        if (r != 0 || !p || sscanf(p, "Estimated minimum size of the filesystem: %" SCNu64, &blocks) != 1) {
                if (ret_output)
                        *ret_output = TAKE_PTR(out);
                return ade_log_debug_errno(EUCLEAN, "resize2fs -P %s exited with %d", device, r);
        }

        pr = blkid_new_probe_from_filename(device);
        if (!pr)
                return -EIO;
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
        /* libblkid reports the ext block size as BLOCK_SIZE (FSBLOCKSIZE in newer releases). */
        if (blkid_do_safeprobe(pr) != 0 ||
                (blkid_probe_lookup_value(pr, "FSBLOCKSIZE", &v, NULL) < 0 &&
                        blkid_probe_lookup_value(pr, "BLOCK_SIZE", &v, NULL) < 0) ||
                sscanf(v, "%" SCNu64, &bsize) != 1 || bsize == 0)
                return ade_log_debug_errno(EIO, "Cannot read the block size of the filesystem on %s", device);
        /* FSSIZE (bytes) exists in newer libblkid only; otherwise the superblock's block count. */
        if (blkid_probe_lookup_value(pr, "FSSIZE", &v, NULL) < 0 || sscanf(v, "%" SCNu64, &size) != 1)
                size = ext_blocks(device) * bsize;

        *ret_min = blocks * bsize;
        if (ret_size)
                *ret_size = size;
        return 0;
}

int ade_fs_shrink(const char *device, uint64_t new_size, char **ret_output) {
        _cleanup_free_ char *out = NULL, *size_arg = NULL;
        int r;

        if (new_size == 0 || new_size % 1024 != 0)
                return -EINVAL;

        r = refuse_mounted(device, ret_output);
        if (r < 0)
                return r;
        if (asprintf(&size_arg, "%" PRIu64 "K", new_size / 1024) < 0)
                return -ENOMEM;
        char *resize[] = {(char *)"resize2fs", (char *)device, size_arg, NULL};
        r = ade_fs_run(resize, &out);
        if (r < 0)
                return r;
        if (r != 0) {
                if (ret_output)
                        *ret_output = TAKE_PTR(out);
                return ade_log_debug_errno(EUCLEAN, "resize2fs %s %s exited with %d", device, size_arg, r);
        }
        return 0;
}

int ade_fs_grow(const char *device, char **ret_output) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {(char *)"resize2fs", (char *)device, NULL};
        int r;

        r = ade_fs_run(argv, &out);
        if (r < 0)
                return r;
        if (r != 0) {
                if (ret_output)
                        *ret_output = TAKE_PTR(out);
                return ade_log_debug_errno(EUCLEAN, "resize2fs %s exited with %d", device, r);
        }
        return 0;
}

int ade_fs_make(const char *device, const char *type, const char *label, const char *uuid, char **ret_output) {
        _cleanup_free_ char *out = NULL, *prog = NULL;
        char *argv[10];
        size_t n = 0;
        int r;

        assert(device);
        assert(type);

        if (ade_fs_is_ext(type)) {
                if (asprintf(&prog, "mkfs.%s", type) < 0)
                        return -ENOMEM;
                argv[n++] = prog;
                argv[n++] = (char *)"-q";
                argv[n++] = (char *)"-F";
                if (label) {
                        argv[n++] = (char *)"-L";
                        argv[n++] = (char *)label;
                }
                if (uuid) {
                        argv[n++] = (char *)"-U";
                        argv[n++] = (char *)uuid;
                }
        } else if (streq(type, "xfs")) {
                argv[n++] = (char *)"mkfs.xfs";
                argv[n++] = (char *)"-q";
                argv[n++] = (char *)"-f";
                if (label) {
                        argv[n++] = (char *)"-L";
                        argv[n++] = (char *)label;
                }
                if (uuid) {
                        argv[n++] = (char *)"-m";
                        if (asprintf(&prog, "uuid=%s", uuid) < 0)
                                return -ENOMEM;
                        argv[n++] = prog;
                }
        } else
                return ade_log_debug_errno(EOPNOTSUPP, "Cannot make a %s filesystem", type);
        argv[n++] = (char *)device;
        argv[n] = NULL;

        r = ade_fs_run(argv, &out);
        if (r < 0)
                return r;
        if (r != 0) {
                if (ret_output)
                        *ret_output = TAKE_PTR(out);
                return ade_log_debug_errno(EIO, "mkfs.%s %s exited with %d", type, device, r);
        }
        return 0;
}

int ade_fs_wipe_signatures(const char *device) {
        _cleanup_(blkid_free_probep) blkid_probe pr = NULL;
        _cleanup_close_ int fd = -EBADF;

        assert(device);

        fd = open(device, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return ade_log_debug_errno(errno, "Cannot open %s for writing: %m", device);
        pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        if (blkid_probe_set_device(pr, fd, 0, 0) < 0)
                return ade_log_debug_errno(EIO, "Cannot probe %s", device);
        blkid_probe_enable_superblocks(pr, 1);
        blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_BADCSUM);
        blkid_probe_enable_partitions(pr, 1);
        blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);

        while (blkid_do_probe(pr) == 0)
                if (blkid_do_wipe(pr, /* dryrun= */ 0) < 0)
                        return ade_log_debug_errno(EIO, "Cannot erase a signature on %s", device);
        if (fsync(fd) < 0)
                return ade_log_debug_errno(errno, "Cannot sync %s: %m", device);
        return 0;
}

static const struct {
        const char *name;
        unsigned long flag;
        bool clear; /* the option turns @flag off ("rw", "suid", ...) */
} mount_flags[] = {
        {"ro", MS_RDONLY, false},
        {"rw", MS_RDONLY, true},
        {"nosuid", MS_NOSUID, false},
        {"suid", MS_NOSUID, true},
        {"nodev", MS_NODEV, false},
        {"dev", MS_NODEV, true},
        {"noexec", MS_NOEXEC, false},
        {"exec", MS_NOEXEC, true},
        {"sync", MS_SYNCHRONOUS, false},
        {"async", MS_SYNCHRONOUS, true},
        {"dirsync", MS_DIRSYNC, false},
        {"noatime", MS_NOATIME, false},
        {"atime", MS_NOATIME, true},
        {"nodiratime", MS_NODIRATIME, false},
        {"diratime", MS_NODIRATIME, true},
        {"relatime", MS_RELATIME, false},
        {"norelatime", MS_RELATIME, true},
        {"strictatime", MS_STRICTATIME, false},
        {"lazytime", MS_LAZYTIME, false},
        {"nolazytime", MS_LAZYTIME, true},
        {"silent", MS_SILENT, false},
        {"loud", MS_SILENT, true},
};

/* Options that mean something to mount(8), systemd or fstab's readers, never to the kernel. */
static bool mount_option_userspace(const char *o) {
        static const char *const names[] = {
                "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group"};

        if (startswith(o, "x-") || startswith(o, "X-") || startswith(o, "comment="))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(o, names[i]))
                        return true;
        return false;
}

/* @path as a directory reached without following a symbolic link anywhere on the way: an O_PATH
 * descriptor, or -ELOOP. What is mounted then goes where this descriptor points, not where a link
 * swapped in after a check would lead. */
static int open_real_directory(const char *path) {
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
        _cleanup_free_ char *real = NULL;
        int fd;

        fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
        if (fd >= 0)
                return fd;
        if (errno != ENOSYS)
                return -errno;
        /* Before Linux 5.6: the last component is opened without following, the rest compared. */
        fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOTDIR ? -ELOOP : -errno;
        real = realpath(path, NULL);
        if (!real || !streq(real, path)) {
                close(fd);
                return real ? -ELOOP : -errno;
        }
        return fd;
}

int ade_fs_mount(const char *device, const char *path, const char *fstype, const char *options) {
        _cleanup_free_ char *copy = NULL, *data = NULL;
        _cleanup_close_ int dir = -EBADF;
        unsigned long flags = 0;
        size_t n = 0;
        char *state = NULL, target[64];

        assert(device);
        assert(path);

        dir = open_real_directory(path);
        if (dir < 0)
                return ade_log_debug_errno(dir, "%s is no directory reached without symbolic links: %m", path);
        snprintf(target, sizeof(target), "/proc/self/fd/%d", dir);

        if (!isempty(options)) {
                copy = strdup(options);
                data = calloc(1, strlen(options) + 1);
                if (!copy || !data)
                        return -ENOMEM;
                for (char *o = strtok_r(copy, ",", &state); o; o = strtok_r(NULL, ",", &state)) {
                        bool known = false;

                        for (size_t i = 0; i < ELEMENTSOF(mount_flags) && !known; i++)
                                if (streq(o, mount_flags[i].name)) {
                                        if (mount_flags[i].clear)
                                                flags &= ~mount_flags[i].flag;
                                        else
                                                flags |= mount_flags[i].flag;
                                        known = true;
                                }
                        if (known || mount_option_userspace(o))
                                continue;
                        n += (size_t)sprintf(data + n, "%s%s", n > 0 ? "," : "", o);
                }
        }
        if (mount(device, target, fstype, flags, n > 0 ? data : NULL) < 0)
                return ade_log_debug_errno(-errno, "mounting %s on %s (%s, %s) failed: %m", device, path, strna(fstype),
                        isempty(options) ? "defaults" : options);
        return 0;
}

/* mountinfo writes space, tab, newline and backslash in paths as \ooo. */
static void unescape_octal(char *s) {
        char *w = s;

        for (char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
                        p[3] <= '7') {
                        *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                        p += 3;
                } else
                        *w++ = *p;
        }
        *w = '\0';
}

/* Calls @f on each line of @mountinfo (NULL: /proc/self/mountinfo) with its device, mount point and
 * per-mount options; stops when @f returns non-zero and returns that. */
static int mountinfo_foreach(const char *mountinfo,
        int (*f)(dev_t devnum, const char *path, const char *options, const char *fstype, const char *source,
                void *userdata),
        void *userdata) {
        _cleanup_fclose_ FILE *mi = NULL;
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        int r;

        mi = fopen(mountinfo ?: "/proc/self/mountinfo", "re");
        if (!mi)
                return -errno;
        while (getline(&line, &size, mi) > 0) {
                unsigned maj, min;
                int path_at = 0, path_end = 0, opts_at = 0, opts_end = 0;

                /* id parent major:minor root mount-point options ... */
                if (sscanf(line, "%*u %*u %u:%u %*s %n%*s%n %n%*s%n", &maj, &min, &path_at, &path_end, &opts_at,
                            &opts_end) < 2 ||
                        opts_end == 0)
                        continue;
                /* ... optional fields - fstype source super-options */
                char *rest = strstr(line + opts_end, " - "), *fstype = NULL, *source = NULL;
                if (rest) {
                        fstype = rest + 3;
                        source = fstype + strcspn(fstype, " \n");
                        if (*source == ' ')
                                *source++ = '\0';
                        else
                                *source = '\0'; /* no source: the end of the line */
                        source[strcspn(source, " \n")] = '\0';
                        unescape_octal(source);
                }
                line[path_end] = '\0';
                line[opts_end] = '\0';
                unescape_octal(line + path_at);
                r = f(makedev(maj, min), line + path_at, line + opts_at, fstype, source, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

typedef struct MountQuery {
        dev_t devnum;
        const char *path;
        char *found_path, *found_options, *found_fstype, *found_source;
        bool found;
} MountQuery;

static int match_devnum(
        dev_t devnum, const char *path, const char *options, const char *fstype, const char *source, void *userdata) {
        MountQuery *q = userdata;

        (void)fstype;
        (void)source;
        if (devnum != q->devnum)
                return 0;
        q->found_path = strdup(path);
        q->found_options = strdup(options);
        return q->found_path && q->found_options ? 1 : -ENOMEM;
}

int ade_fs_mount_of(const char *mountinfo, dev_t devnum, char **ret_path, char **ret_options) {
        _cleanup_free_ char *path = NULL, *options = NULL;
        MountQuery q = {.devnum = devnum};
        int r;

        r = mountinfo_foreach(mountinfo, match_devnum, &q);
        path = q.found_path;
        options = q.found_options;
        if (r < 0)
                return r;
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        if (ret_options)
                *ret_options = TAKE_PTR(options);
        return r;
}

int ade_fs_mounted_anywhere(dev_t devnum, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = ade_fs_mount_of(NULL, devnum, &path, NULL);
        if (r == 0)
                r = ade_fs_mount_of(ADE_FS_SYSTEM_MOUNTINFO, devnum, &path, NULL);
        if (r <= 0)
                return r;
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 1;
}

/* The ID (field 1) of the first mount in @mountinfo. */
static int mount_first_id(const char *mountinfo, int *ret_id) {
        _cleanup_fclose_ FILE *f = fopen(mountinfo, "re");

        if (!f)
                return -errno;
        if (fscanf(f, "%d", ret_id) != 1)
                return -EBADMSG;
        return 0;
}

/* Whether a line of @mountinfo has the mount ID @id. */
static int mount_id_in(const char *mountinfo, int id) {
        _cleanup_fclose_ FILE *f = fopen(mountinfo, "re");
        char line[4096];

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                int i;

                if (sscanf(line, "%d", &i) == 1 && i == id)
                        return 1;
                /* A line longer than the buffer: skip its rest. */
                while (!strchr(line, '\n') && fgets(line, sizeof(line), f))
                        ;
        }
        return 0;
}

int ade_fs_mount_namespace_is_system(void) {
        struct stat self, init;
        int id, r;

        /* Both links lead to the namespace's inode. */
        if (stat("/proc/self/ns/mnt", &self) >= 0 && stat("/proc/1/ns/mnt", &init) >= 0)
                return self.st_dev == init.st_dev && self.st_ino == init.st_ino;
        if (errno != EACCES && errno != EPERM)
                return -errno;
        /* Following pid 1's link takes ptrace access, which a process with fewer capabilities than
         * pid 1 lacks (the unit's CapabilityBoundingSet= makes aded one). Its mount table is
         * readable: a mount belongs to exactly one namespace, and a copied namespace gets new mount
         * IDs, so one ID in both tables means one namespace. */
        r = mount_first_id("/proc/self/mountinfo", &id);
        if (r < 0)
                return r;
        return mount_id_in(ADE_FS_SYSTEM_MOUNTINFO, id);
}

static int match_path(
        dev_t devnum, const char *path, const char *options, const char *fstype, const char *source, void *userdata) {
        MountQuery *q = userdata;

        (void)options;
        /* Later lines are mounted later: the last match is the one on top. */
        if (streq(path, q->path)) {
                q->found = true;
                q->devnum = devnum;
                if (ade_strdup_to(&q->found_fstype, fstype) < 0 || ade_strdup_to(&q->found_source, source) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int ade_fs_mount_entry(const char *mountinfo, const char *path, AdeFsMountEntry *ret) {
        MountQuery q = {.path = path};
        int r;

        assert(path);

        r = mountinfo_foreach(mountinfo, match_path, &q);
        if (r < 0 || !q.found || !ret) {
                free(q.found_fstype);
                free(q.found_source);
                return r < 0 ? r : q.found;
        }
        *ret = (AdeFsMountEntry){.devnum = q.devnum, .fstype = q.found_fstype, .source = q.found_source};
        return 1;
}

void ade_fs_mount_entry_done(AdeFsMountEntry *e) {
        free(e->fstype);
        free(e->source);
        *e = (AdeFsMountEntry){};
}

int ade_fs_mounted_on(const char *mountinfo, const char *path, dev_t *ret_devnum) {
        _cleanup_(ade_fs_mount_entry_done) AdeFsMountEntry e = {};
        int r;

        r = ade_fs_mount_entry(mountinfo, path, &e);
        if (r > 0 && ret_devnum)
                *ret_devnum = e.devnum;
        return r;
}

char *ade_fs_options_security(const char *options) {
        static const char *const keep[] = {"ro", "nosuid", "nodev", "noexec"};
        _cleanup_free_ char *copy = NULL, *out = NULL;
        size_t n = 0;
        char *state = NULL;

        copy = strdup(options ?: "");
        out = calloc(1, strlen(options ?: "") + 1);
        if (!copy || !out)
                return NULL;
        for (char *o = strtok_r(copy, ",", &state); o; o = strtok_r(NULL, ",", &state))
                for (size_t i = 0; i < ELEMENTSOF(keep); i++)
                        if (streq(o, keep[i]))
                                n += (size_t)sprintf(out + n, "%s%s", n > 0 ? "," : "", o);
        return TAKE_PTR(out);
}

int ade_fs_mount_or_defaults(const char *device, const char *path, const char *fstype, const char *options) {
        _cleanup_free_ char *kept = NULL;
        int r;

        r = ade_fs_mount(device, path, fstype, options);
        if (r >= 0 || isempty(options) || r == -ELOOP)
                return r;
        /* The retry drops what the kernel may refuse now, never what protects the system. */
        kept = ade_fs_options_security(options);
        if (!kept)
                return -ENOMEM;
        return ade_fs_mount(device, path, fstype, kept);
}

int ade_fs_unmount(const char *path) {
        assert(path);

        if (umount2(path, 0) < 0)
                return ade_log_debug_errno(errno, "unmounting %s failed: %m", path);
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Whether the file @name under /proc/@pid (a link such as "cwd" or "fd/3") lies on @dev. */
static bool proc_file_on(const char *pid, const char *name, dev_t dev) {
        char path[PATH_MAX];
        struct stat st;

        snprintf(path, sizeof(path), "/proc/%s/%s", pid, name);
        return stat(path, &st) >= 0 && st.st_dev == dev;
}

/* Whether the process @pid uses the filesystem @dev: its root, working folder, program, an open
 * file or a mapped one (a library, a program run from there). */
static bool process_uses(const char *pid, dev_t dev) {
        _cleanup_(closedirp) DIR *fds = NULL;
        _cleanup_fclose_ FILE *maps = NULL;
        char path[PATH_MAX], line[4096];
        struct dirent *de;

        if (proc_file_on(pid, "cwd", dev) || proc_file_on(pid, "root", dev) || proc_file_on(pid, "exe", dev))
                return true;
        snprintf(path, sizeof(path), "/proc/%s/fd", pid);
        fds = opendir(path);
        while (fds && (de = readdir(fds))) {
                char name[300];

                if (de->d_name[0] == '.')
                        continue;
                snprintf(name, sizeof(name), "fd/%s", de->d_name);
                if (proc_file_on(pid, name, dev))
                        return true;
        }
        snprintf(path, sizeof(path), "/proc/%s/maps", pid);
        maps = fopen(path, "re");
        while (maps && fgets(line, sizeof(line), maps)) {
                unsigned maj, min;
                unsigned long inode;

                if (sscanf(line, "%*s %*s %*s %x:%x %lu", &maj, &min, &inode) == 3 && inode != 0 &&
                        makedev(maj, min) == dev)
                        return true;
        }
        return false;
}

#define HOLDERS_MAX 10

int ade_fs_holders(const char *path, char **ret) {
        _cleanup_(closedirp) DIR *proc = NULL;
        _cleanup_free_ char *list = NULL;
        unsigned n = 0, more = 0;
        struct stat st;
        struct dirent *de;

        assert(path);
        assert(ret);

        if (stat(path, &st) < 0)
                return -errno;
        proc = opendir("/proc");
        if (!proc)
                return -errno;
        while ((de = readdir(proc))) {
                _cleanup_fclose_ FILE *f = NULL;
                char comm[64] = "?", file[PATH_MAX], *grown = NULL;

                if (strspn(de->d_name, "0123456789") != strlen(de->d_name) || (pid_t)atoi(de->d_name) == getpid() ||
                        !process_uses(de->d_name, st.st_dev))
                        continue;
                if (n == HOLDERS_MAX) {
                        more++;
                        continue;
                }
                snprintf(file, sizeof(file), "/proc/%s/comm", de->d_name);
                f = fopen(file, "re");
                if (f && fgets(comm, sizeof(comm), f))
                        comm[strcspn(comm, "\n")] = '\0';
                if (asprintf(&grown, "%s%spid %s (%s)", strempty(list), list ? ", " : "", de->d_name, comm) < 0)
                        return -ENOMEM;
                free(list);
                list = grown;
                n++;
        }
        if (more > 0) {
                char *grown = NULL;

                if (asprintf(&grown, "%s and %u more", list, more) < 0)
                        return -ENOMEM;
                free(list);
                list = grown;
        }
        *ret = TAKE_PTR(list);
        return (int)(n + more);
}

int ade_fs_unmount_patiently(const char *path, uint64_t timeout_usec, char **ret_holders) {
        struct timespec start, now;
        int r;

        assert(path);

        if (clock_gettime(CLOCK_MONOTONIC, &start) < 0)
                return -errno;
        for (;;) {
                uint64_t elapsed;

                r = ade_fs_unmount(path);
                if (r != -EBUSY)
                        return r;
                if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
                        return -errno;
                elapsed = (uint64_t)(now.tv_sec - start.tv_sec) * 1000000U + (now.tv_nsec - start.tv_nsec) / 1000;
                if (elapsed >= timeout_usec)
                        break;
                /* A reader that touches the mount now and then lets go in between. */
                (void)usleep(100 * 1000);
        }
        if (ret_holders && ade_fs_holders(path, ret_holders) <= 0)
                *ret_holders = NULL;
        return -EBUSY;
}

static void endmntentp(FILE **f) {
        if (*f)
                endmntent(*f);
}

bool ade_fs_spec_names(const char *spec, const AdeFsId *id) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        const char *p;

        assert(spec);
        assert(id);

        if ((p = startswith(spec, "UUID=")))
                return id->uuid && strcaseeq(p, id->uuid);
        if ((p = startswith(spec, "LABEL=")))
                return streq_ptr(p, id->label);
        if ((p = startswith(spec, "PARTUUID=")) && asprintf(&path, "/dev/disk/by-partuuid/%s", p) < 0)
                return false;
        if ((p = startswith(spec, "PARTLABEL=")) && asprintf(&path, "/dev/disk/by-partlabel/%s", p) < 0)
                return false;
        if (spec[0] == '/' && !(path = strdup(spec)))
                return false;
        return path && stat(path, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == id->devnum;
}

int ade_fs_mount_target(
        const AdeFsId *id, const char *fstab, const char *mountinfo, char **ret_path, char **ret_options) {
        _cleanup_free_ char *path = NULL, *options = NULL;
        _cleanup_(endmntentp) FILE *f = NULL;
        struct mntent *me, entry;
        char buf[4096];
        int r;

        assert(id);
        assert(ret_path);
        assert(ret_options);

        r = ade_fs_mount_of(mountinfo, id->devnum, &path, &options);
        if (r < 0)
                return r;

        f = setmntent(fstab ?: "/etc/fstab", "re");
        /* getmntent_r(): the jobs, one thread each, read fstab at once, and getmntent()'s entry is
         * one for the whole process. */
        while (f && (me = getmntent_r(f, &entry, buf, sizeof(buf)))) {
                if (me->mnt_dir[0] != '/' || streq(me->mnt_dir, "/") || streq(me->mnt_type, "swap") ||
                        !ade_fs_spec_names(me->mnt_fsname, id))
                        continue;
                if (path && !streq(path, me->mnt_dir))
                        continue; /* mounted elsewhere today: where it is wins */
                if (!path && hasmntopt(me, "noauto"))
                        continue;
                if (ade_strdup_to(&path, me->mnt_dir) < 0 || ade_strdup_to(&options, me->mnt_opts) < 0)
                        return -ENOMEM;
                break;
        }
        *ret_path = TAKE_PTR(path);
        *ret_options = TAKE_PTR(options);
        return 0;
}

void ade_fs_mount_check_done(AdeFsMountCheck *c) {
        if (!c)
                return;
        c->mounted_on = mfree(c->mounted_on);
        c->canonical = mfree(c->canonical);
}

int ade_fs_mount_check_read(dev_t mapper, const char *mount_point, const char *mountinfo, AdeFsMountCheck *ret) {
        _cleanup_(ade_fs_mount_check_done) AdeFsMountCheck c = {};
        struct stat st;
        int r;

        assert(mount_point);
        assert(ret);

        r = ade_fs_mount_of(mountinfo, mapper, &c.mounted_on, NULL);
        if (r < 0)
                return r;
        c.canonical = realpath(mount_point, NULL);
        if (c.canonical && stat(c.canonical, &st) < 0)
                c.canonical = mfree(c.canonical);
        c.directory = c.canonical && S_ISDIR(st.st_mode);
        if (c.directory) {
                r = ade_fs_mounted_on(mountinfo, c.canonical, &c.busy_devnum);
                if (r < 0)
                        return r;
                c.busy = r > 0;
        }
        *ret = c;
        c = (AdeFsMountCheck){};
        return 0;
}

static int why(char **ret_why, int r, const char *format, ...) _printf_(3, 4);
static int why(char **ret_why, int r, const char *format, ...) {
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(ret_why, format, ap);
        va_end(ap);
        if (k < 0) {
                *ret_why = NULL;
                return -ENOMEM;
        }
        return r;
}

int ade_fs_mount_check_verdict(const AdeFsMountCheck *c, const char *mapper, const char *mount_point, char **ret_why) {
        assert(c);
        assert(mapper);
        assert(mount_point);
        assert(ret_why);

        *ret_why = NULL;
        if (c->mounted_on) {
                if (streq(c->mounted_on, c->canonical ?: mount_point))
                        return 1;
                return why(ret_why, -EALREADY,
                        "%s is mounted on %s, not on %s where it was at enable; aded leaves it there", mapper,
                        c->mounted_on, mount_point);
        }
        if (!c->canonical)
                return why(ret_why, -ENOENT,
                        "%s is open but not mounted: its mount point %s does not exist; create it and run "
                        "'adectl unlock' again",
                        mapper, mount_point);
        /* Checked here, mounted there: a link makes the two differ, and may be swapped in between. */
        if (!streq(c->canonical, mount_point))
                return why(ret_why, -ELOOP,
                        "%s is open but not mounted: its mount point %s leads through a symbolic link to %s; aded "
                        "mounts only on the real path, so fix the link or mount it by hand",
                        mapper, mount_point, c->canonical);
        if (!c->directory)
                return why(ret_why, -ENOTDIR,
                        "%s is open but not mounted: its mount point %s is not a directory; make it one and "
                        "run 'adectl unlock' again",
                        mapper, mount_point);
        if (c->busy)
                return why(ret_why, -EBUSY,
                        "%s is open but not mounted: %s is busy (device %u:%u is mounted there); unmount it "
                        "and run 'adectl unlock' again",
                        mapper, mount_point, major(c->busy_devnum), minor(c->busy_devnum));
        return 0;
}

int ade_fs_mount_check(const char *mapper, const char *mount_point, char **ret_why) {
        _cleanup_(ade_fs_mount_check_done) AdeFsMountCheck c = {};
        struct stat st;
        int r;

        assert(mapper);
        assert(mount_point);
        assert(ret_why);

        *ret_why = NULL;
        if (stat(mapper, &st) < 0 || !S_ISBLK(st.st_mode))
                return -ENODEV;
        r = ade_fs_mount_check_read(st.st_rdev, mount_point, NULL, &c);
        if (r < 0)
                return r;
        return ade_fs_mount_check_verdict(&c, mapper, mount_point, ret_why);
}
