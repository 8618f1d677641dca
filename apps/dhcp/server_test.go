package dhcp

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

var (
	ip    = netip.MustParseAddr
	bcast = ip("255.255.255.255")
	zero  = netip.IPv4Unspecified()
	macB1 = packet.MAC{2, 0, 0, 0, 1, 1}
)

// request is a client's DHCP message.
type request struct {
	typ         uint8
	src, chaddr packet.MAC // frame source and chaddr
	ciaddr      netip.Addr
	requested   netip.Addr // option 50
	server      netip.Addr // option 54
	broadcast   bool
}

// frame encodes r as a client sends it: from 0.0.0.0 (or ciaddr) to the
// broadcast address, UDP 68 -> 67.
func (r request) frame() []byte {
	b := make([]byte, 236, 300)
	b[0], b[1], b[2] = packet.BootRequest, 1, 6
	binary.BigEndian.PutUint32(b[4:], 0xcafe0001)
	if r.broadcast {
		b[10] = 0x80
	}
	src := zero
	if r.ciaddr.IsValid() {
		src = r.ciaddr
		copy(b[12:], r.ciaddr.AsSlice())
	}
	copy(b[28:], r.chaddr[:])
	b = append(b, 99, 130, 83, 99, packet.DHCPOptMessageType, 1, r.typ)
	if r.requested.IsValid() {
		b = append(append(b, packet.DHCPOptRequestedIP, 4), r.requested.AsSlice()...)
	}
	if r.server.IsValid() {
		b = append(append(b, packet.DHCPOptServerID, 4), r.server.AsSlice()...)
	}
	b = append(b, packet.DHCPOptParamList, 4, 1, 3, 6, 121, packet.DHCPOptEnd)
	return packet.AppendIPv4UDP(nil, packet.Broadcast, r.src, src, bcast, 68, 67, b)
}

func discover(mac packet.MAC) request {
	return request{typ: packet.DHCPDiscover, src: mac, chaddr: mac}
}

// served is the model with b1, bnoip, v1 and vs bound on hv1.
func served(t *testing.T) (*lab, *Index, uint64) {
	l := newModel(t)
	for i, p := range []string{"b1", "bnoip", "v1", "vs", "r1p"} {
		l.bind(p, "hv1", uint32(5+i))
	}
	return l, NewIndex(l.View.Snapshot()), l.DPID("hv1")
}

// serve answers r arriving on port in and decodes the reply.
func serve(t *testing.T, x *Index, dpid uint64, in uint32, r request) (*packet.Frame, *packet.DHCP, Result) {
	t.Helper()
	var fr, out packet.Frame
	if err := fr.Decode(r.frame()); err != nil {
		t.Fatal(err)
	}
	var req packet.DHCP
	b, res := x.Serve(nil, &req, dpid, in, &fr)
	if len(b) == 0 {
		return nil, nil, res
	}
	if err := out.Decode(b); err != nil || out.Layers != packet.HasIPv4|packet.HasUDP {
		t.Fatalf("reply frame: %v %v", out.Layers, err)
	}
	var d packet.DHCP
	if err := d.Decode(out.Payload); err != nil {
		t.Fatalf("reply: %v", err)
	}
	return &out, &d, res
}

