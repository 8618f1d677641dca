package firewall

import (
	encjson "encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view/viewtest"
)

var meta = viewtest.Meta

// lab is a model with a view of it (view/viewtest).
type lab struct {
	*viewtest.Lab
	t       testing.TB
	noZones bool // hosts allocate no zones
}

// newLab's hosts get their conntrack zones as loomd's host manager gives
// them: after every change of the view (kit.AssignZones).
func newLab(t testing.TB) *lab {
	l := &lab{Lab: viewtest.New(t), t: t}
	l.View.Watch(func() {
		if !l.noZones {
			kit.AssignZones(l.View)
		}
	})
	return l
}

// zone is a port's zone on host, as a string.
func (l *lab) zone(host, port string) string {
	l.t.Helper()
	s := l.View.Snapshot()
	p, _ := s.Model.Ports.ByName(port)
	z, ok := s.Zone(host, kit.PortZone(p.ID))
	if !ok {
		l.t.Fatalf("%s has no zone on %s", port, host)
	}
	return fmt.Sprint(z)
}

var testTables = Tables{Egress: 2, EgressRules: 3, AfterEgress: 4, Ingress: 10, IngressRules: 11, AfterIngress: 12}

func (l *lab) compile(host string) []string {
	return flowStrings(NewIndex(l.View.Snapshot(), nil).Compile(l.DPID(host), testTables, Options{}))
}

func flowStrings[F fmt.Stringer](flows []F) []string {
	out := make([]string, 0, len(flows))
	for _, f := range flows {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

func (l *lab) groupID(name string) string {
	g, ok := l.Svc.Snapshot().SecurityGroups.ByName(name)
	if !ok {
		l.t.Fatalf("no security group %s", name)
	}
	return g.ID
}

// conj is the conjunction id of a rule (its key's FNV-1a hash when no
// other rule collides with it).
func conj(r rule) uint32 {
	h := fnv.New32a()
	h.Write([]byte(r.key()))
	return h.Sum32()
}

func no() *bool { f := false; return &f }

func diff(t *testing.T, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if slices.Equal(got, want) {
		return
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected %s", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing    %s", w)
		}
	}
}

// newModel: hv1 and hv2; group web (tcp 80 from anywhere, tcp
// 8000-8003 from 10.9.0.0/16, icmp from its own members) and group
// locked (egress: tcp 443 anywhere, udp 53 to the subnet stateless;
// ingress icmp from web's members); w1 (web) on hv1, w2 (web) on hv2, l1
// (web and locked) on hv1, plain (no group) on hv1.
func newModel(t testing.TB) *lab { return newModelIn(newLab(t)) }

