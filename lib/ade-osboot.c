/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-fs.h"
#include "ade-io.h"
#include "ade-log.h"
#include "ade-osboot.h"
#include "ade-tab.h"

#define FIELD_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/=:-"
#define FSTAB_FIELDS_MAX 6

static bool field_is_plain(const char *s) {
        return s && *s && s[strspn(s, FIELD_CHARS)] == 0;
}

static bool line_is_comment(const char *line, size_t len) {
        size_t i = 0;

        while (i < len && (line[i] == ' ' || line[i] == '\t'))
                i++;
        return i == len || line[i] == '#';
}

/* The whitespace-separated fields of the line @line (@len bytes, no newline): how many (up to
 * @max + 1, so that one too many shows), the first one's offset and length. */
static int line_fields(const char *line, size_t len, int max, size_t *ret_first, size_t *ret_first_len) {
        size_t i = 0, first = 0, first_len = 0;
        int n = 0;

        while (i < len && n <= max) {
                size_t start;

                while (i < len && (line[i] == ' ' || line[i] == '\t'))
                        i++;
                if (i == len)
                        break;
                start = i;
                while (i < len && line[i] != ' ' && line[i] != '\t')
                        i++;
                if (n == 0) {
                        first = start;
                        first_len = i - start;
                }
                n++;
        }
        *ret_first = first;
        *ret_first_len = first_len;
        return n;
}

/* The @index-th field (0-based) of the line, compared with @s. */
static bool line_field_is(const char *line, size_t len, int index, const char *s) {
        size_t i = 0;

        for (int n = 0;; n++) {
                size_t start;

                while (i < len && (line[i] == ' ' || line[i] == '\t'))
                        i++;
                if (i == len)
                        return false;
                start = i;
                while (i < len && line[i] != ' ' && line[i] != '\t')
                        i++;
                if (n == index)
                        return i - start == strlen(s) && memcmp(line + start, s, i - start) == 0;
        }
}

/* Finds the non-comment line of @text whose field @index is @s. 1 with the line's offset and
 * length, 0 when none; -EBADMSG when two are. */
static int text_find(const char *text, int index, const char *s, size_t *ret_at, size_t *ret_len) {
        size_t at = 0, found_at = 0, found_len = 0;
        int found = 0;

        while (text[at]) {
                const char *nl = strchr(text + at, '\n');
                size_t len = nl ? (size_t)(nl - (text + at)) : strlen(text + at);

                if (!line_is_comment(text + at, len) && line_field_is(text + at, len, index, s)) {
                        if (found)
                                return -EBADMSG;
                        found = 1;
                        found_at = at;
                        found_len = len;
                }
                at += len + (nl ? 1 : 0);
        }
        *ret_at = found_at;
        *ret_len = found_len;
        return found;
}

/* @text with its @len bytes at @at replaced by @line (and the newline @text lacked at its end when
 * @line is appended). */
static int text_splice(const char *text, size_t at, size_t len, const char *line, char **ret) {
        size_t total = strlen(text);
        bool append = at == total && len == 0;
        char *out;

        if (asprintf(&out, "%.*s%s%s%s", (int)at, text, append && total > 0 && text[total - 1] != '\n' ? "\n" : "",
                    line, append ? "\n" : text + at + len) < 0)
                return -ENOMEM;
        *ret = out;
        return 0;
}

int ade_osboot_crypttab_line(const AdeOsbootRoot *root, char **ret) {
        char *line;

        assert(root);
        assert(ret);

        if (!field_is_plain(root->partuuid) || !field_is_plain(root->header) || root->header[0] != '/')
                return -EINVAL;
        if (asprintf(&line, "%s PARTUUID=%s none luks,header=%s", ADE_OSBOOT_NAME, root->partuuid, root->header) < 0)
                return -ENOMEM;
        *ret = line;
        return 0;
}

int ade_osboot_render_crypttab(const char *old, const AdeOsbootRoot *root, char **ret) {
        _cleanup_free_ char *line = NULL, *out = NULL;
        size_t at, len;
        int r;

        assert(ret);

        r = ade_osboot_crypttab_line(root, &line);
        if (r < 0)
                return r;
        old = old ?: "";
        r = text_find(old, 0, ADE_OSBOOT_NAME, &at, &len);
        if (r < 0)
                return -EINVAL; /* two lines of one name: cryptsetup would take either */
        if (r > 0 && len == strlen(line) && memcmp(old + at, line, len) == 0) {
                out = strdup(old);
                if (!out)
                        return -ENOMEM;
                *ret = TAKE_PTR(out);
                return 0;
        }
        r = r > 0 ? text_splice(old, at, len, line, &out) : text_splice(old, strlen(old), 0, line, &out);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 1;
}

