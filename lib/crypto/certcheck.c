/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "util/fileio.h"

#define FINGERPRINT_PREFIX "sha256:"

/* Copies a memory BIO's contents into a malloc()ed NUL-terminated string. */
static int bio_to_string(BIO *bio, char **ret, size_t *ret_len) {
        char *data = NULL, *s;
        long n;

        n = BIO_get_mem_data(bio, &data);
        if (n < 0 || (n > 0 && !data))
                return -EIO;
        s = malloc((size_t) n + 1);
        if (!s)
                return -ENOMEM;
        if (n > 0)
                memcpy(s, data, (size_t) n);
        s[n] = '\0';
        *ret = s;
        if (ret_len)
                *ret_len = (size_t) n;
        return 0;
}

/* The subject for error messages; never NULL. */
static const char *subject_or_unknown(X509 *cert, char **buf) {
        if (cert_subject_string(cert, buf) < 0)
                return "(unreadable subject)";
        return *buf;
}

/* Equal public keys. EVP_PKEY_eq() compares across providers where it can;
 * the SubjectPublicKeyInfo encodings are compared as well, for keys held by a
 * provider (TPM) whose key management cannot export for EVP_PKEY_eq(). */
static bool pubkey_equal(EVP_PKEY *a, EVP_PKEY *b) {
        _cleanup_openssl_free_ uint8_t *da = NULL, *db = NULL;
        bool eq;
        int na, nb;

        if (!a || !b)
                return false;

        ERR_set_mark();
        eq = EVP_PKEY_eq(a, b) == 1;
        if (!eq) {
                na = i2d_PUBKEY(a, &da);
                nb = i2d_PUBKEY(b, &db);
                eq = na > 0 && na == nb && memcmp(da, db, (size_t) na) == 0;
        }
        ERR_pop_to_mark();
        return eq;
}

int cert_matches_key(X509 *cert, EVP_PKEY *key, Diag *d) {
        _cleanup_free_ char *subject = NULL;

        if (!cert || !key)
                return -EINVAL;
        if (pubkey_equal(X509_get0_pubkey(cert), key))
                return 0;
        return diag_set(d, -EKEYREJECTED,
                        "certificate %s does not match the key: "
                        "its public key is a different one",
                        subject_or_unknown(cert, &subject));
}

/* The first part of the message for an X509 verify error. */
static const char *verify_error_reason(int err) {
        switch (err) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_UNTRUSTED:
                return "certificate chain does not lead to a configured trust anchor";
        case X509_V_ERR_CERT_HAS_EXPIRED:
                return "a certificate in the chain has expired";
        case X509_V_ERR_CERT_NOT_YET_VALID:
                return "a certificate in the chain is not yet valid";
        case X509_V_ERR_INVALID_PURPOSE:
                return "certificate is not usable for TLS client authentication";
        case X509_V_ERR_INVALID_CA:
                return "an issuer in the chain is not a valid CA";
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
                return "a certificate signature in the chain does not verify";
        case X509_V_ERR_PATH_LENGTH_EXCEEDED:
                return "certificate chain is longer than a CA allows";
        default:
                return "certificate chain verification failed";
        }
}

/* A copy of the certificate bound to the default library context, so that its
 * signature is checked in software whatever context decoded it. Written when
 * the process preferred the tpm2-openssl provider for signatures (each
 * verification then went into the TPM); fleetid-tpm keys never verify and
 * change no default (docs/tpm-openssl.md), so this is now only a guarantee. */
static int cert_dup_software(X509 *x, X509 **ret) {
        _cleanup_openssl_free_ unsigned char *der = NULL;
        const unsigned char *p;
        X509 *y;
        int n;

        n = i2d_X509(x, &der);
        if (n <= 0)
                return -EIO;
        y = X509_new_ex(NULL, "provider=default");
        if (!y)
                return -ENOMEM;
        p = der;
        if (!d2i_X509(&y, &p, n)) {
                X509_free(y);
                return -EIO;
        }
        *ret = y;
        return 0;
}

