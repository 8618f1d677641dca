package router

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// Tables are the table ids the compiled flows use: the router's and the
// overlay's forwarding table, where routed packets go on.
type Tables struct{ Ingress, Input, NATIn, Route, SNAT, Out, Resolve, Forward uint8 }

// State is the router's desired state on one switch.
type State struct {
	Flows []*flow.Flow
}

// MeterID is the meter on the router's packet-ins (kit.MeterRouter).
const MeterID = kit.MeterRouter

// Priorities.
const (
	prioGateway  = 100 // l3-input: ARP, ping and other traffic for a gateway address
	prioRouted   = 90  // l3-input: IP to a gateway MAC
	prioNonIP    = 80  // l3-input: anything else to a gateway MAC
	prioResolve  = 100 // l3-resolve: a known address
	prioNoRoute  = 1   // l3-route: no route
	prioNoHost   = 0   // l3-resolve: unknown address
	prioRouteMin = 100 // l3-route: 100 + 2 x prefix length (+1 for connected subnets)
)

// regRouter carries the router's key from l3-input to l3-route.
const regRouter = kit.RegRouter

// subnet is an attached IPv4 subnet as the router uses it.
type subnet struct {
	s      *model.Subnet
	prefix netip.Prefix
	gw     uint64 // gateway address
	mac    flow.MAC
	netKey uint64 // the network's overlay key
}

// Router is a router of the model with what its flows need.
type Router struct {
	r       *model.Router
	key     uint32 // 1-based, by router id
	subnets []subnet
}

// Routers lists the model's routers, with keys, in id order.
func Routers(m *model.Snapshot) []*Router {
	keys := kit.NetworkKeys(m)
	rs := make([]*model.Router, 0, m.Routers.Len())
	for _, r := range m.Routers.All() {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *model.Router) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]*Router, 0, len(rs))
	for i, r := range rs {
		rt := &Router{r: r, key: uint32(i + 1)}
		for _, id := range r.Subnets {
			sn, ok := m.Subnets.Get(id)
			if !ok {
				continue
			}
			p, err := netip.ParsePrefix(sn.CIDR)
			gw, gerr := netip.ParseAddr(sn.Gateway)
			if err != nil || gerr != nil || !p.Addr().Is4() || !gw.Is4() {
				continue
			}
			rt.subnets = append(rt.subnets, subnet{s: sn, prefix: p, gw: ip4(gw), mac: flow.MACFrom(view.GatewayMAC(sn.ID)),
				netKey: uint64(keys[sn.Network])})
		}
		out = append(out, rt)
	}
	return out
}

