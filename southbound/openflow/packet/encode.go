package packet

import "net/netip"

// minFrame is the minimum Ethernet frame length without FCS.
const minFrame = 60

// maxIPv4Payload is the most an IPv4 packet with a 20-byte header and an
// 8-byte UDP or ICMP header can carry.
const maxIPv4Payload = 0xffff - 20 - 8

// AppendEthernet appends an untagged Ethernet header.
func AppendEthernet(dst []byte, dstMAC, srcMAC MAC, ethType uint16) []byte {
	dst = append(dst, dstMAC[:]...)
	dst = append(dst, srcMAC[:]...)
	return be.AppendUint16(dst, ethType)
}

// AppendARP appends an Ethernet/IPv4 ARP frame from sha, zero-padded to the
// 60-byte Ethernet minimum. Requests (op ARPRequest) are broadcast, other
// operations are sent to tha. Addresses that are not IPv4 are sent as
// 0.0.0.0.
func AppendARP(dst []byte, op uint16, sha MAC, spa netip.Addr, tha MAC, tpa netip.Addr) []byte {
	start := len(dst)
	to := tha
	if op == ARPRequest {
		to = Broadcast
	}
	dst = AppendEthernet(dst, to, sha, EtherTypeARP)
	dst = append(dst, 0, 1, 0x08, 0x00, 6, 4, byte(op>>8), byte(op))
	s, t := ipv4Bytes(spa), ipv4Bytes(tpa)
	dst = append(dst, sha[:]...)
	dst = append(dst, s[:]...)
	dst = append(dst, tha[:]...)
	dst = append(dst, t[:]...)
	return pad(dst, start)
}

// AppendIPv4UDP appends an Ethernet/IPv4/UDP frame with valid IPv4 and UDP
// checksums, zero-padded to the 60-byte Ethernet minimum. The payload is
// truncated to what one IPv4 packet holds; addresses that are not IPv4 are
// sent as 0.0.0.0.
func AppendIPv4UDP(dst []byte, dstMAC, srcMAC MAC, srcIP, dstIP netip.Addr, srcPort, dstPort uint16, payload []byte) []byte {
	start := len(dst)
	payload = payload[:min(len(payload), maxIPv4Payload)]
	n := 8 + len(payload)
	dst = AppendEthernet(dst, dstMAC, srcMAC, EtherTypeIPv4)
	dst = appendIPv4Header(dst, srcIP, dstIP, ProtoUDP, n)
	u := len(dst)
	dst = append(dst, byte(srcPort>>8), byte(srcPort), byte(dstPort>>8), byte(dstPort), byte(n>>8), byte(n), 0, 0)
	dst = append(dst, payload...)
	// The pseudo-header: addresses (already in the IPv4 header), protocol
	// and UDP length.
	c := checksum(sum(uint32(ProtoUDP)+uint32(n), dst[u-8:]))
	if c == 0 {
		c = 0xffff // 0 means "no checksum"
	}
	be.PutUint16(dst[u+6:], c)
	return pad(dst, start)
}

// AppendIPv4TCP appends an Ethernet/IPv4/TCP segment with no payload and
// no options (a SYN, a RST: ack 0, window 65535) and valid checksums,
// zero-padded to the 60-byte Ethernet minimum.
func AppendIPv4TCP(dst []byte, dstMAC, srcMAC MAC, srcIP, dstIP netip.Addr, srcPort, dstPort uint16, seq uint32, flags uint8) []byte {
	start := len(dst)
	dst = AppendEthernet(dst, dstMAC, srcMAC, EtherTypeIPv4)
	dst = appendIPv4Header(dst, srcIP, dstIP, ProtoTCP, 20)
	t := len(dst)
	dst = append(dst, byte(srcPort>>8), byte(srcPort), byte(dstPort>>8), byte(dstPort),
		byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq), 0, 0, 0, 0, 5<<4, flags, 0xff, 0xff, 0, 0, 0, 0)
	// The pseudo-header: addresses (already in the IPv4 header), protocol
	// and TCP length.
	be.PutUint16(dst[t+16:], checksum(sum(uint32(ProtoTCP)+20, dst[t-8:])))
	return pad(dst, start)
}

