/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <string.h>
#include <tss2/tss2_rc.h>

#include "crypto/ossl-util.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-resource.h"

/* TCG "TPM v2.0 Provisioning Guidance", SRK template for ECC NIST P-256
 * (the same one tpm2-tools, systemd and tpm2-openssl use). */
TPM2B_PUBLIC tpm_srk_template(void) {
        TPM2B_PUBLIC p = {
                .publicArea = {
                        .type = TPM2_ALG_ECC,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                            TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                            TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                                            TPMA_OBJECT_DECRYPT,
                        .parameters.eccDetail = {
                                .symmetric = { .algorithm = TPM2_ALG_AES,
                                               .keyBits.aes = 128,
                                               .mode.aes = TPM2_ALG_CFB },
                                .scheme.scheme = TPM2_ALG_NULL,
                                .curveID = TPM2_ECC_NIST_P256,
                                .kdf.scheme = TPM2_ALG_NULL,
                        },
                },
        };
        return p;
}

static int key_template(KeyAlgorithm alg, TPM2B_PUBLIC *ret) {
        TPM2B_PUBLIC p = {
                .publicArea = {
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPM_KEY_ATTRIBUTES,
                },
        };

        switch (alg) {
        case KEY_ALG_ECC_P256:
        case KEY_ALG_ECC_P384:
                p.publicArea.type = TPM2_ALG_ECC;
                p.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
                p.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
                p.publicArea.parameters.eccDetail.curveID =
                        alg == KEY_ALG_ECC_P256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
                p.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
                break;
        case KEY_ALG_RSA_2048:
        case KEY_ALG_RSA_3072:
                p.publicArea.type = TPM2_ALG_RSA;
                p.publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
                p.publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                p.publicArea.parameters.rsaDetail.keyBits = alg == KEY_ALG_RSA_2048 ? 2048 : 3072;
                p.publicArea.parameters.rsaDetail.exponent = 0; /* 65537 */
                break;
        default:
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

/* A default-provider public key of type `name` from the parameters in bld. */
static int pkey_from_params(const char *name, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = NULL;
        int r = -EIO;

        if (params && (ctx = EVP_PKEY_CTX_new_from_name(NULL, name, "provider=default")) &&
            EVP_PKEY_fromdata_init(ctx) > 0 && EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) > 0)
                r = 0;
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        return r;
}

static int ecc_public_to_pkey(const TPMS_ECC_POINT *point, TPMI_ECC_CURVE curve, EVP_PKEY **ret, Diag *d) {
        _cleanup_free_ uint8_t *octets = NULL;
        OSSL_PARAM_BLD *bld = NULL;
        const char *group;
        size_t n, len;
        int r = -EIO;

        switch (curve) {
        case TPM2_ECC_NIST_P256:
                group = "P-256";
                n = 32;
                break;
        case TPM2_ECC_NIST_P384:
                group = "P-384";
                n = 48;
                break;
        default:
                return diag_set(d, -EOPNOTSUPP, "unsupported ECC curve 0x%x in the TPM key", curve);
        }
        if (point->x.size > n || point->y.size > n)
                return diag_set(d, -EBADMSG, "malformed ECC point in the TPM key");

        /* Uncompressed point: 0x04 || X || Y, each left-padded to the field size. */
        len = 1 + 2 * n;
        octets = calloc(1, len);
        if (!octets)
                return -ENOMEM;
        octets[0] = 0x04;
        memcpy(octets + 1 + n - point->x.size, point->x.buffer, point->x.size);
        memcpy(octets + 1 + 2 * n - point->y.size, point->y.buffer, point->y.size);

        bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, octets, len))
                r = pkey_from_params("EC", bld, ret);
        OSSL_PARAM_BLD_free(bld);
        if (r < 0)
                return diag_set_ssl(d, r, "cannot convert the TPM's EC public key");
        return 0;
}

static int rsa_public_to_pkey(const TPM2B_PUBLIC_KEY_RSA *modulus, UINT32 exponent, EVP_PKEY **ret, Diag *d) {
        OSSL_PARAM_BLD *bld = NULL;
        BIGNUM *n = NULL, *e = NULL;
        int r = -EIO;

        n = BN_bin2bn(modulus->buffer, modulus->size, NULL);
        e = BN_new();
        if (!n || !e || !BN_set_word(e, exponent ? exponent : 65537))
                goto out;
        bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
                r = pkey_from_params("RSA", bld, ret);
out:
        if (r < 0)
                diag_set_ssl(d, r, "cannot convert the TPM's RSA public key");
        OSSL_PARAM_BLD_free(bld);
        BN_free(n);
        BN_free(e);
        return r;
}

