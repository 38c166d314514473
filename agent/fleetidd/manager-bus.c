/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-bus.c: org.fleetid.Agent1 on the system bus: the connection, the
 * name, the object /org/fleetid/Agent1, and the access check every call to it
 * passes first (docs/dbus-api.md).
 *
 * The bus is optional for the identity work: when it cannot be reached or the
 * name cannot be owned, fleetidd logs it and goes on enrolling and renewing,
 * without the API, until it is restarted. The address is the system bus's
 * (DBUS_SYSTEM_BUS_ADDRESS when set, as sd_bus_open_system() honours).
 *
 * Access control sits in one sd-bus filter, which sees every method call
 * before the object dispatch does: a call to a member of the access table
 * (lib/access/access-methods.h), or a property read of the interface, runs
 * only if the caller holds the member's role; on a job's object
 * (manager-jobs.c) only for the job's owner and admins (NoSuchJob for a job
 * that is not there). The caller's credentials are asked of the bus driver
 * once per connection (caller_creds_cached()). Members outside the table
 * pass the filter and get sd-bus's own answer (UnknownMethod, Introspect,
 * Peer); manager_bus_start() refuses to serve a method the table lacks.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "access/access-methods.h"
#include "access/ratelimit.h"
#include "common/log.h"
#include "common/message-ids.h"
#include "access/creds-cache.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/bus-names.h"
#include "fleetidd/manager-sensors.h"
#include "fleetidd/manager.h"
#include "fleetidd/manager-jobs.h"
#include "store/state-certs-cache.h"

/* Groups of a caller taken into account, at most (NGROUPS_MAX is 65536). */
#define BUS_CALLER_GIDS_MAX 65536u
/* Refusals logged per uid (deny_log_allowed()). */
#define BUS_DENY_LOG_PER_MINUTE 6u
#define BUS_DENY_LOG_BURST 10u
/* Bus peers whose credentials are kept (lib/access/creds-cache.h). */
#define BUS_CREDS_CACHE_MAX 256u
/* fleetidd's own calls on the bus (the bus driver's answers), at most. */
#define BUS_DRIVER_TIMEOUT_USEC (5ULL * 1000000ULL)

static uint64_t sec_to_usec(int64_t sec) {
        return sec > 0 ? (uint64_t) sec * 1000000ULL : 0;
}

/* ---- properties ---- */

static int prop_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", strempty(daemon_state_to_string(m->state)));
}

static int prop_enrolled(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", manager_identity_valid_until(userdata, time(NULL)) > 0);
}

static int prop_subject(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", strempty(m->cert_subject));
}

static int prop_serial(sd_bus *bus, const char *path, const char *interface, const char *property,
                       sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", strempty(m->renew_serial));
}

/* The time properties, µs since the epoch, 0 = none (as systemd's). */
static int prop_time(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int64_t sec = 0;

        if (strcmp(property, "NotBefore") == 0)
                sec = m->cert_not_before;
        else if (strcmp(property, "NotAfter") == 0)
                sec = m->cert_not_after;
        else if (strcmp(property, "RenewDue") == 0)
                sec = m->renew_due;
        else if (strcmp(property, "LastSuccess") == 0)
                sec = m->last_success > INT64_MAX ? 0 : (int64_t) m->last_success;
        else
                return -EINVAL;
        return sd_bus_message_append(reply, "t", sec_to_usec(sec));
}

static int prop_last_error(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->last_error);
}

static int prop_severity(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", strempty(severity_to_string(m->severity)));
}

static int prop_tpm_lockout(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "b", m->tpm_lockout);
}

static int prop_trust_generation(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "t", m->trust_generation);
}

static int prop_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", FLEETID_VERSION);
}

/* ---- methods ---- */

/* Replies with the certificates of a state file as aay (DER, in file order),
 * from `cache` (lib/store/state-certs-cache.h: read again only when the file
 * changed). */
