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

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "identity/operational-keys.h"
#include "store/state-certs.h"
#include "util/fileio.h"
#include "reset/reset-request.h"

static int record_key(ResetMarker *m, const char *hash, Diag *d) {
        if (reset_marker_has_key(m, hash))
                return 0;
        if (m->n_keys >= RESET_KEYS_MAX)
                return diag_set(d, -E2BIG, "the factory reset marker records %d keys already", RESET_KEYS_MAX);
        snprintf(m->keys[m->n_keys++], RESET_HASH_SIZE, "%s", hash);
        return 0;
}

/* The keys fleetid made and noted (identity/operational.h), certified or not:
 * an enrollment or renewal stopped half-way leaves one that is fleetid's. */
static int record_noted(StateStore *store, ResetMarker *m, Diag *d) {
        char noted[OPERATIONAL_KEYS_NOTED][SHA256_TEXT_SIZE];
        size_t n;
        int r;

        r = operational_keys_noted(store, noted, OPERATIONAL_KEYS_NOTED, &n, d);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = record_key(m, noted[i], d);
        return r;
}

/* The stored operational certificate's leaf into m: its serial and issuer
 * (if m has none yet) and its key (if not recorded yet); and the keys fleetid
 * noted it made. */
static int record_operational(StateStore *store, ResetMarker *m, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        char hash[RESET_HASH_SIZE];
        X509 *leaf;
        EVP_PKEY *key;
        int r;

        r = record_noted(store, m, d);
        if (r < 0)
                return r;
        r = state_certs_load(store, STATE_OPERATIONAL_CERT, &certs, d);
        if (r == -ENOENT) {
                diag_clear(d);
                return 0;
        }
        if (r < 0)
                return diag_prefix(d, r, "cannot read the operational certificate whose key the reset evicts");
        leaf = sk_X509_value(certs, 0);
        if (!m->old_serial &&
            (cert_serial_string(leaf, &m->old_serial) < 0 || cert_issuer_string(leaf, &m->old_issuer) < 0))
                return diag_set(d, -ENOMEM, "out of memory");
        key = X509_get0_pubkey(leaf);
        if (!key)
                return diag_set(d, -EBADMSG, "the operational certificate's public key cannot be read");
        r = pubkey_sha256_text(key, hash);
        if (r < 0)
                return diag_set(d, r, "cannot hash the operational certificate's public key");
        return record_key(m, hash, d);
}

int reset_record_current(StateStore *store, ResetMarker *m, Diag *d) {
        unsigned n = m->n_keys;
        bool had_serial = m->old_serial;
        int r;

        r = record_operational(store, m, d);
        if (r < 0)
                return r;
        if (m->n_keys == n && had_serial == !!m->old_serial)
                return 0;
        return reset_marker_save(store, m, d);
}

int reset_begin(StateStore *store, uid_t uid, time_t now, bool enroll, const char *owner_hash,
                ResetMarker *ret, Diag *d) {
        ResetMarker m = {};
        int r;

        r = reset_marker_load(store, &m, d);
        if (r == -ENOENT) {
                diag_clear(d);
                m = (ResetMarker) { .phase = RESET_PHASE_WIPE };
        } else if (r < 0)
                return r;
        else if (!streq_ptr(m.owner, strempty(owner_hash)))
                /* Another owner than the unfinished reset was for: wipe again
                 * (whatever that owner's enrollment stored goes too). */
                m.phase = RESET_PHASE_WIPE;
        else if (m.phase == RESET_PHASE_ENROLL && state_store_exists(store, STATE_OPERATIONAL_CERT))
                /* The wipe removed the certificate: this one was enrolled after
                 * it (and its marker not removed). A new request wipes that
                 * identity too; "the wipe was done" holds no more. */
                m.phase = RESET_PHASE_WIPE;
        m.uid = uid;
        m.requested = (uint64_t) now;
        m.enroll = enroll;
        snprintf(m.owner, sizeof(m.owner), "%s", strempty(owner_hash));
        r = record_operational(store, &m, d);
        if (r >= 0)
                r = reset_marker_save(store, &m, d);
        if (r < 0) {
                reset_marker_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}
