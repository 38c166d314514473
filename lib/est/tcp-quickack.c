/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "est/tcp-quickack.h"

int tcp_quickack_arm(int fd) {
#ifdef TCP_QUICKACK
        int one = 1;

        if (fd < 0)
                return -EBADF;
        if (setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) < 0)
                return -errno;
        return 0;
#else
        (void) fd;
        return -EOPNOTSUPP;
#endif
}
