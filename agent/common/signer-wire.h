/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * signer-wire.h: what fleetidd and its signing process say to each other
 * over their socketpair, in frames (frame.h): requests one way, chains and
 * answers the other (fleetidd/signer.h says what they mean). Native byte
 * order: both ends come from the same build.
 */
#pragma once

#include <stdint.h>

#include "crypto/challenge.h"
#include "util/diag.h"

typedef enum SignerKey {
        SIGNER_KEY_OPERATIONAL,
        SIGNER_KEY_BIRTH,
        _SIGNER_KEY_MAX,
} SignerKey;

/* "operational", "birth" */
const char *signer_key_to_string(SignerKey k);

/* Certificates in a chain it sends, at most. */
#define SIGNER_CHAIN_MAX 8
#define SIGNER_MAGIC 0x53444946u /* "FIDS" */
/* One frame: a chain of SIGNER_CHAIN_MAX certificates fits. */
#define SIGNER_FRAME_MAX (128 * 1024)

enum {
        SIGNER_FRAME_REQUEST = 1, /* daemon -> signer: SignerRequestWire */
        SIGNER_FRAME_CHAIN,  /* signer -> daemon: uint32 key, then per certificate uint32 length + DER */
        SIGNER_FRAME_ANSWER, /* signer -> daemon: SignerAnswerWire */
};

typedef struct SignerRequestWire {
        uint32_t id;
        uint32_t key;
        uint32_t nonce_len;
        uint8_t nonce[CHALLENGE_NONCE_MAX];
        char purpose[CHALLENGE_PURPOSE_MAX + 1];
} SignerRequestWire;

/* The algorithms by their index on the wire. */
#define SIGNER_ALG_ECDSA 0u     /* CHALLENGE_ALG_ECDSA */
#define SIGNER_ALG_RSA_PKCS1 1u /* CHALLENGE_ALG_RSA_PKCS1 */
#define _SIGNER_ALG_MAX 2u

typedef struct SignerAnswerWire {
        uint32_t id;
        int32_t error;
        uint32_t alg; /* SIGNER_ALG_* */
        uint32_t sig_len;
        uint8_t sig[CHALLENGE_SIGNATURE_MAX];
        char diag[DIAG_MAX];
} SignerAnswerWire;
