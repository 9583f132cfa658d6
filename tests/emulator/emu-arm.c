/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Azure Resource Manager (docs/protocols.md §3): the vault, the VM, managed disks, snapshots and restore
 * point collections of the scenario, with nextLink paging, ARM's auth challenge and error codes,
 * and the AuthorizationFailed an identity without Reader on snapshots meets. Paths are matched
 * case-insensitively, as ARM does. */

#include <ctype.h>

#include "emu.h"

static void arm_error(EmuResponse *resp, unsigned status, const char *code, const char *fmt, ...) _printf_(4, 5);

static void arm_error(EmuResponse *resp, unsigned status, const char *code, const char *fmt, ...) {
        json_object *body = json_object_new_object(), *err = json_object_new_object();
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (!body || !err || r < 0) {
                json_object_put(body);
                json_object_put(err);
                return;
        }
        ade_json_add_string(err, "code", code);
        ade_json_add_string(err, "message", message);
        json_object_object_add(body, "error", err);
        emu_response_json(resp, status, body);
}

static json_object *strf(const char *fmt, ...) _printf_(1, 2);
static json_object *strf(const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : json_object_new_string(s);
}

static const char *cfg_sub(void) {
        return emu_cfg_str(emu.config, "subscription_id") ?: "";
}

static const char *cfg_rg(void) {
        return emu_cfg_str(emu.config, "resource_group") ?: "";
}

static const char *vault_sub(void) {
        return emu_cfg_str(emu_cfg_obj(emu.config, "vault"), "subscription_id") ?: cfg_sub();
}

static const char *vault_rg(void) {
        return emu_cfg_str(emu_cfg_obj(emu.config, "vault"), "resource_group") ?: cfg_rg();
}

static json_object *vault_json(void) {
        json_object *v = emu_cfg_obj(emu.config, "vault"), *o = json_object_new_object(), *p = json_object_new_object(),
                    *sku = json_object_new_object();
        const char *name = emu_cfg_str(v, "name") ?: "contoso";

        if (!o || !p || !sku) {
                json_object_put(o);
                json_object_put(p);
                json_object_put(sku);
                return NULL;
        }
        json_object_object_add(o, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.KeyVault/vaults/%s", vault_sub(),
                        vault_rg(), name));
        ade_json_add_string(o, "name", name);
        ade_json_add_string(o, "type", "Microsoft.KeyVault/vaults");
        ade_json_add_string(o, "location", emu_cfg_str(v, "location"));
        json_object_object_add(o, "tags", json_object_new_object());
        ade_json_add_string(sku, "family", "A");
        ade_json_add_string(sku, "name", "standard");
        json_object_object_add(p, "sku", sku);
        ade_json_add_string(p, "tenantId", emu_cfg_str(v, "tenant_id") ?: emu_cfg_str(emu.config, "tenant_id"));
        json_object_object_add(p, "accessPolicies", json_object_new_array());
        json_object_object_add(p, "enabledForDeployment", json_object_new_boolean(false));
        json_object_object_add(p, "enabledForDiskEncryption",
                json_object_new_boolean(emu_cfg_bool(v, "enabled_for_disk_encryption", true)));
        json_object_object_add(p, "enabledForTemplateDeployment", json_object_new_boolean(false));
        json_object_object_add(
                p, "enableSoftDelete", json_object_new_boolean(emu_cfg_bool(v, "enable_soft_delete", true)));
        json_object_object_add(p, "softDeleteRetentionInDays",
                json_object_new_int64(emu_cfg_int(v, "soft_delete_retention_days", 90)));
        json_object_object_add(p, "enableRbacAuthorization",
                json_object_new_boolean(emu_cfg_bool(v, "enable_rbac_authorization", false)));
        /* ARM leaves purge protection out until it was set; it cannot be turned off again. */
        if (emu_cfg_bool(v, "enable_purge_protection", false))
                json_object_object_add(p, "enablePurgeProtection", json_object_new_boolean(true));
        json_object_object_add(p, "vaultUri", strf("https://%s.vault.azure.net/", name));
        ade_json_add_string(p, "provisioningState", "Succeeded");
        ade_json_add_string(p, "publicNetworkAccess", "Enabled");
        json_object_object_add(o, "properties", p);
        return o;
}

