/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "est/csrattrs.h"

#define TAG_INTEGER 0x02
#define TAG_OID 0x06
#define TAG_SEQUENCE 0x30
#define TAG_SET 0x31
#define RSA_BITS_MAX 16384

/* A stretch of DER not yet read. */
typedef struct DerSpan {
        const uint8_t *p;
        size_t len;
} DerSpan;

/* Takes one TLV off the front of in: its tag, its value and the whole TLV.
 * Strict DER: one-byte tags, definite and minimal lengths of at most 3 bytes
 * (nothing here comes near 16 MiB), and the value inside what is left. */
static int der_take(DerSpan *in, uint8_t *ret_tag, DerSpan *ret_value, DerSpan *ret_tlv) {
        size_t hdr = 2, n;

        if (in->len < 2 || (in->p[0] & 0x1f) == 0x1f)
                return -EBADMSG;
        n = in->p[1];
        if (n & 0x80) {
                size_t k = n & 0x7f;

                /* 0x80 is BER's indefinite length; more than 3 bytes is absurd here. */
                if (k == 0 || k > 3 || in->len < 2 + k || in->p[2] == 0)
                        return -EBADMSG;
                n = 0;
                for (size_t i = 0; i < k; i++)
                        n = n << 8 | in->p[2 + i];
                if (n < 0x80) /* the short form would have done */
                        return -EBADMSG;
                hdr += k;
        }
        if (n > in->len - hdr)
                return -EBADMSG;
        *ret_tag = in->p[0];
        *ret_value = (DerSpan) { in->p + hdr, n };
        if (ret_tlv)
                *ret_tlv = (DerSpan) { in->p, hdr + n };
        in->p += hdr + n;
        in->len -= hdr + n;
        return 0;
}

/* An OBJECT IDENTIFIER TLV as an ASN1_OBJECT (OpenSSL checks the encoding). */
static ASN1_OBJECT *der_oid(const DerSpan *tlv) {
        const unsigned char *q = tlv->p;
        ASN1_OBJECT *o = d2i_ASN1_OBJECT(NULL, &q, (long) tlv->len);

        if (o && q != tlv->p + tlv->len) {
                ASN1_OBJECT_free(o);
                return NULL;
        }
        return o;
}

/* A positive DER INTEGER of at most 3 value bytes, minimally encoded. */
static int der_small_uint(const DerSpan *v, unsigned *ret) {
        unsigned n = 0;

        if (v->len == 0 || v->len > 3 || (v->p[0] & 0x80) || (v->len > 1 && v->p[0] == 0 && !(v->p[1] & 0x80)))
                return -EBADMSG;
        for (size_t i = 0; i < v->len; i++)
                n = n << 8 | v->p[i];
        *ret = n;
        return 0;
}

static void append_name(char *buf, size_t size, const char *name) {
        size_t used = strlen(buf);

        if (used + 1 < size)
                snprintf(buf + used, size - used, "%s%s", used ? ", " : "", name);
}

static void note_unsupported(CsrAttrs *a, const char *name) {
        a->unsupported++;
        append_name(a->unsupported_names, sizeof(a->unsupported_names), name);
}

static const char *usable_digest(int md_nid) {
        switch (md_nid) {
        case NID_sha256:
                return "SHA256";
        case NID_sha384:
                return "SHA384";
        case NID_sha512:
                return "SHA512";
        default:
                return NULL;
        }
}

static void note_digest(CsrAttrs *a, int md_nid, const char *name) {
        if (a->digest_name[0]) { /* the first hash asked for counts */
                note_unsupported(a, name);
                return;
        }
        a->digest = usable_digest(md_nid);
        snprintf(a->digest_name, sizeof(a->digest_name), "%s", OBJ_nid2sn(md_nid));
}

/* The first value of values, which must be of type tag: 1 and *ret, 0 if the
 * SET is empty (the attribute then counts as a bare OID). */
static int first_value(const DerSpan *values, uint8_t tag, DerSpan *ret, DerSpan *ret_tlv) {
        DerSpan in;
        uint8_t t;

        if (!values || values->len == 0)
                return 0;
        in = *values;
        if (der_take(&in, &t, ret, ret_tlv) < 0 || t != tag)
                return -EBADMSG;
        return 1;
}

