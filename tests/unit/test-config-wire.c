/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/config/config-wire.c: a configuration passed to a worker process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "config/config-wire.h"
#include "config/config.h"
#include "test-tmpdir.h"

static void write_at(const char *dir, const char *name, const char *text) {
        assert_true(test_write_at(dir, name, text));
}

/* Every group with values other than the defaults, and an owner drop-in. */
static Config *load_busy(char *dir, size_t size) {
        char path[256], dropins[256];
        Config *c = NULL;
        Diag d = {};

        assert_non_null(test_tmpdir_new(dir, size, "config-wire"));
        write_at(dir, "fleetid.conf",
                 "tpm: { tcti = \"swtpm:port=2321\"; srk_handle = 0x81000002; };\n"
                 "birth: { key_handle = 0x81800010; nv_index = 0; cert_file = \"/etc/fleetid/idevid.pem\"; };\n"
                 "operational: { key_handle = 0x81020005; key_algorithm = \"rsa-3072\"; "
                 "spare_key_handle = 0x81020004; subject_cn = \"gw-0042.example.net\"; "
                 "allowed_key_algorithms = [ \"rsa-3072\", \"ecc-p384\" ]; };\n"
                 "est: { url = \"https://old.example/est\"; timeout = 600; connect_timeout = 1; "
                 "channel_binding = \"required\"; cacerts_refresh = 3600; max_clock_skew = 0; };\n"
                 "paths: { state_dir = \"/srv/fleetid\"; runtime_dir = \"\"; };\n"
                 "retry: { initial = 86400; max = 604800; };\n"
                 "renew: { share_percent = 50; jitter_percent = 0; new_key = false; min_lifetime = 0; };\n"
                 "monitoring: { hook = \"/usr/local/bin/h\"; critical_percent = 1; };\n"
                 "access: { file = \"/etc/a.conf\"; signer_idle = 3600; tracked_uids = 16; };\n"
                 "broker: { subject_organization = \"Acme\"; est_label = \"sensors\"; retry_limit = 0; "
                 "allowed_extensions = [ \"keyUsage\" ]; request_timeout = 5; };\n");
        snprintf(dropins, sizeof(dropins), "%s/fleetid.conf.d", dir);
        assert_int_equal(mkdir(dropins, 0755), 0);
        write_at(dropins, "owner.conf",
                 "est: { url = \"https://new.example:8443/est\"; label = \"owner2\"; username = \"gw\"; "
                 "password_file = \"/etc/fleetid/pw\"; trust_anchors = \"/etc/fleetid/new.pem\"; };\n");
        snprintf(path, sizeof(path), "%s/fleetid.conf", dir);
        if (config_load(path, &c, &d) < 0)
                fail_msg("%s: %s", path, d.text);
        return c;
}

