/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * signer.h: the signing process behind SignChallenge (docs/architecture.md,
 * "The signer"), as the daemon sees it; the process itself is
 * agent/worker/signer-process.c, the messages common/signer-wire.h. A long-lived child of fleetidd with a TPM connection of its
 * own and the keys loaded, so that a signature costs one TPM2_Sign and no
 * fork, and the event loop never waits for the TPM.
 *
 * The daemon sends requests (key, nonce, purpose) over a socketpair as the
 * calls come, without waiting for the answers (pipelined, at most
 * SIGNER_QUEUE_MAX in flight); the signer answers them in order. The signer
 * computes the digest itself with challenge_digest() (lib/crypto/challenge.h)
 * and has no request that carries a digest: whatever the daemon sends, the
 * TPM signs only SHA-256("fleetid-challenge-v1" 0 purpose 0 nonce) with a
 * purpose and a nonce the formula accepts. Before the first answer with a key
 * it sends that key's certificate chain, read with the key (the operational
 * identity from the state directory and the TPM handle its certificate
 * belongs to, or the birth identity), so the chain the daemon returns is the
 * one of the key that signed.
 *
 * The daemon checks every frame as it checks a worker's (frame.h). A signer
 * that sends something wrong, does not answer within SIGNER_ANSWER_USEC, or
 * dies, is killed and reaped; the calls it held fail, and the next call
 * starts a new one. With no call for idle_usec it is told to exit (its
 * socket closed for writing: it answers what it has, then exits), so an idle
 * daemon holds no TPM connection. signer_retire() does the same at once: the
 * certificate in force changed, new calls go to a new signer.
 */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "common/signer-wire.h"
#include "config/config.h"
#include "util/diag.h"


/* Requests in flight per signer, at most: beyond, signer_submit() is -EBUSY. */
#define SIGNER_QUEUE_MAX 64
/* A signer that has not answered its oldest request after this is killed. */
#define SIGNER_ANSWER_USEC (30ULL * 1000000ULL)

/* A key's certificate chain as DER, the key's certificate first. */
typedef struct SignerChain {
        unsigned n;
        const uint8_t *der[SIGNER_CHAIN_MAX];
        size_t len[SIGNER_CHAIN_MAX];
} SignerChain;

typedef struct SignerAnswer {
        /* 0, or: -ENOENT/-ENOKEY no identity for the key (not enrolled, not
         * provisioned), -ENXIO the TPM is unreachable, -EACCES the TPM is in
         * lockout, -EBUSY the TPM asked to retry, -ECHILD/-EPROTO/-ETIMEDOUT
         * the signer died, misbehaved or hung, -ECANCELED fleetidd stops,
         * another -errno for another failure; diag says what. */
        int error;
        Diag diag;
        SignerKey key;
        const char *alg; /* a CHALLENGE_ALG_* name (static) */
        const uint8_t *sig;
        size_t sig_len;
        const SignerChain *chain; /* the key's certificate first; the signer's, valid during the call */
} SignerAnswer;

typedef struct Signer Signer;

/* The answer to one request, on the loop, once (also when the signer dies
 * or is freed). */
typedef void (*SignerAnswerFn)(void *userdata, const SignerAnswer *a);
/* The signer process has exited and been reaped, every request answered:
 * the owner may free it now (also from within this call). */
typedef void (*SignerExitFn)(void *userdata, Signer *s);

/* Starts the signer, `fleetid-worker signer` (spawn.h), with configuration c. */
int signer_new(sd_event *e, const Config *c, uint64_t idle_usec, SignerExitFn on_exit, void *userdata,
               Signer **ret);
/* Queues a request: nonce and purpose must pass challenge_check_nonce() and
 * challenge_check_purpose(). -EBUSY when SIGNER_QUEUE_MAX are in flight,
 * -EPIPE when this signer takes no more requests (retired, dying). fn gets
 * the answer later, never from within this call. */
int signer_submit(Signer *s, SignerKey key, const uint8_t *nonce, size_t nonce_len, const char *purpose,
                  SignerAnswerFn fn, void *userdata);
/* Whether it takes requests. */
bool signer_usable(const Signer *s);
pid_t signer_pid(const Signer *s);
/* Takes no more requests; the process answers those it has and exits. */
void signer_retire(Signer *s);
/* Stops the process (SIGTERM) and reaps it; requests still in flight are
 * answered with -ECANCELED. Does not call on_exit. */
Signer *signer_free(Signer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Signer *, signer_free);
