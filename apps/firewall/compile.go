package firewall

import (
	"cmp"
	"encoding/hex"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
)

// Tables are the table ids the compiled flows use: the firewall's four,
// and where packets go on after each rules table (flow.NoGoto: nowhere,
// when no realized table follows).
type Tables struct {
	Egress, EgressRules, Ingress, IngressRules uint8
	AfterEgress, AfterIngress                  int16
}

// next makes f continue in table after (flow.NoGoto: f ends the pipeline).
func next(f *flow.Flow, after int16) *flow.Flow {
	f.GotoTable = after
	return f
}

// Priorities in fw-egress and fw-ingress.
const (
	prioPort = 100 // a port with security groups: its IPv4 and IPv6 go through its conntrack zone
	prioSkip = 1   // any other packet skips the rules table
)

// Priorities in fw-egress-rules and fw-ingress-rules, which only see the
// IPv4 and IPv6 of ports with groups, just looked up in the port's zone.
const (
	prioStateless = 400 // stateless rules: whatever the connection state
	prioInvalid   = 300 // +inv: drop
	prioReply     = 290 // +est+rpl and +rel: replies and related packets of allowed connections
	prioDHCP      = 200 // DHCP: client requests out, server replies in
	prioND        = 200 // IPv6 neighbour discovery (ICMPv6 133-136)
	prioRule      = 100 // stateful rules, for new connections and the originator's later packets
	prioOpen      = 10  // egress of a port with no egress rule: allowed
	prioDeny      = 5   // everything else: dropped
)

// ndTypes are the ICMPv6 types of neighbour discovery: router
// solicitation and advertisement, neighbour solicitation and
// advertisement.
var ndTypes = []uint64{133, 134, 135, 136}

// Conntrack states (ct_state bits).
const (
	ctNew = 0x01
	ctEst = 0x02
	ctRel = 0x04
	ctRpl = 0x08
	ctInv = 0x10
	ctTrk = 0x20
)

// Options of the compiler.
type Options struct {
	// CrossProduct compiles rules with several dimensions (ports,
	// remote addresses, protocol and ports) into one flow per
	// combination instead of a conjunctive match: what the flows would
	// cost without conjunction, for comparison.
	CrossProduct bool
}

// Compile returns the firewall's flows for the switch with datapath id
// dpid: nothing for a host without ports with security groups.
func (x *Index) Compile(dpid uint64, t Tables, o Options) []*flow.Flow {
	h, ok := x.hosts[dpid]
	if !ok || len(h.ports) == 0 {
		return nil
	}
	b := &builder{flows: map[flow.Key]*flow.Flow{}, clauses: map[*flow.Flow]bool{}}
	ip := flow.Match{}.EthType(packet.EtherTypeIPv4)
	ip6 := flow.Match{}.EthType(packet.EtherTypeIPv6)
	skip := func(table uint8, after int16) {
		b.add(next(flow.New(table, prioSkip, nil), after))
	}
	skip(t.Egress, t.AfterEgress)
	skip(t.Ingress, t.AfterIngress)
	for _, p := range h.ports {
		// A port's connections, both ways, live in its own zone, which
		// its host allocated to it (kit.PortZone): the replies of what
		// it opened come back through the zone they were committed in,
		// and no two ports of a host share connection state (one port's
		// egress commit cannot let a packet through another's ingress).
		// Until its zone is there, the port's IP is dropped.
		for _, m := range []flow.Match{ip, ip6} {
			egress := flow.New(t.Egress, prioPort, m.InPort(p.ofport))
			ingress := flow.New(t.Ingress, prioPort, m.Set(kit.RegOutPort, uint64(p.ofport)))
			if p.zone != 0 {
				egress.Act(flow.CT(flow.CTSpec{Zone: p.zone, Table: t.EgressRules}))
				ingress.Act(flow.CT(flow.CTSpec{Zone: p.zone, Table: t.IngressRules}))
			}
			b.add(egress)
			b.add(ingress)
		}
	}
	for _, d := range []struct {
		table   uint8
		after   int16
		ingress bool
	}{{t.EgressRules, t.AfterEgress, false}, {t.IngressRules, t.AfterIngress, true}} {
		for _, m := range []flow.Match{ip, ip6} {
			state := func(s uint64) flow.Match { return m.SetMasked(flow.CTState, s|ctTrk, s|ctTrk) }
			b.add(flow.New(d.table, prioInvalid, state(ctInv)))
			b.add(next(flow.New(d.table, prioReply, state(ctEst|ctRpl)), d.after))
			b.add(next(flow.New(d.table, prioReply, state(ctRel)), d.after))
		}
		// IPv6 neighbour discovery passes both ways, as ARP does.
		for _, typ := range ndTypes {
			b.add(next(flow.New(d.table, prioND, ip6.IPProto(packet.ProtoICMPv6).Set(flow.ICMPv6Type, typ)), d.after))
		}
		dhcp := ip.IPProto(packet.ProtoUDP).Set(flow.UDPSrc, packet.DHCPClientPort).Set(flow.UDPDst, packet.DHCPServerPort)
		if d.ingress {
			dhcp = ip.IPProto(packet.ProtoUDP).Set(flow.UDPSrc, packet.DHCPServerPort).Set(flow.UDPDst, packet.DHCPClientPort)
		}
		b.add(next(flow.New(d.table, prioDHCP, dhcp), d.after))
		b.add(flow.New(d.table, prioDeny, nil))
		x.compileRules(b, h, d.table, d.after, d.ingress, o)
	}
	return b.out
}

