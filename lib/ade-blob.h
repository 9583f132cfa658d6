/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "ade-cloud-error.h"
#include "ade-credential.h"
#include "ade-http.h"

/* An Azure Blob Storage client for one container (docs/protocols.md §9.4): Put Blob (block blobs,
 * with metadata), Get Blob (body and metadata), Delete Blob and List Blobs (by prefix, with metadata, following
 * NextMarker), authorized with a bearer token for Storage's resource from @credential.
 *
 * Tokens go to the container's origin only: every URL is the container URL and a checked blob name,
 * and nothing an answer names is followed. Errors fill *ret_error (Storage's error code and message)
 * and return ade_cloud_errno_from_status(): -EACCES (401/403), -ENOENT (404: BlobNotFound,
 * ContainerNotFound), -EINVAL (400), -EBUSY (429 after retries), -EAGAIN (5xx after retries), or
 * -EPROTO for an answer we cannot read; transport errors as ade_http_request(). */

#define ADE_BLOB_RESOURCE_DEFAULT "https://storage.azure.com/"
#define ADE_BLOB_API_VERSION "2021-12-02"
#define ADE_BLOB_NAME_MAX 1024U
#define ADE_BLOB_SIZE_MAX (256U * 1024U * 1024U)

typedef struct AdeBlobClient AdeBlobClient;

/* @container_url: "https://<account>.blob.core.windows.net/<container>" or, for emulators, with an
 * account segment and a port (ade_config_container_url_is_valid(); -EINVAL otherwise). @credential
 * is borrowed. @resource NULL: ADE_BLOB_RESOURCE_DEFAULT. @opts: a zero max_response_size means
 * ADE_BLOB_SIZE_MAX here (blobs are bigger than Key Vault's answers). */
int ade_blob_client_new(const char *container_url, AdeCredential *credential, const char *resource,
        const AdeHttpOptions *opts, AdeBlobClient **ret);
AdeBlobClient *ade_blob_client_free(AdeBlobClient *c);
static inline void ade_blob_client_freep(AdeBlobClient **c) {
        ade_blob_client_free(*c);
}

const char *ade_blob_client_url(const AdeBlobClient *c);

/* Whether @name is a blob name this client sends: 1 to ADE_BLOB_NAME_MAX characters of
 * [A-Za-z0-9._-] in '/'-separated segments, none empty, "." or "..". */
bool ade_blob_name_is_valid(const char *name);

/* Whether @name is a metadata name Storage accepts (a C identifier: [A-Za-z_][A-Za-z0-9_]*, at most
 * 256 characters) and @value one that travels in a header unchanged (printable ASCII, no leading or
 * trailing space). */
bool ade_blob_metadata_is_valid(const char *name, const char *value);

/* Creates or replaces the block blob @name with @size bytes and @metadata (NULL-terminated
 * name/value pairs, or NULL). -EINVAL for a name or metadata refused above, -EFBIG over
 * ADE_BLOB_SIZE_MAX. */
int ade_blob_put(AdeBlobClient *c, const char *name, const void *data, size_t size, char *const *metadata,
        AdeCloudError *ret_error);

/* Replaces the metadata of the blob @name with @metadata (Set Blob Metadata: every pair not given
 * is dropped, so pass them all); the body stays. -ENOENT when there is no such blob. */
int ade_blob_set_metadata(AdeBlobClient *c, const char *name, char *const *metadata, AdeCloudError *ret_error);

/* Deletes the blob @name (Delete Blob; ade makes no snapshots, so none is asked about). -ENOENT
 * when there is no such blob. */
int ade_blob_delete(AdeBlobClient *c, const char *name, AdeCloudError *ret_error);

/* Reads the blob @name: its body (NUL-terminated, not counted) and its metadata (name/value pairs,
 * names as Storage sent them; NULL when it has none). */
int ade_blob_get(AdeBlobClient *c, const char *name, void **ret_data, size_t *ret_size, char ***ret_metadata,
        AdeCloudError *ret_error);

typedef struct AdeBlobItem {
        char *name;
        uint64_t size;   /* Content-Length */
        char **metadata; /* name/value pairs, or NULL */
} AdeBlobItem;

void ade_blob_items_free(AdeBlobItem *items, size_t n);

/* Every blob whose name starts with @prefix (NULL or "": all), in Storage's order (by name), with
 * its metadata, asking for @page_size per request (0: Storage's default, 5000) and following
 * NextMarker until it is empty; at most 1000 pages. */
int ade_blob_list(AdeBlobClient *c, const char *prefix, unsigned page_size, AdeBlobItem **ret_items, size_t *ret_n,
        AdeCloudError *ret_error);

/* The value of metadata @name in @pairs (names compared without case, as Storage does), or NULL. */
const char *ade_blob_metadata_get(char *const *pairs, const char *name);
