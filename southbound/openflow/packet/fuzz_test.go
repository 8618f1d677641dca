package packet

import (
	"errors"
	"math/bits"
	"reflect"
	"testing"
)

// reproducers are inputs known to crash or hang other decoders.
var reproducers = []string{
	macs + "0800 40 00 0014 0000 0000 40 06 0000" + ipHosts,                        // IPv4 IHL 0
	macs + "0800 4f 00 003c 0000 0000 40 06 0000" + ipHosts,                        // IPv4 IHL*4 beyond frame
	"01020304050601020304050681000001",                                             // truncated 802.1Q tag
	macs + "86dd 60000000 0008 00 40" + v6Hosts + "00 ff 0000 00000000",            // HBH next 0, length 255
	macs + "86dd 60000000 0000 00 40" + v6Hosts + "00 00 0000 00000000 00 00 0000", // HBH chain, jumbo length
	macs + "88cc 0207 04 020000000001  0403 02 0001  07ff 0078",                    // LLDP TLV overrun
}

func FuzzFrameDecode(f *testing.F) {
	for _, s := range reproducers {
		f.Add(hx(s))
	}
	for _, tc := range decodeTests {
		f.Add(hx(tc.in))
	}
	for _, b := range allocFrames {
		f.Add(b)
	}
	used := tableFrame("QinQ IPv4 UDP")
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr Frame
		err := fr.Decode(b)
		checkFrame(t, b, &fr, err)

		var again Frame
		_ = again.Decode(used)
		if err2 := again.Decode(b); err2 != err || !reflect.DeepEqual(norm(again), norm(fr)) {
			t.Fatalf("decoding into a used Frame gives %v\n%+v\nwant %v\n%+v", err2, again, err, fr)
		}
	})
}

func FuzzLLDP(f *testing.F) {
	for _, s := range []string{
		lldpMin, lldpMin + "0000", "", "02", "02ff 04 0200", "0000",
		lldpMin + "0804 65746830 0a02 7377 fe06 0026e1 01 abcd 0000",
		lldpMin + "fe03 0026e1", lldpMin + "fffe 0000", lldpMin + "0207 04 020000000001",
	} {
		f.Add(hx(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l LLDP
		err := l.Decode(b)
		checkErr(t, err)
		checkLLDP(t, b, &l)
		if err != nil {
			return
		}

		c := l.Clone()
		if !reflect.DeepEqual(c, l) {
			t.Fatalf("Clone() = %+v, want %+v", c, l)
		}
		if len(c.ChassisID.Value) > 0 && &c.ChassisID.Value[0] == &l.ChassisID.Value[0] {
			t.Fatal("Clone aliases the input")
		}

		// Re-encoding what AppendLLDP can carry gives it back.
		frame := AppendLLDP(nil, mac1, LLDPInfo{
			ChassisID: l.ChassisID, PortID: l.PortID, TTL: l.TTL,
			SystemName: l.SystemName, Org: l.Org[:l.NumOrg],
		})
		var fr Frame
		if err := fr.Decode(frame); err != nil || fr.Layers != HasLLDP {
			t.Fatalf("re-encoded LLDP %x: %v", frame, err)
		}
		want := l
		want.PortDescription = nil
		want.SystemName = want.SystemName[:min(len(want.SystemName), 255)]
		if got := fr.LLDP; !reflect.DeepEqual(norm(Frame{LLDP: got}), norm(Frame{LLDP: want})) {
			t.Fatalf("re-encoded LLDP decodes as\n%+v\nwant\n%+v", got, want)
		}
	})
}

// checkErr checks that err is nil or one of the decoders' errors.
func checkErr(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if err != nil && (!errors.As(err, &e) || !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed)) {
		t.Fatalf("error %v (%T) is not a *Error of a known kind", err, err)
	}
}

