package flow

import (
	"fmt"
	"net"
	"strconv"
)

// Field identifies a match field. The order of the constants is the
// canonical order of fields in a Match and in its text form.
type Field uint8

// Match fields Loom knows by name. Anything else a switch reports is kept
// as a raw TLV (FieldRaw) so it can still be compared and deleted.
const (
	InPort Field = iota
	Metadata
	TunnelID
	TunSrc
	TunDst
	Reg0
	Reg1
	Reg2
	Reg3
	Reg4
	Reg5
	Reg6
	Reg7
	PktMark
	ConjID
	CTState
	CTZone
	CTMark
	EthSrc
	EthDst
	EthType
	VlanVID
	VlanPCP
	IPDSCP
	IPProto
	IPv4Src
	IPv4Dst
	ARPOp
	ARPSpa
	ARPTpa
	ARPSha
	ARPTha
	TCPSrc
	TCPDst
	UDPSrc
	UDPDst
	ICMPv4Type
	ICMPv4Code
	ICMPv6Type
	ICMPv6Code
	numFields
	// FieldRaw marks a TLV Loom has no name for.
	FieldRaw Field = 0xff
)

type format uint8

const (
	fmtDec format = iota
	fmtHex
	fmtMAC
	fmtIPv4
)

type fieldInfo struct {
	name  string // Loom's name, the ovs-ofctl name of the OXM field
	mf    string // OVS's meta-flow name, which set_field prints
	class uint16
	field uint8
	size  uint8 // bytes on the wire
	fmt   format
}

var fields = [numFields]fieldInfo{
	InPort:     {"in_port", "in_port_oxm", 0x8000, 0, 4, fmtDec},
	Metadata:   {"metadata", "metadata", 0x8000, 2, 8, fmtHex},
	TunnelID:   {"tun_id", "tun_id", 0x8000, 38, 8, fmtHex},
	TunSrc:     {"tun_src", "tun_src", 0x0001, 31, 4, fmtIPv4},
	TunDst:     {"tun_dst", "tun_dst", 0x0001, 32, 4, fmtIPv4},
	Reg0:       {"reg0", "reg0", 0x0001, 0, 4, fmtHex},
	Reg1:       {"reg1", "reg1", 0x0001, 1, 4, fmtHex},
	Reg2:       {"reg2", "reg2", 0x0001, 2, 4, fmtHex},
	Reg3:       {"reg3", "reg3", 0x0001, 3, 4, fmtHex},
	Reg4:       {"reg4", "reg4", 0x0001, 4, 4, fmtHex},
	Reg5:       {"reg5", "reg5", 0x0001, 5, 4, fmtHex},
	Reg6:       {"reg6", "reg6", 0x0001, 6, 4, fmtHex},
	Reg7:       {"reg7", "reg7", 0x0001, 7, 4, fmtHex},
	PktMark:    {"pkt_mark", "pkt_mark", 0x0001, 33, 4, fmtHex},
	ConjID:     {"conj_id", "conj_id", 0x0001, 37, 4, fmtDec},
	CTState:    {"ct_state", "ct_state", 0x0001, 105, 4, fmtHex},
	CTZone:     {"ct_zone", "ct_zone", 0x0001, 106, 2, fmtDec},
	CTMark:     {"ct_mark", "ct_mark", 0x0001, 107, 4, fmtHex},
	EthSrc:     {"dl_src", "eth_src", 0x8000, 4, 6, fmtMAC},
	EthDst:     {"dl_dst", "eth_dst", 0x8000, 3, 6, fmtMAC},
	EthType:    {"dl_type", "eth_type", 0x8000, 5, 2, fmtHex},
	VlanVID:    {"vlan_vid", "vlan_vid", 0x8000, 6, 2, fmtHex},
	VlanPCP:    {"vlan_pcp", "vlan_pcp", 0x8000, 7, 1, fmtDec},
	IPDSCP:     {"ip_dscp", "ip_dscp", 0x8000, 8, 1, fmtDec},
	IPProto:    {"nw_proto", "nw_proto", 0x8000, 10, 1, fmtDec},
	IPv4Src:    {"nw_src", "ip_src", 0x8000, 11, 4, fmtIPv4},
	IPv4Dst:    {"nw_dst", "ip_dst", 0x8000, 12, 4, fmtIPv4},
	ARPOp:      {"arp_op", "arp_op", 0x8000, 21, 2, fmtDec},
	ARPSpa:     {"arp_spa", "arp_spa", 0x8000, 22, 4, fmtIPv4},
	ARPTpa:     {"arp_tpa", "arp_tpa", 0x8000, 23, 4, fmtIPv4},
	ARPSha:     {"arp_sha", "arp_sha", 0x8000, 24, 6, fmtMAC},
	ARPTha:     {"arp_tha", "arp_tha", 0x8000, 25, 6, fmtMAC},
	TCPSrc:     {"tcp_src", "tcp_src", 0x8000, 13, 2, fmtDec},
	TCPDst:     {"tcp_dst", "tcp_dst", 0x8000, 14, 2, fmtDec},
	UDPSrc:     {"udp_src", "udp_src", 0x8000, 15, 2, fmtDec},
	UDPDst:     {"udp_dst", "udp_dst", 0x8000, 16, 2, fmtDec},
	ICMPv4Type: {"icmp_type", "icmp_type", 0x8000, 19, 1, fmtDec},
	ICMPv4Code: {"icmp_code", "icmp_code", 0x8000, 20, 1, fmtDec},
	ICMPv6Type: {"icmpv6_type", "icmpv6_type", 0x8000, 29, 1, fmtDec},
	ICMPv6Code: {"icmpv6_code", "icmpv6_code", 0x8000, 30, 1, fmtDec},
}

