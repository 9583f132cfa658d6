/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The whole key path on a real volume: a key file escrowed in the Azure emulator by the resolver
 * (with and without a KEK), a volume encrypted by the engine with the token the resolver made, and
 * the resolver's answer from the device alone, accepted by stock
 * "cryptsetup open --test-passphrase --key-file". Root and loop devices: skips (77) otherwise. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

#include "../unit/ade-test.h"
#include "ade-keyfile.h"
#include "ade-luks.h"
#include "ade-resolver.h"
#include "ade-volume.h"
#include "emu-harness.h"

/* Made by main(), inherited by the forked tests; whatever a failed test leaves attached under it is
 * detached there afterwards. */
static char work_dir[32];

typedef struct Ctx {
        AdeEmulator *emu;
        AdeConfig *config;
        AdeResolver *resolver;
        char dir[64];
        char loop[64];
} Ctx;

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -1; /* no ck_assert here: main() runs this outside any test too */
        r = system(cmd);
        return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static void ctx_start(Ctx *c) {
        AdeHttpOptions o;
        FILE *p;

        *c = (Ctx){};
        ck_assert_int_eq(ade_emulator_start(NULL, &c->emu), 0);
        ck_assert_int_eq(ade_emulator_load_config(c->emu, NULL, NULL, &c->config), 0);
        ade_emulator_http_options(c->emu, 2, &o);
        ck_assert_int_eq(ade_resolver_new(c->config, &o, &c->resolver), 0);

        snprintf(c->dir, sizeof(c->dir), "%s/t.XXXXXX", work_dir);
        ck_assert_ptr_nonnull(mkdtemp(c->dir));
        ck_assert_int_eq(sh("truncate -s 200M %s/vol.img && mkfs.ext4 -q -F %s/vol.img", c->dir, c->dir), 0);
        {
                _cleanup_free_ char *cmd = NULL;
                ck_assert_int_ge(asprintf(&cmd, "losetup -f --show %s/vol.img", c->dir), 0);
                p = popen(cmd, "r");
                ck_assert_ptr_nonnull(p);
                ck_assert_ptr_nonnull(fgets(c->loop, sizeof(c->loop), p));
                pclose(p);
                c->loop[strcspn(c->loop, "\n")] = 0;
        }
}

static void ctx_done(Ctx *c) {
        if (c->loop[0])
                (void)sh("losetup -d %s", c->loop);
        if (c->dir[0])
                (void)sh("rm -rf %s", c->dir);
        ade_resolver_free(c->resolver);
        ade_config_free(c->config);
        ade_emulator_stop(c->emu);
}

/* Escrows, encrypts (with the header in front, or detached in header_dir), resolves from the
 * device (and its header), and asks stock cryptsetup. */
static void round_trip(bool with_kek, bool detached) {
        Ctx c;
        AdeLuksPlan plan = {};
        _cleanup_secret_ AdeSecret *key = NULL, *resolved = NULL;
        _cleanup_free_ char *hdir = NULL, *keypath = NULL;
        _cleanup_(ade_volume_freep) AdeVolume *v = NULL;
        _cleanup_(ade_luks_token_freep) AdeLuksToken *t = NULL, *back = NULL;
        AdeLuksOptions o = {.escrow_confirmed = true, .force_detached = detached};
        int fd;

        ctx_start(&c);
        ck_assert_int_eq(ade_keyfile_generate(&key), 0);
        ck_assert_int_eq(ade_resolver_escrow(c.resolver,
                                 &(AdeResolverEscrow){
                                         .vault_url = c.emu->vault_url,
                                         .vault_resource_id = c.emu->vault_resource_id,
                                         .kek_url = with_kek ? c.emu->kek_url : NULL,
                                         .kek_algorithm = with_kek ? "RSA-OAEP" : NULL,
                                         .key_file_name = "LinuxPassPhraseFileName_0_0",
                                         .volume_type = "Data",
                                 },
                                 key, &t, NULL),
                0);
        ck_assert(ade_secret_url_is_versioned(t->secret_url));
        ck_assert(!!t->passphrase == with_kek);
        ck_assert_int_ge(asprintf(&hdir, "%s/headers", c.dir), 0);
        o.header_dir = hdir;
        o.run_dir = c.dir;
        ck_assert_int_eq(ade_volume_probe(c.loop, ADE_VOLUME_DATA, false, &v), 0);
        ck_assert_int_eq(ade_luks_encrypt(v, t, key, &o, &plan, NULL), 0);
        ck_assert(!!plan.header_path == detached);

        /* The resolver needs nothing but the device (and its detached header). */
        ck_assert_int_eq(ade_resolver_key_from_device(c.resolver, c.loop, plan.header_path, &back, &resolved, NULL), 0);
        ck_assert(ade_secret_equal(resolved, key));
        ck_assert_str_eq(back->secret_url, t->secret_url);

        ck_assert_int_ge(asprintf(&keypath, "%s/resolved.key", c.dir), 0);
        fd = open(keypath, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, resolved->data, resolved->size), (ssize_t)resolved->size);
        close(fd);
        if (detached)
                ck_assert_int_eq(sh("cryptsetup open --test-passphrase --header %s --key-file %s %s", plan.header_path,
                                         keypath, c.loop),
                        0);
        else
                ck_assert_int_eq(sh("cryptsetup open --test-passphrase --key-file %s %s", keypath, c.loop), 0);
        ade_luks_plan_done(&plan);
        ctx_done(&c);
}

START_TEST(test_resolved_key_opens_volume_with_kek) {
        round_trip(true, false);
}
END_TEST

START_TEST(test_resolved_key_opens_volume_without_kek) {
        round_trip(false, false);
}
END_TEST

START_TEST(test_resolved_key_opens_volume_with_detached_header) {
        round_trip(true, true);
}
END_TEST

int main(void) {
        Suite *s;
        TCase *tc;
        int r;
        const char *heavy = getenv("ADE_HEAVY_TESTS");

        if ((heavy && strcmp(heavy, "no") == 0) || geteuid() != 0 || access("/dev/loop-control", F_OK) < 0) {
                printf("SKIP: needs root, loop devices and ADE_HEAVY_TESTS\n");
                return 77;
        }
        snprintf(work_dir, sizeof(work_dir), "/tmp/ade-engine-emu.XXXXXX");
        if (!mkdtemp(work_dir))
                return EXIT_FAILURE;
        s = suite_create("engine-emu");
        tc = ade_test_case("resolver");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_resolved_key_opens_volume_with_kek);
        tcase_add_test(tc, test_resolved_key_opens_volume_without_kek);
        tcase_add_test(tc, test_resolved_key_opens_volume_with_detached_header);
        suite_add_tcase(s, tc);
        r = ade_test_run(s);
        (void)sh("losetup -a | grep -F '(%s/' | cut -d: -f1 | xargs -r -n1 losetup -d; rm -rf %s", work_dir, work_dir);
        return r;
}
