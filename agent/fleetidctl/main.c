/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleetidctl: the command line view of the fleetid agent.
 *
 * "fleetidctl status" reads what fleetidd left in the state directory (the status
 * record and the certificates) and shows it, as aligned "Key: value" lines or as
 * one JSON object. "fleetidctl check" is a monitoring probe (Nagios plugin
 * conventions): one line saying how urgent the operational certificate's state
 * is, by the severity model of lib/monitor/severity.h, and the exit code 0-3.
 * Both only read: they need no TPM, no network and no daemon, and never create
 * or change anything in the state directory. "fleetidctl wait-enrolled" is the
 * sync point for units that need the identity (fleetid-wait-enrolled.service):
 * it waits, by inotify on the runtime directory, until the running fleetidd
 * reports a valid operational certificate.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf() */
#endif
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "config/config.h"
#include "crypto/certcheck.h"
#include "fleetidctl/chain.h"
#include "fleetidctl/renew.h"
#include "fleetidctl/status-bus.h"
#include "crypto/ossl-util.h"
#include "monitor/daemon-state.h"
#include "monitor/metrics.h"
#include "monitor/severity.h"
#include "monitor/status-text.h"
#include "renew/schedule.h"
#include "store/state-certs.h"
#include "store/state-store.h"
#include "store/status-file.h"
#include "util/fileio.h"
#include "fleetidctl/sign-challenge.h"
#include "fleetidctl/sensor.h"
#include "fleetidctl/fleetidctl.h"
#include "util/timestamp.h"


enum {
        EXIT_OK = 0,
        EXIT_USAGE = 1,
        EXIT_STATE_UNREADABLE = 3,
};

typedef struct CertInfo {
        bool present;
        char *error; /* present but unreadable or not a certificate */
        char *subject;
        char *serial;
        char *issuer;
        time_t not_before;
        time_t not_after;
} CertInfo;

typedef struct Status {
        const char *state_dir;
        bool have_record;
        StatusRecord record;
        char *record_error;  /* status file present but unreadable */
        const char *est_url; /* from the record, else from the configuration */
        CertInfo birth;
        CertInfo operational;
        time_t now;
        pid_t daemon_pid;  /* the running fleetidd, 0 if none */
        char *daemon_down; /* why fleetidd is not running, NULL if it is */
} Status;

static const char *arg_config = NULL;
static const char *arg_state_dir = NULL;
static bool arg_json = false;
static unsigned arg_timeout = 0;
static bool arg_timeout_set = false;
static const char *arg_owner = NULL;
static bool arg_yes = false, arg_no_enroll = false;


static void cert_info_done(CertInfo *c) {
        free(c->error);
        free(c->subject);
        free(c->serial);
        free(c->issuer);
        *c = (CertInfo) {};
}

static void status_done(Status *s) {
        status_record_done(&s->record);
        free(s->record_error);
        cert_info_done(&s->birth);
        cert_info_done(&s->operational);
        free(s->daemon_down);
}

/* Fills *ret from the first certificate of a PEM file; the chain behind it is not shown. */
static int cert_info_from_pem(const char *pem, size_t len, CertInfo *ret, Diag *d) {
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        CertInfo c = { .present = true };

        if (len > INT_MAX)
                return diag_set(d, -EFBIG, "certificate file too large");
        b = BIO_new_mem_buf(pem, (int) len);
        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return diag_set_ssl(d, -EBADMSG, "no PEM certificate found");

        if (cert_subject_string(x, &c.subject) < 0 || cert_issuer_string(x, &c.issuer) < 0 ||
            cert_serial_string(x, &c.serial) < 0) {
                cert_info_done(&c);
                return diag_set_ssl(d, -EBADMSG, "could not format the certificate's names or serial");
        }
        if (cert_times(x, &c.not_before, &c.not_after) < 0) {
                cert_info_done(&c);
                return diag_set_ssl(d, -EBADMSG, "certificate validity dates cannot be read");
        }

        *ret = c;
        return 0;
}

/* Loads name into *ret. A missing file is not an error (ret->present stays false);
 * anything else wrong is recorded in ret->error and returned. */
static int load_cert(StateStore *store, const char *name, CertInfo *ret) {
        _cleanup_free_ char *pem = NULL;
        Diag d = {};
        size_t len;
        int r;

        r = state_store_load(store, name, CERT_PEM_FILE_MAX, &pem, &len, &d);
        if (r == -ENOENT)
                return 0;
        if (r >= 0) {
                r = cert_info_from_pem(pem, len, ret, &d);
                if (r >= 0)
                        return 0;
                diag_prefix(&d, r, "%s/%s", state_store_path(store), name);
        }

        ret->present = true;
        ret->error = strdup(diag_text(&d, r));
        return ret->error ? r : -ENOMEM;
}

/* Status record times: 0 means "never"/"none" and gives NULL. */
static const char *format_record_time(uint64_t t, char buf[static TIMESTAMP_MAX]) {
        if (t == 0)
                return NULL;
        if (t > INT64_MAX) {
                snprintf(buf, TIMESTAMP_MAX, "@%" PRIu64, t);
                return buf;
        }
        return timestamp_utc((time_t) t, buf);
}

/* ---- JSON ---- */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 if there is none. */
static size_t utf8_sequence_len(const unsigned char *p) {
        unsigned char lo = 0x80, hi = 0xBF;
        size_t n;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xC2 && p[0] <= 0xDF)
                n = 2;
        else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
                n = 3;
                if (p[0] == 0xE0)
                        lo = 0xA0; /* no overlong forms */
                else if (p[0] == 0xED)
                        hi = 0x9F; /* no surrogates */
        } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
                n = 4;
                if (p[0] == 0xF0)
                        lo = 0x90;
                else if (p[0] == 0xF4)
                        hi = 0x8F; /* nothing above U+10FFFF */
        } else
                return 0;

        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        return n;
}

/* Writes s as a JSON string (RFC 8259), or null. Bytes that are not valid UTF-8
 * become U+FFFD, so the output is always valid JSON. */
static void json_string(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        if (!s) {
                fputs("null", f);
                return;
        }

        fputc('"', f);
        while (*p) {
                size_t n = utf8_sequence_len(p);

                if (n == 0) {
                        fputs("\\ufffd", f);
                        p++;
                } else if (n > 1) {
                        fwrite(p, 1, n, f);
                        p += n;
                } else {
                        switch (*p) {
                        case '"':
                                fputs("\\\"", f);
                                break;
                        case '\\':
                                fputs("\\\\", f);
                                break;
                        case '\n':
                                fputs("\\n", f);
                                break;
                        case '\r':
                                fputs("\\r", f);
                                break;
                        case '\t':
                                fputs("\\t", f);
                                break;
                        case '\b':
                                fputs("\\b", f);
                                break;
                        case '\f':
                                fputs("\\f", f);
                                break;
                        default:
                                if (*p < 0x20 || *p == 0x7f)
                                        fprintf(f, "\\u%04x", *p);
                                else
                                        fputc(*p, f);
                        }
                        p++;
                }
        }
        fputc('"', f);
}

static void json_key(FILE *f, bool *first, const char *key) {
        fputs(*first ? "" : ",", f);
        *first = false;
        json_string(f, key);
        fputc(':', f);
}

static void json_key_string(FILE *f, bool *first, const char *key, const char *value) {
        json_key(f, first, key);
        json_string(f, value);
}

static void json_key_time(FILE *f, bool *first, const char *key, time_t t) {
        char buf[64];

        timestamp_utc(t, buf);
        json_key_string(f, first, key, buf);
}

