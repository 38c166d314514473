/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * signer-process.h: the signing process itself, `fleetid-worker signer`,
 * started by fleetidd/signer.c: its own
 * TPM connection, the keys opened once, and a loop that reads requests
 * (nonce, purpose, key), computes the challenge digest with
 * challenge_digest(), has the TPM sign it and writes the answer; the chain
 * of a key goes out before its first answer. It ends at the end of its
 * input (the daemon retired it, or is gone). It never logs.
 */
#pragma once

#include "config/config.h"
#include "store/state-store.h"

/* Serves the requests on fd until the end of its input. Never returns. */
void __attribute__((noreturn)) signer_process_main(int fd, const Config *c, StateStore *store);
