/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Starts ade-emulator for a test, waits for its ready.json, and talks to its control API with
 * plain libcurl. */

#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <curl/curl.h>

#include "ade-imds.h"
#include "ade-json.h"
#include "ade-util.h"
#include "emu-harness.h"

/* Generous: sanitizer builds generate RSA keys slowly. */
#define READY_TIMEOUT_SEC 120

typedef struct Buffer {
        char *data;
        size_t size;
} Buffer;

static size_t on_data(char *p, size_t size, size_t n, void *userdata) {
        Buffer *b = userdata;
        char *d = realloc(b->data, b->size + size * n + 1);

        if (!d)
                return 0;
        memcpy(d + b->size, p, size * n);
        b->data = d;
        b->size += size * n;
        b->data[b->size] = 0;
        return size * n;
}

/* Sends @method @path to the control API. Returns 0 with the parsed reply, -EINVAL when the
 * emulator refused the request (4xx), -EIO when it could not be reached. */
static int control(AdeEmulator *e, const char *method, const char *path, const char *body, json_object **ret) {
        _cleanup_free_ char *url = NULL;
        Buffer b = {};
        CURL *c;
        CURLcode cc;
        long status = 0;
        struct curl_slist *headers = NULL;
        int r;

        if (!e)
                return -EINVAL;
        if (asprintf(&url, "%s%s", e->imds_url, path) < 0)
                return -ENOMEM;
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        cc = curl_easy_perform(c);
        if (cc == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        curl_slist_free_all(headers);

        if (cc != CURLE_OK)
                r = -EIO;
        else if (status >= 400 && status < 500)
                r = -EINVAL;
        else if (status != 200)
                r = -EPROTO;
        else if (ret)
                r = ade_json_parse(b.data ?: "", b.size, ret);
        else
                r = 0;
        free(b.data);
        return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

static int read_ready(const char *path, json_object **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char buf[4096];
        size_t n;

        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        return ade_json_parse(buf, n, ret);
}

char *ade_emulator_binary(void) {
        const char *env = getenv("ADE_EMULATOR"), *builddir = getenv("top_builddir");
        char *binary;

        if (env)
                return strdup(env);
        if (asprintf(&binary, "%s/tests/emulator/ade-emulator", builddir ?: ".") < 0)
                return NULL;
        return binary;
}

bool ade_emulator_available(void) {
        _cleanup_free_ char *binary = ade_emulator_binary();

        return binary && access(binary, X_OK) == 0;
}

static int start(const char *dir, bool owned, const char *overlay_json, AdeEmulator **ret) {
        _cleanup_free_ char *binary = NULL, *ready = NULL, *overlay = NULL, *state = NULL, *https = NULL,
                            *cfg_url = NULL;
        _cleanup_json_ json_object *info = NULL, *config = NULL, *vault_state = NULL;
        AdeEmulator *e;
        struct timespec start_ts, now, pause = {0, 10 * 1000000L};
        int64_t port;
        int r;

        binary = ade_emulator_binary();
        if (!binary || asprintf(&ready, "%s/ready.json", dir) < 0 || asprintf(&state, "%s/state.json", dir) < 0)
                return -ENOMEM;
        (void)unlink(ready);

        {
                _cleanup_json_ json_object *o = NULL;
                _cleanup_free_ char *text = NULL;
                _cleanup_fclose_ FILE *f = NULL;
                json_object *kv = NULL;

                /* Refuse bad JSON here, where the test can see why. */
                r = ade_json_parse(overlay_json ?: "{}", strlen(overlay_json ?: "{}"), &o);
                if (r < 0)
                        return -EINVAL;
                /* Unless the test says otherwise, the emulator plays a cloud whose Key Vault domain holds
                 * the name its clients reach it by: see ADE_EMULATOR_KEYVAULT_RESOURCE. */
                if (json_object_is_type(o, json_type_object)) {
                        if (ade_json_get_object(o, "keyvault", &kv) == -ENOENT) {
                                kv = json_object_new_object();
                                if (!kv || json_object_object_add(o, "keyvault", kv) < 0)
                                        return -ENOMEM;
                        }
                        if (kv && !json_object_object_get_ex(kv, "resource", NULL) &&
                                ade_json_add_string(kv, "resource", ADE_EMULATOR_KEYVAULT_RESOURCE) < 0)
                                return -ENOMEM;
                }
                text = ade_json_to_string(o);
                if (!text || asprintf(&overlay, "%s/overlay.json", dir) < 0)
                        return -ENOMEM;
                f = fopen(overlay, "we");
                if (!f || fputs(text, f) < 0 || fflush(f) != 0)
                        return -errno ?: -EIO;
        }

        e = calloc(1, sizeof(AdeEmulator));
        if (!e)
                return -ENOMEM;
        /* Only a folder we made is removed on stop: ade_emulator_start_in() leaves the caller's. */
        if (owned) {
                e->dir = strdup(dir);
                if (!e->dir) {
                        free(e);
                        return -ENOMEM;
                }
        }
        e->pid = -1;

        e->pid = fork();
        if (e->pid < 0) {
                r = -errno;
                ade_emulator_stop(e);
                return r;
        }
        if (e->pid == 0) {
                const char *argv[] = {
                        binary, "--dir", dir, "--state", state, overlay ? "--config" : NULL, overlay, NULL};
                execv(binary, (char **)argv);
                fprintf(stderr, "emu-harness: cannot run %s: %m\n", binary);
                _exit(127);
        }

        clock_gettime(CLOCK_MONOTONIC, &start_ts);
        for (;;) {
                int status;

                if (read_ready(ready, &info) >= 0)
                        break;
                if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
                        e->pid = -1;
                        ade_emulator_stop(e);
                        return -ECHILD;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start_ts.tv_sec > READY_TIMEOUT_SEC) {
                        ade_emulator_stop(e);
                        return -ETIMEDOUT;
                }
                nanosleep(&pause, NULL);
        }
        if (ade_json_get_int64(info, "https_port", &port) < 0)
                goto fail;
        e->https_port = (int)port;
        if (ade_json_get_int64(info, "http_port", &port) < 0)
                goto fail;
        e->http_port = (int)port;
        if (asprintf(&e->ca_file, "%s/ca.pem", dir) < 0 ||
                asprintf(&e->vault_url, "https://localhost:%d", e->https_port) < 0 ||
                asprintf(&e->imds_url, "http://127.0.0.1:%d", e->http_port) < 0 ||
                asprintf(&e->arm_url, "https://localhost:%d", e->https_port) < 0 ||
                asprintf(&e->authority_url, "https://localhost:%d", e->https_port) < 0)
                goto fail;

        r = control(e, "GET", "/_emulator/config", NULL, &config);
        if (r < 0)
                goto fail;
        {
                json_object *v = NULL;
                const char *tenant = NULL, *sub = NULL, *vsub = NULL, *vrg = NULL, *rg = NULL, *vname = NULL,
                           *resource = NULL;
                json_object *kvc = NULL;

                (void)ade_json_get_string(config, "tenant_id", &tenant);
                (void)ade_json_get_string(config, "subscription_id", &sub);
                (void)ade_json_get_string(config, "resource_group", &rg);
                (void)ade_json_get_object(config, "vault", &v);
                if (v) {
                        (void)ade_json_get_string(v, "subscription_id", &vsub);
                        (void)ade_json_get_string(v, "resource_group", &vrg);
                        (void)ade_json_get_string(v, "name", &vname);
                }
                (void)ade_json_get_object(config, "keyvault", &kvc);
                (void)ade_json_get_string(kvc, "resource", &resource);
                e->keyvault_resource = strdup(resource ?: "https://vault.azure.net");
                e->tenant_id = strdup(strna(tenant));
                e->subscription_id = strdup(strna(sub));
                if (asprintf(&e->vault_resource_id,
                            "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.KeyVault/vaults/%s",
                            vsub ?: strna(sub), vrg ?: strna(rg), strna(vname)) < 0)
                        e->vault_resource_id = NULL;
                if (!e->tenant_id || !e->subscription_id || !e->vault_resource_id || !e->keyvault_resource)
                        goto fail;
        }

        r = control(e, "GET", "/_emulator/state", NULL, &vault_state);
        if (r < 0)
                goto fail;
        {
                json_object *keys = NULL;
                (void)ade_json_get_array(vault_state, "keys", &keys);
                for (size_t i = 0; keys && i < json_object_array_length(keys); i++) {
                        json_object *k = json_object_array_get_idx(keys, i);
                        const char *name = NULL, *kid = NULL;
                        (void)ade_json_get_string(k, "name", &name);
                        (void)ade_json_get_string(k, "kid", &kid);
                        if (name && kid && streq(name, "kek")) {
                                free(e->kek_url);
                                e->kek_url = strdup(kid); /* the last one listed is the latest version */
                        }
                }
        }

        *ret = e;
        return 0;
fail:
        ade_emulator_stop(e);
        return -EPROTO;
}

int ade_emulator_start(const char *overlay_json, AdeEmulator **ret) {
        char tmpl[] = "/tmp/ade-emulator.XXXXXX";
        int r;

        if (!ret)
                return -EINVAL;
        if (!mkdtemp(tmpl))
                return -errno;
        r = start(tmpl, true, overlay_json, ret);
        if (r < 0)
                (void)nftw(tmpl, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return r;
}

int ade_emulator_start_in(const char *dir, const char *overlay_json, AdeEmulator **ret) {
        if (!dir || !ret)
                return -EINVAL;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        return start(dir, false, overlay_json, ret);
}

AdeEmulator *ade_emulator_stop(AdeEmulator *e) {
        if (!e)
                return NULL;
        if (e->pid > 0) {
                int status;
                (void)kill(e->pid, SIGTERM);
                while (waitpid(e->pid, &status, 0) < 0 && errno == EINTR)
                        ;
        }
        if (e->dir)
                (void)nftw(e->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(e->dir);
        free(e->ca_file);
        free(e->vault_url);
        free(e->imds_url);
        free(e->arm_url);
        free(e->authority_url);
        free(e->kek_url);
        free(e->vault_resource_id);
        free(e->keyvault_resource);
        free(e->tenant_id);
        free(e->subscription_id);
        free(e);
        return NULL;
}

int ade_emulator_fault(AdeEmulator *e, const char *fault_json) {
        if (!fault_json)
                return -EINVAL;
        return control(e, "POST", "/_emulator/faults", fault_json, NULL);
}

int ade_emulator_clear_faults(AdeEmulator *e) {
        return control(e, "DELETE", "/_emulator/faults", NULL, NULL);
}

int ade_emulator_requests(AdeEmulator *e, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        json_object *a;
        int r;

        if (!ret)
                return -EINVAL;
        r = control(e, "GET", "/_emulator/requests", NULL, &o);
        if (r < 0)
                return r;
        r = ade_json_get_array(o, "requests", &a);
        if (r < 0)
                return -EPROTO;
        *ret = json_object_get(a);
        return 0;
}

int ade_emulator_clear_requests(AdeEmulator *e) {
        return control(e, "DELETE", "/_emulator/requests", NULL, NULL);
}

int ade_emulator_state(AdeEmulator *e, json_object **ret) {
        if (!ret)
                return -EINVAL;
        return control(e, "GET", "/_emulator/state", NULL, ret);
}

int ade_emulator_write_config(AdeEmulator *e, const char *path, const char *extra) {
        _cleanup_fclose_ FILE *f = NULL;

        if (!e || !path)
                return -EINVAL;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f,
                "# Written by emu-harness for the emulator in %s\n"
                "[keyvault]\nurl = %s\n\n"
                "[azure]\nimds = %s\narm = %s\nauthority = %s\nkeyvault-resource = %s\nca-file = %s\n",
                e->dir ?: "(kept folder)", e->vault_url, e->imds_url, e->arm_url, e->authority_url,
                e->keyvault_resource, e->ca_file);
        if (extra)
                fprintf(f, "\n%s\n", extra);
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}

AdeEmulator *ade_emulator_suite = NULL;

void ade_emulator_suite_setup(void) {
        int r;

        r = ade_emulator_start(NULL, &ade_emulator_suite);
        if (r < 0) {
                fprintf(stderr, "Cannot start the emulator: %s\n", strerror(-r));
                exit(EXIT_FAILURE);
        }
}

void ade_emulator_suite_teardown(void) {
        ade_emulator_suite = ade_emulator_stop(ade_emulator_suite);
}

int ade_emulator_reset(AdeEmulator *e) {
        int r;

        r = ade_emulator_clear_faults(e);
        return r < 0 ? r : ade_emulator_clear_requests(e);
}

void ade_emulator_test_setup(void) {
        if (ade_emulator_reset(ade_emulator_suite) < 0) {
                fprintf(stderr, "Cannot reset the emulator\n");
                abort();
        }
}

void ade_emulator_http_options(const AdeEmulator *e, unsigned max_retries, AdeHttpOptions *ret) {
        ade_http_options_init(ret);
        ret->ca_file = e ? e->ca_file : NULL;
        ret->backoff_initial_ms = 10;
        ret->backoff_max_ms = 50;
        ret->retry_after_max_ms = 1500;
        ret->imds_gone_max_ms = 200;
        ret->max_retries = max_retries;
}

int ade_emulator_credential(const AdeEmulator *e, const AdeHttpOptions *opts, AdeCredential **ret) {
        AdeHttpOptions o;
        AdeImds *imds = NULL;
        int r;

        if (!e || !ret)
                return -EINVAL;
        if (!opts) {
                ade_emulator_http_options(e, 2, &o);
                opts = &o;
        }
        r = ade_imds_new(e->imds_url, opts, &imds);
        if (r < 0)
                return r;
        r = ade_imds_credential_new(imds, true, ADE_IMDS_IDENTITY_SYSTEM, NULL, ret);
        if (r < 0)
                ade_imds_free(imds);
        return r;
}

int ade_emulator_load_config(AdeEmulator *e, const char *path, const char *extra, AdeConfig **ret) {
        _cleanup_free_ char *p = NULL, *error = NULL;
        int r;

        if (!e || !ret || (!path && !e->dir))
                return -EINVAL;
        if (!path) {
                if (asprintf(&p, "%s/ade.conf", e->dir) < 0)
                        return -ENOMEM;
                path = p;
        }
        r = ade_emulator_write_config(e, path, extra);
        if (r < 0)
                return r;
        r = ade_config_load(path, ret, &error);
        if (r < 0)
                fprintf(stderr, "emu-harness: %s\n", strna(error));
        return r;
}

int ade_emulator_count(AdeEmulator *e, const char *service, unsigned *ret_requests, unsigned *ret_connections) {
        _cleanup_json_ json_object *reqs = NULL;
        _cleanup_free_ int64_t *seen = NULL;
        unsigned n = 0, conns = 0;
        size_t len;
        int r;

        r = ade_emulator_requests(e, &reqs);
        if (r < 0)
                return r;
        len = json_object_array_length(reqs);
        seen = calloc(len + 1, sizeof(int64_t));
        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                json_object *q = json_object_array_get_idx(reqs, i);
                const char *s;
                int64_t c;
                bool known = false;

                if (ade_json_get_string(q, "service", &s) < 0)
                        return -EPROTO;
                if (service && !streq(s, service))
                        continue;
                n++;
                if (ade_json_get_int64(q, "connection", &c) < 0)
                        return -EPROTO;
                for (unsigned k = 0; k < conns; k++)
                        known = known || seen[k] == c;
                if (!known)
                        seen[conns++] = c;
        }
        if (ret_requests)
                *ret_requests = n;
        if (ret_connections)
                *ret_connections = conns;
        return 0;
}

unsigned ade_emulator_requests_to(AdeEmulator *e, const char *service) {
        unsigned n;

        return ade_emulator_count(e, service, &n, NULL) < 0 ? UINT_MAX : n;
}

unsigned ade_emulator_connections_to(AdeEmulator *e, const char *service) {
        unsigned n;

        return ade_emulator_count(e, service, NULL, &n) < 0 ? UINT_MAX : n;
}
