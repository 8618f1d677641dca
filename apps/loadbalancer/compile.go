package loadbalancer

import (
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/overlay"
	"github.com/loom-sdn/loom/controller/view"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
)

// Tables are the table ids the compiled flows use. AfterOut and AfterReply
// are where a packet goes on after lb-out (overlay-arp) and lb-reply
// (the to-VM firewall, or overlay-deliver).
type Tables struct{ LB, CT, Out, AfterOut, Reply, AfterReply uint8 }

// Priorities.
const (
	prioARP          = 200
	prioHairpinSNAT  = 130 // lb-out: a backend that is its own client
	prioHairpinOut   = 120 // lb-out: back out of the port it came in
	prioHairpinReply = 110 // lb: a backend's reply to its own hairpin connection
	prioHairpinDNAT  = 105
	prioVIP          = 100
)

// Conntrack state bits (ct_state).
const (
	ctNew = 0x01
	ctTrk = 0x20
)

// Zone is the conntrack zone of a network's load-balanced connections
// (DNAT), on the client's host; HairpinZone holds the source NAT of
// hairpin connections. Both are clear of the firewall's (port numbers,
// below 0x4000) and, in their top bits, of the router's (0x4000|key).
func Zone(key uint32) uint16        { return 0x8000 | uint16(key&0x3fff) }
func HairpinZone(key uint32) uint16 { return 0xc000 | uint16(key&0x3fff) }

// VIPMAC is the MAC address the VIP of a load balancer answers ARP with.
func VIPMAC(lbID string) flow.MAC { return flow.MACFrom(view.GatewayMAC("lb:" + lbID)) }

// GroupID is the select group of a load balancer: a hash of its id in a
// range clear of the overlay's flood groups (twice a network key, below
// 2^28).
func GroupID(lbID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(lbID))
	return 0x40000000 | h.Sum32()&0x0fffffff
}

// backend is a load balancer member resolved to its port.
type backend struct {
	ip     uint64
	port   uint16
	weight uint16
	mac    flow.MAC
	ofport uint32 // on this host; 0 when elsewhere
}

// Up tells whether a backend may take new connections (health checks);
// nil: all are.
type Up func(lbID string, ip string, port int) bool

