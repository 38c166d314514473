/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/frame.h"

int frame_reader_init(FrameReader *r, uint32_t magic, size_t max_frame, size_t max_total, FrameFn fn,
                      void *userdata) {
        *r = (FrameReader) {
                .magic = magic,
                .max_frame = max_frame,
                .max_total = max_total,
                .fn = fn,
                .userdata = userdata,
        };
        r->buf = malloc(max_frame + sizeof(FrameHeader));
        return r->buf ? 0 : -ENOMEM;
}

void frame_reader_done(FrameReader *r) {
        free(r->buf);
        r->buf = NULL;
        r->len = 0;
}

/* Takes the complete frames at the start of the buffer. */
static void take_frames(FrameReader *r) {
        size_t off = 0;

        while (r->broken.error == 0 && r->len - off >= sizeof(FrameHeader)) {
                FrameHeader h;

                memcpy(&h, r->buf + off, sizeof(h));
                if (h.magic != r->magic || h.length > r->max_frame) {
                        diag_set(&r->broken, -EBADMSG, "a frame header that is not fleetid's (or too long)");
                        break;
                }
                if (r->len - off - sizeof(h) < h.length)
                        break;
                if (r->fn(r->userdata, h.type, r->buf + off + sizeof(h), h.length, &r->broken) < 0) {
                        if (r->broken.error == 0)
                                diag_set(&r->broken, -EBADMSG, "a frame of type %u that is not acceptable",
                                         h.type);
                        break;
                }
                off += sizeof(h) + h.length;
        }
        memmove(r->buf, r->buf + off, r->len - off);
        r->len -= off;
}

void frame_reader_feed(FrameReader *r, const void *data, size_t n) {
        memcpy(r->buf + r->len, data, n);
        r->len += n;
        take_frames(r);
}

int frame_reader_receive(FrameReader *r, int fd) {
        for (;;) {
                size_t room = r->max_frame + sizeof(FrameHeader) - r->len;
                ssize_t n;

                if (r->broken.error != 0)
                        return 0;
                n = read(fd, r->buf + r->len, room);
                if (n < 0 && errno == ECONNRESET)
                        n = 0; /* the peer died with what we sent unread: its end all the same */
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return -EAGAIN;
                        diag_set(&r->broken, -errno, "reading its message failed: %s", strerror(errno));
                        return 0;
                }
                if (n == 0) {
                        if (r->len > 0)
                                diag_set(&r->broken, -EBADMSG, "its message ends within a frame");
                        return 0;
                }
                r->len += (size_t) n;
                r->total += (size_t) n;
                if (r->max_total > 0 && r->total > r->max_total) {
                        diag_set(&r->broken, -E2BIG, "its message is longer than %zu bytes", r->max_total);
                        return 0;
                }
                take_frames(r);
        }
}

int frame_write(FILE *f, uint32_t magic, uint32_t type, const void *data, size_t len) {
        FrameHeader h = { .magic = magic, .type = type, .length = (uint32_t) len };

        if (len > UINT32_MAX || fwrite(&h, sizeof(h), 1, f) != 1 ||
            (len > 0 && fwrite(data, len, 1, f) != 1) || fflush(f) != 0)
                return -EIO;
        return 0;
}
