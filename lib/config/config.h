/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.h: fleetid.conf, parsed and validated (libconfig syntax).
 *
 * Every key has a default here; config_load() rejects unknown keys and bad values
 * with "file:line: what is wrong" in the Diag. See etc/fleetid.conf and
 * docs/configuration.md for the meaning of each key.
 *
 * Values are stored validated and normalized: est_url has a lowercase "https://"
 * and no trailing '/', est_bootstrap_fingerprint is "sha256:" + 64 lowercase hex
 * digits without colons, every file path is absolute. An empty string in the file
 * stores NULL.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "crypto/certcheck.h"
#include "util/diag.h"

typedef enum KeyAlgorithm {
        KEY_ALG_ECC_P256,
        KEY_ALG_ECC_P384,
        KEY_ALG_RSA_2048,
        KEY_ALG_RSA_3072,
        _KEY_ALG_MAX,
        _KEY_ALG_INVALID = -1,
} KeyAlgorithm;

const char *key_algorithm_to_string(KeyAlgorithm a);   /* "ecc-p256", ... */
KeyAlgorithm key_algorithm_from_string(const char *s); /* _KEY_ALG_INVALID if unknown */

#define KEY_ALG_BIT(a) (1u << (unsigned) (a))
#define KEY_ALG_ALL ((1u << _KEY_ALG_MAX) - 1u)

/* Proof of possession by channel binding in the CSR's challengePassword
 * (RFC 7030 3.5; tls-exporter of RFC 9266 under TLS 1.3). */
typedef enum ChannelBindingMode {
        CHANNEL_BINDING_OFF,      /* never */
        CHANNEL_BINDING_AUTO,     /* when the server's /csrattrs asks for challengePassword */
        CHANNEL_BINDING_REQUIRED, /* always; fail rather than send a CSR without it */
        _CHANNEL_BINDING_MAX,
} ChannelBindingMode;

const char *channel_binding_mode_to_string(ChannelBindingMode m); /* "off", "auto", "required" */

/* The extensions a sensor's CSR may request (broker.allowed_extensions). */
typedef enum SensorExtension {
        SENSOR_EXT_KEY_USAGE,         /* "keyUsage" */
        SENSOR_EXT_EXT_KEY_USAGE,     /* "extendedKeyUsage" */
        SENSOR_EXT_BASIC_CONSTRAINTS, /* "basicConstraints", and then only cA FALSE */
        SENSOR_EXT_SUBJECT_ALT_NAME,  /* "subjectAltName" */
        _SENSOR_EXT_MAX,
} SensorExtension;

const char *sensor_extension_to_string(SensorExtension e);

#define SENSOR_EXT_BIT(e) (1u << (unsigned) (e))

/* TCG conventions and project choices; see docs/tpm-handles.md for which is which. */
#define FLEETID_SRK_HANDLE_DEFAULT 0x81000001u
#define FLEETID_IDEVID_HANDLE_DEFAULT 0x81020000u
#define FLEETID_LDEVID_HANDLE_DEFAULT 0x81020002u
#define FLEETID_LDEVID_SPARE_HANDLE_DEFAULT 0x81020003u
#define FLEETID_IDEVID_NV_INDEX_DEFAULT 0x01C90000u

/* One drop-in file applied after the main file (paths.dropin_dir). */
typedef struct ConfigDropin {
        char *path;
        char hash[SHA256_TEXT_SIZE]; /* "sha256:" + 64 lowercase hex digits of its content as read */
} ConfigDropin;

/* At most this many *.conf files in the drop-in directory. */
#define CONFIG_DROPINS_MAX 64

