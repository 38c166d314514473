/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet-sim: the renewal requests a whole fleet sends to its EST server, per
 * minute and per hour, computed with fleetid's own scheduling code
 * (renew_due() and renew_retry_delay() from lib/renew/schedule.h).
 *
 * A fleet of N devices enrolls uniformly within one hour; each certificate
 * is valid for 365 days. Each device draws its own random values from a
 * splitmix64 stream seeded from (seed, device number), so a run is
 * reproducible and the devices are independent: they interact only through
 * the EST server being up or down, which is a fixed window of time. Each
 * device's attempts are therefore generated on their own and added into
 * per-minute bins. Three schedules per seed, from the same draws (a fourth,
 * against a server at capacity, is described at cap_simulate()):
 *
 *   no jitter   jitter_percent 0: everyone renews at 67 % of the lifetime
 *   jitter      the default policy (67 % +- 5 %, retry 30 s .. 4 h)
 *   outage      the default policy, and the EST server down for a few hours
 *               in the middle of the renewal window: every attempt then
 *               fails and the device retries after renew_retry_delay()
 *   capacity    the outage, and a server that takes on a limited number of
 *               requests a minute and answers 503 + Retry-After beyond
 *
 * Prints markdown tables (one row per seed, next to what Poisson noise alone
 * predicts) and exits non-zero only when its own bookkeeping is inconsistent
 * (requests counted in the bins differ from the attempts made, an attempt
 * falls outside the simulated time, a device never renews), when a device's
 * certificate expires before it renews, or when the server at capacity takes
 * on more than its capacity. The goals are reported, never asserted.
 *
 *   fleet-sim [--devices N] [--seed S] [--runs K] [--outage-hours H]
 *             [--capacity C] [--quota Q] [--csv FILE] [--retry-max S]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "est/est.h"
#include "est/retry-after.h"
#include "renew/schedule.h"
#include "util/macro.h"

#define MINUTE 60
#define HOUR 3600
#define DAY 86400
#define LIFETIME ((time_t) 365 * DAY)
#define ENROLL_SPAN HOUR
#define T0 ((time_t) 1800000000) /* a UTC hour: minute and hour bins start on the clock */
#define HORIZON_MIN (400 * 24 * 60)
#define MAX_FAILURES 1000000u /* a device still failing after this many retries is a bug */
#define CALM_BIN_MIN 10       /* "rate back to normal": 10-minute bins ... */
#define CALM_BINS 6           /* ... six in a row (one hour) within the Poisson 99.9th percentile */
#define TIMELINE_BIN_MIN 30
#define CAP_TIMELINE_BIN_MIN 60 /* the recovery at capacity lasts most of a day */
#define DRAIN_GOAL_MIN 120 /* goal 3b: every device that failed through the outage renewed within 2 hours */
#define TIMELINE_ROWS ((48 + 6) * 60 / TIMELINE_BIN_MIN) /* the longest outage, an hour before, 5 after */

/* fleetid's defaults (lib/config/config.c); --retry-max sets renew.retry_max. Set once, in main(). */
static RenewPolicy default_policy = {
        .share_percent = 67, .jitter_percent = 5, .retry_initial = 30, .retry_max = 2 * 3600
};

typedef struct Options {
        uint64_t devices;
        uint64_t seed;
        unsigned runs;
        unsigned outage_hours;
        uint64_t capacity;  /* requests per minute; 0: twice the mean rate of the window */
        const char *csv;    /* per-minute figures of the capacity run (first seed), or NULL */
        uint64_t retry_max; /* renew.retry_max, seconds */
        uint64_t quota;     /* returns the server asks for per minute; 0: capacity less room for new ones */
} Options;

/* Per-minute request counts of one seed, and what the devices reported doing. */
typedef struct Run {
        uint32_t *no_jitter; /* requests, jitter_percent 0 */
        uint32_t *jitter;    /* requests, default policy */
        uint32_t *outage;    /* requests, default policy with the outage */
        uint32_t *failed;    /* of those, the ones that failed */
        uint32_t *recovered; /* successes of devices that had failed during the outage */
        uint64_t attempts[3];
        uint64_t failed_requests;
        uint64_t affected; /* devices with at least one failure */
        time_t outage_start, outage_end, last_recovery;
        unsigned inconsistent;
} Run;

enum { SCHED_NO_JITTER, SCHED_JITTER, SCHED_OUTAGE };

typedef struct Result {
        uint64_t seed;
        uint32_t peak_no_jitter, peak_jitter;
        uint64_t peak_hour, peak_hour_sliding;
        double mean_hour;
        uint32_t peak_during, peak_after;
        long peak_after_min;                /* minutes after the outage's end */
        uint64_t affected, failed_requests; /* failed requests are also the extra ones: one success each */
        long calm_after_min;                /* -1: not within a day */
        long recovered_p50_min, recovered_p99_min; /* minutes after the outage's end */
        time_t recovered_all_sec;                  /* seconds after the outage's end */
} Result;

static uint64_t mix64(uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *state) {
        return mix64(*state += 0x9E3779B97F4A7C15ULL);
}

/* uniform in [0, n) */
static uint64_t uniform_below(uint64_t random, uint64_t n) {
        return (uint64_t) (((unsigned __int128) random * n) >> 64);
}

static void run_free(Run *r) {
        free(r->no_jitter);
        free(r->jitter);
        free(r->outage);
        free(r->failed);
        free(r->recovered);
}

static int run_init(Run *r) {
        *r = (Run) {};
        r->no_jitter = calloc(HORIZON_MIN, sizeof(uint32_t));
        r->jitter = calloc(HORIZON_MIN, sizeof(uint32_t));
        r->outage = calloc(HORIZON_MIN, sizeof(uint32_t));
        r->failed = calloc(HORIZON_MIN, sizeof(uint32_t));
        r->recovered = calloc(HORIZON_MIN, sizeof(uint32_t));
        if (!r->no_jitter || !r->jitter || !r->outage || !r->failed || !r->recovered) {
                run_free(r);
                return -ENOMEM;
        }
        return 0;
}

static void run_reset(Run *r) {
        memset(r->no_jitter, 0, HORIZON_MIN * sizeof(uint32_t));
        memset(r->jitter, 0, HORIZON_MIN * sizeof(uint32_t));
        memset(r->outage, 0, HORIZON_MIN * sizeof(uint32_t));
        memset(r->failed, 0, HORIZON_MIN * sizeof(uint32_t));
        memset(r->recovered, 0, HORIZON_MIN * sizeof(uint32_t));
        memset(r->attempts, 0, sizeof(r->attempts));
        r->failed_requests = r->affected = 0;
        r->last_recovery = 0;
        r->inconsistent = 0;
}

static long minute_of(time_t t) {
        return (long) ((t - T0) / MINUTE);
}

