package controller

import (
	"slices"
	"sync"
)

// The pipeline: every OpenFlow table Loom uses, in packet order, with the
// app that owns it and what happens to a packet no flow matches.
//
// Every app that owns flows has a fixed owner id here too: it is the top
// 16 bits of its flows' cookies, so a switch's flows name their owner the
// same way whatever apps run and in whatever order they are listed.
var (
	_ = declareOwner("l2switch", 0x0001)
	_ = declareOwner("lldp", 0x0002)
	_ = declareOwner("overlay", 0x0003)
	_ = declareOwner("router", 0x0004)
	_ = declareOwner("dhcp", 0x0005)
	_ = declareOwner("portpolicy", 0x0006)
	_ = declareOwner("firewall", 0x0007)
	_ = declareOwner("loadbalancer", 0x0008)
)

// Rules for adding a table:
//   - declare it here, in the position packets reach it, with its owner;
//   - only tables whose owner is an active app are realized, and table ids
//     are assigned in declaration order at start-up (the first realized
//     table is table 0, where every packet enters);
//   - an app may install flows only in the tables it owns (the runtime
//     rejects others) and refers to them through these variables, never
//     through numbers;
//   - a table's miss flow (priority 0) is installed by the runtime from
//     Miss, except MissOwner, where the owning app installs its own.
var (
	// TableDiscovery sends LLDP probes to the controller (link discovery)
	// and copies ARP to it on the way through (endpoint learning); every
	// other packet goes on to the next table. It comes first so that no
	// other table consumes a probe.
	TableDiscovery = declareTable("discovery", "lldp", MissNext)

	// TableL3Ingress takes, on a router's gateway host, what comes for
	// the router from outside (its external address and floating IPs on
	// the uplink) and from other hosts (its transit VNI) into conntrack,
	// before the overlay would drop it as no network's.
	TableL3Ingress = declareTable("l3-ingress", "router", MissNext)

	// The overlay (apps/overlay) is the distributed virtual switch of
	// the model's networks; it and l2switch are alternatives for a
	// bridge (the classifier drops what is not a VM port, a tunnel or
	// the uplink, so l2switch's tables would see nothing).
	//
	// TableOverlayClassify maps a packet to its network: a VM port, a
	// VXLAN tunnel by VNI or the uplink by VLAN tag. It writes the
	// network in metadata, with a bit telling packets from remote hosts.
	TableOverlayClassify = declareTable("overlay-classify", "overlay", MissDrop)

	// On the way from a VM (metadata: its network, no remote bit).
	//
	// TablePortSecurity lets a VM port send only from its own MAC and
	// addresses, with its port group's marking and rate limit, and drops
	// what its port group isolates (apps/portpolicy). Packets from other
	// hosts pass.
	TablePortSecurity = declareTable("port-security", "portpolicy", MissNext)
	// TableFirewallEgress and TableFirewallEgressRules are the stateful
	// firewall of packets leaving a VM: conntrack, then the rules of its
	// security groups for new connections (apps/firewall).
	TableFirewallEgress      = declareTable("fw-egress", "firewall", MissNext)
	TableFirewallEgressRules = declareTable("fw-egress-rules", "firewall", MissNext)
	// TableLB, TableLBCT and TableLBOut are the load balancers the
	// packet's network is a client network of (apps/loadbalancer): ARP
	// for a VIP, conntrack, a new connection to a VIP through its select
	// group (DNAT to a backend), then the backend's MAC, or its gateway's
	// when it is in another network (the router further down routes it);
	// a hairpin connection is also source-NATed to the VIP and goes on
	// to the backend's port through its ingress tables.
	TableLB   = declareTable("lb", "loadbalancer", MissNext)
	TableLBCT = declareTable("lb-ct", "loadbalancer", MissNext)
	// TableLBAffinity holds the clients a load balancer with
	// affinity_seconds has pinned: the switch learns them (a learn action
	// in the backend's bucket), each one loading the backend's address
	// into registers, and forgets them after affinity_seconds idle. lb
	// looks them up by resubmit before conntrack; lb-ct sends a new
	// connection of a pinned client to its backend.
	TableLBAffinity = declareLearnedTable("lb-affinity", "loadbalancer")
	// TableLBLearn pins a client (learn into lb-affinity) when a select
	// group's bucket hands it the backend in reg4/reg2 by resubmit: OVS
	// does not run a learn action inside a bucket.
	TableLBLearn = declareSideTable("lb-learn", "loadbalancer")
	TableLBOut   = declareTable("lb-out", "loadbalancer", MissNext)
	// TableOverlayARP answers ARP requests for the network's known IP
	// addresses on the local switch (ARP suppression).
	TableOverlayARP = declareTable("overlay-arp", "overlay", MissNext)

	// TableDHCP (apps/dhcp) sends DHCPv4 requests from local VMs of
	// networks with DHCP-enabled subnets to the controller, which
	// answers them; the rest goes on. Packets reach it through
	// overlay-arp's miss, with the network in metadata, and before the
	// router, which would take unicast renewals to a gateway.
	TableDHCP = declareTable("dhcp", "dhcp", MissNext)

	// The distributed router (apps/router) routes on the host where a
	// packet enters, between the overlay's classifier and its
	// forwarding: a routed packet leaves with the destination network in
	// metadata, as if a local port had sent it there.
	//
	// TableL3Input answers ARP and ping for subnet gateways and sends
	// packets addressed to a gateway's MAC to be routed (reg6 = router);
	// the rest skips the router's tables (its own miss flow goes to
	// overlay-forward).
	TableL3Input = declareTable("l3-input", "router", MissOwner)
	// TableL3NATIn continues a packet from outside after conntrack:
	// a floating IP's new connection is translated to its port's address;
	// replies go on to be routed.
	TableL3NATIn = declareTable("l3-nat-in", "router", MissDrop)
	// TableL3Route is the routing table: longest prefix first, then
	// TTL, source MAC and network rewritten; no route -> ICMP unreachable.
	TableL3Route = declareTable("l3-route", "router", MissDrop)
	// TableL3SNAT gives new connections to the outside the source address
	// of their floating IP, or the router's external address (SNAT).
	TableL3SNAT = declareTable("l3-snat", "router", MissDrop)
	// TableL3Out sends packets out of the uplink to the outside next
	// hop's MAC, learned by ARP.
	TableL3Out = declareTable("l3-out", "router", MissDrop)
	// TableL3Resolve sets the destination MAC of a routed packet from the
	// model (no ARP); an unknown address -> ICMP host unreachable.
	TableL3Resolve = declareTable("l3-resolve", "router", MissOwner)
	// TableOverlayForward forwards by destination MAC within the
	// network: to a local port, through a tunnel to the host that has
	// it, or out of the uplink; the rest is replicated by the network's
	// flood group.
	TableOverlayForward = declareTable("overlay-forward", "overlay", MissDrop)
	// Tables that see a packet on its way to a local VM port (the port's
	// number is in reg7) go here, between overlay-forward and
	// overlay-deliver: the to-VM firewall, the port's policies.
	//
	// TableLBReply un-NATs, on the client's host, the replies of backends
	// to connections a load balancer translated there (the source
	// becomes VIP:port again), before the client's firewall sees them.
	TableLBReply = declareTable("lb-reply", "loadbalancer", MissNext)
	// TableFirewallIngress and TableFirewallIngressRules are the
	// stateful firewall of packets going to the VM port in reg7.
	TableFirewallIngress      = declareTable("fw-ingress", "firewall", MissNext)
	TableFirewallIngressRules = declareTable("fw-ingress-rules", "firewall", MissNext)
	// TablePortOut applies the VM port's policies to what it receives:
	// its port group's rate limit (apps/portpolicy).
	TablePortOut = declareTable("port-out", "portpolicy", MissNext)

	// TableOverlayDeliver outputs a packet to the VM port in reg7.
	TableOverlayDeliver = declareTable("overlay-deliver", "overlay", MissDrop)

	// TableL2Learning admits frames whose (in_port, eth_src) is known and
	// sends the others to the controller to be learned.
	TableL2Learning = declareTable("l2-learning", "l2switch", MissController)
	// TableL2Forwarding forwards by destination MAC; unknown and
	// broadcast destinations are flooded by the app's miss flow.
	TableL2Forwarding = declareTable("l2-forwarding", "l2switch", MissOwner)
)

