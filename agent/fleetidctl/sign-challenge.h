/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sign-challenge.h: fleetidctl sign-challenge: one SignChallenge call to the
 * running fleetidd over the system bus, the answer printed (docs/man/fleetidctl.1).
 */
#pragma once

#include <stdbool.h>

typedef struct SignChallengeArgs {
        const char *nonce_hex; /* --nonce */
        const char *purpose;   /* --purpose */
        const char *out;       /* --out: the chain (PEM) goes there, else to stdout */
        bool birth;            /* --birth: options["identity"] = "birth" */
} SignChallengeArgs;

/* Set by fleetidctl's option parsing. */
extern SignChallengeArgs arg_sign;

/* Exit status: 0 signed, 1 usage error or the call failed (the D-Bus error's
 * name and message on stderr). */
int verb_sign_challenge(void);
