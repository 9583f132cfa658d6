/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ade-util.h"
#include "ade-xml.h"

typedef struct Walk {
        const char *p, *end;
        char *names[ADE_XML_DEPTH_MAX];
        bool has_children[ADE_XML_DEPTH_MAX];
        size_t depth;
        char *text;
        size_t text_len, text_cap;
} Walk;

static bool is_name_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.' || c == ':' || (unsigned char)c >= 0x80;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int text_append(Walk *w, const char *s, size_t n) {
        if (w->text_len + n + 1 > w->text_cap) {
                size_t cap = (w->text_len + n + 1) * 2;
                char *t = realloc(w->text, cap);
                if (!t)
                        return -ENOMEM;
                w->text = t;
                w->text_cap = cap;
        }
        memcpy(w->text + w->text_len, s, n);
        w->text_len += n;
        w->text[w->text_len] = 0;
        return 0;
}

static int append_utf8(Walk *w, uint32_t c) {
        char b[4];
        size_t n;

        if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                return -EBADMSG;
        if (c < 0x80)
                b[0] = (char)c, n = 1;
        else if (c < 0x800)
                b[0] = (char)(0xC0 | (c >> 6)), b[1] = (char)(0x80 | (c & 0x3F)), n = 2;
        else if (c < 0x10000)
                b[0] = (char)(0xE0 | (c >> 12)), b[1] = (char)(0x80 | ((c >> 6) & 0x3F)),
                b[2] = (char)(0x80 | (c & 0x3F)), n = 3;
        else
                b[0] = (char)(0xF0 | (c >> 18)), b[1] = (char)(0x80 | ((c >> 12) & 0x3F)),
                b[2] = (char)(0x80 | ((c >> 6) & 0x3F)), b[3] = (char)(0x80 | (c & 0x3F)), n = 4;
        return text_append(w, b, n);
}

/* Character data up to the next '<', references decoded. */
static int read_text(Walk *w) {
        static const struct {
                const char *name;
                char c;
        } entities[] = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};

        while (w->p < w->end && *w->p != '<') {
                const char *semi;
                size_t n;
                int r;

                if (*w->p != '&') {
                        n = 0;
                        while (w->p + n < w->end && w->p[n] != '<' && w->p[n] != '&')
                                n++;
                        if (w->depth == 0) {
                                for (size_t i = 0; i < n; i++)
                                        if (!is_space(w->p[i]))
                                                return -EBADMSG;
                        } else if ((r = text_append(w, w->p, n)) < 0)
                                return r;
                        w->p += n;
                        continue;
                }
                semi = memchr(w->p, ';', w->end - w->p);
                if (!semi || semi - w->p > 12 || w->depth == 0)
                        return -EBADMSG;
                n = semi - w->p - 1;
                if (n >= 2 && w->p[1] == '#') {
                        bool hex = w->p[2] == 'x';
                        const char *d = w->p + (hex ? 3 : 2);
                        char *e;
                        unsigned long c;

                        if (d == semi || !(hex ? strchr("0123456789abcdefABCDEF", *d) : strchr("0123456789", *d)))
                                return -EBADMSG;
                        c = strtoul(d, &e, hex ? 16 : 10);
                        if (e != semi)
                                return -EBADMSG;
                        r = append_utf8(w, (uint32_t)(c > 0x10FFFF ? 0 : c));
                } else {
                        r = -EBADMSG;
                        for (size_t i = 0; i < ELEMENTSOF(entities); i++)
                                if (strlen(entities[i].name) == n && strncmp(w->p + 1, entities[i].name, n) == 0)
                                        r = text_append(w, &entities[i].c, 1);
                }
                if (r < 0)
                        return r;
                w->p = semi + 1;
        }
        return 0;
}

static const char *find(const Walk *w, const char *needle) {
        size_t n = strlen(needle);

        for (const char *q = w->p; q + n <= w->end; q++)
                if (memcmp(q, needle, n) == 0)
                        return q;
        return NULL;
}

static void walk_done(Walk *w) {
        for (size_t i = 0; i < w->depth; i++)
                free(w->names[i]);
        free(w->text);
}

int ade_xml_walk(const char *buf, size_t len, AdeXmlElementFunc each, void *userdata) {
        _cleanup_(walk_done) Walk w = {.p = buf, .end = buf + len};
        bool root_seen = false;
        int r;

        if (!buf || !each || memchr(buf, 0, len))
                return -EBADMSG;
        /* A byte-order mark. */
        if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
                w.p += 3;

        while (w.p < w.end) {
                const char *name, *q;
                bool closing, empty;
                size_t n;

                r = read_text(&w);
                if (r < 0)
                        return r;
                if (w.p >= w.end)
                        break;
                /* At '<'. */
                if (w.end - w.p >= 4 && memcmp(w.p, "<!--", 4) == 0) {
                        q = find(&w, "-->");
                        if (!q)
                                return -EBADMSG;
                        w.p = q + 3;
                        continue;
                }
                if (w.end - w.p >= 5 && memcmp(w.p, "<?xml", 5) == 0 && !root_seen && w.p - buf <= 3) {
                        q = find(&w, "?>");
                        if (!q)
                                return -EBADMSG;
                        w.p = q + 2;
                        continue;
                }
                w.p++;
                closing = w.p < w.end && *w.p == '/';
                if (closing)
                        w.p++;
                name = w.p;
                while (w.p < w.end && is_name_char(*w.p))
                        w.p++;
                n = w.p - name;
                if (n == 0)
                        return -EBADMSG;
                /* Attributes are skipped; quoted values may hold '>' and '/'. */
                empty = false;
                for (;;) {
                        if (w.p >= w.end)
                                return -EBADMSG;
                        if (*w.p == '"' || *w.p == '\'') {
                                q = memchr(w.p + 1, *w.p, w.end - w.p - 1);
                                if (!q || closing)
                                        return -EBADMSG;
                                w.p = q + 1;
                        } else if (*w.p == '>') {
                                w.p++;
                                break;
                        } else if (*w.p == '/' && !closing && w.p + 1 < w.end && w.p[1] == '>') {
                                empty = true;
                                w.p += 2;
                                break;
                        } else if (*w.p == '<')
                                return -EBADMSG;
                        else
                                w.p++;
                }

                if (closing) {
                        if (w.depth == 0 || strlen(w.names[w.depth - 1]) != n ||
                                memcmp(w.names[w.depth - 1], name, n) != 0)
                                return -EBADMSG;
                        r = each((const char *const *)w.names, w.depth,
                                w.has_children[w.depth - 1] ? NULL : (w.text ? w.text : ""), userdata);
                        if (r < 0)
                                return r;
                        free(w.names[--w.depth]);
                        w.text_len = 0;
                        if (w.text)
                                w.text[0] = 0;
                        continue;
                }

                if (w.depth == 0 && root_seen)
                        return -EBADMSG;
                if (w.depth == ADE_XML_DEPTH_MAX)
                        return -EBADMSG;
                if (w.depth > 0)
                        w.has_children[w.depth - 1] = true;
                w.names[w.depth] = strndup(name, n);
                if (!w.names[w.depth])
                        return -ENOMEM;
                w.has_children[w.depth] = false;
                w.depth++;
                root_seen = true;
                w.text_len = 0;
                if (w.text)
                        w.text[0] = 0;
                if (empty) {
                        r = each((const char *const *)w.names, w.depth, "", userdata);
                        if (r < 0)
                                return r;
                        free(w.names[--w.depth]);
                }
        }
        if (w.depth != 0 || !root_seen)
                return -EBADMSG;
        return 0;
}
