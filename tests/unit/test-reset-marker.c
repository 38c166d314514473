/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-reset-marker.c: the factory reset marker's text, both ways, and its
 * strict parsing; whether the owner the marker names is the one configured.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reset/reset.h"

#define H1 "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define H2 "sha256:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff"

static void test_round_trip(void **state) {
        ResetMarker m = { .phase = RESET_PHASE_ENROLL, .uid = 1000, .requested = 1800000000, .enroll = true };
        _cleanup_free_ char *text = NULL;
        ResetMarker back = {};
        Diag d = {};
        size_t len;

        snprintf(m.owner, sizeof(m.owner), H1);
        snprintf(m.keys[0], sizeof(m.keys[0]), H1);
        snprintf(m.keys[1], sizeof(m.keys[1]), H2);
        m.n_keys = 2;
        m.old_serial = strdup("7152FF4A");
        m.old_issuer = strdup("CN=Old CA\nO=x"); /* a newline must not make a line */
        assert_int_equal(reset_marker_format(&m, &text, &len), 0);
        assert_string_equal(text,
                            "version=1\nphase=enroll\nuid=1000\nrequested=1800000000\nenroll=yes\nowner=" H1
                            "\nold_serial=7152FF4A\nold_issuer=CN=Old CA?O=x\nkey=" H1 "\nkey=" H2 "\n");
        assert_int_equal(reset_marker_parse(text, len, &back, &d), 0);
        assert_int_equal(back.phase, RESET_PHASE_ENROLL);
        assert_int_equal(back.uid, 1000);
        assert_true(back.enroll);
        assert_string_equal(back.owner, H1);
        assert_int_equal(back.n_keys, 2);
        assert_true(reset_marker_has_key(&back, H2));
        assert_false(reset_marker_has_key(&back, "sha256:00"));
        assert_string_equal(back.old_issuer, "CN=Old CA?O=x");
        reset_marker_done(&back);
        reset_marker_done(&m);

        /* No owner, no old certificate, no enrollment. */
        m = (ResetMarker) { .phase = RESET_PHASE_WIPE };
        free(text);
        text = NULL;
        assert_int_equal(reset_marker_format(&m, &text, &len), 0);
        assert_string_equal(text, "version=1\nphase=wipe\nuid=0\nrequested=0\nenroll=no\nowner=none\n");
        assert_int_equal(reset_marker_parse(text, len, &back, &d), 0);
        assert_string_equal(back.owner, "");
        assert_false(back.enroll);
        assert_null(back.old_serial);
        reset_marker_done(&back);

        /* Exactly len bytes, no NUL after them (the worker's setup hands it
         * over so): nothing is read past the end (ASan build). */
        {
                _cleanup_free_ char *exact = malloc(len);

                assert_non_null(exact);
                memcpy(exact, text, len);
                assert_int_equal(reset_marker_parse(exact, len, &back, &d), 0);
                assert_int_equal(back.phase, RESET_PHASE_WIPE);
                reset_marker_done(&back);
        }
}

static void expect_damaged(const char *text, const char *why) {
        ResetMarker m = {};
        Diag d = {};

        assert_int_equal(reset_marker_parse(text, strlen(text), &m, &d), -EBADMSG);
        assert_string_equal(d.text, why);
}

/* A CA's name of kilobytes: cut for the log, so that the marker stays
 * within RESET_MARKER_MAX with all its keys, and parses back. */
static void test_long_issuer(void **state) {
        ResetMarker m = { .phase = RESET_PHASE_WIPE, .n_keys = RESET_KEYS_MAX };
        _cleanup_free_ char *text = NULL;
        ResetMarker back = {};
        Diag d = {};
        size_t len;

        m.old_issuer = malloc(5001);
        assert_non_null(m.old_issuer);
        memset(m.old_issuer, 'x', 5000);
        m.old_issuer[5000] = '\0';
        m.old_serial = strdup("7152FF4A");
        for (unsigned i = 0; i < m.n_keys; i++)
                snprintf(m.keys[i], sizeof(m.keys[i]), "sha256:%064x", i);
        assert_int_equal(reset_marker_format(&m, &text, &len), 0);
        assert_true(len <= RESET_MARKER_MAX);
        assert_int_equal(reset_marker_parse(text, len, &back, &d), 0);
        assert_int_equal(strlen(back.old_issuer), 256);
        assert_memory_equal(back.old_issuer + 253, "...", 3);
        assert_int_equal(back.n_keys, RESET_KEYS_MAX);
        reset_marker_done(&back);
        reset_marker_done(&m);
}