static void test_round_trip(void **state) {
        _cleanup_(config_freep) Config *c = NULL, *back = NULL;
        _cleanup_free_ uint8_t *wire = NULL, *again = NULL;
        size_t len = 0, len2 = 0;
        char dir[64];
        Diag d = {};

        c = load_busy(dir, sizeof(dir));
        assert_int_equal(config_to_wire(c, &wire, &len), 0);
        assert_int_equal(config_from_wire(wire, len, &back, &d), 0);
        /* The same bytes again: every key came through as it was. */
        assert_int_equal(config_to_wire(back, &again, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(wire, again, len);

        assert_string_equal(back->tpm_tcti, "swtpm:port=2321");
        assert_int_equal(back->birth_nv_index, 0);
        assert_int_equal(back->op_key_algorithm, KEY_ALG_RSA_3072);
        assert_int_equal(back->op_allowed_key_algorithms, c->op_allowed_key_algorithms);
        assert_string_equal(back->est_url, "https://new.example:8443/est");
        assert_string_equal(back->est_label, "owner2");
        assert_null(back->runtime_dir);
        assert_null(back->metrics_file);
        assert_false(back->renew_new_key);
        assert_true(back->renew_fallback_to_birth);
        assert_int_equal(back->access_signer_idle_sec, 3600);
        assert_int_equal(back->broker_retry_limit, 0);
        assert_string_equal(back->broker_est_label, "sensors");
        assert_string_equal(back->path, c->path);
        assert_int_equal(back->n_dropins, 1);
        assert_string_equal(back->dropins[0].path, c->dropins[0].path);
        assert_string_equal(back->dropins[0].hash, c->dropins[0].hash);
        assert_int_equal(test_tmpdir_remove(dir), 0);
}

static void test_defaults(void **state) {
        _cleanup_(config_freep) Config *c = NULL, *back = NULL;
        _cleanup_free_ uint8_t *wire = NULL;
        size_t len = 0;
        Diag d = {};

        assert_int_equal(config_new_defaults(&c), 0);
        c->est_url = strdup("https://est.example/.well-known/est"); /* required; no default */
        assert_non_null(c->est_url);
        assert_int_equal(config_to_wire(c, &wire, &len), 0);
        if (config_from_wire(wire, len, &back, &d) < 0)
                fail_msg("%s", d.text);
        assert_string_equal(back->state_dir, "/var/lib/fleetid");
        assert_int_equal(back->op_key_handle, c->op_key_handle);
        assert_null(back->path);
        assert_int_equal(back->n_dropins, 0);
}

/* Cut short anywhere, or followed by more: refused, never half taken. */
static void test_truncated_or_longer(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ uint8_t *wire = NULL, *longer = NULL;
        size_t len = 0;
        char dir[64];

        c = load_busy(dir, sizeof(dir));
        assert_int_equal(config_to_wire(c, &wire, &len), 0);
        for (size_t n = 0; n < len; n++) {
                Config *back = NULL;
                Diag d = {};

                assert_int_equal(config_from_wire(wire, n, &back, &d), -EBADMSG);
                assert_null(back);
                assert_true(d.text[0] != '\0');
        }
        longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, wire, len);
        longer[len] = 0;
        {
                Config *back = NULL;
                Diag d = {};

                assert_int_equal(config_from_wire(longer, len + 1, &back, &d), -EBADMSG);
                assert_non_null(strstr(d.text, "1 bytes after"));
        }
        assert_int_equal(test_tmpdir_remove(dir), 0);
}

static void expect_refused(Config *c, const char *needle) {
        _cleanup_free_ uint8_t *wire = NULL;
        Config *back = NULL;
        size_t len = 0;
        Diag d = {};

        assert_int_equal(config_to_wire(c, &wire, &len), 0);
        assert_int_equal(config_from_wire(wire, len, &back, &d), -EBADMSG);
        assert_null(back);
        if (!strstr(d.text, needle))
                fail_msg("'%s' does not name '%s'", d.text, needle);
}

/* Values the loader would refuse are refused here too. */
static void test_values_checked(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        uint8_t *wire = NULL;
        size_t len = 0;
        Diag d = {};
        Config *back = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        c->est_url = strdup("ftp://est.example/");
        assert_non_null(c->est_url);
        expect_refused(c, "est.url");
        free(c->est_url);
        c->est_url = strdup("https://est.example/.well-known/est");
        assert_non_null(c->est_url);

        c->est_timeout_sec = 0;
        expect_refused(c, "est.timeout");
        c->est_timeout_sec = 60;
        c->op_key_handle = 0x01000000;
        expect_refused(c, "operational.key_handle");
        c->op_key_handle = 0x81020002;
        c->est_channel_binding = 7;
        expect_refused(c, "est.channel_binding");
        c->est_channel_binding = CHANNEL_BINDING_AUTO;
        c->broker_allowed_extensions = 0;
        expect_refused(c, "broker.allowed_extensions");
        c->broker_allowed_extensions = 1;

        /* Another magic number, or another layout of the same number of keys
         * (a key moved or replaced): another build's message. */
        assert_int_equal(config_to_wire(c, &wire, &len), 0);
        wire[0] ^= 0xff;
        assert_int_equal(config_from_wire(wire, len, &back, &d), -EBADMSG);
        assert_non_null(strstr(d.text, "not a configuration of this build"));
        wire[0] ^= 0xff;
        wire[8] ^= 0x01; /* the layout, after the magic and the number of keys */
        assert_int_equal(config_from_wire(wire, len, &back, &d), -EBADMSG);
        assert_null(back);
        assert_non_null(strstr(d.text, "layout"));
        free(wire);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_truncated_or_longer),
                cmocka_unit_test(test_values_checked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
