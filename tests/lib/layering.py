#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""layering.py SRCDIR: lib/'s modules depend on lower layers only.

Each lib/<module>/ may include headers of the modules in lower layers (and its
own), never of its own layer or above: no upward and no circular dependency.
The layers, lowest first, are those of docs/architecture.md. A module missing
from the table, or an include that breaks the order, is named with its file and
line. Also: nothing in lib/ includes sd-bus or sd-event (lib/ holds no event
loop or bus code). Exit 0 if all holds, 1 otherwise.
"""
import pathlib
import re
import sys

LAYERS = [
    ["util"],
    ["crypto"],
    ["config"],
    ["tpm", "store", "est", "monitor", "access"],
    ["identity"],
    ["exchange"],
    ["enroll", "renew", "broker"],
    ["reset"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]')


def main() -> int:
    lib = pathlib.Path(sys.argv[1]) / "lib"
    problems = []
    modules = sorted(p.name for p in lib.iterdir() if p.is_dir())
    for m in modules:
        if m not in RANK:
            problems.append(f"lib/{m}/ is in no layer of tests/lib/layering.py (and docs/architecture.md)")
    for path in sorted(lib.glob("*/*.[ch]")):
        m = path.parent.name
        for n, line in enumerate(path.read_text().splitlines(), 1):
            hit = INCLUDE.match(line)
            if not hit:
                continue
            header = hit.group(1)
            where = f"{path.relative_to(lib.parent)}:{n}"
            if header.startswith("systemd/sd-bus") or header.startswith("systemd/sd-event"):
                problems.append(f"{where}: includes {header}; lib/ has no bus or event-loop code")
                continue
            dep = header.split("/", 1)[0] if "/" in header else None
            if dep is None or dep not in RANK or dep == m or m not in RANK:
                continue
            if RANK[dep] >= RANK[m]:
                kind = "a same-layer" if RANK[dep] == RANK[m] else "an upward"
                problems.append(f"{where}: {m} includes {header}: {kind} dependency "
                                f"({m} is layer {RANK[m]}, {dep} layer {RANK[dep]})")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"layering: {len(modules)} modules of lib/ depend on lower layers only")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
