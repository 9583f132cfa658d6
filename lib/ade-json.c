/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>

#include "ade-json.h"
#include "ade-secret.h"

/* json-c's tokener collects every string of the document in its print buffer, and frees it without
 * wiping: the last long string (a secret's value, an access token) would stay in freed heap. The
 * struct is public in json-c's header. */
static void tokener_free(json_tokener *tok) {
        if (tok->pb && tok->pb->buf && tok->pb->size > 0)
                ade_memzero(tok->pb->buf, (size_t)tok->pb->size);
        json_tokener_free(tok);
}

int ade_json_parse(const char *buf, size_t len, json_object **ret) {
        json_tokener *tok;
        json_object *o;

        if (!buf || !ret || len > INT32_MAX)
                return -EINVAL;
        if (memchr(buf, '\0', len))
                return -EBADMSG;

        tok = json_tokener_new_ex(64);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

        o = json_tokener_parse_ex(tok, buf, (int)len);
        /* json_tokener_continue means the input ended inside a value: a truncated document. */
        if (!o || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
                bool only_space = false;

                if (o && json_tokener_get_error(tok) == json_tokener_success) {
                        only_space = true;
                        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
                                if (!strchr(" \t\r\n", buf[i]))
                                        only_space = false;
                }
                if (!only_space) {
                        json_object_put(o);
                        tokener_free(tok);
                        return -EBADMSG;
                }
        }
        tokener_free(tok);

        /* A bare "null" parses to NULL with success; a document must be a value. */
        if (!o)
                return -EBADMSG;

        *ret = o;
        return 0;
}

static int get_typed(json_object *obj, const char *key, json_type type, json_object **ret) {
        json_object *v;

        if (!obj || !key || !json_object_is_type(obj, json_type_object))
                return -EINVAL;
        if (!json_object_object_get_ex(obj, key, &v) || !v)
                return -ENOENT;
        if (!json_object_is_type(v, type))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int ade_json_get_string(json_object *obj, const char *key, const char **ret) {
        json_object *v;
        int r;

        r = get_typed(obj, key, json_type_string, &v);
        if (r < 0)
                return r;
        *ret = json_object_get_string(v);
        return 0;
}

int ade_json_get_object(json_object *obj, const char *key, json_object **ret) {
        return get_typed(obj, key, json_type_object, ret);
}

int ade_json_get_array(json_object *obj, const char *key, json_object **ret) {
        return get_typed(obj, key, json_type_array, ret);
}

int ade_json_get_bool(json_object *obj, const char *key, bool *ret) {
        json_object *v;
        int r;

        r = get_typed(obj, key, json_type_boolean, &v);
        if (r < 0)
                return r;
        *ret = json_object_get_boolean(v);
        return 0;
}

int ade_json_get_int64(json_object *obj, const char *key, int64_t *ret) {
        json_object *v;
        int r;

        r = get_typed(obj, key, json_type_int, &v);
        if (r < 0)
                return r;
        errno = 0;
        *ret = json_object_get_int64(v);
        return 0;
}

static int parse_int64(const char *s, int64_t *ret) {
        char *end;
        long long v;

        if (isempty(s))
                return -EBADMSG;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int ade_json_get_int64_lenient(json_object *obj, const char *key, int64_t *ret) {
        json_object *v;
        int r;

        r = get_typed(obj, key, json_type_int, &v);
        if (r == 0) {
                *ret = json_object_get_int64(v);
                return 0;
        }
        if (r != -EBADMSG)
                return r;
        r = get_typed(obj, key, json_type_string, &v);
        if (r < 0)
                return r;
        return parse_int64(json_object_get_string(v), ret);
}

int ade_json_get_bool_lenient(json_object *obj, const char *key, bool *ret) {
        const char *s;
        json_object *v;
        int r;

        r = get_typed(obj, key, json_type_boolean, &v);
        if (r == 0) {
                *ret = json_object_get_boolean(v);
                return 0;
        }
        if (r != -EBADMSG)
                return r;
        r = ade_json_get_string(obj, key, &s);
        if (r < 0)
                return r;
        if (strcaseeq(s, "true"))
                *ret = true;
        else if (strcaseeq(s, "false"))
                *ret = false;
        else
                return -EBADMSG;
        return 0;
}

int ade_json_get_path_string(json_object *obj, const char **ret, const char *first, ...) {
        json_object *cur = obj;
        const char *key = first, *next;
        va_list ap;
        int r = -EINVAL;

        va_start(ap, first);
        while (key) {
                next = va_arg(ap, const char *);
                if (!next) {
                        r = ade_json_get_string(cur, key, ret);
                        break;
                }
                r = ade_json_get_object(cur, key, &cur);
                if (r < 0)
                        break;
                key = next;
        }
        va_end(ap);
        return r;
}

char *ade_json_to_string(json_object *obj) {
        const char *s;

        s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        return s ? strdup(s) : NULL;
}

int ade_json_add_string(json_object *obj, const char *key, const char *value) {
        json_object *v;

        if (!value)
                return 0;
        v = json_object_new_string(value);
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}
