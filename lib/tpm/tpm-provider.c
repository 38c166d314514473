/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The provider has two parts:
 *   keymgmt "EC" and "RSA": a key is a software copy of the public key (for
 *     its parameters, public export and comparison) plus, for a private key,
 *     the ESYS connection and the key's ESYS handle. Export refuses the private
 *     part, so that OpenSSL (evp_pkey_signature_init's second round) fetches
 *     the signature from this provider rather than from "default".
 *   signature "ECDSA" and "RSA": hash in software (the default provider's
 *     digests), sign the digest with TPM2_Sign (tpm-sign.h).
 */
#include <errno.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-provider.h"
#include "tpm/tpm-sign.h"
#include "util/macro.h"

#define PROVIDER_NAME "fleetid-tpm"
#define PROVIDER_PROPS "provider=" PROVIDER_NAME
/* The import parameter that makes a key private: a TpmKeyRef, by value. */
#define PARAM_TPM_KEY "fleetid-tpm-key"

typedef struct TpmKeyRef {
        ESYS_CONTEXT *esys;
        ESYS_TR handle;
} TpmKeyRef;

typedef struct ProvKey {
        const char *type; /* "EC" or "RSA" */
        EVP_PKEY *pub;    /* the public key, in the default provider */
        TpmKeyRef tpm;    /* esys NULL: a public key only */
} ProvKey;

/* Pushes d's text onto OpenSSL's error queue, which the caller's
 * diag_set_ssl() collects. */
static void raise_diag(const Diag *d) {
        ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", d->text);
}

/* ---- keymgmt ---- */

static void *key_new(const char *type) {
        ProvKey *k = calloc(1, sizeof(*k));

        if (k)
                k->type = type;
        return k;
}

static void *ec_key_new(void *provctx) {
        return key_new("EC");
}

static void *rsa_key_new(void *provctx) {
        return key_new("RSA");
}

static void key_free(void *keydata) {
        ProvKey *k = keydata;

        if (!k)
                return;
        /* The ESYS handle is the TpmContext's: Esys_Finalize closes it. */
        EVP_PKEY_free(k->pub);
        free(k);
}

static int key_has(const void *keydata, int selection) {
        const ProvKey *k = keydata;

        if (!k || !k->pub)
                return 0;
        if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !k->tpm.esys)
                return 0;
        return 1;
}

static int key_import(void *keydata, int selection, const OSSL_PARAM params[]) {
        ProvKey *k = keydata;
        const OSSL_PARAM *p;
        EVP_PKEY_CTX *ctx;
        EVP_PKEY *pub = NULL;
        int ok;

        if (!k || !(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
                return 0;
        p = OSSL_PARAM_locate_const(params, PARAM_TPM_KEY);
        if (p && (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != sizeof(TpmKeyRef)))
                return 0;
        /* A private key comes only with its TPM reference (tpm_provider_load_key). */
        if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !p)
                return 0;

        ctx = EVP_PKEY_CTX_new_from_name(NULL, k->type, "provider=default");
        ok = ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
             EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *) params) > 0;
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
                return 0;
        EVP_PKEY_free(k->pub);
        k->pub = pub;
        if (p)
                memcpy(&k->tpm, p->data, sizeof(TpmKeyRef));
        return 1;
}

static int key_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg) {
        ProvKey *k = keydata;
        OSSL_PARAM *params = NULL;
        int ok;

        /* The private key never leaves the TPM. */
        if (!k || !k->pub || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
                return 0;
        if (EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) <= 0)
                return 0;
        ok = cb(params, cbarg);
        OSSL_PARAM_free(params);
        return ok;
}

static const OSSL_PARAM *ec_key_types(int selection) {
        static const OSSL_PARAM types[] = {
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                OSSL_PARAM_octet_string(PARAM_TPM_KEY, NULL, 0),
                OSSL_PARAM_END,
        };

        return types;
}

static const OSSL_PARAM *rsa_key_types(int selection) {
        static const OSSL_PARAM types[] = {
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
                OSSL_PARAM_octet_string(PARAM_TPM_KEY, NULL, 0),
                OSSL_PARAM_END,
        };

        return types;
}

