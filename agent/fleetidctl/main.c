/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleetidctl: the command line view of the fleetid agent.
 *
 * "fleetidctl status" reads what fleetidd left in the state directory (the status
 * record and the certificates) and shows it, as aligned "Key: value" lines or as
 * one JSON object. It only reads: it needs no TPM, no network and no daemon, and
 * never creates or changes anything in the state directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf() */
#endif
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "config/config.h"
#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "store/state-store.h"
#include "store/status-file.h"


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
} Status;

static const char *arg_config = NULL;
static const char *arg_state_dir = NULL;
static bool arg_json = false;

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

static void format_time(time_t t, char *buf, size_t size) {
        struct tm tm;

        if (gmtime_r(&t, &tm) && strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
                return;
        snprintf(buf, size, "@%" PRIi64, (int64_t) t);
}

/* Status record times: 0 means "never"/"none" and gives NULL. */
static const char *format_record_time(uint64_t t, char *buf, size_t size) {
        if (t == 0)
                return NULL;
        if (t > INT64_MAX) {
                snprintf(buf, size, "@%" PRIu64, t);
                return buf;
        }
        format_time((time_t) t, buf, size);
        return buf;
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

        format_time(t, buf, sizeof(buf));
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
        json_key_string(f, &first, "state", r ? r->state : NULL);
        json_key_string(f, &first, "last_error", r ? r->last_error : NULL);
        json_key(f, &first, "failures");
        if (r)
                fprintf(f, "%u", r->failures);
        else
                fputs("null", f);
        json_key_string(f, &first, "last_success",
                        r ? format_record_time(r->last_success, buf, sizeof(buf)) : NULL);
        json_key_string(f, &first, "next_attempt",
                        r ? format_record_time(r->next_attempt, buf, sizeof(buf)) : NULL);
        json_key_string(f, &first, "updated", r ? format_record_time(r->updated, buf, sizeof(buf)) : NULL);
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

        format_time(t, buf, sizeof(buf));
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
        char buf[64];

        line("State directory:", s->state_dir);
        if (s->record_error)
                line_unreadable("State:", s->record_error);
        else
                line("State:", r ? r->state : NULL);
        line("Last error:", r ? r->last_error : NULL);
        if (r) {
                snprintf(buf, sizeof(buf), "%u", r->failures);
                line("Failures:", buf);
        } else
                line("Failures:", NULL);
        line("Last success:", r ? format_record_time(r->last_success, buf, sizeof(buf)) : NULL);
        line("Next attempt:", r ? format_record_time(r->next_attempt, buf, sizeof(buf)) : NULL);
        line("Status updated:", r ? format_record_time(r->updated, buf, sizeof(buf)) : NULL);
        line("EST URL:", s->est_url);
        print_cert("Birth", &s->birth, 0);
        print_cert("Operational", &s->operational, s->now);
}

/* ---- verbs ---- */

static int log_oom(void) {
        fprintf(stderr, "fleetidctl: out of memory\n");
        return EXIT_USAGE;
}

static int verb_status(void) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(state_store_freep) StateStore *store = NULL;
        _cleanup_(status_done) Status s = {};
        const char *dir = arg_state_dir;
        bool unreadable = false;
        Diag d = {};
        int r;

        /* With --state-dir the configuration is only needed if named explicitly. */
        if (!arg_state_dir || arg_config) {
                const char *path = arg_config ?: FLEETID_CONFIG_PATH;

                r = config_load(path, &config, &d);
                if (r < 0) {
                        if (d.text[0])
                                fprintf(stderr, "fleetidctl: %s\n", d.text);
                        else
                                fprintf(stderr, "fleetidctl: cannot load %s: %s\n", path, strerror(-r));
                        return EXIT_USAGE;
                }
                if (!dir)
                        dir = config->state_dir;
        }
        if (isempty(dir)) {
                fprintf(stderr, "fleetidctl: no state directory configured\n");
                return EXIT_USAGE;
        }

        r = state_store_open_existing(dir, &store, &d);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
                return EXIT_STATE_UNREADABLE;
        }
        s.state_dir = state_store_path(store);
        s.now = time(NULL);

        r = status_record_load(store, &s.record, &d);
        if (r >= 0)
                s.have_record = true;
        else if (r != -ENOENT) {
                s.record_error = strdup(diag_text(&d, r));
                if (!s.record_error)
                        return log_oom();
                unreadable = true;
        }

        s.est_url = s.have_record && s.record.est_url ? s.record.est_url : config ? config->est_url : NULL;

        r = load_cert(store, STATE_BIRTH_CERT, &s.birth);
        if (r == -ENOMEM)
                return log_oom();
        unreadable = unreadable || r < 0;
        r = load_cert(store, STATE_OPERATIONAL_CERT, &s.operational);
        if (r == -ENOMEM)
                return log_oom();
        unreadable = unreadable || r < 0;

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

static void help(void) {
        printf("Usage: fleetidctl [OPTIONS] COMMAND\n"
               "\n"
               "Shows the state of the fleetid identity agent.\n"
               "\n"
               "Commands:\n"
               "  status               Enrollment state, birth and operational certificates\n"
               "\n"
               "Options:\n"
               "      --config PATH    Configuration file (default: %s)\n"
               "      --state-dir DIR  State directory to read; the configuration is then\n"
               "                       not loaded unless --config is given too\n"
               "      --json           Print one JSON object instead of Key: value lines\n"
               "  -h --help            Show this help\n"
               "  -V --version         Show the version\n"
               "\n"
               "Exit status: 0 success, 1 usage or configuration error, 3 the state\n"
               "directory or a file in it cannot be read. Missing files are not errors.\n",
               FLEETID_CONFIG_PATH);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_CONFIG = 0x100,
                ARG_STATE_DIR,
                ARG_JSON,
        };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "version", no_argument, NULL, 'V' },
                                                 { "config", required_argument, NULL, ARG_CONFIG },
                                                 { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                                                 { "json", no_argument, NULL, ARG_JSON },
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
                case '?':
                        return -EINVAL; /* getopt_long() said what was wrong */
                default:
                        abort();
                }
        return 1;
}

int main(int argc, char *argv[]) {
        int r;

        r = parse_argv(argc, argv);
        if (r < 0) {
                fprintf(stderr, "Try 'fleetidctl --help'.\n");
                return EXIT_USAGE;
        }
        if (r == 0)
                return EXIT_OK;

        if (optind >= argc) {
                fprintf(stderr, "fleetidctl: no command given. Try 'fleetidctl --help'.\n");
                return EXIT_USAGE;
        }
        if (strcmp(argv[optind], "status") != 0) {
                fprintf(stderr, "fleetidctl: unknown command \"%s\". Try 'fleetidctl --help'.\n",
                        argv[optind]);
                return EXIT_USAGE;
        }
        if (optind + 1 < argc) {
                fprintf(stderr, "fleetidctl: status takes no arguments, got \"%s\"\n", argv[optind + 1]);
                return EXIT_USAGE;
        }
        return verb_status();
}
