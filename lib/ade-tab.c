/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ade-io.h"
#include "ade-log.h"
#include "ade-tab.h"

#define TAB_FIELDS_MAX 6

typedef struct Tab {
        const char *path;
        char **lines; /* verbatim, without their newline */
        size_t n;
        mode_t mode;
        bool exists;
        bool fstab;
} Tab;

/* A table is edited by reading it whole, changing it and renaming a new file over it: two edits at
 * once would lose one of them, and aded's jobs, one thread per volume, edit crypttab and fstab at
 * their ends. One edit at a time per process; reads need no turn (the rename is atomic). */
static pthread_mutex_t tab_edit_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t *tab_edit_begin(void) {
        pthread_mutex_lock(&tab_edit_lock);
        return &tab_edit_lock;
}

void ade_tab_edit_lock(void) {
        pthread_mutex_lock(&tab_edit_lock);
}

void ade_tab_edit_unlock(void) {
        pthread_mutex_unlock(&tab_edit_lock);
}

static void tab_edit_endp(pthread_mutex_t **lock) {
        pthread_mutex_unlock(*lock);
}

/* Holds the edit's turn until the end of the scope; declared first, so that it is given up last. */
#define TAB_EDIT_TURN _cleanup_(tab_edit_endp) pthread_mutex_t *_tab_turn_ = tab_edit_begin()

static void tab_done(Tab *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->lines[i]);
        free(t->lines);
        t->lines = NULL;
        t->n = 0;
}

static bool line_is_comment(const char *line) {
        line += strspn(line, " \t");
        return *line == 0 || *line == '#';
}

/* Splits a copy of @line at blanks into @fields (at most TAB_FIELDS_MAX + 1, so that one too many
 * shows); returns the count. The copy is *ret_copy's. */
static int line_fields(const char *line, char **ret_copy, char *fields[TAB_FIELDS_MAX + 1]) {
        char *copy = strdup(line), *save = NULL, *f;
        int n = 0;

        if (!copy)
                return -ENOMEM;
        for (f = strtok_r(copy, " \t", &save); f && n <= TAB_FIELDS_MAX; f = strtok_r(NULL, " \t", &save))
                fields[n++] = f;
        *ret_copy = copy;
        return n;
}

/* fstab's octal escapes (\040 for a blank), as getmntent() reads them. */
static char *unescape(const char *s) {
        char *out = malloc(strlen(s) + 1), *o = out;

        if (!out)
                return NULL;
        while (*s) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                        s[3] <= '7') {
                        *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 4;
                } else
                        *o++ = *s++;
        }
        *o = 0;
        return out;
}

static char *escape(const char *s) {
        char *out = malloc(strlen(s) * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (; *s; s++)
                if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
                        o += sprintf(o, "\\%03o", (unsigned char)*s);
                else
                        *o++ = *s;
        *o = 0;
        return out;
}

static int tab_load(const char *path, bool fstab, Tab *ret, char **ret_why) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, lineno = 0;
        ssize_t len;
        struct stat st;
        Tab t = {.path = path, .mode = 0644, .fstab = fstab};

        f = fopen(path, "re");
        if (!f) {
                if (errno != ENOENT)
                        return ade_log_debug_errno(errno, "Cannot read %s: %m", path);
                *ret = t;
                return 0;
        }
        if (fstat(fileno(f), &st) < 0)
                return -errno;
        t.mode = st.st_mode & 07777;
        t.exists = true;

        while ((len = getline(&buf, &size, f)) >= 0) {
                _cleanup_free_ char *copy = NULL;
                char *fields[TAB_FIELDS_MAX + 1], **grown;
                int n;

                lineno++;
                if (len > 0 && buf[len - 1] == '\n')
                        buf[--len] = 0;
                if (strlen(buf) != (size_t)len) {
                        tab_done(&t);
                        if (asprintf(ret_why, "%s:%zu: the line holds a NUL byte; fix or remove it, then try again",
                                    path, lineno) < 0)
                                *ret_why = NULL;
                        return -EBADMSG;
                }
                if (!line_is_comment(buf)) {
                        n = line_fields(buf, &copy, fields);
                        if (n < 0) {
                                tab_done(&t);
                                return n;
                        }
                        if (n < 2 || n > (fstab ? 6 : 4)) {
                                tab_done(&t);
                                if (asprintf(ret_why,
                                            "%s:%zu: %d fields where %s wants 2 to %d; fix the line, then try again",
                                            path, lineno, n > TAB_FIELDS_MAX ? TAB_FIELDS_MAX + 1 : n,
                                            fstab ? "fstab" : "crypttab", fstab ? 6 : 4) < 0)
                                        *ret_why = NULL;
                                return -EBADMSG;
                        }
                }
                grown = reallocarray(t.lines, t.n + 1, sizeof(char *));
                if (!grown || !(grown[t.n] = strdup(buf))) {
                        if (grown)
                                t.lines = grown;
                        tab_done(&t);
                        return -ENOMEM;
                }
                t.lines = grown;
                t.n++;
        }
        if (ferror(f)) {
                tab_done(&t);
                return -EIO;
        }
        *ret = t;
        return 0;
}

