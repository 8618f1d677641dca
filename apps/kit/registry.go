// Package kit is what Loom's apps share without importing one another:
// the one registry of the numbers that live in one switch's namespace
// (registers and their bits, metadata bits, conntrack zones, meter ids,
// group ids), and the per-host conntrack zone allocator (zones.go).
//
// Every number an app puts on a switch that another app could also use
// is named here, as Antrea keeps its OVS fields in one file: two apps
// cannot pick the same register, meter or group id without this file
// showing it, and TestRegistryDisjoint checks that no two ranges that
// are live at the same time overlap.
//
// kit may import southbound/openflow/flow, model and view; never an app.
package kit

import (
	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// Registers. Every register a flow sets or matches is one of these;
// apps never name flow.RegN themselves. All of them can be live in one
// packet's pipeline at once (a load-balanced packet is routed, then
// firewalled and delivered), so no two share bits (Registers lists
// their ranges).
const (
	// RegLBAffinityPort is the backend port a load balancer's client
	// is pinned to (lb-affinity, lb-learn); 16 bits.
	RegLBAffinityPort = flow.Reg2
	// RegLBFlags marks a packet the load balancer translates and the
	// hairpin NAT steps it went through.
	RegLBFlags = flow.Reg3
	// RegLBAffinityIP is the backend address a client is pinned to.
	RegLBAffinityIP = flow.Reg4
	// RegPriority is the 802.1p priority (0-7) of the port a packet
	// comes from, set by port policies; a VLAN tag the overlay pushes on
	// the uplink carries it as PCP.
	RegPriority = flow.Reg5
	// RegRouter carries the router's key from l3-input to l3-route.
	RegRouter = flow.Reg6
	// RegOutPort is the local VM port a packet is for, from
	// overlay-forward to overlay-deliver (the firewall's ingress, port
	// policies and the load balancer's probes read or set it too).
	RegOutPort = flow.Reg7
)

// A RegRange is the bits of a register one use owns.
type RegRange struct {
	Name      string
	Field     flow.Field
	Ofs, Bits int
}

// Registers are the register ranges in use: every Reg constant above,
// with the bits it owns.
var Registers = []RegRange{
	{"lb-affinity-port", RegLBAffinityPort, 0, 32},
	{"lb-flags", RegLBFlags, 0, 32},
	{"lb-affinity-ip", RegLBAffinityIP, 0, 32},
	{"priority", RegPriority, 0, 32},
	{"router", RegRouter, 0, 32},
	{"out-port", RegOutPort, 0, 32},
}

// Metadata layout: the network's key in the low 32 bits (written by the
// overlay's classifier, rewritten by the router), and MetaRemote set on
// packets that came from another host (a tunnel or the uplink), so that
// they are never sent back to one (split horizon).
const (
	MetaKeyMask = 1<<32 - 1
	MetaRemote  = 1 << 32
	// MetadataMask is the part of metadata the overlay owns: an app that
	// moves a packet to another network (the router) writes the
	// network's key under this mask, which also clears the remote bit.
	MetadataMask = MetaRemote | MetaKeyMask
)

// Metadata lists the metadata ranges in use (as RegRanges of
// flow.Metadata).
var Metadata = []RegRange{
	{"network-key", flow.Metadata, 0, 32},
	{"remote", flow.Metadata, 32, 1},
}

// A Range is an inclusive range of ids of one kind.
type Range struct {
	Name   string
	Lo, Hi uint32
}

// Meter ids.
const (
	// MeterDHCP rate-limits the DHCP packet-ins ("DH").
	MeterDHCP = 0x4448
	// MeterRouter rate-limits the router's packet-ins ("RO": ICMP
	// errors, ARP for next hops).
	MeterRouter = 0x524f
	// MeterPortFromVM + ofport and MeterPortToVM + ofport are a port
	// policy's rate limits of one port, one per direction.
	MeterPortFromVM = 0x10000
	MeterPortToVM   = 0x20000
)

// MaxOFPort is the highest OpenFlow 1.3 physical port number (OFPP_MAX).
const MaxOFPort = 0xff00

// Meters are the meter id ranges in use.
var Meters = []Range{
	{"dhcp", MeterDHCP, MeterDHCP},
	{"router", MeterRouter, MeterRouter},
	{"port-from-vm", MeterPortFromVM, MeterPortFromVM + MaxOFPort},
	{"port-to-vm", MeterPortToVM, MeterPortToVM + MaxOFPort},
}

// Group ids.
const (
	// The overlay's flood groups: a network's key times two, plus one
	// for the group that floods to local ports only (FloodGroup). Keys
	// are below 3<<24 (VXLAN VNIs, then VLAN and flat networks).
	GroupFloodLo = 0
	GroupFloodHi = 2*(3<<24) - 1
	// A load balancer's select group for one client network on a host
	// (LBGroup): GroupLBLo plus the number the host allocated to it
	// (ZoneLBSelect), so two load balancers never share a group.
	GroupLBLo = 0x40000000
	GroupLBHi = GroupLBLo + ZoneMax
)

// Groups are the group id ranges in use.
var Groups = []Range{
	{"overlay-flood", GroupFloodLo, GroupFloodHi},
	{"lb-select", GroupLBLo, GroupLBHi},
}

// FloodGroup is the flood group of the network with key (below 3<<24);
// localOnly: the group that floods to this host's ports only.
func FloodGroup(key uint32, localOnly bool) uint32 {
	id := key << 1
	if localOnly {
		id |= 1
	}
	return id
}

// LBGroup is the select group of the load balancer whose select user
// (LBSelectUser) host numbered n, in GroupLBLo..GroupLBHi.
func LBGroup(n uint16) uint32 { return GroupLBLo + uint32(n) }

// Conntrack zones. Zone 0 is the default zone: any ct() without a zone
// uses it, so Loom never does. Every other zone is allocated per host
// (zones.go), to a zone user: a stable name whose kind is its prefix.
// There is one range: a host's users of every kind are numbered densely
// from ZoneMin, so no kind can run into another's numbers. The same
// numbers also name the load balancers' select groups on the host
// (ZoneLBSelect): every per-host number is allocated, none hashed.
const (
	ZoneMin = 1
	ZoneMax = 0xffff
)

// Zone kinds: the prefixes of zone user names.
const (
	// ZonePort: a VM port with security groups (the firewall), both
	// directions of its connections.
	ZonePort = "port:"
	// ZoneRouter: a router's SNAT and floating IPs, on its gateway host.
	ZoneRouter = "router:"
	// ZoneLB: the load-balanced (DNAT) connections of one client
	// network of the load balancers, on the client's host.
	ZoneLB = "lb:"
	// ZoneLBHairpin: the source NAT of hairpin connections (a backend
	// that is its own client) of one network.
	ZoneLBHairpin = "lbh:"
	// ZoneLBSelect: not a conntrack zone but the number of the select
	// group (LBGroup) of one load balancer for one client network, on
	// the client's host; no conntrack entry is ever put in it.
	ZoneLBSelect = "lbsel:"
)

// Zones are the zone ranges: the one allocated range, and zone 0 kept out.
var Zones = []Range{
	{"default (unused)", 0, 0},
	{"allocated per host", ZoneMin, ZoneMax},
}

// PortZone, RouterZone, LBZone and LBHairpinZone name zone users.
func PortZone(portID string) string         { return ZonePort + portID }
func RouterZone(routerID string) string     { return ZoneRouter + routerID }
func LBZone(networkID string) string        { return ZoneLB + networkID }
func LBHairpinZone(networkID string) string { return ZoneLBHairpin + networkID }

// LBSelectUser names the per-host number of load balancer lbID's select
// group for its clients in network networkID (LBGroup).
func LBSelectUser(lbID, networkID string) string { return ZoneLBSelect + lbID + "/" + networkID }
