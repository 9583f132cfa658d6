/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>

#include "ade-log.h"
#include "ade-varlink-idl.h"

typedef enum IdlKind {
        IDL_BOOL,
        IDL_INT,
        IDL_FLOAT,
        IDL_STRING,
        IDL_OBJECT,
        IDL_REF,    /* a named type of the interface */
        IDL_STRUCT, /* also the empty struct "()" that sets use as values */
        IDL_ENUM,
        IDL_ARRAY,
        IDL_MAP,
} IdlKind;

typedef struct IdlType IdlType;

typedef struct IdlField {
        char *name;
        IdlType *type;
} IdlField;

struct IdlType {
        IdlKind kind;
        bool nullable;
        char *ref;        /* IDL_REF */
        IdlType *element; /* IDL_ARRAY, IDL_MAP */
        IdlField *fields; /* IDL_STRUCT */
        char **names;     /* IDL_ENUM */
        size_t n;         /* fields or names */
};

typedef enum IdlMemberKind {
        MEMBER_TYPE,
        MEMBER_METHOD,
        MEMBER_ERROR,
} IdlMemberKind;

typedef struct IdlMember {
        IdlMemberKind kind;
        char *name;
        IdlType *type;   /* MEMBER_TYPE, MEMBER_ERROR */
        IdlType *input;  /* MEMBER_METHOD */
        IdlType *output; /* MEMBER_METHOD */
} IdlMember;

struct AdeVarlinkInterface {
        char *name;
        char *text;
        IdlMember *members;
        size_t n_members;
        const char **methods; /* NULL-terminated, borrowed from members */
};

/* ---- freeing ---- */

static void idl_type_free(IdlType *t) {
        if (!t)
                return;
        free(t->ref);
        idl_type_free(t->element);
        for (size_t i = 0; t->fields && i < t->n; i++) {
                free(t->fields[i].name);
                idl_type_free(t->fields[i].type);
        }
        free(t->fields);
        for (size_t i = 0; t->names && i < t->n; i++)
                free(t->names[i]);
        free(t->names);
        free(t);
}

AdeVarlinkInterface *ade_varlink_interface_free(AdeVarlinkInterface *iface) {
        if (!iface)
                return NULL;
        for (size_t i = 0; i < iface->n_members; i++) {
                free(iface->members[i].name);
                idl_type_free(iface->members[i].type);
                idl_type_free(iface->members[i].input);
                idl_type_free(iface->members[i].output);
        }
        free(iface->members);
        free(iface->methods);
        free(iface->name);
        free(iface->text);
        return mfree(iface);
}

/* ---- tokenizer ---- */

typedef struct Parser {
        const char *p;
        unsigned line;
} Parser;

static void skip_space(Parser *ps) {
        for (;;) {
                if (*ps->p == '\n') {
                        ps->line++;
                        ps->p++;
                } else if (isspace((unsigned char)*ps->p))
                        ps->p++;
                else if (*ps->p == '#') {
                        while (*ps->p && *ps->p != '\n')
                                ps->p++;
                } else
                        return;
        }
}

