#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The access matrix of org.fleetid.Agent1, for test-dbus-matrix.sh: every
method of the interfaces (taken from the introspection XML), and the
Properties methods on each, called by busctl, by gdbus and by python3-dbus,
as a uid that holds the role the member needs and as one that does not.

    dbus-matrix.py check XML...
        Fails (exit 1, naming it) if a method of an interface in the XML
        files, or Properties Get/GetAll/Set of an interface with properties,
        has no row in ROWS, or a row names a member the XML does not have.
    dbus-matrix.py run ADDRESS XML...
        As root: the check, then every row (see ROWS) with the three clients,
        the callers run as their test users (setpriv). Prints one line per
        call and, at the end, "denied UID N" per uid (the refusals it got,
        for the log check) and "job PATH". Exit 1 at the first call whose
        outcome is not the row's.
    dbus-matrix.py client ADDRESS
        As a test user: reads a JSON list of calls on stdin, makes them with
        python3-dbus on one connection, prints a JSON list of outcomes.

An allowed call must get the row's outcome: "ok" (an answer), or a named
error that comes from the member's handler, after the access check (e.g.
InvalidArgs for arguments chosen to fail harmlessly: an unknown option to
FactoryReset, a sensor id with "/"). A denied call must get
org.freedesktop.DBus.Error.AccessDenied. busctl prints only an error's
message, so its error name is read from sd-bus's debug log
(SYSTEMD_LOG_LEVEL=debug: "Got message type=error ... error-name=...").
"""
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

AGENT = "org.fleetid.Agent1"
JOB = "org.fleetid.Agent1.Job"
PROPS = "org.freedesktop.DBus.Properties"
OBJ = "/org/fleetid/Agent1"
DENIED = "org.freedesktop.DBus.Error.AccessDenied"
E = "org.freedesktop.DBus.Error."
F = "org.fleetid.Agent1.Error."

# A nonce of 15 bytes: SignChallenge refuses it (InvalidArgs) after the
# access check, before the TPM is touched.
SHORT_NONCE = bytes(range(15))


class Row:
    """One call: interface.member(args) on an object ("agent" or "job"),
    signature sig; allow: a user holding the role; deny: one that does not
    (None only for a member open to everyone: then allow is a user with no
    grant); expect: the allowed caller's outcome, "ok" or an error name."""

    def __init__(self, obj, iface, member, sig, args, allow, deny, expect, role):
        self.obj, self.iface, self.member, self.sig, self.args = obj, iface, member, sig, args
        self.allow, self.deny, self.expect, self.role = allow, deny, expect, role

    def key(self):
        if self.iface == PROPS:
            return (self.args[0], PROPS + "." + self.member)
        return (self.iface, self.member)

    def name(self):
        if self.iface == PROPS:
            return "%s %s.%s" % (self.obj, PROPS.rsplit(".", 1)[1], self.member)
        return "%s %s" % (self.obj, self.member)


