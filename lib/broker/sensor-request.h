/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-request.h: every check of a RequestSensorCertificate call, in one
 * order, with a typed verdict the D-Bus layer maps to its error names
 * (docs/dbus-api.md, "Sensor broker: formats"):
 *
 *   1. the sensor_id (sensor-id.h)                        INVALID_ARGS
 *   2. the CSR: parse, size, self-signature (sensor-csr.h) INVALID_CSR
 *      key, subject rule, extensions                      POLICY_VIOLATION
 *   3. when manufacturer CAs are configured: the sensor's challenge is taken
 *      out of the table (used up whatever follows; sensor-challenges.h), and
 *      the evidence verified against it (evidence.h)      INVALID_EVIDENCE
 *
 * Nothing here enrolls, stores or logs: the caller does that on ACCEPTED.
 * Without manufacturer CAs, evidence is not looked at and no challenge is
 * used (the configuration asks for none).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "broker/sensor-challenges.h"
#include "broker/sensor-csr.h"
#include "util/diag.h"

typedef enum SensorVerdict {
        SENSOR_ACCEPTED,
        SENSOR_INVALID_ARGS,     /* a bad sensor_id */
        SENSOR_INVALID_CSR,      /* not a CSR, too large, no proof of possession */
        SENSOR_POLICY_VIOLATION, /* key, signature hash, subject or extension not allowed */
        SENSOR_INVALID_EVIDENCE, /* missing, malformed, untrusted or a bad/replayed/expired challenge */
        SENSOR_INTERNAL_ERROR,   /* out of memory, OpenSSL failure */
        _SENSOR_VERDICT_MAX,
} SensorVerdict;

/* "accepted", "invalid-args", "invalid-csr", "policy-violation",
 * "invalid-evidence", "internal-error". */
const char *sensor_verdict_to_string(SensorVerdict v);

typedef struct SensorRequest {
        const char *sensor_id;
        const uint8_t *csr;
        size_t csr_len;
        const uint8_t *evidence; /* may be NULL/0 when no manufacturer CA is configured */
        size_t evidence_len;
} SensorRequest;

typedef struct SensorChecks {
        const SensorPolicy *policy;
        STACK_OF(X509) *manufacturer_cas; /* NULL or empty: no evidence required */
        SensorChallenges *challenges;     /* needed when manufacturer_cas is set */
        uint64_t now_usec;                /* the challenges' clock */
        time_t now;                       /* wall clock, for certificate validity */
} SensorChecks;

/* Runs the checks; the Diag says what was wrong. On SENSOR_ACCEPTED,
 * *ret_csr (may be NULL) is the parsed CSR to enroll. */
SensorVerdict sensor_request_check(const SensorChecks *c, const SensorRequest *req, X509_REQ **ret_csr,
                                   Diag *d);
