/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "broker/evidence.h"
#include "broker/sensor-csr.h"
#include "crypto/ossl-util.h"
#include "fleetidctl/bus.h"
#include "fleetidctl/sensor.h"
#include "util/fileio.h"
#include "util/timestamp.h"


enum {
        SENSOR_OK = 0,
        SENSOR_FAILED = 1,
        SENSOR_TIMEOUT = 2,
};

static void bus_unrefp(sd_bus **b) {
        sd_bus_flush_close_unref(*b);
}

static int connect_bus(sd_bus **ret) {
        Diag d = {};
        int r = ctl_bus_open(ret, &d);

        if (r < 0)
                fprintf(stderr, "fleetidctl: %s\n", diag_text(&d, r));
        return r;
}

static int call_failed(const char *what, const sd_bus_error *e, int r) {
        if (sd_bus_error_is_set(e))
                fprintf(stderr, "fleetidctl: %s failed: %s: %s\n", what, e->name, strempty(e->message));
        else
                fprintf(stderr, "fleetidctl: %s failed: %s\n", what, strerror(-r));
        return SENSOR_FAILED;
}

static int usage(const char *what, const char *arg) {
        fprintf(stderr, "fleetidctl: sensor: %s%s%s%s. Try 'fleetidctl --help'.\n", what, arg ? " \"" : "",
                strempty(arg), arg ? "\"" : "");
        return SENSOR_FAILED;
}

/* ---- list, forget ---- */

static void print_time(uint64_t usec) {
        char buf[TIMESTAMP_MAX];

        printf(" %-20s", usec == 0 ? "-" : timestamp_utc((time_t) (usec / 1000000ULL), buf));
}

static int sensor_list(bool json) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        __attribute__((cleanup(bus_unrefp))) sd_bus *bus = NULL;
        const char *id, *state, *serial;
        uint64_t not_before, not_after, due;
        unsigned n = 0;
        int r;

        if (connect_bus(&bus) < 0)
                return SENSOR_FAILED;
        r = sd_bus_call_method(bus, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE, "ListSensors", &e, &reply,
                               "");
        if (r < 0)
                return call_failed("ListSensors", &e, r);
        r = sd_bus_message_enter_container(reply, 'a', "(sssttt)");
        if (r < 0)
                return call_failed("ListSensors (its answer)", &e, r);
        if (json)
                printf("[");
        else
                printf("%-24s %-9s %-40s %-20s %-20s\n", "SENSOR", "STATE", "SERIAL", "NOT-AFTER",
                       "RENEW-DUE");
        while ((r = sd_bus_message_read(reply, "(sssttt)", &id, &state, &serial, &not_before, &not_after,
                                        &due)) > 0) {
                if (json)
                        printf("%s{\"id\":\"%s\",\"state\":\"%s\",\"serial\":\"%s\",\"not_before\":%" PRIu64
                               ",\"not_after\":%" PRIu64 ",\"renew_due\":%" PRIu64 "}",
                               n ? "," : "", id, state, serial, (uint64_t) (not_before / 1000000U),
                               (uint64_t) (not_after / 1000000U), (uint64_t) (due / 1000000U));
                else {
                        printf("%-24s %-9s %-40s", id, state, *serial ? serial : "-");
                        print_time(not_after);
                        print_time(due);
                        printf("\n");
                }
                n++;
        }
        if (r < 0)
                return call_failed("ListSensors (its answer)", &e, r);
        if (json)
                printf("]\n");
        return SENSOR_OK;
}

static int sensor_forget(const char *id) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        __attribute__((cleanup(bus_unrefp))) sd_bus *bus = NULL;
        int r;

        if (connect_bus(&bus) < 0)
                return SENSOR_FAILED;
        r = sd_bus_call_method(bus, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE, "ForgetSensor", &e, NULL,
                               "s", id);
        if (r < 0)
                return call_failed("ForgetSensor", &e, r);
        printf("sensor '%s' forgotten\n", id);
        return SENSOR_OK;
}

/* ---- request ---- */

