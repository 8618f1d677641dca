package router

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// The way out. A router with an external network has a gateway host,
// the one whose uplink reaches that network. Every other host sends the
// router's traffic for outside addresses (its default route) through the
// tunnel to the gateway host, with the router's transit VNI; there,
// conntrack (a zone per router, allocated on the gateway host) applies source NAT to the router's
// external address, or a floating IP's one-to-one NAT, and the packet
// leaves through the uplink. Packets arriving on the uplink for the
// external address or a floating IP go through conntrack the other way,
// are routed like any other, and tunnelled to the VM's host. ARP for
// those addresses is answered on the uplink; the MACs of the outside
// (the external subnet's gateway, on-link hosts) are learned by ARP from
// the controller.
//
//	l3-ingress (gateway host, before the overlay's classifier):
//	            uplink,arp request for EXT or a FIP  -> ARP reply from the router's external MAC
//	            uplink,arp reply to EXT or a FIP     -> CONTROLLER (learn the outside's MACs)
//	            uplink,ip to EXT or a FIP            -> reg6=ROUTER, ct(zone,nat) -> l3-nat-in
//	            vxlan0,tun_id=TRANSIT(ROUTER)        -> reg6=ROUTER, ct(zone,nat) -> l3-snat
//	l3-nat-in:  +new to a FIP                        -> ct(commit,nat(dst=its port's IP)) -> l3-route
//	            +est, +rel                           -> goto l3-route
//	l3-route:   ROUTER, default (other hosts)         -> dec_ttl, tun_id=TRANSIT, tun_dst=gateway host, vxlan0
//	            ROUTER, default (gateway host)        -> dec_ttl, ct(zone,nat) -> l3-snat
//	l3-snat:    +new from a FIP's port                -> ct(commit,nat(src=FIP)) -> l3-out
//	            +new (snat on)                        -> ct(commit,nat(src=EXT)) -> l3-out
//	            +est, +rel                            -> goto l3-out
//	l3-out:     to a learned outside address          -> dl_src=external MAC, dl_dst=its MAC, (tag,) uplink
//	            otherwise                             -> CONTROLLER (ARP for the next hop)

// TransitVNI is the VNI that carries a router's traffic to its gateway
// host: the top of the VNI range, above model.MaxVNI.
func TransitVNI(key uint32) uint64 { return 1<<24 - 1 - uint64(key) }

// ExternalMAC is the MAC of a router's port on its external network.
func ExternalMAC(routerID string) flow.MAC {
	return flow.MACFrom(view.GatewayMAC("router-external:" + routerID))
}

// external is a router's way out, when it has one.
type external struct {
	net      *model.Network
	ip       uint64   // external_ip
	mac      flow.MAC // ExternalMAC
	subnets  []netip.Prefix
	gateway  netip.Addr // the first external subnet's gateway: the next hop off-link
	host     *model.Host
	snat     bool
	fips     []fip
	vlanVID  uint64 // 0: untagged (flat)
	transit  uint64
	zone     uint16          // the router's conntrack zone on its gateway host (kit.RouterZone), set by compile
	internal map[uint64]bool // addresses of the router's subnets' ports that have a floating IP
}

type fip struct {
	ext, internal uint64
}

