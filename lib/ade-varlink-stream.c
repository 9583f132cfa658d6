/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <sys/socket.h>

#include "ade-utf8.h"
#include "ade-varlink-stream.h"

/* One read per call, so that a fast sender cannot starve the others on a loop. */
#define READ_CHUNK (64U * 1024U)
/* The input buffer starts this small (most messages are a few hundred bytes), grows by doubling
 * while a read would get less than READ_MIN, and is given back above INPUT_KEEP once empty. */
#define INPUT_INITIAL (4U * 1024U)
#define READ_MIN (1024U)
#define INPUT_KEEP (64U * 1024U)
/* An output buffer this large is given back once it drains. */
#define OUTPUT_INITIAL (4U * 1024U)
#define OUTPUT_KEEP (1024U * 1024U)

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

void ade_varlink_stream_init(AdeVarlinkStream *s, int fd) {
        assert(s);

        *s = (AdeVarlinkStream){.fd = fd};
}

void ade_varlink_stream_set_budgets(AdeVarlinkStream *s, AdeVarlinkBudget *a, AdeVarlinkBudget *b) {
        assert(s);
        assert(!s->in && !s->out);

        s->budgets[0] = a;
        s->budgets[1] = b;
}

/* Moves a buffer's charge from @old to @new bytes: -ENOBUFS, charging nothing, when a budget cannot
 * take the growth. */
static int budgets_charge(AdeVarlinkStream *s, size_t old, size_t new) {
        for (size_t i = 0; i<ADE_VARLINK_STREAM_BUDGETS_MAX &&new> old; i++)
                if (s->budgets[i] && s->budgets[i]->used + (new - old) > s->budgets[i]->max)
                        return -ENOBUFS;
        for (size_t i = 0; i < ADE_VARLINK_STREAM_BUDGETS_MAX; i++)
                if (s->budgets[i]) {
                        assert(s->budgets[i]->used >= old);
                        s->budgets[i]->used = s->budgets[i]->used - old + new;
                }
        return 0;
}

static void input_release(AdeVarlinkStream *s) {
        if (s->in)
                explicit_bzero(s->in, s->in_alloc);
        (void)budgets_charge(s, s->in_alloc, 0);
        s->in = mfree(s->in);
        s->in_start = s->in_size = s->in_alloc = s->in_scanned = 0;
}

static void output_release(AdeVarlinkStream *s) {
        (void)budgets_charge(s, s->out_alloc, 0);
        s->out = mfree(s->out);
        s->out_alloc = 0;
}

void ade_varlink_stream_done(AdeVarlinkStream *s) {
        if (!s)
                return;
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -EBADF;
        input_release(s);
        output_release(s);
        s->out_done = s->out_size = 0;
}

/* Position of the NUL that ends the next message, or SIZE_MAX. */
static size_t find_nul(AdeVarlinkStream *s) {
        char *z;

        if (s->in_scanned < s->in_start)
                s->in_scanned = s->in_start;
        if (!s->in)
                return SIZE_MAX;
        z = memchr(s->in + s->in_scanned, 0, s->in_size - s->in_scanned);
        if (!z) {
                s->in_scanned = s->in_size;
                return SIZE_MAX;
        }
        s->in_scanned = z - s->in;
        return s->in_scanned;
}