/* The CSR file: DER, or PEM ("CERTIFICATE REQUEST"), as DER. */
static int read_csr(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r;

        r = read_file_bounded(path, SENSOR_CSR_MAX * 2 + 4096, &data, &len);
        if (r < 0) {
                fprintf(stderr, "fleetidctl: cannot read the CSR %s: %s\n", path, strerror(-r));
                return r;
        }
        if (len > 0 && memmem(data, len, "-----BEGIN", 10)) {
                BIO *bio = BIO_new_mem_buf(data, (int) len);
                X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
                unsigned char *der = NULL;
                int n = req ? i2d_X509_REQ(req, &der) : -1;

                BIO_free(bio);
                X509_REQ_free(req);
                if (n <= 0) {
                        fprintf(stderr, "fleetidctl: %s is PEM but holds no CERTIFICATE REQUEST\n", path);
                        return -EBADMSG;
                }
                *ret = malloc((size_t) n);
                if (*ret)
                        memcpy(*ret, der, (size_t) n);
                OPENSSL_free(der);
                *ret_len = (size_t) n;
                return *ret ? 0 : -ENOMEM;
        }
        *ret = (uint8_t *) TAKE_PTR(data);
        *ret_len = len;
        return 0;
}

/* The job's result (aay, DER each) as PEM, written to path atomically. */
static int write_chain(const char *path, sd_bus_message *reply) {
        _cleanup_free_ char *pem = NULL;
        size_t plen = 0;
        FILE *f = open_memstream(&pem, &plen);
        int r;

        if (!f)
                return -ENOMEM;
        r = ctl_bus_write_pem(f, reply);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r == -EBADMSG)
                fprintf(stderr, "fleetidctl: the job's result holds a certificate that does not parse\n");
        else if (r == 0)
                fprintf(stderr, "fleetidctl: the job's result holds no certificate\n");
        if (r <= 0)
                return r < 0 ? r : -ENODATA;
        r = write_file_atomic(path, pem, plen, 0644);
        if (r < 0)
                fprintf(stderr, "fleetidctl: cannot write the chain to %s: %s\n", path, strerror(-r));
        return r;
}


typedef struct JobWait {
        const char *path; /* NULL until the request returned it */
        bool removed;
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *unused) {
        JobWait *w = userdata;
        const char *path = NULL;

        if (sd_bus_message_read(m, "uo", NULL, &path) >= 0 && w->path && strcmp(path, w->path) == 0)
                w->removed = true;
        return 0;
}

/* The job's end (JobRemoved; the match is added before the request, so it
 * cannot be missed), then its result: the chain, or its error. */
static int wait_job(sd_bus *bus, JobWait *w, unsigned timeout_sec, const char *out) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t deadline = timeout_sec ? (uint64_t) time(NULL) + timeout_sec : 0;
        int r;

        while (!w->removed) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "fleetidctl: the bus connection failed while waiting for %s: %s\n",
                                w->path, strerror(-r));
                        return SENSOR_FAILED;
                }
                if (r > 0)
                        continue;
                if (deadline && (uint64_t) time(NULL) >= deadline) {
                        fprintf(stderr, "fleetidctl: %s has not ended within %us; it goes on in fleetidd\n",
                                w->path, timeout_sec);
                        return SENSOR_TIMEOUT;
                }
                r = sd_bus_wait(bus, 1000000ULL);
                if (r < 0 && r != -EINTR) {
                        fprintf(stderr, "fleetidctl: waiting for %s failed: %s\n", w->path, strerror(-r));
                        return SENSOR_FAILED;
                }
        }
        r = sd_bus_call_method(bus, CTL_BUS_NAME, w->path, CTL_BUS_JOB_INTERFACE, "GetResult", &e, &reply, "");
        if (r < 0)
                return call_failed("the sensor request", &e, r);
        if (write_chain(out, reply) < 0)
                return SENSOR_FAILED;
        return SENSOR_OK;
}

