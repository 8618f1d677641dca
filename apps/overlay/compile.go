package overlay

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// Tables are the table ids the compiled flows use: the overlay's, and
// where packets go on after classification (the next table, ARP unless
// another app's table sits in between) and after forwarding to a local
// port (Deliver unless another app's table sits in between).
type Tables struct{ Classify, AfterClassify, ARP, Forward, AfterForward, Deliver uint8 }

// The definitions the apps share with the overlay are the kit's.
const (
	RegOutPort  = kit.RegOutPort
	RegPriority = kit.RegPriority
)

// SwitchPorts are the switch's own ports the overlay uses.
type SwitchPorts = kit.SwitchPorts

// State is the overlay's desired state on one switch.
type State struct {
	Flows  []*flow.Flow
	Groups []*flow.Group
}

// Metadata layout (kit.Metadata): the network's key in the low 32 bits,
// and the remote bit set on packets that came from another host (a tunnel
// or the uplink), so that they are never sent back to one (split horizon).
const (
	remoteBit = kit.MetaRemote
	keyMask   = kit.MetaKeyMask
	metaMask  = kit.MetadataMask
)

// Priorities.
const (
	prioPort     = 100 // classify: a port, tunnel or uplink; forward: a known MAC
	prioARPGuard = 110 // a VM's own address (gratuitous ARP, duplicate address probe)
	prioARPReply = 100
	prioFlood    = 10
)

// floodGroup is a network's flood group (kit.FloodGroup).
func floodGroup(key uint32, localOnly bool) uint32 { return kit.FloodGroup(key, localOnly) }

// vlanPresent is OpenFlow's OFPVID_PRESENT bit of vlan_vid.
const vlanPresent = 0x1000

type port struct {
	ofport uint32 // on its host
	mac    flow.MAC
	ips    []uint64 // IPv4 addresses
}

// network is one network as one host sees it.
type network struct {
	net    *model.Network
	key    uint32
	local  []port
	remote map[string][]port // by host name
	all    []port            // every port of the network with a MAC (for the ARP responder)
}

// NetworkKeys gives every network its key (kit.NetworkKeys).
func NetworkKeys(m *model.Snapshot) map[string]uint32 { return kit.NetworkKeys(m) }

// Compile computes the overlay's flows and groups for the switch with
// datapath id dpid. A switch that is no host's integration bridge gets
// nothing; a host gets a network's flows only while one of the network's
// ports is bound to it.
func Compile(s *view.Snapshot, dpid uint64, t Tables, sp SwitchPorts) State {
	return NewIndex(s, nil).Compile(dpid, t, sp)
}

// Index is a view snapshot digested for compiling: every network with its
// ports and where they are bound, and the networks each host has ports
// in. It is built once per view change and shared by all switches, so a
// switch's compile costs only its own networks, not the whole model; and
// it is built from the previous index by redoing only the networks a
// change touched.
type Index struct {
	Seq    uint64 // the view snapshot's
	snap   *view.Snapshot
	nets   map[string]*netIndex   // by network id
	byHost map[string][]*netIndex // networks with a port bound on the host, by network id
	// peers are, for each network attached to a router, the other
	// networks of its routers: a host with a port in one routes to the
	// others, so it needs their forwarding flows (not their classifiers
	// or flood groups).
	peers map[string][]string
	// gateways are, for each network of a router with a way out, the
	// router's gateway host (by name), and gatewayNets the reverse: the
	// gateway host routes traffic from outside into those networks.
	gateways    map[string][]string
	gatewayNets map[string][]string

	base     *Index          // the index this one was derived from, if any
	affected map[string]bool // hosts whose state may differ from base's
}

type netIndex struct {
	net   *model.Network
	key   uint32
	ports []iport // by port id
}

type iport struct {
	id     string
	mac    flow.MAC
	ips    []uint64
	host   string // "" when not bound
	ofport uint32
}

// newPort digests a model port and its binding; false if its MAC is bad.
func newPort(s *view.Snapshot, p *model.Port) (iport, bool) {
	mac, err := flow.ParseMAC(p.MAC)
	if err != nil {
		return iport{}, false
	}
	ip := iport{id: p.ID, mac: mac}
	for _, a := range p.IPs {
		if addr, err := netip.ParseAddr(a); err == nil && addr.Is4() {
			b := addr.As4()
			ip.ips = append(ip.ips, uint64(b[0])<<24|uint64(b[1])<<16|uint64(b[2])<<8|uint64(b[3]))
		}
	}
	if b, bound := s.Binding(p.Name); bound && b.OFPort != 0 {
		ip.host, ip.ofport = b.Host, b.OFPort
	}
	return ip, true
}

