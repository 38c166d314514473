/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access-methods.h: the one table of which role each member of
 * org.fleetid.Agent1 needs, and which rate limit it counts against.
 *
 * The D-Bus layer looks every call up here before it does anything else, and
 * docs/dbus-api.md ("Access control") shows the same table; test-access-policy
 * checks that the two agree. A member that is not in the table is refused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "access/access-policy.h"

typedef enum AccessRateClass {
        ACCESS_RATE_NONE,
        ACCESS_RATE_SIGN,   /* SignChallenge: a TPM signature per call */
        ACCESS_RATE_SENSOR, /* sensor requests: a challenge or an EST enrollment per call */
        _ACCESS_RATE_MAX,
} AccessRateClass;

/* A "@properties" member stands for reading the interface's properties
 * (org.freedesktop.DBus.Properties Get and GetAll, PropertiesChanged). */
#define ACCESS_MEMBER_PROPERTIES "@properties"

typedef struct AccessMethod {
        const char *interface;
        const char *member;
        const char *variant; /* NULL, or the option that selects this row: "identity=birth" */
        AccessRole role;     /* the role the caller needs */
        bool job_owner;      /* a job's member: its owner or an admin (access_check_job()) */
        AccessRateClass rate;
} AccessMethod;

/* The rows, in the order docs/dbus-api.md lists them. */
const AccessMethod *access_methods(size_t *ret_n);

/* The row for interface.member (variant NULL for the plain call), NULL if none. */
const AccessMethod *access_method_find(const char *interface, const char *member, const char *variant);

/* "none", "sign", "sensor". */
const char *access_rate_class_to_string(AccessRateClass c);
