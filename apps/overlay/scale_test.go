package overlay

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/store"
	"github.com/loom-sdn/loom/view"
)

// The data-center fabric of the scale benchmarks: 1,000 hosts, 1,000
// VXLAN networks of 10 ports each (10,000 ports) and a load balancer
// each (its backends the network's first three ports), port p of network n
// bound on host (10n+p) mod 1,000, so every host has 10 ports in 10
// networks and every network spans 10 hosts.
const (
	scaleHosts   = 1000
	scaleNets    = 1000
	scalePerNet  = 10
	scaleTimeout = 10 * time.Second
)

var (
	scaleOnce  sync.Once
	scaleModel *model.Snapshot
	scaleErr   error
)

// fabricModel builds the model once per test binary (one batch of 13,000
// objects written to a throw-away store).
func fabricModel(b *testing.B) *model.Snapshot {
	scaleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loom-scale-")
		if err != nil {
			scaleErr = err
			return
		}
		st, err := store.OpenBolt(dir, store.Options{NoSync: true})
		if err != nil {
			scaleErr = err
			return
		}
		defer os.RemoveAll(dir)
		defer st.Close()
		svc, err := model.New(context.Background(), st, nil)
		if err != nil {
			scaleErr = err
			return
		}
		start := time.Now()
		objs := scaleObjects(scaleHosts, scaleNets, scalePerNet)
		// A load balancer in every network, its first three ports the
		// backends (the port that moves in BenchmarkPortMove is one).
		for n := range scaleNets {
			objs = append(objs, &model.LoadBalancer{Meta: meta(fmt.Sprintf("lb%d", n)), Network: fmt.Sprintf("n%d", n),
				VIP: "10.0.200.1", Protocol: "tcp", Port: 80,
				Backends: []model.Backend{{IP: "10.0.0.2", Port: 8080}, {IP: "10.0.0.3", Port: 8080}, {IP: "10.0.0.4", Port: 8080}}})
		}
		ops := make([]model.Op, len(objs))
		for i, o := range objs {
			ops[i] = model.Op{Op: model.OpCreate, Object: o}
		}
		if _, err := svc.Apply(context.Background(), ops); err != nil {
			scaleErr = err
			return
		}
		scaleModel = svc.Snapshot()
		fmt.Printf("fabric model: %d hosts, %d networks, %d ports, %d load balancers written in %v\n",
			scaleHosts, scaleNets, scaleNets*scalePerNet, scaleNets, time.Since(start).Round(time.Millisecond))
	})
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	return scaleModel
}

func scaleHost(n, p int) string { return fmt.Sprintf("hv%d", (n*scalePerNet+p)%scaleHosts) }

// fabricView is a view of the fabric model with every port bound.
func fabricView(b *testing.B) *view.View {
	v := view.New()
	v.SetModel(fabricModel(b))
	for n := range scaleNets {
		for p := range scalePerNet {
			v.Bind(view.Binding{Port: fmt.Sprintf("p%d-%d", n, p), Host: scaleHost(n, p),
				Interface: fmt.Sprintf("tap%d-%d", n, p), OFPort: uint32(10 + n%100*scalePerNet + p), Up: true})
		}
	}
	return v
}

// BenchmarkFabricCompile digests the view and compiles every one of the
// 1,000 hosts' flows: the work of a controller (re)starting.
func BenchmarkFabricCompile(b *testing.B) {
	v := fabricView(b)
	snap := v.Snapshot()
	dpids := make([]uint64, 0, scaleHosts)
	for h := range scaleHosts {
		d, _ := snap.DatapathID(fmt.Sprintf("hv%d", h))
		dpids = append(dpids, d)
	}
	b.ReportAllocs()
	var flows, groups int
	for b.Loop() {
		flows, groups = 0, 0
		x := NewIndex(snap, nil)
		for _, d := range dpids {
			st := x.Compile(d, tables, SwitchPorts{Tunnel: 1000})
			flows += len(st.Flows)
			groups += len(st.Groups)
		}
	}
	b.ReportMetric(float64(flows), "flows")
	b.ReportMetric(float64(groups), "groups")
}

