/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access-methods.c: the table of roles per member of org.fleetid.Agent1 (see
 * access-methods.h).
 */
#include <string.h>

#include "access/access-methods.h"
#include "util/macro.h"

#define AGENT "org.fleetid.Agent1"
#define JOB "org.fleetid.Agent1.Job"

static const AccessMethod table[] = {
        { AGENT, ACCESS_MEMBER_PROPERTIES, NULL, ACCESS_ROLE_READER, false, ACCESS_RATE_NONE },
        { AGENT, "GetCertificateChain", NULL, ACCESS_ROLE_READER, false, ACCESS_RATE_NONE },
        { AGENT, "GetTrustBundle", NULL, ACCESS_ROLE_ANYONE, false, ACCESS_RATE_NONE },
        { AGENT, "SignChallenge", NULL, ACCESS_ROLE_ATTEST, false, ACCESS_RATE_SIGN },
        { AGENT, "SignChallenge", "identity=birth", ACCESS_ROLE_ATTEST_BIRTH, false, ACCESS_RATE_SIGN },
        { AGENT, "Renew", NULL, ACCESS_ROLE_ADMIN, false, ACCESS_RATE_NONE },
        { AGENT, "FactoryReset", NULL, ACCESS_ROLE_ADMIN, false, ACCESS_RATE_NONE },
        { AGENT, "GetSensorChallenge", NULL, ACCESS_ROLE_SENSOR_BROKER, false, ACCESS_RATE_SENSOR },
        { AGENT, "RequestSensorCertificate", NULL, ACCESS_ROLE_SENSOR_BROKER, false, ACCESS_RATE_SENSOR },
        { AGENT, "ListSensors", NULL, ACCESS_ROLE_SENSOR_BROKER, false, ACCESS_RATE_NONE },
        { AGENT, "ForgetSensor", NULL, ACCESS_ROLE_SENSOR_BROKER, false, ACCESS_RATE_NONE },
        { JOB, ACCESS_MEMBER_PROPERTIES, NULL, ACCESS_ROLE_ANYONE, true, ACCESS_RATE_NONE },
        { JOB, "Cancel", NULL, ACCESS_ROLE_ANYONE, true, ACCESS_RATE_NONE },
        { JOB, "GetResult", NULL, ACCESS_ROLE_ANYONE, true, ACCESS_RATE_NONE },
};

const AccessMethod *access_methods(size_t *ret_n) {
        *ret_n = ELEMENTSOF(table);
        return table;
}

const AccessMethod *access_method_find(const char *interface, const char *member, const char *variant) {
        if (!interface || !member)
                return NULL;
        /* The member first: it differs from row to row, mostly at its first byte. */
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].member[0] == member[0] && strcmp(table[i].member, member) == 0 &&
                    strcmp(table[i].interface, interface) == 0 && streq_ptr(table[i].variant, variant))
                        return &table[i];
        return NULL;
}

static const char *const rate_class_names[_ACCESS_RATE_MAX] = {
        [ACCESS_RATE_NONE] = "none",
        [ACCESS_RATE_SIGN] = "sign",
        [ACCESS_RATE_SENSOR] = "sensor",
};

const char *access_rate_class_to_string(AccessRateClass c) {
        if (c < 0 || c >= _ACCESS_RATE_MAX)
                return NULL;
        return rate_class_names[c];
}
