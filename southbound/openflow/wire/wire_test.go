package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadMessageFraming(t *testing.T) {
	stream := append(AppendEcho(nil, TypeEchoRequest, 7, []byte("hi")), AppendEmpty(nil, TypeBarrierReply, 8)...)
	r := bytes.NewReader(stream)
	h, msg, err := ReadMessage(r)
	if err != nil || h.Type != TypeEchoRequest || h.Xid != 7 || string(msg[8:]) != "hi" {
		t.Fatalf("first message: %+v %x %v", h, msg, err)
	}
	h, _, err = ReadMessage(r)
	if err != nil || h.Type != TypeBarrierReply || h.Xid != 8 {
		t.Fatalf("second message: %+v %v", h, err)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"04020004 00000001", ErrBadLength},  // length 4 < 8
		{"01020008 00000001", ErrBadVersion}, // OF1.0 echo in a 1.3 session
		{"05020008 00000001", ErrBadVersion},
	} {
		if _, _, err := ReadMessage(bytes.NewReader(unhex(t, tc.in))); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.in, err, tc.want)
		}
	}
	// HELLO and ERROR of other versions are framed (negotiation; OVS errors).
	for _, in := range []string{"01000008 00000001", "06000008 00000001", "01010010 00000001 00010000 00000000"} {
		if _, _, err := ReadMessage(bytes.NewReader(unhex(t, in))); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	if _, _, err := ReadMessage(bytes.NewReader(unhex(t, "04020010 00000001 0000"))); err == nil {
		t.Error("truncated body: no error")
	}
}

func TestHello(t *testing.T) {
	h, err := DecodeHello(AppendHello(nil, 1))
	if err != nil || !h.Supports(4) || h.Supports(1) {
		t.Fatalf("own hello: %+v %v", h, err)
	}
	// OVS offering 1.0-1.5: bitmap 0x7a... here 0x12 = 1.0 and 1.3.
	h, _ = DecodeHello(unhex(t, "06000010 00000001 00010008 00000012"))
	if !h.Supports(4) {
		t.Error("bitmap 0x12 should offer 1.3")
	}
	h, _ = DecodeHello(unhex(t, "01000008 00000001"))
	if h.Supports(4) {
		t.Error("plain OF1.0 hello must not offer 1.3")
	}
	h, _ = DecodeHello(unhex(t, "05000008 00000001"))
	if !h.Supports(4) {
		t.Error("plain OF1.4 hello implies 1.3")
	}
	// An unknown element is skipped, a zero-length one is an error.
	if h, err = DecodeHello(unhex(t, "04000018 00000001 00070008 deadbeef 00010008 00000010")); err != nil || !h.Supports(4) {
		t.Errorf("unknown element: %+v %v", h, err)
	}
	if _, err = DecodeHello(unhex(t, "0400000c 00000001 00000000")); err == nil {
		t.Error("zero-length element: no error")
	}
}

func TestEncoders(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", AppendHello(nil, 1), "04000010 00000001 00010008 00000010"},
		{"barrier", AppendEmpty(nil, TypeBarrierRequest, 9), "04140008 00000009"},
		{"set_config", AppendSetConfig(nil, 2, NoBuffer), "0409000c 00000002 0000ffff"},
		{"role", AppendRoleRequest(nil, 3, RoleMaster, 5), "04180018 00000003 00000002 00000000 0000000000000005"},
		{"set_async", AppendSetAsync(nil, 4, AsyncConfig{PacketIn: [2]uint32{7, 0}, PortStatus: [2]uint32{7, 7}, FlowRemoved: [2]uint32{15, 0}}),
			"041c0020 00000004 00000007 00000000 00000007 00000007 0000000f 00000000"},
		{"port_desc", AppendMultipartRequest(nil, 5, MultipartPortDesc, nil), "04120010 00000005 000d0000 00000000"},
		{"flow_stats", AppendFlowStatsRequest(nil, 6, TableAll, 0, 0),
			"04120038 00000006 00010000 00000000 ff000000 ffffffff ffffffff 00000000 0000000000000000 0000000000000000 00010004 00000000"},
		{"meter_config", AppendMeterConfigRequest(nil, 7), "04120018 00000007 000a0000 00000000 ffffffff 00000000"},
		{"bundle_open", AppendBundleControl(nil, 0x0e, 1, BundleOpenRequest, BundleAtomic),
			"04040018 0000000e 4f4e4600 000008fc 00000001 00000001"},
		{"bundle_add", AppendBundleAdd(nil, 0x10, 1, BundleAtomic, AppendEmpty(nil, TypeBarrierRequest, 0x0f)),
			"04040020 00000010 4f4e4600 000008fd 00000001 00000001 04140008 00000010"},
		// ovs-ofctl -O OpenFlow13 ct-flush-zone sends these bytes for zone 5.
		{"ct_flush_zone", AppendCTFlushZone(nil, 2, 5), "04040018 00000002 00002320 0000001d 000000000000 0005"},
		{"role_status", AppendRoleStatus(nil, 0, RoleSlave, RoleStatusMasterRequest, 7),
			"04040020 00000000 4f4e4600 00000777 00000003 00000000 0000000000000007"},
		{"error", AppendError(nil, 1, ErrHelloFailed, HelloFailedIncompatible, []byte("x")), "0401000d 00000001 00000000 78"},
	} {
		if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.name, tc.got, want)
		}
	}
}

