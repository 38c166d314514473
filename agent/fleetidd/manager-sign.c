/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-sign.c: SignChallenge (docs/dbus-api.md): the arguments checked on
 * the loop, the call handed to the signing process (signer.h) and answered
 * when the signature comes back, without blocking the loop: calls from many
 * callers are in flight at once, at most SIGNER_QUEUE_MAX (then Busy).
 *
 * The signer is started by the first call, exits after access.signer_idle
 * seconds without a call (an idle daemon keeps no TPM connection open), and
 * is retired (new calls go to a new one) when the certificate in force
 * changes: manager_signer_reset().
 */
#include <errno.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "broker/evidence.h"
#include "crypto/challenge.h"
#include "fleetidd/bus-errors.h"
#include "fleetidd/manager.h"
#include "fleetidd/signer.h"

static void on_signer_exit(void *userdata, Signer *s) {
        Manager *m = userdata;

        if (m->signer == s) {
                m->signer = signer_free(s);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(m->signers_retired); i++)
                if (m->signers_retired[i] == s) {
                        m->signers_retired[i] = signer_free(s);
                        return;
                }
}

/* The current signer stops taking calls: it answers those it has and exits. */
static void retire_current(Manager *m) {
        size_t slot = 0;

        if (!m->signer)
                return;
        signer_retire(m->signer);
        for (size_t i = 0; i < ELEMENTSOF(m->signers_retired); i++)
                if (!m->signers_retired[i]) {
                        slot = i;
                        break;
                } else if (i + 1 == ELEMENTSOF(m->signers_retired))
                        /* Too many retiring at once: the oldest is stopped now. */
                        m->signers_retired[0] = signer_free(m->signers_retired[0]);
        m->signers_retired[slot] = TAKE_PTR(m->signer);
}

void manager_signer_reset(Manager *m) {
        if (!m->signer)
                return;
        log_debug("the certificate in force changed: the signer (pid %d) finishes its calls and exits",
                  (int) signer_pid(m->signer));
        retire_current(m);
}

void manager_signer_stop(Manager *m) {
        m->signer = signer_free(m->signer);
        for (size_t i = 0; i < ELEMENTSOF(m->signers_retired); i++)
                m->signers_retired[i] = signer_free(m->signers_retired[i]);
}

