/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "ade-cloud-error.h"
#include "ade-config.h"
#include "ade-credential.h"
#include "ade-http.h"
#include "ade-keyvault.h"
#include "ade-luks.h"
#include "ade-secret.h"

/* The key resolver (docs/architecture.md §3): the one object through which a process reaches Key
 * Vault for volume keys, both ways (escrow, and the key file of a volume). One per process; it owns
 *  - the identity's credential (ade-identity.h), made at the first call that needs it (and made
 *    again at the next one if that failed, so that a fixed secret file is taken without a restart):
 *    one process fetches one token per resource;
 *  - an AdeHttpShare: every client it makes, and every client made with ade_resolver_http_options(),
 *    reuses the others' DNS answers, TLS sessions and open connections;
 *  - one Key Vault client per vault it has talked to: the secret's vault, and the KEK's when it
 *    differs; the Key Vault challenge is then answered once per vault and process.
 * Thread-safe: aded's jobs call it from their worker threads at the same time.
 *
 * Every Key Vault client the resolver makes, and so every vault a bearer token goes to, passes
 * ade_resolver_check_vault() first: the one place that decides which vaults ade trusts with a token
 * (docs/architecture.md §3). Trusted are the vault origins (scheme, host and port, as ade-url.h
 * parses them: a second server on a trusted host is another party) that the configuration names
 * ([keyvault] url and kek-url), those a root caller named (ade_resolver_trust_vault(): aded calls it
 * for an Enable's or RotateKey's vaults, and for the vaults its state file recorded for them), and
 * https hosts on the default port under [azure] keyvault-dns-suffix. Vault URLs that come from a
 * volume (a LUKS2 token's SecretURL and KeyEncryptionKeyURL, and its KeyVaultURL when RotateKey
 * escrows there) also have to be Key Vault object URLs of the right kind. A secret's
 * DiskEncryptionKeyEncryptionKeyURL tag is only ever used on the secret's own vault's client
 * (ade-keyvault.h refuses URLs of another origin). The Key Vault client then applies the challenge
 * rule (ade-keyvault.h) to every vault that passes. */

typedef struct AdeResolver AdeResolver;

/* What the resolver's Key Vault operations (escrow, a volume's key file, disabling a secret) came
 * to since it was made: for aded's metrics. A call stopped by its thread's cancel counts as neither. */
typedef struct AdeResolverStats {
        uint64_t succeeded;
        uint64_t last_success_usec; /* CLOCK_REALTIME of the last success, 0 before one */
        uint64_t failed[_ADE_CLOUD_ERROR_KIND_MAX];
} AdeResolverStats;

void ade_resolver_stats(AdeResolver *r, AdeResolverStats *ret);

/* A resolver for @config (borrowed; it must outlive the resolver) with HTTP options @opts (NULL: the
 * defaults; the CA file is always the configuration's, the share always the resolver's). Calls
 * ade_http_global_init() (libcurl's curl_global_init()): make it before starting threads. */
int ade_resolver_new(const AdeConfig *config, const AdeHttpOptions *opts, AdeResolver **ret);
AdeResolver *ade_resolver_free(AdeResolver *r);
static inline void ade_resolver_freep(AdeResolver **r) {
        ade_resolver_free(*r);
}

/* The HTTP options every client of this resolver uses (CA file, retries, the share), for other
 * clients of the same process (preconditions: IMDS, ARM). Valid as long as the resolver. */
const AdeHttpOptions *ade_resolver_http_options(AdeResolver *r);

/* The credential of the configured identity, borrowed (valid as long as the resolver). The errors of
 * ade_identity_credential_new() when it cannot be set up. */
int ade_resolver_credential(AdeResolver *r, AdeCredential **ret);

/* The client for the vault of @url (a vault URL or any URL on it: its origin is what counts), after
 * ade_resolver_check_vault(); borrowed, valid as long as the resolver. */
int ade_resolver_keyvault(AdeResolver *r, const char *url, AdeKeyVault **ret, AdeCloudError *ret_error);

/* Does ahead, alongside other work, what the first call to the vault of @url (named by the
 * configuration or a root caller) would wait for: its challenge and token (ade_keyvault_prepare()). */
int ade_resolver_prepare_vault(AdeResolver *r, const char *url, AdeCloudError *ret_error);

