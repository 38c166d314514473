/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "exchange/trust.h"
#include "est/est.h"
#include "store/state-certs.h"
#include "util/timestamp.h"

void trust_set_done(TrustSet *t) {
        if (!t)
                return;
        OSSL_STACK_OF_X509_free(t->server_anchors);
        OSSL_STACK_OF_X509_free(t->adopted);
        OSSL_STACK_OF_X509_free(t->ca_certs);
        trust_changes_done(&t->changes);
        *t = (TrustSet) {};
}

static bool contains(STACK_OF(X509) *sk, X509 *x) {
        for (int i = 0; i < sk_X509_num(sk); i++)
                if (X509_cmp(sk_X509_value(sk, i), x) == 0)
                        return true;
        return false;
}

static int push_copy(STACK_OF(X509) *sk, X509 *x) {
        if (contains(sk, x))
                return 0;
        if (!X509_up_ref(x))
                return -ENOMEM;
        if (!sk_X509_push(sk, x)) {
                X509_free(x);
                return -ENOMEM;
        }
        return 0;
}

/* The same certificates, whatever the order (both without repeats). NULL is empty. */
static bool same_set(STACK_OF(X509) *a, STACK_OF(X509) *b) {
        if (sk_X509_num(a) != sk_X509_num(b) && (sk_X509_num(a) > 0 || sk_X509_num(b) > 0))
                return false;
        for (int i = 0; i < sk_X509_num(a); i++)
                if (!contains(b, sk_X509_value(a, i)))
                        return false;
        return true;
}

/* notAfter is inclusive (RFC 5280); unreadable dates count as expired. */
static bool expired(X509 *x, time_t now) {
        time_t not_after;

        return cert_times(x, NULL, &not_after) < 0 || now > not_after;
}

/* Names itself as issuer (subject, key identifiers, keyCertSign) and is a CA.
 * The signature is not looked at here. */
static bool self_issued_ca(X509 *x) {
        return cert_is_ca(x) && X509_check_issued(x, x) == X509_V_OK;
}

/* Whether x's signature verifies with its own public key, computed by the
 * default (software) provider (a guarantee kept from when the process
 * preferred the tpm2-openssl provider for every signature). */
static bool self_signature_verifies(X509 *x) {
        _cleanup_openssl_free_ unsigned char *der = NULL;
        _cleanup_(X509_freep) X509 *y = NULL;
        const unsigned char *p;
        bool ok;
        int n;

        n = i2d_X509(x, &der);
        if (n <= 0)
                return false;
        y = X509_new_ex(NULL, "provider=default");
        p = der;
        if (!y || !d2i_X509(&y, &p, n))
                return false;
        ERR_set_mark();
        ok = X509_verify(y, X509_get0_pubkey(y)) == 1;
        ERR_pop_to_mark();
        return ok;
}

static const char *describe(X509 *x, char **subject, char **fingerprint) {
        if (cert_subject_string(x, subject) < 0 || cert_fingerprint(x, fingerprint) < 0)
                return "(unreadable certificate)";
        return *subject;
}

/* RFC 7030 4.1.3 / RFC 4210 4.4: may the self-signed `n` (NewWithNew) become an
 * anchor? Only if `cacerts` holds a CA certificate for the same subject and key
 * (NewWithOld) that one of `roots` signed directly, valid at `now`. */
