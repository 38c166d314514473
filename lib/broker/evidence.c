/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * evidence.c: the evidence encoding and its verification.
 */
#include <errno.h>
#include <string.h>

#include "broker/evidence.h"
#include "crypto/certcheck.h"
#include "crypto/challenge.h"
#include "crypto/ossl-util.h"

#define MAGIC_LEN (sizeof(EVIDENCE_MAGIC)) /* with the NUL */

_Static_assert(EVIDENCE_PURPOSE_SIZE - 1 == CHALLENGE_PURPOSE_MAX, "the purpose fills the formula's limit");

Evidence *evidence_free(Evidence *e) {
        if (!e)
                return NULL;
        OSSL_STACK_OF_X509_free(e->chain);
        free(e->signature);
        free(e);
        return NULL;
}

typedef struct Reader {
        const uint8_t *p;
        size_t left;
} Reader;

static int take(Reader *r, size_t n, const uint8_t **ret) {
        if (r->left < n)
                return -EBADMSG;
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return 0;
}

static int take_u8(Reader *r, unsigned *ret) {
        const uint8_t *b;

        if (take(r, 1, &b) < 0)
                return -EBADMSG;
        *ret = b[0];
        return 0;
}

static int take_u16(Reader *r, unsigned *ret) {
        const uint8_t *b;

        if (take(r, 2, &b) < 0)
                return -EBADMSG;
        *ret = (unsigned) b[0] << 8 | b[1];
        return 0;
}

int evidence_parse(const uint8_t *data, size_t len, Evidence **ret, Diag *d) {
        _cleanup_(evidence_freep) Evidence *e = NULL;
        Reader rd = { data, len };
        const uint8_t *b;
        unsigned count, n;
        int r;

        if (len > EVIDENCE_MAX)
                return diag_set(d, -EFBIG, "the evidence is %zu bytes; at most %u are accepted", len,
                                EVIDENCE_MAX);
        if (!data || take(&rd, MAGIC_LEN, &b) < 0 || memcmp(b, EVIDENCE_MAGIC, MAGIC_LEN) != 0)
                return diag_set(d, -EBADMSG, "the evidence does not start with \"%s\\0\"", EVIDENCE_MAGIC);

        e = calloc(1, sizeof(Evidence));
        if (!e || !(e->chain = sk_X509_new_null()))
                return diag_set(d, -ENOMEM, "out of memory");

        if (take_u8(&rd, &count) < 0 || count < 1 || count > EVIDENCE_CERTS_MAX)
                return diag_set(d, -EBADMSG, "the evidence's certificate count is missing or not 1..%d",
                                EVIDENCE_CERTS_MAX);
        for (unsigned i = 0; i < count; i++) {
                _cleanup_(X509_freep) X509 *x = NULL;

                if (take_u16(&rd, &n) < 0 || n < 1 || n > EVIDENCE_CERT_MAX)
                        return diag_set(d, -EBADMSG,
                                        "the length of evidence certificate %u is missing or not 1..%d",
                                        i + 1, EVIDENCE_CERT_MAX);
                if (take(&rd, n, &b) < 0)
                        return diag_set(d, -EBADMSG, "evidence certificate %u is cut short", i + 1);
                r = cert_from_der(b, n, &x, d);
                if (r < 0)
                        return diag_prefix(d, -EBADMSG, "evidence certificate %u", i + 1);
                if (!sk_X509_push(e->chain, x))
                        return diag_set(d, -ENOMEM, "out of memory");
                x = NULL;
        }

        if (take_u8(&rd, &n) < 0 || n < 1 || n > EVIDENCE_ALG_MAX || take(&rd, n, &b) < 0)
                return diag_set(d, -EBADMSG,
                                "the evidence's signature algorithm is missing or not 1..%d bytes",
                                EVIDENCE_ALG_MAX);
        for (unsigned i = 0; i < n; i++)
                if (b[i] < 0x21 || b[i] > 0x7e)
                        return diag_set(d, -EBADMSG,
                                        "the evidence's signature algorithm is not printable ASCII");
        memcpy(e->alg, b, n);
        e->alg[n] = '\0';

        if (take_u16(&rd, &n) < 0 || n < 1 || n > CHALLENGE_SIGNATURE_MAX || take(&rd, n, &b) < 0)
                return diag_set(d, -EBADMSG, "the evidence's signature is missing or not 1..%d bytes",
                                CHALLENGE_SIGNATURE_MAX);
        e->signature = malloc(n);
        if (!e->signature)
                return diag_set(d, -ENOMEM, "out of memory");
        memcpy(e->signature, b, n);
        e->signature_len = n;

        if (rd.left > 0)
                return diag_set(d, -EBADMSG, "the evidence has %zu bytes after the signature", rd.left);
        *ret = TAKE_PTR(e);
        return 0;
}