static void json_cert(FILE *f, bool *first, const char *key, const CertInfo *c, time_t now) {
        bool inner = true;

        json_key(f, first, key);
        if (!c->present || c->error) {
                fputs("null", f); /* the error goes to "errors" */
                return;
        }
        fputc('{', f);
        json_key_string(f, &inner, "subject", c->subject);
        json_key_string(f, &inner, "serial", c->serial);
        json_key_string(f, &inner, "issuer", c->issuer);
        json_key_time(f, &inner, "not_before", c->not_before);
        json_key_time(f, &inner, "not_after", c->not_after);
        if (now != 0) {
                int64_t left = (int64_t) c->not_after - (int64_t) now;

                json_key(f, &inner, "seconds_left");
                fprintf(f, "%" PRIi64, left);
                json_key(f, &inner, "days_left");
                fprintf(f, "%" PRIi64, left / 86400);
        }
        fputc('}', f);
}

static void print_json(const Status *s) {
        const StatusRecord *r = s->have_record ? &s->record : NULL;
        const char *errors[] = { s->record_error, s->birth.error, s->operational.error };
        char buf[64];
        bool first = true, efirst = true;
        FILE *f = stdout;

        fputc('{', f);
        json_key_string(f, &first, "state_dir", s->state_dir);
        json_key(f, &first, "daemon_running");
        fputs(s->daemon_down ? "false" : "true", f);
        json_key(f, &first, "daemon_pid");
        if (s->daemon_pid > 0)
                fprintf(f, "%d", (int) s->daemon_pid);
        else
                fputs("null", f);
        json_key_string(f, &first, "daemon_down", s->daemon_down);
        json_key_string(f, &first, "state", r ? r->state : NULL);
        json_key_string(f, &first, "last_error", r ? r->last_error : NULL);
        json_key_string(f, &first, "write_error", r ? r->write_error : NULL);
        json_key(f, &first, "tpm_lockout");
        fputs(!r ? "null" : r->tpm_lockout ? "true" : "false", f);
        json_key(f, &first, "birth_key_da");
        fputs(!r ? "null" : r->birth_key_da ? "true" : "false", f);
        json_key(f, &first, "failures");
        if (r)
                fprintf(f, "%u", r->failures);
        else
                fputs("null", f);
        json_key_string(f, &first, "last_success", r ? format_record_time(r->last_success, buf) : NULL);
        json_key_string(f, &first, "next_attempt", r ? format_record_time(r->next_attempt, buf) : NULL);
        json_key_string(f, &first, "last_attempt", r ? format_record_time(r->last_attempt, buf) : NULL);
        json_key_string(f, &first, "renew_due", r ? format_record_time(r->renew_due, buf) : NULL);
        json_key_string(f, &first, "cacerts_checked", r ? format_record_time(r->cacerts_checked, buf) : NULL);
        json_key_string(f, &first, "cacerts_next", r ? format_record_time(r->cacerts_next, buf) : NULL);
        json_key_string(f, &first, "updated", r ? format_record_time(r->updated, buf) : NULL);
        json_key_string(f, &first, "est_url", s->est_url);
        json_cert(f, &first, "birth_certificate", &s->birth, 0);
        json_cert(f, &first, "operational_certificate", &s->operational, s->now);

        json_key(f, &first, "errors");
        fputc('[', f);
        for (size_t i = 0; i < ELEMENTSOF(errors); i++)
                if (errors[i]) {
                        fputs(efirst ? "" : ",", f);
                        efirst = false;
                        json_string(f, errors[i]);
                }
        fputs("]}\n", f);
}

/* ---- human output ---- */

#define KEY_WIDTH 24

/* Prints "Key:" padded to KEY_WIDTH and the value with control characters (C0, DEL,
 * C1) and invalid UTF-8 replaced by '?', so that nothing read from a file can steer
 * the terminal. */
static void line(const char *key, const char *value) {
        const unsigned char *p = (const unsigned char *) strempty(value ?: "none");

        printf("%-*s ", KEY_WIDTH, key);
        while (*p) {
                size_t n = utf8_sequence_len(p);

                if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)) ||
                    (n == 2 && p[0] == 0xC2 && p[1] < 0xA0)) {
                        fputc('?', stdout);
                        p += n ?: 1;
                } else {
                        fwrite(p, 1, n, stdout);
                        p += n;
                }
        }
        fputc('\n', stdout);
}

static void line_unreadable(const char *key, const char *error) {
        _cleanup_free_ char *v = NULL;

        if (asprintf(&v, "unreadable: %s", error) < 0)
                v = NULL;
        line(key, v ?: "unreadable");
}

static void line_time(const char *key, time_t t) {
        char buf[64];

        timestamp_utc(t, buf);
        line(key, buf);
}

static void print_cert(const char *what, const CertInfo *c, time_t now) {
        char key[KEY_WIDTH + 1], buf[128];

#define KEY(suffix) (snprintf(key, sizeof(key), "%s %s:", what, suffix), key)
        if (!c->present) {
                line(KEY("certificate"), NULL);
                return;
        }
        if (c->error) {
                line_unreadable(KEY("certificate"), c->error);
                return;
        }
        line(KEY("subject"), c->subject);
        line(KEY("serial"), c->serial);
        line(KEY("issuer"), c->issuer);
        line_time(KEY("not before"), c->not_before);
        line_time(KEY("not after"), c->not_after);
        if (now != 0) {
                int64_t left = (int64_t) c->not_after - (int64_t) now;

                int64_t days = (left < 0 ? -left : left) / 86400;
                const char *unit = days == 1 ? "day" : "days";

                if (left >= 0)
                        snprintf(buf, sizeof(buf), "%" PRIi64 " %s (%" PRIi64 " seconds)%s", days, unit,
                                 left, now < c->not_before ? ", not valid yet" : "");
                else
                        snprintf(buf, sizeof(buf), "expired %" PRIi64 " %s ago (%" PRIi64 " seconds)", days,
                                 unit, left);
                line(KEY("time left"), buf);
        }
#undef KEY
}

static void print_human(const Status *s) {
        const StatusRecord *r = s->have_record ? &s->record : NULL;
        char buf[64], daemon[DIAG_MAX + 64];

        line("State directory:", s->state_dir);
        if (s->daemon_down) {
                snprintf(daemon, sizeof(daemon), "%s; the state below is its last report", s->daemon_down);
                line("Daemon:", daemon);
        } else {
                snprintf(daemon, sizeof(daemon), "running (pid %d)", (int) s->daemon_pid);
                line("Daemon:", daemon);
        }
        if (s->record_error)
                line_unreadable("State:", s->record_error);
        else
                line("State:", r ? r->state : NULL);
        line("Last error:", r ? r->last_error : NULL);
        line("Write error:", r ? r->write_error : NULL);
        if (r && r->tpm_lockout)
                line("TPM:", "in dictionary-attack lockout (keys without noDA cannot be used until it ends)");
        if (r && r->birth_key_da)
                line("Birth key:", "lacks noDA (TCG template as it is): a dictionary-attack lockout blocks "
                                   "enrolling; provision it again with fleetid-provision");
        if (r) {
                snprintf(buf, sizeof(buf), "%u", r->failures);
                line("Failures:", buf);
        } else
                line("Failures:", NULL);
        line("Last success:", r ? format_record_time(r->last_success, buf) : NULL);
        line("Last attempt:", r ? format_record_time(r->last_attempt, buf) : NULL);
        line("Renewal due:", r ? format_record_time(r->renew_due, buf) : NULL);
        line("Next attempt:", r ? format_record_time(r->next_attempt, buf) : NULL);
        line("CA certs checked:", r ? format_record_time(r->cacerts_checked, buf) : NULL);
        line("Next CA certs check:", r ? format_record_time(r->cacerts_next, buf) : NULL);
        line("Status updated:", r ? format_record_time(r->updated, buf) : NULL);
        line("EST URL:", s->est_url);
        print_cert("Birth", &s->birth, 0);
        print_cert("Operational", &s->operational, s->now);
}

