/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include "ade-config.h"
#include "ade-log.h"
#include "ade-url.h"

static const char *const identity_type_names[_ADE_IDENTITY_MAX] = {
        [ADE_IDENTITY_MANAGED] = "managed",
        [ADE_IDENTITY_CLIENT_SECRET] = "client-secret",
        [ADE_IDENTITY_CLIENT_CERTIFICATE] = "client-certificate",
};

const char *ade_identity_type_to_string(AdeIdentityType t) {
        if (t < 0 || t >= _ADE_IDENTITY_MAX)
                return NULL;
        return identity_type_names[t];
}

AdeIdentityType ade_identity_type_from_string(const char *s) {
        if (!s)
                return _ADE_IDENTITY_INVALID;
        for (int i = 0; i < _ADE_IDENTITY_MAX; i++)
                if (streq(s, identity_type_names[i]))
                        return (AdeIdentityType)i;
        return _ADE_IDENTITY_INVALID;
}

bool ade_kek_algorithm_is_valid(const char *alg) {
        return alg && (streq(alg, "RSA-OAEP") || streq(alg, "RSA-OAEP-256") || streq(alg, "RSA1_5"));
}

int ade_parse_boolean(const char *s) {
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcaseeq(s, yes[i]))
                        return 1;
                if (strcaseeq(s, no[i]))
                        return 0;
        }
        return -EINVAL;
}

int ade_parse_duration_sec(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t mult;
        } units[] = {
                /* longest first, so "min" is not read as "m" followed by "in" */
                {"weeks", 604800},
                {"week", 604800},
                {"days", 86400},
                {"day", 86400},
                {"hours", 3600},
                {"hour", 3600},
                {"min", 60},
                {"sec", 1},
                {"w", 604800},
                {"d", 86400},
                {"h", 3600},
                {"m", 60},
                {"s", 1},
        };
        uint64_t total = 0;
        const char *p = s;
        bool any = false;

        if (isempty(s) || !ret)
                return -EINVAL;

        while (*p) {
                uint64_t v = 0, mult = 0;
                bool digits = false;

                while (*p == ' ')
                        p++;
                if (!*p)
                        break;
                while (*p >= '0' && *p <= '9') {
                        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                                return -ERANGE;
                        v = v * 10 + (uint64_t)(*p - '0');
                        p++;
                        digits = true;
                }
                if (!digits)
                        return -EINVAL;
                while (*p == ' ')
                        p++;

                if (!*p || (*p >= '0' && *p <= '9')) {
                        /* A bare number is seconds, but only on its own: "1h 30" is ambiguous. */
                        if (any || *p)
                                return -EINVAL;
                        mult = 1;
                } else {
                        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                                const char *rest = startswith(p, units[i].suffix);
                                if (rest && !isalpha((unsigned char)*rest)) {
                                        mult = units[i].mult;
                                        p = rest;
                                        break;
                                }
                        }
                        if (mult == 0)
                                return -EINVAL;
                }

                if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
                        return -ERANGE;
                total += v * mult;
                any = true;
        }

        if (!any)
                return -EINVAL;
        if (total == 0)
                return -EINVAL;
        *ret = total;
        return 0;
}

static bool segment_ok(const char *s, size_t n, const char *extra) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
                        return false;
        return true;
}

/* ---- the parser ---- */

typedef struct ParseContext {
        const char *name;
        unsigned line;
        const char *section;
        const char *key;
        char *error;
} ParseContext;

