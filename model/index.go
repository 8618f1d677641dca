package model

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// index is what validation looks up instead of reading every object: the
// unique keys (VNIs, VLANs, VTEP addresses, MACs and IPs in a network, a
// floating IP's port, a mirror's output port, ...), the objects of each
// network, and who refers to whom. A write's rules thus cost about what
// the write touches, not the size of the model: a batch of n objects
// costs about n, not n², and a single write does not sort a kind.
//
// The Service keeps one index (under its write lock) for the state of its
// current snapshot: built on the first write after a load, then updated
// op by op as writes are staged (Service.stage), and reverted when a
// write fails. Committed snapshots do not carry it.
type index struct {
	// at is the snapshot whose state the index describes.
	at *Snapshot

	// By network id.
	ports   map[string]map[string]*Port                    // port id → port
	macs    map[string]map[string]*Port                    // MAC → port
	ips     map[string]map[string]*Port                    // IP → port
	lbs     map[string]map[string]*LoadBalancer            // load balancer id → load balancer
	vips    map[string]map[string]map[string]*LoadBalancer // vip → load balancer id → load balancer
	subnets map[string]map[string]*Subnet                  // subnet id → subnet
	fips    map[string]map[string]*FloatingIP              // floating IP id → floating IP
	fipIPs  map[string]map[string]*FloatingIP              // ip → floating IP
	// By external network id.
	extRouters map[string]map[string]*Router // router id → router
	extIPs     map[string]map[string]*Router // external_ip → router

	fipPorts map[string]*FloatingIP // port id → its floating IP
	attached map[string]*Router     // subnet id → the router it is attached to
	vteps    map[string]*Host       // vtep_ip → host
	uplinks  map[string]*Host       // host id → host, the hosts with an uplink
	vnis     map[int]*Network       // vni → vxlan network
	vlans    map[int]*Network       // vlan → vlan network
	outputs  map[string]*Mirror     // port id → the mirror it is the output of
	// By flow export protocol.
	exports     map[string]map[string]*FlowExport // flow export id → flow export, all
	exportAll   map[string]map[string]*FlowExport // flow export id → flow export, those of every host
	exportHosts map[string]map[string]*FlowExport // host id → the flow export it is listed in

	// refs maps an object to the objects that refer to it.
	refs map[key]map[key]bool
}

// newIndex indexes the objects of s.
func newIndex(s *Snapshot) *index {
	x := &index{at: s,
		ports: map[string]map[string]*Port{}, macs: map[string]map[string]*Port{}, ips: map[string]map[string]*Port{},
		lbs: map[string]map[string]*LoadBalancer{}, vips: map[string]map[string]map[string]*LoadBalancer{},
		subnets: map[string]map[string]*Subnet{}, fips: map[string]map[string]*FloatingIP{}, fipIPs: map[string]map[string]*FloatingIP{},
		extRouters: map[string]map[string]*Router{}, extIPs: map[string]map[string]*Router{},
		fipPorts: map[string]*FloatingIP{}, attached: map[string]*Router{}, vteps: map[string]*Host{}, uplinks: map[string]*Host{},
		vnis: map[int]*Network{}, vlans: map[int]*Network{}, outputs: map[string]*Mirror{},
		exports: map[string]map[string]*FlowExport{}, exportAll: map[string]map[string]*FlowExport{}, exportHosts: map[string]map[string]*FlowExport{},
		refs: map[key]map[key]bool{},
	}
	for _, ki := range kinds {
		ki.set(s).each(x.add)
	}
	return x
}

// index returns the index of s, a snapshot being staged.
func (s *Snapshot) index() *index { return s.idx }

func add[K comparable, T any](m map[string]map[K]T, outer string, k K, o T) {
	in := m[outer]
	if in == nil {
		in = map[K]T{}
		m[outer] = in
	}
	in[k] = o
}

// remove deletes outer's key k if it is o's.
func remove[K comparable, T Object](m map[string]map[K]T, outer string, k K, o T) {
	if cur, ok := m[outer][k]; ok && cur.Base().ID == o.Base().ID {
		delete(m[outer], k)
		if len(m[outer]) == 0 {
			delete(m, outer)
		}
	}
}

// put sets key k to o; unput deletes it if it is o's.
func put[K comparable, T any](m map[K]T, k K, o T) { m[k] = o }

func unput[K comparable, T Object](m map[K]T, k K, o T) {
	if cur, ok := m[k]; ok && cur.Base().ID == o.Base().ID {
		delete(m, k)
	}
}

// add indexes o.
func (x *index) add(o Object) { x.apply(o, true) }

// drop unindexes o.
func (x *index) drop(o Object) { x.apply(o, false) }

