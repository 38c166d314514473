/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * key-choice.h: which key and signature hash a CSR gets (crypto agility).
 *
 * The EST server may ask for a key type, curve or size and a hash in
 * /csrattrs (est/csrattrs.h). The request is honoured when the key is in the
 * policy's allowed set (operational.allowed_key_algorithms) and the TPM can
 * make it and sign with that hash (one TPM2_TestParms, asked only when the
 * choice differs from the configured default). Otherwise the CSR carries the
 * policy's fallback key, and the choice says what was asked and why it is not
 * sent, for the agent's warning.
 */
#pragma once

#include <openssl/evp.h>

#include "config/config.h"
#include "est/csrattrs.h"
#include "tpm/tpm-context.h"
#include "tpm/tpm-key.h" /* key_algorithm_of_pkey() */

typedef struct KeyPolicy {
        KeyAlgorithm fallback; /* sent when the request is not honoured (operational.key_algorithm) */
        unsigned allowed;      /* KEY_ALG_BIT()s that may be honoured */
        const char *refusal;   /* why a key outside `allowed` is refused, for the warning */
} KeyPolicy;

#define KEY_CHOICE_TEXT_MAX 384

typedef struct KeyChoice {
        KeyAlgorithm algorithm;        /* the key the CSR carries */
        const char *digest;            /* its signature hash: "SHA256", "SHA384", "SHA512" (static) */
        char asked[192];               /* what /csrattrs asked about key and hash, "" if nothing */
        char why[KEY_CHOICE_TEXT_MAX]; /* "" if all that was asked is honoured; else why not */
        char ignored[256];             /* other /csrattrs items fleetid does not act on, "" if none */
} KeyChoice;

/* The hash that matches a key's strength: SHA384 for P-384 and RSA-3072, else SHA256. */
const char *key_algorithm_default_digest(KeyAlgorithm a);


/* The choice from the attributes and the policy alone, before the TPM is asked. */
void key_choice_decide(const CsrAttrs *a, const KeyPolicy *p, KeyChoice *ret);

/* Adds a reason to why (joined with "; "). */
void key_choice_note(KeyChoice *c, const char *fmt, ...) _printf_(2, 3);

/* key_choice_decide(), then, if the choice is not the fallback with its
 * default hash, one TPM2_TestParms; if the TPM says no, the fallback. Fails
 * only when the TPM cannot be asked. */
int key_choice_resolve(TpmContext *tpm, const CsrAttrs *a, const KeyPolicy *p, KeyChoice *ret, Diag *d);
