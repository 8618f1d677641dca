// Package view is the read-only picture of the data center that apps
// compute flows from: the network model (what should exist), the port
// bindings the hypervisors report over OVSDB (where each VM interface is
// plugged in) and the datapath id of each host's integration bridge.
//
// A View is written by the controller's wiring (model changes, binding
// events) and read by apps through immutable Snapshots; every change bumps
// Seq and wakes the watchers, which apps use to recompute (level
// triggered: a watcher need not see every change, only the latest
// snapshot).
package view

import (
	"cmp"
	"context"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/loom-sdn/loom/model"
)

// A Binding is a model port plugged into a host: an interface of the
// host's integration bridge with external_ids:iface-id = the port's name.
type Binding struct {
	Port      string `json:"port"`      // model port name (the iface-id)
	Host      string `json:"host"`      // model host name
	Interface string `json:"interface"` // OVS interface name
	OFPort    uint32 `json:"ofport"`    // OpenFlow port number on the host's bridge
	Up        bool   `json:"up"`        // admin and link state up
	// Seq orders bindings: when a port is bound on two hosts at once (a
	// VM migrating), the one with the higher Seq, the newer, is active.
	Seq uint64 `json:"seq"`
}

// Snapshot is the view at one moment. It is immutable.
type Snapshot struct {
	// Seq grows with every change.
	Seq uint64
	// Model is the network model; never nil.
	Model *model.Snapshot

	bindings *shards           // by port name, newest first
	onHost   *hostShards       // ports by the host of their active binding
	dpids    map[string]uint64 // host name → datapath id
	hosts    map[uint64]*model.Host
	zones    map[string]*hostZones // host name → its bridge's conntrack zones, once reported
	// log is the ports whose bindings changed, with the Seq of the
	// change, oldest first: every change after Seq logFrom.
	log     []change
	logFrom uint64
}

// hostZones are the conntrack zones a host's bridge holds, by zone user.
// A change replaces the whole hostZones, so comparing pointers tells
// whether a host's zones changed.
type hostZones struct{ m map[string]uint16 }

type change struct {
	seq  uint64
	port string
}

const logSize = 4096

// shards holds the bindings in nShards maps by a hash of the port name,
// so that a change copies one small map, not all of them.
const nShards = 256

type shards [nShards]map[string][]Binding

func shardOf(port string) int {
	h := uint32(2166136261)
	for i := 0; i < len(port); i++ {
		h = (h ^ uint32(port[i])) * 16777619
	}
	return int(h % nShards)
}

func (sh *shards) get(port string) []Binding { return sh[shardOf(port)][port] }

// with returns a copy of sh with port's bindings set to bs (deleted when
// empty), copying only port's shard.
func (sh *shards) with(port string, bs []Binding) *shards {
	next := *sh
	i := shardOf(port)
	m := make(map[string][]Binding, len(sh[i])+1)
	for k, v := range sh[i] {
		m[k] = v
	}
	if len(bs) == 0 {
		delete(m, port)
	} else {
		m[port] = bs
	}
	next[i] = m
	return &next
}

// hostShards holds, by host name, the ports whose active binding is on
// the host, sharded like shards: a change copies one shard and one host's
// set.
type hostShards [nShards]map[string]map[string]struct{}

// move returns a copy of hs with port moved from host from to host to
// (either may be "": not active anywhere).
func (hs *hostShards) move(port, from, to string) *hostShards {
	if from == to {
		return hs
	}
	var next hostShards
	if hs != nil {
		next = *hs
	}
	edit := func(host string, add bool) {
		if host == "" {
			return
		}
		i := shardOf(host)
		shard := make(map[string]map[string]struct{}, len(next[i])+1)
		for k, v := range next[i] {
			shard[k] = v
		}
		set := make(map[string]struct{}, len(shard[host])+1)
		for k := range shard[host] {
			set[k] = struct{}{}
		}
		if add {
			set[port] = struct{}{}
		} else {
			delete(set, port)
		}
		if len(set) == 0 {
			delete(shard, host)
		} else {
			shard[host] = set
		}
		next[i] = shard
	}
	edit(from, false)
	edit(to, true)
	return &next
}

