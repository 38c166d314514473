/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-config.c: fleetid.conf parsing: values, defaults, normalization, and each
 * rejection with its exact "file:line: message".
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "test-tmpdir.h"

#define URL_LINE "est: { url = \"https://est.example.net/.well-known/est\"; };\n"

/* A temporary file in /tmp holding text; removed again by unlink_and_freep. */
static char *write_temp(const char *text) {
        char *path = strdup("/tmp/test-config-XXXXXX");
        size_t len = strlen(text);
        int fd;

        assert_non_null(path);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
        return path;
}

static void unlink_and_freep(char **p) {
        if (*p) {
                (void) unlink(*p);
                free(*p);
        }
}

static Config *load_ok(const char *text) {
        _cleanup_(unlink_and_freep) char *path = write_temp(text);
        Config *c = NULL;
        Diag d = {};
        int r;

        r = config_load(path, &c, &d);
        if (r < 0)
                fail_msg("config_load failed: %d %s", r, d.text);
        assert_non_null(c);
        assert_string_equal(c->path, path);
        return c;
}

/* Loads text and checks the error code and the exact Diag text "<file>:<line>: <msg>"
 * (line 0: "<file>: <msg>"), and that nothing was returned. */
static void expect_error(const char *text, int error, unsigned line, const char *msg) {
        _cleanup_(unlink_and_freep) char *path = write_temp(text);
        Config *c = NULL;
        char expected[DIAG_MAX];
        Diag d = {};

        assert_int_equal(config_load(path, &c, &d), error);
        assert_null(c);
        assert_int_equal(d.error, error);
        if (line > 0)
                snprintf(expected, sizeof(expected), "%s:%u: %s", path, line, msg);
        else
                snprintf(expected, sizeof(expected), "%s: %s", path, msg);
        assert_string_equal(d.text, expected);
        assert_null(strchr(d.text, '\n'));
}

static void expect_invalid(const char *text, unsigned line, const char *msg) {
        expect_error(text, -EINVAL, line, msg);
}

static void test_defaults(void **state) {
        _cleanup_(config_freep) Config *c = NULL;

        assert_int_equal(config_new_defaults(&c), 0);
        assert_null(c->path);
        assert_string_equal(c->tpm_tcti, "device:/dev/tpmrm0");
        assert_int_equal(c->srk_handle, 0x81000001u);
        assert_int_equal(c->birth_key_handle, 0x81020000u);
        assert_int_equal(c->birth_nv_index, 0x01C90000u);
        assert_null(c->birth_cert_file);
        assert_int_equal(c->op_key_handle, 0x81020002u);
        assert_int_equal(c->op_key_algorithm, KEY_ALG_ECC_P256);
        assert_int_equal(c->op_allowed_key_algorithms, KEY_ALG_ALL);
        assert_int_equal(c->est_channel_binding, CHANNEL_BINDING_AUTO);
        assert_int_equal(c->est_cacerts_refresh_sec, 86400);
        assert_null(c->subject_cn);
        assert_null(c->subject_serial);
        assert_null(c->est_url);
        assert_null(c->est_label);
        assert_string_equal(c->est_trust_anchors, "/etc/fleetid/est-trust-anchors.pem");
        assert_null(c->est_bootstrap_fingerprint);
        assert_null(c->est_username);
        assert_null(c->est_password_file);
        assert_int_equal(c->est_timeout_sec, 60);
        assert_int_equal(c->est_connect_timeout_sec, 15);
        assert_int_equal(c->est_max_response_bytes, 1048576);
        assert_string_equal(c->state_dir, "/var/lib/fleetid");
        assert_int_equal(c->retry_initial_sec, 30);
        assert_int_equal(c->retry_max_sec, 3600);
        assert_int_equal(c->est_max_clock_skew_sec, 300);
        assert_int_equal(c->renew_min_interval_sec, 300);
        assert_int_equal(c->renew_min_lifetime_sec, 3600);
}

/* Every value of c but path and est_url is the default. */
static void assert_is_defaults(const Config *c) {
        _cleanup_(config_freep) Config *def = NULL;

        assert_int_equal(config_new_defaults(&def), 0);
        assert_string_equal(c->tpm_tcti, def->tpm_tcti);
        assert_int_equal(c->srk_handle, def->srk_handle);
        assert_int_equal(c->birth_key_handle, def->birth_key_handle);
        assert_int_equal(c->birth_nv_index, def->birth_nv_index);
        assert_null(c->birth_cert_file);
        assert_int_equal(c->op_key_handle, def->op_key_handle);
        assert_int_equal(c->op_key_algorithm, def->op_key_algorithm);
        assert_int_equal(c->op_allowed_key_algorithms, def->op_allowed_key_algorithms);
        assert_null(c->subject_cn);
        assert_null(c->subject_serial);
        assert_null(c->est_label);
        assert_string_equal(c->est_trust_anchors, def->est_trust_anchors);
        assert_null(c->est_bootstrap_fingerprint);
        assert_null(c->est_username);
        assert_null(c->est_password_file);
        assert_int_equal(c->est_timeout_sec, def->est_timeout_sec);
        assert_int_equal(c->est_connect_timeout_sec, def->est_connect_timeout_sec);
        assert_int_equal(c->est_max_response_bytes, def->est_max_response_bytes);
        assert_string_equal(c->state_dir, def->state_dir);
        assert_int_equal(c->retry_initial_sec, def->retry_initial_sec);
        assert_int_equal(c->retry_max_sec, def->retry_max_sec);
        assert_int_equal(c->op_spare_key_handle, 0x81020003u);
        assert_int_equal(c->renew_share_percent, 67);
        assert_int_equal(c->renew_jitter_percent, 5);
        assert_true(c->renew_new_key);
        assert_true(c->renew_fallback_to_birth);
        assert_null(c->metrics_file);
        assert_null(c->hook);
        assert_null(c->broker_sensor_manufacturer_ca);
        assert_int_equal(c->broker_sensor_key_algorithms, def->broker_sensor_key_algorithms);
        assert_null(c->broker_subject_organization);
        assert_null(c->broker_subject_organizational_unit);
        assert_int_equal(c->broker_allowed_extensions, def->broker_allowed_extensions);
        assert_int_equal(c->broker_max_sensors, def->broker_max_sensors);
        assert_int_equal(c->broker_max_challenges, def->broker_max_challenges);
        assert_int_equal(c->broker_challenge_lifetime_sec, def->broker_challenge_lifetime_sec);
}