// externalOf resolves a router's external side, or nil.
func externalOf(r *Router, m *model.Snapshot) *external {
	if r.r.ExternalNetwork == "" || r.r.ExternalIP == "" || r.r.GatewayHost == "" {
		return nil
	}
	n, ok := m.Networks.Get(r.r.ExternalNetwork)
	host, hok := m.Hosts.Get(r.r.GatewayHost)
	ip, err := netip.ParseAddr(r.r.ExternalIP)
	if !ok || !hok || err != nil || !ip.Is4() || n.Type == "vxlan" {
		return nil
	}
	x := &external{net: n, ip: ip4(ip), mac: ExternalMAC(r.r.ID), host: host, snat: r.r.SNAT,
		transit: TransitVNI(r.key), internal: map[uint64]bool{}}
	if n.Type == "vlan" {
		x.vlanVID = uint64(vlanPresent | n.VLAN)
	}
	var subs []*model.Subnet
	for _, sn := range m.Subnets.All() {
		if sn.Network == n.ID {
			subs = append(subs, sn)
		}
	}
	slices.SortFunc(subs, func(a, b *model.Subnet) int {
		return netip.MustParsePrefix(a.CIDR).Addr().Compare(netip.MustParsePrefix(b.CIDR).Addr())
	})
	for _, sn := range subs {
		if p, err := netip.ParsePrefix(sn.CIDR); err == nil && p.Addr().Is4() {
			x.subnets = append(x.subnets, p)
			if !x.gateway.IsValid() {
				x.gateway, _ = netip.ParseAddr(sn.Gateway)
			}
		}
	}
	for _, f := range m.FloatingIPs.All() {
		if f.Network != n.ID || f.Port == "" {
			continue
		}
		p, ok := m.Ports.Get(f.Port)
		fa, err := netip.ParseAddr(f.IP)
		if !ok || err != nil || !fa.Is4() {
			continue
		}
		for _, a := range p.IPs {
			if ia, err := netip.ParseAddr(a); err == nil && ia.Is4() {
				if _, in := r.subnetFor(ia); in {
					x.fips = append(x.fips, fip{ext: ip4(fa), internal: ip4(ia)})
					x.internal[ip4(ia)] = true
					break
				}
			}
		}
	}
	slices.SortFunc(x.fips, func(a, b fip) int { return cmp.Compare(a.ext, b.ext) })
	return x
}

// vlanPresent is OpenFlow's OFPVID_PRESENT bit of vlan_vid.
const vlanPresent = 0x1000

// SwitchPorts are the switch's tunnel and uplink ports; 0 when absent.
type SwitchPorts = kit.SwitchPorts

// NextHop is the outside next hop for dst: dst itself when it is on an
// external subnet, else the external gateway.
func (x *external) nextHop(dst netip.Addr) netip.Addr {
	for _, p := range x.subnets {
		if p.Contains(dst) {
			return dst
		}
	}
	return x.gateway
}

// compileDefault adds the router's default route: to the gateway host
// through the tunnel, or, on the gateway host, into conntrack.
func compileDefault(st *State, r *Router, x *external, host *model.Host, m *model.Snapshot, t Tables, sp SwitchPorts) {
	reg := flow.Match{}.Set(regRouter, uint64(r.key)).EthType(packet.EtherTypeIPv4)
	f := flow.New(t.Route, prioRouteMin, reg).Act(flow.DecTTL())
	if host.ID == x.host.ID {
		f.Act(flow.CT(flow.CTSpec{Zone: x.zone, Table: t.SNAT, NAT: flow.NATRestore}))
	} else {
		vtep, err := netip.ParseAddr(x.host.VTEPIP)
		if sp.Tunnel == 0 || err != nil || !vtep.Is4() {
			return
		}
		f.Act(flow.SetField(flow.TunnelID, x.transit), flow.SetField(flow.TunDst, ip4(vtep)), flow.Output(sp.Tunnel))
	}
	st.Flows = append(st.Flows, f)
}

