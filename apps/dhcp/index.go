package dhcp

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

// Defaults of what the model leaves open.
const (
	// DefaultLease is the lease of a subnet without lease_seconds.
	DefaultLease = 86400
	// MTUVXLAN is the MTU handed to VMs of VXLAN networks: 1500 less
	// the 50 bytes of VXLAN over IPv4 on a 1500-byte underlay.
	MTUVXLAN = 1450
	// MTU is the MTU handed to VMs of VLAN and flat networks.
	MTU = 1500
)

// Subnet is what the server hands out for one DHCP-enabled IPv4 subnet.
type Subnet struct {
	ID        string
	Prefix    netip.Prefix
	ServerIP  netip.Addr // the gateway address: server id and source of replies
	ServerMAC packet.MAC // view.GatewayMAC
	Mask      netip.Addr
	Router    netip.Addr // the gateway
	DNS       []netip.Addr
	Lease     uint32
	MTU       uint16
	Routes    []packet.DHCPRoute // option 121; nil without host routes
}

// Port is a model port bound on a host, as the server sees it.
type Port struct {
	Name string
	MAC  packet.MAC
	IP   netip.Addr // its address in a DHCP-enabled subnet; invalid if none
	// Subnet is the subnet of IP, or, for a port without one, the
	// network's first DHCP-enabled subnet (the server that says NAK).
	Subnet *Subnet
}

// host is one host's share of the index.
type host struct {
	keys  []uint32         // networks served on the host (a port bound there), sorted
	ports map[uint32]*Port // by OpenFlow port, ports of served networks only
	// What updates need: the ports counted in keys, by network key, and
	// the ports that claim an OpenFlow port too but lose it to the one
	// in ports (sorted by name; rare: two ports' active bindings on one
	// OpenFlow port, the port with the smallest name wins).
	count map[uint32]int
	dups  map[uint32][]*Port
}

func newHost() *host { return &host{ports: map[uint32]*Port{}, count: map[uint32]int{}} }

// clone is a copy of h to edit (h is published: never edited).
func (h *host) clone() *host {
	return &host{keys: slices.Clone(h.keys), ports: maps.Clone(h.ports), count: maps.Clone(h.count),
		dups: maps.Clone(h.dups)}
}

func byName(p *Port, name string) int { return cmp.Compare(p.Name, name) }

// add adds a port's claim to h (a host being built or a clone).
func (h *host) add(c claim) {
	if cur, ok := h.ports[c.ofport]; !ok {
		h.ports[c.ofport] = c.port
	} else {
		win, lose := cur, c.port
		if c.port.Name < cur.Name {
			win, lose = c.port, cur
		}
		h.ports[c.ofport] = win
		if h.dups == nil {
			h.dups = map[uint32][]*Port{}
		}
		d := h.dups[c.ofport]
		i, _ := slices.BinarySearchFunc(d, lose.Name, byName)
		h.dups[c.ofport] = slices.Insert(slices.Clone(d), i, lose)
	}
	if c.keyed {
		if h.count[c.key]++; h.count[c.key] == 1 {
			i, _ := slices.BinarySearch(h.keys, c.key)
			h.keys = slices.Insert(h.keys, i, c.key)
		}
	}
}

// remove takes a port's claim, as add added it, out of h (a clone).
func (h *host) remove(c claim) {
	d := h.dups[c.ofport]
	if cur, ok := h.ports[c.ofport]; ok && cur.Name == c.port.Name {
		if len(d) == 0 {
			delete(h.ports, c.ofport)
		} else {
			h.ports[c.ofport] = d[0]
			h.setDups(c.ofport, slices.Clone(d[1:]))
		}
	} else if i, ok := slices.BinarySearchFunc(d, c.port.Name, byName); ok {
		h.setDups(c.ofport, slices.Delete(slices.Clone(d), i, i+1))
	}
	if c.keyed && h.count[c.key] > 0 {
		if h.count[c.key]--; h.count[c.key] == 0 {
			delete(h.count, c.key)
			if i, ok := slices.BinarySearch(h.keys, c.key); ok {
				h.keys = slices.Delete(h.keys, i, i+1)
			}
		}
	}
}