typedef struct Config {
        char *path; /* the file this came from */
        /* paths { dropin_dir }: *.conf read after path, in lexical order; they
         * may set the owner keys only (est.url, est.label, est.trust_anchors,
         * est.bootstrap_fingerprint, est.username, est.password_file), and when
         * there are any, they define the owner as a whole (the main file's
         * owner keys are not inherited). Default "<path>.d"; NULL = none. */
        char *dropin_dir;
        ConfigDropin *dropins; /* the files applied, in order */
        size_t n_dropins;

        /* tpm { } */
        char *tpm_tcti;      /* "device:/dev/tpmrm0" */
        uint32_t srk_handle; /* 0x81000001 */

        /* birth { }: the IDevID. Either in the TPM (key_handle + nv_index) or files. */
        uint32_t birth_key_handle; /* persistent handle of the IDevID key */
        uint32_t birth_nv_index;   /* NV index with the DER IDevID certificate; 0 = not used */
        char *birth_cert_file;     /* PEM IDevID certificate (+ chain); NULL = use NV */

        /* operational { }: the LDevID */
        uint32_t op_key_handle;        /* persistent handle for the LDevID key */
        KeyAlgorithm op_key_algorithm; /* the default, and what is sent when a request is not honoured */
        unsigned op_allowed_key_algorithms; /* KEY_ALG_BIT()s an EST server may ask for in /csrattrs */
        char *subject_cn;     /* CN for the CSR; NULL = the birth cert's (both NULL: its whole subject) */
        char *subject_serial; /* serialNumber RDN; NULL = the birth cert's */

        /* est { } */
        char *est_url;           /* "https://host[:port]/.well-known/est", required */
        char *est_label;         /* optional /<label>/ path segment, NULL if none */
        char *est_trust_anchors; /* PEM file of explicit trust anchors; NULL allowed only with fingerprint */
        char *est_bootstrap_fingerprint;        /* "sha256:hex" (colons allowed) of a CA in /cacerts */
        char *est_username;                     /* HTTP Basic, only sent after a 401; NULL = never */
        char *est_password_file;                /* file holding the Basic password (0600 expected) */
        unsigned est_timeout_sec;               /* whole-request timeout, 1..600, default 60 */
        unsigned est_connect_timeout_sec;       /* default 15 */
        unsigned est_max_response_bytes;        /* bound on any response body, default 1 MiB */
        ChannelBindingMode est_channel_binding; /* default auto */
        unsigned est_cacerts_refresh_sec; /* /cacerts refreshed this often between renewals, default 1 day */

        /* paths { } */
        char *state_dir;   /* "/var/lib/fleetid" */
        char *runtime_dir; /* "/run/fleetid": a copy of the status; NULL = none */

        /* retry { }: first enrollment retries (exponential backoff, jittered) */
        unsigned retry_initial_sec; /* default 30 */
        unsigned retry_max_sec;     /* default 3600 */

        /* operational { spare_key_handle }: where a renewal's new key is made
         * before it replaces the current one (the two handles alternate). */
        uint32_t op_spare_key_handle;

        /* renew { } */
        unsigned renew_share_percent;  /* renew when this share of the lifetime has passed, default 67 */
        unsigned renew_jitter_percent; /* +- this share of the lifetime, default 5 */
        unsigned renew_retry_max_sec;  /* renewal retry period, default 7200 (shortened near expiry) */
        bool renew_new_key;            /* a new TPM key per renewal, default true */
        bool renew_fallback_to_birth;  /* expired: /simpleenroll with the birth identity, default true */

        /* monitoring { } */
        char *metrics_file;        /* Prometheus textfile, NULL = none */
        char *hook;                /* event hook program, NULL = none */
        unsigned hook_timeout_sec; /* default 30 */
        unsigned warning_percent;  /* escalate when this share of the lifetime is left, default 20 */
        unsigned error_percent;    /* default 10 */
        unsigned critical_percent; /* default 3 */

        /* est { max_clock_skew }: how far a new certificate's notBefore may lie
         * after the local clock at first enrollment (never at renewal), and how
         * far the server's Date may be ahead before the local clock is called
         * behind; default 300 s */
        unsigned est_max_clock_skew_sec;
        /* renew { min_interval, min_lifetime } */
        unsigned renew_min_interval_sec; /* floor between automatic renewals, default 300 s */
        unsigned renew_min_lifetime_sec; /* shorter certificates are a server problem, default 3600 s */

        /* access { }: who may use org.fleetid.Agent1 (docs/dbus-api.md) */
        char *access_file;                 /* the policy file, "/etc/fleetid/access.conf" */
        unsigned access_sign_per_minute;   /* SignChallenge per uid: refill rate, default 60 */
        unsigned access_sign_burst;        /* and bucket size, default 10 */
        unsigned access_sensor_per_minute; /* sensor requests per uid: refill rate, default 30 */
        unsigned access_sensor_burst;      /* and bucket size, default 10 */
        unsigned access_tracked_uids;      /* uids tracked per rate limit, default 256 */
        unsigned access_signer_idle_sec; /* the signing process exits this long after its last call, 10 s */
        /* broker { }: the sensor broker (docs/dbus-api.md, "Sensor broker: formats") */
        char *broker_sensor_manufacturer_ca;   /* PEM file of sensor manufacturer CAs; NULL = no evidence */
        unsigned broker_sensor_key_algorithms; /* KEY_ALG_BIT()s a sensor CSR may use; default both ECC */
        char *broker_subject_organization;     /* O of every sensor subject; NULL = none */
        char *broker_subject_organizational_unit; /* OU of every sensor subject; NULL = none */
        unsigned broker_allowed_extensions;       /* SENSOR_EXT_BIT()s; default keyUsage, extendedKeyUsage */
        unsigned broker_max_sensors;              /* tracked sensor records, default 1000 */
        unsigned broker_max_challenges;           /* outstanding sensor challenges, default 256 */
        unsigned broker_challenge_lifetime_sec;   /* a sensor challenge is valid this long, default 300 */
        char *broker_est_label;                   /* EST label of sensor enrollments; NULL = none */
        unsigned broker_max_pending;              /* sensor requests pending at once, default 1024 */
        unsigned broker_retry_limit;              /* retries after 503/429/unreachable in a row, default 5 */
        unsigned broker_request_timeout_sec; /* one request in the sensor worker; 0 = 3 * est.timeout + 60 */
} Config;

/* Fills a Config with every default; path may be NULL. */
int config_new_defaults(Config **ret);

/* Loads path over the defaults, then the drop-in files, validates, and
 * returns the result. -ENOENT if the file is missing, -EINVAL with
 * "file:line: ..." (the file may be a drop-in) otherwise. */
int config_load(const char *path, Config **ret, Diag *d);
/* The same with owner_file as the only drop-in, whatever the drop-in
 * directory holds: what the configuration will be once owner_file is the
 * owner (fleetidctl factory-reset --owner checks it before wiping anything);
 * owner_file NULL: no drop-in at all. */
int config_load_with_owner(const char *path, const char *owner_file, Config **ret, Diag *d);

/* Swaps the owner keys (those a drop-in may set) and the list of drop-ins
 * between dst and src: a running daemon takes a new owner from a freshly
 * loaded configuration, nothing else of it. */
void config_take_owner(Config *dst, Config *src);

/* A TPM handle given on a command line ("0x81020000", decimal or octal as in C),
 * held to the same ranges as the configuration: a persistent handle
 * (0x81000000..0x81FFFFFF), or an NV index (0x01000000..0x01FFFFFF). Parsed as
 * an unsigned 64-bit number, so 32-bit platforms (armhf) are not cut short.
 * -EINVAL for anything else, naming the range in d. */
int config_parse_persistent_handle(const char *text, uint32_t *ret, Diag *d);
int config_parse_nv_index(const char *text, uint32_t *ret, Diag *d);

Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);
