/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "identity/operational.h"
#include "store/state-certs.h"
#include "tpm/tpm-key.h"
#include "util/test-crash.h"

OperationalIdentity *operational_identity_free(OperationalIdentity *o) {
        if (!o)
                return NULL;
        X509_free(o->cert);
        OSSL_STACK_OF_X509_free(o->chain);
        EVP_PKEY_free(o->public_key);
        free(o);
        return NULL;
}

bool operational_load_failed_for_good(int r) {
        return r < 0 && !tpm_error_is_transient(r) && r != -EIO && r != -ENOMEM;
}

int operational_load(const Config *c, TpmContext *tpm, StateStore *store, OperationalIdentity **ret, Diag *d) {
        _cleanup_(operational_identity_freep) OperationalIdentity *o = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        const uint32_t handles[2] = { c->op_key_handle, c->op_spare_key_handle };
        int r;

        r = state_certs_load(store, STATE_OPERATIONAL_CERT, &certs, d);
        if (r == -ENOENT)
                return diag_set(d, -ENOENT, "no operational certificate stored yet");
        if (r < 0)
                return diag_prefix(d, r, "the stored operational certificate is unreadable");

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        Diag other = {}; /* why an object at a handle is no key of ours, if one is not */
        for (size_t i = 0; i < ELEMENTSOF(handles) && !o->cert; i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
                X509 *leaf;

                Diag rd = {};

                /* One read: its own diagnosis is passed on only if the TPM
                 * could not answer (busy, unreachable). The handle being empty,
                 * or holding an object that is no key fleetid could have made,
                 * is not: the certificate's key may be at the other one. */
                r = tpm_key_read_public(tpm, handles[i], &pub, NULL, &rd);
                if (r == -ENOENT)
                        continue;
                if (r < 0 && !operational_load_failed_for_good(r))
                        return diag_set(d, r, "%s", diag_text(&rd, r));
                if (r < 0) {
                        diag_set(&other, r, "%s", diag_text(&rd, r));
                        continue;
                }
                if (certs_find_for_key(certs, pub, &leaf, NULL) < 0)
                        continue;
                if (!X509_up_ref(leaf))
                        return -ENOMEM;
                o->cert = leaf;
                o->public_key = TAKE_PTR(pub);
                o->key_handle = handles[i];
                o->other_handle = handles[1 - i];
        }
        if (!o->cert)
                return diag_set(d, -ENOKEY,
                                "the stored operational certificate belongs to neither TPM key "
                                "(0x%08x, 0x%08x)%s%s",
                                handles[0], handles[1], other.error ? "; " : "",
                                other.error ? other.text : "");

        o->chain = sk_X509_new_null();
        if (!o->chain)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *x = sk_X509_value(certs, i);

                if (x == o->cert)
                        continue;
                if (!X509_up_ref(x))
                        return -ENOMEM;
                if (!sk_X509_push(o->chain, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }
        r = cert_times(o->cert, &o->not_before, &o->not_after);
        if (r < 0)
                return diag_set(d, r, "the stored operational certificate has unreadable dates");
        *ret = TAKE_PTR(o);
        return 0;
}

int operational_save(StateStore *store, STACK_OF(X509) *chain, Diag *d) {
        return state_certs_save(store, STATE_OPERATIONAL_CERT, chain, STATE_FILE_MODE, d);
}

/* The hashes of the public keys at the two operational handles into ret ("" for
 * an empty handle); false if either could not be read (then nothing is known). */
static bool keys_at_handles(const Config *c, TpmContext *tpm, char ret[2][SHA256_TEXT_SIZE]) {
        const uint32_t handles[2] = { c->op_key_handle, c->op_spare_key_handle };

        for (size_t i = 0; i < ELEMENTSOF(handles); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
                int r;

                ret[i][0] = 0;
                r = tpm_key_read_public(tpm, handles[i], &pub, NULL, NULL);
                if (r == -ENOENT)
                        continue;
                if (r < 0 || pubkey_sha256_text(pub, ret[i]) < 0)
                        return false;
        }
        return true;
}

int operational_note_key(const Config *c, TpmContext *tpm, StateStore *store, EVP_PKEY *pub, Diag *d) {
        char keys[OPERATIONAL_KEYS_NOTED][SHA256_TEXT_SIZE], hash[SHA256_TEXT_SIZE], at[2][SHA256_TEXT_SIZE];
        char text[(OPERATIONAL_KEYS_NOTED + 1) * SHA256_TEXT_SIZE + 1] = "";
        size_t n = 0, kept = 0, from, pos = 0;
        bool known;
        Diag rd = {};
        int r;

        r = pubkey_sha256_text(pub, hash);
        if (r < 0)
                return diag_set(d, r, "cannot hash the new operational key");
        /* A record that cannot be read is replaced by one holding the new key
         * alone. That can only narrow what a reset evicts, never widen it: the
         * keys noted in it are forgotten, so a reset reports any of them still
         * in the TPM as foreign and leaves it for a person, rather than evict
         * something fleetid cannot tell is its own. And it does not stop the
         * new key, whose record matters now. */
        if (operational_keys_noted(store, keys, OPERATIONAL_KEYS_NOTED, &n, &rd) < 0)
                n = 0;
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i], hash) == 0)
                        return 0;
        /* With room for the new key, every noted key stays: one that is gone
         * matches nothing, and the TPM is not asked. Otherwise the noted keys
         * that sit at an operational handle now are kept (the one the new key
         * replaces stays there until the new one is persistent, and is kept
         * for a crash in between): a noted key at neither handle was evicted
         * or never made persistent, and cannot come back. The oldest go only
         * if the handles cannot be read. */
        known = n + 1 > OPERATIONAL_KEYS_NOTED && keys_at_handles(c, tpm, at);
        for (size_t i = 0; i < n; i++) {
                if (known && strcmp(keys[i], at[0]) != 0 && strcmp(keys[i], at[1]) != 0)
                        continue;
                memmove(keys[kept++], keys[i], SHA256_TEXT_SIZE);
        }
        from = kept + 1 > OPERATIONAL_KEYS_NOTED ? kept + 1 - OPERATIONAL_KEYS_NOTED : 0;
        for (size_t i = from; i < kept; i++)
                pos += (size_t) snprintf(text + pos, sizeof(text) - pos, "%s\n", keys[i]);
        pos += (size_t) snprintf(text + pos, sizeof(text) - pos, "%s\n", hash);
        r = state_store_save(store, STATE_KEYS_CREATED, text, pos, STATE_FILE_MODE, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot record the new operational key");
        return 0;
}

typedef struct NoteArgs {
        const Config *config;
        TpmContext *tpm;
        StateStore *store;
} NoteArgs;

static int note_before_persist(EVP_PKEY *pub, void *userdata, Diag *d) {
        NoteArgs *a = userdata;

        return operational_note_key(a->config, a->tpm, a->store, pub, d);
}

int operational_key_create(const Config *c, TpmContext *tpm, StateStore *store, KeyAlgorithm alg,
                           uint32_t handle, bool replace, EVP_PKEY **ret_pub, Diag *d) {
        NoteArgs args = { .config = c, .tpm = tpm, .store = store };
        int r;

        r = tpm_key_create_persistent_with(tpm, c->srk_handle, alg, handle, replace, note_before_persist,
                                           &args, ret_pub, d);
        if (r >= 0)
                test_crash_point(TEST_CRASH_KEY_VARIABLE, "persisted");
        return r;
}
