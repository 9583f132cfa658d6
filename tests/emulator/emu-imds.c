/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Instance Metadata Service (docs/protocols.md §2.1, §2.2) over plain HTTP: instance metadata where every
 * primitive is a string, sub-path filtering with format=text for leaves, and managed-identity
 * tokens for the system-assigned or a user-assigned identity. */

#include <ctype.h>

#include "emu.h"

static json_object *str(const char *s) {
        return json_object_new_string(s ?: "");
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

static void imds_error(EmuResponse *resp, unsigned status, const char *message) {
        json_object *o = json_object_new_object();

        if (o)
                ade_json_add_string(o, "error", message);
        emu_response_json(resp, status, o);
}

static void token_error(EmuResponse *resp, unsigned status, const char *error, const char *description) {
        json_object *o = json_object_new_object();

        if (o) {
                ade_json_add_string(o, "error", error);
                ade_json_add_string(o, "error_description", description);
        }
        emu_response_json(resp, status, o);
}

static json_object *disk_json(json_object *d, bool os, const char *sub, const char *rg, const char *os_type) {
        json_object *o = json_object_new_object(), *md = json_object_new_object(), *img = json_object_new_object(),
                    *vhd = json_object_new_object(), *enc = json_object_new_object();
        const char *name = emu_cfg_str(d, "name");

        if (!o || !md || !img || !vhd || !enc) {
                json_object_put(o);
                json_object_put(md);
                json_object_put(img);
                json_object_put(vhd);
                json_object_put(enc);
                return NULL;
        }
        json_object_object_add(md, "id",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", sub, rg, name));
        json_object_object_add(md, "storageAccountType", str(emu_cfg_str(d, "storage_account_type")));
        json_object_object_add(img, "uri", str(""));
        json_object_object_add(vhd, "uri", str(""));

        json_object_object_add(o, "caching", str(os ? "ReadWrite" : "None"));
        json_object_object_add(o, "createOption", str(os ? "FromImage" : "Empty"));
        json_object_object_add(o, "diskSizeGB", strf("%" PRId64, emu_cfg_int(d, "size_gb", 32)));
        if (os) {
                json_object_object_add(o, "diffDiskSettings", json_object_new_object());
                json_object_object_add(json_object_object_get(o, "diffDiskSettings"), "option", str(""));
                json_object_object_add(enc, "enabled", str("false"));
                json_object_object_add(o, "encryptionSettings", enc);
        } else {
                json_object_put(enc);
                json_object_object_add(o, "bytesPerSecondThrottle", str(""));
                json_object_object_add(
                        o, "diskCapacityBytes", strf("%" PRId64, emu_cfg_int(d, "size_gb", 32) * (int64_t)1073741824));
                json_object_object_add(o, "isSharedDisk", str("false"));
                json_object_object_add(o, "isUltraDisk", str("false"));
                json_object_object_add(o, "lun", strf("%" PRId64, emu_cfg_int(d, "lun", 0)));
                json_object_object_add(o, "opsPerSecondThrottle", str(""));
        }
        json_object_object_add(o, "image", img);
        json_object_object_add(o, "managedDisk", md);
        json_object_object_add(o, "name", str(name));
        if (os)
                json_object_object_add(o, "osType", str(os_type));
        json_object_object_add(o, "vhd", vhd);
        json_object_object_add(o, "writeAcceleratorEnabled", str("false"));
        return o;
}

/* One NIC with a private address, as a VM in a VNet has (data only: nothing is sent there). */
static json_object *nic_json(void) {
        _cleanup_json_ json_object *l = NULL;
        const char *text = "[{\"ipv4\":{\"ipAddress\":[{\"privateIpAddress\":\"10.0.0.4\",\"publicIpAddress\":\"\"}],"
                           "\"subnet\":[{\"address\":\"10.0.0.0\",\"prefix\":\"24\"}]},"
                           "\"ipv6\":{\"ipAddress\":[]},\"macAddress\":\"000D3A2B4C5D\"}]";

        if (ade_json_parse(text, strlen(text), &l) < 0)
                return json_object_new_array();
        return TAKE_PTR(l);
}

static json_object *instance_json(void) {
        json_object *c = emu.config, *vm = emu_cfg_obj(c, "vm"), *tags = emu_cfg_obj(vm, "tags");
        json_object *o = json_object_new_object(), *compute = json_object_new_object(), *sp = json_object_new_object(),
                    *storage = json_object_new_object(), *data = json_object_new_array(),
                    *tags_list = json_object_new_array(), *network = json_object_new_object(),
                    *rd = json_object_new_object(), *disks = emu_cfg_array(vm, "data_disks");
        const char *sub = emu_cfg_str(c, "subscription_id"), *rg = emu_cfg_str(c, "resource_group"),
                   *name = emu_cfg_str(vm, "name"), *os_type = emu_cfg_str(vm, "os_type") ?: "Linux";
        _cleanup_free_ char *tag_string = strdup("");
        _cleanup_json_ json_object *no_tags = json_object_new_object();

        if (!no_tags || !o || !compute || !sp || !storage || !data || !tags_list || !network || !rd || !tag_string) {
                json_object_put(o);
                json_object_put(compute);
                json_object_put(sp);
                json_object_put(storage);
                json_object_put(data);
                json_object_put(tags_list);
                json_object_put(network);
                json_object_put(rd);
                return NULL;
        }

        if (!tags)
                tags = no_tags;
        json_object_object_foreach(tags, tk, tv) {
                json_object *e = json_object_new_object();
                char *n = NULL;
                if (!e)
                        continue;
                json_object_object_add(e, "name", str(tk));
                json_object_object_add(e, "value", str(json_object_get_string(tv)));
                json_object_array_add(tags_list, e);
                if (asprintf(&n, "%s%s%s:%s", tag_string, *tag_string ? ";" : "", tk, json_object_get_string(tv)) >=
                        0) {
                        free(tag_string);
                        tag_string = n;
                }
        }

        json_object_object_add(compute, "azEnvironment", str("AzurePublicCloud"));
        json_object_object_add(compute, "location", str(emu_cfg_str(vm, "location")));
        json_object_object_add(compute, "name", str(name));
        json_object_object_add(compute, "offer", str("debian-12"));
        json_object_object_add(compute, "osType", str(os_type));
        json_object_object_add(compute, "publisher", str("Debian"));
        json_object_object_add(compute, "resourceGroupName", str(rg));
        json_object_object_add(compute, "resourceId",
                strf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s", sub, rg,
                        name));
        json_object_object_add(sp, "secureBootEnabled", str("false"));
        json_object_object_add(sp, "virtualTpmEnabled", str("false"));
        json_object_object_add(sp, "encryptionAtHost", str("false"));
        json_object_object_add(sp, "securityType", str(""));
        json_object_object_add(compute, "securityProfile", sp);
        json_object_object_add(compute, "sku", str("12-gen2"));
        for (size_t i = 0; disks && i < json_object_array_length(disks); i++)
                json_object_array_add(data, disk_json(json_object_array_get_idx(disks, i), false, sub, rg, os_type));
        json_object_object_add(storage, "dataDisks", data);
        json_object_object_add(storage, "osDisk", disk_json(emu_cfg_obj(vm, "os_disk"), true, sub, rg, os_type));
        json_object_object_add(rd, "size", str("16384"));
        json_object_object_add(storage, "resourceDisk", rd);
        json_object_object_add(compute, "storageProfile", storage);
        json_object_object_add(compute, "subscriptionId", str(sub));
        json_object_object_add(compute, "tags", str(tag_string));
        json_object_object_add(compute, "tagsList", tags_list);
        json_object_object_add(compute, "version", str("0.0.20240101"));
        json_object_object_add(compute, "vmId", str(emu_cfg_str(vm, "vm_id")));
        json_object_object_add(compute, "vmSize", str(emu_cfg_str(vm, "vm_size")));
        json_object_object_add(compute, "zone", str(emu_cfg_str(vm, "zone")));
        json_object_object_add(o, "compute", compute);
        json_object_object_add(network, "interface", nic_json());
        json_object_object_add(o, "network", network);
        return o;
}

/* The text form of a node: a leaf's value, or the names of an object's members / an array's
 * indexes, one per line, with "/" after those that have children. */
static char *node_text(json_object *node) {
        char *s = NULL, *n;

        if (json_object_is_type(node, json_type_string))
                return strdup(json_object_get_string(node));
        s = strdup("");
        if (json_object_is_type(node, json_type_object)) {
                json_object_object_foreach(node, k, v) {
                        if (asprintf(&n, "%s%s%s\n", s, k, json_object_is_type(v, json_type_string) ? "" : "/") < 0)
                                return mfree(s);
                        free(s);
                        s = n;
                }
        } else if (json_object_is_type(node, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(node); i++) {
                        if (asprintf(&n, "%s%zu/\n", s, i) < 0)
                                return mfree(s);
                        free(s);
                        s = n;
                }
        }
        return s;
}

static void instance(const EmuRequest *req, EmuResponse *resp) {
        _cleanup_json_ json_object *root = instance_json();
        const char *rest = startswith(req->path, "/metadata/instance"), *format = emu_request_query(req, "format");
        json_object *node = root;
        bool leaf;

        if (!root)
                return;
        if (!rest || (*rest && *rest != '/')) {
                imds_error(resp, 404, "Not found");
                return;
        }
        /* Walk /compute/storageProfile/dataDisks/0/lun. */
        while (*rest) {
                _cleanup_free_ char *seg = NULL;
                size_t l;

                rest += strspn(rest, "/");
                l = strcspn(rest, "/");
                if (l == 0)
                        break;
                seg = strndup(rest, l);
                rest += l;
                if (!seg)
                        return;
                if (json_object_is_type(node, json_type_object)) {
                        if (!json_object_object_get_ex(node, seg, &node)) {
                                imds_error(resp, 404, "Not found");
                                return;
                        }
                } else if (json_object_is_type(node, json_type_array)) {
                        char *end;
                        unsigned long i = strtoul(seg, &end, 10);
                        if (*end || !isdigit((unsigned char)seg[0]) || i >= json_object_array_length(node)) {
                                imds_error(resp, 404, "Not found");
                                return;
                        }
                        node = json_object_array_get_idx(node, i);
                } else {
                        imds_error(resp, 404, "Not found");
                        return;
                }
        }

        leaf = json_object_is_type(node, json_type_string);
        if (format && !streq(format, "json") && !streq(format, "text")) {
                imds_error(resp, 400, "Bad request. Unsupported format. Use format=json or format=text.");
                return;
        }
        if (leaf && !streq_ptr(format, "text")) {
                imds_error(resp, 400,
                        "Bad request. Leaf nodes must be queried with format=text. "
                        "For more information refer to aka.ms/azureimds");
                return;
        }
        if (streq_ptr(format, "text")) {
                _cleanup_free_ char *t = node_text(node);
                if (t)
                        emu_response_set(resp, 200, "text/plain; charset=utf-8", t, strlen(t));
                return;
        }
        emu_response_json(resp, 200, json_object_get(node));
}

static char *msi_res_id(json_object *ident) {
        const char *explicit = emu_cfg_str(ident, "msi_res_id");
        char *s;

        if (explicit)
                return strdup(explicit);
        if (asprintf(&s,
                    "/subscriptions/%s/resourcegroups/%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%s",
                    emu_cfg_str(emu.config, "subscription_id"), emu_cfg_str(emu.config, "resource_group"),
                    emu_cfg_str(ident, "name") ?: "identity") < 0)
                return NULL;
        return s;
}

/* Picks the identity: the one a selector names, else the system-assigned one, else the only
 * user-assigned one. Returns a new reference with "msi_res_id" filled in, or NULL. */
static json_object *select_identity(const char *client_id, const char *object_id, const char *res_id) {
        json_object *ids = emu_cfg_obj(emu.config, "identities"), *system = emu_cfg_obj(ids, "system"),
                    *users = emu_cfg_array(ids, "user_assigned"), *pick = NULL, *copy = NULL;
        size_t n = users ? json_object_array_length(users) : 0;
        _cleanup_free_ char *rid = NULL;

        if (!client_id && !object_id && !res_id) {
                if (system)
                        pick = system;
                else if (n == 1)
                        pick = json_object_array_get_idx(users, 0);
        } else {
                if (system && !res_id &&
                        ((client_id && strcaseeq(client_id, emu_cfg_str(system, "client_id") ?: "")) ||
                                (object_id && strcaseeq(object_id, emu_cfg_str(system, "object_id") ?: ""))))
                        pick = system;
                for (size_t i = 0; !pick && i < n; i++) {
                        json_object *u = json_object_array_get_idx(users, i);
                        _cleanup_free_ char *urid = msi_res_id(u);
                        if ((client_id && strcaseeq(client_id, emu_cfg_str(u, "client_id") ?: "")) ||
                                (object_id && strcaseeq(object_id, emu_cfg_str(u, "object_id") ?: "")) ||
                                (res_id && urid && strcaseeq(res_id, urid)))
                                pick = u;
                }
        }
        if (!pick)
                return NULL;
        if (json_object_deep_copy(pick, &copy, NULL) < 0)
                return NULL;
        if (pick != system) {
                rid = msi_res_id(pick);
                ade_json_add_string(copy, "msi_res_id", rid);
        }
        return copy;
}

static void identity_token(const EmuRequest *req, EmuResponse *resp) {
        const char *resource = emu_request_query(req, "resource"), *client_id = emu_request_query(req, "client_id"),
                   *object_id = emu_request_query(req, "object_id"), *res_id = emu_request_query(req, "msi_res_id");
        _cleanup_json_ json_object *ident = NULL;
        _cleanup_free_ char *token = NULL;
        json_object *o;
        int64_t exp, iat;
        char buf[32];

        /* MSAL asks for ".../token/": IMDS takes the trailing slash. */
        if (!streq(req->path, "/metadata/identity/oauth2/token") &&
                !streq(req->path, "/metadata/identity/oauth2/token/")) {
                token_error(resp, 404, "not_found", "The requested path was not found.");
                return;
        }
        if (!streq(req->method, "GET") && !streq(req->method, "POST")) {
                token_error(resp, 405, "method_not_allowed", "The method is not allowed. Use GET.");
                return;
        }
        if (isempty(resource)) {
                token_error(resp, 400, "invalid_request", "Required query variable 'resource' is missing");
                return;
        }
        if ((client_id != NULL) + (object_id != NULL) + (res_id != NULL) > 1) {
                token_error(resp, 400, "invalid_request",
                        "Only one of 'client_id', 'object_id' or 'msi_res_id' may be given.");
                return;
        }
        if (!emu_token_resource_known(resource)) {
                _cleanup_free_ char *d = NULL;
                if (asprintf(&d, "AADSTS500011: The resource principal named %s was not found in the tenant named %s.",
                            resource, emu_cfg_str(emu.config, "tenant_id")) < 0)
                        return;
                token_error(resp, 400, "invalid_resource", d);
                return;
        }
        ident = select_identity(client_id, object_id, res_id);
        if (!ident) {
                token_error(resp, 400, "invalid_request", "Identity not found");
                return;
        }
        if (emu_token_issue(req->service, resource, ident, &token, &exp, &iat) < 0)
                return;

        o = json_object_new_object();
        if (!o)
                return;
        /* IMDS sends every field as a string, numbers included. */
        ade_json_add_string(o, "access_token", token);
        ade_json_add_string(o, "client_id", emu_cfg_str(ident, "client_id"));
        snprintf(buf, sizeof(buf), "%" PRId64, exp - iat);
        ade_json_add_string(o, "expires_in", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, exp);
        ade_json_add_string(o, "expires_on", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, exp - iat);
        ade_json_add_string(o, "ext_expires_in", buf);
        snprintf(buf, sizeof(buf), "%" PRId64, iat);
        ade_json_add_string(o, "not_before", buf);
        ade_json_add_string(o, "resource", resource);
        ade_json_add_string(o, "token_type", "Bearer");
        emu_response_json(resp, 200, o);
}

void emu_imds_handle(const EmuRequest *req, EmuResponse *resp) {
        bool token = req->service == EMU_SERVICE_IMDS_TOKEN;
        const char *metadata = emu_request_header(req, "Metadata"), *api = emu_request_query(req, "api-version");

        emu_response_header(resp, "Server", "IMDS/150.870.65.1325");
        if (emu_request_header(req, "X-Forwarded-For")) {
                if (token)
                        token_error(resp, 400, "invalid_request",
                                "Request contains the X-Forwarded-For header; IMDS refuses proxied requests");
                else
                        imds_error(resp, 400,
                                "Bad request. Request contains the X-Forwarded-For header; IMDS refuses proxied "
                                "requests");
                return;
        }
        if (!streq_ptr(metadata, "true")) {
                if (token)
                        token_error(resp, 400, "invalid_request", "Required metadata header not specified");
                else
                        imds_error(resp, 400, "Bad request. Required metadata header not specified");
                return;
        }
        for (size_t i = 0; req->query && req->query[i]; i += 2)
                if (emu_request_query_count(req, req->query[i]) > 1) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "Bad request. Query parameter '%s' is specified more than once.",
                                    req->query[i]) < 0)
                                return;
                        if (token)
                                token_error(resp, 400, "invalid_request", m);
                        else
                                imds_error(resp, 400, m);
                        return;
                }
        if (isempty(api)) {
                if (token)
                        token_error(resp, 400, "invalid_request", "Required query variable 'api-version' is missing");
                else {
                        json_object *o = json_object_new_object(), *v = json_object_new_array();
                        if (!o || !v) {
                                json_object_put(o);
                                json_object_put(v);
                                return;
                        }
                        ade_json_add_string(o, "error",
                                "Bad request. api-version was not specified in the request. "
                                "For more information refer to aka.ms/azureimds");
                        json_object_array_add(v, json_object_new_string("2023-07-01"));
                        json_object_array_add(v, json_object_new_string("2021-12-13"));
                        json_object_array_add(v, json_object_new_string("2021-02-01"));
                        json_object_object_add(o, "newest-versions", v);
                        emu_response_json(resp, 400, o);
                }
                return;
        }
        if (token)
                identity_token(req, resp);
        else if (!streq(req->method, "GET"))
                imds_error(resp, 405, "Bad request. Only GET is allowed.");
        else
                instance(req, resp);
}