// byOXM maps (class<<8 | field) to the Field.
var byOXM = func() map[uint32]Field {
	m := make(map[uint32]Field, numFields)
	for f := Field(0); f < numFields; f++ {
		m[uint32(fields[f].class)<<8|uint32(fields[f].field)] = f
	}
	return m
}()

func (f Field) String() string {
	if f < numFields {
		return fields[f].name
	}
	return "raw"
}

// Size is the field's length on the wire in bytes.
func (f Field) Size() int { return int(fields[f].size) }

// fullMask is the all-ones mask for the field's size.
func (f Field) fullMask() uint64 {
	if fields[f].size >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(fields[f].size)) - 1
}

func formatValue(f Field, v uint64) string {
	switch fields[f].fmt {
	case fmtHex:
		return "0x" + strconv.FormatUint(v, 16)
	case fmtMAC:
		return MAC(v).String()
	case fmtIPv4:
		return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String()
	}
	if f == InPort {
		return PortName(uint32(v))
	}
	return strconv.FormatUint(v, 10)
}

// setFieldValue renders a set_field value as ovs-ofctl does (OVS's
// mf_format, which formats by the meta-flow field: vlan_vid in decimal,
// ct_zone in hexadecimal, hexadecimal values as C's %#x).
func setFieldValue(f Field, v uint64) string {
	switch {
	case f == VlanVID:
		return strconv.FormatUint(v, 10)
	case f == CTZone || fields[f].fmt == fmtHex:
		return string(appendCHex(nil, v))
	}
	return formatValue(f, v)
}

// MAC is a 48-bit Ethernet address held in the low bits of an integer,
// which keeps flows comparable with == and free of slices.
type MAC uint64

// MACFrom converts a 6-byte address.
func MACFrom(b [6]byte) MAC {
	return MAC(uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5]))
}

// ParseMAC parses "aa:bb:cc:dd:ee:ff".
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return 0, fmt.Errorf("bad MAC address %q", s)
	}
	return MACFrom([6]byte(hw)), nil
}

// Bytes returns the address as 6 bytes.
func (m MAC) Bytes() [6]byte {
	return [6]byte{byte(m >> 40), byte(m >> 32), byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}

func (m MAC) String() string {
	const hex = "0123456789abcdef"
	var b [17]byte
	for i := 0; i < 6; i++ {
		o := byte(m >> (40 - 8*uint(i)))
		b[i*3], b[i*3+1] = hex[o>>4], hex[o&15]
		if i < 5 {
			b[i*3+2] = ':'
		}
	}
	return string(b[:])
}

// Multicast reports whether the group bit is set.
func (m MAC) Multicast() bool { return m&(1<<40) != 0 }

// Reserved OpenFlow port numbers.
const (
	PortMax        uint32 = 0xffffff00
	PortInPort     uint32 = 0xfffffff8
	PortTable      uint32 = 0xfffffff9
	PortNormal     uint32 = 0xfffffffa
	PortFlood      uint32 = 0xfffffffb
	PortAll        uint32 = 0xfffffffc
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
	PortAny        uint32 = 0xffffffff
)

// PortName renders a port number the way ovs-ofctl does.
func PortName(p uint32) string {
	switch p {
	case PortInPort:
		return "IN_PORT"
	case PortTable:
		return "TABLE"
	case PortNormal:
		return "NORMAL"
	case PortFlood:
		return "FLOOD"
	case PortAll:
		return "ALL"
	case PortController:
		return "CONTROLLER"
	case PortLocal:
		return "LOCAL"
	case PortAny:
		return "ANY"
	}
	return strconv.FormatUint(uint64(p), 10)
}

// IPv4 converts a 4-byte address to the integer form used in matches.
func IPv4(ip net.IP) uint64 {
	ip4 := ip.To4()
	if ip4 == nil {
		return 0
	}
	return uint64(ip4[0])<<24 | uint64(ip4[1])<<16 | uint64(ip4[2])<<8 | uint64(ip4[3])
}
