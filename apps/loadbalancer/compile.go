package loadbalancer

import (
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// Tables are the table ids the compiled flows use. AfterOut and AfterReply
// are where a packet goes on after lb-out (overlay-arp) and lb-reply
// (the to-VM firewall, or overlay-deliver); Affinity is the learned
// table of pinned clients, Learn the side table that pins them.
type Tables struct{ LB, CT, Affinity, Learn, Out, AfterOut, Reply, AfterReply uint8 }

// Priorities.
const (
	prioARP          = 200
	prioHairpinSNAT  = 130 // lb-out: a backend that is its own client
	prioHairpinOut   = 120 // lb-out: back to the port it came in from
	prioHairpinReply = 110 // lb: a backend's reply to its own hairpin connection
	prioPinned       = 110 // lb-ct: a new connection of a pinned client
	prioHairpinDNAT  = 105
	prioVIP          = 100
	prioRouted       = 90 // lb-out: to a backend in another network, through the router
	prioLearned      = 100
)

// Conntrack state bits (ct_state).
const (
	ctNew = 0x01
	ctTrk = 0x20
)

// Registers. regFlags marks a packet the load balancer translates
// (flagLB: lb-out sends it to its backend) and the hairpin NAT steps it
// went through, so that a packet conntrack did not translate (an invalid
// one) does not loop back to the same flow. regAffIP and regAffPort are
// a client's backend: loaded by its pin in lb-affinity, or by the bucket
// that picks it (for lb-learn to pin).
const (
	regFlags    = kit.RegLBFlags
	regAffIP    = kit.RegLBAffinityIP
	regAffPort  = kit.RegLBAffinityPort
	flagLB      = 1
	flagUnSNAT  = 2 // lb: a hairpin reply went through the hairpin zone
	flagSNAT    = 4 // lb-out: a hairpin connection went through it
	flagsUnSNAT = flagLB | flagUnSNAT
	flagsSNAT   = flagLB | flagSNAT
)

// A zone looks up a zone user's conntrack zone on the host compiled for
// (view.Snapshot.Zone). A client network's load-balanced connections
// (DNAT) live in its zone kit.LBZone(network id) on the client's host,
// the source NAT of its hairpin connections in kit.LBHairpinZone: zones
// the host allocated to them, which no other network nor app shares.
type zone func(user string) (uint16, bool)

// zonesOf is host's zone lookup in s.
// net returns the zones of a client network (its DNAT and hairpin
// zones), false until the host has both: the network's load balancer
// flows are compiled only then.
func (z zone) net(netID string) (dnat, hairpin uint16, ok bool) {
	dnat, ok1 := z(kit.LBZone(netID))
	hairpin, ok2 := z(kit.LBHairpinZone(netID))
	return dnat, hairpin, ok1 && ok2
}

func zonesOf(s *view.Snapshot, host string) zone {
	return func(user string) (uint16, bool) { return s.Zone(host, user) }
}

// VIPMAC is the MAC address the VIP of a load balancer answers ARP with.
func VIPMAC(lbID string) flow.MAC { return flow.MACFrom(view.GatewayMAC("lb:" + lbID)) }

// group returns the select group of load balancer lbID for its clients
// in network netID: kit.LBGroup of the number the host allocated to
// them, false until it has.
func (z zone) group(lbID, netID string) (uint32, bool) {
	n, ok := z(kit.LBSelectUser(lbID, netID))
	return kit.LBGroup(n), ok
}

// Up tells whether a backend may take new connections (health checks);
// nil: all are.
type Up func(lbID string, ip string, port int) bool

// Compile returns the flows and groups of the load balancers on the
// switch dpid (see compileHost).
func Compile(s *view.Snapshot, dpid uint64, t Tables, up Up) ([]*flow.Flow, []*flow.Group) {
	host, ok := s.HostByDatapath(dpid)
	if !ok {
		return nil, nil
	}
	return compileHost(buildIndex(s), s, host.Name, zonesOf(s, host.Name), t, up)
}

// compileHost returns the flows and groups of the load balancers host
// serves, for each of their client networks with a port bound there
// whose zones and select group number host has: a network without them
// gets no flows yet (its clients find no VIP), never a zone or a group
// it would share.
func compileHost(ix *index, s *view.Snapshot, host string, zones zone, t Tables, up Up) ([]*flow.Flow, []*flow.Group) {
	var flows []*flow.Flow
	seen := map[flow.Key]bool{}
	add := func(f *flow.Flow) {
		if k := f.Key(); !seen[k] {
			seen[k] = true
			flows = append(flows, f)
		}
	}
	var groups []*flow.Group
	for _, e := range servedOn(ix, s, host) {
		for _, cn := range e.nets {
			if cn.n.local[host] == 0 {
				continue // first: the zone users' names cost allocations
			}
			z, hz, ok := zones.net(cn.n.id)
			gid, gok := zones.group(e.lb.ID, cn.n.id)
			if ok && gok {
				groups = append(groups, compileNet(e, cn, host, z, hz, gid, t, up, add))
			}
		}
	}
	return flows, groups
}

// servedOn returns the load balancers with a client network that has a
// port bound on host in s (ix's snapshot), in name order: found from the
// host's ports, so that a host's compile costs its own networks, not
// every load balancer of the model.
func servedOn(ix *index, s *view.Snapshot, host string) []*lbEntry {
	var out []*lbEntry
	seen := map[string]bool{}
	for _, name := range s.PortsOn(host) {
		p, ok := s.Model.Ports.ByName(name)
		if !ok || seen[p.Network] {
			continue
		}
		seen[p.Network] = true
		for _, e := range ix.byNet[p.Network] {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b *lbEntry) int { return strings.Compare(a.lb.Name, b.lb.Name) })
	return out
}

// compileNet adds the flows of load balancer e for its clients in network
// cn on host, and returns their select group.
func compileNet(e *lbEntry, cn clientNet, host string, zone, hzone uint16, gid uint32, t Tables, up Up, add func(*flow.Flow)) *flow.Group {
	lb, key := e.lb, cn.n.key
	own := cn.n == e.own
	net := flow.Match{}.SetMasked(flow.Metadata, uint64(key), kit.MetadataMask)
	ipm := net.EthType(packet.EtherTypeIPv4)
	l4 := ipm.IPProto(e.proto)
	flagged := ipm.SetMasked(regFlags, flagLB, flagLB)
	// lb-reply sees replies from this host's ports and other hosts'
	// (the remote bit set) alike.
	anyHost := flow.Match{}.SetMasked(flow.Metadata, uint64(key), kit.MetaKeyMask).
		EthType(packet.EtherTypeIPv4).IPProto(e.proto)
	// Where the VIP's packets come from: its own MAC in its network, the
	// gateway in a routed one.
	vipMAC := e.vmac
	if !own {
		vipMAC = cn.gw
	}
	affinity := lb.AffinitySeconds > 0

	if own {
		// ARP for the VIP, answered on this host (routed clients ARP
		// for their gateway).
		add(flow.New(t.LB, prioARP, net.EthType(packet.EtherTypeARP).Set(flow.ARPOp, 1).Set(flow.ARPTpa, e.vip)).
			Act(flow.ARPResponder(e.vmac, e.vip)...))
	}
	// To the VIP: marked, the client's pinned backend looked up (with
	// affinity), conntrack (an established connection gets its
	// translation back), then a new one is balanced.
	toVIP := l4.Set(flow.IPv4Dst, e.vip).Set(e.dstField, uint64(lb.Port))
	acts := []flow.Action{flow.SetField(regFlags, flagLB)}
	if affinity {
		acts = append(acts, flow.Resubmit(t.Affinity))
	}
	add(flow.New(t.LB, prioVIP, toVIP).Act(append(acts, flow.CT(flow.CTSpec{Zone: zone, Table: t.CT, NAT: flow.NATRestore}))...))

	g := &flow.Group{ID: gid, Type: flow.GroupSelect}
	newConn := toVIP.SetMasked(flow.CTState, ctNew|ctTrk, ctNew|ctTrk)
	for _, be := range e.backends {
		if up != nil && !up(lb.ID, formatIP(be.ip), int(be.port)) {
			continue
		}
		dnat := flow.CT(flow.CTSpec{Commit: true, Zone: zone, Table: t.Out, NAT: flow.NATDst, Addr: uint32(be.ip), Port: be.port})
		bucket := flow.Bucket{Weight: be.weight, WatchPort: flow.PortAny, WatchGroup: 0xffffffff, Actions: []flow.Action{dnat}}
		if affinity {
			// The first connection of a client pins it: the bucket hands
			// its backend to lb-learn, which has the switch learn it for
			// affinity_seconds after the client's last packet to the VIP.
			// The client's later new connections find it in lb-affinity
			// and go straight to this backend (while it is up: else
			// through the group again, which pins another).
			bucket.Actions = []flow.Action{flow.SetField(regAffIP, be.ip), flow.SetField(regAffPort, uint64(be.port)),
				flow.Resubmit(t.Learn), dnat}
			add(flow.New(t.CT, prioPinned, newConn.Set(regAffIP, be.ip).Set(regAffPort, uint64(be.port))).Act(dnat))
		}
		g.Buckets = append(g.Buckets, bucket)
	}
	if affinity {
		add(flow.New(t.Learn, prioLearned, toVIP).Act(pin(e, t)))
	}
	switch {
	case len(g.Buckets) == 0:
		add(flow.New(t.CT, prioVIP, newConn)) // no backend up: drop
	case e.proto == packet.ProtoUDP:
		// UDP: OVS's select groups (dp_hash over the symmetric L3/L4
		// hash) leave UDP ports out, so every connection of a client
		// would go to one backend. The client's source port picks the
		// slot instead (64 slots dealt by weight).
		for slot, b := range slots(g.Buckets) {
			add(flow.New(t.CT, prioVIP, newConn.SetMasked(e.srcField, uint64(slot), slotMask)).Act(b.Actions...))
		}
	default:
		add(flow.New(t.CT, prioVIP, newConn).Act(flow.ToGroup(g.ID)))
	}

	// After DNAT: to the backend's MAC, when it is in the client's
	// network; else to the gateway, to be routed. Every address of the
	// network has its flow, and every backend its reply flow, so that
	// the established connections of a backend taken out of the load
	// balancer go on.
	for _, ip := range slices.Sorted(maps.Keys(cn.n.ports)) {
		add(flow.New(t.Out, prioVIP, flagged.Set(flow.IPv4Dst, ip)).
			Act(flow.SetField(flow.EthDst, uint64(cn.n.ports[ip].mac))).Goto(t.AfterOut))
	}
	if cn.gw != 0 {
		add(flow.New(t.Out, prioRouted, flagged).Act(flow.SetField(flow.EthDst, uint64(cn.gw))).Goto(t.AfterOut))
	}
	for _, be := range e.backends {
		// The backends' replies, on their client's host: back to
		// VIP:port (connections of zone Z only; others pass unchanged).
		add(flow.New(t.Reply, prioVIP, anyHost.Set(e.srcField, uint64(be.port))).
			Act(flow.CT(flow.CTSpec{Zone: zone, Table: t.AfterReply, NAT: flow.NATRestore})))
		if be.net != cn.n || be.p.host != host {
			continue
		}
		// Hairpin: a local backend is its own client. Its connection is
		// also source-NATed to the VIP (the VM would drop a packet from
		// its own address). Both ways then go to the port the normal way
		// (through its ingress firewall: the VIP is the source), with
		// in_port cleared (OpenFlow drops output to in_port).
		bip, bport := be.ip, uint64(be.port)
		add(flow.New(t.Out, prioHairpinSNAT, l4.SetMasked(regFlags, 0, flagSNAT).Set(flow.IPv4Src, bip).Set(flow.IPv4Dst, bip).Set(e.dstField, bport)).
			Act(flow.SetField(regFlags, flagsSNAT), flow.CT(flow.CTSpec{Commit: true, Zone: hzone, Table: t.Out, NAT: flow.NATSrc, Addr: uint32(e.vip)})))
		add(flow.New(t.Out, prioHairpinOut, flagged.InPort(be.p.ofport).Set(flow.IPv4Dst, bip)).
			Act(flow.SetField(flow.EthSrc, uint64(vipMAC)), flow.SetField(flow.EthDst, uint64(be.p.mac)), flow.ClearInPort()).
			Goto(t.AfterOut))
		// Its replies: the source NAT undone, then the DNAT.
		add(flow.New(t.LB, prioHairpinReply, l4.SetMasked(regFlags, 0, flagUnSNAT).Set(flow.IPv4Src, bip).Set(e.srcField, bport).Set(flow.IPv4Dst, e.vip)).
			Act(flow.SetField(regFlags, flagsUnSNAT), flow.CT(flow.CTSpec{Zone: hzone, Table: t.LB, NAT: flow.NATRestore})))
		add(flow.New(t.LB, prioHairpinDNAT, l4.Set(flow.IPv4Src, bip).Set(e.srcField, bport).Set(flow.IPv4Dst, bip)).
			Act(flow.SetField(regFlags, flagsUnSNAT), flow.CT(flow.CTSpec{Zone: zone, Table: t.CT, NAT: flow.NATRestore})))
	}
	return g
}

// PinCookie is the cookie of the pins a load balancer's clients get: the
// app's owner bits and a hash of the load balancer and its
// affinity_seconds, so that the pins of a load balancer that changed its
// affinity or went away can be forgotten (controller.Context.ForgetLearned).
func PinCookie(lb *model.LoadBalancer) uint64 {
	h := fnv.New64a()
	h.Write([]byte(lb.ID))
	h.Write([]byte{'/'})
	h.Write([]byte(strconv.Itoa(lb.AffinitySeconds)))
	return controller.OwnerCookie(Name) | max(h.Sum64()&controller.CookieLowMask, 1)
}

// pin is the learn action that pins a client to the backend in
// regAffIP/regAffPort: a flow in lb-affinity, matching the client's
// network, address and the VIP:port, that loads the backend into the
// same registers, idle for affinity_seconds at most.
func pin(e *lbEntry, t Tables) flow.Action {
	return flow.Learn(flow.LearnSpec{
		Table: t.Affinity, Priority: prioLearned, IdleTimeout: uint16(min(e.lb.AffinitySeconds, 0xffff)),
		Cookie: PinCookie(e.lb),
		Specs: []flow.LearnField{
			flow.LearnMatchBits(flow.Metadata, 0, 32),
			flow.LearnMatchValue(flow.EthType, packet.EtherTypeIPv4),
			flow.LearnMatchValue(flow.IPProto, uint64(e.proto)),
			flow.LearnMatchField(flow.IPv4Src),
			flow.LearnMatchField(flow.IPv4Dst),
			flow.LearnMatchField(e.dstField),
			flow.LearnLoadField(regAffIP, regAffIP, 0, 32),
			flow.LearnLoadField(regAffPort, regAffPort, 0, 16),
		},
	})
}

// slotMask is the part of a UDP client's source port that picks its slot.
const slotMask = 63

// slots deals the 64 slots to the buckets in proportion to their
// weights, interleaved (smooth weighted round robin).
func slots(buckets []flow.Bucket) []flow.Bucket {
	out := make([]flow.Bucket, slotMask+1)
	cur := make([]int, len(buckets))
	total := 0
	for _, b := range buckets {
		total += int(b.Weight)
	}
	for i := range out {
		best := 0
		for j, b := range buckets {
			cur[j] += int(b.Weight)
			if cur[j] > cur[best] {
				best = j
			}
		}
		cur[best] -= total
		out[i] = buckets[best]
	}
	return out
}

func ip4(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

func formatIP(v uint64) string {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}
