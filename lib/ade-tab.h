/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-fs.h"

/* /etc/crypttab and /etc/fstab as ade edits them (docs/architecture.md §9): one crypttab line per
 * volume, named after its mapping, and the volume's one fstab line repointed at the mapping.
 *
 * Contracts shared by every function here:
 * - @path is the table's file (tests give their own); a missing file is an empty table.
 * - Lines ade did not write are never changed, moved or reformatted, except the one fstab line
 *   ade_fstab_repoint() repoints; it keeps that line's original, verbatim, in a comment line of
 *   its own above it ("# ade: <name> was: <line>"), which is what ade_fstab_restore() puts back. A
 *   line ade added where there was none follows "# ade: <name> added".
 * - A table with a line that is not a comment and not 2 to 4 (crypttab) or 2 to 6 (fstab)
 *   whitespace-separated fields, or holds a NUL byte, is refused: -EBADMSG, and *ret_why says
 *   "<path>:<line>: ..." and what to do; the file is left as it was.
 * - A change is written atomically (a temporary file beside it, fsync, rename, fsync of the
 *   folder), keeps the file's mode, and first copies the old file to "<path>.ade-<UTC time>" (the
 *   backup's name in *ret_backup when asked for).
 * - Idempotent: a second call with the same arguments changes nothing. Returns 1 when the file was
 *   changed, 0 when it already said so, or a negative errno (with *ret_why when it is the table's
 *   fault). */

/* Makes crypttab's line for @name read "@name @source @key @options" (@key and @options may be
 * NULL: "none" and no options). A line of another name is left alone, even for the same source. */
int ade_crypttab_set(const char *path, const char *name, const char *source, const char *key, const char *options,
        char **ret_backup, char **ret_why);

/* Whether crypttab has a line for @name: 1, 0, or a negative errno (-EBADMSG with *ret_why for a
 * malformed table). Reads only. */
int ade_crypttab_has(const char *path, const char *name, char **ret_why);

/* Drops crypttab's line for @name. */
int ade_crypttab_remove(const char *path, const char *name, char **ret_backup, char **ret_why);

/* Points the fstab line that mounts the filesystem @id at @mount_point to /dev/mapper/@name, adding
 * "_netdev", "nofail" and "x-systemd.before=multi-user.target" to its options (mounted after the
 * network brings Key Vault; a locked volume does not stop the boot; services start after it). With no such line, adds
 * one for @mount_point with @fstype and @options (the mount's options today; NULL for "defaults"). A line that names
 * another filesystem at @mount_point is -EEXIST with *ret_why. */
int ade_fstab_repoint(const char *path, const AdeFsId *id, const char *mount_point, const char *name,
        const char *fstype, const char *options, char **ret_backup, char **ret_why);

/* A volume adopted from ADE keeps its mapping name @name, and ADE's fstab lines mount
 * /dev/mapper/@name with "nofail" only: each gets the boot flags ade_fstab_repoint() adds (opened
 * from the key socket after the network, so its mount must wait for it too), ADE's line kept in a
 * comment as ade_fstab_repoint() keeps one (ade_fstab_restore() puts it back). 1 when a line
 * changed, 0 when none needed to (none mounts /dev/mapper/@name, or each has the flags). */
int ade_fstab_adopt(const char *path, const char *name, char **ret_backup, char **ret_why);

/* Adds @option ("name" or "name=value") to the options of each fstab line that mounts something on
 * @mount_point and has no option of that name yet, the line as it was kept above it in a comment
 * "# ade: @note was: <line>". 1 when a line changed, 0 when none needed to. */
int ade_fstab_add_option(const char *path, const char *mount_point, const char *option, const char *note,
        char **ret_backup, char **ret_why);

/* Undoes ade_fstab_repoint() for @name: the original line back, or the added line gone. When the
 * line below ade's comment no longer names /dev/mapper/@name (a person edited it), nothing is
 * changed: -ESTALE with *ret_why. */
int ade_fstab_restore(const char *path, const char *name, char **ret_backup, char **ret_why);

/* One crypttab line's fields, as written (crypttab has no escapes). */
typedef struct AdeCrypttabEntry {
        char *name;
        char *source;
        char *key;     /* NULL when the line has no third field */
        char *options; /* NULL when the line has no fourth field */
        char *line;    /* the line, verbatim */
} AdeCrypttabEntry;

void ade_crypttab_entries_free(AdeCrypttabEntry *entries, size_t n);

/* The lines of crypttab that are not comments, in order. Reads only; same refusals as above. */
int ade_crypttab_read(const char *path, AdeCrypttabEntry **ret, size_t *ret_n, char **ret_why);

/* The turn every edit above takes (one edit of the tables at a time per process). Another module
 * that rewrites these tables itself (lib/ade-osboot.c) holds it from its first write to its last
 * restore, so that a job's edit made in between is neither lost nor undone by a rollback. Not
 * recursive: no function above may be called while it is held. */
void ade_tab_edit_lock(void);
void ade_tab_edit_unlock(void);
