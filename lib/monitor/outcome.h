/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * outcome.h: what kind of result an enrollment, renewal or /cacerts refresh
 * had, so that the daemon decides its next step from a class and not from
 * which -errno happened to come back (-EACCES is an HTTP 401/403 as well as
 * TPM trouble, -ENOENT a file, a handle or a provider).
 *
 *   ok                 it worked
 *   transient          network, server busy or deferred (202/503/429),
 *                      timeouts, a bad answer: trying again later can help
 *   rejected           the EST server refused the request (HTTP 401/403, or
 *                      another 4xx): retried, but a person may have to act
 *   identity-unusable  no usable operational identity (none, unreadable, key
 *                      gone, expired): only a new enrollment helps
 *   tpm-unavailable    the TPM (or its resource manager) cannot be reached
 *   configuration      the attempt could not even be prepared with this
 *                      configuration and installation (password file,
 *                      OpenSSL provider), the TPM being reachable
 */
#pragma once

#include <stdbool.h>

typedef enum AttemptOutcome {
        ATTEMPT_OK,
        ATTEMPT_TRANSIENT,
        ATTEMPT_REJECTED,
        ATTEMPT_IDENTITY_UNUSABLE,
        ATTEMPT_TPM_UNAVAILABLE,
        ATTEMPT_CONFIGURATION,
        _ATTEMPT_OUTCOME_MAX,
        _ATTEMPT_OUTCOME_INVALID = -1,
} AttemptOutcome;

/* What is known about a finished attempt, gathered where it ran. */
typedef struct AttemptFacts {
        int error;               /* the attempt's result: >= 0 success, else -errno */
        long http_status;        /* the last HTTP status of the enroll/reenroll POST, 0 if none */
        bool identity_unusable;  /* no usable operational identity (renew_once(), or the enrollment check) */
        bool tpm_unavailable;    /* the TPM could not be reached when the failure was examined */
        bool preparing;          /* it failed before the TPM or the server was used for the request */
        bool tpm_replaced;       /* the TPM is another one than the device was enrolled with: its endorsement
                                 * key changed (tpm-fingerprint.h); nothing was sent */
        bool tpm_lockout_known;  /* the TPM's dictionary-attack state was read: */
        bool tpm_lockout;        /* in lockout */
        bool birth_da_protected; /* the birth key was read and lacks noDA (a lockout blocks it) */
} AttemptFacts;

/* The class of an attempt, pure logic. The TPM being unreachable outranks
 * everything (it explains the rest); then an unusable identity; then a
 * failure to prepare; then the server's answer. */
AttemptOutcome attempt_outcome_classify(const AttemptFacts *f);

/* "ok", "transient", ...; NULL for a value outside the enum. */
const char *attempt_outcome_to_string(AttemptOutcome o);
AttemptOutcome attempt_outcome_from_string(const char *s);
