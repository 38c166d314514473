/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ratelimit.h: a token bucket per uid, for the calls that cost the device
 * something (a TPM signature, an EST enrollment): RateLimited past the rate.
 *
 * Each uid has a bucket of at most burst tokens, refilled at per_minute tokens
 * a minute; a call takes one. The time is handed in (CLOCK_MONOTONIC, µs): no
 * clock or event loop here.
 *
 * Memory is bounded: the table holds at most max_uids buckets, allocated once.
 * When it is full and an untracked uid calls, the bucket that holds the most
 * tokens (after refilling; the least recently used of equals) is forgotten and
 * given to the newcomer, which starts full. A full bucket carries no memory of
 * past calls, so forgetting it changes nothing; forgetting a fuller one rather
 * than an emptier one keeps the uids that were actually limited limited. A
 * flood from one uid, or from many, never grows the table.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/macro.h"

#define RATELIMIT_PER_MINUTE_MAX 60000u
#define RATELIMIT_BURST_MAX 10000u
#define RATELIMIT_UIDS_MIN 16u
#define RATELIMIT_UIDS_MAX 4096u

typedef struct RateLimit RateLimit;

/* -EINVAL unless 1 <= per_minute <= RATELIMIT_PER_MINUTE_MAX, 1 <= burst <=
 * RATELIMIT_BURST_MAX and RATELIMIT_UIDS_MIN <= max_uids <= RATELIMIT_UIDS_MAX. */
int ratelimit_new(RateLimit **ret, unsigned per_minute, unsigned burst, size_t max_uids);
RateLimit *ratelimit_free(RateLimit *rl);
DEFINE_TRIVIAL_CLEANUP_FUNC(RateLimit *, ratelimit_free);

/* Takes a token from uid's bucket at now_usec: true if there was one. If not,
 * *ret_retry_usec (may be NULL) is how long until there is one. */
bool ratelimit_take(RateLimit *rl, uid_t uid, uint64_t now_usec, uint64_t *ret_retry_usec);

/* ratelimit_take() that also counts the refused takes per uid: when a take
 * passes, *ret_refused (may be NULL) is how many were refused for uid since
 * the last one that passed, and the count starts again. For a log that says
 * how many refusals it did not show. A bucket with refusals not yet reported
 * is forgotten for a newcomer only when every bucket has some. */
bool ratelimit_take_counted(RateLimit *rl, uid_t uid, uint64_t now_usec, uint64_t *ret_retry_usec,
                            uint32_t *ret_refused);

/* How many uids are tracked (at most max_uids), and the bytes the table holds. */
size_t ratelimit_tracked(const RateLimit *rl);
size_t ratelimit_memory(const RateLimit *rl);