# Users (test-dbus-matrix.sh makes them and grants the roles):
#   reader, attest, birth (attest-birth), broker (sensor-broker), admin, nogrant.
# The denied caller holds other roles where there are any, so that a refusal
# shows the roles do not leak into each other.
ROWS = [
    Row("agent", PROPS, "Get", "ss", [AGENT, "State"], "reader", "nogrant", "ok", "reader"),
    Row("agent", PROPS, "GetAll", "s", [AGENT], "reader", "nogrant", "ok", "reader"),
    # No property is writable: PropertyReadOnly, for whoever may read them.
    Row("agent", PROPS, "Set", "ssv", [AGENT, "LastError", ("s", "x")], "reader", "nogrant",
        E + "PropertyReadOnly", "reader"),
    Row("agent", AGENT, "GetCertificateChain", "", [], "reader", "nogrant", "ok", "reader"),
    Row("agent", AGENT, "GetTrustBundle", "", [], "nogrant", None, "ok", "anyone"),
    Row("agent", AGENT, "SignChallenge", "aysa{sv}", [SHORT_NONCE, "matrix.v1", {}], "attest", "reader",
        E + "InvalidArgs", "attest"),
    Row("agent", AGENT, "SignChallenge", "aysa{sv}", [SHORT_NONCE, "matrix.v1", {"identity": ("s", "birth")}],
        "birth", "attest", E + "InvalidArgs", "attest-birth"),
    # A real renewal against the lab server: its job serves the Job rows.
    Row("agent", AGENT, "Renew", "", [], "admin", "broker", "ok", "admin"),
    # An unknown option: InvalidArgs, nothing changed.
    Row("agent", AGENT, "FactoryReset", "a{sv}", [{"matrix-unknown": ("b", True)}], "admin", "broker",
        E + "InvalidArgs", "admin"),
    Row("agent", AGENT, "GetSensorChallenge", "s", ["matrix-01"], "broker", "attest", "ok", "sensor-broker"),
    # A sensor id with "/": InvalidArgs, before the CSR is looked at.
    Row("agent", AGENT, "RequestSensorCertificate", "sayaya{sv}", ["../matrix", b"\x30", b"", {}], "broker",
        "attest", E + "InvalidArgs", "sensor-broker"),
    Row("agent", AGENT, "ListSensors", "", [], "broker", "reader", "ok", "sensor-broker"),
    Row("agent", AGENT, "ForgetSensor", "s", ["matrix-never-seen"], "broker", "reader", F + "NoSuchSensor",
        "sensor-broker"),
    # The job of admin's Renew: its owner (admin) and no one else but root.
    Row("job", PROPS, "Get", "ss", [JOB, "State"], "admin", "reader", "ok", "job owner"),
    Row("job", PROPS, "GetAll", "s", [JOB], "admin", "reader", "ok", "job owner"),
    Row("job", PROPS, "Set", "ssv", [JOB, "State", ("s", "done")], "admin", "reader", E + "PropertyReadOnly",
        "job owner"),
    Row("job", JOB, "GetResult", "", [], "admin", "reader", "ok", "job owner"),
    # Last: the job is done by then (the test waits for it), so Cancel has
    # nothing to stop and answers.
    Row("job", JOB, "Cancel", "", [], "admin", "reader", "ok", "job owner"),
]


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def xml_members(paths):
    """{(iface, member)} the rows must cover."""
    want = set()
    for p in paths:
        for iface in ET.parse(p).getroot().iter("interface"):
            name = iface.get("name")
            for m in iface.iter("method"):
                want.add((name, m.get("name")))
            if iface.find("property") is not None:
                for m in ("Get", "GetAll", "Set"):
                    want.add((name, PROPS + "." + m))
    return want


def check(paths):
    want = xml_members(paths)
    have = {r.key() for r in ROWS}
    missing, stale = sorted(want - have), sorted(have - want)
    if missing:
        fail("no row in tests/integration/dbus-matrix.py for: " + ", ".join("%s.%s" % k for k in missing))
    if stale:
        fail("rows for members the XML does not have: " + ", ".join("%s.%s" % k for k in stale))
    for r in ROWS:
        if r.deny is None and r.role != "anyone":
            fail("%s: no denied caller, but it needs %s" % (r.name(), r.role))
    return want


# ---- the three clients ----

def busctl_args(sig, args):
    out = [sig] if sig else []
    for t, a in zip(split_sig(sig), args):
        out += busctl_value(t, a)
    return out


def busctl_value(t, a):
    if t == "s":
        return [a]
    if t == "ay":
        return [str(len(a))] + [str(b) for b in a]
    if t == "v":
        return [a[0]] + busctl_value(a[0], a[1])
    if t == "a{sv}":
        out = [str(len(a))]
        for k, v in a.items():
            out += [k] + busctl_value("v", v)
        return out
    if t == "b":
        return ["true" if a else "false"]
    raise ValueError(t)


