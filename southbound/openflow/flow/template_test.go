package flow

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// randomFlow builds a flow of one of a few shapes (picked by shape) with
// random values, so that shapes repeat with different values.
func randomFlow(r *rand.Rand, shape int) *Flow {
	s := rand.New(rand.NewPCG(uint64(shape), 7)) // the shape's structure
	var m Match
	for _, fld := range []Field{InPort, Metadata, TunnelID, TunDst, Reg0, Reg3, CTState, CTZone, EthSrc, EthDst, EthType,
		VlanVID, IPProto, IPv4Src, IPv4Dst, ARPOp, ARPTpa, TCPDst, UDPSrc, ICMPv4Type} {
		if s.IntN(4) != 0 {
			continue
		}
		v := r.Uint64()
		if s.IntN(3) == 0 {
			m = m.SetMasked(fld, v, r.Uint64()|1)
		} else {
			m = m.Set(fld, v)
		}
	}
	if s.IntN(8) == 0 {
		m = m.With(MatchField{Field: FieldRaw, Raw: "\x00\x01\xd0\x02\x00\x01"})
	}
	f := New(uint8(r.IntN(250)), uint16(r.Uint32()), m)
	f.Cookie, f.IdleTimeout, f.HardTimeout = r.Uint64(), uint16(r.Uint32()), uint16(r.Uint32())
	f.Flags = uint16(r.IntN(8))
	acts := func() []Action {
		var out []Action
		for i := s.IntN(5); i > 0; i-- {
			switch s.IntN(8) {
			case 0:
				out = append(out, Output(r.Uint32()))
			case 1:
				out = append(out, Output(PortController))
			case 2:
				out = append(out, ToGroup(r.Uint32()))
			case 3:
				out = append(out, SetField([]Field{EthDst, TunDst, VlanVID, IPv4Src, TunnelID, Reg1}[s.IntN(6)], r.Uint64()))
			case 4:
				out = append(out, PushVLAN(), SetQueue(r.Uint32()))
			case 5:
				out = append(out, PopVLAN(), DecTTL())
			case 6:
				out = append(out, RawAction([]byte{0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 1, byte(r.IntN(255)), 5, 0, 0, 0, 0}))
			default:
				out = append(out, Action{Kind: ActPushVLAN, Arg: uint32(r.Uint32() & 0xffff)})
			}
		}
		return out
	}
	f.Apply = acts()
	if s.IntN(4) == 0 {
		f.Write = acts()
	}
	if s.IntN(3) == 0 {
		f.Meter = r.Uint32() | 1
	}
	f.ClearActions = s.IntN(5) == 0
	if s.IntN(4) == 0 {
		f.WriteMetadata, f.Metadata, f.MetadataMask = true, r.Uint64(), r.Uint64()
	}
	if s.IntN(2) == 0 {
		f.GotoTable = int16(r.IntN(254))
	}
	return f
}

// TestEncoderMatchesLibOpenflow: the template encoder's bytes equal
// libOpenflow's for thousands of random flows over repeated shapes.
func TestEncoderMatchesLibOpenflow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var e Encoder
	for i := 0; i < 20000; i++ {
		f := randomFlow(r, i%97)
		cmd := []uint8{CmdAdd, CmdModifyStrict, CmdDeleteStrict, CmdAdd}[i%4]
		xid := r.Uint32()
		want, err := f.AppendFlowMod([]byte("prefix"), cmd, xid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendFlowMod([]byte("prefix"), f, cmd, xid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("flow %d %s (cmd %d):\n got %x\nwant %x", i, f, cmd, got, want)
		}
	}
	if e.Templated < 15000 {
		t.Errorf("only %d of 20000 flows used a template (%d encoded)", e.Templated, e.Encoded)
	}
	for k, tmpl := range e.templates {
		if tmpl == nil {
			t.Errorf("shape %x could not be templated", k.b[:k.n])
		}
	}
	t.Logf("templated %d, encoded by libOpenflow %d", e.Templated, e.Encoded)
}

func BenchmarkEncodeFlowMod(b *testing.B) {
	f := New(1, 100, Match{}.InPort(3).EthSrc(mac1)).Goto(2)
	f.IdleTimeout, f.Flags, f.Cookie = 300, FlagSendFlowRem, 1<<48
	b.Run("libOpenflow", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for i := 0; i < b.N; i++ {
			buf, _ = f.AppendFlowMod(buf[:0], CmdAdd, uint32(i))
		}
	})
	b.Run("template", func(b *testing.B) {
		b.ReportAllocs()
		var e Encoder
		buf := make([]byte, 0, 256)
		for i := 0; i < b.N; i++ {
			buf, _ = e.AppendFlowMod(buf[:0], f, CmdAdd, uint32(i))
		}
	})
}

func TestEncoderPacketOutMatchesLibOpenflow(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var e Encoder
	for i := 0; i < 5000; i++ {
		f := randomFlow(r, i%31)
		data := make([]byte, r.IntN(1600))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		xid, in := r.Uint32(), r.Uint32()
		want, err := AppendPacketOut([]byte("p"), xid, in, f.Apply, data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendPacketOut([]byte("p"), xid, in, f.Apply, data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet-out %d %v:\n got %x\nwant %x", i, f.Apply, got, want)
		}
	}
	for k, tmpl := range e.templates {
		if tmpl == nil {
			t.Errorf("shape %x could not be templated", k.b[:k.n])
		}
	}
}

// Packet-outs of one shape in a row (the last shape is kept beside the
// map), then shapes of the same length that differ in kind: each is
// libOpenflow's bytes.
func TestEncoderPacketOutRepeatedShapes(t *testing.T) {
	long := func(p uint32) []Action { // a shape of more than 16 bytes
		var acts []Action
		for i := range uint32(20) {
			acts = append(acts, Output(p+i))
		}
		return acts
	}
	var e Encoder
	frame := bytes.Repeat([]byte{0xab}, 60)
	for i, acts := range [][]Action{
		{Output(1)}, {Output(2)}, {Output(PortFlood)},
		{ToGroup(7)}, {SetQueue(3)}, {ToGroup(8)}, {Output(5)},
		{PushVLAN(), Output(1)}, {PopVLAN(), Output(1)}, {PushVLAN(), Output(4)}, {DecTTL(), ToGroup(1)},
		{Output(9)}, {Output(10)},
		long(1), long(2), {Output(11)}, long(3),
	} {
		want, err := AppendPacketOut([]byte("p"), uint32(i), uint32(i+1), acts, frame)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendPacketOut([]byte("p"), uint32(i), uint32(i+1), acts, frame)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("packet-out %d %v:\n got %x\nwant %x", i, acts, got, want)
		}
	}
}

// BenchmarkEncodePacketOut: l2switch's answer to a packet-in (output to a
// port, a 64-byte frame), the same shape every time.
func BenchmarkEncodePacketOut(b *testing.B) {
	frame := make([]byte, 64)
	var e Encoder
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf, _ = e.AppendPacketOut(buf[:0], uint32(i), 1, []Action{Output(uint32(i) % 16)}, frame)
	}
}
