/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.c: loads fleetid.conf with libconfig and validates every value.
 *
 * The file is read with a size bound, scanned once for what libconfig 1.5 would
 * accept silently (@include, integers that wrap around 32 bits, negative numbers),
 * parsed by libconfig, and then checked key by key against the table below.
 */
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <strings.h>

#include "config/conf-file.h"
#include "config/config.h"
#include "config/config-keys.h"
#include "crypto/certcheck.h"
#include "util/fileio.h"

#define CONFIG_FILE_MAX (1024u * 1024u)
#define PATH_MAX_BYTES 4096u
#define VALUE_ECHO_MAX 200

static const char *const key_algorithm_names[_KEY_ALG_MAX] = {
        [KEY_ALG_ECC_P256] = "ecc-p256",
        [KEY_ALG_ECC_P384] = "ecc-p384",
        [KEY_ALG_RSA_2048] = "rsa-2048",
        [KEY_ALG_RSA_3072] = "rsa-3072",
};

const char *key_algorithm_to_string(KeyAlgorithm a) {
        if (a < 0 || a >= _KEY_ALG_MAX)
                return NULL;
        return key_algorithm_names[a];
}

KeyAlgorithm key_algorithm_from_string(const char *s) {
        if (!s)
                return _KEY_ALG_INVALID;
        for (KeyAlgorithm a = 0; a < _KEY_ALG_MAX; a++)
                if (strcmp(s, key_algorithm_names[a]) == 0)
                        return a;
        return _KEY_ALG_INVALID;
}

static const char *const channel_binding_names[_CHANNEL_BINDING_MAX] = {
        [CHANNEL_BINDING_OFF] = "off",
        [CHANNEL_BINDING_AUTO] = "auto",
        [CHANNEL_BINDING_REQUIRED] = "required",
};

static const char *const sensor_extension_names[_SENSOR_EXT_MAX] = {
        [SENSOR_EXT_KEY_USAGE] = "keyUsage",
        [SENSOR_EXT_EXT_KEY_USAGE] = "extendedKeyUsage",
        [SENSOR_EXT_BASIC_CONSTRAINTS] = "basicConstraints",
        [SENSOR_EXT_SUBJECT_ALT_NAME] = "subjectAltName",
};

const char *sensor_extension_to_string(SensorExtension e) {
        if (e < 0 || e >= _SENSOR_EXT_MAX)
                return NULL;
        return sensor_extension_names[e];
}

const char *channel_binding_mode_to_string(ChannelBindingMode m) {
        if (m < 0 || m >= _CHANNEL_BINDING_MAX)
                return NULL;
        return channel_binding_names[m];
}

/* ---- string validators: 0 and a malloc'd (possibly normalized) value, or
 * -EINVAL and the reason, phrased to follow the key's name. ---- */


static int dup_value(const char *v, char **ret) {
        char *s = strdup(v);

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int check_text(const char *v, char **ret, const char **ret_why) {
        return dup_value(v, ret);
}

/* The same directory, but for trailing slashes. */
static bool same_dir(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);

        while (na > 1 && a[na - 1] == '/')
                na--;
        while (nb > 1 && b[nb - 1] == '/')
                nb--;
        return na == nb && memcmp(a, b, na) == 0;
}

static int check_path(const char *v, char **ret, const char **ret_why) {
        if (v[0] != '/') {
                *ret_why = "must be an absolute path";
                return -EINVAL;
        }
        return dup_value(v, ret);
}

static int check_tcti(const char *v, char **ret, const char **ret_why) {
        size_t n = strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-");

        if (n == 0 || (v[n] != '\0' && v[n] != ':')) {
                *ret_why = "must look like NAME[:CONFIG], e.g. device:/dev/tpmrm0";
                return -EINVAL;
        }
        return dup_value(v, ret);
}

/* X.520 serialNumber is a PrintableString. */
static int check_printable(const char *v, char **ret, const char **ret_why) {
        if (v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")] !=
            '\0') {
                *ret_why = "may only contain A-Z a-z 0-9 space and '()+,-./:=? (X.520 PrintableString)";
                return -EINVAL;
        }
        return dup_value(v, ret);
}

static int check_label(const char *v, char **ret, const char **ret_why) {
        size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

        if (v[n] != '\0' || n > 64) {
                *ret_why = "must be one path segment of 1 to 64 characters from A-Z a-z 0-9 _ -";
                return -EINVAL;
        }
        return dup_value(v, ret);
}

static int check_username(const char *v, char **ret, const char **ret_why) {
        if (strchr(v, ':')) {
                *ret_why = "must not contain ':' (HTTP Basic, RFC 7617)";
                return -EINVAL;
        }
        return dup_value(v, ret);
}

static int check_fingerprint(const char *v, char **ret, const char **ret_why) {
        uint8_t digest[CERT_FINGERPRINT_SIZE];
        char *s;

        if (fingerprint_parse(v, digest) < 0) {
                *ret_why = "must be \"sha256:\" followed by 64 hex digits (colons allowed between bytes)";
                return -EINVAL;
        }
        s = malloc(7 + 2 * sizeof(digest) + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, "sha256:", 7);
        for (size_t i = 0; i < sizeof(digest); i++)
                snprintf(s + 7 + 2 * i, 3, "%02x", digest[i]);
        *ret = s;
        return 0;
}

