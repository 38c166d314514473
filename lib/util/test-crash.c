/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "util/test-crash.h"

void test_crash_point(const char *variable, const char *step) {
        const char *want = getenv(variable);

        if (want && strcmp(want, step) == 0)
                (void) raise(SIGKILL);
}