static int check_link(X509 *n, STACK_OF(X509) *cacerts, STACK_OF(X509) *roots, time_t now, Diag *d) {
        _cleanup_free_ char *subject = NULL, *fp = NULL;
        const char *what = describe(n, &subject, &fp);
        Diag why = {};
        bool linked = false;
        int r;

        if (!self_signature_verifies(n))
                return diag_set(d, -EKEYREJECTED,
                                "the root CA certificate %s (%s) in /cacerts is not adopted: its self-signature "
                                "does not verify",
                                what, strempty(fp));
        for (int i = 0; i < sk_X509_num(cacerts); i++) {
                X509 *l = sk_X509_value(cacerts, i);

                if (l == n || X509_NAME_cmp(X509_get_subject_name(l), X509_get_subject_name(n)) != 0 ||
                    X509_PUBKEY_eq(X509_get_X509_PUBKEY(l), X509_get_X509_PUBKEY(n)) != 1 ||
                    X509_cmp(l, n) == 0)
                        continue;
                if (!cert_is_ca(l)) {
                        diag_set(&why, -EKEYREJECTED, "a certificate for its key is not a CA certificate");
                        continue;
                }
                linked = true;
                /* No intermediates: the old root itself must vouch for the new key. */
                r = cert_verify_chain(l, NULL, roots, now, false, &why);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0)
                        return 0;
        }
        if (!linked)
                return diag_set(d, -EKEYREJECTED,
                                "the root CA certificate %s (%s) in /cacerts is not adopted: no NewWithOld "
                                "certificate (its subject and key, signed by a trusted root) links it to a "
                                "trusted root (RFC 7030 4.1.3)%s%s",
                                what, strempty(fp), why.error ? "; " : "", why.error ? why.text : "");
        return diag_set(d, -EKEYREJECTED,
                        "the root CA certificate %s (%s) in /cacerts is not adopted: its NewWithOld "
                        "certificate does not verify against a trusted root: %s",
                        what, strempty(fp), why.text);
}

int trust_select_ca_certs(STACK_OF(X509) *cacerts, STACK_OF(X509) *anchors, time_t now, STACK_OF(X509) **ret,
                          Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *out = sk_X509_new_null();
        int matched = 0, r;

        if (!out)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(anchors); i++)
                if ((r = push_copy(out, sk_X509_value(anchors, i))) < 0)
                        return r;
        for (int i = 0; i < sk_X509_num(cacerts); i++) {
                X509 *x = sk_X509_value(cacerts, i);

                if (!cert_is_ca(x))
                        continue;
                if (cert_verify_chain(x, cacerts, anchors, now, false, NULL) < 0)
                        continue;
                if ((r = push_copy(out, x)) < 0)
                        return r;
                matched++;
        }
        if (matched == 0)
                return diag_set(d, -EKEYREJECTED,
                                "no CA certificate in the /cacerts response chains to "
                                "the configured trust anchors");
        *ret = TAKE_PTR(out);
        return 0;
}

static int all_expired(STACK_OF(X509) *anchors, Diag *d) {
        time_t latest = 0, not_after;
        char when[TIMESTAMP_MAX] = "?";

        for (int i = 0; i < sk_X509_num(anchors); i++)
                if (cert_times(sk_X509_value(anchors, i), NULL, &not_after) >= 0 && not_after > latest)
                        latest = not_after;
        if (latest > 0)
                timestamp_utc(latest, when);
        return diag_set(d, -EKEYEXPIRED,
                        "every EST trust anchor has expired (the last on %s); the EST server can no longer be "
                        "trusted: configure a current root in est.trust_anchors",
                        when);
}

static STACK_OF(X509) *stack_copy(STACK_OF(X509) *in) {
        STACK_OF(X509) *out = sk_X509_new_null();

        for (int i = 0; out && i < sk_X509_num(in); i++)
                if (push_copy(out, sk_X509_value(in, i)) < 0) {
                        OSSL_STACK_OF_X509_free(out);
                        return NULL;
                }
        return out;
}

