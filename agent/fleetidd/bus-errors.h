/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-errors.h: the error names of org.fleetid.Agent1 (docs/dbus-api.md,
 * "Errors"). Every error a member returns carries a message that names what
 * was wrong; the standard org.freedesktop.DBus.Error.AccessDenied and
 * InvalidArgs are used as D-Bus defines them.
 */
#pragma once

#define BUS_ERROR_PREFIX "org.fleetid.Agent1.Error."

#define BUS_ERROR_NOT_ENROLLED BUS_ERROR_PREFIX "NotEnrolled"
#define BUS_ERROR_BUSY BUS_ERROR_PREFIX "Busy"
#define BUS_ERROR_TPM_UNAVAILABLE BUS_ERROR_PREFIX "TpmUnavailable"
#define BUS_ERROR_TPM_LOCKOUT BUS_ERROR_PREFIX "TpmLockout"
#define BUS_ERROR_POLICY_VIOLATION BUS_ERROR_PREFIX "PolicyViolation"
#define BUS_ERROR_INVALID_CSR BUS_ERROR_PREFIX "InvalidCsr"
#define BUS_ERROR_INVALID_EVIDENCE BUS_ERROR_PREFIX "InvalidEvidence"
#define BUS_ERROR_ENROLL_REJECTED BUS_ERROR_PREFIX "EnrollRejected"
#define BUS_ERROR_SERVER_UNREACHABLE BUS_ERROR_PREFIX "ServerUnreachable"
#define BUS_ERROR_RATE_LIMITED BUS_ERROR_PREFIX "RateLimited"
#define BUS_ERROR_NO_SUCH_JOB BUS_ERROR_PREFIX "NoSuchJob"
#define BUS_ERROR_NO_SUCH_SENSOR BUS_ERROR_PREFIX "NoSuchSensor"
/* a job ended by Cancel() or by fleetidd stopping (GetResult) */
#define BUS_ERROR_CANCELED BUS_ERROR_PREFIX "Canceled"
