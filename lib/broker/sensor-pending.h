/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-pending.h: a sensor request the EST CA deferred (HTTP 202), kept in
 * the state directory so that it survives a daemon restart (docs/dbus-api.md,
 * "Sensor requests the CA deferred").
 *
 * One file per sensor in SENSOR_PENDING_DIR (a StateStore of its own), named
 * by the sensor_id, written atomically with mode 0640; text, at most
 * SENSOR_PENDING_MAX bytes, exactly these lines in this order:
 *
 *   fleetid-sensor-pending-v1
 *   id=<sensor_id>
 *   uid=<the uid that made the request, decimal>
 *   retry_at=<when to ask the CA again, seconds since the epoch>
 *   csr=<the sensor's DER CSR, base64 on one line>
 *   birth=sha256:<64 lowercase hex>   (only when evidence was verified:
 *                                      sensor-record.h)
 *
 * The CSR was checked when the request was made; it is checked again when the
 * file is read (a file is data from outside).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/sensor-csr.h"
#include "broker/sensor-id.h"
#include "broker/sensor-record.h"
#include "store/state-store.h"
#include "util/diag.h"

#define SENSOR_PENDING_DIR "sensors-pending"
#define SENSOR_PENDING_MAX (SENSOR_CSR_MAX / 3 * 4 + 512)
#define SENSOR_PENDING_MODE 0640

typedef struct SensorPending {
        char id[SENSOR_ID_MAX + 1];
        uid_t uid;
        uint64_t retry_at;            /* seconds since the epoch */
        uint8_t *csr;                 /* DER, malloc()ed */
        size_t csr_len;               /* 1..SENSOR_CSR_MAX */
        char birth[SHA256_TEXT_SIZE]; /* the evidence's birth key, "" if none (sensor-record.h) */
} SensorPending;

void sensor_pending_done(SensorPending *p);

/* The text above, NUL-terminated; -EINVAL if a field is out of bounds. */
int sensor_pending_format(const SensorPending *p, char **ret, size_t *ret_len, Diag *d);

/* Parses the text (len bytes); -EBADMSG naming the line that is wrong. The
 * CSR is only bounded and decoded here: the caller checks it as a request. */
int sensor_pending_parse(const char *text, size_t len, SensorPending *ret, Diag *d);

/* Writes p atomically as the file p->id. */
int sensor_pending_save(StateStore *s, const SensorPending *p, Diag *d);

/* Reads sensor_id's file: -ENOENT if none, -EBADMSG if corrupt (or naming
 * another sensor than its file name), -EFBIG if too large. */
int sensor_pending_load(StateStore *s, const char *sensor_id, SensorPending *ret, Diag *d);
