# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/test-users.sh: users that exist only for one test, in a private
# mount namespace, for the tests whose callers run as other uids
# (test-dbus-api, test-dbus-sign). Needs root, unshare, mount, setpriv.
#
#   test_users_namespace FIRST_ID SPEC...   outside the namespace
#       (TEST_USERS_DIR unset): copies /etc/passwd and /etc/group, adds each
#       SPEC at free ids from FIRST_ID — "NAME" a user with a group of its
#       own, "NAME:MEMBER,..." a group with those members — fails if the
#       system already has such a name, runs "$0" again in a private mount
#       namespace and exits with its status. Inside: binds the copies over
#       /etc/passwd and /etc/group and returns.
#   run_as USER CMD...   CMD as USER with USER's groups and no capabilities
#       (root: CMD as it is).

test_users_namespace() {
    local next_id=$1 spec name rc=0
    shift
    if [ -n "${TEST_USERS_DIR:-}" ]; then
        mount --bind "$TEST_USERS_DIR/passwd" /etc/passwd
        mount --bind "$TEST_USERS_DIR/group" /etc/group
        return 0
    fi
    TEST_USERS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fleetid-test-users.XXXXXX")
    # shellcheck disable=SC2064 # the directory is known now
    trap "rm -rf '$TEST_USERS_DIR'" EXIT
    cp /etc/passwd "$TEST_USERS_DIR/passwd"
    cp /etc/group "$TEST_USERS_DIR/group"
    for spec in "$@"; do
        name=${spec%%:*}
        if getent passwd "$name" >/dev/null || getent group "$name" >/dev/null; then
            echo "FAIL: the system has a user or group $name; this test makes its own" >&2
            exit 1
        fi
        while getent passwd "$next_id" >/dev/null || getent group "$next_id" >/dev/null; do
            next_id=$((next_id + 1))
        done
        if [ "$name" = "$spec" ]; then
            echo "$name:x:$next_id:$next_id:fleetid test user:/nonexistent:/usr/sbin/nologin" >>"$TEST_USERS_DIR/passwd"
            echo "$name:x:$next_id:" >>"$TEST_USERS_DIR/group"
        else
            echo "$name:x:$next_id:${spec#*:}" >>"$TEST_USERS_DIR/group"
        fi
        next_id=$((next_id + 1))
    done
    TEST_USERS_DIR=$TEST_USERS_DIR unshare --mount --propagation private bash "$0" || rc=$?
    exit "$rc"
}

run_as() {
    local user=$1
    shift
    if [ "$user" = root ]; then
        "$@"
    else
        setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"
    fi
}