static void test_damaged(void **state) {
        expect_damaged("phase=wipe\n", "the factory reset marker has no version or phase");
        expect_damaged("version=1\n", "the factory reset marker has no version or phase");
        expect_damaged("version=2\nphase=wipe\n", "the factory reset marker is damaged at line 1");
        expect_damaged("version=1\nphase=wipe\nphase=enroll\n",
                       "the factory reset marker is damaged at line 3");
        expect_damaged("version=1\nphase=done\n", "the factory reset marker is damaged at line 2");
        expect_damaged("version=1\nphase=wipe\nuid=-1\n", "the factory reset marker is damaged at line 3");
        expect_damaged("version=1\nphase=wipe\nowner=sha256:abc\n",
                       "the factory reset marker is damaged at line 3");
        expect_damaged("version=1\nphase=wipe\nenroll=maybe\n",
                       "the factory reset marker is damaged at line 3");
        expect_damaged("version=1\nphase=wipe\nno equals sign\n",
                       "the factory reset marker is damaged at line 3");
        /* One key more than RESET_KEYS_MAX (8). */
        expect_damaged("version=1\nphase=wipe\nkey=" H1 "\nkey=" H1 "\nkey=" H1 "\nkey=" H1 "\nkey=" H1
                       "\nkey=" H1 "\nkey=" H1 "\nkey=" H1 "\nkey=" H1 "\n",
                       "the factory reset marker is damaged at line 11");
        {
                ResetMarker m = {};
                Diag d = {};

                /* A NUL byte inside. */
                assert_int_equal(reset_marker_parse("version=1\0phase=wipe\n", 21, &m, &d), -EBADMSG);
                /* An unknown key: a newer fleetid's, ignored. */
                assert_int_equal(reset_marker_parse("version=1\nphase=wipe\nnew_key=1", 30, &m, &d), 0);
                reset_marker_done(&m);
        }
}

static void test_owner_in_place(void **state) {
        ConfigDropin one[1] = { { .path = (char *) "/etc/fleetid/fleetid.conf.d/owner.conf" } };
        ConfigDropin two[2] = { { .path = (char *) "/etc/fleetid/fleetid.conf.d/10-old.conf" },
                                { .path = (char *) "/etc/fleetid/fleetid.conf.d/owner.conf" } };
        Config c = { .dropin_dir = (char *) "/etc/fleetid/fleetid.conf.d" };
        ResetMarker m = {};
        Diag d = {};

        snprintf(one[0].hash, sizeof(one[0].hash), H1);
        snprintf(two[1].hash, sizeof(two[1].hash), H1);
        snprintf(two[0].hash, sizeof(two[0].hash), H2);

        /* The reset removes every owner file: none may be left. */
        assert_true(reset_owner_in_place(&c, &m, &d));
        c.dropins = one;
        c.n_dropins = 1;
        assert_false(reset_owner_in_place(&c, &m, &d));
        assert_string_equal(d.text, "the reset removes every owner file, but "
                                    "/etc/fleetid/fleetid.conf.d/owner.conf is still there");

        /* It installs H1: exactly that file. */
        snprintf(m.owner, sizeof(m.owner), H1);
        assert_true(reset_owner_in_place(&c, &m, &d));
        c.dropins = two;
        c.n_dropins = 2;
        assert_false(reset_owner_in_place(&c, &m, &d));
        assert_string_equal(d.text, "/etc/fleetid/fleetid.conf.d/10-old.conf is not the new owner file (" H1
                                    "), and there are other drop-in files");
        c.n_dropins = 0;
        assert_false(reset_owner_in_place(&c, &m, &d));
        assert_string_equal(d.text,
                            "the new owner file (" H1 ") is not installed in /etc/fleetid/fleetid.conf.d");
}

static void test_same_request(void **state) {
        ResetMarker a = { .phase = RESET_PHASE_ENROLL, .uid = 0, .requested = 100, .enroll = true }, b = a;

        snprintf(a.owner, sizeof(a.owner), H1);
        snprintf(b.owner, sizeof(b.owner), H1);
        assert_true(reset_marker_same_request(&a, &b));
        /* asked again: another owner (back to the wipe), or later */
        snprintf(b.owner, sizeof(b.owner), H2);
        b.phase = RESET_PHASE_WIPE;
        assert_false(reset_marker_same_request(&a, &b));
        b = a;
        b.requested = 101;
        assert_false(reset_marker_same_request(&a, &b));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_long_issuer),
                cmocka_unit_test(test_damaged),      cmocka_unit_test(test_owner_in_place),
                cmocka_unit_test(test_same_request),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