// commit is what an allowed packet of a stateful rule does: its
// connection is committed in the zone it was just looked up in (the
// port's; a no-op for a connection already committed), and it goes on.
func commit(f *flow.Flow, after int16) *flow.Flow {
	return next(f.Act(flow.CT(flow.CTSpec{Commit: true, Table: flow.NoRecirc, ZoneFromField: true, ZoneFrom: flow.CTZone})), after)
}

// sig is a rule's identity across groups: rules with the same sig in
// different groups are one conjunctive match whose ports are all of their
// groups' ports.
type sig struct {
	key   string
	r     rule
	ports []uint32
}

func (r *rule) key() string {
	k := make([]byte, 0, 64)
	k = strconv.AppendBool(k, r.ingress)
	k = append(k, '|')
	k = strconv.AppendBool(k, r.stateful)
	k = append(k, '|')
	k = strconv.AppendInt(k, int64(r.proto), 10)
	k = append(k, '|')
	k = strconv.AppendUint(k, uint64(r.portMin), 10)
	k = append(k, '-')
	k = strconv.AppendUint(k, uint64(r.portMax), 10)
	k = append(k, '|')
	if r.v6 {
		k = append(k, "v6:"...)
		k = hex.AppendEncode(k, r.cidr6[:])
	} else {
		k = strconv.AppendUint(k, uint64(r.cidr), 16)
	}
	k = append(k, '/')
	k = strconv.AppendInt(k, int64(r.cidrBits), 10)
	k = append(k, '|')
	return string(append(k, r.group...))
}

// anyRemote and anyProto tell a rule's open dimensions.
func (r *rule) anyRemote() bool { return r.group == "" && r.cidrBits == 0 }
func (r *rule) anyProto() bool  { return r.proto < 0 }

// compileRules compiles the rules of one direction of a host's ports.
//
// A rule is a conjunction of up to three dimensions: the local ports it
// applies to (in_port or reg7), the remote addresses (a prefix, or every
// address of the remote group's members) and the protocol with its
// destination ports (a masked match per aligned block of the port range).
// Each dimension costs one flow per value (conjunction(ID,K/N)) and each
// rule one conj_id flow; values shared by several rules (a port, a
// member's address) are one flow with one conjunction action per rule. So
// N member addresses, L local ports and M rules cost about L + N + 2M
// flows, not L×N×M.
//
// OVS leaves it open which conjunction wins when a packet completes
// several at one priority (two rules that both allow it): here that is
// harmless, as every conj_id flow of a priority has the same actions. At
// equal priority an ordinary flow beats conjunctions, and a conjunction
// that does not complete falls through to lower priorities (the
// default-deny flow), as TestRandomRulesAgainstReference checks against
// an emulation of OVS's classifier.
func (x *Index) compileRules(b *builder, h *host, table uint8, after int16, ingress bool, o Options) {
	c := newRuleCompiler(x, b, table, after, ingress, o)
	sigs, open := c.gather(h)
	c.openPorts(open)
	list, ids := orderRules(sigs)
	for _, s := range list {
		c.rule(s, ids[s.key], open)
	}
}

