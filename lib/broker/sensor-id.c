/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-id.c: validation of sensor ids.
 */
#include <errno.h>
#include <string.h>

#include "broker/sensor-id.h"

static int id_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == '-';
}

int sensor_id_check(const char *id, size_t len, Diag *d) {
        if (!id || len == 0)
                return diag_set(d, -EINVAL, "the sensor id is empty");
        if (len > SENSOR_ID_MAX)
                return diag_set(d, -EINVAL, "the sensor id is %zu bytes; at most %d are allowed", len,
                                SENSOR_ID_MAX);
        for (size_t i = 0; i < len; i++) {
                if (id[i] == '\0')
                        return diag_set(d, -EINVAL, "the sensor id contains a NUL byte at offset %zu", i);
                if (id[i] == '/')
                        return diag_set(d, -EINVAL, "the sensor id contains '/' at offset %zu", i);
                if (!id_char_ok(id[i]))
                        return diag_set(d, -EINVAL,
                                        "the sensor id contains the character 0x%02x at offset %zu; only "
                                        "[A-Za-z0-9._-] are allowed",
                                        (unsigned) (unsigned char) id[i], i);
        }
        if (id[0] == '.' || id[0] == '-')
                return diag_set(d, -EINVAL, "the sensor id starts with '%c'", id[0]);
        if (memmem(id, len, "..", 2))
                return diag_set(d, -EINVAL, "the sensor id contains \"..\"");
        return 0;
}

int sensor_id_check_string(const char *id, Diag *d) {
        if (!id)
                return diag_set(d, -EINVAL, "the sensor id is empty");
        return sensor_id_check(id, strnlen(id, SENSOR_ID_MAX + 1), d);
}