static int certs_dup_software(STACK_OF(X509) *in, STACK_OF(X509) **ret) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *out = sk_X509_new_null();
        int r;

        if (!out)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(in); i++) {
                X509 *y;

                r = cert_dup_software(sk_X509_value(in, i), &y);
                if (r < 0)
                        return r;
                if (!sk_X509_push(out, y)) {
                        X509_free(y);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* The chain X509_verify_cert() built, without its trust anchor (the last
 * element), with the caller's leaf first. */
static int verified_path(X509_STORE_CTX *ctx, X509 *leaf_in, STACK_OF(X509) **ret) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *path = X509_STORE_CTX_get1_chain(ctx);
        X509 *x;

        if (!path || sk_X509_num(path) < 1)
                return -ENOMEM;
        if (sk_X509_num(path) > 1)
                X509_free(sk_X509_pop(path));
        /* The leaf as the caller has it (e.g. bound to its provider), not our software copy. */
        if (!X509_up_ref(leaf_in))
                return -ENOMEM;
        x = sk_X509_value(path, 0);
        (void) sk_X509_set(path, 0, leaf_in); /* returns the new element, not the old */
        X509_free(x);
        *ret = TAKE_PTR(path);
        return 0;
}

static int verify_chain(X509 *leaf_in, STACK_OF(X509) *untrusted_in, STACK_OF(X509) *anchors_in, time_t now,
                        bool client_auth, STACK_OF(X509) **ret_path, Diag *d) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
        _cleanup_free_ char *subject = NULL, *failing = NULL;
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted = NULL, *anchors = NULL;
        X509 *current;
        int r, err, depth;

        if (!leaf_in)
                return -EINVAL;
        if (cert_dup_software(leaf_in, &leaf) < 0 || certs_dup_software(anchors_in, &anchors) < 0 ||
            (untrusted_in && certs_dup_software(untrusted_in, &untrusted) < 0))
                return diag_set_ssl(d, -ENOMEM, "cannot prepare certificates for verification");

        if (sk_X509_num(anchors) <= 0)
                return diag_set(d, -EINVAL, "no trust anchor given to verify certificate %s against",
                                subject_or_unknown(leaf, &subject));

        /* An end-entity certificate that is also a CA could issue "identities"
         * of its own; refuse it where an end-entity is expected. */
        if (client_auth && cert_is_ca(leaf))
                return diag_set(d, -EKEYREJECTED,
                                "certificate %s is a CA certificate, "
                                "not an end-entity certificate",
                                subject_or_unknown(leaf, &subject));

        /* A fresh store: only the given anchors, no default paths, no system store. */
        store = X509_STORE_new();
        if (!store)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(anchors); i++)
                if (!X509_STORE_add_cert(store, sk_X509_value(anchors, i)))
                        return diag_set_ssl(d, -ENOMEM, "cannot add trust anchor");

        ctx = X509_STORE_CTX_new();
        if (!ctx || !X509_STORE_CTX_init(ctx, store, leaf, untrusted))
                return diag_set_ssl(d, -ENOMEM, "cannot set up certificate verification");

        X509_VERIFY_PARAM_clear_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
        X509_STORE_CTX_set_time(ctx, 0, now); /* sets X509_V_FLAG_USE_CHECK_TIME */
        if (client_auth && !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT))
                return diag_set_ssl(d, -EIO, "cannot set the verification purpose");

        r = X509_verify_cert(ctx);
        if (r == 1) {
                ERR_clear_error();
                if (ret_path && verified_path(ctx, leaf_in, ret_path) < 0)
                        return diag_set_ssl(d, -ENOMEM, "cannot take the verified certificate chain");
                return 0;
        }

        err = X509_STORE_CTX_get_error(ctx);
        if (r < 0 || err == X509_V_OK)
                return diag_set_ssl(d, -EIO, "certificate chain verification could not run");
        ERR_clear_error();

        depth = X509_STORE_CTX_get_error_depth(ctx);
        current = X509_STORE_CTX_get_current_cert(ctx);
        return diag_set(d, -EKEYREJECTED, "%s (%s); at depth %d, certificate %s", verify_error_reason(err),
                        X509_verify_cert_error_string(err), depth,
                        current ? subject_or_unknown(current, &failing) : "(none)");
}

