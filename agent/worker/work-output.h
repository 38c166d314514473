/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * work-output.h: a worker's side of its socket to fleetidd (worker-wire.h):
 * the states it reaches on the way and its one result, last.
 */
#pragma once

#include "common/worker-wire.h"

typedef struct WorkerOutput WorkerOutput;

/* Takes fd (the socket) over. */
int worker_output_open(int fd, WorkerOutput **ret);
/* Flushes and closes; -EIO if anything could not be sent. */
int worker_output_close(WorkerOutput *o);

/* A state reached on the way (the daemon sets it). */
int worker_send_state(WorkerOutput *o, DaemonState s);
/* The result, once, last. */
int worker_send_result(WorkerOutput *o, const WorkerResult *r);
/* Bytes as they are, unframed: for tests/integration/worker-check.c, which
 * sends what a broken worker could, to check the daemon's side. */
int worker_send_raw(WorkerOutput *o, const void *data, size_t len);
