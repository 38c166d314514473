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

# system_bus_start DIR: a private dbus-daemon configured as above in DIR
# (socket DIR/bus.sock), with the shipped policy dbus/org.fleetid.Agent1.conf
# and a test-only rule letting root own the name (fleetidd runs as root in the
# tests, not as the user fleetid). Exports DBUS_SYSTEM_BUS_ADDRESS and
# SYSTEM_BUS_PID; stopped at exit. Needs tests/lib/tpm-env.sh.
system_bus_start() {
    local dir=$1
    mkdir -p "$dir/system.d"
    chmod 0755 "$dir"
    cp "$FLEETID_SOURCE_DIR/dbus/org.fleetid.Agent1.conf" "$dir/system.d/"
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
    system_bus_config "unix:path=$dir/bus.sock" "$dir/system.d" >"$dir/bus.conf"
    dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile --nosyslog 2>"$dir/bus.log" &
    SYSTEM_BUS_PID=$!
    lab_on_exit "_lab_kill $SYSTEM_BUS_PID dbus-daemon"
    _system_bus_up() { [ -S "$dir/bus.sock" ]; }
    lab_wait_until 10 "dbus-daemon to create $dir/bus.sock" _system_bus_up
    DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus.sock
    export DBUS_SYSTEM_BUS_ADDRESS SYSTEM_BUS_PID
}