func (h *host) setDups(ofport uint32, d []*Port) {
	if len(d) == 0 {
		delete(h.dups, ofport)
	} else {
		h.dups[ofport] = d
	}
}

// nShards is the number of maps the hosts are spread over by datapath
// id, so that an update copies the few small maps of the hosts it
// changes, not a map of all hosts.
const nShards = 64

type hostShards [nShards]map[uint64]*host

func shardOf(dpid uint64) int { return int(dpid % nShards) }

func (hs *hostShards) get(dpid uint64) (*host, bool) {
	h, ok := hs[shardOf(dpid)][dpid]
	return h, ok
}

// Index is a view snapshot digested for the DHCP server: for each host
// (by datapath id), the networks whose DHCP requests it answers and the
// ports bound on it. It is immutable and shared by all switches.
//
// An index is built in full when hosts, networks, subnets or routers
// change (or too many ports at once), else from the previous one (see
// update), redoing only the ports whose model object or binding changed
// and copying only the hosts they were or are bound on.
type Index struct {
	Seq   uint64 // the view snapshot's
	snap  *view.Snapshot
	nets  map[string][]*Subnet // DHCP-enabled IPv4 subnets by network, sorted by id
	keys  map[string]uint32    // network keys (kit.NetworkKeys)
	hosts *hostShards
}

// NewIndex digests a view snapshot.
func NewIndex(s *view.Snapshot) *Index {
	m := s.Model
	x := &Index{Seq: s.Seq, snap: s, nets: map[string][]*Subnet{}, keys: kit.NetworkKeys(m), hosts: &hostShards{}}
	for _, sn := range m.Subnets.All() {
		if sub, ok := newSubnet(m, sn); ok {
			x.nets[sn.Network] = append(x.nets[sn.Network], sub)
		}
	}
	for _, subs := range x.nets {
		slices.SortFunc(subs, func(a, b *Subnet) int { return cmp.Compare(a.ID, b.ID) })
	}
	for _, p := range m.Ports.All() {
		c, ok := x.claimOf(s, p)
		if !ok {
			continue
		}
		shard := &x.hosts[shardOf(c.dpid)]
		h := (*shard)[c.dpid]
		if h == nil {
			if *shard == nil {
				*shard = map[uint64]*host{}
			}
			h = newHost()
			(*shard)[c.dpid] = h
		}
		h.add(c)
	}
	return x
}

// claim is a port as the index has it: on the host with datapath id
// dpid, at OpenFlow port ofport, in the network with key key (if keyed).
type claim struct {
	dpid   uint64
	ofport uint32
	key    uint32
	keyed  bool
	port   *Port
}

// claimOf is p's claim in s, and false when the server does not know p
// there: its network has no DHCP-enabled IPv4 subnet, it is not bound
// (with an OpenFlow port) on a host, or its MAC is not one. It reads
// only x's subnets and network keys, which hold for s.
func (x *Index) claimOf(s *view.Snapshot, p *model.Port) (claim, bool) {
	subs := x.nets[p.Network]
	if len(subs) == 0 {
		return claim{}, false
	}
	b, ok := s.Binding(p.Name)
	if !ok || b.OFPort == 0 {
		return claim{}, false
	}
	dpid, ok := s.DatapathID(b.Host)
	if !ok {
		return claim{}, false
	}
	mac, err := flow.ParseMAC(p.MAC)
	if err != nil {
		return claim{}, false
	}
	key, keyed := x.keys[p.Network]
	return claim{dpid: dpid, ofport: b.OFPort, key: key, keyed: keyed,
		port: newPort(p, packet.MAC(mac.Bytes()), subs)}, true
}