int ade_osboot_render_fstab(const char *old, char **ret, char **ret_why) {
        _cleanup_free_ char *lines = NULL, *out = NULL;
        size_t at = 0, root_at = 0, root_len = 0, lineno = 0;
        bool found = false;
        int r;

        assert(ret);

        old = old ?: "";
        while (old[at]) {
                const char *nl = strchr(old + at, '\n');
                size_t len = nl ? (size_t)(nl - (old + at)) : strlen(old + at), first, first_len;
                int n;

                lineno++;
                if (!line_is_comment(old + at, len)) {
                        n = line_fields(old + at, len, FSTAB_FIELDS_MAX, &first, &first_len);
                        if (n < 2 || n > FSTAB_FIELDS_MAX) {
                                if (ret_why && asprintf(ret_why,
                                                       "fstab line %zu has %d fields where fstab wants 2 to 6; fix "
                                                       "the line, then try again",
                                                       lineno, n) < 0)
                                        *ret_why = NULL;
                                return -EBADMSG;
                        }
                        if (line_field_is(old + at, len, 1, "/")) {
                                if (found) {
                                        if (ret_why && asprintf(ret_why,
                                                               "fstab mounts / twice (lines %zu and another); keep "
                                                               "one line for /, then try again",
                                                               lineno) < 0)
                                                *ret_why = NULL;
                                        return -EBADMSG;
                                }
                                found = true;
                                root_at = at;
                                root_len = len;
                        }
                }
                at += len + (nl ? 1 : 0);
        }
        if (!found) {
                if (ret_why && !(*ret_why = strdup("fstab has no line that mounts /; add the root's line (the "
                                                   "mapper is written into it), then try again")))
                        return -ENOMEM;
                return -ENOENT;
        }

        size_t first, first_len;
        const char *line = old + root_at;

        (void)line_fields(line, root_len, FSTAB_FIELDS_MAX, &first, &first_len);
        if (first_len == strlen(ADE_OSBOOT_MAPPER) && memcmp(line + first, ADE_OSBOOT_MAPPER, first_len) == 0) {
                out = strdup(old);
                if (!out)
                        return -ENOMEM;
                *ret = TAKE_PTR(out);
                return 0;
        }
        /* The original above, as ade-tab marks a repointed line; the rest of the line byte for byte. */
        if (asprintf(&lines, "# ade: %s was: %.*s\n%.*s%s%.*s", ADE_OSBOOT_NAME, (int)root_len, line, (int)first, line,
                    ADE_OSBOOT_MAPPER, (int)(root_len - first - first_len), line + first + first_len) < 0)
                return -ENOMEM;
        r = text_splice(old, root_at, root_len, lines, &out);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 1;
}