static json_object *vm_json(void) {
        json_object *vm = emu_cfg_obj(emu.config, "vm"), *o = json_object_new_object(), *p = json_object_new_object(),
                    *sp = json_object_new_object(), *os = json_object_new_object(), *osmd = json_object_new_object(),
                    *data = json_object_new_array(), *disks = emu_cfg_array(vm, "data_disks"),
                    *hw = json_object_new_object();
        json_object *osd = emu_cfg_obj(vm, "os_disk");
        const char *name = emu_cfg_str(vm, "name");

        if (!o || !p || !sp || !os || !osmd || !data || !hw) {
                json_object_put(o);
                json_object_put(p);
                json_object_put(sp);
                json_object_put(os);
                json_object_put(osmd);
                json_object_put(data);
                json_object_put(hw);
                return NULL;
        }
        json_object_object_add(o, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", cfg_sub(),
                        cfg_rg(), name));
        ade_json_add_string(o, "name", name);
        ade_json_add_string(o, "type", "Microsoft.Compute/virtualMachines");
        ade_json_add_string(o, "location", emu_cfg_str(vm, "location"));
        ade_json_add_string(p, "vmId", emu_cfg_str(vm, "vm_id"));
        ade_json_add_string(hw, "vmSize", emu_cfg_str(vm, "vm_size"));
        json_object_object_add(p, "hardwareProfile", hw);
        ade_json_add_string(os, "osType", emu_cfg_str(vm, "os_type"));
        ade_json_add_string(os, "name", emu_cfg_str(osd, "name"));
        ade_json_add_string(os, "createOption", "FromImage");
        json_object_object_add(osmd, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", cfg_sub(), cfg_rg(),
                        emu_cfg_str(osd, "name")));
        json_object_object_add(os, "managedDisk", osmd);
        json_object_object_add(os, "diskSizeGB", json_object_new_int64(emu_cfg_int(osd, "size_gb", 30)));
        json_object_object_add(sp, "osDisk", os);
        for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
                json_object *d = json_object_array_get_idx(disks, i), *e = json_object_new_object(),
                            *md = json_object_new_object();
                if (!e || !md) {
                        json_object_put(e);
                        json_object_put(md);
                        continue;
                }
                json_object_object_add(e, "lun", json_object_new_int64(emu_cfg_int(d, "lun", 0)));
                ade_json_add_string(e, "name", emu_cfg_str(d, "name"));
                ade_json_add_string(e, "createOption", "Empty");
                json_object_object_add(e, "diskSizeGB", json_object_new_int64(emu_cfg_int(d, "size_gb", 32)));
                json_object_object_add(md, "id",
                        strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", cfg_sub(),
                                cfg_rg(), emu_cfg_str(d, "name")));
                json_object_object_add(e, "managedDisk", md);
                json_object_array_add(data, e);
        }
        json_object_object_add(sp, "dataDisks", data);
        json_object_object_add(p, "storageProfile", sp);
        ade_json_add_string(p, "provisioningState", "Succeeded");
        json_object_object_add(o, "properties", p);
        return o;
}

/* The scenario's disks: the OS disk first, then the data disks. */
static size_t disk_count(void) {
        json_object *disks = emu_cfg_array(emu_cfg_obj(emu.config, "vm"), "data_disks");
        return 1 + (disks ? json_object_array_length(disks) : 0);
}

static json_object *disk_cfg(size_t i, bool *ret_os) {
        json_object *vm = emu_cfg_obj(emu.config, "vm");

        *ret_os = i == 0;
        if (i == 0)
                return emu_cfg_obj(vm, "os_disk");
        return json_object_array_get_idx(emu_cfg_array(vm, "data_disks"), i - 1);
}

static json_object *find_disk(const char *name, bool *ret_os) {
        for (size_t i = 0; i < disk_count(); i++) {
                json_object *d = disk_cfg(i, ret_os);
                if (d && strcaseeq(emu_cfg_str(d, "name") ?: "", name))
                        return d;
        }
        return NULL;
}

/* ADE's encryption settings of a data disk whose scenario names "encryption_secret" (a secret of the
 * vault, its latest version): the secret's URL under the host the client sent (the vault is this
 * server) and its KEK tag as keyUrl, as ADE sets them on the disk after its escrow. */
