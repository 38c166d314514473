/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * timestamp.h: a point in time as text, ISO 8601 in UTC
 * ("2026-12-03T12:36:38Z"): the one form logs, diagnostics and fleetidctl
 * show times in.
 */
#pragma once

#include <time.h>

/* Enough for any time_t, in either form below. */
#define TIMESTAMP_MAX 32

/* t as "YYYY-MM-DDTHH:MM:SSZ" in buf, or "@SECONDS" when the year does not
 * fit; returns buf. */
const char *timestamp_utc(time_t t, char buf[static TIMESTAMP_MAX]);
