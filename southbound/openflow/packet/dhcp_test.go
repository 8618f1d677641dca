package packet

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// udhcpcDiscover is a DHCPDISCOVER captured from busybox 1.35 udhcpc
// (`udhcpc -i eth0 -x hostname:vm1`) on a veth pair: broadcast, flags 0,
// options 53, 57 (576), 55, 12, 60 and 61, End, zero padding.
var udhcpcDiscover = `
ffffffffffff 02000000aa02 0800
45000148 00000000 4011 79a6 00000000 ffffffff
0044 0043 0134 4a09
01 01 06 00 72593e31 0000 0000 00000000 00000000 00000000 00000000
02000000aa02 00000000000000000000` + zeros64 + zeros64 + zeros64 + `
63825363
35 01 01
39 02 0240
37 07 0103060c0f1c2a
0c 03 766d31
3c 0c 756468637020312e33352e30
3d 07 0102000000aa02
ff 0000000000000000000000000000`

// zeros64 is 64 zero bytes in hex.
var zeros64 = strings.Repeat("00", 64)

func discoverPayload(t testing.TB) []byte {
	t.Helper()
	var f Frame
	if err := f.Decode(hx(udhcpcDiscover)); err != nil || f.Layers != HasIPv4|HasUDP {
		t.Fatalf("captured frame: %v %v", f.Layers, err)
	}
	if c := checksum(sum(0, f.L3[:20])); c != 0 {
		t.Fatalf("captured IPv4 header checksum does not check: %#x", c)
	}
	return f.Payload
}

func TestDHCPDecodeUdhcpcDiscover(t *testing.T) {
	var d DHCP
	if err := d.Decode(discoverPayload(t)); err != nil {
		t.Fatal(err)
	}
	zero := netip.IPv4Unspecified()
	if d.Op != BootRequest || d.HType != 1 || d.HLen != 6 || d.Xid != 0x72593e31 || d.Flags != 0 ||
		d.CIAddr != zero || d.YIAddr != zero || d.SIAddr != zero || d.GIAddr != zero {
		t.Errorf("header: %+v", d)
	}
	if d.ClientMAC() != (MAC{2, 0, 0, 0, 0xaa, 2}) {
		t.Errorf("chaddr %v", d.ClientMAC())
	}
	if d.MessageType != DHCPDiscover || d.MaxSize != 576 || string(d.Hostname) != "vm1" ||
		!bytes.Equal(d.ParamList, hx("0103060c0f1c2a")) || !bytes.Equal(d.ClientID, hx("0102000000aa02")) {
		t.Errorf("options: %+v", d)
	}
	if d.RequestedIP.IsValid() || d.ServerID.IsValid() || d.StaticRoutes != nil {
		t.Errorf("absent options set: %+v", d)
	}
	if !d.Requests(DHCPOptRouter) || d.Requests(DHCPOptStaticRoutes) {
		t.Error("Requests")
	}
}

// dhcpMsg builds a DHCP request with the given options (hex, without
// the End option).
func dhcpMsg(opts string) []byte {
	b := make([]byte, dhcpFixedLen, 300)
	b[0], b[1], b[2] = BootRequest, 1, 6
	copy(b[4:], []byte{1, 2, 3, 4})
	copy(b[28:], mac1[:])
	b = append(b, dhcpMagic[:]...)
	b = append(b, hx(opts)...)
	return append(b, DHCPOptEnd)
}

