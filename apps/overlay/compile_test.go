package overlay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view"
	"github.com/loom-sdn/loom/view/viewtest"
)

// lab is a model with a view of it (view/viewtest).
type lab struct{ *viewtest.Lab }

func newLab(t testing.TB) *lab { return &lab{viewtest.New(t)} }

var tables = Tables{Classify: 1, AfterClassify: 2, ARP: 2, Forward: 3, AfterForward: 4, Deliver: 4}

func (l *lab) compile(host string, sp SwitchPorts) []string {
	st := Compile(l.View.Snapshot(), l.DPID(host), tables, sp)
	var out []string
	for _, g := range st.Groups {
		out = append(out, g.String())
	}
	for _, f := range st.Flows {
		out = append(out, f.String())
	}
	slices.Sort(out)
	return out
}

var meta = viewtest.Meta

// twoTenants is two hosts and two VXLAN networks with the same subnet.
func twoTenants(t testing.TB) *lab {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Network{Meta: meta("red"), Type: "vxlan", VNI: 5002},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24"},
		&model.Subnet{Meta: meta("red-a"), Network: "red", CIDR: "10.1.0.0/24"},
		&model.Port{Meta: meta("b1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("b2"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12"}},
		&model.Port{Meta: meta("r1"), Network: "red", MAC: "02:00:00:00:02:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("r2"), Network: "red", MAC: "02:00:00:00:02:02", IPs: []string{"10.1.0.12"}},
	)
	return l
}

func TestCompileVXLAN(t *testing.T) {
	l := twoTenants(t)
	sp := SwitchPorts{Tunnel: 1000}
	if got := l.compile("hv1", sp); len(got) != 0 {
		t.Errorf("no bindings: want nothing, got %q", got)
	}
	l.View.Bind(view.Binding{Port: "b1", Host: "hv1", Interface: "tap-b1", OFPort: 5})
	l.View.Bind(view.Binding{Port: "b2", Host: "hv2", Interface: "tap-b2", OFPort: 7})
	l.View.Bind(view.Binding{Port: "r2", Host: "hv2", Interface: "tap-r2", OFPort: 8})
	want := []string{
		"group_id=10002,type=all,bucket=actions=set_field:0x5->reg7,resubmit(,4),bucket=actions=set_field:0x1389->tun_id,set_field:10.200.0.2->tun_dst,output:1000",
		"group_id=10003,type=all,bucket=actions=set_field:0x5->reg7,resubmit(,4)",
		"table=1, priority=100,in_port=5 actions=write_metadata:0x1389/0x1ffffffff,goto_table:2",
		"table=1, priority=100,tun_id=0x1389,in_port=1000 actions=write_metadata:0x100001389/0x1ffffffff,goto_table:2",
		"table=2, priority=100,arp,metadata=0x1389,arp_tpa=10.1.0.11,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:01:01->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:01:01->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.11->arp_spa,IN_PORT",
		"table=2, priority=100,arp,metadata=0x1389,arp_tpa=10.1.0.12,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:01:02->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:01:02->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.12->arp_spa,IN_PORT",
		"table=2, priority=110,arp,in_port=5,arp_tpa=10.1.0.11,arp_op=1 actions=goto_table:3",
		"table=3, priority=10,metadata=0x100001389 actions=group:10003",
		"table=3, priority=10,metadata=0x1389 actions=group:10002",
		"table=3, priority=100,metadata=0x1389,dl_dst=02:00:00:00:01:02 actions=set_field:0x1389->tun_id,set_field:10.200.0.2->tun_dst,output:1000",
		"table=3, priority=100,metadata=0x1389/0xffffffff,dl_dst=02:00:00:00:01:01 actions=set_field:0x5->reg7,goto_table:4",
		"table=4, priority=100,reg7=0x5 actions=output:5",
	}
	got := l.compile("hv1", sp)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("hv1:\n%s", diff(got, want))
	}
	// red has no port on hv1: nothing of it there. hv2 has both.
	for _, f := range got {
		if strings.Contains(f, "0x138a") {
			t.Errorf("hv1 has a flow of red: %s", f)
		}
	}
	hv2 := strings.Join(l.compile("hv2", sp), "\n")
	for _, s := range []string{"tun_id=0x138a,in_port=1000", "tun_id=0x1389,in_port=1000",
		"metadata=0x1389,dl_dst=02:00:00:00:01:01 actions=set_field:0x1389->tun_id,set_field:10.200.0.1->tun_dst,output:1000",
		"group_id=10004,type=all,bucket=actions=set_field:0x8->reg7,resubmit(,4)\n"} {
		if !strings.Contains(hv2+"\n", s) {
			t.Errorf("hv2 lacks %q:\n%s", s, hv2)
		}
	}

	// Migration: b1 shows up on hv2 while still on hv1; the newest wins.
	l.View.Bind(view.Binding{Port: "b1", Host: "hv2", Interface: "tap-b1", OFPort: 9})
	hv1 := strings.Join(l.compile("hv1", sp), "\n")
	if hv1 != "" {
		t.Errorf("after b1 moved to hv2, hv1 (no port left) still has:\n%s", hv1)
	}
	hv2 = strings.Join(l.compile("hv2", sp), "\n")
	if !strings.Contains(hv2, "metadata=0x1389/0xffffffff,dl_dst=02:00:00:00:01:01 actions=set_field:0x9->reg7") {
		t.Errorf("hv2 does not deliver b1 locally:\n%s", hv2)
	}
	if strings.Contains(hv2, "10.200.0.1->tun_dst") {
		t.Errorf("hv2 still tunnels to hv1:\n%s", hv2)
	}
	// The new interface goes away again: back to hv1.
	l.View.Unbind("b1", "hv2", "tap-b1")
	if hv1 := strings.Join(l.compile("hv1", sp), "\n"); !strings.Contains(hv1, "reg7=0x5 actions=output:5") {
		t.Errorf("b1 back on hv1 not delivered there:\n%s", hv1)
	}
}

