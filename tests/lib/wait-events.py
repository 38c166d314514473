#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""wait-events.py: the event source of lab_wait_until (tests/lib/tpm-env.sh).

    wait-events.py --lifetime SECONDS [--pid PID]... PATH...

Watches each PATH (a directory, with its subdirectories three levels deep,
or a file) with inotify, and each PID with a pidfd. Prints "ready" once every
watch is in place, then "change" when something changed: a file written,
created, renamed, removed or chmod'ed below a PATH, a PATH created (its
nearest existing parent is watched until it exists) or removed, a PID exited.
Changes close together come out as one line, at most one line per 0.1 s, so
a caller re-checking its condition after each line costs no more than a
0.1 s poll however busy the directory is, and nothing while it is quiet.

Exits after --lifetime seconds, when its standard output is closed (the
caller is done) or when its parent is gone: it never outlives the wait it
serves. Test tooling only; standard library only (inotify through ctypes).
"""

import ctypes
import errno
import os
import select
import struct
import sys
import time

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

CONTENT = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
           | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_EXCL_UNLINK)
# A missing PATH: its parent is watched for the entry's creation only.
ENTRY = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_EXCL_UNLINK
MAX_DEPTH = 3
MAX_WATCHES = 512
MIN_GAP = 0.1
EVENT = struct.Struct("iIII")

libc = ctypes.CDLL(None, use_errno=True)
libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)


def fail(msg):
    sys.stderr.write("wait-events.py: %s\n" % msg)
    sys.exit(2)


class Watcher:
    def __init__(self, paths):
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            fail("inotify_init1: %s" % os.strerror(ctypes.get_errno()))
        self.roots = [os.path.abspath(p) for p in paths]
        self.wd = {}          # wd -> (path, depth), depth None: parent of a missing root
        for root in self.roots:
            self.arm(root)

    def add(self, path, mask):
        if len(self.wd) >= MAX_WATCHES:
            return -1
        return libc.inotify_add_watch(self.fd, os.fsencode(path), mask)

    def add_tree(self, path, depth):
        """Watch path (a directory or a file) and, for a directory, its
        subdirectories down to MAX_DEPTH."""
        wd = self.add(path, CONTENT)
        if wd < 0:
            return False
        self.wd[wd] = (path, depth)
        if depth < MAX_DEPTH and os.path.isdir(path):
            try:
                with os.scandir(path) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            self.add_tree(e.path, depth + 1)
            except OSError:
                pass
        return True

    def arm(self, root):
        """Watch root, or else its nearest existing parent for the way to it
        (unless a tree watch there already sees it come)."""
        if self.add_tree(root, 0):
            return
        parent = os.path.dirname(root)
        while parent != os.path.dirname(parent) and not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        if any(p == parent and d is not None for p, d in self.wd.values()):
            return
        wd = self.add(parent, ENTRY)
        if wd >= 0:
            self.wd[wd] = (parent, None)

    def read(self):
        """Consume pending events; True if any of them is a change."""
        changed = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return changed
            off = 0
            while off + EVENT.size <= len(buf):
                wd, mask, _, length = EVENT.unpack_from(buf, off)
                name = buf[off + EVENT.size:off + EVENT.size + length].rstrip(b"\0")
                off += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    changed = True
                    continue
                where = self.wd.get(wd)
                if where is None:
                    continue
                path, depth = where
                if mask & IN_IGNORED:
                    del self.wd[wd]
                    if path in self.roots and depth == 0:
                        self.arm(path)  # the root went away: wait for it again
                        changed = True
                    continue
                child = os.path.join(path, os.fsdecode(name)) if name else path
                if depth is None:
                    # The parent of a missing root: only the way to a root counts.
                    for root in self.roots:
                        if root == child or root.startswith(child + "/"):
                            self.arm(root)
                            changed = True
                    continue
                changed = True
                if (mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and depth < MAX_DEPTH):
                    self.add_tree(child, depth + 1)


def main():
    args = sys.argv[1:]
    lifetime, pids, paths = None, [], []
    while args:
        a = args.pop(0)
        if a == "--lifetime" and args:
            lifetime = float(args.pop(0))
        elif a == "--pid" and args:
            pids.append(int(args.pop(0)))
        elif a.startswith("--"):
            fail("unknown option %s" % a)
        else:
            paths.append(a)
    if lifetime is None or lifetime <= 0:
        fail("usage: wait-events.py --lifetime SECONDS [--pid PID]... PATH...")
    end = time.monotonic() + lifetime
    parent = os.getppid()

    watcher = Watcher(paths)
    poller = select.poll()
    poller.register(watcher.fd, select.POLLIN)
    pidfds = {}
    gone = False
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            gone = True
            continue
        except OSError as e:
            fail("pidfd_open(%d): %s" % (pid, e.strerror))
        pidfds[fd] = pid
        poller.register(fd, select.POLLIN)
    try:
        os.write(1, b"ready\n")
        if gone:
            os.write(1, b"change\n")
        last = time.monotonic()
        pending = False
        while True:
            now = time.monotonic()
            if now >= end or os.getppid() != parent:
                return 0
            # While a change waits for MIN_GAP to pass, wake at that time.
            timeout = min(end - now, 1.0)
            if pending:
                timeout = max(0.0, min(timeout, last + MIN_GAP - now))
            for fd, _ in poller.poll(int(timeout * 1000) + 1):
                if fd == watcher.fd:
                    pending |= watcher.read()
                elif fd in pidfds:
                    poller.unregister(fd)
                    os.close(fd)
                    del pidfds[fd]
                    pending = True
            now = time.monotonic()
            if pending and now - last >= MIN_GAP:
                os.write(1, b"change\n")
                last, pending = now, False
    except BrokenPipeError:
        return 0
    except OSError as e:
        if e.errno == errno.EPIPE:
            return 0
        raise


if __name__ == "__main__":
    sys.exit(main())