int cert_verify_chain(X509 *leaf, STACK_OF(X509) *untrusted, STACK_OF(X509) *anchors, time_t now,
                      bool client_auth, Diag *d) {
        return verify_chain(leaf, untrusted, anchors, now, client_auth, NULL, d);
}

int cert_verify_chain_path(X509 *leaf, STACK_OF(X509) *untrusted, STACK_OF(X509) *anchors, time_t now,
                           bool client_auth, STACK_OF(X509) **ret_path, Diag *d) {
        if (!ret_path)
                return -EINVAL;
        return verify_chain(leaf, untrusted, anchors, now, client_auth, ret_path, d);
}

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *ret) {
        struct tm tm = {};
        time_t v;

        if (!t || !ASN1_TIME_to_tm(t, &tm))
                return -EBADMSG;
        errno = 0;
        v = timegm(&tm);
        if (v == (time_t) -1 && errno == EOVERFLOW)
                /* Past a 32-bit time_t (2038): the latest time there is, so a long-lived
                 * root counts as valid, and a notBefore there as not valid yet. */
                v = (time_t) (sizeof(time_t) >= 8 ? INT64_MAX : INT32_MAX);
        *ret = v;
        return 0;
}

int cert_times(X509 *cert, time_t *ret_not_before, time_t *ret_not_after) {
        time_t nb, na;

        if (!cert)
                return -EINVAL;
        if (asn1_time_to_time_t(X509_get0_notBefore(cert), &nb) < 0 ||
            asn1_time_to_time_t(X509_get0_notAfter(cert), &na) < 0)
                return -EBADMSG;
        if (ret_not_before)
                *ret_not_before = nb;
        if (ret_not_after)
                *ret_not_after = na;
        return 0;
}

static const char *format_time(time_t t, char *buf, size_t size) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "@%lld", (long long) t);
        return buf;
}

int cert_check_validity(X509 *cert, time_t now, time_t skew_sec, Diag *d) {
        _cleanup_free_ char *subject = NULL;
        char b1[64], b2[64];
        time_t nb, na;
        int r;

        if (!cert || skew_sec < 0)
                return -EINVAL;
        r = cert_times(cert, &nb, &na);
        if (r < 0)
                return diag_set(d, r, "certificate %s has unreadable validity dates",
                                subject_or_unknown(cert, &subject));

        if (nb > na)
                return diag_set(d, -EKEYREJECTED,
                                "certificate %s has an inverted validity period "
                                "(not valid before %s, but not valid after %s)",
                                subject_or_unknown(cert, &subject), format_time(nb, b1, sizeof(b1)),
                                format_time(na, b2, sizeof(b2)));
        if (now > na)
                return diag_set(d, -ESTALE, "certificate %s expired on %s",
                                subject_or_unknown(cert, &subject), format_time(na, b1, sizeof(b1)));
        if (now < nb && nb - now > skew_sec)
                return diag_set(d, -EKEYREJECTED,
                                "certificate %s not valid before %s "
                                "(now is %s; is the clock right?)",
                                subject_or_unknown(cert, &subject), format_time(nb, b1, sizeof(b1)),
                                format_time(now, b2, sizeof(b2)));
        return 0;
}

int certs_find_for_key(STACK_OF(X509) *certs, EVP_PKEY *key, X509 **ret, Diag *d) {
        int n = sk_X509_num(certs);

        if (!key)
                return -EINVAL;
        for (int i = 0; i < n; i++) {
                X509 *c = sk_X509_value(certs, i);

                if (pubkey_equal(X509_get0_pubkey(c), key)) {
                        *ret = c;
                        return 0;
                }
        }
        return diag_set(d, -ENOKEY, "none of the %d certificate%s matches the key", n < 0 ? 0 : n,
                        n == 1 ? "" : "s");
}

