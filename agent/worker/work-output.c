/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/frame.h"
#include "common/log.h"
#include "worker/work-output.h"

/* The certificates of the trust changes are reported within this much, so
 * that the result after them always fits in WORKER_MESSAGE_MAX: the rest of
 * the message (states, a deferred key, the result) is far below the room
 * left. */
#define CERT_BYTES_MAX (WORKER_MESSAGE_MAX - 4 * WORKER_FRAME_MAX)

struct WorkerOutput {
        FILE *f;
        bool failed;
        size_t cert_bytes; /* DER of the certificates sent so far */
};

int worker_output_open(int fd, WorkerOutput **ret) {
        WorkerOutput *o = calloc(1, sizeof(*o));

        if (!o)
                return -ENOMEM;
        o->f = fdopen(fd, "w");
        if (!o->f) {
                free(o);
                return -errno;
        }
        *ret = o;
        return 0;
}

int worker_output_close(WorkerOutput *o) {
        int r = fclose(o->f) == 0 && !o->failed ? 0 : -EIO;

        free(o);
        return r;
}

static int send_frame(WorkerOutput *o, uint32_t type, const void *data, size_t len) {
        if (o->failed)
                return -EIO;
        if (len > WORKER_FRAME_MAX || frame_write(o->f, WORKER_MAGIC, type, data, len) < 0) {
                o->failed = true;
                return -EIO;
        }
        return 0;
}

int worker_send_raw(WorkerOutput *o, const void *data, size_t len) {
        if (o->failed || (len > 0 && fwrite(data, len, 1, o->f) != 1) || fflush(o->f) != 0) {
                o->failed = true;
                return -EIO;
        }
        return 0;
}

int worker_send_state(WorkerOutput *o, DaemonState s) {
        int32_t v = (int32_t) s;

        return send_frame(o, FRAME_STATE, &v, sizeof(v));
}

/* The trust changes' certificates are what the daemon reports (log, hook,
 * D-Bus); the trust store itself is written already. One the message cannot
 * carry (a certificate over WORKER_FRAME_MAX, say an oversized one the
 * /cacerts answer held and fleetid refused, or more than the room left) is
 * left out of the report and said here: never at the cost of the result,
 * without which a renewal stored would look failed and be done again. */
static void send_certs(WorkerOutput *o, uint32_t type, const char *what, STACK_OF(X509) *certs) {
        unsigned left_out = 0;

        for (int i = 0; i < sk_X509_num(certs); i++) {
                unsigned char *der = NULL;
                int n = i2d_X509(sk_X509_value(certs, i), &der);

                if (n > 0 && i < WORKER_CERTS_MAX && (size_t) n <= WORKER_FRAME_MAX &&
                    (size_t) n <= CERT_BYTES_MAX - o->cert_bytes) {
                        (void) send_frame(o, type, der, (size_t) n);
                        o->cert_bytes += (size_t) n;
                } else
                        left_out++;
                OPENSSL_free(der);
        }
        if (left_out > 0)
                log_warning("%u %s CA certificate(s) are too large or too many to report to fleetidd: "
                            "left out of its log, hook and signals (the trust store is written all the same)",
                            left_out, what);
}

int worker_send_result(WorkerOutput *o, const WorkerResult *r) {
        const TrustChanges *ch = &r->trust_changes;
        WorkerResultWire w = {
                .error = r->error > 0 ? 0 : r->error,
                .outcome = r->outcome,
                .flags = (r->fetched ? RESULT_FETCHED : 0) | (ch->ca_changed ? RESULT_CA_CHANGED : 0) |
                         (ch->ca_first ? RESULT_CA_FIRST : 0) |
                         (ch->adopted_changed ? RESULT_ADOPTED_CHANGED : 0) |
                         (r->tpm_replaced ? RESULT_TPM_REPLACED : 0) |
                         (r->tpm_lockout_known ? RESULT_TPM_LOCKOUT_KNOWN : 0) |
                         (r->tpm_lockout ? RESULT_TPM_LOCKOUT : 0) | (r->birth_read ? RESULT_BIRTH_READ : 0) |
                         (r->birth_da_protected ? RESULT_BIRTH_DA : 0) |
                         (r->birth_expired ? RESULT_BIRTH_EXPIRED : 0),
                .refused_error = ch->refused_why.error,
                .http_status = r->hint.http_status,
                .retry_after_given = r->hint.retry_after_given,
                .retry_after_present = r->hint.retry_after.present,
                .retry_after_invalid = r->hint.retry_after.invalid,
                .retry_after_sec = r->hint.retry_after_sec,
        };

        snprintf(w.retry_after_text, sizeof(w.retry_after_text), "%s", r->hint.retry_after.text);
        snprintf(w.diag, sizeof(w.diag), "%s", r->error < 0 ? diag_text(&r->diag, r->error) : "");
        snprintf(w.refused_why, sizeof(w.refused_why), "%s", ch->refused_why.text);
        send_certs(o, FRAME_CERT_ADOPTED, "adopted", ch->adopted);
        send_certs(o, FRAME_CERT_RETIRED, "retired", ch->retired);
        send_certs(o, FRAME_CERT_REFUSED, "refused", ch->refused);
        if (r->deferred_spki_len > 0)
                (void) send_frame(o, FRAME_DEFERRED_SPKI, r->deferred_spki, r->deferred_spki_len);
        return send_frame(o, FRAME_RESULT, &w, sizeof(w));
}