static void test_minimal_file_takes_defaults(void **state) {
        _cleanup_(config_freep) Config *c = load_ok(URL_LINE);

        assert_string_equal(c->est_url, "https://est.example.net/.well-known/est");
        assert_is_defaults(c);
}

static void test_every_key(void **state) {
        _cleanup_(config_freep) Config *c = load_ok(
                "# comment\n"
                "tpm: { tcti = \"swtpm:port=2321\"; srk_handle = 0x81000002; };\n"
                "birth: { key_handle = 0x81800010; nv_index = 0x01C90010; cert_file = \"/etc/fleetid/idevid.pem\"; };\n"
                "operational = { key_handle = 2164391939; key_algorithm = \"rsa-3072\"; spare_key_handle = 0x81020004;\n"
                "                subject_cn = \"gw-0042.example.net\"; subject_serial = \"SN-0042\"; };\n"
                "est: {\n"
                "  url = \"HTTPS://[2001:db8::1]:8443/.well-known/est/\";\n"
                "  label = \"gateways_v2\";\n"
                "  trust_anchors = \"\";\n"
                "  bootstrap_fingerprint = \"SHA256:AB:cd:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:"
                "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89\";\n"
                "  username = \"gw-0042\"; password_file = \"/etc/fleetid/est-password\";\n"
                "  timeout = 600; connect_timeout = 1; max_response_bytes = 0x1000000;\n"
                "  channel_binding = \"required\"; cacerts_refresh = 3600;\n"
                "};\n"
                "paths: { state_dir = \"/srv/fleetid\"; };\n"
                "retry: { initial = 86400; max = 604800; };\n"
                "renew: { share_percent = 50; jitter_percent = 0; retry_max = 60; new_key = false;\n"
                "         fallback_to_birth = false; };\n"
                "monitoring: { metrics_file = \"/var/lib/node-exporter/fleetid.prom\"; hook = \"/usr/local/bin/h\";\n"
                "              hook_timeout = 5; warning_percent = 40; error_percent = 2; critical_percent = 1; };\n");

        assert_string_equal(c->tpm_tcti, "swtpm:port=2321");
        assert_int_equal(c->srk_handle, 0x81000002u);
        assert_int_equal(c->birth_key_handle, 0x81800010u);
        assert_int_equal(c->birth_nv_index, 0x01C90010u);
        assert_string_equal(c->birth_cert_file, "/etc/fleetid/idevid.pem");
        assert_int_equal(c->op_key_handle, 0x81020003u); /* written in decimal */
        assert_int_equal(c->op_key_algorithm, KEY_ALG_RSA_3072);
        assert_int_equal(c->est_channel_binding, CHANNEL_BINDING_REQUIRED);
        assert_int_equal(c->est_cacerts_refresh_sec, 3600);
        assert_string_equal(c->subject_cn, "gw-0042.example.net");
        assert_string_equal(c->subject_serial, "SN-0042");
        assert_string_equal(c->est_url, "https://[2001:db8::1]:8443/.well-known/est");
        assert_string_equal(c->est_label, "gateways_v2");
        assert_null(c->est_trust_anchors);
        assert_string_equal(c->est_bootstrap_fingerprint,
                            "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        assert_string_equal(c->est_username, "gw-0042");
        assert_string_equal(c->est_password_file, "/etc/fleetid/est-password");
        assert_int_equal(c->est_timeout_sec, 600);
        assert_int_equal(c->est_connect_timeout_sec, 1);
        assert_int_equal(c->est_max_response_bytes, 16777216);
        assert_string_equal(c->state_dir, "/srv/fleetid");
        assert_int_equal(c->retry_initial_sec, 86400);
        assert_int_equal(c->retry_max_sec, 604800);
        assert_int_equal(c->op_spare_key_handle, 0x81020004u);
        assert_int_equal(c->renew_share_percent, 50);
        assert_int_equal(c->renew_jitter_percent, 0);
        assert_int_equal(c->renew_retry_max_sec, 60);
        assert_false(c->renew_new_key);
        assert_false(c->renew_fallback_to_birth);
        assert_string_equal(c->metrics_file, "/var/lib/node-exporter/fleetid.prom");
        assert_string_equal(c->hook, "/usr/local/bin/h");
        assert_int_equal(c->hook_timeout_sec, 5);
        assert_int_equal(c->warning_percent, 40);
        assert_int_equal(c->error_percent, 2);
        assert_int_equal(c->critical_percent, 1);
}

/* The clock and renewal-rate keys: FILE:LINE errors out of range. */
static void test_clock_and_rate_keys(void **state) {
        _cleanup_(config_freep) Config *c = load_ok("est: { url = \"https://h/\"; max_clock_skew = 0; };\n"
                                                    "renew: { min_interval = 86400; min_lifetime = 0; };\n");

        assert_int_equal(c->est_max_clock_skew_sec, 0);
        assert_int_equal(c->renew_min_interval_sec, 86400);
        assert_int_equal(c->renew_min_lifetime_sec, 0);
        expect_invalid("est: { url = \"https://h/\";\n max_clock_skew = 3601; };\n", 2,
                       "est.max_clock_skew must be between 0 and 3600 (got 3601)");
        expect_invalid(URL_LINE "renew: { min_interval = 86401; };\n", 2,
                       "renew.min_interval must be between 0 and 86400 (got 86401)");
        expect_invalid(URL_LINE "renew: {\n min_lifetime = 31536001; };\n", 3,
                       "renew.min_lifetime must be between 0 and 31536000 (got 31536001)");
}

static void test_renew_and_monitoring_rules(void **state) {
        expect_invalid(URL_LINE "renew: { new_key = 1; };\n", 2, "renew.new_key must be true or false");
        expect_invalid(URL_LINE "renew: { share_percent = 99; };\n", 2,
                       "renew.share_percent must be between 10 and 95 (got 99)");
        expect_invalid(URL_LINE "monitoring: { warning_percent = 5; error_percent = 10; };\n", 2,
                       "monitoring thresholds must satisfy critical_percent (3) < error_percent (10) < "
                       "warning_percent (5)");
        expect_invalid(URL_LINE "renew: { share_percent = 90; };\n", 2,
                       "monitoring.warning_percent (20% of the lifetime left) is reached before renewal is "
                       "due (renew.share_percent 90% + jitter_percent 5%); lower one of them");
        /* Within each range, but the latest due time (67 + 20 = 87 %) is past the warning (80 %). */
        expect_invalid(URL_LINE "renew: { jitter_percent = 20; };\n", 2,
                       "monitoring.warning_percent (20% of the lifetime left) is reached before renewal is "
                       "due (renew.share_percent 67% + jitter_percent 20%); lower one of them");
        expect_invalid(URL_LINE "renew: { share_percent = 15; jitter_percent = 15; };\n", 2,
                       "renew.jitter_percent (15) must be less than renew.share_percent (15), or a renewal "
                       "could fall due as soon as the certificate is issued");
        expect_invalid(URL_LINE "operational: { spare_key_handle = 0x81020002; };\n", 2,
                       "operational.spare_key_handle 0x81020002 is also used for another key");
        expect_invalid(URL_LINE "paths: { state_dir = \"/var/lib/x\"; runtime_dir = \"/var/lib/x/\"; };\n", 2,
                       "paths.runtime_dir and paths.state_dir are both /var/lib/x; the runtime copy of the status "
                       "must be in another directory (it is taken as this boot's own)");
        /* Whichever of the three thresholds is set names the line. */
        expect_invalid(URL_LINE "monitoring: { error_percent = 50; };\n", 2,
                       "monitoring thresholds must satisfy critical_percent (3) < error_percent (50) < "
                       "warning_percent (20)");
        expect_invalid(URL_LINE "\nmonitoring: { critical_percent = 15; };\n", 3,
                       "monitoring thresholds must satisfy critical_percent (15) < error_percent (10) < "
                       "warning_percent (20)");
}

static void test_empty_strings_unset(void **state) {
        _cleanup_(config_freep) Config *c =
                load_ok(URL_LINE "birth: { nv_index = 0; cert_file = \"/etc/fleetid/idevid.pem\"; };\n"
                                 "operational: { subject_cn = \"\"; subject_serial = \"\"; };\n");

        assert_int_equal(c->birth_nv_index, 0);
        assert_null(c->subject_cn);
        assert_null(c->subject_serial);
}

static void test_int64_suffix_and_url_forms(void **state) {
        _cleanup_(config_freep) Config *c =
                load_ok("est: { url = \"https://est.example.net:443\"; timeout = 30L; };\n"
                        "tpm: { srk_handle = 0x81000001L; };\n");

        assert_string_equal(c->est_url, "https://est.example.net:443");
        assert_int_equal(c->est_timeout_sec, 30);
        assert_int_equal(c->srk_handle, 0x81000001u);
}

static void test_unknown(void **state) {
        expect_invalid("est: {\n  url = \"https://h/\";\n  foo = 1;\n};\n", 3, "unknown key 'est.foo'");
        expect_invalid(URL_LINE "\nlogging: { level = 3; };\n", 3, "unknown group 'logging'");
        expect_invalid(URL_LINE "tpm: { tcti = \"device:/dev/tpm0\"; sub: { a = 1; }; };\n", 2,
                       "unknown key 'tpm.sub'");
        expect_invalid(URL_LINE "retry = 5;\n", 2, "retry must be a group: retry: { ... };");
}

static void test_wrong_type(void **state) {
        expect_invalid("est: { url = \"https://h\";\n timeout = \"60\"; };\n", 2,
                       "est.timeout must be an integer");
        expect_invalid("est: { url = \"https://h\";\n timeout = 6.0; };\n", 2,
                       "est.timeout must be an integer");
        expect_invalid("est: { url = \"https://h\";\n timeout = true; };\n", 2,
                       "est.timeout must be an integer");
        expect_invalid(URL_LINE "tpm: { tcti = 5; };\n", 2, "tpm.tcti must be a string");
        expect_invalid(URL_LINE "tpm: { srk_handle = \"0x81000001\"; };\n", 2,
                       "tpm.srk_handle must be an integer");
        expect_invalid(URL_LINE "operational: { key_algorithm = 1; };\n", 2,
                       "operational.key_algorithm must be a string");
        expect_invalid("est: { url = [\"https://h\"]; };\n", 1, "est.url must be a string");
}

static void test_out_of_range(void **state) {
        expect_invalid("est: { url = \"https://h\"; timeout = 0; };\n", 1,
                       "est.timeout must be between 1 and 600 (got 0)");
        expect_invalid("est: { url = \"https://h\"; connect_timeout = 601; };\n", 1,
                       "est.connect_timeout must be between 1 and 600 (got 601)");
        expect_invalid("est: { url = \"https://h\"; max_response_bytes = 4095; };\n", 1,
                       "est.max_response_bytes must be between 4096 and 16777216 (got 4095)");
        expect_invalid("est: { url = \"https://h\"; max_response_bytes = 16777217; };\n", 1,
                       "est.max_response_bytes must be between 4096 and 16777216 (got 16777217)");
        expect_invalid(URL_LINE "retry: { initial = 0; };\n", 2,
                       "retry.initial must be between 1 and 86400 (got 0)");
        expect_invalid(URL_LINE "retry: { max = 604801; };\n", 2,
                       "retry.max must be between 1 and 604800 (got 604801)");
        expect_invalid(URL_LINE "retry: {\n initial = 60;\n max = 59; };\n", 4,
                       "retry.max (59) must not be less than retry.initial (60)");
        expect_invalid(URL_LINE "retry: {\n initial = 7200; };\n", 3,
                       "retry.max (3600) must not be less than retry.initial (7200)");
        expect_invalid("est: { url = \"https://h\"; cacerts_refresh = 9; };\n", 1,
                       "est.cacerts_refresh must be between 10 and 2592000 (got 9)");
        expect_invalid("est: { url = \"https://h\";\n timeout = 5000000000L; };\n", 2,
                       "est.timeout must be between 1 and 600 (got 5000000000)");
}

static void test_handles(void **state) {
        expect_invalid(URL_LINE "tpm: { srk_handle = 0x80000001; };\n", 2,
                       "tpm.srk_handle must be a persistent handle in 0x81000000..0x81FFFFFF (got 0x80000001)");
        expect_invalid(
                URL_LINE "birth: { key_handle = 0x01C90000; };\n", 2,
                "birth.key_handle must be a persistent handle in 0x81000000..0x81FFFFFF (got 0x1C90000)");
        expect_invalid(
                URL_LINE "birth: { nv_index = 0x02000000; };\n", 2,
                "birth.nv_index must be an NV index in 0x01000000..0x01FFFFFF, or 0 for none (got 0x2000000)");
        expect_invalid(URL_LINE "birth: { nv_index = 0; };\n", 2,
                       "birth.nv_index is 0 and birth.cert_file is empty, so the birth certificate has no source; "
                       "set one of them");
        expect_invalid(URL_LINE "operational: { key_handle = 0x81020000; };\n", 2,
                       "operational.key_handle and birth.key_handle are both 0x81020000; "
                       "enrolling would overwrite the birth key");
        expect_invalid(URL_LINE "tpm: { srk_handle = 0x81020002; };\n", 2,
                       "tpm.srk_handle 0x81020002 is also used as a key handle");
}

static void test_literals_libconfig_would_mangle(void **state) {
        /* libconfig 1.5 silently keeps the low 32 bits of these */
        expect_invalid(URL_LINE "tpm: {\n srk_handle = 0x181000001; };\n", 3,
                       "integer does not fit in 32 bits");
        expect_invalid("est: { url = \"https://h\";\n timeout = 4294967356; };\n", 2,
                       "integer does not fit in 32 bits");
        expect_invalid("est: { url = \"https://h\";\n timeout = -1; };\n", 2,
                       "negative number; no setting in this file takes one");
        expect_invalid("est: { url = \"https://h\";\n timeout = 99999999999999999999L; };\n", 2,
                       "integer does not fit in 63 bits");
        expect_invalid(URL_LINE "@include \"/etc/passwd\"\n", 2,
                       "@include is not supported; keep the configuration in one file");

        /* ...but digits in names, strings and comments are not numbers */
        _cleanup_(config_freep) Config *c =
                load_ok("est: { url = \"https://h/x-99999999999\"; label = \"a-1\"; }; # -99999999999\n"
                        "/* 0x181000001\n  -5 */ operational: { subject_cn = \"n -5 0x181000001\"; };\n");
        assert_string_equal(c->est_url, "https://h/x-99999999999");
        assert_string_equal(c->subject_cn, "n -5 0x181000001");
}

static void test_bad_url(void **state) {
        static const struct {
                const char *url;
                const char *why;
        } cases[] = {
                { "http://est.example.net/.well-known/est", "must start with https://" },
                { "est.example.net", "must start with https://" },
                { "https:///.well-known/est", "must name a host after https://" },
                { "https://", "must name a host after https://" },
                { "https://:443/", "must name a host after https://" },
                { "https://user:pw@est.example.net/",
                  "must not contain user:password@ (use est.username and est.password_file)" },
                { "https://est.example.net/est?x=1", "must not contain a query (?) or a fragment (#)" },
                { "https://est.example.net/est#top", "must not contain a query (?) or a fragment (#)" },
                { "https://est.example.net:0/", "has a port outside 1..65535" },
                { "https://est.example.net:65536/", "has a port outside 1..65535" },
                { "https://est.example.net:/", "has an invalid port" },
                { "https://est.example.net:44x/", "has an invalid port" },
                { "https://est_example.net/", "has an invalid character in the host name" },
                { "https://[2001:db8::1/", "has an unterminated or empty [IPv6] host" },
                { "https://[]/", "has an unterminated or empty [IPv6] host" },
                { "https://[2001:db8::g]/", "has an invalid [IPv6] host" },
                { "https://[::1]x/", "has garbage after the [IPv6] host" },
                { "https://est.example.net/my est",
                  "has a character in its path that must be percent-encoded" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[512], msg[512];

                snprintf(text, sizeof(text), "est: {\n url = \"%s\"; };\n", cases[i].url);
                snprintf(msg, sizeof(msg), "est.url %s (got '%s')", cases[i].why, cases[i].url);
                expect_invalid(text, 2, msg);
        }
        expect_invalid("est: { url = \"\"; };\n", 1, "est.url must not be empty");
        expect_invalid("est: { url = \"https://h/a\\tb\"; };\n", 1, "est.url contains a control character");
        expect_invalid("est: { label = \"x\"; };\n", 0,
                       "est.url is required: the EST server's base URL, "
                       "e.g. url = \"https://est.example.net/.well-known/est\";");
        expect_invalid("", 0,
                       "est.url is required: the EST server's base URL, "
                       "e.g. url = \"https://est.example.net/.well-known/est\";");
}

static void test_bad_label(void **state) {
        const char *why = "must be one path segment of 1 to 64 characters from A-Z a-z 0-9 _ -";
        char msg[256];

        snprintf(msg, sizeof(msg), "est.label %s (got 'a/b')", why);
        expect_invalid("est: { url = \"https://h\";\n label = \"a/b\"; };\n", 2, msg);
        snprintf(msg, sizeof(msg), "est.label %s (got 'a.b')", why);
        expect_invalid("est: { url = \"https://h\";\n label = \"a.b\"; };\n", 2, msg);
        expect_invalid("est: { url = \"https://h\";\n label = "
                       "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; };\n",
                       2, "est.label is longer than 64 bytes");
}

static void test_bad_fingerprint(void **state) {
        static const char *const bad[] = {
                "sha256:abcd",
                "sha1:abcdef0123456789abcdef0123456789abcdef01",
                "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678g",
                "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678900",
                "sha256::abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                "sha256:a:bcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                "sha256:ab::cdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789:",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[512], msg[512];

                snprintf(text, sizeof(text),
                         "est: { url = \"https://h\";\n trust_anchors = \"\";\n"
                         " bootstrap_fingerprint = \"%s\"; };\n",
                         bad[i]);
                snprintf(msg, sizeof(msg),
                         "est.bootstrap_fingerprint must be \"sha256:\" followed by 64 hex digits "
                         "(colons allowed between bytes) (got '%s')",
                         bad[i]);
                expect_invalid(text, 3, msg);
        }
}

static void test_trust_and_auth(void **state) {
        expect_invalid("est: { url = \"https://h\";\n trust_anchors = \"\"; };\n", 2,
                       "neither est.trust_anchors nor est.bootstrap_fingerprint is set, "
                       "so the EST server could not be authenticated; set one of them");
        expect_invalid("est: { url = \"https://h\";\n username = \"gw\"; };\n", 2,
                       "est.username is set but est.password_file is not; set both or neither");
        expect_invalid("est: { url = \"https://h\";\n password_file = \"/etc/fleetid/pw\"; };\n", 2,
                       "est.password_file is set but est.username is not; set both or neither");
        expect_invalid("est: { url = \"https://h\";\n username = \"a:b\"; password_file = \"/pw\"; };\n", 2,
                       "est.username must not contain ':' (HTTP Basic, RFC 7617) (got 'a:b')");
        expect_invalid("est: { url = \"https://h\";\n trust_anchors = \"anchors.pem\"; };\n", 2,
                       "est.trust_anchors must be an absolute path (got 'anchors.pem')");
}

static void test_other_strings(void **state) {
        expect_invalid(URL_LINE "tpm: { tcti = \"\"; };\n", 2, "tpm.tcti must not be empty");
        expect_invalid(URL_LINE "tpm: { tcti = \"/dev/tpmrm0\"; };\n", 2,
                       "tpm.tcti must look like NAME[:CONFIG], e.g. device:/dev/tpmrm0 (got '/dev/tpmrm0')");
        expect_invalid(URL_LINE "paths: { state_dir = \"\"; };\n", 2, "paths.state_dir must not be empty");
        expect_invalid(URL_LINE "operational: { key_algorithm = \"ecc-p521\"; };\n", 2,
                       "operational.key_algorithm must be one of ecc-p256, ecc-p384, rsa-2048, rsa-3072 "
                       "(got 'ecc-p521')");
        expect_invalid("est: { url = \"https://h\";\n channel_binding = \"tls-unique\"; };\n", 2,
                       "est.channel_binding must be one of off, auto, required (got 'tls-unique')");
        expect_invalid("est: { url = \"https://h\"; channel_binding = true; };\n", 1,
                       "est.channel_binding must be a string");
        expect_invalid(URL_LINE "operational: { subject_serial = \"SN_1\"; };\n", 2,
                       "operational.subject_serial may only contain A-Z a-z 0-9 space and '()+,-./:=? "
                       "(X.520 PrintableString) (got 'SN_1')");
        expect_invalid(URL_LINE "operational: { subject_cn = "
                                "\"01234567890123456789012345678901234567890123456789012345678901234\"; };\n",
                       2, "operational.subject_cn is longer than 64 bytes");
        expect_invalid(URL_LINE "operational: { subject_cn = \"a\\nb\"; };\n", 2,
                       "operational.subject_cn contains a control character");
}

/* Every string value must be UTF-8: subject_cn goes into a UTF8String in the
 * CSR, others into URLs, HTTP headers and D-Bus properties. */
static void test_utf8(void **state) {
        static const char *const bad[] = {
                "\\xff\\xfe",       /* not UTF-8 at all (Latin-1 bytes) */
                "Ger\xe4t",         /* Latin-1 written raw */
                "\xc0\xaf",         /* overlong '/' */
                "\xed\xa0\x80",     /* a UTF-16 surrogate */
                "\xf4\x90\x80\x80", /* above U+10FFFF */
                "ab\xe2\x82",       /* cut short */
        };
        char text[256];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(text, sizeof(text), URL_LINE "operational: {\n subject_cn = \"%s\"; };\n", bad[i]);
                expect_invalid(text, 3,
                               "operational.subject_cn is not valid UTF-8; the file must be saved as UTF-8");
        }
        expect_invalid("est: { url = \"https://h\";\n username = \"j\xf6rg\"; password_file = \"/p\"; };\n",
                       2, "est.username is not valid UTF-8; the file must be saved as UTF-8");
        expect_invalid(URL_LINE "paths: { state_dir = \"/var/lib/\xe9t\xe9\"; };\n", 2,
                       "paths.state_dir is not valid UTF-8; the file must be saved as UTF-8");

        _cleanup_(config_freep) Config *c = load_ok(
                URL_LINE "operational: { subject_cn = \"Ger\xc3\xa4t \xe2\x82\xac \xf0\x9f\x94\x91\"; };\n");
        assert_string_equal(c->subject_cn, "Ger\xc3\xa4t \xe2\x82\xac \xf0\x9f\x94\x91");
}

/* libconfig drops the escape \x00 from a string ("a\x00b" reads "ab"). */
static void test_nul_escape(void **state) {
        static const char *const msg =
                "a string contains the escape \\x00 (a NUL byte), which no setting can hold";

        expect_invalid("# url\nest: {\n url = \"https://localhost\\x00evil/\"; };\n", 3, msg);
        expect_invalid(URL_LINE "operational: { subject_cn = \"a\\X00b\"; };\n", 2, msg);
        /* also in a multi-line string, with the line of the escape */
        expect_invalid(URL_LINE "operational: { subject_cn = \"a\n\n b\\x00\"; };\n", 4, msg);

        /* An escaped backslash followed by "x00", and \x00 in a comment, are not the escape. */
        _cleanup_(config_freep) Config *c =
                load_ok(URL_LINE "# \"\\x00\"\noperational: { subject_cn = \"a\\\\x00\"; };\n");
        assert_string_equal(c->subject_cn, "a\\x00");
}

/* A UTF-8 byte order mark at the start is skipped; line numbers stay right. */
static void test_bom(void **state) {
        _cleanup_(config_freep) Config *c = load_ok("\xef\xbb\xbf" URL_LINE);

        assert_string_equal(c->est_url, "https://est.example.net/.well-known/est");
        expect_invalid("\xef\xbb\xbf" URL_LINE "est: { timeout = 0; };\n", 2, "duplicate setting name");
        expect_invalid("\xef\xbb\xbf"
                       "est: {\n timeout = 0; };\n",
                       2, "est.timeout must be between 1 and 600 (got 0)");
        /* only at the start */
        expect_invalid(URL_LINE "\xef\xbb\xbf", 2, "syntax error");
}

static void test_not_regular_file(void **state) {
        char fifo[] = "/tmp/test-config-fifo-XXXXXX";
        char path[sizeof(fifo) + 8];
        Config *c = NULL;
        Diag d = {};

        assert_int_equal(config_load("/dev/null", &c, &d), -EBADFD);
        assert_string_equal(d.text, "/dev/null: cannot read: not a regular file (a FIFO, device or socket)");

        /* a FIFO without a writer: refused at once rather than waited on */
        assert_non_null(mkdtemp(fifo));
        snprintf(path, sizeof(path), "%s/conf", fifo);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(config_load(path, &c, &d), -EBADFD);
        assert_non_null(strstr(d.text, ": cannot read: not a regular file"));
        assert_null(c);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(fifo), 0);

        assert_int_equal(config_load("/tmp", &c, &d), -EISDIR);
        assert_string_equal(d.text, "/tmp: cannot read: is a directory, not a regular file");
}