func ip4(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// subnetFor returns the router's subnet that contains a.
func (r *Router) subnetFor(a netip.Addr) (*subnet, bool) {
	for i := range r.subnets {
		if r.subnets[i].prefix.Contains(a) {
			return &r.subnets[i], true
		}
	}
	return nil, false
}

// Compile computes the router's flows for the switch with datapath id
// dpid: every router with a subnet in a network that has a port bound on
// the host routes there, for all of its subnets, and a router's gateway
// host carries its way out. sp are the switch's tunnel and uplink ports;
// learned the outside's MACs, by IPv4 address, that the switch's ARP
// requests found (gateway hosts only).
func Compile(s *view.Snapshot, dpid uint64, t Tables, sp SwitchPorts, learned map[uint64]flow.MAC) State {
	return compile(newIndex(s), dpid, t, sp, learned)
}

func compile(ix *index, dpid uint64, t Tables, sp SwitchPorts, learned map[uint64]flow.MAC) State {
	s := ix.snap
	host, ok := s.HostByDatapath(dpid)
	if !ok || len(ix.routers) == 0 {
		return State{}
	}
	m := s.Model
	local := ix.localNets(host.Name)
	var st State
	for _, r := range ix.routers {
		x := externalOf(r, m)
		gateway := x != nil && x.host.ID == host.ID
		if gateway {
			// The way out needs the router's zone on its gateway host:
			// until the host has allocated it, none.
			if z, ok := s.Zone(host.Name, kit.RouterZone(r.r.ID)); ok {
				x.zone = z
			} else {
				x, gateway = nil, false
			}
		}
		here := gateway
		for _, sn := range r.subnets {
			here = here || local[sn.s.Network]
		}
		if !here {
			continue
		}
		compileRouter(&st, r, ix.byNet, local, t)
		if x != nil {
			compileDefault(&st, r, x, host, m, t, sp)
		}
		if gateway {
			compileGateway(&st, r, x, t, sp, learned)
		}
	}
	return st
}

func compileRouter(st *State, r *Router, byNet map[string]map[string]*model.Port, local map[string]bool, t Tables) {
	add := func(f *flow.Flow) { st.Flows = append(st.Flows, f) }
	toController := []flow.Action{flow.Output(flow.PortController)}
	const ethIPv4, ethARP, protoICMP = packet.EtherTypeIPv4, packet.EtherTypeARP, packet.ProtoICMP

	// l3-input, for the subnets whose VMs are on this host.
	for _, sn := range r.subnets {
		if !local[sn.s.Network] {
			continue
		}
		in := flow.Match{}.Set(flow.Metadata, sn.netKey)
		add(flow.New(t.Input, prioGateway, in.EthType(ethARP).Set(flow.ARPOp, 1).Set(flow.ARPTpa, sn.gw)).Act(flow.ARPResponder(sn.mac, sn.gw)...))
		add(flow.New(t.Input, prioGateway+1, in.EthType(ethIPv4).IPProto(protoICMP).Set(flow.IPv4Dst, sn.gw).
			Set(flow.ICMPv4Type, packet.ICMPv4EchoRequest)).Act(
			flow.Move(flow.EthSrc, flow.EthDst), flow.SetField(flow.EthSrc, uint64(sn.mac)),
			flow.Move(flow.IPv4Src, flow.IPv4Dst), flow.SetField(flow.IPv4Src, sn.gw),
			flow.SetField(flow.ICMPv4Type, packet.ICMPv4EchoReply),
			flow.Output(flow.PortInPort)))
		add(flow.New(t.Input, prioGateway, in.EthType(ethIPv4).Set(flow.IPv4Dst, sn.gw))) // drop
		mac := in.EthDst(sn.mac)
		add(flow.New(t.Input, prioRouted, mac.EthType(ethIPv4)).Act(flow.SetField(regRouter, uint64(r.key))).Goto(t.Route))
		add(flow.New(t.Input, prioNonIP, mac)) // drop
	}

	// l3-route: connected subnets, then static routes, longest first.
	reg := flow.Match{}.Set(regRouter, uint64(r.key)).EthType(ethIPv4)
	toNetwork := func(f *flow.Flow, sn *subnet) *flow.Flow {
		f.WriteMetadata, f.Metadata, f.MetadataMask = true, sn.netKey, kit.MetadataMask
		return f
	}
	for i := range r.subnets {
		sn := &r.subnets[i]
		add(toNetwork(flow.New(t.Route, uint16(prioRouteMin+2*sn.prefix.Bits()+1),
			withPrefix(reg, sn.prefix)).Act(
			flow.DecTTL(), flow.SetField(flow.EthSrc, uint64(sn.mac))), sn).Goto(t.Resolve))
	}
	for _, rt := range r.r.Routes {
		dst, err := netip.ParsePrefix(rt.Destination)
		nh, nerr := netip.ParseAddr(rt.Nexthop)
		if err != nil || nerr != nil || !dst.Addr().Is4() || !nh.Is4() {
			continue
		}
		sn, ok := r.subnetFor(nh)
		if !ok {
			continue
		}
		mac, ok := portMAC(byNet[sn.s.Network], nh)
		if !ok {
			continue // a nexthop that is no port of the model: not routable without ARP
		}
		add(toNetwork(flow.New(t.Route, uint16(prioRouteMin+2*dst.Bits()),
			withPrefix(reg, dst.Masked())).Act(
			flow.DecTTL(), flow.SetField(flow.EthSrc, uint64(sn.mac)), flow.SetField(flow.EthDst, uint64(mac))), sn).Goto(t.Forward))
	}
	add(flow.New(t.Route, prioNoRoute, reg).WithMeter(MeterID).Act(toController...))

	// l3-resolve: every known address of the router's subnets.
	for i := range r.subnets {
		sn := &r.subnets[i]
		for _, name := range slices.Sorted(maps.Keys(byNet[sn.s.Network])) {
			p := byNet[sn.s.Network][name]
			mac, err := flow.ParseMAC(p.MAC)
			if err != nil {
				continue
			}
			for _, a := range p.IPs {
				ip, err := netip.ParseAddr(a)
				if err != nil || !ip.Is4() || !sn.prefix.Contains(ip) {
					continue
				}
				add(flow.New(t.Resolve, prioResolve, flow.Match{}.Set(flow.Metadata, sn.netKey).EthType(ethIPv4).
					Set(flow.IPv4Dst, ip4(ip))).Act(flow.SetField(flow.EthDst, uint64(mac))).Goto(t.Forward))
			}
		}
	}
}

// InputMiss is l3-input's miss flow: what is not for a gateway goes on to
// the overlay's forwarding, past the routing tables.
func InputMiss(t Tables) *flow.Flow {
	return flow.New(t.Input, 0, nil).Goto(t.Forward)
}

// ResolveMiss is l3-resolve's miss flow: unknown addresses go to the
// controller for an ICMP host unreachable.
func ResolveMiss(t Tables) *flow.Flow {
	return flow.New(t.Resolve, prioNoHost, nil).WithMeter(MeterID).Act(flow.Output(flow.PortController))
}

// withPrefix matches the destination prefix p (nothing for /0: OVS
// reports a fully wildcarded field as absent).
func withPrefix(m flow.Match, p netip.Prefix) flow.Match {
	if p.Bits() == 0 {
		return m
	}
	return m.SetMasked(flow.IPv4Dst, ip4(p.Addr()), uint64(0xffffffff)<<(32-p.Bits())&0xffffffff)
}

// portMAC finds the MAC of the port with address a among a network's
// ports.
func portMAC(ports map[string]*model.Port, a netip.Addr) (flow.MAC, bool) {
	for _, p := range ports {
		for _, s := range p.IPs {
			if ip, err := netip.ParseAddr(s); err == nil && ip == a {
				mac, err := flow.ParseMAC(p.MAC)
				return mac, err == nil
			}
		}
	}
	return 0, false
}
