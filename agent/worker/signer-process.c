/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "crypto/challenge.h"
#include "crypto/ossl-util.h"
#include "common/frame.h"
#include "worker/signer-process.h"
#include "common/signer-wire.h"
#include "identity/birth.h"
#include "identity/operational.h"
#include "tpm/tpm-context.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-sign.h"

typedef struct ChildKey {
        bool loaded;
        ESYS_TR obj; /* the TpmContext's */
        TpmSignScheme scheme;
        uint32_t alg; /* SIGNER_ALG_* */
} ChildKey;

typedef struct Child {
        const Config *config;
        StateStore *store;
        FILE *out;
        TpmContext *tpm;
        ChildKey keys[_SIGNER_KEY_MAX];
} Child;

static void child_drop_tpm(Child *c) {
        for (size_t i = 0; i < ELEMENTSOF(c->keys); i++)
                c->keys[i] = (ChildKey) {};
        c->tpm = tpm_context_free(c->tpm);
}

/* Sends the chain frame for key: leaf first, then the others. */
static int child_send_chain(Child *c, SignerKey key, X509 *leaf, STACK_OF(X509) *rest, Diag *d) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = sizeof(uint32_t), size = SIGNER_FRAME_MAX;
        uint32_t k = (uint32_t) key;
        int n = sk_X509_num(rest);

        if (n < 0)
                n = 0;
        if (1 + n > SIGNER_CHAIN_MAX)
                n = SIGNER_CHAIN_MAX - 1; /* the leaf and the first intermediates */
        buf = malloc(size);
        if (!buf)
                return diag_set(d, -ENOMEM, "out of memory");
        memcpy(buf, &k, sizeof(k));
        for (int i = -1; i < n; i++) {
                X509 *x = i < 0 ? leaf : sk_X509_value(rest, i);
                int der_len = i2d_X509(x, NULL);
                uint32_t l;
                unsigned char *p;

                if (der_len <= 0 || len + sizeof(l) + (size_t) der_len > size)
                        return diag_set(d, -E2BIG, "the %s certificate chain cannot be sent (%d bytes)",
                                        signer_key_to_string(key), der_len);
                l = (uint32_t) der_len;
                memcpy(buf + len, &l, sizeof(l));
                p = buf + len + sizeof(l);
                if (i2d_X509(x, &p) != der_len)
                        return diag_set(d, -EIO, "cannot encode the %s certificate chain",
                                        signer_key_to_string(key));
                len += sizeof(l) + (size_t) der_len;
        }
        return frame_write(c->out, SIGNER_MAGIC, SIGNER_FRAME_CHAIN, buf, len);
}

/* Reads the key's identity, opens the key, sends its chain. */
static int child_load_key(Child *c, SignerKey key, Diag *d) {
        _cleanup_(operational_identity_freep) OperationalIdentity *o = NULL;
        _cleanup_(birth_identity_freep) BirthIdentity *b = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        ChildKey *k = &c->keys[key];
        uint32_t handle;
        int r;

        if (key == SIGNER_KEY_OPERATIONAL) {
                r = operational_load(c->config, c->tpm, c->store, &o, d);
                if (r < 0)
                        return r;
                handle = o->key_handle;
        } else {
                r = birth_identity_load(c->tpm, c->config, &b, d);
                if (r < 0)
                        return r;
                handle = b->key_handle;
        }
        /* Read with the identity: no TPM command more. */
        r = tpm_key_open(c->tpm, handle, &k->obj, &pub, NULL, d);
        if (r < 0)
                return r;
        if (EVP_PKEY_is_a(pub, "EC")) {
                k->scheme = TPM_SIGN_ECDSA;
                k->alg = SIGNER_ALG_ECDSA;
        } else if (EVP_PKEY_is_a(pub, "RSA")) {
                k->scheme = TPM_SIGN_RSASSA;
                k->alg = SIGNER_ALG_RSA_PKCS1;
        } else
                return diag_set(d, -EOPNOTSUPP, "the %s key at 0x%08x is neither EC nor RSA",
                                signer_key_to_string(key), handle);
        r = key == SIGNER_KEY_OPERATIONAL ? child_send_chain(c, key, o->cert, o->chain, d)
                                          : child_send_chain(c, key, b->cert, b->chain, d);
        if (r < 0)
                return r;
        k->loaded = true;
        return 0;
}

