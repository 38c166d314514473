/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "identity/tpm-watch.h"

/* The record is two short lines. */
#define TPM_FINGERPRINT_FILE_MAX 1024

static int save(StateStore *store, const TpmFingerprint *f, Diag *d) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = tpm_fingerprint_format(f, &text);
        if (r < 0)
                return r;
        return state_store_save(store, STATE_TPM_FINGERPRINT, text, strlen(text), STATE_FILE_MODE, d);
}

int tpm_watch_check(TpmContext *t, const Config *c, StateStore *store, TpmWatch *ret, Diag *d) {
        _cleanup_free_ char *text = NULL;
        TpmWatch w = {};
        Diag rd = {};
        size_t len;
        int r;

        r = tpm_fingerprint_read(t, c->srk_handle, &w.now, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot tell whether the TPM was cleared or replaced");

        r = state_store_load(store, STATE_TPM_FINGERPRINT, TPM_FINGERPRINT_FILE_MAX, &text, &len, &rd);
        if (r >= 0)
                r = tpm_fingerprint_parse(text, len, &w.was, &rd);
        if (r >= 0) {
                w.had_record = true;
                w.change = tpm_fingerprint_compare(&w.was, &w.now);
        } else if (r != -ENOENT)
                w.record_broken = true;

        if (!w.had_record || w.change == TPM_CHANGE_CLEARED) {
                r = save(store, &w.now, d);
                if (r < 0)
                        return diag_prefix(d, r, "cannot record the TPM's fingerprint");
        }
        *ret = w;
        return 0;
}
