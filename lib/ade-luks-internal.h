/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the lib/ade-luks-*.c files share and nobody else sees: the libcryptsetup plumbing
 * (ade-luks-cryptsetup.c) that every operation of ade-luks.h is built from. Not installed; include
 * it only from ade-luks-*.c. */

#include <dirent.h>
#include <libcryptsetup.h>

#include "ade-luks.h"

#define SECTOR 512ULL
/* The header in front takes half the space freed at the end; the moving hotzone the other half. */
#define DATASHIFT_BYTES (ADE_LUKS_SHRINK_SIZE / 2)

static inline void crypt_freep(struct crypt_device **cd) {
        if (*cd)
                crypt_free(*cd);
}
#define _cleanup_crypt_ _cleanup_(crypt_freep)

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* A libcryptsetup context on @device, with the header in the file @header when given (detached or
 * exported), its log routed to ade_log_debug. luks_load() also loads the LUKS2 header: it fails
 * (-EINVAL from libcryptsetup) when there is none. */
int luks_init(const char *device, const char *header, struct crypt_device **ret);
/* Loads the header of @type (CRYPT_LUKS2; CRYPT_LUKS for LUKS1 or LUKS2, as adoption needs). */
int luks_load_type(const char *device, const char *header, const char *type, struct crypt_device **ret);
int luks_load(const char *device, const char *header, struct crypt_device **ret);

/* luks_load(), then the keyslot @keyfile opens: returns it, or -ENOKEY when it opens none. */
int luks_load_keyed(const char *device, const char *header, const AdeSecret *keyfile, struct crypt_device **ret);

/* Makes the next keyslot (and a formatted header's volume key digest) take ADE's fast PBKDF2
 * (docs/architecture.md §3) instead of a benchmarked one. */
int luks_set_keyfile_pbkdf(struct crypt_device *cd);

/* Returns the keyslot @key opens, -ENOKEY when it opens none. Activates nothing. */
int luks_keyslot_by_key(struct crypt_device *cd, const AdeSecret *key);

/* Finds our token: returns its id and, when @ret is given, the parsed token. -ENOENT when absent. */
int luks_token_find(struct crypt_device *cd, AdeLuksToken **ret);

/* Writes @t bound to @keyslot, replacing our existing token in the same metadata write when there
 * is one: a crash sees either the old token or the new one, never none. */
int luks_token_store(struct crypt_device *cd, const AdeLuksToken *t, int keyslot);

/* A keyslot for @keyfile and @token bound to it, on a freshly formatted header. Returns the keyslot. */
int luks_add_keyslot_and_token(struct crypt_device *cd, const AdeLuksToken *token, const AdeSecret *keyfile);

/* The safety contract of ade-luks.h: -EPERM unless the escrow is confirmed and @token's SecretURL is
 * versioned; -EINVAL without a token or a key file. */
int luks_check_escrow(const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o);
/* The same, and -EINVAL without a header_dir: whatever writes to a device backs up or keeps a header there. */
int luks_check_write_allowed(const AdeLuksToken *token, const AdeSecret *keyfile, const AdeLuksOptions *o);

/* Tells o->hook that @step was reached. Returns 0 to go on, or what the operation returns now: the
 * hook's negative errno, -ECANCELED for another non-zero answer. */
int luks_hook(const AdeLuksOptions *o, AdeLuksStep step);

/* crypt_activate_by_passphrase() and crypt_deactivate() under ade_dm_lock(): libcryptsetup reaches
 * libdevmapper, which is not thread-safe, and aded activates from several job threads at once. */
int luks_activate(struct crypt_device *cd, const char *name, int slot, const AdeSecret *keyfile, uint32_t flags);
int luks_deactivate(struct crypt_device *cd, const char *name);

/* Runs the reencryption loaded in @cd with o->progress. -ECANCELED when the callback stopped it. */
int luks_run_reencrypt(struct crypt_device *cd, const AdeLuksOptions *o);

/* The hotzone for libcryptsetup, in sectors (0: its default). */
uint64_t luks_hotzone_sectors(const AdeLuksOptions *o);

/* True for the crash-safe resilience modes AdeLuksOptions.resilience accepts (NULL too). */
bool luks_resilience_ok(const char *resilience);

/* A file that must survive a power cut: 0600, its contents and its directory entry on disk. */
int luks_make_durable(const char *path);

/* Creates a 4 KiB file from the mkostemp() @template (mode 0600) for luks_init() to format a header
 * into: libcryptsetup writes a detached header only into a file that exists. On failure no file is
 * left. */
int luks_header_file_new(char *template);

/* crypt_header_backup() of @cd to @path; a failure for want of space in @path's folder is -ENOSPC
 * (libcryptsetup says EIO) and leaves no file. */
int luks_header_backup_to(struct crypt_device *cd, const char *path);
/* Backs up the header loaded in @cd to @header_dir (ade_luks_backup_header()). */
int luks_backup_header(struct crypt_device *cd, const char *header_dir, char **ret_path);

/* Removes the older backups of volume @uuid from @header_dir, all but @keep (a path or NULL):
 * a backup is kept until the next successful operation (docs/architecture.md §4). */
void luks_prune_backups(const char *header_dir, const char *uuid, const char *keep);