static int tab_insert(Tab *t, size_t at, const char *line) {
        char **grown = reallocarray(t->lines, t->n + 1, sizeof(char *)), *copy;

        if (!grown)
                return -ENOMEM;
        t->lines = grown;
        copy = strdup(line);
        if (!copy)
                return -ENOMEM;
        memmove(t->lines + at + 1, t->lines + at, (t->n - at) * sizeof(char *));
        t->lines[at] = copy;
        t->n++;
        return 0;
}

static void tab_delete(Tab *t, size_t at) {
        free(t->lines[at]);
        memmove(t->lines + at, t->lines + at + 1, (t->n - at - 1) * sizeof(char *));
        t->n--;
}

static int tab_replace(Tab *t, size_t at, const char *line) {
        char *copy = strdup(line);

        if (!copy)
                return -ENOMEM;
        free(t->lines[at]);
        t->lines[at] = copy;
        return 0;
}

/* The old file to "<path>.ade-<UTC time>[.N]", never over an earlier backup. */
static int tab_backup(const Tab *t, char **ret_backup) {
        _cleanup_free_ char *old = NULL;
        size_t size = 0;
        int r;

        r = ade_read_file(t->path, &old, &size, NULL);
        if (r < 0)
                return r;
        return ade_write_backup(t->path, old, size, t->mode, ret_backup);
}

/* Returns 1 (the table changed) or a negative errno. */
static int tab_save(const Tab *t, char **ret_backup) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (t->exists) {
                r = tab_backup(t, ret_backup);
                if (r < 0)
                        return ade_log_debug_errno(r, "Cannot back %s up: %m", t->path);
        }
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++)
                fprintf(f, "%s\n", t->lines[i]);
        if (fclose(f) != 0)
                return -ENOMEM;
        r = ade_write_file_atomic(t->path, text ?: "", size, t->mode);
        return r < 0 ? r : 1;
}

/* The index of the crypttab line named @name, or -1. */
static ssize_t crypttab_find(const Tab *t, const char *name) {
        for (size_t i = 0; i < t->n; i++) {
                _cleanup_free_ char *copy = NULL;
                char *fields[TAB_FIELDS_MAX + 1];

                if (line_is_comment(t->lines[i]))
                        continue;
                if (line_fields(t->lines[i], &copy, fields) > 0 && streq(fields[0], name))
                        return (ssize_t)i;
        }
        return -1;
}

int ade_crypttab_set(const char *path, const char *name, const char *source, const char *key, const char *options,
        char **ret_backup, char **ret_why) {
        TAB_EDIT_TURN;
        _cleanup_(tab_done) Tab t = {};
        _cleanup_free_ char *line = NULL;
        ssize_t at;
        int r;

        if (!path || !name || !source || strpbrk(name, " \t\n") || strpbrk(source, " \t\n") ||
                (key && strpbrk(key, " \t\n")) || (options && strpbrk(options, " \t\n")))
                return -EINVAL;
        r = tab_load(path, false, &t, ret_why);
        if (r < 0)
                return r;
        if (asprintf(&line, "%s %s %s%s%s", name, source, key ?: "none", options ? " " : "", options ?: "") < 0)
                return -ENOMEM;

        at = crypttab_find(&t, name);
        if (at >= 0 && streq(t.lines[at], line))
                return 0;
        r = at >= 0 ? tab_replace(&t, (size_t)at, line) : tab_insert(&t, t.n, line);
        if (r < 0)
                return r;
        return tab_save(&t, ret_backup);
}

int ade_crypttab_has(const char *path, const char *name, char **ret_why) {
        _cleanup_(tab_done) Tab t = {};
        int r;

        if (!path || !name)
                return -EINVAL;
        r = tab_load(path, false, &t, ret_why);
        if (r < 0)
                return r;
        return crypttab_find(&t, name) >= 0;
}