static int cert_sha256(X509 *cert, uint8_t md[CERT_FINGERPRINT_SIZE]) {
        unsigned n = 0;

        if (!cert || !X509_digest(cert, EVP_sha256(), md, &n) || n != CERT_FINGERPRINT_SIZE)
                return -EIO;
        return 0;
}

static void sha256_format(const uint8_t md[CERT_FINGERPRINT_SIZE], char ret[SHA256_TEXT_SIZE]) {
        static const char hex[] = "0123456789abcdef";
        size_t prefix = strlen(FINGERPRINT_PREFIX);

        memcpy(ret, FINGERPRINT_PREFIX, prefix);
        for (size_t i = 0; i < CERT_FINGERPRINT_SIZE; i++) {
                ret[prefix + 2 * i] = hex[md[i] >> 4];
                ret[prefix + 2 * i + 1] = hex[md[i] & 0xf];
        }
        ret[prefix + 2 * CERT_FINGERPRINT_SIZE] = '\0';
}

int cert_fingerprint(X509 *cert, char **ret) {
        uint8_t md[CERT_FINGERPRINT_SIZE];
        char *s;
        int r;

        r = cert_sha256(cert, md);
        if (r < 0)
                return r;
        s = malloc(SHA256_TEXT_SIZE);
        if (!s)
                return -ENOMEM;
        sha256_format(md, s);
        *ret = s;
        return 0;
}

int sha256_text(const void *data, size_t len, char ret[SHA256_TEXT_SIZE]) {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != CERT_FINGERPRINT_SIZE)
                return -EIO;
        sha256_format(md, ret);
        return 0;
}

int pubkey_sha256_text(EVP_PKEY *key, char ret[SHA256_TEXT_SIZE]) {
        unsigned char *der = NULL;
        int n, r;

        n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return -ENOMEM;
        r = sha256_text(der, (size_t) n, ret);
        OPENSSL_free(der);
        return r;
}

int cert_digest_u64(X509 *cert, uint64_t *ret) {
        uint8_t md[CERT_FINGERPRINT_SIZE];
        uint64_t v = 0;
        int r;

        r = cert_sha256(cert, md);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(v); i++)
                v = v << 8 | md[i];
        *ret = v;
        return 0;
}

int fingerprint_parse(const char *s, uint8_t ret[CERT_FINGERPRINT_SIZE]) {
        uint8_t buf[CERT_FINGERPRINT_SIZE];
        size_t prefix = strlen(FINGERPRINT_PREFIX);
        const char *p;

        if (!s || strncasecmp(s, FINGERPRINT_PREFIX, prefix) != 0)
                return -EINVAL;

        p = s + prefix;
        for (size_t i = 0; i < sizeof(buf); i++) {
                int hi, lo;

                if (i > 0 && *p == ':')
                        p++;
                hi = OPENSSL_hexchar2int((unsigned char) p[0]);
                if (hi < 0)
                        return -EINVAL;
                lo = OPENSSL_hexchar2int((unsigned char) p[1]);
                if (lo < 0)
                        return -EINVAL;
                buf[i] = (uint8_t) (hi << 4 | lo);
                p += 2;
        }
        if (*p != '\0')
                return -EINVAL;

        memcpy(ret, buf, sizeof(buf));
        return 0;
}

int certs_find_by_fingerprint(STACK_OF(X509) *certs, const uint8_t fp[CERT_FINGERPRINT_SIZE], X509 **ret) {
        for (int i = 0; i < sk_X509_num(certs); i++) {
                X509 *c = sk_X509_value(certs, i);
                uint8_t md[CERT_FINGERPRINT_SIZE];
                int r;

                r = cert_sha256(c, md);
                if (r < 0)
                        return r;
                if (memcmp(md, fp, sizeof(md)) == 0) {
                        *ret = c;
                        return 0;
                }
        }
        return -ENOENT;
}