/* Counts one request at t; an attempt outside the simulated time is an inconsistency. */
static void count(Run *r, uint32_t *bins, time_t t) {
        long m = minute_of(t);

        if (t < T0 || m >= HORIZON_MIN) {
                if (r->inconsistent++ == 0)
                        fprintf(stderr,
                                "fleet-sim: a request at T0%+lld s falls outside the %d simulated days\n",
                                (long long) (t - T0), HORIZON_MIN / (24 * 60));
                return;
        }
        bins[m]++;
}

static void simulate_device(Run *r, uint64_t seed, uint64_t index) {
        RenewPolicy none = default_policy;
        uint64_t state = mix64(mix64(seed) + index), random;
        time_t not_before, not_after, due, t;
        unsigned failures = 0;

        none.jitter_percent = 0;
        not_before = T0 + (time_t) uniform_below(splitmix64(&state), ENROLL_SPAN);
        not_after = not_before + LIFETIME;
        random = splitmix64(&state);

        due = renew_due(not_before, not_after, &none, random);
        if (due != not_before + LIFETIME * none.share_percent / 100 && r->inconsistent++ == 0)
                fprintf(stderr,
                        "fleet-sim: renew_due() without jitter gave T0%+lld s for a device enrolled at "
                        "T0%+lld s\n",
                        (long long) (due - T0), (long long) (not_before - T0));
        count(r, r->no_jitter, due);
        r->attempts[SCHED_NO_JITTER]++;

        due = renew_due(not_before, not_after, &default_policy, random);
        count(r, r->jitter, due);
        r->attempts[SCHED_JITTER]++;

        /* the same device, same draws, while the EST server is down for a while */
        for (t = due; t >= r->outage_start && t < r->outage_end; failures++) {
                count(r, r->outage, t);
                count(r, r->failed, t);
                r->attempts[SCHED_OUTAGE]++;
                r->failed_requests++;
                if (failures >= MAX_FAILURES) {
                        if (r->inconsistent++ == 0)
                                fprintf(stderr,
                                        "fleet-sim: device %" PRIu64 " still failing after %u retries\n",
                                        index, failures);
                        return;
                }
                t += (time_t) renew_retry_delay(failures + 1, t, not_after, &default_policy, random);
        }
        count(r, r->outage, t);
        r->attempts[SCHED_OUTAGE]++;
        if (failures > 0) {
                r->affected++;
                count(r, r->recovered, t);
                if (t > r->last_recovery)
                        r->last_recovery = t;
        }
}

static uint64_t sum_bins(const uint32_t *bins, long from, long to) {
        uint64_t s = 0;

        if (from < 0)
                from = 0;
        if (to > HORIZON_MIN)
                to = HORIZON_MIN;
        for (long m = from; m < to; m++)
                s += bins[m];
        return s;
}

/* the highest count in bins[from..to); ret_at (optional): its first minute */
static uint32_t peak_bins(const uint32_t *bins, long from, long to, long *ret_at) {
        uint32_t p = 0;
        long at = from;

        if (from < 0)
                from = 0;
        if (to > HORIZON_MIN)
                to = HORIZON_MIN;
        for (long m = from; m < to; m++)
                if (bins[m] > p) {
                        p = bins[m];
                        at = m;
                }
        if (ret_at)
                *ret_at = at;
        return p;
}

/* The bookkeeping must add up; returns the number of inconsistencies found. */
static unsigned run_check(const Run *r, uint64_t devices) {
        long os = minute_of(r->outage_start), oe = minute_of(r->outage_end);
        const uint32_t *bins[3] = { r->no_jitter, r->jitter, r->outage };
        unsigned bad = r->inconsistent;

        for (int s = 0; s < 3; s++) {
                uint64_t total = sum_bins(bins[s], 0, HORIZON_MIN);

                if (total != r->attempts[s]) {
                        fprintf(stderr,
                                "fleet-sim: schedule %d: %" PRIu64 " requests in the bins, %" PRIu64
                                " attempts made\n",
                                s, total, r->attempts[s]);
                        bad++;
                }
        }
        if (r->attempts[SCHED_NO_JITTER] != devices || r->attempts[SCHED_JITTER] != devices ||
            r->attempts[SCHED_OUTAGE] != devices + r->failed_requests) {
                fprintf(stderr,
                        "fleet-sim: %" PRIu64 " devices but %" PRIu64 "/%" PRIu64 "/%" PRIu64
                        " attempts (%" PRIu64 " failed)\n",
                        devices, r->attempts[0], r->attempts[1], r->attempts[2], r->failed_requests);
                bad++;
        }
        /* every request during the outage failed, and only those */
        if (sum_bins(r->failed, os, oe) != r->failed_requests ||
            sum_bins(r->failed, 0, HORIZON_MIN) != r->failed_requests ||
            sum_bins(r->outage, os, oe) != r->failed_requests) {
                fprintf(stderr,
                        "fleet-sim: %" PRIu64 " failed attempts made, %" PRIu64 " counted as failed (%" PRIu64
                        " of them during the outage), %" PRIu64 " requests during the outage\n",
                        r->failed_requests, sum_bins(r->failed, 0, HORIZON_MIN), sum_bins(r->failed, os, oe),
                        sum_bins(r->outage, os, oe));
                bad++;
        }
        /* devices that failed all renewed after the outage; the others are untouched by it */
        if (sum_bins(r->recovered, oe, HORIZON_MIN) != r->affected ||
            sum_bins(r->outage, 0, os) != sum_bins(r->jitter, 0, os) ||
            sum_bins(r->outage, oe, HORIZON_MIN) != sum_bins(r->jitter, oe, HORIZON_MIN) + r->affected) {
                fprintf(stderr,
                        "fleet-sim: %" PRIu64 " devices failed, %" PRIu64 " renewed after the outage\n",
                        r->affected, sum_bins(r->recovered, oe, HORIZON_MIN));
                bad++;
        }
        return bad;
}

/*
 * A server at capacity. The same fleet and draws, the same outage (nothing
 * answers), but the EST server, when up, takes on at most `capacity` requests
 * per clock minute; every request beyond that is answered 503 with a
 * Retry-After the server computes from a calendar of the returns it has
 * already asked for: the first later minute with fewer than `quota` returns
 * promised, spread over the minute (quota = capacity less the mean rate of
 * new requests, so the devices it has not yet heard from keep room). A return
 * in the minute it was given is taken on (the server holds its place); new
 * requests get what is left of the capacity. The
 * devices follow fleetid's own code: no answer, renew_retry_delay(); a 503,
 * the header's value through retry_after_parse() (as est.c reads it) and
 * renew_retry_after_delay() (as fleetidd waits). Devices now interact through
 * the server, so the attempts are run in time order from a heap.
 */
typedef struct CapEvent {
        time_t t;
        uint32_t device;
} CapEvent;

typedef struct CapDevice {
        time_t not_after;
        uint64_t random;
        uint32_t failures;
        uint32_t rejected; /* 503s received */
        long slot;         /* the minute the server gave it to come back in, -1 if none */
} CapDevice;