// AppendIPv4ICMPEcho appends an Ethernet/IPv4/ICMP echo frame of the given
// type (ICMPv4EchoRequest or ICMPv4EchoReply) with valid checksums,
// zero-padded to the 60-byte Ethernet minimum. The payload is truncated to
// what one IPv4 packet holds; addresses that are not IPv4 are sent as
// 0.0.0.0.
func AppendIPv4ICMPEcho(dst []byte, dstMAC, srcMAC MAC, srcIP, dstIP netip.Addr, typ uint8, id, seq uint16, payload []byte) []byte {
	start := len(dst)
	payload = payload[:min(len(payload), maxIPv4Payload)]
	dst = AppendEthernet(dst, dstMAC, srcMAC, EtherTypeIPv4)
	dst = appendIPv4Header(dst, srcIP, dstIP, ProtoICMP, 8+len(payload))
	i := len(dst)
	dst = append(dst, typ, 0, 0, 0, byte(id>>8), byte(id), byte(seq>>8), byte(seq))
	dst = append(dst, payload...)
	be.PutUint16(dst[i+2:], checksum(sum(0, dst[i:])))
	return pad(dst, start)
}

// appendIPv4Header appends a 20-byte IPv4 header (TTL 64, no options) for
// an n-byte payload.
func appendIPv4Header(b []byte, src, dst netip.Addr, proto uint8, n int) []byte {
	h := len(b)
	n += 20
	s, d := ipv4Bytes(src), ipv4Bytes(dst)
	b = append(b, 0x45, 0, byte(n>>8), byte(n), 0, 0, 0, 0, 64, proto, 0, 0)
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	be.PutUint16(b[h+10:], checksum(sum(0, b[h:])))
	return b
}

// ipv4Bytes returns a's IPv4 form, or 0.0.0.0 if it has none.
func ipv4Bytes(a netip.Addr) [4]byte {
	if a = a.Unmap(); a.Is4() {
		return a.As4()
	}
	return [4]byte{}
}

// pad zero-pads the frame that starts at dst[start] to minFrame bytes.
func pad(dst []byte, start int) []byte {
	if n := minFrame - (len(dst) - start); n > 0 {
		dst = append(dst, make([]byte, n)...)
	}
	return dst
}

// sum adds b as big-endian 16-bit words to s (RFC 1071). s must not
// overflow: b is at most one IP packet.
func sum(s uint32, b []byte) uint32 {
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// checksum folds s into the one's complement Internet checksum.
func checksum(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// ICMPv4 error types and codes the router sends.
const (
	ICMPv4DestUnreachable = 3
	ICMPv4TimeExceeded    = 11
	ICMPv4NetUnreachable  = 0 // code of ICMPv4DestUnreachable
	ICMPv4HostUnreachable = 1 // code of ICMPv4DestUnreachable
)

// AppendIPv4ICMPError appends an Ethernet/IPv4 ICMP error (destination
// unreachable, time exceeded) about the IPv4 packet orig (its header and
// whatever follows), quoting the header and the first 8 bytes of its
// payload as RFC 792 asks, with valid checksums.
func AppendIPv4ICMPError(dst []byte, dstMAC, srcMAC MAC, srcIP, dstIP netip.Addr, typ, code uint8, orig []byte) []byte {
	start := len(dst)
	quote := orig
	if len(quote) >= 20 {
		ihl := int(quote[0]&0x0f) * 4
		quote = quote[:min(len(quote), max(ihl, 20)+8)]
	}
	dst = AppendEthernet(dst, dstMAC, srcMAC, EtherTypeIPv4)
	dst = appendIPv4Header(dst, srcIP, dstIP, ProtoICMP, 8+len(quote))
	i := len(dst)
	dst = append(dst, typ, code, 0, 0, 0, 0, 0, 0)
	dst = append(dst, quote...)
	be.PutUint16(dst[i+2:], checksum(sum(0, dst[i:])))
	return pad(dst, start)
}