static bool is_word_char(char c) {
        return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* Consumes @punct ("(", "->", ...) when it comes next. */
static bool accept(Parser *ps, const char *punct) {
        size_t l = strlen(punct);

        skip_space(ps);
        if (strncmp(ps->p, punct, l) != 0)
                return false;
        ps->p += l;
        return true;
}

static int expect(Parser *ps, const char *punct) {
        if (accept(ps, punct))
                return 0;
        return ade_log_debug_errno(EBADMSG, "varlink IDL line %u: expected '%s'", ps->line, punct);
}

/* Reads a word (identifier or dotted name). Returns a new string, or NULL when none comes next. */
static char *read_word(Parser *ps) {
        const char *start;

        skip_space(ps);
        start = ps->p;
        while (is_word_char(*ps->p))
                ps->p++;
        if (ps->p == start)
                return NULL;
        return strndup(start, ps->p - start);
}

/* Does the next word equal @word (without consuming it)? */
static bool peek_word(Parser *ps, const char *word) {
        size_t l = strlen(word);

        skip_space(ps);
        return strncmp(ps->p, word, l) == 0 && !is_word_char(ps->p[l]);
}

static bool valid_field_name(const char *s) {
        /* The spec wants [A-Za-z](_?[A-Za-z0-9])*; certification uses "nullable_array_struct". */
        if (!isalpha((unsigned char)s[0]))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_')
                        return false;
        return true;
}

static bool valid_member_name(const char *s) {
        return isupper((unsigned char)s[0]) && valid_field_name(s);
}

static bool valid_interface_name(const char *s) {
        /* Reverse domain: at least two dot-separated parts of letters, digits and dashes. */
        if (!isalpha((unsigned char)s[0]) || !strchr(s, '.') || s[strlen(s) - 1] == '.' || strstr(s, ".."))
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
                        return false;
        return true;
}

/* ---- grammar ---- */

static int parse_type(Parser *ps, IdlType **ret);

/* After "(": a struct "(a: T, b: U)", an enum "(a, b)" or the empty struct "()". */
static int parse_struct_or_enum(Parser *ps, IdlType **ret) {
        IdlType *t;
        int r = 0;

        t = calloc(1, sizeof(IdlType));
        if (!t)
                return -ENOMEM;
        t->kind = IDL_STRUCT;

        if (accept(ps, ")")) {
                *ret = t;
                return 0;
        }

        for (;;) {
                _cleanup_free_ char *name = read_word(ps);

                if (!name || !valid_field_name(name)) {
                        r = ade_log_debug_errno(
                                EBADMSG, "varlink IDL line %u: expected a field or enum name", ps->line);
                        goto fail;
                }
                for (size_t i = 0; i < t->n; i++)
                        if (streq(t->kind == IDL_STRUCT ? t->fields[i].name : t->names[i], name)) {
                                r = ade_log_debug_errno(
                                        EBADMSG, "varlink IDL line %u: '%s' declared twice", ps->line, name);
                                goto fail;
                        }

                if (t->n == 0 && !accept(ps, ":"))
                        t->kind = IDL_ENUM;
                else if (t->kind == IDL_STRUCT && t->n > 0 && (r = expect(ps, ":")) < 0)
                        goto fail;

                if (t->kind == IDL_STRUCT) {
                        IdlField *f = reallocarray(t->fields, t->n + 1, sizeof(IdlField));
                        IdlType *ft = NULL;

                        if (!f) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        t->fields = f;
                        r = parse_type(ps, &ft);
                        if (r < 0)
                                goto fail;
                        t->fields[t->n++] = (IdlField){.name = TAKE_PTR(name), .type = ft};
                } else {
                        char **n = reallocarray(t->names, t->n + 1, sizeof(char *));

                        if (!n) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        t->names = n;
                        t->names[t->n++] = TAKE_PTR(name);
                }

                if (accept(ps, ")"))
                        break;
                r = expect(ps, ",");
                if (r < 0)
                        goto fail;
        }

        *ret = t;
        return 0;
fail:
        idl_type_free(t);
        return r;
}

static int parse_type(Parser *ps, IdlType **ret) {
        static const struct {
                const char *word;
                IdlKind kind;
        } basic[] = {
                {"bool", IDL_BOOL},
                {"int", IDL_INT},
                {"float", IDL_FLOAT},
                {"string", IDL_STRING},
                {"object", IDL_OBJECT},
        };
        bool nullable;
        IdlType *t = NULL;
        int r;

        nullable = accept(ps, "?");

        if (accept(ps, "(")) {
                r = parse_struct_or_enum(ps, &t);
                if (r < 0)
                        return r;
        } else if (accept(ps, "[")) {
                bool map = false;

                if (peek_word(ps, "string")) {
                        free(read_word(ps));
                        map = true;
                }
                r = expect(ps, "]");
                if (r < 0)
                        return r;
                t = calloc(1, sizeof(IdlType));
                if (!t)
                        return -ENOMEM;
                t->kind = map ? IDL_MAP : IDL_ARRAY;
                r = parse_type(ps, &t->element);
                if (r < 0) {
                        idl_type_free(t);
                        return r;
                }
        } else {
                _cleanup_free_ char *word = read_word(ps);

                if (!word)
                        return ade_log_debug_errno(EBADMSG, "varlink IDL line %u: expected a type", ps->line);
                t = calloc(1, sizeof(IdlType));
                if (!t)
                        return -ENOMEM;
                t->kind = IDL_REF;
                for (size_t i = 0; i < ELEMENTSOF(basic); i++)
                        if (streq(word, basic[i].word))
                                t->kind = basic[i].kind;
                if (t->kind == IDL_REF) {
                        if (!valid_member_name(word)) {
                                free(t);
                                return ade_log_debug_errno(
                                        EBADMSG, "varlink IDL line %u: '%s' is not a type", ps->line, word);
                        }
                        t->ref = TAKE_PTR(word);
                }
        }

        /* "??T" and "?" before an already nullable type are not valid. */
        if (nullable && t->nullable) {
                idl_type_free(t);
                return ade_log_debug_errno(EBADMSG, "varlink IDL line %u: nullable twice", ps->line);
        }
        t->nullable = nullable;
        *ret = t;
        return 0;
}

static const IdlMember *find_member(const AdeVarlinkInterface *iface, IdlMemberKind kind, const char *name) {
        for (size_t i = 0; i < iface->n_members; i++)
                if (iface->members[i].kind == kind && streq(iface->members[i].name, name))
                        return &iface->members[i];
        return NULL;
}

static int check_refs(const AdeVarlinkInterface *iface, const IdlType *t) {
        int r;

        if (!t)
                return 0;
        if (t->kind == IDL_REF && !find_member(iface, MEMBER_TYPE, t->ref))
                return ade_log_debug_errno(
                        EBADMSG, "varlink IDL of %s: type '%s' is not declared", iface->name, t->ref);
        r = check_refs(iface, t->element);
        if (r < 0)
                return r;
        for (size_t i = 0; t->kind == IDL_STRUCT && i < t->n; i++) {
                r = check_refs(iface, t->fields[i].type);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_member(Parser *ps, AdeVarlinkInterface *iface) {
        IdlMember m = {};
        IdlMember *members;
        int r;

        if (peek_word(ps, "type"))
                m.kind = MEMBER_TYPE;
        else if (peek_word(ps, "method"))
                m.kind = MEMBER_METHOD;
        else if (peek_word(ps, "error"))
                m.kind = MEMBER_ERROR;
        else
                return ade_log_debug_errno(EBADMSG, "varlink IDL line %u: expected type, method or error", ps->line);
        free(read_word(ps));

        m.name = read_word(ps);
        if (!m.name || !valid_member_name(m.name)) {
                r = ade_log_debug_errno(EBADMSG, "varlink IDL line %u: expected a name starting uppercase", ps->line);
                goto fail;
        }
        for (size_t i = 0; i < iface->n_members; i++)
                if (streq(iface->members[i].name, m.name)) {
                        r = ade_log_debug_errno(EBADMSG, "varlink IDL line %u: '%s' declared twice", ps->line, m.name);
                        goto fail;
                }

        r = expect(ps, "(");
        if (r < 0)
                goto fail;
        r = parse_struct_or_enum(ps, m.kind == MEMBER_METHOD ? &m.input : &m.type);
        if (r < 0)
                goto fail;
        if (m.kind == MEMBER_METHOD) {
                r = expect(ps, "->");
                if (r < 0)
                        goto fail;
                r = expect(ps, "(");
                if (r < 0)
                        goto fail;
                r = parse_struct_or_enum(ps, &m.output);
                if (r < 0)
                        goto fail;
                if (m.input->kind != IDL_STRUCT || m.output->kind != IDL_STRUCT) {
                        r = ade_log_debug_errno(
                                EBADMSG, "varlink IDL line %u: method %s takes and returns structs", ps->line, m.name);
                        goto fail;
                }
        } else if (m.kind == MEMBER_ERROR && m.type->kind != IDL_STRUCT) {
                r = ade_log_debug_errno(EBADMSG, "varlink IDL line %u: error %s carries a struct", ps->line, m.name);
                goto fail;
        }

        members = reallocarray(iface->members, iface->n_members + 1, sizeof(IdlMember));
        if (!members) {
                r = -ENOMEM;
                goto fail;
        }
        iface->members = members;
        iface->members[iface->n_members++] = m;
        return 0;
fail:
        free(m.name);
        idl_type_free(m.type);
        idl_type_free(m.input);
        idl_type_free(m.output);
        return r;
}

int ade_varlink_interface_parse(const char *text, AdeVarlinkInterface **ret) {
        _cleanup_(ade_varlink_interface_freep) AdeVarlinkInterface *iface = NULL;
        Parser ps = {.p = text, .line = 1};
        size_t n_methods = 0;
        int r;

        assert(text);
        assert(ret);

        iface = calloc(1, sizeof(AdeVarlinkInterface));
        if (!iface)
                return -ENOMEM;
        iface->text = strdup(text);
        if (!iface->text)
                return -ENOMEM;

        if (!peek_word(&ps, "interface"))
                return ade_log_debug_errno(EBADMSG, "varlink IDL line %u: expected 'interface'", ps.line);
        free(read_word(&ps));
        iface->name = read_word(&ps);
        if (!iface->name || !valid_interface_name(iface->name))
                return ade_log_debug_errno(EBADMSG, "varlink IDL line %u: bad interface name", ps.line);

        for (;;) {
                skip_space(&ps);
                if (!*ps.p)
                        break;
                r = parse_member(&ps, iface);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < iface->n_members; i++) {
                IdlMember *m = &iface->members[i];

                r = check_refs(iface, m->type);
                if (r >= 0)
                        r = check_refs(iface, m->input);
                if (r >= 0)
                        r = check_refs(iface, m->output);
                if (r < 0)
                        return r;
                if (m->kind == MEMBER_METHOD)
                        n_methods++;
        }

        iface->methods = calloc(n_methods + 1, sizeof(char *));
        if (!iface->methods)
                return -ENOMEM;
        n_methods = 0;
        for (size_t i = 0; i < iface->n_members; i++)
                if (iface->members[i].kind == MEMBER_METHOD)
                        iface->methods[n_methods++] = iface->members[i].name;

        *ret = TAKE_PTR(iface);
        return 0;
}

const char *ade_varlink_interface_get_name(const AdeVarlinkInterface *iface) {
        return iface->name;
}

const char *ade_varlink_interface_get_text(const AdeVarlinkInterface *iface) {
        return iface->text;
}

bool ade_varlink_interface_has_method(const AdeVarlinkInterface *iface, const char *name) {
        return find_member(iface, MEMBER_METHOD, name);
}

bool ade_varlink_interface_has_error(const AdeVarlinkInterface *iface, const char *name) {
        return find_member(iface, MEMBER_ERROR, name);
}

const char *const *ade_varlink_interface_get_methods(const AdeVarlinkInterface *iface) {
        return iface->methods;
}

/* ---- validation ---- */

/* The path of the value being checked, grown and shrunk as the walk descends. */
typedef struct Path {
        char buf[512];
        size_t len;
} Path;

/* Appends ".@key" (no dot at the start) or, for a NULL @key, "[@idx]". Returns the old length for path_pop(). */
static size_t path_push(Path *p, const char *key, size_t idx) {
        size_t old = p->len;
        int n;

        if (key)
                n = snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "%s%s", p->len > 0 ? "." : "", key);
        else
                n = snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "[%zu]", idx);
        if (n > 0)
                p->len = ((size_t)n >= sizeof(p->buf) - p->len) ? sizeof(p->buf) - 1 : p->len + n;
        return old;
}

static void path_pop(Path *p, size_t old) {
        p->len = old;
        p->buf[old] = '\0';
}

static int validate(const AdeVarlinkInterface *iface, const IdlType *t, json_object *v, Path *path, unsigned depth);

static int validate_struct(
        const AdeVarlinkInterface *iface, const IdlType *t, json_object *v, Path *path, unsigned depth) {
        int r;

        if (!json_object_is_type(v, json_type_object))
                return -EBADMSG;

        for (size_t i = 0; i < t->n; i++) {
                json_object *fv = NULL;
                size_t old;

                (void)json_object_object_get_ex(v, t->fields[i].name, &fv);
                old = path_push(path, t->fields[i].name, 0);
                r = validate(iface, t->fields[i].type, fv, path, depth + 1);
                if (r < 0)
                        return r;
                path_pop(path, old);
        }

        json_object_object_foreach(v, key, val) {
                bool known = false;

                (void)val;
                for (size_t i = 0; i < t->n && !known; i++)
                        known = streq(t->fields[i].name, key);
                if (!known) {
                        path_push(path, key, 0);
                        return -EBADMSG;
                }
        }
        return 0;
}

static int validate(const AdeVarlinkInterface *iface, const IdlType *t, json_object *v, Path *path, unsigned depth) {
        const IdlMember *m;
        int r;

        /* json-c parsed at most 64 levels already; a self-referencing type cannot loop deeper than that. */
        if (depth > 128)
                return -EBADMSG;

        if (!v)
                return t->nullable ? 0 : -EBADMSG;

        switch (t->kind) {
        case IDL_BOOL:
                return json_object_is_type(v, json_type_boolean) ? 0 : -EBADMSG;
        case IDL_INT:
                return json_object_is_type(v, json_type_int) ? 0 : -EBADMSG;
        case IDL_FLOAT:
                /* Encoders write 1.0 as 1 (Go does). */
                return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int) ? 0 : -EBADMSG;
        case IDL_STRING:
                return json_object_is_type(v, json_type_string) ? 0 : -EBADMSG;
        case IDL_OBJECT:
                return json_object_is_type(v, json_type_object) ? 0 : -EBADMSG;
        case IDL_REF:
                m = find_member(iface, MEMBER_TYPE, t->ref);
                if (!m)
                        return -EBADMSG;
                return validate(iface, m->type, v, path, depth + 1);
        case IDL_STRUCT:
                return validate_struct(iface, t, v, path, depth);
        case IDL_ENUM:
                if (!json_object_is_type(v, json_type_string))
                        return -EBADMSG;
                for (size_t i = 0; i < t->n; i++)
                        if (streq(t->names[i], json_object_get_string(v)))
                                return 0;
                return -EBADMSG;
        case IDL_ARRAY:
                if (!json_object_is_type(v, json_type_array))
                        return -EBADMSG;
                for (size_t i = 0; i < json_object_array_length(v); i++) {
                        size_t old = path_push(path, NULL, i);

                        r = validate(iface, t->element, json_object_array_get_idx(v, i), path, depth + 1);
                        if (r < 0)
                                return r;
                        path_pop(path, old);
                }
                return 0;
        case IDL_MAP:
                if (!json_object_is_type(v, json_type_object))
                        return -EBADMSG;
                json_object_object_foreach(v, key, val) {
                        size_t old = path_push(path, key, 0);

                        r = validate(iface, t->element, val, path, depth + 1);
                        if (r < 0)
                                return r;
                        path_pop(path, old);
                }
                return 0;
        }
        return -EBADMSG;
}