typedef struct CapRun {
        uint32_t capacity, quota;
        uint32_t *fresh;     /* per minute: attempts the server did not ask for */
        uint32_t *returns;   /* per minute: attempts at a time the server gave */
        uint32_t *taken;     /* per minute: requests taken on (certificates issued) */
        uint32_t *taken_new; /* per minute: of those, new requests */
        uint32_t *refused;   /* per minute: 503s */
        uint32_t *promised;  /* per minute: returns asked for */
        uint32_t *failed;    /* per minute: attempts while nothing answers */
        uint64_t attempts, refusals, outage_failures, renewed, expired, affected;
        uint64_t max_retry_after, max_refusals, off_slot;
        uint64_t outstanding;            /* devices failed or refused, not yet renewed */
        uint64_t refusals_later;         /* 503s after the recovery was over (normal peaks above capacity) */
        time_t recovered;                /* when, after the outage, no device was outstanding any more */
        time_t last_success, min_margin; /* min_margin: least time left at a renewal */
        long last_promised;
        unsigned inconsistent;
} CapRun;

typedef struct CapResult {
        uint64_t seed;
        uint32_t capacity;
        uint32_t peak_offered_first, peak_offered_after, peak_taken, peak_returns_after;
        long peak_offered_after_min, minutes_over_return, minutes_over, minutes_over_later;
        uint64_t refusals, outage_failures, affected, expired, max_retry_after, max_refusals, off_slot;
        uint64_t refusals_later;
        time_t drained_sec, min_margin;
} CapResult;

static void cap_free(CapRun *c) {
        free(c->fresh);
        free(c->returns);
        free(c->taken);
        free(c->taken_new);
        free(c->refused);
        free(c->promised);
        free(c->failed);
}

static int cap_init(CapRun *c, uint32_t capacity, uint32_t quota) {
        *c = (CapRun) { .capacity = capacity, .quota = quota, .min_margin = LIFETIME };
        c->fresh = calloc(HORIZON_MIN, sizeof(uint32_t));
        c->returns = calloc(HORIZON_MIN, sizeof(uint32_t));
        c->taken = calloc(HORIZON_MIN, sizeof(uint32_t));
        c->taken_new = calloc(HORIZON_MIN, sizeof(uint32_t));
        c->refused = calloc(HORIZON_MIN, sizeof(uint32_t));
        c->promised = calloc(HORIZON_MIN, sizeof(uint32_t));
        c->failed = calloc(HORIZON_MIN, sizeof(uint32_t));
        if (!c->fresh || !c->returns || !c->taken || !c->taken_new || !c->refused || !c->promised ||
            !c->failed) {
                cap_free(c);
                return -ENOMEM;
        }
        return 0;
}

static void heap_push(CapEvent *h, size_t *n, CapEvent e) {
        size_t i = (*n)++;

        while (i > 0) {
                size_t parent = (i - 1) / 2;

                if (h[parent].t <= e.t)
                        break;
                h[i] = h[parent];
                i = parent;
        }
        h[i] = e;
}

static CapEvent heap_pop(CapEvent *h, size_t *n) {
        CapEvent top = h[0], last = h[--(*n)];
        size_t i = 0;

        for (;;) {
                size_t child = 2 * i + 1;

                if (child >= *n)
                        break;
                if (child + 1 < *n && h[child + 1].t < h[child].t)
                        child++;
                if (last.t <= h[child].t)
                        break;
                h[i] = h[child];
                i = child;
        }
        if (*n > 0)
                h[i] = last;
        return top;
}

/* The server's answer to a request it cannot take on at t: the Retry-After
 * value, in seconds, of the first minute after t's with room in its calendar
 * (*ret_slot). */
static uint64_t cap_retry_after(CapRun *c, time_t t, long *ret_slot) {
        long m = minute_of(t) + 1;

        if (m < c->last_promised)
                m = c->last_promised; /* the minutes before are full */
        while (m < HORIZON_MIN - 1 && c->promised[m] >= c->quota)
                m++;
        c->last_promised = m;
        *ret_slot = m;
        /* the k-th return of a minute at k/quota of it */
        return (uint64_t) (T0 + (time_t) m * MINUTE + (time_t) (c->promised[m]++ * MINUTE / c->quota) - t);
}

static void cap_attempt(CapRun *c, CapDevice *d, time_t t, time_t outage_start, time_t outage_end,
                        CapEvent *heap, size_t *n, uint32_t index) {
        long m = minute_of(t), slot;
        char header[32];
        uint64_t sec = 0, delay;
        bool returning, admit;

        c->attempts++;
        if (t < T0 || m >= HORIZON_MIN) {
                if (c->inconsistent++ == 0)
                        fprintf(stderr,
                                "fleet-sim: capacity: an attempt at T0%+lld s is outside the simulation\n",
                                (long long) (t - T0));
                return;
        }
        if (t >= outage_start && t < outage_end) {
                /* nothing answers */
                c->failed[m]++;
                c->outage_failures++;
                if (d->failures++ == 0) {
                        c->affected++;
                        c->outstanding++;
                }
                d->slot = -1;
                delay = renew_retry_delay(d->failures, t, d->not_after, &default_policy, d->random);
                heap_push(heap, n, (CapEvent) { t + (time_t) delay, index });
                return;
        }
        /* a return in its minute has its place kept; anything else is new to the server */
        returning = d->slot >= 0;
        if (returning && d->slot != m)
                c->off_slot++;
        returning = returning && d->slot == m;
        d->slot = -1;
        (returning ? c->returns : c->fresh)[m]++;
        admit = returning ? c->taken[m] < c->capacity : c->taken_new[m] + c->promised[m] < c->capacity;
        if (admit) {
                c->taken[m]++;
                if (!returning)
                        c->taken_new[m]++;
                c->renewed++;
                if (d->failures > 0 && --c->outstanding == 0 && t >= outage_end && c->recovered == 0)
                        c->recovered = c->last_success = t;
                if (t > d->not_after)
                        c->expired++;
                else if (d->not_after - t < c->min_margin)
                        c->min_margin = d->not_after - t;
                return;
        }
        /* 503 with Retry-After: N, read and waited for by fleetid's own code */
        c->refused[m]++;
        c->refusals++;
        if (c->recovered > 0)
                c->refusals_later++;
        if (d->failures++ == 0) {
                c->affected++;
                c->outstanding++;
        }
        if (++d->rejected > c->max_refusals)
                c->max_refusals = d->rejected;
        snprintf(header, sizeof(header), "%" PRIu64, cap_retry_after(c, t, &slot));
        if (retry_after_parse(header, t, EST_RETRY_AFTER_MAX, &sec) < 0 || sec == 0) {
                if (c->inconsistent++ == 0)
                        fprintf(stderr, "fleet-sim: capacity: the server sent Retry-After: %s\n", header);
                return;
        }
        if (sec > c->max_retry_after)
                c->max_retry_after = sec;
        delay = renew_retry_after_delay(sec, t, d->not_after);
        d->slot = slot;
        heap_push(heap, n, (CapEvent) { t + (time_t) delay, index });
}