/* ---- verbs ---- */

static int log_oom(void) {
        fprintf(stderr, "fleetidctl: out of memory\n");
        return EXIT_USAGE;
}

/* The file named by --config, else the default file, except that --state-dir
 * alone means no file: then the built-in defaults if want_defaults, else NULL. */
static int load_config(bool want_defaults, Config **ret, Diag *d) {
        const char *path = arg_config ?: FLEETID_CONFIG_PATH;
        int r;

        if (arg_state_dir && !arg_config) {
                *ret = NULL;
                return want_defaults ? config_new_defaults(ret) : 0;
        }
        r = config_load(path, ret, d);
        if (r < 0 && !d->text[0])
                diag_set(d, r, "cannot load %s: %s", path, strerror(-r));
        return r;
}

/* The runtime copy of the status (paths.runtime_dir) is read only with a
 * configuration file: --state-dir alone names only the state directory. */
static const char *runtime_dir(const Config *config) {
        if (!config || (arg_state_dir && !arg_config))
                return NULL;
        return config->runtime_dir;
}

/* The status record: the copy in the state directory, or the one in the runtime
 * directory if that is as new or newer. fleetidd writes both; only the runtime
 * copy says when it cannot write the state directory, and only it is current
 * then. Errors as status_record_load() on the state directory's copy, unless the
 * runtime copy is there to use instead. */
int load_record(const Config *config, StateStore *store, StatusRecord *ret, Diag *d) {
        _cleanup_(state_store_freep) StateStore *run = NULL;
        _cleanup_(status_record_done) StatusRecord copy = {};
        int r;

        r = status_record_load(store, ret, d);
        if (!runtime_dir(config) || state_store_open_existing(runtime_dir(config), &run, NULL) < 0 ||
            status_record_load(run, &copy, NULL) < 0)
                return r;
        if (r >= 0 && ret->updated > copy.updated)
                return 0;
        if (r >= 0)
                status_record_done(ret);
        *ret = copy;
        copy = (StatusRecord) {};
        diag_clear(d);
        return 0;
}

/* What fleetidd says over D-Bus replaces what the state directory says of
 * the same things (status-bus.h): it is live, and a reader without access
 * to the directory gets it too. */
static int status_overlay_bus(Status *s, const BusStatus *b) {
        Diag d = {};
        int r;

        if (b->pid > 0) {
                s->daemon_pid = b->pid;
                free(s->daemon_down);
                s->daemon_down = NULL;
        }
        if (!s->have_record)
                s->record = (StatusRecord) {};
        s->have_record = true;
        free(s->record_error);
        s->record_error = NULL;
        free(s->record.state);
        free(s->record.last_error);
        s->record.state = strdup(strempty(b->state));
        s->record.last_error = b->last_error ? strdup(b->last_error) : NULL;
        if (!s->record.state || (b->last_error && !s->record.last_error))
                return -ENOMEM;
        s->record.last_success = b->last_success;
        s->record.renew_due = b->renew_due;
        cert_info_done(&s->operational);
        if (!b->leaf_pem)
                return 0;
        r = cert_info_from_pem(b->leaf_pem, strlen(b->leaf_pem), &s->operational, &d);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                s->operational = (CertInfo) { .present = true, .error = strdup(diag_text(&d, r)) };
                return s->operational.error ? 0 : -ENOMEM;
        }
        return 0;
}

static int verb_status(void) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        _cleanup_(status_done) Status s = {};
        _cleanup_(bus_status_done) BusStatus bus = {};
        const char *dir;
        bool unreadable = false, on_bus;
        Diag d = {};
        int r;

        /* With --state-dir the configuration is only needed if named explicitly. */
        r = load_config(false, &config, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return EXIT_USAGE;
        }
        dir = arg_state_dir ?: config->state_dir;
        if (isempty(dir)) {
                fprintf(stderr, "fleetidctl: no state directory configured\n");
                return EXIT_USAGE;
        }
        /* The running fleetidd over D-Bus when it is there (--state-dir alone: the directory only). */
        on_bus = !(arg_state_dir && !arg_config) && ctl_status_bus(&bus) >= 0;

        r = state_store_open_existing(dir, &store, &d);
        if (r < 0 && !on_bus) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return EXIT_STATE_UNREADABLE;
        }
        if (r < 0) {
                /* What the bus says is shown (not an error: a reader may not
                 * read the directory); the files' part is not there. */
                s.birth = (CertInfo) { .present = true, .error = strdup(diag_text(&d, r)) };
                if (!s.birth.error)
                        return log_oom();
        }
        s.state_dir = store ? state_store_path(store) : dir;
        s.now = time(NULL);
        /* Not an error: the certificates and the last status are shown all the same. */
        r = store ? read_daemon_pid(config, store, &s.daemon_pid, &d) : -ENOENT;
        if (r < 0) {
                s.daemon_pid = 0;
                s.daemon_down = strdup(store ? diag_text(&d, r) : "fleetidd is not running");
                if (!s.daemon_down)
                        return log_oom();
                diag_clear(&d);
        }

        r = store ? load_record(config, store, &s.record, &d) : -ENOENT;
        if (r >= 0)
                s.have_record = true;
        else if (r != -ENOENT) {
                s.record_error = strdup(diag_text(&d, r));
                if (!s.record_error)
                        return log_oom();
                unreadable = true;
        }

        s.est_url = s.have_record && s.record.est_url ? s.record.est_url : config ? config->est_url : NULL;

        if (store) {
                r = load_cert(store, STATE_BIRTH_CERT, &s.birth);
                if (r == -ENOMEM)
                        return log_oom();
                unreadable = unreadable || r < 0;
                r = load_cert(store, STATE_OPERATIONAL_CERT, &s.operational);
                if (r == -ENOMEM)
                        return log_oom();
                unreadable = unreadable || (r < 0 && !on_bus);
        }
        if (on_bus && status_overlay_bus(&s, &bus) < 0)
                return log_oom();

        if (arg_json)
                print_json(&s);
        else
                print_human(&s);

        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "fleetidctl: could not write the output: %s\n", strerror(errno));
                return EXIT_USAGE;
        }
        return unreadable ? EXIT_STATE_UNREADABLE : EXIT_OK;
}

/* ---- check: a monitoring probe with Nagios plugin exit codes ---- */

enum {
        NAGIOS_OK = 0,
        NAGIOS_WARNING = 1,
        NAGIOS_CRITICAL = 2,
        NAGIOS_UNKNOWN = 3,
};

static const char *const nagios_names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

/* How much of the status record's last error the one line carries. */
#define CHECK_ERROR_TEXT_MAX 200

typedef struct Check {
        int exit_code;
        char *message; /* after "FLEETID STATUS - " */
        char *perfdata;
        bool have_cert; /* the fields below are set */
        Severity severity;
        time_t now, not_before, not_after, renew_due;
        const Config *config;
        const StatusRecord *record; /* NULL if none */
        bool daemon_down;           /* known not to run: said after the message */
} Check;

static void check_done(Check *k) {
        free(k->message);
        free(k->perfdata);
}

static int nagios_code(Severity s) {
        switch (s) {
        case SEVERITY_OK:
        case SEVERITY_NOTICE:
                return NAGIOS_OK;
        case SEVERITY_WARNING:
                return NAGIOS_WARNING;
        default:
                return NAGIOS_CRITICAL;
        }
}

