// Package topology is Loom's view of the network: the switches and their
// ports, the links between switch ports (discovered by LLDP, see
// apps/lldp), the endpoints (hosts, VMs) attached to them, and shortest
// paths between switches.
//
// # Concurrency
//
// A Graph is safe for concurrent use. Writers (the lldp app on every
// switch goroutine, the model, tests) serialize on one mutex. Readers call
// Snapshot and get an immutable value: nothing changes it afterwards, so it
// may be kept and read from any goroutine without locks. A snapshot is
// built at most once per change, lazily, on the first Snapshot after it;
// the writers only drop the cached one.
//
// # Events
//
// Every change is published on the Options.Events bus (which may be nil)
// under topic "topology", in the order the changes were made, with the
// object after the change (before it, for removals) and its stable id:
// switches "DPID", ports "DPID:PORT", links "DPID:PORT-DPID:PORT",
// endpoints by MAC. Link and endpoint refreshes (a new last-seen time) are
// not published.
//
// # Invariants
//
// Links join two ports of known switches that are both up: a port going
// down or away, or its switch disconnecting, removes its links at once;
// otherwise a direction of a link expires when no probe refreshed it
// within the probe's TTL (Expire does this; the lldp app calls it on every
// tick). Endpoints learned from traffic are never attached to a link port,
// are removed with their port or switch, and age out after
// Options.EndpointTimeout; declared endpoints stay until their source
// deletes them.
package topology

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/events"
)

// Topic is the events topic of topology changes.
const Topic = "topology"

// Event types.
const (
	SwitchAdded     = "switch-added"
	SwitchRemoved   = "switch-removed"
	PortAdded       = "port-added"
	PortChanged     = "port-changed"
	PortRemoved     = "port-removed"
	LinkAdded       = "link-added"
	LinkChanged     = "link-changed" // a direction appeared or expired
	LinkRemoved     = "link-removed"
	EndpointAdded   = "endpoint-added"
	EndpointMoved   = "endpoint-moved" // attachment changed
	EndpointChanged = "endpoint-changed"
	EndpointRemoved = "endpoint-removed"
)

// Defaults of Options.
const (
	DefaultLinkTimeout     = 3 * time.Second
	DefaultEndpointTimeout = 10 * time.Minute
)

// Options configure a Graph.
type Options struct {
	// Events receives the changes; nil for none.
	Events *events.Bus
	// Now is the clock (time.Now when nil); tests inject their own.
	Now func() time.Time
	// LinkTimeout is how long a link direction lives without a probe when
	// ObserveLink is given no TTL (DefaultLinkTimeout when 0).
	LinkTimeout time.Duration
	// EndpointTimeout is how long a learned endpoint lives without being
	// seen (DefaultEndpointTimeout when 0; negative: forever).
	EndpointTimeout time.Duration
}

// Graph is the topology. See the package documentation.
type Graph struct {
	o Options

	mu        sync.Mutex
	version   uint64
	switches  map[DPID]*Switch     // Ports kept sorted
	links     map[[2]PortRef]*Link // key {A, B}
	endpoints map[MAC]*endpointState
	nextCheck time.Time // no link or endpoint expires before this

	snap atomic.Pointer[Snapshot] // nil after a change
}

type endpointState struct {
	Endpoint
	prev PortRef // the attachment before the last move
}

// New returns an empty graph.
func New(o Options) *Graph {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LinkTimeout <= 0 {
		o.LinkTimeout = DefaultLinkTimeout
	}
	if o.EndpointTimeout == 0 {
		o.EndpointTimeout = DefaultEndpointTimeout
	}
	return &Graph{o: o, switches: map[DPID]*Switch{}, links: map[[2]PortRef]*Link{}, endpoints: map[MAC]*endpointState{}}
}

