/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor-id.h: the name a sensor application gives a downstream sensor.
 *
 * A sensor_id becomes the CN of the sensor's certificate and part of the file
 * name of its record in the state directory, so it is held to a narrow
 * charset: 1..SENSOR_ID_MAX characters from [A-Za-z0-9._-], not starting with
 * '.' or '-', and without "..". That excludes '/', NUL, spaces and anything a
 * shell or a path would read specially (docs/dbus-api.md, "Sensor ids").
 */
#pragma once

#include <stddef.h>

#include "util/diag.h"

#define SENSOR_ID_MAX 64 /* the upper bound of an X.520 commonName */

/* 0 if the len bytes at id are a valid sensor_id (len counts every byte: an
 * embedded NUL is refused); -EINVAL naming what is wrong otherwise. */
int sensor_id_check(const char *id, size_t len, Diag *d);

/* The same for a NUL-terminated string (NULL is refused). */
int sensor_id_check_string(const char *id, Diag *d);