static int key_match(const void *a, const void *b, int selection) {
        const ProvKey *ka = a, *kb = b;

        return ka && kb && ka->pub && kb->pub && EVP_PKEY_eq(ka->pub, kb->pub) == 1;
}

static void *key_dup(const void *keydata, int selection) {
        const ProvKey *k = keydata;
        ProvKey *c;

        if (!k || !k->pub || !EVP_PKEY_up_ref(k->pub))
                return NULL;
        c = key_new(k->type);
        if (!c) {
                EVP_PKEY_free(k->pub);
                return NULL;
        }
        c->pub = k->pub;
        if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
                c->tpm = k->tpm;
        return c;
}

/* Bits, security bits, maximum signature size, group, default digest: those of
 * the public key, which the default provider answers. */
static int key_get_params(void *keydata, OSSL_PARAM params[]) {
        ProvKey *k = keydata;

        return k && k->pub && EVP_PKEY_get_params(k->pub, params) > 0;
}

static const OSSL_PARAM *key_gettable_params(void *provctx) {
        static const OSSL_PARAM gettable[] = {
                OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
                OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
                OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
                OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
                OSSL_PARAM_END,
        };

        return gettable;
}

static const char *ec_key_operation(int operation_id) {
        return operation_id == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

static const char *rsa_key_operation(int operation_id) {
        return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

#define KEYMGMT_FUNCTIONS(prefix)                                                                      \
        { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void)) prefix##_key_new },                                  \
                { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void)) key_free },                                 \
                { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void)) key_has },                                   \
                { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void)) key_import },                             \
                { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void)) prefix##_key_types },               \
                { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void)) key_export },                             \
                { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void)) prefix##_key_types },               \
                { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void)) key_match },                               \
                { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void)) key_dup },                                   \
                { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void)) key_get_params },                     \
                { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void)) key_gettable_params },           \
                { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void)) prefix##_key_operation }, { \
                0, NULL                                                                                \
        }

static const OSSL_DISPATCH ec_keymgmt[] = { KEYMGMT_FUNCTIONS(ec) };
static const OSSL_DISPATCH rsa_keymgmt[] = { KEYMGMT_FUNCTIONS(rsa) };

/* ---- signature ---- */

typedef struct SigCtx {
        ProvKey *key;
        EVP_MD *md;         /* NULL: not chosen yet */
        EVP_MD_CTX *mdctx;  /* digest-sign only */
        int pad;            /* RSA: RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
        bool mgf1_mismatch; /* an MGF1 digest other than the signature's was asked for */
} SigCtx;

static void *sig_newctx(void *provctx, const char *propq) {
        SigCtx *s = calloc(1, sizeof(*s));

        if (s)
                s->pad = RSA_PKCS1_PADDING;
        return s;
}

static void sig_freectx(void *ctx) {
        SigCtx *s = ctx;

        if (!s)
                return;
        EVP_MD_CTX_free(s->mdctx);
        EVP_MD_free(s->md);
        free(s);
}

static void *sig_dupctx(void *ctx) {
        const SigCtx *s = ctx;
        SigCtx *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        *c = *s;
        c->md = NULL;
        c->mdctx = NULL;
        if ((s->md && !EVP_MD_up_ref(s->md)) ||
            (s->mdctx && (!(c->mdctx = EVP_MD_CTX_new()) || !EVP_MD_CTX_copy_ex(c->mdctx, s->mdctx)))) {
                sig_freectx(c);
                return NULL;
        }
        c->md = s->md;
        return c;
}

