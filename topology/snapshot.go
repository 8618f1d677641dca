package topology

import (
	"errors"
	"fmt"
	"slices"
)

// Snapshot is the topology at one moment. It is immutable: neither the
// graph nor its readers may change it (its slices included).
type Snapshot struct {
	// Version increases with every change of the graph.
	Version   uint64
	Switches  []Switch   // by datapath id
	Links     []Link     // by A, then B
	Endpoints []Endpoint // by MAC

	switchIdx   map[DPID]int
	endpointIdx map[MAC]int
	linkIdx     map[PortRef][]int // links ending on a port
	adj         map[DPID][]edge   // usable link directions, in link order
}

// edge is a usable link direction: out of the switch on Out, into To on In.
type edge struct {
	Out uint32
	To  DPID
	In  uint32
}

// build makes a snapshot of the graph (mu held).
func (g *Graph) build() *Snapshot {
	s := &Snapshot{
		Version:   g.version,
		Switches:  make([]Switch, 0, len(g.switches)),
		Links:     make([]Link, 0, len(g.links)),
		Endpoints: make([]Endpoint, 0, len(g.endpoints)),
		switchIdx: make(map[DPID]int, len(g.switches)), endpointIdx: make(map[MAC]int, len(g.endpoints)),
		linkIdx: make(map[PortRef][]int, 2*len(g.links)), adj: make(map[DPID][]edge, len(g.switches)),
	}
	for _, sw := range g.switches {
		s.Switches = append(s.Switches, cloneSwitch(sw))
	}
	slices.SortFunc(s.Switches, func(a, b Switch) int { return cmpUint(uint64(a.DPID), uint64(b.DPID)) })
	for i, sw := range s.Switches {
		s.switchIdx[sw.DPID] = i
	}
	for _, l := range g.links {
		s.Links = append(s.Links, *l)
	}
	slices.SortFunc(s.Links, func(x, y Link) int {
		if c := x.A.Compare(y.A); c != 0 {
			return c
		}
		return x.B.Compare(y.B)
	})
	for i, l := range s.Links {
		s.linkIdx[l.A] = append(s.linkIdx[l.A], i)
		s.linkIdx[l.B] = append(s.linkIdx[l.B], i)
		if l.AB.Valid() {
			s.adj[l.A.DPID] = append(s.adj[l.A.DPID], edge{l.A.Port, l.B.DPID, l.B.Port})
		}
		if l.BA.Valid() {
			s.adj[l.B.DPID] = append(s.adj[l.B.DPID], edge{l.B.Port, l.A.DPID, l.A.Port})
		}
	}
	for _, e := range g.endpoints {
		s.Endpoints = append(s.Endpoints, e.Endpoint.clone())
	}
	slices.SortFunc(s.Endpoints, func(a, b Endpoint) int { return compareMAC(a.MAC, b.MAC) })
	for i, e := range s.Endpoints {
		s.endpointIdx[e.MAC] = i
	}
	return s
}

// Switch returns a switch by datapath id.
func (s *Snapshot) Switch(dpid DPID) (Switch, bool) {
	i, ok := s.switchIdx[dpid]
	if !ok {
		return Switch{}, false
	}
	return s.Switches[i], true
}

// Endpoint returns an endpoint by MAC.
func (s *Snapshot) Endpoint(mac MAC) (Endpoint, bool) {
	i, ok := s.endpointIdx[mac]
	if !ok {
		return Endpoint{}, false
	}
	return s.Endpoints[i], true
}

// LinksAt returns the links that end on a port (normally at most one).
func (s *Snapshot) LinksAt(p PortRef) []Link {
	var out []Link
	for _, i := range s.linkIdx[p] {
		out = append(out, s.Links[i])
	}
	return out
}

// IsLinkPort reports whether a link ends on p: it faces another switch,
// not an endpoint.
func (s *Snapshot) IsLinkPort(p PortRef) bool { return len(s.linkIdx[p]) > 0 }

// Path returns a shortest path from one switch to another over link
// directions LLDP currently sees, as the list of switches crossed with
// their in and out ports, or false when either switch is unknown or
// there is no path. Among shortest paths it picks the same one every time
// (lowest ports first). A path from a switch to itself is that switch.
func (s *Snapshot) Path(from, to DPID) ([]Hop, bool) {
	if _, ok := s.switchIdx[from]; !ok {
		return nil, false
	}
	if _, ok := s.switchIdx[to]; !ok {
		return nil, false
	}
	type via struct {
		prev DPID
		e    edge
	}
	seen := map[DPID]via{from: {}}
	queue := []DPID{from}
	for len(queue) > 0 && !hasKey(seen, to) {
		cur := queue[0]
		queue = queue[1:]
		for _, e := range s.adj[cur] {
			if hasKey(seen, e.To) {
				continue
			}
			seen[e.To] = via{cur, e}
			queue = append(queue, e.To)
		}
	}
	if !hasKey(seen, to) {
		return nil, false
	}
	var chain []via // the edges taken, from to back to from
	for cur := to; cur != from; cur = seen[cur].prev {
		chain = append(chain, seen[cur])
	}
	slices.Reverse(chain)
	hops := make([]Hop, len(chain)+1)
	hops[0].DPID = from
	for i, v := range chain {
		hops[i].Out = v.e.Out
		hops[i+1] = Hop{DPID: v.e.To, In: v.e.In}
	}
	return hops, true
}

func hasKey[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

var errTopology = errors.New("topology")

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errTopology, fmt.Sprintf(format, args...))
}
