/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "ade-cloud-error.h"
#include "ade-fs.h"
#include "ade-io.h"
#include "ade-keysocket.h"
#include "ade-log.h"
#include "ade-luks.h"
#include "ade-resolver.h"
#include "aded-keysocket.h"
#include "aded-manager.h"

typedef struct KeyError {
        char *name;
        char *error;
} KeyError;

struct KeySocket {
        Manager *m;
        int fd;
        sd_event_source *source;

        pthread_mutex_t lock; /* guards what follows */
        pthread_cond_t idle;
        unsigned active;
        bool stopping;
        KeyError *errors; /* the last failure per mapping name, for Show */
        size_t n_errors;
};

typedef struct Request {
        KeySocket *k;
        int fd;
        char *name;
} Request;

static bool keysocket_stopping(KeySocket *k) {
        bool stopping;

        pthread_mutex_lock(&k->lock);
        stopping = k->stopping;
        pthread_mutex_unlock(&k->lock);
        return stopping;
}

/* Records (@error non-NULL) or clears the last failure of @name. */
static void keysocket_note(KeySocket *k, const char *name, const char *error) {
        pthread_mutex_lock(&k->lock);
        for (size_t i = 0; i < k->n_errors; i++)
                if (streq(k->errors[i].name, name)) {
                        (void)ade_strdup_to(&k->errors[i].error, error);
                        pthread_mutex_unlock(&k->lock);
                        return;
                }
        if (error) {
                KeyError *grown = reallocarray(k->errors, k->n_errors + 1, sizeof(KeyError));

                if (grown) {
                        k->errors = grown;
                        k->errors[k->n_errors] = (KeyError){.name = strdup(name), .error = strdup(error)};
                        if (k->errors[k->n_errors].name && k->errors[k->n_errors].error)
                                k->n_errors++;
                        else {
                                free(k->errors[k->n_errors].name);
                                free(k->errors[k->n_errors].error);
                        }
                }
        }
        pthread_mutex_unlock(&k->lock);
}

char *aded_keysocket_last_error(KeySocket *k, const char *name) {
        char *error = NULL;

        if (!k || !name)
                return NULL;
        pthread_mutex_lock(&k->lock);
        for (size_t i = 0; i < k->n_errors; i++)
                if (streq(k->errors[i].name, name) && k->errors[i].error) {
                        error = strdup(k->errors[i].error);
                        break;
                }
        pthread_mutex_unlock(&k->lock);
        return error;
}

/* The block device whose LUKS UUID is @uuid: its udev link, else a scan of every block device.
 * A cache of its own, empty ("/dev/null"): the system's blkid cache is rescanned only every few
 * minutes, and a disk attached since must be found too. NULL when there is none. */
static char *keysocket_find_uuid(const char *uuid) {
        blkid_cache cache = NULL;
        char *device;

        if (blkid_get_cache(&cache, "/dev/null") < 0)
                return NULL;
        device = blkid_evaluate_tag("UUID", uuid, &cache);
        blkid_put_cache(cache);
        return device;
}

/* Whether @device carries a LUKS header with @uuid. */
static bool keysocket_device_has_uuid(const char *device, const char *uuid) {
        _cleanup_(ade_fs_info_done) AdeFsInfo info = {};

        return ade_fs_probe(device, &info) >= 0 && streq_ptr(info.type, "crypto_LUKS") && info.uuid &&
               strcaseeq(info.uuid, uuid);
}

/* A volume adopted from ADE keeps ADE's mapping name (docs/architecture.md §12): its record says
 * where it is, and (*ret_record) where its key is. 0 when @name is no adopted volume's. */
