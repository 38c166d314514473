/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access-policy.h: who may do what over org.fleetid.Agent1: the roles, the
 * policy file /etc/fleetid/access.conf that grants them to users and groups,
 * and the decision "may this caller (uid, gids) act in this role".
 *
 * The D-Bus layer asks nothing else: it takes the caller's effective uid and
 * groups from the bus (sd_bus_query_sender_creds()), looks the member up in the
 * table of access-methods.h and calls access_check(). See docs/dbus-api.md,
 * "Access control", for the file format and the roles.
 *
 * Roles imply others (access_role_closure()): admin implies every role,
 * attest-birth implies attest, and every role implies reader. root (uid 0) is
 * admin whatever the file says. A caller with no grant may only do what needs
 * ACCESS_ROLE_ANYONE (GetTrustBundle).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/diag.h"

typedef enum AccessRole {
        ACCESS_ROLE_ANYONE,        /* needs no grant; never granted in the file */
        ACCESS_ROLE_READER,        /* properties, certificate chain, trust bundle */
        ACCESS_ROLE_ATTEST,        /* SignChallenge with the operational key */
        ACCESS_ROLE_ATTEST_BIRTH,  /* SignChallenge with the birth key (IDevID) */
        ACCESS_ROLE_SENSOR_BROKER, /* the sensor broker's methods */
        ACCESS_ROLE_ADMIN,         /* Renew (later FactoryReset), every job */
        _ACCESS_ROLE_MAX,
        _ACCESS_ROLE_INVALID = -1,
} AccessRole;

#define ACCESS_ROLE_BIT(r) (1u << (unsigned) (r))

/* "anyone", "reader", "attest", "attest-birth", "sensor-broker", "admin". */
const char *access_role_to_string(AccessRole r);
/* The roles a file may grant (not "anyone"); _ACCESS_ROLE_INVALID otherwise. */
AccessRole access_role_from_string(const char *s);

/* mask (ACCESS_ROLE_BIT()s) with every role its roles imply added. */
unsigned access_role_closure(unsigned mask);

typedef enum AccessPrincipal {
        ACCESS_PRINCIPAL_USER,
        ACCESS_PRINCIPAL_GROUP,
} AccessPrincipal;

typedef struct AccessGrant {
        AccessPrincipal kind;
        uint32_t id;    /* uid or gid, resolved when the file was loaded */
        unsigned roles; /* ACCESS_ROLE_BIT()s as written, without implied roles */
        unsigned line;  /* where in the file, 0 if not from a file */
} AccessGrant;

#define ACCESS_FILE_MAX (64u * 1024u) /* bytes */
#define ACCESS_GRANTS_MAX 1024u

typedef struct AccessPolicy {
        char *path; /* the file it came from, NULL if none */
        AccessGrant *grants;
        size_t n_grants;
} AccessPolicy;

/* No grants: root is admin, everyone else may only do what needs ACCESS_ROLE_ANYONE. */
int access_policy_new(AccessPolicy **ret);
AccessPolicy *access_policy_free(AccessPolicy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AccessPolicy *, access_policy_free);

/* Adds a grant. -EEXIST if kind/id already has one (*ret_line, may be NULL, is
 * then the line of that one), -E2BIG beyond ACCESS_GRANTS_MAX, -EINVAL for no
 * roles, ACCESS_ROLE_ANYONE or the id (uint32_t) -1. */
int access_policy_add(AccessPolicy *p, AccessPrincipal kind, uint32_t id, unsigned roles, unsigned line,
                      unsigned *ret_line);

/* Loads the policy file at path (symlinks followed; the checks apply to the file
 * they lead to). It must be a regular file owned by owner (root for fleetidd)
 * and not writable by group or others: whoever can write it can grant himself
 * admin. User and group names are resolved with getpwnam_r()/getgrnam_r() here,
 * once; a name that does not resolve is an error. -ENOENT if the file is
 * missing (fleetidd then uses access_policy_new()), -EINVAL with "FILE:LINE:
 * ..." or "FILE: ..." in d for anything wrong in it, -EACCES for owner or mode,
 * -EFBIG beyond ACCESS_FILE_MAX. */
int access_policy_load(const char *path, uid_t owner, AccessPolicy **ret, Diag *d);

/* Every role the caller holds, implied roles included (ACCESS_ROLE_BIT()s).
 * gids: the caller's effective gid and supplementary gids (duplicates are fine). */
unsigned access_roles(const AccessPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids);

/* Whether the caller holds needed. ACCESS_ROLE_ANYONE is always true; an
 * invalid role is always false. p may be NULL (no grants). */
bool access_check(const AccessPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids, AccessRole needed);

/* A job is visible to its owner and to admins (Cancel, GetResult, its properties). */
bool access_check_job(const AccessPolicy *p, uid_t uid, const gid_t *gids, size_t n_gids, uid_t job_owner);
