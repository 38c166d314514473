/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "est/retry-after.h"
#include "util/macro.h"

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int parse_month(const char *s) {
        for (int i = 0; i < 12; i++)
                if (strncmp(s, months[i], 3) == 0)
                        return i;
        return -1;
}

/* Parses "HH:MM:SS" exactly. */
static int parse_hms(const char *s, struct tm *tm) {
        if (!isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1]) || s[2] != ':' ||
            !isdigit((unsigned char) s[3]) || !isdigit((unsigned char) s[4]) || s[5] != ':' ||
            !isdigit((unsigned char) s[6]) || !isdigit((unsigned char) s[7]))
                return -EINVAL;
        tm->tm_hour = (s[0] - '0') * 10 + (s[1] - '0');
        tm->tm_min = (s[3] - '0') * 10 + (s[4] - '0');
        tm->tm_sec = (s[6] - '0') * 10 + (s[7] - '0');
        if (tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
                return -EINVAL;
        return 0;
}

static int parse_uint(const char *s, int digits, int *ret) {
        int v = 0;

        for (int i = 0; i < digits; i++) {
                if (!isdigit((unsigned char) s[i]))
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

static int finish(struct tm *tm, time_t *ret) {
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        time_t t;

        if (tm->tm_mday < 1 || tm->tm_mday > mdays[tm->tm_mon] || tm->tm_year < 70)
                return -EINVAL;
        t = timegm(tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = t;
        return 0;
}

int http_date_parse(const char *s, time_t *ret) {
        struct tm tm = {};
        const char *p;
        int v;

        if (!s)
                return -EINVAL;
        p = strchr(s, ',');
        if (p && p - s == 3 && strlen(s) == 29) {
                /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
                if (s[4] != ' ' || parse_uint(s + 5, 2, &tm.tm_mday) < 0 || s[7] != ' ' ||
                    (tm.tm_mon = parse_month(s + 8)) < 0 || s[11] != ' ' || parse_uint(s + 12, 4, &v) < 0 ||
                    s[16] != ' ' || parse_hms(s + 17, &tm) < 0 || strcmp(s + 25, " GMT") != 0)
                        return -EINVAL;
                tm.tm_year = v - 1900;
                return finish(&tm, ret);
        }
        if (p) {
                /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
                p++;
                if (strlen(p) != 23 || p[0] != ' ' || parse_uint(p + 1, 2, &tm.tm_mday) < 0 || p[3] != '-' ||
                    (tm.tm_mon = parse_month(p + 4)) < 0 || p[7] != '-' || parse_uint(p + 8, 2, &v) < 0 ||
                    p[10] != ' ' || parse_hms(p + 11, &tm) < 0 || strcmp(p + 19, " GMT") != 0)
                        return -EINVAL;
                /* RFC 9110: a two-digit year more than 50 years ahead is in the past century. */
                tm.tm_year = v < 70 ? v + 100 : v;
                return finish(&tm, ret);
        }
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (strlen(s) != 24 || s[3] != ' ' || (tm.tm_mon = parse_month(s + 4)) < 0 || s[7] != ' ' ||
            s[10] != ' ' || parse_hms(s + 11, &tm) < 0 || s[19] != ' ' || parse_uint(s + 20, 4, &v) < 0)
                return -EINVAL;
        if (s[8] == ' ') {
                if (parse_uint(s + 9, 1, &tm.tm_mday) < 0)
                        return -EINVAL;
        } else if (parse_uint(s + 8, 2, &tm.tm_mday) < 0)
                return -EINVAL;
        tm.tm_year = v - 1900;
        return finish(&tm, ret);
}

int retry_after_parse(const char *value, time_t now, uint64_t max_sec, uint64_t *ret) {
        time_t when;
        size_t n;

        if (!value)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;
        n = strspn(value, "0123456789");
        if (n > 0 && value[n] == 0) {
                uint64_t v = 0;

                /* Saturate instead of overflowing on absurd values. */
                for (size_t i = 0; i < n; i++) {
                        v = v * 10 + (uint64_t) (value[i] - '0');
                        if (v > max_sec) {
                                v = max_sec;
                                break;
                        }
                }
                *ret = v;
                return 0;
        }
        if (http_date_parse(value, &when) < 0)
                return -EINVAL;
        *ret = when <= now ? 0 : (uint64_t) (when - now) > max_sec ? max_sec : (uint64_t) (when - now);
        return 0;
}
