/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/certcheck.h"
#include "util/clock.h"
#include "crypto/csr.h"
#include "crypto/ossl-util.h"
#include "enroll/enroll.h"
#include "exchange/request.h"
#include "exchange/trust.h"
#include "identity/birth.h"
#include "identity/operational.h"
#include "store/state-certs.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-provider.h"
#include "util/timestamp.h"

void enroll_result_done(EnrollResult *r) {
        if (!r)
                return;
        X509_free(r->cert);
        trust_changes_done(&r->trust_changes);
        *r = (EnrollResult) {};
}

int enroll_check_current(const Config *c, TpmContext *tpm, StateStore *store, time_t now, X509 **ret_cert,
                         Diag *d) {
        _cleanup_(operational_identity_freep) OperationalIdentity *o = NULL;
        int r;

        r = operational_load(c, tpm, store, &o, d);
        if (r < 0)
                /* TPM trouble is an error; anything wrong with what is stored means "enroll". */
                return operational_load_failed_for_good(r) ? 0 : r;
        /* A certificate not valid yet by more than the skew is no working
         * identity: it was stored by a fleetid that trusted a server's Date, or
         * the clock went far back. Enrolling again is safe: the new certificate
         * is judged on this clock too, and the stored identity (and its key)
         * stays until one is. */
        r = cert_check_validity(o->cert, now, c->est_max_clock_skew_sec, d);
        if (r < 0)
                return 0;
        if (ret_cert) {
                if (!X509_up_ref(o->cert))
                        return -ENOMEM;
                *ret_cert = o->cert;
        }
        return 1;
}

/* Where the new operational key goes (*ret_handle) and which key to evict once
 * the new certificate is stored (*ret_old, 0 if none). Without an old identity:
 * operational.key_handle. With one (expired, since enrollment runs only
 * without a valid identity): the other handle of the pair if renew.new_key, so
 * the new identity gets a new key and the old key stays until the new
 * certificate is stored; else its own key again (and *ret_policy keeps to its
 * type). TPM trouble is an error: a
 * guess here could reuse the old key or strand it. */
static int operational_key_handle_for_enrollment(const Config *c, TpmContext *tpm, StateStore *store,
                                                 uint32_t *ret_handle, uint32_t *ret_old,
                                                 KeyPolicy *ret_policy, Diag *d) {
        _cleanup_(operational_identity_freep) OperationalIdentity *old = NULL;
        int r;

        *ret_handle = c->op_key_handle;
        *ret_old = 0;
        *ret_policy = exchange_key_policy(c, NULL, NULL);
        r = operational_load(c, tpm, store, &old, d);
        if (r < 0) {
                if (!operational_load_failed_for_good(r))
                        return r;
                diag_clear(d); /* nothing usable stored: a fresh start */
                return 0;
        }
        if (!c->renew_new_key) {
                /* Its own key again: only that key's type can be honoured. */
                *ret_handle = old->key_handle;
                *ret_policy = exchange_key_policy(c, old->public_key, RENEW_KEEPS_KEY);
                return 0;
        }
        *ret_handle = old->other_handle;
        *ret_old = old->key_handle;
        return 0;
}

/* Reuses the pending operational key at the handle if it is of the chosen
 * type, else creates it. When the server asked for no key type this time
 * (/csrattrs silent, or unusable), a pending key of another allowed type is
 * reused as it is and the choice follows it: after a 202 the repeated request
 * must be the same (RFC 7030 4.2.3), and a flaky /csrattrs must not cost a key. */
static int operational_key_prepare(const Config *c, TpmContext *tpm, StateStore *store, uint32_t handle,
                                   unsigned reuse_allowed, KeyChoice *choice, EVP_PKEY **ret_pub,
                                   bool *ret_created, Diag *d) {
        uint32_t attributes;
        KeyAlgorithm pending;
        int r;

        *ret_created = false;
        r = tpm_key_read_public(tpm, handle, ret_pub, &attributes, d);
        if (r >= 0 && tpm_key_check_attributes(attributes, NULL) >= 0) {
                pending = key_algorithm_of_pkey(*ret_pub);
                if (pending == choice->algorithm)
                        return 0;
                if (pending != _KEY_ALG_INVALID && (reuse_allowed & KEY_ALG_BIT(pending))) {
                        choice->algorithm = pending;
                        choice->digest = key_algorithm_default_digest(pending);
                        return 0;
                }
        }
        if (r >= 0) {
                /* Something that is not ours, or a key of another type than the
                 * server asks for now, sits there: make room for the right key. */
                EVP_PKEY_free(*ret_pub);
                *ret_pub = NULL;
                r = operational_key_create(c, tpm, store, choice->algorithm, handle, true, ret_pub, d);
        } else if (r == -ENOENT)
                r = operational_key_create(c, tpm, store, choice->algorithm, handle, false, ret_pub, d);
        if (r < 0)
                return r;
        *ret_created = true;
        return 0;
}