func TestDecodeError(t *testing.T) {
	e, err := DecodeError(unhex(t, "04010014 0000002a 00050001 04120010 0000002a"))
	if err != nil || e.Xid != 42 || e.Type != ErrFlowModFailed || e.Code != FlowModTableFull || len(e.Data) != 8 {
		t.Fatalf("%+v %v", e, err)
	}
	if e.Error() != "openflow error: FLOW_MOD_FAILED/TABLE_FULL" {
		t.Errorf("name: %s", e.Error())
	}
	// OF1.0 Nicira vendor error as OVS sends it inside a 1.3 session.
	e, err = DecodeError(unhex(t, "01010014 00000000 b0000002 00002320 00000001 00000000"))
	if err != nil || e.Type != ErrorTypeExperimenter || e.Experimenter != ExperimenterNicira {
		t.Fatalf("vendor error: %+v %v", e, err)
	}
}

func TestDecodePacketIn(t *testing.T) {
	// in_port=3, tunnel_id=0x64, reg0 (NXM1) and a 14-byte frame.
	msg := unhex(t, "040a0048 00000000 ffffffff 000e 01 05 00000000000000aa"+
		"0001 0020 80000004 00000003 80004c08 0000000000000064 00010004 00000009"+
		"0000 ffffffffffff 001122334455 0806")
	var p PacketIn
	if err := DecodePacketIn(msg, &p); err != nil {
		t.Fatal(err)
	}
	if p.InPort != 3 || p.TableID != 5 || p.Reason != PacketInAction || p.Cookie != 0xaa || len(p.Data) != 14 {
		t.Fatalf("%+v", p)
	}
	if o, ok := p.Match.Lookup(OXMClassOpenFlow, OXMTunnelID); !ok || o.Uint64() != 0x64 {
		t.Errorf("tunnel_id: %+v %v", o, ok)
	}
	if o, ok := p.Match.Lookup(OXMClassNXM1, 0); !ok || o.Uint64() != 9 {
		t.Errorf("reg0: %+v %v", o, ok)
	}
	// A match length running past the message is an error, not a panic.
	bad := bytes.Clone(msg)
	bad[27] = 0xff
	if err := DecodePacketIn(bad, &p); err == nil {
		t.Error("overlong match: no error")
	}
}

func portBytes(no uint32, name string, state uint32) []byte {
	b := make([]byte, 64)
	be.PutUint32(b, no)
	copy(b[8:], []byte{2, 0, 0, 0, 0, byte(no)})
	copy(b[16:32], name)
	be.PutUint32(b[36:], state)
	return b
}

func TestDecodePorts(t *testing.T) {
	msg := append(unhex(t, "040c0050 00000000 02000000 00000000"), portBytes(7, "vm1", PortStateLinkDown)...)
	ps, err := DecodePortStatus(msg)
	if err != nil || ps.Reason != PortModified || ps.Port.PortNo != 7 || ps.Port.Name != "vm1" || ps.Port.Up() || ps.Port.HWAddr[5] != 7 {
		t.Fatalf("%+v %v", ps, err)
	}
	body := append(portBytes(1, "a", 0), portBytes(0xfffffffe, "br-int", 0)...)
	ports, err := DecodePortDesc(body)
	if err != nil || len(ports) != 2 || ports[1].Name != "br-int" || !ports[0].Up() {
		t.Fatalf("%+v %v", ports, err)
	}
	if _, err := DecodePortDesc(body[:70]); err == nil {
		t.Error("partial port: no error")
	}
}