func byID(a, b iport) int { return cmp.Compare(a.id, b.id) }

func byNetID(a, b *netIndex) int { return cmp.Compare(a.net.ID, b.net.ID) }

// hosts calls fn for every host with a port of n bound on it (repeats
// included).
func (n *netIndex) hosts(fn func(string)) {
	for _, p := range n.ports {
		if p.host != "" {
			fn(p.host)
		}
	}
}

// NewIndex digests a view snapshot. Given the previous index it redoes
// only the networks whose ports or bindings changed since, when the
// model's and the view's change logs say which (a host or network change,
// or many changes, means a full rebuild).
func NewIndex(s *view.Snapshot, prev *Index) *Index {
	if prev != nil {
		if x, ok := prev.derive(s); ok {
			return x
		}
	}
	m := s.Model
	x := &Index{Seq: s.Seq, snap: s, nets: make(map[string]*netIndex, m.Networks.Len()), byHost: map[string][]*netIndex{}}
	keys := NetworkKeys(m)
	for id, n := range m.Networks.All() {
		x.nets[id] = &netIndex{net: n, key: keys[id]}
	}
	for _, p := range m.Ports.All() {
		if n := segment(x.nets, m, p); n != nil {
			if ip, ok := newPort(s, p); ok {
				n.ports = append(n.ports, ip)
			}
		}
	}
	for _, n := range x.nets {
		slices.SortFunc(n.ports, byID)
		n.hosts(func(h string) {
			if hn := x.byHost[h]; len(hn) == 0 || hn[len(hn)-1] != n {
				x.byHost[h] = append(hn, n)
			}
		})
	}
	for _, hn := range x.byHost {
		slices.SortFunc(hn, byNetID)
	}
	x.peers = routedPeers(m)
	x.gateways, x.gatewayNets = routerGateways(m)
	return x
}

// routerGateways maps the networks of routers with an external network
// and a gateway host to that host's name, and back.
func routerGateways(m *model.Snapshot) (byNet, byHost map[string][]string) {
	byNet, byHost = map[string][]string{}, map[string][]string{}
	for _, r := range m.Routers.All() {
		if r.ExternalNetwork == "" || r.GatewayHost == "" {
			continue
		}
		h, ok := m.Hosts.Get(r.GatewayHost)
		if !ok {
			continue
		}
		for _, sid := range r.Subnets {
			sn, ok := m.Subnets.Get(sid)
			if !ok {
				continue
			}
			if !slices.Contains(byNet[sn.Network], h.Name) {
				byNet[sn.Network] = append(byNet[sn.Network], h.Name)
			}
			if !slices.Contains(byHost[h.Name], sn.Network) {
				byHost[h.Name] = append(byHost[h.Name], sn.Network)
			}
		}
	}
	return byNet, byHost
}

// routedPeers maps each network with a subnet on a router to the other
// networks of that router (and of any other router its subnets are on).
func routedPeers(m *model.Snapshot) map[string][]string {
	peers := map[string][]string{}
	for _, r := range m.Routers.All() {
		var nets []string
		for _, sid := range r.Subnets {
			if sn, ok := m.Subnets.Get(sid); ok && !slices.Contains(nets, sn.Network) {
				nets = append(nets, sn.Network)
			}
		}
		for _, a := range nets {
			for _, b := range nets {
				if a != b && !slices.Contains(peers[a], b) {
					peers[a] = append(peers[a], b)
				}
			}
		}
	}
	for _, ps := range peers {
		slices.Sort(ps)
	}
	return peers
}

// segmentID names the L2 segment a port is switched in: its network,
// except for a port of a flat network whose port group has a VLAN: the
// port is an access port of that VLAN on the uplink, in the segment of the
// VLAN network with that tag, or of a network of its own, "vlan:N", if
// the model has none. vlan is the tag of such a segment, 0 otherwise.
func segmentID(m *model.Snapshot, p *model.Port) (id string, vlan int) {
	n, ok := m.Networks.Get(p.Network)
	if !ok || n.Type != "flat" || p.PortGroup == "" {
		return p.Network, 0
	}
	g, ok := m.PortGroups.Get(p.PortGroup)
	if !ok || g.VLAN == 0 {
		return p.Network, 0
	}
	for id, o := range m.Networks.All() {
		if o.Type == "vlan" && o.VLAN == g.VLAN {
			return id, g.VLAN
		}
	}
	return "vlan:" + strconv.Itoa(g.VLAN), g.VLAN
}

