/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sensor records: format, round trip through the state store, corrupt
 * records, the limit on tracked sensors. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "broker/sensor-record.h"
#include "test-certs.h"
#include "test-tmpdir.h"

static char tmpdir[64];
static char records_dir[128];

static int setup(void **state) {
        if (!test_tmpdir_new(tmpdir, sizeof(tmpdir), "sensor-record"))
                return -1;
        snprintf(records_dir, sizeof(records_dir), "%s/" SENSOR_RECORDS_DIR, tmpdir);
        return 0;
}

static int teardown(void **state) {
        return test_tmpdir_remove(tmpdir);
}

static void assert_diag(const Diag *d, int r, const char *why) {
        assert_int_equal(d->error, r);
        if (!strstr(d->text, why))
                fail_msg("diag \"%s\" does not mention \"%s\"", d->text, why);
}

static void test_pki_freep(TestPki **p) {
        test_pki_free(*p);
}

static StateStore *open_store(void) {
        StateStore *s = NULL;

        assert_int_equal(state_store_open(records_dir, &s, NULL), 0);
        return s;
}

/* Field by field: struct padding is not compared. */
static void assert_record_equal(const SensorRecord *a, const SensorRecord *b) {
        assert_string_equal(a->id, b->id);
        assert_int_equal(a->state, b->state);
        assert_string_equal(a->serial, b->serial);
        assert_int_equal(a->not_before, b->not_before);
        assert_int_equal(a->not_before, b->not_before);
        assert_int_equal(a->not_after, b->not_after);
        assert_string_equal(a->birth, b->birth);
}

static void write_raw(const char *name, const char *text) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", records_dir, name);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static void test_format(void **state) {
        SensorRecord rec = { .id = "temp-01",
                             .state = SENSOR_ISSUED,
                             .serial = "1234ABCD",
                             .not_before = 1750000000,
                             .not_after = 1757776000 };
        SensorRecord back;
        _cleanup_free_ char *text = NULL;
        size_t len;
        Diag d = {};

        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), 0);
        assert_string_equal(text, "fleetid-sensor-record-v1\nid=temp-01\nstate=issued\nserial=1234ABCD\n"
                                  "not_before=1750000000\nnot_after=1757776000\n");
        assert_int_equal(len, strlen(text));
        assert_int_equal(sensor_record_parse(text, len, &back, &d), 0);
        assert_record_equal(&back, &rec);

        /* with the birth certificate's fingerprint */
        snprintf(rec.birth, sizeof(rec.birth), "sha256:%064d", 7);
        free(text);
        text = NULL;
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), 0);
        assert_string_equal(text, "fleetid-sensor-record-v1\nid=temp-01\nstate=issued\nserial=1234ABCD\n"
                                  "not_before=1750000000\nnot_after=1757776000\nbirth=sha256:"
                                  "0000000000000000000000000000000000000000000000000000000000000007\n");
        assert_int_equal(sensor_record_parse(text, len, &back, &d), 0);
        assert_string_equal(back.birth, rec.birth);
        snprintf(rec.birth, sizeof(rec.birth), "sha256:%064d", 0);
        rec.birth[10] = 'A'; /* uppercase: not the form written */
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "the birth fingerprint is not sha256:");

        rec = (SensorRecord) { .id = "p", .state = SENSOR_PENDING };
        free(text);
        text = NULL;
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), 0);
        assert_int_equal(sensor_record_parse(text, len, &back, &d), 0);
        assert_int_equal(back.state, SENSOR_PENDING);

        /* what cannot be written */
        rec = (SensorRecord) { .id = "a/b", .state = SENSOR_PENDING };
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), -EINVAL);
        rec = (SensorRecord) { .id = "ok", .state = SENSOR_ISSUED };
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "an issued record needs a serial and a notAfter");
        rec = (SensorRecord) { .id = "ok", .state = SENSOR_ISSUED, .serial = "12ab", .not_after = 1 };
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), -EINVAL);
        rec = (SensorRecord) {
                .id = "ok", .state = SENSOR_ISSUED, .serial = "12", .not_before = 2, .not_after = 1
        };
        assert_int_equal(sensor_record_format(&rec, &text, &len, &d), -EINVAL);
        assert_diag(&d, -EINVAL, "notBefore is after notAfter");
}