static int cap_simulate(CapRun *c, uint64_t devices, uint64_t seed, time_t outage_start, time_t outage_end) {
        _cleanup_free_ CapDevice *dev = calloc(devices, sizeof(CapDevice));
        _cleanup_free_ CapEvent *heap = calloc(devices, sizeof(CapEvent));
        size_t n = 0;

        if (!dev || !heap)
                return -ENOMEM;
        for (uint64_t i = 0; i < devices; i++) {
                /* the same draws as simulate_device() */
                uint64_t state = mix64(mix64(seed) + i);
                time_t not_before = T0 + (time_t) uniform_below(splitmix64(&state), ENROLL_SPAN);

                dev[i] = (CapDevice) { .not_after = not_before + LIFETIME,
                                       .random = splitmix64(&state),
                                       .slot = -1 };
                heap_push(heap, &n,
                          (CapEvent) { renew_due(not_before, dev[i].not_after, &default_policy, dev[i].random),
                                       (uint32_t) i });
        }
        while (n > 0) {
                CapEvent e = heap_pop(heap, &n);

                cap_attempt(c, &dev[e.device], e.t, outage_start, outage_end, heap, &n, e.device);
        }
        /* every device renewed exactly once; returns came only when asked for; the recovery ended */
        if (c->renewed != devices || c->attempts != devices + c->refusals + c->outage_failures ||
            sum_bins(c->returns, 0, HORIZON_MIN) + c->off_slot != c->refusals || c->outstanding != 0 ||
            (c->outage_failures > 0 && c->recovered == 0)) {
                fprintf(stderr,
                        "fleet-sim: capacity: %" PRIu64 " devices, %" PRIu64 " renewed, %" PRIu64
                        " attempts, %" PRIu64 " refused, %" PRIu64 " failed, %" PRIu64 " returns\n",
                        devices, c->renewed, c->attempts, c->refusals, c->outage_failures,
                        sum_bins(c->returns, 0, HORIZON_MIN));
                c->inconsistent++;
        }
        for (long m = 0; m < HORIZON_MIN; m++)
                if (c->taken[m] > c->capacity) {
                        fprintf(stderr, "fleet-sim: capacity: %" PRIu32 " taken on in minute %ld\n",
                                c->taken[m], m);
                        c->inconsistent++;
                        break;
                }
        return 0;
}

static CapResult cap_analyse(const CapRun *c, uint64_t seed, time_t outage_end) {
        long oe = minute_of(outage_end);
        CapResult res = {
                .seed = seed,
                .capacity = c->capacity,
                .refusals = c->refusals,
                .outage_failures = c->outage_failures,
                .affected = c->affected,
                .expired = c->expired,
                .max_retry_after = c->max_retry_after,
                .max_refusals = c->max_refusals,
                .off_slot = c->off_slot,
                .drained_sec = c->recovered > outage_end ? c->recovered - outage_end : 0,
                .refusals_later = c->refusals_later,
                .min_margin = c->min_margin,
        };

        res.peak_offered_first = c->fresh[oe] + c->returns[oe];
        res.peak_offered_after_min = -1;
        for (long m = oe + 1; m < HORIZON_MIN; m++) {
                uint32_t offered = c->fresh[m] + c->returns[m];
                long rec = minute_of(c->recovered > 0 ? c->recovered : outage_end);

                if (offered > res.peak_offered_after) {
                        res.peak_offered_after = offered;
                        res.peak_offered_after_min = m - oe;
                }
                if (c->returns[m] > res.peak_returns_after)
                        res.peak_returns_after = c->returns[m];
                if (offered > c->capacity) {
                        if (m < oe + (long) (default_policy.retry_max / MINUTE))
                                res.minutes_over_return++; /* the fleet's own return: one retry period */
                        else if (m <= rec)
                                res.minutes_over++;
                        else
                                res.minutes_over_later++;
                }
        }
        res.peak_taken = peak_bins(c->taken, 0, HORIZON_MIN, NULL);
        return res;
}

/* Poisson(lambda): tail[k] = P(X > k) for k in [0, n). */
typedef struct Poisson {
        double lambda;
        long n;
        double *tail;
} Poisson;

static void poisson_done(Poisson *p) {
        free(p->tail);
}

static int poisson_init(Poisson *p, double lambda) {
        double acc = 0;

        p->lambda = lambda;
        p->n = (long) (lambda + 40 * sqrt(lambda) + 60);
        p->tail = calloc(p->n, sizeof(double));
        if (!p->tail)
                return -ENOMEM;
        /* summed from the far end, so that tiny tails keep their precision */
        for (long k = p->n - 1; k >= 0; k--) {
                p->tail[k] = acc;
                if (lambda > 0)
                        acc += exp(k * log(lambda) - lambda - lgamma(k + 1.0));
                else
                        acc += k == 0;
        }
        return 0;
}

/* smallest k with P(X <= k) >= q */
static long poisson_quantile(const Poisson *p, double q) {
        for (long k = 0; k < p->n; k++)
                if (p->tail[k] <= 1 - q)
                        return k;
        return p->n;
}

/* smallest k with P(max of `count` independent draws <= k) >= q */
static long poisson_max_quantile(const Poisson *p, long count, double q) {
        for (long k = 0; k < p->n; k++)
                if (exp(count * log1p(-p->tail[k])) >= q)
                        return k;
        return p->n;
}

/* first minute (from `from`) at which `share` of the total of bins[from..) is reached */
static long bins_percentile(const uint32_t *bins, long from, uint64_t total, double share) {
        uint64_t acc = 0;

        for (long m = from; m < HORIZON_MIN; m++) {
                acc += bins[m];
                if (acc > 0 && (double) acc >= share * (double) total)
                        return m - from;
        }
        return -1;
}

typedef struct Window {
        time_t start, end; /* where renewals fall: [share - jitter, share + jitter] of the lifetime */
        double lambda_min, lambda_hour;
        long plateau_min, plateau_hours;
} Window;

static Window spread_window(uint64_t devices) {
        const RenewPolicy *p = &default_policy;
        time_t spread = LIFETIME * 2 * p->jitter_percent / 100;
        Window w = {
                .start = T0 + LIFETIME * (p->share_percent - p->jitter_percent) / 100,
                .end = T0 + ENROLL_SPAN + LIFETIME * (p->share_percent + p->jitter_percent) / 100,
        };

        /* between the ramps (one enrollment span at each end) the rate is flat */
        w.lambda_min = (double) devices * MINUTE / (double) spread;
        w.lambda_hour = (double) devices * HOUR / (double) spread;
        w.plateau_min = (spread - ENROLL_SPAN) / MINUTE;
        w.plateau_hours = (spread - ENROLL_SPAN) / HOUR;
        return w;
}

