#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""SignChallenge's answer (signature, algorithm, chain) as files, for
tests/integration/test-dbus-sign.sh: PREFIX.sig (the signature bytes),
PREFIX.alg (the algorithm name), PREFIX.chain.pem (the chain, leaf first).

    sign-answer.py busctl FILE PREFIX     FILE: busctl --json=short's answer
    sign-answer.py gdbus FILE PREFIX      FILE: gdbus call's answer
    sign-answer.py call ADDRESS NONCE_HEX PURPOSE OPTIONS PREFIX
        the call itself, with python3-dbus, on the bus at ADDRESS; OPTIONS is
        a Python dict literal (may use dbus.Int32(...)), "" for none. Prints
        "ok ALG", or "error NAME: MESSAGE" and exits 1. Files it cannot
        write (another uid) are left out.
"""
import ast
import base64
import json
import sys


def write(prefix, sig, alg, chain):
    with open(prefix + ".sig", "wb") as f:
        f.write(bytes(sig))
    with open(prefix + ".alg", "w") as f:
        f.write(str(alg))
    with open(prefix + ".chain.pem", "w") as f:
        for der in chain:
            b = base64.b64encode(bytes(der)).decode()
            f.write("-----BEGIN CERTIFICATE-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) +
                    "\n-----END CERTIFICATE-----\n")


def call(addr, nonce, purpose, options, prefix):
    import dbus
    bus = dbus.bus.BusConnection(addr)
    agent = bus.get_object("org.fleetid.Agent1", "/org/fleetid/Agent1")
    opts = eval(options, {"dbus": dbus}) if options else {}  # the test's own literal
    try:
        sig, alg, chain = agent.SignChallenge(dbus.ByteArray(bytes.fromhex(nonce)), purpose,
                                              dbus.Dictionary(opts, signature="sv"),
                                              dbus_interface="org.fleetid.Agent1", timeout=60)
    except dbus.exceptions.DBusException as e:
        print("error %s: %s" % (e.get_dbus_name(), e.get_dbus_message()))
        return 1
    try:
        write(prefix, sig, alg, chain)
    except OSError:
        pass
    print("ok", alg)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "busctl":
        r = json.load(open(argv[2]))
        if r["type"] != "aysaay":
            sys.exit("busctl's answer is of type %s" % r["type"])
        write(argv[3], *r["data"])
        return 0
    if len(argv) == 4 and argv[1] == "gdbus":
        text = open(argv[2]).read().replace("byte ", "").replace("@ay ", "")
        write(argv[3], *ast.literal_eval(text))
        return 0
    if len(argv) == 7 and argv[1] == "call":
        return call(*argv[2:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