/* Makes s fit for the one output line, in place: control characters become
 * ' ', '|' (which starts the performance data) becomes '/'. */
static char *sanitize_line(char *s) {
        for (char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
                else if (*p == '|')
                        *p = '/';
        return s;
}

/* A sanitized copy of s, cut to at most max bytes on a UTF-8 character boundary. */
static char *one_line(const char *s, size_t max) {
        size_t n = strlen(s);
        char *t;

        if (n > max) {
                n = max;
                while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                        n--;
        }
        t = strndup(s, n);
        return t ? sanitize_line(t) : NULL;
}

/* The state and the last error from the status record, when there was a failure:
 * "; 2 consecutive failures (state waiting-retry), last error: ...", else "". */
static char *failure_suffix(const StatusRecord *r) {
        _cleanup_free_ char *error = NULL;
        char *s;

        if (!r || r->failures == 0)
                return strdup("");
        if (r->last_error) {
                error = one_line(r->last_error, CHECK_ERROR_TEXT_MAX);
                if (!error)
                        return NULL;
        }
        if (asprintf(&s, "; %u consecutive failure%s (state %s)%s%s", r->failures, r->failures == 1 ? "" : "s",
                     r->state, error ? ", last error: " : "", strempty(error)) < 0)
                return NULL;
        return s;
}

static int check_evaluate(Check *k) {
        const Config *c = k->config;
        _cleanup_free_ char *suffix = NULL;
        char until[64], due[64], left[64];
        int64_t seconds_left = (int64_t) k->not_after - (int64_t) k->now;
        int64_t life = (int64_t) k->not_after - (int64_t) k->not_before;
        int r;

        Severity short_life = severity_for_lifetime(k->not_before, k->not_after, c->renew_min_lifetime_sec);
        int64_t early = (int64_t) k->not_before - (int64_t) k->now;
        char life_text[64], early_text[64], min_text[64], from[64];

        k->severity = severity_for(k->now, k->not_before, k->not_after, k->renew_due, c->warning_percent,
                                   c->error_percent, c->critical_percent);
        /* Not valid yet: no working identity. Within est.max_clock_skew a CA
         * clock a little ahead explains it (warning); beyond, critical. */
        if (life > 0 && early > 0 && k->severity < SEVERITY_CRITICAL)
                k->severity =
                        early > (int64_t) c->est_max_clock_skew_sec ? SEVERITY_CRITICAL : SEVERITY_WARNING;
        else if (short_life > k->severity)
                k->severity = short_life;
        else
                short_life = SEVERITY_OK; /* said by the usual message */
        k->exit_code = nagios_code(k->severity);
        duration_text(life, life_text, sizeof(life_text));
        duration_text(early, early_text, sizeof(early_text));
        duration_text(c->renew_min_lifetime_sec, min_text, sizeof(min_text));
        timestamp_utc(k->not_before, from);
        timestamp_utc(k->not_after, until);
        timestamp_utc(k->renew_due, due);
        duration_text(seconds_left < 0 ? -seconds_left : seconds_left, left, sizeof(left));
        suffix = failure_suffix(k->record);
        if (!suffix)
                return -ENOMEM;

        if (life <= 0)
                r = asprintf(
                        &k->message,
                        "operational certificate has no validity period (notAfter %s is not after notBefore)%s",
                        until, suffix);
        else if (early > 0)
                r = asprintf(
                        &k->message, "operational certificate not valid yet: valid from %s, %s from now%s%s",
                        from, early_text,
                        k->severity == SEVERITY_CRITICAL
                                ? " (more than est.max_clock_skew): no working identity; is the clock right?"
                                : "",
                        suffix);
        else if (seconds_left <= 0)
                r = asprintf(&k->message, "operational certificate expired on %s, %s ago%s", until, left,
                             suffix);
        else if (short_life != SEVERITY_OK)
                r = asprintf(&k->message,
                             "operational certificate lives only %s (renew.min_lifetime is %s): the EST CA issues "
                             "certificates too short to renew safely; valid until %s, %s left%s",
                             life_text, min_text, until, left, suffix);
        else if (k->severity == SEVERITY_OK)
                r = asprintf(&k->message, "operational certificate valid until %s, %s left%s", until, left,
                             suffix);
        else if (k->severity == SEVERITY_NOTICE)
                r = asprintf(
                        &k->message,
                        "renewal due since %s, not renewed yet; operational certificate valid until %s, %s left%s",
                        due, until, left, suffix);
        else {
                unsigned pct = k->severity == SEVERITY_WARNING ? c->warning_percent
                               : k->severity == SEVERITY_ERROR ? c->error_percent
                                                               : c->critical_percent;

                r = asprintf(&k->message,
                             "operational certificate expires %s, %s left (%s: at most %u%% of its lifetime)%s",
                             until, left, severity_to_string(k->severity), pct, suffix);
        }
        if (r < 0) {
                k->message = NULL;
                return -ENOMEM;
        }
        sanitize_line(k->message); /* the state comes from a file */

        /* Nagios ranges "N:" alert below N; the state itself comes from severity_for(). */
        if (asprintf(&k->perfdata, "days_left=%" PRIi64 ";%" PRIi64 ":;%" PRIi64 ": failures=%u",
                     seconds_left / 86400, life > 0 ? life / 100 * c->warning_percent / 86400 : 0,
                     life > 0 ? life / 100 * c->error_percent / 86400 : 0,
                     k->record ? k->record->failures : 0) < 0) {
                k->perfdata = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* fleetidd reports that it cannot write its state directory: CRITICAL, whatever
 * the certificate's state, since no renewal can be stored and what the state
 * directory shows is out of date. */
static int check_write_error(Check *k) {
        _cleanup_free_ char *error = NULL, *message = NULL;

        if (!k->record || !k->record->write_error)
                return 0;
        error = one_line(k->record->write_error, CHECK_ERROR_TEXT_MAX);
        if (!error ||
            asprintf(&message, "fleetidd cannot write its state directory: %s; %s", error, k->message) < 0)
                return -ENOMEM;
        free(k->message);
        k->message = TAKE_PTR(message);
        k->exit_code = NAGIOS_CRITICAL;
        return 0;
}

/* The TPM is another one than the device enrolled with (tpm-replaced): CRITICAL,
 * fleetidd will not enroll; in dictionary-attack lockout, or a birth key
 * without noDA (a lockout would block enrolling): at least WARNING. */
static int check_tpm(Check *k) {
        _cleanup_free_ char *message = NULL;
        bool replaced = k->record && daemon_state_from_string(k->record->state) == DAEMON_STATE_TPM_REPLACED;
        bool lockout = k->record && k->record->tpm_lockout;
        bool birth_da = k->record && k->record->birth_key_da;

        if (!replaced && !lockout && !birth_da)
                return 0;
        if (asprintf(&message, "%s%s%s; %s",
                     replaced ? "the TPM was replaced: fleetidd does not enroll with this TPM (state tpm-replaced)"
                     : lockout ? "the TPM is in dictionary-attack lockout"
                               : "",
                     !replaced && lockout && birth_da ? "; " : "",
                     !replaced && birth_da ? "the birth key lacks noDA: a dictionary-attack lockout blocks "
                                             "enrolling (provision it again with fleetid-provision)"
                                           : "",
                     k->message) < 0)
                return -ENOMEM;
        free(k->message);
        k->message = TAKE_PTR(message);
        if (replaced)
                k->exit_code = NAGIOS_CRITICAL;
        else if (k->exit_code < NAGIOS_WARNING)
                k->exit_code = NAGIOS_WARNING;
        return 0;
}

static void check_print_json(const Check *k) {
        const char *status = nagios_names[k->exit_code];
        bool first = true, inner = true;
        FILE *f = stdout;

        fputc('{', f);
        json_key_string(f, &first, "status", status);
        json_key(f, &first, "exit_code");
        fprintf(f, "%d", k->exit_code);
        json_key_string(f, &first, "severity", k->have_cert ? severity_to_string(k->severity) : NULL);
        json_key_string(f, &first, "message", k->message);
        json_key(f, &first, "daemon_running");
        fputs(k->daemon_down ? "false" : "true", f);
        if (k->have_cert) {
                int64_t left = (int64_t) k->not_after - (int64_t) k->now;

                json_key_time(f, &first, "not_before", k->not_before);
                json_key_time(f, &first, "not_after", k->not_after);
                json_key_time(f, &first, "renew_due", k->renew_due);
                json_key(f, &first, "seconds_left");
                fprintf(f, "%" PRIi64, left);
                json_key(f, &first, "days_left");
                fprintf(f, "%" PRIi64, left / 86400);
                json_key(f, &first, "thresholds_percent");
                fputc('{', f);
                json_key(f, &inner, "warning");
                fprintf(f, "%u", k->config->warning_percent);
                json_key(f, &inner, "error");
                fprintf(f, "%u", k->config->error_percent);
                json_key(f, &inner, "critical");
                fprintf(f, "%u", k->config->critical_percent);
                fputc('}', f);
        }
        json_key_string(f, &first, "state", k->record ? k->record->state : NULL);
        json_key_string(f, &first, "write_error", k->record ? k->record->write_error : NULL);
        json_key(f, &first, "failures");
        if (k->record)
                fprintf(f, "%u", k->record->failures);
        else
                fputs("null", f);
        fputs("}\n", f);
}

/* Prints the result and returns the exit code; UNKNOWN if the output fails. */
static int check_print(const Check *k) {
        const char *down = k->daemon_down ? "; fleetidd is not running" : "";

        if (arg_json)
                check_print_json(k);
        else if (k->perfdata)
                printf("FLEETID %s - %s%s | %s\n", nagios_names[k->exit_code], k->message, down, k->perfdata);
        else
                printf("FLEETID %s - %s%s\n", nagios_names[k->exit_code], k->message, down);

        if (fflush(stdout) != 0 || ferror(stdout))
                return NAGIOS_UNKNOWN;
        return k->exit_code;
}

/* An UNKNOWN result whose message is text made one line. */
static int check_unknown(Check *k, const char *text) {
        free(k->message);
        k->exit_code = NAGIOS_UNKNOWN;
        k->have_cert = false;
        k->message = one_line(text, DIAG_MAX);
        if (!k->message) {
                printf("FLEETID UNKNOWN - out of memory\n");
                return NAGIOS_UNKNOWN;
        }
        return check_print(k);
}

/* More consecutive failures than this is no count fleetidd can have written
 * (one attempt a second for over eleven days): the status file is damaged. */
#define CHECK_FAILURES_MAX 1000000U

/* The status record says something fleetidd never writes: the probe cannot
 * trust it to describe the device. NULL if it is sane, else the reason. */
static char *check_record_insane(const StatusRecord *r) {
        _cleanup_free_ char *state = NULL;
        char *s;

        if (daemon_state_from_string(r->state) >= 0)
                goto state_ok;
        state = one_line(r->state, 64);
        if (!state || asprintf(&s, "the status file has an unknown state '%s'; it is damaged or not fleetidd's",
                               state) < 0)
                return NULL;
        return s;
state_ok:
        if (r->failures <= CHECK_FAILURES_MAX)
                return NULL;
        if (asprintf(&s,
                     "the status file says %u consecutive failures, more than fleetidd can have counted (%u); "
                     "it is damaged",
                     r->failures, CHECK_FAILURES_MAX) < 0)
                return NULL;
        return s;
}

/* Whether operational.pem (leaf, then its chain) was issued by the EST CA set
 * fleetidd stored: a certificate from anywhere else is no fleetid identity.
 * Dates do not matter here: the chain is verified at a time the leaf is valid.
 * 0 if it is; -ENOENT without an EST CA set; else the reason in d. */
static int check_issuer(StateStore *store, time_t now, time_t not_before, time_t not_after, Diag *d) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL, *ca = NULL;
        /* OpenSSL takes notAfter itself as expired: the second before it. */
        time_t last = not_after > not_before ? not_after - 1 : not_after;
        time_t at = now < not_before ? not_before : now > last ? last : now;
        int r;

        /* Both read as every state file is: no symlink followed, bounded. */
        r = state_certs_load(store, STATE_TRUST_ANCHORS, &ca, d);
        if (r < 0)
                return diag_prefix(d, r, "cannot tell who issued the operational certificate: no EST CA set");
        r = state_certs_load(store, STATE_OPERATIONAL_CERT, &certs, d);
        if (r < 0)
                return r;
        r = cert_verify_chain(sk_X509_value(certs, 0), certs, ca, at, true, d);
        if (r < 0)
                return diag_prefix(d, r, "operational certificate not issued by the EST CA set (%s/%s)",
                                   state_store_path(store), STATE_TRUST_ANCHORS);
        return 0;
}

static int verb_check(void) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        _cleanup_(status_record_done) StatusRecord record = {};
        _cleanup_(cert_info_done) CertInfo cert = {};
        _cleanup_(check_done) Check k = {};
        _cleanup_free_ char *text = NULL;
        RenewPolicy policy;
        Diag d = {};
        int r;

        r = load_config(true, &config, &d);
        if (r < 0)
                return check_unknown(&k, diag_text(&d, r));
        k.config = config;

        r = state_store_open_existing(arg_state_dir ?: config->state_dir, &store, &d);
        if (r < 0)
                return check_unknown(&k, diag_text(&d, r));
        {
                pid_t pid;

                k.daemon_down = read_daemon_pid(config, store, &pid, NULL) < 0;
        }

        r = load_record(config, store, &record, &d);
        if (r >= 0)
                k.record = &record;
        else if (r != -ENOENT)
                return check_unknown(&k, diag_text(&d, r));
        if (k.record) {
                text = check_record_insane(k.record);
                if (text)
                        return check_unknown(&k, text);
        }

        r = load_cert(store, STATE_OPERATIONAL_CERT, &cert);
        if (r < 0)
                return check_unknown(&k, cert.error ?: strerror(-r));
        if (!cert.present) {
                if (asprintf(&text, "no operational certificate in %s (state %s)", state_store_path(store),
                             k.record ? k.record->state : "unknown: fleetidd has not written its status") < 0)
                        text = NULL;
                return check_unknown(&k, text ?: "no operational certificate");
        }

        /* The renewal time fleetidd drew for this certificate, from its status;
         * without it, the latest any device can have drawn (the jitter's upper
         * end): never "due" before fleetidd itself renews. */
        policy = (RenewPolicy) {
                .share_percent = config->renew_share_percent,
                .jitter_percent = config->renew_jitter_percent,
        };
        k.now = time(NULL);
        r = check_issuer(store, k.now, cert.not_before, cert.not_after, &d);
        if (r == -EKEYREJECTED) {
                k.exit_code = NAGIOS_CRITICAL;
                k.message = one_line(diag_text(&d, r), DIAG_MAX);
                return k.message ? check_print(&k) : check_unknown(&k, "out of memory");
        }
        if (r < 0)
                return check_unknown(&k, diag_text(&d, r));
        k.have_cert = true;
        k.not_before = cert.not_before;
        k.not_after = cert.not_after;
        if (k.record && k.record->renew_due > (uint64_t) cert.not_before &&
            k.record->renew_due < (uint64_t) cert.not_after)
                k.renew_due = (time_t) k.record->renew_due;
        else
                k.renew_due = renew_due(cert.not_before, cert.not_after, &policy, UINT64_MAX);
        r = check_evaluate(&k);
        if (r >= 0)
                r = check_tpm(&k);
        if (r >= 0)
                r = check_write_error(&k);
        if (r < 0)
                return check_unknown(&k, "out of memory");
        return check_print(&k);
}

/* How long fleetidctl renew waits for the outcome. */
#define RENEW_WAIT_SEC 120
/* How long fleetidctl wait-enrolled waits without --timeout; 0 = no limit. */
#define WAIT_ENROLLED_TIMEOUT_DEFAULT 300

static void help(void) {
        printf("Usage: fleetidctl [OPTIONS] COMMAND\n"
               "\n"
               "Shows the state of the fleetid identity agent, and asks it to renew.\n"
               "\n"
               "Commands:\n"
               "  status               Enrollment state, birth and operational certificates\n"
               "  check                Monitoring probe: one line and a Nagios plugin exit code\n"
               "                       (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)\n"
               "  renew                Ask the running fleetidd to renew the operational\n"
               "                       certificate now (Renew() over D-Bus, else SIGUSR1), and\n"
               "                       wait (at most %ds, --timeout) for the outcome\n"
               "  chain                The operational certificate and its chain, as PEM\n"
               "  wait-enrolled        Wait until the running fleetidd reports a valid\n"
               "                       operational certificate (fleetid-wait-enrolled.service)\n"
               "  sign-challenge       Have fleetidd sign a challenge (D-Bus SignChallenge):\n"
               "                       --nonce HEX --purpose P [--birth] [--out CHAIN.pem]\n"
               "  sensor request --id ID --csr FILE [--evidence FILE] --out CHAIN\n"
               "                       Have fleetidd enroll a downstream sensor's CSR (DER or\n"
               "                       PEM); waits for the job, writes the chain (PEM)\n"
               "  sensor list          The sensors fleetidd tracks\n"
               "  sensor forget ID     Remove a sensor's record\n"
               "  factory-reset        Wipe the operational identity and the owner's\n"
               "                       configuration, keep the birth identity, and enroll with\n"
               "                       a new owner (root only; docs/factory-reset.md)\n"
               "\n"
               "Options:\n"
               "      --config PATH    Configuration file (default: %s)\n"
               "      --state-dir DIR  State directory to read; the configuration is then\n"
               "                       not loaded unless --config is given too (check then\n"
               "                       uses the default thresholds)\n"
               "      --json           Print one JSON object instead of text\n"
               "      --nonce HEX      sign-challenge: the nonce, 16 to 64 bytes in hex\n"
               "      --purpose P      sign-challenge: the purpose, 1 to 64 of [a-z0-9._-]\n"
               "      --birth          sign-challenge: with the birth key (role attest-birth)\n"
               "      --out FILE       sign-challenge: write the chain (PEM) to FILE, not stdout\n"
               "      --timeout SECS   wait-enrolled: give up after SECS seconds (default %d;\n"
               "                       0 waits as long as fleetidd runs); renew: wait at most\n"
               "                       SECS seconds (1 or more); factory-reset: how long to\n"
               "                       wait for the running fleetidd (default 300)\n"
               "      --owner FILE     factory-reset: install FILE as the new owner's drop-in\n"
               "                       (checked before anything is wiped)\n"
               "      --yes            factory-reset: do not ask (without it, asks on a terminal\n"
               "                       and refuses without one)\n"
               "      --no-enroll      factory-reset: wipe only; fleetidd stops and enrolls the\n"
               "                       next time it starts\n"
               "  -h --help            Show this help\n"
               "  -V --version         Show the version\n"
               "\n"
               "Exit status of status: 0 success, 1 usage or configuration error, 3 the\n"
               "state directory or a file in it cannot be read. Missing files are not errors.\n"
               "Exit status of check: the plugin code above; every error, also a usage or\n"
               "configuration error, gives 3. See docs/monitoring.md.\n"
               "Exit status of renew: 0 renewed, 1 the renewal failed or fleetidd is not running\n"
               "or refused, 2 no outcome within the wait, 3 pending: the CA deferred the request\n"
               "(fleetidd asks again by itself).\n"
               "Exit status of chain: 0 printed, 1 not enrolled, refused or unreadable.\n"
               "Exit status of factory-reset: 0 done (with fleetidd not running: wiped, and\n"
               "fleetidd enrolls when it starts), 1 refused or failed, 2 the running fleetidd did\n"
               "not finish within --timeout.\n"
               "Exit status of wait-enrolled: 0 enrolled, 1 fleetidd is not running, exited or\n"
               "reports failed (or a usage or configuration error), 2 not enrolled within\n"
               "the timeout.\n",
               RENEW_WAIT_SEC, FLEETID_CONFIG_PATH, WAIT_ENROLLED_TIMEOUT_DEFAULT);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_CONFIG = 0x100,
                ARG_STATE_DIR,
                ARG_JSON,
                ARG_TIMEOUT,
                ARG_NONCE,
                ARG_PURPOSE,
                ARG_BIRTH,
                ARG_OUT,
                ARG_OWNER,
                ARG_YES,
                ARG_NO_ENROLL,
        };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "version", no_argument, NULL, 'V' },
                                                 { "config", required_argument, NULL, ARG_CONFIG },
                                                 { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                                                 { "json", no_argument, NULL, ARG_JSON },
                                                 { "timeout", required_argument, NULL, ARG_TIMEOUT },
                                                 { "nonce", required_argument, NULL, ARG_NONCE },
                                                 { "purpose", required_argument, NULL, ARG_PURPOSE },
                                                 { "birth", no_argument, NULL, ARG_BIRTH },
                                                 { "out", required_argument, NULL, ARG_OUT },
                                                 { "owner", required_argument, NULL, ARG_OWNER },
                                                 { "yes", no_argument, NULL, ARG_YES },
                                                 { "no-enroll", no_argument, NULL, ARG_NO_ENROLL },
                                                 {} };
        int c;

        while ((c = getopt_long(argc, argv, "hV", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("fleetidctl %s\n", FLEETID_VERSION);
                        return 0;
                case ARG_CONFIG:
                        arg_config = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-' || v > 86400 * 365) {
                                fprintf(stderr,
                                        "fleetidctl: --timeout \"%s\" is not a number of seconds "
                                        "(0 to 31536000)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        arg_timeout = (unsigned) v;
                        arg_timeout_set = true;
                        break;
                }
                case ARG_NONCE:
                        arg_sign.nonce_hex = optarg;
                        break;
                case ARG_PURPOSE:
                        arg_sign.purpose = optarg;
                        break;
                case ARG_BIRTH:
                        arg_sign.birth = true;
                        break;
                case ARG_OUT:
                        arg_sign.out = optarg;
                        break;
                case ARG_OWNER:
                        arg_owner = optarg;
                        break;
                case ARG_YES:
                        arg_yes = true;
                        break;
                case ARG_NO_ENROLL:
                        arg_no_enroll = true;
                        break;
                case '?':
                        return -EINVAL; /* getopt_long() said what was wrong */
                default:
                        abort();
                }
        return 1;
}


/* fleetidctl renew: asks the running fleetidd for a renewal now (SIGUSR1 to the
 * PID it recorded, after checking that PID really is fleetidd), then waits a
 * bounded time for the outcome in the status file. Exit: 0 renewed, 1 the
 * renewal failed or fleetidd is not running, 2 no outcome within the wait. */

/* The PID file is in the runtime directory (fleetidd writes it to the state
 * directory only when it has no runtime directory). */
int read_daemon_pid(const Config *config, StateStore *store, pid_t *ret, Diag *d) {
        _cleanup_(state_store_freep) StateStore *run = NULL;
        _cleanup_free_ char *text = NULL, *comm = NULL, *path = NULL;
        size_t len;
        long pid;
        char *end;
        int r = -ENOENT;

        if (runtime_dir(config) && state_store_open_existing(runtime_dir(config), &run, NULL) >= 0)
                r = state_store_load(run, STATE_DAEMON_PID, 32, &text, &len, NULL);
        if (r == -ENOENT)
                r = state_store_load(store, STATE_DAEMON_PID, 32, &text, &len, d);
        if (r < 0)
                return diag_set(d, r, "fleetidd is not running (no %s in the runtime or state directory)",
                                STATE_DAEMON_PID);
        errno = 0;
        pid = strtol(text, &end, 10);
        if (errno || pid <= 1 || (*end && *end != '\n'))
                return diag_set(d, -EBADMSG, "%s does not hold a process ID", STATE_DAEMON_PID);
        if (asprintf(&path, "/proc/%ld/comm", pid) < 0)
                return -ENOMEM;
        r = read_file_bounded(path, 64, &comm, &len);
        if (r < 0 || strncmp(comm, "fleetidd\n", 9) != 0)
                return diag_set(d, -ESRCH,
                                "fleetidd is not running (process %ld is gone or is another program)", pid);
        *ret = (pid_t) pid;
        return 0;
}

/* For renew and wait-enrolled: the configuration, the state directory and the
 * PID of the running fleetidd. Says on stderr why not, and returns < 0. */
static int find_daemon(Config **ret_config, StateStore **ret_store, pid_t *ret_pid) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        Diag d = {};
        int r;

        r = load_config(true, &config, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return r;
        }
        r = state_store_open_existing(arg_state_dir ?: config->state_dir, &store, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s: %s\n",
                        r == -ENOENT ? "fleetidd is not running" : "cannot tell whether fleetidd runs",
                        diag_text(&d, r));
                return r;
        }
        r = read_daemon_pid(config, store, ret_pid, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return r;
        }
        *ret_config = TAKE_PTR(config);
        *ret_store = TAKE_PTR(store);
        return 0;
}