int tpm_public_to_pkey(const TPM2B_PUBLIC *pub, uint32_t handle, EVP_PKEY **ret, Diag *d) {
        switch (pub->publicArea.type) {
        case TPM2_ALG_ECC:
                return ecc_public_to_pkey(&pub->publicArea.unique.ecc,
                                          pub->publicArea.parameters.eccDetail.curveID, ret, d);
        case TPM2_ALG_RSA:
                return rsa_public_to_pkey(&pub->publicArea.unique.rsa,
                                          pub->publicArea.parameters.rsaDetail.exponent, ret, d);
        default:
                return diag_set(d, -EOPNOTSUPP, "TPM key at 0x%08x is neither ECC nor RSA", handle);
        }
}

KeyAlgorithm key_algorithm_of_pkey(EVP_PKEY *pkey) {
        int bits = pkey ? EVP_PKEY_get_bits(pkey) : 0;
        char group[64] = "";

        /* By the curve's name, not its size: secp256k1 or brainpoolP256r1 are
         * 256-bit curves too, and neither is P-256. */
        if (pkey && EVP_PKEY_is_a(pkey, "EC")) {
                if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) <= 0)
                        return _KEY_ALG_INVALID;
                return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0  ? KEY_ALG_ECC_P256
                       : strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0 ? KEY_ALG_ECC_P384
                                                                                        : _KEY_ALG_INVALID;
        }
        if (pkey && EVP_PKEY_is_a(pkey, "RSA"))
                return bits == 2048 ? KEY_ALG_RSA_2048 : bits == 3072 ? KEY_ALG_RSA_3072 : _KEY_ALG_INVALID;
        return _KEY_ALG_INVALID;
}

int tpm_key_test(TpmContext *t, KeyAlgorithm alg, const char *digest, Diag *d) {
        TPM2B_PUBLIC template;
        TPMT_PUBLIC_PARMS parms = {};
        TPMI_ALG_HASH hash;
        TSS2_RC rc;
        int r;

        if (key_template(alg, &template) < 0)
                return diag_set(d, -EINVAL, "unsupported key algorithm");
        if (streq_ptr(digest, "SHA256"))
                hash = TPM2_ALG_SHA256;
        else if (streq_ptr(digest, "SHA384"))
                hash = TPM2_ALG_SHA384;
        else if (streq_ptr(digest, "SHA512"))
                hash = TPM2_ALG_SHA512;
        else
                return diag_set(d, -EINVAL, "unsupported digest %s", strempty(digest));

        /* The key's own parameters, with the signing scheme it will be used with:
         * the TPM checks the type, curve or size, and the hash at once. */
        parms.type = template.publicArea.type;
        parms.parameters = template.publicArea.parameters;
        if (parms.type == TPM2_ALG_ECC) {
                parms.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
                parms.parameters.eccDetail.scheme.details.ecdsa.hashAlg = hash;
        } else {
                parms.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
                parms.parameters.rsaDetail.scheme.details.rsassa.hashAlg = hash;
        }
        rc = Esys_TestParms(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &parms);
        if (rc == TSS2_RC_SUCCESS)
                return 0;
        r = tpm_rc_to_errno(rc);
        if (tpm_error_is_transient(r))
                return tpm_diag(d, rc, "cannot ask the TPM which keys it supports");
        return diag_set(d, -EOPNOTSUPP, "the TPM cannot make %s keys signing with %s (%s)",
                        key_algorithm_to_string(alg), digest, Tss2_RC_Decode(rc));
}

/* The open key at handle in t->open_keys, or NULL. */
static TpmOpenKey *open_key_find(TpmContext *t, uint32_t handle) {
        for (size_t i = 0; i < t->n_open_keys; i++)
                if (t->open_keys[i].handle == handle)
                        return &t->open_keys[i];
        return NULL;
}

/* Keeps obj as the ESYS handle of the persistent key at handle; on failure
 * closes it. */
static int open_key_remember(TpmContext *t, uint32_t handle, ESYS_TR obj) {
        TpmOpenKey *keys = reallocarray(t->open_keys, t->n_open_keys + 1, sizeof(*keys));

        if (!keys) {
                Esys_TR_Close(t->esys, &obj);
                return -ENOMEM;
        }
        keys[t->n_open_keys++] = (TpmOpenKey) { .handle = handle, .obj = obj };
        t->open_keys = keys;
        return 0;
}

/* Closes the ESYS handle of the key at handle, which is no longer there. */
static void open_key_forget(TpmContext *t, uint32_t handle) {
        TpmOpenKey *k = open_key_find(t, handle);

        if (!k)
                return;
        /* ESYS keeps the resource after evicting it, with the old key's name: left
         * open, it makes the next Esys_TR_FromTPMPublic() of this handle (the key
         * that replaces it) fail with a name mismatch. */
        Esys_TR_Close(t->esys, &k->obj);
        *k = t->open_keys[--t->n_open_keys];
}