// Miss is what a table does with packets no flow matches.
type Miss uint8

const (
	// MissDrop drops them (the OpenFlow 1.3 default, made explicit).
	MissDrop Miss = iota
	// MissNext sends them to the next realized table.
	MissNext
	// MissController sends them to the controller through the switch's
	// packet-in meter.
	MissController
	// MissOwner leaves the miss flow to the owning app.
	MissOwner
)

// A side table is reached only by resubmit, never by goto_table or a
// miss (Next skips it), and misses with nothing (a drop, which in a
// resubmit just returns). A learned table is a side table whose flows
// the switch writes itself (learn actions): the reconciler keeps those
// it did not ask for, and the flow views show them as "learned". They
// expire by their own timeouts.

// Table is one declared pipeline table: what it is for, never where it
// lands. Its id is the realized Pipeline's (each controller realizes
// its own, for the apps it runs).
type Table struct {
	Name  string
	Owner string
	Miss  Miss

	// Side marks a side table, Learned a learned table (see
	// DeclareSideTable and DeclareLearnedTable).
	Side, Learned bool

	// Place is where a table declared outside this file goes (After or
	// Before a named table); the zero Place is declaration order.
	Place Place
}

// Place puts a table next to another one, by name: right after After,
// or right before Before (one of them).
type Place struct{ After, Before string }