/* Checks an authority "host[:port]" (reg-name, IPv4 or [IPv6]) of length n. */
static const char *check_authority(const char *a, size_t n) {
        const char *host_end, *port;

        if (memchr(a, '@', n))
                return "must not contain user:password@ (use est.username and est.password_file)";
        if (n > 0 && a[0] == '[') {
                const char *close = memchr(a, ']', n);

                if (!close || close == a + 1)
                        return "has an unterminated or empty [IPv6] host";
                for (const char *p = a + 1; p < close; p++)
                        if (!isxdigit((unsigned char) *p) && *p != ':' && *p != '.')
                                return "has an invalid [IPv6] host";
                host_end = close + 1;
                if (host_end != a + n && *host_end != ':')
                        return "has garbage after the [IPv6] host";
        } else {
                host_end = memchr(a, ':', n) ?: a + n;
                if (host_end == a)
                        return "must name a host after https://";
                for (const char *p = a; p < host_end; p++)
                        if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-')
                                return "has an invalid character in the host name";
        }
        if (host_end == a + n)
                return NULL;
        port = host_end + 1;
        if (port == a + n || (size_t) (a + n - port) > 5)
                return "has an invalid port";
        {
                unsigned long v = 0;

                for (const char *p = port; p < a + n; p++) {
                        if (!isdigit((unsigned char) *p))
                                return "has an invalid port";
                        v = v * 10 + (unsigned long) (*p - '0');
                }
                if (v < 1 || v > 65535)
                        return "has a port outside 1..65535";
        }
        return NULL;
}

static int check_url(const char *v, char **ret, const char **ret_why) {
        const char *authority, *path, *why;
        size_t len;
        char *s;

        if (strncasecmp(v, "https://", 8) != 0) {
                *ret_why = "must start with https://";
                return -EINVAL;
        }
        if (strpbrk(v, "?#")) {
                *ret_why = "must not contain a query (?) or a fragment (#)";
                return -EINVAL;
        }
        authority = v + 8;
        path = authority + strcspn(authority, "/");
        why = check_authority(authority, (size_t) (path - authority));
        if (why) {
                *ret_why = why;
                return -EINVAL;
        }
        if (path[strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                              "-._~!$&'()*+,;=:@/%")] != '\0') {
                *ret_why = "has a character in its path that must be percent-encoded";
                return -EINVAL;
        }

        s = strdup(v);
        if (!s)
                return -ENOMEM;
        memcpy(s, "https://", 8);
        len = strlen(s);
        while (len > 8 && s[len - 1] == '/')
                s[--len] = '\0';
        *ret = s;
        return 0;
}

/* ---- the table of keys ---- */


enum {
        K_TPM_TCTI,
        K_TPM_SRK,
        K_BIRTH_KEY,
        K_BIRTH_NV,
        K_BIRTH_CERT,
        K_OP_KEY,
        K_OP_ALG,
        K_OP_CN,
        K_OP_SERIAL,
        K_EST_URL,
        K_EST_LABEL,
        K_EST_ANCHORS,
        K_EST_FPR,
        K_EST_USER,
        K_EST_PASSWORD,
        K_EST_TIMEOUT,
        K_EST_CONNECT,
        K_EST_MAXRESP,
        K_EST_BINDING,
        K_EST_CACERTS_REFRESH,
        K_PATHS_STATE,
        K_PATHS_RUNTIME,
        K_RETRY_INITIAL,
        K_RETRY_MAX,
        K_OP_SPARE_KEY,
        K_RENEW_SHARE,
        K_RENEW_JITTER,
        K_RENEW_RETRY_MAX,
        K_RENEW_NEW_KEY,
        K_RENEW_FALLBACK,
        K_MON_METRICS,
        K_MON_HOOK,
        K_MON_HOOK_TIMEOUT,
        K_MON_WARNING,
        K_MON_ERROR,
        K_MON_CRITICAL,
        K_EST_MAX_CLOCK_SKEW,
        K_RENEW_MIN_INTERVAL,
        K_RENEW_MIN_LIFETIME,
        K_OP_ALLOWED_ALGS,
        K_ACCESS_FILE,
        K_ACCESS_SIGN_RATE,
        K_ACCESS_SIGN_BURST,
        K_ACCESS_SENSOR_RATE,
        K_ACCESS_SENSOR_BURST,
        K_ACCESS_TRACKED_UIDS,
        K_ACCESS_SIGNER_IDLE,
        K_BROKER_MFG_CA,
        K_BROKER_KEY_ALGS,
        K_BROKER_SUBJECT_O,
        K_BROKER_SUBJECT_OU,
        K_BROKER_EXTENSIONS,
        K_BROKER_MAX_SENSORS,
        K_BROKER_MAX_CHALLENGES,
        K_BROKER_CHALLENGE_LIFETIME,
        K_BROKER_EST_LABEL,
        K_BROKER_MAX_PENDING,
        K_BROKER_RETRY_LIMIT,
        K_BROKER_REQUEST_TIMEOUT,
        K_PATHS_DROPIN,
        _K_MAX,
};

#define STR(g, n, field, len, ne, fn) \
        { g, n, KIND_STRING, offsetof(Config, field), 0, len, ne, fn, NULL }
#define NUM(g, n, kind, field, lo, hi) \
        { g, n, kind, offsetof(Config, field), lo, hi, false, NULL, NULL }
#define ENUM(g, n, field, table) \
        { g, n, KIND_ENUM, offsetof(Config, field), 0, ELEMENTSOF(table), false, NULL, table }
#define ENUM_SET(g, n, field, table) \
        { g, n, KIND_ENUM_SET, offsetof(Config, field), 0, ELEMENTSOF(table), false, NULL, table }

