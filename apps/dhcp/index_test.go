package dhcp

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
	"github.com/loom-sdn/loom/view/viewtest"
)

// lab is a model with a view of it (view/viewtest).
type lab struct{ *viewtest.Lab }

func newLab(t testing.TB) *lab { return &lab{viewtest.New(t)} }

func (l *lab) bind(port, host string, ofport uint32) {
	l.View.Bind(view.Binding{Port: port, Host: host, Interface: "tap-" + port, OFPort: ofport})
}

var meta = viewtest.Meta

func no() *bool { f := false; return &f }

// model: two hosts; blue (VXLAN) with a routed DHCP subnet with DNS,
// host routes and a lease; red (VXLAN) whose subnet has DHCP off; v100
// (VLAN) with a plain DHCP subnet and a second subnet with DHCP off.
func newModel(t testing.TB) *lab {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Network{Meta: meta("red"), Type: "vxlan", VNI: 5002},
		&model.Network{Meta: meta("v100"), Type: "vlan", VLAN: 100},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1",
			DNSServers: []string{"10.1.0.53", "8.8.8.8"}, LeaseSeconds: 3600,
			HostRoutes: []model.Route{{Destination: "192.168.0.0/16", Nexthop: "10.1.0.254"}}},
		&model.Subnet{Meta: meta("red-a"), Network: "red", CIDR: "10.1.0.0/24", DHCP: no()},
		&model.Subnet{Meta: meta("v100-a"), Network: "v100", CIDR: "10.3.0.0/24"},
		&model.Subnet{Meta: meta("v100-static"), Network: "v100", CIDR: "10.4.0.0/24", DHCP: no()},
		&model.Network{Meta: meta("green"), Type: "vxlan", VNI: 5003},
		&model.Subnet{Meta: meta("green-a"), Network: "green", CIDR: "10.2.0.0/24"},
		&model.Router{Meta: meta("r1"), Subnets: []string{"blue-a", "green-a"}},
		&model.Port{Meta: meta("b1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("b2"), Network: "blue", MAC: "02:00:00:00:01:02", IPs: []string{"10.1.0.12"}},
		&model.Port{Meta: meta("bnoip"), Network: "blue", MAC: "02:00:00:00:01:03", IPs: []string{}},
		&model.Port{Meta: meta("r1p"), Network: "red", MAC: "02:00:00:00:02:01", IPs: []string{"10.1.0.11"}},
		&model.Port{Meta: meta("v1"), Network: "v100", MAC: "02:00:00:00:03:01", IPs: []string{"10.3.0.11"}},
		&model.Port{Meta: meta("vs"), Network: "v100", MAC: "02:00:00:00:03:02", IPs: []string{"10.4.0.12"}},
		&model.Port{Meta: meta("g1"), Network: "green", MAC: "02:00:00:00:04:01", IPs: []string{"10.2.0.11"}},
	)
	return l
}

const table = 4

func (l *lab) subnetID(name string) string {
	s, ok := l.Svc.Snapshot().Subnets.ByName(name)
	if !ok {
		l.T.Fatalf("no subnet %s", name)
	}
	return s.ID
}

func (l *lab) compile(host string) []string {
	var out []string
	for _, f := range NewIndex(l.View.Snapshot()).Compile(l.DPID(host), table, MeterID) {
		out = append(out, f.String())
	}
	return out
}

func TestCompile(t *testing.T) {
	l := newModel(t)
	if got := l.compile("hv1"); len(got) != 0 {
		t.Errorf("nothing bound: %q", got)
	}
	l.bind("b1", "hv1", 5)
	l.bind("r1p", "hv1", 6)
	l.bind("v1", "hv1", 7)
	l.bind("b2", "hv2", 5)
	want := []string{
		// blue (VNI 5001) and v100 (VLAN key 1<<24|100); not red, whose subnet has DHCP off.
		"table=4, priority=100,udp,metadata=0x1389,tp_src=68,tp_dst=67 actions=meter:17480,CONTROLLER:65535",
		"table=4, priority=100,udp,metadata=0x1000064,tp_src=68,tp_dst=67 actions=meter:17480,CONTROLLER:65535",
	}
	slices.Sort(want)
	got := l.compile("hv1")
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("hv1:\n%q\nwant\n%q", got, want)
	}
	if got := l.compile("hv2"); len(got) != 1 || got[0] != want[1] {
		t.Errorf("hv2 (blue only): %q", got)
	}
	if got := NewIndex(l.View.Snapshot()).Compile(0x99, table, 0); len(got) != 0 {
		t.Errorf("a switch that is no host's: %q", got)
	}
	if got := NewIndex(l.View.Snapshot()).Compile(l.DPID("hv2"), table, 0); got[0].String() !=
		"table=4, priority=100,udp,metadata=0x1389,tp_src=68,tp_dst=67 actions=CONTROLLER:65535" {
		t.Errorf("without meter: %v", got[0])
	}
}