int ade_varlink_stream_read(AdeVarlinkStream *s) {
        ssize_t n;

        assert(s);

        /* Move the unparsed tail to the front, then make room to read into. */
        if (s->in_start > 0) {
                memmove(s->in, s->in + s->in_start, s->in_size - s->in_start);
                s->in_size -= s->in_start;
                s->in_scanned -= MIN(s->in_scanned, s->in_start);
                s->in_start = 0;
        }
        if (s->in_alloc < s->in_size + READ_MIN) {
                /* Double, so that a 16 MiB message costs a few reallocations, not thousands. */
                size_t a = MAX(INPUT_INITIAL, MIN(s->in_alloc * 2, ADE_VARLINK_MESSAGE_MAX + 2 * READ_CHUNK));
                char *p;

                a = MAX(a, s->in_size + READ_MIN);
                if (budgets_charge(s, s->in_alloc, a) < 0)
                        return -ENOBUFS;
                p = realloc(s->in, a);
                if (!p) {
                        (void)budgets_charge(s, a, s->in_alloc);
                        return -ENOMEM;
                }
                s->in = p;
                s->in_alloc = a;
        }

        do
                n = recv(s->fd, s->in + s->in_size, MIN(s->in_alloc - s->in_size, READ_CHUNK), MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        if (n == 0)
                return 0;
        s->in_size += n;

        /* That many bytes without a NUL: framing is lost. */
        if (find_nul(s) == SIZE_MAX && s->in_size - s->in_start > ADE_VARLINK_MESSAGE_MAX)
                return -E2BIG;
        return (int)n;
}

int ade_varlink_stream_peek(AdeVarlinkStream *s, const char **ret, size_t *ret_len) {
        size_t nul;

        assert(s);

        nul = find_nul(s);
        if (nul == SIZE_MAX)
                return 0;
        if (nul - s->in_start > ADE_VARLINK_MESSAGE_MAX)
                return -E2BIG;
        if (ret)
                *ret = s->in + s->in_start;
        if (ret_len)
                *ret_len = nul - s->in_start;
        return 1;
}

void ade_varlink_stream_consume(AdeVarlinkStream *s) {
        size_t nul;

        assert(s);

        nul = find_nul(s);
        assert(nul != SIZE_MAX);
        s->in_start = s->in_scanned = nul + 1;

        if (s->in_start == s->in_size) {
                /* All consumed: start over at the front, and give back a buffer a big message grew. */
                s->in_start = s->in_size = s->in_scanned = 0;
                if (s->in_alloc > INPUT_KEEP)
                        input_release(s);
        }
}

static int output_reserve(AdeVarlinkStream *s, size_t extra) {
        size_t need, a;
        char *p;

        /* Compact what was already sent before growing. */
        if (s->out_done > 0 && s->out_size + extra > s->out_alloc) {
                memmove(s->out, s->out + s->out_done, s->out_size - s->out_done);
                s->out_size -= s->out_done;
                s->out_done = 0;
        }
        need = s->out_size + extra;
        if (need - s->out_done > ADE_VARLINK_OUTPUT_MAX)
                return -ENOBUFS;
        if (need <= s->out_alloc)
                return 0;
        a = s->out_alloc ? s->out_alloc : OUTPUT_INITIAL;
        while (a < need)
                a *= 2;
        if (budgets_charge(s, s->out_alloc, a) < 0)
                return -ENOBUFS;
        p = realloc(s->out, a);
        if (!p) {
                (void)budgets_charge(s, a, s->out_alloc);
                return -ENOMEM;
        }
        s->out = p;
        s->out_alloc = a;
        return 0;
}

int ade_varlink_stream_queue(AdeVarlinkStream *s, json_object *msg) {
        _cleanup_free_ char *repaired = NULL;
        const char *text;
        size_t len;
        int r;

        assert(s);
        assert(msg);

        text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        len = strlen(text);
        /* json-c escapes control characters but copies other bytes as they are: a string that was
         * not UTF-8 (a peer's unknown key, a device's label) would make the whole message invalid
         * JSON. JSON's own syntax is ASCII, so repairing the text repairs just the strings. */
        if (!ade_utf8_valid(text, len)) {
                repaired = ade_utf8_sanitize(text, len, &len);
                if (!repaired)
                        return -ENOMEM;
                text = repaired;
        }
        if (len > ADE_VARLINK_MESSAGE_MAX)
                return -E2BIG;
        r = output_reserve(s, len + 1);
        if (r < 0)
                return r;
        memcpy(s->out + s->out_size, text, len + 1); /* with its NUL: the message separator */
        s->out_size += len + 1;
        return 0;
}

int ade_varlink_stream_flush(AdeVarlinkStream *s) {
        assert(s);

        while (s->out_done < s->out_size) {
                ssize_t n = send(s->fd, s->out + s->out_done, s->out_size - s->out_done, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                }
                s->out_done += n;
        }

        s->out_done = s->out_size = 0;
        if (s->out_alloc > OUTPUT_KEEP)
                output_release(s);
        return 0;
}

size_t ade_varlink_stream_output_pending(const AdeVarlinkStream *s) {
        return s->out_size - s->out_done;
}

size_t ade_varlink_stream_input_pending(const AdeVarlinkStream *s) {
        return s->in_size - s->in_start;
}