/* The ESYS handle of the persistent key at handle: the one this connection
 * opened already, or a new one (one TPM2_ReadPublic). */
static int open_key(TpmContext *t, uint32_t handle, ESYS_TR *ret, Diag *d) {
        TpmOpenKey *k = open_key_find(t, handle);
        ESYS_TR obj = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (k) {
                *ret = k->obj;
                return 0;
        }
        rc = Esys_TR_FromTPMPublic(t->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &obj);
        if (tpm_rc_to_errno(rc) == -ENOENT)
                return diag_set(d, -ENOENT, "no key at TPM handle 0x%08x", handle);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot open the TPM key");
        r = open_key_remember(t, handle, obj);
        if (r < 0)
                return r;
        *ret = obj;
        return 0;
}

int tpm_create_primary(TpmContext *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *template, ESYS_TR *ret,
                       TPM2B_PUBLIC **ret_public, const char *what, Diag *d) {
        TPM2B_SENSITIVE_CREATE sensitive = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION pcrs = {};
        TSS2_RC rc;

        rc = Esys_CreatePrimary(t->esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                                template, &outside, &pcrs, ret, ret_public, NULL, NULL, NULL);
        return rc == TSS2_RC_SUCCESS ? 0 : tpm_diag(d, rc, what);
}

int tpm_srk_ensure(TpmContext *t, uint32_t srk_handle, ESYS_TR *ret, Diag *d) {
        TPM2B_PUBLIC template = tpm_srk_template();
        ESYS_TR transient = ESYS_TR_NONE;
        Diag od = {};
        int r;

        /* One ReadPublic both tells whether the SRK exists and opens it; once
         * per TpmContext, like every persistent key. */
        r = open_key(t, srk_handle, ret, &od);
        if (r >= 0)
                return 0;
        if (r != -ENOENT)
                return diag_set(d, r, "cannot open the storage root key: %s", diag_text(&od, r));

        r = tpm_create_primary(t, ESYS_TR_RH_OWNER, &template, &transient, NULL,
                               "cannot create the storage root key", d);
        if (r < 0)
                return r;
        r = tpm_key_persist(t, transient, srk_handle, false, ret, d);
        Esys_FlushContext(t->esys, transient);
        if (r < 0)
                return diag_prefix(d, r, "storage root key");
        return 1;
}

int tpm_key_evict(TpmContext *t, uint32_t handle, Diag *d) {
        ESYS_TR obj = ESYS_TR_NONE, none = ESYS_TR_NONE;
        Diag od = {};
        TSS2_RC rc;
        int r;

        r = open_key(t, handle, &obj, &od);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return diag_set(d, r, "cannot evict the persistent key: %s", diag_text(&od, r));
        rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               handle, &none);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, "cannot evict the persistent key");
        open_key_forget(t, handle);
        return 1;
}

int tpm_key_persist(TpmContext *t, ESYS_TR loaded, uint32_t handle, bool replace, ESYS_TR *ret_obj, Diag *d) {
        ESYS_TR persistent = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        /* The new key exists and is loaded: only now may the old one go. */
        if (replace) {
                r = tpm_key_evict(t, handle, d);
                if (r < 0)
                        return r;
        }
        /* No probe for an occupied handle: EvictControl refuses it (NV_DEFINED),
         * and the caller flushes the transient key, so nothing changes. */
        rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, loaded, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, handle, &persistent);
        if (tpm_rc_to_errno(rc) == -EEXIST)
                return diag_set(d, -EEXIST, "a key already exists at TPM handle 0x%08x", handle);
        if (rc != TSS2_RC_SUCCESS) {
                char what[96];

                snprintf(what, sizeof(what), "cannot make the key persistent at 0x%08x", handle);
                return tpm_diag(d, rc, what);
        }
        /* ESYS knows the new key (its creation returned the public area):
         * whoever uses it on this connection needs not read it back. A handle
         * kept for a key that went away behind this connection's back is
         * dropped. */
        open_key_forget(t, handle);
        r = open_key_remember(t, handle, persistent);
        if (r >= 0 && ret_obj)
                *ret_obj = persistent;
        return r;
}

int tpm_key_create_persistent(TpmContext *t, uint32_t srk_handle, KeyAlgorithm alg, uint32_t handle,
                              bool replace, EVP_PKEY **ret_pub, Diag *d) {
        return tpm_key_create_persistent_with(t, srk_handle, alg, handle, replace, NULL, NULL, ret_pub, d);
}