func TestIndexChanged(t *testing.T) {
	l := newModel(t)
	l.bind("b1", "hv1", 5)
	old := NewIndex(l.View.Snapshot())
	l.bind("b2", "hv1", 8) // blue again: same networks on hv1
	x := NewIndex(l.View.Snapshot())
	if c := x.Changed(old); len(c) != 0 {
		t.Errorf("a second port of a served network: changed %x", c)
	}
	if p, ok := x.Port(l.DPID("hv1"), 8); !ok || p.Name != "b2" || p.IP != netip.MustParseAddr("10.1.0.12") {
		t.Errorf("port 8: %+v", p)
	}
	l.bind("v1", "hv2", 3)
	y := NewIndex(l.View.Snapshot())
	if c := y.Changed(x); !reflect.DeepEqual(c, []uint64{l.DPID("hv2")}) {
		t.Errorf("v100 on hv2: changed %x, want hv2 %x", c, l.DPID("hv2"))
	}
	l.View.Unbind("v1", "hv2", "tap-v1")
	if c := NewIndex(l.View.Snapshot()).Changed(y); !reflect.DeepEqual(c, []uint64{l.DPID("hv2")}) {
		t.Errorf("hv2's last port gone: changed %x", c)
	}
}

func TestSubnetOptions(t *testing.T) {
	l := newModel(t)
	for i, p := range []string{"b1", "bnoip", "v1", "vs", "r1p", "g1"} {
		l.bind(p, "hv1", uint32(5+i))
	}
	x := NewIndex(l.View.Snapshot())
	port := func(ofport uint32) *Port {
		p, _ := x.Port(l.DPID("hv1"), ofport)
		return p
	}
	ip := netip.MustParseAddr
	blue := &Subnet{ID: l.subnetID("blue-a"), Prefix: netip.MustParsePrefix("10.1.0.0/24"), ServerIP: ip("10.1.0.1"),
		ServerMAC: view.GatewayMAC(l.subnetID("blue-a")), Mask: ip("255.255.255.0"), Router: ip("10.1.0.1"),
		DNS: []netip.Addr{ip("10.1.0.53"), ip("8.8.8.8")}, Lease: 3600, MTU: MTUVXLAN,
		Routes: []packet.DHCPRoute{{Dst: netip.MustParsePrefix("192.168.0.0/16"), Gateway: ip("10.1.0.254")},
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: ip("10.1.0.1")}}}
	if b1 := port(5); b1 == nil || b1.Name != "b1" || b1.MAC != (packet.MAC{2, 0, 0, 0, 1, 1}) || b1.IP != ip("10.1.0.11") ||
		!reflect.DeepEqual(b1.Subnet, blue) {
		t.Errorf("b1: %+v\n%+v\nwant\n%+v", b1, b1.Subnet, blue)
	}
	// Without an address, the port's NAKs come from its network's subnet.
	if p := port(6); p == nil || p.IP.IsValid() || p.Subnet.ID != blue.ID {
		t.Errorf("bnoip: %+v", p)
	}
	// A VLAN network, not routed, no host routes: MTU 1500, the gateway as router,
	// no option 121, the default lease.
	v100 := &Subnet{ID: l.subnetID("v100-a"), Prefix: netip.MustParsePrefix("10.3.0.0/24"), ServerIP: ip("10.3.0.1"),
		ServerMAC: view.GatewayMAC(l.subnetID("v100-a")), Mask: ip("255.255.255.0"), Router: ip("10.3.0.1"), Lease: DefaultLease, MTU: MTU}
	if p := port(7); p == nil || p.IP != ip("10.3.0.11") || !reflect.DeepEqual(p.Subnet, v100) {
		t.Errorf("v1: %+v\n%+v\nwant\n%+v", p, p.Subnet, v100)
	}
	// vs's address is in v100's subnet with DHCP off: no lease.
	if p := port(8); p == nil || p.IP.IsValid() || p.Subnet.ID != v100.ID {
		t.Errorf("vs: %+v", p)
	}
	// red's only subnet has DHCP off: red is not served at all.
	if p := port(9); p != nil {
		t.Errorf("red's port is served: %+v", p)
	}
	// g1: routed, no host routes: option 3, no option 121.
	if g := port(10); g == nil || g.Subnet.Router != ip("10.2.0.1") || g.Subnet.Routes != nil {
		t.Errorf("g1: %+v", g)
	}
}