// compileGateway adds the gateway host's flows of a router's way out;
// learned maps outside addresses to their MACs.
func compileGateway(st *State, r *Router, x *external, t Tables, sp SwitchPorts, learned map[uint64]flow.MAC) {
	add := func(f *flow.Flow) { st.Flows = append(st.Flows, f) }
	reg := flow.Match{}.Set(regRouter, uint64(r.key))
	ct := func(table uint8) flow.Action {
		return flow.CT(flow.CTSpec{Zone: x.zone, Table: table, NAT: flow.NATRestore})
	}
	if sp.Tunnel != 0 {
		add(flow.New(t.Ingress, prioGateway, flow.Match{}.InPort(sp.Tunnel).TunnelID(x.transit).EthType(packet.EtherTypeIPv4)).Act(
			flow.SetField(regRouter, uint64(r.key)), ct(t.SNAT)))
	}
	if sp.Uplink != 0 {
		up := flow.Match{}.InPort(sp.Uplink).Set(flow.VlanVID, x.vlanVID)
		addrs := []uint64{x.ip}
		for _, f := range x.fips {
			addrs = append(addrs, f.ext)
		}
		for _, a := range addrs {
			add(flow.New(t.Ingress, prioGateway, up.EthType(packet.EtherTypeARP).Set(flow.ARPOp, 1).Set(flow.ARPTpa, a)).Act(flow.ARPResponder(x.mac, a)...))
			add(flow.New(t.Ingress, prioGateway, up.EthType(packet.EtherTypeARP).Set(flow.ARPOp, 2).Set(flow.ARPTpa, a)).
				WithMeter(MeterID).Act(flow.Output(flow.PortController)))
			in := flow.New(t.Ingress, prioGateway, up.EthType(packet.EtherTypeIPv4).Set(flow.IPv4Dst, a))
			if x.vlanVID != 0 {
				in.Act(flow.PopVLAN())
			}
			add(in.Act(flow.SetField(regRouter, uint64(r.key)), ct(t.NATIn)))
		}
	}
	// l3-nat-in: new connections only to floating IPs.
	for _, f := range x.fips {
		add(flow.New(t.NATIn, prioGateway, reg.SetMasked(flow.CTState, ctNew|ctTrk, ctNew|ctTrk).EthType(packet.EtherTypeIPv4).
			Set(flow.IPv4Dst, f.ext)).Act(flow.CT(flow.CTSpec{Commit: true, Zone: x.zone, Table: t.Route, NAT: flow.NATDst, Addr: uint32(f.internal)})))
	}
	for _, s := range []uint64{ctEst, ctRel} {
		add(flow.New(t.NATIn, prioRouted, reg.SetMasked(flow.CTState, s|ctTrk, s|ctTrk)).Goto(t.Route))
		add(flow.New(t.SNAT, prioRouted, reg.SetMasked(flow.CTState, s|ctTrk, s|ctTrk)).Goto(t.Out))
	}
	// l3-snat: new connections from the inside.
	for _, f := range x.fips {
		add(flow.New(t.SNAT, prioGateway, reg.SetMasked(flow.CTState, ctNew|ctTrk, ctNew|ctTrk).EthType(packet.EtherTypeIPv4).
			Set(flow.IPv4Src, f.internal)).Act(flow.CT(flow.CTSpec{Commit: true, Zone: x.zone, Table: t.Out, NAT: flow.NATSrc, Addr: uint32(f.ext)})))
	}
	if x.snat {
		add(flow.New(t.SNAT, prioGateway-1, reg.SetMasked(flow.CTState, ctNew|ctTrk, ctNew|ctTrk).EthType(packet.EtherTypeIPv4)).Act(
			flow.CT(flow.CTSpec{Commit: true, Zone: x.zone, Table: t.Out, NAT: flow.NATSrc, Addr: uint32(x.ip)})))
	}
	// l3-out: to the outside, by learned MAC; else ask the controller to ARP.
	if sp.Uplink == 0 {
		return
	}
	out := func(mac flow.MAC) []flow.Action {
		acts := []flow.Action{flow.SetField(flow.EthSrc, uint64(x.mac)), flow.SetField(flow.EthDst, uint64(mac))}
		if x.vlanVID != 0 {
			acts = append(acts, flow.PushVLAN(), flow.SetField(flow.VlanVID, x.vlanVID))
		}
		return append(acts, flow.Output(sp.Uplink))
	}
	ipOut := reg.EthType(packet.EtherTypeIPv4)
	ips := make([]uint64, 0, len(learned))
	for ip := range learned {
		ips = append(ips, ip)
	}
	slices.Sort(ips)
	for _, ip := range ips {
		a := netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
		if x.nextHop(a) == a {
			add(flow.New(t.Out, prioGateway, ipOut.Set(flow.IPv4Dst, ip)).Act(out(learned[ip])...))
		}
	}
	for _, p := range x.subnets {
		add(flow.New(t.Out, prioRouted, withPrefix(ipOut, p)).WithMeter(MeterID).Act(flow.Output(flow.PortController)))
	}
	if gw := x.gateway; gw.IsValid() {
		if mac, ok := learned[ip4(gw)]; ok {
			add(flow.New(t.Out, prioNonIP, ipOut).Act(out(mac)...))
		} else {
			add(flow.New(t.Out, prioNonIP, ipOut).WithMeter(MeterID).Act(flow.Output(flow.PortController)))
		}
	}
}

// conntrack states (ct_state bits).
const (
	ctNew = 0x01
	ctEst = 0x02
	ctRel = 0x04
	ctTrk = 0x20
)
