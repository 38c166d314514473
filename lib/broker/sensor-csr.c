/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-csr.c: parsing and policy checks of a sensor's CSR.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>

#include "broker/sensor-csr.h"
#include "broker/sensor-id.h"
#include "crypto/ossl-util.h"

void sensor_policy_from_config(const Config *c, SensorPolicy *ret) {
        *ret = (SensorPolicy) {
                .key_algorithms = c->broker_sensor_key_algorithms,
                .extensions = c->broker_allowed_extensions,
                .subject_organization = c->broker_subject_organization,
                .subject_organizational_unit = c->broker_subject_organizational_unit,
        };
}

static int add_rdn(X509_NAME *name, int nid, const char *value) {
        if (!value)
                return 0;
        return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (const unsigned char *) value, -1, -1, 0)
                       ? 0
                       : -EIO;
}

int sensor_subject_new(const SensorPolicy *p, const char *sensor_id, X509_NAME **ret, Diag *d) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        name = X509_NAME_new();
        if (!name)
                return diag_set(d, -ENOMEM, "out of memory");
        if (add_rdn(name, NID_organizationName, p->subject_organization) < 0 ||
            add_rdn(name, NID_organizationalUnitName, p->subject_organizational_unit) < 0 ||
            add_rdn(name, NID_commonName, sensor_id) < 0)
                return diag_set_ssl(d, -EIO, "cannot build the subject of sensor '%s'", sensor_id);
        *ret = TAKE_PTR(name);
        return 0;
}

/* Which KeyAlgorithm the key is, strictly (named curve P-256/P-384 only). */
static KeyAlgorithm csr_key_algorithm(EVP_PKEY *key, char *desc, size_t desc_size) {
        char curve[64] = "";
        int bits = EVP_PKEY_get_bits(key);

        if (EVP_PKEY_is_a(key, "EC")) {
                char encoding[32] = "";

                /* OpenSSL names a curve given by explicit parameters after the
                 * named curve they equal: the encoding tells them apart. */
                if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                                    sizeof(encoding), NULL) ||
                    strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0 ||
                    !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                                    NULL))
                        snprintf(curve, sizeof(curve), "with explicit curve parameters");
                snprintf(desc, desc_size, "EC %s", curve);
                if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0)
                        return KEY_ALG_ECC_P256;
                if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0)
                        return KEY_ALG_ECC_P384;
                return _KEY_ALG_INVALID;
        }
        if (EVP_PKEY_is_a(key, "RSA")) {
                snprintf(desc, desc_size, "RSA-%d", bits);
                return bits == 2048 ? KEY_ALG_RSA_2048 : bits == 3072 ? KEY_ALG_RSA_3072 : _KEY_ALG_INVALID;
        }
        snprintf(desc, desc_size, "%s", EVP_PKEY_get0_type_name(key) ?: "unknown");
        return _KEY_ALG_INVALID;
}

static void allowed_list(unsigned mask, const char *(*to_string)(int), unsigned max, char *buf, size_t size) {
        buf[0] = '\0';
        for (unsigned i = 0; i < max; i++)
                if (mask & (1u << i))
                        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? ", " : "",
                                 to_string(i));
        if (!buf[0])
                snprintf(buf, size, "none");
}

static const char *key_alg_name(int i) {
        return key_algorithm_to_string(i);
}

static const char *ext_name(int i) {
        return sensor_extension_to_string(i);
}

static int check_key(const SensorPolicy *p, EVP_PKEY *key, Diag *d) {
        char desc[96], allowed[128];
        KeyAlgorithm a = csr_key_algorithm(key, desc, sizeof(desc));

        if (a == _KEY_ALG_INVALID || !(p->key_algorithms & KEY_ALG_BIT(a))) {
                allowed_list(p->key_algorithms, key_alg_name, _KEY_ALG_MAX, allowed, sizeof(allowed));
                return diag_set(d, -EPERM, "the CSR's key is %s; broker.sensor_key_algorithms allows %s",
                                desc, allowed);
        }
        return 0;
}

static bool strong_md(int nid) {
        return nid == NID_sha256 || nid == NID_sha384 || nid == NID_sha512;
}

/* RSA-PSS names its hash, and MGF1's, in its parameters (RFC 4055 3.1); left
 * out, each is SHA-1. */