// checkFrame checks the invariants of a Frame decoded from b.
func checkFrame(t *testing.T, b []byte, f *Frame, err error) {
	t.Helper()
	checkErr(t, err)
	l := f.Layers
	fail := func(what string) { t.Helper(); t.Fatalf("%s: %v %+v", what, err, f) }
	if (l&HasVLAN != 0) != (f.NumVLANs > 0) || f.NumVLANs > len(f.VLANs) {
		fail("VLANs")
	}
	if bits.OnesCount16(uint16(l&(HasARP|HasIPv4|HasIPv6|HasLLDP))) > 1 {
		fail("more than one L3")
	}
	if n := bits.OnesCount16(uint16(l & (HasTCP | HasUDP | HasICMP))); n > 1 || n == 1 && l&(HasIPv4|HasIPv6) == 0 {
		fail("L4")
	}
	if off, ok := offsetIn(b, f.L3); f.L3 != nil && (!ok || off != f.L3Offset || off+len(f.L3) != len(b)) {
		fail("L3 slice")
	}
	if off, ok := offsetIn(b, f.L4); f.L4 != nil && (!ok || off != f.L4Offset) {
		fail("L4 slice")
	}
	if _, ok := offsetIn(b, f.Payload); f.Payload != nil && !ok {
		fail("Payload slice")
	}
	if l&HasARP != 0 && (f.EtherType != EtherTypeARP || !f.ARP.SPA.Is4() || !f.ARP.TPA.Is4()) {
		fail("ARP")
	}
	if ip := f.IPv4; l&HasIPv4 != 0 && (f.EtherType != EtherTypeIPv4 || !ip.Src.Is4() || !ip.Dst.Is4() || ip.IHL < 5 ||
		f.L4Offset != f.L3Offset+4*int(ip.IHL) || len(f.L4) > int(ip.Length)-4*int(ip.IHL)) {
		fail("IPv4")
	}
	if ip := f.IPv6; l&HasIPv6 != 0 && (f.EtherType != EtherTypeIPv6 || !ip.Src.Is6() || !ip.Dst.Is6() ||
		f.L4Offset < f.L3Offset+40 || isExtHeader(ip.NextHeader)) {
		fail("IPv6")
	}
	if l&HasTCP != 0 && (f.TCP.DataOffset < 5 || len(f.Payload) != len(f.L4)-4*int(f.TCP.DataOffset)) {
		fail("TCP")
	}
	if l&HasUDP != 0 && (f.UDP.Length < 8 || len(f.Payload) > int(f.UDP.Length)-8) {
		fail("UDP")
	}
	if l&HasLLDP != 0 && f.EtherType != EtherTypeLLDP {
		fail("LLDP")
	}
	checkLLDP(t, b, &f.LLDP)
}

// checkLLDP checks the invariants of an LLDP decoded, maybe partly, from b.
func checkLLDP(t *testing.T, b []byte, l *LLDP) {
	t.Helper()
	for _, id := range []LLDPID{l.ChassisID, l.PortID} {
		if id.Value != nil && (len(id.Value) < 1 || len(id.Value) > 255) {
			t.Fatalf("ID length %d", len(id.Value))
		}
	}
	if l.NumOrg < 0 || l.NumOrg > MaxOrgTLVs {
		t.Fatalf("NumOrg %d", l.NumOrg)
	}
	values := [][]byte{l.ChassisID.Value, l.PortID.Value, l.PortDescription, l.SystemName}
	for i, o := range l.Org {
		if i >= l.NumOrg && !reflect.DeepEqual(o, OrgTLV{}) || len(o.Value) > 507 {
			t.Fatalf("Org[%d] = %+v with NumOrg %d", i, o, l.NumOrg)
		}
		values = append(values, o.Value)
	}
	for _, v := range values {
		if _, ok := offsetIn(b, v); v != nil && !ok {
			t.Fatalf("LLDP value %x is not inside the input", v)
		}
	}
}

// offsetIn reports where s starts in b, and whether s lies inside b. s must
// have been sliced from b (as a decoder does) or be nil.
func offsetIn(b, s []byte) (int, bool) {
	off := cap(b) - cap(s)
	if off < 0 || off+len(s) > len(b) {
		return off, false
	}
	return off, len(s) == 0 || &b[off] == &s[0]
}