static int append_chain(sd_bus_message *reply, const SignerChain *chain) {
        int r = sd_bus_message_open_container(reply, 'a', "ay");

        for (unsigned i = 0; r >= 0 && i < chain->n; i++)
                r = sd_bus_message_append_array(reply, 'y', chain->der[i], chain->len[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static const char *error_name(const SignerAnswer *a) {
        switch (a->error) {
        case -ENOENT:
        case -ENOKEY:
                return a->key == SIGNER_KEY_OPERATIONAL ? BUS_ERROR_NOT_ENROLLED : SD_BUS_ERROR_FAILED;
        case -ENXIO:
                return BUS_ERROR_TPM_UNAVAILABLE;
        case -EACCES:
                return BUS_ERROR_TPM_LOCKOUT;
        case -EBUSY:
                return BUS_ERROR_BUSY;
        default:
                return SD_BUS_ERROR_FAILED;
        }
}

static void on_answer(void *userdata, const SignerAnswer *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = userdata, *reply = NULL;
        int r;

        if (a->error < 0) {
                const char *text = diag_text(&a->diag, a->error);

                if (a->error != -ENOENT && a->error != -ENOKEY)
                        log_warning("SignChallenge with the %s key failed: %s", signer_key_to_string(a->key),
                                    text);
                r = sd_bus_reply_method_errorf(msg, error_name(a), "SignChallenge (%s key): %s",
                                               signer_key_to_string(a->key), text);
        } else {
                r = sd_bus_message_new_method_return(msg, &reply);
                if (r >= 0)
                        r = sd_bus_message_append_array(reply, 'y', a->sig, a->sig_len);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", a->alg);
                if (r >= 0)
                        r = append_chain(reply, a->chain);
                if (r >= 0)
                        r = sd_bus_send(NULL, reply, NULL);
                else
                        r = sd_bus_reply_method_errorf(msg, SD_BUS_ERROR_FAILED,
                                                       "SignChallenge: cannot build the answer: %s",
                                                       strerror(-r));
        }
        if (r < 0)
                log_debug("SignChallenge: cannot send the answer: %s", strerror(-r));
}

/* options: only "identity" (s "operational" or "birth"). */
static int read_options(sd_bus_message *msg, SignerKey *ret_key, sd_bus_error *error) {
        bool seen = false;
        int r;

        *ret_key = SIGNER_KEY_OPERATIONAL;
        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *name, *contents = NULL, *value;

                r = sd_bus_message_read(msg, "s", &name);
                if (r < 0)
                        return r;
                if (strcmp(name, "identity") != 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "unknown option '%.64s'; SignChallenge knows only 'identity'",
                                                 name);
                if (seen)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "the option 'identity' is given twice");
                seen = true;
                r = sd_bus_message_peek_type(msg, NULL, &contents);
                if (r < 0)
                        return r;
                if (!streq_ptr(contents, "s"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "the option 'identity' must be a string (s), not '%.16s'",
                                                 strempty(contents));
                r = sd_bus_message_read(msg, "v", "s", &value);
                if (r < 0)
                        return r;
                if (strcmp(value, "birth") == 0)
                        *ret_key = SIGNER_KEY_BIRTH;
                else if (strcmp(value, "operational") != 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "the option 'identity' is '%.64s'; it must be 'operational' "
                                                 "(the default) or 'birth'",
                                                 value);
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

int manager_bus_sign_challenge(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const uint8_t *nonce = NULL;
        const char *purpose = NULL;
        size_t nonce_len = 0;
        SignerKey key;
        uid_t uid = 0;
        Diag d = {};
        int r;

        r = sd_bus_message_read_array(msg, 'y', (const void **) &nonce, &nonce_len);
        if (r >= 0)
                r = sd_bus_message_read(msg, "s", &purpose);
        if (r < 0)
                return r;
        r = read_options(msg, &key, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        /* The filter checked the plain row (attest); the birth key needs more. */
        if (key == SIGNER_KEY_BIRTH && !manager_bus_caller_has(m, msg, ACCESS_ROLE_ATTEST_BIRTH)) {
                if (manager_bus_caller(m, msg, &uid) < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "SignChallenge: the caller's credentials are unknown");
                return manager_bus_refuse(
                        m, msg, access_method_find("org.fleetid.Agent1", "SignChallenge", "identity=birth"),
                        uid);
        }
        r = challenge_check_nonce(nonce_len, &d);
        if (r >= 0)
                r = challenge_check_purpose(purpose, &d);
        /* A sensor's evidence is its birth key's signature of this formula
         * with this purpose: were the gateway's birth key (its CA among
         * broker.sensor_manufacturer_ca, one vendor for both) to sign it,
         * a caller could vouch for any sensor key it likes. */
        if (r >= 0 && strncmp(purpose, EVIDENCE_PURPOSE_PREFIX, strlen(EVIDENCE_PURPOSE_PREFIX)) == 0)
                r = diag_set(&d, -EINVAL,
                             "the purpose prefix '" EVIDENCE_PURPOSE_PREFIX
                             "' is reserved for sensors' evidence; the gateway's keys do not sign it");
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "SignChallenge: %s",
                                         diag_text(&d, r));
        if (key == SIGNER_KEY_OPERATIONAL && manager_identity_valid_until(m, time(NULL)) == 0)
                return sd_bus_error_setf(error, BUS_ERROR_NOT_ENROLLED,
                                         "SignChallenge: no operational certificate in force (state %s); "
                                         "the device is not enrolled yet, or its certificate expired",
                                         daemon_state_to_string(m->state) ?: "none");

        if (m->signer && !signer_usable(m->signer))
                retire_current(m); /* dying or idled out: it completes on its own */
        if (!m->signer && m->stopping)
                /* manager_signer_stop() ran: no new process while fleetidd waits to exit. */
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED,
                                        "SignChallenge: fleetidd is stopping; call again once it runs");
        if (!m->signer) {
                r = signer_new(m->event, m->config, (uint64_t) m->config->access_signer_idle_sec * 1000000ULL,
                               on_signer_exit, m, &m->signer);
                if (r < 0) {
                        log_warning_errno(r, "cannot start the signing process: %m");
                        return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                                 "SignChallenge: cannot start the signing process: %s",
                                                 strerror(-r));
                }
        }
        r = signer_submit(m->signer, key, nonce, nonce_len, purpose, on_answer, msg);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, BUS_ERROR_BUSY,
                                         "SignChallenge: %d calls are in flight, the most fleetidd queues; "
                                         "try again shortly",
                                         SIGNER_QUEUE_MAX);
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "SignChallenge: the signing process cannot take the call (%s); "
                                         "the next call starts a new one",
                                         strerror(-r));
        sd_bus_message_ref(msg); /* answered in on_answer() */
        return 1;
}