// Snapshot returns the current topology. It is never modified afterwards.
func (g *Graph) Snapshot() *Snapshot {
	if s := g.snap.Load(); s != nil {
		return s
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.snap.Load(); s != nil {
		return s
	}
	s := g.build()
	g.snap.Store(s)
	return s
}

// Path is g.Snapshot().Path(from, to).
func (g *Graph) Path(from, to DPID) ([]Hop, bool) { return g.Snapshot().Path(from, to) }

// changed marks the state as changed (mu held).
func (g *Graph) changed() {
	g.version++
	g.snap.Store(nil)
}

func (g *Graph) publish(typ, kind, id string, obj any) {
	g.o.Events.Publish(events.Event{Topic: Topic, Type: typ, Kind: kind, ID: id, Object: obj})
}

// ---- switches and ports ----

// SwitchUp adds a switch with its ports, or, if it is known, brings its
// ports up to date (as SetPort and DeletePort would).
func (g *Graph) SwitchUp(dpid DPID, ports []Port) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sw, ok := g.switches[dpid]
	if !ok {
		sw = &Switch{DPID: dpid, Since: g.o.Now()}
		for _, p := range ports {
			sw.Ports = setPort(sw.Ports, p)
		}
		g.switches[dpid] = sw
		g.changed()
		g.publish(SwitchAdded, "switch", dpid.String(), cloneSwitch(sw))
		return
	}
	for _, p := range ports {
		g.setPort(sw, p)
	}
	for _, p := range slices.Clone(sw.Ports) {
		if !slices.ContainsFunc(ports, func(q Port) bool { return q.Number == p.Number }) {
			g.deletePort(sw, p.Number)
		}
	}
}

// SwitchDown removes a switch with its links and the endpoints learned on
// it.
func (g *Graph) SwitchDown(dpid DPID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sw, ok := g.switches[dpid]
	if !ok {
		return
	}
	for _, p := range sw.Ports {
		g.portGone(PortRef{dpid, p.Number})
	}
	delete(g.switches, dpid)
	g.changed()
	g.publish(SwitchRemoved, "switch", dpid.String(), cloneSwitch(sw))
}

// SetPort adds or updates a port of a known switch (unknown switches are
// ignored). A port that is not up loses its links and learned endpoints.
func (g *Graph) SetPort(dpid DPID, p Port) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sw, ok := g.switches[dpid]; ok {
		g.setPort(sw, p)
	}
}

// DeletePort removes a port with its links and learned endpoints.
func (g *Graph) DeletePort(dpid DPID, no uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sw, ok := g.switches[dpid]; ok {
		g.deletePort(sw, no)
	}
}

func (g *Graph) setPort(sw *Switch, p Port) {
	old, had := sw.Port(p.Number)
	if had && old == p {
		return
	}
	ref := PortRef{sw.DPID, p.Number}
	if !p.Up {
		g.portGone(ref)
	}
	sw.Ports = setPort(sw.Ports, p)
	g.changed()
	typ := PortChanged
	if !had {
		typ = PortAdded
	}
	g.publish(typ, "port", ref.String(), PortEvent{At: ref, Port: p})
}

func (g *Graph) deletePort(sw *Switch, no uint32) {
	p, ok := sw.Port(no)
	if !ok {
		return
	}
	ref := PortRef{sw.DPID, no}
	g.portGone(ref)
	sw.Ports = slices.DeleteFunc(sw.Ports, func(q Port) bool { return q.Number == no })
	g.changed()
	g.publish(PortRemoved, "port", ref.String(), PortEvent{At: ref, Port: p})
}

// PortEvent is the object of port events.
type PortEvent struct {
	At   PortRef `json:"at"`
	Port Port    `json:"port"`
}

// portGone removes the links and learned endpoints of a port that went
// down or away (mu held).
func (g *Graph) portGone(ref PortRef) {
	for key, l := range g.links {
		if l.A == ref || l.B == ref {
			g.removeLink(key, l)
		}
	}
	for _, e := range g.endpoints {
		if e.At == ref && e.Source == SourceLearned {
			g.removeEndpoint(e)
		}
	}
}

func setPort(ports []Port, p Port) []Port {
	i, ok := slices.BinarySearchFunc(ports, p.Number, func(q Port, no uint32) int { return cmpUint(uint64(q.Number), uint64(no)) })
	if ok {
		ports[i] = p
		return ports
	}
	return slices.Insert(ports, i, p)
}

