/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-csr.h: the checks a downstream sensor's CSR passes before the
 * gateway enrolls it over EST on the sensor's behalf (issue "The sensor
 * broker", point 1; docs/dbus-api.md, "Sensor broker: formats").
 *
 *   - DER PKCS #10, at most SENSOR_CSR_MAX bytes, nothing after it, version 1;
 *   - the self-signature verifies with the CSR's own key (proof of possession)
 *     and hashes with SHA-256, -384 or -512 (RSA-PSS: its hash and MGF1's);
 *   - the key is one of policy->key_algorithms (EC on the named curves P-256,
 *     P-384, not as explicit parameters; RSA of exactly 2048 or 3072 bits);
 *   - the subject is exactly the one sensor_subject_new() builds from the
 *     sensor_id: entry by entry, single-valued RDNs, UTF8String or
 *     PrintableString values of the same bytes;
 *   - the only attribute is extensionRequest, with one value, and it requests
 *     no extension outside policy->extensions, none twice, and only the uses
 *     of a TLS client (check_extension_value() in sensor-csr.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "config/config.h"
#include "util/diag.h"

#define SENSOR_CSR_MAX (16u * 1024u)

typedef struct SensorPolicy {
        unsigned key_algorithms;                 /* KEY_ALG_BIT()s */
        unsigned extensions;                     /* SENSOR_EXT_BIT()s */
        const char *subject_organization;        /* NULL: no O */
        const char *subject_organizational_unit; /* NULL: no OU */
} SensorPolicy;

/* The policy of the configuration's broker { } group (borrows its strings). */
void sensor_policy_from_config(const Config *c, SensorPolicy *ret);

/* The subject rule: the RDNs, in this order, O = subject_organization (if set),
 * OU = subject_organizational_unit (if set), CN = sensor_id; each a
 * single-valued RDN, UTF8String. RFC 2253 prints it reversed:
 * "CN=<sensor_id>,OU=<ou>,O=<o>". -EINVAL for a bad sensor_id. */
int sensor_subject_new(const SensorPolicy *p, const char *sensor_id, X509_NAME **ret, Diag *d);

/* Runs every check above on the DER CSR. On success *ret (may be NULL) is
 * the parsed request. Errors, each with a Diag naming what was wrong:
 *   -EFBIG        larger than SENSOR_CSR_MAX
 *   -EBADMSG      not a DER PKCS #10 request (or bytes after it, or not v1)
 *   -EKEYREJECTED the self-signature does not verify
 *   -EPERM        a policy refusal: signature hash, key type or size,
 *                 subject, attribute or extension not allowed
 *   -EINVAL       a bad sensor_id. */
int sensor_csr_check(const SensorPolicy *p, const char *sensor_id, const uint8_t *der, size_t len,
                     X509_REQ **ret, Diag *d);
