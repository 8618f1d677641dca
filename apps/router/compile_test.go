package router

import (
	"context"
	"fmt"
	"maps"
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

// lab is a model with a view of it (view/viewtest).
type lab struct {
	*viewtest.Lab
	noZones bool // hosts allocate no more zones
}

// newLab's hosts get their conntrack zones as loomd's host manager gives
// them, after every change of the view.
func newLab(t testing.TB) *lab {
	l := &lab{Lab: viewtest.New(t)}
	l.View.Watch(func() {
		if !l.noZones {
			kit.AssignZones(l.View)
		}
	})
	return l
}

var testTables = Tables{Input: 3, Route: 4, Resolve: 5, Forward: 6}

func (l *lab) compile(host string) []string {
	d, _ := l.View.Snapshot().DatapathID(host)
	var out []string
	for _, f := range Compile(l.View.Snapshot(), d, testTables, SwitchPorts{Tunnel: 1000}, nil).Flows {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

func mac(subnet string, l *lab) string {
	s, _ := l.Svc.Snapshot().Subnets.ByName(subnet)
	m := view.GatewayMAC(s.ID)
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func TestCompileEastWest(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Network{Meta: meta("green"), Type: "vxlan", VNI: 5003},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		&model.Subnet{Meta: meta("green-a"), Network: "green", CIDR: "10.2.0.0/24", Gateway: "10.2.0.1"},
		&model.Port{Meta: meta("b1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("g2"), Network: "green", MAC: "02:00:00:00:03:02", IPs: []string{"10.2.0.12"}},
		&model.Port{Meta: meta("nh"), Network: "green", MAC: "02:00:00:00:03:fe", IPs: []string{"10.2.0.254"}},
	)
	l.View.Bind(view.Binding{Port: "b1", Host: "hv1", Interface: "tap-b1", OFPort: 5})
	l.View.Bind(view.Binding{Port: "g2", Host: "hv2", Interface: "tap-g2", OFPort: 7})
	if got := l.compile("hv1"); len(got) != 0 {
		t.Errorf("no router: %q", got)
	}
	l.Create(&model.Router{Meta: meta("r1"), Subnets: []string{"blue-a", "green-a"},
		Routes: []model.Route{{Destination: "192.168.50.0/24", Nexthop: "10.2.0.254"}}})
	bm, gm := mac("blue-a", l), mac("green-a", l)
	want := []string{
		// hv1 has blue's b1: gateway 10.1.0.1 answers there, and blue is routed from there.
		"table=3, priority=100,arp,metadata=0x1389,arp_tpa=10.1.0.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + bm + "->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:" + bm + "->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.1->arp_spa,IN_PORT",
		"table=3, priority=101,icmp,metadata=0x1389,nw_dst=10.1.0.1,icmp_type=8 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + bm + "->eth_src,move:NXM_OF_IP_SRC[]->NXM_OF_IP_DST[],set_field:10.1.0.1->ip_src,set_field:0->icmp_type,IN_PORT",
		"table=3, priority=100,ip,metadata=0x1389,nw_dst=10.1.0.1 actions=drop",
		"table=3, priority=90,ip,metadata=0x1389,dl_dst=" + bm + " actions=set_field:0x1->reg6,goto_table:4",
		"table=3, priority=80,metadata=0x1389,dl_dst=" + bm + " actions=drop",
		// Both subnets and the static route, longest prefix first.
		"table=4, priority=149,ip,reg6=0x1,nw_dst=10.1.0.0/24 actions=dec_ttl,set_field:" + bm + "->eth_src,write_metadata:0x1389/0x1ffffffff,goto_table:5",
		"table=4, priority=149,ip,reg6=0x1,nw_dst=10.2.0.0/24 actions=dec_ttl,set_field:" + gm + "->eth_src,write_metadata:0x138b/0x1ffffffff,goto_table:5",
		"table=4, priority=148,ip,reg6=0x1,nw_dst=192.168.50.0/24 actions=dec_ttl,set_field:" + gm + "->eth_src,set_field:02:00:00:00:03:fe->eth_dst,write_metadata:0x138b/0x1ffffffff,goto_table:6",
		"table=4, priority=1,ip,reg6=0x1 actions=meter:21071,CONTROLLER:65535",
		// Every known address.
		"table=5, priority=100,ip,metadata=0x1389,nw_dst=10.1.0.11 actions=set_field:02:00:00:00:01:01->eth_dst,goto_table:6",
		"table=5, priority=100,ip,metadata=0x138b,nw_dst=10.2.0.12 actions=set_field:02:00:00:00:03:02->eth_dst,goto_table:6",
		"table=5, priority=100,ip,metadata=0x138b,nw_dst=10.2.0.254 actions=set_field:02:00:00:00:03:fe->eth_dst,goto_table:6",
	}
	slices.Sort(want)
	got := l.compile("hv1")
	if !slices.Equal(got, want) {
		var sb strings.Builder
		for _, g := range got {
			if !slices.Contains(want, g) {
				fmt.Fprintf(&sb, "+ %s\n", g)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				fmt.Fprintf(&sb, "- %s\n", w)
			}
		}
		t.Errorf("hv1:\n%s", sb.String())
	}
	// hv2 has only green's g2: its gateway answers there, not blue's.
	hv2 := strings.Join(l.compile("hv2"), "\n")
	if !strings.Contains(hv2, "arp_tpa=10.2.0.1,") || strings.Contains(hv2, "arp_tpa=10.1.0.1,") {
		t.Errorf("hv2's gateways:\n%s", hv2)
	}
	// Detaching green: hv2 has nothing left to route.
	r, _ := l.Svc.Snapshot().Routers.ByName("r1")
	if _, err := l.Svc.Patch(context.Background(), model.KindRouter, r.ID, []byte(`{"subnets":["blue-a"],"routes":[]}`), 0); err != nil {
		t.Fatal(err)
	}
	l.View.SetModel(l.Svc.Snapshot())
	if got := l.compile("hv2"); len(got) != 0 {
		t.Errorf("hv2 after green was detached: %q", got)
	}
}

func TestCompileGateway(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1", Uplink: "eth1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Network{Meta: meta("public"), Type: "vlan", VLAN: 300},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		&model.Subnet{Meta: meta("public-a"), Network: "public", CIDR: "172.24.0.0/24", Gateway: "172.24.0.1"},
		&model.Port{Meta: meta("b2"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12"}},
		&model.Router{Meta: meta("r1"), Subnets: []string{"blue-a"}, ExternalNetwork: "public", SNAT: true},
		&model.FloatingIP{Meta: meta("fip1"), IP: "172.24.0.50", Port: "b2"},
	)
	l.View.Bind(view.Binding{Port: "b2", Host: "hv2", Interface: "tap-b2", OFPort: 7})
	r, _ := l.Svc.Snapshot().Routers.ByName("r1")
	if r.ExternalIP != "172.24.0.2" || r.GatewayHost == "" {
		t.Fatalf("router: external_ip %q, gateway_host %q", r.ExternalIP, r.GatewayHost)
	}
	ext := ExternalMAC(r.ID).String()
	d1, _ := l.View.Snapshot().DatapathID("hv1")
	testTables := Tables{Ingress: 1, Input: 3, NATIn: 4, Route: 5, SNAT: 6, Out: 7, Resolve: 8, Forward: 9}
	compile := func(dpid uint64, sp SwitchPorts, learned map[uint64]flow.MAC) string {
		var out []string
		for _, f := range Compile(l.View.Snapshot(), dpid, testTables, sp, learned).Flows {
			out = append(out, f.String())
		}
		slices.Sort(out)
		return strings.Join(out, "\n") + "\n"
	}
	// hv1, the gateway host, has no blue port but carries the way out.
	hv1 := compile(d1, SwitchPorts{Tunnel: 1000, Uplink: 2}, map[uint64]flow.MAC{0xac180001: 0x0200000000ee})
	for _, want := range []string{
		"table=1, priority=100,ip,tun_id=0xfffffe,in_port=1000 actions=set_field:0x1->reg6,ct(table=6,zone=1,nat)\n",
		"table=1, priority=100,arp,in_port=2,dl_vlan=300,arp_tpa=172.24.0.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + ext + "->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:" + ext + "->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:172.24.0.2->arp_spa,IN_PORT\n",
		"table=1, priority=100,ip,in_port=2,dl_vlan=300,nw_dst=172.24.0.50 actions=pop_vlan,set_field:0x1->reg6,ct(table=4,zone=1,nat)\n",
		"table=4, priority=100,ct_state=+new+trk,ip,reg6=0x1,nw_dst=172.24.0.50 actions=ct(commit,table=5,zone=1,nat(dst=10.1.0.12))\n",
		"table=5, priority=100,ip,reg6=0x1 actions=dec_ttl,ct(table=6,zone=1,nat)\n",
		"table=6, priority=100,ct_state=+new+trk,ip,reg6=0x1,nw_src=10.1.0.12 actions=ct(commit,table=7,zone=1,nat(src=172.24.0.50))\n",
		"table=6, priority=99,ct_state=+new+trk,ip,reg6=0x1 actions=ct(commit,table=7,zone=1,nat(src=172.24.0.2))\n",
		"table=7, priority=80,ip,reg6=0x1 actions=set_field:" + ext + "->eth_src,set_field:02:00:00:00:00:ee->eth_dst,push_vlan:0x8100,set_field:4396->vlan_vid,output:2\n",
		"table=7, priority=90,ip,reg6=0x1,nw_dst=172.24.0.0/24 actions=meter:21071,CONTROLLER:65535\n",
	} {
		if !strings.Contains(hv1, want) {
			t.Errorf("hv1 lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("hv1:\n%s", hv1)
	}
	// A restarted controller takes the learned MACs back from these flows.
	learned := map[uint64]flow.MAC{0xac180001: 0x0200000000ee, 0xac180009: 0x0200000000e9}
	sw := &switchApp{learned: map[uint64]flow.MAC{}}
	sw.adoptLearned(newIndex(l.View.Snapshot()), Compile(l.View.Snapshot(), d1, testTables, SwitchPorts{Tunnel: 1000, Uplink: 2}, learned).Flows, testTables.Out)
	if !maps.Equal(sw.learned, learned) {
		t.Errorf("adopted %v, want %v", sw.learned, learned)
	}
	// hv2 routes blue out through the tunnel to hv1.
	d2, _ := l.View.Snapshot().DatapathID("hv2")
	hv2 := compile(d2, SwitchPorts{Tunnel: 1000}, nil)
	if want := "table=5, priority=100,ip,reg6=0x1 actions=dec_ttl,set_field:0xfffffe->tun_id,set_field:10.200.0.1->tun_dst,output:1000\n"; !strings.Contains(hv2, want) {
		t.Errorf("hv2 lacks %s:\n%s", want, hv2)
	}
	if strings.Contains(hv2, "ct(") {
		t.Errorf("hv2 (not the gateway) has conntrack flows:\n%s", hv2)
	}
	// Until hv1 has r1's zone, it carries no way out, and no conntrack
	// flow in a zone it would share.
	l.noZones = true
	l.View.SetZones("hv1", map[string]uint16{})
	if _, ok := l.View.Snapshot().Zone("hv1", kit.RouterZone(r.ID)); ok {
		t.Fatal("hv1 has r1's zone")
	}
	if hv1 := compile(d1, SwitchPorts{Tunnel: 1000, Uplink: 2}, nil); strings.Contains(hv1, "ct(") || strings.Contains(hv1, "tun_id=0xfffffe") {
		t.Errorf("hv1 without r1's zone:\n%s", hv1)
	}
}

// TestFlowsPerHost logs the router's flows on a host for R routers of S
// subnets each with P ports per subnet, the host having one port in every
// subnet.
func TestFlowsPerHost(t *testing.T) {
	t.Logf("%8s %12s %10s %11s", "routers", "subnets/rtr", "ports/sub", "flows/host")
	for _, c := range []struct{ routers, subnets, ports int }{{1, 2, 10}, {1, 10, 10}, {10, 2, 10}, {10, 10, 10}} {
		l := newLab(t)
		l.Create(&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"})
		for r := range c.routers {
			var subs []string
			for s := range c.subnets {
				n := fmt.Sprintf("n%d-%d", r, s)
				sub := n + "-a"
				subs = append(subs, sub)
				l.Create(&model.Network{Meta: meta(n), Type: "vxlan", VNI: 1000 + r*100 + s},
					&model.Subnet{Meta: meta(sub), Network: n, CIDR: fmt.Sprintf("10.%d.%d.0/24", r, s)})
				for p := range c.ports {
					name := fmt.Sprintf("p%d-%d-%d", r, s, p)
					l.Create(&model.Port{Meta: meta(name), Network: n, IPs: []string{fmt.Sprintf("10.%d.%d.%d", r, s, p+10)}})
					if p == 0 {
						l.View.Bind(view.Binding{Port: name, Host: "hv1", Interface: name, OFPort: uint32(10 + p)})
					}
				}
			}
			l.Create(&model.Router{Meta: meta(fmt.Sprintf("r%d", r)), Subnets: subs})
		}
		d, _ := l.View.Snapshot().DatapathID("hv1")
		st := Compile(l.View.Snapshot(), d, testTables, SwitchPorts{Tunnel: 1000}, nil)
		t.Logf("%8d %12d %10d %11d", c.routers, c.subnets, c.ports, len(st.Flows))
		// Per router: 5 l3-input flows per subnet, one route per subnet,
		// the no-route flow, one l3-resolve flow per port.
		if want := c.routers * (5*c.subnets + c.subnets + 1 + c.subnets*c.ports); len(st.Flows) != want {
			t.Errorf("%d flows, want %d", len(st.Flows), want)
		}
	}
}
