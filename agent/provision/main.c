/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleetid-provision: the manufacturing-station tool. Gives a device its birth
 * identity (IDevID): a signing key created inside the TPM, a CSR for the
 * manufacturer's CA, and the signed certificate installed into a TPM NV index
 * (and optionally a file) after checking it belongs to the key and chains to
 * the manufacturer CA.
 *
 * The key is a primary key of the endorsement hierarchy from fleetid's birth
 * key template (the TCG IDevID template plus noDA, tpm/tpm-birth-key.h),
 * which fleetidd can make again after a TPM2_Clear; --template tcg makes the
 * TCG's as it is (no noDA: for interoperability only); --hierarchy owner makes the key fleetid made before (a child of
 * the SRK, lost for good with TPM2_Clear). docs/provisioning.md.
 *
 *   fleetid-provision create-key [--algorithm ecc-p256] [--hierarchy endorsement|owner]
 *                                [--template fleetid|tcg] [--force]
 *   fleetid-provision csr --serial SERIAL [--cn NAME] [--out FILE]
 *   fleetid-provision install-cert --cert FILE --ca FILE [--file PATH] [--lock] [--force [--remove-lock]]
 *   fleetid-provision status
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "config/config.h"
#include "crypto/certcheck.h"
#include "crypto/csr.h"
#include "crypto/ossl-util.h"
#include "tpm/tpm-birth-key.h"
#include "tpm/tpm-context.h"
#include "tpm/tpm-key.h"
#include "tpm/tpm-nv.h"
#include "tpm/tpm-provider.h"
#include "util/fileio.h"

typedef struct Args {
        const char *config_path;
        const char *tcti;
        const char *algorithm;
        bool owner_hierarchy;   /* --hierarchy owner: the old SRK child */
        BirthTemplate template; /* --template */
        const char *serial;
        const char *cn;
        const char *out;
        const char *cert;
        const char *ca;
        const char *file;
        uint32_t handle;   /* with handle_set; else from the config */
        uint32_t nv_index; /* with nv_index_set, 0 = none; else from the config */
        bool handle_set, nv_index_set;
        bool lock;
        bool force;
        bool remove_lock;
} Args;

static void help(void) {
        printf("Usage: fleetid-provision [OPTIONS] COMMAND\n\n"
               "Give this device its birth identity (IDevID) at the factory.\n\n"
               "Commands:\n"
               "  create-key               Create the birth key inside the TPM (persistent; from the\n"
               "                           TCG IDevID template plus noDA, in the endorsement\n"
               "                           hierarchy, so that fleetidd can make it again after a\n"
               "                           TPM2_Clear)\n"
               "  csr                      Print a CSR signed by the birth key (for the manufacturer CA)\n"
               "  install-cert             Check and install the signed birth certificate\n"
               "  status                   Show the birth identity in the TPM\n\n"
               "Options:\n"
               "  --config PATH            Read handles and TCTI from this fleetid.conf\n"
               "  --tcti TCTI              TPM access (default from the config: device:/dev/tpmrm0)\n"
               "  --handle HANDLE          Persistent handle of the birth key (default 0x%08x)\n"
               "  --nv-index INDEX         NV index for the certificate, 0 = none (default 0x%08x)\n"
               "  --algorithm ALG          ecc-p256 (default), ecc-p384, rsa-2048; rsa-3072 with\n"
               "                           --hierarchy owner only (no TCG template)\n"
               "  --hierarchy H            endorsement (default): survives TPM2_Clear; owner: a key\n"
               "                           under the SRK, as before, lost for good with TPM2_Clear\n"
               "  --template T             fleetid (default): the TCG IDevID template plus noDA; tcg:\n"
               "                           the TCG's as it is, without noDA (a TPM in dictionary-\n"
               "                           attack lockout then refuses the key; fleetidd warns)\n"
               "  --serial SERIAL          Device serial number for the CSR subject (csr)\n"
               "  --cn NAME                Common name for the CSR subject (csr, default: the serial)\n"
               "  --out FILE               Write the CSR here instead of stdout (csr)\n"
               "  --cert FILE              The manufacturer-signed birth certificate, PEM (install-cert)\n"
               "  --ca FILE                The manufacturer CA certificate(s), PEM (install-cert)\n"
               "  --file PATH              Also install the certificate (and chain) as a PEM file\n"
               "                           (an absolute path, as birth.cert_file in fleetid.conf)\n"
               "  --lock                   Write-lock the NV index after writing it\n"
               "  --force                  Replace an existing birth key or certificate\n"
               "  --remove-lock            With --force: also replace a write-locked certificate,\n"
               "                           which deletes the NV index and with it the lock\n"
               "  --help, --version\n",
               FLEETID_IDEVID_HANDLE_DEFAULT, FLEETID_IDEVID_NV_INDEX_DEFAULT);
}

