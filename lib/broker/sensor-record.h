/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-record.h: what the gateway remembers about each sensor it brokers a
 * certificate for (issue "The sensor broker", point 4).
 *
 * One record per sensor, in its own directory of the state directory
 * (SENSOR_RECORDS_DIR, opened as a StateStore of its own), named by the
 * sensor_id, written atomically through store/state-store.h with mode 0640.
 * The format (docs/dbus-api.md, "Sensor records") is text, at most
 * SENSOR_RECORD_MAX bytes, exactly these lines in this order:
 *
 *   fleetid-sensor-record-v1
 *   id=<sensor_id>
 *   state=pending|issued
 *   serial=<certificate serial, uppercase hex; empty while pending>
 *   not_before=<notBefore, seconds since the epoch; 0 while pending>
 *   not_after=<notAfter, seconds since the epoch; 0 while pending>
 *   birth=sha256:<64 lowercase hex>   (only when evidence was verified)
 *
 * notBefore and notAfter give the sensor's renewal point (renew/schedule.h
 * renew_due()), at which the daemon raises SensorCertificateDue. birth is the
 * SHA-256 of the sensor's birth key (the public key of its evidence's leaf,
 * evidence_birth_fingerprint()) when the broker asks for evidence: a sensor
 * keeps the birth key it was first enrolled with, and one birth key vouches
 * for one sensor_id (docs/dbus-api.md, "Evidence"). A record without it (no
 * evidence asked for then, or written before fleetid kept it) is bound by the
 * next request for it that shows evidence.
 */
#pragma once

#include <stdint.h>

#include <openssl/x509.h>

#include "broker/sensor-id.h"
#include "crypto/certcheck.h"
#include "store/state-store.h"
#include "util/diag.h"

#define SENSOR_RECORDS_DIR "sensors"
#define SENSOR_RECORD_MAX 1024
/* The most records a directory is read with: broker.max_sensors' highest
 * value. A limit lowered below the records there keeps them all (no new
 * sensor until enough are forgotten). */
#define SENSOR_RECORDS_LOAD_MAX 100000u
#define SENSOR_SERIAL_MAX 40 /* 20 octets (RFC 5280 4.1.2.2) in hex */
#define SENSOR_RECORD_MODE 0640

typedef enum SensorState {
        SENSOR_PENDING, /* a request is in flight (or waits for the CA) */
        SENSOR_ISSUED,  /* a certificate was issued */
        _SENSOR_STATE_MAX,
        _SENSOR_STATE_INVALID = -1,
} SensorState;

const char *sensor_state_to_string(SensorState s); /* "pending", "issued" */
SensorState sensor_state_from_string(const char *s);

typedef struct SensorRecord {
        char id[SENSOR_ID_MAX + 1];
        SensorState state;
        char serial[SENSOR_SERIAL_MAX + 1];
        uint64_t not_before; /* seconds since the epoch */
        uint64_t not_after;
        char birth[SHA256_TEXT_SIZE]; /* "sha256:..." of the birth key, "" if none */
} SensorRecord;

/* Whether s is "" or a birth fingerprint as a record holds it. */
bool sensor_birth_valid(const char *s);

/* An "issued" record for sensor_id's certificate cert. */
int sensor_record_from_cert(const char *sensor_id, X509 *cert, SensorRecord *ret, Diag *d);

/* The text above, NUL-terminated; -EINVAL if a field is out of bounds. */
int sensor_record_format(const SensorRecord *rec, char **ret, size_t *ret_len, Diag *d);

/* Parses the text (len bytes); -EBADMSG naming the line that is wrong. */
int sensor_record_parse(const char *text, size_t len, SensorRecord *ret, Diag *d);

/* Writes rec atomically as the file rec->id. A sensor not recorded yet is
 * refused with -EDQUOT when max_sensors records exist already (the
 * configuration's broker.max_sensors); replacing a record always works. */
int sensor_record_save(StateStore *s, const SensorRecord *rec, unsigned max_sensors, Diag *d);

/* Reads sensor_id's record. -ENOENT if there is none, -EBADMSG if it is
 * corrupt (or names another sensor than its file), -EFBIG if too large. */
int sensor_record_load(StateStore *s, const char *sensor_id, SensorRecord *ret, Diag *d);

/* Removes sensor_id's record; -ENOENT if there is none. */
int sensor_record_remove(StateStore *s, const char *sensor_id, Diag *d);

/* Every record, sorted by id, as a malloc()ed array. A record that cannot be
 * read is left alone on disk, not returned, and counted in *ret_corrupt (the
 * Diag names the first one); the others are still returned. -E2BIG if the
 * directory holds more than max_sensors files. */
int sensor_records_load_all(StateStore *s, unsigned max_sensors, SensorRecord **ret, unsigned *ret_n,
                            unsigned *ret_corrupt, Diag *d);
