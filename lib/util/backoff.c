/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util/backoff.h"

uint64_t backoff_delay(unsigned failures, uint64_t initial, uint64_t max, uint64_t random) {
        uint64_t base = initial ? initial : 1;

        if (max < base)
                max = base;
        for (unsigned i = 1; i < failures && base < max; i++)
                base = base > max / 2 ? max : base * 2;
        if (base > max)
                base = max;
        /* uniform in [base - base/2, base] */
        return base - base / 2 + random % (base / 2 + 1);
}

uint64_t backoff_next(unsigned failures, uint64_t initial, uint64_t max, bool retry_after_given,
                      uint64_t retry_after, uint64_t random, bool *ret_capped) {
        if (ret_capped)
                *ret_capped = false;
        if (retry_after_given) {
                uint64_t cap = max ? max : 1;

                if (retry_after > cap) {
                        if (ret_capped)
                                *ret_capped = true;
                        return cap;
                }
                return retry_after ? retry_after : 1;
        }
        return backoff_delay(failures, initial, max, random);
}
