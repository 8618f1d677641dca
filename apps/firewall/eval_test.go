package firewall

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// pkt is a packet as the rules tables see it: field values by flow.Field.
type pkt map[flow.Field]uint64

func matches(m flow.Match, p pkt) bool {
	for _, f := range m {
		mask := ^uint64(0)
		if f.Masked {
			mask = f.Mask
		}
		if p[f.Field]&mask != f.Value {
			return false
		}
	}
	return true
}

// lookup finds the flow a packet meets in a table the way OVS's
// classifier does with conjunctive matches: the highest-priority
// ordinary flow, unless at a higher priority the packet matches a flow
// of every clause of a conjunction whose conj_id flow it matches.
func lookup(flows []*flow.Flow, table uint8, p pkt) *flow.Flow {
	var hard *flow.Flow
	type clauseSet map[int]bool
	soft := map[uint16]map[uint32]clauseSet{} // priority -> conjunction id -> clauses matched
	nClauses := map[uint32]int{}
	for _, f := range flows {
		if f.Table != table || !matches(f.Match, p) {
			continue
		}
		if _, ok := f.Match.Get(flow.ConjID); ok {
			continue
		}
		if len(f.Apply) > 0 {
			if _, _, _, ok := flow.ConjunctionOf(f.Apply[0]); ok {
				for _, a := range f.Apply {
					id, k, n, _ := flow.ConjunctionOf(a)
					if soft[f.Priority] == nil {
						soft[f.Priority] = map[uint32]clauseSet{}
					}
					if soft[f.Priority][id] == nil {
						soft[f.Priority][id] = clauseSet{}
					}
					soft[f.Priority][id][k] = true
					nClauses[id] = n
				}
				continue
			}
		}
		if hard == nil || f.Priority > hard.Priority {
			hard = f
		}
	}
	prios := make([]uint16, 0, len(soft))
	for pr := range soft {
		prios = append(prios, pr)
	}
	slices.Sort(prios)
	slices.Reverse(prios)
	for _, pr := range prios {
		if hard != nil && hard.Priority >= pr {
			break
		}
		for id, cl := range soft[pr] {
			if len(cl) != nClauses[id] {
				continue
			}
			q := pkt{flow.ConjID: uint64(id)}
			for k, v := range p {
				q[k] = v
			}
			for _, f := range flows {
				if c, ok := f.Match.Get(flow.ConjID); ok && f.Table == table && c.Value == uint64(id) && matches(f.Match, q) {
					return f
				}
			}
		}
	}
	return hard
}

// verdict of a flow of a rules table: "drop", "pass" or "commit".
func verdict(f *flow.Flow) string {
	if f == nil || f.GotoTable == flow.NoGoto {
		return "drop"
	}
	if len(f.Apply) > 0 {
		return "commit"
	}
	return "pass"
}