func newModelIn(l *lab) *lab {
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Host{Meta: meta("hv3"), OVSDB: "unix:/c", VTEPIP: "10.200.0.3"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		&model.SecurityGroup{Meta: meta("web"), Rules: []model.Rule{
			{Direction: "ingress", Protocol: "tcp", PortMin: 80},
			{Direction: "ingress", Protocol: "tcp", PortMin: 8000, PortMax: 8003, RemoteCIDR: "10.9.0.0/16"},
			{Direction: "ingress", Protocol: "icmp", RemoteGroup: "web"},
		}},
		&model.SecurityGroup{Meta: meta("locked"), Rules: []model.Rule{
			{Direction: "egress", Protocol: "tcp", PortMin: 443},
			{Direction: "egress", Protocol: "udp", PortMin: 53, RemoteCIDR: "10.1.0.0/24", Stateful: no()},
			{Direction: "ingress", Protocol: "icmp", RemoteGroup: "web"},
		}},
		&model.Port{Meta: meta("w1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}, SecurityGroups: []string{"web"}},
		&model.Port{Meta: meta("w2"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12"}, SecurityGroups: []string{"web"}},
		&model.Port{Meta: meta("l1"), Network: "blue", MAC: "02:00:00:00:01:03", IPs: []string{"10.1.0.13"}, SecurityGroups: []string{"web", "locked"}},
		&model.Port{Meta: meta("plain"), Network: "blue", MAC: "02:00:00:00:01:04", IPs: []string{"10.1.0.14"}},
	)
	l.Bind("w1", "hv1", "tap-w1", 5)
	l.Bind("w2", "hv2", "tap-w2", 6)
	l.Bind("l1", "hv1", "tap-l1", 7)
	l.Bind("plain", "hv1", "tap-plain", 8)
	return l
}

// TestCompile: the flows of a host with two firewalled ports and one
// without, in ovs-ofctl syntax (ct_state 0x21 is +new+trk, 0x2a
// +est+rpl+trk, 0x24 +rel+trk, 0x30 +inv+trk). IPv6 (dl_type 0x86dd)
// has no rules: replies, neighbour discovery, open egress, else dropped.
func TestCompile(t *testing.T) {
	l := newModel(t)
	web := l.groupID("web")
	icmpWeb := conj(rule{ingress: true, stateful: true, proto: 1, group: web})
	tcp80 := conj(rule{ingress: true, stateful: true, proto: 6, portMin: 80, portMax: 80})
	tcp8000 := conj(rule{ingress: true, stateful: true, proto: 6, portMin: 8000, portMax: 8003, cidr: 0x0a090000, cidrBits: 16})
	tcp443 := conj(rule{stateful: true, proto: 6, portMin: 443, portMax: 443})
	udp53 := conj(rule{proto: 17, portMin: 53, portMax: 53, cidr: 0x0a010000, cidrBits: 24})
	commit := "ct(commit,zone=NXM_NX_CT_ZONE[])"
	// w1 and l1, on hv1, have zones 1 and 2 (in the order of their ids).
	zw1, zl1 := l.zone("hv1", "w1"), l.zone("hv1", "l1")
	if zones := slices.Sorted(slices.Values([]string{zw1, zl1})); !slices.Equal(zones, []string{"1", "2"}) {
		t.Fatalf("hv1's zones %v, want 1 and 2", zones)
	}
	want := []string{
		// fw-egress: w1 (5) and l1 (7) into their zones; plain (8) and
		// everything else past the rules.
		"table=2, priority=100,ip,in_port=5 actions=ct(table=3,zone=" + zw1 + ")",
		"table=2, priority=100,ip,in_port=7 actions=ct(table=3,zone=" + zl1 + ")",
		"table=2, priority=100,ipv6,in_port=5 actions=ct(table=3,zone=" + zw1 + ")",
		"table=2, priority=100,ipv6,in_port=7 actions=ct(table=3,zone=" + zl1 + ")",
		"table=2, priority=1 actions=goto_table:4",
		// fw-egress-rules: stateless udp 53 to the subnet for l1, state,
		// DHCP, tcp 443 anywhere for l1, w1's open egress, the rest dropped.
		fmt.Sprintf("table=3, priority=400,ip,in_port=7 actions=conjunction(%d,1/3)", udp53),
		fmt.Sprintf("table=3, priority=400,ip,nw_dst=10.1.0.0/24 actions=conjunction(%d,2/3)", udp53),
		fmt.Sprintf("table=3, priority=400,udp,tp_dst=53 actions=conjunction(%d,3/3)", udp53),
		fmt.Sprintf("table=3, priority=400,conj_id=%d,ip actions=goto_table:4", udp53),
		"table=3, priority=300,ct_state=+inv+trk,ip actions=drop",
		"table=3, priority=290,ct_state=+est+rpl+trk,ip actions=goto_table:4",
		"table=3, priority=290,ct_state=+rel+trk,ip actions=goto_table:4",
		// IPv6: connection states and neighbour discovery; no rules.
		"table=3, priority=300,ct_state=+inv+trk,ipv6 actions=drop",
		"table=3, priority=290,ct_state=+est+rpl+trk,ipv6 actions=goto_table:4",
		"table=3, priority=290,ct_state=+rel+trk,ipv6 actions=goto_table:4",
		"table=3, priority=200,icmp6,icmp_type=133 actions=goto_table:4",
		"table=3, priority=200,icmp6,icmp_type=134 actions=goto_table:4",
		"table=3, priority=200,icmp6,icmp_type=135 actions=goto_table:4",
		"table=3, priority=200,icmp6,icmp_type=136 actions=goto_table:4",
		"table=3, priority=200,udp,tp_src=68,tp_dst=67 actions=goto_table:4",
		fmt.Sprintf("table=3, priority=100,ip,in_port=7 actions=conjunction(%d,1/2)", tcp443),
		fmt.Sprintf("table=3, priority=100,tcp,tp_dst=443 actions=conjunction(%d,2/2)", tcp443),
		fmt.Sprintf("table=3, priority=100,conj_id=%d,ip actions=%s,goto_table:4", tcp443, commit),
		"table=3, priority=10,ip,in_port=5 actions=" + commit + ",goto_table:4",
		"table=3, priority=10,ipv6,in_port=5 actions=" + commit + ",goto_table:4",
		"table=3, priority=5 actions=drop",
		// fw-ingress.
		"table=10, priority=100,ip,reg7=0x5 actions=ct(table=11,zone=" + zw1 + ")",
		"table=10, priority=100,ip,reg7=0x7 actions=ct(table=11,zone=" + zl1 + ")",
		"table=10, priority=100,ipv6,reg7=0x5 actions=ct(table=11,zone=" + zw1 + ")",
		"table=10, priority=100,ipv6,reg7=0x7 actions=ct(table=11,zone=" + zl1 + ")",
		"table=10, priority=1 actions=goto_table:12",
		// fw-ingress-rules: icmp from web's three members (one rule of
		// both groups: one conjunction), tcp 80, tcp 8000-8003 (one
		// masked block) from 10.9/16.
		"table=11, priority=300,ct_state=+inv+trk,ip actions=drop",
		"table=11, priority=290,ct_state=+est+rpl+trk,ip actions=goto_table:12",
		"table=11, priority=290,ct_state=+rel+trk,ip actions=goto_table:12",
		"table=11, priority=300,ct_state=+inv+trk,ipv6 actions=drop",
		"table=11, priority=290,ct_state=+est+rpl+trk,ipv6 actions=goto_table:12",
		"table=11, priority=290,ct_state=+rel+trk,ipv6 actions=goto_table:12",
		"table=11, priority=200,icmp6,icmp_type=133 actions=goto_table:12",
		"table=11, priority=200,icmp6,icmp_type=134 actions=goto_table:12",
		"table=11, priority=200,icmp6,icmp_type=135 actions=goto_table:12",
		"table=11, priority=200,icmp6,icmp_type=136 actions=goto_table:12",
		"table=11, priority=200,udp,tp_src=67,tp_dst=68 actions=goto_table:12",
		"table=11, priority=100,ip,reg7=0x5 actions=" + conjs(icmpWeb, 1, 3, tcp80, 1, 2, tcp8000, 1, 3),
		"table=11, priority=100,ip,reg7=0x7 actions=" + conjs(icmpWeb, 1, 3, tcp80, 1, 2, tcp8000, 1, 3),
		fmt.Sprintf("table=11, priority=100,ip,nw_src=10.1.0.11 actions=conjunction(%d,2/3)", icmpWeb),
		fmt.Sprintf("table=11, priority=100,ip,nw_src=10.1.0.12 actions=conjunction(%d,2/3)", icmpWeb),
		fmt.Sprintf("table=11, priority=100,ip,nw_src=10.1.0.13 actions=conjunction(%d,2/3)", icmpWeb),
		fmt.Sprintf("table=11, priority=100,icmp actions=conjunction(%d,3/3)", icmpWeb),
		fmt.Sprintf("table=11, priority=100,conj_id=%d,ip actions=%s,goto_table:12", icmpWeb, commit),
		fmt.Sprintf("table=11, priority=100,tcp,tp_dst=80 actions=conjunction(%d,2/2)", tcp80),
		fmt.Sprintf("table=11, priority=100,conj_id=%d,ip actions=%s,goto_table:12", tcp80, commit),
		fmt.Sprintf("table=11, priority=100,ip,nw_src=10.9.0.0/16 actions=conjunction(%d,2/3)", tcp8000),
		fmt.Sprintf("table=11, priority=100,tcp,tp_dst=0x1f40/0xfffc actions=conjunction(%d,3/3)", tcp8000),
		fmt.Sprintf("table=11, priority=100,conj_id=%d,ip actions=%s,goto_table:12", tcp8000, commit),
		"table=11, priority=5 actions=drop",
	}
	diff(t, l.compile("hv1"), want)
	if got := l.compile("hv3"); len(got) != 0 {
		t.Errorf("a host without firewalled ports has flows: %q", got)
	}
}

func json(v any) (string, error) {
	b, err := encjson.Marshal(v)
	return string(b), err
}

// TestChanged: only the hosts whose flows a change may touch are woken.
func TestChanged(t *testing.T) {
	l := newModel(t)
	l.Create(&model.SecurityGroup{Meta: meta("other"), Rules: []model.Rule{{Direction: "ingress", Protocol: "tcp", PortMin: 22}}})
	hv1, hv2, hv3 := l.DPID("hv1"), l.DPID("hv2"), l.DPID("hv3")
	reused := 0
	step := func(what string, change func(), want ...uint64) {
		t.Helper()
		old := NewIndex(l.View.Snapshot(), nil)
		change()
		slices.Sort(want)
		derived, fresh := NewIndex(l.View.Snapshot(), old), NewIndex(l.View.Snapshot(), nil)
		if got := derived.Changed(old); !slices.Equal(got, want) {
			t.Errorf("%s: changed %x, want %x", what, got, want)
		}
		if got := fresh.Changed(old); !slices.Equal(got, want) {
			t.Errorf("%s, index rebuilt: changed %x, want %x", what, got, want)
		}
		for _, h := range []string{"hv1", "hv2", "hv3"} {
			if d, f := flowStrings(derived.Compile(l.DPID(h), testTables, Options{})), flowStrings(fresh.Compile(l.DPID(h), testTables, Options{})); !slices.Equal(d, f) {
				t.Errorf("%s: %s's flows from the derived index differ from a rebuilt one's", what, h)
			}
		}
		if derived.hosts[hv1] == old.hosts[hv1] {
			reused++
		}
	}
	defer func() {
		if reused != 2 {
			t.Errorf("the index was kept %d times, want 2 (the changes that concern no firewalled port)", reused)
		}
	}()
	if got := NewIndex(l.View.Snapshot(), nil).Changed(nil); !slices.Equal(got, sorted(hv1, hv2)) {
		t.Errorf("from nothing: %x", got)
	}
	step("a rule of locked (only l1 on hv1 has it)", func() {
		l.Patch(model.KindSecurityGroup, "locked", `{"rules":[{"direction":"egress","protocol":"tcp","port_min":8443}]}`)
	}, hv1)
	step("a port without groups", func() {
		l.Create(&model.Port{Meta: meta("p3"), Network: "blue", MAC: "02:00:00:00:01:33", IPs: []string{"10.1.0.33"}})
		l.Bind("p3", "hv3", "tap-p3", 3)
	})
	step("a member of other, which no rule names", func() {
		l.Patch(model.KindPort, "p3", `{"security_groups":["other"]}`)
	}, hv3)
	step("a new member of web: its address is in web's icmp rule on hv1 and hv2", func() {
		l.Patch(model.KindPort, "p3", `{"security_groups":["other","web"]}`)
	}, hv1, hv2, hv3)
	step("an unrelated group's rules", func() {
		l.Patch(model.KindSecurityGroup, "other", `{"rules":[]}`)
	}, hv3)
	step("a binding moves", func() {
		l.Bind("w2", "hv3", "tap-w2", 9)
	}, hv2, hv3)
	step("a router, a network: nothing", func() {
		l.Create(&model.Network{Meta: meta("red"), Type: "vxlan", VNI: 5002})
	})
}

func sorted(v ...uint64) []uint64 { slices.Sort(v); return v }

// TestRuleChangeTouchesOnlyItsFlows: adding a rule adds its flows and a
// conjunction action to the flows of its group's ports; every other flow
// stays as it was (a connection another rule allows is not disturbed).
func TestRuleChangeTouchesOnlyItsFlows(t *testing.T) {
	l := newModel(t)
	before := l.compile("hv1")
	l.Patch(model.KindSecurityGroup, "web", `{"rules":[
		{"direction":"ingress","protocol":"tcp","port_min":80},
		{"direction":"ingress","protocol":"tcp","port_min":8000,"port_max":8003,"remote_cidr":"10.9.0.0/16"},
		{"direction":"ingress","protocol":"icmp","remote_group":"web"},
		{"direction":"ingress","protocol":"udp","port_min":5000,"port_max":5001,"remote_group":"web"}]}`)
	after := l.compile("hv1")
	var added, removed []string
	for _, f := range after {
		if !slices.Contains(before, f) {
			added = append(added, f)
		}
	}
	for _, f := range before {
		if !slices.Contains(after, f) {
			removed = append(removed, f)
		}
	}
	udp := conj(rule{ingress: true, stateful: true, proto: 17, portMin: 5000, portMax: 5001, group: l.groupID("web")})
	// The members' address flows and the ports' flows gain an action
	// (changed in place); the rule's own protocol flow and conj_id flow
	// are new.
	if len(removed) != 5 || len(added) != 7 {
		t.Errorf("changed %d flows into %d:\n-%s\n+%s", len(removed), len(added), strings.Join(removed, "\n-"), strings.Join(added, "\n+"))
	}
	for _, want := range []string{
		fmt.Sprintf("table=11, priority=100,udp,tp_dst=0x1388/0xfffe actions=conjunction(%d,3/3)", udp),
		"table=11, priority=100,ip,nw_src=10.1.0.12 actions=" +
			conjs(conj(rule{ingress: true, stateful: true, proto: 1, group: l.groupID("web")}), 2, 3, udp, 2, 3),
	} {
		if !slices.Contains(added, want) {
			t.Errorf("missing %s", want)
		}
	}
}

// conjs renders conjunction actions (id, k, n triples) in the order the
// compiler writes them: by id.
func conjs(v ...uint32) string {
	var acts []string
	type c struct{ id, k, n uint32 }
	var cs []c
	for i := 0; i+2 < len(v); i += 3 {
		cs = append(cs, c{v[i], v[i+1], v[i+2]})
	}
	slices.SortFunc(cs, func(a, b c) int { return int(int64(a.id) - int64(b.id)) })
	for _, x := range cs {
		acts = append(acts, fmt.Sprintf("conjunction(%d,%d/%d)", x.id, x.k, x.n))
	}
	return strings.Join(acts, ",")
}

// TestNoZoneNoConntrack: a firewalled port whose zone its host has not
// allocated yet has its IP dropped both ways, never looked up in a zone
// it would share.
func TestNoZoneNoConntrack(t *testing.T) {
	l := newLab(t)
	l.noZones = true
	newModelIn(l)
	got := l.compile("hv1")
	for _, f := range got {
		if strings.Contains(f, "ct(table") {
			t.Errorf("a conntrack lookup without a zone: %s", f)
		}
	}
	for _, want := range []string{
		"table=2, priority=100,ip,in_port=5 actions=drop",
		"table=2, priority=100,ipv6,in_port=7 actions=drop",
		"table=10, priority=100,ip,reg7=0x5 actions=drop",
		"table=10, priority=100,ipv6,reg7=0x7 actions=drop",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s", want)
		}
	}
}
