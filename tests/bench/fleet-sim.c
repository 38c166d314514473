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
 * per-minute bins. Three schedules per seed, from the same draws:
 *
 *   no jitter   jitter_percent 0: everyone renews at 67 % of the lifetime
 *   jitter      the default policy (67 % +- 5 %, retry 30 s .. 4 h)
 *   outage      the default policy, and the EST server down for a few hours
 *               in the middle of the renewal window: every attempt then
 *               fails and the device retries after renew_retry_delay()
 *
 * Prints markdown tables (one row per seed, next to what Poisson noise alone
 * predicts) and exits non-zero only when its own bookkeeping is inconsistent
 * (requests counted in the bins differ from the attempts made, an attempt
 * falls outside the simulated time, a device never renews). The goals are
 * reported, never asserted.
 *
 *   fleet-sim [--devices N] [--seed S] [--runs K] [--outage-hours H]
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
#define TIMELINE_ROWS ((48 + 6) * 60 / TIMELINE_BIN_MIN) /* the longest outage, an hour before, 5 after */

static const RenewPolicy default_policy = {
        .share_percent = 67, .jitter_percent = 5, .retry_initial = 30, .retry_max = 2 * 3600
};

typedef struct Options {
        uint64_t devices;
        uint64_t seed;
        unsigned runs;
        unsigned outage_hours;
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
               "(all failing) | peak minute after recovery | normal peak minute | ratio (goal <= 3) | after / lambda "
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
        }
        printf("\nGoal 3 (<= 3x the normal peak minute): %s (highest ratio %.2f)\n",
               verdict(worst_after <= 3), worst_after);
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
                                                  { "help", no_argument, NULL, 'h' },
                                                  {} };
        Options o = { .devices = 1000000, .seed = 1, .runs = 1, .outage_hours = 6 };
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
                case 'h':
                        printf("usage: fleet-sim [--devices N] [--seed S] [--runs K] [--outage-hours H]\n"
                               "Renewal requests per minute and per hour of N devices (default 1000000)\n"
                               "enrolled within one hour, with fleetid's scheduling code; K seeds from S.\n");
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
        return r < 0 ? 1 : 0;
}
