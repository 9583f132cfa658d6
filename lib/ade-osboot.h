/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* The OS volume's boot contract (docs/architecture.md §9, "What aded writes for it"): what the
 * system's own tables must say so that the initramfs opens the root as /dev/mapper/ade-root with
 * its detached header, and grub boots the kernel with root=/dev/mapper/ade-root.
 *
 * The render functions are pure (text in, text out); ade_osboot_apply() writes their results under
 * a root folder (tests give a temporary one), then runs update-initramfs and update-grub. */

#define ADE_OSBOOT_NAME "ade-root"
#define ADE_OSBOOT_MAPPER "/dev/mapper/" ADE_OSBOOT_NAME
#define ADE_OSBOOT_CRYPTTAB "/etc/crypttab"
#define ADE_OSBOOT_FSTAB "/etc/fstab"
#define ADE_OSBOOT_GRUB_DROPIN "/etc/default/grub.d/99-ade-root.cfg"
#define ADE_OSBOOT_UPDATE_INITRAMFS "/usr/sbin/update-initramfs"
#define ADE_OSBOOT_UPDATE_GRUB "/usr/sbin/update-grub"

/* The root's facts the contract names. */
typedef struct AdeOsbootRoot {
        const char *partuuid; /* the root partition's GPT PARTUUID (not the filesystem's UUID) */
        const char *header;   /* the detached header's absolute path, "/boot/luks/<LUKS UUID>.header" */
} AdeOsbootRoot;

/* The programs ade_osboot_apply() runs after the files are written, absolute paths; NULL for the
 * defaults above. Each runs with a fixed argv ("-u" for update-initramfs, none for update-grub) and
 * aded's environment, which holds no secret. */
typedef struct AdeOsbootCommands {
        const char *update_initramfs;
        const char *update_grub;
} AdeOsbootCommands;

/* The root's crypttab line, "ade-root PARTUUID=<p> none luks,header=<h>", without a newline.
 * -EINVAL when a fact is missing or holds a character outside "A-Za-z0-9._/=:-" (crypttab has no
 * quoting, and the initramfs hook refuses such a line). */
int ade_osboot_crypttab_line(const AdeOsbootRoot *root, char **ret);

/* @old (crypttab's text; NULL or "" for none) with the line for ade-root set to
 * ade_osboot_crypttab_line(): replaced where it is, else appended. Every other line stays byte for
 * byte. Returns 1 and the new text, 0 and a copy of @old when it already says so, or -EINVAL. */
int ade_osboot_render_crypttab(const char *old, const AdeOsbootRoot *root, char **ret);

/* @old (fstab's text) with the one line that mounts "/" pointed at /dev/mapper/ade-root, the rest
 * of that line (mount point, type, options, dump, pass) unchanged, and its original kept above it
 * as "# ade: ade-root was: <line>" (as lib/ade-tab.h writes it, so ade_fstab_restore() undoes it).
 * Returns 1 and the new text, 0 and a copy when it names the mapper already, -ENOENT when no line
 * mounts "/", -EBADMSG when two do or a line is malformed; the last two with *ret_why (a sentence
 * that says what to fix). */
int ade_osboot_render_fstab(const char *old, char **ret, char **ret_why);

/* The grub drop-in's text: GRUB_DISABLE_LINUX_UUID=true, GRUB_DISABLE_LINUX_PARTUUID=true,
 * GRUB_DEVICE=/dev/mapper/ade-root, one line each, with a comment that says why. */
int ade_osboot_render_grub(char **ret);

/* Writes the contract under @prefix ("/" for this machine): crypttab, fstab and the grub drop-in,
 * each that changes first copied to "<file>.ade-<UTC time>" and replaced atomically (the drop-in's
 * folder created when missing), then runs update-initramfs -u and update-grub (@cmds; NULL for
 * the defaults). When a write or a program fails, every file already written is put back as it was
 * (a file that did not exist is removed again) and the programs that had succeeded run once more,
 * so that the initramfs and grub.cfg agree with the files again; the first failure is returned with
 * *ret_why ("update-grub exited with status 1: <its output>"). The programs run even when every
 * file already said so: a crash after the writes and before them must not leave an initramfs that
 * knows nothing of the root. Returns 1 when a file changed, 0 when none did, or a negative errno. */
int ade_osboot_apply(const char *prefix, const AdeOsbootRoot *root, const AdeOsbootCommands *cmds, char **ret_why);
