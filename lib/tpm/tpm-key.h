/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tpm-key.h: signing keys that live inside the TPM.
 *
 * Operational keys are created under the storage root key (SRK, the TCG
 * template, created and made persistent if absent), then made persistent at a
 * handle (the birth key is a primary key of the endorsement hierarchy
 * instead: tpm-birth-key.h). Their
 * private part never leaves the TPM: the attributes are fixedTPM, fixedParent,
 * sensitiveDataOrigin, userWithAuth, sign, and noDA (the auth value is empty, so
 * there is nothing to guess; noDA keeps every use off the dictionary-attack
 * counter and usable while the TPM is in lockout).
 */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>

#include "config/config.h"
#include "tpm/tpm-context.h"

#define TPM_KEY_ATTRIBUTES                                                                  \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA)

/* The TCG ECC P-256 SRK template (TPM v2.0 Provisioning Guidance). */
TPM2B_PUBLIC tpm_srk_template(void);

/* Makes sure a storage root key sits at srk_handle (creating it with the TCG ECC
 * P-256 SRK template if absent). Returns its ESYS handle in ret: the
 * TpmContext's, not to be closed (one TPM2_ReadPublic per TpmContext). 1 if it
 * was created now, 0 if it existed. */
int tpm_srk_ensure(TpmContext *t, uint32_t srk_handle, ESYS_TR *ret, Diag *d);

/* Creates a signing key under the SRK and makes it persistent at handle.
 * -EEXIST if the handle is taken (unless replace: then the old key is evicted
 * only after the new one has been created and loaded). If ret_pub is not NULL,
 * it gets the new key's public key, from Create's answer (no command more). */
int tpm_key_create_persistent(TpmContext *t, uint32_t srk_handle, KeyAlgorithm alg, uint32_t handle,
                              bool replace, EVP_PKEY **ret_pub, Diag *d);

/* Called with the new key's public part once the TPM has made and loaded it,
 * before it is made persistent and before the old key at the handle is
 * evicted. Until then the key is a transient object of this connection,
 * which goes with the process (the resource manager, /dev/tpmrm0 or
 * tpm2-abrmd, flushes it; a TPM reset after a power cut too): what the
 * callback records about the key is written before anything of it can
 * outlive a crash. A negative return stops the creation; nothing persistent
 * changed then. */
typedef int (*TpmKeyBeforePersistFn)(EVP_PKEY *pub, void *userdata, Diag *d);

/* tpm_key_create_persistent(), calling before_persist (may be NULL) in
 * between. */
int tpm_key_create_persistent_with(TpmContext *t, uint32_t srk_handle, KeyAlgorithm alg, uint32_t handle,
                                   bool replace, TpmKeyBeforePersistFn before_persist, void *userdata,
                                   EVP_PKEY **ret_pub, Diag *d);

/* TPM2_CreatePrimary of template in hierarchy (ESYS_TR_RH_OWNER,
 * ESYS_TR_RH_ENDORSEMENT) with empty authorization values: the transient key
 * in ret (flush it), its public area in ret_public if not NULL (Esys_Free).
 * what: the error's text. */
int tpm_create_primary(TpmContext *t, ESYS_TR hierarchy, const TPM2B_PUBLIC *template, ESYS_TR *ret,
                       TPM2B_PUBLIC **ret_public, const char *what, Diag *d);

/* Makes the loaded key `loaded` persistent at handle (TPM2_EvictControl with
 * owner authorization); -EEXIST if the handle is taken, unless replace: then
 * the key there is evicted first. The caller still flushes `loaded`. The
 * persistent key's ESYS handle stays open in the TpmContext; ret_obj (may be
 * NULL) gets it. */
int tpm_key_persist(TpmContext *t, ESYS_TR loaded, uint32_t handle, bool replace, ESYS_TR *ret_obj, Diag *d);

/* An OpenSSL public key (default provider) from a TPM public area; handle only
 * names the key in an error. */
int tpm_public_to_pkey(const TPM2B_PUBLIC *pub, uint32_t handle, EVP_PKEY **ret, Diag *d);

/* Which of fleetid's key algorithms pkey is, _KEY_ALG_INVALID if none. */
KeyAlgorithm key_algorithm_of_pkey(EVP_PKEY *pkey);

/* Asks the TPM (one TPM2_TestParms) whether it can make a key of alg that
 * signs with digest ("SHA256", "SHA384", "SHA512"): 0 yes, -EOPNOTSUPP no (d
 * says what the TPM answered), another -errno if the TPM could not be asked. */
int tpm_key_test(TpmContext *t, KeyAlgorithm alg, const char *digest, Diag *d);

/* Reads the public part of the key at handle as an OpenSSL public key, and its
 * object attributes. -ENOENT if nothing is there. The TPM is asked once per
 * key and TpmContext (one TPM2_ReadPublic): the key's ESYS handle stays open
 * in the TpmContext, and is closed when the key is evicted through it or the
 * context is freed. A key created through the TpmContext is known without
 * asking. */
int tpm_key_read_public(TpmContext *t, uint32_t handle, EVP_PKEY **ret, uint32_t *ret_attributes, Diag *d);
/* The same, and gives the key's ESYS handle in ret_obj (if not NULL) for the
 * commands that use the key; it is the TpmContext's, not to be closed. */
int tpm_key_open(TpmContext *t, uint32_t handle, ESYS_TR *ret_obj, EVP_PKEY **ret, uint32_t *ret_attributes,
                 Diag *d);

/* Checks that the key at handle is a non-exportable signing key as created above. */
int tpm_key_check_attributes(uint32_t attributes, Diag *d);

/* Evicts the persistent key at handle; 0 if it was absent. */
int tpm_key_evict(TpmContext *t, uint32_t handle, Diag *d);

/* Human text for attributes: "fixedTPM|fixedParent|...". */
int tpm_attributes_to_string(uint32_t attributes, char **ret);
