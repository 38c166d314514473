#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""loop-probe.py: how fast fleetidd's event loop answers its probe socket.

Benchmark tooling, never installed; /usr/bin/python3 standard library only.

  loop-probe.py SOCKET --window SECONDS --interval MS --deadline SECONDS

Opens one connection to SOCKET (fleetidd's runtime directory's "ping")
every --interval milliseconds for --window seconds, without waiting for the
answers (a stuck loop holds every probe sent meanwhile), and then waits for
the outstanding answers until --deadline seconds after the first probe.
Prints one line per probe: "<sent_ms> <latency_ms|unanswered> <answer>",
the time from connect() to the whole "pong ..." line.
"""

import argparse
import selectors
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--interval", type=float, default=50.0)
    ap.add_argument("--deadline", type=float, default=30.0)
    a = ap.parse_args()

    sel = selectors.DefaultSelector()
    start = time.monotonic()
    next_probe = start
    probes = []  # [sent, latency or None, answer]
    pending = {}
    while True:
        now = time.monotonic()
        if now - start >= a.deadline or (now - start >= a.window and not pending):
            break
        if now - start < a.window and now >= next_probe:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            rec = [now - start, None, b""]
            probes.append(rec)
            try:
                s.connect(a.socket)
            except BlockingIOError:
                rec[2] = b"(backlog full)"
                s.close()
            else:
                sel.register(s, selectors.EVENT_READ, (rec, now))
                pending[s] = rec
            next_probe += a.interval / 1000.0
        timeout = max(0.0, min(next_probe - time.monotonic(), 0.05))
        for key, _ in sel.select(timeout):
            rec, sent = key.data
            s = key.fileobj
            chunk = s.recv(256)
            if chunk and len(rec[2]) + len(chunk) <= 256:
                rec[2] += chunk
                if not rec[2].endswith(b"\n"):
                    continue
            if rec[2].endswith(b"\n"):
                rec[1] = time.monotonic() - sent
            sel.unregister(s)
            s.close()
            del pending[s]
    for s in list(pending):
        s.close()
    for sent, latency, answer in probes:
        lat = "%.3f" % (latency * 1000) if latency is not None else "unanswered"
        print("%.1f %s %s" % (sent * 1000, lat, answer.decode("ascii", "replace").strip() or "-"))


if __name__ == "__main__":
    main()