static int note_key(CsrAttrs *a, int nid, const char *name, const DerSpan *values, Diag *d) {
        DerSpan v, tlv;
        int r;

        if (a->key_nid != NID_undef) { /* the first key asked for counts */
                note_unsupported(a, name);
                return 0;
        }
        a->key_nid = nid;
        snprintf(a->key_name, sizeof(a->key_name), "%s", name);
        if (nid == NID_X9_62_id_ecPublicKey) {
                _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *curve = NULL;

                r = first_value(values, TAG_OID, &v, &tlv);
                if (r < 0 || (r > 0 && !(curve = der_oid(&tlv))))
                        return diag_set(d, -EBADMSG,
                                        "/csrattrs: the id-ecPublicKey attribute's value is "
                                        "not a curve OID");
                if (curve) {
                        a->curve_nid = OBJ_obj2nid(curve);
                        OBJ_obj2txt(a->key_name, sizeof(a->key_name), curve, 0);
                }
        } else if (nid == NID_rsaEncryption) {
                r = first_value(values, TAG_INTEGER, &v, NULL);
                if (r > 0)
                        r = der_small_uint(&v, &a->rsa_bits);
                if (r < 0 || a->rsa_bits > RSA_BITS_MAX || (r > 0 && a->rsa_bits == 0))
                        return diag_set(d, -EBADMSG,
                                        "/csrattrs: the rsaEncryption attribute's value is "
                                        "not a key size from 1 to %u bits",
                                        RSA_BITS_MAX);
                if (a->rsa_bits > 0)
                        snprintf(a->key_name, sizeof(a->key_name), "RSA %u", a->rsa_bits);
                else
                        snprintf(a->key_name, sizeof(a->key_name), "RSA");
        }
        return 0;
}

/* One AttrOrOID: the OID, and for an attribute its SET of values (else NULL). */
static int note_item(CsrAttrs *a, const ASN1_OBJECT *obj, const DerSpan *values, Diag *d) {
        int nid = OBJ_obj2nid(obj), md_nid, pk_nid;
        char name[CSRATTRS_NAME_MAX];

        OBJ_obj2txt(name, sizeof(name), obj, 0);
        switch (nid) {
        case NID_pkcs9_challengePassword:
                a->challenge_password = true;
                return 0;
        case NID_X9_62_id_ecPublicKey:
        case NID_rsaEncryption:
        case NID_rsassaPss:
        case NID_dsa:
        case NID_ED25519:
        case NID_ED448:
                return note_key(a, nid, name, values, d);
        }
        if (nid != NID_undef && OBJ_find_sigid_algs(nid, &md_nid, &pk_nid) && md_nid != NID_undef) {
                /* A signature algorithm: its hash, and the key type it implies. */
                if (a->signature_key_nid == NID_undef)
                        a->signature_key_nid = pk_nid;
                note_digest(a, md_nid, name);
                return 0;
        }
        if (nid != NID_undef && EVP_get_digestbynid(nid)) {
                note_digest(a, nid, name);
                return 0;
        }
        note_unsupported(a, name);
        return 0;
}

int csrattrs_parse(const uint8_t *der, size_t len, CsrAttrs *ret, Diag *d) {
        CsrAttrs a = { .key_nid = NID_undef, .curve_nid = NID_undef, .signature_key_nid = NID_undef };
        DerSpan in = { der, len }, items;
        unsigned n = 0;
        uint8_t tag;
        int r;

        if (len == 0) {
                *ret = a;
                return 0;
        }
        if (der_take(&in, &tag, &items, NULL) < 0 || tag != TAG_SEQUENCE || in.len != 0)
                return diag_set(d, -EBADMSG, "/csrattrs response is not one DER SEQUENCE");

        while (items.len > 0) {
                _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *obj = NULL;
                DerSpan item, tlv, attr, values = {};
                bool is_attribute;

                if (++n > CSRATTRS_MAX_ITEMS)
                        return diag_set(d, -EBADMSG, "/csrattrs lists more than %d items", CSRATTRS_MAX_ITEMS);
                if (der_take(&items, &tag, &item, &tlv) < 0)
                        return diag_set(d, -EBADMSG, "/csrattrs item %u is not valid DER", n);
                is_attribute = tag == TAG_SEQUENCE;
                if (is_attribute) {
                        /* Attribute ::= SEQUENCE { type OID, values SET OF ANY } */
                        DerSpan value, rest;
                        unsigned k = 0;

                        attr = item;
                        if (der_take(&attr, &tag, &item, &tlv) < 0 || tag != TAG_OID ||
                            der_take(&attr, &tag, &values, NULL) < 0 || tag != TAG_SET || attr.len != 0)
                                return diag_set(d, -EBADMSG,
                                                "/csrattrs item %u is not an attribute "
                                                "(SEQUENCE of an OID and a SET)",
                                                n);
                        for (rest = values; rest.len > 0;)
                                if (++k > CSRATTRS_MAX_VALUES || der_take(&rest, &tag, &value, NULL) < 0)
                                        return diag_set(d, -EBADMSG,
                                                        "/csrattrs item %u: malformed or more than %d values",
                                                        n, CSRATTRS_MAX_VALUES);
                } else if (tag != TAG_OID)
                        return diag_set(d, -EBADMSG,
                                        "/csrattrs item %u is neither an OID nor an attribute (tag 0x%02x)",
                                        n, tag);
                obj = der_oid(&tlv);
                if (!obj)
                        return diag_set(d, -EBADMSG, "/csrattrs item %u holds a malformed OID", n);
                r = note_item(&a, obj, is_attribute ? &values : NULL, d);
                if (r < 0)
                        return r;
        }
        *ret = a;
        return 0;
}