var (
	declMu   sync.Mutex
	pipeline []*Table
	owners   = map[string]uint16{}
)

// DeclareOwner gives an app its cookie owner id: the top 16 bits of its
// flows' cookies, the same whatever apps run. Built-in apps take theirs
// above; a plugin declares its own in init() (ids from 0x1000 up are left
// to plugins). It panics on a clash, as a duplicate registration does.
func DeclareOwner(app string, id uint16) uint16 {
	declMu.Lock()
	defer declMu.Unlock()
	return declareOwnerLocked(app, id)
}

func declareOwner(app string, id uint16) uint16 { return DeclareOwner(app, id) }

func declareOwnerLocked(app string, id uint16) uint16 {
	for name, other := range owners {
		if other == id || name == app {
			panic("controller: owner id " + app + " declared twice or clashes with " + name)
		}
	}
	if id == 0 || id == cookieOwnerRuntime {
		panic("controller: owner id of " + app + " is reserved")
	}
	owners[app] = id
	return id
}

// DeclareTable declares a table owned by owner at place: a plugin's, from
// its init() (built-in tables are declared above, in packet order). A
// table placed After or Before another lands right next to it in every
// pipeline where both are realized (where the other is not, after the
// tables declared before it).
func DeclareTable(name, owner string, miss Miss, place Place) *Table {
	declMu.Lock()
	defer declMu.Unlock()
	for _, t := range pipeline {
		if t.Name == name {
			panic("controller: table " + name + " declared twice")
		}
	}
	if place.After != "" && place.Before != "" {
		panic("controller: table " + name + " placed both after and before")
	}
	t := &Table{Name: name, Owner: owner, Miss: miss, Place: place}
	pipeline = append(pipeline, t)
	return t
}

// DeclareSideTable declares a side table (reached by resubmit only).
func DeclareSideTable(name, owner string, place Place) *Table {
	t := DeclareTable(name, owner, MissDrop, place)
	t.Side = true
	return t
}

// DeclareLearnedTable declares a learned table (a side table whose flows
// the switch writes itself).
func DeclareLearnedTable(name, owner string, place Place) *Table {
	t := DeclareSideTable(name, owner, place)
	t.Learned = true
	return t
}

