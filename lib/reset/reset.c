/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/sensor-pending.h"
#include "broker/sensor-record.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "exchange/trust.h"
#include "identity/operational.h"
#include "reset/reset.h"
#include "store/state-certs.h"
#include "tpm/tpm-key.h"
#include "util/fileio.h"

static int step_keys(const Config *c, TpmContext *tpm, const ResetMarker *m, ResetReport *rep, Diag *d) {
        const uint32_t handles[2] = { c->op_key_handle, c->op_spare_key_handle };

        for (size_t i = 0; i < ELEMENTSOF(handles); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
                char hash[RESET_HASH_SIZE] = "";
                Diag rd = {};
                int r;

                r = tpm_key_read_public(tpm, handles[i], &pub, NULL, &rd);
                if (r == -ENOENT)
                        continue;
                if (r < 0 && (tpm_error_is_transient(r) || r == -ENXIO || r == -ENOMEM))
                        return diag_set(d, r, "cannot read TPM handle 0x%08x: %s", handles[i],
                                        diag_text(&rd, r));
                if (r >= 0 && pubkey_sha256_text(pub, hash) < 0)
                        return diag_set(d, -ENOMEM, "cannot hash the public key at TPM handle 0x%08x",
                                        handles[i]);
                if (r < 0 || !reset_marker_has_key(m, hash)) {
                        rep->foreign[rep->n_foreign] = handles[i];
                        snprintf(rep->foreign_key[rep->n_foreign], RESET_HASH_SIZE, "%s", hash);
                        rep->n_foreign++;
                        continue;
                }
                r = tpm_key_evict(tpm, handles[i], &rd);
                if (r < 0)
                        return diag_set(d, r, "cannot evict the operational key at TPM handle 0x%08x: %s",
                                        handles[i], diag_text(&rd, r));
                rep->evicted[rep->n_evicted++] = handles[i];
        }
        return 0;
}

static int remove_files(StateStore *s, const char *const *names, size_t n, Diag *d) {
        for (size_t i = 0; i < n; i++) {
                int r = state_store_remove(s, names[i], d);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int step_status(const Config *c, StateStore *store, StateStore *runtime, Diag *d) {
        static const char *const names[] = { STATE_STATUS, STATE_TPM_FINGERPRINT };
        int r;

        r = remove_files(store, names, ELEMENTSOF(names), d);
        if (r >= 0 && runtime)
                r = remove_files(runtime, names, ELEMENTSOF(names), d);
        if (r < 0)
                return r;
        if (c->metrics_file && unlink(c->metrics_file) < 0 && errno != ENOENT)
                return diag_set(d, -errno, "cannot remove the metrics file %s: %s", c->metrics_file,
                                strerror(errno));
        return 0;
}

int reset_wipe(const Config *c, TpmContext *tpm, StateStore *store, StateStore *runtime,
               const ResetMarker *m, ResetStepFn after, void *userdata, ResetReport *ret, Diag *d) {
        static const char *const certificate[] = { STATE_OPERATIONAL_CERT, STATE_KEYS_CREATED };
        static const char *const trust[] = { STATE_TRUST_ANCHORS, STATE_ADOPTED_ANCHORS };
        _cleanup_close_ int lock = -1;
        ResetReport rep = {};
        int r;

        /* fleetidctl and a fleetidd starting at the same moment: one after the other. */
        r = state_store_lock(store, &lock, d);
        if (r < 0)
                return r;
        r = step_keys(c, tpm, m, &rep, d);
        if (r < 0)
                return r;
        if (after)
                after("keys", userdata);
        r = remove_files(store, certificate, ELEMENTSOF(certificate), d);
        if (r < 0)
                return r;
        if (after)
                after("certificate", userdata);
        r = remove_files(store, trust, ELEMENTSOF(trust), d);
        if (r < 0)
                return r;
        if (after)
                after("trust", userdata);
        r = step_status(c, store, runtime, d);
        if (r < 0)
                return r;
        if (after)
                after("status", userdata);
        r = state_store_remove_dir(store, SENSOR_RECORDS_DIR, d);
        if (r >= 0)
                r = state_store_remove_dir(store, SENSOR_PENDING_DIR, d);
        if (r < 0)
                return r;
        if (after)
                after("sensors", userdata);
        *ret = rep;
        if (rep.n_foreign > 0)
                return diag_set(d, -EBUSY,
                                "TPM handle 0x%08x holds an object fleetid did not certify (public key %s); it "
                                "was not evicted. Evict it (tpm2_evictcontrol) or configure another "
                                "operational.key_handle, then run fleetidctl factory-reset again",
                                rep.foreign[0], rep.foreign_key[0][0] ? rep.foreign_key[0] : "unreadable");
        return 0;
}

int reset_wipe_done(StateStore *store, ResetMarker *m, Diag *d) {
        _cleanup_close_ int lock = -1;
        ResetMarker now = {};
        bool same;
        int r;

        /* A reset asked for again while this wipe ran (fleetidctl writes its
         * marker under the same lock) is newer: its marker stays as it is,
         * and the daemon runs it next (manager-reset.c's reset_done()). */
        r = state_store_lock(store, &lock, d);
        if (r < 0)
                return r;
        r = reset_marker_load(store, &now, NULL);
        same = r >= 0 && reset_marker_same_asking(&now, m);
        reset_marker_done(&now);
        if (!same)
                return 0;
        if (!m->enroll) {
                r = state_store_remove(store, RESET_MARKER, d);
                return r < 0 ? r : 1;
        }
        if (m->phase == RESET_PHASE_ENROLL)
                return 0;
        m->phase = RESET_PHASE_ENROLL;
        return reset_marker_save(store, m, d);
}