static json_object *disk_encryption_json(const EmuRequest *req, json_object *d) {
        const char *name = emu_cfg_str(d, "encryption_secret"), *host = emu_request_host(req);
        EmuSecret *secret = name ? emu_vault_find_secret(name, NULL) : NULL;
        json_object *esc, *list, *e, *dek, *kek, *url;
        size_t n = strlen(host);

        if (!secret)
                return NULL;
        if (n > 4 && streq(host + n - 4, ":443"))
                n -= 4;
        esc = json_object_new_object();
        list = json_object_new_array();
        e = json_object_new_object();
        dek = json_object_new_object();
        if (!esc || !list || !e || !dek) {
                json_object_put(esc);
                json_object_put(list);
                json_object_put(e);
                json_object_put(dek);
                return NULL;
        }
        json_object_object_add(
                dek, "secretUrl", strf("https://%.*s/secrets/%s/%s", (int)n, host, secret->name, secret->version));
        json_object_object_add(e, "diskEncryptionKey", dek);
        if (secret->tags && json_object_object_get_ex(secret->tags, "DiskEncryptionKeyEncryptionKeyURL", &url) &&
                (kek = json_object_new_object())) {
                json_object_object_add(kek, "keyUrl", json_object_get(url));
                json_object_object_add(e, "keyEncryptionKey", kek);
        }
        json_object_array_add(list, e);
        json_object_object_add(esc, "enabled", json_object_new_boolean(true));
        json_object_object_add(esc, "encryptionSettings", list);
        ade_json_add_string(esc, "encryptionSettingsVersion", "1.1");
        return esc;
}

static json_object *disk_json(const EmuRequest *req, json_object *d, bool os) {
        json_object *vm = emu_cfg_obj(emu.config, "vm"), *o = json_object_new_object(), *p = json_object_new_object(),
                    *cd = json_object_new_object(), *sku = json_object_new_object();
        const char *name = emu_cfg_str(d, "name");
        _cleanup_free_ char *created = emu_format_time(emu_now() - 30 * 86400);
        json_object *esc;

        if (!o || !p || !cd || !sku) {
                json_object_put(o);
                json_object_put(p);
                json_object_put(cd);
                json_object_put(sku);
                return NULL;
        }
        json_object_object_add(o, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", cfg_sub(), cfg_rg(),
                        name));
        ade_json_add_string(o, "name", name);
        ade_json_add_string(o, "type", "Microsoft.Compute/disks");
        ade_json_add_string(o, "location", emu_cfg_str(vm, "location"));
        json_object_object_add(o, "managedBy",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", cfg_sub(),
                        cfg_rg(), emu_cfg_str(vm, "name")));
        ade_json_add_string(sku, "name", emu_cfg_str(d, "storage_account_type") ?: "Premium_LRS");
        ade_json_add_string(sku, "tier", "Premium");
        json_object_object_add(o, "sku", sku);
        ade_json_add_string(cd, "createOption", os ? "FromImage" : "Empty");
        json_object_object_add(p, "creationData", cd);
        if (os)
                ade_json_add_string(p, "osType", emu_cfg_str(vm, "os_type"));
        json_object_object_add(p, "diskSizeGB", json_object_new_int64(emu_cfg_int(d, "size_gb", 32)));
        json_object_object_add(
                p, "diskSizeBytes", json_object_new_int64(emu_cfg_int(d, "size_gb", 32) * (int64_t)1073741824));
        ade_json_add_string(p, "uniqueId", emu_cfg_str(d, "unique_id"));
        ade_json_add_string(p, "timeCreated", created);
        ade_json_add_string(p, "provisioningState", "Succeeded");
        ade_json_add_string(p, "diskState", "Attached");
        esc = disk_encryption_json(req, d);
        if (esc)
                json_object_object_add(p, "encryptionSettingsCollection", esc);
        json_object_object_add(o, "properties", p);
        return o;
}

/* Snapshots: "auto" makes one Succeeded snapshot per disk, an hour old; an array lists them. */
static json_object *snapshot_list_cfg(void) {
        json_object *s, *out;

        if (json_object_object_get_ex(emu.config, "snapshots", &s) && json_object_is_type(s, json_type_array))
                return json_object_get(s);
        out = json_object_new_array();
        for (size_t i = 0; out && i < disk_count(); i++) {
                bool os;
                json_object *d = disk_cfg(i, &os), *e = json_object_new_object();
                if (!e || !d) {
                        json_object_put(e);
                        continue;
                }
                json_object_object_add(e, "name", strf("%s_snapshot", emu_cfg_str(d, "name")));
                ade_json_add_string(e, "disk", emu_cfg_str(d, "name"));
                json_object_array_add(out, e);
        }
        return out;
}

