/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-wire.h: a loaded configuration as bytes, for the worker processes
 * fleetidd starts (agent/worker/): a worker runs with exactly the
 * configuration the daemon runs with (the new owner after a factory reset
 * included), not with the files as they may have been edited since.
 *
 * Native byte order: both ends come from the same build. The reader bounds
 * every length by what is left, and holds every value to what the loader
 * allows (ranges, enums, the string checks), so a truncated or corrupted
 * message is refused, never half taken.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/diag.h"

/* At most this many bytes (every key at its length bound fits). */
#define CONFIG_WIRE_MAX (512u * 1024u)

int config_to_wire(const Config *c, uint8_t **ret, size_t *ret_len);
/* A fingerprint of the key table and struct Config: what the wire form
 * depends on. A message of another layout is refused. */
uint64_t config_wire_layout(void);
/* -EBADMSG with what was wrong in d. */
int config_from_wire(const uint8_t *p, size_t len, Config **ret, Diag *d);
