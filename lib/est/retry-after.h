/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * retry-after.h: HTTP Retry-After and Date values (RFC 9110 5.6.7, 10.2.3).
 *
 * Retry-After is either delta-seconds or an HTTP-date. All three date formats
 * a recipient must accept are parsed: IMF-fixdate, the obsolete RFC 850 form
 * and asctime().
 */
#pragma once

#include <stdint.h>
#include <time.h>

/* -EINVAL if s is not an HTTP-date. */
int http_date_parse(const char *s, time_t *ret);

/* Seconds to wait, measured from `now`, clamped to [0, max_sec]. A date in
 * the past gives 0. -EINVAL if value is neither form. */
int retry_after_parse(const char *value, time_t now, uint64_t max_sec, uint64_t *ret);