static json_object *snapshot_json(json_object *s) {
        json_object *vm = emu_cfg_obj(emu.config, "vm"), *o = json_object_new_object(), *p = json_object_new_object(),
                    *cd = json_object_new_object(), *disk;
        const char *name = emu_cfg_str(s, "name"), *disk_name = emu_cfg_str(s, "disk") ?: "",
                   *rg = emu_cfg_str(s, "resource_group") ?: cfg_rg(), *created_s = emu_cfg_str(s, "time_created");
        _cleanup_free_ char *created = NULL;
        bool os = false;

        if (!o || !p || !cd) {
                json_object_put(o);
                json_object_put(p);
                json_object_put(cd);
                return NULL;
        }
        disk = find_disk(disk_name, &os);
        created = created_s ? strdup(created_s) : emu_format_time(emu_now() - emu_cfg_int(s, "age_seconds", 3600));
        json_object_object_add(o, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/snapshots/%s", cfg_sub(), rg,
                        name));
        ade_json_add_string(o, "name", name);
        ade_json_add_string(o, "type", "Microsoft.Compute/snapshots");
        ade_json_add_string(o, "location", emu_cfg_str(s, "location") ?: emu_cfg_str(vm, "location"));
        ade_json_add_string(cd, "createOption", "Copy");
        json_object_object_add(cd, "sourceResourceId",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", cfg_sub(), cfg_rg(),
                        disk_name));
        if (disk)
                ade_json_add_string(cd, "sourceUniqueId", emu_cfg_str(disk, "unique_id"));
        json_object_object_add(p, "creationData", cd);
        if (os)
                ade_json_add_string(p, "osType", emu_cfg_str(vm, "os_type"));
        json_object_object_add(p, "diskSizeGB", json_object_new_int64(disk ? emu_cfg_int(disk, "size_gb", 32) : 32));
        json_object_object_add(p, "incremental", json_object_new_boolean(emu_cfg_bool(s, "incremental", true)));
        ade_json_add_string(p, "timeCreated", created);
        ade_json_add_string(p, "provisioningState", emu_cfg_str(s, "state") ?: "Succeeded");
        ade_json_add_string(p, "diskState", "Unattached");
        json_object_object_add(o, "properties", p);
        return o;
}

