/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/certcheck.h"
#include "identity/operational-keys.h"
#include "util/macro.h"

/* One line "sha256:<hex>\n" per key. */
#define KEYS_CREATED_FILE_MAX (OPERATIONAL_KEYS_NOTED * SHA256_TEXT_SIZE + 64)

int operational_keys_noted(StateStore *store, char ret[][SHA256_TEXT_SIZE], size_t max, size_t *ret_n,
                           Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len, n = 0;
        int r;

        r = state_store_load(store, STATE_KEYS_CREATED, KEYS_CREATED_FILE_MAX, &text, &len, d);
        if (r == -ENOENT) {
                diag_clear(d);
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return diag_prefix(d, r, "cannot read the record of the operational keys fleetid made");
        for (char *line = text, *end; line < text + len && *line; line = end + 1) {
                end = memchr(line, '\n', text + len - line);
                if (!end)
                        break; /* a last line without its newline: not written whole */
                *end = 0;
                if (strncmp(line, "sha256:", 7) != 0 || strlen(line) >= SHA256_TEXT_SIZE)
                        return diag_set(d, -EBADMSG, "%s holds a line that is not a key hash",
                                        STATE_KEYS_CREATED);
                if (n < max)
                        snprintf(ret[n++], SHA256_TEXT_SIZE, "%s", line);
        }
        *ret_n = n;
        return 0;
}

int operational_note_key(StateStore *store, EVP_PKEY *pub, Diag *d) {
        char keys[OPERATIONAL_KEYS_NOTED + 1][SHA256_TEXT_SIZE], hash[SHA256_TEXT_SIZE];
        char text[(OPERATIONAL_KEYS_NOTED + 1) * SHA256_TEXT_SIZE + 1] = "";
        size_t n = 0, from, pos = 0;
        Diag rd = {};
        int r;

        r = pubkey_sha256_text(pub, hash);
        if (r < 0)
                return diag_set(d, r, "cannot hash the new operational key");
        /* A damaged record is replaced: it only ever widens what a reset may evict. */
        if (operational_keys_noted(store, keys, OPERATIONAL_KEYS_NOTED, &n, &rd) < 0)
                n = 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i], hash) == 0)
                        return 0;
        snprintf(keys[n++], SHA256_TEXT_SIZE, "%s", hash);
        from = n > OPERATIONAL_KEYS_NOTED ? n - OPERATIONAL_KEYS_NOTED : 0;
        for (size_t i = from; i < n; i++)
                pos += (size_t) snprintf(text + pos, sizeof(text) - pos, "%s\n", keys[i]);
        r = state_store_save(store, STATE_KEYS_CREATED, text, pos, STATE_FILE_MODE, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot record the new operational key");
        return 0;
}
