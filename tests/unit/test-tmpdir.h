/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-tmpdir.h: a scratch directory for unit tests that touch files
 * (header-only). test_tmpdir_remove() deletes it with everything below,
 * including read-only directories a test left behind.
 */
#pragma once

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline int test_tmpdir_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_DP)
                return rmdir(path);
        return unlink(path);
}

/* Creates /tmp/test-NAME-XXXXXX into buf (at least 64 bytes); NULL on failure. */
static inline char *test_tmpdir_new(char *buf, size_t size, const char *name) {
        if ((size_t) snprintf(buf, size, "/tmp/test-%s-XXXXXX", name) >= size)
                return NULL;
        return mkdtemp(buf);
}

/* Writes text to DIR/NAME; false if it cannot. */
static inline bool test_write_at(const char *dir, const char *name, const char *text) {
        char path[512];
        FILE *f;
        bool ok;

        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
                return false;
        f = fopen(path, "we");
        if (!f)
                return false;
        ok = fputs(text, f) >= 0;
        return fclose(f) == 0 && ok;
}

static inline int test_tmpdir_remove(const char *dir) {
        return nftw(dir, test_tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