// PortsOn returns the ports whose active binding is on host, sorted by
// name.
func (s *Snapshot) PortsOn(host string) []string {
	if s.onHost == nil {
		return nil
	}
	set := s.onHost[shardOf(host)][host]
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// activeHost is the host of the active binding in bs, or "".
func activeHost(bs []Binding) string {
	if len(bs) == 0 {
		return ""
	}
	return bs[0].Host
}

// BindingsChangedSince returns the ports whose bindings changed after the
// snapshot with the given Seq, and false if the log no longer reaches back
// that far (or seq is not older than s).
func (s *Snapshot) BindingsChangedSince(seq uint64) ([]string, bool) {
	if seq > s.Seq || seq < s.logFrom {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(s.log, seq+1, func(c change, seq uint64) int { return cmp.Compare(c.seq, seq) })
	out := make([]string, 0, len(s.log)-i)
	for _, c := range s.log[i:] {
		out = append(out, c.port)
	}
	return out, true
}

// Binding returns the port's active binding: the newest of its bindings.
func (s *Snapshot) Binding(port string) (Binding, bool) {
	bs := s.bindings.get(port)
	if len(bs) == 0 {
		return Binding{}, false
	}
	return bs[0], true
}

// Bindings returns all bindings of a port, newest (active) first. The
// slice must not be modified.
func (s *Snapshot) Bindings(port string) []Binding { return s.bindings.get(port) }

// HostByDatapath returns the host whose integration bridge has dpid.
func (s *Snapshot) HostByDatapath(dpid uint64) (*model.Host, bool) {
	h, ok := s.hosts[dpid]
	return h, ok
}

// DatapathID returns a host's datapath id.
func (s *Snapshot) DatapathID(host string) (uint64, bool) {
	d, ok := s.dpids[host]
	return d, ok
}

// Zone returns the conntrack zone of a zone user (apps/kit names them)
// on host, as the host's bridge holds it: false until the zone is
// allocated and written there. An app compiles no conntrack flow for a
// user without a zone.
func (s *Snapshot) Zone(host, user string) (uint16, bool) {
	hz := s.zones[host]
	if hz == nil {
		return 0, false
	}
	z, ok := hz.m[user]
	return z, ok
}

// Zones returns the conntrack zones of host by zone user, and whether
// the host has reported them at all. The map must not be modified.
func (s *Snapshot) Zones(host string) (map[string]uint16, bool) {
	hz := s.zones[host]
	if hz == nil {
		return nil, false
	}
	return hz.m, true
}

// DatapathID is the datapath id Loom gives a host's integration bridge
// (through OVSDB other_config:datapath-id), derived from the host's
// generated id so that it is known before the bridge connects and never
// changes: 0x4c4d ("LM") in the top 16 bits, 48 bits of FNV-1a hash.
func DatapathID(h *model.Host) uint64 {
	f := fnv.New64a()
	f.Write([]byte(h.ID))
	return 0x4c4d<<48 | f.Sum64()&(1<<48-1)
}

// View holds the current snapshot.
type View struct {
	mu       sync.Mutex // serializes writers
	cur      atomic.Pointer[Snapshot]
	seq      uint64
	bindSeq  uint64
	watchers []func()
}

// New returns a view of an empty model with no bindings.
func New() *View {
	v := &View{}
	v.cur.Store(&Snapshot{Model: &model.Snapshot{}, bindings: &shards{}, onHost: &hostShards{},
		dpids: map[string]uint64{}, hosts: map[uint64]*model.Host{}, zones: map[string]*hostZones{}})
	return v
}

// Snapshot returns the current snapshot; it costs nothing.
func (v *View) Snapshot() *Snapshot { return v.cur.Load() }

// Watch calls fn after every change, on the writer's goroutine: fn must
// return quickly (queue work, do not do it).
func (v *View) Watch(fn func()) {
	v.mu.Lock()
	v.watchers = append(v.watchers, fn)
	v.mu.Unlock()
}

// SetModel installs a new model snapshot.
func (v *View) SetModel(m *model.Snapshot) {
	v.update(func(s *Snapshot) bool {
		if s.Model == m {
			return false
		}
		s.Model = m
		s.dpids = make(map[string]uint64, m.Hosts.Len())
		s.hosts = make(map[uint64]*model.Host, m.Hosts.Len())
		for _, h := range m.Hosts.All() {
			d := DatapathID(h)
			s.dpids[h.Name] = d
			s.hosts[d] = h
		}
		return true
	})
}

// SetZones records the conntrack zones host's bridge holds, by zone user
// (as its OVSDB agent reads them back); nil forgets the host's zones
// (it is no longer managed). The view keeps its own copy.
func (v *View) SetZones(host string, zones map[string]uint16) {
	v.update(func(s *Snapshot) bool {
		old := s.zones[host]
		if zones == nil && old == nil || zones != nil && old != nil && maps.Equal(old.m, zones) {
			return false
		}
		next := make(map[string]*hostZones, len(s.zones)+1)
		maps.Copy(next, s.zones)
		if zones == nil {
			delete(next, host)
		} else {
			next[host] = &hostZones{maps.Clone(zones)}
			if next[host].m == nil {
				next[host].m = map[string]uint16{}
			}
		}
		s.zones = next
		return true
	})
}

// Bind records that an interface on a host is bound to a port, or that
// a known binding changed (ofport, state). A new binding (host and
// interface not bound to this port before) becomes the port's active one.
func (v *View) Bind(b Binding) {
	v.update(func(s *Snapshot) bool {
		old := s.bindings.get(b.Port)
		i := slices.IndexFunc(old, func(o Binding) bool { return o.Host == b.Host && o.Interface == b.Interface })
		next := slices.Clone(old)
		if i >= 0 {
			b.Seq = old[i].Seq
			if old[i] == b {
				return false
			}
			next[i] = b
		} else {
			v.bindSeq++
			b.Seq = v.bindSeq
			next = append(next, b)
		}
		slices.SortFunc(next, func(x, y Binding) int { return cmp.Compare(y.Seq, x.Seq) })
		s.bindings = s.bindings.with(b.Port, next)
		s.onHost = s.onHost.move(b.Port, activeHost(old), activeHost(next))
		s.logChange(b.Port)
		return true
	})
}

// Unbind removes a binding; the port's next newest binding, if any,
// becomes active.
func (v *View) Unbind(port, host, iface string) {
	v.update(func(s *Snapshot) bool {
		old := s.bindings.get(port)
		i := slices.IndexFunc(old, func(o Binding) bool { return o.Host == host && o.Interface == iface })
		if i < 0 {
			return false
		}
		next := slices.Delete(slices.Clone(old), i, i+1)
		s.bindings = s.bindings.with(port, next)
		s.onHost = s.onHost.move(port, activeHost(old), activeHost(next))
		s.logChange(port)
		return true
	})
}

// logChange records that port's bindings change in the snapshot being
// built (its Seq is the view's next).
func (s *Snapshot) logChange(port string) {
	// The log is shared by snapshots: appending past its length in
	// place is safe only for the newest one, which s is a copy of; a
	// full log is copied once per logSize changes, trimmed to half.
	if len(s.log) == logSize {
		s.logFrom = s.log[logSize/2-1].seq
		s.log = slices.Clone(s.log[logSize/2:])
	}
	s.log = append(s.log, change{seq: s.Seq + 1, port: port})
}

// update applies fn to a copy of the current snapshot and publishes it
// if fn reports a change.
func (v *View) update(fn func(s *Snapshot) bool) {
	v.mu.Lock()
	next := *v.cur.Load()
	if !fn(&next) {
		v.mu.Unlock()
		return
	}
	v.seq++
	next.Seq = v.seq
	v.cur.Store(&next)
	watchers := v.watchers
	v.mu.Unlock()
	for _, w := range watchers {
		w()
	}
}

// PortsOf returns the ports an interface of a host is bound to (one,
// normally; none if it is not bound).
func (s *Snapshot) PortsOf(host, iface string) []string {
	var out []string
	for _, m := range s.bindings {
		for port, bs := range m {
			for _, b := range bs {
				if b.Host == host && b.Interface == iface {
					out = append(out, port)
				}
			}
		}
	}
	return out
}

// Follow calls fn with the newest snapshot after changes, from one
// goroutine of its own, until ctx ends: changes that come while fn runs
// make one more call, not one each. An app that digests the view once for
// all switches (an index) does it here.
func (v *View) Follow(ctx context.Context, fn func(*Snapshot)) {
	wake := make(chan struct{}, 1)
	v.Watch(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				fn(v.Snapshot())
			}
		}
	}()
}

