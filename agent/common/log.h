/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h: logging for the programs in agent/ (lib/ never logs above debug).
 *
 * Under systemd (stderr connected to the journal, per $JOURNAL_STREAM) entries
 * go to the journal with PRIORITY, SYSLOG_IDENTIFIER and ERRNO fields and,
 * where given, a MESSAGE_ID; otherwise to stderr as "ident: message".
 * The *_errno variants return -abs(error), so "return log_error_errno(r, ...)"
 * logs once where the decision is made.
 */
#pragma once

#include <syslog.h>

#include "util/macro.h"

void log_setup(const char *ident);
void log_set_max_level(int level);
/* Entries with a MESSAGE_ID go to the journal as well as to stderr (for a
 * command run from a terminal whose events belong in the journal). */
void log_set_ids_to_journal(void);

int log_internal(int level, int error, const char *message_id, const char *fmt, ...) _printf_(4, 5);

#define log_full_errno(level, error, ...) log_internal(level, error, NULL, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, e, NULL, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, e, NULL, __VA_ARGS__)
/* With a journal MESSAGE_ID (32 hex digits, from common/message-ids.h; each has
 * its text in systemd/fleetid.catalog). */
#define log_struct(level, error, id, ...) log_internal(level, error, id, __VA_ARGS__)
