/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * frame.h: the framing fleetidd and its child processes (agent/worker/)
 * speak over a socketpair: the workers (fleetidd/worker.h) and the signer
 * (fleetidd/signer.h).
 *
 * A frame is a FrameHeader { magic, type, length } and `length` bytes, in
 * native byte order (both ends come from the same build). The reader checks
 * the magic and bounds each frame (max_frame) and, if asked, the whole stream
 * (max_total); the first violation is kept in `broken` and ends the reading.
 * What a frame's payload means is the caller's to check, in its FrameFn.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/diag.h"

typedef struct FrameHeader {
        uint32_t magic;
        uint32_t type;
        uint32_t length;
} FrameHeader;

/* Takes one complete frame; < 0 with d set for a frame that is not acceptable. */
typedef int (*FrameFn)(void *userdata, uint32_t type, const uint8_t *p, size_t len, Diag *d);

typedef struct FrameReader {
        uint32_t magic;
        size_t max_frame; /* payload bytes per frame, at most */
        size_t max_total; /* bytes in all, at most; 0 = no bound (a long-lived peer) */
        FrameFn fn;
        void *userdata;
        uint8_t *buf; /* max_frame + sizeof(FrameHeader) bytes */
        size_t len;   /* received, not yet taken */
        size_t total; /* received in all */
        Diag broken;  /* the first violation, error 0 if none */
} FrameReader;

int frame_reader_init(FrameReader *r, uint32_t magic, size_t max_frame, size_t max_total, FrameFn fn,
                      void *userdata);
void frame_reader_done(FrameReader *r);
/* Adds bytes that arrived (at most the room left: max_frame + header - len)
 * and takes the complete frames. */
void frame_reader_feed(FrameReader *r, const void *data, size_t n);
/* Reads fd until it would block (-EAGAIN) or ends (0: the end of the
 * stream, or r->broken set), taking frames as they complete. On a blocking
 * fd it returns only at the end. */
int frame_reader_receive(FrameReader *r, int fd);

/* Writes one frame to f and flushes it; -EIO if it cannot (f is then no use). */
int frame_write(FILE *f, uint32_t magic, uint32_t type, const void *data, size_t len);