static void test_parse_corrupt(void **state) {
        static const struct {
                const char *text, *why;
        } bad[] = {
                { "", "does not start with" },
                { "fleetid-sensor-record-v2\nid=a\nstate=pending\nserial=\nnot_before=0\nnot_after=0\n",
                  "does not start with" },
                { "fleetid-sensor-record-v1\nid=a/b\nstate=pending\nserial=\nnot_before=0\nnot_after=0\n",
                  "line 2" },
                { "fleetid-sensor-record-v1\nid=..\nstate=pending\nserial=\nnot_before=0\nnot_after=0\n",
                  "line 2" },
                { "fleetid-sensor-record-v1\nname=a\nstate=pending\nserial=\nnot_before=0\nnot_after=0\n",
                  "line 2" },
                { "fleetid-sensor-record-v1\nid=a\nstate=revoked\nserial=\nnot_before=0\nnot_after=0\n",
                  "unknown state 'revoked'" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=xyz\nnot_before=0\nnot_after=5\n",
                  "line 4" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=-5\n",
                  "line 6" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=99999999999999999999\n",
                  "out of range" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=5",
                  "line 6" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=5\nextra=1\n",
                  "line 7" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=5\nbirth=sha256:"
                  "00\n",
                  "line 7" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=5\nbirth=sha256:"
                  "000000000000000000000000000000000000000000000000000000000000000g\n",
                  "line 7" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=0\nnot_after=5\nbirth=sha256:"
                  "0000000000000000000000000000000000000000000000000000000000000000\nextra=1\n",
                  "more than 7 lines" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=\nnot_before=0\nnot_after=0\n",
                  "an issued record needs a serial" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_before=007\nnot_after=9\n",
                  "line 5" },
                { "fleetid-sensor-record-v1\nid=a\nstate=issued\nserial=AB\nnot_after=9\n", "line 5" },
        };
        SensorRecord rec;
        Diag d = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(sensor_record_parse(bad[i].text, strlen(bad[i].text), &rec, &d), -EBADMSG);
                assert_diag(&d, -EBADMSG, bad[i].why);
        }
        /* an embedded NUL in the id */
        assert_int_equal(
                sensor_record_parse(
                        "fleetid-sensor-record-v1\nid=a\0b\nstate=pending\nserial=\nnot_before=0\nnot_after=0\n",
                        79, &rec, &d),
                -EBADMSG);
        assert_diag(&d, -EBADMSG, "NUL byte");
}

static void test_store_round_trip(void **state) {
        _cleanup_(state_store_freep) StateStore *s = open_store();
        _cleanup_(test_pki_freep) TestPki *pki = NULL;
        _cleanup_free_ SensorRecord *all = NULL;
        SensorRecord rec, back;
        unsigned n, corrupt;
        struct stat st;
        char path[256];
        Diag d = {};

        assert_int_equal(test_pki_new(&pki), 0);
        assert_int_equal(sensor_record_from_cert("temp-01", pki->leaf, &rec, &d), 0);
        assert_string_equal(rec.serial, "1234ABCD");
        assert_int_equal(rec.not_before, TEST_NOW - TEST_DAY);
        assert_int_equal(rec.not_before, TEST_NOW - TEST_DAY);
        assert_int_equal(rec.not_after, TEST_NOW + 90 * TEST_DAY);
        assert_int_equal(sensor_record_save(s, &rec, 10, &d), 0);
        assert_int_equal(sensor_record_load(s, "temp-01", &back, &d), 0);
        assert_record_equal(&back, &rec);

        snprintf(path, sizeof(path), "%s/temp-01", records_dir);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0640);

        assert_int_equal(sensor_record_load(s, "temp-02", &back, &d), -ENOENT);
        assert_int_equal(sensor_record_load(s, "../x", &back, &d), -EINVAL);

        rec = (SensorRecord) { .id = "temp-02", .state = SENSOR_PENDING };
        assert_int_equal(sensor_record_save(s, &rec, 10, &d), 0);
        assert_int_equal(sensor_records_load_all(s, 10, &all, &n, &corrupt, &d), 0);
        assert_int_equal(n, 2);
        assert_int_equal(corrupt, 0);
        assert_string_equal(all[0].id, "temp-01");
        assert_string_equal(all[1].id, "temp-02");
        assert_int_equal(all[1].state, SENSOR_PENDING);

        assert_int_equal(sensor_record_remove(s, "temp-02", &d), 0);
        assert_int_equal(sensor_record_remove(s, "temp-02", &d), -ENOENT);
        assert_diag(&d, -ENOENT, "no sensor 'temp-02' is tracked");
        assert_int_equal(sensor_record_remove(s, "temp-01", &d), 0);
}

