package packet

import (
	"encoding/binary"
	"strings"
)

var be = binary.BigEndian

// EtherTypes.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // 802.1Q customer tag
	EtherTypeIPv6 = 0x86dd
	EtherTypeQinQ = 0x88a8 // 802.1ad service tag
	EtherTypeLLDP = 0x88cc
)

// MAC is an Ethernet address.
type MAC [6]byte

// Well-known destination addresses.
var (
	Broadcast     = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	LLDPMulticast = MAC{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e} // nearest bridge
)

// String formats m as "aa:bb:cc:dd:ee:ff".
func (m MAC) String() string {
	const digits = "0123456789abcdef"
	var s [17]byte
	for i, x := range m {
		if i > 0 {
			s[3*i-1] = ':'
		}
		s[3*i], s[3*i+1] = digits[x>>4], digits[x&0xf]
	}
	return string(s[:])
}

// VLAN is one 802.1Q/802.1ad tag.
type VLAN struct {
	TPID uint16 // EtherTypeVLAN or EtherTypeQinQ
	PCP  uint8
	DEI  bool
	VID  uint16
}

// Layers is a set of decoded layers.
type Layers uint16

// Layer bits.
const (
	HasVLAN Layers = 1 << iota
	HasARP
	HasIPv4
	HasIPv6
	HasTCP
	HasUDP
	HasICMP // ICMP in IPv4 or ICMPv6 in IPv6
	HasLLDP
)

var layerNames = [...]string{"vlan", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp", "lldp"}

// String lists the layers in l as "vlan|ipv4|udp", or "none".
func (l Layers) String() string {
	var names []string
	for i, n := range layerNames {
		if l&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Frame is a decoded Ethernet frame. See the package documentation for
// which fields are valid after an error and for how long the slices are.
type Frame struct {
	Layers Layers

	Dst, Src  MAC
	VLANs     [2]VLAN // outer tag first; further tags are left undecoded in L3
	NumVLANs  int
	EtherType uint16 // after the VLAN tags

	L3Offset int    // offset of L3 in the frame
	L3       []byte // everything after the Ethernet header and VLAN tags, padding included
	L4Offset int    // offset of L4 in the frame (IPv4 and IPv6 only)
	L4       []byte // IP payload after options and extension headers, up to the IP length
	Payload  []byte // L4 after the TCP, UDP or ICMP header, up to the UDP length

	ARP  ARP
	IPv4 IPv4
	IPv6 IPv6
	TCP  TCP
	UDP  UDP
	ICMP ICMP
	LLDP LLDP
}

// Decode resets f and decodes the Ethernet frame b (without FCS) into it.
// The slices in f alias b and are valid while b is. It returns nil or a
// *Error for the first malformed or truncated layer; the layers before that
// one remain decoded.
func (f *Frame) Decode(b []byte) error {
	*f = Frame{}
	if len(b) < 14 {
		return errEthernet
	}
	f.Dst, f.Src = MAC(b[0:6]), MAC(b[6:12])
	f.EtherType = be.Uint16(b[12:])
	off := 14
	for f.NumVLANs < len(f.VLANs) && (f.EtherType == EtherTypeVLAN || f.EtherType == EtherTypeQinQ) {
		if len(b)-off < 4 {
			return errVLAN
		}
		tci := be.Uint16(b[off:])
		f.VLANs[f.NumVLANs] = VLAN{TPID: f.EtherType, PCP: uint8(tci >> 13), DEI: tci&0x1000 != 0, VID: tci & 0xfff}
		f.NumVLANs++
		f.Layers |= HasVLAN
		f.EtherType = be.Uint16(b[off+2:])
		off += 4
	}
	f.L3Offset, f.L3 = off, b[off:]
	switch f.EtherType {
	case EtherTypeARP:
		return f.decodeARP()
	case EtherTypeIPv4:
		return f.decodeIPv4()
	case EtherTypeIPv6:
		return f.decodeIPv6()
	case EtherTypeLLDP:
		if err := f.LLDP.Decode(f.L3); err != nil {
			return err
		}
		f.Layers |= HasLLDP
	}
	return nil
}