static int parse_args(int argc, char **argv, Args *a, const char **ret_cmd) {
        enum {
                A_CONFIG = 256,
                A_TCTI,
                A_HANDLE,
                A_NV,
                A_ALG,
                A_HIERARCHY,
                A_TEMPLATE,
                A_SERIAL,
                A_CN,
                A_OUT,
                A_CERT,
                A_CA,
                A_FILE,
                A_LOCK,
                A_FORCE,
                A_REMOVE_LOCK,
                A_VERSION
        };
        static const struct option opts[] = {
                { "config", required_argument, NULL, A_CONFIG },
                { "tcti", required_argument, NULL, A_TCTI },
                { "handle", required_argument, NULL, A_HANDLE },
                { "nv-index", required_argument, NULL, A_NV },
                { "algorithm", required_argument, NULL, A_ALG },
                { "hierarchy", required_argument, NULL, A_HIERARCHY },
                { "template", required_argument, NULL, A_TEMPLATE },
                { "serial", required_argument, NULL, A_SERIAL },
                { "cn", required_argument, NULL, A_CN },
                { "out", required_argument, NULL, A_OUT },
                { "cert", required_argument, NULL, A_CERT },
                { "ca", required_argument, NULL, A_CA },
                { "file", required_argument, NULL, A_FILE },
                { "lock", no_argument, NULL, A_LOCK },
                { "force", no_argument, NULL, A_FORCE },
                { "remove-lock", no_argument, NULL, A_REMOVE_LOCK },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, A_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {

                switch (c) {
                case A_CONFIG:
                        a->config_path = optarg;
                        break;
                case A_TCTI:
                        a->tcti = optarg;
                        break;
                case A_HANDLE:
                case A_NV: {
                        Diag d = {};
                        int r;

                        if (c == A_HANDLE) {
                                r = config_parse_persistent_handle(optarg, &a->handle, &d);
                                a->handle_set = r >= 0;
                        } else {
                                /* 0: no NV copy, the file copy only (birth.nv_index = 0). */
                                r = strcmp(optarg, "0") == 0
                                            ? (a->nv_index = 0, 0)
                                            : config_parse_nv_index(optarg, &a->nv_index, &d);
                                a->nv_index_set = r >= 0;
                        }
                        if (r < 0) {
                                log_error("invalid %s: %s", c == A_HANDLE ? "--handle" : "--nv-index",
                                          diag_text(&d, r));
                                return r;
                        }
                        break;
                }
                case A_ALG:
                        a->algorithm = optarg;
                        break;
                case A_HIERARCHY:
                        if (strcmp(optarg, "endorsement") != 0 && strcmp(optarg, "owner") != 0) {
                                log_error("invalid --hierarchy '%s': endorsement or owner", optarg);
                                return -EINVAL;
                        }
                        a->owner_hierarchy = strcmp(optarg, "owner") == 0;
                        break;
                case A_TEMPLATE:
                        a->template = birth_template_from_string(optarg);
                        if (a->template <0) {
                                log_error("invalid --template '%s': fleetid or tcg", optarg);
                                return -EINVAL;
                        }
                        break;
                case A_SERIAL:
                        a->serial = optarg;
                        break;
                case A_CN:
                        a->cn = optarg;
                        break;
                case A_OUT:
                        a->out = optarg;
                        break;
                case A_CERT:
                        a->cert = optarg;
                        break;
                case A_CA:
                        a->ca = optarg;
                        break;
                case A_FILE:
                        if (optarg[0] != '/') {
                                log_error("--file must be an absolute path, as birth.cert_file in "
                                          "fleetid.conf (got '%s')",
                                          optarg);
                                return -EINVAL;
                        }
                        a->file = optarg;
                        break;
                case A_LOCK:
                        a->lock = true;
                        break;
                case A_FORCE:
                        a->force = true;
                        break;
                case A_REMOVE_LOCK:
                        a->remove_lock = true;
                        break;
                case 'h':
                        help();
                        exit(0);
                case A_VERSION:
                        printf("fleetid-provision %s\n", FLEETID_VERSION);
                        exit(0);
                default:
                        return -EINVAL;
                }
        }
        if (a->remove_lock && !a->force) {
                log_error("--remove-lock only goes with --force");
                return -EINVAL;
        }
        if (optind != argc - 1) {
                log_error("expected exactly one command; see --help");
                return -EINVAL;
        }
        *ret_cmd = argv[optind];
        return 0;
}

static int cmd_create_key(const Config *c, TpmContext *t, const Args *a) {
        KeyAlgorithm alg = a->algorithm ? key_algorithm_from_string(a->algorithm) : KEY_ALG_ECC_P256;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *again = NULL;
        _cleanup_free_ char *attrs = NULL;
        uint32_t attributes = 0;
        Diag d = {};
        int r;

        if (alg == _KEY_ALG_INVALID)
                return log_error_errno(EINVAL,
                                       "unknown algorithm '%s' (ecc-p256, ecc-p384, rsa-2048, rsa-3072)",
                                       a->algorithm);

        if (a->owner_hierarchy)
                r = tpm_key_create_persistent(t, c->srk_handle, alg, c->birth_key_handle, a->force, &pub, &d);
        else {
                ESYS_TR srk;

                /* The SRK, parent of the operational key, is made here at the
                 * factory (as it was with the birth key under it), so that the
                 * first enrollment finds it; fleetidd makes it after a clear. */
                r = tpm_srk_ensure(t, c->srk_handle, &srk, &d);
                if (r >= 0)
                        r = tpm_birth_key_create(t, alg, a->template, c->birth_key_handle, a->force, &pub, &d);
        }
        if (r == -EEXIST)
                return log_error_errno(r,
                                       "a birth key already exists at 0x%08x; nothing changed "
                                       "(use --force to replace it, which invalidates its certificate)",
                                       c->birth_key_handle);
        if (r < 0)
                return log_error_errno(r, "cannot create the birth key: %s", diag_text(&d, r));

        (void) tpm_key_read_public(t, c->birth_key_handle, &again, &attributes, NULL); /* known: no command */
        (void) tpm_attributes_to_string(attributes, &attrs);
        if (a->owner_hierarchy)
                log_warning("birth key created in the TPM at 0x%08x under the SRK (%s, %s): TPM2_Clear destroys it "
                            "for good",
                            c->birth_key_handle, key_algorithm_to_string(alg), strempty(attrs));
        else if (a->template == BIRTH_TEMPLATE_TCG)
                log_warning(
                        "birth key created in the TPM at 0x%08x from the TCG IDevID template as it is, without "
                        "noDA (%s, %s): fleetidd makes it again after a TPM2_Clear, but while the TPM is in "
                        "dictionary-attack lockout it cannot sign, and the device cannot enroll",
                        c->birth_key_handle, key_algorithm_to_string(alg), strempty(attrs));
        else
                log_info("birth key created in the TPM at 0x%08x from fleetid's template (the TCG IDevID template "
                         "plus noDA) in the endorsement hierarchy (%s, %s): fleetidd makes it again after a "
                         "TPM2_Clear",
                         c->birth_key_handle, key_algorithm_to_string(alg), strempty(attrs));
        PEM_write_PUBKEY(stdout, pub);
        return 0;
}

static int cmd_csr(const Config *c, TpmContext *t, const Args *a) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        const unsigned char *p;
        size_t len;
        FILE *f = stdout;
        Diag d = {};
        int r;

        if (isempty(a->serial))
                return log_error_errno(EINVAL, "csr needs --serial: the birth certificate names the device");

        r = tpm_provider_load_key(t, c->birth_key_handle, &key, &d);
        if (r < 0)
                return log_error_errno(r, "cannot use the birth key at 0x%08x: %s (run create-key first)",
                                       c->birth_key_handle, diag_text(&d, r));
        r = csr_subject_new(a->cn ?: a->serial, a->serial, &subject, &d);
        if (r < 0)
                return log_error_errno(r, "%s", diag_text(&d, r));
        CsrRequest cr = { .subject = subject, .key = key };
        r = csr_build_der(&cr, &der, &len, &d);
        if (r < 0)
                return log_error_errno(r, "cannot build the CSR: %s", diag_text(&d, r));

        p = der;
        req = d2i_X509_REQ(NULL, &p, (long) len);
        if (!req)
                return log_error_errno(EIO, "cannot re-read the CSR just built");
        if (a->out && !(f = fopen(a->out, "we")))
                return log_error_errno(errno, "cannot write %s: %m", a->out);
        r = PEM_write_X509_REQ(f, req) ? 0 : -EIO;
        if (f != stdout && fclose(f) != 0 && r == 0)
                r = -errno;
        if (r < 0)
                return log_error_errno(r, "cannot write the CSR: %m");
        if (a->out)
                log_info("CSR for serial %s written to %s", a->serial, a->out);
        return 0;
}