static void test_syntax_error(void **state) {
        expect_invalid("est: {\n  url = \"https://h\"\n  timeout = ;\n};\n", 3, "syntax error");
        expect_invalid("est: { url = \"https://h\"; };\nest: { timeout = 5; };\n", 2,
                       "duplicate setting name");
}

static void test_missing_file(void **state) {
        Config *c = NULL;
        Diag d = {};

        assert_int_equal(config_load("/nonexistent/fleetid.conf", &c, &d), -ENOENT);
        assert_null(c);
        assert_string_equal(d.text, "/nonexistent/fleetid.conf: no such file");
}

static void test_nul_byte(void **state) {
        _cleanup_(unlink_and_freep) char *path = strdup("/tmp/test-config-XXXXXX");
        static const char text[] = URL_LINE "\0tpm: {};\n";
        Config *c = NULL;
        Diag d = {};
        char expected[DIAG_MAX];
        int fd;

        assert_non_null(path);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t) sizeof(text) - 1);
        assert_int_equal(close(fd), 0);
        assert_int_equal(config_load(path, &c, &d), -EINVAL);
        assert_null(c);
        snprintf(expected, sizeof(expected), "%s: contains a NUL byte; not a text file", path);
        assert_string_equal(d.text, expected);
}

static void test_key_algorithm_strings(void **state) {
        for (KeyAlgorithm a = 0; a < _KEY_ALG_MAX; a++)
                assert_int_equal(key_algorithm_from_string(key_algorithm_to_string(a)), a);
        assert_string_equal(key_algorithm_to_string(KEY_ALG_RSA_2048), "rsa-2048");
        assert_null(key_algorithm_to_string(_KEY_ALG_MAX));
        assert_null(key_algorithm_to_string(_KEY_ALG_INVALID));
        assert_int_equal(key_algorithm_from_string("ECC-P256"), _KEY_ALG_INVALID);
        assert_int_equal(key_algorithm_from_string(""), _KEY_ALG_INVALID);
        assert_int_equal(key_algorithm_from_string(NULL), _KEY_ALG_INVALID);
        assert_null(config_free(NULL));
}