/* The allow-list decision, alone: whether a bearer token may go to the origin of @url, given the
 * trusted @origins (NULL-terminated, as ade_url_origin() writes them; may be NULL) and @dns_suffix
 * (".vault.azure.net", or NULL for none): the origin is one of @origins, or an https origin on
 * port 443 whose host ends in @dns_suffix after at least one label of its own. Returns 0, -EINVAL
 * when @url is not an https URL that ade-url.h accepts (user information, encoded or empty hosts,
 * ...), -EPERM when its vault is not trusted, -ENOMEM. */
int ade_resolver_vault_allowed(char *const *origins, const char *dns_suffix, const char *url);

/* Whether a bearer token may be sent to the vault of @url: ade_resolver_vault_allowed() with the
 * configuration's vaults, those trusted since, and [azure] keyvault-dns-suffix. Returns 0, -EINVAL,
 * -EPERM as it does; *ret_error (optional) then holds a message that names the URL and says what
 * to configure (code "VaultNotAllowed"). */
int ade_resolver_check_vault(AdeResolver *r, const char *url, AdeCloudError *ret_error);

struct AdeState;

/* Trusts the vaults a state file recorded for its volumes (the keyVaultUrl and kekUrl of each
 * record: a root Enable or RotateKey named them, or the configuration did then), as
 * ade_resolver_trust_vault() does. A record's URL that does not parse is skipped. 0 or -ENOMEM. */
int ade_resolver_trust_state(AdeResolver *r, const struct AdeState *state);

/* Trusts the vault origin of @url from now on: a vault a root caller named (Enable's keyVaultUrl or
 * kekUrl, RotateKey's kekUrl), or one the state file recorded for such a call. NULL is ignored.
 * Returns 0, -EINVAL for a URL that ade-url.h refuses, -ENOMEM. */
int ade_resolver_trust_vault(AdeResolver *r, const char *url);

/* Disables the secret version @secret_url (a token's SecretURL, so it passes the same checks as a
 * key fetched from it): ade_keyvault_disable_secret(). */
int ade_resolver_disable_secret(AdeResolver *r, const char *secret_url, AdeCloudError *ret_error);

typedef struct AdeResolverEscrow {
        const char *vault_url;             /* KeyVaultURL: where the secret goes */
        const char *vault_resource_id;     /* KeyVaultResourceId, or NULL */
        const char *kek_url;               /* versioned KEK URL, or NULL for no KEK */
        const char *kek_vault_resource_id; /* NULL: @vault_resource_id */
        const char *kek_algorithm;         /* NULL: RSA-OAEP */
        const char *key_file_name;         /* the secret's DiskEncryptionKeyFileName tag (ade-envelope.h) */
        const char *volume_type;           /* the token's VolumeType: "OS", "Data" */
        const char *device_id;             /* the token's DeviceId, or NULL */
} AdeResolverEscrow;

/* Escrows @keyfile as ade_envelope_escrow() does (wrap with the KEK, set the secret, read it back)
 * and returns the LUKS2 token that describes it: KeyVaultURL, SecretURL (versioned), the KEK fields
 * and Passphrase (the wrapped key file) with a KEK, VolumeType, DeviceId; keyslot -1. */
int ade_resolver_escrow(AdeResolver *r, const AdeResolverEscrow *p, const AdeSecret *keyfile, AdeLuksToken **ret_token,
        AdeCloudError *ret_error);

/* The key file of a volume from its token (read from the device or header, or rebuilt before the
 * header exists): with a KEK and Passphrase one unwrapkey; with a KEK and no Passphrase the secret
 * is fetched, its (wrapped) value stored in token->passphrase (so that the token can be written as
 * it would have been) and unwrapped; without a KEK the secret. -EINVAL for a token without
 * SecretURL; the errors of ade_resolver_check_vault() and ade_envelope_resolve(). */
int ade_resolver_key_from_token(AdeResolver *r, AdeLuksToken *token, AdeSecret **ret_keyfile, AdeCloudError *ret_error);

/* The same from @device (and its detached @header, or NULL), whose token is read first
 * (ade_luks_read_token(): -ENOENT when there is none). The token is returned in *ret_token when
 * asked for. */
int ade_resolver_key_from_device(AdeResolver *r, const char *device, const char *header, AdeLuksToken **ret_token,
        AdeSecret **ret_keyfile, AdeCloudError *ret_error);
