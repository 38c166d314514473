/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manager-sensors.h: the sensor broker of fleetidd (docs/dbus-api.md, "The
 * sensor broker"): GetSensorChallenge, RequestSensorCertificate, ListSensors,
 * ForgetSensor and the SensorCertificateDue signal of org.fleetid.Agent1.
 *
 * A request is checked on the loop (lib/broker/sensor-request.h), becomes a
 * job, waits in a bounded queue (broker.max_pending) and is enrolled by the
 * one sensor worker (sensor-worker.h) over EST on the gateway's operational
 * identity. Issued certificates are recorded (lib/broker/sensor-record.h);
 * a request the CA deferred (202) is kept in the state directory
 * (lib/broker/sensor-pending.h) and asked again after its Retry-After, also
 * after a restart.
 */
#pragma once

#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct SensorBroker SensorBroker;

/* Loads the records and the deferred requests, the manufacturer CAs; arms the
 * SensorCertificateDue timer. Problems are logged; the broker then refuses
 * requests with a message saying why. Returns < 0 only when out of memory. */
int manager_sensors_start(Manager *m);
/* Kills the sensor worker; what is queued is dropped (deferred requests stay on disk). */
void manager_sensors_stop(Manager *m);
/* A factory reset: every sensor job ends canceled with `why`, the sensor
 * worker is stopped and the broker dropped (its records and deferred
 * requests are wiped with the rest); manager_sensors_start() makes it anew. */
void manager_sensors_reset(Manager *m, const char *why);
/* The gateway's own enrollment or renewal starts: the sensor worker ends after
 * the request in flight, and no sensor request starts until that is over. */
void manager_sensors_identity_busy(Manager *m);
/* That operation has ended: the queue goes on, with the identity now in force. */
void manager_sensors_kick(Manager *m);

/* The vtable's handlers (manager-bus.c). */
int method_get_sensor_challenge(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_request_sensor_certificate(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_list_sensors(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_forget_sensor(sd_bus_message *msg, void *userdata, sd_bus_error *error);
