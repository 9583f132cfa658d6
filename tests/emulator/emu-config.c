/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scenario: a default Azure world (README.md, "Scenario") and the JSON overlay merge. */

#include "emu.h"

/* Every field is documented in README.md; keep the two in step. */
static const char default_scenario[] =
        "{"
        "\"tenant_id\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\","
        "\"subscription_id\":\"0a1b2c3d-0000-4000-8000-000000000001\","
        "\"resource_group\":\"ade-rg\","
        "\"token_lifetime\":3600,"
        "\"vm\":{"
        "  \"name\":\"ade-test-vm\",\"location\":\"westeurope\","
        "  \"vm_id\":\"5c3f8f9e-2d6a-4b7e-9c1d-3a2b1c0d9e8f\",\"vm_size\":\"Standard_D2s_v3\","
        "  \"os_type\":\"Linux\",\"zone\":\"\",\"tags\":{},"
        "  \"os_disk\":{\"name\":\"ade-test-vm_OsDisk\",\"size_gb\":30,\"storage_account_type\":\"Premium_LRS\","
        "               \"unique_id\":\"8a6c2f1e-0b7d-4c3e-9f5a-1d2e3f4a5b60\"},"
        "  \"data_disks\":["
        "    {\"name\":\"ade-test-vm_DataDisk_0\",\"lun\":0,\"size_gb\":32,\"storage_account_type\":\"Premium_LRS\","
        "     \"unique_id\":\"8a6c2f1e-0b7d-4c3e-9f5a-1d2e3f4a5b61\"},"
        "    {\"name\":\"ade-test-vm_DataDisk_1\",\"lun\":1,\"size_gb\":32,\"storage_account_type\":\"Premium_LRS\","
        "     \"unique_id\":\"8a6c2f1e-0b7d-4c3e-9f5a-1d2e3f4a5b62\"}"
        "  ]"
        "},"
        "\"identities\":{"
        "  \"system\":{\"client_id\":\"3e4f5a6b-1111-4c2d-8e9f-0a1b2c3d4e01\","
        "            \"object_id\":\"9d8c7b6a-1111-4f3e-8d2c-1b0a9f8e7d01\",\"snapshot_reader\":true},"
        "  \"user_assigned\":["
        "    {\"name\":\"ade-test-identity\",\"client_id\":\"3e4f5a6b-2222-4c2d-8e9f-0a1b2c3d4e02\","
        "     \"object_id\":\"9d8c7b6a-2222-4f3e-8d2c-1b0a9f8e7d02\",\"msi_res_id\":null,\"snapshot_reader\":true}"
        "  ]"
        "},"
        "\"apps\":["
        "  {\"name\":\"ade-test-app-secret\",\"client_id\":\"5f6a7b8c-3333-4d5e-9f0a-1b2c3d4e5f03\","
        "   \"object_id\":\"0e1f2a3b-3333-4c5d-8e7f-9a0b1c2d3e03\",\"secret\":\"ade~emulator.Secret-0123456789\","
        "   \"certificate\":false,\"snapshot_reader\":true},"
        "  {\"name\":\"ade-test-app-cert\",\"client_id\":\"5f6a7b8c-4444-4d5e-9f0a-1b2c3d4e5f04\","
        "   \"object_id\":\"0e1f2a3b-4444-4c5d-8e7f-9a0b1c2d3e04\",\"secret\":null,"
        "   \"certificate\":true,\"snapshot_reader\":true}"
        "],"
        "\"vault\":{"
        "  \"name\":\"contoso\",\"location\":\"westeurope\",\"resource_group\":null,\"subscription_id\":null,"
        "  \"tenant_id\":null,"
        "  \"enabled_for_disk_encryption\":true,\"enable_soft_delete\":true,\"soft_delete_retention_days\":90,"
        "  \"enable_purge_protection\":true,\"enable_rbac_authorization\":false,"
        "  \"keys\":[{\"name\":\"kek\",\"kty\":\"RSA\",\"key_size\":2048,\"enabled\":true,"
        "            \"key_ops\":[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\"]}],"
        "  \"secrets\":[]"
        "},"
        "\"snapshots\":\"auto\","
        "\"restore_point_collections\":[],"
        "\"arm\":{\"page_size\":2},"
        "\"keyvault\":{\"challenge_authority\":null,\"challenge_scope\":false,\"resource\":null}"
        "}";

int emu_json_merge(json_object *base, json_object *overlay) {
        json_object_object_foreach(overlay, key, value) {
                json_object *old = NULL;

                if (json_object_object_get_ex(base, key, &old) && json_object_is_type(old, json_type_object) &&
                        json_object_is_type(value, json_type_object)) {
                        int r = emu_json_merge(old, value);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (json_object_object_add(base, key, json_object_get(value)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int emu_config_build(json_object *overlay, json_object **ret) {
        _cleanup_json_ json_object *config = NULL;
        int r;

        r = ade_json_parse(default_scenario, strlen(default_scenario), &config);
        if (r < 0)
                return r;
        if (overlay) {
                if (!json_object_is_type(overlay, json_type_object))
                        return -EINVAL;
                r = emu_json_merge(config, overlay);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(config);
        return 0;
}

const char *emu_cfg_str(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

bool emu_cfg_bool(json_object *o, const char *key, bool def) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !v)
                return def;
        if (json_object_is_type(v, json_type_boolean))
                return json_object_get_boolean(v);
        if (json_object_is_type(v, json_type_string))
                return strcaseeq(json_object_get_string(v), "true");
        return def;
}

int64_t emu_cfg_int(json_object *o, const char *key, int64_t def) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return def;
        return json_object_get_int64(v);
}

json_object *emu_cfg_obj(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
                return NULL;
        return v;
}

json_object *emu_cfg_array(json_object *o, const char *key) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
                return NULL;
        return v;
}