/* A public copy of the birth certificate, so status tools need no TPM access. */
static int save_birth_copy(StateStore *store, const BirthIdentity *birth, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = X509_chain_up_ref(birth->chain);

        if (!certs || !X509_up_ref(birth->cert))
                return -ENOMEM;
        if (!sk_X509_unshift(certs, birth->cert)) {
                X509_free(birth->cert);
                return -ENOMEM;
        }
        return state_certs_save(store, STATE_BIRTH_CERT, certs, STATE_FILE_MODE, d);
}

/* Copies the entries of type nid from `from` into `to`, at position loc (-1: at the end). */
static int name_copy_entries(X509_NAME *to, const X509_NAME *from, int nid, int loc) {
        for (int i = -1; (i = X509_NAME_get_index_by_NID(from, nid, i)) >= 0;)
                if (!X509_NAME_add_entry(to, X509_NAME_get_entry(from, i), loc < 0 ? -1 : loc++, 0))
                        return -ENOMEM;
        return 0;
}

/* An expired birth certificate would be refused by any EST server: it is not
 * sent. Not valid yet is the clock's business (fleetidd waits for the clock
 * before an attempt: clock_check() against the copy's notBefore). */
static int check_birth_validity(const Config *c, const BirthIdentity *birth, time_t now, Diag *d) {
        _cleanup_free_ char *serial = NULL, *issuer = NULL;
        char until[TIMESTAMP_MAX] = "?", at[TIMESTAMP_MAX];
        time_t nb, na;
        Diag vd = {};
        int r;

        r = cert_check_validity(birth->cert, now, c->est_max_clock_skew_sec, &vd);
        if (r != -ESTALE)
                return 0;
        (void) cert_serial_string(birth->cert, &serial);
        (void) cert_issuer_string(birth->cert, &issuer);
        if (cert_times(birth->cert, &nb, &na) >= 0)
                timestamp_utc(na, until);
        return diag_set(d, -EKEYEXPIRED,
                        "the birth certificate (serial %s, issuer %s, from the %s) expired on %s, and the clock "
                        "says %s: an EST server would refuse it, so it is not sent. If the clock is right, the "
                        "device needs a new birth certificate from its manufacturer (fleetid-provision "
                        "install-cert); if the clock is ahead, setting it right ends this",
                        strempty(serial), strempty(issuer), birth->source, until, timestamp_utc(now, at));
}

/* The birth certificate's subject, or the configured CN and serialNumber, each
 * taken from the birth certificate when the config leaves it empty: the CA binds
 * the request to the device by the birth certificate's serialNumber. */
static int csr_subject(const Config *c, const BirthIdentity *birth, X509_NAME **ret, Diag *d) {
        const X509_NAME *b = X509_get_subject_name(birth->cert);
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        int r;

        if (!c->subject_cn && !c->subject_serial) {
                *ret = X509_NAME_dup(b);
                return *ret ? 0 : -ENOMEM;
        }
        r = csr_subject_new(c->subject_cn, c->subject_serial, &name, d);
        if (r < 0)
                return r;
        r = c->subject_cn ? 0 : name_copy_entries(name, b, NID_commonName, 0);
        if (r >= 0 && !c->subject_serial)
                r = name_copy_entries(name, b, NID_serialNumber, -1);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(name);
        return 0;
}

