// Package ovsdb is Loom's OVSDB southbound: it configures Open vSwitch on
// each hypervisor through the host's Open_vSwitch database, and reports
// which VM interfaces are plugged in where.
//
// A Manager runs one agent per host (HostConfig). Each agent, in its own
// goroutine, connects to the host's OVSDB (unix: or tcp:), monitors the
// Open_vSwitch, Bridge, Port, Interface and Controller tables (only the
// columns it uses, so statistics updates do not wake it), and after every
// change it sees reconciles the database with its configuration:
//
//   - the integration bridge (HostConfig.Bridge, default br-int) exists with
//     the configured datapath_type, protocols=OpenFlow13, fail_mode=secure,
//     other_config:disable-in-band=true and, if configured,
//     other_config:datapath-id;
//   - its controller targets HostConfig.Controller with max_backoff=1000
//     and inactivity_probe=5000 (ms). A new bridge is created with its
//     controller in the same transaction: OVS flushes a bridge's flows when
//     its controller set goes from empty to non-empty;
//   - with HostConfig.VTEPIP, port vxlan0 (TunnelPortName) is a flow-based
//     VXLAN port: options remote_ip=flow, key=flow, local_ip=VTEPIP, tos=inherit (the inner packet's DSCP marks the outer one), and
//     ofport_request=HostConfig.TunnelPort (default 1000);
//   - with HostConfig.Uplink, that interface is a port of the bridge.
//
// Everything missing or different is fixed in one transaction, composed of
// the operations of each concern (bridge.go, controller.go, port.go); when
// nothing differs, no transaction is sent. Drift (someone deletes vxlan0 or
// sets fail_mode=standalone) is repaired as soon as the monitor reports it.
//
// Ownership: every row Loom creates carries external_ids:loom-owner=loom
// (OwnerKey, OwnerValue). Rows named by the configuration are enforced
// whoever created them (an existing bridge is adopted, not re-created), but
// Loom removes only rows it owns: its ports that the configuration no
// longer asks for (an old uplink, vxlan0 once VTEPIP is cleared) and its
// controllers with another target. Other ports (the VMs') and controllers
// are left alone.
//
// Removing a host from the Manager, or renaming its bridge, stops managing
// it and deletes nothing: the bridge, its controller and tunnel keep
// forwarding with the flows they have.
//
// Port bindings: every Interface of the bridge with external_ids:iface-id
// and a valid ofport (not -1 or 0: OVS has not attached it yet, or failed
// to) is a Binding. Agents report bindings as they appear, change (ofport,
// MAC, admin or link state) and disappear, through Options.OnBinding, and
// Manager.Bindings returns a snapshot. Manager.Status reports each host's
// OVSDB connection, whether its bridge is ready, its datapath ID and its
// last error.
//
// Connections: an agent dials again on its own after a failed dial or a
// lost connection, with exponential backoff (250 ms doubling up to
// Options.MaxBackoff, default 5 s, with jitter). Each connection gets a
// fresh libovsdb client and cache, so a reconnected agent never works from
// a stale cache, and the first reconciliation after it re-reads everything.
// Every 5 s the agent also sends an OVSDB echo, so a silent peer (tcp) is
// noticed too. After a reconnection, bindings are diffed against those
// reported before: only real changes are reported.
package ovsdb
