package loadbalancer

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
)

func TestProbeFrame(t *testing.T) {
	b := appendTCP(nil, flow.MAC(0x02000000010b), VIPMAC("x"), netip.MustParseAddr("10.1.0.100"), netip.MustParseAddr("10.1.0.11"), 0xfc07, 8080, 12345, packet.TCPSyn)
	var f packet.Frame
	if err := f.Decode(b); err != nil {
		t.Fatal(err)
	}
	if f.IPv4.Src.String() != "10.1.0.100" || f.IPv4.Dst.String() != "10.1.0.11" || f.IPv4.Proto != packet.ProtoTCP ||
		f.TCP.SrcPort != 0xfc07 || f.TCP.DstPort != 8080 || f.TCP.Flags != packet.TCPSyn || f.TCP.Seq != 12345 {
		t.Errorf("probe decodes to %+v %+v", f.IPv4, f.TCP)
	}
	// Checksums: the IPv4 header and the TCP segment with its pseudo-header sum to 0xffff.
	if c := csum(0, b[14:34]); c != 0 {
		t.Errorf("ipv4 checksum off: %#x", c)
	}
	pseudo := uint32(packet.ProtoTCP) + 20 + 0x0a01 + 0x0064 + 0x0a01 + 0x000b
	if c := csum(pseudo, b[34:54]); c != 0 {
		t.Errorf("tcp checksum off: %#x", c)
	}
}

func TestFallRise(t *testing.T) {
	h := &health{st: map[hkey]*hstate{}, log: slog.Default(), onChange: func(string) {}}
	k, p, now := hkey{"lb", "10.1.0.11", 80}, checkParams{fall: 3, rise: 2}, time.Now()
	step := func(ok bool, wantUp bool) {
		t.Helper()
		h.mu.Lock()
		h.result(k, h.state(k, now), p, ok, now)
		h.mu.Unlock()
		if got := h.up("lb", "10.1.0.11", 80); got != wantUp {
			t.Fatalf("up = %v, want %v", got, wantUp)
		}
	}
	step(false, true)
	step(false, true)
	step(true, true) // a success resets the failures
	step(false, true)
	step(false, true)
	step(false, false) // the third in a row
	step(true, false)
	step(true, true)
	if h.seq != 2 {
		t.Errorf("%d changes, want 2", h.seq)
	}
}