const KeySpec config_key_specs[_K_MAX] = {
        [K_TPM_TCTI] = STR("tpm", "tcti", tpm_tcti, 1024, true, check_tcti),
        [K_TPM_SRK] = NUM("tpm", "srk_handle", KIND_PERSISTENT, srk_handle, 0, 0),
        [K_BIRTH_KEY] = NUM("birth", "key_handle", KIND_PERSISTENT, birth_key_handle, 0, 0),
        [K_BIRTH_NV] = NUM("birth", "nv_index", KIND_NV_INDEX, birth_nv_index, 0, 0),
        [K_BIRTH_CERT] = STR("birth", "cert_file", birth_cert_file, PATH_MAX_BYTES, false, check_path),
        [K_OP_KEY] = NUM("operational", "key_handle", KIND_PERSISTENT, op_key_handle, 0, 0),
        [K_OP_ALG] = ENUM("operational", "key_algorithm", op_key_algorithm, key_algorithm_names),
        [K_OP_CN] = STR("operational", "subject_cn", subject_cn, 64, false, check_text),
        [K_OP_SERIAL] = STR("operational", "subject_serial", subject_serial, 64, false, check_printable),
        [K_EST_URL] = STR("est", "url", est_url, 2048, true, check_url),
        [K_EST_LABEL] = STR("est", "label", est_label, 64, false, check_label),
        [K_EST_ANCHORS] = STR("est", "trust_anchors", est_trust_anchors, PATH_MAX_BYTES, false, check_path),
        [K_EST_FPR] =
                STR("est", "bootstrap_fingerprint", est_bootstrap_fingerprint, 200, false, check_fingerprint),
        [K_EST_USER] = STR("est", "username", est_username, 255, false, check_username),
        [K_EST_PASSWORD] = STR("est", "password_file", est_password_file, PATH_MAX_BYTES, false, check_path),
        [K_EST_TIMEOUT] = NUM("est", "timeout", KIND_UINT, est_timeout_sec, 1, 600),
        [K_EST_CONNECT] = NUM("est", "connect_timeout", KIND_UINT, est_connect_timeout_sec, 1, 600),
        [K_EST_MAXRESP] = NUM("est", "max_response_bytes", KIND_UINT, est_max_response_bytes, 4096, 16777216),
        [K_EST_BINDING] = ENUM("est", "channel_binding", est_channel_binding, channel_binding_names),
        [K_EST_CACERTS_REFRESH] =
                NUM("est", "cacerts_refresh", KIND_UINT, est_cacerts_refresh_sec, 10, 2592000),
        [K_PATHS_STATE] = STR("paths", "state_dir", state_dir, PATH_MAX_BYTES, true, check_path),
        [K_PATHS_RUNTIME] = STR("paths", "runtime_dir", runtime_dir, PATH_MAX_BYTES, false, check_path),
        [K_RETRY_INITIAL] = NUM("retry", "initial", KIND_UINT, retry_initial_sec, 1, 86400),
        [K_RETRY_MAX] = NUM("retry", "max", KIND_UINT, retry_max_sec, 1, 604800),
        [K_OP_SPARE_KEY] = NUM("operational", "spare_key_handle", KIND_PERSISTENT, op_spare_key_handle, 0, 0),
        [K_RENEW_SHARE] = NUM("renew", "share_percent", KIND_UINT, renew_share_percent, 10, 95),
        [K_RENEW_JITTER] = NUM("renew", "jitter_percent", KIND_UINT, renew_jitter_percent, 0, 20),
        [K_RENEW_RETRY_MAX] = NUM("renew", "retry_max", KIND_UINT, renew_retry_max_sec, 60, 604800),
        [K_RENEW_NEW_KEY] = NUM("renew", "new_key", KIND_BOOL, renew_new_key, 0, 0),
        [K_RENEW_FALLBACK] = NUM("renew", "fallback_to_birth", KIND_BOOL, renew_fallback_to_birth, 0, 0),
        [K_MON_METRICS] = STR("monitoring", "metrics_file", metrics_file, PATH_MAX_BYTES, false, check_path),
        [K_MON_HOOK] = STR("monitoring", "hook", hook, PATH_MAX_BYTES, false, check_path),
        [K_MON_HOOK_TIMEOUT] = NUM("monitoring", "hook_timeout", KIND_UINT, hook_timeout_sec, 1, 3600),
        [K_MON_WARNING] = NUM("monitoring", "warning_percent", KIND_UINT, warning_percent, 1, 90),
        [K_MON_ERROR] = NUM("monitoring", "error_percent", KIND_UINT, error_percent, 1, 90),
        [K_MON_CRITICAL] = NUM("monitoring", "critical_percent", KIND_UINT, critical_percent, 1, 90),
        [K_EST_MAX_CLOCK_SKEW] = NUM("est", "max_clock_skew", KIND_UINT, est_max_clock_skew_sec, 0, 3600),
        [K_RENEW_MIN_INTERVAL] = NUM("renew", "min_interval", KIND_UINT, renew_min_interval_sec, 0, 86400),
        [K_RENEW_MIN_LIFETIME] = NUM("renew", "min_lifetime", KIND_UINT, renew_min_lifetime_sec, 0, 31536000),
        [K_OP_ALLOWED_ALGS] = ENUM_SET("operational", "allowed_key_algorithms", op_allowed_key_algorithms,
                                       key_algorithm_names),
        [K_ACCESS_FILE] = STR("access", "file", access_file, PATH_MAX_BYTES, true, check_path),
        [K_ACCESS_SIGN_RATE] = NUM("access", "sign_per_minute", KIND_UINT, access_sign_per_minute, 1, 60000),
        [K_ACCESS_SIGN_BURST] = NUM("access", "sign_burst", KIND_UINT, access_sign_burst, 1, 10000),
        [K_ACCESS_SENSOR_RATE] =
                NUM("access", "sensor_per_minute", KIND_UINT, access_sensor_per_minute, 1, 60000),
        [K_ACCESS_SENSOR_BURST] = NUM("access", "sensor_burst", KIND_UINT, access_sensor_burst, 1, 10000),
        [K_ACCESS_TRACKED_UIDS] = NUM("access", "tracked_uids", KIND_UINT, access_tracked_uids, 16, 4096),
        [K_ACCESS_SIGNER_IDLE] = NUM("access", "signer_idle", KIND_UINT, access_signer_idle_sec, 1, 3600),
        [K_BROKER_MFG_CA] = STR("broker", "sensor_manufacturer_ca", broker_sensor_manufacturer_ca,
                                PATH_MAX_BYTES, false, check_path),
        [K_BROKER_KEY_ALGS] = ENUM_SET("broker", "sensor_key_algorithms", broker_sensor_key_algorithms,
                                       key_algorithm_names),
        [K_BROKER_SUBJECT_O] =
                STR("broker", "subject_organization", broker_subject_organization, 64, false, check_text),
        [K_BROKER_SUBJECT_OU] = STR("broker", "subject_organizational_unit",
                                    broker_subject_organizational_unit, 64, false, check_text),
        [K_BROKER_EXTENSIONS] =
                ENUM_SET("broker", "allowed_extensions", broker_allowed_extensions, sensor_extension_names),
        [K_BROKER_MAX_SENSORS] = NUM("broker", "max_sensors", KIND_UINT, broker_max_sensors, 1, 100000),
        [K_BROKER_MAX_CHALLENGES] =
                NUM("broker", "max_challenges", KIND_UINT, broker_max_challenges, 1, 100000),
        [K_BROKER_CHALLENGE_LIFETIME] =
                NUM("broker", "challenge_lifetime", KIND_UINT, broker_challenge_lifetime_sec, 10, 3600),
        [K_BROKER_EST_LABEL] = STR("broker", "est_label", broker_est_label, 64, false, check_label),
        [K_BROKER_MAX_PENDING] = NUM("broker", "max_pending", KIND_UINT, broker_max_pending, 1, 100000),
        [K_BROKER_RETRY_LIMIT] = NUM("broker", "retry_limit", KIND_UINT, broker_retry_limit, 0, 100),
        [K_BROKER_REQUEST_TIMEOUT] =
                NUM("broker", "request_timeout", KIND_UINT, broker_request_timeout_sec, 5, 3600),
        [K_PATHS_DROPIN] = STR("paths", "dropin_dir", dropin_dir, PATH_MAX_BYTES, false, check_path),
};
const size_t config_n_key_specs = _K_MAX;

