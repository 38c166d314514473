/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "est/csrattrs.h"

static const struct {
        int nid;
        const char *digest;
} digest_oids[] = {
        { NID_ecdsa_with_SHA256, "SHA256" },       { NID_ecdsa_with_SHA384, "SHA384" },
        { NID_ecdsa_with_SHA512, "SHA512" },       { NID_sha256WithRSAEncryption, "SHA256" },
        { NID_sha384WithRSAEncryption, "SHA384" }, { NID_sha512WithRSAEncryption, "SHA512" },
};

static void note_oid(CsrAttrs *a, const ASN1_OBJECT *obj) {
        int nid = OBJ_obj2nid(obj);

        if (nid == NID_pkcs9_challengePassword) {
                a->challenge_password = true;
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(digest_oids); i++)
                if (digest_oids[i].nid == nid) {
                        a->digest = digest_oids[i].digest;
                        return;
                }
        a->unsupported++;
}

int csrattrs_parse(const uint8_t *der, size_t len, CsrAttrs *ret, Diag *d) {
        ASN1_SEQUENCE_ANY *seq;
        const unsigned char *p = der;
        CsrAttrs a = {};
        int n;

        if (len == 0) {
                *ret = a;
                return 0;
        }
        seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long) len);
        if (!seq || p != der + len) {
                sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
                return diag_set_ssl(d, -EBADMSG, "/csrattrs response is not a DER SEQUENCE");
        }
        n = sk_ASN1_TYPE_num(seq);
        if (n > CSRATTRS_MAX_ITEMS) {
                sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
                return diag_set(d, -EBADMSG, "/csrattrs lists %d items, more than %d", n, CSRATTRS_MAX_ITEMS);
        }
        for (int i = 0; i < n; i++) {
                ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);

                if (t->type == V_ASN1_OBJECT)
                        note_oid(&a, t->value.object);
                else if (t->type == V_ASN1_SEQUENCE) {
                        /* Attribute ::= SEQUENCE { type OID, values SET } */
                        const unsigned char *q = t->value.sequence->data;
                        ASN1_SEQUENCE_ANY *attr = d2i_ASN1_SEQUENCE_ANY(NULL, &q, t->value.sequence->length);

                        if (attr && sk_ASN1_TYPE_num(attr) >= 1 &&
                            sk_ASN1_TYPE_value(attr, 0)->type == V_ASN1_OBJECT)
                                note_oid(&a, sk_ASN1_TYPE_value(attr, 0)->value.object);
                        else
                                a.unsupported++;
                        sk_ASN1_TYPE_pop_free(attr, ASN1_TYPE_free);
                } else
                        a.unsupported++;
        }
        sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
        *ret = a;
        return 0;
}
