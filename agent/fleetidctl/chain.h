/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * chain.h: fleetidctl chain: the operational certificate and its chain as
 * PEM on stdout, the leaf first: from the running fleetidd
 * (GetCertificateChain(), role reader), else from the state directory.
 */
#pragma once

/* The exit status (0 printed, 1 not enrolled, refused or unreadable); or
 * -EHOSTUNREACH, having printed nothing, when the API cannot be reached. */
int ctl_chain_bus(void);
/* From operational.pem in state_dir (fleetidd not on the bus). */
int ctl_chain_files(const char *state_dir);
