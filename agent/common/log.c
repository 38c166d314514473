/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "common/log.h"

static const char *log_ident = "fleetid";
static int log_max_level = LOG_INFO;
static int log_to_journal = 0;
static int log_ids_to_journal = 0;

/* $JOURNAL_STREAM is "device:inode" of the stream systemd connected; it only
 * counts if stderr is still that stream. */
static int stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(STDERR_FILENO, &st) < 0)
                return 0;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_setup(const char *ident) {
        const char *lvl = getenv("FLEETID_LOG_LEVEL");

        log_ident = ident;
        log_to_journal = stderr_is_journal();
        if (lvl && strcmp(lvl, "debug") == 0)
                log_max_level = LOG_DEBUG;
        else
                /* tpm2-tss prints its own warnings for outcomes fleetid handles (a
                 * handle that is not there yet); fleetid reports what matters itself.
                 * An explicit TSS2_LOG from the user still wins. */
                (void) setenv("TSS2_LOG", "all+NONE", 0);
}

void log_set_ids_to_journal(void) {
        log_ids_to_journal = 1;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_internal(int level, int error, const char *message_id, const char *fmt, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        error = error < 0 ? -error : error;
        if (level > log_max_level)
                return -error;

        /* %m means the error handed in, not whatever errno happens to be. */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        if (log_to_journal || (log_ids_to_journal && message_id)) {
                char prio[32], err[32], id[64];

                snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
                snprintf(err, sizeof(err), "ERRNO=%d", error);
                snprintf(id, sizeof(id), "MESSAGE_ID=%s", message_id ? message_id : "");
                sd_journal_send("MESSAGE=%s", buf, prio, "SYSLOG_IDENTIFIER=%s", log_ident,
                                error ? err : "ERRNO=0", message_id ? id : "FLEETID_EVENT=log", NULL);
        }
        if (!log_to_journal)
                fprintf(stderr, "%s: %s\n", log_ident, buf);

        errno = saved;
        return -error;
}