static int sensor_request(const char *id, const char *csr_path, const char *evidence_path, const char *out,
                          unsigned timeout_sec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        __attribute__((cleanup(bus_unrefp))) sd_bus *bus = NULL;
        _cleanup_free_ uint8_t *csr = NULL;
        _cleanup_free_ char *evidence = NULL;
        size_t csr_len = 0, evidence_len = 0;
        JobWait w = {};
        int r;

        if (read_csr(csr_path, &csr, &csr_len) < 0)
                return SENSOR_FAILED;
        if (evidence_path) {
                r = read_file_bounded(evidence_path, EVIDENCE_MAX, &evidence, &evidence_len);
                if (r < 0) {
                        fprintf(stderr, "fleetidctl: cannot read the evidence %s: %s\n", evidence_path,
                                r == -EFBIG ? "larger than 32 KiB" : strerror(-r));
                        return SENSOR_FAILED;
                }
        }
        if (connect_bus(&bus) < 0)
                return SENSOR_FAILED;
        r = sd_bus_match_signal(bus, NULL, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE, "JobRemoved",
                                on_job_removed, &w);
        if (r < 0)
                return call_failed("subscribing to JobRemoved", &e, r);
        r = sd_bus_message_new_method_call(bus, &call, CTL_BUS_NAME, CTL_BUS_PATH, CTL_BUS_INTERFACE,
                                           "RequestSensorCertificate");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", id);
        if (r >= 0)
                r = sd_bus_message_append_array(call, 'y', csr, csr_len);
        if (r >= 0)
                r = sd_bus_message_append_array(call, 'y', evidence ?: "", evidence_len);
        if (r >= 0)
                r = sd_bus_message_append(call, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call(bus, call, CTL_BUS_CALL_USEC, &e, &reply);
        if (r < 0)
                return call_failed("RequestSensorCertificate", &e, r);
        r = sd_bus_message_read(reply, "o", &w.path);
        if (r < 0)
                return call_failed("RequestSensorCertificate (its answer)", &e, r);
        fprintf(stderr, "fleetidctl: sensor '%s': request accepted as %s; waiting\n", id, w.path);
        r = wait_job(bus, &w, timeout_sec, out);
        if (r == SENSOR_OK)
                printf("sensor '%s': chain written to %s\n", id, out);
        return r;
}

int verb_sensor(int argc, char *argv[], bool json, unsigned timeout_sec) {
        enum { ARG_ID = 0x100, ARG_CSR, ARG_EVIDENCE, ARG_OUT };
        static const struct option options[] = { { "id", required_argument, NULL, ARG_ID },
                                                 { "csr", required_argument, NULL, ARG_CSR },
                                                 { "evidence", required_argument, NULL, ARG_EVIDENCE },
                                                 { "out", required_argument, NULL, ARG_OUT },
                                                 {} };
        const char *id = NULL, *csr = NULL, *evidence = NULL, *out = NULL, *what;
        int c;

        if (argc < 2)
                return usage("no sensor command given (request, list, forget)", NULL);
        what = argv[1];
        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_ID:
                        id = optarg;
                        break;
                case ARG_CSR:
                        csr = optarg;
                        break;
                case ARG_EVIDENCE:
                        evidence = optarg;
                        break;
                case ARG_OUT:
                        out = optarg;
                        break;
                default:
                        return usage("invalid option", NULL);
                }
        argc--;
        argv++;
        if (strcmp(what, "list") == 0) {
                if (optind != argc || id || csr || evidence || out)
                        return usage("list takes no arguments", NULL);
                return sensor_list(json);
        }
        if (strcmp(what, "forget") == 0) {
                if (optind + 1 != argc || id || csr || evidence || out)
                        return usage("forget takes one argument, the sensor id", NULL);
                return sensor_forget(argv[optind]);
        }
        if (strcmp(what, "request") == 0) {
                if (optind != argc)
                        return usage("request takes no argument", argv[optind]);
                if (!id || !csr || !out)
                        return usage("request needs --id, --csr and --out", NULL);
                return sensor_request(id, csr, evidence, out, timeout_sec);
        }
        return usage("unknown sensor command", what);
}