func TestServeDiscoverRequest(t *testing.T) {
	l, x, hv1 := served(t)
	gwMAC := packet.MAC(view.GatewayMAC(l.subnetID("blue-a")))

	fr, offer, res := serve(t, x, hv1, 5, discover(macB1))
	if res != Offer || offer == nil {
		t.Fatalf("DISCOVER: %v", res)
	}
	// From the gateway; no broadcast flag: unicast to yiaddr at chaddr.
	if fr.Src != gwMAC || fr.Dst != macB1 || fr.IPv4.Src != ip("10.1.0.1") || fr.IPv4.Dst != ip("10.1.0.11") ||
		fr.UDP.SrcPort != 67 || fr.UDP.DstPort != 68 {
		t.Errorf("OFFER %v %v -> %v %v", fr.Src, fr.IPv4.Src, fr.Dst, fr.IPv4.Dst)
	}
	if offer.Op != packet.BootReply || offer.MessageType != packet.DHCPOffer || offer.Xid != 0xcafe0001 ||
		offer.YIAddr != ip("10.1.0.11") || offer.CIAddr != zero || offer.ClientMAC() != macB1 ||
		offer.ServerID != ip("10.1.0.1") || offer.SubnetMask != ip("255.255.255.0") ||
		offer.LeaseTime != 3600 || offer.T1 != 1800 || offer.T2 != 3150 || offer.MTU != 1450 {
		t.Errorf("OFFER %+v", offer)
	}
	if r := offer.RouterAddrs(); !reflect.DeepEqual(r, []netip.Addr{ip("10.1.0.1")}) {
		t.Errorf("routers %v", r)
	}
	if d := offer.DNSAddrs(); !reflect.DeepEqual(d, []netip.Addr{ip("10.1.0.53"), ip("8.8.8.8")}) {
		t.Errorf("dns %v", d)
	}
	wantRoutes := []packet.DHCPRoute{{Dst: netip.MustParsePrefix("192.168.0.0/16"), Gateway: ip("10.1.0.254")},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: ip("10.1.0.1")}}
	if r := offer.Routes(); !reflect.DeepEqual(r, wantRoutes) {
		t.Errorf("routes %v", r)
	}

	// The broadcast flag: broadcast.
	d := discover(macB1)
	d.broadcast = true
	if fr, _, _ := serve(t, x, hv1, 5, d); fr.Dst != packet.Broadcast || fr.IPv4.Dst != bcast {
		t.Errorf("OFFER with the broadcast flag to %v %v", fr.Dst, fr.IPv4.Dst)
	}

	// REQUEST, selecting: ACK.
	req := request{typ: packet.DHCPRequest, src: macB1, chaddr: macB1, requested: ip("10.1.0.11"), server: ip("10.1.0.1")}
	_, ack, res := serve(t, x, hv1, 5, req)
	if res != Ack || ack.MessageType != packet.DHCPAck || ack.YIAddr != ip("10.1.0.11") || ack.LeaseTime != 3600 {
		t.Errorf("REQUEST: %v %+v", res, ack)
	}
	// Another server's offer was taken: silence.
	req.server = ip("10.1.0.2")
	if _, d, res := serve(t, x, hv1, 5, req); d != nil || res != OtherServer {
		t.Errorf("REQUEST to another server: %v %+v", res, d)
	}
	// Init-reboot with another address: NAK, broadcast, type and server id only.
	req.server, req.requested = netip.Addr{}, ip("10.1.0.99")
	fr, nak, res := serve(t, x, hv1, 5, req)
	if res != Nak || nak.MessageType != packet.DHCPNak || nak.ServerID != ip("10.1.0.1") || nak.YIAddr != zero ||
		nak.LeaseTime != 0 || nak.SubnetMask.IsValid() || fr.Dst != packet.Broadcast || fr.IPv4.Dst != bcast {
		t.Errorf("REQUEST for another address: %v %+v to %v", res, nak, fr.IPv4.Dst)
	}
	// Renewing (ciaddr, no option 50): ACK unicast to ciaddr; a wrong
	// ciaddr: NAK.
	renew := request{typ: packet.DHCPRequest, src: macB1, chaddr: macB1, ciaddr: ip("10.1.0.11")}
	fr, ack, res = serve(t, x, hv1, 5, renew)
	if res != Ack || ack.CIAddr != ip("10.1.0.11") || ack.YIAddr != ip("10.1.0.11") || fr.Dst != macB1 ||
		fr.IPv4.Dst != ip("10.1.0.11") {
		t.Errorf("renewal: %v %+v to %v %v", res, ack, fr.Dst, fr.IPv4.Dst)
	}
	renew.ciaddr = ip("10.1.0.12")
	if _, _, res := serve(t, x, hv1, 5, renew); res != Nak {
		t.Errorf("renewal of another address: %v", res)
	}
	// A REQUEST with neither: NAK.
	if _, _, res := serve(t, x, hv1, 5, request{typ: packet.DHCPRequest, src: macB1, chaddr: macB1}); res != Nak {
		t.Errorf("REQUEST without an address: %v", res)
	}
}