func TestDefaultRouteNotDoubled(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Network{Meta: meta("n"), Type: "flat"},
		&model.Subnet{Meta: meta("s"), Network: "n", CIDR: "10.5.0.0/24",
			HostRoutes: []model.Route{{Destination: "0.0.0.0/0", Nexthop: "10.5.0.254"}}},
		&model.Router{Meta: meta("r"), Subnets: []string{"s"}},
	)
	sn, _ := l.Svc.Snapshot().Subnets.ByName("s")
	sub, ok := newSubnet(l.Svc.Snapshot(), sn)
	if !ok || len(sub.Routes) != 1 || sub.Routes[0].Gateway != netip.MustParseAddr("10.5.0.254") || sub.MTU != MTU {
		t.Errorf("%+v", sub)
	}
}

// hostDump is all of an index's host, for comparing indexes.
type hostDump struct {
	Keys  []uint32
	Ports map[uint32]Port
	Count map[uint32]int
	Dups  map[uint32][]string
}

func dump(x *Index) map[uint64]hostDump {
	out := map[uint64]hostDump{}
	for i := range x.hosts {
		for dpid, h := range x.hosts[i] {
			if shardOf(dpid) != i {
				panic("host in the wrong shard")
			}
			d := hostDump{Keys: h.keys, Ports: map[uint32]Port{}}
			if len(d.Keys) == 0 {
				d.Keys = nil
			}
			for ofport, p := range h.ports {
				d.Ports[ofport] = *p
			}
			for k, n := range h.count {
				if d.Count == nil {
					d.Count = map[uint32]int{}
				}
				d.Count[k] = n
			}
			for ofport, ps := range h.dups {
				if d.Dups == nil {
					d.Dups = map[uint32][]string{}
				}
				for _, p := range ps {
					d.Dups[ofport] = append(d.Dups[ofport], p.Name)
				}
			}
			out[dpid] = d
		}
	}
	return out
}

