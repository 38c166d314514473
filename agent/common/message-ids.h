/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * message-ids.h: the journal MESSAGE_IDs fleetid logs with log_struct().
 *
 * Each has an entry in systemd/fleetid.catalog explaining what happened and
 * what to do ("journalctl -x" shows it, "journalctl MESSAGE_ID=..." finds the
 * events). An ID never changes meaning once released: a new kind of event
 * gets a new ID (systemd-id128 new). tests/integration/test-hook-check.sh
 * checks that every ID here has a catalog entry and vice versa.
 */
#pragma once

/* The first operational certificate was enrolled and stored. */
#define FLEETID_MESSAGE_ENROLLED "3f1c6e2a8b7d4c0e9a5b1d2f4e6a8c01"
/* An enrollment attempt failed; fleetidd retries unless the error is permanent. */
#define FLEETID_MESSAGE_ENROLLMENT_FAILED "8d2b4f6a1c3e4a5b9e7d0c2f4a6b8d02"
/* The operational certificate was renewed and the new one stored. */
#define FLEETID_MESSAGE_RENEWED "5b0d8a3e6f2c4e1b9c7a2d4f6e8b0a13"
/* A renewal attempt failed; fleetidd retries, more often as expiry nears. */
#define FLEETID_MESSAGE_RENEWAL_FAILED "a7c3e5f1b9d24c6e8a0b2d4f6c8e1a24"
/* The certificate's severity rose (warning, error, critical, expired). */
#define FLEETID_MESSAGE_CERT_EXPIRING "ade40579230e4654bc0e097cff2764c4"
/* The EST server's CA certificates (/cacerts) changed: a CA rollover. */
#define FLEETID_MESSAGE_CA_CHANGED "c2e4a6b8d0f24e1a9c3b5d7f9e1a3c35"
/* The system clock is not believable (before the build date or the birth
 * certificate's notBefore); fleetidd waits for time synchronization. */
#define FLEETID_MESSAGE_CLOCK_UNSYNCHRONIZED "e6a8c0b2d4f64a1c8e0a2c4e6b8d0f46"
/* The monitoring hook could not be run, failed, or was killed at its timeout. */
#define FLEETID_MESSAGE_HOOK_FAILED "4f20fa7a332547d9ade41631ae5f2bac"
/* A new EST root CA certificate was adopted as a trust anchor (RFC 7030 4.1.3). */
#define FLEETID_MESSAGE_CA_ROOT_ADOPTED "0047154604be4c59969047b070aae314"
/* An expired EST root CA certificate was retired from the trust anchors. */
#define FLEETID_MESSAGE_CA_ROOT_RETIRED "d6a5a82781fc404a8d78c063e9dce6fe"
/* /cacerts offered a new root CA certificate that nothing links to a trusted root. */
#define FLEETID_MESSAGE_CA_ROOT_REFUSED "f6e3b7db8f0a4db2a724f7777427e589"
/* The periodic /cacerts refresh failed; retried at the next period. */
#define FLEETID_MESSAGE_CA_REFRESH_FAILED "18623f9ad67d4d15ba1475cee50c1d26"
