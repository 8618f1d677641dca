package loadbalancer

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/controller/view/viewtest"
	"github.com/loom-sdn/loom/model"
)

var meta = viewtest.Meta

var testTables = Tables{LB: 4, CT: 5, Out: 6, AfterOut: 7, Reply: 12, AfterReply: 13}

func strs[F fmt.Stringer](v []F) []string {
	out := make([]string, 0, len(v))
	for _, f := range v {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

func intp(v int) *int { return &v }

func newLab(t *testing.T) *viewtest.Lab {
	l := viewtest.New(t)
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
	mac, gid := VIPMAC(lb.ID).String(), fmt.Sprint(GroupID(lb.ID))
	flows, groups := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	got := strs(flows)
	const net = "metadata=0x1389/0x1ffffffff"
	want := []string{
		"table=12,priority=100,metadata=0x1389/0xffffffff,dl_type=0x800,nw_proto=6,tcp_src=8080 actions=ct(table=13,zone=37769,nat)",
		"table=4,priority=100," + net + ",dl_type=0x800,nw_proto=6,nw_dst=10.1.0.100,tcp_dst=80 actions=ct(table=5,zone=37769,nat)",
		"table=4,priority=105," + net + ",dl_type=0x800,nw_proto=6,nw_src=10.1.0.11,nw_dst=10.1.0.11,tcp_src=8080 actions=ct(table=5,zone=37769,nat)",
		"table=4,priority=105," + net + ",dl_type=0x800,nw_proto=6,nw_src=10.1.0.12,nw_dst=10.1.0.12,tcp_src=8080 actions=ct(table=5,zone=37769,nat)",
		"table=4,priority=110," + net + ",dl_type=0x800,nw_proto=6,nw_src=10.1.0.11,nw_dst=10.1.0.100,tcp_src=8080 actions=ct(table=4,zone=54153,nat)",
		"table=4,priority=110," + net + ",dl_type=0x800,nw_proto=6,nw_src=10.1.0.12,nw_dst=10.1.0.100,tcp_src=8080 actions=ct(table=4,zone=54153,nat)",
		"table=4,priority=200," + net + ",dl_type=0x806,arp_op=1,arp_tpa=10.1.0.100 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + mac + "->dl_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:" + mac + "->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.100->arp_spa,IN_PORT",
		"table=5,priority=100," + net + ",ct_state=0x21/0x21,dl_type=0x800,nw_proto=6,nw_dst=10.1.0.100,tcp_dst=80 actions=group:" + gid,
		"table=6,priority=100," + net + ",dl_dst=" + mac + ",dl_type=0x800,nw_dst=10.1.0.11 actions=set_field:02:00:00:00:01:0b->dl_dst,goto_table:7",
		"table=6,priority=100," + net + ",dl_dst=" + mac + ",dl_type=0x800,nw_dst=10.1.0.12 actions=set_field:02:00:00:00:01:0c->dl_dst,goto_table:7",
		"table=6,priority=100," + net + ",dl_dst=" + mac + ",dl_type=0x800,nw_dst=10.1.0.13 actions=set_field:02:00:00:00:01:0d->dl_dst,goto_table:7",
		"table=6,priority=120,in_port=1," + net + ",dl_dst=" + mac + ",dl_type=0x800,nw_dst=10.1.0.11 actions=set_field:" + mac + "->dl_src,set_field:02:00:00:00:01:0b->dl_dst,IN_PORT",
		"table=6,priority=120,in_port=2," + net + ",dl_dst=" + mac + ",dl_type=0x800,nw_dst=10.1.0.12 actions=set_field:" + mac + "->dl_src,set_field:02:00:00:00:01:0c->dl_dst,IN_PORT",
		"table=6,priority=130," + net + ",dl_type=0x800,nw_proto=6,nw_src=10.1.0.11,nw_dst=10.1.0.11,tcp_dst=8080 actions=ct(commit,table=6,zone=54153,nat(src=10.1.0.100))",
		"table=6,priority=130," + net + ",dl_type=0x800,nw_proto=6,nw_src=10.1.0.12,nw_dst=10.1.0.12,tcp_dst=8080 actions=ct(commit,table=6,zone=54153,nat(src=10.1.0.100))",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hv1 flows\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
	wantGroup := "group_id=" + gid + ",type=select," +
		"bucket=weight:3,actions=ct(commit,table=6,zone=37769,nat(dst=10.1.0.11:8080))," +
		"bucket=weight:1,actions=ct(commit,table=6,zone=37769,nat(dst=10.1.0.12:8080))," +
		"bucket=weight:1,actions=ct(commit,table=6,zone=37769,nat(dst=10.1.0.13:8080))"
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
	if !strings.Contains(got, "table=4,priority=100,metadata=0x1389/0x1ffffffff,dl_type=0x800,nw_proto=17,nw_dst=10.1.0.100,udp_dst=53 actions=ct(table=5,zone=37769,nat)") {
		t.Errorf("no udp VIP flow in\n%s", got)
	}
	// New UDP connections: 64 slots by source port, not the group.
	if n := strings.Count(got, "udp_src=0x"); n != 64 || strings.Contains(got, "group:") {
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
		"table=4,priority=150,metadata=0x1389/0x1ffffffff,dl_type=0x800,nw_proto=6,nw_src=10.1.0.11,nw_dst=10.1.0.100,tcp_src=8080,tcp_dst=0xfc00/0xfc00 actions=CONTROLLER:65535",
		"table=4,priority=150,metadata=0x1389/0x1ffffffff,dl_type=0x800,nw_proto=6,nw_src=10.1.0.12,nw_dst=10.1.0.100,tcp_src=8080,tcp_dst=0xfc00/0xfc00 actions=CONTROLLER:65535",
	}
	if !slices.Equal(got, want) {
		t.Errorf("probe flows on hv1\n %s\nwant\n %s", strings.Join(got, "\n "), strings.Join(want, "\n "))
	}
}

func TestAffinity(t *testing.T) {
	l := newLab(t)
	l.Patch(model.KindLoadBalancer, "web", `{"affinity_seconds":600}`)
	flows, _ := Compile(l.View.Snapshot(), l.DPID("hv1"), testTables, nil)
	n := map[string]int{}
	for _, f := range strs(flows) {
		if strings.HasPrefix(f, "table=5,") {
			if !strings.Contains(f, "/0.0.0.63") || strings.Contains(f, "group:") {
				t.Errorf("affinity flow %s", f)
			}
			for _, ip := range []string{"10.1.0.11", "10.1.0.12", "10.1.0.13"} {
				if strings.Contains(f, "nat(dst="+ip+":8080)") {
					n[ip]++
				}
			}
		}
	}
	// Weights 3:1:1 over 64 slots.
	if n["10.1.0.11"] < 37 || n["10.1.0.11"] > 40 || n["10.1.0.11"]+n["10.1.0.12"]+n["10.1.0.13"] != 64 {
		t.Errorf("slots per backend: %v", n)
	}
}