func declareTable(name, owner string, miss Miss) *Table {
	return DeclareTable(name, owner, miss, Place{})
}
func declareSideTable(name, owner string) *Table    { return DeclareSideTable(name, owner, Place{}) }
func declareLearnedTable(name, owner string) *Table { return DeclareLearnedTable(name, owner, Place{}) }

// Pipeline is the pipeline one controller realized for the apps it runs:
// the tables of active apps, in order, numbered from 0. It is immutable;
// two controllers in one process each have their own.
type Pipeline struct {
	tables []*Table // realized, in order
	ids    map[*Table]uint8
	next   map[*Table]*Table // the next realized non-side table, for every declared table
	byID   [256]*Table
}

// ordered returns every declared table in pipeline order: declaration
// order, with placed tables moved next to their anchors.
func ordered() []*Table {
	declMu.Lock()
	decl := slices.Clone(pipeline)
	declMu.Unlock()
	var out []*Table
	var placed []*Table
	for _, t := range decl {
		if t.Place == (Place{}) {
			out = append(out, t)
		} else {
			placed = append(placed, t)
		}
	}
	// Insert placed tables, repeatedly, so that one may anchor on
	// another placed table.
	for len(placed) > 0 {
		var left []*Table
		for _, t := range placed {
			anchor := t.Place.After + t.Place.Before
			i := slices.IndexFunc(out, func(o *Table) bool { return o.Name == anchor })
			if i < 0 {
				left = append(left, t)
				continue
			}
			if t.Place.After != "" {
				i++
			}
			out = slices.Insert(out, i, t)
		}
		if len(left) == len(placed) { // anchors never declared: at the end
			out = append(out, left...)
			break
		}
		placed = left
	}
	return out
}

// realize numbers the tables of active apps, in order.
func realize(active map[string]bool) *Pipeline {
	p := &Pipeline{ids: map[*Table]uint8{}, next: map[*Table]*Table{}}
	all := ordered()
	for _, t := range all {
		if active[t.Owner] {
			p.ids[t] = uint8(len(p.tables))
			p.byID[len(p.tables)] = t
			p.tables = append(p.tables, t)
		}
	}
	var next *Table
	for i := len(all) - 1; i >= 0; i-- {
		p.next[all[i]] = next
		if _, ok := p.ids[all[i]]; ok && !all[i].Side {
			next = all[i]
		}
	}
	return p
}

// ID is the table's OpenFlow table id in this pipeline. A table that is
// not realized (its owner app does not run) panics, which catches an app
// using a table it did not declare.
func (p *Pipeline) ID(t *Table) uint8 {
	id, ok := p.ids[t]
	if !ok {
		panic("controller: table " + t.Name + " is not realized (its owner app is not active)")
	}
	return id
}

// Realized tells whether t is in this pipeline.
func (p *Pipeline) Realized(t *Table) bool { _, ok := p.ids[t]; return ok }

// Next returns the realized table that follows t (where a packet goes on
// with goto_table), or false when t is the last. t itself need not be
// realized.
func (p *Pipeline) Next(t *Table) (*Table, bool) { n := p.next[t]; return n, n != nil }

// NextID is the id of the table that follows t; it panics when none does
// (a table whose owner sends packets on always has one: the deliver
// tables come last).
func (p *Pipeline) NextID(t *Table) uint8 {
	n, ok := p.Next(t)
	if !ok {
		panic("controller: no table follows " + t.Name)
	}
	return p.ids[n]
}

// Tables returns the realized tables in order.
func (p *Pipeline) Tables() []*Table { return p.tables }

// Table returns the table with id, or nil.
func (p *Pipeline) Table(id uint8) *Table { return p.byID[id] }

// OwnerCookie is the cookie of app's flows with nothing in the app's own
// low bits: what a learn action of the app gives the flows it learns.
func OwnerCookie(app string) uint64 {
	declMu.Lock()
	defer declMu.Unlock()
	return uint64(owners[app]) << CookieShift
}
