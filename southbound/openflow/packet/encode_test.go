package packet

import (
	"net/netip"
	"testing"
)

func TestAppendIPv4ICMPError(t *testing.T) {
	src, dst := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.11")
	orig := AppendIPv4ICMPEcho(nil, MAC{2}, MAC{3}, dst, netip.MustParseAddr("10.2.0.12"), ICMPv4EchoRequest, 7, 1, make([]byte, 56))[14:]
	b := AppendIPv4ICMPError(nil, MAC{2, 0, 0, 0, 0, 0x11}, MAC{2, 0x4c}, src, dst, ICMPv4TimeExceeded, 0, orig)
	var f Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	if f.IPv4.Src != src || f.IPv4.Dst != dst || f.ICMP.Type != ICMPv4TimeExceeded || f.ICMP.Code != 0 {
		t.Errorf("decoded %+v %+v", f.IPv4, f.ICMP)
	}
	if len(f.L4) != 8+20+8 {
		t.Errorf("ICMP body %d bytes, want 8 + the quoted header (20) + 8", len(f.L4))
	}
	if checksum(sum(0, f.L4)) != 0 || checksum(sum(0, f.L3[:20])) != 0 {
		t.Error("bad checksum")
	}
}

// TestAppendIPv4TCP: a health check's SYN decodes as sent, and its IPv4
// header and TCP segment (with the pseudo-header) sum to 0xffff.
func TestAppendIPv4TCP(t *testing.T) {
	b := AppendIPv4TCP(nil, MAC{2, 0, 0, 0, 1, 0xb}, MAC{2, 0x4c, 0x4d, 0, 0, 1}, netip.MustParseAddr("10.1.0.100"),
		netip.MustParseAddr("10.1.0.11"), 0xfc07, 8080, 12345, TCPSyn)
	var f Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	if f.IPv4.Src.String() != "10.1.0.100" || f.IPv4.Dst.String() != "10.1.0.11" || f.IPv4.Proto != ProtoTCP ||
		f.TCP.SrcPort != 0xfc07 || f.TCP.DstPort != 8080 || f.TCP.Flags != TCPSyn || f.TCP.Seq != 12345 || len(b) != 60 {
		t.Errorf("decodes to %+v %+v (%d bytes)", f.IPv4, f.TCP, len(b))
	}
	if c := checksum(sum(0, b[14:34])); c != 0 {
		t.Errorf("ipv4 checksum off: %#x", c)
	}
	pseudo := uint32(ProtoTCP) + 20 + 0x0a01 + 0x0064 + 0x0a01 + 0x000b
	if c := checksum(sum(pseudo, b[34:54])); c != 0 {
		t.Errorf("tcp checksum off: %#x", c)
	}
}