static void put_u16(uint8_t *p, size_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

int evidence_encode(STACK_OF(X509) *chain, const char *alg, const uint8_t *sig, size_t sig_len,
                    uint8_t **ret, size_t *ret_len, Diag *d) {
        _cleanup_free_ uint8_t *buf = NULL;
        int count = chain ? sk_X509_num(chain) : 0;
        size_t alg_len = alg ? strlen(alg) : 0, pos = 0;

        if (count < 1 || count > EVIDENCE_CERTS_MAX)
                return diag_set(d, -EINVAL, "evidence takes 1 to %d certificates, not %d",
                                EVIDENCE_CERTS_MAX, count);
        if (alg_len < 1 || alg_len > EVIDENCE_ALG_MAX)
                return diag_set(d, -EINVAL, "the signature algorithm name must be 1 to %d bytes",
                                EVIDENCE_ALG_MAX);
        if (sig_len < 1 || sig_len > CHALLENGE_SIGNATURE_MAX)
                return diag_set(d, -EINVAL, "the signature must be 1 to %d bytes", CHALLENGE_SIGNATURE_MAX);

        buf = malloc(EVIDENCE_MAX);
        if (!buf)
                return diag_set(d, -ENOMEM, "out of memory");
        memcpy(buf, EVIDENCE_MAGIC, MAGIC_LEN);
        pos = MAGIC_LEN;
        buf[pos++] = (uint8_t) count;
        for (int i = 0; i < count; i++) {
                uint8_t *q;
                int n = i2d_X509(sk_X509_value(chain, i), NULL);

                if (n < 1 || n > EVIDENCE_CERT_MAX)
                        return diag_set(d, -EINVAL, "certificate %d is not 1..%d bytes of DER", i + 1,
                                        EVIDENCE_CERT_MAX);
                if (pos + 2 + (size_t) n + 1 + alg_len + 2 + sig_len > EVIDENCE_MAX)
                        return diag_set(d, -EINVAL, "the evidence would be longer than %u bytes",
                                        EVIDENCE_MAX);
                put_u16(buf + pos, (size_t) n);
                q = buf + pos + 2;
                if (i2d_X509(sk_X509_value(chain, i), &q) != n)
                        return diag_set_ssl(d, -EIO, "cannot encode certificate %d", i + 1);
                pos += 2 + (size_t) n;
        }
        buf[pos++] = (uint8_t) alg_len;
        memcpy(buf + pos, alg, alg_len);
        pos += alg_len;
        put_u16(buf + pos, sig_len);
        memcpy(buf + pos + 2, sig, sig_len);
        pos += 2 + sig_len;

        *ret = TAKE_PTR(buf);
        *ret_len = pos;
        return 0;
}

int evidence_purpose(EVP_PKEY *csr_key, char ret[static EVIDENCE_PURPOSE_SIZE], Diag *d) {
        const size_t prefix = sizeof(EVIDENCE_PURPOSE_PREFIX) - 1;
        unsigned char *der = NULL;
        uint8_t hash[32];
        int n;

        if (!csr_key)
                return diag_set(d, -EINVAL, "no CSR key to bind the evidence to");
        n = i2d_PUBKEY(csr_key, &der);
        if (n <= 0)
                return diag_set_ssl(d, -EIO, "cannot encode the CSR's public key");
        if (!EVP_Digest(der, (size_t) n, hash, NULL, EVP_sha256(), NULL)) {
                OPENSSL_free(der);
                return diag_set_ssl(d, -EIO, "cannot hash the CSR's public key");
        }
        OPENSSL_free(der);
        memcpy(ret, EVIDENCE_PURPOSE_PREFIX, prefix);
        return base32_encode_lower(hash, sizeof(hash), ret + prefix, EVIDENCE_PURPOSE_SIZE - prefix);
}

int evidence_birth_fingerprint(const uint8_t *data, size_t len, char ret[static SHA256_TEXT_SIZE], Diag *d) {
        _cleanup_(evidence_freep) Evidence *e = NULL;
        EVP_PKEY *key;
        int r;

        r = evidence_parse(data, len, &e, d);
        if (r < 0)
                return r;
        key = X509_get0_pubkey(sk_X509_value(e->chain, 0));
        r = key ? pubkey_sha256_text(key, ret) : -EBADMSG;
        if (r < 0)
                return diag_set(d, r, "cannot fingerprint the sensor's birth key");
        return 0;
}

int evidence_verify(const uint8_t *data, size_t len, const uint8_t *nonce, size_t nonce_len, EVP_PKEY *csr_key,
                    STACK_OF(X509) *manufacturer_cas, time_t now, X509 **ret_leaf, Diag *d) {
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *untrusted = NULL;
        char purpose[EVIDENCE_PURPOSE_SIZE];
        X509 *leaf;
        EVP_PKEY *pub;
        int r;

        if (!manufacturer_cas || sk_X509_num(manufacturer_cas) == 0)
                return diag_set(d, -EINVAL, "no sensor manufacturer CA to verify evidence against");
        r = challenge_check_nonce(nonce_len, d);
        if (r < 0)
                return r;
        r = evidence_purpose(csr_key, purpose, d);
        if (r < 0)
                return r;
        r = evidence_parse(data, len, &e, d);
        if (r < 0)
                return r;

        leaf = sk_X509_value(e->chain, 0);
        untrusted = sk_X509_new_null();
        if (!untrusted)
                return diag_set(d, -ENOMEM, "out of memory");
        for (int i = 1; i < sk_X509_num(e->chain); i++)
                if (!sk_X509_push(untrusted, X509_dup(sk_X509_value(e->chain, i))))
                        return diag_set(d, -ENOMEM, "out of memory");
        if (cert_is_ca(leaf))
                return diag_set(d, -EKEYREJECTED,
                                "the evidence's first certificate is a CA certificate, not a sensor's birth "
                                "certificate");
        r = cert_verify_chain(leaf, untrusted, manufacturer_cas, now, false, d);
        if (r < 0)
                return diag_prefix(d, r, "the sensor's birth certificate");

        pub = X509_get0_pubkey(leaf);
        if (!pub)
                return diag_set_ssl(d, -EBADMSG, "the sensor's birth certificate has no usable public key");
        r = challenge_verify(pub, e->alg, nonce, nonce_len, purpose, e->signature, e->signature_len, d);
        if (r < 0)
                /* the nonce and purpose were checked: -EINVAL is the evidence's unknown algorithm */
                return diag_prefix(d, r == -EINVAL ? -EBADMSG : r,
                                   "the evidence signature (binding the nonce to this CSR's key)");

        if (ret_leaf) {
                X509_up_ref(leaf);
                *ret_leaf = leaf;
        }
        return 0;
}