static int keysocket_locate_adopted(KeySocket *k, const char *name, char **ret_device, char **ret_header,
        AdeStateVolume **ret_record, char **ret_why) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        const char *uuid;
        int r;

        r = aded_state_get_by_adopted_name(k->m->state, name, &record);
        if (r < 0 || !record)
                return r;
        uuid = record->uuid;
        if (record->detached && record->header_path) {
                if (!(*ret_device = strdup(
                              startswith(record->device_id, "/dev/") ? record->device_id : record->device)) ||
                        !(*ret_header = strdup(record->header_path)))
                        return -ENOMEM;
        } else {
                const char *candidates[] = {
                        startswith(record->device_id, "/dev/") ? record->device_id : NULL, record->device};

                *ret_header = NULL;
                for (size_t i = 0; i < ELEMENTSOF(candidates) && !*ret_device; i++)
                        if (candidates[i] && uuid && keysocket_device_has_uuid(candidates[i], uuid) &&
                                !(*ret_device = strdup(candidates[i])))
                                return -ENOMEM;
                if (!*ret_device && uuid)
                        *ret_device = keysocket_find_uuid(uuid);
                if (!*ret_device) {
                        if (asprintf(ret_why, "the adopted volume %s (LUKS UUID %s) is not attached", name,
                                    strna(uuid)) < 0)
                                *ret_why = NULL;
                        return -ENODEV;
                }
        }
        *ret_record = TAKE_PTR(record);
        return 1;
}

/* The device (and detached header) of the mapping @name, "ade-<LUKS UUID>", or a name adopted from
 * ADE: a detached header is known only to the state file; a header on the device is found by its
 * UUID. -ENODEV with *ret_why for a name that is not ade's or a volume that is not here. An adopted
 * volume's record goes to *ret_adopted (NULL otherwise). */
static int keysocket_locate(KeySocket *k, const char *name, char **ret_device, char **ret_header,
        AdeStateVolume **ret_adopted, char **ret_why) {
        _cleanup_(ade_state_volume_freep) AdeStateVolume *record = NULL;
        const char *p = startswith(name, "ade-");
        char uuid[64], *device;
        int r;

        r = keysocket_locate_adopted(k, name, ret_device, ret_header, ret_adopted, ret_why);
        if (r != 0)
                return r;
        if (!p || strlen(p) >= sizeof(uuid) || !ade_luks_uuid_is_valid(p)) {
                *ret_why = strdup("not an ade volume (ade's mappings are named ade-<LUKS UUID>)");
                return -ENODEV;
        }
        /* blkid compares tags byte for byte, and libcryptsetup writes UUIDs in lower case. */
        for (size_t i = 0; i <= strlen(p); i++)
                uuid[i] = (char)tolower((unsigned char)p[i]);
        r = aded_state_get_by_uuid(k->m->state, uuid, &record);
        if (r < 0)
                return r;
        if (record && record->detached && record->header_path) {
                device = strdup(startswith(record->device_id, "/dev/") ? record->device_id : record->device);
                if (!device || !(*ret_header = strdup(record->header_path))) {
                        free(device);
                        return -ENOMEM;
                }
                *ret_device = device;
                return 0;
        }
        /* Where the state file last saw it, when it is still there: one probe instead of a scan. */
        if (record) {
                const char *candidates[] = {
                        startswith(record->device_id, "/dev/") ? record->device_id : NULL, record->device};

                for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                        if (candidates[i] && keysocket_device_has_uuid(candidates[i], uuid)) {
                                if (!(*ret_device = strdup(candidates[i])))
                                        return -ENOMEM;
                                *ret_header = NULL;
                                return 0;
                        }
        }
        device = keysocket_find_uuid(uuid);
        if (!device) {
                if (asprintf(ret_why, "no device with the LUKS UUID %s is attached", uuid) < 0)
                        *ret_why = NULL;
                return -ENODEV;
        }
        *ret_device = device;
        *ret_header = NULL;
        return 0;
}

/* Errors worth waiting for: Key Vault, IMDS or the network not there yet (a boot), throttling. */
static bool keysocket_transient(int r) {
        switch (-r) {
        case EAGAIN:
        case EBUSY:
        case ETIMEDOUT:
        case ECONNREFUSED:
        case ECONNRESET:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ENETDOWN:
        case EHOSTDOWN:
                return true;
        default:
                return false;
        }
}

/* Sleeps @usec unless the manager stops first. */
static void keysocket_pause(KeySocket *k, uint64_t usec) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(usec / 1000000);
        until.tv_nsec += (long)(usec % 1000000) * 1000;
        if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&k->lock);
        while (!k->stopping && pthread_cond_timedwait(&k->idle, &k->lock, &until) == 0)
                ;
        pthread_mutex_unlock(&k->lock);
}

