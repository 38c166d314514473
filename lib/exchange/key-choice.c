/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/objects.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "exchange/key-choice.h"
#include "tpm/tpm-key.h"

const char *key_algorithm_default_digest(KeyAlgorithm a) {
        return a == KEY_ALG_ECC_P384 || a == KEY_ALG_RSA_3072 ? "SHA384" : "SHA256";
}

void key_choice_note(KeyChoice *c, const char *fmt, ...) {
        size_t used = strlen(c->why);
        va_list ap;

        if (used > 0 && used + 2 < sizeof(c->why)) {
                memcpy(c->why + used, "; ", 3);
                used += 2;
        }
        if (used + 1 >= sizeof(c->why))
                return;
        va_start(ap, fmt);
        vsnprintf(c->why + used, sizeof(c->why) - used, fmt, ap);
        va_end(ap);
}

/* The first allowed key of a family (EC or RSA), preferring the fallback. */
static KeyAlgorithm first_allowed(const KeyPolicy *p, KeyAlgorithm a, KeyAlgorithm b) {
        if (p->fallback == a || p->fallback == b)
                return p->fallback;
        if (p->allowed & KEY_ALG_BIT(a))
                return a;
        if (p->allowed & KEY_ALG_BIT(b))
                return b;
        return a; /* refused below, as not allowed */
}

/* The key asked for as one of fleetid's algorithms; _KEY_ALG_INVALID (with a
 * note) if fleetid makes no such key; the fallback if nothing was asked. */
static KeyAlgorithm asked_key(const CsrAttrs *a, const KeyPolicy *p, KeyChoice *c) {
        int key_nid = a->key_nid != NID_undef ? a->key_nid : a->signature_key_nid;

        switch (key_nid) {
        case NID_undef:
                return p->fallback;
        case NID_X9_62_id_ecPublicKey:
                if (a->curve_nid == NID_undef)
                        return first_allowed(p, KEY_ALG_ECC_P256, KEY_ALG_ECC_P384);
                if (a->curve_nid == NID_X9_62_prime256v1)
                        return KEY_ALG_ECC_P256;
                if (a->curve_nid == NID_secp384r1)
                        return KEY_ALG_ECC_P384;
                key_choice_note(c, "fleetid makes EC keys on P-256 and P-384 only");
                return _KEY_ALG_INVALID;
        case NID_rsaEncryption:
                if (a->rsa_bits == 0)
                        return first_allowed(p, KEY_ALG_RSA_2048, KEY_ALG_RSA_3072);
                if (a->rsa_bits == 2048)
                        return KEY_ALG_RSA_2048;
                if (a->rsa_bits == 3072)
                        return KEY_ALG_RSA_3072;
                key_choice_note(c, "fleetid makes RSA keys of 2048 and 3072 bits only");
                return _KEY_ALG_INVALID;
        default:
                key_choice_note(c, "fleetid makes no %s keys", OBJ_nid2sn(key_nid));
                return _KEY_ALG_INVALID;
        }
}

static void describe_request(const CsrAttrs *a, KeyChoice *c) {
        const char *key = a->key_name[0]         ? a->key_name
                          : a->signature_key_nid ? OBJ_nid2sn(a->signature_key_nid)
                                                 : NULL;

        if (key && a->digest_name[0])
                snprintf(c->asked, sizeof(c->asked), "key %s, hash %s", key, a->digest_name);
        else if (key)
                snprintf(c->asked, sizeof(c->asked), "key %s", key);
        else if (a->digest_name[0])
                snprintf(c->asked, sizeof(c->asked), "hash %s", a->digest_name);
}

void key_choice_decide(const CsrAttrs *a, const KeyPolicy *p, KeyChoice *ret) {
        KeyChoice c = {};
        KeyAlgorithm alg;

        describe_request(a, &c);
        snprintf(c.ignored, sizeof(c.ignored), "%s", a->unsupported_names);
        alg = asked_key(a, p, &c);
        if (alg != _KEY_ALG_INVALID && !(p->allowed & KEY_ALG_BIT(alg))) {
                key_choice_note(&c, "%s %s", key_algorithm_to_string(alg), p->refusal);
                alg = _KEY_ALG_INVALID;
        }
        c.algorithm = alg != _KEY_ALG_INVALID ? alg : p->fallback;

        if (a->digest)
                c.digest = a->digest;
        else {
                if (a->digest_name[0])
                        key_choice_note(&c, "fleetid signs with SHA256, SHA384 or SHA512 only");
                c.digest = key_algorithm_default_digest(c.algorithm);
        }
        *ret = c;
}

int key_choice_resolve(TpmContext *tpm, const CsrAttrs *a, const KeyPolicy *p, KeyChoice *ret, Diag *d) {
        Diag why = {};
        KeyChoice c;
        int r;

        key_choice_decide(a, p, &c);
        if (c.algorithm != p->fallback || !streq_ptr(c.digest, key_algorithm_default_digest(p->fallback))) {
                r = tpm_key_test(tpm, c.algorithm, c.digest, &why);
                if (r == -EOPNOTSUPP) {
                        key_choice_note(&c, "%s", diag_text(&why, r));
                        c.algorithm = p->fallback;
                        c.digest = key_algorithm_default_digest(p->fallback);
                } else if (r < 0)
                        return diag_set(d, r, "%s", diag_text(&why, r));
        }
        *ret = c;
        return 0;
}