int tpm_key_create_persistent_with(TpmContext *t, uint32_t srk_handle, KeyAlgorithm alg, uint32_t handle,
                                   bool replace, TpmKeyBeforePersistFn before_persist, void *userdata,
                                   EVP_PKEY **ret_pub, Diag *d) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        TPM2B_SENSITIVE_CREATE sensitive = {};
        TPM2B_DATA outside = {};
        TPML_PCR_SELECTION pcrs = {};
        TPM2B_PUBLIC template;
        TPM2B_PRIVATE *priv = NULL;
        TPM2B_PUBLIC *pub = NULL;
        ESYS_TR srk = ESYS_TR_NONE, loaded = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (key_template(alg, &template) < 0)
                return diag_set(d, -EINVAL, "unsupported key algorithm");

        r = tpm_srk_ensure(t, srk_handle, &srk, d); /* the TpmContext's: not closed here */
        if (r < 0)
                return r;

        rc = Esys_Create(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &template,
                         &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_diag(d, rc, "cannot create the key in the TPM");
                goto out;
        }

        rc = Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &loaded);
        if (rc != TSS2_RC_SUCCESS) {
                r = tpm_diag(d, rc, "cannot load the new key");
                goto out;
        }
        /* The public key from Create's answer, before the key can outlive this
         * process: what before_persist records of it comes first. */
        if (ret_pub || before_persist) {
                r = tpm_public_to_pkey(pub, handle, &pkey, d);
                if (r < 0)
                        goto out;
        }
        if (before_persist) {
                r = before_persist(pkey, userdata, d);
                if (r < 0)
                        goto out;
        }
        r = tpm_key_persist(t, loaded, handle, replace, NULL, d);
        if (r >= 0 && ret_pub)
                *ret_pub = TAKE_PTR(pkey);
out:
        if (loaded != ESYS_TR_NONE)
                Esys_FlushContext(t->esys, loaded);
        if (priv)
                explicit_bzero(priv, sizeof(*priv)); /* wrapped by the TPM, but no need to keep it */
        Esys_Free(priv);
        Esys_Free(pub);
        return r;
}

int tpm_key_open(TpmContext *t, uint32_t handle, ESYS_TR *ret_obj, EVP_PKEY **ret, uint32_t *ret_attributes,
                 Diag *d) {
        ESYS_TR obj = ESYS_TR_NONE;
        TPM2B_PUBLIC pub;
        int r;

        /* At most one TPM2_ReadPublic per key and connection: ESYS keeps its
         * answer, which tpm_resource_public() reads. */
        r = open_key(t, handle, &obj, d);
        if (r < 0)
                return r;
        r = tpm_resource_public(t, obj, &pub, d);
        if (r >= 0)
                r = tpm_public_to_pkey(&pub, handle, ret, d);
        if (r < 0)
                return r;
        if (ret_attributes)
                *ret_attributes = pub.publicArea.objectAttributes;
        if (ret_obj)
                *ret_obj = obj;
        return 0;
}

int tpm_key_read_public(TpmContext *t, uint32_t handle, EVP_PKEY **ret, uint32_t *ret_attributes, Diag *d) {
        return tpm_key_open(t, handle, NULL, ret, ret_attributes, d);
}

int tpm_key_check_attributes(uint32_t attributes, Diag *d) {
        const uint32_t required = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                  TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT;

        if ((attributes & required) != required)
                return diag_set(d, -EKEYREJECTED,
                                "TPM key attributes 0x%08x lack fixedTPM, fixedParent, "
                                "sensitiveDataOrigin or sign: the key could have been imported or "
                                "be exportable",
                                attributes);
        if (attributes & (TPMA_OBJECT_ENCRYPTEDDUPLICATION | TPMA_OBJECT_RESTRICTED))
                return diag_set(d, -EKEYREJECTED,
                                "TPM key attributes 0x%08x are not those of a "
                                "plain signing key",
                                attributes);
        return 0;
}

int tpm_attributes_to_string(uint32_t a, char **ret) {
        static const struct {
                uint32_t bit;
                const char *name;
        } table[] = {
                { TPMA_OBJECT_FIXEDTPM, "fixedTPM" },
                { TPMA_OBJECT_STCLEAR, "stClear" },
                { TPMA_OBJECT_FIXEDPARENT, "fixedParent" },
                { TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" },
                { TPMA_OBJECT_USERWITHAUTH, "userWithAuth" },
                { TPMA_OBJECT_ADMINWITHPOLICY, "adminWithPolicy" },
                { TPMA_OBJECT_NODA, "noDA" },
                { TPMA_OBJECT_ENCRYPTEDDUPLICATION, "encryptedDuplication" },
                { TPMA_OBJECT_RESTRICTED, "restricted" },
                { TPMA_OBJECT_DECRYPT, "decrypt" },
                { TPMA_OBJECT_SIGN_ENCRYPT, "sign" },
        };
        char buf[256] = "";
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (a & table[i].bit)
                        n += snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? "|" : "", table[i].name);
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}
