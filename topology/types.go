package topology

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DPID is a switch's datapath id. It is written, and marshalled to JSON,
// as 16 hex digits ("000000000ac80001"): JSON numbers cannot hold 64 bits.
type DPID uint64

func (d DPID) String() string { return fmt.Sprintf("%016x", uint64(d)) }

// MarshalText implements encoding.TextMarshaler.
func (d DPID) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (see ParseDPID).
func (d *DPID) UnmarshalText(b []byte) error {
	v, err := ParseDPID(string(b))
	*d = v
	return err
}

// ParseDPID parses up to 16 hex digits, optionally with "0x" or colons
// ("00:00:00:00:0a:c8:00:01").
func ParseDPID(s string) (DPID, error) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil || h == "" {
		return 0, fmt.Errorf("datapath id %q is not up to 16 hex digits", s)
	}
	return DPID(v), nil
}

// MAC is an Ethernet address, marshalled as "02:00:00:00:00:01".
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (see ParseMAC).
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := ParseMAC(string(b))
	*m = v
	return err
}

// ParseMAC parses a 48-bit Ethernet address in any form net.ParseMAC takes.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, fmt.Errorf("%q is not a 48-bit MAC address", s)
	}
	return MAC(hw), nil
}

// Multicast reports whether the group bit is set (broadcast included).
func (m MAC) Multicast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// PortRef names one port of one switch.
type PortRef struct {
	DPID DPID   `json:"datapath_id"`
	Port uint32 `json:"port"`
}

// String formats r as "DPID:PORT" ("000000000ac80001:3"), its id in the
// REST API and in events.
func (r PortRef) String() string {
	return r.DPID.String() + ":" + strconv.FormatUint(uint64(r.Port), 10)
}

// Compare orders port refs by datapath id, then port number.
func (r PortRef) Compare(o PortRef) int {
	if r.DPID != o.DPID {
		return cmpUint(uint64(r.DPID), uint64(o.DPID))
	}
	return cmpUint(uint64(r.Port), uint64(o.Port))
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Port is a switch port.
type Port struct {
	Number uint32 `json:"number"`
	Name   string `json:"name"`
	MAC    MAC    `json:"mac"`
	// Up is true when the port is administratively and physically up.
	Up bool `json:"up"`
}

// Switch is a connected switch and its ports.
type Switch struct {
	DPID  DPID      `json:"datapath_id"`
	Ports []Port    `json:"ports"` // by number
	Since time.Time `json:"since"` // when it was added
}

// Port returns the switch's port by number.
func (s Switch) Port(no uint32) (Port, bool) {
	i, ok := slices.BinarySearchFunc(s.Ports, no, func(p Port, no uint32) int { return cmpUint(uint64(p.Number), uint64(no)) })
	if !ok {
		return Port{}, false
	}
	return s.Ports[i], true
}

// Seen is what LLDP observed in one direction of a link. The zero value
// means that direction is not (or no longer) seen.
type Seen struct {
	First   time.Time `json:"first_seen,omitzero"`
	Last    time.Time `json:"last_seen,omitzero"`
	Expires time.Time `json:"expires,omitzero"` // Last plus the probe's TTL
}

// Valid reports whether the direction is seen.
func (s Seen) Valid() bool { return !s.Last.IsZero() }

// Link is a cable between two switch ports. LLDP sees each direction on
// its own: AB is a probe sent out of A and received on B, BA the reverse.
// A link exists while at least one direction is seen, and is
// bidirectional when both are. A sorts before B.
type Link struct {
	A  PortRef `json:"a"`
	B  PortRef `json:"b"`
	AB Seen    `json:"ab"`
	BA Seen    `json:"ba"`
}

// ID is the link's stable id: "A-B" with A < B.
func (l Link) ID() string { return l.A.String() + "-" + l.B.String() }

// Bidirectional reports whether both directions are seen.
func (l Link) Bidirectional() bool { return l.AB.Valid() && l.BA.Valid() }

// FirstSeen is when either direction was first seen.
func (l Link) FirstSeen() time.Time {
	switch {
	case !l.AB.Valid():
		return l.BA.First
	case !l.BA.Valid() || l.AB.First.Before(l.BA.First):
		return l.AB.First
	}
	return l.BA.First
}

// LastSeen is when either direction was last seen.
func (l Link) LastSeen() time.Time {
	if l.AB.Last.After(l.BA.Last) {
		return l.AB.Last
	}
	return l.BA.Last
}

// Peer returns the other end of the link from p.
func (l Link) Peer(p PortRef) (PortRef, bool) {
	switch p {
	case l.A:
		return l.B, true
	case l.B:
		return l.A, true
	}
	return PortRef{}, false
}

// SourceLearned is the Source of endpoints the topology learned from
// traffic (see Graph.LearnEndpoint). Other code declares endpoints with
// its own source tag (the model, say "model").
const SourceLearned = "learned"

// Endpoint is a host or VM interface: a MAC address with its IP
// addresses and where it attaches to the network.
type Endpoint struct {
	MAC MAC          `json:"mac"`
	IPs []netip.Addr `json:"ips"` // sorted, no duplicates
	// At is the switch port the endpoint is attached to; At.Port == 0
	// means unknown.
	At       PortRef   `json:"attachment"`
	Source   string    `json:"source"`
	LastSeen time.Time `json:"last_seen"`
}

// Attached reports whether the endpoint's attachment is known.
func (e Endpoint) Attached() bool { return e.At.Port != 0 }

// clone copies e with its own IPs slice.
func (e Endpoint) clone() Endpoint {
	e.IPs = slices.Clone(e.IPs)
	return e
}

// Hop is one switch on a path: the packet enters on In (0 at the first
// switch) and leaves on Out (0 at the last).
type Hop struct {
	DPID DPID   `json:"datapath_id"`
	In   uint32 `json:"in_port,omitempty"`
	Out  uint32 `json:"out_port,omitempty"`
}

// normalizeIPs returns the valid addresses of ips, unmapped, sorted and
// without duplicates, in a new slice.
func normalizeIPs(ips []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() && !ip.IsUnspecified() {
			out = append(out, ip.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func compareMAC(a, b MAC) int { return bytes.Compare(a[:], b[:]) }
