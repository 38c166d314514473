/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-status-file: status_record_parse() on any bytes (the STATE_STATUS file
 * fleetidctl reads; it may be truncated, hand-edited or from another version).
 * A record it accepts has a state, and writing it out with
 * status_record_format() and parsing that again gives the same record.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "store/status-file.h"

static bool same_string(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_round_trip(const StatusRecord *rec) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(status_record_done) StatusRecord again = {};
        Diag d = {};
        int r;

        r = status_record_format(rec, &text);
        if (r == -EINVAL)
                return; /* a value that escapes to more than STATUS_LINE_MAX */
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(status_record_parse(text, strlen(text), &again, &d) == 0);
        FUZZ_CHECK(same_string(again.state, rec->state));
        FUZZ_CHECK(same_string(again.last_error, rec->last_error));
        FUZZ_CHECK(same_string(again.est_url, rec->est_url));
        FUZZ_CHECK(again.updated == rec->updated);
        FUZZ_CHECK(again.last_success == rec->last_success);
        FUZZ_CHECK(again.next_attempt == rec->next_attempt);
        FUZZ_CHECK(again.last_attempt == rec->last_attempt);
        FUZZ_CHECK(again.renew_due == rec->renew_due);
        FUZZ_CHECK(again.cacerts_checked == rec->cacerts_checked);
        FUZZ_CHECK(again.cacerts_next == rec->cacerts_next);
        FUZZ_CHECK(again.renew_requests == rec->renew_requests);
        FUZZ_CHECK(again.renew_answered == rec->renew_answered);
        FUZZ_CHECK(again.failures == rec->failures);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(status_record_done) StatusRecord rec = {};
        Diag d = {};
        int r;

        /* Not NUL-terminated: ASan sees any read past size. */
        r = status_record_parse((const char *) data, size, &rec, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                FUZZ_CHECK(!rec.state); /* untouched */
                return 0;
        }
        FUZZ_CHECK(rec.state && rec.state[0]);
        check_round_trip(&rec);
        return 0;
}
