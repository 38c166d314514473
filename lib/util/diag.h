/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diag.h: the human-readable reason that travels with a -errno.
 *
 * lib/ never logs above debug level, yet a person needs to know *what* was wrong
 * ("EST server returned 503: busy", "certificate does not match the TPM key").
 * Functions that can fail for reasons outside the program take a Diag * (may be
 * NULL) and fill it where the error is detected; agent/ logs it once, where it
 * decides what happens next.
 */
#pragma once

#include <stdarg.h>

#include "util/macro.h"

#define DIAG_MAX 768

typedef struct Diag {
        int error;           /* the -errno that was returned, 0 if none */
        char text[DIAG_MAX]; /* what went wrong, without a trailing newline */
} Diag;

/* Records the reason and returns r (a negative errno), so a caller can
 * 'return diag_set(d, -EBADMSG, "...")'. A NULL d is allowed. */
int diag_set(Diag *d, int r, const char *fmt, ...) _printf_(3, 4);

/* Like diag_set() and then appends OpenSSL's error queue (which is drained). */
int diag_set_ssl(Diag *d, int r, const char *fmt, ...) _printf_(3, 4);

/* Prefixes existing text with more context: "while X: <old text>". */
int diag_prefix(Diag *d, int r, const char *fmt, ...) _printf_(3, 4);

void diag_clear(Diag *d);

/* The text, or strerror(-r) when nothing more specific was recorded. */
const char *diag_text(const Diag *d, int r);