func TestCompileVLANAndFlat(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1", Uplink: "eth1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2", Uplink: "eth1"},
		&model.Network{Meta: meta("v100"), Type: "vlan", VLAN: 100},
		&model.Network{Meta: meta("phys"), Type: "flat"},
		&model.Port{Meta: meta("a"), Network: "v100", MAC: "02:00:00:00:03:01"},
		&model.Port{Meta: meta("b"), Network: "v100", MAC: "02:00:00:00:03:02"},
		&model.Port{Meta: meta("c"), Network: "phys", MAC: "02:00:00:00:04:01"},
	)
	l.View.Bind(view.Binding{Port: "a", Host: "hv1", Interface: "tap-a", OFPort: 3})
	l.View.Bind(view.Binding{Port: "b", Host: "hv2", Interface: "tap-b", OFPort: 3})
	l.View.Bind(view.Binding{Port: "c", Host: "hv1", Interface: "tap-c", OFPort: 4})
	got := strings.Join(l.compile("hv1", SwitchPorts{Tunnel: 1000, Uplink: 2}), "\n") + "\n"
	for _, s := range []string{
		"group_id=33554632,type=all,bucket=actions=set_field:0x3->reg7,resubmit(,4),bucket=actions=push_vlan:0x8100,set_field:4196->vlan_vid,move:NXM_NX_REG5[0..2]->OXM_OF_VLAN_PCP[],output:2\n",
		"table=1, priority=100,in_port=2,dl_vlan=100 actions=pop_vlan,write_metadata:0x101000064/0x1ffffffff,goto_table:2\n",
		"table=3, priority=100,metadata=0x1000064,dl_dst=02:00:00:00:03:02 actions=push_vlan:0x8100,set_field:4196->vlan_vid,move:NXM_NX_REG5[0..2]->OXM_OF_VLAN_PCP[],output:2\n",
		"table=1, priority=100,in_port=2,vlan_tci=0x0000/0x1fff actions=write_metadata:0x102000001/0x1ffffffff,goto_table:2\n",
		"group_id=67108866,type=all,bucket=actions=set_field:0x4->reg7,resubmit(,4),bucket=actions=output:2\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("hv1 lacks %q", s)
		}
	}
	if t.Failed() {
		t.Logf("hv1:\n%s", got)
	}
	// Without its uplink a host keeps local switching only.
	got = strings.Join(l.compile("hv1", SwitchPorts{Tunnel: 1000}), "\n")
	if strings.Contains(got, "push_vlan") || strings.Contains(got, "in_port=2") {
		t.Errorf("no uplink, yet:\n%s", got)
	}
}

func diff(got, want []string) string {
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
	return sb.String()
}

