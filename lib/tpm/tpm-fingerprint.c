/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/ossl-util.h"
#include "tpm/tpm-fingerprint.h"
#include "tpm/tpm-key.h"

/* TCG EK Credential Profile for TPM Family 2.0, template L-2 (ECC NIST
 * P-256, low range): PolicyA (TPM2_PolicySecret of the endorsement
 * hierarchy) as authPolicy, AES-128-CFB, restricted decryption key, the
 * unique field 32 + 32 zero bytes. tpm2_createek -G ecc makes the same key. */
static TPM2B_PUBLIC ek_template(void) {
        static const uint8_t policy_a_sha256[32] = {
                0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
        };
        /* The SRK template's parameters (AES-128-CFB, no scheme, NIST P-256, no
         * KDF), with the EK's attributes, policy and unique field. */
        TPM2B_PUBLIC p = tpm_srk_template();

        p.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                        TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                                        TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
        p.publicArea.authPolicy.size = sizeof(policy_a_sha256);
        p.publicArea.unique.ecc.x.size = 32; /* zeros */
        p.publicArea.unique.ecc.y.size = 32;
        memcpy(p.publicArea.authPolicy.buffer, policy_a_sha256, sizeof(policy_a_sha256));
        return p;
}

static int object_name(TpmContext *t, ESYS_TR obj, TPM2B_NAME *ret, const char *what, Diag *d) {
        TPM2B_NAME *name = NULL;
        TSS2_RC rc;

        rc = Esys_TR_GetName(t->esys, obj, &name);
        if (rc != TSS2_RC_SUCCESS)
                return tpm_diag(d, rc, what);
        *ret = *name;
        Esys_Free(name);
        return 0;
}

/* The name of the primary key template gives in hierarchy, made and flushed again. */
static int primary_name(TpmContext *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *template, TPM2B_NAME *ret,
                        const char *what, Diag *d) {
        ESYS_TR obj = ESYS_TR_NONE;
        int r;

        r = tpm_create_primary(t, hierarchy, template, &obj, NULL, what, d);
        if (r < 0)
                return r;
        r = object_name(t, obj, ret, what, d);
        Esys_FlushContext(t->esys, obj);
        return r;
}

int tpm_fingerprint_read(TpmContext *t, uint32_t srk_handle, TpmFingerprint *ret, Diag *d) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        TPM2B_PUBLIC ek = ek_template(), srk_template = tpm_srk_template();
        ESYS_TR srk = ESYS_TR_NONE;
        TpmFingerprint f = {};
        int r;

        /* The SRK at its handle (one ReadPublic, none if it was opened through
         * t already); if there is none (a cleared TPM, or another one), the
         * name it will have, from a transient one: nothing is left in the TPM. */
        r = tpm_key_open(t, srk_handle, &srk, &pub, NULL, d);
        if (r == -ENOENT) {
                diag_clear(d);
                r = primary_name(t, ESYS_TR_RH_OWNER, &srk_template, &f.srk,
                                 "cannot make a storage root key", d);
        } else if (r >= 0)
                r = object_name(t, srk, &f.srk, "cannot read the storage root key's name", d);
        if (r >= 0)
                r = primary_name(t, ESYS_TR_RH_ENDORSEMENT, &ek, &f.ek, "cannot make the endorsement key", d);
        if (r < 0)
                return r;
        *ret = f;
        return 0;
}

static bool name_eq(const TPM2B_NAME *a, const TPM2B_NAME *b) {
        return a->size == b->size && memcmp(a->name, b->name, a->size) == 0;
}

TpmChange tpm_fingerprint_compare(const TpmFingerprint *was, const TpmFingerprint *now) {
        if (!name_eq(&was->ek, &now->ek))
                return TPM_CHANGE_REPLACED;
        if (!name_eq(&was->srk, &now->srk))
                return TPM_CHANGE_CLEARED;
        return TPM_CHANGE_NONE;
}

static void hex(const TPM2B_NAME *n, size_t max, char *buf) {
        size_t len = n->size < max ? n->size : max;

        for (size_t i = 0; i < len; i++)
                sprintf(buf + 2 * i, "%02x", n->name[i]);
        buf[2 * len] = '\0';
}

int tpm_fingerprint_format(const TpmFingerprint *f, char **ret) {
        char srk[2 * sizeof(f->srk.name) + 1], ek[2 * sizeof(f->ek.name) + 1];

        hex(&f->srk, sizeof(f->srk.name), srk);
        hex(&f->ek, sizeof(f->ek.name), ek);
        return asprintf(ret, "srk=%s\nek=%s\n", srk, ek) < 0 ? -ENOMEM : 0;
}

static int unhex(const char *p, size_t len, TPM2B_NAME *ret) {
        if (len == 0 || len % 2 != 0 || len / 2 > sizeof(ret->name))
                return -EBADMSG;
        for (size_t i = 0; i < len / 2; i++) {
                unsigned v = 0;

                for (size_t k = 0; k < 2; k++) {
                        char c = p[2 * i + k];

                        if (c >= '0' && c <= '9')
                                v = v * 16 + (unsigned) (c - '0');
                        else if (c >= 'a' && c <= 'f')
                                v = v * 16 + (unsigned) (c - 'a' + 10);
                        else
                                return -EBADMSG;
                }
                ret->name[i] = (uint8_t) v;
        }
        ret->size = (UINT16) (len / 2);
        return 0;
}

/* Takes "key=HEX\n" at *p (of the len bytes left) into ret. */
static int take_line(const char **p, size_t *left, const char *key, TPM2B_NAME *ret) {
        size_t klen = strlen(key);
        const char *nl;

        if (*left <= klen + 1 || memcmp(*p, key, klen) != 0 || (*p)[klen] != '=')
                return -EBADMSG;
        nl = memchr(*p + klen + 1, '\n', *left - klen - 1);
        if (!nl || unhex(*p + klen + 1, (size_t) (nl - *p) - klen - 1, ret) < 0)
                return -EBADMSG;
        *left -= (size_t) (nl + 1 - *p);
        *p = nl + 1;
        return 0;
}

int tpm_fingerprint_parse(const char *text, size_t len, TpmFingerprint *ret, Diag *d) {
        TpmFingerprint f = {};
        const char *p = text;
        size_t left = len;

        if (take_line(&p, &left, "srk", &f.srk) < 0 || take_line(&p, &left, "ek", &f.ek) < 0 || left != 0)
                return diag_set(d, -EBADMSG,
                                "not a TPM fingerprint record (two lines, srk=HEX and ek=HEX, expected)");
        *ret = f;
        return 0;
}

void tpm_fingerprint_name_short(const TPM2B_NAME *n, char buf[static 17]) {
        TPM2B_NAME hash = {};

        /* The 2-byte nameAlg first, then the hash. */
        if (n->size > 2) {
                hash.size = n->size - 2;
                memcpy(hash.name, n->name + 2, hash.size);
        }
        hex(&hash, 8, buf);
}