func TestDHCPDecodeOptions(t *testing.T) {
	var d DHCP
	b := dhcpMsg("350103 3204 0a000005 3604 0a000001 0104 ffffff00 0308 0a000001 0a000002 0604 08080808" +
		"3304 00015180 3a04 0000a8c0 3b04 00012750 1a02 05aa 790b 00 0a000001 08 0a 0a000002")
	b[12], b[15] = 10, 5 // ciaddr 10.0.0.5
	if err := d.Decode(b); err != nil {
		t.Fatal(err)
	}
	if d.MessageType != DHCPRequest || d.RequestedIP != ip("10.0.0.5") || d.ServerID != ip("10.0.0.1") ||
		d.CIAddr != ip("10.0.0.5") || d.SubnetMask != ip("255.255.255.0") || d.LeaseTime != 86400 ||
		d.T1 != 43200 || d.T2 != 75600 || d.MTU != 1450 {
		t.Errorf("decoded %+v", d)
	}
	if got := d.RouterAddrs(); !reflect.DeepEqual(got, []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")}) {
		t.Errorf("routers %v", got)
	}
	if got := d.DNSAddrs(); !reflect.DeepEqual(got, []netip.Addr{ip("8.8.8.8")}) {
		t.Errorf("dns %v", got)
	}
	want := []DHCPRoute{{netip.MustParsePrefix("0.0.0.0/0"), ip("10.0.0.1")}, {netip.MustParsePrefix("10.0.0.0/8"), ip("10.0.0.2")}}
	if got := d.Routes(); !reflect.DeepEqual(got, want) {
		t.Errorf("routes %v", got)
	}

	// Options in file and sname (overload 3): file first, then sname.
	b = dhcpMsg("3401 03 3501 01")
	copy(b[dhcpFile:], hx("0c02 6869 ff"))
	copy(b[dhcpSName:], hx("3204 0a000009 ff"))
	if err := d.Decode(b); err != nil || string(d.Hostname) != "hi" || d.RequestedIP != ip("10.0.0.9") {
		t.Errorf("overload: %v %+v", err, d)
	}
	// Without End, and with unknown options.
	b = dhcpMsg("3501 01 e0 03 010203")
	if err := d.Decode(b[:len(b)-1]); err != nil || d.MessageType != DHCPDiscover {
		t.Errorf("no End: %v %+v", err, d)
	}
}

func TestDHCPDecodeErrors(t *testing.T) {
	long := dhcpMsg("3501 01")
	long[2] = 17
	noMagic := dhcpMsg("3501 01")
	noMagic[dhcpFixedLen] = 0
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"no options field", dhcpMsg("")[:dhcpFixedLen+2], ErrTruncated},
		{"no magic cookie", noMagic, ErrMalformed},
		{"hlen 17", long, ErrMalformed},
		{"option past the end", dhcpMsg("3501 01 0c05 6869")[:dhcpHeadLen+7], ErrTruncated},
		{"option header cut", dhcpMsg("3501 01 0c")[:dhcpHeadLen+4], ErrTruncated},
		{"type repeated", dhcpMsg("3501 01 3501 03"), ErrMalformed},
		{"type 0", dhcpMsg("3501 00"), ErrMalformed},
		{"type of 2 bytes", dhcpMsg("3502 0101"), ErrMalformed},
		{"requested IP of 3 bytes", dhcpMsg("3501 03 3203 0a0000"), ErrMalformed},
		{"router list of 5 bytes", dhcpMsg("3501 02 0305 0a00000101"), ErrMalformed},
		{"empty client id", dhcpMsg("3501 01 3d00"), ErrMalformed},
		{"route /33", dhcpMsg("3501 05 7905 21 0a000001"), ErrMalformed},
		{"route short", dhcpMsg("3501 05 7905 18 0a0000 0a"), ErrMalformed},
		{"route host bits", dhcpMsg("3501 05 7906 07 0b 0a000001"), ErrMalformed},
		{"route host bits in last octet", dhcpMsg("3501 05 7907 09 0a40 0a000001"), ErrMalformed},
		{"overload 4", dhcpMsg("3401 04 3501 01"), ErrMalformed},
		{"overload in file", func() []byte {
			b := dhcpMsg("3401 01 3501 01")
			copy(b[dhcpFile:], hx("3401 01 ff"))
			return b
		}(), ErrMalformed},
		{"sname overrun", func() []byte {
			b := dhcpMsg("3401 02 3501 01")
			copy(b[dhcpSName+62:], hx("0c09"))
			return b
		}(), ErrTruncated},
	} {
		var d DHCP
		err := d.Decode(tc.in)
		var e *Error
		if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Layer != "dhcp" {
			t.Errorf("%s: %v, want a dhcp %v", tc.name, err, tc.want)
		}
	}
}