// Changes is what differs between two snapshots of a view.
type Changes struct {
	// All is set when the change logs do not reach back to the older
	// snapshot: treat everything as changed.
	All bool
	// Kinds are the kinds of model objects written.
	Kinds map[model.Kind]bool
	// Ports are the names of the ports whose model object or bindings
	// changed (deleted ones included).
	Ports map[string]bool
	// Zones are the hosts whose conntrack zones changed (Snapshot.Zone).
	Zones map[string]bool
}

// Diff tells what changed from old to s, from the model's and the view's
// change logs.
func Diff(old, s *Snapshot) Changes {
	c := Changes{Kinds: map[model.Kind]bool{}, Ports: map[string]bool{}, Zones: map[string]bool{}}
	if old == nil {
		c.All = true
		return c
	}
	for h, z := range s.zones {
		if old.zones[h] != z {
			c.Zones[h] = true
		}
	}
	for h := range old.zones {
		if _, ok := s.zones[h]; !ok {
			c.Zones[h] = true
		}
	}
	mch, ok := s.Model.ChangesSince(old.Model.Revision)
	if !ok {
		c.All = true
		return c
	}
	bch, ok := s.BindingsChangedSince(old.Seq)
	if !ok {
		c.All = true
		return c
	}
	for _, ch := range mch {
		c.Kinds[ch.Kind] = true
		if ch.Kind != model.KindPort {
			continue
		}
		if p, ok := s.Model.Ports.Get(ch.ID); ok {
			c.Ports[p.Name] = true
		}
		if p, ok := old.Model.Ports.Get(ch.ID); ok {
			c.Ports[p.Name] = true
		}
	}
	for _, name := range bch {
		c.Ports[name] = true
	}
	return c
}

// HostsOf adds to hosts the hosts the named ports are bound on, in s.
func (s *Snapshot) HostsOf(ports map[string]bool, hosts map[string]bool) {
	for name := range ports {
		for _, b := range s.Bindings(name) {
			hosts[b.Host] = true
		}
	}
}

// Datapaths returns the datapath ids of the named hosts that the model
// knows.
func (s *Snapshot) Datapaths(hosts map[string]bool) []uint64 {
	out := make([]uint64, 0, len(hosts))
	for h := range hosts {
		if d, ok := s.dpids[h]; ok {
			out = append(out, d)
		}
	}
	return out
}