// ruleCompiler compiles the rules of one direction of one host's ports
// (compileRules): its steps share the direction's fields and the clause
// flows built so far.
type ruleCompiler struct {
	x                      *Index
	b                      *builder
	table                  uint8
	after                  int16
	ingress                bool
	o                      Options
	portField, remoteField flow.Field // the local port's (in_port or reg7) and the remote address's
	ip, ip6                flow.Match
	cache                  map[string][]*flow.Flow // clause flows, shared by the rules that use them
}

func newRuleCompiler(x *Index, b *builder, table uint8, after int16, ingress bool, o Options) *ruleCompiler {
	c := &ruleCompiler{x: x, b: b, table: table, after: after, ingress: ingress, o: o,
		portField: flow.InPort, remoteField: flow.IPv4Dst, cache: map[string][]*flow.Flow{},
		ip: flow.Match{}.EthType(packet.EtherTypeIPv4), ip6: flow.Match{}.EthType(packet.EtherTypeIPv6)}
	if ingress {
		c.portField, c.remoteField = kit.RegOutPort, flow.IPv4Src
	}
	return c
}

func (c *ruleCompiler) family(r *rule) flow.Match {
	if r.v6 {
		return c.ip6
	}
	return c.ip
}

// openSet[v6][stateful] are the ports some rule allows everything of a
// family in this direction (any protocol from anywhere): one flow each,
// and no conjunction clause for them.
type openSet [2][2]map[uint32]bool

// gather groups the direction's rules of the host's ports by signature
// (rules equal but for their group are one, with all their ports), sets
// apart the ports open to a whole family, and opens the ports no group
// restricts in this direction (egress without egress rules).
func (c *ruleCompiler) gather(h *host) (map[string]*sig, openSet) {
	sigs := map[string]*sig{}
	open := openSet{{{}, {}}, {{}, {}}}
	for _, p := range h.ports {
		deny := c.ingress
		for _, g := range p.groups {
			deny = deny || g.egress
			for i := range g.rules {
				r := &g.rules[i]
				if r.ingress != c.ingress {
					continue
				}
				if r.anyRemote() && r.anyProto() {
					open[b2i(r.v6)][b2i(r.stateful)][p.ofport] = true
					continue
				}
				k := r.key()
				s := sigs[k]
				if s == nil {
					s = &sig{key: k, r: *r}
					sigs[k] = s
				}
				if len(s.ports) == 0 || s.ports[len(s.ports)-1] != p.ofport {
					s.ports = append(s.ports, p.ofport)
				}
			}
		}
		if !deny {
			c.b.add(commit(flow.New(c.table, prioOpen, c.ip.InPort(p.ofport)), c.after))
			c.b.add(commit(flow.New(c.table, prioOpen, c.ip6.InPort(p.ofport)), c.after))
		}
	}
	return sigs, open
}

// openPorts states the flows of the ports open to a whole family.
func (c *ruleCompiler) openPorts(open openSet) {
	for v6, byState := range open {
		fam := []flow.Match{c.ip, c.ip6}[v6]
		for stateful, ports := range byState {
			for _, p := range sortedKeys(ports) {
				f := flow.New(c.table, prio(stateful == 1), fam.Set(c.portField, uint64(p)))
				if stateful == 1 {
					c.b.add(commit(f, c.after))
				} else {
					c.b.add(next(f, c.after))
				}
			}
		}
	}
}

