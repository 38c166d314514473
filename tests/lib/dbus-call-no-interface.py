#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A D-Bus method call that names no interface, which busctl and dbus-send
cannot send (the header field INTERFACE is optional in the D-Bus
specification), for tests/integration/test-dbus-api.sh.

    dbus-call-no-interface.py SOCKET DESTINATION PATH MEMBER

Connects to the bus at the unix socket SOCKET (EXTERNAL auth as the current
uid), says Hello, calls PATH MEMBER() at DESTINATION without an interface and
prints the answer: "return" or "error NAME: MESSAGE". Exit 0 once an answer
came, 1 on anything else. Bounded: 10 s for the whole exchange, 1 MiB read.
"""
import os
import socket
import struct
import sys

READ_MAX = 1 << 20


def pad(n, a):
    return (a - n % a) % a


def call(serial, fields):
    """A little-endian method call with no body; fields: (code, signature, str)."""
    arr = b""
    for code, sig, val in fields:
        arr += b"\0" * pad(len(arr), 8)  # the array starts at offset 16
        arr += bytes([code, len(sig)]) + sig.encode() + b"\0"
        arr += b"\0" * pad(len(arr), 4)
        v = val.encode()
        arr += struct.pack("<I", len(v)) + v + b"\0"
    msg = b"l\x01\x00\x01" + struct.pack("<III", 0, serial, len(arr)) + arr
    return msg + b"\0" * pad(len(msg), 8)


def parse(buf):
    """(message, rest) or (None, buf): the message as (type, fields, body)."""
    if len(buf) < 16:
        return None, buf
    if buf[0:1] != b"l":
        raise ValueError("a big-endian answer; not handled")
    body_len, _, fields_len = struct.unpack_from("<III", buf, 4)
    start = 16
    end = start + fields_len
    total = end + pad(end, 8) + body_len
    if len(buf) < total:
        return None, buf
    fields, off = {}, start
    while off < end:
        off += pad(off, 8)
        code, slen = buf[off], buf[off + 1]
        sig = buf[off + 2 : off + 2 + slen].decode()
        off += 3 + slen
        if sig in ("s", "o", "g"):
            if sig == "g":
                n = buf[off]
                fields[code] = buf[off + 1 : off + 1 + n].decode()
                off += 2 + n
            else:
                off += pad(off, 4)
                (n,) = struct.unpack_from("<I", buf, off)
                fields[code] = buf[off + 4 : off + 4 + n].decode()
                off += 5 + n
        elif sig == "u":
            off += pad(off, 4)
            (fields[code],) = struct.unpack_from("<I", buf, off)
            off += 4
        else:
            raise ValueError("header field of type %s" % sig)
    body = buf[end + pad(end, 8) : total]
    return (buf[1], fields, body), buf[total:]


def main():
    sock_path, dest, path, member = sys.argv[1:5]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\n")
    line = s.recv(4096)
    if not line.startswith(b"OK "):
        sys.exit("authentication refused: %r" % line)
    s.sendall(b"BEGIN\r\n")
    s.sendall(call(1, [(1, "o", "/org/freedesktop/DBus"), (2, "s", "org.freedesktop.DBus"),
                       (3, "s", "Hello"), (6, "s", "org.freedesktop.DBus")]))
    s.sendall(call(2, [(1, "o", path), (3, "s", member), (6, "s", dest)]))
    buf, seen = b"", 0
    while True:
        msg, buf = parse(buf)
        if msg is None:
            chunk = s.recv(65536)
            seen += len(chunk)
            if not chunk or seen > READ_MAX:
                sys.exit("no answer to the call")
            buf += chunk
            continue
        mtype, fields, body = msg
        if fields.get(5) != 2:  # REPLY_SERIAL: not the answer to our call
            continue
        if mtype == 2:
            print("return")
        elif mtype == 3:
            text = ""
            if fields.get(8, "").startswith("s") and len(body) >= 4:
                (n,) = struct.unpack_from("<I", body, 0)
                text = body[4 : 4 + n].decode(errors="replace")
            print("error %s: %s" % (fields.get(4), text))
        else:
            sys.exit("unexpected message type %d" % mtype)
        return 0


if __name__ == "__main__":
    sys.exit(main())