func cloneSwitch(sw *Switch) Switch {
	c := *sw
	c.Ports = slices.Clone(sw.Ports)
	return c
}

// portUp reports whether ref is a known port that is up (mu held).
func (g *Graph) portUp(ref PortRef) bool {
	sw, ok := g.switches[ref.DPID]
	if !ok {
		return false
	}
	p, ok := sw.Port(ref.Port)
	return ok && p.Up
}

// ---- links ----

// ObserveLink records that a probe sent out of src arrived on dst and
// vouches for that direction for ttl (Options.LinkTimeout when 0), and
// returns the link as it now is. It ignores, and reports false for,
// observations between ports that are not known and up, and a port seeing
// itself.
func (g *Graph) ObserveLink(src, dst PortRef, ttl time.Duration) (Link, bool) {
	if ttl <= 0 {
		ttl = g.o.LinkTimeout
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if src == dst || !g.portUp(src) || !g.portUp(dst) {
		return Link{}, false
	}
	now := g.o.Now()
	a, b, forward := src, dst, true
	if a.Compare(b) > 0 {
		a, b, forward = b, a, false
	}
	key := [2]PortRef{a, b}
	l, ok := g.links[key]
	if !ok {
		l = &Link{A: a, B: b}
		g.links[key] = l
	}
	dir := &l.AB
	if !forward {
		dir = &l.BA
	}
	fresh := !dir.Valid()
	if fresh {
		dir.First = now
	}
	dir.Last, dir.Expires = now, now.Add(ttl)
	if g.nextCheck.IsZero() || dir.Expires.Before(g.nextCheck) {
		g.nextCheck = dir.Expires
	}
	g.changed()
	switch {
	case !ok:
		g.publish(LinkAdded, "link", l.ID(), *l)
		g.linkPortsFound(a, b)
	case fresh:
		g.publish(LinkChanged, "link", l.ID(), *l)
	}
	return *l, true
}

func (g *Graph) removeLink(key [2]PortRef, l *Link) {
	delete(g.links, key)
	g.changed()
	g.publish(LinkRemoved, "link", l.ID(), *l)
}

// isLinkPort reports whether a link ends on ref (mu held).
func (g *Graph) isLinkPort(ref PortRef) bool {
	for key := range g.links {
		if key[0] == ref || key[1] == ref {
			return true
		}
	}
	return false
}

// linkPortsFound fixes learned endpoints that were attached to ports now
// known to be link ports: traffic seen there came through the link. They
// go back to their previous attachment when that is an edge port that is
// up, and are removed otherwise (mu held).
func (g *Graph) linkPortsFound(ports ...PortRef) {
	for _, e := range g.endpoints {
		if e.Source != SourceLearned || !slices.Contains(ports, e.At) {
			continue
		}
		if e.prev.Port != 0 && g.portUp(e.prev) && !g.isLinkPort(e.prev) {
			e.At, e.prev = e.prev, PortRef{}
			g.changed()
			g.publish(EndpointMoved, "endpoint", e.MAC.String(), e.Endpoint.clone())
		} else {
			g.removeEndpoint(e)
		}
	}
}

// Expire removes link directions whose TTL has passed, links with no
// direction left, and learned endpoints not seen for
// Options.EndpointTimeout. It is cheap when nothing is due.
func (g *Graph) Expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.o.Now()
	if !g.nextCheck.IsZero() && now.Before(g.nextCheck) {
		return
	}
	var next time.Time
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for key, l := range g.links {
		expired := false
		for _, d := range []*Seen{&l.AB, &l.BA} {
			if d.Valid() && !now.Before(d.Expires) {
				*d, expired = Seen{}, true
			} else if d.Valid() {
				soonest(d.Expires)
			}
		}
		switch {
		case !l.AB.Valid() && !l.BA.Valid():
			g.removeLink(key, l)
		case expired:
			g.changed()
			g.publish(LinkChanged, "link", l.ID(), *l)
		}
	}
	if g.o.EndpointTimeout > 0 {
		for _, e := range g.endpoints {
			if e.Source != SourceLearned {
				continue
			}
			if until := e.LastSeen.Add(g.o.EndpointTimeout); !now.Before(until) {
				g.removeEndpoint(e)
			} else {
				soonest(until)
			}
		}
	}
	g.nextCheck = next
}