// orderRules puts the signatures in the order of their conjunction ids
// (so a shared clause flow gets its conjunction actions sorted) and
// returns the ids.
func orderRules(sigs map[string]*sig) ([]*sig, map[string]uint32) {
	list := make([]*sig, 0, len(sigs))
	for _, s := range sigs {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b *sig) int { return cmp.Compare(a.key, b.key) })
	ids := conjIDs(list)
	slices.SortFunc(list, func(a, b *sig) int { return cmp.Compare(ids[a.key], ids[b.key]) })
	return list, ids
}

// clauses returns the clause flows of a dimension value, built once and
// shared by the rules that use it (each adds its conjunction action).
func (c *ruleCompiler) clauses(id string, pr uint16, frags func() []flow.Match) []*flow.Flow {
	k := strconv.Itoa(int(pr)) + "|" + id
	fs, ok := c.cache[k]
	if !ok {
		for _, m := range frags() {
			fs = append(fs, c.b.clause(c.table, pr, m))
		}
		c.cache[k] = fs
	}
	return fs
}

// dimension is one of a rule's dimensions beyond its ports: an identity
// (shared by the rules with the same values) and its match fragments.
type dimension struct {
	id    string
	frags func() []flow.Match
}

// dimensions returns a rule's remote and protocol dimensions; false when
// the rule can match nothing (a remote group without addresses).
func (c *ruleCompiler) dimensions(r *rule) ([]dimension, bool) {
	ip, ingress := c.family(r), c.ingress
	fam := "4|"
	if r.v6 {
		fam = "6|"
	}
	var dims []dimension
	if !r.anyRemote() {
		if r.group != "" {
			g := c.x.groups[r.group]
			if g == nil || (!r.v6 && len(g.members) == 0) || (r.v6 && len(g.members6) == 0) {
				return nil, false
			}
			dims = append(dims, dimension{"group|" + fam + g.id, func() []flow.Match {
				if r.v6 {
					out := make([]flow.Match, len(g.members6))
					for i, a := range g.members6 {
						out[i] = ip.IPv6Prefix(!ingress, netip.PrefixFrom(netip.AddrFrom16(a), 128))
					}
					return out
				}
				out := make([]flow.Match, len(g.members))
				for i, a := range g.members {
					out[i] = ip.Set(c.remoteField, uint64(a))
				}
				return out
			}})
		} else if r.v6 {
			p := netip.PrefixFrom(netip.AddrFrom16(r.cidr6), r.cidrBits)
			dims = append(dims, dimension{"cidr|" + p.String(),
				func() []flow.Match { return []flow.Match{ip.IPv6Prefix(!ingress, p)} }})
		} else {
			mask := uint64(^uint32(0) << (32 - r.cidrBits))
			dims = append(dims, dimension{"cidr|" + strconv.FormatUint(uint64(r.cidr), 16) + "/" + strconv.Itoa(r.cidrBits),
				func() []flow.Match { return []flow.Match{ip.SetMasked(c.remoteField, uint64(r.cidr), mask)} }})
		}
	}
	if !r.anyProto() {
		dims = append(dims, dimension{"l4|" + fam + strconv.Itoa(r.proto) + "|" + strconv.Itoa(int(r.portMin)) + "-" + strconv.Itoa(int(r.portMax)),
			func() []flow.Match {
				base := ip.IPProto(uint8(r.proto))
				if r.portMin == 0 {
					return []flow.Match{base}
				}
				dst := flow.TCPDst
				if r.proto == 17 {
					dst = flow.UDPDst
				}
				var out []flow.Match
				for _, blk := range flow.PortRange(r.portMin, r.portMax) {
					out = append(out, base.SetMasked(dst, blk[0], blk[1]))
				}
				return out
			}})
	}
	return dims, true
}

