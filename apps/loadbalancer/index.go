package loadbalancer

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// index is what the app compiles every switch from. It is built once per
// view snapshot: in full when load balancers, networks, subnets or
// routers change, else from the previous one, redoing only the networks
// whose ports changed and the load balancers that use them. An index is
// never modified once built (switches read it concurrently).
type index struct {
	lbs []*lbEntry // by name
	// nets are the networks the load balancers use (their client
	// networks), by id.
	nets map[string]*netInfo
	// byNet are the load balancers each network is a client network of.
	byNet map[string][]*lbEntry
	// checked are the health-checked backends by the host they are bound on.
	checked map[string][]localBackend
}

// netInfo is a network as the load balancers see it.
type netInfo struct {
	id     string
	key    uint32
	ports  map[uint64]portOf    // by IPv4 address
	local  map[string]int       // hosts with ports of the network bound: how many
	byName map[string]portEntry // the ports, by name
}

// portOf is a port's MAC and, when it is bound, its host and OpenFlow port.
type portOf struct {
	mac    flow.MAC
	host   string
	ofport uint32
}

// portEntry is a port of a network: its addresses and where it is.
type portEntry struct {
	ips []uint64
	po  portOf
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

// serves tells whether host has a port in one of e's client networks.
func (e *lbEntry) serves(host string) bool {
	for _, cn := range e.nets {
		if cn.n.local[host] > 0 {
			return true
		}
	}
	return false
}

// buildIndex resolves the load balancers of s.
func buildIndex(s *view.Snapshot) *index {
	ix := &index{nets: map[string]*netInfo{}, byNet: map[string][]*lbEntry{}}
	m := s.Model
	if m.LoadBalancers.Len() == 0 {
		return ix
	}
	keys := kit.NetworkKeys(m)

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

	netOf := func(id string) *netInfo {
		n := ix.nets[id]
		if n == nil {
			key, ok := keys[id]
			if !ok {
				return nil
			}
			n = &netInfo{id: id, key: key, ports: map[uint64]portOf{}, local: map[string]int{}, byName: map[string]portEntry{}}
			ix.nets[id] = n
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

	// One pass over the ports of the networks the load balancers use.
	for _, p := range m.Ports.All() {
		if n := ix.nets[p.Network]; n != nil {
			if pe, ok := entryOf(s, p); ok {
				n.add(p.Name, pe)
			}
		}
	}
	for _, e := range ix.lbs {
		e.resolve()
		for _, cn := range e.nets {
			ix.byNet[cn.n.id] = append(ix.byNet[cn.n.id], e)
		}
	}
	ix.checked = checkedBackends(ix.lbs)
	return ix
}

// update returns the index of s, whose changes since old's snapshot are c:
// ix itself when they concern no load balancer, ix with the networks
// whose ports changed redone when only ports or bindings changed, else a
// full build.
func (ix *index) update(old, s *view.Snapshot, c view.Changes) *index {
	if len(ix.lbs) == 0 && s.Model.LoadBalancers.Len() == 0 {
		return ix
	}
	if !portsOnly(c) {
		return buildIndex(s) // load balancers, networks, subnets, routers ...
	}
	// The networks whose ports changed, redone from their ports' old
	// and new states.
	nets := map[string]*netInfo{}
	redo := func(name string, p *model.Port, add bool, snap *view.Snapshot) {
		n := nets[p.Network]
		if n == nil {
			if n = ix.nets[p.Network]; n == nil {
				return // not a network load balancers use
			}
			n = n.clone()
			nets[p.Network] = n
		}
		if !add {
			n.remove(name)
		} else if pe, ok := entryOf(snap, p); ok {
			n.add(name, pe)
		}
	}
	for name := range c.Ports {
		if p, ok := old.Model.Ports.ByName(name); ok {
			redo(name, p, false, old)
		}
		if p, ok := s.Model.Ports.ByName(name); ok {
			redo(name, p, true, s)
		}
	}
	if len(nets) == 0 {
		return ix
	}
	nx := &index{nets: maps.Clone(ix.nets), byNet: maps.Clone(ix.byNet), lbs: slices.Clone(ix.lbs)}
	maps.Copy(nx.nets, nets)
	// The load balancers using them: resolved again with the new
	// networks.
	renew := map[*lbEntry]*lbEntry{}
	for id := range nets {
		for _, e := range ix.byNet[id] {
			if renew[e] == nil {
				ne := *e
				ne.nets = slices.Clone(e.nets)
				for i := range ne.nets {
					ne.nets[i].n = nx.nets[ne.nets[i].n.id]
				}
				ne.own = ne.nets[0].n
				ne.resolve()
				renew[e] = &ne
			}
		}
	}
	for i, e := range nx.lbs {
		if ne := renew[e]; ne != nil {
			nx.lbs[i] = ne
			for _, cn := range ne.nets {
				l := slices.Clone(nx.byNet[cn.n.id])
				for j := range l {
					if r := renew[l[j]]; r != nil {
						l[j] = r
					}
				}
				nx.byNet[cn.n.id] = l
			}
		}
	}
	nx.checked = checkedBackends(nx.lbs)
	return nx
}

// portsOnly tells changes that concern only ports and their bindings.
func portsOnly(c view.Changes) bool {
	return !c.All && (len(c.Kinds) == 0 || len(c.Kinds) == 1 && c.Kinds[model.KindPort])
}

// entryOf is a port's entry in its network, and false when its MAC is
// not one.
func entryOf(s *view.Snapshot, p *model.Port) (portEntry, bool) {
	mac, err := flow.ParseMAC(p.MAC)
	if err != nil {
		return portEntry{}, false
	}
	pe := portEntry{po: portOf{mac: mac}}
	if b, bound := s.Binding(p.Name); bound && b.OFPort != 0 {
		pe.po.host, pe.po.ofport = b.Host, b.OFPort
	}
	for _, a := range p.IPs {
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
			pe.ips = append(pe.ips, ip4(ip))
		}
	}
	return pe, true
}

func (n *netInfo) clone() *netInfo {
	c := *n
	c.ports, c.local, c.byName = maps.Clone(n.ports), maps.Clone(n.local), maps.Clone(n.byName)
	return &c
}

func (n *netInfo) add(name string, pe portEntry) {
	n.remove(name)
	n.byName[name] = pe
	for _, ip := range pe.ips {
		n.ports[ip] = pe.po
	}
	if pe.po.host != "" {
		n.local[pe.po.host]++
	}
}

func (n *netInfo) remove(name string) {
	pe, ok := n.byName[name]
	if !ok {
		return
	}
	delete(n.byName, name)
	for _, ip := range pe.ips {
		if n.ports[ip] == pe.po {
			delete(n.ports, ip)
		}
	}
	if h := pe.po.host; h != "" {
		if n.local[h]--; n.local[h] <= 0 {
			delete(n.local, h)
		}
	}
}

// resolve finds e's backends among the ports of its client networks: in
// the load balancer's network first, then the routed ones. A backend no
// port has is left out (no MAC to send it to).
func (e *lbEntry) resolve() {
	lb := e.lb
	e.backends = nil
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
		for _, cn := range e.nets {
			if po, ok := cn.n.ports[be.ip]; ok {
				be.net, be.p = cn.n, po
				break
			}
		}
		if be.net != nil {
			e.backends = append(e.backends, be)
		}
	}
}

// checkedBackends lists the health-checked backends of lbs by the host
// they are bound on.
func checkedBackends(lbs []*lbEntry) map[string][]localBackend {
	out := map[string][]localBackend{}
	for _, e := range lbs {
		p, ok := paramsOf(e.lb)
		if !ok {
			continue
		}
		for _, be := range e.backends {
			if be.p.ofport == 0 {
				continue
			}
			out[be.p.host] = append(out[be.p.host], localBackend{
				k: hkey{e.lb.ID, formatIP(be.ip), int(be.port)}, p: p, vip: netip.AddrFrom4(ip4Bytes(e.vip)), vmac: e.vmac,
				ip: netip.AddrFrom4(ip4Bytes(be.ip)), mac: be.p.mac, port: be.port, ofport: be.p.ofport, key: be.net.key, net: be.net.id})
		}
	}
	return out
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
