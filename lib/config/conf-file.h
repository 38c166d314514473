/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conf-file.h: reading a libconfig file the strict way fleetid's files are read.
 *
 * fleetid.conf and access.conf share it: the text is read with a size bound and
 * refused if it holds a NUL byte; a UTF-8 byte order mark is skipped; what
 * libconfig 1.5 would accept silently but wrongly (@include, integers that wrap
 * around 32 bits, negative numbers, the escape \x00 in a string) is refused; and
 * every error reads "FILE:LINE: what is wrong" (or "FILE: ..." without a line).
 */
#pragma once

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/diag.h"

/* Records "path:line: <message>" ("path: <message>" when line is 0) in d and
 * returns -EINVAL. */
int conf_fail(Diag *d, const char *path, unsigned line, const char *fmt, ...) _printf_(4, 5);
int conf_vfail(Diag *d, const char *path, unsigned line, const char *fmt, va_list ap) _printf_(4, 0);

/* Reads the whole file at path (following symlinks), at most max bytes; *ret_len
 * excludes the terminating NUL (the text may hold others: conf_file_parse() refuses them). */
int conf_file_read(const char *path, size_t max, char **ret, size_t *ret_len, Diag *d);

/* Checks the text of path (len bytes as read, NUL-terminated) and parses it
 * into lc, which the caller has config_init()ed and will config_destroy(). */
int conf_file_parse(const char *path, const char *text, size_t len, config_t *lc, Diag *d);

/* The value of an integer setting: true and *ret, or false if s is no integer.
 * conf_file_parse() made sure an int literal fits 32 bits unsigned, which
 * libconfig 1.5 stores in an int: its bits are taken back as unsigned. */
bool conf_setting_integer(const config_setting_t *s, int64_t *ret);

/* A byte below 0x20 or 0x7f. */
bool conf_text_has_control_char(const char *s);

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool conf_text_is_valid_utf8(const char *s);

static inline void conf_destroyp(config_t **p) {
        if (*p)
                config_destroy(*p);
}