int trust_apply_cacerts(const TrustSet *t, STACK_OF(X509) *cacerts, STACK_OF(X509) *previous_ca, time_t now,
                        TrustSet *ret, Diag *d) {
        _cleanup_(trust_set_done) TrustSet n = {};
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *in_force = NULL, *roots = NULL, *selection = NULL;
        TrustChanges *ch = &n.changes;
        int r;

        in_force = sk_X509_new_null();
        roots = sk_X509_new_null();
        n.server_anchors = sk_X509_new_null();
        n.adopted = sk_X509_new_null();
        ch->adopted = sk_X509_new_null();
        ch->retired = sk_X509_new_null();
        ch->refused = sk_X509_new_null();
        if (!in_force || !roots || !n.server_anchors || !n.adopted || !ch->adopted || !ch->retired ||
            !ch->refused)
                return -ENOMEM;

        /* Retirement: expired adopted anchors go; an expired seed stays a server
         * anchor (it cannot be removed from its file) but is no longer in force. */
        for (int i = 0; i < sk_X509_num(t->adopted); i++) {
                X509 *a = sk_X509_value(t->adopted, i);

                r = push_copy(expired(a, now) ? ch->retired : n.adopted, a);
                if (r < 0)
                        return r;
        }
        for (int i = 0; i < sk_X509_num(t->server_anchors); i++) {
                X509 *a = sk_X509_value(t->server_anchors, i);

                if (contains(t->adopted, a) && !contains(n.adopted, a))
                        continue;
                if ((r = push_copy(n.server_anchors, a)) < 0)
                        return r;
                if (expired(a, now))
                        continue;
                if ((r = push_copy(in_force, a)) < 0)
                        return r;
                if (self_issued_ca(a) && (r = push_copy(roots, a)) < 0)
                        return r;
        }
        if (sk_X509_num(in_force) == 0)
                return all_expired(t->server_anchors, d);
        for (int i = 0; i < sk_X509_num(previous_ca); i++) {
                X509 *p = sk_X509_value(previous_ca, i);

                if (self_issued_ca(p) && expired(p, now) && (r = push_copy(ch->retired, p)) < 0)
                        return r;
        }

        /* Adoption: new, unexpired self-signed CA certificates in /cacerts. */
        for (int i = 0; i < sk_X509_num(cacerts); i++) {
                X509 *x = sk_X509_value(cacerts, i);

                if (!self_issued_ca(x) || contains(t->server_anchors, x) || expired(x, now))
                        continue;
                r = check_link(x, cacerts, roots, now,
                               sk_X509_num(ch->refused) == 0 ? &ch->refused_why : NULL);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if ((r = push_copy(ch->refused, x)) < 0)
                                return r;
                        continue;
                }
                if ((r = push_copy(ch->adopted, x)) < 0 || (r = push_copy(n.adopted, x)) < 0 ||
                    (r = push_copy(n.server_anchors, x)) < 0 || (r = push_copy(in_force, x)) < 0)
                        return r;
        }

        r = trust_select_ca_certs(cacerts, in_force, now, &selection, d);
        if (r < 0)
                return r;
        ch->ca_first = !previous_ca;
        ch->ca_changed = !previous_ca || !same_set(previous_ca, selection);
        if (ch->ca_changed)
                n.ca_certs = TAKE_PTR(selection);
        else if (!(n.ca_certs = stack_copy(previous_ca)))
                return -ENOMEM;
        ch->adopted_changed = !same_set(t->adopted, n.adopted);
        n.bootstrapped = t->bootstrapped;

        *ret = n;
        n = (TrustSet) {};
        return 0;
}

static int bootstrap_anchor(const Config *c, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_(est_client_freep) EstClient *client = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *anchors = NULL;
        uint8_t fp[CERT_FINGERPRINT_SIZE];
        X509 *found;
        int r;

        r = fingerprint_parse(c->est_bootstrap_fingerprint, fp);
        if (r < 0)
                return diag_set(d, r, "est.bootstrap_fingerprint is not a sha256 fingerprint");

        /* RFC 7030 4.1.1: an unauthenticated /cacerts, carrying no client
         * certificate and no password, whose answer is then checked out of band. */
        EstClientOptions o = {
                .url = c->est_url,
                .label = c->est_label,
                .timeout_sec = c->est_timeout_sec,
                .connect_timeout_sec = c->est_connect_timeout_sec,
                .max_response_bytes = c->est_max_response_bytes,
        };
        r = est_client_new(&o, &client, d);
        if (r < 0)
                return r;
        r = est_fetch_cacerts(client, &cacerts, NULL, d);
        if (r < 0)
                return diag_prefix(d, r, "bootstrap /cacerts failed");
        r = certs_find_by_fingerprint(cacerts, fp, &found);
        if (r < 0)
                return diag_set(d, -EKEYREJECTED,
                                "no certificate in the server's /cacerts has the "
                                "configured bootstrap fingerprint %s; trusting nothing",
                                c->est_bootstrap_fingerprint);
        if (!cert_is_ca(found))
                return diag_set(d, -EKEYREJECTED,
                                "the certificate with the bootstrap fingerprint is not "
                                "a CA certificate; trusting nothing");
        /* Chains are always verified to a root (no partial chains), so the
         * fingerprint must name the root, not an intermediate. */
        if (X509_check_issued(found, found) != X509_V_OK)
                return diag_set(d, -EKEYREJECTED,
                                "the certificate with the bootstrap fingerprint is not a "
                                "self-signed root CA; configure the fingerprint of the EST CA's root");
        anchors = sk_X509_new_null();
        if (!anchors)
                return -ENOMEM;
        r = push_copy(anchors, found);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(anchors);
        return 0;
}