/* A write-locked index holds a certificate meant to stay: --force alone does
 * not replace it, since that deletes the index and the lock with it. */
static int check_nv_lock(const Config *c, TpmContext *t, const Args *a, bool *ret_removed) {
        Diag d = {};
        int r;

        if (!a->force)
                return 0; /* tpm_nv_store() refuses any existing index */
        r = tpm_nv_is_write_locked(t, c->birth_nv_index, &d);
        if (r == -ENOENT || r == 0)
                return 0;
        if (r < 0)
                return log_error_errno(r, "cannot read the attributes of NV index 0x%08x: %s; nothing changed",
                                       c->birth_nv_index, diag_text(&d, r));
        if (!a->remove_lock)
                return log_error_errno(EPERM,
                                       "the birth certificate in NV index 0x%08x is write-locked; nothing "
                                       "changed (replacing it deletes the index and its lock: add "
                                       "--remove-lock to --force for that)",
                                       c->birth_nv_index);
        *ret_removed = true;
        return 0;
}

static int cmd_install_cert(const Config *c, TpmContext *t, const Args *a) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL, *cas = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_free_ char *subject = NULL, *pem = NULL;
        unsigned char *der = NULL;
        X509 *leaf;
        size_t pem_len;
        int der_len;
        bool lock_removed = false;
        Diag d = {};
        int r;

        if (!a->cert || !a->ca)
                return log_error_errno(EINVAL, "install-cert needs --cert and --ca");
        if (!c->birth_nv_index && !a->file)
                return log_error_errno(EINVAL,
                                       "nowhere to install the certificate: NV index is 0 and no --file");

        r = certs_load_pem_file(a->cert, &certs, &d);
        if (r < 0)
                return log_error_errno(r, "birth certificate (--cert): %s; nothing installed",
                                       diag_text(&d, r));
        r = certs_load_pem_file(a->ca, &cas, &d);
        if (r < 0)
                return log_error_errno(r, "manufacturer CA (--ca): %s; nothing installed", diag_text(&d, r));
        r = tpm_key_read_public(t, c->birth_key_handle, &pub, NULL, &d);
        if (r < 0)
                return log_error_errno(r, "cannot read the birth key: %s (run create-key first)",
                                       diag_text(&d, r));

        r = certs_find_for_key(certs, pub, &leaf, &d);
        if (r < 0)
                return log_error_errno(EKEYREJECTED,
                                       "%s holds no certificate for the birth key at 0x%08x; "
                                       "nothing installed",
                                       a->cert, c->birth_key_handle);
        r = cert_verify_chain(leaf, certs, cas, time(NULL), true, &d);
        if (r < 0)
                return log_error_errno(r,
                                       "the birth certificate does not chain to the manufacturer CA in %s: %s; "
                                       "nothing installed",
                                       a->ca, diag_text(&d, r));

        if (c->birth_nv_index) {
                r = check_nv_lock(c, t, a, &lock_removed);
                if (r < 0)
                        return r;
                der_len = i2d_X509(leaf, &der);
                if (der_len <= 0)
                        return log_error_errno(EIO, "cannot encode the certificate");
                r = tpm_nv_store(t, c->birth_nv_index, der, (size_t) der_len, a->force, a->lock, &d);
                OPENSSL_free(der);
                if (r == -EEXIST)
                        return log_error_errno(r,
                                               "a birth certificate is already installed in NV index 0x%08x; "
                                               "nothing changed (use --force to replace it)",
                                               c->birth_nv_index);
                if (r < 0)
                        return log_error_errno(r, "cannot install the certificate in NV: %s",
                                               diag_text(&d, r));
                if (lock_removed)
                        log_warning("the write lock on NV index 0x%08x was removed: the index was deleted and "
                                    "defined anew with the new certificate%s",
                                    c->birth_nv_index,
                                    a->lock ? ", and locked again" : ", which is NOT locked");
        }
        if (a->file) {
                if (!a->force && access(a->file, F_OK) == 0)
                        return log_error_errno(EEXIST, "%s exists; nothing changed (use --force)", a->file);
                r = certs_to_pem(certs, &pem, &pem_len);
                if (r >= 0)
                        r = write_file_atomic(a->file, pem, pem_len, 0644);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %m", a->file);
        }
        (void) cert_subject_string(leaf, &subject);
        log_info("birth certificate for %s installed%s%s%s", strempty(subject),
                 c->birth_nv_index ? " in the TPM NV index" : "", a->lock ? " (write-locked)" : "",
                 a->file ? " and as a file" : "");
        return 0;
}

