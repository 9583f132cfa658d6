/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A fuzz target without libFuzzer (a build without --enable-fuzzing): replays inputs through
 * LLVMFuzzerTestOneInput() as an ordinary test. With arguments, each is a file or a folder of
 * files; without, the target's committed corpus, $top_srcdir/tests/fuzz/corpus/<name>, where
 * <name> is the program's name without "fuzz-". The sanitizer build of CI runs these, so every
 * committed input, regressions included, is replayed under ASan and UBSan with gcc as well. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ade-util.h"
#include "fuzz.h"

static int replay_file(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0, alloc = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        for (;;) {
                ssize_t n;

                if (size == alloc) {
                        uint8_t *b = realloc(buf, (alloc = alloc ? alloc * 2 : 4096));

                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                n = read(fd, buf + size, alloc - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "%s: %s\n", path, strerror(errno));
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t)n;
        }
        (void)LLVMFuzzerTestOneInput(buf, size);
        return 0;
}

/* Replays @path (a file, or every regular file in a folder, in name order). Returns how many
 * inputs ran, or a negative errno. */
static int replay(const char *path) {
        struct dirent **names = NULL;
        struct stat st;
        int n, count = 0, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path) < 0 ? -EIO : 1;

        n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *file = NULL;

                if (r >= 0 && names[i]->d_name[0] != '.') {
                        if (asprintf(&file, "%s/%s", path, names[i]->d_name) < 0)
                                r = -ENOMEM;
                        else if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
                                r = replay_file(file);
                                count++;
                        }
                }
                free(names[i]);
        }
        free(names);
        return r < 0 ? r : count;
}

int main(int argc, char *argv[]) {
        const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        const char *top = getenv("top_srcdir");
        _cleanup_free_ char *corpus = NULL;
        int total = 0, r;

        if (argc > 1) {
                for (int i = 1; i < argc; i++) {
                        r = replay(argv[i]);
                        if (r < 0)
                                return EXIT_FAILURE;
                        total += r;
                }
                printf("%s: %d inputs replayed\n", name, total);
                return EXIT_SUCCESS;
        }

        name = startswith(name, "fuzz-") ?: name;
        if (asprintf(&corpus, "%s/tests/fuzz/corpus/%s", top ?: ".", name) < 0)
                return EXIT_FAILURE;
        r = replay(corpus);
        if (r <= 0) {
                fprintf(stderr, "%s: no corpus replayed (%s)\n", corpus, r < 0 ? strerror(-r) : "empty");
                return EXIT_FAILURE;
        }
        printf("%s: %d inputs replayed\n", corpus, r);
        return EXIT_SUCCESS;
}