// TestDHCPRoutesRFC3442 checks the encodings of RFC 3442's table.
func TestDHCPRoutesRFC3442(t *testing.T) {
	gw := ip("10.0.0.1")
	for _, tc := range []struct{ dst, enc string }{
		{"0.0.0.0/0", "00"},
		{"10.0.0.0/8", "08 0a"},
		{"10.0.0.0/9", "09 0a00"},
		{"10.17.0.0/16", "10 0a11"},
		{"10.27.129.0/24", "18 0a1b81"},
		{"10.229.0.128/25", "19 0ae50080"},
		{"10.198.122.47/32", "20 0ac67a2f"},
	} {
		r := DHCPReply{Type: DHCPAck, ServerID: gw, Routes: []DHCPRoute{{netip.MustParsePrefix(tc.dst), gw}}}
		b := AppendDHCP(nil, &r)
		want := append(hx("79"), byte(len(hx(tc.enc))+4))
		want = append(append(want, hx(tc.enc)...), hx("0a000001 ff")...)
		if !bytes.Contains(b, want) {
			t.Errorf("%s: option 121 is not %x in %x", tc.dst, want, b[dhcpHeadLen:])
		}
		var d DHCP
		if err := d.Decode(b); err != nil || !reflect.DeepEqual(d.Routes(), r.Routes) {
			t.Errorf("%s: decodes as %v, %v", tc.dst, d.Routes(), err)
		}
	}
}

func offer() DHCPReply {
	var req DHCP
	if err := req.Decode(dhcpMsg("3501 01 3902 0240")); err != nil {
		panic(err)
	}
	r := NewDHCPReply(&req, DHCPOffer)
	r.YIAddr, r.ServerID, r.Mask, r.Router = ip("10.1.0.11"), ip("10.1.0.1"), ip("255.255.255.0"), ip("10.1.0.1")
	r.LeaseTime, r.T1, r.T2, r.MTU = 3600, 1800, 3150, 1450
	r.DNS = []netip.Addr{ip("8.8.8.8"), ip("1.1.1.1")}
	r.Routes = []DHCPRoute{{netip.MustParsePrefix("0.0.0.0/0"), ip("10.1.0.1")}, {netip.MustParsePrefix("192.168.0.0/16"), ip("10.1.0.254")}}
	return r
}

func TestAppendDHCP(t *testing.T) {
	r := offer()
	b := AppendDHCP([]byte("xx"), &r)[2:]
	if len(b) < dhcpMinLen {
		t.Errorf("reply of %d bytes, want at least BOOTP's 300", len(b))
	}
	opts := hx(`63825363 3501 02 3604 0a010001 3304 00000e10 3a04 00000708 3b04 00000c4e 0104 ffffff00 0304 0a010001
		0608 08080808 01010101 1a02 05aa 790c 00 0a010001 10 c0a8 0a0100fe ff`)
	if !bytes.HasPrefix(b[dhcpFixedLen:], opts) {
		t.Errorf("options\n%x\nwant\n%x", b[dhcpFixedLen:], opts)
	}
	var d DHCP
	if err := d.Decode(b); err != nil {
		t.Fatal(err)
	}
	if d.Op != BootReply || d.Xid != 0x01020304 || d.ClientMAC() != mac1 || d.YIAddr != r.YIAddr ||
		d.CIAddr != netip.IPv4Unspecified() || d.SIAddr != netip.IPv4Unspecified() || d.MessageType != DHCPOffer {
		t.Errorf("decodes as %+v", d)
	}

	// A NAK carries its type and server id only.
	nak := DHCPReply{Type: DHCPNak, ServerID: ip("10.1.0.1"), Xid: 7}
	b = AppendDHCP(nil, &nak)
	if !bytes.HasPrefix(b[dhcpFixedLen:], hx("63825363 3501 06 3604 0a010001 ff")) {
		t.Errorf("NAK options %x", b[dhcpFixedLen:])
	}
}

