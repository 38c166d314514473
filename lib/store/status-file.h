/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * status-file.h: the small key=value status record the daemon writes and
 * fleetidctl reads (STATE_STATUS in the state directory, and a copy of it in
 * the runtime directory, which also tells when the state directory cannot be
 * written).
 *
 * Format: one "key=value" per line, in a fixed order. Values are escaped so that
 * each stays on one line: '\n' as "\n", '\' as "\\", and every other byte that is
 * not printable ASCII as "\xHH". Empty lines and lines starting with '#' are
 * ignored, unknown keys too (a newer daemon may add some). Absent keys keep
 * their zero value; only state= is required.
 */
#pragma once

#include <stdint.h>

#include "store/state-store.h"
#include "util/diag.h"

/* Lines longer than this (escaped, without the newline) are refused. */
#define STATUS_LINE_MAX 4096
/* Bound on the whole status file when loading it. */
#define STATUS_FILE_MAX (64 * 1024)

typedef struct StatusRecord {
        /* a name from monitor/daemon-state.h (not checked here: fleetidctl check does) */
        char *state;
        char *last_error;         /* one line, NULL if none */
        uint64_t updated;         /* unix seconds of the write */
        uint64_t last_success;    /* unix seconds, 0 = never */
        uint64_t next_attempt;    /* unix seconds, 0 = none scheduled */
        uint64_t last_attempt;    /* unix seconds of the latest enrollment/renewal attempt, 0 = none */
        uint64_t renew_due;       /* unix seconds the current certificate's renewal is due, 0 = unknown */
        uint64_t cacerts_checked; /* unix seconds /cacerts was last fetched, 0 = not since fleetidd started */
        uint64_t cacerts_next;    /* unix seconds the periodic /cacerts refresh is due, 0 = none scheduled */
        unsigned renew_requests;  /* renewals asked for (SIGUSR1) since fleetidd started */
        unsigned renew_answered;  /* renew_requests when the attempt whose outcome this is started */
        unsigned failures;        /* consecutive failures */
        char *est_url;            /* NULL if unknown */
        char *write_error;        /* why the daemon cannot write its state directory, NULL if it can */
        uint64_t valid_until;     /* notAfter (unix seconds) of the operational certificate the daemon
                                   * holds in force; 0 = none (not enrolled yet, or identity unusable) */
        unsigned tpm_lockout;     /* 1: the TPM was in dictionary-attack lockout when last read, else 0 */
        unsigned birth_key_da;    /* 1: the birth key lacks noDA (a lockout blocks enrolling), as fleetidd
                                   * last read it since it started; 0: it has noDA, or was not read */
} StatusRecord;

/* Frees the members and zeroes the record; the record itself is the caller's. */
void status_record_done(StatusRecord *r);

/* "key=value\n" lines; values escaped: \n, \\, non-printables as \xHH.
 * -EINVAL if r->state is empty or an escaped line would exceed STATUS_LINE_MAX. */
int status_record_format(const StatusRecord *r, char **ret);

/* Parses text (len bytes, need not be NUL-terminated) into *ret, which is
 * overwritten (not freed) on success and untouched on failure. Unknown keys are
 * ignored (forward compat); a line without '=', a bad escape, a bad or
 * out-of-range number, a repeated key, a missing state=, an embedded NUL, or a
 * line longer than STATUS_LINE_MAX give -EBADMSG with the line number in d. */
int status_record_parse(const char *text, size_t len, StatusRecord *ret, Diag *d);

/* Formats and atomically writes STATE_STATUS (mode 0640). If r->updated is 0 the
 * current time is written instead. */
int status_record_save(StateStore *s, const StatusRecord *r, Diag *d);

/* Loads and parses STATE_STATUS; -ENOENT if the daemon never wrote one. */
int status_record_load(StateStore *s, StatusRecord *ret, Diag *d);