static int verb_renew(void) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        unsigned before = 0, wait_sec = arg_timeout_set ? arg_timeout : RENEW_WAIT_SEC;
        pid_t pid;
        int r;

        if (wait_sec == 0) {
                fprintf(stderr,
                        "fleetidctl: renew --timeout must be 1 second or more. Try 'fleetidctl --help'.\n");
                return EXIT_USAGE;
        }
        /* Over D-Bus (renew.c); by SIGUSR1 when fleetidd is not on the bus. */
        r = ctl_renew_bus(wait_sec);
        if (r != -EHOSTUNREACH)
                return r;
        /* 1 for a configuration error too, the same as EXIT_USAGE. */
        if (find_daemon(&config, &store, &pid) < 0)
                return 1;
        {
                _cleanup_(status_record_done) StatusRecord rec = {};

                if (load_record(config, store, &rec, NULL) >= 0)
                        before = rec.renew_requests;
        }
        if (kill(pid, SIGUSR1) < 0) {
                fprintf(stderr, "fleetidctl: cannot signal fleetidd (pid %d): %s\n", (int) pid,
                        strerror(errno));
                return 1;
        }
        printf("renewal requested from fleetidd (pid %d, by SIGUSR1: it is not on the D-Bus system bus); "
               "waiting up to %us\n",
               (int) pid, wait_sec);
        fflush(stdout);

        for (unsigned i = 0; i < wait_sec * 5; i++) {
                _cleanup_(status_record_done) StatusRecord rec = {};
                DaemonState state;

                usleep(200 * 1000);
                /* Only an outcome of an attempt that started after our request counts. */
                if (load_record(config, store, &rec, NULL) < 0 || rec.renew_answered <= before)
                        continue;
                state = daemon_state_from_string(rec.state);
                if (state == DAEMON_STATE_ENROLLED) {
                        printf("renewed\n");
                        if (rec.write_error)
                                printf("but fleetidd cannot write its state directory: %s\n", rec.write_error);
                        return 0;
                }
                if (state == DAEMON_STATE_WAITING_RETRY || state == DAEMON_STATE_FAILED ||
                    state == DAEMON_STATE_WAITING_CLOCK || state == DAEMON_STATE_TPM_REPLACED) {
                        printf("renewal did not succeed: %s%s%s\n", rec.state, rec.last_error ? ": " : "",
                               strempty(rec.last_error));
                        return 1;
                }
        }
        printf("no outcome within %us; see fleetidctl status\n", wait_sec);
        return 2;
}