static json_object *restore_point_json(json_object *rpc, json_object *rp) {
        json_object *vm = emu_cfg_obj(emu.config, "vm"), *o = json_object_new_object(), *p = json_object_new_object(),
                    *meta = json_object_new_object(), *sp = json_object_new_object(), *os = json_object_new_object(),
                    *osmd = json_object_new_object(), *data = json_object_new_array(), *excl = json_object_new_array(),
                    *disks = emu_cfg_array(vm, "data_disks"), *excluded = emu_cfg_array(rp, "exclude_luns");
        _cleanup_free_ char *created = NULL;
        const char *rpc_name = emu_cfg_str(rpc, "name"), *name = emu_cfg_str(rp, "name");

        if (!o || !p || !meta || !sp || !os || !osmd || !data || !excl) {
                json_object_put(o);
                json_object_put(p);
                json_object_put(meta);
                json_object_put(sp);
                json_object_put(os);
                json_object_put(osmd);
                json_object_put(data);
                json_object_put(excl);
                return NULL;
        }
        created = emu_format_time(emu_now() - emu_cfg_int(rp, "age_seconds", 7200));
        json_object_object_add(o, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/restorePointCollections/%s/"
                     "restorePoints/%s",
                        cfg_sub(), cfg_rg(), rpc_name, name));
        ade_json_add_string(o, "name", name);
        ade_json_add_string(o, "type", "Microsoft.Compute/restorePointCollections/restorePoints");
        ade_json_add_string(meta, "vmId", emu_cfg_str(vm, "vm_id"));
        ade_json_add_string(meta, "location", emu_cfg_str(vm, "location"));
        ade_json_add_string(os, "osType", emu_cfg_str(vm, "os_type"));
        ade_json_add_string(os, "name", emu_cfg_str(emu_cfg_obj(vm, "os_disk"), "name"));
        json_object_object_add(osmd, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", cfg_sub(), cfg_rg(),
                        emu_cfg_str(emu_cfg_obj(vm, "os_disk"), "name")));
        json_object_object_add(os, "managedDisk", osmd);
        json_object_object_add(sp, "osDisk", os);
        for (size_t i = 0; disks && i < json_object_array_length(disks); i++) {
                json_object *d = json_object_array_get_idx(disks, i), *e, *md;
                int64_t lun = emu_cfg_int(d, "lun", 0);
                bool skip = false;

                for (size_t j = 0; excluded && j < json_object_array_length(excluded); j++)
                        if (json_object_get_int64(json_object_array_get_idx(excluded, j)) == lun)
                                skip = true;
                md = json_object_new_object();
                if (!md)
                        continue;
                json_object_object_add(md, "id",
                        strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", cfg_sub(),
                                cfg_rg(), emu_cfg_str(d, "name")));
                if (skip) {
                        json_object_array_add(excl, md);
                        continue;
                }
                e = json_object_new_object();
                if (!e) {
                        json_object_put(md);
                        continue;
                }
                /* Here the LUN is an integer, unlike IMDS. */
                json_object_object_add(e, "lun", json_object_new_int64(lun));
                ade_json_add_string(e, "name", emu_cfg_str(d, "name"));
                json_object_object_add(e, "managedDisk", md);
                json_object_array_add(data, e);
        }
        json_object_object_add(sp, "dataDisks", data);
        json_object_object_add(meta, "storageProfile", sp);
        json_object_object_add(p, "sourceMetadata", meta);
        json_object_object_add(p, "excludeDisks", excl);
        ade_json_add_string(p, "consistencyMode", emu_cfg_str(rp, "consistency_mode") ?: "CrashConsistent");
        ade_json_add_string(p, "timeCreated", created);
        ade_json_add_string(p, "provisioningState", emu_cfg_str(rp, "state") ?: "Succeeded");
        json_object_object_add(o, "properties", p);
        return o;
}

static json_object *rpc_json(json_object *rpc, bool expand) {
        json_object *vm = emu_cfg_obj(emu.config, "vm"), *o = json_object_new_object(), *p = json_object_new_object(),
                    *src = json_object_new_object(), *rps = emu_cfg_array(rpc, "restore_points");
        const char *name = emu_cfg_str(rpc, "name");

        if (!o || !p || !src) {
                json_object_put(o);
                json_object_put(p);
                json_object_put(src);
                return NULL;
        }
        json_object_object_add(o, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/restorePointCollections/%s",
                        cfg_sub(), cfg_rg(), name));
        ade_json_add_string(o, "name", name);
        ade_json_add_string(o, "type", "Microsoft.Compute/restorePointCollections");
        ade_json_add_string(o, "location", emu_cfg_str(vm, "location"));
        json_object_object_add(src, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", cfg_sub(),
                        cfg_rg(), emu_cfg_str(vm, "name")));
        ade_json_add_string(src, "location", emu_cfg_str(vm, "location"));
        json_object_object_add(p, "source", src);
        ade_json_add_string(
                p, "restorePointCollectionId", emu_cfg_str(rpc, "id") ?: "59f04a5d-f783-4200-a1bd-d3f464e8c4b4");
        ade_json_add_string(p, "provisioningState", "Succeeded");
        if (expand) {
                json_object *l = json_object_new_array();
                for (size_t i = 0; l && rps && i < json_object_array_length(rps); i++)
                        json_object_array_add(l, restore_point_json(rpc, json_object_array_get_idx(rps, i)));
                json_object_object_add(p, "restorePoints", l);
        }
        json_object_object_add(o, "properties", p);
        return o;
}

