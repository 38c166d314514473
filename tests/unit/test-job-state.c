/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The states of a job, their names and transitions, and job object paths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "monitor/job-state.h"

#define PREFIX "/org/fleetid/Agent1/job"

static void test_names(void **state) {
        for (JobState s = 0; s < _JOB_STATE_MAX; s++) {
                assert_non_null(job_state_to_string(s));
                assert_int_equal(job_state_from_string(job_state_to_string(s)), s);
        }
        assert_string_equal(job_state_to_string(JOB_WAITING_CA), "waiting-ca");
        assert_string_equal(job_state_to_string(JOB_CANCELED), "canceled");
        assert_null(job_state_to_string(_JOB_STATE_MAX));
        assert_null(job_state_to_string(_JOB_STATE_INVALID));
        assert_int_equal(job_state_from_string(NULL), _JOB_STATE_INVALID);
        assert_int_equal(job_state_from_string("cancelled"), _JOB_STATE_INVALID);
        assert_int_equal(job_state_from_string("Done"), _JOB_STATE_INVALID);
}

static void test_transitions(void **state) {
        assert_true(job_state_transition_ok(JOB_QUEUED, JOB_RUNNING));
        assert_true(job_state_transition_ok(JOB_QUEUED, JOB_QUEUED));
        assert_true(job_state_transition_ok(JOB_RUNNING, JOB_WAITING_CA));
        assert_true(job_state_transition_ok(JOB_WAITING_CA, JOB_RUNNING));
        assert_true(job_state_transition_ok(JOB_WAITING_CA, JOB_DONE));
        assert_true(job_state_transition_ok(JOB_QUEUED, JOB_CANCELED));
        assert_true(job_state_transition_ok(JOB_RUNNING, JOB_FAILED));
        /* never back to queued */
        assert_false(job_state_transition_ok(JOB_RUNNING, JOB_QUEUED));
        assert_false(job_state_transition_ok(JOB_WAITING_CA, JOB_QUEUED));
        /* final states are final, even "to themselves" */
        for (JobState to = 0; to < _JOB_STATE_MAX; to++) {
                assert_false(job_state_transition_ok(JOB_DONE, to));
                assert_false(job_state_transition_ok(JOB_FAILED, to));
                assert_false(job_state_transition_ok(JOB_CANCELED, to));
        }
        assert_false(job_state_transition_ok(JOB_RUNNING, _JOB_STATE_MAX));
        assert_false(job_state_transition_ok(_JOB_STATE_INVALID, JOB_RUNNING));
        assert_true(job_state_is_final(JOB_DONE));
        assert_true(job_state_is_final(JOB_FAILED));
        assert_true(job_state_is_final(JOB_CANCELED));
        assert_false(job_state_is_final(JOB_WAITING_CA));
        assert_false(job_state_is_final(JOB_QUEUED));
}

static void test_paths(void **state) {
        char buf[64];

        assert_int_equal(job_path_format(PREFIX, 1, buf, sizeof(buf)), 0);
        assert_string_equal(buf, PREFIX "/1");
        assert_int_equal(job_path_format(PREFIX, UINT32_MAX, buf, sizeof(buf)), 0);
        assert_string_equal(buf, PREFIX "/4294967295");
        assert_int_equal(job_path_format(PREFIX, 0, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(job_path_format(PREFIX, 12, buf, sizeof(PREFIX) + 1), -ENOBUFS);

        assert_int_equal(job_path_parse(PREFIX, PREFIX "/1"), 1);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/907"), 907);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/4294967295"), UINT32_MAX);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/4294967296"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/99999999999999999999999"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/0"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/01"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/+1"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/-1"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/1a"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/1/2"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "/"), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX), 0);
        assert_int_equal(job_path_parse(PREFIX, PREFIX "s/1"), 0);
        assert_int_equal(job_path_parse(PREFIX, "/org/fleetid/Agent1"), 0);
        assert_int_equal(job_path_parse(PREFIX, NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_transitions),
                cmocka_unit_test(test_paths),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
