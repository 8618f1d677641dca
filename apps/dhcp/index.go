package dhcp

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/overlay"
	"github.com/loom-sdn/loom/controller/view"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
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
	Router    netip.Addr // the gateway when a router is attached; invalid otherwise
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
}

// Index is a view snapshot digested for the DHCP server: for each host
// (by datapath id), the networks whose DHCP requests it answers and the
// ports bound on it. It is immutable and shared by all switches.
type Index struct {
	Seq   uint64 // the view snapshot's
	hosts map[uint64]*host
}

// NewIndex digests a view snapshot.
func NewIndex(s *view.Snapshot) *Index {
	m := s.Model
	x := &Index{Seq: s.Seq, hosts: map[uint64]*host{}}
	routed := map[string]bool{}
	for _, r := range m.Routers.All() {
		for _, id := range r.Subnets {
			routed[id] = true
		}
	}
	nets := map[string][]*Subnet{} // DHCP-enabled IPv4 subnets by network, by id
	for _, sn := range m.Subnets.All() {
		if sub, ok := newSubnet(m, sn, routed[sn.ID]); ok {
			nets[sn.Network] = append(nets[sn.Network], sub)
		}
	}
	for _, subs := range nets {
		slices.SortFunc(subs, func(a, b *Subnet) int { return cmp.Compare(a.ID, b.ID) })
	}
	keys := overlay.NetworkKeys(m)
	for _, p := range m.Ports.All() {
		subs := nets[p.Network]
		if len(subs) == 0 {
			continue
		}
		b, ok := s.Binding(p.Name)
		if !ok || b.OFPort == 0 {
			continue
		}
		dpid, ok := s.DatapathID(b.Host)
		if !ok {
			continue
		}
		mac, err := flow.ParseMAC(p.MAC)
		if err != nil {
			continue
		}
		h := x.hosts[dpid]
		if h == nil {
			h = &host{ports: map[uint32]*Port{}}
			x.hosts[dpid] = h
		}
		if key, ok := keys[p.Network]; ok && !slices.Contains(h.keys, key) {
			h.keys = append(h.keys, key)
		}
		h.ports[b.OFPort] = newPort(p, packet.MAC(mac.Bytes()), subs)
	}
	for _, h := range x.hosts {
		slices.Sort(h.keys)
	}
	return x
}

func newSubnet(m *model.Snapshot, sn *model.Subnet, routed bool) (*Subnet, bool) {
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
	if routed {
		sub.Router = gw
	}
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
	if len(sub.Routes) > 0 && routed && !hasDefault {
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
// with datapath id dpid, if it is in a network the server serves.
func (x *Index) Port(dpid uint64, ofport uint32) (*Port, bool) {
	h, ok := x.hosts[dpid]
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
	if h, ok := x.hosts[dpid]; ok {
		return h.keys
	}
	return nil
}

// Changed returns the datapath ids whose served networks differ between
// old and x (the only change that changes flows).
func (x *Index) Changed(old *Index) []uint64 {
	var out []uint64
	for dpid, h := range x.hosts {
		if o, ok := old.hosts[dpid]; !ok || !slices.Equal(o.keys, h.keys) {
			out = append(out, dpid)
		}
	}
	for dpid := range old.hosts {
		if _, ok := x.hosts[dpid]; !ok {
			out = append(out, dpid)
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
