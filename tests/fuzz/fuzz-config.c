/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-config: config_load() on any file content (fleetid.conf is read from
 * disk, so the input goes through a real file). Each process writes only one
 * file, in its own temporary directory ($TMPDIR or /tmp, fleetid-fuzz-config-*),
 * removed when it exits. A configuration that loads carries the normalized
 * values config.h promises: an "https://" URL without a trailing '/', a
 * "sha256:" + 64 lowercase hex fingerprint, absolute paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz.h"

static char fuzz_dir[4096];
static char fuzz_file[4096 + 32];

static void fuzz_dir_remove(void) {
        (void) unlink(fuzz_file);
        (void) rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *tmp = getenv("TMPDIR");

        if (!tmp || tmp[0] != '/')
                tmp = "/tmp";
        FUZZ_CHECK((size_t) snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fleetid-fuzz-config-XXXXXX", tmp) <
                   sizeof(fuzz_dir));
        FUZZ_CHECK(mkdtemp(fuzz_dir));
        snprintf(fuzz_file, sizeof(fuzz_file), "%s/fleetid.conf", fuzz_dir);
        FUZZ_CHECK(atexit(fuzz_dir_remove) == 0);
        return 0;
}

static void write_input(const uint8_t *data, size_t size) {
        int fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);

        FUZZ_CHECK(fd >= 0);
        while (size > 0) {
                ssize_t k = write(fd, data, size);

                FUZZ_CHECK(k > 0);
                data += k;
                size -= (size_t) k;
        }
        FUZZ_CHECK(close(fd) == 0);
}

static bool path_ok(const char *p) {
        return !p || p[0] == '/';
}

static bool fingerprint_ok(const char *f) {
        if (!f)
                return true;
        if (strncmp(f, "sha256:", 7) != 0 || strlen(f) != 7 + 64)
                return false;
        for (const char *p = f + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(config_freep) Config *c = NULL;
        Diag d = {};
        size_t n;
        int r;

        write_input(data, size);
        r = config_load(fuzz_file, &c, &d);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM || r == -EFBIG);
                FUZZ_CHECK(!c);
                FUZZ_CHECK(r == -ENOMEM || d.text[0] != 0);
                return 0;
        }
        FUZZ_CHECK(c && c->est_url);
        FUZZ_CHECK(strncmp(c->est_url, "https://", 8) == 0);
        n = strlen(c->est_url);
        FUZZ_CHECK(c->est_url[n - 1] != '/');
        FUZZ_CHECK(fingerprint_ok(c->est_bootstrap_fingerprint));
        FUZZ_CHECK(path_ok(c->birth_cert_file) && path_ok(c->est_trust_anchors) &&
                   path_ok(c->est_password_file) && path_ok(c->state_dir) && path_ok(c->metrics_file) &&
                   path_ok(c->hook));
        FUZZ_CHECK((int) c->op_key_algorithm >= 0 && c->op_key_algorithm < _KEY_ALG_MAX);
        FUZZ_CHECK(c->est_channel_binding < _CHANNEL_BINDING_MAX);
        return 0;
}