static int check_pss_digests(X509_REQ *req, Diag *d) {
        _cleanup_(RSA_PSS_PARAMS_freep) RSA_PSS_PARAMS *pss = NULL;
        _cleanup_(X509_ALGOR_freep) X509_ALGOR *mgf_md = NULL;
        const X509_ALGOR *alg = NULL;
        const void *param = NULL;
        int param_type = V_ASN1_UNDEF, md_nid = NID_sha1, mgf_md_nid = NID_sha1;

        X509_REQ_get0_signature(req, NULL, &alg);
        if (alg)
                X509_ALGOR_get0(NULL, &param_type, &param, alg);
        if (param_type != V_ASN1_SEQUENCE)
                return diag_set(d, -EPERM,
                                "the CSR's RSA-PSS signature has no parameters (it would be SHA-1)");
        pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), alg->parameter);
        if (!pss)
                return diag_set_ssl(d, -EBADMSG, "the CSR's RSA-PSS parameters cannot be parsed");
        if (pss->hashAlgorithm)
                md_nid = OBJ_obj2nid(pss->hashAlgorithm->algorithm);
        if (pss->maskGenAlgorithm) {
                if (OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1)
                        return diag_set(d, -EPERM, "the CSR's RSA-PSS mask generation is not MGF1");
                if (pss->maskGenAlgorithm->parameter &&
                    pss->maskGenAlgorithm->parameter->type == V_ASN1_SEQUENCE)
                        mgf_md = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
                                                           pss->maskGenAlgorithm->parameter);
                if (!mgf_md)
                        return diag_set(d, -EBADMSG, "the CSR's RSA-PSS MGF1 hash cannot be parsed");
                mgf_md_nid = OBJ_obj2nid(mgf_md->algorithm);
        }
        if (!strong_md(md_nid) || !strong_md(mgf_md_nid))
                return diag_set(d, -EPERM,
                                "the CSR's RSA-PSS signature hashes with %s and MGF1 with %s; SHA-256, "
                                "SHA-384 or SHA-512 is required",
                                OBJ_nid2ln(md_nid) ?: "an unknown hash",
                                OBJ_nid2ln(mgf_md_nid) ?: "an unknown hash");
        return 0;
}

/* The self-signature's hash: SHA-256, -384 or -512. A SHA-1 or MD5 proof of
 * possession is none. */
static int check_signature_digest(X509_REQ *req, Diag *d) {
        int sig_nid = X509_REQ_get_signature_nid(req), md_nid = NID_undef, pk_nid = NID_undef;

        if (sig_nid == NID_rsassaPss)
                return check_pss_digests(req, d);
        if (!OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) || !strong_md(md_nid))
                return diag_set(d, -EPERM,
                                "the CSR is signed with %s; SHA-256, SHA-384 or SHA-512 is required",
                                sig_nid != NID_undef ? OBJ_nid2ln(sig_nid) : "an unknown algorithm");
        return 0;
}

/* X.680's PrintableString: a value with another character (a sensor id's
 * '_') is a malformed name a CA would copy or refuse. */
static bool printable_string_valid(const ASN1_STRING *s) {
        const unsigned char *p = ASN1_STRING_get0_data(s);

        for (int i = 0; i < ASN1_STRING_length(s); i++)
                if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
                      (p[i] >= '0' && p[i] <= '9') || strchr(" '()+,-./:=?", p[i])) ||
                    p[i] == '\0')
                        return false;
        return true;
}

/* Entry by entry: the same attribute types in the same order, each RDN
 * single-valued, and each value UTF8String or PrintableString with exactly
 * the same bytes. Not X509_NAME_cmp(): its canonical form ignores case and
 * spaces, so CN=TEMP-01 would pass for sensor 'temp-01', and the CA, which
 * copies the subject, would issue a certificate for another name. */
static bool subject_equal(const X509_NAME *got, const X509_NAME *want) {
        int n = X509_NAME_entry_count(want);

        if (!got || X509_NAME_entry_count(got) != n)
                return false;
        for (int i = 0; i < n; i++) {
                const X509_NAME_ENTRY *g = X509_NAME_get_entry(got, i), *w = X509_NAME_get_entry(want, i);
                const ASN1_STRING *gv = X509_NAME_ENTRY_get_data(g), *wv = X509_NAME_ENTRY_get_data(w);

                if (X509_NAME_ENTRY_set(g) != i ||
                    OBJ_cmp(X509_NAME_ENTRY_get_object(g), X509_NAME_ENTRY_get_object(w)) != 0 ||
                    (ASN1_STRING_type(gv) != V_ASN1_UTF8STRING &&
                     (ASN1_STRING_type(gv) != V_ASN1_PRINTABLESTRING || !printable_string_valid(gv))) ||
                    ASN1_STRING_length(gv) != ASN1_STRING_length(wv) ||
                    memcmp(ASN1_STRING_get0_data(gv), ASN1_STRING_get0_data(wv),
                           (size_t) ASN1_STRING_length(wv)) != 0)
                        return false;
        }
        return true;
}

