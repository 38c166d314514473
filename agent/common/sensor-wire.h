/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-wire.h: the messages between fleetidd's sensor broker
 * (fleetidd/sensor-worker.c) and the sensor worker, `fleetid-worker sensors`
 * (agent/worker/sensor-child.c): SOCK_SEQPACKET datagrams, one message each,
 * bounded; native byte order (both ends come from the same build).
 */
#pragma once

#include <stdint.h>

#include "broker/sensor-csr.h"
#include "util/diag.h"

#define SENSOR_WORKER_IDLE_SEC 60
/* The worker's exit status when it ends for having had no request for
 * SENSOR_WORKER_IDLE_SEC: it has read none since its last answer, so a
 * request the daemon sent meanwhile was never made, and is handed to the
 * next worker. */
#define SENSOR_WORKER_EXIT_IDLE 3
/* The chain an answer may carry, in all (DER). */
#define SENSOR_WORKER_CHAIN_MAX (64u * 1024u)

typedef enum SensorFailure {
        SENSOR_FAILURE_NONE,         /* issued */
        SENSOR_FAILURE_DEFERRED,     /* 202: the CA will decide later (Retry-After) */
        SENSOR_FAILURE_REJECTED,     /* the server refused the request (4xx) or its answer is unusable */
        SENSOR_FAILURE_UNREACHABLE,  /* transport, TLS, timeout: the server may answer later */
        SENSOR_FAILURE_NOT_ENROLLED, /* the gateway has no usable operational identity */
        SENSOR_FAILURE_BUSY,         /* 503 or 429: the server is overloaded (Retry-After) */
        SENSOR_FAILURE_LOCAL,        /* the gateway cannot make the request: its password file, its key */
        SENSOR_FAILURE_TPM,          /* the gateway's TPM (or its resource manager) cannot be reached */
        _SENSOR_FAILURE_MAX,
} SensorFailure;

#define SENSOR_WORKER_MAGIC 0x53444946u /* "FIDS" */
#define SENSOR_REQUEST_MAX (sizeof(SensorRequestHeader) + SENSOR_CSR_MAX)
#define SENSOR_ANSWER_MAX (sizeof(SensorAnswerHeader) + SENSOR_WORKER_CHAIN_MAX)
#define SENSOR_CHAIN_CERTS_MAX 8

typedef struct SensorRequestHeader {
        uint32_t magic;
        uint32_t csr_len;
        uint64_t id;
} SensorRequestHeader;

typedef struct SensorAnswerHeader {
        uint32_t magic;
        int32_t failure;
        uint64_t id;
        int32_t error;
        uint32_t retry_after_given;
        int64_t http_status;
        uint64_t retry_after_sec;
        uint32_t chain_len; /* DER certificates, one after the other */
        char diag[DIAG_MAX];
} SensorAnswerHeader;
