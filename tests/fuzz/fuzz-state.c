/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* aded's state file (ade-state.h): the input is written as <dir>/state.json and loaded, as aded
 * does at start. A refusal comes with a message that names the file; a state that loads saves and
 * loads back to the same records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ade-state.h"
#include "fuzz.h"

static char *dir, *path;

static void cleanup(void) {
        (void)unlink(path);
        (void)rmdir(dir);
}

static void setup(void) {
        const char *tmp = getenv("TMPDIR");

        if (dir)
                return;
        /* Saving fsyncs: in memory (/dev/shm) when there is no TMPDIR, so that a run costs no disk. */
        if (!tmp)
                tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        if (asprintf(&dir, "%s/ade-fuzz-state-XXXXXX", tmp) < 0 || !mkdtemp(dir) ||
                asprintf(&path, "%s/%s", dir, ADE_STATE_FILE_NAME) < 0)
                abort();
        atexit(cleanup);
}

static void write_input(const uint8_t *data, size_t size) {
        FILE *f = fopen(path, "we");

        if (!f || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
                abort();
}

static void same(const char *a, const char *b, const char *what) {
        FUZZ_ASSERT((!a && !b) || (a && b && strcmp(a, b) == 0), what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(ade_state_freep) AdeState *s = NULL, *back = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        setup();
        write_input(data, size);

        r = ade_state_load(dir, &s, &error);
        FUZZ_ASSERT(r <= 0, "positive return");
        if (r < 0) {
                FUZZ_ASSERT(
                        r == -ENOMEM || (error && strstr(error, path)), "refusal without a message naming the file");
                return 0;
        }
        FUZZ_ASSERT(!error, "success with an error message");
        for (size_t i = 0; i < s->n_volumes; i++)
                FUZZ_ASSERT(s->volumes[i]->device_id && ade_state_find(s, s->volumes[i]->device_id),
                        "record without its key (deviceId)");

        FUZZ_ASSERT(ade_state_save(s) == 0, "a loaded state does not save");
        FUZZ_ASSERT(ade_state_load(dir, &back, NULL) == 0, "a saved state does not load");
        FUZZ_ASSERT(back->n_volumes == s->n_volumes, "records lost in a save");
        for (size_t i = 0; i < s->n_volumes; i++) {
                const AdeStateVolume *a = s->volumes[i], *b = back->volumes[i];

                same(a->device_id, b->device_id, "deviceId changed");
                same(a->device, b->device, "device changed");
                same(a->uuid, b->uuid, "uuid changed");
                same(a->secret_url, b->secret_url, "secretUrl changed");
                same(a->header_path, b->header_path, "header path changed");
                same(a->mount_point, b->mount_point, "mount point changed");
                FUZZ_ASSERT(a->kind == b->kind && a->step == b->step && a->detached == b->detached,
                        "job, step or detached changed");
        }
        return 0;
}