// rebuilds tells the changes after which an index is built in full:
// those of what subnets, network keys and datapath ids come from, and
// changes to more than half of the ports.
func rebuilds(c view.Changes, s *view.Snapshot) bool {
	return c.All || c.Kinds[model.KindHost] || c.Kinds[model.KindNetwork] || c.Kinds[model.KindSubnet] ||
		c.Kinds[model.KindRouter] || len(c.Ports) > max(64, s.Model.Ports.Len()/2)
}

// update returns the index of s, a newer snapshot than x's, and the
// datapath ids whose served networks differ from x's (what Changed
// says). Unless it rebuilds (see rebuilds), it redoes only the ports
// whose model object or binding changed: each one's claim in x's
// snapshot is taken out of its host and its claim in s put in, on
// copies of those hosts and of their shards; the rest is shared with x.
func (x *Index) update(s *view.Snapshot) (*Index, []uint64) {
	c := kit.Changes(x.snap, s)
	if rebuilds(c, s) {
		nx := NewIndex(s)
		return nx, nx.Changed(x)
	}
	nx := &Index{Seq: s.Seq, snap: s, nets: x.nets, keys: x.keys, hosts: x.hosts}
	edited := map[uint64]*host{} // copies of the hosts changed, by dpid
	edit := func(dpid uint64) *host {
		h := edited[dpid]
		if h == nil {
			if o, ok := x.hosts.get(dpid); ok {
				h = o.clone()
			} else {
				h = newHost()
			}
			edited[dpid] = h
		}
		return h
	}
	for name := range c.Ports {
		var was, is claim
		var had, has bool
		if p, ok := x.snap.Model.Ports.ByName(name); ok {
			was, had = x.claimOf(x.snap, p)
		}
		if p, ok := s.Model.Ports.ByName(name); ok {
			is, has = x.claimOf(s, p)
		}
		if had && has && was.dpid == is.dpid && was.ofport == is.ofport && was.key == is.key &&
			was.keyed == is.keyed && *was.port == *is.port {
			continue // nothing the server uses changed (its state, its other fields)
		}
		if had {
			edit(was.dpid).remove(was)
		}
		if has {
			edit(is.dpid).add(is)
		}
	}
	if len(edited) == 0 {
		return nx, nil
	}
	hs := *x.hosts
	var copied [nShards]bool
	var changed []uint64
	for dpid, h := range edited {
		i := shardOf(dpid)
		if !copied[i] {
			copied[i] = true
			hs[i] = maps.Clone(hs[i])
			if hs[i] == nil {
				hs[i] = map[uint64]*host{}
			}
		}
		o, had := x.hosts[i][dpid]
		has := len(h.ports) > 0
		if has {
			hs[i][dpid] = h
		} else {
			delete(hs[i], dpid)
		}
		if has != had || has && !slices.Equal(o.keys, h.keys) {
			changed = append(changed, dpid)
		}
	}
	nx.hosts = &hs
	return nx, changed
}