static Result analyse(const Run *r, const Window *w, const Poisson *minute10, uint64_t seed) {
        long ws = minute_of(w->start), we = (minute_of(w->end - 1) + 1), os = minute_of(r->outage_start),
             oe = minute_of(r->outage_end), calm_limit = poisson_quantile(minute10, 0.999);
        Result res = { .seed = seed };
        uint64_t sliding = 0;
        long at;

        res.peak_no_jitter = peak_bins(r->no_jitter, 0, HORIZON_MIN, NULL);
        res.peak_jitter = peak_bins(r->jitter, 0, HORIZON_MIN, NULL);

        /* clock hours (T0 is on the hour), and any 60 consecutive minutes */
        for (long h = ws / 60; h * 60 < we; h++) {
                uint64_t c = sum_bins(r->jitter, h * 60, h * 60 + 60);

                if (c > res.peak_hour)
                        res.peak_hour = c;
        }
        for (long m = ws; m < we; m++) {
                sliding += r->jitter[m];
                if (m - 60 >= ws)
                        sliding -= r->jitter[m - 60];
                if (sliding > res.peak_hour_sliding)
                        res.peak_hour_sliding = sliding;
        }
        res.mean_hour = (double) sum_bins(r->jitter, ws, we) * HOUR / (double) (w->end - w->start);

        res.affected = r->affected;
        res.failed_requests = r->failed_requests;
        res.peak_during = peak_bins(r->outage, os, oe, NULL);
        res.recovered_all_sec = r->affected ? r->last_recovery - r->outage_end : 0;
        res.peak_after = peak_bins(r->outage, oe, minute_of(r->outage_end + res.recovered_all_sec) + 1, &at);
        res.peak_after_min = at - oe;
        res.recovered_p50_min = bins_percentile(r->recovered, oe, r->affected, 0.50);
        res.recovered_p99_min = bins_percentile(r->recovered, oe, r->affected, 0.99);

        /* back to normal: the first 10-minute bin after the outage that begins an hour of bins
         * all within the Poisson 99.9th percentile of the normal rate */
        res.calm_after_min = -1;
        for (long b = 0; b * CALM_BIN_MIN < 24 * 60; b++) {
                bool calm = true;

                for (long i = b; i < b + CALM_BINS && calm; i++)
                        calm = sum_bins(r->outage, oe + i * CALM_BIN_MIN, oe + (i + 1) * CALM_BIN_MIN) <=
                               (uint64_t) calm_limit;
                if (calm) {
                        res.calm_after_min = b * CALM_BIN_MIN;
                        break;
                }
        }
        return res;
}

/* Requests per TIMELINE_BIN_MIN minutes around the outage, kept from the first seed. */
typedef struct Timeline {
        long rows, first_min; /* minutes from the outage's start */
        uint64_t count[TIMELINE_ROWS][4];
} Timeline;

static void timeline_take(Timeline *tl, const Run *r) {
        long os = minute_of(r->outage_start), oe = minute_of(r->outage_end);
        const uint32_t *bins[4] = { r->jitter, r->outage, r->failed, r->recovered };

        tl->first_min = -60;
        tl->rows = 0;
        for (long m = os - 60; m < oe + 5 * 60 && tl->rows < TIMELINE_ROWS; m += TIMELINE_BIN_MIN, tl->rows++)
                for (int i = 0; i < 4; i++)
                        tl->count[tl->rows][i] = sum_bins(bins[i], m, m + TIMELINE_BIN_MIN);
}

static void timeline_print(const Timeline *tl, uint64_t seed) {
        printf("\n### Requests per %d minutes around the outage (seed %" PRIu64 ")\n\n", TIMELINE_BIN_MIN,
               seed);
        printf("| minutes from the outage's start | no outage | with the outage | of which failed "
               "| renewals of devices that had failed |\n| --- | --- | --- | --- | --- |\n");
        for (long i = 0; i < tl->rows; i++) {
                long m = tl->first_min + i * TIMELINE_BIN_MIN;

                printf("| %ld..%ld | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " |\n", m,
                       m + TIMELINE_BIN_MIN, tl->count[i][0], tl->count[i][1], tl->count[i][2],
                       tl->count[i][3]);
        }
}

static const char *verdict(bool met) {
        return met ? "met" : "**NOT met**";
}