int enroll_first(const Config *c, TpmContext *tpm, StateStore *store, const char *password, time_t now,
                 EnrollResult *ret, Diag *d) {
        _cleanup_(birth_identity_freep) BirthIdentity *birth = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *birth_key = NULL, *op_key = NULL, *op_pub = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
        _cleanup_(est_client_freep) EstClient *client = NULL;
        _cleanup_(exchange_result_done) ExchangeResult res = {};
        TrustSet trust = {};
        KeyPolicy policy;
        CsrAttrs attrs = {};
        Diag unusable = {};
        uint32_t old_handle = 0;
        int r;

        *ret = (EnrollResult) {};

        r = birth_identity_load_from(tpm, c, store, true, &birth, d);
        if (r < 0)
                return r;
        ret->birth_recreated = birth->recreated;
        ret->birth_template = birth->recreated_from;
        ret->birth_source = birth->source;
        ret->birth_read = true;
        ret->birth_da_protected = birth->da_protected;
        r = save_birth_copy(store, birth, d);
        if (r < 0)
                return r;
        r = check_birth_validity(c, birth, now, d);
        if (r < 0) {
                ret->birth_expired = r == -EKEYEXPIRED;
                return r;
        }

        r = trust_load_anchors(c, store, &trust, d);
        if (r < 0)
                return r;
        ret->trust_bootstrapped = trust.bootstrapped;

        r = tpm_provider_load_key(tpm, c->birth_key_handle, &birth_key, d);
        if (r < 0)
                goto out;

        EstClientOptions o = exchange_client_options(c, trust.server_anchors, birth_key, birth->cert,
                                                     birth->chain, password);
        r = est_client_new(&o, &client, d);
        if (r < 0)
                goto out;

        /* The EST CA, fetched on the enrollment connection itself: one TLS handshake. */
        r = trust_refresh_ca(client, store, now, &trust, d);
        if (r < 0 && est_client_certificate_refused(client)) {
                const char *alert = est_client_certificate_refused(client);

                if (!est_client_has_basic(client)) {
                        r = diag_prefix(d, r,
                                        "the EST server refused the birth certificate in the TLS handshake "
                                        "(alert %s); est.username and est.password_file would let fleetid "
                                        "enroll with HTTP Basic instead",
                                        alert);
                        goto out;
                }
                /* RFC 7030 3.2.3: HTTP-based client authentication, without a
                 * client certificate the server does not want. */
                ret->birth_refused = alert;
                client = est_client_free(client);
                o.client_key = NULL;
                o.client_cert = NULL;
                o.client_chain = NULL;
                diag_clear(d);
                r = est_client_new(&o, &client, d);
                if (r < 0)
                        goto out;
                r = trust_refresh_ca(client, store, now, &trust, d);
        }
        if (r < 0) {
                ret->hint = trust.hint; /* a busy server's Retry-After */
                goto out;
        }
        ret->ca_certs = (unsigned) sk_X509_num(trust.ca_certs);
        ret->trust_changes = trust.changes;
        trust.changes = (TrustChanges) {};

        r = operational_key_handle_for_enrollment(c, tpm, store, &ret->key_handle, &old_handle, &policy, d);
        if (r < 0)
                goto out;
        r = exchange_choose_key(client, tpm, &policy, &attrs, &ret->key_choice, &unusable, d);
        ret->csrattrs.why = unusable;
        if (r < 0)
                goto out;
        /* Nothing asked about the key: a pending key of an allowed type is kept. */
        r = operational_key_prepare(c, tpm, store, ret->key_handle,
                                    ret->key_choice.asked[0] ? 0 : policy.allowed, &ret->key_choice, &op_pub,
                                    &ret->key_created, d);
        if (r < 0)
                goto out;
        r = tpm_provider_load_key(tpm, ret->key_handle, &op_key, d);
        if (r < 0)
                goto out;

        r = csr_subject(c, birth, &subject, d);
        if (r < 0)
                goto out;
        ExchangeRequest req = {
                .csr = { .subject = subject, .key = op_key, .digest = ret->key_choice.digest },
                .attrs = &attrs,
                .attrs_unusable = unusable.error < 0 ? &unusable : NULL,
                .public_key = op_pub,
                .ca_certs = trust.ca_certs,
                .binding = c->est_channel_binding,
                .max_clock_skew = c->est_max_clock_skew_sec,
        };
        r = exchange_request(client, &req, now, &res, d);
        ret->hint = res.hint;
        ret->csrattrs = res.csrattrs;
        if (r < 0)
                goto out;
        ret->binding = res.bound;

        r = operational_save(store, res.chain, d);
        if (r < 0)
                goto out;
        /* The new identity is stored: only now may the old key go. */
        if (old_handle)
                ret->old_key_kept = tpm_key_evict(tpm, old_handle, NULL) < 0;

        ret->cert = sk_X509_value(res.chain, 0);
        X509_up_ref(ret->cert);
        /* RFC 7030 lets the CA change what was asked for; worth telling, not refusing. */
        ret->subject_changed = X509_NAME_cmp(subject, X509_get_subject_name(ret->cert)) != 0;
        r = 0;
out:
        trust_set_done(&trust);
        return r;
}
