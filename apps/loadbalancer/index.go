package loadbalancer

import (
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/overlay"
	"github.com/loom-sdn/loom/controller/view"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
)

// index is what the app compiles every switch from, built once per view
// snapshot in one pass over the ports of the networks load balancers use.
type index struct {
	lbs []*lbEntry
	// byHost are the load balancers each host serves: those with a
	// client network that has a port bound there.
	byHost map[string][]*lbEntry
	// byNet are the load balancers each network is a client network of.
	byNet map[string][]*lbEntry
	// checked are the health-checked backends by the host they are bound on.
	checked map[string][]localBackend
}

// netInfo is a network as the load balancers see it.
type netInfo struct {
	id    string
	key   uint32
	ports map[uint64]portOf // by IPv4 address
	local map[string]bool   // hosts with a port of the network bound
}

// portOf is a port's MAC and, when it is bound, its host and OpenFlow port.
type portOf struct {
	mac    flow.MAC
	host   string
	ofport uint32
}

// clientNet is a network whose ports are a load balancer's clients: its
// own, or a network routed to it (a subnet on a router that has a subnet
// of the load balancer's network).
type clientNet struct {
	n *netInfo
	// gw is the MAC of the network's gateway on the router to the load
	// balancer's network (0: its own network, with no router). A
	// connection to a backend in another network goes to it, to be
	// routed; the VIP's packets in a routed network come from it.
	gw flow.MAC
}

// lbEntry is a load balancer resolved against the model.
type lbEntry struct {
	lb                 *model.LoadBalancer
	vip                uint64
	vmac               flow.MAC
	proto              uint8
	dstField, srcField flow.Field
	own                *netInfo
	nets               []clientNet // own first
	backends           []backend
}

// backend is a load balancer member resolved to its port, in the load
// balancer's network or one routed to it.
type backend struct {
	ip     uint64
	port   uint16
	weight uint16
	net    *netInfo
	p      portOf
}

// buildIndex resolves the load balancers of s.
func buildIndex(s *view.Snapshot) *index {
	ix := &index{byHost: map[string][]*lbEntry{}, byNet: map[string][]*lbEntry{}}
	m := s.Model
	if m.LoadBalancers.Len() == 0 {
		return ix
	}
	keys := overlay.NetworkKeys(m)

	// The networks routed to each network, with their gateway MACs, from
	// the routers (in name order: the first router linking two networks
	// carries their traffic).
	type route struct {
		net string
		gw  flow.MAC
	}
	routed := map[string][]route{} // network -> networks on its routers (itself included)
	for _, r := range m.Routers.Sorted() {
		var rs []route
		for _, id := range r.Subnets {
			if sn, ok := m.Subnets.Get(id); ok {
				rs = append(rs, route{sn.Network, flow.MACFrom(view.GatewayMAC(sn.ID))})
			}
		}
		for _, a := range rs {
			routed[a.net] = append(routed[a.net], rs...)
		}
	}

	nets := map[string]*netInfo{}
	netOf := func(id string) *netInfo {
		n := nets[id]
		if n == nil {
			key, ok := keys[id]
			if !ok {
				return nil
			}
			n = &netInfo{id: id, key: key, ports: map[uint64]portOf{}, local: map[string]bool{}}
			nets[id] = n
		}
		return n
	}
	for _, lb := range m.LoadBalancers.Sorted() {
		vip, err := netip.ParseAddr(lb.VIP)
		own := netOf(lb.Network)
		if err != nil || !vip.Is4() || own == nil {
			continue
		}
		e := &lbEntry{lb: lb, vip: ip4(vip), vmac: VIPMAC(lb.ID), own: own, proto: packet.ProtoTCP,
			dstField: flow.TCPDst, srcField: flow.TCPSrc}
		if lb.Protocol == "udp" {
			e.proto, e.dstField, e.srcField = packet.ProtoUDP, flow.UDPDst, flow.UDPSrc
		}
		e.nets = []clientNet{{n: own}}
		for _, r := range routed[lb.Network] {
			n := netOf(r.net)
			if n == nil {
				continue
			}
			if n == own {
				if e.nets[0].gw == 0 {
					e.nets[0].gw = r.gw
				}
				continue
			}
			if !slices.ContainsFunc(e.nets, func(c clientNet) bool { return c.n == n }) {
				e.nets = append(e.nets, clientNet{n: n, gw: r.gw})
			}
		}
		ix.lbs = append(ix.lbs, e)
	}

	// One pass over the ports: addresses, MACs and bindings of the
	// networks the load balancers use.
	for _, p := range m.Ports.All() {
		n := nets[p.Network]
		if n == nil {
			continue
		}
		mac, err := flow.ParseMAC(p.MAC)
		if err != nil {
			continue
		}
		po := portOf{mac: mac}
		if b, bound := s.Binding(p.Name); bound && b.OFPort != 0 {
			po.host, po.ofport = b.Host, b.OFPort
			n.local[b.Host] = true
		}
		for _, a := range p.IPs {
			if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
				n.ports[ip4(ip)] = po
			}
		}
	}

	ix.checked = map[string][]localBackend{}
	for _, e := range ix.lbs {
		lb := e.lb
		for _, b := range lb.Backends {
			a, err := netip.ParseAddr(b.IP)
			if err != nil || !a.Is4() {
				continue
			}
			be := backend{ip: ip4(a), port: uint16(b.Port), weight: 1}
			if be.port == 0 {
				be.port = uint16(lb.Port)
			}
			if b.Weight != nil {
				be.weight = uint16(*b.Weight)
			}
			// In the load balancer's network first, then the routed ones.
			for _, cn := range e.nets {
				if po, ok := cn.n.ports[be.ip]; ok {
					be.net, be.p = cn.n, po
					break
				}
			}
			if be.net == nil {
				continue // no port has it: no MAC to send it to
			}
			e.backends = append(e.backends, be)
		}
		for _, cn := range e.nets {
			ix.byNet[cn.n.id] = append(ix.byNet[cn.n.id], e)
			for h := range cn.n.local {
				if l := ix.byHost[h]; len(l) == 0 || l[len(l)-1] != e {
					ix.byHost[h] = append(l, e)
				}
			}
		}
		if p, ok := paramsOf(lb); ok {
			for _, be := range e.backends {
				if be.p.ofport == 0 {
					continue
				}
				ix.checked[be.p.host] = append(ix.checked[be.p.host], localBackend{
					k: hkey{lb.ID, formatIP(be.ip), int(be.port)}, p: p, vip: netip.AddrFrom4(ip4Bytes(e.vip)), vmac: e.vmac,
					ip: netip.AddrFrom4(ip4Bytes(be.ip)), mac: be.p.mac, port: be.port, ofport: be.p.ofport, key: be.net.key})
			}
		}
	}
	return ix
}

// hostsServing adds to hosts the hosts that serve lbs.
func hostsServing(lbs []*lbEntry, hosts map[string]bool) {
	for _, e := range lbs {
		for _, cn := range e.nets {
			for h := range cn.n.local {
				hosts[h] = true
			}
		}
	}
}

func ip4Bytes(v uint64) [4]byte { return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
