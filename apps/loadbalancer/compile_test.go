package loadbalancer

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
	"github.com/loom-sdn/loom/view/viewtest"
)

var meta = viewtest.Meta

var testTables = Tables{LB: 4, CT: 5, Affinity: 14, Learn: 15, Out: 6, AfterOut: 7, Reply: 12, AfterReply: 13}

func strs[F fmt.Stringer](v []F) []string {
	out := make([]string, 0, len(v))
	for _, f := range v {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

func intp(v int) *int { return &v }

// newLab's hosts get their conntrack zones as loomd's host manager gives
// them, after every change of the view: on hv1, blue's load-balancer
// zone is 1, its hairpin zone 2.
func newLab(t *testing.T) *viewtest.Lab {
	l := viewtest.New(t)
	l.View.Watch(func() { kit.AssignZones(l.View) })
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Host{Meta: meta("hv3"), OVSDB: "unix:/c", VTEPIP: "10.200.0.3"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		&model.Port{Meta: meta("b1"), Network: "blue", MAC: "02:00:00:00:01:0b", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("b2"), Network: "blue", MAC: "02:00:00:00:01:0c", IPs: []string{"10.1.0.12"}},
		&model.Port{Meta: meta("b3"), Network: "blue", MAC: "02:00:00:00:01:0d", IPs: []string{"10.1.0.13"}},
		&model.LoadBalancer{Meta: meta("web"), Network: "blue", VIP: "10.1.0.100", Protocol: "tcp", Port: 80,
			Backends: []model.Backend{{IP: "10.1.0.11", Port: 8080, Weight: intp(3)}, {IP: "10.1.0.12", Port: 8080}, {IP: "10.1.0.13", Port: 8080}}},
	)
	l.Bind("b1", "hv1", "tap-b1", 1)
	l.Bind("b2", "hv1", "tap-b2", 2)
	l.Bind("b3", "hv2", "tap-b3", 1)
	return l
}

func TestCompile(t *testing.T) {
	l := newLab(t)
	lb, _ := l.Svc.Snapshot().LoadBalancers.ByName("web")
	mac, gid := VIPMAC(lb.ID).String(), fmt.Sprint(groupOf(t, l, "hv1", lb.ID, lb.Network))
	flows, groups := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	got := strs(flows)
	const net = "metadata=0x1389/0x1ffffffff"
	want := []string{
		"table=12, priority=100,tcp,metadata=0x1389/0xffffffff,tp_src=8080 actions=ct(table=13,zone=1,nat)",
		"table=4, priority=100,tcp," + net + ",nw_dst=10.1.0.100,tp_dst=80 actions=set_field:0x1->reg3,ct(table=5,zone=1,nat)",
		"table=4, priority=105,tcp," + net + ",nw_src=10.1.0.11,nw_dst=10.1.0.11,tp_src=8080 actions=set_field:0x3->reg3,ct(table=5,zone=1,nat)",
		"table=4, priority=105,tcp," + net + ",nw_src=10.1.0.12,nw_dst=10.1.0.12,tp_src=8080 actions=set_field:0x3->reg3,ct(table=5,zone=1,nat)",
		"table=4, priority=110,tcp,reg3=0/0x2," + net + ",nw_src=10.1.0.11,nw_dst=10.1.0.100,tp_src=8080 actions=set_field:0x3->reg3,ct(table=4,zone=2,nat)",
		"table=4, priority=110,tcp,reg3=0/0x2," + net + ",nw_src=10.1.0.12,nw_dst=10.1.0.100,tp_src=8080 actions=set_field:0x3->reg3,ct(table=4,zone=2,nat)",
		"table=4, priority=200,arp," + net + ",arp_tpa=10.1.0.100,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + mac + "->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:" + mac + "->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.100->arp_spa,IN_PORT",
		"table=5, priority=100,ct_state=+new+trk,tcp," + net + ",nw_dst=10.1.0.100,tp_dst=80 actions=group:" + gid,
		"table=6, priority=100,ip,reg3=0x1/0x1," + net + ",nw_dst=10.1.0.11 actions=set_field:02:00:00:00:01:0b->eth_dst,goto_table:7",
		"table=6, priority=100,ip,reg3=0x1/0x1," + net + ",nw_dst=10.1.0.12 actions=set_field:02:00:00:00:01:0c->eth_dst,goto_table:7",
		"table=6, priority=100,ip,reg3=0x1/0x1," + net + ",nw_dst=10.1.0.13 actions=set_field:02:00:00:00:01:0d->eth_dst,goto_table:7",
		// Hairpin: on to overlay-forward and the port's firewall, with in_port cleared.
		"table=6, priority=120,ip,reg3=0x1/0x1," + net + ",in_port=1,nw_dst=10.1.0.11 actions=set_field:" + mac + "->eth_src,set_field:02:00:00:00:01:0b->eth_dst,load:0->NXM_OF_IN_PORT[],goto_table:7",
		"table=6, priority=120,ip,reg3=0x1/0x1," + net + ",in_port=2,nw_dst=10.1.0.12 actions=set_field:" + mac + "->eth_src,set_field:02:00:00:00:01:0c->eth_dst,load:0->NXM_OF_IN_PORT[],goto_table:7",
		"table=6, priority=130,tcp,reg3=0/0x4," + net + ",nw_src=10.1.0.11,nw_dst=10.1.0.11,tp_dst=8080 actions=set_field:0x5->reg3,ct(commit,table=6,zone=2,nat(src=10.1.0.100))",
		"table=6, priority=130,tcp,reg3=0/0x4," + net + ",nw_src=10.1.0.12,nw_dst=10.1.0.12,tp_dst=8080 actions=set_field:0x5->reg3,ct(commit,table=6,zone=2,nat(src=10.1.0.100))",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hv1 flows\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
	wantGroup := "group_id=" + gid + ",type=select," +
		"bucket=weight:3,actions=ct(commit,table=6,zone=1,nat(dst=10.1.0.11:8080))," +
		"bucket=actions=ct(commit,table=6,zone=1,nat(dst=10.1.0.12:8080))," +
		"bucket=actions=ct(commit,table=6,zone=1,nat(dst=10.1.0.13:8080))"
	if g := strs(groups); len(g) != 1 || g[0] != wantGroup {
		t.Errorf("groups\n %v\nwant\n %s", g, wantGroup)
	}
	// hv2 has b3 only: no hairpin flows for b1 and b2 there; hv3 no port.
	flows2, _ := Compile(l.View.Snapshot(), l.DPID("hv2"), testTables, nil)
	for _, f := range strs(flows2) {
		if strings.Contains(f, "in_port=1") && !strings.Contains(f, "10.1.0.13") {
			t.Errorf("hv2: %s", f)
		}
	}
	if f, g := Compile(l.View.Snapshot(), l.DPID("hv3"), testTables, nil); len(f)+len(g) != 0 {
		t.Errorf("hv3 has no port of blue: %v %v", f, g)
	}
	// A backend that is down leaves the group.
	_, groups = Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, func(_, ip string, _ int) bool { return ip != "10.1.0.12" })
	if g := groups[0].String(); strings.Contains(g, "10.1.0.12") {
		t.Errorf("down backend in the group: %s", g)
	}
}

func TestUDP(t *testing.T) {
	l := newLab(t)
	l.Patch(model.KindLoadBalancer, "web", `{"protocol":"udp","port":53}`)
	flows, _ := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	got := strings.Join(strs(flows), "\n")
	if !strings.Contains(got, "table=4, priority=100,udp,metadata=0x1389/0x1ffffffff,nw_dst=10.1.0.100,tp_dst=53 actions=set_field:0x1->reg3,ct(table=5,zone=1,nat)") {
		t.Errorf("no udp VIP flow in\n%s", got)
	}
	// New UDP connections: 64 slots by source port, not the group.
	if n := strings.Count(got, "tp_src=0x"); n != 64 || strings.Contains(got, "group:") {
		t.Errorf("%d udp slot flows in\n%s", n, got)
	}
}

func TestProbeFlows(t *testing.T) {
	l := newLab(t)
	if f := probeFlows(l.View.Snapshot(), "hv1", testTables); len(f) != 0 {
		t.Errorf("probe flows without a health check: %v", f)
	}
	l.Patch(model.KindLoadBalancer, "web", `{"health_check":{"interval_ms":500,"fall":2}}`)
	got := strs(probeFlows(l.View.Snapshot(), "hv1", testTables))
	want := []string{
		"table=4, priority=150,tcp,metadata=0x1389/0x1ffffffff,nw_src=10.1.0.11,nw_dst=10.1.0.100,tp_src=8080,tp_dst=0xfc00/0xfc00 actions=CONTROLLER:65535",
		"table=4, priority=150,tcp,metadata=0x1389/0x1ffffffff,nw_src=10.1.0.12,nw_dst=10.1.0.100,tp_src=8080,tp_dst=0xfc00/0xfc00 actions=CONTROLLER:65535",
	}
	if !slices.Equal(got, want) {
		t.Errorf("probe flows on hv1\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
}

func TestAffinity(t *testing.T) {
	l := newLab(t)
	l.Patch(model.KindLoadBalancer, "web", `{"affinity_seconds":600}`)
	flows, groups := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, func(_, ip string, _ int) bool { return ip != "10.1.0.13" })
	got := strings.Join(strs(flows), "\n")
	// The client's pinned backend is looked up before conntrack.
	if !strings.Contains(got, "tp_dst=80 actions=set_field:0x1->reg3,resubmit(,14),ct(table=5,zone=1,nat)") {
		t.Errorf("no lookup of the pinned backend in\n%s", got)
	}
	// A pinned client's new connection goes to its backend while it is
	// up (b3 is down: no flow, the group picks another and re-pins).
	for _, want := range []string{
		"table=5, priority=110,ct_state=+new+trk,tcp,reg2=0x1f90,reg4=0xa01000b,metadata=0x1389/0x1ffffffff,nw_dst=10.1.0.100,tp_dst=80 actions=ct(commit,table=6,zone=1,nat(dst=10.1.0.11:8080))",
		"table=5, priority=110,ct_state=+new+trk,tcp,reg2=0x1f90,reg4=0xa01000c,metadata=0x1389/0x1ffffffff,nw_dst=10.1.0.100,tp_dst=80 actions=ct(commit,table=6,zone=1,nat(dst=10.1.0.12:8080))",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	if strings.Contains(got, "reg4=0xa01000d") {
		t.Errorf("a pinned flow for b3, which is down:\n%s", got)
	}
	// Each bucket hands its backend to lb-learn (table 15), which pins
	// the client, then translates.
	g := groups[0].String()
	for _, b := range []string{"10.1.0.11", "10.1.0.12"} {
		ip, _ := netip.ParseAddr(b)
		v := ip.As4()
		want := fmt.Sprintf("actions=set_field:0x%x->reg4,set_field:0x1f90->reg2,resubmit(,15),ct(commit,table=6,zone=1,nat(dst=%s:8080))",
			uint32(v[0])<<24|uint32(v[1])<<16|uint32(v[2])<<8|uint32(v[3]), b)
		if !strings.Contains(g, want) {
			t.Errorf("group\n %s\nwant a bucket with\n %s", g, want)
		}
	}
	lb, _ := l.Svc.Snapshot().LoadBalancers.ByName("web")
	cookie := PinCookie(lb)
	if cookie>>48 != 8 || cookie&(1<<48-1) == 0 {
		t.Errorf("pin cookie %#x: want the load balancer app's owner bits and a tag", cookie)
	}
	l.Patch(model.KindLoadBalancer, "web", `{"affinity_seconds":601}`)
	lb2, _ := l.Svc.Snapshot().LoadBalancers.ByName("web")
	if PinCookie(lb2) == cookie {
		t.Errorf("the pin cookie does not change with affinity_seconds")
	}
	want := "table=15, priority=100,tcp,metadata=0x1389/0x1ffffffff,nw_dst=10.1.0.100,tp_dst=80 actions=" +
		fmt.Sprintf("learn(table=14,idle_timeout=600,priority=100,cookie=%#x,OXM_OF_METADATA[0..31],eth_type=0x800,nw_proto=6,", cookie) +
		"NXM_OF_IP_SRC[],NXM_OF_IP_DST[],NXM_OF_TCP_DST[],load:NXM_NX_REG4[]->NXM_NX_REG4[],load:NXM_NX_REG2[0..15]->NXM_NX_REG2[0..15])"
	if !strings.Contains(got, want) {
		t.Errorf("missing the pinning flow\n %s\nin\n%s", want, got)
	}
}

// TestRouted: clients and backends in a network routed to the load
// balancer's (green, on router r1 with blue) are balanced too.
func TestRouted(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Network{Meta: meta("green"), Type: "vxlan", VNI: 5002},
		&model.Subnet{Meta: meta("green-a"), Network: "green", CIDR: "10.2.0.0/24", Gateway: "10.2.0.1"},
		&model.Port{Meta: meta("g1"), Network: "green", MAC: "02:00:00:00:02:0b", IPs: []string{"10.2.0.11"}},
		&model.Port{Meta: meta("g2"), Network: "green", MAC: "02:00:00:00:02:0c", IPs: []string{"10.2.0.12"}},
	)
	l.Bind("g1", "hv3", "tap-g1", 1)
	l.Bind("g2", "hv3", "tap-g2", 2)
	snap := l.Svc.Snapshot()
	blueA, _ := snap.Subnets.ByName("blue-a")
	greenA, _ := snap.Subnets.ByName("green-a")
	l.Patch(model.KindLoadBalancer, "web", `{"backends":[{"ip":"10.1.0.11","port":8080},{"ip":"10.2.0.12","port":8080}]}`)
	// Without a router green is not a client network: hv3 serves nothing.
	if f, g := Compile(l.View.Snapshot(), l.DPID("hv3"), testTables, nil); len(f)+len(g) != 0 {
		t.Fatalf("hv3 without a router: %v %v", strs(f), strs(g))
	}
	l.Create(&model.Router{Meta: meta("r1"), Subnets: []string{blueA.ID, greenA.ID}})
	lb, _ := l.Svc.Snapshot().LoadBalancers.ByName("web")
	blueGW, greenGW := flow.MACFrom(view.GatewayMAC(blueA.ID)).String(), flow.MACFrom(view.GatewayMAC(greenA.ID)).String()

	flows, groups := Compile(l.View.Snapshot(), l.DPID("hv3"), testTables, nil)
	got := strings.Join(strs(flows), "\n")
	const green = "metadata=0x138a/0x1ffffffff"
	for _, want := range []string{
		// green's clients, in green's zone (hv3's first)
		"table=4, priority=100,tcp," + green + ",nw_dst=10.1.0.100,tp_dst=80 actions=set_field:0x1->reg3,ct(table=5,zone=1,nat)",
		"table=5, priority=100,ct_state=+new+trk,tcp," + green + ",nw_dst=10.1.0.100,tp_dst=80 actions=group:" + fmt.Sprint(groupOf(t, l, "hv3", lb.ID, greenA.Network)),
		// to g2 in green directly, to b1 in blue through green's gateway
		"table=6, priority=100,ip,reg3=0x1/0x1," + green + ",nw_dst=10.2.0.12 actions=set_field:02:00:00:00:02:0c->eth_dst,goto_table:7",
		"table=6, priority=90,ip,reg3=0x1/0x1," + green + " actions=set_field:" + greenGW + "->eth_dst,goto_table:7",
		// replies un-NATed in green's zone
		"table=12, priority=100,tcp,metadata=0x138a/0xffffffff,tp_src=8080 actions=ct(table=13,zone=1,nat)",
		// g2 is its own client through the VIP: the VIP's packets come from green's gateway
		"table=6, priority=120,ip,reg3=0x1/0x1," + green + ",in_port=2,nw_dst=10.2.0.12 actions=set_field:" + greenGW + "->eth_src,set_field:02:00:00:00:02:0c->eth_dst,load:0->NXM_OF_IN_PORT[],goto_table:7",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hv3: missing\n %s\nin\n%s", want, got)
		}
	}
	if strings.Contains(got, "arp_tpa=10.1.0.100") {
		t.Errorf("hv3 answers ARP for the VIP in green (routed clients ARP for their gateway):\n%s", got)
	}
	if len(groups) != 1 || !strings.Contains(groups[0].String(), "nat(dst=10.1.0.11:8080)") || !strings.Contains(groups[0].String(), "nat(dst=10.2.0.12:8080)") {
		t.Errorf("hv3 groups %v, want one with both backends", strs(groups))
	}
	// On hv1 (blue only), a connection to g2 goes to blue's gateway.
	flows, _ = Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	want := "table=6, priority=90,ip,reg3=0x1/0x1,metadata=0x1389/0x1ffffffff actions=set_field:" + blueGW + "->eth_dst,goto_table:7"
	if got := strings.Join(strs(flows), "\n"); !strings.Contains(got, want) {
		t.Errorf("hv1: missing\n %s\nin\n%s", want, got)
	}
}

// TestZonesPerNetwork: two tenants whose VNIs differ by 16,384 (the
// same zone once, 0x8000|key&0x3fff), with the same subnet, VIP and
// client address on one host, get zones of their own; a network whose
// zones the host has not allocated gets no flows.
func TestZonesPerNetwork(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Network{Meta: meta("blue2"), Type: "vxlan", VNI: 5001 + 16384},
		&model.Subnet{Meta: meta("blue2-a"), Network: "blue2", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		&model.Port{Meta: meta("c2"), Network: "blue2", MAC: "02:00:00:00:02:0b", IPs: []string{"10.1.0.11"}},
		&model.LoadBalancer{Meta: meta("web2"), Network: "blue2", VIP: "10.1.0.100", Protocol: "tcp", Port: 80,
			Backends: []model.Backend{{IP: "10.1.0.11", Port: 8080}}},
	)
	l.Bind("c2", "hv1", "tap-c2", 3)
	flows, groups := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	zoneRE := regexp.MustCompile(`zone=(\d+)`)
	zones := map[string]map[string]bool{} // metadata -> zones
	for _, f := range append(strs(flows), strs(groups)...) {
		meta := regexp.MustCompile(`metadata=(0x[0-9a-f]+)`).FindStringSubmatch(f)
		for _, m := range zoneRE.FindAllStringSubmatch(f, -1) {
			if meta == nil {
				continue
			}
			if zones[meta[1]] == nil {
				zones[meta[1]] = map[string]bool{}
			}
			zones[meta[1]][m[1]] = true
		}
	}
	blue, blue2 := zones["0x1389"], zones[fmt.Sprintf("%#x", 5001+16384)]
	if len(blue) != 2 || len(blue2) != 2 {
		t.Fatalf("zones by network: %v", zones)
	}
	for z := range blue {
		if blue2[z] {
			t.Errorf("zone %s is both tenants'", z)
		}
	}
	// blue2's zones gone from hv1: none of its flows, blue's stay.
	s := l.View.Snapshot()
	n2, _ := s.Model.Networks.ByName("blue2")
	host, _ := s.HostByDatapath(l.DPID("hv1"))
	ix := buildIndex(s)
	zs := func(user string) (uint16, bool) {
		if user == kit.LBZone(n2.ID) {
			return 0, false
		}
		return s.Zone(host.Name, user)
	}
	flows, groups = compileHost(ix, s, host.Name, zs, testTables, nil)
	if len(groups) != 1 {
		t.Errorf("groups without blue2's zone: %v", strs(groups))
	}
	for _, f := range strs(flows) {
		if strings.Contains(f, fmt.Sprintf("metadata=%#x/", 5001+16384)) {
			t.Errorf("blue2 has no zone but a flow: %s", f)
		}
	}
}

// groupOf is the select group id of load balancer lbID for network netID
// on host: the number the host allocated to it, in the lb-select range.
func groupOf(t *testing.T, l *viewtest.Lab, host, lbID, netID string) uint32 {
	t.Helper()
	n, ok := l.View.Snapshot().Zone(host, kit.LBSelectUser(lbID, netID))
	if !ok {
		t.Fatalf("%s has no select group number for %s in %s", host, lbID, netID)
	}
	return kit.LBGroup(n)
}

// TestSelectGroupsAreAllocated: the select groups of two load balancers
// for one client network on one host are numbers the host allocated,
// never the same one.
func TestSelectGroupsAreAllocated(t *testing.T) {
	l := newLab(t)
	l.Create(&model.LoadBalancer{Meta: meta("api"), Network: "blue", VIP: "10.1.0.101", Protocol: "tcp", Port: 80,
		Backends: []model.Backend{{IP: "10.1.0.11", Port: 8080}}})
	snap := l.Svc.Snapshot()
	_, groups := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	ids := map[uint32]bool{}
	for _, g := range groups {
		ids[g.ID] = true
	}
	for _, name := range []string{"web", "api"} {
		lb, _ := snap.LoadBalancers.ByName(name)
		id := groupOf(t, l, "hv1", lb.ID, lb.Network)
		if !ids[id] {
			t.Errorf("%s's group %#x is not among hv1's groups %v", name, id, strs(groups))
		}
		if id < kit.GroupLBLo || id > kit.GroupLBHi {
			t.Errorf("%s's group %#x is outside the lb-select range", name, id)
		}
	}
	if len(groups) != 2 || len(ids) != 2 {
		t.Errorf("hv1 has groups %v, want two distinct ones", strs(groups))
	}
}
