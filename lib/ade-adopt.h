/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "ade-util.h"

/* Adoption of the data volumes Azure Disk Encryption (ADE) encrypted (docs/architecture.md §12): which
 * of crypttab's lines are ADE's, and what adopting each one takes.
 *
 * Split as the preconditions are (ade-precheck.h): ade_adopt_gather() reads crypttab and the devices
 * it names (libblkid, libcryptsetup; no key, nothing written), and ade_adopt_evaluate(), which does
 * no I/O, turns those facts into one plan per volume or the reason it is refused. */

/* Where ADE's key file is: the BEK VOLUME disk, mounted by ADE's fstab line, and the key file's name
 * prefix (LinuxPassPhraseFileName, or LinuxPassPhraseFileName_<controller>_<lun> per data disk). */
#define ADE_ADOPT_BEK_MOUNT "/mnt/azure_bek_disk"
#define ADE_ADOPT_KEY_FILE_PREFIX "LinuxPassPhraseFileName"
/* ADE's keyscript, used on lines whose key file is found by the script rather than named. */
#define ADE_ADOPT_KEYSCRIPT "azure_crypt_key.sh"
/* ADE's mapping of the OS volume: adopting it is a later step. */
#define ADE_ADOPT_OS_MAPPING "osencrypt"

/* In ADE's own folder ([daemon] azure-disk-encryption-dir, default
 * /var/lib/azure_disk_encryption_config): the markers, files that exist while an operation of ADE's
 * extension runs (the encryption marker's EncryptionOperation= names it; the decryption marker; the
 * item whose data ADE is copying); ADE's config, whose BekFileName
 * names the key file on the BEK volume; the legacy table of the volumes the extension itself opened,
 * late, with no crypttab line. */
#define ADE_ADOPT_MARKER "azure_crypt_request_queue.ini"
#define ADE_ADOPT_DECRYPT_MARKER "azure_decrypt_request_queue.ini"
#define ADE_ADOPT_ONGOING_ITEM "azure_crypt_ongoing_item.ini"
#define ADE_ADOPT_CONFIG_INI "azure_crypt_config.ini"
#define ADE_ADOPT_CRYPT_MOUNT "azure_crypt_mount"

typedef enum AdeAdoptAction {
        ADE_ADOPT_ACTION_ADOPT,   /* ADE's volume; the steps in AdeAdoptPlan are left to do */
        ADE_ADOPT_ACTION_ADOPTED, /* adopted before: nothing to do */
        ADE_ADOPT_ACTION_REFUSED, /* ADE's, but not adoptable: the plan's reason says why and what to do */
        _ADE_ADOPT_ACTION_MAX,
        _ADE_ADOPT_ACTION_INVALID = -EINVAL,
} AdeAdoptAction;

/* "adopt", "adopted", "refused". */
const char *ade_adopt_action_to_string(AdeAdoptAction a);

/* One crypttab line and what its device says. Strings are borrowed, NULL when absent. */
typedef struct AdeAdoptFacts {
        /* The line. */
        const char *name;    /* the mapping */
        const char *source;  /* as written: a path, UUID=..., LABEL=... */
        const char *key;     /* the key field; NULL or "none" for none */
        const char *options; /* NULL: none */
        const char *line;    /* the line, verbatim (kept aside when it is replaced), or NULL */
        /* The device. */
        int device_error;       /* 0, or the negative errno of finding @source */
        const char *device;     /* the block device @source names */
        const char *header;     /* the options' header=, or NULL */
        int luks_version;       /* 0: no LUKS header; 1 or 2; negative: the errno of reading it */
        bool reencrypting;      /* LUKS2 with a reencryption in progress */
        bool has_token;         /* our Azure_Disk_Encryption token is on the header */
        const char *luks_uuid;  /* NULL when there is no LUKS header */
        bool recorded;          /* aded's state holds an adoption record for this mapping */
        const char *key_socket; /* aded's key socket: a line whose key is this is ade's already */
        /* ADE's folder. */
        const char *marker;           /* the path of one of ADE's markers when one exists, else NULL */
        const char *marker_operation; /* its EncryptionOperation, or NULL */
        /* A line of ADE's azure_crypt_mount rather than of crypttab: name, source and header come from
         * it, key, options and line are NULL. */
        const char *mount_point; /* non-NULL: such a legacy volume */
        const char *fs_type;
        const char *bek_file_name; /* ADE's BekFileName: its key file on the BEK volume */
} AdeAdoptFacts;