def gvariant(t, a):
    if t == "s":
        return "'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if t == "ay":
        return "@ay [" + ", ".join("byte %d" % b for b in a) + "]"
    if t == "b":
        return "true" if a else "false"
    if t == "v":
        return "<%s>" % gvariant(a[0], a[1])
    if t == "a{sv}":
        return "@a{sv} {" + ", ".join("%s: %s" % (gvariant("s", k), gvariant("v", v)) for k, v in a.items()) + "}"
    raise ValueError(t)


def split_sig(sig):
    """The complete types of a signature (only those the rows use)."""
    out, i = [], 0
    while i < len(sig):
        for t in ("a{sv}", "ay", "s", "v", "b"):
            if sig.startswith(t, i):
                out.append(t)
                i += len(t)
                break
        else:
            raise ValueError(sig)
    return out


def as_user(user, cmd):
    if user == "root":
        return cmd
    return ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"] + cmd


def path_of(row, job):
    return OBJ if row.obj == "agent" else job


def run_busctl(address, user, row, job):
    cmd = ["busctl", "--address=" + address, "--timeout=30", "call", AGENT, path_of(row, job), row.iface,
           row.member] + busctl_args(row.sig, row.args)
    return run_cli(user, cmd, r"Got message type=error .* error-name=(\S+) error-message=(.*)",
                   dict(os.environ, SYSTEMD_LOG_LEVEL="debug"))


def run_gdbus(address, user, row, job):
    cmd = ["gdbus", "call", "--address", address, "--timeout", "30", "-d", AGENT, "-o", path_of(row, job),
           "-m", row.iface + "." + row.member, "--"] + [gvariant(t, a) for t, a in zip(split_sig(row.sig), row.args)]
    return run_cli(user, cmd, r"GDBus\.Error:([A-Za-z0-9_.]+): (.*)", None)


def run_cli(user, cmd, error_re, env):
    """("ok", stdout), or (error name, message) as error_re finds them in stderr."""
    p = subprocess.run(as_user(user, cmd), capture_output=True, text=True, timeout=60, env=env)
    if p.returncode == 0:
        return "ok", p.stdout.strip()
    m = re.search(error_re, p.stderr)
    if not m:
        return "no-error-name", p.stderr.strip()[-300:]
    return m.group(1), m.group(2)


