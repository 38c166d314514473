/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ratelimit.c: token buckets per uid in a fixed-size table (see ratelimit.h).
 *
 * Tokens are counted in units of 1/60,000,000 (one token = one minute's worth
 * of µs), so that refilling at per_minute tokens a minute adds exactly
 * per_minute units per µs elapsed, with no rounding.
 */
#include <errno.h>
#include <stdlib.h>

#include "access/ratelimit.h"

#define UNITS_PER_TOKEN UINT64_C(60000000)

typedef struct Bucket {
        uid_t uid;
        uint64_t units;     /* tokens * UNITS_PER_TOKEN */
        uint64_t refilled;  /* when units was last brought up to date */
        uint64_t last_call; /* for the tie-break on eviction */
        uint32_t refused;   /* takes refused since the last one that passed */
} Bucket;

struct RateLimit {
        uint64_t per_minute;
        uint64_t capacity; /* burst * UNITS_PER_TOKEN */
        size_t max_uids, n;
        Bucket *buckets; /* max_uids, allocated once */
};

int ratelimit_new(RateLimit **ret, unsigned per_minute, unsigned burst, size_t max_uids) {
        RateLimit *rl;

        if (per_minute < 1 || per_minute > RATELIMIT_PER_MINUTE_MAX || burst < 1 ||
            burst > RATELIMIT_BURST_MAX || max_uids < RATELIMIT_UIDS_MIN || max_uids > RATELIMIT_UIDS_MAX)
                return -EINVAL;
        rl = calloc(1, sizeof(RateLimit));
        if (!rl)
                return -ENOMEM;
        rl->buckets = calloc(max_uids, sizeof(Bucket));
        if (!rl->buckets) {
                free(rl);
                return -ENOMEM;
        }
        rl->per_minute = per_minute;
        rl->capacity = burst * UNITS_PER_TOKEN;
        rl->max_uids = max_uids;
        *ret = rl;
        return 0;
}

RateLimit *ratelimit_free(RateLimit *rl) {
        if (!rl)
                return NULL;
        free(rl->buckets);
        free(rl);
        return NULL;
}

static void refill(const RateLimit *rl, Bucket *b, uint64_t now) {
        uint64_t elapsed, room;

        if (now <= b->refilled)
                return; /* a clock that went back refills nothing */
        elapsed = now - b->refilled;
        room = rl->capacity - b->units;
        /* Compare before multiplying: elapsed * per_minute may not fit. */
        if (elapsed >= room / rl->per_minute + 1)
                b->units = rl->capacity;
        else
                b->units += elapsed * rl->per_minute;
        if (b->units > rl->capacity)
                b->units = rl->capacity;
        b->refilled = now;
}

/* The bucket to give a newcomer: a free slot, or the fullest (then the least recently used), among
 * those with no refusals to report if there are any (ratelimit_take_counted()). */
static Bucket *slot_for_newcomer(RateLimit *rl, uint64_t now) {
        Bucket *best = NULL;

        if (rl->n < rl->max_uids)
                return &rl->buckets[rl->n++];
        for (size_t i = 0; i < rl->n; i++) {
                Bucket *b = &rl->buckets[i];

                refill(rl, b, now);
                if (!best || (b->refused == 0 && best->refused > 0) ||
                    ((b->refused == 0) == (best->refused == 0) &&
                     (b->units > best->units || (b->units == best->units && b->last_call < best->last_call))))
                        best = b;
        }
        return best;
}

bool ratelimit_take_counted(RateLimit *rl, uid_t uid, uint64_t now_usec, uint64_t *ret_retry_usec,
                            uint32_t *ret_refused) {
        Bucket *b = NULL;

        for (size_t i = 0; i < rl->n && !b; i++)
                if (rl->buckets[i].uid == uid)
                        b = &rl->buckets[i];
        if (!b) {
                b = slot_for_newcomer(rl, now_usec);
                *b = (Bucket) { .uid = uid, .units = rl->capacity, .refilled = now_usec };
        }
        refill(rl, b, now_usec);
        b->last_call = now_usec;
        if (b->units >= UNITS_PER_TOKEN) {
                b->units -= UNITS_PER_TOKEN;
                if (ret_refused)
                        *ret_refused = b->refused;
                b->refused = 0;
                return true;
        }
        if (b->refused < UINT32_MAX)
                b->refused++;
        if (ret_retry_usec)
                *ret_retry_usec = (UNITS_PER_TOKEN - b->units + rl->per_minute - 1) / rl->per_minute;
        return false;
}

bool ratelimit_take(RateLimit *rl, uid_t uid, uint64_t now_usec, uint64_t *ret_retry_usec) {
        return ratelimit_take_counted(rl, uid, now_usec, ret_retry_usec, NULL);
}

size_t ratelimit_tracked(const RateLimit *rl) {
        return rl->n;
}

size_t ratelimit_memory(const RateLimit *rl) {
        return sizeof(RateLimit) + rl->max_uids * sizeof(Bucket);
}