static int reply_certs(sd_bus_message *msg, StateCertsCache *cache, const char *what, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const StateCertDer *certs = NULL;
        size_t n = 0;
        Diag d = {};
        int r;

        if (!cache)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "cannot read the %s: out of memory",
                                         what);
        r = state_certs_cache_get(cache, &certs, &n, &d);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_ENROLLED, "no %s: %s", what, diag_text(&d, r));
        if (r < 0) {
                log_warning_errno(r, "cannot read the %s for a D-Bus caller: %s", what, diag_text(&d, r));
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "cannot read the %s: %s", what,
                                         diag_text(&d, r));
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "ay");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append_array(reply, 'y', certs[i].der, certs[i].len);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_certificate_chain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return reply_certs(msg, m->bus_chain, "operational certificate", error);
}

static int method_get_trust_bundle(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return reply_certs(msg, m->bus_bundle, "EST CA set", error);
}

static int method_renew(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uid_t uid = 0;
        Job *j = NULL;
        int r;

        r = manager_bus_caller(m, msg, &uid);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Renew: the caller is unknown");
        r = manager_renew_job_request(m, uid, &j);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_ENROLLED,
                                         "Renew: there is no usable operational certificate to renew "
                                         "(state %s); fleetidd enrolls first",
                                         strempty(daemon_state_to_string(m->state)));
        if (r == -EBUSY)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         "Renew: %u jobs are not finished, the most fleetidd keeps; try again "
                                         "once one has finished",
                                         JOBS_LIVE_MAX);
        if (r == -ESHUTDOWN)
                return sd_bus_error_set(error, BUS_ERROR_BUSY,
                                        "Renew: a factory reset is in progress; the identity it enrolls is "
                                        "renewed on its own schedule");
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "o", job_path(j));
}

/* FactoryReset(a{sv} options): "enroll" (b, default true) is the only option. */
static int method_factory_reset(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        bool enroll = true;
        uid_t uid = 0;
        Job *j = NULL;
        Diag d = {};
        int r;

        r = manager_bus_caller(m, msg, &uid);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "FactoryReset: the caller is unknown");
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key;
                int b;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "enroll") != 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "FactoryReset: unknown option '%s' (the only one is 'enroll', b); "
                                                 "nothing was changed",
                                                 key);
                r = sd_bus_message_read(msg, "v", "b", &b);
                if (r < 0)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                                "FactoryReset: the option 'enroll' must be a boolean (b); nothing "
                                                "was changed");
                enroll = b;
                r = sd_bus_message_exit_container(msg);
        }
        if (r < 0 || (r = sd_bus_message_exit_container(msg)) < 0)
                return r;
        r = manager_reset_job_request(m, uid, enroll, &j, &d);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         "FactoryReset: %u jobs are not finished, the most fleetidd keeps; try "
                                         "again once one has finished",
                                         JOBS_LIVE_MAX);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "FactoryReset: %s", diag_text(&d, r));
        return sd_bus_reply_method_return(msg, "o", job_path(j));
}

