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