/* Answers one page of @items (consumed) with a nextLink carrying $skiptoken. */
static void page(const EmuRequest *req, EmuResponse *resp, json_object *items) {
        int64_t size = emu_cfg_int(emu_cfg_obj(emu.config, "arm"), "page_size", 2);
        const char *skip_s = emu_request_query(req, "$skiptoken");
        size_t n = json_object_array_length(items), skip = skip_s ? strtoul(skip_s, NULL, 10) : 0;
        json_object *o = json_object_new_object(), *value = json_object_new_array();

        if (size < 1)
                size = 1;
        if (!o || !value) {
                json_object_put(o);
                json_object_put(value);
                json_object_put(items);
                return;
        }
        for (size_t i = skip; i < n && i < skip + (size_t)size; i++)
                json_object_array_add(value, json_object_get(json_object_array_get_idx(items, i)));
        json_object_object_add(o, "value", value);
        if (skip + (size_t)size < n)
                json_object_object_add(o, "nextLink",
                        strf("https://%s%s?api-version=%s&$skiptoken=%zu", emu_request_host(req), req->path,
                                emu_request_query(req, "api-version"), skip + (size_t)size));
        json_object_put(items);
        emu_response_json(resp, 200, o);
}

/* The identity behind the token, to see whether it may read snapshots. */
static json_object *identity_by_oid(const char *oid) {
        json_object *ids = emu_cfg_obj(emu.config, "identities"), *sys = emu_cfg_obj(ids, "system"),
                    *users = emu_cfg_array(ids, "user_assigned"), *apps = emu_cfg_array(emu.config, "apps");

        if (!oid)
                return NULL;
        if (sys && strcaseeq(oid, emu_cfg_str(sys, "object_id") ?: ""))
                return sys;
        for (size_t i = 0; users && i < json_object_array_length(users); i++)
                if (strcaseeq(oid, emu_cfg_str(json_object_array_get_idx(users, i), "object_id") ?: ""))
                        return json_object_array_get_idx(users, i);
        for (size_t i = 0; apps && i < json_object_array_length(apps); i++)
                if (strcaseeq(oid, emu_cfg_str(json_object_array_get_idx(apps, i), "object_id") ?: ""))
                        return json_object_array_get_idx(apps, i);
        return NULL;
}

static bool may_read_snapshots(json_object *claims, EmuResponse *resp, const char *scope) {
        const char *oid = NULL;
        json_object *ident;

        (void)ade_json_get_string(claims, "oid", &oid);
        ident = identity_by_oid(oid);
        if (ident && !emu_cfg_bool(ident, "snapshot_reader", true)) {
                arm_error(resp, 403, "AuthorizationFailed",
                        "The client '%s' with object id '%s' does not have authorization to perform action "
                        "'Microsoft.Compute/snapshots/read' over scope '%s' or the scope is invalid. If access was "
                        "recently "
                        "granted, please refresh your credentials.",
                        oid, oid, scope);
                return false;
        }
        return true;
}

static void not_found(EmuResponse *resp, const char *type, const char *name, const char *rg) {
        arm_error(resp, 404, "ResourceNotFound",
                "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
                type, name, rg);
}