static int report(const Options *o, const Result *res, const Window *w, const Poisson *pm, const Poisson *ph,
                  const Poisson *pm10) {
        uint32_t min_ratio_seed = 0;
        double worst_ratio = INFINITY, worst_hour = 0, worst_after = 0;
        time_t worst_drain = 0;
        uint64_t most_affected = 0;
        uint32_t lowest_normal = UINT32_MAX, highest_normal = 0;
        Poisson drain;
        Poisson burst;
        int r;

        /* no jitter: everyone renews in the hour they enrolled in, 60 minutes of devices/60 each */
        r = poisson_init(&burst, (double) o->devices / 60);
        if (r < 0)
                return r;

        printf("### Goal 1: peak minute, default jitter (5 %%) vs none\n\n");
        printf("| seed | peak minute, no jitter | peak minute, jitter 5 %% | ratio (goal >= 100) |\n");
        printf("| --- | --- | --- | --- |\n");
        for (unsigned i = 0; i < o->runs; i++) {
                double ratio =
                        res[i].peak_jitter ? (double) res[i].peak_no_jitter / res[i].peak_jitter : INFINITY;

                printf("| %" PRIu64 " | %" PRIu32 " | %" PRIu32 " | %.0f |\n", res[i].seed,
                       res[i].peak_no_jitter, res[i].peak_jitter, ratio);
                if (ratio < worst_ratio) {
                        worst_ratio = ratio;
                        min_ratio_seed = i;
                }
        }
        printf("| Poisson | max of 60 minutes at lambda %.0f: %ld (5 %%) .. %ld (95 %%) | lambda %.2f; "
               "99.9th percentile %ld; max of %ld minutes: %ld (5 %%) .. %ld (95 %%) | |\n",
               burst.lambda, poisson_max_quantile(&burst, 60, 0.05), poisson_max_quantile(&burst, 60, 0.95),
               pm->lambda, poisson_quantile(pm, 0.999), w->plateau_min,
               poisson_max_quantile(pm, w->plateau_min, 0.05), poisson_max_quantile(pm, w->plateau_min, 0.95));
        printf("\nGoal 1 (>= 100x lower): %s (lowest ratio %.0f, seed %" PRIu64 ")\n\n",
               verdict(worst_ratio >= 100), worst_ratio, res[min_ratio_seed].seed);
        poisson_done(&burst);

        printf("### Goal 2: peak hour / mean hour over the spread window\n\n");
        printf("Window: %.1f h, from %d %% of the lifetime after the first enrollment to %d %% after the last.\n\n",
               (double) (w->end - w->start) / HOUR,
               default_policy.share_percent - default_policy.jitter_percent,
               default_policy.share_percent + default_policy.jitter_percent);
        printf("| seed | peak clock hour | mean hour | ratio (goal <= 1.2) | peak 60 consecutive minutes | ratio |\n");
        printf("| --- | --- | --- | --- | --- | --- |\n");
        for (unsigned i = 0; i < o->runs; i++) {
                double ratio = res[i].peak_hour / res[i].mean_hour;

                printf("| %" PRIu64 " | %" PRIu64 " | %.1f | %.3f | %" PRIu64 " | %.3f |\n", res[i].seed,
                       res[i].peak_hour, res[i].mean_hour, ratio, res[i].peak_hour_sliding,
                       res[i].peak_hour_sliding / res[i].mean_hour);
                if (ratio > worst_hour)
                        worst_hour = ratio;
        }
        printf("| Poisson | max of %ld hours at lambda %.1f: %ld (5 %%) .. %ld (95 %%) | | %.3f .. %.3f | | |\n",
               w->plateau_hours, ph->lambda, poisson_max_quantile(ph, w->plateau_hours, 0.05),
               poisson_max_quantile(ph, w->plateau_hours, 0.95),
               poisson_max_quantile(ph, w->plateau_hours, 0.05) / ph->lambda,
               poisson_max_quantile(ph, w->plateau_hours, 0.95) / ph->lambda);
        printf("\nGoal 2 (<= 1.2): %s (highest ratio %.3f)\n", verdict(worst_hour <= 1.2), worst_hour);
        if (o->outage_hours == 0)
                return 0;


        printf("\n### Goal 3: a %u-hour EST outage in the middle of the window\n\n", o->outage_hours);
        printf("Normal: the peak minute of the same seed without the outage. After recovery: from the end of the "
               "outage until the last device that failed has renewed. Rate back to normal: the first %d-minute bin "
               "after the outage that starts %d bins in a row each within the Poisson 99.9th percentile of the "
               "normal rate (%ld requests per %d minutes at lambda %.1f).\n\n",
               CALM_BIN_MIN, CALM_BINS, poisson_quantile(pm10, 0.999), CALM_BIN_MIN, pm10->lambda);
        printf("| seed | devices that failed | failed (= extra) requests | peak minute during the outage "
               "(all failing) | peak minute after recovery | normal peak minute | ratio (goal <= 2) | after / lambda "
               "| rate back to normal after | 50 %% / 99 %% / all failed devices renewed after |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (unsigned i = 0; i < o->runs; i++) {
                double ratio = res[i].peak_jitter ? (double) res[i].peak_after / res[i].peak_jitter : INFINITY;
                char calm[32];

                if (res[i].calm_after_min >= 0)
                        snprintf(calm, sizeof(calm), "%ld min", res[i].calm_after_min);
                else
                        snprintf(calm, sizeof(calm), "over a day");
                printf("| %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu32 " | %" PRIu32
                       " (minute %ld) | %" PRIu32 " | %.2f | %.1f | %s | %ld min / %ld min / %.1f min |\n",
                       res[i].seed, res[i].affected, res[i].failed_requests, res[i].peak_during,
                       res[i].peak_after, res[i].peak_after_min, res[i].peak_jitter, ratio,
                       res[i].peak_after / pm->lambda, calm, res[i].recovered_p50_min,
                       res[i].recovered_p99_min, (double) res[i].recovered_all_sec / MINUTE);
                if (ratio > worst_after)
                        worst_after = ratio;
                if (res[i].recovered_all_sec > worst_drain)
                        worst_drain = res[i].recovered_all_sec;
                if (res[i].affected > most_affected)
                        most_affected = res[i].affected;
                if (res[i].peak_jitter < lowest_normal)
                        lowest_normal = res[i].peak_jitter;
                if (res[i].peak_jitter > highest_normal)
                        highest_normal = res[i].peak_jitter;
        }
        printf("\nGoal 3a (recovery <= 2x the normal peak minute): %s (highest ratio %.2f)\n",
               verdict(worst_after <= 2), worst_after);
        printf("Goal 3b (backlog cleared within %d minutes: every device that failed has renewed): %s (at most "
               "%.1f min)\n",
               DRAIN_GOAL_MIN, verdict(worst_drain <= DRAIN_GOAL_MIN * MINUTE), (double) worst_drain / MINUTE);

        /* What any schedule of independent devices can do: to clear B devices in D minutes the
         * server must take, on average, lambda + B / D a minute, and the busiest of those D
         * minutes is a Poisson maximum above that. */
        r = poisson_init(&drain, pm->lambda + (double) most_affected / DRAIN_GOAL_MIN);
        if (r < 0)
                return r;
        printf("Bound for any schedule of independent devices: clearing %" PRIu64 " devices in %d minutes takes "
               "lambda + B / %d = %.1f requests a minute on average; the busiest of those minutes, a Poisson "
               "maximum, is %ld (5 %%) .. %ld (95 %%): %.2f .. %.2f times the normal peak minutes (%" PRIu32
               " .. %" PRIu32 ").\n",
               most_affected, DRAIN_GOAL_MIN, DRAIN_GOAL_MIN, drain.lambda,
               poisson_max_quantile(&drain, DRAIN_GOAL_MIN, 0.05),
               poisson_max_quantile(&drain, DRAIN_GOAL_MIN, 0.95),
               (double) poisson_max_quantile(&drain, DRAIN_GOAL_MIN, 0.05) / highest_normal,
               (double) poisson_max_quantile(&drain, DRAIN_GOAL_MIN, 0.95) / lowest_normal, lowest_normal,
               highest_normal);
        poisson_done(&drain);
        return 0;
}

static void cap_reset(CapRun *c) {
        uint32_t capacity = c->capacity, quota = c->quota;
        uint32_t *bins[7] = { c->fresh,   c->returns,  c->taken, c->taken_new,
                              c->refused, c->promised, c->failed };

        for (int i = 0; i < 7; i++)
                memset(bins[i], 0, HORIZON_MIN * sizeof(uint32_t));
        *c = (CapRun) { .capacity = capacity,
                        .quota = quota,
                        .min_margin = LIFETIME,
                        .fresh = bins[0],
                        .returns = bins[1],
                        .taken = bins[2],
                        .taken_new = bins[3],
                        .refused = bins[4],
                        .promised = bins[5],
                        .failed = bins[6] };
}

