/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every fuzz target shares (tests/fuzz/README.md). A target defines LLVMFuzzerTestOneInput();
 * under --enable-fuzzing libFuzzer calls it, otherwise fuzz-main.c replays the target's corpus
 * through it as an ordinary test. A target must not keep state from one input to the next (beyond
 * what it sets up once), so that every finding replays from its input alone. */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input, for the parsers that take C strings. Aborts on ENOMEM (a
 * fuzzer that cannot allocate a few KiB has nothing left to find). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* Aborts with @what when @cond is false: an invariant the code under test promises. */
#define FUZZ_ASSERT(cond, what)                                                                                        \
        do {                                                                                                           \
                if (!(cond))                                                                                           \
                        fuzz_fail(__FILE__, __LINE__, what);                                                           \
        } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *what);
