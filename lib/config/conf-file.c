/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conf-file.c: the strict reading of libconfig files shared by fleetid.conf and
 * access.conf (see conf-file.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf-file.h"
#include "util/fileio.h"

int conf_vfail(Diag *d, const char *path, unsigned line, const char *fmt, va_list ap) {
        char msg[DIAG_MAX];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (line > 0)
                return diag_set(d, -EINVAL, "%s:%u: %s", path, line, msg);
        return diag_set(d, -EINVAL, "%s: %s", path, msg);
}

int conf_fail(Diag *d, const char *path, unsigned line, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = conf_vfail(d, path, line, fmt, ap);
        va_end(ap);
        return r;
}

bool conf_text_has_control_char(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Values end up in certificates (UTF8String), URLs, HTTP headers and
 * D-Bus properties, all of which need valid UTF-8. */
bool conf_setting_integer(const config_setting_t *s, int64_t *ret) {
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_INT:
                *ret = (uint32_t) config_setting_get_int(s);
                return true;
        case CONFIG_TYPE_INT64:
                *ret = config_setting_get_int64(s);
                return true;
        default:
                return false;
        }
}

bool conf_text_is_valid_utf8(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                unsigned char c = *p;
                unsigned n, min, cp;

                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF)
                        n = 1, min = 0x80, cp = c & 0x1F;
                else if (c >= 0xE0 && c <= 0xEF)
                        n = 2, min = 0x800, cp = c & 0x0F;
                else if (c >= 0xF0 && c <= 0xF4)
                        n = 3, min = 0x10000, cp = c & 0x07;
                else
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                p += n + 1;
        }
        return true;
}

/* Scans the raw text for what libconfig 1.5 would take without complaint but
 * wrongly: @include (reads another file, unbounded and unchecked), integers
 * without an L suffix beyond 32 bits (silently truncated), negative integers
 * (no key takes one, and -1 would read as 0xFFFFFFFF), and the escape \x00 in a
 * string (libconfig drops it: "a\x00b" would read as "ab"). Comments are
 * skipped. Lines are 0 where nothing was found. */
typedef struct ScanResult {
        unsigned include_line; /* first @include */
        unsigned nul_line;     /* first \x00 inside a string */
        unsigned bad_line;     /* first bad integer, and why it is bad */
        const char *bad_why;
} ScanResult;

/* p points at the backslash of an escape inside a string literal. */
static bool is_nul_escape(const char *p) {
        return p[0] == '\\' && (p[1] == 'x' || p[1] == 'X') && p[2] == '0' && p[3] == '0';
}

static bool is_name_char(char c) {
        return isalnum((unsigned char) c) || c == '_' || c == '-' || c == '*';
}

static void scan_number(const char **pp, unsigned line, ScanResult *res) {
        const char *p = *pp, *digits;
        bool negative = false, hex = false, wide;
        unsigned long long v;

        if (*p == '+' || *p == '-')
                negative = *p++ == '-';
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && isxdigit((unsigned char) p[2])) {
                hex = true;
                p += 2;
        }
        digits = p;
        p += hex ? strspn(p, "0123456789abcdefABCDEF") : strspn(p, "0123456789");
        if (!hex && (*p == '.' || *p == 'e' || *p == 'E')) {
                /* a float: no integer rules apply; skip it */
                *pp = p + strspn(p, "0123456789.eE+-");
                return;
        }
        wide = *p == 'L';
        *pp = p + strspn(p, "L");

        if (res->bad_line)
                return;
        errno = 0;
        v = strtoull(digits, NULL, hex ? 16 : 10);
        if (negative && v != 0)
                res->bad_why = "negative number; no setting in this file takes one";
        else if (errno == ERANGE || v > (wide ? (unsigned long long) INT64_MAX : 0xFFFFFFFFull))
                res->bad_why = wide ? "integer does not fit in 63 bits" : "integer does not fit in 32 bits";
        else
                return;
        res->bad_line = line;
}

static void scan_literals(const char *p, ScanResult *res) {
        unsigned line = 1;
        char prev = '\0';

        *res = (ScanResult) {};
        while (*p) {
                if (*p == '\n') {
                        line++;
                        prev = *p++;
                } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
                        p += strcspn(p, "\n");
                } else if (p[0] == '/' && p[1] == '*') {
                        for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
                                if (*p == '\n')
                                        line++;
                        p += *p ? 2 : 0;
                        prev = ' ';
                } else if (*p == '"') {
                        for (p++; *p && *p != '"'; p++) {
                                if (is_nul_escape(p) && !res->nul_line)
                                        res->nul_line = line;
                                if (*p == '\\' && p[1])
                                        p++;
                                if (*p == '\n')
                                        line++;
                        }
                        p += *p ? 1 : 0;
                        prev = '"';
                } else if (*p == '@') {
                        if (strncmp(p + 1, "include", 7) == 0 && !res->include_line)
                                res->include_line = line;
                        prev = *p++;
                } else if (!is_name_char(prev) &&
                           (isdigit((unsigned char) *p) ||
                            ((*p == '-' || *p == '+') && isdigit((unsigned char) p[1])))) {
                        scan_number(&p, line, res);
                        prev = '0';
                } else {
                        prev = *p++;
                }
        }
}

int conf_file_read(const char *path, size_t max, char **ret, size_t *ret_len, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = read_file_bounded(path, max, &text, &len);
        if (r == -ENOENT)
                return diag_set(d, r, "%s: no such file", path);
        if (r == -EFBIG)
                return diag_set(d, r, "%s: larger than %zu bytes, refusing to parse it", path, max);
        if (r < 0)
                return diag_set(d, r, "%s: cannot read: %s", path, read_file_strerror(r));
        *ret = TAKE_PTR(text);
        *ret_len = len;
        return 0;
}

/* A UTF-8 byte order mark, as some editors write, carries no meaning: skip it. */
static const char *skip_bom(const char *text) {
        return strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? text + 3 : text;
}

int conf_file_parse(const char *path, const char *text, size_t len, config_t *lc, Diag *d) {
        const char *body;
        ScanResult scan;

        if (strlen(text) != len)
                return diag_set(d, -EINVAL, "%s: contains a NUL byte; not a text file", path);
        body = skip_bom(text);
        scan_literals(body, &scan);
        if (scan.include_line)
                return conf_fail(d, path, scan.include_line,
                                 "@include is not supported; keep the configuration in one file");
        if (scan.nul_line)
                return conf_fail(d, path, scan.nul_line,
                                 "a string contains the escape \\x00 (a NUL byte), which no setting can hold");
        if (!config_read_string(lc, body))
                return conf_fail(d, path, (unsigned) config_error_line(lc), "%s", config_error_text(lc));
        if (scan.bad_line)
                return conf_fail(d, path, scan.bad_line, "%s", scan.bad_why);
        return 0;
}