#define PROP(name, sig, get) SD_BUS_PROPERTY(name, sig, get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION)

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        PROP("State", "s", prop_state),
        PROP("Enrolled", "b", prop_enrolled),
        PROP("Subject", "s", prop_subject),
        PROP("Serial", "s", prop_serial),
        PROP("NotBefore", "t", prop_time),
        PROP("NotAfter", "t", prop_time),
        PROP("RenewDue", "t", prop_time),
        PROP("LastSuccess", "t", prop_time),
        PROP("LastError", "s", prop_last_error),
        PROP("Severity", "s", prop_severity),
        SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("GetCertificateChain", SD_BUS_NO_ARGS, SD_BUS_RESULT("aay", certificates),
                                method_get_certificate_chain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetTrustBundle", SD_BUS_NO_ARGS, SD_BUS_RESULT("aay", certificates),
                                method_get_trust_bundle, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SignChallenge", SD_BUS_ARGS("ay", nonce, "s", purpose, "a{sv}", options),
                                SD_BUS_RESULT("ay", signature, "s", algorithm, "aay", chain),
                                manager_bus_sign_challenge, SD_BUS_VTABLE_UNPRIVILEGED),
        PROP("TpmLockout", "b", prop_tpm_lockout),
        SD_BUS_SIGNAL_WITH_ARGS("JobNew", SD_BUS_ARGS("u", id, "o", job, "s", kind), 0),
        SD_BUS_SIGNAL_WITH_ARGS("JobRemoved", SD_BUS_ARGS("u", id, "o", job, "s", kind, "s", result), 0),
        SD_BUS_METHOD_WITH_ARGS("Renew", SD_BUS_NO_ARGS, SD_BUS_RESULT("o", job), method_renew,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("CertificateChanged", SD_BUS_ARGS("s", serial, "t", not_after), 0),
        SD_BUS_SIGNAL_WITH_ARGS("TrustBundleChanged", SD_BUS_ARGS("t", generation), 0),
        PROP("TrustGeneration", "t", prop_trust_generation),
        SD_BUS_METHOD_WITH_ARGS("GetSensorChallenge", SD_BUS_ARGS("s", sensor_id), SD_BUS_RESULT("ay", nonce),
                                method_get_sensor_challenge, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RequestSensorCertificate",
                                SD_BUS_ARGS("s", sensor_id, "ay", csr, "ay", evidence, "a{sv}", options),
                                SD_BUS_RESULT("o", job), method_request_sensor_certificate,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListSensors", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssttt)", sensors),
                                method_list_sensors, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ForgetSensor", SD_BUS_ARGS("s", sensor_id), SD_BUS_NO_RESULT,
                                method_forget_sensor, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("SensorCertificateDue", SD_BUS_ARGS("s", sensor_id, "t", not_after), 0),
        SD_BUS_METHOD_WITH_ARGS("FactoryReset", SD_BUS_ARGS("a{sv}", options), SD_BUS_RESULT("o", job),
                                method_factory_reset, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- access control ---- */

/* The caller's effective uid and groups, from the bus driver
 * (GetConnectionCredentials: UnixUserID and UnixGroupIDs, which dbus-daemon
 * takes from the socket, SO_PEERCRED and SO_PEERGROUPS, at connect time).
 * Never from /proc (SD_CREDS_AUGMENT): a process can change its
 * credentials or exit and have its PID reused between the call and the read.
 * sd_bus_query_sender_creds() would be this same call, but the libsystemd of
 * Debian 12 does not read UnixGroupIDs from the answer, so group grants would
 * never match. */
static int caller_creds(sd_bus_message *msg, uid_t *ret_uid, gid_t **ret_gids, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ gid_t *gids = NULL;
        const char *sender = sd_bus_message_get_sender(msg);
        bool have_uid = false;
        uint32_t uid = 0;
        size_t n = 0;
        int r;

        if (!sender)
                return -ENXIO;
        r = sd_bus_call_method(sd_bus_message_get_bus(msg), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionCredentials", &err, &reply, "s", sender);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "UnixUserID") == 0) {
                        r = sd_bus_message_read(reply, "v", "u", &uid);
                        have_uid = r >= 0;
                } else if (strcmp(key, "UnixGroupIDs") == 0) {
                        const void *p;
                        size_t size;

                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_read_array(reply, 'u', &p, &size);
                        if (r >= 0 && size / sizeof(uint32_t) <= BUS_CALLER_GIDS_MAX && size > 0) {
                                free(gids); /* a second UnixGroupIDs: the last counts */
                                gids = malloc(size);
                                if (!gids)
                                        return -ENOMEM;
                                memcpy(gids, p, size);
                                n = size / sizeof(uint32_t);
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (!have_uid)
                return -ENODATA;
        *ret_uid = uid;
        *ret_gids = TAKE_PTR(gids);
        *ret_n = n;
        return 0;
}

/* caller_creds(), asked once per connection: the answer is cached by the
 * sender's unique name (lib/access/creds-cache.h says why that is sound: the
 * bus takes the credentials when the peer connects, and never gives its
 * unique name to another connection). The entry goes when NameOwnerChanged
 * says the peer left (on_name_owner_changed()); LRU beyond
 * BUS_CREDS_CACHE_MAX peers. The groups are copied into `into`'s buffer,
 * which is kept from call to call: a call costs no allocation. */
static int caller_creds_cached(Manager *m, sd_bus_message *msg, BusCaller *into) {
        const char *sender = sd_bus_message_get_sender(msg);
        _cleanup_free_ gid_t *asked = NULL;
        const gid_t *gids = NULL;
        size_t n = 0;
        uid_t uid;
        int r;

        if (!m->bus_creds || !sender || !creds_cache_get(m->bus_creds, sender, &uid, &gids, &n)) {
                r = caller_creds(msg, &uid, &asked, &n);
                if (r < 0)
                        return r;
                if (m->bus_creds && creds_cache_put(m->bus_creds, sender, uid, asked, n) < 0)
                        log_debug("D-Bus: the credentials of %s are not cached (%zu groups)", sender, n);
                gids = asked;
        }
        if (n > into->gids_allocated) {
                gid_t *grown = realloc(into->gids, n * sizeof(gid_t));

                if (!grown)
                        return -ENOMEM;
                into->gids = grown;
                into->gids_allocated = n;
        }
        if (n > 0)
                memcpy(into->gids, gids, n * sizeof(gid_t));
        into->uid = uid;
        into->n_gids = n;
        return 0;
}

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *unused) {
        Manager *m = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (m->bus_creds && name[0] == ':' && isempty(new_owner))
                creds_cache_forget(m->bus_creds, name);
        return 0;
}

/* The access table's row for a method call to an object serving `served`
 * (the manager's interface, or a job's), NULL if the filter has nothing to
 * decide (sd-bus answers: Introspect, Peer, unknown members, another
 * interface's properties). -EPERM for a call that names no interface (the
 * D-Bus specification allows it): libsystemd 252 dispatches such a call to no
 * vtable (UnknownObject), but that the check holds must not depend on it. */
static int call_row(sd_bus_message *msg, const char *served, const AccessMethod **ret) {
        const char *interface = sd_bus_message_get_interface(msg);
        const char *member = sd_bus_message_get_member(msg);
        const char *target = NULL;
        int r;

        *ret = NULL;
        if (!interface)
                return -EPERM;
        if (strcmp(interface, served) == 0) {
                *ret = access_method_find(served, member, NULL);
                return 0;
        }
        if (strcmp(interface, "org.freedesktop.DBus.Properties") != 0 ||
            (strcmp(member, "Get") != 0 && strcmp(member, "GetAll") != 0 && strcmp(member, "Set") != 0))
                return 0;
        /* Get(s interface, s name), GetAll(s interface), Set(s interface, s name,
         * v value): whose properties. None is writable: Set gets sd-bus's
         * PropertyReadOnly, but only for a caller that may read them. */
        r = sd_bus_message_read(msg, "s", &target);
        /* sd-bus reads the arguments again from the start. */
        if (sd_bus_message_rewind(msg, true) < 0 || r < 0)
                return 0; /* sd-bus refuses the bad arguments itself */
        /* An empty interface is every interface's properties to sd-bus
         * (GetAll("") answers them all): as strict as the served one's. */
        if (streq_ptr(target, served) || isempty(target))
                *ret = access_method_find(served, ACCESS_MEMBER_PROPERTIES, NULL);
        return 0;
}

/* What the filter returns once it has answered a call itself (a refusal):
 * > 0, so that sd-bus goes no further with it. sd_bus_reply_method_error*()
 * sends nothing and returns 0 for a call flagged NO_REPLY_EXPECTED
 * (dbus-send's default), and a filter's 0 means "dispatch on": returned as
 * is, such a call would reach the vtable without its role. A negative value
 * (the reply could not be sent) ends the call too (sd-bus answers it). */
static int refused(int r) {
        return r < 0 ? r : 1;
}

/* Whether to log this refusal: at most BUS_DENY_LOG_BURST at once and
 * BUS_DENY_LOG_PER_MINUTE a minute per uid, so that a caller cannot flood the
 * journal (whose per-service rate limit would then drop fleetidd's other
 * messages). Past that the caller is still refused, and counted: the uid's
 * next refusal logged is preceded by how many of its refusals were not (with
 * the same MESSAGE_ID and the uid), so every refusal is in the log, alone or
 * in a count. */
static bool deny_log_allowed(Manager *m, uid_t uid) {
        uint32_t unlogged = 0;
        uint64_t now = 0;

        if (!m->bus_deny_log || sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return true;
        if (!ratelimit_take_counted(m->bus_deny_log, uid, now, NULL, &unlogged))
                return false;
        if (unlogged > 0)
                log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BUS_ACCESS_DENIED,
                           "D-Bus: %" PRIu32 " refusal(s) of uid %u not logged (at most %u a minute per uid)",
                           unlogged, (unsigned) uid, BUS_DENY_LOG_PER_MINUTE);
        return true;
}

/* The rate limit of the member's class (lib/access/ratelimit.h): 0 to go on,
 * else the RateLimited reply was sent (> 0) or failed (< 0). */
static int rate_check(Manager *m, sd_bus_message *msg, const AccessMethod *row, uid_t uid) {
        uint64_t now = 0, retry = 0;

        if (row->rate == ACCESS_RATE_NONE || !m->bus_rate[row->rate])
                return 0;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        if (ratelimit_take(m->bus_rate[row->rate], uid, now, &retry))
                return 0;
        return refused(sd_bus_reply_method_errorf(
                msg, BUS_ERROR_RATE_LIMITED,
                "%s: uid %u is over its rate limit for '%s' calls; retry in %" PRIu64
                " ms (access.%s_per_minute, access.%s_burst)",
                row->member, (unsigned) uid, access_rate_class_to_string(row->rate), (retry + 999) / 1000,
                access_rate_class_to_string(row->rate), access_rate_class_to_string(row->rate)));
}

int manager_bus_caller(Manager *m, sd_bus_message *msg, uid_t *ret_uid) {
        if (!msg || m->bus_caller.msg != msg)
                return -ESRCH;
        *ret_uid = m->bus_caller.uid;
        return 0;
}

bool manager_bus_caller_has(Manager *m, sd_bus_message *msg, AccessRole role) {
        return msg && m->bus_caller.msg == msg &&
               access_check(m->access, m->bus_caller.uid, m->bus_caller.gids, m->bus_caller.n_gids, role);
}

static int on_call(sd_bus_message *msg, void *userdata, sd_bus_error *unused) {
        Manager *m = userdata;
        BusCaller *caller = &m->bus_caller;
        const AccessMethod *row = NULL;
        const char *path = sd_bus_message_get_path(msg);
        const char *member, *served;
        Job *job = NULL;
        bool allowed;
        int r;

        if (!sd_bus_message_is_method_call(msg, NULL, NULL) || !path)
                return 0;
        if (strcmp(path, BUS_PATH) == 0)
                served = BUS_INTERFACE;
        else if (strncmp(path, BUS_JOB_PREFIX "/", strlen(BUS_JOB_PREFIX "/")) == 0)
                served = BUS_JOB_INTERFACE;
        else
                return 0;
        member = sd_bus_message_get_member(msg);
        r = call_row(msg, served, &row);
        /* Whatever follows, the caller recorded last is not this call's. */
        caller->msg = NULL;
        if (r == -EPERM) {
                if (caller_creds_cached(m, msg, caller) < 0)
                        log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BUS_ACCESS_DENIED,
                                   "D-Bus: refused %s on %s to %s (uid unknown): the call names no interface",
                                   strempty(member), path, strempty(sd_bus_message_get_sender(msg)));
                else if (deny_log_allowed(m, caller->uid))
                        log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BUS_ACCESS_DENIED,
                                   "D-Bus: refused %s on %s to uid %u: the call names no interface",
                                   strempty(member), path, (unsigned) caller->uid);
                return refused(sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_ACCESS_DENIED,
                                                          "a call to %s must name its interface (member %s)",
                                                          path, strempty(member)));
        }
        if (!row)
                return 0;
        if (row->job_owner) {
                job = manager_job_from_path(m, path);
                if (!job)
                        return refused(sd_bus_reply_method_errorf(
                                msg, BUS_ERROR_NO_SUCH_JOB,
                                "no job %s: never created, or finished more than %llu s ago (finished jobs are "
                                "kept that long, at most %u of them)",
                                path, JOB_FINISHED_KEEP_USEC / 1000000ULL, JOBS_FINISHED_MAX));
        }
        r = caller_creds_cached(m, msg, caller);
        if (r < 0) {
                log_struct(LOG_WARNING, r, FLEETID_MESSAGE_BUS_ACCESS_DENIED,
                           "D-Bus: refused %s to %s (uid unknown): cannot get its credentials: %m",
                           row->member, strempty(sd_bus_message_get_sender(msg)));
                return refused(sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_ACCESS_DENIED,
                                                          "%s: the caller's credentials are unknown",
                                                          row->member));
        }
        allowed = job ? access_check_job(m->access, caller->uid, caller->gids, caller->n_gids, job_owner(job))
                      : access_check(m->access, caller->uid, caller->gids, caller->n_gids, row->role);
        if (allowed) {
                r = rate_check(m, msg, row, caller->uid);
                if (r != 0)
                        return r;
                /* on to the vtable, whose handler may ask manager_bus_caller() */
                caller->msg = msg;
                return 0;
        }
        if (job) {
                /* Nothing about the job: not its kind, not its owner. */
                if (deny_log_allowed(m, caller->uid))
                        log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BUS_ACCESS_DENIED,
                                   "D-Bus: refused %s on %s to uid %u: a job is for its owner and admins only",
                                   row->member, path, (unsigned) caller->uid);
                return refused(sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_ACCESS_DENIED,
                                                          "%s on %s: a job is for the uid that started it and for "
                                                          "admins only, and uid %u is neither",
                                                          row->member, path, (unsigned) caller->uid));
        }
        return manager_bus_refuse(m, msg, row, caller->uid);
}

