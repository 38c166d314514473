#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Lists configuration keys ("group.key", one a line, sorted) from one source,
for tests/integration/test-config-reference.sh:

  config-keys.py loader lib/config/config.c     the loader's key table
  config-keys.py man docs/man/fleetid.conf.5    ".TP" then ".B group.key"
  config-keys.py markdown docs/configuration.md the tables under "## Keys"
  config-keys.py conf etc/fleetid.conf          the installed example file

Exit status 0, or 1 with a message naming the file when it cannot be read the
way this script expects (so that a change of form fails loudly instead of
yielding an empty list)."""
import re
import sys

KEY = r"[a-z][a-z0-9_]*"


def die(msg):
    print(f"config-keys.py: {msg}", file=sys.stderr)
    sys.exit(1)


def loader(text, path):
    # The table: const KeySpec config_key_specs[_K_MAX] = { [K_X] = STR("g", "k", ...), ... };
    m = re.search(r"KeySpec\s+config_key_specs\s*\[[^\]]*\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if not m:
        die(f"{path}: no 'KeySpec config_key_specs[] = {{ ... }};' table found")
    table = m.group(1)
    designators = re.findall(r"\[\s*(K_[A-Z0-9_]+)\s*\]\s*=", table)
    entries = re.findall(r"\[\s*K_[A-Z0-9_]+\s*\]\s*=\s*[A-Z_]+\(\s*\"(%s)\"\s*,\s*\"(%s)\"" % (KEY, KEY), table)
    if not designators or len(entries) != len(designators):
        die(f"{path}: {len(designators)} entries in config_key_specs but {len(entries)} of the form "
            "[K_X] = MACRO(\"group\", \"key\", ...); update tests/lib/config-keys.py")
    return {f"{g}.{k}" for g, k in entries}


def man(text, path):
    keys = set()
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == ".TP":
            m = re.match(r"\.B\s+(%s)\.(%s)\s*$" % (KEY, KEY), lines[i + 1])
            if m:
                keys.add(f"{m.group(1)}.{m.group(2)}")
    if not keys:
        die(f"{path}: no entries '.TP' + '.B group.key' found")
    return keys


def markdown(text, path):
    keys, group, in_keys = set(), None, False
    for line in text.splitlines():
        if line.startswith("## "):
            in_keys = line.strip() == "## Keys"
            group = None
            continue
        if not in_keys:
            continue
        m = re.match(r"###\s+`(%s)(?:\.(%s))?`" % (KEY, KEY), line)
        if m:
            group = m.group(1)
            if m.group(2):  # a section about one key: ### `group.key`
                keys.add(f"{m.group(1)}.{m.group(2)}")
            continue
        m = re.match(r"\|\s*`(%s)`\s*\|" % KEY, line)
        if m:
            if not group:
                die(f"{path}: table row for `{m.group(1)}` under '## Keys' before any '### `group`' heading")
            keys.add(f"{group}.{m.group(1)}")
    if not keys:
        die(f"{path}: no key tables found under '## Keys'")
    return keys


def conf(text, path):
    keys, group = set(), None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = re.match(r"(%s)\s*[:=]\s*\{" % KEY, line)
        if m:
            group = m.group(1)
            continue
        if line.startswith("}"):
            group = None
            continue
        m = re.match(r"(%s)\s*=" % KEY, line)
        if m and group:
            keys.add(f"{group}.{m.group(1)}")
    if not keys:
        die(f"{path}: no settings found")
    return keys


def main():
    kinds = {"loader": loader, "man": man, "markdown": markdown, "conf": conf}
    if len(sys.argv) != 3 or sys.argv[1] not in kinds:
        die("usage: config-keys.py loader|man|markdown|conf FILE")
    try:
        with open(sys.argv[2], encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        die(f"{sys.argv[2]}: {e.strerror}")
    for key in sorted(kinds[sys.argv[1]](text, sys.argv[2])):
        print(key)


if __name__ == "__main__":
    main()
