package router

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
// whose flows changed are woken.
func TestIndexUpdate(t *testing.T) {
	l := newLab(t)
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Host{Meta: meta("hv3"), OVSDB: "unix:/c", VTEPIP: "10.200.0.3"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Network{Meta: meta("green"), Type: "vxlan", VNI: 5003},
		&model.Network{Meta: meta("iso"), Type: "vxlan", VNI: 5009},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		&model.Subnet{Meta: meta("green-a"), Network: "green", CIDR: "10.2.0.0/24", Gateway: "10.2.0.1"},
		&model.Subnet{Meta: meta("iso-a"), Network: "iso", CIDR: "10.9.0.0/24", Gateway: "10.9.0.1"},
		&model.Router{Meta: meta("r1"), Subnets: []string{"blue-a", "green-a"},
			Routes: []model.Route{{Destination: "192.168.50.0/24", Nexthop: "10.2.0.14"}}},
	)
	hosts := []string{"hv1", "hv2", "hv3"}
	nets := []string{"blue", "green", "iso"}
	prefix := map[string]string{"blue": "10.1.0", "green": "10.2.0", "iso": "10.9.0"}
	compileAll := func(ix *index) map[string][]string {
		out := map[string][]string{}
		for _, h := range hosts {
			d, _ := ix.snap.DatapathID(h)
			var fs []string
			for _, f := range compile(ix, d, testTables, SwitchPorts{Tunnel: 1000}, nil).Flows {
				fs = append(fs, f.String())
			}
			slices.Sort(fs)
			out[h] = fs
		}
		return out
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ix := newIndex(l.View.Snapshot())
	for step := range 300 {
		net := nets[rng.IntN(3)]
		ip := fmt.Sprintf("%s.%d", prefix[net], 11+rng.IntN(6))
		ports := ix.snap.Model.Ports.Sorted()
		op := rng.IntN(5)
		if len(ports) == 0 {
			op = 0
		}
		switch op {
		case 0, 1:
			name := fmt.Sprintf("p%d", step)
			mac := fmt.Sprintf("02:00:00:00:08:%02x", step%256)
			if _, err := l.Svc.Create(context.Background(), &model.Port{Meta: meta(name), Network: net, MAC: mac, IPs: []string{ip}}); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
				l.View.Bind(view.Binding{Port: name, Host: hosts[rng.IntN(3)], Interface: "tap-" + name, OFPort: uint32(10 + step)})
			}
		case 2:
			p := ports[rng.IntN(len(ports))]
			l.View.Bind(view.Binding{Port: p.Name, Host: hosts[rng.IntN(3)], Interface: fmt.Sprintf("mv%d", step), OFPort: uint32(500 + step)})
		case 3:
			p := ports[rng.IntN(len(ports))]
			for _, b := range ix.snap.Bindings(p.Name) {
				l.View.Unbind(p.Name, b.Host, b.Interface)
			}
			if _, err := l.Svc.Delete(context.Background(), model.KindPort, p.Name, 0); err == nil {
				l.View.SetModel(l.Svc.Snapshot())
			}
		case 4:
			p := ports[rng.IntN(len(ports))]
			l.Svc.Patch(context.Background(), model.KindPort, p.Name, []byte(`{"mac":"02:00:00:00:07:`+fmt.Sprintf("%02x", step%256)+`"}`), 0)
			l.View.SetModel(l.Svc.Snapshot())
		}
		s := l.View.Snapshot()
		c := view.Diff(ix.snap, s)
		nx := ix.update(s, c)
		got, want := compileAll(nx), compileAll(newIndex(s))
		for _, h := range hosts {
			if !slices.Equal(got[h], want[h]) {
				t.Fatalf("step %d: %s compiled from the updated index\n %v\nfrom scratch\n %v", step, h, got[h], want[h])
			}
		}
		// Every host whose flows changed is woken.
		all, woken := woken(ix, nx, c)
		before := compileAll(ix)
		for _, h := range hosts {
			if !all && !woken[h] && !slices.Equal(before[h], got[h]) {
				t.Fatalf("step %d: %s's flows changed but it is not woken", step, h)
			}
		}
		ix = nx
	}
}
