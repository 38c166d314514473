/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-sensor-csr: sensor_csr_check() on any bytes (the csr argument of
 * RequestSensorCertificate), for the sensor "temp-01" under a policy with a
 * fixed O and OU. What it accepts is at most SENSOR_CSR_MAX bytes, carries an
 * allowed key and exactly the subject of the rule; what it refuses yields no
 * request, one of the documented errors, and says why.
 */
#include <errno.h>
#include <string.h>

#include "broker/sensor-csr.h"
#include "crypto/ossl-util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const SensorPolicy policy = {
                .key_algorithms = KEY_ALG_BIT(KEY_ALG_ECC_P256) | KEY_ALG_BIT(KEY_ALG_ECC_P384),
                .extensions = SENSOR_EXT_BIT(SENSOR_EXT_KEY_USAGE) | SENSOR_EXT_BIT(SENSOR_EXT_EXT_KEY_USAGE),
                .subject_organization = "Acme Sensors",
                .subject_organizational_unit = "hall-b",
        };
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *want = NULL;
        EVP_PKEY *key;
        Diag d = {};
        int r;

        r = sensor_csr_check(&policy, "temp-01", data, size, &req, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EFBIG || r == -EBADMSG || r == -EKEYREJECTED || r == -EPERM || r == -ENOMEM);
                FUZZ_CHECK(!req);
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                FUZZ_CHECK(r != -EFBIG || size > SENSOR_CSR_MAX);
                return 0;
        }
        FUZZ_CHECK(req);
        FUZZ_CHECK(size <= SENSOR_CSR_MAX);
        FUZZ_CHECK(sensor_subject_new(&policy, "temp-01", &want, NULL) == 0);
        FUZZ_CHECK(X509_NAME_cmp(X509_REQ_get_subject_name(req), want) == 0);
        key = X509_REQ_get0_pubkey(req);
        FUZZ_CHECK(key && EVP_PKEY_is_a(key, "EC"));
        FUZZ_CHECK(X509_REQ_verify(req, key) == 1);
        return 0;
}
