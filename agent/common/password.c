/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "common/password.h"
#include "util/fileio.h"
#include "util/macro.h"

int password_read_file(const char *path, char **ret, Diag *d) {
        _cleanup_close_ int fd = -1;
        _cleanup_erase_ char *buf = NULL;
        struct stat st;
        size_t len, line;
        int r;

        /* One open, checked and read through the same fd: no window in which the
         * path could be swapped between the mode check and the read. No symlink,
         * and O_NONBLOCK so that a FIFO cannot hang us (it is refused below). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return diag_set(d, -errno, "cannot read the EST password file %s: %s", path,
                                errno == ELOOP ? "it is a symbolic link" : strerror(errno));
        if (fstat(fd, &st) < 0)
                return diag_set(d, -errno, "cannot read the EST password file %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return diag_set(d, -EBADFD, "cannot read the EST password file %s: not a regular file", path);
        if (st.st_mode & S_IROTH)
                return diag_set(d, -EPERM,
                                "EST password file %s is readable by everyone (mode %04o); "
                                "chmod 0600 it",
                                path, (unsigned) (st.st_mode & 07777));
        r = read_fd_bounded(fd, PASSWORD_MAX, &buf, &len);
        if (r < 0)
                return diag_set(d, r, "cannot read the EST password file %s: %s", path,
                                r == -EFBIG ? "larger than the limit of 1024 bytes" : read_file_strerror(r));
        /* Only the first line is the password: wipe everything after it, so that
         * the string-length wipe at free covers the whole buffer. */
        line = strcspn(buf, "\r\n");
        explicit_bzero(buf + line, len - line);
        if (line == 0)
                return diag_set(d, -EINVAL, "EST password file %s is empty", path);
        *ret = TAKE_PTR(buf);
        return 0;
}