static void test_allowed_key_algorithms(void **state) {
        _cleanup_(config_freep) Config *c =
                load_ok(URL_LINE "operational: { key_algorithm = \"rsa-3072\";\n"
                                 "  allowed_key_algorithms = [ \"rsa-3072\", \"ecc-p384\" ]; };\n");

        assert_int_equal(c->op_allowed_key_algorithms,
                         KEY_ALG_BIT(KEY_ALG_RSA_3072) | KEY_ALG_BIT(KEY_ALG_ECC_P384));
        expect_invalid(URL_LINE "operational: { allowed_key_algorithms = [ \"ecc-p256\", \"ed25519\" ]; };\n",
                       2,
                       "operational.allowed_key_algorithms must be one of ecc-p256, ecc-p384, rsa-2048, "
                       "rsa-3072 (got 'ed25519')");
        expect_invalid(URL_LINE "operational: { allowed_key_algorithms = [ ]; };\n", 2,
                       "operational.allowed_key_algorithms must be a non-empty list of strings, e.g. [ "
                       "\"ecc-p256\" ]");
        expect_invalid(URL_LINE "operational: { allowed_key_algorithms = \"ecc-p256\"; };\n", 2,
                       "operational.allowed_key_algorithms must be a non-empty list of strings, e.g. [ "
                       "\"ecc-p256\" ]");
        expect_invalid(URL_LINE "operational: { allowed_key_algorithms = [ \"ecc-p384\" ]; };\n", 2,
                       "operational.key_algorithm \"ecc-p256\" is not in operational.allowed_key_algorithms; "
                       "the default must be one of the allowed");
}