func TestAppendDHCPFitsMaxSize(t *testing.T) {
	r := offer()
	r.MaxSize = 0 // 576
	for i := range 6 {
		r.DNS = append(r.DNS, netip.AddrFrom4([4]byte{10, 9, 9, byte(i)}))
	}
	for i := range 40 {
		r.Routes = append(r.Routes, DHCPRoute{netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 0}), 24), ip("10.1.0.254")})
	}
	b := AppendDHCP(nil, &r)
	var d DHCP
	if err := d.Decode(b); err != nil {
		t.Fatal(err)
	}
	if len(b) > 576-28 || d.StaticRoutes != nil || d.MTU != 1450 || d.LeaseTime != 3600 || len(d.DNSAddrs()) != 8 {
		t.Errorf("%d bytes, routes %d, lease %d: the routes must be left out, the rest kept", len(b), len(d.Routes()), d.LeaseTime)
	}
	r.MaxSize = 1500
	b = AppendDHCP(nil, &r)
	if err := d.Decode(b); err != nil || len(d.Routes()) != 32 {
		t.Errorf("MaxSize 1500: %v, %d routes (one option holds the default and 31 /24 routes)", err, len(d.Routes()))
	}
}

func TestDHCPDestination(t *testing.T) {
	peer := MAC{2, 0, 0, 0, 0, 9}
	bcast := ip("255.255.255.255")
	for _, tc := range []struct {
		name   string
		edit   func(r *DHCPReply)
		mac    MAC
		ip     netip.Addr
		port   uint16
		layers Layers
	}{
		{"offer, no broadcast flag: to yiaddr at chaddr", func(*DHCPReply) {}, mac1, ip("10.1.0.11"), 68, 0},
		{"offer, broadcast flag", func(r *DHCPReply) { r.Flags = DHCPBroadcast }, Broadcast, bcast, 68, 0},
		{"ack to a renewing client: to ciaddr", func(r *DHCPReply) { r.Type, r.CIAddr = DHCPAck, ip("10.1.0.11") }, peer, ip("10.1.0.11"), 68, 0},
		{"nak: broadcast", func(r *DHCPReply) { r.Type, r.CIAddr = DHCPNak, ip("10.1.0.11") }, Broadcast, bcast, 68, 0},
		{"relayed: to giaddr, port 67", func(r *DHCPReply) { r.GIAddr = ip("10.1.0.254"); r.Type = DHCPNak }, peer, ip("10.1.0.254"), 67, 0},
	} {
		r := offer()
		tc.edit(&r)
		b := AppendDHCPFrame(nil, mac2, ip("10.1.0.1"), peer, &r)
		var f Frame
		if err := f.Decode(b); err != nil || f.Layers != HasIPv4|HasUDP {
			t.Fatalf("%s: %v %v", tc.name, f.Layers, err)
		}
		if f.Dst != tc.mac || f.Src != mac2 || f.IPv4.Dst != tc.ip || f.IPv4.Src != ip("10.1.0.1") || f.IPv4.TTL != 64 ||
			f.UDP.SrcPort != 67 || f.UDP.DstPort != tc.port {
			t.Errorf("%s: %v %v -> %v %v:%d", tc.name, f.Src, f.IPv4.Src, f.Dst, f.IPv4.Dst, f.UDP.DstPort)
		}
		if c := checksum(sum(0, f.L3[:20])); c != 0 {
			t.Errorf("%s: IPv4 checksum does not check", tc.name)
		}
		if c := checksum(sum(ProtoUDP+uint32(len(f.L4)), append(f.L3[12:20:20], f.L4...))); c != 0 || f.UDP.Checksum == 0 {
			t.Errorf("%s: UDP checksum %#x does not check", tc.name, f.UDP.Checksum)
		}
		if int(f.UDP.Length) != len(f.L4) || int(f.IPv4.Length) != 20+len(f.L4) {
			t.Errorf("%s: lengths IPv4 %d UDP %d, L4 %d", tc.name, f.IPv4.Length, f.UDP.Length, len(f.L4))
		}
		var d DHCP
		if err := d.Decode(f.Payload); err != nil || d.Xid != r.Xid || d.MessageType != r.Type {
			t.Errorf("%s: payload %v %+v", tc.name, err, d)
		}
	}
}