static int verb_chain(void) {
        _cleanup_(config_freep) Config *config = NULL;
        Diag d = {};
        int r;

        r = ctl_chain_bus();
        if (r != -EHOSTUNREACH)
                return r;
        r = load_config(false, &config, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return EXIT_USAGE;
        }
        return ctl_chain_files(arg_state_dir ?: config->state_dir);
}

/* ---- wait-enrolled: the sync point for units that need the identity ---- */

enum {
        WAIT_ENROLLED = 0,
        WAIT_FAILED = 1, /* fleetidd is not running, exited, or failed; or a usage/config error */
        WAIT_TIMEOUT = 2,
};

static uint64_t now_monotonic_msec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000ULL + (uint64_t) ts.tv_nsec / 1000000ULL;
}

/* "state waiting-retry: EST server unreachable; next attempt 2026-...Z", or
 * "no status written yet" without a record. */
static void describe_record(const StatusRecord *r, char *buf, size_t size) {
        char next[64];

        if (!r || !r->state) {
                snprintf(buf, size, "fleetidd has not written its status yet");
                return;
        }
        snprintf(buf, size, "state %s%s%.200s%s%s", r->state, r->last_error ? ": " : "",
                 strempty(r->last_error), r->next_attempt ? "; next attempt " : "",
                 r->next_attempt ? strempty(format_record_time(r->next_attempt, next)) : "");
}

