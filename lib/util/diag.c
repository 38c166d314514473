/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "util/diag.h"

/* Diag text is bounded on purpose: a long reason is cut, never overflows. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static void diag_vset(Diag *d, int r, const char *fmt, va_list ap) {
        d->error = r;
        vsnprintf(d->text, sizeof(d->text), fmt, ap);
}

int diag_set(Diag *d, int r, const char *fmt, ...) {
        va_list ap;

        if (!d)
                return r;
        va_start(ap, fmt);
        diag_vset(d, r, fmt, ap);
        va_end(ap);
        return r;
}

int diag_set_ssl(Diag *d, int r, const char *fmt, ...) {
        const char *data;
        unsigned long e;
        va_list ap;
        int flags;

        if (!d) {
                ERR_clear_error();
                return r;
        }
        va_start(ap, fmt);
        diag_vset(d, r, fmt, ap);
        va_end(ap);

        while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
                size_t n = strlen(d->text);
                char buf[256];

                ERR_error_string_n(e, buf, sizeof(buf));
                /* The detail a library attached, e.g. the TSS error of a TPM2_Sign. */
                if (!(flags & ERR_TXT_STRING) || !data)
                        data = "";
                if (n + 3 < sizeof(d->text))
                        snprintf(d->text + n, sizeof(d->text) - n, "%s%s%s%s%s", n ? ": " : "", buf,
                                 *data ? " (" : "", data, *data ? ")" : "");
        }
        return r;
}

int diag_prefix(Diag *d, int r, const char *fmt, ...) {
        char old[DIAG_MAX], head[DIAG_MAX];
        va_list ap;

        if (!d)
                return r;
        memcpy(old, d->text, sizeof(old));
        va_start(ap, fmt);
        vsnprintf(head, sizeof(head), fmt, ap);
        va_end(ap);
        if (old[0])
                snprintf(d->text, sizeof(d->text), "%s: %s", head, old);
        else
                snprintf(d->text, sizeof(d->text), "%s", head);
        d->error = r;
        return r;
}

void diag_clear(Diag *d) {
        if (!d)
                return;
        d->error = 0;
        d->text[0] = '\0';
}

const char *diag_text(const Diag *d, int r) {
        if (d && d->text[0])
                return d->text;
        return strerror(r < 0 ? -r : r);
}