// reference decides a new connection's first packet from the model
// directly: the semantics the flows implement.
func reference(m *model.Snapshot, port *model.Port, ingress bool, remote uint32, proto int, dport uint16) string {
	members := func(gid string) []uint32 {
		var out []uint32
		for _, p := range m.Ports.All() {
			if slices.Contains(p.SecurityGroups, gid) {
				for _, a := range p.IPs {
					out = append(out, u32(netip.MustParseAddr(a)))
				}
			}
		}
		return out
	}
	if proto == 17 && ((!ingress && dport == 67) || (ingress && dport == 68)) {
		return "pass" // DHCP (the packets carry the matching source port)
	}
	verdict, open := "drop", !ingress
	for _, gid := range port.SecurityGroups {
		g, _ := m.SecurityGroups.Get(gid)
		for _, r := range g.Rules {
			if r.Direction == "egress" {
				open = false
			}
			if (r.Direction == "ingress") != ingress {
				continue
			}
			if n := r.Protocol.Number(); n >= 0 && n != proto {
				continue
			}
			if r.PortMin != 0 && (int(dport) < r.PortMin || int(dport) > r.PortMax) {
				continue
			}
			if r.RemoteCIDR != "" {
				pf := netip.MustParsePrefix(r.RemoteCIDR)
				if !pf.Contains(addr(remote)) {
					continue
				}
			}
			if r.RemoteGroup != "" && !slices.Contains(members(r.RemoteGroup), remote) {
				continue
			}
			if !*r.Stateful {
				return "pass"
			}
			verdict = "commit"
		}
	}
	if verdict == "drop" && open {
		return "commit"
	}
	return verdict
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestRandomRulesAgainstReference compiles random groups, with and
// without conjunctions, and checks the verdict of the flows on random
// first packets against the rules read directly.
func TestRandomRulesAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	seen := map[string]int{}
	defer func() {
		t.Logf("verdicts checked: %v", seen)
		if seen["drop"] < 100 || seen["pass"] < 100 || seen["commit"] < 100 {
			t.Errorf("too few of some verdict: %v", seen)
		}
	}()
	for round := 0; round < 20; round++ {
		l := newLab(t)
		l.Create(
			&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
			&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
			&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		)
		groups := []string{"g0", "g1", "g2"}
		for _, g := range groups {
			l.Create(&model.SecurityGroup{Meta: meta(g)})
		}
		protos := []model.Protocol{"tcp", "udp", "icmp", "any", "47"}
		for _, g := range groups {
			var rules []model.Rule
			for i := r.IntN(5); i > 0; i-- {
				ru := model.Rule{Direction: []string{"ingress", "egress"}[r.IntN(2)], Protocol: protos[r.IntN(len(protos))]}
				if (ru.Protocol == "tcp" || ru.Protocol == "udp") && r.IntN(3) > 0 {
					ru.PortMin = 1 + r.IntN(100)
					ru.PortMax = ru.PortMin + r.IntN(40)
				}
				switch r.IntN(3) {
				case 0:
					ru.RemoteCIDR = []string{"10.1.0.0/25", "10.1.0.128/26", "0.0.0.0/0", "10.1.0.7/32"}[r.IntN(4)]
				case 1:
					ru.RemoteGroup = groups[r.IntN(len(groups))]
				}
				if r.IntN(4) == 0 {
					ru.Stateful = no()
				}
				rules = append(rules, ru)
			}
			b, _ := json(rules)
			l.Patch(model.KindSecurityGroup, g, `{"rules":`+b+`}`)
		}
		for i := 0; i < 8; i++ {
			var sgs []string
			for _, g := range groups {
				if r.IntN(3) == 0 {
					sgs = append(sgs, g)
				}
			}
			name := fmt.Sprintf("p%d", i)
			l.Create(&model.Port{Meta: meta(name), Network: "blue", MAC: fmt.Sprintf("02:00:00:00:00:%02x", i+1),
				IPs: []string{fmt.Sprintf("10.1.0.%d", 2+i*20)}, SecurityGroups: sgs})
			l.Bind(name, "hv1", "tap-"+name, uint32(i+1))
		}
		x := NewIndex(l.View.Snapshot(), nil)
		conjFlows := x.Compile(l.DPID("hv1"), testTables, Options{})
		crossFlows := x.Compile(l.DPID("hv1"), testTables, Options{CrossProduct: true})
		m := l.Svc.Snapshot()
		for i := 0; i < 8; i++ {
			port, _ := m.Ports.ByName(fmt.Sprintf("p%d", i))
			if len(port.SecurityGroups) == 0 {
				continue
			}
			for n := 0; n < 300; n++ {
				ingress := r.IntN(2) == 0
				remote := uint32(0x0a010000) | uint32(r.IntN(256))
				if r.IntN(2) == 0 {
					remote = 0x0a010002 + uint32(20*r.IntN(8))
				}
				proto := []int{6, 17, 1, 47, 50}[r.IntN(5)]
				dport := uint16(1 + r.IntN(150))
				if proto == 17 && r.IntN(10) == 0 {
					dport = 67
					if ingress {
						dport = 68
					}
				}
				p := pkt{flow.EthType: 0x0800, flow.CTState: ctNew | ctTrk, flow.IPProto: uint64(proto)}
				table := testTables.EgressRules
				if ingress {
					table = testTables.IngressRules
					p[flow.Reg7], p[flow.IPv4Src] = uint64(i+1), uint64(remote)
				} else {
					p[flow.InPort], p[flow.IPv4Dst] = uint64(i+1), uint64(remote)
				}
				switch proto {
				case 6:
					p[flow.TCPDst] = uint64(dport)
				case 17:
					p[flow.UDPDst] = uint64(dport)
					if dport == 67 {
						p[flow.UDPSrc] = 68
					} else if dport == 68 {
						p[flow.UDPSrc] = 67
					}
				}
				want := reference(m, port, ingress, remote, proto, dport)
				if proto != 6 && proto != 17 {
					dport = 0
				}
				for _, c := range []struct {
					name  string
					flows []*flow.Flow
				}{{"conjunction", conjFlows}, {"cross product", crossFlows}} {
					if got := verdict(lookup(c.flows, table, p)); got != want {
						t.Fatalf("round %d, %s flows, port p%d (groups %v), ingress=%v remote %v proto %d port %d: %s, want %s\nflows:\n%s",
							round, c.name, i, port.SecurityGroups, ingress, addr(remote), proto, dport, got, want, flowsText(c.flows))
					}
				}
				// Replies and invalid packets, whatever the rules.
				p[flow.CTState] = ctEst | ctRpl | ctTrk
				if got := verdict(lookup(conjFlows, table, p)); got != "pass" {
					t.Fatalf("a reply: %s", got)
				}
				seen[want]++
			}
		}
	}
}

func flowsText(flows []*flow.Flow) string {
	s := ""
	for _, f := range flowStrings(flows) {
		s += f + "\n"
	}
	return s
}