static int check_subject(const SensorPolicy *p, const char *sensor_id, X509_REQ *req, Diag *d) {
        _cleanup_(X509_NAME_freep) X509_NAME *want = NULL;
        char got_s[256], want_s[256];
        const X509_NAME *got = X509_REQ_get_subject_name(req);
        int r;

        r = sensor_subject_new(p, sensor_id, &want, d);
        if (r < 0)
                return r;
        if (subject_equal(got, want))
                return 0;
        got_s[0] = want_s[0] = '\0';
        if (got)
                X509_NAME_oneline(got, got_s, sizeof(got_s));
        X509_NAME_oneline(want, want_s, sizeof(want_s));
        return diag_set(d, -EPERM, "the CSR's subject is \"%s\"; for sensor '%s' it must be \"%s\"", got_s,
                        sensor_id, want_s);
}

static int extension_index(int nid) {
        switch (nid) {
        case NID_key_usage:
                return SENSOR_EXT_KEY_USAGE;
        case NID_ext_key_usage:
                return SENSOR_EXT_EXT_KEY_USAGE;
        case NID_basic_constraints:
                return SENSOR_EXT_BASIC_CONSTRAINTS;
        case NID_subject_alt_name:
                return SENSOR_EXT_SUBJECT_ALT_NAME;
        default:
                return -1;
        }
}

static void object_name(const ASN1_OBJECT *o, char *buf, size_t size) {
        if (OBJ_obj2txt(buf, (int) size, o, 0) <= 0)
                snprintf(buf, size, "an unreadable OID");
}

/* What a sensor's certificate may be used for: what the gateway checks in the
 * issued certificate (a TLS client's, not a CA's), so that a request the CA
 * would copy is never issued and then refused, and never grants more:
 *   keyUsage: digitalSignature, with any of nonRepudiation, keyEncipherment,
 *     dataEncipherment, keyAgreement; not keyCertSign, cRLSign (a CA's);
 *   extendedKeyUsage: clientAuth, with serverAuth at most; not
 *     anyExtendedKeyUsage, id-kp-cmcRA (an RA's, RFC 6402 2.10) or others;
 *   basicConstraints: cA FALSE. */
static int check_extension_value(int idx, X509_EXTENSION *e, Diag *d) {
        switch (idx) {
        case SENSOR_EXT_KEY_USAGE: {
                _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = X509V3_EXT_d2i(e);

                if (!ku)
                        return diag_set_ssl(d, -EBADMSG, "the CSR's keyUsage cannot be parsed");
                if (ASN1_BIT_STRING_get_bit(ku, 5) || ASN1_BIT_STRING_get_bit(ku, 6) ||
                    ASN1_BIT_STRING_get_bit(ku, 7) || ASN1_BIT_STRING_get_bit(ku, 8))
                        return diag_set(d, -EPERM,
                                        "the CSR's keyUsage asks for keyCertSign, cRLSign, encipherOnly or "
                                        "decipherOnly; a sensor's certificate signs nothing but its own "
                                        "messages");
                if (!ASN1_BIT_STRING_get_bit(ku, 0))
                        return diag_set(d, -EPERM,
                                        "the CSR's keyUsage lacks digitalSignature, which a TLS client's "
                                        "certificate needs");
                return 0;
        }
        case SENSOR_EXT_EXT_KEY_USAGE: {
                _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = X509V3_EXT_d2i(e);
                bool client = false;
                char name[128];

                if (!eku)
                        return diag_set_ssl(d, -EBADMSG, "the CSR's extendedKeyUsage cannot be parsed");
                for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
                        const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
                        int nid = OBJ_obj2nid(o);

                        if (nid == NID_client_auth)
                                client = true;
                        else if (nid != NID_server_auth) {
                                object_name(o, name, sizeof(name));
                                return diag_set(d, -EPERM,
                                                "the CSR's extendedKeyUsage asks for %s; a sensor's "
                                                "certificate may have clientAuth and serverAuth only",
                                                name);
                        }
                }
                if (!client)
                        return diag_set(d, -EPERM,
                                        "the CSR's extendedKeyUsage lacks clientAuth, which the gateway "
                                        "checks in the certificate issued");
                return 0;
        }
        case SENSOR_EXT_BASIC_CONSTRAINTS: {
                _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(e);

                if (!bc)
                        return diag_set_ssl(d, -EBADMSG, "the CSR's basicConstraints cannot be parsed");
                if (bc->ca)
                        return diag_set(d, -EPERM,
                                        "the CSR asks for a CA certificate (basicConstraints cA TRUE); a "
                                        "sensor gets an end-entity certificate");
                return 0;
        }
        default:
                return 0;
        }
}