static int fail(ParseContext *ctx, const char *format, ...) _printf_(2, 3);
static int fail(ParseContext *ctx, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int n;

        if (ctx->error) /* the first error is the one a person should fix first */
                return -EINVAL;

        va_start(ap, format);
        n = vasprintf(&msg, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;

        if (ctx->key)
                n = asprintf(&ctx->error, "%s:%u: [%s] %s: %s", ctx->name, ctx->line, ctx->section, ctx->key, msg);
        else if (ctx->line > 0)
                n = asprintf(&ctx->error, "%s:%u: %s", ctx->name, ctx->line, msg);
        else
                n = asprintf(&ctx->error, "%s: %s", ctx->name, msg);
        if (n < 0) {
                ctx->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

typedef int (*ValueParser)(ParseContext *ctx, const char *value, void *field);

static int set_string(void *field, const char *value) {
        char **s = field, *c;

        c = strdup(value);
        if (!c)
                return -ENOMEM;
        free(*s);
        *s = c;
        return 0;
}

static int parse_string(ParseContext *ctx, const char *value, void *field) {
        for (const char *p = value; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return fail(ctx, "value contains a control character");
        return set_string(field, value);
}

static int parse_identifier(ParseContext *ctx, const char *value, void *field) {
        /* client and tenant ids: GUIDs in practice, but a tenant may also be a domain name */
        if (!segment_ok(value, strlen(value), "-._"))
                return fail(ctx, "'%s' is not a valid identifier (letters, digits, '-', '.', '_')", value);
        return set_string(field, value);
}

static int parse_path(ParseContext *ctx, const char *value, void *field) {
        if (value[0] != '/')
                return fail(ctx, "'%s' is not an absolute path", value);
        if (strlen(value) >= 4096)
                return fail(ctx, "path is too long");
        return parse_string(ctx, value, field);
}

static int parse_url_common(ParseContext *ctx, const char *value, void *field, bool allow_http) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        int r;

        r = ade_url_parse(value, allow_http ? ADE_URL_ALLOW_HTTP : 0, &u);
        switch (r) {
        case 0:
                break;
        case -ENOMEM:
                return r;
        case -EPROTONOSUPPORT:
                return fail(ctx, "'%s' must be an %s URL", value, allow_http ? "http:// or https://" : "https://");
        case -EDESTADDRREQ:
                return fail(ctx, "'%s' has no host", value);
        case -EPERM:
                return fail(ctx, "'%s' must not carry user credentials", value);
        default:
                return fail(ctx, "'%s' is not a valid URL", value);
        }
        if (u->query || u->fragment)
                return fail(ctx, "'%s' must not have a query or fragment", value);
        return set_string(field, value);
}

static int parse_https_url(ParseContext *ctx, const char *value, void *field) {
        return parse_url_common(ctx, value, field, false);
}

static int parse_http_url(ParseContext *ctx, const char *value, void *field) {
        return parse_url_common(ctx, value, field, true);
}

static bool container_name_ok(const char *s, size_t n) {
        if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '-' ? s[i + 1] == '-' : !(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
                        return false;
        }
        return true;
}

bool ade_config_container_url_is_valid(const char *url) {
        _cleanup_(ade_url_freep) AdeUrl *u = NULL;
        const char *p, *slash;

        if (!url || ade_url_parse(url, 0, &u) < 0 || u->query || u->fragment)
                return false;
        p = u->path + 1;
        slash = strchr(p, '/');
        if (slash) {
                /* An account name: lower-case letters and digits. */
                if (slash == p || slash - p > 24)
                        return false;
                for (const char *i = p; i < slash; i++)
                        if (!(islower((unsigned char)*i) || isdigit((unsigned char)*i)))
                                return false;
                p = slash + 1;
        }
        return container_name_ok(p, strlen(p));
}

static int parse_container_url(ParseContext *ctx, const char *value, void *field) {
        int r = parse_https_url(ctx, value, field);
        if (r < 0)
                return r;
        if (!ade_config_container_url_is_valid(value))
                return fail(ctx,
                        "'%s' does not name a Blob Storage container "
                        "(https://<account>.blob.core.windows.net/<container>)",
                        value);
        return 0;
}

static int parse_keep(ParseContext *ctx, const char *value, void *field) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(value, &end, 10);
        if (!isdigit((unsigned char)value[0]) || *end || errno != 0 || v < 1 || v > ADE_BACKUP_KEEP_MAX)
                return fail(ctx, "'%s' is not a number of generations from 1 to %u", value, ADE_BACKUP_KEEP_MAX);
        *(unsigned *)field = (unsigned)v;
        return 0;
}

/* ".vault.azure.net": a leading dot and at least two DNS labels, so that no suffix covers a whole
 * top-level domain. Kept in lower case, as ade-url.h keeps hosts. */
static int parse_dns_suffix(ParseContext *ctx, const char *value, void *field) {
        _cleanup_free_ char *lower = NULL;
        const char *p = value + 1;
        unsigned labels = 0;

        if (value[0] != '.' || value[1] == '\0' || strlen(value) > 253)
                return fail(ctx, "'%s' is not a DNS suffix such as .vault.azure.net", value);
        while (*p) {
                size_t n = strcspn(p, ".");

                if (n == 0 || n > 63 || !segment_ok(p, n, "-") || p[0] == '-' || p[n - 1] == '-')
                        return fail(ctx, "'%s' is not a DNS suffix such as .vault.azure.net", value);
                labels++;
                p += n;
                if (*p == '.' && *++p == '\0')
                        return fail(ctx, "'%s' is not a DNS suffix such as .vault.azure.net", value);
        }
        if (labels < 2)
                return fail(ctx,
                        "'%s' covers a whole top-level domain; name the vaults' own domain, such as "
                        ".vault.azure.net",
                        value);
        lower = strdup(value);
        if (!lower)
                return -ENOMEM;
        for (char *c = lower; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        return set_string(field, lower);
}

static int parse_kek_url(ParseContext *ctx, const char *value, void *field) {
        int r;

        r = parse_https_url(ctx, value, field);
        if (r < 0)
                return r;

        /* https://host[:port]/keys/<name>[/<version>]; whether it is versioned is the kek-valid
         * precondition's business, so that the refusal names that check. */
        r = ade_url_keyvault_object(value, "keys", false, NULL, NULL, NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(ctx, "'%s' is not a key URL (https://<vault>/keys/<name>/<version>)", value);
        return 0;
}

static int parse_vault_id(ParseContext *ctx, const char *value, void *field) {
        if (ade_url_arm_vault_id(value, NULL, NULL) < 0)
                return fail(ctx,
                        "'%s' is not a Key Vault resource id "
                        "(/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.KeyVault/vaults/<name>)",
                        value);
        return set_string(field, value);
}

static int parse_kek_algorithm(ParseContext *ctx, const char *value, void *field) {
        if (!ade_kek_algorithm_is_valid(value))
                return fail(ctx, "'%s' is not one of RSA-OAEP, RSA-OAEP-256, RSA1_5", value);
        return set_string(field, value);
}

static int parse_identity_type(ParseContext *ctx, const char *value, void *field) {
        AdeIdentityType t = ade_identity_type_from_string(value);
        if (t < 0)
                return fail(ctx, "'%s' is not one of managed, client-secret, client-certificate", value);
        *(AdeIdentityType *)field = t;
        return 0;
}

static int parse_duration(ParseContext *ctx, const char *value, void *field) {
        int r = ade_parse_duration_sec(value, field);
        if (r < 0)
                return fail(ctx, "'%s' is not a positive duration (for example 24h, 90m, 2d, 1h30m)", value);
        return 0;
}

static int parse_bool(ParseContext *ctx, const char *value, void *field) {
        int r = ade_parse_boolean(value);
        if (r < 0)
                return fail(ctx, "'%s' is not a boolean (yes or no)", value);
        *(bool *)field = r;
        return 0;
}

static int parse_group(ParseContext *ctx, const char *value, void *field) {
        /* the rules of useradd/groupadd's default NAME_REGEX, without the trailing '$' */
        if (!(islower((unsigned char)value[0]) || value[0] == '_') || strlen(value) > 32 ||
                !segment_ok(value, strlen(value), "-_"))
                return fail(ctx, "'%s' is not a valid group name", value);
        return set_string(field, value);
}

static int parse_device_list(ParseContext *ctx, const char *value, void *field) {
        char ***l = field;
        char **n = NULL;
        size_t k = 0;
        const char *p = value;

        while (*p) {
                size_t len;
                char **t;

                p += strspn(p, " \t");
                len = strcspn(p, " \t");
                if (len == 0)
                        break;
                if (p[0] != '/') {
                        strv_free(n);
                        return fail(ctx, "'%.*s' is not an absolute device path", (int)len, p);
                }
                for (size_t i = 0; i < k; i++)
                        if (strlen(n[i]) == len && strncmp(n[i], p, len) == 0) {
                                strv_free(n);
                                return fail(ctx, "'%.*s' is listed twice", (int)len, p);
                        }
                t = realloc(n, (k + 2) * sizeof(char *));
                if (!t) {
                        strv_free(n);
                        return -ENOMEM;
                }
                n = t;
                n[k] = strndup(p, len);
                if (!n[k]) {
                        strv_free(n);
                        return -ENOMEM;
                }
                n[++k] = NULL;
                p += len;
        }

        strv_free(*l);
        *l = n;
        return 0;
}

typedef struct ConfigKey {
        const char *section;
        const char *key;
        ValueParser parse;
        size_t offset;
} ConfigKey;

#define KEY(sec, name, parser, member)                                                                                 \
        { sec, name, parser, offsetof(AdeConfig, member) }

static const ConfigKey config_keys[] = {
        KEY("keyvault", "url", parse_https_url, keyvault.url),
        KEY("keyvault", "resource-id", parse_vault_id, keyvault.resource_id),
        KEY("keyvault", "kek-url", parse_kek_url, keyvault.kek_url),
        KEY("keyvault", "kek-vault-resource-id", parse_vault_id, keyvault.kek_vault_resource_id),
        KEY("keyvault", "kek-algorithm", parse_kek_algorithm, keyvault.kek_algorithm),
        KEY("identity", "type", parse_identity_type, identity.type),
        KEY("identity", "client-id", parse_identifier, identity.client_id),
        KEY("identity", "tenant-id", parse_identifier, identity.tenant_id),
        KEY("identity", "client-secret-file", parse_path, identity.client_secret_file),
        KEY("identity", "client-certificate-file", parse_path, identity.client_certificate_file),
        KEY("azure", "imds", parse_http_url, azure.imds),
        KEY("azure", "arm", parse_https_url, azure.arm),
        KEY("azure", "authority", parse_https_url, azure.authority),
        KEY("azure", "keyvault-resource", parse_https_url, azure.keyvault_resource),
        KEY("azure", "arm-resource", parse_https_url, azure.arm_resource),
        KEY("azure", "ca-file", parse_path, azure.ca_file),
        KEY("azure", "keyvault-dns-suffix", parse_dns_suffix, azure.keyvault_dns_suffix),
        KEY("preconditions", "snapshot-max-age", parse_duration, preconditions.snapshot_max_age_sec),
        KEY("preconditions", "require-same-region", parse_bool, preconditions.require_same_region),
        KEY("volumes", "os", parse_path, volumes.os),
        KEY("volumes", "data", parse_device_list, volumes.data),
        KEY("volumes", "header-dir", parse_path, volumes.header_dir),
        KEY("daemon", "socket", parse_path, daemon.socket),
        KEY("daemon", "group", parse_group, daemon.group),
        KEY("daemon", "key-socket", parse_path, daemon.key_socket),
        KEY("daemon", "state-dir", parse_path, daemon.state_dir),
        KEY("daemon", "crypttab", parse_path, daemon.crypttab),
        KEY("daemon", "fstab", parse_path, daemon.fstab),
        KEY("daemon", "azure-disk-encryption-dir", parse_path, daemon.ade_dir),
        KEY("daemon", "new-disks", parse_bool, daemon.new_disks),
        KEY("daemon", "new-disk-settle", parse_duration, daemon.new_disk_settle_sec),
        KEY("metrics", "path", parse_path, metrics.path),
        KEY("rotation", "interval", parse_duration, rotation.interval_sec),
        KEY("rotation", "kek-follow-latest", parse_bool, rotation.kek_follow_latest),
        KEY("rotation", "kek-interval", parse_duration, rotation.kek_interval_sec),
        KEY("backup", "url", parse_container_url, backup.url),
        KEY("backup", "keep", parse_keep, backup.keep),
};

static const char *const sections[] = {
        "keyvault", "identity", "azure", "preconditions", "volumes", "daemon", "metrics", "rotation", "backup"};

AdeConfig *ade_config_free(AdeConfig *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->keyvault.url);
        free(c->keyvault.resource_id);
        free(c->keyvault.kek_url);
        free(c->keyvault.kek_vault_resource_id);
        free(c->keyvault.kek_algorithm);
        free(c->identity.client_id);
        free(c->identity.tenant_id);
        free(c->identity.client_secret_file);
        free(c->identity.client_certificate_file);
        free(c->azure.imds);
        free(c->azure.arm);
        free(c->azure.authority);
        free(c->azure.keyvault_resource);
        free(c->azure.arm_resource);
        free(c->azure.ca_file);
        free(c->azure.keyvault_dns_suffix);
        free(c->volumes.os);
        strv_free(c->volumes.data);
        free(c->volumes.header_dir);
        free(c->daemon.socket);
        free(c->daemon.group);
        free(c->daemon.key_socket);
        free(c->daemon.state_dir);
        free(c->daemon.crypttab);
        free(c->daemon.fstab);
        free(c->daemon.ade_dir);
        free(c->metrics.path);
        free(c->backup.url);
        free(c);
        return NULL;
}

int ade_config_new_default(AdeConfig **ret) {
        _cleanup_(ade_config_freep) AdeConfig *c = NULL;
        static const struct {
                size_t offset;
                const char *value;
        } defaults[] = {
                {offsetof(AdeConfig, keyvault.kek_algorithm), "RSA-OAEP"},
                {offsetof(AdeConfig, azure.imds), "http://169.254.169.254"},
                {offsetof(AdeConfig, azure.arm), "https://management.azure.com"},
                {offsetof(AdeConfig, azure.authority), "https://login.microsoftonline.com"},
                {offsetof(AdeConfig, azure.keyvault_resource), "https://vault.azure.net"},
                {offsetof(AdeConfig, azure.arm_resource), "https://management.azure.com/"},
                {offsetof(AdeConfig, azure.keyvault_dns_suffix), ".vault.azure.net"},
                {offsetof(AdeConfig, volumes.header_dir), "/var/lib/ade/headers"},
                {offsetof(AdeConfig, daemon.socket), "/run/ade/io.ade.DiskEncryption"},
                {offsetof(AdeConfig, daemon.group), "ade"},
                {offsetof(AdeConfig, daemon.key_socket), "/run/ade/key.socket"},
                {offsetof(AdeConfig, daemon.state_dir), "/var/lib/ade"},
                {offsetof(AdeConfig, daemon.crypttab), "/etc/crypttab"},
                {offsetof(AdeConfig, daemon.fstab), "/etc/fstab"},
                {offsetof(AdeConfig, daemon.ade_dir), "/var/lib/azure_disk_encryption_config"},
        };

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->identity.type = ADE_IDENTITY_MANAGED;
        c->preconditions.snapshot_max_age_sec = 24 * 3600;
        c->preconditions.require_same_region = true;
        c->daemon.new_disks = true;
        c->daemon.new_disk_settle_sec = 30;
        c->rotation.kek_interval_sec = 24 * 3600;
        c->backup.keep = ADE_BACKUP_KEEP_DEFAULT;
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
                if (set_string((uint8_t *)c + defaults[i].offset, defaults[i].value) < 0)
                        return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

/* A comment starts with ';' or '#' at the start of the line or after whitespace; "url#x" keeps its '#'. */
static void cut_comment(char *s) {
        for (char *p = s; *p; p++)
                if ((*p == ';' || *p == '#') && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
                        *p = '\0';
                        return;
                }
}

static bool valid_key_name(const char *k) {
        return segment_ok(k, strlen(k), "-_.");
}

/* Checks that need more than one key; @lines holds the line of each key (0 when absent). */
static int validate(ParseContext *ctx, AdeConfig *c, const unsigned *lines) {
        size_t n = ELEMENTSOF(config_keys);
        unsigned kek_url_line = 0, kek_vault_line = 0, type_line = 0;

        for (size_t i = 0; i < n; i++) {
                if (config_keys[i].offset == offsetof(AdeConfig, keyvault.kek_url))
                        kek_url_line = lines[i];
                else if (config_keys[i].offset == offsetof(AdeConfig, keyvault.kek_vault_resource_id))
                        kek_vault_line = lines[i];
                else if (config_keys[i].offset == offsetof(AdeConfig, identity.type))
                        type_line = lines[i];
        }

        if (c->keyvault.kek_url && !c->keyvault.kek_vault_resource_id) {
                ctx->line = kek_url_line, ctx->section = "keyvault", ctx->key = "kek-url";
                return fail(ctx, "needs kek-vault-resource-id, the ARM id of the vault that holds the key");
        }
        if (!c->keyvault.kek_url && c->keyvault.kek_vault_resource_id) {
                ctx->line = kek_vault_line, ctx->section = "keyvault", ctx->key = "kek-vault-resource-id";
                return fail(ctx, "is set but kek-url is not: set both, or neither");
        }

        ctx->line = type_line, ctx->section = "identity", ctx->key = "type";
        switch (c->identity.type) {
        case ADE_IDENTITY_CLIENT_SECRET:
                if (!c->identity.client_id || !c->identity.tenant_id || !c->identity.client_secret_file)
                        return fail(ctx, "client-secret needs client-id, tenant-id and client-secret-file");
                break;
        case ADE_IDENTITY_CLIENT_CERTIFICATE:
                if (!c->identity.client_id || !c->identity.tenant_id || !c->identity.client_certificate_file)
                        return fail(ctx, "client-certificate needs client-id, tenant-id and client-certificate-file");
                break;
        default:
                break;
        }
        return 0;
}

int ade_config_parse(const char *text, size_t len, const char *name, AdeConfig **ret, char **ret_error) {
        _cleanup_(ade_config_freep) AdeConfig *c = NULL;
        unsigned lines[ELEMENTSOF(config_keys)] = {};
        char section[64] = "";
        char buf[ADE_CONFIG_LINE_MAX + 2];
        ParseContext ctx = {.name = name ?: "ade.conf"};
        const char *p = text, *end = text + len;
        int r;

        if (!text && len > 0)
                return -EINVAL;

        r = ade_config_new_default(&c);
        if (r < 0)
                return r;

        if (len > ADE_CONFIG_SIZE_MAX) {
                r = fail(&ctx, "file is larger than %u bytes", ADE_CONFIG_SIZE_MAX);
                goto finish;
        }

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
                char *line, *eq, *key, *value;
                const ConfigKey *k = NULL;
                size_t idx = 0;

                ctx.line++;
                ctx.key = NULL;

                if (memchr(p, '\0', l)) {
                        r = fail(&ctx, "line contains a NUL byte");
                        goto finish;
                }
                if (l > ADE_CONFIG_LINE_MAX) {
                        r = fail(&ctx, "line is longer than %u bytes", ADE_CONFIG_LINE_MAX);
                        goto finish;
                }
                memcpy(buf, p, l);
                buf[l] = '\0';
                p = nl ? nl + 1 : end;

                cut_comment(buf);
                line = strstrip(buf);
                if (!*line)
                        continue;

                if (line[0] == '[') {
                        char *close = strchr(line, ']');
                        char *sname;
                        bool known = false;

                        if (!close || *strstrip(close + 1)) {
                                r = fail(&ctx, "malformed section header '%s'", line);
                                goto finish;
                        }
                        *close = '\0';
                        sname = strstrip(line + 1);
                        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                                if (streq(sname, sections[i]))
                                        known = true;
                        if (!known) {
                                r = fail(&ctx,
                                        "unknown section [%s] (known: keyvault, identity, azure, preconditions, "
                                        "volumes, daemon, metrics, rotation, backup)",
                                        sname);
                                goto finish;
                        }
                        snprintf(section, sizeof(section), "%s", sname);
                        continue;
                }

                eq = strchr(line, '=');
                if (!eq) {
                        r = fail(&ctx, "expected 'key = value' or '[section]', got '%s'", line);
                        goto finish;
                }
                *eq = '\0';
                key = strstrip(line);
                value = strstrip(eq + 1);

                if (!*key || !valid_key_name(key)) {
                        r = fail(&ctx, "invalid key name '%s'", key);
                        goto finish;
                }
                if (!section[0]) {
                        r = fail(&ctx, "key '%s' outside of any section", key);
                        goto finish;
                }

                ctx.section = section;
                ctx.key = key;
                for (idx = 0; idx < ELEMENTSOF(config_keys); idx++)
                        if (streq(config_keys[idx].section, section) && streq(config_keys[idx].key, key)) {
                                k = &config_keys[idx];
                                break;
                        }
                if (!k) {
                        r = fail(&ctx, "unknown key (see ade.conf(5))");
                        goto finish;
                }
                if (lines[idx] > 0) {
                        r = fail(&ctx, "duplicate key, first set on line %u", lines[idx]);
                        goto finish;
                }
                lines[idx] = ctx.line;

                /* An empty value means unset: the default, or nothing. */
                if (!*value)
                        continue;

                r = k->parse(&ctx, value, (uint8_t *)c + k->offset);
                if (r < 0)
                        goto finish;
        }

        ctx.key = NULL;
        r = validate(&ctx, c, lines);
        if (r < 0)
                goto finish;

        c->path = strdup(ctx.name);
        if (!c->path) {
                r = -ENOMEM;
                goto finish;
        }
        *ret = TAKE_PTR(c);
        r = 0;

finish:
        if (r < 0 && ctx.error)
                ade_log_debug("%s", ctx.error);
        if (ret_error)
                *ret_error = r < 0 ? TAKE_PTR(ctx.error) : NULL;
        free(ctx.error);
        return r;
}

int ade_config_load(const char *path, AdeConfig **ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t size = 0;
        struct stat st;

        if (!path)
                path = ADE_CONFIG_PATH_DEFAULT;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                if (ret_error && asprintf(ret_error, "%s: cannot read the configuration: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                if (ret_error && asprintf(ret_error, "%s: not a regular file", path) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }

        buf = malloc(ADE_CONFIG_SIZE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, ADE_CONFIG_SIZE_MAX + 1 - size);
                if (n < 0) {
                        int r = -errno;
                        if (errno == EINTR)
                                continue;
                        if (ret_error && asprintf(ret_error, "%s: read failed: %s", path, strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
                if (n == 0)
                        break;
                size += (size_t)n;
                if (size > ADE_CONFIG_SIZE_MAX)
                        break;
        }

        return ade_config_parse(buf, size, path, ret, ret_error);
}
