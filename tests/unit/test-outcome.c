/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The outcome classes of an attempt and their names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "monitor/outcome.h"

static AttemptOutcome classify(int error, long status, bool unusable, bool tpm, bool preparing) {
        AttemptFacts f = {
                .error = error,
                .http_status = status,
                .identity_unusable = unusable,
                .tpm_unavailable = tpm,
                .preparing = preparing,
        };
        return attempt_outcome_classify(&f);
}

static void test_success(void **state) {
        assert_int_equal(classify(0, 200, false, false, false), ATTEMPT_OK);
        /* success wins over anything noted on the way */
        assert_int_equal(classify(1, 0, true, true, true), ATTEMPT_OK);
}

static void test_http_statuses(void **state) {
        /* the same -EACCES is a server's refusal only with its status */
        assert_int_equal(classify(-EACCES, 401, false, false, false), ATTEMPT_REJECTED);
        assert_int_equal(classify(-EACCES, 403, false, false, false), ATTEMPT_REJECTED);
        assert_int_equal(classify(-EPROTO, 400, false, false, false), ATTEMPT_REJECTED);
        assert_int_equal(classify(-EPROTO, 404, false, false, false), ATTEMPT_REJECTED);
        assert_int_equal(classify(-EPROTO, 499, false, false, false), ATTEMPT_REJECTED);
        /* come back later */
        assert_int_equal(classify(-EAGAIN, 202, false, false, false), ATTEMPT_TRANSIENT);
        assert_int_equal(classify(-EBUSY, 503, false, false, false), ATTEMPT_TRANSIENT);
        assert_int_equal(classify(-EBUSY, 429, false, false, false), ATTEMPT_TRANSIENT);
        assert_int_equal(classify(-EPROTO, 408, false, false, false), ATTEMPT_TRANSIENT);
        assert_int_equal(classify(-EPROTO, 500, false, false, false), ATTEMPT_TRANSIENT);
        assert_int_equal(classify(-EBADMSG, 200, false, false, false), ATTEMPT_TRANSIENT);
        /* no answer at all: network */
        assert_int_equal(classify(-ETIMEDOUT, 0, false, false, false), ATTEMPT_TRANSIENT);
        assert_int_equal(classify(-ECONNREFUSED, 0, false, false, false), ATTEMPT_TRANSIENT);
}

static void test_tpm_and_identity(void **state) {
        /* -EACCES without an HTTP status, the TPM gone: the TPM is the cause */
        assert_int_equal(classify(-EACCES, 0, false, true, false), ATTEMPT_TPM_UNAVAILABLE);
        /* the TPM explains an unusable identity and a failed preparation too */
        assert_int_equal(classify(-ENOENT, 0, true, true, true), ATTEMPT_TPM_UNAVAILABLE);
        assert_int_equal(classify(-ENOENT, 0, true, false, false), ATTEMPT_IDENTITY_UNUSABLE);
        assert_int_equal(classify(-EKEYEXPIRED, 403, true, false, false), ATTEMPT_IDENTITY_UNUSABLE);
        /* -EACCES while preparing (an unreadable password file), TPM reachable */
        assert_int_equal(classify(-EACCES, 0, false, false, true), ATTEMPT_CONFIGURATION);
        assert_int_equal(classify(-ENOENT, 0, false, false, true), ATTEMPT_CONFIGURATION);
}

static void test_names(void **state) {
        for (AttemptOutcome o = 0; o < _ATTEMPT_OUTCOME_MAX; o++) {
                assert_non_null(attempt_outcome_to_string(o));
                assert_int_equal(attempt_outcome_from_string(attempt_outcome_to_string(o)), o);
        }
        assert_string_equal(attempt_outcome_to_string(ATTEMPT_TPM_UNAVAILABLE), "tpm-unavailable");
        assert_null(attempt_outcome_to_string(_ATTEMPT_OUTCOME_MAX));
        assert_null(attempt_outcome_to_string(_ATTEMPT_OUTCOME_INVALID));
        assert_int_equal(attempt_outcome_from_string("Transient"), _ATTEMPT_OUTCOME_INVALID);
        assert_int_equal(attempt_outcome_from_string(NULL), _ATTEMPT_OUTCOME_INVALID);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_success),
                cmocka_unit_test(test_http_statuses),
                cmocka_unit_test(test_tpm_and_identity),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
