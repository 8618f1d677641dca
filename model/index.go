package model

import (
	"fmt"
	"iter"
	"maps"
	"slices"
)

// netIndex is a batch's index of each network's ports (by id, MAC and
// IP), load balancers and subnets, kept on the batch's working snapshot
// (Service.stage) so that validating an op looks up what it could clash
// with instead of reading every object: a batch of n ports costs about n,
// not n², even when they share one network. It is built on first use,
// then kept up to date op by op. Committed snapshots have none: a single
// write reads the objects once, which costs no more than building it.
type netIndex struct {
	built   bool
	ports   map[string]map[string]*Port // network id → port id → port
	macs    map[string]map[string]*Port // network id → MAC → port
	ips     map[string]map[string]*Port // network id → IP → port
	lbs     map[string]map[string]*LoadBalancer
	subnets map[string]map[string]*Subnet
}

// index returns s's network index, built, or nil when s has none.
func (s *Snapshot) index() *netIndex {
	x := s.idx
	if x == nil || x.built {
		return x
	}
	x.ports, x.macs, x.ips = map[string]map[string]*Port{}, map[string]map[string]*Port{}, map[string]map[string]*Port{}
	x.lbs, x.subnets = map[string]map[string]*LoadBalancer{}, map[string]map[string]*Subnet{}
	for _, p := range s.Ports.byID {
		x.addPort(p)
	}
	for _, lb := range s.LoadBalancers.byID {
		add(x.lbs, lb.Network, lb.ID, lb)
	}
	for _, sub := range s.Subnets.byID {
		add(x.subnets, sub.Network, sub.ID, sub)
	}
	x.built = true
	return x
}

func add[T any](m map[string]map[string]T, network, key string, o T) {
	in := m[network]
	if in == nil {
		in = map[string]T{}
		m[network] = in
	}
	in[key] = o
}

// remove deletes network's key if it is o's.
func remove[T Object](m map[string]map[string]T, network, key string, o T) {
	if cur, ok := m[network][key]; ok && cur.Base().ID == o.Base().ID {
		delete(m[network], key)
	}
}

func (x *netIndex) addPort(p *Port) {
	add(x.ports, p.Network, p.ID, p)
	add(x.macs, p.Network, p.MAC, p)
	for _, ip := range p.IPs {
		add(x.ips, p.Network, ip, p)
	}
}

func (x *netIndex) removePort(p *Port) {
	remove(x.ports, p.Network, p.ID, p)
	remove(x.macs, p.Network, p.MAC, p)
	for _, ip := range p.IPs {
		remove(x.ips, p.Network, ip, p)
	}
}

// update records a change (the network of a port, load balancer or
// subnet never changes).
func (x *netIndex) update(ch *change) {
	if x == nil || !x.built {
		return // built later from the sets
	}
	if old, ok := ch.old.(*Port); ok {
		x.removePort(old)
	}
	if p, ok := ch.obj.(*Port); ok && ch.typ != Deleted {
		x.addPort(p)
	}
	switch o := ch.obj.(type) {
	case *LoadBalancer:
		if ch.typ == Deleted {
			remove(x.lbs, o.Network, o.ID, o)
		} else {
			add(x.lbs, o.Network, o.ID, o)
		}
	case *Subnet:
		if ch.typ == Deleted {
			remove(x.subnets, o.Network, o.ID, o)
		} else {
			add(x.subnets, o.Network, o.ID, o)
		}
	}
}

// portClash checks p's MAC and IPs against the other ports of its network
// (drawing a generated MAC again while it clashes).
func (x *netIndex) portClash(p *Port, generated bool) *Error {
	macs, ips := x.macs[p.Network], x.ips[p.Network]
	for generated {
		if o, ok := macs[p.MAC]; !ok || o.ID == p.ID {
			break
		}
		p.MAC = randomMAC()
	}
	if o, ok := macs[p.MAC]; ok && o.ID != p.ID {
		return conflictf("mac", "port %s already has mac %s in this network", o.Name, p.MAC)
	}
	for i, ip := range p.IPs {
		if o, ok := ips[ip]; ok && o.ID != p.ID {
			return conflictf(fmt.Sprintf("ips[%d]", i), "port %s already has ip %s in this network", o.Name, ip)
		}
	}
	return nil
}

// portWithIP returns the port of network that has address ip (canonical
// form), or nil.
func (s *Snapshot) portWithIP(network, ip string) *Port {
	if x := s.index(); x != nil {
		return x.ips[network][ip]
	}
	for _, p := range s.Ports.All() {
		if p.Network == network && slices.Contains(p.IPs, ip) {
			return p
		}
	}
	return nil
}

// portsIn iterates over the ports of network (some others too when s
// has no index: callers check the network).
func (s *Snapshot) portsIn(network string) iter.Seq2[string, *Port] {
	if x := s.index(); x != nil {
		return maps.All(x.ports[network])
	}
	return s.Ports.All()
}

// lbsIn iterates over the load balancers of network (or all, see portsIn).
func (s *Snapshot) lbsIn(network string) iter.Seq2[string, *LoadBalancer] {
	if x := s.index(); x != nil {
		return maps.All(x.lbs[network])
	}
	return s.LoadBalancers.All()
}

// subnetsIn iterates over the subnets of network (or all, see portsIn).
func (s *Snapshot) subnetsIn(network string) iter.Seq2[string, *Subnet] {
	if x := s.index(); x != nil {
		return maps.All(x.subnets[network])
	}
	return s.Subnets.All()
}