def python_batch(address, user, calls):
    """calls: [(row, job)]: one python3-dbus process as user, one connection."""
    spec = [{"path": path_of(r, j), "iface": r.iface, "member": r.member, "sig": r.sig,
             "args": [encode_json(t, a) for t, a in zip(split_sig(r.sig), r.args)]} for r, j in calls]
    p = subprocess.run(as_user(user, [sys.executable, os.path.abspath(__file__), "client", address]),
                       input=json.dumps(spec), capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        fail("the python3-dbus client as %s failed: %s" % (user, p.stderr.strip()[-500:]))
    return [tuple(o) for o in json.loads(p.stdout)]


def encode_json(t, a):
    if t == "ay":
        return list(a)
    if t == "a{sv}":
        return {k: list(v) for k, v in a.items()}
    if t == "v":
        return list(a)
    return a


def client(address):
    import dbus

    def value(t, a):
        if t == "ay":
            return dbus.ByteArray(bytes(a))
        if t == "s":
            return dbus.String(a)
        if t == "b":
            return dbus.Boolean(a)
        if t == "v":
            return value(a[0], a[1])
        if t == "a{sv}":
            return dbus.Dictionary({k: value(v[0], v[1]) for k, v in a.items()}, signature="sv")
        raise ValueError(t)

    bus = dbus.bus.BusConnection(address)
    out = []
    for c in json.load(sys.stdin):
        obj = bus.get_object(AGENT, c["path"], introspect=False)
        args = [value(t, a) for t, a in zip(split_sig(c["sig"]), c["args"])]
        try:
            r = obj.get_dbus_method(c["member"], c["iface"])(*args, signature=c["sig"], timeout=30)
            out.append(("ok", repr(r)[:200]))
        except dbus.exceptions.DBusException as e:
            out.append((e.get_dbus_name(), e.get_dbus_message()))
    print(json.dumps(out))
    return 0


# ---- the run ----

def outcome_ok(row, allowed, outcome):
    name, text = outcome
    if not allowed:
        return name == DENIED
    return name == row.expect


def run(address, paths):
    want = check(paths)
    print("%d rows cover the %d members of %s" % (len(ROWS), len(want), ", ".join(os.path.basename(p) for p in paths)),
          flush=True)
    users = {u: int(subprocess.check_output(["id", "-u", "fleetid-test-" + u])) for u in
             ("reader", "attest", "birth", "broker", "admin", "nogrant")}
    denied = {}
    calls = 0

    def user_of(short):
        return "fleetid-test-" + short

    def judge(row, allowed, client_name, user, outcome):
        nonlocal calls
        calls += 1
        who = "%s (%s)" % (user, "allowed" if allowed else "denied")
        if not outcome_ok(row, allowed, outcome):
            fail("%s as %s with %s: %s: %s, expected %s" % (row.name(), who, client_name, outcome[0], outcome[1][:300],
                                                            row.expect if allowed else DENIED))
        if not allowed:
            uid = users[user.replace("fleetid-test-", "")]
            denied[uid] = denied.get(uid, 0) + 1
            if "uid %d" % uid not in outcome[1]:
                fail("%s as %s with %s: the refusal does not name uid %d: %s" % (row.name(), who, client_name,
                                                                                  uid, outcome[1]))
        print("   %-34s %-8s %-22s %s" % (row.name(), client_name, who, outcome[0]), flush=True)

    def phase(rows, job):
        for row in rows:
            for allowed, short in ((True, row.allow), (False, row.deny)):
                if short is None:
                    continue
                user = user_of(short)
                judge(row, allowed, "busctl", user, run_busctl(address, user, row, job))
                judge(row, allowed, "gdbus", user, run_gdbus(address, user, row, job))
        # python3-dbus: one process per user, all its calls in one batch.
        per_user = {}
        for row in rows:
            for allowed, short in ((True, row.allow), (False, row.deny)):
                if short is not None:
                    per_user.setdefault(user_of(short), []).append((row, allowed))
        for user, items in per_user.items():
            outcomes = python_batch(address, user, [(r, job) for r, _ in items])
            for (row, allowed), outcome in zip(items, outcomes):
                judge(row, allowed, "python3", user, outcome)

    agent_rows = [r for r in ROWS if r.obj == "agent"]
    job_rows = [r for r in ROWS if r.obj == "job"]
    # The job the Job rows use: admin's Renew (busctl answers 'o "PATH"').
    renew = next(r for r in agent_rows if r.member == "Renew")
    name, text = run_busctl(address, user_of(renew.allow), renew, None)
    m = re.fullmatch(r'o "(/org/fleetid/Agent1/job/\d+)"', text)
    if name != "ok" or not m:
        fail("Renew as %s: %s %s" % (user_of(renew.allow), name, text))
    job = m.group(1)
    print("   job %s (admin's Renew)" % job, flush=True)
    phase(agent_rows, None)
    # Wait for the job to end, so that GetResult answers the chain.
    deadline = time.monotonic() + 120
    while True:
        p = subprocess.run(["busctl", "--address=" + address, "get-property", AGENT, job, JOB, "State"],
                           capture_output=True, text=True, timeout=60)
        if p.stdout.strip() == 's "done"':
            break
        if p.stdout.strip() in ('s "failed"', 's "canceled"') or time.monotonic() > deadline:
            fail("the job %s did not end done: %s %s" % (job, p.stdout.strip(), p.stderr.strip()))
        time.sleep(0.2)
    phase(job_rows, job)
    print("%d calls as expected" % calls)
    for uid, n in sorted(denied.items()):
        print("denied %d %d" % (uid, n))
    print("job " + job)
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        want = check(sys.argv[2:])
        print("%d rows cover the %d members" % (len(ROWS), len(want)))
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        return run(sys.argv[2], sys.argv[3:])
    if len(sys.argv) == 3 and sys.argv[1] == "client":
        return client(sys.argv[2])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
