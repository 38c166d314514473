/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * message-ids.h: the journal MESSAGE_IDs fleetid logs with log_struct().
 *
 * Each has an entry in systemd/fleetid.catalog explaining what happened and
 * what to do ("journalctl -x" shows it, "journalctl MESSAGE_ID=..." finds the
 * events). Every ID is random (systemd-id128 new); six early ones were
 * hand-typed patterns and were replaced before any release. An ID never changes
 * meaning once released: a new kind of event gets a new ID.
 * tests/integration/test-hook-check.sh checks that every ID here has a catalog
 * entry and vice versa.
 */
#pragma once

/* The first operational certificate was enrolled and stored. */
#define FLEETID_MESSAGE_ENROLLED "077d848aae0a4a58ab3970eebe22264e"
/* An enrollment attempt failed; fleetidd retries unless the error is permanent. */
#define FLEETID_MESSAGE_ENROLLMENT_FAILED "0a24965ba0844ecb881d25a5aee817cd"
/* The operational certificate was renewed and the new one stored. */
#define FLEETID_MESSAGE_RENEWED "ef6ffa87076849dc90460c7ad1141147"
/* A renewal attempt failed; fleetidd retries, more often as expiry nears. */
#define FLEETID_MESSAGE_RENEWAL_FAILED "efd5b321348a40218e1bbd49f0402f5f"
/* The certificate's severity rose (warning, error, critical, expired). */
#define FLEETID_MESSAGE_CERT_EXPIRING "ade40579230e4654bc0e097cff2764c4"
/* The EST server's CA certificates (/cacerts) changed: a CA rollover. */
#define FLEETID_MESSAGE_CA_CHANGED "0b5ac370c9954af29568d01d4ddadf72"
/* The system clock is not believable (before the build date or the birth
 * certificate's notBefore); fleetidd waits for time synchronization. */
#define FLEETID_MESSAGE_CLOCK_UNSYNCHRONIZED "1b7d5e3176804e439e6f079679dc3f07"
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
/* A D-Bus caller was refused a member of org.fleetid.Agent1 (access.conf). */
#define FLEETID_MESSAGE_BUS_ACCESS_DENIED "0213cc7245c24a6184ebff04594a2ba2"
/* The TPM was cleared (TPM2_Clear): its storage root key changed, its
 * endorsement key did not; the operational key is gone and fleetidd enrolls
 * again with the birth identity. */
#define FLEETID_MESSAGE_TPM_CLEARED "016a26b96a644a478086c27e81efbad9"
/* The TPM is another one (its endorsement key changed): the birth certificate
 * is not for it, and fleetidd does not enroll. */
#define FLEETID_MESSAGE_TPM_REPLACED "823d1212a1df42d3a642520ad1338d71"
/* The birth key was gone from its persistent handle (TPM2_Clear evicts it)
 * and was made again from its TCG IDevID template: the same key. */
#define FLEETID_MESSAGE_BIRTH_KEY_RECREATED "39d876af48d84d38b5e6e26c26068011"
/* A factory reset wiped the operational identity (who asked, the old
 * certificate, the keys evicted, the new owner, the result). */
#define FLEETID_MESSAGE_FACTORY_RESET "b8cb1685e8a24c81b3e723bc5eab20ec"
/* A factory reset ended: the new owner's operational certificate is stored. */
#define FLEETID_MESSAGE_FACTORY_RESET_ENROLLED "e49223aa676f48eabfe5258c6696ae5b"
/* The birth key lacks noDA (the TCG IDevID template as it is): a TPM in
 * dictionary-attack lockout refuses it, and the device cannot enroll then. */
#define FLEETID_MESSAGE_BIRTH_KEY_DA "7367a7a1183f4bc5b06c3d5e892ef997"
/* The birth certificate has expired on the system clock: fleetidd does not
 * send it, and waits (state birth-expired) for the clock or a new certificate. */
#define FLEETID_MESSAGE_BIRTH_EXPIRED "af6c82a512bd4d188ccc2b52bebf51f4"
