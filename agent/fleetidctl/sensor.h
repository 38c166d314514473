/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensor.h: fleetidctl sensor: the sensor broker of the running fleetidd, over
 * org.fleetid.Agent1 on the system bus (docs/dbus-api.md):
 *
 *   sensor request --id ID --csr FILE [--evidence FILE] --out CHAIN
 *                       RequestSensorCertificate, waits for the job, writes the
 *                       issued chain (PEM, the sensor's certificate first)
 *   sensor list         ListSensors
 *   sensor forget ID    ForgetSensor
 *
 * Exit status: 0 done; 1 a usage error or the request failed (the error's
 * name and message on stderr); 2 the wait ended (--timeout) before the job.
 */
#pragma once

#include <stdbool.h>

/* argv[0] is "sensor". json: print JSON (list). timeout_sec: request waits at
 * most this long, 0 = as long as the job lives. */
int verb_sensor(int argc, char *argv[], bool json, unsigned timeout_sec);