/* The key file of @name, resolved with bounded retries. 0, or a negative errno with *ret_why. */
static int keysocket_resolve(KeySocket *k, const char *name, AdeSecret **ret_key, char **ret_why) {
        _cleanup_free_ char *device = NULL, *header = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *token = NULL;
        _cleanup_(ade_state_volume_freep) AdeStateVolume *adopted = NULL;
        uint64_t start = ade_now_monotonic_usec(), delay = 1000000;
        int r;

        r = keysocket_locate(k, name, &device, &header, &adopted, ret_why);
        if (r < 0)
                return r;

        r = ade_luks_read_token(device, header, &token);
        /* A LUKS1 volume adopted from ADE carries no token: its record names the secret. */
        if (r < 0 && adopted && adopted->secret_url) {
                token = calloc(1, sizeof(*token));
                if (!token)
                        return -ENOMEM;
                if (ade_strdup_to(&token->secret_url, adopted->secret_url) < 0 ||
                        ade_strdup_to(&token->kek_url, adopted->kek_url) < 0 ||
                        ade_strdup_to(&token->kek_algorithm, adopted->kek_algorithm) < 0)
                        return -ENOMEM;
                r = 0;
        }
        if (r < 0) {
                if (asprintf(ret_why, "%s%s%s carries no ade token that can be read (%s): ade does not hold its key",
                            device, header ? " with the header " : "", strempty(header), strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }

        for (;;) {
                _cleanup_cloud_error_ AdeCloudError error = ADE_CLOUD_ERROR_NULL;
                _cleanup_free_ char *said = NULL;

                r = ade_resolver_key_from_token(k->m->resolver, token, ret_key, &error);
                if (r >= 0) {
                        aded_metrics_note_unlock(k->m, ade_now_monotonic_usec() - start);
                        return 0;
                }
                said = error.status > 0 || error.code ? ade_cloud_error_to_string(&error, "Key Vault") : NULL;
                if (!keysocket_transient(r) || ade_now_monotonic_usec() - start + delay > ADED_KEYSOCKET_HOLD_USEC ||
                        keysocket_stopping(k)) {
                        if (asprintf(ret_why, "cannot get the key of %s from Key Vault: %s%s", device,
                                    said ?: strerror(-r),
                                    keysocket_transient(r) ? " (gave up after retrying; run \"adectl unlock\" once "
                                                             "Key Vault answers)"
                                                           : "") < 0)
                                *ret_why = NULL;
                        return r;
                }
                ade_log_warning("key socket: %s: Key Vault not reachable yet (%s), retrying in %llus", name,
                        said ?: strerror(-r), (unsigned long long)(delay / 1000000));
                keysocket_pause(k, delay);
                delay = delay * 2 > 16000000 ? 16000000 : delay * 2;
        }
}

static void *keysocket_serve(void *p) {
        Request *req = p;
        KeySocket *k = req->k;
        _cleanup_secret_ AdeSecret *key = NULL;
        _cleanup_free_ char *why = NULL;
        int r;

        r = keysocket_resolve(k, req->name, &key, &why);
        if (r >= 0) {
                char byte;

                /* systemd-cryptsetup only reads; a peer that talks is something else. */
                if (recv(req->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
                        r = -EPROTO;
                        why = strdup("the peer sent data, which systemd-cryptsetup never does");
                        key = ade_secret_free(key);
                }
        }
        if (r >= 0) {
                r = ade_keysocket_send_key(req->fd, key);
                if (r < 0 && asprintf(&why, "systemd-cryptsetup went away before it had the key: %s", strerror(-r)) < 0)
                        why = NULL;
        }
        if (r < 0)
                ade_log_error("key socket: refused the key of %s: %s", req->name, why ?: strerror(-r));
        else
                ade_log_info("key socket: delivered the key of %s", req->name);
        keysocket_note(k, req->name, r < 0 ? (why ?: strerror(-r)) : NULL);

        close(req->fd);
        free(req->name);
        free(req);

        pthread_mutex_lock(&k->lock);
        k->active--;
        pthread_cond_broadcast(&k->idle);
        pthread_mutex_unlock(&k->lock);
        return NULL;
}

static int on_connection(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        KeySocket *k = userdata;
        _cleanup_close_ int cfd = -EBADF;
        _cleanup_free_ char *name = NULL;
        pthread_attr_t attr;
        pthread_t thread;
        Request *req;
        int r;

        (void)s;
        (void)revents;
        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
                return 0; /* EAGAIN, or a peer gone before it was accepted */

        /* Both checks read kernel state only: cheap enough for the loop. */
        r = ade_keysocket_peer_volume(cfd, &name);
        if (r == -EPERM) {
                ade_log_warning("key socket: refused a peer that is not root");
                return 0;
        }
        if (r == -EPROTONOSUPPORT) {
                ade_log_warning("key socket: refused a request for an encrypted key (PKCS#11, FIDO2 or TPM2 in "
                                "crypttab): ade serves plain key files");
                return 0;
        }
        if (r < 0) {
                ade_log_warning_errno(r, "key socket: refused a peer whose address names no volume: %m");
                return 0;
        }

        pthread_mutex_lock(&k->lock);
        if (k->active >= ADED_KEYSOCKET_REQUESTS_MAX) {
                pthread_mutex_unlock(&k->lock);
                ade_log_warning("key socket: refused the key of %s: %d requests are being served already", name,
                        ADED_KEYSOCKET_REQUESTS_MAX);
                return 0;
        }
        k->active++;
        pthread_mutex_unlock(&k->lock);

        req = malloc(sizeof(*req));
        if (req) {
                *req = (Request){.k = k, .fd = cfd, .name = name};
                pthread_attr_init(&attr);
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                r = -pthread_create(&thread, &attr, keysocket_serve, req);
                pthread_attr_destroy(&attr);
                if (r >= 0) {
                        TAKE_FD(cfd);
                        TAKE_PTR(name);
                        return 0;
                }
                free(req);
        } else
                r = -ENOMEM;

        ade_log_error_errno(r, "key socket: cannot serve the key of %s: %m", name);
        pthread_mutex_lock(&k->lock);
        k->active--;
        pthread_cond_broadcast(&k->idle);
        pthread_mutex_unlock(&k->lock);
        return 0;
}

/* The descriptor systemd passed as "keysocket", or -ENOENT. */
static int keysocket_passed_fd(void) {
        char **names = NULL;
        int n, fd = -ENOENT;

        n = sd_listen_fds_with_names(false, &names);
        for (int i = 0; i < n; i++)
                if (fd < 0 && names && streq_ptr(names[i], "keysocket"))
                        fd = SD_LISTEN_FDS_START + i;
        strv_free(names);
        return n < 0 ? n : fd;
}

static int keysocket_bind(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dir = strdup(path);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (!dir)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path));
        if (mkdir(dirname(dir), 0750) < 0 && errno != EEXIST)
                return -errno;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int aded_keysocket_start(Manager *m, KeySocket **ret) {
        KeySocket *k;
        int fd, r;

        fd = keysocket_passed_fd();
        if (fd == -ENOENT) {
                fd = keysocket_bind(m->config->daemon.key_socket);
                if (fd < 0)
                        return ade_log_error_errno(
                                fd, "cannot listen on the key socket %s: %m", m->config->daemon.key_socket);
                ade_log_info("key socket on %s", m->config->daemon.key_socket);
        } else if (fd < 0)
                return ade_log_error_errno(fd, "cannot take the key socket passed by systemd: %m");

        k = calloc(1, sizeof(*k));
        if (!k) {
                close(fd);
                return -ENOMEM;
        }
        *k = (KeySocket){.m = m, .fd = fd};
        pthread_mutex_init(&k->lock, NULL);
        pthread_cond_init(&k->idle, NULL);
        r = sd_event_add_io(m->event, &k->source, fd, EPOLLIN, on_connection, k);
        if (r < 0) {
                aded_keysocket_free(k);
                return ade_log_error_errno(r, "cannot watch the key socket: %m");
        }
        *ret = k;
        return 0;
}

KeySocket *aded_keysocket_free(KeySocket *k) {
        if (!k)
                return NULL;
        k->source = sd_event_source_disable_unref(k->source);
        if (k->fd >= 0)
                close(k->fd);

        pthread_mutex_lock(&k->lock);
        k->stopping = true;
        pthread_cond_broadcast(&k->idle);
        while (k->active > 0)
                pthread_cond_wait(&k->idle, &k->lock);
        pthread_mutex_unlock(&k->lock);

        for (size_t i = 0; i < k->n_errors; i++) {
                free(k->errors[i].name);
                free(k->errors[i].error);
        }
        free(k->errors);
        pthread_mutex_destroy(&k->lock);
        pthread_cond_destroy(&k->idle);
        free(k);
        return NULL;
}
