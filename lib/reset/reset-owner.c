/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/certcheck.h"
#include "crypto/ossl-util.h"
#include "identity/operational-keys.h"
#include "store/state-certs.h"
#include "util/fileio.h"
#include "reset/reset-owner.h"

bool reset_owner_in_place(const Config *c, const ResetMarker *m, Diag *d) {
        if (!m->owner[0]) {
                if (c->n_dropins == 0)
                        return true;
                diag_set(d, -ESTALE, "the reset removes every owner file, but %s is still there",
                         c->dropins[0].path);
                return false;
        }
        if (c->n_dropins == 1 && streq_ptr(c->dropins[0].hash, m->owner))
                return true;
        if (c->n_dropins == 0)
                diag_set(d, -ESTALE, "the new owner file (%s) is not installed in %s", m->owner,
                         c->dropin_dir ?: "(none)");
        else
                diag_set(d, -ESTALE, "%s is not the new owner file (%s)%s", c->dropins[0].path, m->owner,
                         c->n_dropins > 1 ? ", and there are other drop-in files" : "");
        return false;
}

int reset_owner_anchor(const Config *c, char **ret) {
        _cleanup_(OSSL_STACK_OF_X509_freep) STACK_OF(X509) *certs = NULL;

        if (c->est_trust_anchors && certs_load_pem_file(c->est_trust_anchors, &certs, NULL) >= 0)
                return cert_fingerprint(sk_X509_value(certs, 0), ret);
        *ret = strdup(c->est_bootstrap_fingerprint ?: "none");
        return *ret ? 0 : -ENOMEM;
}

/* Whether path lies directly in dir. */
static bool path_in_dir(const char *path, const char *dir) {
        size_t n = strlen(dir);

        return path && strncmp(path, dir, n) == 0 && path[n] == '/' && !strchr(path + n + 1, '/');
}

static int remove_in_dir(int dfd, const char *dir, const char *name, Diag *d) {
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
                return diag_set(d, -errno, "cannot remove %s/%s: %s", dir, name, strerror(errno));
        return 0;
}

/* Every *.conf in the drop-in directory but RESET_OWNER_DROPIN (if keep_owner). */
static int remove_owner_files(int dfd, const char *dropin_dir, bool keep_owner, Diag *d) {
        _cleanup_close_ int lfd = -1;
        DIR *dir;
        struct dirent *de;
        int r = 0;

        lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lfd < 0 || !(dir = fdopendir(lfd)))
                return diag_set(d, -errno, "cannot list %s: %s", dropin_dir, strerror(errno));
        lfd = -1; /* the DIR owns it */
        while (r >= 0 && (de = readdir(dir))) {
                size_t n = strlen(de->d_name);

                if (de->d_name[0] == '.' || n <= 5 || !streq_ptr(de->d_name + n - 5, ".conf") ||
                    (keep_owner && streq_ptr(de->d_name, RESET_OWNER_DROPIN)))
                        continue;
                r = remove_in_dir(dfd, dropin_dir, de->d_name, d);
        }
        closedir(dir);
        return r;
}

int reset_owner_install(const char *dropin_dir, const Config *old_config, const Config *new_config,
                        const char *owner_text, size_t owner_len, Diag *d) {
        const char *old_files[2] = { old_config ? old_config->est_trust_anchors : NULL,
                                     old_config ? old_config->est_password_file : NULL };
        _cleanup_close_ int dfd = -1;
        int r;

        if (!dropin_dir)
                return diag_set(d, -EINVAL, "no drop-in directory (paths.dropin_dir is empty)");
        if (mkdir(dropin_dir, 0755) < 0 && errno != EEXIST)
                return diag_set(d, -errno, "cannot create the drop-in directory %s: %s", dropin_dir,
                                strerror(errno));
        dfd = open(dropin_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return diag_set(d, -errno, "cannot open the drop-in directory %s: %s", dropin_dir,
                                strerror(errno));

        /* The old owner's files the old configuration names, if they are in
         * the drop-in directory and the new owner does not name them too. */
        for (size_t i = 0; old_config && old_config->n_dropins > 0 && i < ELEMENTSOF(old_files); i++) {
                const char *f = old_files[i];

                if (!path_in_dir(f, dropin_dir) ||
                    (new_config && (streq_ptr(f, new_config->est_trust_anchors) ||
                                    streq_ptr(f, new_config->est_password_file))))
                        continue;
                r = remove_in_dir(dfd, dropin_dir, strrchr(f, '/') + 1, d);
                if (r < 0)
                        return r;
        }
        r = remove_owner_files(dfd, dropin_dir, owner_text != NULL, d);
        if (r < 0)
                return r;
        if (!owner_text) {
                r = remove_in_dir(dfd, dropin_dir, RESET_OWNER_DROPIN, d);
                if (r < 0)
                        return r;
                return fsync(dfd) < 0 ? diag_set(d, -errno, "cannot sync %s: %s", dropin_dir, strerror(errno))
                                      : 0;
        }
        r = write_file_atomic_at(dfd, RESET_OWNER_DROPIN, owner_text, owner_len, 0644);
        if (r < 0)
                return diag_set(d, r, "cannot write %s/%s: %s", dropin_dir, RESET_OWNER_DROPIN, strerror(-r));
        return 0;
}
