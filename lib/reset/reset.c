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

bool reset_marker_same_request(const ResetMarker *a, const ResetMarker *b) {
        return a->phase == b->phase && a->uid == b->uid && a->requested == b->requested &&
               a->enroll == b->enroll && streq_ptr(a->owner, b->owner);
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
        int r;

        if (!m->enroll) {
                r = state_store_remove(store, RESET_MARKER, d);
                return r < 0 ? r : 1;
        }
        if (m->phase == RESET_PHASE_ENROLL)
                return 0;
        m->phase = RESET_PHASE_ENROLL;
        return reset_marker_save(store, m, d);
}

bool reset_owner_in_place(const Config *c, const ResetMarker *m, Diag *d) {
        if (!m->owner[0]) {
                if (c->n_dropins == 0)
                        return true;
                diag_set(d, -ESTALE, "the reset removes every owner file, but %s is still there",
                         c->dropins[0].path);
                return false;
        }
        if (c->n_dropins == 1 && streq_ptr(c->dropins[0].hash, m->owner))
                return true;
        if (c->n_dropins == 0)
                diag_set(d, -ESTALE, "the new owner file (%s) is not installed in %s", m->owner,
                         c->dropin_dir ?: "(none)");
        else
                diag_set(d, -ESTALE, "%s is not the new owner file (%s)%s", c->dropins[0].path, m->owner,
                         c->n_dropins > 1 ? ", and there are other drop-in files" : "");
        return false;
}

int reset_owner_anchor(const Config *c, char **ret) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;

        if (c->est_trust_anchors && certs_load_pem_file(c->est_trust_anchors, &certs, NULL) >= 0)
                return cert_fingerprint(sk_X509_value(certs, 0), ret);
        *ret = strdup(c->est_bootstrap_fingerprint ?: "none");
        return *ret ? 0 : -ENOMEM;
}

/* Whether path lies directly in dir. */
static bool path_in_dir(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return path && strncmp(path, dir, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/');
}

static int remove_in_dir(int dfd, const char *dir, const char *name, Diag *d) {
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                return diag_set(d, -errno, "cannot remove %s/%s: %s", dir, name, strerror(errno));
        return 0;
}

/* Every *.conf in the drop-in directory but RESET_OWNER_DROPIN (if keep_owner). */
static int remove_owner_files(int dfd, const char *dropin_dir, bool keep_owner, Diag *d) {
        _cleanup_close_ int lfd = -1;
        DIR *dir;
        struct dirent *de;
        int r = 0;

        lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0 || !(dir = fdopendir(lfd)))
                return diag_set(d, -errno, "cannot list %s: %s", dropin_dir, strerror(errno));
        lfd = -1; /* the DIR owns it */
        while (r >= 0 && (de = readdir(dir))) {
                size_t n = strlen(de->d_name);

                if (de->d_name[0] == '.' || n <= 5 || !streq_ptr(de->d_name + n - 5, ".conf") ||
                    (keep_owner && streq_ptr(de->d_name, RESET_OWNER_DROPIN)))
                        continue;
                r = remove_in_dir(dfd, dropin_dir, de->d_name, d);
        }
        closedir(dir);
        return r;
}

int reset_owner_install(const char *dropin_dir, const Config *old_config, const Config *new_config,
                        const char *owner_text, size_t owner_len, Diag *d) {
        const char *old_files[2] = { old_config ? old_config->est_trust_anchors : NULL,
                                     old_config ? old_config->est_password_file : NULL };
        _cleanup_close_ int dfd = -1;
        int r;

        if (!dropin_dir)
                return diag_set(d, -EINVAL, "no drop-in directory (paths.dropin_dir is empty)");
        if (mkdir(dropin_dir, 0755) < 0 && errno != EEXIST)
                return diag_set(d, -errno, "cannot create the drop-in directory %s: %s", dropin_dir,
                                strerror(errno));
        dfd = open(dropin_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return diag_set(d, -errno, "cannot open the drop-in directory %s: %s", dropin_dir,
                                strerror(errno));

        /* The old owner's files the old configuration names, if they are in
         * the drop-in directory and the new owner does not name them too. */
        for (size_t i = 0; old_config && old_config->n_dropins > 0 && i < ELEMENTSOF(old_files); i++) {
                const char *f = old_files[i];

                if (!path_in_dir(f, dropin_dir) ||
                    (new_config && (streq_ptr(f, new_config->est_trust_anchors) ||
                                    streq_ptr(f, new_config->est_password_file))))
                        continue;
                r = remove_in_dir(dfd, dropin_dir, strrchr(f, '/') + 1, d);
                if (r < 0)
                        return r;
        }
        r = remove_owner_files(dfd, dropin_dir, owner_text != NULL, d);
        if (r < 0)
                return r;
        if (!owner_text) {
                r = remove_in_dir(dfd, dropin_dir, RESET_OWNER_DROPIN, d);
                if (r < 0)
                        return r;
                return fsync(dfd) < 0 ? diag_set(d, -errno, "cannot sync %s: %s", dropin_dir, strerror(errno))
                                      : 0;
        }
        r = write_file_atomic_at(dfd, RESET_OWNER_DROPIN, owner_text, owner_len, 0644);
        if (r < 0)
                return diag_set(d, r, "cannot write %s/%s: %s", dropin_dir, RESET_OWNER_DROPIN, strerror(-r));
        return 0;
}
