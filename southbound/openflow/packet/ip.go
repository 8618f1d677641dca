package packet

import "net/netip"

// IP protocol numbers (IPv4 Protocol, IPv6 Next Header).
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// IPv6 extension headers walked by the decoder.
const (
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
)

// maxExtHeaders bounds the IPv6 extension header chain. RFC 8200 allows
// each header once (Destination Options twice), so a longer chain is an
// attack or garbage.
const maxExtHeaders = 8

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an Ethernet/IPv4 ARP packet. ARP for other hardware or protocol
// types is not decoded (and is not an error).
type ARP struct {
	Op       uint16
	SHA, THA MAC
	SPA, TPA netip.Addr
}

// IPv4 is an IPv4 header.
type IPv4 struct {
	IHL           uint8  // header length in 32-bit words, >= 5
	TOS           uint8  // DSCP and ECN
	Length        uint16 // total length as sent; may exceed the bytes captured
	ID            uint16
	DontFragment  bool
	MoreFragments bool
	FragOffset    uint16 // in 8-octet units; L4 is decoded only when it is 0
	TTL           uint8
	Proto         uint8
	Src, Dst      netip.Addr
}

// IPv6 is an IPv6 header and the fragment information from its extension
// headers.
type IPv6 struct {
	TrafficClass  uint8
	FlowLabel     uint32
	Length        uint16 // payload length as sent; may exceed the bytes captured
	NextHeader    uint8  // after the extension headers: the upper-layer protocol
	HopLimit      uint8
	Src, Dst      netip.Addr
	MoreFragments bool
	FragOffset    uint16 // in 8-octet units; L4 is decoded only when it is 0
}

// TCP flags.
const (
	TCPFin = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
)

// TCP is a TCP header.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	DataOffset       uint8 // header length in 32-bit words, >= 5
	Flags            uint8 // TCPFin...TCPCwr
	Window           uint16
}

// UDP is a UDP header.
type UDP struct {
	SrcPort, DstPort uint16
	Length           uint16 // as sent; may exceed the bytes captured
	Checksum         uint16
}

// ICMP types used by the builders.
const (
	ICMPv4EchoReply   = 0
	ICMPv4EchoRequest = 8
)

// ICMP is the common header of ICMPv4 and ICMPv6 messages. Payload holds
// the rest, starting with the 4-byte rest-of-header (identifier and sequence
// number for echoes).
type ICMP struct {
	Type, Code uint8
	Checksum   uint16
}

func (f *Frame) decodeARP() error {
	b := f.L3
	if len(b) < 28 {
		return errARP
	}
	if be.Uint16(b[0:]) != 1 || be.Uint16(b[2:]) != EtherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return nil
	}
	f.ARP = ARP{
		Op:  be.Uint16(b[6:]),
		SHA: MAC(b[8:14]), SPA: netip.AddrFrom4([4]byte(b[14:18])),
		THA: MAC(b[18:24]), TPA: netip.AddrFrom4([4]byte(b[24:28])),
	}
	f.Layers |= HasARP
	return nil
}

func (f *Frame) decodeIPv4() error {
	b := f.L3
	if len(b) < 20 {
		return errIPv4Short
	}
	if b[0]>>4 != 4 {
		return errIPv4Version
	}
	hl := int(b[0]&0xf) * 4
	if hl < 20 {
		return errIPv4IHL
	}
	if hl > len(b) {
		return errIPv4Options
	}
	total := int(be.Uint16(b[2:]))
	if total < hl {
		return errIPv4Length
	}
	frag := be.Uint16(b[6:])
	f.IPv4 = IPv4{
		IHL:           b[0] & 0xf,
		TOS:           b[1],
		Length:        uint16(total),
		ID:            be.Uint16(b[4:]),
		DontFragment:  frag&0x4000 != 0,
		MoreFragments: frag&0x2000 != 0,
		FragOffset:    frag & 0x1fff,
		TTL:           b[8],
		Proto:         b[9],
		Src:           netip.AddrFrom4([4]byte(b[12:16])),
		Dst:           netip.AddrFrom4([4]byte(b[16:20])),
	}
	f.Layers |= HasIPv4
	f.L4Offset, f.L4 = f.L3Offset+hl, b[hl:min(total, len(b))] // drop Ethernet padding
	if f.IPv4.FragOffset != 0 {
		return nil
	}
	return f.decodeL4(f.IPv4.Proto, ProtoICMP)
}

