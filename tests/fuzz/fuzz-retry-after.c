/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-retry-after: retry_after_parse() and http_date_parse() on any header
 * value. A delay is never over the cap, and a date that parses comes back as
 * the same instant when written as an IMF-fixdate and parsed again.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "est/retry-after.h"
#include "fuzz.h"

/* A fixed "now" (2026-01-01T00:00:00Z), so a run is reproducible. */
#define FUZZ_NOW ((time_t) 1767225600)
#define FUZZ_MAX_SEC UINT64_C(86400)

static void check_date(const char *s) {
        char again[64];
        struct tm tm;
        time_t t, t2;

        if (http_date_parse(s, &t) < 0)
                return;
        FUZZ_CHECK(gmtime_r(&t, &tm));
        /* Years under 1000 or past 9999 have no 4-digit IMF-fixdate. */
        if (strftime(again, sizeof(again), "%a, %d %b %Y %H:%M:%S GMT", &tm) != 29)
                return;
        FUZZ_CHECK(http_date_parse(again, &t2) == 0);
        FUZZ_CHECK(t2 == t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        uint64_t delay = UINT64_MAX;
        int r;

        r = retry_after_parse(s, FUZZ_NOW, FUZZ_MAX_SEC, &delay);
        if (r < 0)
                FUZZ_CHECK(r == -EINVAL && delay == UINT64_MAX);
        else
                FUZZ_CHECK(delay <= FUZZ_MAX_SEC);
        check_date(s);
        return 0;
}
