/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "tpm/tpm-birth-key.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-resource.h"

/* TCG "TPM 2.0 Keys for Device Identity and Attestation", the IDevID key
 * templates: the authPolicy digests (PolicyOR of the policies that allow
 * TPM2_Certify, TPM2_ActivateCredential and the like through the endorsement
 * hierarchy) and the unique value "IDEVID", as rust-keylime
 * (keylime/src/tpm.rs) has them. */
static const uint8_t idevid_policy_sha256[32] = {
        0xad, 0x6b, 0x3a, 0x22, 0x84, 0xfd, 0x69, 0x8a, 0x07, 0x10, 0xbf, 0x5c, 0xc1, 0xb9, 0xbd, 0xf1,
        0x5e, 0x25, 0x32, 0xe3, 0xf6, 0x01, 0xfa, 0x4b, 0x93, 0xa6, 0xa8, 0xfa, 0x8d, 0xe5, 0x79, 0xea,
};
static const uint8_t idevid_policy_sha384[48] = {
        0x4d, 0xb1, 0xaa, 0x83, 0x6d, 0x0b, 0x56, 0x15, 0xdf, 0x6e, 0xe5, 0x3a, 0x40, 0xef, 0x70, 0xc6,
        0x1c, 0x21, 0x7f, 0x43, 0x03, 0xd4, 0x46, 0x95, 0x92, 0x59, 0x72, 0xbc, 0x92, 0x70, 0x06, 0xcf,
        0xa5, 0xcb, 0xdf, 0x6d, 0xc1, 0x8c, 0x4d, 0xbe, 0x32, 0x9b, 0x2f, 0x15, 0x42, 0xc3, 0xdd, 0x33,
};
static const char idevid_unique[] = "IDEVID"; /* without the NUL */

/* The TCG templates' objectAttributes: fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, adminWithPolicy, sign; not noDA, not
 * restricted, not decrypt. fleetid's template adds noDA: the authValue is
 * empty, so dictionary-attack protection guards nothing and only lets a
 * lockout take the birth identity away (docs/provisioning.md). */
#define BIRTH_KEY_ATTRIBUTES_TCG                                                            \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_SIGN_ENCRYPT)

static const char *const birth_template_names[_BIRTH_TEMPLATE_MAX] = {
        [BIRTH_TEMPLATE_FLEETID] = "fleetid",
        [BIRTH_TEMPLATE_TCG] = "tcg",
};

const char *birth_template_to_string(BirthTemplate t) {
        if (t < 0 || t >= _BIRTH_TEMPLATE_MAX)
                return NULL;
        return birth_template_names[t];
}

BirthTemplate birth_template_from_string(const char *s) {
        for (BirthTemplate t = 0; s && t < _BIRTH_TEMPLATE_MAX; t++)
                if (strcmp(s, birth_template_names[t]) == 0)
                        return t;
        return _BIRTH_TEMPLATE_INVALID;
}

int tpm_birth_key_template(KeyAlgorithm alg, BirthTemplate which, TPM2B_PUBLIC *ret) {
        const size_t u = sizeof(idevid_unique) - 1;
        TPM2B_PUBLIC p = {
                .publicArea = {
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = BIRTH_KEY_ATTRIBUTES_TCG,
                        .authPolicy = { .size = sizeof(idevid_policy_sha256) },
                },
        };
        TPMT_PUBLIC *a = &p.publicArea;

        if (which < 0 || which >= _BIRTH_TEMPLATE_MAX)
                return -EINVAL;
        if (which == BIRTH_TEMPLATE_FLEETID)
                a->objectAttributes |= TPMA_OBJECT_NODA;
        memcpy(a->authPolicy.buffer, idevid_policy_sha256, sizeof(idevid_policy_sha256));
        switch (alg) {
        case KEY_ALG_RSA_2048: /* H-1 */
                a->type = TPM2_ALG_RSA;
                a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
                a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                a->parameters.rsaDetail.keyBits = 2048;
                a->parameters.rsaDetail.exponent = 0; /* 65537 */
                a->unique.rsa.size = u;
                memcpy(a->unique.rsa.buffer, idevid_unique, u);
                break;
        case KEY_ALG_ECC_P384: /* H-3 (but the scheme, below): SHA-384 names and policy */
                a->nameAlg = TPM2_ALG_SHA384;
                a->authPolicy.size = sizeof(idevid_policy_sha384);
                memcpy(a->authPolicy.buffer, idevid_policy_sha384, sizeof(idevid_policy_sha384));
                __attribute__((fallthrough));
        case KEY_ALG_ECC_P256: /* H-2 */
                a->type = TPM2_ALG_ECC;
                a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
                /* H-2 fixes ECDSA with SHA-256, which is what fleetid signs with.
                 * H-3 fixes ECDSA with SHA-384: fleetid leaves the scheme to each
                 * signature instead (TPM2_ALG_NULL, as H-1 does), since the
                 * SignChallenge formula (crypto/challenge.h) and a TLS 1.2
                 * handshake sign SHA-256 digests with a P-384 key too. */
                if (alg == KEY_ALG_ECC_P256) {
                        a->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
                        a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
                } else
                        a->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
                a->parameters.eccDetail.curveID =
                        alg == KEY_ALG_ECC_P256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
                a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
                a->unique.ecc.x.size = a->unique.ecc.y.size = u;
                memcpy(a->unique.ecc.x.buffer, idevid_unique, u);
                memcpy(a->unique.ecc.y.buffer, idevid_unique, u);
                break;
        default:
                return -EOPNOTSUPP;
        }
        *ret = p;
        return 0;
}