func TestAffected(t *testing.T) {
	l := twoTenants(t)
	l.Create(&model.Host{Meta: meta("hv3"), OVSDB: "unix:/c", VTEPIP: "10.200.0.3"})
	l.View.Bind(view.Binding{Port: "b1", Host: "hv1", Interface: "tap-b1", OFPort: 5})
	l.View.Bind(view.Binding{Port: "b2", Host: "hv2", Interface: "tap-b2", OFPort: 7})
	l.View.Bind(view.Binding{Port: "r1", Host: "hv3", Interface: "tap-r1", OFPort: 5})
	x0 := NewIndex(l.View.Snapshot(), nil)
	if all, _ := x0.Affected(nil); !all {
		t.Error("a first index affects every host")
	}
	// r2 binds on hv3: red lives on hv3 only; blue's hosts are untouched.
	l.View.Bind(view.Binding{Port: "r2", Host: "hv3", Interface: "tap-r2", OFPort: 6})
	x1 := NewIndex(l.View.Snapshot(), x0)
	if all, hosts := x1.Affected(x0); all || len(hosts) != 1 || !hosts["hv3"] {
		t.Errorf("r2 bound on hv3: affected all=%v %v, want hv3 only", all, hosts)
	}
	// b2 moves from hv2 to hv3: blue's hosts before and after.
	l.View.Bind(view.Binding{Port: "b2", Host: "hv3", Interface: "tap-b2", OFPort: 8})
	x2 := NewIndex(l.View.Snapshot(), x1)
	if all, hosts := x2.Affected(x1); all || len(hosts) != 3 {
		t.Errorf("b2 moved hv2 -> hv3: affected all=%v %v, want hv1, hv2, hv3", all, hosts)
	}
	// Nothing changed: nobody is affected.
	if all, hosts := NewIndex(l.View.Snapshot(), x2).Affected(x2); all || len(hosts) != 0 {
		t.Errorf("no change: affected all=%v %v", all, hosts)
	}
}

// TestIndexDerivedEqualsRebuilt drives random binding and port changes
// and checks that every derived index equals one built from scratch, that
// its affected hosts cover every host whose compiled state changed, and
// that compiling with each host's cache of networks (NetCache) gives
// what a fresh compile does.
func TestIndexDerivedEqualsRebuilt(t *testing.T) {
	l := newLab(t)
	l.Create(scaleObjects(6, 5, 6)...)
	rng := rand.New(rand.NewPCG(1, 2))
	x := NewIndex(l.View.Snapshot(), nil)
	hosts := []string{"hv0", "hv1", "hv2", "hv3", "hv4", "hv5"}
	caches := map[string]*NetCache{}
	for _, h := range hosts {
		caches[h] = &NetCache{}
	}
	// compileAll compiles every host from scratch, or (cached) reusing
	// each host's cache of the previous step.
	compileAll := func(x *Index, cached ...bool) map[string]string {
		out := map[string]string{}
		for _, h := range hosts {
			var c *NetCache
			if len(cached) > 0 {
				c = caches[h]
			}
			st := x.CompileCached(l.DPID(h), tables, SwitchPorts{Tunnel: 1000}, c)
			var lines []string
			for _, f := range st.Flows {
				lines = append(lines, f.String())
			}
			for _, g := range st.Groups {
				lines = append(lines, g.String())
			}
			slices.Sort(lines)
			out[h] = strings.Join(lines, "\n")
		}
		return out
	}
	before := compileAll(x)
	compileAll(x, true)
	derived := 0
	for step := range 300 {
		n, p := rng.IntN(5), rng.IntN(6)
		port := fmt.Sprintf("p%d-%d", n, p)
		switch r := rng.IntN(10); {
		case r < 6:
			l.View.Bind(view.Binding{Port: port, Host: hosts[rng.IntN(6)], Interface: fmt.Sprintf("t%d", rng.IntN(3)), OFPort: uint32(1 + rng.IntN(9))})
		case r < 8:
			for _, b := range l.View.Snapshot().Bindings(port) {
				l.View.Unbind(port, b.Host, b.Interface)
				break
			}
		case r < 9:
			name := fmt.Sprintf("x%d", step)
			l.Create(&model.Port{Meta: meta(name), Network: fmt.Sprintf("n%d", n), MAC: fmt.Sprintf("02:aa:00:00:%02x:%02x", step>>8, step&0xff)})
			l.View.Bind(view.Binding{Port: name, Host: hosts[rng.IntN(6)], Interface: "t" + name, OFPort: 20})
		default:
			if o, ok := l.Svc.Snapshot().Ports.ByName(port); ok {
				if _, err := l.Svc.Delete(context.Background(), model.KindPort, o.ID, 0); err != nil {
					t.Fatal(err)
				}
				l.View.SetModel(l.Svc.Snapshot())
			}
		}
		s := l.View.Snapshot()
		y, full := NewIndex(s, x), NewIndex(s, nil)
		if y.base != nil {
			derived++
		}
		if len(y.nets) != len(full.nets) || len(y.byHost) != len(full.byHost) {
			t.Fatalf("step %d: derived index has %d nets / %d hosts, rebuilt %d / %d", step, len(y.nets), len(y.byHost), len(full.nets), len(full.byHost))
		}
		for id, n := range full.nets {
			if !n.equal(y.nets[id]) {
				t.Fatalf("step %d: network %s differs:\n derived %+v\n rebuilt %+v", step, n.net.Name, y.nets[id].ports, n.ports)
			}
		}
		for h, hn := range full.byHost {
			if !slices.EqualFunc(hn, y.byHost[h], func(a, b *netIndex) bool { return a.net.ID == b.net.ID }) {
				t.Fatalf("step %d: %s's networks differ", step, h)
			}
		}
		after := compileAll(y)
		for h, c := range compileAll(y, true) {
			if c != after[h] {
				t.Fatalf("step %d: %s compiled with its cache of the last step differs from a fresh compile:\n%s", step, h, diff(strings.Split(c, "\n"), strings.Split(after[h], "\n")))
			}
		}
		all, affected := y.Affected(x)
		for _, h := range hosts {
			if after[h] != before[h] && !all && !affected[h] {
				t.Fatalf("step %d: %s's flows changed but it is not in the affected set %v", step, h, affected)
			}
		}
		x, before = y, after
	}
	if derived < 200 {
		t.Errorf("only %d of 300 indexes were derived", derived)
	}
}