int ade_crypttab_remove(const char *path, const char *name, char **ret_backup, char **ret_why) {
        TAB_EDIT_TURN;
        _cleanup_(tab_done) Tab t = {};
        ssize_t at;
        int r;

        if (!path || !name)
                return -EINVAL;
        r = tab_load(path, false, &t, ret_why);
        if (r < 0)
                return r;
        at = crypttab_find(&t, name);
        if (at < 0)
                return 0;
        tab_delete(&t, (size_t)at);
        return tab_save(&t, ret_backup);
}

/* "# ade: <name> was: " and "# ade: <name> added". */
static const char *marker_rest(const char *line, const char *name) {
        const char *p = startswith(line, "# ade: ");

        if (!p || !(p = startswith(p, name)))
                return NULL;
        return p;
}

/* Whether fstab line @i names /dev/mapper/@name as its source. */
static bool fstab_line_is_ours(const Tab *t, size_t i, const char *name) {
        _cleanup_free_ char *copy = NULL;
        char *fields[TAB_FIELDS_MAX + 1];
        const char *p;

        if (line_is_comment(t->lines[i]) || line_fields(t->lines[i], &copy, fields) < 2)
                return false;
        p = startswith(fields[0], "/dev/mapper/");
        return p && streq(p, name);
}

/* @options with each boot flag added when absent: "_netdev" (mounted after the network, which
 * brings Key Vault), "nofail" (a volume left locked does not stop the boot) and
 * "x-systemd.before=multi-user.target" (nofail alone orders the mount before nothing, so services
 * could start before their data is there). */
static char *options_with_boot_flags(const char *options) {
        static const char *const flags[] = {"_netdev", "nofail", "x-systemd.before=multi-user.target"};
        _cleanup_free_ char *out = strdup(options ?: "defaults");

        if (!out)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                _cleanup_free_ char *copy = strdup(out);
                char *save = NULL, *grown;
                bool found = false;

                if (!copy)
                        return NULL;
                for (char *o = strtok_r(copy, ",", &save); o && !found; o = strtok_r(NULL, ",", &save))
                        found = streq(o, flags[i]);
                if (found)
                        continue;
                if (asprintf(&grown, "%s,%s", out, flags[i]) < 0)
                        return NULL;
                free(out);
                out = grown;
        }
        return TAKE_PTR(out);
}

int ade_fstab_repoint(const char *path, const AdeFsId *id, const char *mount_point, const char *name,
        const char *fstype, const char *options, char **ret_backup, char **ret_why) {
        TAB_EDIT_TURN;
        _cleanup_(tab_done) Tab t = {};
        _cleanup_free_ char *line = NULL, *comment = NULL, *opts = NULL, *dir = NULL;
        int r;

        if (!path || !id || !mount_point || mount_point[0] != '/' || !name || !fstype || strpbrk(name, " \t\n") ||
                strpbrk(fstype, " \t\n") || (options && strpbrk(options, " \t\n")))
                return -EINVAL;
        r = tab_load(path, true, &t, ret_why);
        if (r < 0)
                return r;

        for (size_t i = 0; i < t.n; i++) {
                _cleanup_free_ char *copy = NULL, *target = NULL;
                char *fields[TAB_FIELDS_MAX + 1];
                int n;

                if (line_is_comment(t.lines[i]))
                        continue;
                n = line_fields(t.lines[i], &copy, fields);
                if (n < 0)
                        return n;
                target = unescape(fields[1]);
                if (!target)
                        return -ENOMEM;
                if (!streq(target, mount_point))
                        continue;

                if (fstab_line_is_ours(&t, i, name)) {
                        /* Ours already: only the boot flags may be missing (a person's edit). */
                        opts = options_with_boot_flags(n >= 4 ? fields[3] : NULL);
                        if (!opts)
                                return -ENOMEM;
                        if (n >= 4 && streq(opts, fields[3]))
                                return 0;
                        if (asprintf(&line, "%s %s %s %s %s %s", fields[0], fields[1], n >= 3 ? fields[2] : fstype,
                                    opts, n >= 5 ? fields[4] : "0", n >= 6 ? fields[5] : "0") < 0)
                                return -ENOMEM;
                        r = tab_replace(&t, i, line);
                } else if (ade_fs_spec_names(fields[0], id)) {
                        opts = options_with_boot_flags(n >= 4 ? fields[3] : NULL);
                        if (!opts)
                                return -ENOMEM;
                        if (asprintf(&comment, "# ade: %s was: %s", name, t.lines[i]) < 0 ||
                                asprintf(&line, "/dev/mapper/%s %s %s %s %s %s", name, fields[1],
                                        n >= 3 ? fields[2] : fstype, opts, n >= 5 ? fields[4] : "0",
                                        n >= 6 ? fields[5] : "0") < 0)
                                return -ENOMEM;
                        r = tab_replace(&t, i, line);
                        if (r >= 0)
                                r = tab_insert(&t, i, comment);
                } else {
                        if (asprintf(ret_why,
                                    "%s:%zu mounts %s on %s, not the filesystem of the volume %s; resolve the "
                                    "conflict in %s, then try again",
                                    path, i + 1, fields[0], mount_point, name, path) < 0)
                                *ret_why = NULL;
                        return -EEXIST;
                }
                if (r < 0)
                        return r;
                return tab_save(&t, ret_backup);
        }

        /* Mounted today, never in fstab: a line so that it comes back after a reboot. */
        opts = options_with_boot_flags(options);
        dir = escape(mount_point);
        if (!opts || !dir)
                return -ENOMEM;
        if (asprintf(&comment, "# ade: %s added", name) < 0 ||
                asprintf(&line, "/dev/mapper/%s %s %s %s 0 %d", name, dir, fstype, opts,
                        ade_fs_is_ext(fstype) ? 2 : 0) < 0)
                return -ENOMEM;
        r = tab_insert(&t, t.n, comment);
        if (r >= 0)
                r = tab_insert(&t, t.n, line);
        if (r < 0)
                return r;
        return tab_save(&t, ret_backup);
}