func TestDecodeFlowStats(t *testing.T) {
	entry := unhex(t, "0048 03 00 0000000a 00000000 0064 012c 0000 0001 00000000"+
		"00000000000000ff 0000000000000005 0000000000000200"+
		"0001 000c 80000004 00000001 00000000"+
		"0001 0008 02000000")
	var got []FlowStats
	if err := DecodeFlowStats(append(bytes.Clone(entry), entry...), func(fs *FlowStats) error {
		got = append(got, *fs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fs := got[0]
	if len(got) != 2 || fs.TableID != 3 || fs.Priority != 100 || fs.IdleTimeout != 300 || fs.Flags != 1 ||
		fs.Cookie != 0xff || fs.PacketCount != 5 || len(fs.Instructions) != 8 {
		t.Fatalf("%+v", got)
	}
	if p, ok := fs.Match.InPort(); !ok || p != 1 {
		t.Errorf("in_port %d %v", p, ok)
	}
	entry[1] = 0x50 // length past the body
	if err := DecodeFlowStats(entry, func(*FlowStats) error { return nil }); err == nil {
		t.Error("overlong entry: no error")
	}
}

func TestDecodeBundleAndRole(t *testing.T) {
	bc, err := DecodeBundleControl(unhex(t, "04040018 0000000e 4f4e4600 000008fc 00000001 00010001"))
	if err != nil || bc.BundleID != 1 || bc.Type != BundleOpenReply || bc.Flags != BundleAtomic {
		t.Fatalf("%+v %v", bc, err)
	}
	if _, err := DecodeBundleControl(unhex(t, "04040010 00000001 00002320 0000001e")); !errors.Is(err, ErrNotBundle) {
		t.Errorf("NX message: %v", err)
	}
	rr, err := DecodeRoleReply(unhex(t, "04190018 00000001 00000002 00000000 0000000000000009"))
	if err != nil || rr.Role != RoleMaster || rr.GenerationID != 9 {
		t.Fatalf("%+v %v", rr, err)
	}
}

func TestReproducersDoNotPanic(t *testing.T) {
	for _, h := range reproducers {
		b, _ := hex.DecodeString(h)
		decodeAll(b)
		ReadMessage(bytes.NewReader(b))
	}
}

// A peer that announces a 65,535-byte message and sends a few bytes costs
// only a small buffer.
func TestReadMessageGrowsAsBytesArrive(t *testing.T) {
	b := make([]byte, 8+100)
	PutHeader(b, TypeError, MaxMessageLen, 1)
	_, msg, err := ReadMessage(bytes.NewReader(b))
	if err != io.ErrUnexpectedEOF || len(msg) != len(b) || cap(msg) > readChunk {
		t.Errorf("err %v, len %d cap %d", err, len(msg), cap(msg))
	}
	full := make([]byte, MaxMessageLen)
	PutHeader(full, TypeError, MaxMessageLen, 1)
	full[MaxMessageLen-1] = 0xab
	h, msg, err := ReadMessage(bytes.NewReader(full))
	if err != nil || h.Length != MaxMessageLen || len(msg) != MaxMessageLen || cap(msg) != MaxMessageLen || !bytes.Equal(msg, full) {
		t.Errorf("full message: err %v, len %d cap %d", err, len(msg), cap(msg))
	}
}

// validateInPort is Validate and InPort in one pass: the same error (or
// none) and the same in_port for random TLV strings, built from valid and
// broken TLVs of the classes and fields that matter.
func TestValidateInPortAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tlv := func() []byte {
		class := []uint16{OXMClassOpenFlow, OXMClassNXM1, OXMClassExperimenter}[r.IntN(3)]
		field := []uint8{OXMInPort, OXMTunnelID, 1}[r.IntN(3)]
		masked := r.IntN(4) == 0
		l := []int{0, 3, 4, 5, 8, 12}[r.IntN(6)]
		b := []byte{byte(class >> 8), byte(class), field<<1 | b2u(masked), byte(l)}
		for range l {
			b = append(b, byte(r.IntN(256)))
		}
		return b
	}
	for i := 0; i < 20000; i++ {
		var m Match
		for range r.IntN(4) {
			m = append(m, tlv()...)
		}
		if r.IntN(5) == 0 && len(m) > 0 {
			m = m[:r.IntN(len(m))] // cut short
		}
		wantErr := m.Validate()
		wantPort, _ := m.InPort()
		port, err := m.validateInPort()
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || (err == nil && port != wantPort) {
			t.Fatalf("%x: got %d, %v; want %d, %v", []byte(m), port, err, wantPort, wantErr)
		}
	}
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// BenchmarkDecodePacketIn: a packet-in as Open vSwitch sends one from a
// table miss (in_port only) with a 64-byte frame.
func BenchmarkDecodePacketIn(b *testing.B) {
	msg := unhex(b, "040a0060 00000000 ffffffff 0040 00 00 0000000000000000"+
		"0001 000c 80000004 00000003 00000000 0000"+strings.Repeat("ab", 64))
	var p PacketIn
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := DecodePacketIn(msg, &p); err != nil || p.InPort != 3 {
			b.Fatal(err, p.InPort)
		}
	}
}