// TestAccessPortsOfAGroupVLAN: a port group with a VLAN makes its ports
// of a flat network access ports of that VLAN on the uplink.
func TestAccessPortsOfAGroupVLAN(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1", Uplink: "eth1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2", Uplink: "eth1"},
		&model.Network{Meta: meta("phys"), Type: "flat"},
		&model.PortGroup{Meta: meta("v300"), VLAN: 300},
		&model.Port{Meta: meta("a"), Network: "phys", MAC: "02:00:00:00:05:01"},
		&model.Port{Meta: meta("b"), Network: "phys", MAC: "02:00:00:00:05:02", PortGroup: "v300"},
		&model.Port{Meta: meta("c"), Network: "phys", MAC: "02:00:00:00:05:03", PortGroup: "v300"},
	)
	l.View.Bind(view.Binding{Port: "a", Host: "hv1", Interface: "tap-a", OFPort: 3})
	l.View.Bind(view.Binding{Port: "b", Host: "hv1", Interface: "tap-b", OFPort: 4})
	x0 := NewIndex(l.View.Snapshot(), nil)
	l.View.Bind(view.Binding{Port: "c", Host: "hv2", Interface: "tap-c", OFPort: 3})
	x1 := NewIndex(l.View.Snapshot(), x0) // derived: c joins the segment
	got := strings.Join(compileIndex(x1, l.DPID("hv1"), SwitchPorts{Tunnel: 1000, Uplink: 2}), "\n") + "\n"
	for _, want := range []string{
		"table=1, priority=100,in_port=3 actions=write_metadata:0x2000001/0x1ffffffff,goto_table:2\n",
		"table=1, priority=100,in_port=4 actions=write_metadata:0x100012c/0x1ffffffff,goto_table:2\n",
		"table=1, priority=100,in_port=2,dl_vlan=300 actions=pop_vlan,write_metadata:0x10100012c/0x1ffffffff,goto_table:2\n",
		"table=3, priority=100,metadata=0x100012c,dl_dst=02:00:00:00:05:03 actions=push_vlan:0x8100,set_field:4396->vlan_vid,move:NXM_NX_REG5[0..2]->OXM_OF_VLAN_PCP[],output:2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hv1 lacks %s", want)
		}
	}
	if strings.Contains(got, "metadata=0x2000001,dl_dst=02:00:00:00:05:03") {
		t.Error("the untagged segment reaches the VLAN's port")
	}
	if t.Failed() {
		t.Logf("hv1:\n%s", got)
	}
	full := NewIndex(l.View.Snapshot(), nil)
	if !slices.Equal(compileIndex(full, l.DPID("hv1"), SwitchPorts{Tunnel: 1000, Uplink: 2}), compileIndex(x1, l.DPID("hv1"), SwitchPorts{Tunnel: 1000, Uplink: 2})) {
		t.Error("the derived index compiles differently from a rebuilt one")
	}
}

func compileIndex(x *Index, dpid uint64, sp SwitchPorts) []string {
	st := x.Compile(dpid, tables, sp)
	var out []string
	for _, f := range st.Flows {
		out = append(out, f.String())
	}
	for _, g := range st.Groups {
		out = append(out, g.String())
	}
	slices.Sort(out)
	return out
}
