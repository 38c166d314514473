#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Compares one interface of two D-Bus introspection documents (what a
daemon serves, as `busctl introspect --xml-interface` prints it, and the
file in the repository), member by member, arguments and annotations
included, order aside.

    introspect-compare.py LIVE.xml REPO.xml INTERFACE

Exit 0 if they are equal; else 1, each difference on stderr.
"""
import sys
import xml.etree.ElementTree as ET


def canon(path, name):
    for i in ET.parse(path).getroot().iter("interface"):
        if i.get("name") != name:
            continue
        out = []
        for c in i:
            out.append((c.tag, c.get("name"), c.get("type"), c.get("access"),
                        tuple((a.tag, a.get("name"), a.get("type"), a.get("direction"), a.get("value"))
                              for a in c)))
        return sorted(out)
    sys.exit("no interface %s in %s" % (name, path))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    live, repo = canon(sys.argv[1], sys.argv[3]), canon(sys.argv[2], sys.argv[3])
    if live == repo:
        return 0
    for x in sorted(set(live) ^ set(repo)):
        print(("live only: " if x in live else "repo only: ") + repr(x), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