static void route(const EmuRequest *req, EmuResponse *resp, json_object *claims) {
        _cleanup_(strv_freep) char **seg = NULL;
        const char *p = req->path + 1;
        size_t n = 0;
        char scope[512];

        seg = calloc(16, sizeof(char *));
        if (!seg)
                return;
        while (*p && n < 15) {
                size_t l = strcspn(p, "/");
                if (l > 0) {
                        seg[n] = strndup(p, l);
                        if (!seg[n++])
                                return;
                }
                p += l + (p[l] == '/');
        }

        /* subscriptions/{sub}[/resourceGroups/{rg}]/providers/{ns}/{type}[/{name}] */
        if (n < 2 || !strcaseeq(seg[0], "subscriptions")) {
                arm_error(resp, 404, "InvalidResourceType", "The resource type could not be found in the namespace.");
                return;
        }
        if (!strcaseeq(seg[1], cfg_sub()) && !strcaseeq(seg[1], vault_sub())) {
                arm_error(resp, 404, "SubscriptionNotFound", "The subscription '%s' could not be found.", seg[1]);
                return;
        }
        if (!streq(req->method, "GET")) {
                arm_error(resp, 405, "MethodNotAllowed", "The emulator serves read-only ARM: %s is not allowed.",
                        req->method);
                return;
        }

        if (n == 5 && strcaseeq(seg[2], "providers") && strcaseeq(seg[3], "Microsoft.Compute") &&
                strcaseeq(seg[4], "snapshots")) {
                snprintf(scope, sizeof(scope), "/subscriptions/%s", seg[1]);
                if (!may_read_snapshots(claims, resp, scope))
                        return;
                json_object *all = snapshot_list_cfg(), *items = json_object_new_array();
                for (size_t i = 0; all && items && i < json_object_array_length(all); i++)
                        json_object_array_add(items, snapshot_json(json_object_array_get_idx(all, i)));
                json_object_put(all);
                if (items)
                        page(req, resp, items);
                return;
        }

        if (n < 7 || !strcaseeq(seg[2], "resourceGroups") || !strcaseeq(seg[4], "providers")) {
                arm_error(resp, 404, "InvalidResourceType", "The resource type '%s' could not be found.", req->path);
                return;
        }
        const char *rg = seg[3], *ns = seg[5], *type = seg[6], *name = n > 7 ? seg[7] : NULL;
        if (n > 8) {
                arm_error(resp, 404, "InvalidResourceType", "The resource type '%s' could not be found.", req->path);
                return;
        }

        if (strcaseeq(ns, "Microsoft.KeyVault") && strcaseeq(type, "vaults") && name) {
                json_object *v = emu_cfg_obj(emu.config, "vault");
                if (!strcaseeq(rg, vault_rg()) || !strcaseeq(seg[1], vault_sub()) ||
                        !strcaseeq(name, emu_cfg_str(v, "name") ?: "")) {
                        not_found(resp, "Microsoft.KeyVault/vaults", name, rg);
                        return;
                }
                emu_response_json(resp, 200, vault_json());
                return;
        }
        if (!strcaseeq(rg, cfg_rg())) {
                arm_error(resp, 404, "ResourceGroupNotFound", "Resource group '%s' could not be found.", rg);
                return;
        }
        if (!strcaseeq(ns, "Microsoft.Compute")) {
                arm_error(resp, 404, "InvalidResourceType",
                        "The resource type '%s' could not be found in the namespace '%s'.", type, ns);
                return;
        }

        if (strcaseeq(type, "virtualMachines") && name) {
                if (!strcaseeq(name, emu_cfg_str(emu_cfg_obj(emu.config, "vm"), "name") ?: ""))
                        not_found(resp, "Microsoft.Compute/virtualMachines", name, rg);
                else
                        emu_response_json(resp, 200, vm_json());
        } else if (strcaseeq(type, "disks")) {
                if (name) {
                        bool os;
                        json_object *d = find_disk(name, &os);
                        if (!d)
                                not_found(resp, "Microsoft.Compute/disks", name, rg);
                        else
                                emu_response_json(resp, 200, disk_json(req, d, os));
                } else {
                        json_object *items = json_object_new_array();
                        for (size_t i = 0; items && i < disk_count(); i++) {
                                bool os;
                                json_object *d = disk_cfg(i, &os);
                                if (d)
                                        json_object_array_add(items, disk_json(req, d, os));
                        }
                        if (items)
                                page(req, resp, items);
                }
        } else if (strcaseeq(type, "snapshots")) {
                _cleanup_json_ json_object *all = snapshot_list_cfg();
                snprintf(scope, sizeof(scope), "/subscriptions/%s/resourceGroups/%s%s%s", seg[1], rg,
                        name ? "/providers/Microsoft.Compute/snapshots/" : "", name ?: "");
                if (!may_read_snapshots(claims, resp, scope))
                        return;
                json_object *items = json_object_new_array();
                for (size_t i = 0; all && items && i < json_object_array_length(all); i++) {
                        json_object *s = json_object_array_get_idx(all, i);
                        if (!strcaseeq(emu_cfg_str(s, "resource_group") ?: cfg_rg(), rg))
                                continue;
                        if (name && !strcaseeq(emu_cfg_str(s, "name") ?: "", name))
                                continue;
                        json_object_array_add(items, snapshot_json(s));
                }
                if (!items)
                        return;
                if (!name)
                        page(req, resp, items);
                else if (json_object_array_length(items) == 0) {
                        json_object_put(items);
                        not_found(resp, "Microsoft.Compute/snapshots", name, rg);
                } else {
                        emu_response_json(resp, 200, json_object_get(json_object_array_get_idx(items, 0)));
                        json_object_put(items);
                }
        } else if (strcaseeq(type, "restorePointCollections")) {
                json_object *rpcs = emu_cfg_array(emu.config, "restore_point_collections");
                const char *expand = emu_request_query(req, "$expand");
                bool want = expand && strcaseeq(expand, "restorePoints");
                if (name) {
                        for (size_t i = 0; rpcs && i < json_object_array_length(rpcs); i++) {
                                json_object *r = json_object_array_get_idx(rpcs, i);
                                if (strcaseeq(emu_cfg_str(r, "name") ?: "", name)) {
                                        emu_response_json(resp, 200, rpc_json(r, want));
                                        return;
                                }
                        }
                        not_found(resp, "Microsoft.Compute/restorePointCollections", name, rg);
                } else {
                        json_object *items = json_object_new_array();
                        for (size_t i = 0; items && rpcs && i < json_object_array_length(rpcs); i++)
                                json_object_array_add(items, rpc_json(json_object_array_get_idx(rpcs, i), false));
                        if (items)
                                page(req, resp, items);
                }
        } else
                arm_error(resp, 404, "InvalidResourceType",
                        "The resource type '%s' could not be found in the namespace 'Microsoft.Compute'.", type);
}

