/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/child-setup.h"
#include "common/sensor-wire.h"
#include "common/signer-wire.h"
#include "common/worker-wire.h"
#include "config/config-wire.h"
#include "util/macro.h"

#define SETUP_MAGIC 0x55444946u /* "FIDU" */
#define SETUP_MAX (sizeof(SetupHeader) + CONFIG_WIRE_MAX + CHILD_SETUP_EXTRA_MAX)

typedef struct SetupHeader {
        uint32_t magic;
        uint32_t config_len;
        uint32_t extra_len;
        uint32_t reserved; /* 0 */
        uint64_t build;    /* build_id(): the daemon's and the worker's must be equal */
} SetupHeader;

/* What the two ends must share beyond the configuration's layout: the
 * version, the build's date, and the size of every message they exchange. */
static uint64_t build_id(void) {
        const char *version = FLEETID_VERSION;
        uint64_t v[] = { FLEETID_BUILD_EPOCH,      sizeof(WorkerResultWire),    sizeof(SignerRequestWire),
                         sizeof(SignerAnswerWire), sizeof(SensorRequestHeader), sizeof(SensorAnswerHeader),
                         sizeof(SetupHeader),      config_wire_layout() };
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; version[i]; i++)
                h = (h ^ (uint8_t) version[i]) * 0x100000001b3ULL;
        for (size_t i = 0; i < sizeof(v); i++)
                h = (h ^ ((const uint8_t *) v)[i]) * 0x100000001b3ULL;
        return h;
}

static const char *const role_names[_CHILD_ROLE_MAX] = {
        [CHILD_ENROLL] = "enroll", [CHILD_RENEW] = "renew",   [CHILD_CACERTS] = "cacerts",
        [CHILD_RESET] = "reset",   [CHILD_SIGNER] = "signer", [CHILD_SENSORS] = "sensors",
};

const char *child_role_to_string(ChildRole r) {
        return r >= 0 && r < _CHILD_ROLE_MAX ? role_names[r] : NULL;
}

ChildRole child_role_from_string(const char *s) {
        for (ChildRole r = 0; s && r < _CHILD_ROLE_MAX; r++)
                if (strcmp(s, role_names[r]) == 0)
                        return r;
        return _CHILD_ROLE_INVALID;
}

static int write_all(int fd, const void *p, size_t n) {
        const uint8_t *q = p;

        while (n > 0) {
                ssize_t k = write(fd, q, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                q += k;
                n -= (size_t) k;
        }
        return 0;
}

int child_setup_memfd(const Config *c, const void *extra, size_t extra_len, int *ret_fd) {
        _cleanup_free_ uint8_t *wire = NULL;
        size_t wire_len = 0;
        SetupHeader head;
        int fd, r;

        if (extra_len > CHILD_SETUP_EXTRA_MAX)
                return -E2BIG;
        r = config_to_wire(c, &wire, &wire_len);
        if (r < 0)
                return r;
        head = (SetupHeader) {
                .magic = SETUP_MAGIC,
                .config_len = (uint32_t) wire_len,
                .extra_len = (uint32_t) extra_len,
                .build = build_id(),
        };
        fd = memfd_create("fleetid-setup", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        r = write_all(fd, &head, sizeof(head));
        if (r >= 0)
                r = write_all(fd, wire, wire_len);
        if (r >= 0 && extra_len > 0)
                r = write_all(fd, extra, extra_len);
        /* Nobody changes it after this: the child reads what the daemon wrote. */
        if (r >= 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* Reads the whole of fd from offset 0, at most max bytes. */
static int read_all(int fd, size_t max, uint8_t **ret, size_t *ret_len, Diag *d) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0, size = 0;

        for (;;) {
                ssize_t k;

                if (len == size) {
                        uint8_t *p;

                        if (size > max)
                                return diag_set(d, -EBADMSG, "the setup is longer than %zu bytes", max);
                        size = size ? size * 2 : 16384;
                        p = realloc(buf, size + 1);
                        if (!p)
                                return diag_set(d, -ENOMEM, "out of memory");
                        buf = p;
                }
                k = pread(fd, buf + len, size - len, (off_t) len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return diag_set(d, -errno, "cannot read the setup at fd %d: %m", fd);
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (len > max)
                return diag_set(d, -EBADMSG, "the setup is longer than %zu bytes", max);
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int child_setup_read(int fd, ChildSetup *ret, Diag *d) {
        _cleanup_free_ uint8_t *buf = NULL;
        ChildSetup s = {};
        SetupHeader head;
        size_t len = 0;
        int r;

        r = read_all(fd, SETUP_MAX, &buf, &len, d);
        if (r < 0)
                return r;
        if (len < sizeof(head))
                return diag_set(d, -EBADMSG, "a setup of %zu bytes", len);
        memcpy(&head, buf, sizeof(head));
        if (head.magic != SETUP_MAGIC || head.extra_len > CHILD_SETUP_EXTRA_MAX ||
            (uint64_t) sizeof(head) + head.config_len + head.extra_len != len)
                return diag_set(d, -EBADMSG, "a setup whose sizes do not add up (%zu bytes)", len);
        if (head.build != build_id())
                return diag_set(d, -EBADMSG,
                                "a setup from another build of fleetidd (%016llx, this worker is %016llx), as "
                                "between an upgrade's unpacking and the daemon's restart",
                                (unsigned long long) head.build, (unsigned long long) build_id());
        r = config_from_wire(buf + sizeof(head), head.config_len, &s.config, d);
        if (r < 0)
                return diag_prefix(d, r, "the configuration");
        if (head.extra_len > 0) {
                s.extra = malloc(head.extra_len + 1); /* and a NUL after, for text */
                if (!s.extra) {
                        config_free(s.config);
                        return diag_set(d, -ENOMEM, "out of memory");
                }
                memcpy(s.extra, buf + sizeof(head) + head.config_len, head.extra_len);
                s.extra[head.extra_len] = 0;
                s.extra_len = head.extra_len;
        }
        *ret = s;
        return 0;
}

void child_setup_done(ChildSetup *s) {
        config_free(s->config);
        free(s->extra);
        *s = (ChildSetup) {};
}