// BenchmarkPortMove runs the overlay on 1,000 emulated switches, one per
// host, and moves one port per iteration to another host: the time from
// the binding change to every affected switch (the 10 hosts of the
// network and the new one) holding the new flows. The emulated switches
// apply what they receive in order, the barrier after it included.
func BenchmarkPortMove(b *testing.B) { benchPortMove(b, Name) }

// BenchmarkPortMoveAllApps is BenchmarkPortMove with every app that
// computes from the view linked in and running (see all_apps_test.go).
func BenchmarkPortMoveAllApps(b *testing.B) { benchPortMove(b, allApps...) }

func benchPortMove(b *testing.B, apps ...string) {
	v := fabricView(b)
	env := controllertest.Start(b, controller.Config{Apps: apps, Services: kit.Services(v, nil), MaxQueuedPacketIns: 16}, nil)
	snap := v.Snapshot()
	sws := make([]*emu.Switch, scaleHosts)
	start := time.Now()
	for h := range scaleHosts {
		d, _ := snap.DatapathID(fmt.Sprintf("hv%d", h))
		sws[h] = env.Dial(emu.Options{DatapathID: d, Ports: []wire.Port{{PortNo: 1000, Name: TunnelPort}}})
	}
	for h := range scaleHosts {
		d, _ := snap.DatapathID(fmt.Sprintf("hv%d", h))
		env.Ready(d)
	}
	total := 0
	for _, sw := range sws {
		total += sw.NumFlows()
	}
	b.Logf("1,000 switches connected and reconciled in %v, %d flows in all", time.Since(start).Round(time.Millisecond), total)

	classify := env.Ctl.Pipeline().ID(controller.TableOverlayClassify)
	var lat []time.Duration
	i := 0
	for b.Loop() {
		// Port 0 of network n moves from its host to the next host.
		n := i % scaleNets
		port := fmt.Sprintf("p%d-0", n)
		from := (n * scalePerNet) % scaleHosts
		to := (from + scalePerNet*(1+i/scaleNets)) % scaleHosts
		ofport := uint32(50000 + i)
		i++
		// The new host classifies the port into the network; each of
		// the network's hosts sends its MAC to the new VTEP.
		want := flow.New(classify, prioPort, flow.Match{}.InPort(ofport))
		var affected []int
		for p := 1; p < scalePerNet; p++ {
			affected = append(affected, (n*scalePerNet+p)%scaleHosts)
		}
		t0 := time.Now()
		v.Bind(view.Binding{Port: port, Host: fmt.Sprintf("hv%d", to), Interface: fmt.Sprintf("mv%d", i), OFPort: ofport, Up: true})
		waitUntil(b, sws[to], func() bool { _, ok := sws[to].Lookup(want); return ok })
		mac := flow.MAC(0x020000000000 | uint64(n>>8)<<16 | uint64(n&0xff)<<8)
		for _, h := range affected {
			waitUntil(b, sws[h], func() bool { return movedTo(sws[h], mac, to) })
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// movedTo reports whether sw sends mac through the tunnel to host to's
// VTEP (10.200.x.y as scaleObjects numbers them).
func movedTo(sw *emu.Switch, mac flow.MAC, to int) bool {
	vtep := uint64(10)<<24 | 200<<16 | uint64(to/250)<<8 | uint64(to%250+1)
	for _, f := range sw.FlowsWith(func(f *flow.Flow) bool {
		m, ok := f.Match.Get(flow.EthDst)
		return ok && flow.MAC(m.Value) == mac
	}) {
		for _, a := range f.Apply {
			if a.Kind == flow.ActSetField && a.Field == flow.TunDst && a.Value == vtep {
				return true
			}
		}
	}
	return false
}

func waitUntil(b *testing.B, sw *emu.Switch, cond func() bool) {
	// Woken by the switch's table changes: polling its tables would take
	// the CPU from the controller being measured.
	deadline := time.After(scaleTimeout)
	for {
		changed := sw.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatal("timed out")
		}
	}
}

// allApps are loomd's default apps that compute from the view.
var allApps = []string{Name, "router", "dhcp", "portpolicy", "firewall", "loadbalancer"}