func newSubnet(m *model.Snapshot, sn *model.Subnet) (*Subnet, bool) {
	if sn.DHCP != nil && !*sn.DHCP {
		return nil, false
	}
	p, err := netip.ParsePrefix(sn.CIDR)
	gw, gerr := netip.ParseAddr(sn.Gateway)
	if err != nil || gerr != nil || !p.Addr().Is4() || !gw.Is4() {
		return nil, false
	}
	mask := netip.AddrFrom4([4]byte{})
	if bits := p.Bits(); bits > 0 {
		v := ^uint32(0) << (32 - bits)
		mask = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	sub := &Subnet{ID: sn.ID, Prefix: p, ServerIP: gw, ServerMAC: view.GatewayMAC(sn.ID), Mask: mask,
		Lease: DefaultLease, MTU: MTU}
	if sn.LeaseSeconds > 0 {
		sub.Lease = uint32(sn.LeaseSeconds)
	}
	if n, ok := m.Networks.Get(sn.Network); ok && n.Type == "vxlan" {
		sub.MTU = MTUVXLAN
	}
	// The gateway is the router whether or not a router is attached yet,
	// as Neutron and OVN announce it: a VM leased before its subnet joins
	// a router routes as soon as it does, not when it renews.
	sub.Router = gw
	for _, d := range sn.DNSServers {
		if a, err := netip.ParseAddr(d); err == nil && a.Is4() {
			sub.DNS = append(sub.DNS, a)
		}
	}
	hasDefault := false
	for _, r := range sn.HostRoutes {
		dst, err := netip.ParsePrefix(r.Destination)
		nh, nerr := netip.ParseAddr(r.Nexthop)
		if err != nil || nerr != nil || !dst.Addr().Is4() || !nh.Is4() {
			continue
		}
		sub.Routes = append(sub.Routes, packet.DHCPRoute{Dst: dst.Masked(), Gateway: nh})
		hasDefault = hasDefault || dst.Bits() == 0
	}
	// A client that gets option 121 ignores option 3 (RFC 3442): the
	// default route goes into 121 too.
	if len(sub.Routes) > 0 && !hasDefault {
		sub.Routes = append(sub.Routes, packet.DHCPRoute{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: gw})
	}
	return sub, true
}

// newPort finds the port's lease: its first IPv4 address inside one of
// the network's DHCP-enabled subnets.
func newPort(p *model.Port, mac packet.MAC, subs []*Subnet) *Port {
	pt := &Port{Name: p.Name, MAC: mac, Subnet: subs[0]}
	for _, s := range p.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			continue
		}
		for _, sub := range subs {
			if sub.Prefix.Contains(a) {
				pt.IP, pt.Subnet = a, sub
				return pt
			}
		}
	}
	return pt
}

// Port returns the port bound to OpenFlow port ofport of the switch
// with datapath id dpid, if it is in a network the server serves (of two
// ports bound there at once, the one with the smaller name).
func (x *Index) Port(dpid uint64, ofport uint32) (*Port, bool) {
	h, ok := x.hosts.get(dpid)
	if !ok {
		return nil, false
	}
	p, ok := h.ports[ofport]
	return p, ok
}

// Networks returns the keys of the networks the switch with datapath id
// dpid serves, sorted: those with a DHCP-enabled IPv4 subnet and a port
// bound on its host. The slice must not be modified.
func (x *Index) Networks(dpid uint64) []uint32 {
	if h, ok := x.hosts.get(dpid); ok {
		return h.keys
	}
	return nil
}

// Changed returns the datapath ids whose served networks differ between
// old and x (the only change that changes flows).
func (x *Index) Changed(old *Index) []uint64 {
	var out []uint64
	for i := range x.hosts {
		for dpid, h := range x.hosts[i] {
			if o, ok := old.hosts[i][dpid]; !ok || !slices.Equal(o.keys, h.keys) {
				out = append(out, dpid)
			}
		}
	}
	for i := range old.hosts {
		for dpid := range old.hosts[i] {
			if _, ok := x.hosts[i][dpid]; !ok {
				out = append(out, dpid)
			}
		}
	}
	return out
}

// Priority of the flows that send DHCP requests to the controller.
const prioRequest = 100

// Compile returns the DHCP table's flows for the switch with datapath id
// dpid: for each network it serves, requests from local VMs (client port
// to server port) go to the controller through the meter (none if 0).
func (x *Index) Compile(dpid uint64, table uint8, meter uint32) []*flow.Flow {
	keys := x.Networks(dpid)
	out := make([]*flow.Flow, 0, len(keys))
	for _, key := range keys {
		f := flow.New(table, prioRequest, flow.Match{}.Set(flow.Metadata, uint64(key)).
			EthType(packet.EtherTypeIPv4).IPProto(packet.ProtoUDP).
			Set(flow.UDPSrc, packet.DHCPClientPort).Set(flow.UDPDst, packet.DHCPServerPort))
		if meter != 0 {
			f.WithMeter(meter)
		}
		out = append(out, f.Act(flow.Output(flow.PortController)))
	}
	return out
}