static int load_anchors_file(const char *path, STACK_OF(X509) **ret, Diag *d) {
        int r = certs_load_pem_file(path, ret, d);

        if (r < 0)
                return diag_prefix(d, r, "cannot load the trust anchors from %s", path);
        return 0;
}

/* Certificates from a file in the state directory; -ENOENT if there is none. */
static int load_state_certs(StateStore *store, const char *name, STACK_OF(X509) **ret, Diag *d) {
        int r = state_certs_load(store, name, ret, d);

        if (r < 0 && r != -ENOENT)
                return diag_prefix(d, r, "cannot load the trust anchors");
        return r;
}

/* The adopted anchors as stored: self-signed CA certificates only. */
static int load_adopted(StateStore *store, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL, *out = sk_X509_new_null();
        int r;

        if (!out)
                return -ENOMEM;
        r = load_state_certs(store, STATE_ADOPTED_ANCHORS, &certs, d);
        if (r < 0 && r != -ENOENT)
                return diag_prefix(d, r,
                                   "the adopted root CA certificates are unusable; remove %s/%s to go "
                                   "back to the configured anchors alone",
                                   state_store_path(store), STATE_ADOPTED_ANCHORS);
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *x = sk_X509_value(certs, i);

                if (self_issued_ca(x) && (r = push_copy(out, x)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

int trust_load_anchors(const Config *c, StateStore *store, TrustSet *ret, Diag *d) {
        _cleanup_(trust_set_done) TrustSet t = {};
        int r;

        if (c->est_trust_anchors)
                r = load_anchors_file(c->est_trust_anchors, &t.server_anchors, d);
        else {
                r = load_state_certs(store, STATE_TRUST_ANCHORS, &t.server_anchors, d);
                if (r == -ENOENT) {
                        r = bootstrap_anchor(c, &t.server_anchors, d);
                        t.bootstrapped = r >= 0;
                }
        }
        if (r < 0)
                return r;
        r = load_adopted(store, &t.adopted, d);
        if (r < 0)
                return r;
        for (int i = 0; i < sk_X509_num(t.adopted); i++)
                if ((r = push_copy(t.server_anchors, sk_X509_value(t.adopted, i))) < 0)
                        return r;
        *ret = t;
        t = (TrustSet) {};
        return 0;
}

static int save_certs(StateStore *store, const char *name, STACK_OF(X509) *certs, Diag *d) {
        if (sk_X509_num(certs) == 0)
                return state_store_remove(store, name, d);
        return state_certs_save(store, name, certs, STATE_FILE_MODE, d);
}

int trust_refresh_ca(EstClient *client, StateStore *store, time_t now, TrustSet *t, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *cacerts = NULL, *previous = NULL;
        _cleanup_(trust_set_done) TrustSet n = {};
        int r;

        r = est_fetch_cacerts(client, &cacerts, &t->hint, d);
        if (r < 0)
                return r;
        /* An unreadable stored set is replaced, as if there were none. */
        if (load_state_certs(store, STATE_TRUST_ANCHORS, &previous, NULL) < 0)
                previous = NULL;
        r = trust_apply_cacerts(t, cacerts, previous, now, &n, d);
        if (r < 0)
                return r;
        /* Adopted anchors first: a crash in between leaves a new anchor that the
         * next refresh puts into the EST CA set, never a set without its anchor. */
        if (n.changes.adopted_changed) {
                r = save_certs(store, STATE_ADOPTED_ANCHORS, n.adopted, d);
                if (r < 0)
                        return diag_prefix(d, r, "cannot store the adopted root CA certificates");
        }
        if (n.changes.ca_changed) {
                r = save_certs(store, STATE_TRUST_ANCHORS, n.ca_certs, d);
                if (r < 0)
                        return diag_prefix(d, r, "cannot store the EST CA certificates");
        }
        trust_set_done(t);
        *t = n;
        n = (TrustSet) {};
        return 0;
}