func TestServeOthers(t *testing.T) {
	l, x, hv1 := served(t)
	noIP := packet.MAC{2, 0, 0, 0, 1, 3}
	v1 := packet.MAC{2, 0, 0, 0, 3, 1}
	vs := packet.MAC{2, 0, 0, 0, 3, 2}
	stranger := packet.MAC{2, 0, 0, 0, 9, 9}

	// No address in a DHCP subnet: no OFFER; a REQUEST gets a NAK.
	for _, tc := range []struct {
		port uint32
		mac  packet.MAC
	}{{6, noIP}, {8, vs}} {
		if _, d, res := serve(t, x, hv1, tc.port, discover(tc.mac)); d != nil || res != NoLease {
			t.Errorf("port %d DISCOVER: %v %+v", tc.port, res, d)
		}
		_, d, res := serve(t, x, hv1, tc.port, request{typ: packet.DHCPRequest, src: tc.mac, chaddr: tc.mac, requested: ip("10.3.0.50")})
		if res != Nak || d.MessageType != packet.DHCPNak {
			t.Errorf("port %d REQUEST: %v %+v", tc.port, res, d)
		}
	}
	// The VLAN network: MTU 1500, no routes, and its gateway as router
	// although no router has its subnet yet (a lease taken now routes as
	// soon as one does).
	fr, offer, res := serve(t, x, hv1, 7, discover(v1))
	if r := offer.RouterAddrs(); !reflect.DeepEqual(r, []netip.Addr{ip("10.3.0.1")}) {
		t.Errorf("v1: router %v, want the gateway 10.3.0.1 although no router has the subnet", r)
	}
	if res != Offer || offer.MTU != 1500 || offer.StaticRoutes != nil || offer.LeaseTime != DefaultLease ||
		offer.DNS != nil || fr.Src != packet.MAC(view.GatewayMAC(l.subnetID("v100-a"))) || offer.ServerID != ip("10.3.0.1") {
		t.Errorf("v1: %v %+v", res, offer)
	}
	// DHCP from unknown MACs is ignored: the frame's source or chaddr.
	for _, r := range []request{discover(stranger), {typ: packet.DHCPDiscover, src: macB1, chaddr: stranger},
		{typ: packet.DHCPDiscover, src: stranger, chaddr: macB1}} {
		if _, d, res := serve(t, x, hv1, 5, r); d != nil || res != UnknownMAC {
			t.Errorf("%v/%v: %v %+v", r.src, r.chaddr, res, d)
		}
	}
	// b1's MAC on another port, an unbound port, red (not served), another switch.
	for _, tc := range []struct {
		dpid uint64
		port uint32
		want Result
	}{{hv1, 7, UnknownMAC}, {hv1, 99, UnknownPort}, {hv1, 9, UnknownPort}, {l.DPID("hv2"), 5, UnknownPort}} {
		if _, d, res := serve(t, x, tc.dpid, tc.port, discover(macB1)); d != nil || res != tc.want {
			t.Errorf("port %d: %v, want %v", tc.port, res, tc.want)
		}
	}
	// RELEASE and DECLINE: nothing.
	for typ, want := range map[uint8]Result{packet.DHCPRelease: Released, packet.DHCPDecline: Declined, 99: Malformed} {
		if _, d, res := serve(t, x, hv1, 5, request{typ: typ, src: macB1, chaddr: macB1, ciaddr: ip("10.1.0.11")}); d != nil || res != want {
			t.Errorf("type %d: %v %+v", typ, res, d)
		}
	}
	// INFORM: the options, no lease, no yiaddr, to ciaddr.
	fr, ack, res := serve(t, x, hv1, 5, request{typ: packet.DHCPInform, src: macB1, chaddr: macB1, ciaddr: ip("10.1.0.11")})
	if res != Ack || ack.MessageType != packet.DHCPAck || ack.LeaseTime != 0 || ack.T1 != 0 || ack.YIAddr != zero ||
		ack.CIAddr != ip("10.1.0.11") || ack.SubnetMask != ip("255.255.255.0") || ack.MTU != 1450 || fr.IPv4.Dst != ip("10.1.0.11") {
		t.Errorf("INFORM: %v %+v", res, ack)
	}
}

func TestServeMalformed(t *testing.T) {
	_, x, hv1 := served(t)
	good := discover(macB1).frame()
	for name, edit := range map[string]func([]byte) []byte{
		"truncated DHCP": func(b []byte) []byte { return b[:14+20+8+100] },
		"BOOTREPLY":      func(b []byte) []byte { b[42] = packet.BootReply; return b },
		"hlen 8":         func(b []byte) []byte { b[42+2] = 8; return b },
		"relayed":        func(b []byte) []byte { b[42+24] = 10; return b },
		"server port":    func(b []byte) []byte { b[37] = 68; return b },
	} {
		b := edit(append([]byte(nil), good...))
		var fr packet.Frame
		fr.Decode(b)
		var req packet.DHCP
		if out, res := x.Serve(nil, &req, hv1, 5, &fr); out != nil || res != Malformed {
			t.Errorf("%s: %v", name, res)
		}
	}
}

func TestServeAllocs(t *testing.T) {
	_, x, hv1 := served(t)
	var fr packet.Frame
	if err := fr.Decode(discover(macB1).frame()); err != nil {
		t.Fatal(err)
	}
	var req packet.DHCP
	buf := make([]byte, 0, 1500)
	if n := testing.AllocsPerRun(100, func() { buf, _ = x.Serve(buf[:0], &req, hv1, 5, &fr) }); n != 0 {
		t.Errorf("%v allocs per answer", n)
	}
}