/* Drains the inotify queue: the events only say "look again". */
static void drain(int fd) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

static int verb_wait_enrolled(void) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL, *run = NULL;
        _cleanup_close_ int inotify_fd = -1, pid_fd = -1;
        unsigned timeout = arg_timeout_set ? arg_timeout : WAIT_ENROLLED_TIMEOUT_DEFAULT;
        uint64_t deadline = now_monotonic_msec() + (uint64_t) timeout * 1000ULL;
        char text[512], until[64];
        pid_t pid;
        Diag d = {};
        int r;

        if (find_daemon(&config, &store, &pid) < 0)
                return WAIT_FAILED;
        /* Only the runtime copy of the status is surely this daemon's: the
         * runtime directory is new at each start (RuntimeDirectory=), the state
         * directory's copy may be the previous run's. */
        if (!runtime_dir(config)) {
                fprintf(stderr, "fleetidctl: wait-enrolled needs paths.runtime_dir from the configuration "
                                "(the running fleetidd's status); --state-dir alone does not name it\n");
                return WAIT_FAILED;
        }
        /* Its exit is an event too: the pidfd polls readable then. */
        pid_fd = pidfd_open(pid, 0);
        if (pid_fd < 0) {
                fprintf(stderr, "fleetidctl: fleetidd (pid %d) is not running: %s\n", (int) pid,
                        strerror(errno));
                return WAIT_FAILED;
        }
        r = state_store_open_existing(runtime_dir(config), &run, &d);
        if (r < 0) {
                fprintf(stderr,
                        "fleetidctl: fleetidd (pid %d) runs, but its runtime directory cannot be read: %s\n",
                        (int) pid, diag_text(&d, r));
                return WAIT_FAILED;
        }
        /* The status is replaced by a rename into the directory: watch that,
         * before the first look, so that no write falls between the two. */
        inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (inotify_fd < 0 ||
            inotify_add_watch(inotify_fd, state_store_path(run),
                              IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
                fprintf(stderr, "fleetidctl: cannot watch %s: %s\n", state_store_path(run), strerror(errno));
                return WAIT_FAILED;
        }

        for (;;) {
                _cleanup_(status_record_done) StatusRecord rec = {};
                struct pollfd fds[] = { { .fd = inotify_fd, .events = POLLIN },
                                        { .fd = pid_fd, .events = POLLIN } };
                bool have = status_record_load(run, &rec, NULL) >= 0;
                uint64_t now = now_monotonic_msec();
                int wait_ms;

                if (have && rec.valid_until > (uint64_t) time(NULL)) {
                        printf("enrolled: the operational certificate is valid until %s\n",
                               strempty(format_record_time(rec.valid_until, until)));
                        return WAIT_ENROLLED;
                }
                describe_record(have ? &rec : NULL, text, sizeof(text));
                if (have && (daemon_state_from_string(rec.state) == DAEMON_STATE_FAILED ||
                             daemon_state_from_string(rec.state) == DAEMON_STATE_TPM_REPLACED)) {
                        fprintf(stderr,
                                "fleetidctl: fleetidd (pid %d) reports %s; it needs a person, see "
                                "journalctl -u fleetidd\n",
                                (int) pid, text);
                        return WAIT_FAILED;
                }
                if (timeout > 0 && now >= deadline) {
                        fprintf(stderr, "fleetidctl: not enrolled within %us: %s\n", timeout, text);
                        return WAIT_TIMEOUT;
                }
                wait_ms = timeout == 0 ? -1 : (int) (deadline - now < INT_MAX ? deadline - now : INT_MAX);
                if (poll(fds, ELEMENTSOF(fds), wait_ms) < 0 && errno != EINTR) {
                        fprintf(stderr, "fleetidctl: cannot wait: %s\n", strerror(errno));
                        return WAIT_FAILED;
                }
                if (fds[1].revents) {
                        /* A last look: the enrollment may be its last word. */
                        status_record_done(&rec);
                        if (status_record_load(run, &rec, NULL) >= 0 && rec.valid_until > (uint64_t) time(NULL))
                                continue;
                        fprintf(stderr,
                                "fleetidctl: fleetidd (pid %d) exited before the device was enrolled: %s\n",
                                (int) pid, text);
                        return WAIT_FAILED;
                }
                if (fds[0].revents)
                        drain(inotify_fd);
        }
}

