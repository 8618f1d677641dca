package firewall

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view"
)

// rule is a security group rule as the compiler uses it.
type rule struct {
	ingress  bool
	stateful bool
	v6       bool   // an IPv6 rule (ethertype ipv6)
	proto    int    // IP protocol, -1 for any (icmp is 58 for IPv6)
	portMin  uint16 // tcp and udp destination ports; 0: any
	portMax  uint16
	// The remote end: a prefix (cidrBits 0 with no group: anywhere; cidr
	// for IPv4, cidr6 for IPv6) or the addresses of a security group's
	// ports.
	cidr     uint32
	cidr6    [16]byte
	cidrBits int
	group    string // remote group id
}

// group is a security group: its rules and its members' addresses.
type group struct {
	id       string
	rules    []rule
	egress   bool       // it has an egress rule: its ports' egress is default-deny
	members  []uint32   // IPv4 addresses of the group's ports (any host, bound or not), sorted, unique
	members6 [][16]byte // their IPv6 addresses, sorted, unique
	// rulesSum and membersSum digest rules and members, for telling
	// which hosts a change affects.
	rulesSum, membersSum uint64
}

// lport is a port with security groups bound on a host.
type lport struct {
	id     string
	ofport uint32
	zone   uint16   // its conntrack zone on the host (kit.PortZone); 0 until allocated
	groups []*group // sorted by id; groups that do not exist are left out
}

// host is one host's share of the index.
type host struct {
	ports []lport // sorted by ofport
	sum   uint64  // digest of everything its flows depend on
}

// Index is a view snapshot digested for the firewall: the security
// groups with their rules and members, and for each host (by datapath id)
// its bound ports that have groups. It is built once per view change and
// shared by all switches, so a switch compiles only its own ports; and a
// digest per host tells which switches a change affects.
type Index struct {
	Seq    uint64 // the view snapshot's
	snap   *view.Snapshot
	groups map[string]*group
	hosts  map[uint64]*host
}