static int sig_set_digest(SigCtx *s, const char *name) {
        EVP_MD *md;

        if (tpm_sign_hash_from_name(name) == TPM2_ALG_NULL) {
                ERR_raise_data(ERR_LIB_USER, ERR_R_UNSUPPORTED,
                               "the TPM key signs with SHA-256, -384 or -512, not %s", name);
                return 0;
        }
        md = EVP_MD_fetch(NULL, name, "provider=default");
        if (!md)
                return 0;
        EVP_MD_free(s->md);
        s->md = md;
        return 1;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[]) {
        SigCtx *s = ctx;
        const OSSL_PARAM *p;

        if (!s)
                return 0;
        if (!params)
                return 1;
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
        if (p) {
                const char *name = NULL;

                if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !sig_set_digest(s, name))
                        return 0;
        }
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
        if (p) {
                const char *mode = NULL;
                int pad = 0;

                if (p->data_type == OSSL_PARAM_UTF8_STRING && OSSL_PARAM_get_utf8_string_ptr(p, &mode))
                        pad = streq_ptr(mode, "pss")     ? RSA_PKCS1_PSS_PADDING
                              : streq_ptr(mode, "pkcs1") ? RSA_PKCS1_PADDING
                                                         : 0;
                else if (!OSSL_PARAM_get_int(p, &pad))
                        return 0;
                if (!streq_ptr(s->key ? s->key->type : "RSA", "RSA") ||
                    (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING)) {
                        ERR_raise_data(ERR_LIB_USER, ERR_R_UNSUPPORTED,
                                       "the TPM key signs with PKCS #1 v1.5 or PSS padding only");
                        return 0;
                }
                s->pad = pad;
        }
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
        if (p) {
                const char *len = NULL;
                int n = 0;

                /* The TPM's PSS salt is as long as the digest: what TLS requires. */
                if (p->data_type == OSSL_PARAM_UTF8_STRING && OSSL_PARAM_get_utf8_string_ptr(p, &len)) {
                        if (!streq_ptr(len, "digest") &&
                            !(s->md && atoi(len) == EVP_MD_get_size(s->md) && atoi(len) > 0)) {
                                ERR_raise_data(
                                        ERR_LIB_USER, ERR_R_UNSUPPORTED,
                                        "the TPM signs RSA-PSS with a salt as long as the digest, not '%s'",
                                        len);
                                return 0;
                        }
                } else if (!OSSL_PARAM_get_int(p, &n) ||
                           !(n == RSA_PSS_SALTLEN_DIGEST || (s->md && n == EVP_MD_get_size(s->md)))) {
                        ERR_raise_data(ERR_LIB_USER, ERR_R_UNSUPPORTED,
                                       "the TPM signs RSA-PSS with a salt as long as the digest, not %d", n);
                        return 0;
                }
        }
        p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
        if (p) {
                const char *name = NULL;

                if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
                        return 0;
                /* Checked at signing time, once the signature's digest is known. */
                s->mgf1_mismatch = !s->md || !EVP_MD_is_a(s->md, name);
        }
        return 1;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *ctx, void *provctx) {
        static const OSSL_PARAM settable[] = {
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
                OSSL_PARAM_END,
        };

        return settable;
}

/* The DER AlgorithmIdentifier of the signature, for X.509 structures. PSS
 * has parameters fleetid never needs in a CSR: not offered. */
static int sig_algorithm_id(const SigCtx *s, unsigned char **ret, int *ret_len) {
        int md_nid = s->md ? EVP_MD_get_type(s->md) : NID_sha256, sig_nid = NID_undef;
        bool ec = streq_ptr(s->key->type, "EC");
        X509_ALGOR *a;

        if (!ec && s->pad != RSA_PKCS1_PADDING)
                return 0;
        if (!OBJ_find_sigid_by_algs(&sig_nid, md_nid, ec ? NID_X9_62_id_ecPublicKey : NID_rsaEncryption))
                return 0;
        a = X509_ALGOR_new();
        if (!a || !X509_ALGOR_set0(a, OBJ_nid2obj(sig_nid), ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL)) {
                X509_ALGOR_free(a);
                return 0;
        }
        *ret = NULL;
        *ret_len = i2d_X509_ALGOR(a, ret);
        X509_ALGOR_free(a);
        return *ret_len > 0;
}

static int sig_get_ctx_params(void *ctx, OSSL_PARAM params[]) {
        SigCtx *s = ctx;
        OSSL_PARAM *p;

        if (!s || !s->key)
                return 0;
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
        if (p) {
                unsigned char *der = NULL;
                int len = 0, ok;

                if (!sig_algorithm_id(s, &der, &len))
                        return 0;
                ok = OSSL_PARAM_set_octet_string(p, der, (size_t) len);
                OPENSSL_free(der);
                if (!ok)
                        return 0;
        }
        p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
        if (p && !OSSL_PARAM_set_utf8_string(p, s->md ? EVP_MD_get0_name(s->md) : "SHA256"))
                return 0;
        return 1;
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *ctx, void *provctx) {
        static const OSSL_PARAM gettable[] = {
                OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
                OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
                OSSL_PARAM_END,
        };

        return gettable;
}

