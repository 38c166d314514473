/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-challenges.h: the nonces GetSensorChallenge hands out, each valid
 * once and for a limited time.
 *
 * A plain bounded table with no timers and no clock of its own: every call is
 * given the time ("now", in µs of CLOCK_MONOTONIC or whatever clock the caller
 * uses consistently), so expiry is tested with a fake clock.
 *   - one challenge per sensor: a new challenge for a sensor replaces its
 *     previous one, so a caller cannot fill the table with one sensor;
 *   - at most `capacity` outstanding challenges; expired ones are dropped
 *     before a new one is refused with -EBUSY;
 *   - sensor_challenges_consume() takes a challenge out whether it succeeds or
 *     not: a nonce is never accepted twice.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "broker/sensor-id.h"
#include "util/diag.h"

#define SENSOR_CHALLENGE_NONCE_SIZE 32
#define SENSOR_CHALLENGES_CAPACITY_MAX 100000u

typedef struct SensorChallenges SensorChallenges;

/* capacity 1..SENSOR_CHALLENGES_CAPACITY_MAX, lifetime_usec > 0; -EINVAL otherwise. */
int sensor_challenges_new(unsigned capacity, uint64_t lifetime_usec, SensorChallenges **ret);
SensorChallenges *sensor_challenges_free(SensorChallenges *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(SensorChallenges *, sensor_challenges_free);

/* A fresh random nonce for sensor_id, valid until now + lifetime, written to
 * ret_nonce. -EINVAL for a bad sensor_id, -EBUSY when capacity challenges of
 * other sensors are outstanding and none has expired, -EIO if the random
 * generator fails. */
int sensor_challenges_issue(SensorChallenges *t, const char *sensor_id, uint64_t now,
                            uint8_t ret_nonce[SENSOR_CHALLENGE_NONCE_SIZE], Diag *d);

/* Takes sensor_id's challenge out of the table and checks it: 0 if it is
 * nonce and has not expired at now. -ENOENT if the sensor has no outstanding
 * challenge (never issued, already used, or replaced by a newer one),
 * -ESTALE if it expired, -EKEYREJECTED if the nonce is another one.
 * In every case the challenge is gone afterwards. */
int sensor_challenges_consume(SensorChallenges *t, const char *sensor_id, const uint8_t *nonce,
                              size_t nonce_len, uint64_t now, Diag *d);

/* Takes sensor_id's challenge out of the table: 0 and its nonce in
 * ret_nonce if it had not expired at now; -ENOENT if there is none, -ESTALE
 * if it expired (ret_nonce untouched). For evidence, which signs the nonce
 * rather than carrying it. The challenge is gone afterwards. */
int sensor_challenges_take(SensorChallenges *t, const char *sensor_id, uint64_t now,
                           uint8_t ret_nonce[SENSOR_CHALLENGE_NONCE_SIZE], Diag *d);

/* Drops every challenge expired at now; returns how many are left. */
unsigned sensor_challenges_expire(SensorChallenges *t, uint64_t now);

/* Outstanding challenges (expired ones included until dropped). */
unsigned sensor_challenges_count(const SensorChallenges *t);