/* TPM2_CreatePrimary from template; with expect, the key made must be it
 * (else -EKEYREJECTED and nothing is persisted); then persisted at handle. */
static int make(TpmContext *t, const TPM2B_PUBLIC *template, uint32_t handle, bool replace, EVP_PKEY *expect,
                EVP_PKEY **ret_pub, Diag *d) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        TPM2B_PUBLIC *out = NULL;
        ESYS_TR primary = ESYS_TR_NONE;
        int r;

        r = tpm_create_primary(t, ESYS_TR_RH_ENDORSEMENT, template, &primary, &out,
                               "cannot make the birth key in the endorsement hierarchy", d);
        if (r < 0)
                return r;

        r = tpm_public_to_pkey(out, handle, &pub, d);
        if (r >= 0 && expect && EVP_PKEY_eq(pub, expect) != 1)
                r = diag_set(d, -EKEYREJECTED,
                             "the birth key made from its template is not the key of the birth certificate: "
                             "this TPM's endorsement seed is not the one the certificate was made for");
        if (r >= 0)
                r = tpm_key_persist(t, primary, handle, replace, NULL, d);
        Esys_FlushContext(t->esys, primary);
        Esys_Free(out);
        if (r < 0)
                return r;
        if (ret_pub)
                *ret_pub = TAKE_PTR(pub);
        return 0;
}

static int no_template(KeyAlgorithm alg, Diag *d) {
        return diag_set(d, -EOPNOTSUPP,
                        "the TCG gives no IDevID key template for %s (use ecc-p256, ecc-p384 or rsa-2048)",
                        key_algorithm_to_string(alg) ?: "this algorithm");
}

int tpm_birth_key_create(TpmContext *t, KeyAlgorithm alg, BirthTemplate which, uint32_t handle, bool replace,
                         EVP_PKEY **ret_pub, Diag *d) {
        TPM2B_PUBLIC template;
        int r;

        r = tpm_birth_key_template(alg, which, &template);
        if (r == -EOPNOTSUPP)
                return no_template(alg, d);
        if (r < 0)
                return diag_set(d, r, "unknown birth key template");
        return make(t, &template, handle, replace, NULL, ret_pub, d);
}

int tpm_birth_key_recreate(TpmContext *t, KeyAlgorithm alg, uint32_t handle, EVP_PKEY *expect,
                           BirthTemplate *ret_template, Diag *d) {
        int r = -EKEYREJECTED;

        for (BirthTemplate which = 0; which < _BIRTH_TEMPLATE_MAX; which++) {
                TPM2B_PUBLIC template;

                if (tpm_birth_key_template(alg, which, &template) < 0)
                        return no_template(alg, d);
                diag_clear(d);
                r = make(t, &template, handle, false, expect, NULL, d);
                if (r == -EKEYREJECTED)
                        continue;
                if (r >= 0 && ret_template)
                        *ret_template = which;
                return r;
        }
        return r;
}

/* Everything but the key itself (unique) as the template has it. */
static bool same_shape(const TPMT_PUBLIC *a, const TPMT_PUBLIC *t) {
        if (a->type != t->type || a->nameAlg != t->nameAlg || a->objectAttributes != t->objectAttributes ||
            a->authPolicy.size != t->authPolicy.size ||
            memcmp(a->authPolicy.buffer, t->authPolicy.buffer, t->authPolicy.size) != 0)
                return false;
        if (t->type == TPM2_ALG_RSA)
                return a->parameters.rsaDetail.symmetric.algorithm ==
                               t->parameters.rsaDetail.symmetric.algorithm &&
                       a->parameters.rsaDetail.scheme.scheme == t->parameters.rsaDetail.scheme.scheme &&
                       a->parameters.rsaDetail.keyBits == t->parameters.rsaDetail.keyBits &&
                       a->parameters.rsaDetail.exponent == t->parameters.rsaDetail.exponent;
        return a->parameters.eccDetail.symmetric.algorithm == t->parameters.eccDetail.symmetric.algorithm &&
               a->parameters.eccDetail.scheme.scheme == t->parameters.eccDetail.scheme.scheme &&
               a->parameters.eccDetail.scheme.details.ecdsa.hashAlg ==
                       t->parameters.eccDetail.scheme.details.ecdsa.hashAlg &&
               a->parameters.eccDetail.curveID == t->parameters.eccDetail.curveID &&
               a->parameters.eccDetail.kdf.scheme == t->parameters.eccDetail.kdf.scheme;
}

int tpm_birth_key_template_of(TpmContext *t, uint32_t handle, BirthTemplate *ret, Diag *d) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        TPM2B_PUBLIC pub = {};
        ESYS_TR obj;
        int r;

        r = tpm_key_open(t, handle, &obj, &pkey, NULL, d);
        if (r < 0)
                return r;
        r = tpm_resource_public(t, obj, &pub, d);
        if (r < 0)
                return r;
        for (BirthTemplate which = 0; which < _BIRTH_TEMPLATE_MAX; which++) {
                TPM2B_PUBLIC template;

                if (tpm_birth_key_template(key_algorithm_of_pkey(pkey), which, &template) < 0)
                        return 0;
                if (same_shape(&pub.publicArea, &template.publicArea)) {
                        *ret = which;
                        return 1;
                }
        }
        return 0;
}

int tpm_birth_key_is_recreatable(TpmContext *t, uint32_t handle, Diag *d) {
        BirthTemplate which;

        return tpm_birth_key_template_of(t, handle, &which, d);
}