static int cmd_status(const Config *c, TpmContext *t) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *attrs = NULL, *subject = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        uint32_t attributes;
        size_t len;
        Diag d = {};
        int r, locked;

        r = tpm_key_read_public(t, c->birth_key_handle, &pub, &attributes, &d);
        if (r < 0) {
                printf("Birth key:   none at 0x%08x (%s)\n", c->birth_key_handle, diag_text(&d, r));
                return r == -ENOENT ? 0 : r;
        }
        (void) tpm_attributes_to_string(attributes, &attrs);
        printf("Birth key:   0x%08x, %s %d bits, %s\n", c->birth_key_handle, EVP_PKEY_get0_type_name(pub),
               EVP_PKEY_get_bits(pub), strempty(attrs));
        {
                BirthTemplate which = BIRTH_TEMPLATE_FLEETID;
                bool known = tpm_birth_key_template_of(t, c->birth_key_handle, &which, NULL) > 0;

                printf("Clear-proof: %s\n",
                       !known ? "NO (not from an IDevID template, e.g. under the SRK: lost with a TPM2_Clear)"
                       : which == BIRTH_TEMPLATE_TCG
                               ? "yes (the TCG IDevID template as it is, endorsement hierarchy: made again after "
                                 "a TPM2_Clear)"
                               : "yes (fleetid's template, the TCG IDevID template plus noDA, endorsement "
                                 "hierarchy: made again after a TPM2_Clear)");
                if (!(attributes & TPMA_OBJECT_NODA))
                        printf("Warning:     the birth key is not noDA: while the TPM is in dictionary-attack "
                               "lockout it cannot sign, and the device cannot enroll\n");
        }
        if (!c->birth_nv_index)
                return 0;
        r = tpm_nv_load(t, c->birth_nv_index, TPM_NV_CERT_MAX, &der, &len, &d);
        if (r < 0) {
                printf("Certificate: none in NV 0x%08x (%s)\n", c->birth_nv_index, diag_text(&d, r));
                return 0;
        }
        locked = tpm_nv_is_write_locked(t, c->birth_nv_index, NULL);
        if (cert_from_der(der, len, &cert, &d) < 0) {
                printf("Certificate: NV 0x%08x holds no valid certificate (%s)\n", c->birth_nv_index,
                       diag_text(&d, -EBADMSG));
                return 0;
        }
        (void) cert_subject_string(cert, &subject);
        printf("Certificate: %s, NV 0x%08x%s, %s\n", strempty(subject), c->birth_nv_index,
               locked > 0 ? " (write-locked)" : "",
               cert_matches_key(cert, pub, NULL) >= 0 ? "matches the key" : "DOES NOT MATCH THE KEY");
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(tpm_context_freep) TpmContext *t = NULL;
        Args a = {};
        const char *cmd;
        Diag d = {};
        int r;

        log_setup("fleetid-provision");
        if (parse_args(argc, argv, &a, &cmd) < 0)
                return 2;

        r = a.config_path ? config_load(a.config_path, &c, &d) : config_new_defaults(&c);
        if (r < 0) {
                log_error("%s", diag_text(&d, r));
                return 2;
        }
        if (a.tcti) {
                free(c->tpm_tcti);
                c->tpm_tcti = strdup(a.tcti);
                if (!c->tpm_tcti)
                        return 1;
        }
        if (a.handle_set)
                c->birth_key_handle = a.handle;
        if (a.nv_index_set)
                c->birth_nv_index = a.nv_index;
        /* The configuration's own check, for a handle given here: --force would
         * evict whatever sits there. */
        if (c->birth_key_handle == c->srk_handle || c->birth_key_handle == c->op_key_handle ||
            c->birth_key_handle == c->op_spare_key_handle) {
                log_error("--handle 0x%08X is the %s's handle; the birth key needs one of its own; nothing was "
                          "done",
                          c->birth_key_handle,
                          c->birth_key_handle == c->srk_handle      ? "storage root key (tpm.srk_handle)"
                          : c->birth_key_handle == c->op_key_handle ? "operational key (operational.key_handle)"
                                                                    : "spare operational key "
                                                                      "(operational.spare_key_handle)");
                return 2;
        }

        r = tpm_context_new(c->tpm_tcti, &t, &d);
        if (r < 0) {
                log_error_errno(r, "%s", diag_text(&d, r));
                return 1;
        }

        if (strcmp(cmd, "create-key") == 0)
                r = cmd_create_key(c, t, &a);
        else if (strcmp(cmd, "csr") == 0) {
                r = cmd_csr(c, t, &a);
        } else if (strcmp(cmd, "install-cert") == 0)
                r = cmd_install_cert(c, t, &a);
        else if (strcmp(cmd, "status") == 0)
                r = cmd_status(c, t);
        else {
                log_error("unknown command '%s'; see --help", cmd);
                return 2;
        }
        return r < 0 ? 1 : 0;
}