// TestIndexUpdate: the index updated from port and binding changes is the
// one built from scratch (OpenFlow ports claimed twice included), the
// index it was updated from is left as it was, and the switches digest
// wakes are those whose served networks changed, every switch whose
// flows changed among them.
func TestIndexUpdate(t *testing.T) {
	l := newModel(t)
	l.Create(&model.Host{Meta: meta("hv3"), OVSDB: "unix:/c", VTEPIP: "10.200.0.3"})
	hosts := []string{"hv1", "hv2", "hv3"}
	nets := []struct{ name, prefix string }{{"blue", "10.1.0."}, {"red", "10.1.0."}, {"v100", "10.3.0."},
		{"v100", "10.4.0."}, {"green", "10.2.0."}}
	compileAll := func(x *Index) map[string][]string {
		out := map[string][]string{}
		for _, h := range hosts {
			for _, f := range x.Compile(l.DPID(h), table, MeterID) {
				out[h] = append(out[h], f.String())
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	prev := l.View.Snapshot()
	ix := NewIndex(prev)
	created, updated := 0, 0
	for step := range 400 {
		ports := prev.Model.Ports.Sorted()
		p := ports[rng.IntN(len(ports))]
		host, ofport := hosts[rng.IntN(len(hosts))], uint32(rng.IntN(5)) // a few OpenFlow ports: clashes
		n := nets[rng.IntN(len(nets))]
		ip := n.prefix + strconv.Itoa(10+rng.IntN(20))
		switch op := rng.IntN(20); {
		case op < 5: // a new port, bound
			created++
			name := fmt.Sprintf("x%d", created)
			if _, err := l.Svc.Create(ctx, &model.Port{Meta: meta(name), Network: n.name,
				MAC: fmt.Sprintf("02:00:00:00:09:%02x", created%256), IPs: []string{ip}}); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
				l.bind(name, host, ofport)
			}
		case op < 10: // a port moves (or is bound again, or gets its OpenFlow port)
			l.View.Bind(view.Binding{Port: p.Name, Host: host, Interface: fmt.Sprintf("mv%d", step), OFPort: ofport})
		case op < 12: // a binding goes: the one before, if any, is active again
			if bs := prev.Bindings(p.Name); len(bs) > 0 {
				b := bs[rng.IntN(len(bs))]
				l.View.Unbind(p.Name, b.Host, b.Interface)
			}
		case op < 14: // a port goes
			if _, err := l.Svc.Delete(ctx, model.KindPort, p.Name, 0); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
			}
		case op < 17: // a port's addresses or MAC change
			patch := `{"ips":["` + ip + `"]}`
			switch rng.IntN(4) {
			case 0:
				patch = `{"ips":[]}`
			case 1:
				patch = fmt.Sprintf(`{"mac":"02:00:00:00:0a:%02x"}`, step%256)
			}
			if _, err := l.Svc.Patch(ctx, model.KindPort, p.Name, []byte(patch), 0); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
			}
		case op < 18: // a port changes nothing the server uses
			l.Svc.Patch(ctx, model.KindPort, p.Name, []byte(fmt.Sprintf(`{"description":"d%d"}`, step)), 0)
			l.View.SetModel(l.Svc.Snapshot())
		case op < 19: // a subnet's DHCP goes on or off: a full build
			on := rng.IntN(2) == 0
			l.Svc.Patch(ctx, model.KindSubnet, "v100-a", []byte(fmt.Sprintf(`{"dhcp":%t}`, on)), 0)
			l.View.SetModel(l.Svc.Snapshot())
		default: // a binding's state changes
			if b, ok := prev.Binding(p.Name); ok {
				b.Up = !b.Up
				l.View.Bind(b)
			}
		}
		snap := l.View.Snapshot()
		if snap.Seq == prev.Seq {
			continue
		}
		if !rebuilds(view.Diff(prev, snap), snap) {
			updated++
		}
		nx, changed := ix.update(snap)
		full := NewIndex(snap)
		if got, want := dump(nx), dump(full); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: updated index\n %+v\nfrom scratch\n %+v", step, got, want)
		}
		if nx.Seq != snap.Seq {
			t.Fatalf("step %d: Seq %d, want %d", step, nx.Seq, snap.Seq)
		}
		if got, want := dump(ix), dump(NewIndex(prev)); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: the index updated from was modified\n %+v\nwant\n %+v", step, got, want)
		}
		// Woken: what Changed says of the full builds, every switch whose
		// flows changed among them.
		slices.Sort(changed)
		want := full.Changed(NewIndex(prev))
		slices.Sort(want)
		if !slices.Equal(changed, want) {
			t.Fatalf("step %d: woken %x, want %x", step, changed, want)
		}
		before, after := compileAll(ix), compileAll(nx)
		for _, h := range hosts {
			if !slices.Equal(before[h], after[h]) && !slices.Contains(changed, l.DPID(h)) {
				t.Fatalf("step %d: %s's flows changed but it is not woken", step, h)
			}
		}
		prev, ix = snap, nx
	}
	if updated < 250 {
		t.Errorf("only %d updates without a full build", updated)
	}
	clashes := 0
	for _, d := range dump(ix) {
		clashes += len(d.Dups)
	}
	t.Logf("%d ports, %d updates without a full build, %d OpenFlow ports claimed twice at the end",
		prev.Model.Ports.Len(), updated, clashes)
}