/* The keys an owner file in the drop-in directory may set: who the device
 * enrolls with, and nothing of the device itself (its TPM handles, paths,
 * schedules). docs/factory-reset.md says why. */
static const size_t owner_keys[] = { K_EST_URL, K_EST_LABEL, K_EST_ANCHORS,
                                     K_EST_FPR, K_EST_USER,  K_EST_PASSWORD };

static bool key_is_owner(size_t k) {
        for (size_t i = 0; i < ELEMENTSOF(owner_keys); i++)
                if (owner_keys[i] == k)
                        return true;
        return false;
}

static const char *const group_names[] = { "tpm",   "birth", "operational", "est",    "paths",
                                           "retry", "renew", "monitoring",  "access", "broker" };

/* ---- defaults and ownership ---- */

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        for (size_t i = 0; i < c->n_dropins; i++)
                free(c->dropins[i].path);
        free(c->dropins);
        for (size_t i = 0; i < _K_MAX; i++)
                if (config_key_specs[i].kind == KIND_STRING)
                        free(*(char **) ((uint8_t *) c + config_key_specs[i].offset));
        free(c);
        return NULL;
}

int config_new_defaults(Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        c->tpm_tcti = strdup("device:/dev/tpmrm0");
        c->est_trust_anchors = strdup("/etc/fleetid/est-trust-anchors.pem");
        c->state_dir = strdup("/var/lib/fleetid");
        c->runtime_dir = strdup("/run/fleetid");
        if (!c->tpm_tcti || !c->est_trust_anchors || !c->state_dir || !c->runtime_dir)
                return -ENOMEM;

        c->srk_handle = FLEETID_SRK_HANDLE_DEFAULT;
        c->birth_key_handle = FLEETID_IDEVID_HANDLE_DEFAULT;
        c->birth_nv_index = FLEETID_IDEVID_NV_INDEX_DEFAULT;
        c->op_key_handle = FLEETID_LDEVID_HANDLE_DEFAULT;
        c->op_key_algorithm = KEY_ALG_ECC_P256;
        c->op_allowed_key_algorithms = KEY_ALG_ALL;
        c->est_timeout_sec = 60;
        c->est_connect_timeout_sec = 15;
        c->est_max_response_bytes = 1024u * 1024u;
        c->retry_initial_sec = 30;
        c->retry_max_sec = 3600;
        c->op_spare_key_handle = FLEETID_LDEVID_SPARE_HANDLE_DEFAULT;
        c->est_channel_binding = CHANNEL_BINDING_AUTO;
        c->est_cacerts_refresh_sec = 24 * 3600;
        c->renew_share_percent = 67;
        c->renew_jitter_percent = 5;
        c->renew_retry_max_sec = 2 * 3600;
        c->renew_new_key = true;
        c->renew_fallback_to_birth = true;
        c->hook_timeout_sec = 30;
        c->warning_percent = 20;
        c->error_percent = 10;
        c->critical_percent = 3;
        c->est_max_clock_skew_sec = 300;
        c->renew_min_interval_sec = 300;
        c->renew_min_lifetime_sec = 3600;
        c->access_file = strdup("/etc/fleetid/access.conf");
        if (!c->access_file)
                return -ENOMEM;
        c->access_sign_per_minute = 60;
        c->access_sign_burst = 10;
        c->access_sensor_per_minute = 30;
        c->access_sensor_burst = 10;
        c->access_tracked_uids = 256;
        c->access_signer_idle_sec = 10;
        c->broker_sensor_key_algorithms = KEY_ALG_BIT(KEY_ALG_ECC_P256) | KEY_ALG_BIT(KEY_ALG_ECC_P384);
        c->broker_allowed_extensions =
                SENSOR_EXT_BIT(SENSOR_EXT_KEY_USAGE) | SENSOR_EXT_BIT(SENSOR_EXT_EXT_KEY_USAGE);
        c->broker_max_sensors = 1000;
        c->broker_max_challenges = 256;
        c->broker_challenge_lifetime_sec = 300;
        c->broker_max_pending = 1024;
        c->broker_retry_limit = 5;

        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- loading ---- */

typedef struct Loader {
        const char *path; /* the file being applied */
        Config *config;
        unsigned lines[_K_MAX];    /* where each key was set, 0 = not in the file */
        const char *paths[_K_MAX]; /* and in which file: path, or a drop-in's */
        bool dropin;               /* applying a drop-in: only owner keys */
        Diag *diag;
} Loader;

/* Records "path:line: <message>" (or "path: <message>" when line is 0), -EINVAL. */
_printf_(3, 4) static int fail(const Loader *l, unsigned line, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = conf_vfail(l->diag, l->path, line, fmt, ap);
        va_end(ap);
        return r;
}

static void *field(Config *c, const KeySpec *k) {
        return (uint8_t *) c + k->offset;
}

static int apply_string(Loader *l, const KeySpec *k, const config_setting_t *s, unsigned line) {
        const char *v, *why = NULL;
        char **dst = field(l->config, k);
        char *copy = NULL;
        size_t len;
        int r;

        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return fail(l, line, "%s.%s must be a string", k->group, k->name);
        v = config_setting_get_string(s);
        len = strlen(v);
        if (len == 0) {
                if (k->nonempty)
                        return fail(l, line, "%s.%s must not be empty", k->group, k->name);
                free(*dst);
                *dst = NULL;
                return 0;
        }
        if (conf_text_has_control_char(v))
                return fail(l, line, "%s.%s contains a control character", k->group, k->name);
        if (!conf_text_is_valid_utf8(v))
                return fail(l, line, "%s.%s is not valid UTF-8; the file must be saved as UTF-8", k->group,
                            k->name);
        if (len > k->max)
                return fail(l, line, "%s.%s is longer than %u bytes", k->group, k->name, (unsigned) k->max);

        r = k->check(v, &copy, &why);
        if (r == -ENOMEM)
                return diag_set(l->diag, r, "out of memory");
        if (r < 0)
                return fail(l, line, "%s.%s %s (got '%.*s')", k->group, k->name, why, VALUE_ECHO_MAX, v);
        free(*dst);
        *dst = copy;
        return 0;
}

static int apply_integer(Loader *l, const KeySpec *k, const config_setting_t *s, unsigned line) {
        int64_t v;

        if (!conf_setting_integer(s, &v))
                return fail(l, line, "%s.%s must be an integer", k->group, k->name);

        switch (k->kind) {
        case KIND_UINT:
                if (v < k->min || v > k->max)
                        return fail(l, line, "%s.%s must be between %u and %u (got %lld)", k->group, k->name,
                                    (unsigned) k->min, (unsigned) k->max, (long long) v);
                *(unsigned *) field(l->config, k) = (unsigned) v;
                return 0;
        case KIND_PERSISTENT:
                if (v < PERSISTENT_FIRST || v > PERSISTENT_LAST)
                        return fail(l, line,
                                    "%s.%s must be a persistent handle in 0x%08X..0x%08X (got 0x%llX)",
                                    k->group, k->name, PERSISTENT_FIRST, PERSISTENT_LAST,
                                    (unsigned long long) v);
                break;
        case KIND_NV_INDEX:
                if (v != 0 && (v < NV_INDEX_FIRST || v > NV_INDEX_LAST))
                        return fail(l, line,
                                    "%s.%s must be an NV index in 0x%08X..0x%08X, or 0 for none (got 0x%llX)",
                                    k->group, k->name, NV_INDEX_FIRST, NV_INDEX_LAST, (unsigned long long) v);
                break;
        default:
                return fail(l, line, "%s.%s: internal error, unexpected kind", k->group, k->name);
        }
        *(uint32_t *) field(l->config, k) = (uint32_t) v;
        return 0;
}

_Static_assert(sizeof(KeyAlgorithm) == sizeof(int), "KIND_ENUM stores an int");
_Static_assert(sizeof(ChannelBindingMode) == sizeof(int), "KIND_ENUM stores an int");

/* The index of the string setting s in k->names, or -EINVAL after saying what is allowed. */
static int enum_index(Loader *l, const KeySpec *k, const config_setting_t *s, unsigned line) {
        char choices[256] = "";
        const char *v;

        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return fail(l, line, "%s.%s must be a string", k->group, k->name);
        v = config_setting_get_string(s);
        for (uint32_t i = 0; i < k->max; i++) {
                if (strcmp(v, k->names[i]) == 0)
                        return (int) i;
                snprintf(choices + strlen(choices), sizeof(choices) - strlen(choices), "%s%s", i ? ", " : "",
                         k->names[i]);
        }
        return fail(l, line, "%s.%s must be one of %s (got '%.*s')", k->group, k->name, choices,
                    VALUE_ECHO_MAX, v);
}

static int apply_enum(Loader *l, const KeySpec *k, const config_setting_t *s, unsigned line) {
        int i = enum_index(l, k, s, line);

        if (i < 0)
                return i;
        *(int *) field(l->config, k) = i;
        return 0;
}

static int apply_enum_set(Loader *l, const KeySpec *k, const config_setting_t *s, unsigned line) {
        unsigned mask = 0;
        int n = config_setting_length(s);

        if ((config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST) ||
            n == 0)
                return fail(l, line, "%s.%s must be a non-empty list of strings, e.g. [ \"%s\" ]", k->group,
                            k->name, k->names[0]);
        for (int j = 0; j < n; j++) {
                int i = enum_index(l, k, config_setting_get_elem(s, (unsigned) j), line);

                if (i < 0)
                        return i;
                mask |= 1u << (unsigned) i;
        }
        *(unsigned *) field(l->config, k) = mask;
        return 0;
}

static int apply_bool(Loader *l, const KeySpec *k, const config_setting_t *s, unsigned line) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return fail(l, line, "%s.%s must be true or false", k->group, k->name);
        *(bool *) field(l->config, k) = config_setting_get_bool(s);
        return 0;
}

