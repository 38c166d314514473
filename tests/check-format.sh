#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tests/check-format.sh [-v]: check every tracked *.c / *.h file against
# .clang-format with "clang-format --dry-run --Werror" and name the files that
# differ. -v also prints clang-format's complaints. Nothing is rewritten; fix a
# file with "clang-format -i FILE".
# Needs clang-format 14 or later (Debian 12: apt-get install clang-format).
# Exit status: 0 all files formatted, 1 some are not, 2 cannot check.
set -euo pipefail

cd "$(dirname "$0")/.."

verbose=0
case "${1:-}" in
"") ;;
-v) verbose=1 ;;
*)
    echo "usage: $0 [-v]" >&2
    exit 2
    ;;
esac

clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null; then
    echo "check-format: $clang_format not found; apt-get install clang-format" >&2
    exit 2
fi
major=$("$clang_format" --version | sed -nE 's/.*version ([0-9]+)\..*/\1/p')
if [ -z "$major" ] || [ "$major" -lt 14 ]; then
    echo "check-format: $clang_format is version '${major:-unknown}', need 14 or later" >&2
    exit 2
fi
[ -f .clang-format ] || { echo "check-format: no .clang-format in $PWD" >&2; exit 2; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
    { echo "check-format: $PWD is not a git work tree; cannot list the tracked files" >&2; exit 2; }

bad=()
checked=0
while IFS= read -r -d '' f; do
    [ -f "$f" ] || continue # tracked but deleted in the work tree
    checked=$((checked + 1))
    if ! out=$("$clang_format" --style=file --dry-run --Werror "$f" 2>&1); then
        if ! grep -q -- '-Wclang-format-violations' <<<"$out"; then
            # Not a formatting difference: a broken .clang-format, an unreadable file...
            printf 'check-format: %s failed on %s:\n%s\n' "$clang_format" "$f" "$out" >&2
            exit 2
        fi
        bad+=("$f")
        [ "$verbose" = 0 ] || printf '%s\n' "$out"
    fi
done < <(git ls-files -z -- '*.c' '*.h')

if [ ${#bad[@]} -gt 0 ]; then
    echo "check-format: ${#bad[@]} of $checked files differ from .clang-format:"
    printf '  %s\n' "${bad[@]}"
    echo "check-format: see the changes with: clang-format FILE | diff -u FILE -"
    exit 1
fi
echo "check-format: all $checked files are formatted"
