package overlay

import (
	"fmt"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fabric is the runtime with the overlay, and an emulated switch per
// host of the lab's model.
type fabric struct {
	*lab
	env *controllertest.Env
	reg *prometheus.Registry
	sws map[string]*emu.Switch
}

func newFabric(t *testing.T, l *lab, hosts ...string) *fabric {
	reg := prometheus.NewRegistry()
	f := &fabric{lab: l, reg: reg, sws: map[string]*emu.Switch{},
		env: controllertest.Start(t, controller.Config{Apps: []string{Name}, Services: kit.Services(l.View, nil)}, reg)}
	for _, h := range hosts {
		dpid := l.DPID(h)
		f.sws[h] = f.env.Dial(emu.Options{DatapathID: dpid, Ports: []wire.Port{
			{PortNo: 1000, Name: TunnelPort}, {PortNo: 2, Name: "eth1"}}})
		f.env.Ready(dpid)
	}
	return f
}

// has waits until the host's switch has a flow containing every one of
// parts (or, with want false, none such).
func (f *fabric) has(host string, want bool, parts ...string) {
	f.T.Helper()
	controllertest.WaitFlow(f.T, f.sws[host], host, want, parts...)
}

func (f *fabric) compiles() uint64 {
	mfs, err := f.reg.Gather()
	if err != nil {
		f.T.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "loom_overlay_compile_seconds" {
			return histogramCount(mf.GetMetric()[0])
		}
	}
	return 0
}

func histogramCount(m *dto.Metric) uint64 { return m.GetHistogram().GetSampleCount() }

func TestOverlayFollowsTheView(t *testing.T) {
	l := twoTenants(t)
	f := newFabric(t, l, "hv1", "hv2")
	if n := f.sws["hv1"].NumFlows(); n != 4 {
		t.Errorf("hv1 with no bound port: %d flows, want the 4 table misses", n)
	}
	l.View.Bind(view.Binding{Port: "b1", Host: "hv1", Interface: "tap-b1", OFPort: 5})
	l.View.Bind(view.Binding{Port: "b2", Host: "hv2", Interface: "tap-b2", OFPort: 7})
	f.has("hv1", true, "dl_dst=02:00:00:00:01:02", "10.200.0.2->tun_dst")
	f.has("hv2", true, "dl_dst=02:00:00:00:01:01", "10.200.0.1->tun_dst")
	f.has("hv2", true, "in_port=7 ")
	if f.sws["hv1"].NumGroups() != 2 {
		t.Errorf("hv1: %d groups, want blue's two", f.sws["hv1"].NumGroups())
	}

	// b1 moves to hv2: hv1 loses blue entirely, hv2 delivers locally.
	l.View.Bind(view.Binding{Port: "b1", Host: "hv2", Interface: "tap-b1", OFPort: 9})
	f.has("hv2", true, "dl_dst=02:00:00:00:01:01 actions=set_field:0x9->reg7")
	f.has("hv2", false, "10.200.0.1->tun_dst")
	f.has("hv1", false, "0x1389")
	if n := f.sws["hv1"].NumGroups(); n != 0 {
		t.Errorf("hv1 after its last port left: %d groups", n)
	}

	// A burst of changes coalesces: far fewer compiles than changes.
	before := f.compiles()
	for i := range 500 {
		l.View.Bind(view.Binding{Port: "r1", Host: "hv1", Interface: "tap-r1", OFPort: uint32(10 + i%2)})
	}
	f.has("hv1", true, "in_port=11 ")
	time.Sleep(50 * time.Millisecond)
	if n := f.compiles() - before; n >= 500 {
		t.Errorf("500 view changes gave %d compiles on 2 switches", n)
	} else {
		t.Logf("500 view changes -> %d compiles on 2 switches", n)
	}
}

// TestOverlayUnknownSwitchGetsNothing: a switch that is no host's
// integration bridge gets no overlay flows.
func TestOverlayUnknownSwitchGetsNothing(t *testing.T) {
	l := twoTenants(t)
	f := newFabric(t, l, "hv1")
	other := f.env.Dial(emu.Options{DatapathID: 0x99})
	f.env.Ready(0x99)
	l.View.Bind(view.Binding{Port: "b1", Host: "hv1", Interface: "tap-b1", OFPort: 5})
	f.has("hv1", true, "in_port=5 ")
	if n := other.NumFlows(); n != 4 {
		t.Errorf("a switch that is no host's bridge: %d flows, want the 4 table misses", n)
	}
}

// BenchmarkCompile compiles one host's state in a model of 100 hosts,
// 100 networks and 10,000 bound ports (100 per network, spread over the
// hosts).
func BenchmarkCompile(b *testing.B) {
	l := newLab(b)
	const hosts, nets, perNet = 100, 100, 100
	objs := scaleObjects(hosts, nets, perNet)
	for _, o := range objs {
		if _, err := l.Svc.Create(b.Context(), o); err != nil {
			b.Fatal(err)
		}
	}
	l.View.SetModel(l.Svc.Snapshot())
	for n := range nets {
		for p := range perNet {
			l.View.Bind(view.Binding{Port: fmt.Sprintf("p%d-%d", n, p), Host: fmt.Sprintf("hv%d", (n+p)%hosts),
				Interface: fmt.Sprintf("tap%d-%d", n, p), OFPort: uint32(10 + p)})
		}
	}
	snap, dpid := l.View.Snapshot(), l.DPID("hv0")
	b.ReportAllocs()
	var flows int
	for b.Loop() {
		flows = len(Compile(snap, dpid, tables, SwitchPorts{Tunnel: 1000}).Flows)
	}
	b.ReportMetric(float64(flows), "flows/host")
}

// scaleObjects is hosts hypervisors and nets VXLAN networks of perNet ports.
func scaleObjects(hosts, nets, perNet int) []model.Object {
	var objs []model.Object
	for h := range hosts {
		objs = append(objs, &model.Host{Meta: meta(fmt.Sprintf("hv%d", h)), OVSDB: "unix:/x",
			VTEPIP: fmt.Sprintf("10.200.%d.%d", h/250, h%250+1)})
	}
	for n := range nets {
		net := fmt.Sprintf("n%d", n)
		objs = append(objs, &model.Network{Meta: meta(net), Type: "vxlan", VNI: 1000 + n},
			&model.Subnet{Meta: meta(net + "-a"), Network: net, CIDR: "10.0.0.0/16"}) // tenants may overlap
		for p := range perNet {
			objs = append(objs, &model.Port{Meta: meta(fmt.Sprintf("p%d-%d", n, p)), Network: net,
				MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", n>>8, n&0xff, p), IPs: []string{fmt.Sprintf("10.0.%d.%d", p/250, p%250+2)}})
		}
	}
	return objs
}

// TestFlowsPerHost logs how many flows and groups a host gets for N
// networks of M ports spread over H hosts (every host has a port in every
// network once M >= H): the closing figures of the overlay.
func TestFlowsPerHost(t *testing.T) {
	if testing.Short() {
		t.Skip("sizes the model up to 2,000 ports")
	}
	t.Logf("%8s %8s %6s %10s %7s", "networks", "ports/nw", "hosts", "flows/host", "groups")
	for _, c := range []struct{ nets, perNet, hosts int }{{1, 10, 10}, {10, 10, 10}, {10, 100, 10}, {100, 10, 10}, {20, 100, 50}} {
		l := newLab(t)
		l.Create(scaleObjects(c.hosts, c.nets, c.perNet)...)
		for n := range c.nets {
			for p := range c.perNet {
				l.View.Bind(view.Binding{Port: fmt.Sprintf("p%d-%d", n, p), Host: fmt.Sprintf("hv%d", (n+p)%c.hosts),
					Interface: fmt.Sprintf("tap%d-%d", n, p), OFPort: uint32(10 + p)})
			}
		}
		st := Compile(l.View.Snapshot(), l.DPID("hv0"), tables, SwitchPorts{Tunnel: 1000})
		t.Logf("%8d %8d %6d %10d %7d", c.nets, c.perNet, c.hosts, len(st.Flows), len(st.Groups))
		// Per network with a local port: local ports x (classify, guard,
		// forward, deliver) + a tunnel classifier + one ARP reply per
		// address + one forward per remote port + 2 floods.
		local := c.perNet / c.hosts
		if local == 0 {
			continue
		}
		if want := c.nets * (4*local + 1 + c.perNet + (c.perNet - local) + 2); len(st.Flows) != want {
			t.Errorf("%d flows, want %d", len(st.Flows), want)
		}
	}
}