/* Validates @parameters (NULL: an empty object) against @type; on failure *ret_field names the field. */
static int validate_top(
        const AdeVarlinkInterface *iface, const IdlType *type, json_object *parameters, char **ret_field) {
        json_object *empty = NULL;
        Path path = {};
        int r;

        if (!parameters) {
                empty = json_object_new_object();
                if (!empty)
                        return -ENOMEM;
                parameters = empty;
        }
        r = validate(iface, type, parameters, &path, 0);
        json_object_put(empty);
        if (r < 0 && ret_field) {
                *ret_field = strdup(path.buf);
                if (!*ret_field)
                        return -ENOMEM;
        }
        return r;
}

static int validate_method(
        const AdeVarlinkInterface *iface, const char *name, bool input, json_object *parameters, char **ret_field) {
        const IdlMember *m;

        assert(iface);
        assert(name);

        m = find_member(iface, MEMBER_METHOD, name);
        if (!m)
                return -ENOENT;
        return validate_top(iface, input ? m->input : m->output, parameters, ret_field);
}

int ade_varlink_interface_validate_input(
        const AdeVarlinkInterface *iface, const char *name, json_object *parameters, char **ret_field) {
        return validate_method(iface, name, true, parameters, ret_field);
}

int ade_varlink_interface_validate_output(
        const AdeVarlinkInterface *iface, const char *name, json_object *parameters, char **ret_field) {
        return validate_method(iface, name, false, parameters, ret_field);
}

int ade_varlink_interface_validate_error(
        const AdeVarlinkInterface *iface, const char *name, json_object *parameters, char **ret_field) {
        const IdlMember *m;

        assert(iface);
        assert(name);

        m = find_member(iface, MEMBER_ERROR, name);
        if (!m)
                return -ENOENT;
        return validate_top(iface, m->type, parameters, ret_field);
}