// NewIndex digests a view snapshot. Given the previous index, it keeps
// that index's contents when the change logs say nothing the firewall
// depends on changed: no security group, no host, and no port that has or
// had security groups (a VM without groups coming and going, a router
// change).
func NewIndex(s *view.Snapshot, prev *Index) *Index {
	if prev != nil && prev.unaffected(s) {
		x := *prev
		x.Seq, x.snap = s.Seq, s
		return &x
	}
	m := s.Model
	x := &Index{Seq: s.Seq, snap: s, groups: make(map[string]*group, m.SecurityGroups.Len()), hosts: map[uint64]*host{}}
	for id, sg := range m.SecurityGroups.All() {
		x.groups[id] = newGroup(sg)
	}
	for _, p := range m.Ports.All() {
		if len(p.SecurityGroups) == 0 {
			continue
		}
		var ips []uint32
		var ip6s [][16]byte
		for _, a := range p.IPs {
			if addr, err := netip.ParseAddr(a); err == nil && addr.Is4() {
				ips = append(ips, binary.BigEndian.Uint32(addr.AsSlice()))
			} else if err == nil && addr.Is6() {
				ip6s = append(ip6s, addr.As16())
			}
		}
		lp := lport{id: p.ID}
		for _, gid := range p.SecurityGroups {
			if g := x.groups[gid]; g != nil {
				g.members = append(g.members, ips...)
				g.members6 = append(g.members6, ip6s...)
				lp.groups = append(lp.groups, g)
			}
		}
		b, ok := s.Binding(p.Name)
		if !ok || b.OFPort == 0 {
			continue
		}
		dpid, ok := s.DatapathID(b.Host)
		if !ok {
			continue
		}
		// A port whose groups are all gone still gets default-deny
		// ingress: it asked for a firewall.
		slices.SortFunc(lp.groups, func(a, b *group) int { return cmp.Compare(a.id, b.id) })
		lp.groups = slices.CompactFunc(lp.groups, func(a, b *group) bool { return a == b })
		lp.ofport = b.OFPort
		lp.zone, _ = s.Zone(b.Host, kit.PortZone(p.ID))
		h := x.hosts[dpid]
		if h == nil {
			h = &host{}
			x.hosts[dpid] = h
		}
		h.ports = append(h.ports, lp)
	}
	for _, g := range x.groups {
		slices.Sort(g.members)
		g.members = slices.Compact(g.members)
		slices.SortFunc(g.members6, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		g.members6 = slices.Compact(g.members6)
		hs := fnv.New64a()
		for _, ip := range g.members {
			hs.Write(binary.BigEndian.AppendUint32(nil, ip))
		}
		for _, ip := range g.members6 {
			hs.Write(ip[:])
		}
		g.membersSum = hs.Sum64()
	}
	for _, h := range x.hosts {
		slices.SortFunc(h.ports, func(a, b lport) int { return cmp.Or(cmp.Compare(a.ofport, b.ofport), cmp.Compare(a.id, b.id)) })
		h.sum = x.hostSum(h)
	}
	return x
}

// unaffected tells whether x's contents stand for s too.
func (x *Index) unaffected(s *view.Snapshot) bool {
	c := kit.Changes(x.snap, s)
	if c.All || c.Kinds[model.KindSecurityGroup] || c.Kinds[model.KindHost] || len(c.Zones) > 0 {
		return false
	}
	for name := range c.Ports {
		for _, m := range []*model.Snapshot{x.snap.Model, s.Model} {
			if p, ok := m.Ports.ByName(name); ok && len(p.SecurityGroups) > 0 {
				return false
			}
		}
	}
	return true
}

func newGroup(sg *model.SecurityGroup) *group {
	g := &group{id: sg.ID}
	hs := fnv.New64a()
	for _, r := range sg.Rules {
		cr := rule{ingress: r.Direction == "ingress", stateful: r.Stateful == nil || *r.Stateful,
			v6: r.Ethertype == "ipv6", proto: r.Protocol.Number(), group: r.RemoteGroup}
		if cr.v6 && cr.proto == 1 {
			cr.proto = 58 // icmp of an IPv6 rule: ICMPv6
		}
		if cr.proto == 6 || cr.proto == 17 {
			cr.portMin, cr.portMax = uint16(r.PortMin), uint16(max(r.PortMax, r.PortMin))
			if cr.portMin <= 1 && cr.portMax == 65535 {
				cr.portMin, cr.portMax = 0, 0 // every port: a protocol match alone
			}
		}
		if r.RemoteCIDR != "" {
			p, err := netip.ParsePrefix(r.RemoteCIDR)
			if err != nil || p.Addr().Is4() == cr.v6 {
				continue
			}
			p = p.Masked()
			if cr.v6 {
				cr.cidr6, cr.cidrBits = p.Addr().As16(), p.Bits()
			} else {
				cr.cidr, cr.cidrBits = binary.BigEndian.Uint32(p.Addr().AsSlice()), p.Bits()
			}
		}
		g.egress = g.egress || !cr.ingress
		g.rules = append(g.rules, cr)
		hs.Write([]byte(cr.key()))
	}
	g.rulesSum = hs.Sum64()
	return g
}

// hostSum digests what a host's flows depend on: its ports, their
// groups' rules, and the members of the groups those rules name.
func (x *Index) hostSum(h *host) uint64 {
	hs := fnv.New64a()
	var b []byte
	for _, p := range h.ports {
		b = binary.BigEndian.AppendUint32(append(b[:0], p.id...), p.ofport)
		b = binary.BigEndian.AppendUint16(b, p.zone)
		for _, g := range p.groups {
			b = binary.BigEndian.AppendUint64(append(b, g.id...), g.rulesSum)
			for _, r := range g.rules {
				if r.group != "" {
					if rg := x.groups[r.group]; rg != nil {
						b = binary.BigEndian.AppendUint64(b, rg.membersSum)
					} else {
						b = append(b, 0)
					}
				}
			}
		}
		hs.Write(b)
	}
	return hs.Sum64()
}

// Changed returns the datapath ids whose flows may differ between old
// and x: hosts whose ports with groups, those groups' rules or the
// members of the groups the rules name changed (all of them when old is
// nil).
func (x *Index) Changed(old *Index) []uint64 {
	var out []uint64
	for dpid, h := range x.hosts {
		if old == nil {
			out = append(out, dpid)
		} else if o, ok := old.hosts[dpid]; !ok || o.sum != h.sum {
			out = append(out, dpid)
		}
	}
	if old != nil {
		for dpid := range old.hosts {
			if _, ok := x.hosts[dpid]; !ok {
				out = append(out, dpid)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Ports returns how many ports with security groups are bound on the
// switch with datapath id dpid.
func (x *Index) Ports(dpid uint64) int {
	if h, ok := x.hosts[dpid]; ok {
		return len(h.ports)
	}
	return 0
}