// segment returns the port's segment in nets, adding a "vlan:N" segment
// when it is the first port of one; nil if its network is unknown.
func segment(nets map[string]*netIndex, m *model.Snapshot, p *model.Port) *netIndex {
	id, vlan := segmentID(m, p)
	if n := nets[id]; n != nil || vlan == 0 {
		return n
	}
	n := &netIndex{net: &model.Network{Meta: model.Meta{ID: id, Name: id}, Type: "vlan", VLAN: vlan},
		key: kit.KeyVLAN | uint32(vlan)}
	nets[id] = n
	return n
}

// derive builds the index of s from x by redoing the networks changed
// since x.
func (x *Index) derive(s *view.Snapshot) (*Index, bool) {
	mchanges, ok := s.Model.ChangesSince(x.snap.Model.Revision)
	if !ok {
		return nil, false
	}
	bchanges, ok := s.BindingsChangedSince(x.Seq)
	if !ok {
		return nil, false
	}
	oldM, newM := x.snap.Model, s.Model
	ports := map[string]bool{} // changed port ids
	for _, c := range mchanges {
		switch c.Kind {
		case model.KindPort:
			ports[c.ID] = true
		case model.KindHost, model.KindNetwork, model.KindRouter, model.KindSubnet, model.KindPortGroup:
			return nil, false
		}
	}
	for _, name := range bchanges {
		if p, ok := newM.Ports.ByName(name); ok {
			ports[p.ID] = true
		}
		if p, ok := oldM.Ports.ByName(name); ok {
			ports[p.ID] = true
		}
	}
	nets := map[string]bool{}
	segOf := func(m *model.Snapshot, p *model.Port) string {
		id, _ := segmentID(m, p)
		return id
	}
	for id := range ports {
		if p, ok := oldM.Ports.Get(id); ok {
			nets[segOf(oldM, p)] = true
		}
		if p, ok := newM.Ports.Get(id); ok {
			nets[segOf(newM, p)] = true
		}
	}
	if len(nets) > len(x.nets)/4+8 {
		return nil, false // cheaper to start over
	}
	y := &Index{Seq: s.Seq, snap: s, nets: make(map[string]*netIndex, len(x.nets)), byHost: make(map[string][]*netIndex, len(x.byHost)),
		base: x, affected: map[string]bool{}, peers: x.peers, gateways: x.gateways, gatewayNets: x.gatewayNets}
	for id, n := range x.nets {
		y.nets[id] = n
	}
	for h, hn := range x.byHost {
		y.byHost[h] = hn
	}
	mark := func(h string) { y.affected[h] = true }
	for id := range nets {
		old := x.nets[id]
		if old == nil {
			v, ok := strings.CutPrefix(id, "vlan:")
			if !ok {
				continue // a port of a network that no longer exists
			}
			vlan, _ := strconv.Atoi(v)
			old = &netIndex{net: &model.Network{Meta: model.Meta{ID: id, Name: id}, Type: "vlan", VLAN: vlan},
				key: kit.KeyVLAN | uint32(vlan)} // the first port of a new segment
		}
		n := &netIndex{net: old.net, key: old.key, ports: make([]iport, 0, len(old.ports)+1)}
		for _, p := range old.ports {
			if !ports[p.id] {
				n.ports = append(n.ports, p)
			}
		}
		for pid := range ports {
			if p, ok := newM.Ports.Get(pid); ok && segOf(newM, p) == id {
				if ip, ok := newPort(s, p); ok {
					n.ports = append(n.ports, ip)
				}
			}
		}
		slices.SortFunc(n.ports, byID)
		y.nets[id] = n
		// Hosts that had or have the network: their lists change; and
		// hosts that route to it.
		old.hosts(mark)
		n.hosts(mark)
		for _, peer := range x.peers[id] {
			if pn := x.nets[peer]; pn != nil {
				pn.hosts(mark)
			}
		}
		for _, h := range x.gateways[id] {
			mark(h)
		}
		had, has := map[string]bool{}, map[string]bool{}
		old.hosts(func(h string) { had[h] = true })
		n.hosts(func(h string) { has[h] = true })
		for h := range had {
			y.byHost[h] = slices.DeleteFunc(slices.Clone(y.byHost[h]), func(o *netIndex) bool { return o.net.ID == id })
			if len(y.byHost[h]) == 0 {
				delete(y.byHost, h)
			}
		}
		for h := range has {
			hn := append(slices.Clone(y.byHost[h]), n)
			slices.SortFunc(hn, byNetID)
			y.byHost[h] = hn
		}
	}
	return y, true
}