func (f *Frame) decodeIPv6() error {
	b := f.L3
	if len(b) < 40 {
		return errIPv6Short
	}
	if b[0]>>4 != 6 {
		return errIPv6Version
	}
	ip := &f.IPv6
	vtf := be.Uint32(b)
	ip.TrafficClass, ip.FlowLabel = uint8(vtf>>20), vtf&0xfffff
	ip.Length, ip.NextHeader, ip.HopLimit = be.Uint16(b[4:]), b[6], b[7]
	ip.Src, ip.Dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	if ip.Length != 0 { // 0 is a jumbogram (RFC 2675): take everything
		b = b[:min(40+int(ip.Length), len(b))]
	}
	off := 40
	for n := 0; isExtHeader(ip.NextHeader); n++ {
		// Every extension header is at least 8 bytes; each iteration
		// consumes at least that, and n bounds the chain regardless.
		if n == maxExtHeaders {
			return errIPv6ExtCount
		}
		if len(b)-off < 8 {
			return errIPv6Ext
		}
		hl := (int(b[off+1]) + 1) * 8 // in 8-octet units, not counting the first 8
		if ip.NextHeader == ipv6Fragment {
			hl = 8 // the length field is reserved
			fo := be.Uint16(b[off+2:])
			ip.FragOffset, ip.MoreFragments = fo>>3, fo&1 != 0
		}
		if hl > len(b)-off {
			return errIPv6Ext
		}
		ip.NextHeader = b[off]
		off += hl
	}
	f.Layers |= HasIPv6
	f.L4Offset, f.L4 = f.L3Offset+off, b[off:]
	if ip.FragOffset != 0 {
		return nil
	}
	return f.decodeL4(ip.NextHeader, ProtoICMPv6)
}

func isExtHeader(nh uint8) bool {
	switch nh {
	case ipv6HopByHop, ipv6Routing, ipv6Fragment, ipv6DestOpts:
		return true
	}
	return false
}

// decodeL4 decodes f.L4 as the given protocol; icmp is the ICMP protocol
// number of the IP version at hand.
func (f *Frame) decodeL4(proto, icmp uint8) error {
	b := f.L4
	switch proto {
	case ProtoTCP:
		if len(b) < 20 {
			return errTCPShort
		}
		hl := int(b[12]>>4) * 4
		if hl < 20 {
			return errTCPOffset
		}
		if hl > len(b) {
			return errTCPOptions
		}
		f.TCP = TCP{
			SrcPort: be.Uint16(b[0:]), DstPort: be.Uint16(b[2:]),
			Seq: be.Uint32(b[4:]), Ack: be.Uint32(b[8:]),
			DataOffset: b[12] >> 4, Flags: b[13], Window: be.Uint16(b[14:]),
		}
		f.Layers |= HasTCP
		f.Payload = b[hl:]
	case ProtoUDP:
		if len(b) < 8 {
			return errUDPShort
		}
		n := int(be.Uint16(b[4:]))
		if n < 8 {
			return errUDPLength
		}
		f.UDP = UDP{SrcPort: be.Uint16(b[0:]), DstPort: be.Uint16(b[2:]), Length: uint16(n), Checksum: be.Uint16(b[6:])}
		f.Layers |= HasUDP
		f.Payload = b[8:min(n, len(b))]
	case icmp:
		if len(b) < 4 {
			return errICMPShort
		}
		f.ICMP = ICMP{Type: b[0], Code: b[1], Checksum: be.Uint16(b[2:])}
		f.Layers |= HasICMP
		f.Payload = b[4:]
	}
	return nil
}
