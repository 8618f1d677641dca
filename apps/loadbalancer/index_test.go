package loadbalancer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view"
)

// TestIndexUpdate: the index updated from port and binding changes
// compiles every host exactly as one built from scratch, and the hosts
// digest wakes include every host whose flows changed.
func TestIndexUpdate(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Network{Meta: meta("green"), Type: "vxlan", VNI: 5002},
		&model.Subnet{Meta: meta("green-a"), Network: "green", CIDR: "10.2.0.0/24", Gateway: "10.2.0.1"},
	)
	snap := l.Svc.Snapshot()
	blueA, _ := snap.Subnets.ByName("blue-a")
	greenA, _ := snap.Subnets.ByName("green-a")
	l.Create(&model.Router{Meta: meta("r1"), Subnets: []string{blueA.ID, greenA.ID}})
	l.Patch(model.KindLoadBalancer, "web", `{"backends":[{"ip":"10.1.0.11","port":8080},{"ip":"10.1.0.13","port":8080},{"ip":"10.2.0.12","port":8080}],"health_check":{"interval_ms":500}}`)
	hosts := []string{"hv1", "hv2", "hv3"}
	compileAll := func(ix *index, s *view.Snapshot) map[string][]string {
		out := map[string][]string{}
		for _, h := range hosts {
			f, g := compileHost(ix, s, h, zonesOf(s, h), testTables, nil)
			out[h] = append(strs(f), strs(g)...)
			out[h] = append(out[h], strs(probeFlowsOf(ix.checked[h], testTables))...)
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	prev := l.View.Snapshot()
	ix := buildIndex(prev)
	created := 0
	for step := range 300 {
		net, ip := "blue", fmt.Sprintf("10.1.0.%d", 11+rng.IntN(8))
		if rng.IntN(2) == 0 {
			net, ip = "green", fmt.Sprintf("10.2.0.%d", 11+rng.IntN(8))
		}
		ports := prev.Model.Ports.Sorted()
		op := rng.IntN(6)
		if len(ports) == 0 {
			op = 0
		}
		switch op {
		case 0, 4: // a new port
			created++
			name := fmt.Sprintf("x%d", created)
			mac := fmt.Sprintf("02:00:00:00:09:%02x", created%256)
			if _, err := l.Svc.Create(context.Background(), &model.Port{Meta: meta(name), Network: net, MAC: mac, IPs: []string{ip}}); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
				l.Bind(name, hosts[rng.IntN(3)], "tap-"+name, uint32(10+created))
			}
		case 1, 5: // a port moves
			p := ports[rng.IntN(len(ports))]
			l.Bind(p.Name, hosts[rng.IntN(3)], fmt.Sprintf("mv%d", step), uint32(100+step))
		case 2: // a port goes
			p := ports[rng.IntN(len(ports))]
			for _, b := range prev.Bindings(p.Name) {
				l.View.Unbind(p.Name, b.Host, b.Interface)
			}
			if _, err := l.Svc.Delete(context.Background(), model.KindPort, p.Name, 0); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
			}
		case 3: // a port's address changes
			p := ports[rng.IntN(len(ports))]
			if n, _ := prev.Model.Networks.ByName(net); n != nil && p.Network == n.ID {
				l.Svc.Patch(context.Background(), model.KindPort, p.Name, []byte(`{"ips":["`+ip+`"]}`), 0)
				l.View.SetModel(l.Svc.Snapshot())
			}
		}
		snap := l.View.Snapshot()
		c := view.Diff(prev, snap)
		nx := ix.update(prev, snap, c)
		got, want := compileAll(nx, snap), compileAll(buildIndex(snap), snap)
		for _, h := range hosts {
			if !slices.Equal(got[h], want[h]) {
				t.Fatalf("step %d: %s compiled from the updated index\n %v\nfrom scratch\n %v", step, h, got[h], want[h])
			}
		}
		// Every host whose flows changed is woken.
		woken := woken(&state{prev, ix}, &state{snap, nx}, c)
		before := compileAll(ix, prev)
		for _, h := range hosts {
			if !slices.Equal(before[h], got[h]) && !woken[h] {
				t.Fatalf("step %d: %s's flows changed but it is not woken", step, h)
			}
		}
		prev, ix = snap, nx
	}
}
