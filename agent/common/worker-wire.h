/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * worker-wire.h: what a worker (`fleetid-worker enroll|renew|cacerts|reset`,
 * agent/worker/) tells fleetidd over its socket, and what fleetidd makes of
 * it (fleetidd/worker.c).
 *
 * Frames (common/frame.h) of these types: any number of FRAME_STATE (a state
 * reached on the way), the certificates of the trust changes and the
 * deferred key, and exactly one FRAME_RESULT, last. Native byte order: both
 * ends come from the same build. The daemon checks every frame (type, size,
 * count, NUL-terminated text, enum ranges; at most WORKER_MESSAGE_MAX bytes
 * in all).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "exchange/trust.h"
#include "est/est.h"
#include "monitor/daemon-state.h"
#include "monitor/outcome.h"
#include "util/diag.h"

typedef enum WorkerKind {
        WORKER_ENROLL,
        WORKER_RENEW,
        WORKER_CACERTS,
        WORKER_RESET,
        _WORKER_KIND_MAX,
} WorkerKind;

/* "enrollment", "renewal", "/cacerts refresh", "factory reset" */
const char *worker_kind_to_string(WorkerKind k);

/* The whole message a worker sends, bounded. */
#define WORKER_MESSAGE_MAX (1024 * 1024)
/* One certificate or public key (DER). */
#define WORKER_FRAME_MAX (64 * 1024)
/* Certificates in each list of the trust changes. */
#define WORKER_CERTS_MAX 64

/* What an operation came to, as the parent acts on it. */
typedef struct WorkerResult {
        int error;                  /* >= 0 success, else -errno */
        AttemptOutcome outcome;     /* what kind of failure: the next step follows from it */
        Diag diag;                  /* why it failed */
        EstRetryHint hint;          /* when the server said to come back */
        bool fetched;               /* a new certificate was stored (not "already enrolled") */
        TrustChanges trust_changes; /* what /cacerts changed, even if the operation then failed */
        uint8_t *deferred_spki;     /* renewal answered 202: the public key of the deferred request, DER */
        size_t deferred_spki_len;
        bool tpm_replaced;       /* another TPM than the device enrolled with: never enroll (AttemptFacts) */
        bool tpm_lockout_known;  /* the TPM's dictionary-attack state was read: */
        bool tpm_lockout;        /* in lockout */
        bool birth_read;         /* the birth key was read: */
        bool birth_da_protected; /* it lacks noDA (refused while the TPM is in lockout) */
        bool birth_expired;      /* the birth certificate expired on this clock; nothing was sent */
        bool lost; /* set by the daemon: the worker ended without its result (killed, crashed, a bad message) */
} WorkerResult;

void worker_result_done(WorkerResult *r);

#define WORKER_MAGIC 0x57444946u /* "FIDW" */

enum {
        FRAME_STATE = 1,     /* int32 DaemonState */
        FRAME_CERT_ADOPTED,  /* DER certificate */
        FRAME_CERT_RETIRED,  /* DER certificate */
        FRAME_CERT_REFUSED,  /* DER certificate */
        FRAME_DEFERRED_SPKI, /* DER SubjectPublicKeyInfo */
        FRAME_RESULT,        /* WorkerResultWire, last */
};

enum {
        RESULT_FETCHED = 1u << 0,
        RESULT_CA_CHANGED = 1u << 1,
        RESULT_CA_FIRST = 1u << 2,
        RESULT_ADOPTED_CHANGED = 1u << 3,
        RESULT_TPM_REPLACED = 1u << 4,
        RESULT_TPM_LOCKOUT_KNOWN = 1u << 5,
        RESULT_TPM_LOCKOUT = 1u << 6,
        RESULT_BIRTH_READ = 1u << 7,
        RESULT_BIRTH_DA = 1u << 8,
        RESULT_BIRTH_EXPIRED = 1u << 9,
        _RESULT_FLAGS_ALL = (1u << 10) - 1,
};

typedef struct WorkerResultWire {
        int32_t error;
        int32_t outcome;
        uint32_t flags;
        int32_t refused_error;
        int64_t http_status;
        uint32_t retry_after_given;
        uint32_t retry_after_present;
        uint32_t retry_after_invalid;
        uint64_t retry_after_sec;
        char retry_after_text[sizeof(((EstRetryAfterText *) NULL)->text)];
        char diag[DIAG_MAX];
        char refused_why[DIAG_MAX];
} WorkerResultWire;