/* Rewrites the options of each fstab line @match takes to what @options makes of them, the line as
 * it was kept above it in "# ade: @note was: <line>". 1 when a line changed, 0 when none did. */
static int fstab_edit_options(const char *path, bool (*match)(char *const *fields, int n, const void *data),
        char *(*options)(const char *old, const void *data), const void *data, const char *note, char **ret_backup,
        char **ret_why) {
        TAB_EDIT_TURN;
        _cleanup_(tab_done) Tab t = {};
        bool changed = false;
        int r;

        r = tab_load(path, true, &t, ret_why);
        if (r < 0)
                return r;

        for (size_t i = 0; i < t.n; i++) {
                _cleanup_free_ char *copy = NULL, *opts = NULL, *line = NULL, *comment = NULL;
                char *fields[TAB_FIELDS_MAX + 1];
                int n;

                if (line_is_comment(t.lines[i]))
                        continue;
                n = line_fields(t.lines[i], &copy, fields);
                if (n < 0)
                        return n;
                if (n < 2 || !match(fields, n, data))
                        continue;
                opts = options(n >= 4 ? fields[3] : NULL, data);
                if (!opts)
                        return -ENOMEM;
                if (n >= 4 && streq(opts, fields[3]))
                        continue;
                if (asprintf(&comment, "# ade: %s was: %s", note, t.lines[i]) < 0 ||
                        asprintf(&line, "%s %s %s %s %s %s", fields[0], fields[1], n >= 3 ? fields[2] : "auto", opts,
                                n >= 5 ? fields[4] : "0", n >= 6 ? fields[5] : "0") < 0)
                        return -ENOMEM;
                r = tab_replace(&t, i, line);
                if (r >= 0)
                        r = tab_insert(&t, i, comment);
                if (r < 0)
                        return r;
                i++; /* past the line, now below its comment */
                changed = true;
        }
        return changed ? tab_save(&t, ret_backup) : 0;
}

static bool match_spec(char *const *fields, int n, const void *data) {
        return n >= 1 && streq(fields[0], data);
}

static char *boot_flags(const char *old, const void *data) {
        (void)data;
        return options_with_boot_flags(old);
}

int ade_fstab_adopt(const char *path, const char *name, char **ret_backup, char **ret_why) {
        _cleanup_free_ char *spec = NULL;

        if (!path || !name || !name[0] || strpbrk(name, " \t\n/"))
                return -EINVAL;
        if (asprintf(&spec, "/dev/mapper/%s", name) < 0)
                return -ENOMEM;
        return fstab_edit_options(path, match_spec, boot_flags, spec, name, ret_backup, ret_why);
}

