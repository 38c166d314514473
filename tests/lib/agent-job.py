#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A python3-dbus client of fleetidd's jobs (org.fleetid.Agent1), for
tests/integration/test-dbus-jobs.sh.

    agent-job.py ADDRESS renew [--timeout S] [--disconnect]
        Subscribes to JobNew/JobRemoved, calls Renew(), prints "job PATH",
        waits (at most S seconds, default 60) for the JobRemoved of that job,
        prints "removed RESULT", then GetResult(): "result N" and the DER of
        each certificate in hex, one a line, or "error NAME: MESSAGE".
        --disconnect: exits right after the reply to Renew() (a client that
        goes away mid-job). Exit 0 when done as described, 1 on a timeout or
        an error of Renew() (printed as "error NAME: MESSAGE").
    agent-job.py ADDRESS monitor [--timeout S]
        Prints "ready" once subscribed, then one line per JobNew
        ("JobNew ID PATH KIND") and JobRemoved ("JobRemoved ID PATH KIND
        RESULT"), flushed, until killed or S seconds (default 600) pass.
"""
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

NAME = "org.fleetid.Agent1"
PATH = "/org/fleetid/Agent1"
JOB = "org.fleetid.Agent1.Job"


def out(*words):
    print(*words, flush=True)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    address, verb, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    timeout = 600 if verb == "monitor" else 60
    disconnect = False
    while args:
        a = args.pop(0)
        if a == "--timeout" and args:
            timeout = float(args.pop(0))
        elif a == "--disconnect":
            disconnect = True
        else:
            sys.exit("unknown argument %r" % a)
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    loop = GLib.MainLoop()
    removed = {}
    state = {"timed_out": False}

    def on_new(jid, path, kind):
        if verb == "monitor":
            out("JobNew", int(jid), str(path), str(kind))

    def on_removed(jid, path, kind, result):
        if verb == "monitor":
            out("JobRemoved", int(jid), str(path), str(kind), str(result))
        removed[str(path)] = str(result)
        if verb == "renew" and want.get("path") == str(path):
            loop.quit()

    def on_timeout():
        state["timed_out"] = True
        loop.quit()
        return False

    want = {}
    # Subscribed before the call: the JobRemoved of a short job cannot be missed.
    bus.add_signal_receiver(on_new, "JobNew", NAME, None, PATH)
    bus.add_signal_receiver(on_removed, "JobRemoved", NAME, None, PATH)
    GLib.timeout_add(int(timeout * 1000), on_timeout)
    if verb == "monitor":
        # The bus driver answers in order: once GetId is answered, the AddMatch calls were processed.
        bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus").GetId(
            dbus_interface="org.freedesktop.DBus")
        out("ready")
        loop.run()
        return 0
    if verb != "renew":
        sys.exit("unknown verb %r" % verb)
    agent = bus.get_object(NAME, PATH, introspect=False)
    try:
        path = str(agent.Renew(dbus_interface=NAME, timeout=30))
    except dbus.exceptions.DBusException as e:
        out("error %s: %s" % (e.get_dbus_name(), e.get_dbus_message()))
        return 1
    out("job", path)
    if disconnect:
        bus.close()
        return 0
    want["path"] = path
    if path not in removed:
        loop.run()
    if path not in removed:
        out("timeout: no JobRemoved for %s in %gs" % (path, timeout))
        return 1
    out("removed", removed[path])
    job = bus.get_object(NAME, path, introspect=False)
    try:
        certs = job.GetResult(dbus_interface=JOB, timeout=30)
    except dbus.exceptions.DBusException as e:
        out("error %s: %s" % (e.get_dbus_name(), e.get_dbus_message()))
        return 0
    out("result", len(certs))
    for c in certs:
        out(bytes(c).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
