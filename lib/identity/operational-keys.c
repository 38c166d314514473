/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/certcheck.h"
#include "identity/operational-keys.h"
#include "util/macro.h"

/* One line "sha256:<hex>\n" per key. A reader takes up to
 * KEYS_CREATED_LINES_MAX lines (more than fleetid writes, so that a record
 * written by a later version that keeps more is still read), the newest last. */
#define KEYS_CREATED_LINES_MAX 8
#define KEYS_CREATED_FILE_MAX (KEYS_CREATED_LINES_MAX * SHA256_TEXT_SIZE)

int operational_keys_noted(StateStore *store, char ret[][SHA256_TEXT_SIZE], size_t max, size_t *ret_n,
                           Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len, n = 0, skip = 0, lines = 0;
        int r;

        r = state_store_load(store, STATE_KEYS_CREATED, KEYS_CREATED_FILE_MAX, &text, &len, d);
        if (r == -ENOENT) {
                diag_clear(d);
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return diag_prefix(d, r, "cannot read the record of the operational keys fleetid made");
        /* Whole lines only: a last line without its newline was not written whole. */
        for (size_t i = 0; i < len; i++)
                lines += text[i] == '\n';
        if (lines > max)
                skip = lines - max; /* the newest max */
        for (char *line = text, *end; line < text + len && *line; line = end + 1) {
                end = memchr(line, '\n', text + len - line);
                if (!end)
                        break;
                *end = 0;
                if (strncmp(line, "sha256:", 7) != 0 || strlen(line) >= SHA256_TEXT_SIZE)
                        return diag_set(d, -EBADMSG, "%s holds a line that is not a key hash",
                                        STATE_KEYS_CREATED);
                if (skip > 0)
                        skip--;
                else
                        snprintf(ret[n++], SHA256_TEXT_SIZE, "%s", line);
        }
        *ret_n = n;
        return 0;
}
