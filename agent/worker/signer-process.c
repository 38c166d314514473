/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

/* A request read and checked, waiting for the TPM or at it. */
typedef struct Request {
        uint32_t id;
        SignerKey key;
        bool was_loaded; /* its key was open when its signature started */
        uint8_t digest[CHALLENGE_DIGEST_SIZE];
        int error; /* < 0: its digest could not be computed, fault says why */
        Diag fault;
} Request;

/* Requests read ahead, at most: the one the TPM signs and the next, whose
 * digest is ready when the TPM is done. A read takes at most one request
 * (the reader holds one frame), and the process reads only with room. */
#define READ_AHEAD 2

typedef struct Child {
        const Config *config;
        StateStore *store;
        FILE *out;
        TpmContext *tpm;
        ChildKey keys[_SIGNER_KEY_MAX];
        Request ahead[READ_AHEAD]; /* a ring, oldest at head */
        size_t head, n;
        bool signing;            /* ahead[head]'s TPM2_Sign is at the TPM */
        SignerAnswerWire answer; /* ahead[head]'s, being made */
        SignerAnswerWire ready;  /* the last request's, to go out */
        bool has_ready;
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

/* Connects and opens the key, unless done before. */
static int child_prepare(Child *c, SignerKey key, Diag *d) {
        int r;

        if (!c->tpm) {
                r = tpm_context_new(c->config->tpm_tcti, &c->tpm, d);
                if (r < 0)
                        return r;
        }
        return c->keys[key].loaded ? 0 : child_load_key(c, key, d);
}

/* One signature from start to end: the second try after a failure. */
static int child_sign(Child *c, SignerKey key, const uint8_t digest[CHALLENGE_DIGEST_SIZE],
                      SignerAnswerWire *w, Diag *d) {
        size_t sig_len = 0;
        int r;

        r = child_prepare(c, key, d);
        if (r < 0)
                return r;
        r = tpm_sign_digest(c->tpm->esys, c->keys[key].obj, c->keys[key].scheme, TPM2_ALG_SHA256, digest,
                            CHALLENGE_DIGEST_SIZE, w->sig, &sig_len, sizeof(w->sig), d);
        if (r < 0)
                return r;
        w->sig_len = (uint32_t) sig_len;
        w->alg = c->keys[key].alg;
        return 0;
}

/* Writes the answer that is ready, if any. */
static void child_flush(Child *c) {
        if (!c->has_ready)
                return;
        c->has_ready = false;
        if (frame_write(c->out, SIGNER_MAGIC, SIGNER_FRAME_ANSWER, &c->ready, sizeof(c->ready)) < 0)
                _exit(EXIT_FAILURE); /* the daemon is gone */
}

/* The head request is done with r (its signature in c->answer if r >= 0):
 * makes its answer ready and drops it. On a failure, first connects and
 * reads the key again, once now (else at the next request): the resource
 * manager was restarted (its old connection is gone, a new one works), or
 * the key changed under us (a renewal evicted it before the daemon retired
 * this signer). A TPM that is really gone fails again. */
static void child_done(Child *c, int r, Diag *sd) {
        Request *q = &c->ahead[c->head];

        /* In order, the one before first; and before a key is read again,
         * whose new chain must not go with an answer made by the old key. */
        child_flush(c);
        /* Any failure of a signature is taken for the connection's or the
         * key's (an encoding error, -ENOBUFS, would fail again the same way,
         * at the cost of one more signature): only the digest's is not. */
        if (r < 0 && q->error == 0) {
                child_drop_tpm(c);
                if (q->was_loaded) {
                        *sd = (Diag) {};
                        r = child_sign(c, q->key, q->digest, &c->answer, sd);
                        if (r < 0)
                                child_drop_tpm(c);
                }
        }
        if (r < 0) {
                c->answer.error = r;
                c->answer.sig_len = 0;
                snprintf(c->answer.diag, sizeof(c->answer.diag), "%s", diag_text(sd, r));
        }
        explicit_bzero(q->digest, sizeof(q->digest));
        c->ready = c->answer;
        c->has_ready = true;
        c->head = (c->head + 1) % READ_AHEAD;
        c->n--;
}

/* Sends the head request's TPM2_Sign; its answer is ready at once if it
 * cannot be sent. */
static void child_start(Child *c) {
        Request *q = &c->ahead[c->head];
        Diag sd = q->fault;
        int r = q->error;

        c->answer = (SignerAnswerWire) { .id = q->id };
        if (r >= 0) {
                q->was_loaded = c->keys[q->key].loaded;
                r = child_prepare(c, q->key, &sd);
                if (r >= 0)
                        r = tpm_sign_start(c->tpm->esys, c->keys[q->key].obj, c->keys[q->key].scheme,
                                           TPM2_ALG_SHA256, q->digest, CHALLENGE_DIGEST_SIZE, &sd);
                if (r >= 0) {
                        c->signing = true;
                        return;
                }
        }
        child_done(c, r, &sd);
}

/* Waits for the TPM's signature of the head request. */
static void child_finish(Child *c) {
        Request *q = &c->ahead[c->head];
        size_t sig_len = 0;
        Diag sd = {};
        int r;

        c->signing = false;
        r = tpm_sign_finish(c->tpm->esys, c->keys[q->key].scheme, c->answer.sig, &sig_len,
                            sizeof(c->answer.sig), &sd);
        if (r >= 0) {
                c->answer.sig_len = (uint32_t) sig_len;
                c->answer.alg = c->keys[q->key].alg;
        }
        child_done(c, r, &sd);
}

static int child_take(void *userdata, uint32_t type, const uint8_t *p, size_t len, Diag *d) {
        Child *c = userdata;
        SignerRequestWire req;
        Request *q;

        if (type != SIGNER_FRAME_REQUEST || len != sizeof(req))
                return diag_set(d, -EBADMSG, "not a request");
        if (c->n >= READ_AHEAD)
                return diag_set(d, -EBADMSG, "more requests at once than it reads ahead");
        memcpy(&req, p, sizeof(req));
        if (req.key >= _SIGNER_KEY_MAX || req.nonce_len > sizeof(req.nonce) ||
            !memchr(req.purpose, '\0', sizeof(req.purpose)))
                return diag_set(d, -EBADMSG, "a request with values out of range");
        q = &c->ahead[(c->head + c->n) % READ_AHEAD];
        *q = (Request) { .id = req.id, .key = (SignerKey) req.key };
        /* The only digest this process signs: the challenge formula's. */
        q->error = challenge_digest(req.nonce, req.nonce_len, req.purpose, q->digest, &q->fault);
        c->n++;
        return 0;
}

/* The loop: while the TPM signs one request, the answer before it goes out
 * and the next request is read and its digest computed, so the TPM's next
 * command follows its answer with nothing else between (as in a loop of
 * Esys_Sign() calls). Returns at the end of the input, once every request
 * read is answered. */
static void child_serve(Child *c, FrameReader *rd, int in) {
        bool end = false;

        for (;;) {
                if (!c->signing && c->n > 0) {
                        /* Opening a key sends its chain: the answers before go first. */
                        if (!c->keys[c->ahead[c->head].key].loaded)
                                child_flush(c);
                        child_start(c);
                }
                /* The answer before, while the TPM signs. */
                child_flush(c);
                if (c->signing) {
                        if (!end && c->n < READ_AHEAD && frame_reader_read(rd, in, MSG_DONTWAIT) == 0)
                                end = true;
                        child_finish(c);
                        continue;
                }
                if (c->n > 0)
                        continue;
                if (end || frame_reader_read(rd, in, 0) == 0)
                        return;
        }
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
        /* Returns at the end of the stream (the daemon retired us or is gone). */
        child_serve(&c, &rd, in);
        child_drop_tpm(&c);
        _exit(rd.broken.error == 0 && fclose(c.out) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