typedef struct AdeAdoptPlan {
        char *name;    /* the mapping, kept */
        char *source;  /* crypttab's source field, kept on the new line */
        char *device;  /* NULL when it was not found */
        char *header;  /* the detached header (options' header=), or NULL */
        char *options; /* the line's options, or NULL */
        char *line;    /* crypttab's line, verbatim, or NULL */
        char *luks_uuid;
        AdeAdoptAction action;
        int luks_version;
        char *key_file_name; /* basename of ADE's key file (the secret's DiskEncryptionKeyFileName tag),
                              * or NULL for a keyscript line */
        bool add_token;      /* LUKS2: our token goes on the header */
        bool add_record;     /* LUKS1: a state record makes the key socket serve it */
        bool switch_line;    /* crypttab's line is still ADE's, or (legacy) there is none yet */
        char *mount_point;   /* legacy: where fstab is to mount /dev/mapper/<name>; NULL otherwise */
        char *fs_type;       /* legacy: its filesystem type */
        char *reason;        /* always set: what is done, or why not and what to do */
} AdeAdoptPlan;

void ade_adopt_plan_done(AdeAdoptPlan *p);

typedef struct AdeAdoptPlanList {
        AdeAdoptPlan *plans;
        size_t n;
} AdeAdoptPlanList;

void ade_adopt_plan_list_done(AdeAdoptPlanList *l);

/* Whether the line of @f is ADE's: its key file is under ADE_ADOPT_BEK_MOUNT and named
 * ADE_ADOPT_KEY_FILE_PREFIX*, or its options name ADE's keyscript; or it was ADE's and is adopted
 * (key is the key socket and @f->recorded or @f->has_token says so); or it is a line of ADE's
 * azure_crypt_mount. Pure. */
bool ade_adopt_is_ade_line(const AdeAdoptFacts *f);

/* The judgement on one line: 0 and *ret filled when the line is ADE's (or was, and is adopted), or
 * -ENOENT when it is not ADE's (left alone, no plan); -ENOMEM. While ADE's encryption marker exists
 * (@f->marker) every volume is refused: ADE may be writing to it. No I/O. */
int ade_adopt_evaluate(const AdeAdoptFacts *f, AdeAdoptPlan *ret);

/* One line of ADE's azure_crypt_mount: "mapper dev header mountpoint fs cleartext slot". */
typedef struct AdeAdoptCryptMount {
        char *mapper;
        char *device;
        char *header; /* NULL for ADE's "None" */
        char *mount_point;
        char *fs_type;
} AdeAdoptCryptMount;

void ade_adopt_crypt_mounts_free(AdeAdoptCryptMount *m, size_t n);

/* Reads ADE's azure_crypt_mount @path: its lines in order (blank and '#' lines skipped); a missing
 * file has none. A line that is not seven whitespace-separated fields, whose mapper is not a plain
 * name, or whose device, header (unless "None") or mount point is not an absolute path, is refused:
 * -EBADMSG with *ret_why "<path>:<line>: ...". */
int ade_adopt_crypt_mount_read(const char *path, AdeAdoptCryptMount **ret, size_t *ret_n, char **ret_why);

/* The value of @key (case ignored: ADE's Python ConfigParser writes it lower-cased) in the INI file
 * @path, in any section: 1 and *ret, 0 when the file or the key is missing, or a negative errno. */
int ade_adopt_ini_get(const char *path, const char *key, char **ret);

/* Reads @crypttab (ade-tab.h's rules: -EBADMSG with *ret_why for a malformed table) and, for each
 * line, the device it names; @is_recorded (optional) says whether aded's state has an adoption
 * record for a mapping name. With @ade_dir (ADE's folder; NULL: none is read), also its encryption
 * marker, its BekFileName, and the lines of its azure_crypt_mount whose mapper has no crypttab line
 * (ade_adopt_crypt_mount_read()'s refusals). Then ade_adopt_evaluate() on each: the plans of ADE's
 * crypttab lines in crypttab's order, then those of azure_crypt_mount's. Reads only. */
int ade_adopt_gather(const char *crypttab, const char *key_socket, const char *ade_dir,
        bool (*is_recorded)(const char *name, void *userdata), void *userdata, AdeAdoptPlanList *ret, char **ret_why);