int manager_bus_refuse(Manager *m, sd_bus_message *msg, const AccessMethod *row, uid_t uid) {
        const char *with = row->variant ? " with " : "", *variant = strempty(row->variant);

        if (deny_log_allowed(m, uid))
                log_struct(LOG_NOTICE, 0, FLEETID_MESSAGE_BUS_ACCESS_DENIED,
                           "D-Bus: refused %s%s%s to uid %u: it needs the role '%s', which %s does not grant it",
                           row->member, with, variant, (unsigned) uid, access_role_to_string(row->role),
                           m->access && m->access->path ? m->access->path : "the (absent) access policy");
        return refused(sd_bus_reply_method_errorf(
                msg, SD_BUS_ERROR_ACCESS_DENIED,
                "%s%s%s needs the role '%s', which uid %u does not hold (see %s)", row->member, with,
                variant, access_role_to_string(row->role), (unsigned) uid, m->config->access_file));
}

/* ---- the connection ---- */

static void bus_drop(Manager *m) {
        m->bus_slot = sd_bus_slot_unref(m->bus_slot);
        m->bus = sd_bus_flush_close_unref(m->bus);
        m->bus_creds = creds_cache_free(m->bus_creds);
}

static int on_name(sd_bus_message *reply, void *userdata, sd_bus_error *unused) {
        Manager *m = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t ret = 0;

        if (e) {
                log_warning("D-Bus: cannot own %s: %s; the D-Bus API is off until fleetidd restarts, the "
                            "identity work goes on",
                            BUS_NAME, e->message ?: e->name);
                bus_drop(m);
                return 0;
        }
        if (sd_bus_message_read(reply, "u", &ret) < 0 || (ret != 1 && ret != 4)) {
                log_warning("D-Bus: %s is owned by another process; the D-Bus API is off until fleetidd "
                            "restarts, the identity work goes on",
                            BUS_NAME);
                bus_drop(m);
                return 0;
        }
        log_info("D-Bus: serving %s on %s", BUS_NAME, BUS_PATH);
        return 0;
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *unused) {
        Manager *m = userdata;

        log_warning("D-Bus: the bus connection was lost; the D-Bus API is off until fleetidd restarts, the "
                    "identity work goes on");
        bus_drop(m);
        return 0;
}

