/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ade-json.h"
#include "aded-errors.h"

json_object *aded_error_precondition_parameters(const char *check, const char *reason) {
        json_object *p = json_object_new_object();

        if (!p)
                return NULL;
        json_object_object_add(p, "check", json_object_new_string(check));
        json_object_object_add(p, "reason", json_object_new_string(reason));
        return p;
}

int aded_error_precondition(AdeVarlinkCall *call, const char *check, const char *reason) {
        _cleanup_json_ json_object *p = aded_error_precondition_parameters(check, reason);

        if (!p)
                return -ENOMEM;
        return ade_varlink_error(call, ADED_ERROR("PreconditionFailed"), p);
}

int aded_error_stopping(AdeVarlinkCall *call) {
        return aded_error_precondition(call, "daemon", "aded is stopping; try again once it has restarted");
}

int aded_error_unlock_without_dm(AdeVarlinkCall *call) {
        return aded_error_precondition(call, "device-mapper",
                "device-mapper is not available on this host (no /dev/mapper/control): "
                "encrypted volumes cannot be opened here; load the dm-crypt module");
}

json_object *aded_error_keyvault_parameters(const AdeCloudError *e) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "status", json_object_new_int((int)e->status));
        json_object_object_add(o, "code", json_object_new_string(e->code ?: "Unknown"));
        json_object_object_add(o, "message", json_object_new_string(e->message ?: "no message"));
        if (e->url)
                json_object_object_add(o, "url", json_object_new_string(e->url));
        return o;
}

int aded_error_no_such_volume(AdeVarlinkCall *call, const char *device) {
        _cleanup_json_ json_object *p = json_object_new_object();

        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "device", json_object_new_string(device));
        return ade_varlink_error(call, ADED_ERROR("NoSuchVolume"), p);
}

int aded_error_in_progress(AdeVarlinkCall *call, const char *device) {
        _cleanup_json_ json_object *p = json_object_new_object();

        if (!p)
                return -ENOMEM;
        if (device)
                json_object_object_add(p, "device", json_object_new_string(device));
        return ade_varlink_error(call, ADED_ERROR("OperationInProgress"), p);
}