int ade_osboot_render_grub(char **ret) {
        char *text = strdup("# Written by ade (docs/architecture.md §9): the root is opened as " ADE_OSBOOT_MAPPER
                            " in the initramfs.\n"
                            "# While it is being encrypted the raw partition still carries the filesystem's "
                            "UUID, so grub must\n"
                            "# name the mapper, never root=UUID= or root=PARTUUID=.\n"
                            "GRUB_DISABLE_LINUX_UUID=true\n"
                            "GRUB_DISABLE_LINUX_PARTUUID=true\n"
                            "GRUB_DEVICE=" ADE_OSBOOT_MAPPER "\n");

        assert(ret);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* One file of the contract: its path under the prefix, what it held, what it is to hold. */
typedef struct Edit {
        const char *name; /* for messages: "/etc/fstab" */
        char *path;
        char *old; /* NULL when it did not exist */
        size_t old_size;
        mode_t mode;
        char *new;
        bool changed;
        bool written;
        bool created_dir; /* the drop-in's folder, made by us */
} Edit;

static void edit_done(Edit *e) {
        free(e->path);
        free(e->old);
        free(e->new);
}

static int edit_load(Edit *e, const char *prefix, const char *name) {
        int r;

        e->name = name;
        e->mode = 0644;
        if (asprintf(&e->path, "%s%s", prefix, name) < 0)
                return -ENOMEM;
        r = ade_read_file(e->path, &e->old, &e->old_size, &e->mode);
        if (r == -ENOENT) {
                e->mode = 0644;
                return 0;
        }
        return r;
}

static int edit_write(Edit *e, char **ret_why) {
        _cleanup_free_ char *dir = NULL;
        char *slash;
        int r;

        if (!e->changed)
                return 0;
        if (e->old) {
                r = ade_write_backup(e->path, e->old, e->old_size, e->mode, NULL);
                if (r < 0)
                        goto fail;
        } else {
                dir = strdup(e->path);
                if (!dir)
                        return -ENOMEM;
                slash = strrchr(dir, '/');
                *slash = 0;
                if (mkdir(dir, 0755) == 0)
                        e->created_dir = true;
                else if (errno != EEXIST) {
                        r = -errno;
                        goto fail;
                }
        }
        r = ade_write_file_atomic(e->path, e->new, strlen(e->new), e->mode);
        if (r < 0)
                goto fail;
        e->written = true;
        return 0;
fail:
        if (ret_why && asprintf(ret_why, "cannot write %s: %s", e->path, strerror(-r)) < 0)
                *ret_why = NULL;
        return r;
}

/* Puts a written file back as it was; best effort, each failure logged (the first failure is what
 * the caller reports). */
static void edit_undo(Edit *e) {
        int r = 0;

        if (!e->written)
                return;
        if (e->old)
                r = ade_write_file_atomic(e->path, e->old, e->old_size, e->mode);
        else if (unlink(e->path) < 0)
                r = -errno;
        if (r < 0)
                (void)ade_log_debug_errno(r, "Cannot put %s back as it was: %m", e->path);
        if (!e->old && e->created_dir) {
                _cleanup_free_ char *dir = strdup(e->path);

                if (dir) {
                        *strrchr(dir, '/') = 0;
                        (void)rmdir(dir);
                }
        }
        e->written = false;
}

/* Runs @path @arg (@arg may be NULL). 0, or a negative errno with *ret_why. */
static int run_program(const char *path, const char *arg, char **ret_why) {
        _cleanup_free_ char *output = NULL;
        char *argv[] = {(char *)path, (char *)arg, NULL};
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        int r;

        r = ade_fs_run(argv, &output);
        if (r < 0) {
                if (ret_why && asprintf(ret_why, "cannot run %s: %s", path, strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }
        if (r > 0) {
                if (ret_why && asprintf(ret_why, "%s exited with status %d: %s", base, r, output ?: "") < 0)
                        *ret_why = NULL;
                return -EIO;
        }
        return 0;
}

int ade_osboot_apply(const char *prefix, const AdeOsbootRoot *root, const AdeOsbootCommands *cmds, char **ret_why) {
        static const char *const names[] = {ADE_OSBOOT_CRYPTTAB, ADE_OSBOOT_FSTAB, ADE_OSBOOT_GRUB_DROPIN};
        _cleanup_free_ char *base = NULL;
        Edit edits[3] = {};
        const char *initramfs = cmds && cmds->update_initramfs ? cmds->update_initramfs : ADE_OSBOOT_UPDATE_INITRAMFS;
        const char *grub = cmds && cmds->update_grub ? cmds->update_grub : ADE_OSBOOT_UPDATE_GRUB;
        bool changed = false, initramfs_ran = false;
        int r;

        assert(prefix);
        assert(root);

        base = strdup(prefix);
        if (!base)
                return -ENOMEM;
        for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
                base[n - 1] = 0;

        ade_tab_edit_lock();

        /* Everything is rendered before anything is written: a malformed table changes nothing. */
        for (size_t i = 0; i < 3; i++) {
                r = edit_load(&edits[i], base, names[i]);
                if (r < 0) {
                        if (ret_why && asprintf(ret_why, "cannot read %s: %s", edits[i].path, strerror(-r)) < 0)
                                *ret_why = NULL;
                        goto finish;
                }
        }
        r = ade_osboot_render_crypttab(edits[0].old, root, &edits[0].new);
        if (r < 0) {
                if (ret_why && asprintf(ret_why,
                                       "cannot write the root's line into %s: the root's facts are not plain "
                                       "(PARTUUID=%s, header %s) or the table has two lines for %s",
                                       edits[0].path, root->partuuid ?: "?", root->header ?: "?", ADE_OSBOOT_NAME) < 0)
                        *ret_why = NULL;
                goto finish;
        }
        edits[0].changed = r > 0;
        r = ade_osboot_render_fstab(edits[1].old, &edits[1].new, ret_why);
        if (r < 0)
                goto finish;
        edits[1].changed = r > 0;
        r = ade_osboot_render_grub(&edits[2].new);
        if (r < 0)
                goto finish;
        edits[2].changed = !edits[2].old || !streq(edits[2].old, edits[2].new);

        for (size_t i = 0; i < 3; i++) {
                r = edit_write(&edits[i], ret_why);
                if (r < 0)
                        goto undo;
                changed = changed || edits[i].changed;
        }

        r = run_program(initramfs, "-u", ret_why);
        if (r < 0)
                goto undo;
        initramfs_ran = true;
        r = run_program(grub, NULL, ret_why);
        if (r < 0)
                goto undo;
        r = changed;
        goto finish;

undo:
        for (size_t i = 3; i > 0; i--)
                edit_undo(&edits[i - 1]);
        /* The initramfs built from the files just put back, so that it agrees with them again. */
        if (initramfs_ran && run_program(initramfs, "-u", NULL) < 0)
                (void)ade_log_debug_errno(-EIO, "%s -u failed again after the files were put back", initramfs);
finish:
        ade_tab_edit_unlock();
        for (size_t i = 0; i < 3; i++)
                edit_done(&edits[i]);
        return r;
}