/* Certificates are never encrypted: refuse to ask anyone for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        return -1;
}

int certs_from_pem(const char *text, size_t len, const char *what, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!text || !what || len > CERT_PEM_FILE_MAX)
                return -EINVAL;
        bio = BIO_new_mem_buf(text, (int) len);
        certs = sk_X509_new_null();
        if (!bio || !certs)
                return -ENOMEM;

        ERR_clear_error();
        for (;;) {
                X509 *x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
                unsigned long e;

                if (!x) {
                        e = ERR_peek_last_error();
                        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                                ERR_clear_error();
                                break;
                        }
                        return diag_set_ssl(d, -EBADMSG, "%s: certificate #%d is malformed", what,
                                            sk_X509_num(certs) + 1);
                }
                if (!sk_X509_push(certs, x)) {
                        X509_free(x);
                        return -ENOMEM;
                }
        }

        if (sk_X509_num(certs) == 0)
                return diag_set(d, -EBADMSG, "%s holds no PEM certificate", what);

        *ret = TAKE_PTR(certs);
        return 0;
}

int certs_load_pem_file(const char *path, STACK_OF(X509) **ret, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        if (!path)
                return -EINVAL;
        r = read_file_bounded(path, CERT_PEM_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return diag_set(d, r, "%s is larger than the %u bytes a certificate file may have", path,
                                CERT_PEM_FILE_MAX);
        if (r < 0)
                return diag_set(d, r, "cannot read %s: %s", path, read_file_strerror(r));
        return certs_from_pem(text, len, path, ret, d);
}

int certs_to_pem(STACK_OF(X509) *certs, char **ret, size_t *ret_len) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        for (int i = 0; i < sk_X509_num(certs); i++)
                if (!PEM_write_bio_X509(bio, sk_X509_value(certs, i)))
                        return -ENOMEM;
        return bio_to_string(bio, ret, ret_len);
}

int cert_from_der(const uint8_t *der, size_t len, X509 **ret, Diag *d) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        const uint8_t *p = der;

        if (!der || len == 0)
                return diag_set(d, -EBADMSG, "certificate is empty");
        if (len > LONG_MAX)
                return diag_set(d, -EBADMSG, "certificate is too large");

        cert = d2i_X509(NULL, &p, (long) len);
        if (!cert)
                return diag_set_ssl(d, -EBADMSG, "not a DER certificate");
        if ((size_t) (p - der) != len)
                return diag_set(d, -EBADMSG, "DER certificate is followed by %zu bytes of other data",
                                len - (size_t) (p - der));

        *ret = TAKE_PTR(cert);
        return 0;
}

/* Runs print() into a memory BIO and returns what it wrote as a string. */
static int print_to_string(X509 *cert, bool (*print)(BIO *bio, X509 *cert), char **ret) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;

        if (!cert)
                return -EINVAL;
        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (!print(bio, cert))
                return -EIO;
        return bio_to_string(bio, ret, NULL);
}

static bool print_subject(BIO *bio, X509 *cert) {
        return X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0;
}

static bool print_issuer(BIO *bio, X509 *cert) {
        return X509_NAME_print_ex(bio, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253) >= 0;
}

static bool print_serial(BIO *bio, X509 *cert) {
        return i2a_ASN1_INTEGER(bio, X509_get0_serialNumber(cert)) > 0;
}

int cert_subject_string(X509 *cert, char **ret) {
        return print_to_string(cert, print_subject, ret);
}

int cert_issuer_string(X509 *cert, char **ret) {
        return print_to_string(cert, print_issuer, ret);
}

int cert_serial_string(X509 *cert, char **ret) {
        return print_to_string(cert, print_serial, ret);
}

bool cert_is_ca(X509 *cert) {
        if (!cert)
                return false;
        /* X509_check_ca() also caches the extensions, so the flags below are set. */
        if (X509_check_ca(cert) != 0)
                return true;
        return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
}