/* Whether the fstab options @options have one named as @option is (the part before '='). */
static bool options_have(const char *options, const char *option) {
        size_t k = strcspn(option, "=");

        for (const char *p = options; p && *p;) {
                size_t n = strcspn(p, ",");

                if (strcspn(p, ",=") == k && strncmp(p, option, k) == 0)
                        return true;
                p += n;
                p += *p == ',';
        }
        return false;
}

typedef struct AddOption {
        const char *mount_point;
        const char *option;
} AddOption;

static bool match_mount_point(char *const *fields, int n, const void *data) {
        _cleanup_free_ char *target = n >= 2 ? unescape(fields[1]) : NULL;

        return target && streq(target, ((const AddOption *)data)->mount_point);
}

static char *with_option(const char *old, const void *data) {
        const char *option = ((const AddOption *)data)->option;
        char *out = NULL;

        if (options_have(old, option))
                return strdup(old);
        return asprintf(&out, "%s,%s", old ?: "defaults", option) < 0 ? NULL : out;
}

int ade_fstab_add_option(const char *path, const char *mount_point, const char *option, const char *note,
        char **ret_backup, char **ret_why) {
        if (!path || !mount_point || !option || !option[0] || strpbrk(option, " \t\n,") || !note ||
                strpbrk(note, " \t\n"))
                return -EINVAL;
        return fstab_edit_options(path, match_mount_point, with_option,
                &(const AddOption){.mount_point = mount_point, .option = option}, note, ret_backup, ret_why);
}

int ade_fstab_restore(const char *path, const char *name, char **ret_backup, char **ret_why) {
        TAB_EDIT_TURN;
        _cleanup_(tab_done) Tab t = {};
        int r;

        if (!path || !name)
                return -EINVAL;
        r = tab_load(path, true, &t, ret_why);
        if (r < 0)
                return r;

        for (size_t i = 0; i < t.n; i++) {
                const char *rest = marker_rest(t.lines[i], name), *was;

                if (!rest || !(streq(rest, " added") || startswith(rest, " was: ")))
                        continue;
                if (i + 1 >= t.n || !fstab_line_is_ours(&t, i + 1, name)) {
                        if (asprintf(ret_why,
                                    "%s:%zu: the line after ade's note no longer mounts /dev/mapper/%s; put back what "
                                    "the note says by hand, or remove the note",
                                    path, i + 1, name) < 0)
                                *ret_why = NULL;
                        return -ESTALE;
                }
                was = startswith(rest, " was: ");
                tab_delete(&t, i + 1);
                r = was ? tab_replace(&t, i, was) : (tab_delete(&t, i), 0);
                if (r < 0)
                        return r;
                return tab_save(&t, ret_backup);
        }
        return 0;
}

void ade_crypttab_entries_free(AdeCrypttabEntry *entries, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(entries[i].name);
                free(entries[i].source);
                free(entries[i].key);
                free(entries[i].options);
                free(entries[i].line);
        }
        free(entries);
}

int ade_crypttab_read(const char *path, AdeCrypttabEntry **ret, size_t *ret_n, char **ret_why) {
        _cleanup_(tab_done) Tab t = {};
        AdeCrypttabEntry *entries = NULL;
        size_t n = 0;
        int r;

        if (!path || !ret || !ret_n)
                return -EINVAL;
        r = tab_load(path, false, &t, ret_why);
        if (r < 0)
                return r;
        for (size_t i = 0; i < t.n; i++) {
                _cleanup_free_ char *copy = NULL;
                char *fields[TAB_FIELDS_MAX + 1];
                AdeCrypttabEntry *grown, *e;
                int k;

                if (line_is_comment(t.lines[i]))
                        continue;
                k = line_fields(t.lines[i], &copy, fields);
                if (k < 0) {
                        ade_crypttab_entries_free(entries, n);
                        return k;
                }
                grown = reallocarray(entries, n + 1, sizeof(*entries));
                if (!grown) {
                        ade_crypttab_entries_free(entries, n);
                        return -ENOMEM;
                }
                entries = grown;
                e = &entries[n++];
                *e = (AdeCrypttabEntry){
                        .name = strdup(fields[0]),
                        .source = strdup(fields[1]),
                        .key = k > 2 ? strdup(fields[2]) : NULL,
                        .options = k > 3 ? strdup(fields[3]) : NULL,
                        .line = strdup(t.lines[i]),
                };
                if (!e->name || !e->source || (k > 2 && !e->key) || (k > 3 && !e->options) || !e->line) {
                        ade_crypttab_entries_free(entries, n);
                        return -ENOMEM;
                }
        }
        *ret = entries;
        *ret_n = n;
        return 0;
}
