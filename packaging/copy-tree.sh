# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# packaging/copy-tree.sh, sourced by build-deb.sh and build-rpm.sh.
# copy_source_tree SRCDIR DESTDIR: copy the working tree of SRCDIR (uncommitted
# edits included) to DESTDIR, without .git and without what .gitignore
# excludes, such as the build directories.

copy_source_tree() {
    local src=$1 dest=$2
    mkdir -p "$dest"
    if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$src" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
            [ -e "$f" ] && printf '%s\0' "$f"
        done) | tar -C "$src" --null -T - -cf - | tar -C "$dest" -xf -
    else
        tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$dest" -xf -
    fi
}