static int sig_init(void *ctx, void *keydata, const OSSL_PARAM params[]) {
        SigCtx *s = ctx;
        ProvKey *k = keydata;

        if (!s || !k || !k->tpm.esys) {
                ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT, "not a TPM private key");
                return 0;
        }
        s->key = k;
        s->pad = RSA_PKCS1_PADDING;
        s->mgf1_mismatch = false;
        return sig_set_ctx_params(s, params);
}

static int sig_sign(void *ctx, unsigned char *sig, size_t *sig_len, size_t sig_size,
                    const unsigned char *tbs, size_t tbs_len) {
        SigCtx *s = ctx;
        TPMI_ALG_HASH hash;
        TpmSignScheme scheme;
        Diag d = {};
        int max;

        max = EVP_PKEY_get_size(s->key->pub);
        if (max <= 0)
                return 0;
        if (!sig) {
                *sig_len = (size_t) max;
                return 1;
        }
        /* A raw digest: its algorithm is the one set, else told by its size. */
        hash = s->md           ? tpm_sign_hash_from_name(EVP_MD_get0_name(s->md))
               : tbs_len == 32 ? TPM2_ALG_SHA256
               : tbs_len == 48 ? TPM2_ALG_SHA384
               : tbs_len == 64 ? TPM2_ALG_SHA512
                               : TPM2_ALG_NULL;
        if (s->mgf1_mismatch) {
                ERR_raise_data(ERR_LIB_USER, ERR_R_UNSUPPORTED,
                               "the TPM's PSS uses MGF1 with the signature's digest");
                return 0;
        }
        scheme = streq_ptr(s->key->type, "EC")     ? TPM_SIGN_ECDSA
                 : s->pad == RSA_PKCS1_PSS_PADDING ? TPM_SIGN_RSAPSS
                                                   : TPM_SIGN_RSASSA;
        if (tpm_sign_digest(s->key->tpm.esys, s->key->tpm.handle, scheme, hash, tbs, tbs_len, sig, sig_len,
                            sig_size, &d) < 0) {
                raise_diag(&d);
                return 0;
        }
        return 1;
}

static int sig_digest_sign_init(void *ctx, const char *mdname, void *keydata, const OSSL_PARAM params[]) {
        SigCtx *s = ctx;

        if (!sig_init(ctx, keydata, NULL))
                return 0;
        if (!sig_set_digest(s, mdname ?: "SHA256"))
                return 0;
        if (!s->mdctx && !(s->mdctx = EVP_MD_CTX_new()))
                return 0;
        if (!EVP_DigestInit_ex2(s->mdctx, s->md, NULL))
                return 0;
        return sig_set_ctx_params(s, params);
}

static int sig_digest_sign_update(void *ctx, const unsigned char *data, size_t len) {
        SigCtx *s = ctx;

        return s && s->mdctx && EVP_DigestUpdate(s->mdctx, data, len);
}

static int sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *sig_len, size_t sig_size) {
        SigCtx *s = ctx;
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        if (!s || !s->mdctx)
                return 0;
        if (!sig)
                return sig_sign(ctx, NULL, sig_len, 0, NULL, 0);
        if (!EVP_DigestFinal_ex(s->mdctx, digest, &n))
                return 0;
        return sig_sign(ctx, sig, sig_len, sig_size, digest, n);
}

static const OSSL_DISPATCH signature_functions[] = {
        { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void)) sig_newctx },
        { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void)) sig_freectx },
        { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void)) sig_dupctx },
        { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void)) sig_init },
        { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void)) sig_sign },
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void)) sig_digest_sign_init },
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void)) sig_digest_sign_update },
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void)) sig_digest_sign_final },
        { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void)) sig_get_ctx_params },
        { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void)) sig_gettable_ctx_params },
        { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void)) sig_set_ctx_params },
        { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void)) sig_settable_ctx_params },
        { 0, NULL },
};

/* ---- the provider ---- */

