/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TPM fingerprint record: what changed (cleared, replaced), its text
 * form both ways, and the records refused. No TPM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tpm/tpm-fingerprint.h"

static TPM2B_NAME name(uint8_t fill) {
        TPM2B_NAME n = { .size = 34 };

        n.name[0] = 0x00;
        n.name[1] = 0x0b; /* SHA-256 */
        memset(n.name + 2, fill, 32);
        return n;
}

static void test_compare(void **state) {
        TpmFingerprint was = { .srk = name(1), .ek = name(2) }, now = was;

        assert_int_equal(tpm_fingerprint_compare(&was, &now), TPM_CHANGE_NONE);
        now.srk = name(3);
        assert_int_equal(tpm_fingerprint_compare(&was, &now), TPM_CHANGE_CLEARED);
        /* another EK outranks the SRK: another TPM has another SRK too */
        now.ek = name(4);
        assert_int_equal(tpm_fingerprint_compare(&was, &now), TPM_CHANGE_REPLACED);
        now.srk = was.srk;
        assert_int_equal(tpm_fingerprint_compare(&was, &now), TPM_CHANGE_REPLACED);
        /* a name of another length is another name */
        now = was;
        now.ek.size = 33;
        assert_int_equal(tpm_fingerprint_compare(&was, &now), TPM_CHANGE_REPLACED);
}

static void test_round_trip(void **state) {
        TpmFingerprint f = { .srk = name(0xab), .ek = name(0x01) }, back = {};
        char *text = NULL;
        Diag d = {};

        assert_int_equal(tpm_fingerprint_format(&f, &text), 0);
        assert_string_equal(text, "srk=000b"
                                  "abababababababababababababababababababababababababababababababab\n"
                                  "ek=000b"
                                  "0101010101010101010101010101010101010101010101010101010101010101\n");
        assert_int_equal(tpm_fingerprint_parse(text, strlen(text), &back, &d), 0);
        assert_int_equal(tpm_fingerprint_compare(&f, &back), TPM_CHANGE_NONE);
        free(text);
}

static void test_refused(void **state) {
        static const char *const bad[] = {
                "",
                "srk=000b01\n",                 /* no ek */
                "ek=000b01\nsrk=000b01\n",      /* order */
                "srk=000b01\nek=000b01",        /* no final newline */
                "srk=000b01\nek=000b01\nx=1\n", /* more */
                "srk=000B01\nek=000b01\n",      /* uppercase */
                "srk=000b0\nek=000b01\n",       /* odd length */
                "srk=\nek=000b01\n",            /* empty */
                "srk=000b01 \nek=000b01\n",     /* space */
                "srk = 000b01\nek=000b01\n",    /* spaces around = */
        };
        char *big = NULL;
        TpmFingerprint f = { .srk = name(9) }, kept = f;
        Diag d = {};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(tpm_fingerprint_parse(bad[i], strlen(bad[i]), &f, &d), -EBADMSG);
                assert_memory_equal(&f, &kept, sizeof(f)); /* untouched on failure */
        }
        /* a name longer than a TPM2B_NAME holds */
        big = malloc(4 + 2 * (sizeof(f.srk.name) + 1) + 16);
        assert_non_null(big);
        strcpy(big, "srk=");
        for (size_t i = 0; i < sizeof(f.srk.name) + 1; i++)
                strcat(big, "aa");
        strcat(big, "\nek=00\n");
        assert_int_equal(tpm_fingerprint_parse(big, strlen(big), &f, &d), -EBADMSG);
        free(big);
        /* a NUL inside is not hex */
        assert_int_equal(tpm_fingerprint_parse("srk=00\0a\nek=00\n", 15, &f, &d), -EBADMSG);
}

static void test_name_short(void **state) {
        TPM2B_NAME n = name(0xcd);
        char buf[17];

        tpm_fingerprint_name_short(&n, buf);
        assert_string_equal(buf, "cdcdcdcdcdcdcdcd");
        n.size = 1;
        tpm_fingerprint_name_short(&n, buf);
        assert_string_equal(buf, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_compare),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_name_short),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
