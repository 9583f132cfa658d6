/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Varlink dispatch (ade-varlink.h's server) as aded runs it: io.ade.DiskEncryption's real interface
 * text, its methods bound with aded's access flags to stand-ins (aded's own need a Manager, that is
 * devices), replies checked against the interface. Each input is what one client sends on one
 * connection, then it half-closes and reads every answer; the server must answer, close the
 * connection and hold nothing of it afterwards. The stand-ins cover each way a method ends: a reply
 * now, notifies then a reply, a reply later from the event loop, a declared error, an errno, and a
 * reply the interface does not allow. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ade-disk-encryption-idl.h"
#include "ade-json.h"
#include "ade-varlink.h"
#include "fuzz.h"

#define IFACE "io.ade.DiskEncryption"
#define ROUNDS_MAX 100000U

static sd_event *event;
static AdeVarlinkServer *server;
static struct sockaddr_un address;
static socklen_t address_len;

static json_object *volumes_reply(void) {
        json_object *o = json_object_new_object(), *list = json_object_new_array(), *v = json_object_new_object();

        if (!o || !list || !v || ade_json_add_string(v, "device", "/dev/loop7") < 0 ||
                ade_json_add_string(v, "type", "Data") < 0 || ade_json_add_string(v, "state", "Encrypted") < 0 ||
                json_object_object_add(v, "progress", json_object_new_double(1.0)) < 0 ||
                json_object_object_add(v, "bytesDone", json_object_new_int64(1 << 20)) < 0 ||
                json_object_object_add(v, "bytesTotal", json_object_new_int64(1 << 20)) < 0 ||
                json_object_object_add(v, "unlocked", json_object_new_boolean(0)) < 0 ||
                json_object_array_add(list, v) < 0 || json_object_object_add(o, "volumes", list) < 0)
                abort();
        return o;
}

static int method_show(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *o = volumes_reply();

        if (ade_json_add_string(o, "os", "NotEncrypted") < 0 || ade_json_add_string(o, "data", "Encrypted") < 0)
                abort();
        return ade_varlink_reply(call, o);
}

static int method_watch(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *o = volumes_reply();
        int r;

        r = ade_varlink_notify(call, o);
        if (r >= 0)
                r = ade_varlink_notify(call, o);
        if (r < 0)
                return r;
        return ade_varlink_reply(call, o);
}

static int on_later(sd_event_source *source, void *userdata) {
        AdeVarlinkCall *call = userdata;

        if (ade_varlink_call_is_pending(call)) {
                _cleanup_json_ json_object *o = volumes_reply();

                (void)ade_varlink_reply(call, o);
        }
        ade_varlink_call_unref(call);
        sd_event_source_disable_unref(source);
        return 0;
}

static int method_enable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        sd_event_source *later = NULL;
        int r;

        r = sd_event_add_defer(event, &later, on_later, ade_varlink_call_ref(call));
        if (r < 0) {
                ade_varlink_call_unref(call);
                return r;
        }
        return 0;
}

static int method_disable(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o || json_object_object_add(o, "status", json_object_new_int(403)) < 0 ||
                ade_json_add_string(o, "code", "Forbidden") < 0 ||
                ade_json_add_string(o, "message", "the caller may not get secrets") < 0)
                abort();
        return ade_varlink_error(call, IFACE ".KeyVaultError", o);
}

static int method_unlock(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        return -EIO;
}

static int method_rotate(AdeVarlinkCall *call, json_object *params, unsigned flags, void *userdata) {
        _cleanup_json_ json_object *o = json_object_new_object();
        const char *kek;

        if (!o)
                abort();
        /* The caller's own text echoed in an error, as aded's NoSuchVolume does with a device. */
        if (ade_json_get_string(params, "kekUrl", &kek) >= 0) {
                if (ade_json_add_string(o, "device", kek) < 0)
                        abort();
                return ade_varlink_error(call, IFACE ".NoSuchVolume", o);
        }
        /* Not what the interface declares: the server refuses to send it. */
        if (json_object_object_add(o, "volumes", json_object_new_int(1)) < 0)
                abort();
        (void)ade_varlink_reply(call, o);
        return 0;
}

static void setup(void) {
        static const struct {
                const char *name;
                AdeVarlinkMethod callback;
                unsigned flags;
        } table[] = {
                {IFACE ".Show", method_show, ADE_VARLINK_BIND_ROOT_OR_GROUP},
                {IFACE ".Watch", method_watch, ADE_VARLINK_BIND_ROOT_OR_GROUP | ADE_VARLINK_BIND_REQUIRES_MORE},
                {IFACE ".Enable", method_enable, ADE_VARLINK_BIND_ROOT_ONLY},
                {IFACE ".Disable", method_disable, ADE_VARLINK_BIND_ROOT_ONLY},
                {IFACE ".Unlock", method_unlock, ADE_VARLINK_BIND_ROOT_ONLY},
                {IFACE ".RotateKey", method_rotate, ADE_VARLINK_BIND_ROOT_ONLY},
        };
        int fd;

        if (server)
                return;
        if (sd_event_new(&event) < 0 || ade_varlink_server_new(event, &server) < 0 ||
                ade_varlink_server_set_info(server, "ade", "fuzz", "0", NULL) < 0 ||
                ade_varlink_server_add_interface(server, ade_varlink_idl_disk_encryption) < 0)
                abort();
        ade_varlink_server_set_validate_replies(server, true);
        ade_varlink_server_set_group(server, 0);
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (ade_varlink_server_bind_method(server, table[i].name, table[i].callback, table[i].flags, NULL) < 0)
                        abort();

        /* An abstract socket: nothing on disk, and one per fuzzing process. */
        address.sun_family = AF_UNIX;
        snprintf(address.sun_path + 1, sizeof(address.sun_path) - 1, "ade-fuzz-varlink-%d", (int)getpid());
        address_len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(address.sun_path + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&address, address_len) < 0 || listen(fd, 16) < 0 ||
                ade_varlink_server_listen_fd(server, fd) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        bool shut = false, closed = false;
        size_t off = 0;

        setup();
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&address, address_len) < 0)
                abort();

        for (unsigned round = 0; !closed; round++) {
                char buf[65536];
                ssize_t n;

                FUZZ_ASSERT(round < ROUNDS_MAX, "the server neither answered nor closed the connection");
                if (off < size) {
                        n = send(fd, data + off, size - off, MSG_NOSIGNAL);
                        if (n > 0)
                                off += (size_t)n;
                        else if (n < 0 && errno != EAGAIN)
                                off = size; /* dropped by the server: stop sending */
                } else if (!shut) {
                        (void)shutdown(fd, SHUT_WR);
                        shut = true;
                }

                if (sd_event_run(event, 0) < 0)
                        abort();

                while ((n = read(fd, buf, sizeof(buf))) > 0)
                        ;
                closed = n == 0 || (n < 0 && errno != EAGAIN);
        }
        /* Let the loop finish what the close left (deferred replies to a peer that is gone). */
        while (sd_event_run(event, 0) > 0)
                ;
        FUZZ_ASSERT(ade_varlink_server_current_connections(server) == 0, "a connection outlived its peer");
        return 0;
}