static const OSSL_ALGORITHM keymgmt_algorithms[] = {
        { "EC:id-ecPublicKey:1.2.840.10045.2.1", PROVIDER_PROPS, ec_keymgmt, "EC keys in a TPM" },
        { "RSA:rsaEncryption:1.2.840.113549.1.1.1", PROVIDER_PROPS, rsa_keymgmt, "RSA keys in a TPM" },
        { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM signature_algorithms[] = {
        { "ECDSA", PROVIDER_PROPS, signature_functions, "ECDSA by a TPM key" },
        { "RSA:rsaEncryption:1.2.840.113549.1.1.1", PROVIDER_PROPS, signature_functions,
          "RSA signatures by a TPM key" },
        { NULL, NULL, NULL, NULL },
};

static const OSSL_ALGORITHM *provider_query(void *provctx, int operation_id, int *no_cache) {
        *no_cache = 0;
        switch (operation_id) {
        case OSSL_OP_KEYMGMT:
                return keymgmt_algorithms;
        case OSSL_OP_SIGNATURE:
                return signature_algorithms;
        default:
                return NULL;
        }
}

static const OSSL_DISPATCH provider_functions[] = {
        { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void)) provider_query },
        { 0, NULL },
};

static int provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                         void **provctx) {
        *out = provider_functions;
        *provctx = (void *) handle; /* no state of its own */
        return 1;
}

/* The TpmContext's library context: "default" (preferred, and for the public
 * key encoders X509_REQ_set_pubkey() needs) and "fleetid-tpm". */
static int provider_libctx(TpmContext *t, Diag *d) {
        if (t->libctx)
                return 0;
        t->libctx = OSSL_LIB_CTX_new();
        if (!t->libctx)
                return diag_set_ssl(d, -ENOMEM, "cannot create an OpenSSL library context");
        if (!OSSL_PROVIDER_add_builtin(t->libctx, PROVIDER_NAME, provider_init) ||
            !(t->providers[0] = OSSL_PROVIDER_load(t->libctx, "default")) ||
            !(t->providers[1] = OSSL_PROVIDER_load(t->libctx, PROVIDER_NAME)) ||
            !EVP_set_default_properties(t->libctx, "?provider=default")) {
                tpm_provider_release(t);
                return diag_set_ssl(d, -EIO, "cannot set up the " PROVIDER_NAME " OpenSSL provider");
        }
        return 0;
}

void tpm_provider_release(TpmContext *t) {
        /* OSSL_PROVIDER_load() returns a reference of the caller's: freeing the
         * library context drops only its own, so each provider is unloaded
         * first (else ~900 bytes leak per TpmContext that loaded a key). */
        for (size_t i = 0; i < ELEMENTSOF(t->providers); i++)
                if (t->providers[i]) {
                        OSSL_PROVIDER_unload(t->providers[i]);
                        t->providers[i] = NULL;
                }
        OSSL_LIB_CTX_free(t->libctx);
        t->libctx = NULL;
}

int tpm_provider_load_key(TpmContext *t, uint32_t handle, EVP_PKEY **ret, Diag *d) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        OSSL_PARAM *pub_params = NULL, *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        EVP_PKEY *key = NULL;
        TpmKeyRef ref = { .esys = t->esys };
        OSSL_PARAM tpm_param[] = {
                OSSL_PARAM_octet_string(PARAM_TPM_KEY, &ref, sizeof(ref)),
                OSSL_PARAM_END,
        };
        int r;

        r = provider_libctx(t, d);
        if (r < 0)
                return r;
        r = tpm_key_open(t, handle, &ref.handle, &pub, NULL, d);
        if (r < 0)
                return r;

        r = -EIO;
        if (EVP_PKEY_todata(pub, EVP_PKEY_PUBLIC_KEY, &pub_params) > 0 &&
            (params = OSSL_PARAM_merge(pub_params, tpm_param)) &&
            (ctx = EVP_PKEY_CTX_new_from_name(t->libctx, EVP_PKEY_get0_type_name(pub), PROVIDER_PROPS)) &&
            EVP_PKEY_fromdata_init(ctx) > 0 && EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) > 0)
                r = 0;
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_free(pub_params);
        if (r < 0) /* the ESYS handle stays the TpmContext's (tpm_key_open) */
                return diag_set_ssl(d, r, "TPM key 0x%08x could not be made an OpenSSL key", handle);
        *ret = key;
        return 0;
}
