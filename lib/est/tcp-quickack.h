/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tcp-quickack.h: acknowledge what has arrived on a TCP socket now, not after
 * the delayed-ACK timer.
 *
 * A server that writes an HTTP answer's header and body in two writes without
 * TCP_NODELAY holds the body (Nagle) until the header is acknowledged; a client
 * in delayed-ACK mode acknowledges only after its timer (40 ms on Linux), so
 * every answer would wait that long. Linux's TCP_QUICKACK is not sticky: the
 * kernel falls back to delayed ACKs by itself (tcp(7)), so the EST client arms
 * it again on the socket at each point where it waits for more of an answer:
 * when the socket is created, before each request and when an answer's header
 * has been read (which also sends the ACK that is pending then).
 */
#pragma once

/* Arms TCP_QUICKACK on the TCP socket fd. Returns 0, -EOPNOTSUPP where the
 * system has no TCP_QUICKACK, or the -errno of setsockopt(). */
int tcp_quickack_arm(int fd);
