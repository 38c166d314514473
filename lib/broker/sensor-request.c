/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-request.c: the order of a sensor request's checks and their verdict.
 */
#include <errno.h>
#include <string.h>

#include "broker/evidence.h"
#include "broker/sensor-request.h"
#include "crypto/ossl-util.h"

static const char *const verdict_names[_SENSOR_VERDICT_MAX] = {
        [SENSOR_ACCEPTED] = "accepted",
        [SENSOR_INVALID_ARGS] = "invalid-args",
        [SENSOR_INVALID_CSR] = "invalid-csr",
        [SENSOR_POLICY_VIOLATION] = "policy-violation",
        [SENSOR_INVALID_EVIDENCE] = "invalid-evidence",
        [SENSOR_INTERNAL_ERROR] = "internal-error",
};

const char *sensor_verdict_to_string(SensorVerdict v) {
        if (v < 0 || v >= _SENSOR_VERDICT_MAX)
                return NULL;
        return verdict_names[v];
}

static SensorVerdict csr_verdict(int r) {
        switch (r) {
        case -EINVAL:
                return SENSOR_INVALID_ARGS;
        case -EPERM:
                return SENSOR_POLICY_VIOLATION;
        case -EFBIG:
        case -EBADMSG:
        case -EKEYREJECTED:
                return SENSOR_INVALID_CSR;
        default:
                return SENSOR_INTERNAL_ERROR;
        }
}

SensorVerdict sensor_request_check(const SensorChecks *c, const SensorRequest *req, X509_REQ **ret_csr,
                                   Diag *d) {
        _cleanup_(X509_REQ_freep) X509_REQ *csr = NULL;
        int r;

        r = sensor_id_check_string(req->sensor_id, d);
        if (r < 0)
                return SENSOR_INVALID_ARGS;
        r = sensor_csr_check(c->policy, req->sensor_id, req->csr, req->csr_len, &csr, d);
        if (r < 0)
                return csr_verdict(r);

        if (c->manufacturer_cas && sk_X509_num(c->manufacturer_cas) > 0) {
                uint8_t nonce[SENSOR_CHALLENGE_NONCE_SIZE];

                if (!c->challenges) {
                        diag_set(d, -EINVAL, "no challenge table to check evidence against");
                        return SENSOR_INTERNAL_ERROR;
                }
                if (!req->evidence || req->evidence_len == 0) {
                        /* The challenge stays: the caller may still send evidence. */
                        diag_set(d, -EBADMSG,
                                 "broker.sensor_manufacturer_ca is set, so the request needs evidence: the sensor's "
                                 "birth certificate chain and its signature over a challenge");
                        return SENSOR_INVALID_EVIDENCE;
                }
                r = sensor_challenges_take(c->challenges, req->sensor_id, c->now_usec, nonce, d);
                if (r < 0)
                        return SENSOR_INVALID_EVIDENCE;
                r = evidence_verify(req->evidence, req->evidence_len, nonce, sizeof(nonce),
                                    X509_REQ_get0_pubkey(csr), c->manufacturer_cas, c->now, NULL, d);
                explicit_bzero(nonce, sizeof(nonce));
                if (r < 0)
                        return r == -ENOMEM || r == -EIO ? SENSOR_INTERNAL_ERROR : SENSOR_INVALID_EVIDENCE;
        }

        if (ret_csr)
                *ret_csr = TAKE_PTR(csr);
        return SENSOR_ACCEPTED;
}
