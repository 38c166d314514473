/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-record.c: sensor records, their text format and their files.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/sensor-record.h"
#include "crypto/certcheck.h"

#define RECORD_MAGIC "fleetid-sensor-record-v1"

static const char *const state_names[_SENSOR_STATE_MAX] = {
        [SENSOR_PENDING] = "pending",
        [SENSOR_ISSUED] = "issued",
};

const char *sensor_state_to_string(SensorState s) {
        if (s < 0 || s >= _SENSOR_STATE_MAX)
                return NULL;
        return state_names[s];
}

SensorState sensor_state_from_string(const char *s) {
        for (SensorState i = 0; i < _SENSOR_STATE_MAX; i++)
                if (streq_ptr(s, state_names[i]))
                        return i;
        return _SENSOR_STATE_INVALID;
}

static bool serial_valid(const char *s, size_t n) {
        if (n > SENSOR_SERIAL_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
                        return false;
        return true;
}

bool sensor_birth_valid(const char *s) {
        size_t n = strnlen(s, SHA256_TEXT_SIZE);

        if (n == 0)
                return true;
        if (n != SHA256_TEXT_SIZE - 1 || strncmp(s, "sha256:", 7) != 0)
                return false;
        for (size_t i = 7; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static int check_record(const SensorRecord *rec, Diag *d) {
        int r;

        r = sensor_id_check_string(rec->id, d);
        if (r < 0)
                return r;
        if (!sensor_state_to_string(rec->state))
                return diag_set(d, -EINVAL, "sensor '%s': invalid record state %d", rec->id, (int) rec->state);
        if (!serial_valid(rec->serial, strnlen(rec->serial, sizeof(rec->serial))))
                return diag_set(d, -EINVAL, "sensor '%s': the serial is not 0..%d uppercase hex digits",
                                rec->id, SENSOR_SERIAL_MAX);
        if (rec->state == SENSOR_ISSUED && (!rec->serial[0] || rec->not_after == 0))
                return diag_set(d, -EINVAL, "sensor '%s': an issued record needs a serial and a notAfter",
                                rec->id);
        if (rec->not_before > rec->not_after)
                return diag_set(d, -EINVAL, "sensor '%s': notBefore is after notAfter", rec->id);
        if (!sensor_birth_valid(rec->birth))
                return diag_set(d, -EINVAL,
                                "sensor '%s': the birth fingerprint is not sha256: and 64 lowercase hex digits",
                                rec->id);
        return 0;
}

int sensor_record_from_cert(const char *sensor_id, X509 *cert, SensorRecord *ret, Diag *d) {
        _cleanup_free_ char *serial = NULL;
        SensorRecord rec = { .state = SENSOR_ISSUED };
        time_t not_before, not_after;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        r = cert_serial_string(cert, &serial);
        if (r < 0)
                return diag_set(d, r, "cannot read the serial of sensor '%s''s certificate", sensor_id);
        if (strlen(serial) > SENSOR_SERIAL_MAX)
                return diag_set(d, -EINVAL,
                                "the serial of sensor '%s''s certificate is longer than %d hex digits",
                                sensor_id, SENSOR_SERIAL_MAX);
        r = cert_times(cert, &not_before, &not_after);
        if (r < 0 || not_after <= 0 || not_before < 0 || not_before > not_after)
                return diag_set(d, -EBADMSG, "cannot read the validity of sensor '%s''s certificate",
                                sensor_id);
        strcpy(rec.id, sensor_id);
        strcpy(rec.serial, serial);
        rec.not_before = (uint64_t) not_before;
        rec.not_after = (uint64_t) not_after;
        *ret = rec;
        return 0;
}

int sensor_record_format(const SensorRecord *rec, char **ret, size_t *ret_len, Diag *d) {
        char *text = NULL;
        int r, n;

        r = check_record(rec, d);
        if (r < 0)
                return r;
        n = asprintf(&text,
                     RECORD_MAGIC "\nid=%s\nstate=%s\nserial=%s\nnot_before=%" PRIu64 "\nnot_after=%" PRIu64
                                  "\n%s%s%s",
                     rec->id, sensor_state_to_string(rec->state), rec->serial, rec->not_before,
                     rec->not_after, rec->birth[0] ? "birth=" : "", rec->birth, rec->birth[0] ? "\n" : "");
        if (n < 0)
                return diag_set(d, -ENOMEM, "out of memory");
        *ret = text;
        *ret_len = (size_t) n;
        return 0;
}

/* The next line of [*p, end) that must start with key; its value in
 * [*ret_value, +*ret_len). */
static int next_field(const char **p, const char *end, const char *key, const char **ret_value,
                      size_t *ret_len) {
        size_t klen = strlen(key);
        const char *nl = memchr(*p, '\n', (size_t) (end - *p));

        if (!nl || (size_t) (nl - *p) < klen || memcmp(*p, key, klen) != 0)
                return -EBADMSG;
        *ret_value = *p + klen;
        *ret_len = (size_t) (nl - *p) - klen;
        *p = nl + 1;
        return 0;
}

/* A line key=<decimal, no leading zero, fits 64 bits>. */
static int next_number(const char **p, const char *end, const char *key, unsigned line, uint64_t *ret,
                       Diag *d) {
        const char *v;
        char buf[32];
        size_t n;

        if (next_field(p, end, key, &v, &n) < 0 || n == 0 || n > 20 || strspn(v, "0123456789") < n ||
            (n > 1 && v[0] == '0'))
                return diag_set(d, -EBADMSG, "line %u of the sensor record is not %s with a decimal number",
                                line, key);
        memcpy(buf, v, n);
        buf[n] = '\0';
        errno = 0;
        *ret = strtoull(buf, NULL, 10);
        if (errno == ERANGE)
                return diag_set(d, -EBADMSG, "line %u of the sensor record: %s is out of range", line, key);
        return 0;
}

int sensor_record_parse(const char *text, size_t len, SensorRecord *ret, Diag *d) {
        SensorRecord rec = {};
        const char *p = text, *end = text + len, *v;
        char buf[32];
        size_t n;
        int r;

        if (len > SENSOR_RECORD_MAX)
                return diag_set(d, -EBADMSG, "the sensor record is %zu bytes; at most %d are expected", len,
                                SENSOR_RECORD_MAX);
        if (!text || next_field(&p, end, RECORD_MAGIC, &v, &n) < 0 || n != 0)
                return diag_set(d, -EBADMSG, "the sensor record does not start with \"%s\"", RECORD_MAGIC);

        if (next_field(&p, end, "id=", &v, &n) < 0)
                return diag_set(d, -EBADMSG, "line 2 of the sensor record is not id=...");
        r = sensor_id_check(v, n, d);
        if (r < 0)
                return diag_prefix(d, -EBADMSG, "line 2 of the sensor record");
        memcpy(rec.id, v, n);

        if (next_field(&p, end, "state=", &v, &n) < 0 || n >= sizeof(buf))
                return diag_set(d, -EBADMSG, "line 3 of the sensor record is not state=...");
        memcpy(buf, v, n);
        buf[n] = '\0';
        rec.state = sensor_state_from_string(buf);
        if (rec.state == _SENSOR_STATE_INVALID)
                return diag_set(d, -EBADMSG, "line 3 of the sensor record: unknown state '%s'", buf);

        if (next_field(&p, end, "serial=", &v, &n) < 0 || !serial_valid(v, n))
                return diag_set(d, -EBADMSG,
                                "line 4 of the sensor record is not serial= with 0..%d uppercase hex digits",
                                SENSOR_SERIAL_MAX);
        memcpy(rec.serial, v, n);

        r = next_number(&p, end, "not_before=", 5, &rec.not_before, d);
        if (r < 0)
                return r;
        r = next_number(&p, end, "not_after=", 6, &rec.not_after, d);
        if (r < 0)
                return r;
        if (p != end) {
                if (next_field(&p, end, "birth=", &v, &n) < 0 || n != SHA256_TEXT_SIZE - 1)
                        return diag_set(d, -EBADMSG,
                                        "line 7 of the sensor record is not birth=sha256:<64 hex digits>");
                memcpy(rec.birth, v, n);
                if (!sensor_birth_valid(rec.birth))
                        return diag_set(d, -EBADMSG,
                                        "line 7 of the sensor record is not birth=sha256:<64 hex digits>");
        }
        if (p != end)
                return diag_set(d, -EBADMSG, "the sensor record has more than 7 lines");

        r = check_record(&rec, d);
        if (r < 0)
                return diag_prefix(d, -EBADMSG, "the sensor record");
        *ret = rec;
        return 0;
}

int sensor_record_save(StateStore *s, const SensorRecord *rec, unsigned max_sensors, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = sensor_record_format(rec, &text, &len, d);
        if (r < 0)
                return r;
        if (!state_store_exists(s, rec->id)) {
                char **names = NULL;
                unsigned n = 0;

                r = state_store_list(s, max_sensors, &names, &n, d);
                state_store_names_free(names, n);
                if (r == -E2BIG || (r >= 0 && n >= max_sensors))
                        return diag_set(d, -EDQUOT,
                                        "%u sensors are tracked, the limit (broker.max_sensors); forget one before "
                                        "adding sensor '%s'",
                                        max_sensors, rec->id);
                if (r < 0)
                        return r;
        }
        return state_store_save(s, rec->id, text, len, SENSOR_RECORD_MODE, d);
}

int sensor_record_load(StateStore *s, const char *sensor_id, SensorRecord *ret, Diag *d) {
        _cleanup_free_ char *text = NULL;
        SensorRecord rec;
        size_t len;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        r = state_store_load(s, sensor_id, SENSOR_RECORD_MAX, &text, &len, d);
        if (r < 0)
                return r;
        r = sensor_record_parse(text, len, &rec, d);
        if (r < 0)
                return diag_prefix(d, r, "%s/%s", state_store_path(s), sensor_id);
        if (strcmp(rec.id, sensor_id) != 0)
                return diag_set(d, -EBADMSG, "%s/%s is the record of sensor '%s'", state_store_path(s),
                                sensor_id, rec.id);
        *ret = rec;
        return 0;
}

int sensor_record_remove(StateStore *s, const char *sensor_id, Diag *d) {
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        if (!state_store_exists(s, sensor_id))
                return diag_set(d, -ENOENT, "no sensor '%s' is tracked", sensor_id);
        return state_store_remove(s, sensor_id, d);
}

int sensor_records_load_all(StateStore *s, unsigned max_sensors, SensorRecord **ret, unsigned *ret_n,
                            unsigned *ret_corrupt, Diag *d) {
        _cleanup_free_ SensorRecord *recs = NULL;
        char **names = NULL;
        unsigned n = 0, good = 0, corrupt = 0;
        Diag first = {};
        int r;

        r = state_store_list(s, max_sensors, &names, &n, d);
        if (r < 0)
                return r;
        recs = calloc(n ? n : 1, sizeof(SensorRecord));
        if (!recs) {
                state_store_names_free(names, n);
                return diag_set(d, -ENOMEM, "out of memory");
        }
        for (unsigned i = 0; i < n; i++) {
                Diag one = {};

                if (sensor_record_load(s, names[i], &recs[good], &one) < 0) {
                        if (corrupt++ == 0)
                                first = one;
                        continue;
                }
                good++;
        }
        state_store_names_free(names, n);
        if (corrupt > 0 && d)
                *d = first;
        *ret = TAKE_PTR(recs);
        *ret_n = good;
        *ret_corrupt = corrupt;
        return 0;
}
