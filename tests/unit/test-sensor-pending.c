/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deferred sensor requests: format, round trip through the state store,
 * corrupt and oversized files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "broker/sensor-pending.h"
#include "test-tmpdir.h"

static char tmpdir[64];
static char pending_dir[128];

static int setup(void **state) {
        if (!test_tmpdir_new(tmpdir, sizeof(tmpdir), "sensor-pending"))
                return -1;
        snprintf(pending_dir, sizeof(pending_dir), "%s/" SENSOR_PENDING_DIR, tmpdir);
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

static void test_format(void **state) {
        uint8_t csr[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };
        SensorPending p = {
                .id = "temp-01", .uid = 1001, .retry_at = 1750000000, .csr = csr, .csr_len = sizeof(csr)
        };
        SensorPending back = {};
        _cleanup_free_ char *text = NULL;
        size_t len;
        Diag d = {};

        assert_int_equal(sensor_pending_format(&p, &text, &len, &d), 0);
        assert_string_equal(
                text, "fleetid-sensor-pending-v1\nid=temp-01\nuid=1001\nretry_at=1750000000\ncsr=MAMCAQc=\n");
        assert_int_equal(sensor_pending_parse(text, len, &back, &d), 0);
        assert_string_equal(back.id, "temp-01");
        assert_int_equal(back.uid, 1001);
        assert_int_equal(back.retry_at, 1750000000);
        assert_int_equal(back.csr_len, sizeof(csr));
        assert_memory_equal(back.csr, csr, sizeof(csr));
        assert_string_equal(back.birth, "");
        sensor_pending_done(&back);

        /* with the evidence's birth certificate */
        snprintf(p.birth, sizeof(p.birth), "sha256:%064d", 9);
        free(text);
        text = NULL;
        assert_int_equal(sensor_pending_format(&p, &text, &len, &d), 0);
        assert_string_equal(text, "fleetid-sensor-pending-v1\nid=temp-01\nuid=1001\nretry_at=1750000000\n"
                                  "csr=MAMCAQc=\nbirth=sha256:"
                                  "0000000000000000000000000000000000000000000000000000000000000009\n");
        assert_int_equal(sensor_pending_parse(text, len, &back, &d), 0);
        assert_string_equal(back.birth, p.birth);
        sensor_pending_done(&back);
        p.birth[7] = 'X';
        assert_int_equal(sensor_pending_format(&p, &text, &len, &d), -EINVAL);
        p.birth[0] = '\0';

        p.csr_len = 0;
        assert_int_equal(sensor_pending_format(&p, &text, &len, &d), -EINVAL);
        p.csr_len = SENSOR_CSR_MAX + 1;
        assert_int_equal(sensor_pending_format(&p, &text, &len, &d), -EINVAL);
        p = (SensorPending) { .id = "../x", .csr = csr, .csr_len = sizeof(csr) };
        assert_int_equal(sensor_pending_format(&p, &text, &len, &d), -EINVAL);
}

static void test_parse_corrupt(void **state) {
        static const struct {
                const char *text, *why;
        } bad[] = {
                { "", "does not start with" },
                { "fleetid-sensor-pending-v2\nid=a\nuid=1\nretry_at=1\ncsr=MAMCAQc=\n", "does not start with" },
                { "fleetid-sensor-pending-v1\nid=a/b\nuid=1\nretry_at=1\ncsr=MAMCAQc=\n", "line 2" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=-1\nretry_at=1\ncsr=MAMCAQc=\n", "line 3" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=4294967295\nretry_at=1\ncsr=MAMCAQc=\n", "line 3" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=01\nretry_at=1\ncsr=MAMCAQc=\n", "line 3" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=99999999999999999999\ncsr=MAMCAQc=\n",
                  "line 4" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=1\ncsr=\n", "line 5" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=1\ncsr=not base64!\n", "line 5" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=1\ncsr=MAMCAQc=", "line 5" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=1\ncsr=MAMCAQc=\nmore=1\n", "line 6" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=1\ncsr=MAMCAQc=\nbirth=sha256:00\n",
                  "line 6" },
                { "fleetid-sensor-pending-v1\nid=a\nuid=1\nretry_at=1\ncsr=MAMCAQc=\nbirth=sha256:"
                  "0000000000000000000000000000000000000000000000000000000000000000\nmore=1\n",
                  "more than 6 lines" },
        };
        SensorPending p = {};
        Diag d = {};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(sensor_pending_parse(bad[i].text, strlen(bad[i].text), &p, &d), -EBADMSG);
                assert_diag(&d, -EBADMSG, bad[i].why);
        }
}

static void test_store(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        uint8_t csr[SENSOR_CSR_MAX];
        SensorPending p = { .id = "big-one", .uid = 7, .retry_at = 42, .csr = csr, .csr_len = sizeof(csr) };
        SensorPending back = {};
        struct stat st;
        char path[256];
        FILE *f;
        Diag d = {};

        for (size_t i = 0; i < sizeof(csr); i++)
                csr[i] = (uint8_t) (i * 7);
        assert_int_equal(state_store_open(pending_dir, &s, &d), 0);
        /* the largest CSR fits the bound */
        assert_int_equal(sensor_pending_save(s, &p, &d), 0);
        assert_int_equal(sensor_pending_load(s, "big-one", &back, &d), 0);
        assert_int_equal(back.csr_len, sizeof(csr));
        assert_memory_equal(back.csr, csr, sizeof(csr));
        sensor_pending_done(&back);
        snprintf(path, sizeof(path), "%s/big-one", pending_dir);
        assert_int_equal(lstat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);

        assert_int_equal(sensor_pending_load(s, "none", &back, &d), -ENOENT);
        /* a file that names another sensor */
        snprintf(path, sizeof(path), "%s/liar", pending_dir);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs("fleetid-sensor-pending-v1\nid=other\nuid=1\nretry_at=1\ncsr=MAMCAQc=\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(sensor_pending_load(s, "liar", &back, &d), -EBADMSG);
        assert_diag(&d, -EBADMSG, "is the pending request of sensor 'other'");
        /* an oversized file */
        f = fopen(path, "w");
        assert_non_null(f);
        for (size_t i = 0; i < SENSOR_PENDING_MAX + 10; i++)
                fputc('x', f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(sensor_pending_load(s, "liar", &back, &d), -EFBIG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_parse_corrupt),
                cmocka_unit_test(test_store),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
