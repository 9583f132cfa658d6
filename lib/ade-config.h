/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ade-util.h"

/* /etc/ade/ade.conf, as docs/architecture.md §6 and ade.conf(5) describe it. */

#define ADE_CONFIG_PATH_DEFAULT "/etc/ade/ade.conf"
#define ADE_CONFIG_LINE_MAX 4096U
#define ADE_CONFIG_SIZE_MAX (1024U * 1024U)

typedef enum AdeIdentityType {
        ADE_IDENTITY_MANAGED,
        ADE_IDENTITY_CLIENT_SECRET,
        ADE_IDENTITY_CLIENT_CERTIFICATE,
        _ADE_IDENTITY_MAX,
        _ADE_IDENTITY_INVALID = -EINVAL,
} AdeIdentityType;

const char *ade_identity_type_to_string(AdeIdentityType t);
AdeIdentityType ade_identity_type_from_string(const char *s);

/* Key wrapping algorithms that ADE (and so ade) accepts for a KEK. */
bool ade_kek_algorithm_is_valid(const char *alg);

/* Every string is either NULL (unset) or non-empty. Defaults are filled in, so the fields with a
 * default in ade.conf(5) are never NULL. */
typedef struct AdeConfig {
        char *path; /* the file it came from, for messages */

        struct {
                char *url;
                char *resource_id;
                char *kek_url;
                char *kek_vault_resource_id;
                char *kek_algorithm;
        } keyvault;

        struct {
                AdeIdentityType type;
                char *client_id;
                char *tenant_id;
                char *client_secret_file;
                char *client_certificate_file;
        } identity;

        struct {
                char *imds;
                char *arm;
                char *authority;
                char *keyvault_resource;
                char *arm_resource;
                char *ca_file;
                char *keyvault_dns_suffix; /* ".vault.azure.net": vault hosts a volume's token may name */
        } azure;

        struct {
                uint64_t snapshot_max_age_sec;
                bool require_same_region;
        } preconditions;

        struct {
                char *os;
                char **data; /* NULL-terminated; NULL when unset */
                char *header_dir;
        } volumes;

        struct {
                char *socket;
                char *group;
                char *key_socket;
                char *state_dir;
                char *crypttab; /* the tables aded keeps a line in per volume (ade-tab.h) */
                char *fstab;
                char *ade_dir;                /* ADE's own folder, read by Adopt (docs/architecture.md §12) */
                bool new_disks;               /* encrypt data disks that appear, once enrolled */
                uint64_t new_disk_settle_sec; /* quiet time after the last disk event before that */
        } daemon;

        struct {
                char *path; /* the Prometheus textfile-collector file aded keeps; NULL: none */
        } metrics;

        struct {
                uint64_t interval_sec;     /* rotate each volume's key file this often; 0: never by itself */
                bool kek_follow_latest;    /* re-wrap under a newer enabled version of a volume's KEK */
                uint64_t kek_interval_sec; /* how often to look for one */
        } rotation;

        struct {
                char *url;     /* a Blob Storage container; NULL: no off-machine header backups */
                unsigned keep; /* generations kept per volume */
        } backup;
} AdeConfig;

/* A configuration holding only the defaults. */
int ade_config_new_default(AdeConfig **ret);

/* Parses @len bytes of ade.conf text; @name is used in messages (a file name, usually).
 * On success returns 0 and a complete configuration. On any error returns -EINVAL (or -ENOMEM),
 * never a partial configuration, and, when @ret_error is given, a message naming @name, the line
 * and the key: "ade.conf:12: [keyvault] kek-algorithm: 'RSA-PSS' is not one of RSA-OAEP, ...". */
int ade_config_parse(const char *text, size_t len, const char *name, AdeConfig **ret, char **ret_error);

/* Reads and parses @path (NULL for the default path). A file that cannot be read is -errno with
 * a message naming it. */
int ade_config_load(const char *path, AdeConfig **ret, char **ret_error);

AdeConfig *ade_config_free(AdeConfig *c);
static inline void ade_config_freep(AdeConfig **c) {
        ade_config_free(*c);
}

/* Parses "24h", "90m", "1h30m", "2d", "1w", "45s" or a bare number of seconds; 0 is refused.
 * Returns 0 or -EINVAL / -ERANGE. */
int ade_parse_duration_sec(const char *s, uint64_t *ret);

/* Whether @url names a Blob Storage container: https, no query or fragment, a path of the container
 * name ([a-z0-9] and single '-', 3 to 63 characters, starting and ending with a letter or digit),
 * optionally after one account segment (the path style of emulators and IP endpoints,
 * "https://127.0.0.1:10000/devstoreaccount1/backups"). */
bool ade_config_container_url_is_valid(const char *url);

#define ADE_BACKUP_KEEP_DEFAULT 5U
#define ADE_BACKUP_KEEP_MAX 1000U

/* Parses yes/no, true/false, on/off, 1/0 (any case). Returns 0/1 or -EINVAL. */
int ade_parse_boolean(const char *s);