/* Every method a vtable serves has a row in the access table. */
static int vtable_checked(const sd_bus_vtable *vtable, const char *interface) {
        for (const sd_bus_vtable *v = vtable; v->type != _SD_BUS_VTABLE_END; v++)
                if (v->type == _SD_BUS_VTABLE_METHOD &&
                    !access_method_find(interface, v->x.method.member, NULL))
                        return log_error_errno(-EPERM,
                                               "D-Bus: %s.%s has no row in the access table; not serving",
                                               interface, v->x.method.member);
        return 0;
}

static void load_access(Manager *m) {
        Diag d = {};
        int r;

        r = access_policy_load(m->config->access_file, 0, &m->access, &d);
        if (r == -ENOENT) {
                log_info("D-Bus: no access policy %s: root is admin, others may only call GetTrustBundle",
                         m->config->access_file);
                return;
        }
        if (r < 0)
                log_error_errno(r,
                                "D-Bus: access policy rejected: %s; no grants until it is fixed and fleetidd "
                                "restarts (root is admin, others may only call GetTrustBundle)",
                                diag_text(&d, r));
        else
                log_info("D-Bus: access policy %s: %zu grant(s)", m->config->access_file, m->access->n_grants);
}

int manager_bus_start(Manager *m) {
        int r;

        r = vtable_checked(agent_vtable, BUS_INTERFACE);
        if (r >= 0)
                r = vtable_checked(manager_jobs_vtable(), BUS_JOB_INTERFACE);
        if (r < 0)
                return r;
        load_access(m);
        r = ratelimit_new(&m->bus_deny_log, BUS_DENY_LOG_PER_MINUTE, BUS_DENY_LOG_BURST,
                          RATELIMIT_UIDS_MIN * 16);
        if (r < 0)
                return log_error_errno(r, "D-Bus: cannot set up the refusal log's rate limit: %m");
        r = ratelimit_new(&m->bus_rate[ACCESS_RATE_SIGN], m->config->access_sign_per_minute,
                          m->config->access_sign_burst, m->config->access_tracked_uids);
        if (r >= 0)
                r = ratelimit_new(&m->bus_rate[ACCESS_RATE_SENSOR], m->config->access_sensor_per_minute,
                                  m->config->access_sensor_burst, m->config->access_tracked_uids);
        if (r < 0)
                return log_error_errno(r, "D-Bus: cannot set up the per-uid rate limits: %m");
        r = creds_cache_new(BUS_CREDS_CACHE_MAX, &m->bus_creds);
        if (r >= 0)
                r = state_certs_cache_new(m->store, STATE_OPERATIONAL_CERT, &m->bus_chain);
        if (r >= 0)
                r = state_certs_cache_new(m->store, STATE_TRUST_ANCHORS, &m->bus_bundle);
        if (r < 0)
                return log_error_errno(r, "D-Bus: cannot set up the caches: %m");
        r = sd_bus_open_system_with_description(&m->bus, "fleetidd");
        if (r < 0) {
                log_warning_errno(r, "D-Bus: cannot connect to the system bus: %m; the D-Bus API is off, the "
                                     "identity work goes on");
                return 0;
        }
        /* The access check asks the bus driver for each caller's credentials,
         * on the loop: bound the wait for a stuck bus. */
        r = sd_bus_set_method_call_timeout(m->bus, BUS_DRIVER_TIMEOUT_USEC);
        if (r >= 0)
                r = sd_bus_add_filter(m->bus, NULL, on_call, m);
        if (r >= 0)
                r = sd_bus_add_object_vtable(m->bus, &m->bus_slot, BUS_PATH, BUS_INTERFACE, agent_vtable, m);
        if (r >= 0)
                r = manager_jobs_bus_start(m);
        if (r >= 0)
                r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus.Local", NULL,
                                              "org.freedesktop.DBus.Local", "Disconnected", on_disconnected,
                                              NULL, m);
        /* Before any call is served: no peer leaves unnoticed once cached. */
        if (r >= 0)
                r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                              "org.freedesktop.DBus", "NameOwnerChanged",
                                              on_name_owner_changed, NULL, m);
        if (r >= 0)
                r = sd_bus_request_name_async(m->bus, NULL, BUS_NAME, 0, on_name, m);
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                log_warning_errno(
                        r, "D-Bus: cannot set up %s: %m; the D-Bus API is off, the identity work goes on",
                        BUS_NAME);
                bus_drop(m);
        }
        return 0;
}