static void cap_report(const CapResult *res, unsigned runs, const CapRun *c, const Window *w,
                       const Poisson *pm) {
        bool above = false, after_return = false, expired = false;

        printf("\n### Goal 4: a server at capacity after the outage\n\n");
        printf("The EST server takes on at most %" PRIu32
               " requests a minute (capacity: %.1f times the mean rate, "
               "lambda %.2f; the Poisson 99.9th percentile of a normal minute is %ld) and answers every request "
               "beyond with 503 and a Retry-After from its calendar: the first later minute with fewer than %" PRIu32
               " returns promised, spread over that minute (by default the capacity less the 99.9th percentile of "
               "new requests in a normal minute); a return in its minute keeps its place, new requests get the "
               "rest. The devices wait as fleetid does: no answer, renew_retry_delay(); a 503, retry_after_parse() "
               "and renew_retry_after_delay(). Offered: every request that reaches the server, 503s included; "
               "taken on: the requests it serves. The recovery ends when every device that failed or was refused "
               "has renewed.\n\n",
               c->capacity, c->capacity / w->lambda_min, w->lambda_min, poisson_quantile(pm, 0.999), c->quota);
        printf("| seed | devices that failed or were refused | 503s (later, on normal days) | longest Retry-After "
               "| most 503s to one device | offered, first minute of recovery | peak offered after it | minutes "
               "offered above capacity after it: first retry period / rest of the recovery / later | peak taken on "
               "| recovery over after | least time left at a renewal | expired |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (unsigned i = 0; i < runs; i++) {
                printf("| %" PRIu64 " | %" PRIu64 " | %" PRIu64 " (%" PRIu64 ") | %" PRIu64 " s | %" PRIu64
                       " | %" PRIu32 " | %" PRIu32 " (minute %ld) | %ld / %ld / %ld | %" PRIu32
                       " | %.1f min | %.1f days | %" PRIu64 " |\n",
                       res[i].seed, res[i].affected, res[i].refusals, res[i].refusals_later,
                       res[i].max_retry_after, res[i].max_refusals, res[i].peak_offered_first,
                       res[i].peak_offered_after, res[i].peak_offered_after_min, res[i].minutes_over_return,
                       res[i].minutes_over, res[i].minutes_over_later, res[i].peak_taken,
                       (double) res[i].drained_sec / MINUTE, (double) res[i].min_margin / DAY, res[i].expired);
                above |= res[i].peak_offered_after > res[i].capacity;
                after_return |= res[i].minutes_over > 0;
                expired |= res[i].expired > 0;
        }
        printf("\nGoal 4a (after the first minute of recovery the server never sees more than its capacity): %s\n",
               verdict(!above));
        printf("Goal 4a' (after the fleet's own return, one retry period, the server never sees more than its "
               "capacity until the recovery is over): %s\n",
               verdict(!after_return));
        printf("Goal 4b (every device renews before its certificate expires): %s\n", verdict(!expired));
}

/* Requests per CAP_TIMELINE_BIN_MIN minutes around the outage at capacity, first seed. */
static void cap_timeline_print(const CapRun *c, time_t outage_start, time_t outage_end, uint64_t seed) {
        long os = minute_of(outage_start), oe = minute_of(outage_end),
             last = minute_of(c->last_success > outage_end ? c->last_success : outage_end) + 1;
        char capacity_text[16];

        snprintf(capacity_text, sizeof(capacity_text), "%" PRIu32, c->capacity * CAP_TIMELINE_BIN_MIN);
        printf("\n### How the fleet paces itself: requests per %d minutes at capacity (seed %" PRIu64 ")\n\n",
               CAP_TIMELINE_BIN_MIN, seed);
        printf("| minutes from the outage's start | failed (nothing answers) | new requests | returns asked for "
               "| taken on | answered 503 | peak offered minute | capacity per %d minutes |\n",
               CAP_TIMELINE_BIN_MIN);
        printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for (long m = os - 60; m < last + 60; m += CAP_TIMELINE_BIN_MIN) {
                uint32_t peak = 0;

                for (long k = m; k < m + CAP_TIMELINE_BIN_MIN && k < HORIZON_MIN; k++)
                        if (c->fresh[k] + c->returns[k] > peak)
                                peak = c->fresh[k] + c->returns[k];
                printf("| %ld..%ld | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64
                       " | %" PRIu32 " | %s |\n",
                       m - os, m - os + CAP_TIMELINE_BIN_MIN, sum_bins(c->failed, m, m + CAP_TIMELINE_BIN_MIN),
                       sum_bins(c->fresh, m, m + CAP_TIMELINE_BIN_MIN),
                       sum_bins(c->returns, m, m + CAP_TIMELINE_BIN_MIN),
                       sum_bins(c->taken, m, m + CAP_TIMELINE_BIN_MIN),
                       sum_bins(c->refused, m, m + CAP_TIMELINE_BIN_MIN), peak,
                       m >= os && m < oe ? "0 (down)" : capacity_text);
        }
}

/* Per-minute figures for the plot (tests/bench/fleet-plot.py). */
static int cap_csv_write(const CapRun *c, const Run *plain, time_t outage_start, time_t outage_end,
                         const char *path) {
        long os = minute_of(outage_start),
             last = minute_of(c->last_success > outage_end ? c->last_success : outage_end) + 1;
        FILE *f = fopen(path, "we");

        if (!f) {
                fprintf(stderr, "fleet-sim: cannot write %s: %m\n", path);
                return -errno;
        }
        fprintf(f, "minute,no_outage,outage_unlimited,failed,new,returns,taken,refused,capacity,outage_end\n");
        for (long m = os - 60; m < last + 60 && m < HORIZON_MIN; m++)
                fprintf(f,
                        "%ld,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32
                        ",%" PRIu32 ",%" PRIu32 ",%ld\n",
                        m - os, plain->jitter[m], plain->outage[m], c->failed[m], c->fresh[m], c->returns[m],
                        c->taken[m], c->refused[m], c->capacity, minute_of(outage_end) - os);
        if (fclose(f) != 0) {
                fprintf(stderr, "fleet-sim: cannot write %s: %m\n", path);
                return -EIO;
        }
        return 0;
}