/* A corrupt record is reported and left alone; the others still load. */
static void test_store_corrupt(void **state) {
        _cleanup_(state_store_freep) StateStore *s = open_store();
        _cleanup_free_ SensorRecord *all = NULL;
        SensorRecord rec = { .id = "good", .state = SENSOR_ISSUED, .serial = "01", .not_after = 42 };
        _cleanup_free_ char *text = NULL;
        unsigned n, corrupt;
        char path[256];
        size_t len;
        Diag d = {};

        assert_int_equal(sensor_record_save(s, &rec, 10, &d), 0);
        write_raw("broken", "fleetid-sensor-record-v1\nid=broken\nstate=gone\n");
        write_raw("liar",
                  "fleetid-sensor-record-v1\nid=good\nstate=pending\nserial=\nnot_before=0\nnot_after=0\n");
        snprintf(path, sizeof(path), "%s/link", records_dir);
        assert_int_equal(symlink("good", path), 0);
        write_raw(".#good.tmp123", "half a write");

        assert_int_equal(sensor_record_load(s, "liar", &rec, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "/liar is the record of sensor 'good'");
        assert_int_equal(sensor_record_load(s, "link", &rec, &d), -ELOOP);
        assert_int_equal(sensor_records_load_all(s, 10, &all, &n, &corrupt, &d), 0);
        assert_int_equal(n, 1);
        assert_string_equal(all[0].id, "good");
        assert_int_equal(corrupt, 3);
        assert_diag(&d, -EBADMSG, "/broken: line 3 of the sensor record: unknown state 'gone'");
        /* nothing was removed or changed */
        assert_int_equal(state_store_load(s, "broken", 1024, &text, &len, &d), 0);
        assert_string_equal(text, "fleetid-sensor-record-v1\nid=broken\nstate=gone\n");
        assert_true(state_store_exists(s, "link"));

        /* an oversized record */
        {
                char big[SENSOR_RECORD_MAX + 10];

                memset(big, 'x', sizeof(big) - 1);
                big[sizeof(big) - 1] = 0;
                write_raw("big", big);
                assert_int_equal(sensor_record_load(s, "big", &rec, &d), -EFBIG);
        }
        for (const char *const *f =
                     (const char *const[]) { "good", "broken", "liar", "link", "big", ".#good.tmp123", NULL };
             *f; f++) {
                snprintf(path, sizeof(path), "%s/%s", records_dir, *f);
                assert_int_equal(unlink(path), 0);
        }
}

static void test_limit(void **state) {
        _cleanup_(state_store_freep) StateStore *s = open_store();
        _cleanup_free_ SensorRecord *all = NULL;
        SensorRecord rec = { .state = SENSOR_PENDING };
        unsigned n, corrupt;
        Diag d = {};

        for (int i = 0; i < 3; i++) {
                snprintf(rec.id, sizeof(rec.id), "s%d", i);
                assert_int_equal(sensor_record_save(s, &rec, 3, &d), 0);
        }
        snprintf(rec.id, sizeof(rec.id), "s3");
        assert_int_equal(sensor_record_save(s, &rec, 3, &d), -EDQUOT);
        assert_diag(&d, -EDQUOT, "3 sensors are tracked, the limit (broker.max_sensors)");
        assert_false(state_store_exists(s, "s3"));
        /* an update of a tracked sensor is no new sensor */
        rec = (SensorRecord) { .id = "s1", .state = SENSOR_ISSUED, .serial = "0A", .not_after = 7 };
        assert_int_equal(sensor_record_save(s, &rec, 3, &d), 0);
        assert_int_equal(sensor_records_load_all(s, 2, &all, &n, &corrupt, &d), -E2BIG);
        assert_null(all);
        assert_int_equal(sensor_records_load_all(s, 3, &all, &n, &corrupt, &d), 0);
        assert_int_equal(n, 3);
        assert_int_equal(all[1].state, SENSOR_ISSUED);
        for (int i = 0; i < 3; i++) {
                snprintf(rec.id, sizeof(rec.id), "s%d", i);
                assert_int_equal(sensor_record_remove(s, rec.id, &d), 0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_parse_corrupt),
                cmocka_unit_test(test_store_round_trip),
                cmocka_unit_test(test_store_corrupt),
                cmocka_unit_test(test_limit),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