void manager_bus_stop(Manager *m) {
        bus_drop(m);
        m->access = access_policy_free(m->access);
        m->bus_deny_log = ratelimit_free(m->bus_deny_log);
        m->bus_creds = creds_cache_free(m->bus_creds);
        m->bus_chain = state_certs_cache_free(m->bus_chain);
        m->bus_bundle = state_certs_cache_free(m->bus_bundle);
        for (size_t i = 0; i < ELEMENTSOF(m->bus_rate); i++)
                m->bus_rate[i] = ratelimit_free(m->bus_rate[i]);
        free(m->bus_caller.gids);
        m->bus_caller = (BusCaller) {};
        free(m->bus_seen.subject);
        free(m->bus_seen.serial);
        m->bus_seen = (BusSnapshot) {};
}

void manager_bus_changed(Manager *m) {
        static const char *const names[] = {
                "State",    "Enrolled",    "Subject",   "Serial",   "NotBefore",  "NotAfter",
                "RenewDue", "LastSuccess", "LastError", "Severity", "TpmLockout",
        };
        uint64_t now = (uint64_t) time(NULL);
        BusSnapshot s = {
                .state = m->state,
                .enrolled = manager_identity_valid_until(m, (time_t) now) > 0,
                .not_before = m->cert_not_before,
                .not_after = m->cert_not_after,
                .renew_due = m->renew_due,
                .last_success = m->last_success,
                .severity = m->severity,
                .tpm_lockout = m->tpm_lockout,
        };
        const char *changed[ELEMENTSOF(names) + 1] = {};
        size_t n = 0;
        BusSnapshot *o = &m->bus_seen;
        int r;

        if (!m->bus)
                return;
        bool differ[ELEMENTSOF(names)] = {
                !o->known || o->state != s.state,
                !o->known || o->enrolled != s.enrolled,
                !o->known || !streq_ptr(o->subject, m->cert_subject),
                !o->known || !streq_ptr(o->serial, m->renew_serial),
                !o->known || o->not_before != s.not_before,
                !o->known || o->not_after != s.not_after,
                !o->known || o->renew_due != s.renew_due,
                !o->known || o->last_success != s.last_success,
                !o->known || strcmp(o->last_error, m->last_error) != 0,
                !o->known || o->severity != s.severity,
                !o->known || o->tpm_lockout != s.tpm_lockout,
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (differ[i])
                        changed[n++] = names[i];
        if (n == 0)
                return;
        s.subject = m->cert_subject ? strdup(m->cert_subject) : NULL;
        s.serial = m->renew_serial ? strdup(m->renew_serial) : NULL;
        snprintf(s.last_error, sizeof(s.last_error), "%s", m->last_error);
        s.known = (!m->cert_subject || s.subject) && (!m->renew_serial || s.serial);
        free(o->subject);
        free(o->serial);
        *o = s;
        r = sd_bus_emit_properties_changed_strv(m->bus, BUS_PATH, BUS_INTERFACE, (char **) changed);
        if (r < 0)
                log_debug("D-Bus: cannot emit PropertiesChanged: %s", strerror(-r));
}
