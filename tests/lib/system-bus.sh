# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# tests/lib/system-bus.sh: the configuration of a private dbus-daemon that
# behaves like the system bus, for the tests of the bus policy and the D-Bus API.
#
#   system_bus_config ADDRESS INCLUDEDIR   prints it: type system, EXTERNAL
#       auth, listening on ADDRESS, the default policy of dbus's system.conf
#       (nobody may own a name, method calls denied unless a policy allows
#       them, root may monitor), and <includedir>INCLUDEDIR</includedir>.
#   system_bus_start DIR   starts such a bus on DIR/bus.sock with fleetid's
#       policy (see the function); sets SYSTEM_BUS_ADDR, SYSTEM_BUS_PID and
#       DBUS_SYSTEM_BUS_ADDRESS.

system_bus_config() {
    cat <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>$1</listen>
  <!-- the default policy of dbus's system.conf -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>$2</includedir>
</busconfig>
CONF
}

# system_bus_start DIR: a private system-like dbus-daemon listening on
# DIR/bus.sock, with the shipped policy dbus/org.fleetid.Agent1.conf and a
# test-only rule letting root own the name (fleetidd runs as root in the
# tests, not as the user fleetid); returns once the socket is there. Sets
# SYSTEM_BUS_ADDR, SYSTEM_BUS_PID and exports DBUS_SYSTEM_BUS_ADDRESS.
# Needs tpm-env.sh (lab_on_exit, lab_wait_until).
system_bus_start() {
    local dir=$1 src
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    mkdir -p "$dir/system.d"
    chmod 0755 "$dir"
    cp "$src/dbus/org.fleetid.Agent1.conf" "$dir/system.d/"
    cat >"$dir/system.d/zz-test-root-owner.conf" <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- test only: fleetidd runs as root in the tests, not as the user fleetid -->
<busconfig>
  <policy user="root">
    <allow own="org.fleetid.Agent1"/>
  </policy>
</busconfig>
CONF
    SYSTEM_BUS_ADDR=unix:path=$dir/bus.sock
    system_bus_config "$SYSTEM_BUS_ADDR" "$dir/system.d" >"$dir/bus.conf"
    dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --nosyslog 2>"$dir/bus.log" &
    SYSTEM_BUS_PID=$!
    lab_on_exit "_lab_kill $SYSTEM_BUS_PID dbus-daemon"
    lab_wait_until 10 "dbus-daemon to create $dir/bus.sock" test -S "$dir/bus.sock"
    export DBUS_SYSTEM_BUS_ADDRESS=$SYSTEM_BUS_ADDR
}
