/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-worker.h: the daemon's side of the one long-lived process that enrolls downstream
 * sensors' CSRs over EST on the gateway's operational identity, as an RFC
 * 7030 registration authority (section 3.2.3, 3.7): POST /simpleenroll at
 * broker.est_label over mutual TLS with the gateway's LDevID.
 *
 * The daemon hands it one checked CSR at a time (sensor_worker_submit()); it
 * enrolls them one after the other on one libcurl handle, so consecutive
 * requests share one kept-alive TLS connection (one TPM signature per
 * handshake, not per sensor), and answers each with the issued chain
 * (validated against the EST CA set for the CSR's key) or a typed failure.
 *
 * The identity is the one in force when the process started: it loads the
 * operational certificate and opens its TPM key once. The daemon retires the
 * process (sensor_worker_retire(): it ends after the request in flight) when
 * the gateway's own enrollment or renewal starts, and starts a new one, with
 * the identity then in force, once that is over. It also ends by itself
 * after SENSOR_WORKER_IDLE_SEC without a request, so an idle daemon holds no
 * TLS connection and no TPM context.
 *
 * Messages are SOCK_SEQPACKET datagrams (one message each, bounded), native
 * byte order (common/sensor-wire.h); the daemon checks every
 * answer (magic, size, id, ranges, NUL-terminated text, certificates).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <openssl/x509.h>

#include "config/config.h"
#include "util/diag.h"

#include "common/sensor-wire.h"

typedef struct SensorEnrollAnswer {
        uint64_t id;
        SensorFailure failure;
        Diag diag;                /* why, when failure != NONE */
        long http_status;         /* last status seen, 0 if none */
        bool retry_after_given;   /* 202/503/429 with Retry-After */
        uint64_t retry_after_sec; /* bounded by EST_RETRY_AFTER_MAX */
        STACK_OF(X509) *chain;    /* issued: the sensor's certificate first, then the intermediates */
} SensorEnrollAnswer;

typedef struct SensorWorker SensorWorker;

/* On the loop: the answer to request a->id (the callee may take a->chain). */
typedef void (*SensorWorkerAnswerFn)(void *userdata, SensorEnrollAnswer *a);
/* On the loop: the process has ended (idle, retired, crashed, killed).
 * in_flight is the id of a request it took along unanswered, 0 if none; why
 * says how it ended. The worker object is freed after the call returns. */
typedef void (*SensorWorkerGoneFn)(void *userdata, uint64_t in_flight, const Diag *why);

/* Starts the process, `fleetid-worker sensors` (spawn.h); it opens the identity (a failure to do so is the answer
 * to each request, and each request tries again). request_timeout_usec bounds each request: a worker
 * that has not answered by then is killed. */
int sensor_worker_start(sd_event *e, const Config *c, uint64_t request_timeout_usec,
                        SensorWorkerAnswerFn on_answer, SensorWorkerGoneFn on_gone, void *userdata,
                        SensorWorker **ret);
/* Hands request id (>0) to the worker: -EBUSY while one is in flight,
 * -ESHUTDOWN once it was retired or has gone. */
int sensor_worker_submit(SensorWorker *w, uint64_t id, const uint8_t *csr, size_t len);
/* Whether a request is in flight. */
bool sensor_worker_busy(const SensorWorker *w);
/* Whether it takes new requests (not retired, not gone). */
bool sensor_worker_usable(const SensorWorker *w);
/* Ends the process after the request in flight (at once if none). */
void sensor_worker_retire(SensorWorker *w);
/* Kills (SIGKILL) and reaps it, without callbacks. */
SensorWorker *sensor_worker_free(SensorWorker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(SensorWorker *, sensor_worker_free);