static int child_sign(Child *c, SignerKey key, const uint8_t digest[CHALLENGE_DIGEST_SIZE],
                      SignerAnswerWire *w, Diag *d) {
        size_t sig_len = 0;
        int r;

        if (!c->tpm) {
                r = tpm_context_new(c->config->tpm_tcti, &c->tpm, d);
                if (r < 0)
                        return r;
        }
        if (!c->keys[key].loaded) {
                r = child_load_key(c, key, d);
                if (r < 0)
                        return r;
        }
        r = tpm_sign_digest(c->tpm->esys, c->keys[key].obj, c->keys[key].scheme, TPM2_ALG_SHA256, digest,
                            CHALLENGE_DIGEST_SIZE, w->sig, &sig_len, sizeof(w->sig), d);
        if (r < 0)
                return r;
        w->sig_len = (uint32_t) sig_len;
        w->alg = c->keys[key].alg;
        return 0;
}

static int child_take(void *userdata, uint32_t type, const uint8_t *p, size_t len, Diag *d) {
        Child *c = userdata;
        SignerRequestWire req;
        SignerAnswerWire w = {};
        uint8_t digest[CHALLENGE_DIGEST_SIZE];
        Diag sd = {};
        int r;

        if (type != SIGNER_FRAME_REQUEST || len != sizeof(req))
                return diag_set(d, -EBADMSG, "not a request");
        memcpy(&req, p, sizeof(req));
        if (req.key >= _SIGNER_KEY_MAX || req.nonce_len > sizeof(req.nonce) ||
            !memchr(req.purpose, '\0', sizeof(req.purpose)))
                return diag_set(d, -EBADMSG, "a request with values out of range");
        w.id = req.id;
        /* The only digest this process signs: the challenge formula's. */
        r = challenge_digest(req.nonce, req.nonce_len, req.purpose, digest, &sd);
        if (r >= 0) {
                bool was_loaded = c->keys[req.key].loaded;

                r = child_sign(c, req.key, digest, &w, &sd);
                if (r < 0)
                        /* Connect and read the key again, once now (else at the next
                         * request): the resource manager was restarted (its old
                         * connection is gone, a new one works), or the key changed
                         * under us (a renewal evicted it before the daemon retired
                         * this signer). A TPM that is really gone fails again. */
                        child_drop_tpm(c);
                if (r < 0 && was_loaded) {
                        sd = (Diag) {};
                        r = child_sign(c, req.key, digest, &w, &sd);
                        if (r < 0)
                                child_drop_tpm(c);
                }
        }
        explicit_bzero(digest, sizeof(digest));
        if (r < 0) {
                w.error = r;
                w.sig_len = 0;
                snprintf(w.diag, sizeof(w.diag), "%s", diag_text(&sd, r));
        }
        if (frame_write(c->out, SIGNER_MAGIC, SIGNER_FRAME_ANSWER, &w, sizeof(w)) < 0)
                _exit(EXIT_FAILURE); /* the daemon is gone */
        return 0;
}

void signer_process_main(int fd, const Config *config, StateStore *store) {
        Child c = { .config = config, .store = store };
        FrameReader rd;
        int in;

        /* Named, for ps and the journal: "fleetid-signer" (at most 15 bytes). */
        (void) prctl(PR_SET_NAME, "fleetid-signer");
        in = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        c.out = fdopen(fd, "w");
        if (in < 0 || !c.out ||
            frame_reader_init(&rd, SIGNER_MAGIC, sizeof(SignerRequestWire), 0, child_take, &c) < 0)
                _exit(EXIT_FAILURE);
        /* Blocking: returns at the end of the stream (the daemon retired us or is gone). */
        (void) frame_reader_receive(&rd, in);
        child_drop_tpm(&c);
        _exit(rd.broken.error == 0 && fclose(c.out) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
