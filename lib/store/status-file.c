/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "store/status-file.h"

typedef enum FieldType {
        FIELD_STRING,
        FIELD_U64,
        FIELD_UNSIGNED,
} FieldType;

/* The order here is the order in the file. */
static const struct {
        const char *key;
        FieldType type;
        size_t offset;
} fields[] = {
        { "state", FIELD_STRING, offsetof(StatusRecord, state) },
        { "last_error", FIELD_STRING, offsetof(StatusRecord, last_error) },
        { "failures", FIELD_UNSIGNED, offsetof(StatusRecord, failures) },
        { "updated", FIELD_U64, offsetof(StatusRecord, updated) },
        { "last_success", FIELD_U64, offsetof(StatusRecord, last_success) },
        { "next_attempt", FIELD_U64, offsetof(StatusRecord, next_attempt) },
        { "last_attempt", FIELD_U64, offsetof(StatusRecord, last_attempt) },
        { "renew_due", FIELD_U64, offsetof(StatusRecord, renew_due) },
        { "cacerts_checked", FIELD_U64, offsetof(StatusRecord, cacerts_checked) },
        { "cacerts_next", FIELD_U64, offsetof(StatusRecord, cacerts_next) },
        { "renew_requests", FIELD_UNSIGNED, offsetof(StatusRecord, renew_requests) },
        { "renew_answered", FIELD_UNSIGNED, offsetof(StatusRecord, renew_answered) },
        { "est_url", FIELD_STRING, offsetof(StatusRecord, est_url) },
        { "write_error", FIELD_STRING, offsetof(StatusRecord, write_error) },
        { "valid_until", FIELD_U64, offsetof(StatusRecord, valid_until) },
        { "tpm_lockout", FIELD_UNSIGNED, offsetof(StatusRecord, tpm_lockout) },
        { "birth_key_da", FIELD_UNSIGNED, offsetof(StatusRecord, birth_key_da) },
};

#define FIELD_PTR(rec, i, type) ((type *) ((char *) (rec) + fields[i].offset))

void status_record_done(StatusRecord *r) {
        if (!r)
                return;
        free(r->state);
        free(r->last_error);
        free(r->est_url);
        free(r->write_error);
        *r = (StatusRecord) {};
}

/* Appends "key=<escaped value>\n" to f, refusing lines over STATUS_LINE_MAX. */
static int format_line(FILE *f, const char *key, const char *value) {
        size_t n = strlen(key) + 1;

        fputs(key, f);
        fputc('=', f);
        for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
                if (*p == '\n') {
                        fputs("\\n", f);
                        n += 2;
                } else if (*p == '\\') {
                        fputs("\\\\", f);
                        n += 2;
                } else if (*p < 0x20 || *p >= 0x7f) {
                        fprintf(f, "\\x%02x", *p);
                        n += 4;
                } else {
                        fputc(*p, f);
                        n++;
                }
        }
        fputc('\n', f);
        return n > STATUS_LINE_MAX ? -EINVAL : 0;
}

int status_record_format(const StatusRecord *r, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r2 = 0;

        if (!r || isempty(r->state) || !ret)
                return -EINVAL;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(fields) && r2 >= 0; i++) {
                char num[32];
                const char *v;

                switch (fields[i].type) {
                case FIELD_STRING:
                        v = *FIELD_PTR(r, i, char *const);
                        if (!v)
                                continue; /* absent, not empty */
                        break;
                case FIELD_U64:
                        snprintf(num, sizeof(num), "%llu",
                                 (unsigned long long) *FIELD_PTR(r, i, const uint64_t));
                        v = num;
                        break;
                case FIELD_UNSIGNED:
                        snprintf(num, sizeof(num), "%u", *FIELD_PTR(r, i, const unsigned));
                        v = num;
                        break;
                default:
                        abort();
                }
                r2 = format_line(f, fields[i].key, v);
        }

        if (fclose(f) != 0)
                return -ENOMEM;
        if (r2 < 0)
                return r2;

        *ret = TAKE_PTR(buf);
        return 0;
}

/* Undoes format_line()'s escaping. -EBADMSG for a bad escape or an escaped NUL. */
static int unescape(const char *p, size_t n, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t j = 0;

        s = malloc(n + 1);
        if (!s)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                char hex[3];

                if (p[i] != '\\') {
                        s[j++] = p[i];
                        continue;
                }
                if (++i >= n)
                        return -EBADMSG;
                switch (p[i]) {
                case 'n':
                        s[j++] = '\n';
                        break;
                case '\\':
                        s[j++] = '\\';
                        break;
                case 'x':
                        if (i + 2 >= n)
                                return -EBADMSG;
                        /* isxdigit() is exactly [0-9a-fA-F] in every locale. */
                        if (!isxdigit((unsigned char) p[i + 1]) || !isxdigit((unsigned char) p[i + 2]))
                                return -EBADMSG;
                        hex[0] = p[i + 1];
                        hex[1] = p[i + 2];
                        hex[2] = '\0';
                        s[j] = (char) strtoul(hex, NULL, 16);
                        if (s[j++] == '\0')
                                return -EBADMSG;
                        i += 2;
                        break;
                default:
                        return -EBADMSG;
                }
        }
        s[j] = '\0';
        *ret = TAKE_PTR(s);
        return 0;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow past max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EBADMSG;
        for (; *s; s++) {
                unsigned dgt;

                if (*s < '0' || *s > '9')
                        return -EBADMSG;
                dgt = (unsigned) (*s - '0');
                if (v > (max - dgt) / 10)
                        return -EBADMSG;
                v = v * 10 + dgt;
        }
        *ret = v;
        return 0;
}

