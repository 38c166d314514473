/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * password.h: reading the EST HTTP Basic password from its file.
 * The result is wiped and freed by the caller (_cleanup_erase_).
 */
#pragma once

#include "util/diag.h"

#define PASSWORD_MAX 1024 /* the error text in password.c names this limit */

/* Reads the first line (bounded), refuses an empty one and a file that other
 * users can read (-EPERM, naming the mode). */
int password_read_file(const char *path, char **ret, Diag *d);