static int apply_setting(Loader *l, const char *group, const config_setting_t *s) {
        const char *name = config_setting_name(s);
        unsigned line = config_setting_source_line(s);

        for (size_t i = 0; i < _K_MAX; i++) {
                const KeySpec *k = &config_key_specs[i];

                if (strcmp(k->group, group) != 0 || strcmp(k->name, name) != 0)
                        continue;
                if (l->dropin && !key_is_owner(i))
                        return fail(l, line,
                                    "%s.%s may not be set in a drop-in file: a drop-in holds an owner's keys "
                                    "only (est.url, est.label, est.trust_anchors, est.bootstrap_fingerprint, "
                                    "est.username, est.password_file); set it in the main configuration file",
                                    group, name);
                l->lines[i] = line;
                l->paths[i] = l->path;
                switch (k->kind) {
                case KIND_STRING:
                        return apply_string(l, k, s, line);
                case KIND_ENUM:
                        return apply_enum(l, k, s, line);
                case KIND_ENUM_SET:
                        return apply_enum_set(l, k, s, line);
                case KIND_BOOL:
                        return apply_bool(l, k, s, line);
                default:
                        return apply_integer(l, k, s, line);
                }
        }
        return fail(l, line, "unknown key '%s.%s'", group, name);
}

static int apply_root(Loader *l, const config_setting_t *root) {
        for (int i = 0; i < config_setting_length(root); i++) {
                const config_setting_t *g = config_setting_get_elem(root, (unsigned) i);
                const char *name = config_setting_name(g);
                unsigned line = config_setting_source_line(g);
                bool known = false;
                int r;

                for (size_t j = 0; j < ELEMENTSOF(group_names); j++)
                        known = known || strcmp(name, group_names[j]) == 0;
                if (!known)
                        return fail(l, line, "unknown group '%s'", name);
                if (config_setting_type(g) != CONFIG_TYPE_GROUP)
                        return fail(l, line, "%s must be a group: %s: { ... };", name, name);

                for (int j = 0; j < config_setting_length(g); j++) {
                        r = apply_setting(l, name, config_setting_get_elem(g, (unsigned) j));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The line of the first of two keys that was set in the file, 0 if neither. */
static unsigned line_of(const Loader *l, size_t a, size_t b) {
        return l->lines[a] ?: l->lines[b];
}

/* Like fail(), in the file that set key a (else b; else the owner's last file). */
_printf_(4, 5) static int fail_key(Loader *l, size_t a, size_t b, const char *fmt, ...) {
        size_t k = l->lines[a] ? a : b;
        const Config *c = l->config;
        const char *path = l->paths[k] ?: c->n_dropins > 0 ? c->dropins[c->n_dropins - 1].path : l->path;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = conf_vfail(l->diag, path, l->lines[k], fmt, ap);
        va_end(ap);
        return r;
}

/* The owner keys (est.url, the anchor, the credentials) as a whole. */
static int check_owner(Loader *l) {
        const Config *c = l->config;

        if (!c->est_url)
                return fail_key(l, K_EST_URL, K_EST_URL,
                                "est.url is required: the EST server's base URL, "
                                "e.g. url = \"https://est.example.net/.well-known/est\";%s",
                                c->n_dropins > 0 ? " (the drop-in files define the owner, and none sets it)"
                                                 : "");
        if (!c->est_trust_anchors && !c->est_bootstrap_fingerprint)
                return fail_key(l, K_EST_ANCHORS, K_EST_FPR,
                                "neither est.trust_anchors nor est.bootstrap_fingerprint is set, "
                                "so the EST server could not be authenticated; set one of them");
        if (c->est_username && !c->est_password_file)
                return fail_key(l, K_EST_USER, K_EST_USER,
                                "est.username is set but est.password_file is not; set both or neither");
        if (c->est_password_file && !c->est_username)
                return fail_key(l, K_EST_PASSWORD, K_EST_PASSWORD,
                                "est.password_file is set but est.username is not; set both or neither");
        return 0;
}

static int check_relations(Loader *l) {
        const Config *c = l->config;
        int r;

        r = check_owner(l);
        if (r < 0)
                return r;
        if (c->retry_max_sec < c->retry_initial_sec)
                return fail(l, line_of(l, K_RETRY_MAX, K_RETRY_INITIAL),
                            "retry.max (%u) must not be less than retry.initial (%u)", c->retry_max_sec,
                            c->retry_initial_sec);
        if (c->birth_nv_index == 0 && !c->birth_cert_file)
                return fail(l, line_of(l, K_BIRTH_NV, K_BIRTH_CERT),
                            "birth.nv_index is 0 and birth.cert_file is empty, so the birth "
                            "certificate has no source; set one of them");
        if (c->runtime_dir && c->runtime_dir[0] && same_dir(c->runtime_dir, c->state_dir))
                return fail(l, line_of(l, K_PATHS_RUNTIME, K_PATHS_STATE),
                            "paths.runtime_dir and paths.state_dir are both %s; the runtime copy of the status "
                            "must be in another directory (it is taken as this boot's own)",
                            c->state_dir);
        if (c->op_key_handle == c->birth_key_handle)
                return fail(l, line_of(l, K_OP_KEY, K_BIRTH_KEY),
                            "operational.key_handle and birth.key_handle are both 0x%08X; "
                            "enrolling would overwrite the birth key",
                            c->op_key_handle);
        if (c->op_spare_key_handle == c->op_key_handle || c->op_spare_key_handle == c->birth_key_handle ||
            c->op_spare_key_handle == c->srk_handle)
                return fail(l, l->lines[K_OP_SPARE_KEY] ?: line_of(l, K_OP_KEY, K_BIRTH_KEY),
                            "operational.spare_key_handle 0x%08X is also used for another key",
                            c->op_spare_key_handle);
        if (!(c->critical_percent < c->error_percent && c->error_percent < c->warning_percent))
                return fail(l, line_of(l, K_MON_CRITICAL, K_MON_ERROR) ?: l->lines[K_MON_WARNING],
                            "monitoring thresholds must satisfy critical_percent (%u) < error_percent (%u) < "
                            "warning_percent (%u)",
                            c->critical_percent, c->error_percent, c->warning_percent);
        if (c->renew_jitter_percent >= c->renew_share_percent)
                return fail(l, line_of(l, K_RENEW_JITTER, K_RENEW_SHARE),
                            "renew.jitter_percent (%u) must be less than renew.share_percent (%u), or a "
                            "renewal could fall due as soon as the certificate is issued",
                            c->renew_jitter_percent, c->renew_share_percent);
        /* The latest due time is share + jitter: no warning before it. */
        if (c->warning_percent + c->renew_share_percent + c->renew_jitter_percent >= 100)
                return fail(l, line_of(l, K_MON_WARNING, K_RENEW_SHARE) ?: l->lines[K_RENEW_JITTER],
                            "monitoring.warning_percent (%u%% of the lifetime left) is reached before renewal "
                            "is due (renew.share_percent %u%% + jitter_percent %u%%); lower one of them",
                            c->warning_percent, c->renew_share_percent, c->renew_jitter_percent);
        if (!(c->op_allowed_key_algorithms & KEY_ALG_BIT(c->op_key_algorithm)))
                return fail(l, line_of(l, K_OP_ALLOWED_ALGS, K_OP_ALG),
                            "operational.key_algorithm \"%s\" is not in operational.allowed_key_algorithms; "
                            "the default must be one of the allowed",
                            key_algorithm_to_string(c->op_key_algorithm));
        if (c->srk_handle == c->birth_key_handle || c->srk_handle == c->op_key_handle)
                return fail(l, l->lines[K_TPM_SRK] ?: line_of(l, K_BIRTH_KEY, K_OP_KEY),
                            "tpm.srk_handle 0x%08X is also used as a key handle", c->srk_handle);
        return 0;
}
/* Parses one file and applies it over l->config. */
static int apply_file(Loader *l, const char *path, bool dropin, char *ret_hash) {
        _cleanup_(conf_destroyp) config_t *lc = NULL;
        _cleanup_free_ char *text = NULL;
        config_t lcfg;
        size_t len;
        int r;

        r = conf_file_read(path, CONFIG_FILE_MAX, &text, &len, l->diag);
        if (r < 0)
                return r;
        if (ret_hash && sha256_text(text, len, ret_hash) < 0)
                return diag_set(l->diag, -EIO, "%s: cannot compute its SHA-256", path);
        config_init(&lcfg);
        lc = &lcfg;
        r = conf_file_parse(path, text, len, lc, l->diag);
        if (r < 0)
                return r;
        l->path = path;
        l->dropin = dropin;
        return apply_root(l, config_root_setting(lc));
}

static int dropin_name_wanted(const struct dirent *de) {
        size_t n = strlen(de->d_name);

        return de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0;
}

/* The drop-in files to apply, in lexical order (only_dropin: that one alone). */
static int list_dropins(Config *c, bool replace, const char *only_dropin, Diag *d) {
        struct dirent **names = NULL;
        int n;

        if (replace && !only_dropin)
                return 0;
        if (only_dropin) {
                c->dropins = calloc(1, sizeof(ConfigDropin));
                if (!c->dropins || !(c->dropins[0].path = strdup(only_dropin)))
                        return diag_set(d, -ENOMEM, "out of memory");
                c->n_dropins = 1;
                return 0;
        }
        if (!c->dropin_dir)
                return 0;
        n = scandir(c->dropin_dir, &names, dropin_name_wanted, alphasort);
        if (n < 0) {
                if (errno == ENOENT)
                        return 0;
                return diag_set(d, -errno, "%s: cannot read the drop-in directory (paths.dropin_dir): %s",
                                c->dropin_dir, strerror(errno));
        }
        if (n > CONFIG_DROPINS_MAX) {
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return diag_set(d, -E2BIG, "%s: more than %d drop-in files", c->dropin_dir,
                                CONFIG_DROPINS_MAX);
        }
        c->dropins = calloc((size_t) n + 1, sizeof(ConfigDropin));
        for (int i = 0; i < n; i++) {
                if (c->dropins &&
                    asprintf(&c->dropins[c->n_dropins].path, "%s/%s", c->dropin_dir, names[i]->d_name) >= 0)
                        c->n_dropins++;
                free(names[i]);
        }
        free(names);
        if (!c->dropins || c->n_dropins != (size_t) n)
                return diag_set(d, -ENOMEM, "out of memory");
        return 0;
}

static void *key_field(Config *c, size_t k) {
        return (uint8_t *) c + config_key_specs[k].offset;
}

/* Loads path, then the drop-ins, and validates the whole. */
static int config_load_full(const char *path, bool replace, const char *only_dropin, Config **ret, Diag *d) {
        _cleanup_(config_freep) Config *c = NULL;
        Loader l;
        int r;

        if (!path || !ret)
                return diag_set(d, -EINVAL, "config_load: no path given");

        r = config_new_defaults(&c);
        if (r < 0)
                return diag_set(d, r, "out of memory");
        l = (Loader) { .config = c, .diag = d };
        r = apply_file(&l, path, false, NULL);
        if (r < 0)
                return r;
        if (!l.lines[K_PATHS_DROPIN] && asprintf(&c->dropin_dir, "%s.d", path) < 0)
                return diag_set(d, -ENOMEM, "out of memory");

        r = list_dropins(c, replace, only_dropin, d);
        if (r < 0)
                return r;
        if (c->n_dropins > 0)
                /* The drop-ins define the owner as a whole: none of the main
                 * file's owner keys (an earlier owner's) is inherited. */
                for (size_t i = 0; i < ELEMENTSOF(owner_keys); i++) {
                        char **v = key_field(c, owner_keys[i]);

                        free(*v);
                        *v = NULL;
                        l.lines[owner_keys[i]] = 0;
                        l.paths[owner_keys[i]] = NULL;
                }
        for (size_t i = 0; i < c->n_dropins; i++) {
                r = apply_file(&l, c->dropins[i].path, true, c->dropins[i].hash);
                if (r < 0)
                        return r;
        }
        l.path = path;
        l.dropin = false;
        r = check_relations(&l);
        if (r < 0)
                return r;

        c->path = strdup(path);
        if (!c->path)
                return diag_set(d, -ENOMEM, "out of memory");
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, Config **ret, Diag *d) {
        return config_load_full(path, false, NULL, ret, d);
}

int config_load_with_owner(const char *path, const char *owner_file, Config **ret, Diag *d) {
        return config_load_full(path, true, owner_file, ret, d);
}

void config_take_owner(Config *dst, Config *src) {
        ConfigDropin *dropins = dst->dropins;
        size_t n = dst->n_dropins;

        for (size_t i = 0; i < ELEMENTSOF(owner_keys); i++) {
                char **a = key_field(dst, owner_keys[i]), **b = key_field(src, owner_keys[i]), *t = *a;

                *a = *b;
                *b = t;
        }
        dst->dropins = src->dropins;
        dst->n_dropins = src->n_dropins;
        src->dropins = dropins;
        src->n_dropins = n;
}

static int parse_handle(const char *text, uint32_t first, uint32_t last, const char *what, uint32_t *ret,
                        Diag *d) {
        unsigned long long v;
        char *end = NULL;

        /* strtoull() accepts a sign and leading blanks: refuse them here. */
        if (isempty(text) || !(isdigit((unsigned char) text[0])))
                return diag_set(d, -EINVAL, "'%s' is not a number such as 0x%08X", strempty(text), first);
        errno = 0;
        v = strtoull(text, &end, 0);
        if (errno != 0 || !end || *end)
                return diag_set(d, -EINVAL, "'%s' is not a number such as 0x%08X", text, first);
        if (v < first || v > last)
                return diag_set(d, -EINVAL, "'%s' is not %s in 0x%08X..0x%08X", text, what, first, last);
        *ret = (uint32_t) v;
        return 0;
}

int config_parse_persistent_handle(const char *text, uint32_t *ret, Diag *d) {
        return parse_handle(text, PERSISTENT_FIRST, PERSISTENT_LAST, "a persistent handle", ret, d);
}

int config_parse_nv_index(const char *text, uint32_t *ret, Diag *d) {
        return parse_handle(text, NV_INDEX_FIRST, NV_INDEX_LAST, "an NV index", ret, d);
}