static void test_broker_keys(void **state) {
        _cleanup_(config_freep) Config *def = NULL;
        _cleanup_(config_freep) Config *c = load_ok(
                URL_LINE "broker: { sensor_manufacturer_ca = \"/etc/fleetid/sensor-mfg.pem\";\n"
                         "  sensor_key_algorithms = [ \"rsa-2048\" ];\n"
                         "  subject_organization = \"Acme Sensors\"; subject_organizational_unit = \"hall-b\";\n"
                         "  allowed_extensions = [ \"subjectAltName\", \"basicConstraints\" ];\n"
                         "  max_sensors = 100000; max_challenges = 1; challenge_lifetime = 10; };\n");

        assert_string_equal(c->broker_sensor_manufacturer_ca, "/etc/fleetid/sensor-mfg.pem");
        assert_int_equal(c->broker_sensor_key_algorithms, KEY_ALG_BIT(KEY_ALG_RSA_2048));
        assert_string_equal(c->broker_subject_organization, "Acme Sensors");
        assert_string_equal(c->broker_subject_organizational_unit, "hall-b");
        assert_int_equal(c->broker_allowed_extensions, SENSOR_EXT_BIT(SENSOR_EXT_SUBJECT_ALT_NAME) |
                                                               SENSOR_EXT_BIT(SENSOR_EXT_BASIC_CONSTRAINTS));
        assert_int_equal(c->broker_max_sensors, 100000);
        assert_int_equal(c->broker_max_challenges, 1);
        assert_int_equal(c->broker_challenge_lifetime_sec, 10);

        assert_int_equal(config_new_defaults(&def), 0);
        assert_null(def->broker_sensor_manufacturer_ca);
        assert_int_equal(def->broker_sensor_key_algorithms,
                         KEY_ALG_BIT(KEY_ALG_ECC_P256) | KEY_ALG_BIT(KEY_ALG_ECC_P384));
        assert_int_equal(def->broker_allowed_extensions,
                         SENSOR_EXT_BIT(SENSOR_EXT_KEY_USAGE) | SENSOR_EXT_BIT(SENSOR_EXT_EXT_KEY_USAGE));
        assert_int_equal(def->broker_max_sensors, 1000);
        assert_int_equal(def->broker_max_challenges, 256);
        assert_int_equal(def->broker_challenge_lifetime_sec, 300);
        assert_string_equal(sensor_extension_to_string(SENSOR_EXT_EXT_KEY_USAGE), "extendedKeyUsage");
        assert_null(sensor_extension_to_string(_SENSOR_EXT_MAX));

        expect_invalid(URL_LINE "broker: { sensor_manufacturer_ca = \"sensor-mfg.pem\"; };\n", 2,
                       "broker.sensor_manufacturer_ca must be an absolute path (got 'sensor-mfg.pem')");
        expect_invalid(URL_LINE "broker: { allowed_extensions = [ \"nameConstraints\" ]; };\n", 2,
                       "broker.allowed_extensions must be one of keyUsage, extendedKeyUsage, basicConstraints, "
                       "subjectAltName (got 'nameConstraints')");
        expect_invalid(URL_LINE "broker: { challenge_lifetime = 5; };\n", 2,
                       "broker.challenge_lifetime must be between 10 and 3600 (got 5)");
        expect_invalid(URL_LINE "broker: { max_sensors = 0; };\n", 2,
                       "broker.max_sensors must be between 1 and 100000 (got 0)");
        expect_invalid(URL_LINE "broker: { sensor_id_charset = \"any\"; };\n", 2,
                       "unknown key 'broker.sensor_id_charset'");
}

