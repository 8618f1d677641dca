package flow

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

func TestConjunction(t *testing.T) {
	a := Conjunction(0x01020304, 2, 3)
	// nx_action_conjunction as OVS encodes conjunction(16909060,2/3):
	// clause is 0-based on the wire.
	if want := unhex(t, "ffff0010 00002320 0022 01 03 01020304"); !bytes.Equal([]byte(a.Raw), want) {
		t.Errorf("encoded %x, want %x", a.Raw, want)
	}
	if got := a.String(); got != "conjunction(16909060,2/3)" {
		t.Errorf("String %s", got)
	}
	if id, k, n, ok := ConjunctionOf(a); !ok || id != 0x01020304 || k != 2 || n != 3 {
		t.Errorf("ConjunctionOf = %d %d/%d %v", id, k, n, ok)
	}
	if _, _, _, ok := ConjunctionOf(Resubmit(3)); ok {
		t.Error("a resubmit read as a conjunction")
	}
	for _, bad := range [][2]int{{0, 2}, {3, 2}, {1, 1}, {1, 65}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Conjunction(1, %d, %d) did not panic", bad[0], bad[1])
				}
			}()
			Conjunction(1, bad[0], bad[1])
		}()
	}
}

// TestConjunctiveFlowsRoundTrip: clause flows with several conjunction
// actions, the conj_id flow and masked transport ports encode, decode
// and print as ovs-ofctl writes them.
func TestConjunctiveFlowsRoundTrip(t *testing.T) {
	base := Match{}.SetMasked(CTState, 0x21, 0x21).EthType(0x0800)
	flows := []*Flow{
		New(9, 1000, base.Set(Reg7, 3)).Act(Conjunction(7, 1, 3), Conjunction(8, 1, 2)),
		New(9, 1000, base.Set(IPv4Src, 0x0a01000b)).Act(Conjunction(7, 2, 3)),
		New(9, 1000, base.IPProto(6).SetMasked(TCPDst, 0x400, 0xfc00)).Act(Conjunction(7, 3, 3)),
		New(9, 1000, base.IPProto(17).SetMasked(UDPDst, 53, 0xffff)).Act(Conjunction(8, 2, 2)),
		New(9, 1000, Match{}.Set(ConjID, 7).EthType(0x0800)).Act(CT(CTSpec{Commit: true, Table: NoRecirc, ZoneFromField: true, ZoneFrom: CTZone})).Goto(10),
	}
	want := []string{
		"table=9, priority=1000,ct_state=+new+trk,ip,reg7=0x3 actions=conjunction(7,1/3),conjunction(8,1/2)",
		"table=9, priority=1000,ct_state=+new+trk,ip,nw_src=10.1.0.11 actions=conjunction(7,2/3)",
		"table=9, priority=1000,ct_state=+new+trk,tcp,tp_dst=0x400/0xfc00 actions=conjunction(7,3/3)",
		"table=9, priority=1000,ct_state=+new+trk,udp,tp_dst=53 actions=conjunction(8,2/2)",
		"table=9, priority=1000,conj_id=7,ip actions=ct(commit,zone=NXM_NX_CT_ZONE[]),goto_table:10",
	}
	var enc Encoder
	for i, f := range flows {
		if got := f.String(); got != want[i] {
			t.Errorf("got  %s\nwant %s", got, want[i])
		}
		for pass := 0; pass < 2; pass++ { // libOpenflow, then the template
			fm, err := enc.AppendFlowMod(nil, f, CmdAdd, 1)
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := f.AppendFlowMod(nil, CmdAdd, 1)
			if !bytes.Equal(fm, plain) {
				t.Errorf("%s: the template encodes\n %x\nlibOpenflow\n %x", f, fm, plain)
			}
			var got *Flow
			err = wire.DecodeFlowStats(statsEntry(t, fm), func(fs *wire.FlowStats) error {
				got, err = FromStats(fs)
				return err
			})
			if err != nil || !got.Equal(f) || got.Key() != f.Key() {
				t.Errorf("round trip: %v\n sent %s\n read %s", err, f, got)
			}
		}
	}
}

