package router

import (
	"maps"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view"
)

// index is what the router compiles every switch from and answers
// packet-ins with, built once per view snapshot (by digest, on its one
// goroutine) and never modified after: the routers with their keys, and
// the ports of the routed networks. On a change of ports and bindings
// only, the networks whose ports changed are redone from the previous
// index; any other change rebuilds it.
type index struct {
	snap    *view.Snapshot
	routers []*Router
	byKey   map[uint64]*Router
	// routerNets are the routers with a subnet in each network.
	routerNets map[string][]*Router
	// byNet are the ports of each network with a router, by name.
	byNet map[string]map[string]*model.Port
}

func newIndex(s *view.Snapshot) *index {
	ix := &index{snap: s, routers: Routers(s.Model), byKey: map[uint64]*Router{}, routerNets: map[string][]*Router{},
		byNet: map[string]map[string]*model.Port{}}
	for _, r := range ix.routers {
		ix.byKey[uint64(r.key)] = r
		for _, sn := range r.subnets {
			if l := ix.routerNets[sn.s.Network]; len(l) == 0 || l[len(l)-1] != r {
				ix.routerNets[sn.s.Network] = append(l, r)
			}
		}
	}
	if len(ix.routers) == 0 {
		return ix
	}
	for _, p := range s.Model.Ports.All() {
		if ix.routerNets[p.Network] != nil {
			m := ix.byNet[p.Network]
			if m == nil {
				m = map[string]*model.Port{}
				ix.byNet[p.Network] = m
			}
			m[p.Name] = p
		}
	}
	return ix
}

// update returns the index of s, whose changes since ix's snapshot are c.
func (ix *index) update(s *view.Snapshot, c view.Changes) *index {
	if c.All || len(c.Kinds) > 1 || len(c.Kinds) == 1 && !c.Kinds[model.KindPort] {
		return newIndex(s)
	}
	nx := *ix
	nx.snap = s
	if len(c.Kinds) == 0 || len(ix.routers) == 0 {
		return &nx // bindings only, or nothing routed: the same ports
	}
	nx.byNet = maps.Clone(ix.byNet)
	cloned := map[string]bool{}
	edit := func(network string) map[string]*model.Port {
		if ix.routerNets[network] == nil {
			return nil
		}
		if !cloned[network] {
			cloned[network] = true
			nx.byNet[network] = maps.Clone(ix.byNet[network])
			if nx.byNet[network] == nil {
				nx.byNet[network] = map[string]*model.Port{}
			}
		}
		return nx.byNet[network]
	}
	for name := range c.Ports {
		if p, ok := ix.snap.Model.Ports.ByName(name); ok {
			if m := edit(p.Network); m != nil {
				delete(m, name)
			}
		}
		if p, ok := s.Model.Ports.ByName(name); ok {
			if m := edit(p.Network); m != nil {
				m[name] = p
			}
		}
	}
	return &nx
}

// localNets are the networks with a port bound on host.
func (ix *index) localNets(host string) map[string]bool {
	local := map[string]bool{}
	for _, name := range ix.snap.PortsOn(host) {
		if b, ok := ix.snap.Binding(name); ok && b.OFPort != 0 {
			if p, ok := ix.snap.Model.Ports.ByName(name); ok {
				local[p.Network] = true
			}
		}
	}
	return local
}
