/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backoff.h: how long to wait before trying again after a failure.
 *
 * Exponential (initial * 2^(failures-1)), capped at max, with "equal jitter":
 * the delay is drawn uniformly from [base/2, base], so devices that failed
 * together do not come back together. A server's Retry-After wins over the
 * computed delay, but never beyond max: max is the longest wait. Pure: the
 * random value is handed in.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* failures >= 1; initial and max in seconds, 1 <= initial <= max. */
uint64_t backoff_delay(unsigned failures, uint64_t initial, uint64_t max, uint64_t random);

/* The delay to use: the server's Retry-After when given (at least 1 s, at
 * most max; *ret_capped, if not NULL, says whether it was cut to max), else
 * backoff_delay(). */
uint64_t backoff_next(unsigned failures, uint64_t initial, uint64_t max, bool retry_after_given,
                      uint64_t retry_after, uint64_t random, bool *ret_capped);