/* The installed etc/fleetid.conf: loads, and says what the defaults say. */
static void test_shipped_file(void **state) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        const char *root = getenv("FLEETID_SOURCE_ROOT"), *sep = "/";
        size_t root_len, size;
        Diag d = {};
        int r;

        if (root)
                root_len = strlen(root);
        else {
                /* __FILE__ is <root>/tests/unit/test-config.c, <root> relative to the build dir */
                const char *suffix = "tests/unit/test-config.c";
                size_t n = strlen(__FILE__), m = strlen(suffix);

                assert_true(n >= m && strcmp(__FILE__ + n - m, suffix) == 0);
                root = __FILE__;
                root_len = n - m;
                sep = "";
        }
        size = root_len + strlen(sep) + strlen("etc/fleetid.conf") + 1;
        path = malloc(size);
        assert_non_null(path);
        snprintf(path, size, "%.*s%setc/fleetid.conf", (int) root_len, root, sep);

        r = config_load(path, &c, &d);
        if (r < 0)
                fail_msg("%s: %d %s", path, r, d.text);
        assert_string_equal(c->est_url, "https://est.example.net/.well-known/est");
        assert_is_defaults(c);
}

/* A main file and drop-ins in a scratch directory: DIR/fleetid.conf and DIR/fleetid.conf.d/NAME. */
static void write_at(const char *dir, const char *name, const char *text) {
        assert_true(test_write_at(dir, name, text));
}

