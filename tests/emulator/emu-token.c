/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Access tokens: issued by IMDS and Entra ID as RS256 JWTs signed with the emulator's own key,
 * accepted by Key Vault and ARM only when signed by that key, unexpired and for their audience. */

#include "emu.h"

static int64_t token_lifetime(void) {
        return emu_cfg_int(emu.config, "token_lifetime", 3600);
}

bool emu_token_resource_known(const char *r) {
        static const char *const known[] = {
                "https://management.azure.com/",
                "https://management.azure.com",
                "https://management.core.windows.net/",
                "https://storage.azure.com/",
                "https://storage.azure.com",
        };

        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (streq(r, known[i]))
                        return true;
        return emu_keyvault_resource_known(r);
}

int emu_token_issue(
        EmuService s, const char *aud, json_object *identity, char **ret, int64_t *ret_exp, int64_t *ret_iat) {
        _cleanup_json_ json_object *claims = json_object_new_object();
        const char *tenant = emu_cfg_str(emu.config, "tenant_id") ?: "";
        _cleanup_free_ char *iss = NULL, *uti = emu_new_guid();
        int64_t now = emu_now(), iat = now, exp = now + token_lifetime();
        EmuTokenFault fault = emu_faults_take_token(s);
        const char *token_aud = aud;

        if (!claims || !uti || asprintf(&iss, "https://sts.windows.net/%s/", tenant) < 0)
                return -ENOMEM;
        if (fault == EMU_TOKEN_FAULT_WRONG_AUDIENCE)
                token_aud =
                        emu_keyvault_resource_known(aud) ? "https://management.azure.com/" : emu_keyvault_resource();

        ade_json_add_string(claims, "aud", token_aud);
        ade_json_add_string(claims, "iss", iss);
        /* An expired token still claims its full lifetime in the token response, as a token
         * revoked or clock-skewed would: only the resource notices. */
        json_object_object_add(
                claims, "iat", json_object_new_int64(fault == EMU_TOKEN_FAULT_EXPIRED ? now - 7200 : iat));
        json_object_object_add(
                claims, "nbf", json_object_new_int64(fault == EMU_TOKEN_FAULT_EXPIRED ? now - 7200 : iat));
        json_object_object_add(claims, "exp", json_object_new_int64(fault == EMU_TOKEN_FAULT_EXPIRED ? now - 60 : exp));
        ade_json_add_string(claims, "appid", emu_cfg_str(identity, "client_id"));
        ade_json_add_string(claims, "appidacr", emu_cfg_bool(identity, "certificate", false) ? "2" : "1");
        ade_json_add_string(claims, "idtyp", "app");
        ade_json_add_string(claims, "oid", emu_cfg_str(identity, "object_id"));
        ade_json_add_string(claims, "sub", emu_cfg_str(identity, "object_id"));
        ade_json_add_string(claims, "tid", tenant);
        ade_json_add_string(claims, "uti", uti);
        ade_json_add_string(claims, "ver", "1.0");
        ade_json_add_string(claims, "xms_mirid", emu_cfg_str(identity, "msi_res_id"));

        *ret_exp = exp;
        if (ret_iat)
                *ret_iat = iat;
        return emu_jwt_sign(emu.token_key, emu.token_kid, TAKE_PTR(claims), ret);
}

EmuTokenCheck emu_token_check(const EmuRequest *req, const char *const *audiences, json_object **ret_claims) {
        _cleanup_json_ json_object *claims = NULL;
        const char *auth = emu_request_header(req, "Authorization"), *token, *aud;
        int64_t exp;

        if (ret_claims)
                *ret_claims = NULL;
        if (!auth)
                return EMU_TOKEN_MISSING;
        token = startswith_no_case(auth, "Bearer ");
        if (!token)
                return EMU_TOKEN_MISSING;
        token += strspn(token, " ");
        if (isempty(token))
                return EMU_TOKEN_MISSING;
        if (emu_jwt_verify(emu.token_key, token, NULL, &claims) < 0)
                return EMU_TOKEN_INVALID;
        if (ade_json_get_int64(claims, "exp", &exp) < 0 || ade_json_get_string(claims, "aud", &aud) < 0)
                return EMU_TOKEN_INVALID;

        if (ret_claims)
                *ret_claims = json_object_get(claims);
        if (exp <= emu_now())
                return EMU_TOKEN_EXPIRED;
        for (const char *const *a = audiences; *a; a++)
                if (streq(aud, *a))
                        return EMU_TOKEN_OK;
        return EMU_TOKEN_WRONG_AUDIENCE;
}
