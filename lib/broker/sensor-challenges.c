/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-challenges.c: a bounded array of (sensor_id, nonce, expiry), searched
 * linearly: the capacity is small (the configuration's
 * broker.max_challenges) and each entry is about 110 bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "broker/sensor-challenges.h"

typedef struct Entry {
        char sensor_id[SENSOR_ID_MAX + 1];
        uint8_t nonce[SENSOR_CHALLENGE_NONCE_SIZE];
        uint64_t expires; /* valid while now < expires */
} Entry;

struct SensorChallenges {
        unsigned capacity, count;
        uint64_t lifetime;
        Entry entries[]; /* [0, count) in use */
};

int sensor_challenges_new(unsigned capacity, uint64_t lifetime_usec, SensorChallenges **ret) {
        SensorChallenges *t;

        if (capacity == 0 || capacity > SENSOR_CHALLENGES_CAPACITY_MAX || lifetime_usec == 0)
                return -EINVAL;
        t = calloc(1, sizeof(SensorChallenges) + (size_t) capacity * sizeof(Entry));
        if (!t)
                return -ENOMEM;
        t->capacity = capacity;
        t->lifetime = lifetime_usec;
        *ret = t;
        return 0;
}

SensorChallenges *sensor_challenges_free(SensorChallenges *t) {
        if (!t)
                return NULL;
        explicit_bzero(t->entries, (size_t) t->capacity * sizeof(Entry));
        free(t);
        return NULL;
}

static void remove_at(SensorChallenges *t, unsigned i) {
        t->entries[i] = t->entries[--t->count];
        explicit_bzero(&t->entries[t->count], sizeof(Entry));
}

static Entry *find(SensorChallenges *t, const char *sensor_id, unsigned *ret_index) {
        for (unsigned i = 0; i < t->count; i++)
                if (strcmp(t->entries[i].sensor_id, sensor_id) == 0) {
                        *ret_index = i;
                        return &t->entries[i];
                }
        return NULL;
}

unsigned sensor_challenges_expire(SensorChallenges *t, uint64_t now) {
        for (unsigned i = 0; i < t->count;)
                if (now >= t->entries[i].expires)
                        remove_at(t, i);
                else
                        i++;
        return t->count;
}

unsigned sensor_challenges_count(const SensorChallenges *t) {
        return t->count;
}

int sensor_challenges_issue(SensorChallenges *t, const char *sensor_id, uint64_t now,
                            uint8_t ret_nonce[SENSOR_CHALLENGE_NONCE_SIZE], Diag *d) {
        uint8_t nonce[SENSOR_CHALLENGE_NONCE_SIZE];
        unsigned i;
        Entry *e;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        if (RAND_bytes(nonce, sizeof(nonce)) != 1)
                return diag_set_ssl(d, -EIO, "cannot draw a random nonce");

        e = find(t, sensor_id, &i);
        if (!e) {
                if (t->count == t->capacity && sensor_challenges_expire(t, now) == t->capacity)
                        return diag_set(d, -EBUSY,
                                        "%u sensor challenges are outstanding, the limit (broker.max_challenges); "
                                        "try again when one is used or expires",
                                        t->capacity);
                e = &t->entries[t->count++];
                strcpy(e->sensor_id, sensor_id); /* checked: at most SENSOR_ID_MAX */
        }
        memcpy(e->nonce, nonce, sizeof(nonce));
        e->expires = now > UINT64_MAX - t->lifetime ? UINT64_MAX : now + t->lifetime;
        memcpy(ret_nonce, nonce, sizeof(nonce));
        explicit_bzero(nonce, sizeof(nonce));
        return 0;
}

int sensor_challenges_take(SensorChallenges *t, const char *sensor_id, uint64_t now,
                           uint8_t ret_nonce[SENSOR_CHALLENGE_NONCE_SIZE], Diag *d) {
        bool expired;
        unsigned i;
        Entry *e;
        int r;

        r = sensor_id_check_string(sensor_id, d);
        if (r < 0)
                return r;
        e = find(t, sensor_id, &i);
        if (!e)
                return diag_set(d, -ENOENT,
                                "sensor '%s' has no outstanding challenge (never issued, already used or replaced "
                                "by a newer one); get a new one with GetSensorChallenge",
                                sensor_id);
        expired = now >= e->expires;
        if (!expired)
                memcpy(ret_nonce, e->nonce, sizeof(e->nonce));
        remove_at(t, i);
        if (expired)
                return diag_set(d, -ESTALE, "the challenge of sensor '%s' has expired; get a new one",
                                sensor_id);
        return 0;
}

int sensor_challenges_consume(SensorChallenges *t, const char *sensor_id, const uint8_t *nonce,
                              size_t nonce_len, uint64_t now, Diag *d) {
        uint8_t issued[SENSOR_CHALLENGE_NONCE_SIZE];
        bool match;
        int r;

        r = sensor_challenges_take(t, sensor_id, now, issued, d);
        if (r < 0)
                return r;
        match = nonce && nonce_len == sizeof(issued) && CRYPTO_memcmp(issued, nonce, sizeof(issued)) == 0;
        explicit_bzero(issued, sizeof(issued));
        if (!match)
                return diag_set(d, -EKEYREJECTED,
                                "the nonce is not the one issued to sensor '%s'; the challenge is void now, get "
                                "a new one",
                                sensor_id);
        return 0;
}