func (x *index) apply(o Object, in bool) {
	id := o.Base().ID
	me := key{o.Kind(), id}
	walkRefs(o, func(r ref) {
		if *r.id == "" {
			return
		}
		to := key{r.kind, *r.id}
		if in {
			if x.refs[to] == nil {
				x.refs[to] = map[key]bool{}
			}
			x.refs[to][me] = true
		} else if x.refs[to] != nil {
			delete(x.refs[to], me)
			if len(x.refs[to]) == 0 {
				delete(x.refs, to)
			}
		}
	})
	switch o := o.(type) {
	case *Host:
		if in {
			put(x.vteps, o.VTEPIP, o)
			if o.Uplink != "" {
				put(x.uplinks, id, o)
			}
		} else {
			unput(x.vteps, o.VTEPIP, o)
			unput(x.uplinks, id, o)
		}
	case *Network:
		m := map[string]map[int]*Network{"vxlan": x.vnis, "vlan": x.vlans}[o.Type]
		v := map[string]int{"vxlan": o.VNI, "vlan": o.VLAN}[o.Type]
		switch {
		case m == nil:
		case in:
			put(m, v, o)
		default:
			unput(m, v, o)
		}
	case *Subnet:
		if in {
			add(x.subnets, o.Network, id, o)
		} else {
			remove(x.subnets, o.Network, id, o)
		}
	case *Port:
		if in {
			add(x.ports, o.Network, id, o)
			add(x.macs, o.Network, o.MAC, o)
			for _, ip := range o.IPs {
				add(x.ips, o.Network, ip, o)
			}
		} else {
			remove(x.ports, o.Network, id, o)
			remove(x.macs, o.Network, o.MAC, o)
			for _, ip := range o.IPs {
				remove(x.ips, o.Network, ip, o)
			}
		}
	case *LoadBalancer:
		if in {
			add(x.lbs, o.Network, id, o)
			if x.vips[o.Network] == nil {
				x.vips[o.Network] = map[string]map[string]*LoadBalancer{}
			}
			add(x.vips[o.Network], o.VIP, id, o)
		} else {
			remove(x.lbs, o.Network, id, o)
			if v := x.vips[o.Network]; v != nil {
				remove(v, o.VIP, id, o)
				if len(v) == 0 {
					delete(x.vips, o.Network)
				}
			}
		}
	case *FloatingIP:
		if in {
			add(x.fips, o.Network, id, o)
			add(x.fipIPs, o.Network, o.IP, o)
			if o.Port != "" {
				put(x.fipPorts, o.Port, o)
			}
		} else {
			remove(x.fips, o.Network, id, o)
			remove(x.fipIPs, o.Network, o.IP, o)
			unput(x.fipPorts, o.Port, o)
		}
	case *Router:
		for _, s := range o.Subnets {
			if in {
				put(x.attached, s, o)
			} else {
				unput(x.attached, s, o)
			}
		}
		if o.ExternalNetwork != "" {
			if in {
				add(x.extRouters, o.ExternalNetwork, id, o)
				if o.ExternalIP != "" {
					add(x.extIPs, o.ExternalNetwork, o.ExternalIP, o)
				}
			} else {
				remove(x.extRouters, o.ExternalNetwork, id, o)
				remove(x.extIPs, o.ExternalNetwork, o.ExternalIP, o)
			}
		}
	case *Mirror:
		if o.OutputPort != "" {
			if in {
				put(x.outputs, o.OutputPort, o)
			} else {
				unput(x.outputs, o.OutputPort, o)
			}
		}
	case *FlowExport:
		if in {
			add(x.exports, o.Protocol, id, o)
			if len(o.Hosts) == 0 {
				add(x.exportAll, o.Protocol, id, o)
			}
			for _, h := range o.Hosts {
				add(x.exportHosts, o.Protocol, h, o)
			}
		} else {
			remove(x.exports, o.Protocol, id, o)
			remove(x.exportAll, o.Protocol, id, o)
			for _, h := range o.Hosts {
				remove(x.exportHosts, o.Protocol, h, o)
			}
		}
	}
}

// update records a change staged.
func (x *index) update(ch *change) {
	if ch.old != nil {
		x.drop(ch.old)
	}
	if ch.typ != Deleted {
		x.add(ch.obj)
	}
}

// revert undoes changes recorded by update, newest first.
func (x *index) revert(chs []*change) {
	for i := len(chs) - 1; i >= 0; i-- {
		ch := chs[i]
		if ch.typ != Deleted {
			x.drop(ch.obj)
		}
		if ch.old != nil {
			x.add(ch.old)
		}
	}
}

// byName returns the objects of m sorted by name.
func byName[T Object](m map[string]T) []T {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(a.Base().Name, b.Base().Name) })
	return out
}

// first returns the object of m first by name (the zero T if none).
func first[T Object](m map[string]T) T {
	var f T
	found := false
	for _, o := range m {
		if !found || o.Base().Name < f.Base().Name {
			f, found = o, true
		}
	}
	return f
}

// portClash checks p's MAC and IPs against the other ports of its network
// (drawing a generated MAC again while it clashes).
func (x *index) portClash(p *Port, generated bool) *Error {
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
func (s *Snapshot) portWithIP(network, ip string) *Port { return s.idx.ips[network][ip] }

// vipUser returns the load balancer of network with vip ip (the first by
// name), or nil.
func (s *Snapshot) vipUser(network, ip string) *LoadBalancer {
	return first(s.idx.vips[network][ip])
}

// subnetsIn returns the subnets of network by id.
func (s *Snapshot) subnetsIn(network string) map[string]*Subnet { return s.idx.subnets[network] }

// routersOut returns the routers whose external network is ext, by name.
func (s *Snapshot) routersOut(ext string) []*Router { return byName(s.idx.extRouters[ext]) }

// referrer returns the first object (by kind, in Kinds order, then by
// name) other than o itself that refers to o, and the path of its first
// reference to o; nil if none.
func (s *Snapshot) referrer(o Object) (Object, string) {
	m := o.Base()
	var by Object
	rank := func(k Kind) int { return slices.IndexFunc(kinds, func(ki *KindInfo) bool { return ki.Kind == k }) }
	for k := range s.idx.refs[key{o.Kind(), m.ID}] {
		if k.kind == o.Kind() && k.id == m.ID {
			continue
		}
		b, ok := s.Get(k.kind, k.id)
		if !ok {
			continue
		}
		if by == nil || cmp.Or(cmp.Compare(rank(b.Kind()), rank(by.Kind())), cmp.Compare(b.Base().Name, by.Base().Name)) < 0 {
			by = b
		}
	}
	if by == nil {
		return nil, ""
	}
	path := ""
	walkRefs(by, func(r ref) {
		if path == "" && r.kind == o.Kind() && *r.id == m.ID {
			path = r.path
		}
	})
	return by, path
}