func (n *netIndex) equal(o *netIndex) bool {
	return n.net == o.net && n.key == o.key && slices.EqualFunc(n.ports, o.ports, func(a, b iport) bool {
		return a.id == b.id && a.host == b.host && a.ofport == b.ofport && a.mac == b.mac && slices.Equal(a.ips, b.ips)
	})
}

// Affected lists the hosts whose overlay state may differ between old
// and x: those with ports in a network that changed, before or after. all
// is true when every host may be affected (no old index, or a host
// changed, its VTEP address for example).
func (x *Index) Affected(old *Index) (all bool, hosts map[string]bool) {
	if old != nil && x.base == old {
		return false, x.affected
	}
	if old == nil || !sameHosts(old.snap.Model, x.snap.Model) {
		return true, nil
	}
	hosts = map[string]bool{}
	mark := func(h string) { hosts[h] = true }
	for id, n := range x.nets {
		if o, ok := old.nets[id]; !ok || !n.equal(o) {
			n.hosts(mark)
			if ok {
				o.hosts(mark)
			}
			for _, peer := range x.peers[id] {
				if pn := x.nets[peer]; pn != nil {
					pn.hosts(mark)
				}
			}
			for _, h := range x.gateways[id] {
				mark(h)
			}
		}
	}
	if !maps.EqualFunc(x.peers, old.peers, slices.Equal) || !maps.EqualFunc(x.gateways, old.gateways, slices.Equal) {
		return true, nil
	}
	for id, o := range old.nets {
		if _, ok := x.nets[id]; !ok {
			o.hosts(mark)
		}
	}
	return false, hosts
}

func sameHosts(a, b *model.Snapshot) bool {
	if a.Hosts.Len() != b.Hosts.Len() {
		return false
	}
	for id, h := range a.Hosts.All() {
		if o, ok := b.Hosts.Get(id); !ok || o != h {
			return false
		}
	}
	return true
}

// Compile computes the state of the switch with datapath id dpid.
func (x *Index) Compile(dpid uint64, t Tables, sp SwitchPorts) State {
	return x.CompileCached(dpid, t, sp, nil)
}

// NetCache keeps one switch's compiled networks between compiles. A
// network's flows and groups on a host depend only on its index entry
// (its ports and where they are bound), the host, the model's hosts,
// the tables and the switch's ports: an index derived from another
// shares the entries of the networks a change did not touch, and any
// change to hosts rebuilds every entry, so an entry's output is reused
// while the entry (by pointer), the host, the tables and the ports stay.
// A port move then compiles one network, not all of the host's.
type NetCache struct {
	host   *model.Host
	t      Tables
	sp     SwitchPorts
	nets   map[*netIndex]State
	routed map[*netIndex]State
}

// CompileCached is Compile reusing, and refilling, c (nil: no cache).
func (x *Index) CompileCached(dpid uint64, t Tables, sp SwitchPorts, c *NetCache) State {
	host, ok := x.snap.HostByDatapath(dpid)
	if !ok {
		return State{}
	}
	var prevNets, prevRouted map[*netIndex]State
	if c != nil {
		if c.host == host && c.t == t && c.sp == sp {
			prevNets, prevRouted = c.nets, c.routed
		}
		c.host, c.t, c.sp = host, t, sp
		c.nets, c.routed = make(map[*netIndex]State, len(prevNets)), make(map[*netIndex]State, len(prevRouted))
	}
	// each collects ni's output: the cached one, or compiled anew.
	var outs []State
	each := func(ni *netIndex, prev, next map[*netIndex]State, compile func(*State)) {
		out, ok := prev[ni]
		if !ok {
			compile(&out)
		}
		if next != nil {
			next[ni] = out
		}
		outs = append(outs, out)
	}
	var nextNets, nextRouted map[*netIndex]State
	if c != nil {
		nextNets, nextRouted = c.nets, c.routed
	}
	mine := x.byHost[host.Name]
	var routed []*netIndex // networks this host routes to without ports in them
	for _, ni := range mine {
		for _, peer := range x.peers[ni.net.ID] {
			pn := x.nets[peer]
			if pn != nil && !slices.Contains(mine, pn) && !slices.Contains(routed, pn) {
				routed = append(routed, pn)
			}
		}
	}
	for _, id := range x.gatewayNets[host.Name] {
		pn := x.nets[id]
		if pn != nil && !slices.Contains(mine, pn) && !slices.Contains(routed, pn) {
			routed = append(routed, pn)
		}
	}
	slices.SortFunc(routed, byNetID)
	for _, ni := range routed {
		each(ni, prevRouted, nextRouted, func(out *State) { compileRouted(out, ni, host, x.snap.Model, t, sp) })
	}
	for _, ni := range mine {
		each(ni, prevNets, nextNets, func(out *State) {
			n := &network{net: ni.net, key: ni.key, remote: map[string][]port{}, all: make([]port, 0, len(ni.ports))}
			for _, p := range ni.ports {
				pt := port{mac: p.mac, ips: p.ips, ofport: p.ofport}
				n.all = append(n.all, pt)
				switch p.host {
				case "":
				case host.Name:
					n.local = append(n.local, pt)
				default:
					n.remote[p.host] = append(n.remote[p.host], pt)
				}
			}
			compileNetwork(out, n, host, x.snap.Model, t, sp)
		})
	}
	nf, ng := 0, 0
	for _, o := range outs {
		nf, ng = nf+len(o.Flows), ng+len(o.Groups)
	}
	st := State{Flows: make([]*flow.Flow, 0, nf), Groups: make([]*flow.Group, 0, ng)}
	for _, o := range outs {
		st.Flows = append(st.Flows, o.Flows...)
		st.Groups = append(st.Groups, o.Groups...)
	}
	return st
}