static int parse_uint(const char *arg, const char *name, uint64_t min, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(arg, &end, 10);
        if (errno != 0 || end == arg || *end || arg[0] == '-' || v < min || v > max) {
                fprintf(stderr,
                        "fleet-sim: %s must be a whole number from %" PRIu64 " to %" PRIu64 " (got '%s')\n",
                        name, min, max, arg);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_options(int argc, char **argv, Options *ret) {
        static const struct option longopts[] = { { "devices", required_argument, NULL, 'n' },
                                                  { "seed", required_argument, NULL, 's' },
                                                  { "runs", required_argument, NULL, 'r' },
                                                  { "outage-hours", required_argument, NULL, 'o' },
                                                  { "capacity", required_argument, NULL, 'c' },
                                                  { "csv", required_argument, NULL, 'v' },
                                                  { "retry-max", required_argument, NULL, 'm' },
                                                  { "quota", required_argument, NULL, 'q' },
                                                  { "help", no_argument, NULL, 'h' },
                                                  {} };
        Options o = { .devices = 1000000, .seed = 1, .runs = 1, .outage_hours = 6, .retry_max = 7200 };
        uint64_t v;
        int c, r;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        r = parse_uint(optarg, "--devices", 1, 100000000, &o.devices);
                        break;
                case 's':
                        r = parse_uint(optarg, "--seed", 0, UINT64_MAX, &o.seed);
                        break;
                case 'r':
                        r = parse_uint(optarg, "--runs", 1, 100, &v);
                        o.runs = (unsigned) v;
                        break;
                case 'o':
                        r = parse_uint(optarg, "--outage-hours", 0, 48, &v);
                        o.outage_hours = (unsigned) v;
                        break;
                case 'c':
                        r = parse_uint(optarg, "--capacity", 1, 100000000, &o.capacity);
                        break;
                case 'v':
                        o.csv = optarg;
                        r = 0;
                        break;
                case 'q':
                        r = parse_uint(optarg, "--quota", 1, 100000000, &o.quota);
                        break;
                case 'm':
                        r = parse_uint(optarg, "--retry-max", 60, 604800, &o.retry_max); /* config.c's range */
                        break;
                case 'h':
                        printf("usage: fleet-sim [--devices N] [--seed S] [--runs K] [--outage-hours H]\n"
                               "                 [--capacity C] [--quota Q] [--csv FILE] [--retry-max S]\n"
                               "Renewal requests per minute and per hour of N devices (default 1000000)\n"
                               "enrolled within one hour, with fleetid's scheduling code; K seeds from S.\n"
                               "With an outage, also against a server that takes on C requests a minute\n"
                               "(default twice the mean rate) and answers 503 + Retry-After beyond,\n"
                               "asking for at most Q returns a minute (default: C less the 99.9th\n"
                               "percentile of new requests in a normal minute);\n"
                               "--csv writes its per-minute figures (first seed) to FILE; --retry-max\n"
                               "sets renew.retry_max (default 7200 s).\n");
                        exit(EXIT_SUCCESS);
                default:
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (optind < argc) {
                fprintf(stderr, "fleet-sim: unexpected argument '%s'; see --help\n", argv[optind]);
                return -EINVAL;
        }
        *ret = o;
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_free_ Result *res = NULL;
        _cleanup_free_ CapResult *caps = NULL;
        CapRun cap = {};
        Options o;
        Window w;
        Poisson pm = {}, ph = {}, pm10 = {};
        Run run;
        Timeline timeline = {};
        time_t mid;
        unsigned bad = 0;
        struct timespec a, b;
        int r;

        if (parse_options(argc, argv, &o) < 0)
                return 2;
        default_policy.retry_max = o.retry_max;
        res = calloc(o.runs, sizeof(Result));
        if (!res || run_init(&run) < 0) {
                fprintf(stderr, "fleet-sim: out of memory\n");
                return 1;
        }
        w = spread_window(o.devices);
        if (poisson_init(&pm, w.lambda_min) < 0 || poisson_init(&ph, w.lambda_hour) < 0 ||
            poisson_init(&pm10, w.lambda_min * CALM_BIN_MIN) < 0) {
                fprintf(stderr, "fleet-sim: out of memory\n");
                r = -ENOMEM;
                goto finish;
        }

        /* the outage sits in the middle of the window, on minute boundaries */
        mid = w.start + (w.end - w.start) / 2;
        mid -= (mid - T0) % MINUTE;
        run.outage_start = mid - (time_t) o.outage_hours * HOUR / 2;
        run.outage_end = run.outage_start + (time_t) o.outage_hours * HOUR;

        printf("\n## Fleet-scale renewal: %" PRIu64
               " devices enrolled within one hour, 365-day certificates\n\n",
               o.devices);
        printf("Policy: share %u %%, jitter %u %%, retry %" PRIu64 " s .. %" PRIu64
               " s (renew_due(), renew_retry_delay()); seeds %" PRIu64 "..%" PRIu64
               "; outage %u h from day %.2f after the first enrollment.\n\n",
               default_policy.share_percent, default_policy.jitter_percent, default_policy.retry_initial,
               default_policy.retry_max, o.seed, o.seed + o.runs - 1, o.outage_hours,
               (double) (run.outage_start - T0) / DAY);

        clock_gettime(CLOCK_MONOTONIC, &a);
        for (unsigned i = 0; i < o.runs; i++) {
                uint64_t seed = o.seed + i;

                run_reset(&run);
                for (uint64_t d = 0; d < o.devices; d++)
                        simulate_device(&run, seed, d);
                bad += run_check(&run, o.devices);
                res[i] = analyse(&run, &w, &pm10, seed);
                if (i == 0)
                        timeline_take(&timeline, &run);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);

        r = report(&o, res, &w, &pm, &ph, &pm10);
        if (r < 0)
                fprintf(stderr, "fleet-sim: out of memory\n");
        if (o.outage_hours > 0)
                timeline_print(&timeline, o.seed);
        printf("\nSimulated %u seed(s) x %" PRIu64 " devices in %.2f s.\n", o.runs, o.devices,
               (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9);

        if (r >= 0 && o.outage_hours > 0) {
                /* at least one a minute: a server that takes on nothing never drains */
                uint32_t capacity =
                        o.capacity ? (uint32_t) o.capacity : (uint32_t) fmax(1, lround(2 * w.lambda_min));
                /* room for new requests: the 99.9th percentile of a normal minute */
                uint32_t room = (uint32_t) poisson_quantile(&pm, 0.999);
                uint32_t quota = o.quota ? (uint32_t) o.quota : capacity > room ? capacity - room : 1;


                caps = calloc(o.runs, sizeof(CapResult));
                if (!caps || cap_init(&cap, capacity, quota) < 0) {
                        fprintf(stderr, "fleet-sim: out of memory\n");
                        r = -ENOMEM;
                        goto finish;
                }
                clock_gettime(CLOCK_MONOTONIC, &a);
                for (unsigned i = 0; i < o.runs; i++) {
                        cap_reset(&cap);
                        r = cap_simulate(&cap, o.devices, o.seed + i, run.outage_start, run.outage_end);
                        if (r < 0) {
                                fprintf(stderr, "fleet-sim: out of memory\n");
                                goto finish;
                        }
                        bad += cap.inconsistent;
                        caps[i] = cap_analyse(&cap, o.seed + i, run.outage_end);
                        if (i == 0) {
                                cap_timeline_print(&cap, run.outage_start, run.outage_end, o.seed);
                                if (o.csv) {
                                        /* the plain schedules of the first seed again, for the plot */
                                        run_reset(&run);
                                        for (uint64_t d = 0; d < o.devices; d++)
                                                simulate_device(&run, o.seed, d);
                                        r = cap_csv_write(&cap, &run, run.outage_start, run.outage_end, o.csv);
                                        if (r < 0)
                                                goto finish;
                                }
                        }
                }
                clock_gettime(CLOCK_MONOTONIC, &b);
                cap_report(caps, o.runs, &cap, &w, &pm);
                printf("\nSimulated at capacity: %u seed(s) x %" PRIu64 " devices in %.2f s.\n", o.runs,
                       o.devices, (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9);
                for (unsigned i = 0; i < o.runs; i++)
                        if (caps[i].expired > 0 || caps[i].peak_taken > capacity) {
                                fprintf(stderr,
                                        "fleet-sim: seed %" PRIu64 ": %" PRIu64 " devices expired, %" PRIu32
                                        " taken on in a minute\n",
                                        caps[i].seed, caps[i].expired, caps[i].peak_taken);
                                bad++;
                        }
        }
        if (bad > 0) {
                fprintf(stderr, "fleet-sim: %u bookkeeping inconsistencies; the figures above are wrong\n",
                        bad);
                r = -EBADMSG;
        }
finish:
        poisson_done(&pm);
        poisson_done(&ph);
        poisson_done(&pm10);
        run_free(&run);
        cap_free(&cap);
        return r < 0 ? 1 : 0;
}