#define MAIN_FILE                                                                                          \
        "est: { url = \"https://old.example/est\"; trust_anchors = \"/etc/old.pem\"; username = \"old\"; " \
        "password_file = \"/etc/old.secret\"; timeout = 33; };\n"

static void test_dropins(void **state) {
        _cleanup_(config_freep) Config *c = NULL, *o = NULL, *none = NULL;
        char dir[64], main_path[128], dropins[128], expected[512];
        Diag d = {};

        assert_non_null(test_tmpdir_new(dir, sizeof(dir), "config-dropin"));
        snprintf(main_path, sizeof(main_path), "%s/fleetid.conf", dir);
        snprintf(dropins, sizeof(dropins), "%s/fleetid.conf.d", dir);
        write_at(dir, "fleetid.conf", MAIN_FILE);

        /* No drop-in directory: the main file's owner; the default directory is <path>.d. */
        assert_int_equal(config_load(main_path, &c, &d), 0);
        assert_string_equal(c->dropin_dir, dropins);
        assert_int_equal(c->n_dropins, 0);
        assert_string_equal(c->est_url, "https://old.example/est");
        c = config_free(c);

        /* Drop-ins in lexical order, a later one winning; the owner as a whole:
         * nothing of the main file's anchor or credentials is inherited. */
        assert_int_equal(mkdir(dropins, 0755), 0);
        write_at(dropins, "20-owner.conf", "est: { url = \"https://new.example/est\"; label = \"b\"; };\n");
        write_at(dropins, "10-owner.conf",
                 "est: { url = \"https://first.example/est\"; bootstrap_fingerprint = "
                 "\"sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"; };\n");
        write_at(dropins, "README", "not a drop-in");
        write_at(dropins, ".hidden.conf", "garbage");
        assert_int_equal(config_load(main_path, &c, &d), 0);
        assert_int_equal(c->n_dropins, 2);
        snprintf(expected, sizeof(expected), "%s/10-owner.conf", dropins);
        assert_string_equal(c->dropins[0].path, expected);
        assert_int_equal(strncmp(c->dropins[0].hash, "sha256:", 7), 0);
        assert_int_equal(strlen(c->dropins[0].hash), 71);
        assert_string_equal(c->est_url, "https://new.example/est");
        assert_string_equal(c->est_label, "b");
        assert_non_null(c->est_bootstrap_fingerprint);
        assert_null(c->est_trust_anchors);
        assert_null(c->est_username);
        assert_null(c->est_password_file);
        assert_int_equal(c->est_timeout_sec, 33); /* not an owner key: the main file's */

        /* config_load_with_owner(): that file alone, or none at all. */
        write_at(dir, "candidate.conf",
                 "est: { url = \"https://cand.example/est\"; trust_anchors = \"/etc/c.pem\"; };\n");
        snprintf(expected, sizeof(expected), "%s/candidate.conf", dir);
        assert_int_equal(config_load_with_owner(main_path, expected, &o, &d), 0);
        assert_int_equal(o->n_dropins, 1);
        assert_string_equal(o->est_url, "https://cand.example/est");
        assert_null(o->est_username);
        assert_int_equal(config_load_with_owner(main_path, NULL, &none, &d), 0);
        assert_int_equal(none->n_dropins, 0);
        assert_string_equal(none->est_username, "old");

        /* config_take_owner(): the owner keys and the drop-ins, nothing else. */
        config_take_owner(none, o);
        assert_string_equal(none->est_url, "https://cand.example/est");
        assert_null(none->est_username);
        assert_int_equal(none->n_dropins, 1);
        assert_int_equal(none->est_timeout_sec, 33);
        assert_string_equal(o->est_username, "old");

        /* A key that is not an owner's, in a drop-in: FILE:LINE. */
        write_at(dropins, "30-greedy.conf",
                 "est: { url = \"https://x.example/est\"; };\nbirth: { key_handle = 0x81020005; };\n");
        c = config_free(c);
        assert_int_equal(config_load(main_path, &c, &d), -EINVAL);
        snprintf(expected, sizeof(expected),
                 "%s/30-greedy.conf:2: birth.key_handle may not be set in a drop-in file: a drop-in holds an "
                 "owner's keys only (est.url, est.label, est.trust_anchors, est.bootstrap_fingerprint, "
                 "est.username, est.password_file); set it in the main configuration file",
                 dropins);
        assert_string_equal(d.text, expected);
        write_at(dropins, "30-greedy.conf", "est: { timeout = 5; };\n");
        assert_int_equal(config_load(main_path, &c, &d), -EINVAL);
        assert_non_null(strstr(d.text, "30-greedy.conf:1: est.timeout may not be set in a drop-in file"));

        /* A drop-in's syntax error and value error name it too. */
        write_at(dropins, "30-greedy.conf", "est: {\n url = ;\n};\n");
        assert_int_equal(config_load(main_path, &c, &d), -EINVAL);
        assert_non_null(strstr(d.text, "30-greedy.conf:2: "));
        write_at(dropins, "30-greedy.conf", "est: { url = \"http://plain.example\"; };\n");
        assert_int_equal(config_load(main_path, &c, &d), -EINVAL);
        assert_non_null(strstr(d.text, "30-greedy.conf:1: est.url"));

        /* Drop-ins without an anchor or pin: the owner is incomplete, named in the last drop-in. */
        snprintf(expected, sizeof(expected), "%s/30-greedy.conf", dropins);
        assert_int_equal(unlink(expected), 0);
        snprintf(expected, sizeof(expected), "%s/10-owner.conf", dropins);
        assert_int_equal(unlink(expected), 0);
        assert_int_equal(config_load(main_path, &c, &d), -EINVAL);
        snprintf(expected, sizeof(expected),
                 "%s/20-owner.conf: neither est.trust_anchors nor est.bootstrap_fingerprint is set, so the EST "
                 "server could not be authenticated; set one of them",
                 dropins);
        assert_string_equal(d.text, expected);

        /* paths.dropin_dir = "": no drop-ins at all. */
        write_at(dir, "fleetid.conf", MAIN_FILE "paths: { dropin_dir = \"\"; };\n");
        assert_int_equal(config_load(main_path, &c, &d), 0);
        assert_null(c->dropin_dir);
        assert_int_equal(c->n_dropins, 0);
        assert_string_equal(c->est_url, "https://old.example/est");

        assert_int_equal(test_tmpdir_remove(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_minimal_file_takes_defaults),
                cmocka_unit_test(test_every_key),
                cmocka_unit_test(test_renew_and_monitoring_rules),
                cmocka_unit_test(test_clock_and_rate_keys),
                cmocka_unit_test(test_empty_strings_unset),
                cmocka_unit_test(test_int64_suffix_and_url_forms),
                cmocka_unit_test(test_unknown),
                cmocka_unit_test(test_wrong_type),
                cmocka_unit_test(test_out_of_range),
                cmocka_unit_test(test_handles),
                cmocka_unit_test(test_literals_libconfig_would_mangle),
                cmocka_unit_test(test_bad_url),
                cmocka_unit_test(test_bad_label),
                cmocka_unit_test(test_bad_fingerprint),
                cmocka_unit_test(test_trust_and_auth),
                cmocka_unit_test(test_other_strings),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_nul_escape),
                cmocka_unit_test(test_bom),
                cmocka_unit_test(test_not_regular_file),
                cmocka_unit_test(test_syntax_error),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_key_algorithm_strings),
                cmocka_unit_test(test_allowed_key_algorithms),
                cmocka_unit_test(test_broker_keys),
                cmocka_unit_test(test_shipped_file),
                cmocka_unit_test(test_dropins),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
