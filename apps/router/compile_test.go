package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/controller/store"
	"github.com/loom-sdn/loom/controller/view"
	"github.com/loom-sdn/loom/model"
)

func meta(name string) model.Meta { return model.Meta{Name: name} }

type lab struct {
	t   *testing.T
	svc *model.Service
	v   *view.View
}

func newLab(t *testing.T) *lab {
	st, err := store.OpenBolt(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := model.New(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &lab{t: t, svc: svc, v: view.New()}
}

func (l *lab) create(objs ...model.Object) {
	l.t.Helper()
	for _, o := range objs {
		if _, err := l.svc.Create(context.Background(), o); err != nil {
			l.t.Fatalf("create %s %s: %v", o.Kind(), o.Base().Name, err)
		}
	}
	l.v.SetModel(l.svc.Snapshot())
}

var testTables = Tables{Input: 3, Route: 4, Resolve: 5, Forward: 6}

func (l *lab) compile(host string) []string {
	d, _ := l.v.Snapshot().DatapathID(host)
	var out []string
	for _, f := range Compile(l.v.Snapshot(), d, testTables, SwitchPorts{Tunnel: 1000}, nil).Flows {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

func mac(subnet string, l *lab) string {
	s, _ := l.svc.Snapshot().Subnets.ByName(subnet)
	m := view.GatewayMAC(s.ID)
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

func TestCompileEastWest(t *testing.T) {
	l := newLab(t)
	l.create(
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
	l.v.Bind(view.Binding{Port: "b1", Host: "hv1", Interface: "tap-b1", OFPort: 5})
	l.v.Bind(view.Binding{Port: "g2", Host: "hv2", Interface: "tap-g2", OFPort: 7})
	if got := l.compile("hv1"); len(got) != 0 {
		t.Errorf("no router: %q", got)
	}
	l.create(&model.Router{Meta: meta("r1"), Subnets: []string{"blue-a", "green-a"},
		Routes: []model.Route{{Destination: "192.168.50.0/24", Nexthop: "10.2.0.254"}}})
	bm, gm := mac("blue-a", l), mac("green-a", l)
	want := []string{
		// hv1 has blue's b1: gateway 10.1.0.1 answers there, and blue is routed from there.
		"table=3,priority=100,metadata=0x1389,dl_type=0x806,arp_op=1,arp_tpa=10.1.0.1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + bm + "->dl_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:" + bm + "->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.1->arp_spa,IN_PORT",
		"table=3,priority=101,metadata=0x1389,dl_type=0x800,nw_proto=1,nw_dst=10.1.0.1,icmp_type=8 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:" + bm + "->dl_src,move:NXM_OF_IP_SRC[]->NXM_OF_IP_DST[],set_field:10.1.0.1->nw_src,set_field:0->icmp_type,IN_PORT",
		"table=3,priority=100,metadata=0x1389,dl_type=0x800,nw_dst=10.1.0.1 actions=drop",
		"table=3,priority=90,metadata=0x1389,dl_dst=" + bm + ",dl_type=0x800 actions=set_field:0x1->reg6,goto_table:4",
		"table=3,priority=80,metadata=0x1389,dl_dst=" + bm + " actions=drop",
		// Both subnets and the static route, longest prefix first.
		"table=4,priority=149,reg6=0x1,dl_type=0x800,nw_dst=10.1.0.0/255.255.255.0 actions=dec_ttl,set_field:" + bm + "->dl_src,write_metadata:0x1389/0x1ffffffff,goto_table:5",
		"table=4,priority=149,reg6=0x1,dl_type=0x800,nw_dst=10.2.0.0/255.255.255.0 actions=dec_ttl,set_field:" + gm + "->dl_src,write_metadata:0x138b/0x1ffffffff,goto_table:5",
		"table=4,priority=148,reg6=0x1,dl_type=0x800,nw_dst=192.168.50.0/255.255.255.0 actions=dec_ttl,set_field:" + gm + "->dl_src,set_field:02:00:00:00:03:fe->dl_dst,write_metadata:0x138b/0x1ffffffff,goto_table:6",
		"table=4,priority=1,reg6=0x1,dl_type=0x800 actions=meter:21071,CONTROLLER:65535",
		// Every known address.
		"table=5,priority=100,metadata=0x1389,dl_type=0x800,nw_dst=10.1.0.11 actions=set_field:02:00:00:00:01:01->dl_dst,goto_table:6",
		"table=5,priority=100,metadata=0x138b,dl_type=0x800,nw_dst=10.2.0.12 actions=set_field:02:00:00:00:03:02->dl_dst,goto_table:6",
		"table=5,priority=100,metadata=0x138b,dl_type=0x800,nw_dst=10.2.0.254 actions=set_field:02:00:00:00:03:fe->dl_dst,goto_table:6",
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
	if !strings.Contains(hv2, "arp_tpa=10.2.0.1 ") || strings.Contains(hv2, "arp_tpa=10.1.0.1 ") {
		t.Errorf("hv2's gateways:\n%s", hv2)
	}
	// Detaching green: hv2 has nothing left to route.
	r, _ := l.svc.Snapshot().Routers.ByName("r1")
	if _, err := l.svc.Patch(context.Background(), model.KindRouter, r.ID, []byte(`{"subnets":["blue-a"],"routes":[]}`), 0); err != nil {
		t.Fatal(err)
	}
	l.v.SetModel(l.svc.Snapshot())
	if got := l.compile("hv2"); len(got) != 0 {
		t.Errorf("hv2 after green was detached: %q", got)
	}
}
