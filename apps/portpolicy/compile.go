package portpolicy

import (
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
)

// Tables are the table ids the compiled flows use.
type Tables struct{ Security, AfterSecurity, Out, AfterOut uint8 }

// State is the app's desired state on one switch.
type State struct {
	Flows  []*flow.Flow
	Meters []*flow.Meter
}

// Priorities in port-security.
const (
	prioIsolate = 110 // DHCP server replies from an isolated port
	prioAllow   = 100 // what the port may send
	prioDeny    = 90  // anything else from the port
)

// Meter ids: one per port and direction, from the port's OpenFlow number
// (kit.Meters).
const (
	meterFromVM = kit.MeterPortFromVM
	meterToVM   = kit.MeterPortToVM
)

// Policy is what applies to one port.
type Policy struct {
	Security  bool   // IP-MAC binding
	Isolate   bool   // DHCP isolation
	DSCP      int    // -1: no marking
	PCP       int    // 802.1p priority for VLAN uplinks; -1: none
	RateKbps  uint32 // 0: no limit
	BurstKbit uint32
}

// PolicyOf is a port's policy: port security on, nothing else, unless its
// port group says otherwise.
func PolicyOf(m *model.Snapshot, p *model.Port) Policy {
	pol := Policy{Security: true, DSCP: -1, PCP: -1}
	g, ok := m.PortGroups.Get(p.PortGroup)
	if p.PortGroup == "" || !ok {
		return pol
	}
	if g.IPMACBinding != nil {
		pol.Security = *g.IPMACBinding
	}
	pol.Isolate = g.DHCPIsolation
	if g.Priority != nil {
		pol.DSCP = *g.Priority << 3 // class selector CS<priority>
		pol.PCP = *g.Priority
	}
	if g.BandwidthKbps > 0 {
		pol.RateKbps = uint32(g.BandwidthKbps)
		pol.BurstKbit = uint32(g.BurstKB) * 8
		if pol.BurstKbit == 0 {
			pol.BurstKbit = max(pol.RateKbps/10, 1)
		}
	}
	return pol
}

// Compile computes the port policies of the VM ports bound on the switch
// with datapath id dpid.
func Compile(s *view.Snapshot, dpid uint64, t Tables) State {
	host, ok := s.HostByDatapath(dpid)
	if !ok {
		return State{}
	}
	m := s.Model
	ports := make([]*model.Port, 0)
	ofports := map[*model.Port]uint32{}
	for _, name := range s.PortsOn(host.Name) {
		p, ok := m.Ports.ByName(name)
		if b, bound := s.Binding(name); ok && bound && b.OFPort != 0 {
			ports = append(ports, p)
			ofports[p] = b.OFPort
		}
	}
	slices.SortFunc(ports, func(a, b *model.Port) int { return int(ofports[a]) - int(ofports[b]) })
	var st State
	for _, p := range ports {
		compilePort(&st, p, ofports[p], PolicyOf(m, p), t)
	}
	return st
}

func compilePort(st *State, p *model.Port, ofport uint32, pol Policy, t Tables) {
	add := func(f *flow.Flow) { st.Flows = append(st.Flows, f) }
	in := flow.Match{}.InPort(ofport)
	// What goes on from the port: marked, metered.
	onward := func(f *flow.Flow, ip bool) *flow.Flow {
		if ip && pol.DSCP >= 0 {
			f.Act(flow.SetField(flow.IPDSCP, uint64(pol.DSCP)))
		}
		if pol.PCP > 0 {
			f.Act(flow.SetField(kit.RegPriority, uint64(pol.PCP)))
		}
		if pol.RateKbps > 0 {
			f.WithMeter(meterFromVM + ofport)
		}
		return f.Goto(t.AfterSecurity)
	}
	if pol.RateKbps > 0 {
		band := []flow.Band{{Rate: pol.RateKbps, Burst: pol.BurstKbit}}
		st.Meters = append(st.Meters,
			&flow.Meter{ID: meterFromVM + ofport, Flags: flow.MeterKbps | flow.MeterBurst | flow.MeterStats, Bands: band},
			&flow.Meter{ID: meterToVM + ofport, Flags: flow.MeterKbps | flow.MeterBurst | flow.MeterStats, Bands: band})
		add(flow.New(t.Out, prioAllow, flow.Match{}.Set(kit.RegOutPort, uint64(ofport))).
			WithMeter(meterToVM + ofport).Goto(t.AfterOut))
	}
	if pol.Isolate {
		add(flow.New(t.Security, prioIsolate, in.EthType(packet.EtherTypeIPv4).IPProto(packet.ProtoUDP).Set(flow.UDPSrc, 67)))
	}
	if !pol.Security {
		if pol.DSCP >= 0 {
			add(onward(flow.New(t.Security, prioAllow, in.EthType(packet.EtherTypeIPv4)), true))
		}
		add(onward(flow.New(t.Security, prioDeny, in), false))
		return
	}
	mac, err := flow.ParseMAC(p.MAC)
	if err != nil {
		add(flow.New(t.Security, prioDeny, in)) // no valid MAC: nothing may leave
		return
	}
	from := in.EthSrc(mac)
	var ips []uint64
	var ip6s [][16]byte
	for _, a := range p.IPs {
		ip, err := netip.ParseAddr(a)
		switch {
		case err != nil:
		case ip.Is4():
			b := ip.As4()
			ips = append(ips, uint64(b[0])<<24|uint64(b[1])<<16|uint64(b[2])<<8|uint64(b[3]))
		case ip.Is6():
			ip6s = append(ip6s, ip.As16())
		}
	}
	ipv4 := from.EthType(packet.EtherTypeIPv4)
	arp := from.EthType(packet.EtherTypeARP).Set(flow.ARPSha, uint64(mac))
	for _, ip := range ips {
		add(onward(flow.New(t.Security, prioAllow, ipv4.Set(flow.IPv4Src, ip)), true))
		add(onward(flow.New(t.Security, prioAllow, arp.Set(flow.ARPSpa, ip)), false))
	}
	// DHCP before the port has its address, and ARP probes (RFC 5227).
	add(onward(flow.New(t.Security, prioAllow, ipv4.Set(flow.IPv4Src, 0).Set(flow.IPv4Dst, 0xffffffff).
		IPProto(packet.ProtoUDP).Set(flow.UDPSrc, 68).Set(flow.UDPDst, 67)), true))
	add(onward(flow.New(t.Security, prioAllow, arp.Set(flow.ARPSpa, 0)), false))
	// IPv6 from the port's model addresses and its link-local address
	// (derived from its MAC, RFC 4291), which neighbour discovery needs.
	if len(ip6s) > 0 {
		ip6s = append(ip6s, linkLocal(mac))
	}
	for _, a := range ip6s {
		add(onward(flow.New(t.Security, prioAllow, from.EthType(packet.EtherTypeIPv6).IPv6Src(a)), false))
	}
	add(flow.New(t.Security, prioDeny, in))
}

// linkLocal is the EUI-64 link-local IPv6 address of a MAC.
func linkLocal(mac flow.MAC) [16]byte {
	m := mac.Bytes()
	return [16]byte{0xfe, 0x80, 8: m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]}
}