static int usage_error(int usage_exit, const char *fmt, ...) _printf_(2, 3);

/* How long factory-reset waits for the running fleetidd without --timeout. */
#define FACTORY_RESET_TIMEOUT_DEFAULT 300

static int verb_factory_reset(void) {
        FactoryResetArgs a = {
                .config_path = arg_config ?: FLEETID_CONFIG_PATH,
                .owner = arg_owner,
                .yes = arg_yes,
                .no_enroll = arg_no_enroll,
                .timeout = arg_timeout_set ? arg_timeout : FACTORY_RESET_TIMEOUT_DEFAULT,
        };

        if (arg_state_dir)
                return usage_error(EXIT_USAGE, "factory-reset takes the state directory from the configuration, "
                                               "not --state-dir");
        return factory_reset(&a);
}

static const struct {
        const char *name;
        int (*run)(void);
        int usage_exit; /* exit status for a usage error */
} verbs[] = {
        { "status", verb_status, EXIT_USAGE },
        { "check", verb_check, NAGIOS_UNKNOWN },
        { "renew", verb_renew, EXIT_USAGE },
        { "wait-enrolled", verb_wait_enrolled, WAIT_FAILED },
        { "sign-challenge", verb_sign_challenge, EXIT_USAGE },
        { "chain", verb_chain, EXIT_USAGE },
        { "factory-reset", verb_factory_reset, EXIT_USAGE },
};

/* The verb named anywhere in argv, for the exit status of a usage error found
 * before the verb's position is known; NULL if none is. */
static const char *find_verb(int argc, char *argv[], int *ret_usage_exit) {
        for (int i = 1; i < argc; i++)
                for (size_t v = 0; v < ELEMENTSOF(verbs); v++)
                        if (strcmp(argv[i], verbs[v].name) == 0) {
                                *ret_usage_exit = verbs[v].usage_exit;
                                return verbs[v].name;
                        }
        *ret_usage_exit = EXIT_USAGE;
        return NULL;
}

/* A usage error; for check also the one plugin output line. */
static int usage_error(int usage_exit, const char *fmt, ...) _printf_(2, 3);
static int usage_error(int usage_exit, const char *fmt, ...) {
        va_list ap;

        fputs("fleetidctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(". Try 'fleetidctl --help'.\n", stderr);
        if (usage_exit == NAGIOS_UNKNOWN)
                printf("FLEETID UNKNOWN - invalid command line, see fleetidctl --help\n");
        return usage_exit;
}

/* Where the verb "sensor" is, 0 if none: it has options of its own, so the
 * global options are those before it. */
static int find_sensor_verb(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        return 0;
                if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--state-dir") == 0 ||
                    strcmp(argv[i], "--timeout") == 0) {
                        i++;
                        continue;
                }
                if (argv[i][0] != '-')
                        return strcmp(argv[i], "sensor") == 0 ? i : 0;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        int r, usage_exit, sensor = find_sensor_verb(argc, argv);

        if (sensor > 0) {
                r = parse_argv(sensor, argv);
                if (r <= 0)
                        return r < 0 ? usage_error(EXIT_USAGE, "invalid option") : EXIT_OK;
                return verb_sensor(argc - sensor, argv + sensor, arg_json, arg_timeout);
        }
        r = parse_argv(argc, argv);
        if (r < 0) {
                (void) find_verb(argc, argv, &usage_exit);
                return usage_error(usage_exit, "invalid option");
        }
        if (r == 0)
                return EXIT_OK;

        if (optind >= argc)
                return usage_error(EXIT_USAGE, "no command given");
        for (size_t v = 0; v < ELEMENTSOF(verbs); v++) {
                if (strcmp(argv[optind], verbs[v].name) != 0)
                        continue;
                if (optind + 1 < argc)
                        return usage_error(verbs[v].usage_exit, "%s takes no arguments, got \"%s\"",
                                           verbs[v].name, argv[optind + 1]);
                if (arg_timeout_set && verbs[v].run != verb_wait_enrolled && verbs[v].run != verb_renew &&
                    verbs[v].run != verb_factory_reset)
                        return usage_error(verbs[v].usage_exit,
                                           "--timeout applies only to wait-enrolled, renew and factory-reset");
                if ((arg_sign.nonce_hex || arg_sign.purpose || arg_sign.birth || arg_sign.out) &&
                    verbs[v].run != verb_sign_challenge)
                        return usage_error(
                                verbs[v].usage_exit,
                                "--nonce, --purpose, --birth and --out apply only to sign-challenge");
                if ((arg_owner || arg_yes || arg_no_enroll) && verbs[v].run != verb_factory_reset)
                        return usage_error(verbs[v].usage_exit,
                                           "--owner, --yes and --no-enroll apply only to factory-reset");
                return verbs[v].run();
        }
        return usage_error(EXIT_USAGE, "unknown command \"%s\"", argv[optind]);
}