// compileRouted gives a host the forwarding flows of a network it has no
// port in but routes to: each of the network's ports, through the tunnel
// (or the uplink) to its host. The router leaves routed packets with the
// network's key in metadata, as if sent by a local port.
func compileRouted(st *State, ni *netIndex, host *model.Host, m *model.Snapshot, t Tables, sp SwitchPorts) {
	n := &network{net: ni.net, key: ni.key, remote: map[string][]port{}}
	for _, p := range ni.ports {
		if p.host != "" && p.host != host.Name {
			n.remote[p.host] = append(n.remote[p.host], port{mac: p.mac, ips: p.ips, ofport: p.ofport})
		}
	}
	toRemote, _ := remoteActions(n, host, m, sp)
	if toRemote == nil {
		return
	}
	local := uint64(n.key)
	for h, ports := range n.remote {
		acts := toRemote(h)
		if acts == nil {
			continue
		}
		for _, p := range ports {
			st.Flows = append(st.Flows, flow.New(t.Forward, prioPort, flow.Match{}.Set(flow.Metadata, local).EthDst(p.mac)).Act(acts...))
		}
	}
}

// remoteActions returns where frames for a port on another host go (nil
// when they cannot leave this host) and the flood group's buckets for the
// other hosts: one per remote VTEP with ports in a VXLAN network, the
// (tagged) uplink for VLAN and flat networks.
func remoteActions(n *network, host *model.Host, m *model.Snapshot, sp SwitchPorts) (func(string) []flow.Action, []flow.Bucket) {
	switch n.net.Type {
	case "vxlan":
		if sp.Tunnel == 0 || host.VTEPIP == "" {
			return nil, nil
		}
		vni := uint64(n.net.VNI)
		toRemote := func(h string) []flow.Action {
			mh, ok := m.Hosts.ByName(h)
			if !ok {
				return nil
			}
			ip, err := netip.ParseAddr(mh.VTEPIP)
			if err != nil || !ip.Is4() {
				return nil
			}
			b := ip.As4()
			vtep := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
			return []flow.Action{flow.SetField(flow.TunnelID, vni), flow.SetField(flow.TunDst, vtep), flow.Output(sp.Tunnel)}
		}
		hosts := make([]string, 0, len(n.remote))
		for h := range n.remote {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		var buckets []flow.Bucket
		for _, h := range hosts {
			if acts := toRemote(h); acts != nil {
				buckets = append(buckets, flow.NewBucket(acts...))
			}
		}
		return toRemote, buckets
	case "vlan", "flat":
		if sp.Uplink == 0 {
			return nil, nil
		}
		out := []flow.Action{flow.Output(sp.Uplink)}
		if n.net.Type == "vlan" {
			out = []flow.Action{flow.PushVLAN(), flow.SetField(flow.VlanVID, uint64(vlanPresent|n.net.VLAN)),
				flow.MoveBits(kit.RegPriority, 0, flow.VlanPCP, 0, 3), flow.Output(sp.Uplink)}
		}
		return func(string) []flow.Action { return out }, []flow.Bucket{flow.NewBucket(out...)}
	}
	return nil, nil
}

func compileNetwork(st *State, n *network, host *model.Host, m *model.Snapshot, t Tables, sp SwitchPorts) {
	byPort := func(a, b port) int { return cmp.Compare(a.ofport, b.ofport) }
	slices.SortFunc(n.local, byPort)
	local := uint64(n.key)
	remote := local | remoteBit
	meta := func(f *flow.Flow, v uint64) *flow.Flow {
		f.WriteMetadata, f.Metadata, f.MetadataMask = true, v, metaMask
		return f.Goto(t.AfterClassify)
	}
	add := func(f *flow.Flow) { st.Flows = append(st.Flows, f) }

	// Frames from other hosts: the tunnel with the network's VNI, or the
	// uplink with its VLAN tag (none for flat networks).
	switch n.net.Type {
	case "vxlan":
		if sp.Tunnel != 0 && host.VTEPIP != "" {
			add(meta(flow.New(t.Classify, prioPort, flow.Match{}.InPort(sp.Tunnel).TunnelID(uint64(n.net.VNI))), remote))
		}
	case "vlan":
		if sp.Uplink != 0 {
			vid := uint64(vlanPresent | n.net.VLAN)
			add(meta(flow.New(t.Classify, prioPort, flow.Match{}.InPort(sp.Uplink).Set(flow.VlanVID, vid)).Act(flow.PopVLAN()), remote))
		}
	case "flat":
		if sp.Uplink != 0 {
			add(meta(flow.New(t.Classify, prioPort, flow.Match{}.InPort(sp.Uplink).Set(flow.VlanVID, 0)), remote))
		}
	}
	toRemote, remoteBuckets := remoteActions(n, host, m, sp)

	for _, p := range n.local {
		add(meta(flow.New(t.Classify, prioPort, flow.Match{}.InPort(p.ofport)), local))
		// A VM asking for its own address (gratuitous ARP, duplicate
		// address detection) must reach the network, not be answered.
		for _, ip := range p.ips {
			add(flow.New(t.ARP, prioARPGuard, flow.Match{}.InPort(p.ofport).EthType(packet.EtherTypeARP).Set(flow.ARPOp, 1).
				Set(flow.ARPTpa, ip)).Goto(t.Forward))
		}
	}
	// The ARP responder, for requests from local VMs.
	for _, p := range n.all {
		for _, ip := range p.ips {
			add(flow.New(t.ARP, prioARPReply, flow.Match{}.Set(flow.Metadata, local).EthType(packet.EtherTypeARP).
				Set(flow.ARPOp, 1).Set(flow.ARPTpa, ip)).Act(flow.ARPResponder(p.mac, ip)...))
		}
	}

	// Forwarding by destination MAC.
	var localBuckets []flow.Bucket
	for _, p := range n.local {
		toPort := flow.SetField(kit.RegOutPort, uint64(p.ofport))
		add(flow.New(t.Forward, prioPort, flow.Match{}.SetMasked(flow.Metadata, local, keyMask).EthDst(p.mac)).
			Act(toPort).Goto(t.AfterForward))
		localBuckets = append(localBuckets, flow.NewBucket(toPort, flow.Resubmit(t.AfterForward)))
		add(flow.New(t.Deliver, prioPort, flow.Match{}.Set(kit.RegOutPort, uint64(p.ofport))).Act(flow.Output(p.ofport)))
	}
	if toRemote != nil {
		for h, ports := range n.remote {
			acts := toRemote(h)
			if acts == nil {
				continue
			}
			for _, p := range ports {
				add(flow.New(t.Forward, prioPort, flow.Match{}.Set(flow.Metadata, local).EthDst(p.mac)).Act(acts...))
			}
		}
	}
	full := &flow.Group{ID: floodGroup(n.key, false), Type: flow.GroupAll,
		Buckets: append(slices.Clone(localBuckets), remoteBuckets...)}
	localOnly := &flow.Group{ID: floodGroup(n.key, true), Type: flow.GroupAll, Buckets: localBuckets}
	st.Groups = append(st.Groups, full, localOnly)
	add(flow.New(t.Forward, prioFlood, flow.Match{}.Set(flow.Metadata, local)).Act(flow.ToGroup(full.ID)))
	add(flow.New(t.Forward, prioFlood, flow.Match{}.Set(flow.Metadata, remote)).Act(flow.ToGroup(localOnly.ID)))
}
