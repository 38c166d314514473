/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "util/timestamp.h"

const char *timestamp_utc(time_t t, char buf[static TIMESTAMP_MAX]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, TIMESTAMP_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, TIMESTAMP_MAX, "@%" PRIi64, (int64_t) t);
        return buf;
}