// ---- endpoints ----

// LearnEndpoint records that mac (with ip, if valid) was seen on port at.
// It ignores, and reports false for, multicast or zero MACs and ports that
// are not known and up or that are link ports (traffic there came from
// another switch). A declared endpoint only gets its attachment and
// last-seen time from what is learned, never addresses.
func (g *Graph) LearnEndpoint(mac MAC, ip netip.Addr, at PortRef) bool {
	if mac.Multicast() || mac.IsZero() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.portUp(at) || g.isLinkPort(at) {
		return false
	}
	now := g.o.Now()
	e, ok := g.endpoints[mac]
	if !ok {
		e = &endpointState{Endpoint: Endpoint{MAC: mac, IPs: normalizeIPs([]netip.Addr{ip}), At: at, Source: SourceLearned, LastSeen: now}}
		g.endpoints[mac] = e
		g.changed()
		g.publish(EndpointAdded, "endpoint", mac.String(), e.Endpoint.clone())
		g.checkNext(e)
		return true
	}
	e.LastSeen = now
	g.checkNext(e)
	g.changed()
	if e.At != at {
		e.prev, e.At = e.At, at
		g.publish(EndpointMoved, "endpoint", mac.String(), e.Endpoint.clone())
	}
	if e.Source == SourceLearned && ip.IsValid() && !ip.IsUnspecified() && !slices.Contains(e.IPs, ip.Unmap()) {
		e.IPs = normalizeIPs(append(slices.Clone(e.IPs), ip))
		g.publish(EndpointChanged, "endpoint", mac.String(), e.Endpoint.clone())
	}
	return true
}

// checkNext makes sure Expire looks at a learned endpoint in time (mu held).
func (g *Graph) checkNext(e *endpointState) {
	if e.Source != SourceLearned || g.o.EndpointTimeout <= 0 {
		return
	}
	if until := e.LastSeen.Add(g.o.EndpointTimeout); g.nextCheck.IsZero() || until.Before(g.nextCheck) {
		g.nextCheck = until
	}
}

// SetEndpoint declares an endpoint, replacing whatever the graph had for
// its MAC (learned or declared by anyone). e.Source must name the
// declarer. When e.At is unknown, the attachment the graph already has
// (learned, say) is kept; a zero LastSeen is set to now.
func (g *Graph) SetEndpoint(e Endpoint) error {
	if e.Source == "" {
		return errorf("endpoint %s: no source", e.MAC)
	}
	if e.MAC.IsZero() || e.MAC.Multicast() {
		return errorf("endpoint %s: not a unicast MAC", e.MAC)
	}
	e.IPs = normalizeIPs(e.IPs)
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.LastSeen.IsZero() {
		e.LastSeen = g.o.Now()
	}
	old, ok := g.endpoints[e.MAC]
	if ok && !e.Attached() {
		e.At = old.At
	}
	st := &endpointState{Endpoint: e}
	g.endpoints[e.MAC] = st
	g.changed()
	g.checkNext(st)
	switch {
	case !ok:
		g.publish(EndpointAdded, "endpoint", e.MAC.String(), e.clone())
	case old.At != e.At:
		st.prev = old.At
		g.publish(EndpointMoved, "endpoint", e.MAC.String(), e.clone())
	case old.Source != e.Source || !slices.Equal(old.IPs, e.IPs):
		g.publish(EndpointChanged, "endpoint", e.MAC.String(), e.clone())
	}
	return nil
}

// DeleteEndpoint removes the endpoint with mac if source declared it (or
// learned it, for SourceLearned), and reports whether it did.
func (g *Graph) DeleteEndpoint(mac MAC, source string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.endpoints[mac]
	if !ok || e.Source != source {
		return false
	}
	g.removeEndpoint(e)
	return true
}

func (g *Graph) removeEndpoint(e *endpointState) {
	delete(g.endpoints, e.MAC)
	g.changed()
	g.publish(EndpointRemoved, "endpoint", e.MAC.String(), e.Endpoint.clone())
}