// Compile returns the flows and groups of the load balancers on the
// switch dpid: those of the networks that have a port bound there.
func Compile(s *view.Snapshot, dpid uint64, t Tables, up Up) ([]*flow.Flow, []*flow.Group) {
	host, ok := s.HostByDatapath(dpid)
	if !ok {
		return nil, nil
	}
	m := s.Model
	keys := overlay.NetworkKeys(m)
	// The networks with a port on this host, and every port's MAC and
	// local OpenFlow port by IPv4 address, per network.
	local := map[string]bool{}
	type portOf struct {
		mac    flow.MAC
		ofport uint32
	}
	byIP := map[string]map[uint64]portOf{}
	for _, p := range m.Ports.All() {
		var ofport uint32
		if b, bound := s.Binding(p.Name); bound && b.Host == host.Name && b.OFPort != 0 {
			ofport = b.OFPort
			local[p.Network] = true
		}
		mac, err := flow.ParseMAC(p.MAC)
		if err != nil {
			continue
		}
		for _, a := range p.IPs {
			if ip, err := netip.ParseAddr(a); err == nil && ip.Is4() {
				if byIP[p.Network] == nil {
					byIP[p.Network] = map[uint64]portOf{}
				}
				byIP[p.Network][ip4(ip)] = portOf{mac, ofport}
			}
		}
	}
	lbs := m.LoadBalancers.Sorted()

	var flows []*flow.Flow
	seen := map[flow.Key]bool{}
	add := func(f *flow.Flow) {
		if k := f.Key(); !seen[k] {
			seen[k] = true
			flows = append(flows, f)
		}
	}
	var groups []*flow.Group
	for _, lb := range lbs {
		key, kok := keys[lb.Network]
		vipAddr, err := netip.ParseAddr(lb.VIP)
		if !local[lb.Network] || !kok || err != nil || !vipAddr.Is4() {
			continue
		}
		proto := uint8(packet.ProtoTCP)
		dstField, srcField := flow.TCPDst, flow.TCPSrc
		if lb.Protocol == "udp" {
			proto, dstField, srcField = packet.ProtoUDP, flow.UDPDst, flow.UDPSrc
		}
		vip, vmac := ip4(vipAddr), VIPMAC(lb.ID)
		zone, hzone := Zone(key), HairpinZone(key)
		net := flow.Match{}.SetMasked(flow.Metadata, uint64(key), overlay.MetadataMask)
		ipm := net.EthType(packet.EtherTypeIPv4)
		l4 := ipm.IPProto(proto)
		// lb-reply sees replies from this host's ports and other hosts'
		// (the remote bit set) alike.
		anyHost := flow.Match{}.SetMasked(flow.Metadata, uint64(key), overlay.MetadataMask&^(1<<32)).
			EthType(packet.EtherTypeIPv4).IPProto(proto)

		var bes []backend
		for _, b := range lb.Backends {
			a, err := netip.ParseAddr(b.IP)
			p, found := byIP[lb.Network][ip4(a)]
			if err != nil || !a.Is4() || !found {
				continue // not a port of the network: no MAC to send it to
			}
			be := backend{ip: ip4(a), port: uint16(b.Port), weight: 1, mac: p.mac, ofport: p.ofport}
			if be.port == 0 {
				be.port = uint16(lb.Port)
			}
			if b.Weight != nil {
				be.weight = uint16(*b.Weight)
			}
			bes = append(bes, be)
		}

		// ARP for the VIP, answered on this host.
		add(flow.New(t.LB, prioARP, net.EthType(packet.EtherTypeARP).Set(flow.ARPOp, 1).Set(flow.ARPTpa, vip)).
			Act(flow.ARPResponder(vmac, vip)...))
		// To the VIP: conntrack (an established connection gets its
		// translation back), then a new one is balanced.
		add(flow.New(t.LB, prioVIP, l4.Set(flow.IPv4Dst, vip).Set(dstField, uint64(lb.Port))).
			Act(flow.CT(flow.CTSpec{Zone: zone, Table: t.CT, NAT: flow.NATRestore})))
		g := &flow.Group{ID: GroupID(lb.ID), Type: flow.GroupSelect}
		for _, be := range bes {
			if up != nil && !up(lb.ID, formatIP(be.ip), int(be.port)) {
				continue
			}
			g.Buckets = append(g.Buckets, flow.Bucket{Weight: be.weight, WatchPort: flow.PortAny, WatchGroup: 0xffffffff,
				Actions: []flow.Action{flow.CT(flow.CTSpec{Commit: true, Zone: zone, Table: t.Out, NAT: flow.NATDst, Addr: uint32(be.ip), Port: be.port})}})
		}
		groups = append(groups, g)
		newConn := l4.SetMasked(flow.CTState, ctNew|ctTrk, ctNew|ctTrk).Set(flow.IPv4Dst, vip).Set(dstField, uint64(lb.Port))
		if lb.AffinitySeconds > 0 && len(g.Buckets) > 0 {
			// Client affinity: the backend follows from the client's
			// address (its low 6 bits pick one of 64 slots, dealt to the
			// backends by weight), not from the group's per-connection
			// hash, so a client stays on its backend as long as the
			// backends that are up stay the same.
			for slot, b := range affinitySlots(g.Buckets) {
				add(flow.New(t.CT, prioVIP, newConn.SetMasked(flow.IPv4Src, uint64(slot), affinityMask)).Act(b.Actions...))
			}
		} else if lb.Protocol == "udp" && len(g.Buckets) > 0 {
			// UDP: OVS's select groups (dp_hash over the symmetric L3/L4
			// hash) leave UDP ports out, so every connection of a client
			// would go to one backend. The client's source port picks the
			// slot instead (64 slots dealt by weight).
			for slot, b := range affinitySlots(g.Buckets) {
				add(flow.New(t.CT, prioVIP, newConn.SetMasked(srcField, uint64(slot), affinityMask)).Act(b.Actions...))
			}
		} else if len(g.Buckets) > 0 {
			add(flow.New(t.CT, prioVIP, newConn).Act(flow.ToGroup(g.ID)))
		} else {
			add(flow.New(t.CT, prioVIP, newConn)) // no backend up: drop
		}
		// After DNAT: to the backend's MAC. Every address of the
		// network has its flow, and every backend port its reply flow,
		// so that the established connections of a backend taken out of
		// the load balancer go on.
		for _, ip := range slices.Sorted(maps.Keys(byIP[lb.Network])) {
			p := byIP[lb.Network][ip]
			add(flow.New(t.Out, prioVIP, ipm.EthDst(vmac).Set(flow.IPv4Dst, ip)).
				Act(flow.SetField(flow.EthDst, uint64(p.mac))).Goto(t.AfterOut))
		}
		for _, be := range bes {
			bport := uint64(be.port)
			// The backends' replies, on their client's host: back to
			// VIP:port (connections of zone Z only; others pass unchanged).
			add(flow.New(t.Reply, prioVIP, anyHost.Set(srcField, bport)).
				Act(flow.CT(flow.CTSpec{Zone: zone, Table: t.AfterReply, NAT: flow.NATRestore})))
			if be.ofport == 0 {
				continue
			}
			// Hairpin: a local backend is its own client. Its connection
			// is also source-NATed to the VIP (the VM would drop a packet
			// from its own address), and both ways leave by the port they
			// came in (OpenFlow drops output to in_port).
			add(flow.New(t.Out, prioHairpinSNAT, l4.Set(flow.IPv4Src, be.ip).Set(flow.IPv4Dst, be.ip).Set(dstField, bport)).
				Act(flow.CT(flow.CTSpec{Commit: true, Zone: hzone, Table: t.Out, NAT: flow.NATSrc, Addr: uint32(vip)})))
			add(flow.New(t.Out, prioHairpinOut, ipm.InPort(be.ofport).EthDst(vmac).Set(flow.IPv4Dst, be.ip)).
				Act(flow.SetField(flow.EthSrc, uint64(vmac)), flow.SetField(flow.EthDst, uint64(be.mac)), flow.Output(flow.PortInPort)))
			// Its replies: the source NAT undone, then the DNAT.
			add(flow.New(t.LB, prioHairpinReply, l4.Set(flow.IPv4Src, be.ip).Set(srcField, bport).Set(flow.IPv4Dst, vip)).
				Act(flow.CT(flow.CTSpec{Zone: hzone, Table: t.LB, NAT: flow.NATRestore})))
			add(flow.New(t.LB, prioHairpinDNAT, l4.Set(flow.IPv4Src, be.ip).Set(srcField, bport).Set(flow.IPv4Dst, be.ip)).
				Act(flow.CT(flow.CTSpec{Zone: zone, Table: t.CT, NAT: flow.NATRestore})))
		}
	}
	return flows, groups
}

// affinityMask is the part of the client's address that picks its slot.
const affinityMask = 63

// affinitySlots deals the 64 slots to the buckets in proportion to their
// weights, interleaved (smooth weighted round robin).
func affinitySlots(buckets []flow.Bucket) []flow.Bucket {
	out := make([]flow.Bucket, affinityMask+1)
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
