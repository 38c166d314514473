/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-pending.c: deferred sensor requests, their text format and their files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/sensor-pending.h"
#include "util/base64.h"

#define PENDING_MAGIC "fleetid-sensor-pending-v1"

void sensor_pending_done(SensorPending *p) {
        if (!p)
                return;
        free(p->csr);
        *p = (SensorPending) {};
}

int sensor_pending_format(const SensorPending *p, char **ret, size_t *ret_len, Diag *d) {
        _cleanup_free_ char *b64 = NULL;
        char *text = NULL;
        int r, n;

        r = sensor_id_check_string(p->id, d);
        if (r < 0)
                return r;
        if (!p->csr || p->csr_len == 0 || p->csr_len > SENSOR_CSR_MAX)
                return diag_set(d, -EINVAL, "sensor '%s': the pending CSR is empty or longer than %u bytes",
                                p->id, SENSOR_CSR_MAX);
        if (!sensor_birth_valid(p->birth))
                return diag_set(d, -EINVAL,
                                "sensor '%s': the birth fingerprint is not sha256: and 64 lowercase hex digits",
                                p->id);
        r = base64_encode(p->csr, p->csr_len, 0, &b64);
        if (r < 0)
                return diag_set(d, r, "out of memory");
        n = asprintf(&text, PENDING_MAGIC "\nid=%s\nuid=%u\nretry_at=%" PRIu64 "\ncsr=%s\n%s%s%s", p->id,
                     (unsigned) p->uid, p->retry_at, b64, p->birth[0] ? "birth=" : "", p->birth,
                     p->birth[0] ? "\n" : "");
        if (n < 0)
                return diag_set(d, -ENOMEM, "out of memory");
        *ret = text;
        *ret_len = (size_t) n;
        return 0;
}

/* The line at *p, which must start with key: its value in [*ret, +*ret_len). */
static int field(const char **p, const char *end, const char *key, const char **ret, size_t *ret_len) {
        size_t klen = strlen(key);
        const char *nl = memchr(*p, '\n', (size_t) (end - *p));

        if (!nl || (size_t) (nl - *p) < klen || memcmp(*p, key, klen) != 0)
                return -EBADMSG;
        *ret = *p + klen;
        *ret_len = (size_t) (nl - *p) - klen;
        *p = nl + 1;
        return 0;
}

/* A decimal number of at most digits digits, no leading zero, at most max. */
static int number(const char *v, size_t n, uint64_t max, uint64_t *ret) {
        uint64_t x = 0;

        if (n == 0 || n > 20 || (n > 1 && v[0] == '0'))
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (v[i] < '0' || v[i] > '9' || x > (max - (uint64_t) (v[i] - '0')) / 10)
                        return -EBADMSG;
                x = x * 10 + (uint64_t) (v[i] - '0');
        }
        *ret = x;
        return 0;
}

int sensor_pending_parse(const char *text, size_t len, SensorPending *ret, Diag *d) {
        SensorPending p = {};
        const char *s = text, *end = text + len, *v;
        uint64_t x;
        size_t n;
        int r;

        if (len > SENSOR_PENDING_MAX)
                return diag_set(d, -EBADMSG,
                                "the pending sensor request is %zu bytes; at most %u are expected", len,
                                (unsigned) SENSOR_PENDING_MAX);
        if (!text || field(&s, end, PENDING_MAGIC, &v, &n) < 0 || n != 0)
                return diag_set(d, -EBADMSG, "the pending sensor request does not start with \"%s\"",
                                PENDING_MAGIC);
        if (field(&s, end, "id=", &v, &n) < 0)
                return diag_set(d, -EBADMSG, "line 2 of the pending sensor request is not id=...");
        r = sensor_id_check(v, n, d);
        if (r < 0)
                return diag_prefix(d, -EBADMSG, "line 2 of the pending sensor request");
        memcpy(p.id, v, n);
        if (field(&s, end, "uid=", &v, &n) < 0 || number(v, n, UINT32_MAX - 1, &x) < 0)
                return diag_set(d, -EBADMSG, "line 3 of the pending sensor request is not uid=<decimal uid>");
        p.uid = (uid_t) x;
        if (field(&s, end, "retry_at=", &v, &n) < 0 || number(v, n, INT64_MAX, &p.retry_at) < 0)
                return diag_set(
                        d, -EBADMSG,
                        "line 4 of the pending sensor request is not retry_at=<seconds since the epoch>");
        if (field(&s, end, "csr=", &v, &n) < 0 || n == 0 || memchr(v, '\r', n) || memchr(v, ' ', n))
                return diag_set(d, -EBADMSG, "line 5 of the pending sensor request is not csr=<base64>");
        if (s != end) {
                const char *b;
                size_t bn;

                if (field(&s, end, "birth=", &b, &bn) < 0 || bn != sizeof(p.birth) - 1)
                        return diag_set(
                                d, -EBADMSG,
                                "line 6 of the pending sensor request is not birth=sha256:<64 hex digits>");
                memcpy(p.birth, b, bn);
                if (!sensor_birth_valid(p.birth))
                        return diag_set(
                                d, -EBADMSG,
                                "line 6 of the pending sensor request is not birth=sha256:<64 hex digits>");
        }
        if (s != end)
                return diag_set(d, -EBADMSG, "the pending sensor request has more than 6 lines");
        r = base64_decode(v, n, &p.csr, &p.csr_len);
        if (r < 0 || p.csr_len == 0 || p.csr_len > SENSOR_CSR_MAX) {
                sensor_pending_done(&p);
                return diag_set(d, r == -ENOMEM ? -ENOMEM : -EBADMSG,
                                "line 5 of the pending sensor request: the CSR is not base64 of 1..%u bytes",
                                SENSOR_CSR_MAX);
        }
        *ret = p;
        return 0;
}

int sensor_pending_save(StateStore *s, const SensorPending *p, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = sensor_pending_format(p, &text, &len, d);
        if (r < 0)
                return r;
        return state_store_save(s, p->id, text, len, SENSOR_PENDING_MODE, d);
}

int sensor_pending_load(StateStore *s, const char *sensor_id, SensorPending *ret, Diag *d) {
        _cleanup_free_ char *text = NULL;
        SensorPending p = {};
        size_t len;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        r = state_store_load(s, sensor_id, SENSOR_PENDING_MAX, &text, &len, d);
        if (r < 0)
                return r;
        r = sensor_pending_parse(text, len, &p, d);
        if (r < 0)
                return diag_prefix(d, r, "%s/%s", state_store_path(s), sensor_id);
        if (strcmp(p.id, sensor_id) != 0) {
                r = diag_set(d, -EBADMSG, "%s/%s is the pending request of sensor '%s'", state_store_path(s),
                             sensor_id, p.id);
                sensor_pending_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}