static int key_valid(const char *k, size_t n) {
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_' ||
                      k[i] == '-'))
                        return 0;
        return 1;
}

static int set_field(StatusRecord *t, size_t i, char *value, unsigned line, Diag *d) {
        uint64_t v;
        int r;

        switch (fields[i].type) {
        case FIELD_STRING:
                *FIELD_PTR(t, i, char *) = value;
                return 0;
        case FIELD_U64:
        case FIELD_UNSIGNED:
                r = parse_uint(value, fields[i].type == FIELD_U64 ? UINT64_MAX : UINT_MAX, &v);
                if (r < 0) {
                        diag_set(d, r, "status file line %u: %s=\"%s\" is not a number in range", line,
                                 fields[i].key, value);
                        free(value);
                        return r;
                }
                free(value);
                if (fields[i].type == FIELD_U64)
                        *FIELD_PTR(t, i, uint64_t) = v;
                else
                        *FIELD_PTR(t, i, unsigned) = (unsigned) v;
                return 0;
        default:
                abort();
        }
}

int status_record_parse(const char *text, size_t len, StatusRecord *ret, Diag *d) {
        _cleanup_(status_record_done) StatusRecord t = {};
        const char *p = text, *end = text + len;
        unsigned line = 0;
        uint32_t seen = 0;

        if ((!text && len > 0) || !ret)
                return -EINVAL;

        while (p < end) {
                const char *nl, *le, *eq;
                char *value;
                size_t ll, i;
                int r;

                line++;
                nl = memchr(p, '\n', (size_t) (end - p));
                le = nl ? nl : end;
                ll = (size_t) (le - p);

                if (ll > STATUS_LINE_MAX)
                        return diag_set(d, -EBADMSG, "status file line %u is longer than %d bytes", line,
                                        STATUS_LINE_MAX);
                if (memchr(p, '\0', ll))
                        return diag_set(d, -EBADMSG, "status file line %u contains a NUL byte", line);

                if (ll == 0 || p[0] == '#')
                        goto next;

                eq = memchr(p, '=', ll);
                if (!eq)
                        return diag_set(d, -EBADMSG, "status file line %u has no '=': \"%.*s\"", line,
                                        (int) (ll > 64 ? 64 : ll), p);
                if (!key_valid(p, (size_t) (eq - p)))
                        return diag_set(d, -EBADMSG, "status file line %u: invalid key \"%.*s\"", line,
                                        (int) (eq - p > 64 ? 64 : eq - p), p);

                for (i = 0; i < ELEMENTSOF(fields); i++)
                        if (strlen(fields[i].key) == (size_t) (eq - p) &&
                            memcmp(fields[i].key, p, (size_t) (eq - p)) == 0)
                                break;
                if (i >= ELEMENTSOF(fields))
                        goto next; /* written by a newer version */

                if (seen & (1u << i))
                        return diag_set(d, -EBADMSG, "status file line %u: %s= given twice", line,
                                        fields[i].key);
                seen |= 1u << i;

                r = unescape(eq + 1, (size_t) (le - eq - 1), &value);
                if (r == -EBADMSG)
                        return diag_set(d, r, "status file line %u: bad escape sequence in %s=", line,
                                        fields[i].key);
                if (r < 0)
                        return r;

                r = set_field(&t, i, value, line, d);
                if (r < 0)
                        return r;
        next:
                p = nl ? nl + 1 : end;
        }

        if (isempty(t.state))
                return diag_set(d, -EBADMSG, "status file has no state= line");

        *ret = t;
        t = (StatusRecord) {};
        return 0;
}

int status_record_save(StateStore *s, const StatusRecord *r, Diag *d) {
        _cleanup_free_ char *text = NULL;
        StatusRecord copy;
        int k;

        if (!r)
                return -EINVAL;

        copy = *r;
        if (copy.updated == 0)
                copy.updated = (uint64_t) time(NULL);

        k = status_record_format(&copy, &text);
        if (k < 0)
                return diag_set(d, k, "Could not format the status record: %s",
                                isempty(r->state) ? "no state given" : "a value is too long");

        return state_store_save(s, STATE_STATUS, text, strlen(text), STATE_FILE_MODE, d);
}

int status_record_load(StateStore *s, StatusRecord *ret, Diag *d) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r;

        r = state_store_load(s, STATE_STATUS, STATUS_FILE_MAX, &text, &len, d);
        if (r < 0)
                return r;

        r = status_record_parse(text, len, ret, d);
        if (r < 0)
                return diag_prefix(d, r, "%s/%s", state_store_path(s), STATE_STATUS);
        return 0;
}