void emu_arm_handle(const EmuRequest *req, EmuResponse *resp) {
        static const char *const audiences[] = {
                "https://management.azure.com/",
                "https://management.azure.com",
                "https://management.core.windows.net/",
                "https://management.core.windows.net",
                NULL,
        };
        static unsigned reads_left = 11999;
        _cleanup_json_ json_object *claims = NULL;
        _cleanup_free_ char *id = emu_new_guid();
        const char *aud = NULL;
        int64_t exp = 0;

        if (id) {
                emu_response_header(resp, "x-ms-request-id", "%s", id);
                emu_response_header(resp, "x-ms-correlation-request-id", "%s", id);
        }
        emu_response_header(resp, "Cache-Control", "no-cache");
        emu_response_header(resp, "Pragma", "no-cache");
        emu_response_header(resp, "Expires", "-1");

        switch (emu_token_check(req, audiences, &claims)) {
        case EMU_TOKEN_MISSING:
                emu_response_header(resp, "WWW-Authenticate",
                        "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", "
                        "error_description=\"The authentication failed because of missing 'Authorization' header.\"");
                arm_error(resp, 401, "AuthenticationFailed",
                        "Authentication failed. The 'Authorization' header is missing.");
                return;
        case EMU_TOKEN_INVALID:
                emu_response_header(resp, "WWW-Authenticate",
                        "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", "
                        "error_description=\"The access token is invalid.\"");
                arm_error(resp, 401, "InvalidAuthenticationToken", "The access token is invalid.");
                return;
        case EMU_TOKEN_EXPIRED: {
                _cleanup_free_ char *e = NULL, *now = emu_format_time(emu_now());
                (void)ade_json_get_int64(claims, "exp", &exp);
                e = emu_format_time(exp);
                emu_response_header(resp, "WWW-Authenticate",
                        "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", "
                        "error_description=\"The access token expiry UTC time '%s' is earlier than current UTC time "
                        "'%s'.\"",
                        strna(e), strna(now));
                arm_error(resp, 401, "ExpiredAuthenticationToken",
                        "The access token expiry UTC time '%s' is earlier than current UTC time '%s'.", strna(e),
                        strna(now));
                return;
        }
        case EMU_TOKEN_WRONG_AUDIENCE:
                (void)ade_json_get_string(claims, "aud", &aud);
                emu_response_header(resp, "WWW-Authenticate",
                        "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", "
                        "error_description=\"The access token has been obtained for wrong audience or resource.\"");
                arm_error(resp, 401, "InvalidAuthenticationTokenAudience",
                        "The access token has been obtained for wrong audience or resource '%s'. It should exactly "
                        "match with "
                        "one of the allowed audiences "
                        "'https://management.core.windows.net/','https://management.core.windows.net',"
                        "'https://management.azure.com/','https://management.azure.com'.",
                        strna(aud));
                return;
        case EMU_TOKEN_OK:
                break;
        }

        emu_response_header(
                resp, "x-ms-ratelimit-remaining-subscription-reads", "%u", reads_left > 0 ? reads_left-- : 0);
        if (isempty(emu_request_query(req, "api-version"))) {
                arm_error(resp, 400, "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.");
                return;
        }
        route(req, resp, claims);
}
