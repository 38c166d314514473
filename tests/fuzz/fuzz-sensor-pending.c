/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-sensor-pending: sensor_pending_parse() on any bytes (a file of
 * sensors-pending/ in the state directory, read at start). What it accepts
 * has a valid sensor id, a uid, a 1..SENSOR_CSR_MAX byte CSR, and formats
 * back (sensor_pending_format()) into text that parses to the same; what it
 * refuses yields nothing and says why.
 */
#include <errno.h>
#include <string.h>

#include "broker/sensor-pending.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SensorPending p = {}, again = {};
        _cleanup_free_ char *text = NULL;
        size_t len;
        Diag d = {};
        int r;

        r = sensor_pending_parse((const char *) data, size, &p, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(!p.csr);
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                return 0;
        }
        FUZZ_CHECK(size <= SENSOR_PENDING_MAX);
        FUZZ_CHECK(sensor_id_check_string(p.id, NULL) == 0);
        FUZZ_CHECK(p.csr && p.csr_len >= 1 && p.csr_len <= SENSOR_CSR_MAX);

        FUZZ_CHECK(sensor_pending_format(&p, &text, &len, &d) == 0);
        FUZZ_CHECK(sensor_pending_parse(text, len, &again, &d) == 0);
        FUZZ_CHECK(strcmp(again.id, p.id) == 0 && again.uid == p.uid && again.retry_at == p.retry_at);
        FUZZ_CHECK(again.csr_len == p.csr_len && memcmp(again.csr, p.csr, p.csr_len) == 0);
        sensor_pending_done(&p);
        sensor_pending_done(&again);
        return 0;
}