func TestDHCPDecodeAllocs(t *testing.T) {
	b := discoverPayload(t)
	var d DHCP
	if n := testing.AllocsPerRun(100, func() { _ = d.Decode(b) }); n != 0 {
		t.Errorf("%v allocs per Decode", n)
	}
	r := offer()
	buf := make([]byte, 0, 1500)
	if n := testing.AllocsPerRun(100, func() { buf = AppendDHCPFrame(buf[:0], mac2, ip("10.1.0.1"), mac1, &r) }); n != 0 {
		t.Errorf("%v allocs per AppendDHCPFrame", n)
	}
}

func FuzzDHCP(f *testing.F) {
	var fr Frame
	if err := fr.Decode(hx(udhcpcDiscover)); err != nil {
		f.Fatal(err)
	}
	f.Add(fr.Payload)
	r := offer()
	f.Add(AppendDHCP(nil, &r))
	f.Add(dhcpMsg("3401 03 3501 03 3204 0a000005"))
	f.Add(dhcpMsg("7905 18 0a0000 0a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d DHCP
		err := d.Decode(b)
		checkErr(t, err)
		if err != nil {
			return
		}
		for _, s := range [][]byte{d.ClientID, d.ParamList, d.Hostname, d.Routers, d.DNS, d.StaticRoutes} {
			if _, ok := offsetIn(b, s); s != nil && (!ok || len(s) == 0) {
				t.Fatalf("option value %x is not inside the input", s)
			}
		}
		if d.HLen > 16 || len(d.Routers)%4 != 0 || len(d.DNS)%4 != 0 {
			t.Fatalf("decoded %+v", d)
		}

		// Re-encode what decoded as a reply to it, and read that back.
		typ := d.MessageType
		if typ == 0 {
			typ = DHCPAck
		}
		r := NewDHCPReply(&d, typ)
		r.YIAddr, r.ServerID, r.Mask, r.LeaseTime, r.T1, r.T2, r.MTU =
			d.YIAddr, d.ServerID, d.SubnetMask, d.LeaseTime, d.T1, d.T2, d.MTU
		if addrs := d.RouterAddrs(); len(addrs) > 0 {
			r.Router = addrs[0]
		}
		r.DNS, r.Routes = d.DNSAddrs(), d.Routes()
		r.MaxSize = 1500
		frame := AppendDHCPFrame(nil, mac2, d.ServerID, mac1, &r)
		var f Frame
		if err := f.Decode(frame); err != nil || f.Layers != HasIPv4|HasUDP {
			t.Fatalf("reply frame %x: %v %v", frame, f.Layers, err)
		}
		var e DHCP
		if err := e.Decode(f.Payload); err != nil {
			t.Fatalf("reply %x does not decode: %v", f.Payload, err)
		}
		if e.Op != BootReply || e.Xid != d.Xid || e.Flags != d.Flags || e.CHAddr != d.CHAddr || e.HLen != d.HLen ||
			e.MessageType != typ || e.GIAddr != d.GIAddr {
			t.Fatalf("reply header %+v\nfrom %+v", e, d)
		}
		if typ == DHCPNak {
			if !e.YIAddr.IsUnspecified() || !e.CIAddr.IsUnspecified() || e.LeaseTime != 0 || e.Routers != nil || e.MTU != 0 {
				t.Fatalf("NAK with more than its type and server id: %+v", e)
			}
			return
		}
		if e.YIAddr != d.YIAddr || e.LeaseTime != d.LeaseTime || e.T1 != d.T1 || e.T2 != d.T2 || e.MTU != d.MTU ||
			e.SubnetMask != d.SubnetMask && d.SubnetMask.IsValid() || !slices.Equal(e.DNSAddrs(), d.DNSAddrs()[:min(len(d.DNSAddrs()), 63)]) {
			t.Fatalf("reply options %+v\nfrom %+v", e, d)
		}
		if d.ServerID.IsValid() && e.ServerID != d.ServerID {
			t.Fatalf("server id %v, want %v", e.ServerID, d.ServerID)
		}
		if len(e.StaticRoutes) > 0 && !reflect.DeepEqual(e.Routes(), d.Routes()[:len(e.Routes())]) {
			t.Fatalf("routes %v from %v", e.Routes(), d.Routes())
		}
	})
}
