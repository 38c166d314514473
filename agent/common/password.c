/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "common/password.h"
#include "util/fileio.h"

int password_read_file(const char *path, char **ret, Diag *d) {
        struct stat st;
        char *buf = NULL;
        size_t len;
        int r;

        if (stat(path, &st) < 0)
                return diag_set(d, -errno, "cannot read the EST password file %s: %s", path, strerror(errno));
        if (st.st_mode & S_IROTH)
                return diag_set(d, -EPERM,
                                "EST password file %s is readable by everyone (mode %04o); "
                                "chmod 0600 it",
                                path, (unsigned) (st.st_mode & 07777));
        r = read_file_bounded(path, PASSWORD_MAX, &buf, &len);
        if (r < 0)
                return diag_set(d, r, "cannot read the EST password file %s: %s", path, read_file_strerror(r));
        buf[strcspn(buf, "\r\n")] = 0;
        if (!*buf) {
                explicit_bzero(buf, len);
                free(buf);
                return diag_set(d, -EINVAL, "EST password file %s is empty", path);
        }
        *ret = buf;
        return 0;
}