static int check_attributes(const SensorPolicy *p, X509_REQ *req, Diag *d) {
        _cleanup_(sk_X509_EXTENSION_free_allp) STACK_OF(X509_EXTENSION) *exts = NULL;
        char name[128], allowed[128];
        unsigned seen = 0;
        int n = X509_REQ_get_attr_count(req), ext_attrs = 0, r;

        for (int i = 0; i < n; i++) {
                const ASN1_OBJECT *o = X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req, i));

                if (OBJ_obj2nid(o) == NID_ext_req) {
                        /* OpenSSL reads the first value of the set only: a
                         * second could carry extensions never checked here. */
                        if (X509_ATTRIBUTE_count(X509_REQ_get_attr(req, i)) != 1)
                                return diag_set(d, -EPERM,
                                                "the CSR's extensionRequest attribute holds %d values; "
                                                "exactly one is allowed",
                                                X509_ATTRIBUTE_count(X509_REQ_get_attr(req, i)));
                        ext_attrs++;
                        continue;
                }
                object_name(o, name, sizeof(name));
                return diag_set(d, -EPERM, "the CSR has the attribute %s; only extensionRequest is allowed",
                                name);
        }
        if (ext_attrs > 1)
                return diag_set(d, -EPERM,
                                "the CSR has %d extensionRequest attributes; at most one is allowed",
                                ext_attrs);
        if (ext_attrs == 0)
                return 0;

        exts = X509_REQ_get_extensions(req);
        if (!exts)
                return diag_set_ssl(d, -EBADMSG, "the CSR's extensionRequest attribute cannot be parsed");
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
                X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
                const ASN1_OBJECT *o = X509_EXTENSION_get_object(e);
                int idx = extension_index(OBJ_obj2nid(o));

                object_name(o, name, sizeof(name));
                if (idx < 0 || !(p->extensions & (1u << (unsigned) idx))) {
                        allowed_list(p->extensions, ext_name, _SENSOR_EXT_MAX, allowed, sizeof(allowed));
                        return diag_set(d, -EPERM,
                                        "the CSR requests the extension %s; broker.allowed_extensions allows %s",
                                        name, allowed);
                }
                if (seen & (1u << (unsigned) idx))
                        return diag_set(d, -EPERM, "the CSR requests the extension %s twice", name);
                seen |= 1u << (unsigned) idx;
                r = check_extension_value(idx, e, d);
                if (r < 0)
                        return r;
        }
        return 0;
}

int sensor_csr_check(const SensorPolicy *p, const char *sensor_id, const uint8_t *der, size_t len,
                     X509_REQ **ret, Diag *d) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        EVP_PKEY *key;
        const uint8_t *q = der;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        if (len > SENSOR_CSR_MAX)
                return diag_set(d, -EFBIG, "the CSR is %zu bytes; at most %u are accepted", len,
                                SENSOR_CSR_MAX);
        if (!der || len == 0)
                return diag_set(d, -EBADMSG, "the CSR is empty");

        req = d2i_X509_REQ(NULL, &q, (long) len);
        if (!req)
                return diag_set_ssl(d, -EBADMSG, "the CSR is not a DER PKCS #10 certification request");
        if ((size_t) (q - der) != len)
                return diag_set(d, -EBADMSG, "the CSR is followed by %zu bytes of something else",
                                len - (size_t) (q - der));
        if (X509_REQ_get_version(req) != X509_REQ_VERSION_1)
                return diag_set(d, -EBADMSG, "the CSR has version %ld; PKCS #10 knows only version 1 (0)",
                                X509_REQ_get_version(req));

        key = X509_REQ_get0_pubkey(req);
        if (!key)
                return diag_set_ssl(d, -EBADMSG, "the CSR's public key cannot be read");
        if (X509_REQ_verify(req, key) != 1)
                return diag_set_ssl(d, -EKEYREJECTED,
                                    "the CSR's self-signature does not verify with its own key (no proof of "
                                    "possession)");
        r = check_key(p, key, d);
        if (r < 0)
                return r;
        r = check_signature_digest(req, d);
        if (r < 0)
                return r;
        r = check_subject(p, sensor_id, req, d);
        if (r < 0)
                return r;
        r = check_attributes(p, req, d);
        if (r < 0)
                return r;
        ERR_clear_error();
        if (ret)
                *ret = TAKE_PTR(req);
        return 0;
}