// TestPortRange checks the masked blocks against every port for random
// ranges and the edges.
func TestPortRange(t *testing.T) {
	for _, c := range []struct {
		lo, hi uint16
		want   [][2]uint64
	}{
		{80, 80, [][2]uint64{{80, 0xffff}}},
		{1024, 2047, [][2]uint64{{1024, 0xfc00}}},
		{8000, 8003, [][2]uint64{{8000, 0xfffc}}},
		{1, 65535, nil}, // 16 blocks
	} {
		got := PortRange(c.lo, c.hi)
		if c.want != nil && !equalBlocks(got, c.want) {
			t.Errorf("PortRange(%d, %d) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
	if n := len(PortRange(1, 65535)); n != 16 {
		t.Errorf("1-65535: %d blocks, want 16", n)
	}
	if n := len(PortRange(1, 65534)); n != 30 {
		t.Errorf("1-65534: %d blocks, want 30 (the most)", n)
	}
	if got := PortRange(0, 65535); len(got) != 1 || got[0][1] != 0 {
		t.Errorf("0-65535 = %v, want one block with mask 0", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		lo := uint16(r.IntN(65536))
		hi := lo + uint16(r.IntN(65536-int(lo)))
		if i%4 == 0 {
			hi = lo + uint16(r.IntN(min(300, 65536-int(lo))))
		}
		blocks := PortRange(lo, hi)
		if len(blocks) > 30 {
			t.Errorf("PortRange(%d, %d): %d blocks", lo, hi, len(blocks))
		}
		for p := 0; p < 65536; p++ {
			n := 0
			for _, b := range blocks {
				if uint64(p)&b[1] == b[0] {
					n++
				}
			}
			if in := p >= int(lo) && p <= int(hi); (in && n != 1) || (!in && n != 0) {
				t.Fatalf("PortRange(%d, %d) = %v: port %d matched by %d blocks", lo, hi, blocks, p, n)
			}
		}
	}
}

func equalBlocks(a, b [][2]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOfctlParsesConjunctiveFlows hands the encoded FLOW_MODs to
// ovs-ofctl ofp-parse (when installed): OVS decodes the conjunction
// action, conj_id and masked ports to what Loom prints.
func TestOfctlParsesConjunctiveFlows(t *testing.T) {
	ofctl(t)
	base := Match{}.SetMasked(CTState, 0x21, 0x21).EthType(0x0800)
	flows := []*Flow{
		New(9, 1000, base.Set(Reg7, 3)).Act(Conjunction(7, 1, 3), Conjunction(8, 1, 2)),
		New(9, 1000, base.IPProto(6).SetMasked(TCPDst, 0x400, 0xfc00)).Act(Conjunction(7, 3, 3)),
		New(9, 1000, base.IPProto(17).SetMasked(UDPSrc, 0x8000, 0x8000)).Act(Conjunction(4294967295, 64, 64)),
		New(9, 1000, Match{}.Set(ConjID, 7).EthType(0x0800)).Act(CT(CTSpec{Commit: true, Table: NoRecirc, ZoneFromField: true, ZoneFrom: CTZone})).Goto(10),
		New(8, 10, Match{}.Set(Reg7, 3).EthType(0x0800)).Act(CT(CTSpec{Table: 9, ZoneFromField: true, ZoneFrom: Reg7})),
	}
	want := []string{
		"ADD table:9 priority=1000,ct_state=+new+trk,ip,reg7=0x3 actions=conjunction(7,1/3),conjunction(8,1/2)",
		"ADD table:9 priority=1000,ct_state=+new+trk,tcp,tp_dst=0x400/0xfc00 actions=conjunction(7,3/3)",
		"ADD table:9 priority=1000,ct_state=+new+trk,udp,tp_src=0x8000/0x8000 actions=conjunction(4294967295,64/64)",
		"ADD table:9 priority=1000,conj_id=7,ip actions=ct(commit,zone=NXM_NX_CT_ZONE[]),goto_table:10",
		"ADD table:8 priority=10,ip,reg7=0x3 actions=ct(table=9,zone=NXM_NX_REG7[0..15])",
	}
	var b []byte
	for _, f := range flows {
		var err error
		if b, err = f.AppendFlowMod(b, CmdAdd, 1); err != nil {
			t.Fatal(err)
		}
	}
	out := ofpParse(t, b)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("ovs-ofctl read %d messages:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, want[i]) {
			t.Errorf("ovs-ofctl read\n %s\nwant\n %s", l, want[i])
		}
	}
}