// rule states one rule signature: a conjunctive match (a clause flow per
// value of each dimension and a conj_id flow), or with
// Options.CrossProduct the plain cross product of its dimensions.
func (c *ruleCompiler) rule(s *sig, id uint32, open openSet) {
	r := &s.r
	ip := c.family(r)
	fam := "4|"
	if r.v6 {
		fam = "6|"
	}
	ports := slices.DeleteFunc(slices.Clone(s.ports), func(p uint32) bool { return open[b2i(r.v6)][b2i(r.stateful)][p] })
	if len(ports) == 0 {
		return
	}
	dims, ok := c.dimensions(r)
	if !ok {
		return // a remote group without addresses: nothing matches
	}
	pr := prio(r.stateful)
	allow := func(f *flow.Flow) *flow.Flow {
		if r.stateful {
			return commit(f, c.after)
		}
		return next(f, c.after)
	}
	portFrag := func(p uint32) func() []flow.Match {
		return func() []flow.Match { return []flow.Match{ip.Set(c.portField, uint64(p))} }
	}
	if c.o.CrossProduct {
		var all [][]flow.Match
		var pf []flow.Match
		for _, p := range ports {
			pf = append(pf, portFrag(p)()...)
		}
		all = append(all, pf)
		for _, d := range dims {
			all = append(all, d.frags())
		}
		for _, m := range crossProduct(all) {
			c.b.add(allow(flow.New(c.table, pr, m)))
		}
		return
	}
	n := 1 + len(dims)
	a := flow.Conjunction(id, 1, n)
	for _, p := range ports {
		for _, f := range c.clauses("port|"+fam+strconv.Itoa(int(p)), pr, portFrag(p)) {
			f.Apply = append(f.Apply, a)
		}
	}
	for k, d := range dims {
		a := flow.Conjunction(id, k+2, n)
		for _, f := range c.clauses(d.id, pr, d.frags) {
			f.Apply = append(f.Apply, a)
		}
	}
	c.b.add(allow(flow.New(c.table, pr, ip.Set(flow.ConjID, uint64(id)))))
}

func prio(stateful bool) uint16 {
	if stateful {
		return prioRule
	}
	return prioStateless
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys(m map[uint32]bool) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// crossProduct combines one fragment of every dimension in every way.
func crossProduct(dims [][]flow.Match) []flow.Match {
	out := []flow.Match{nil}
	for _, dim := range dims {
		next := make([]flow.Match, 0, len(out)*len(dim))
		for _, m := range out {
			for _, f := range dim {
				c := m
				for _, mf := range f {
					c = c.With(mf)
				}
				next = append(next, c)
			}
		}
		out = next
	}
	return out
}

// conjIDs gives every rule sig a conjunction id derived from its key, so
// that a rule keeps its id (and its flows stay unchanged) while others
// come and go; a collision takes the next free id, in key order.
func conjIDs(list []*sig) map[string]uint32 {
	ids := make(map[string]uint32, len(list))
	used := make(map[uint32]bool, len(list))
	for _, s := range list {
		h := fnv.New32a()
		h.Write([]byte(s.key))
		id := h.Sum32()
		for id == 0 || used[id] {
			id++
		}
		used[id] = true
		ids[s.key] = id
	}
	return ids
}

// builder collects flows, merging the conjunction actions of clause flows
// with the same table, priority and match into one flow.
type builder struct {
	out     []*flow.Flow
	flows   map[flow.Key]*flow.Flow
	clauses map[*flow.Flow]bool // the conjunctive clause flows among flows
}

func (b *builder) add(f *flow.Flow) {
	k := f.Key()
	if _, dup := b.flows[k]; dup {
		return // the same flow from another rule
	}
	b.flows[k] = f
	b.out = append(b.out, f)
}

// clause returns the conjunctive clause flow with match m, new or
// already built for another rule.
func (b *builder) clause(table uint8, prio uint16, m flow.Match) *flow.Flow {
	f := flow.New(table, prio, m)
	if old, ok := b.flows[f.Key()]; ok {
		if b.clauses[old] {
			return old
		}
		// An ordinary flow with this match already allows what the
		// clause would: the clause is not needed (and could not share
		// the flow); it stays out of the output.
		return f
	}
	b.add(f)
	b.clauses[f] = true
	return f
}
