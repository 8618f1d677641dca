package kit

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
)

// The shell every view-driven app shares. An app gives the kit two
// things: how it digests a view change into its index (Spec.Digest), and
// how it compiles a switch's state from that index (Logic.Compile); the
// kit follows the view, computes each change once, wakes the switches
// the app says, and on every switch keeps the app's flows, groups and
// meters in sync, forgets what the switch refused (so it is stated again)
// and times every compile. Packet-ins, ticks, adoption of found state and
// port changes are optional hooks of the Logic.

// ModelKinds are the kinds the model had when the apps were written, for
// an app whose Digest handles a change of any of them. It is a list, not
// model.Kinds(): a kind added to the model later is not in it, so its
// changes rebuild every app (and wake every switch) until an app says it
// handles it.
var ModelKinds = []model.Kind{model.KindHost, model.KindNetwork, model.KindSubnet, model.KindPort, model.KindPortGroup,
	model.KindRouter, model.KindSecurityGroup, model.KindLoadBalancer, model.KindFloatingIP, model.KindMirror,
	model.KindFlowExport}

// Wake says which switches a change concerns.
type Wake struct {
	All   bool            // every switch
	Hosts map[string]bool // the switches of these hosts
	DPIDs []uint64        // and these
}

// Spec describes a view-driven app to the kit.
type Spec[X any] struct {
	// Name is the app's name (its metric loom_NAME_compile_seconds).
	Name string
	// Digest makes the index of next from prev, the index of prevSnap
	// (the zero X and a nil prevSnap for the first snapshot, and whenever
	// the change touches a model kind the app did not declare in Kinds:
	// then it builds from scratch and every switch is woken), with c the
	// change between them (computed once for all apps), and says which
	// switches to wake.
	Digest func(prev X, prevSnap, next *view.Snapshot, c view.Changes) (X, Wake)
	// Kinds are the model kinds Digest handles incrementally. A change to
	// any other kind (one added to the model later, say) rebuilds.
	Kinds []model.Kind
	// NewSwitch makes the app's logic for one switch.
	NewSwitch func(sw controller.SwitchInfo) Logic[X]
}

// State is an app's desired state on one switch.
type State struct {
	Flows  []*flow.Flow
	Groups []*flow.Group
	Meters []*flow.Meter
}

// Logic is an app's part on one switch. It may also implement Adopter,
// PacketHandler, Ticker, RejectHandler, PortWatcher and
// controller.GroupAdopter.
type Logic[X any] interface {
	// Compile computes the switch's desired state from the index of snap.
	Compile(ctx *controller.Context, x X, snap *view.Snapshot) State
}

// Adopter takes back what an earlier run left on the switch (the flows
// found with the app's cookie) before the first Compile: learned state
// its Compile then states again. Found flows Compile does not state are
// removed.
type Adopter interface {
	Adopt(ctx *controller.Context, found []*flow.Flow)
}

// PacketHandler gets the app's packet-ins.
type PacketHandler interface {
	PacketIn(ctx *controller.Context, ev controller.PacketIn)
}

// Ticker gets a Tick every TickInterval.
type Ticker interface {
	TickInterval() time.Duration
	Tick(ctx *controller.Context, now time.Time)
}

// RejectHandler hears what the switch refused, after the kit forgot it:
// handled, the kit logs nothing; resync, it compiles again at once (the
// app changed its mind: without a meter the switch refused, say).
type RejectHandler interface {
	Rejected(ctx *controller.Context, ev controller.Rejected) (handled, resync bool)
}

// PortWatcher's state depends on some of the switch's ports (its tunnel
// or uplink port, say): after a port change, the shell compiles again when
// PortsChanged says those ports differ from the last Compile's.
type PortWatcher interface {
	PortsChanged(ctx *controller.Context, snap *view.Snapshot) bool
}

// Dirtier asks the shell to compile again, though the index did not
// change: after a packet-in, a tick or an Update (env.Refresh) that
// changed the logic's own state (a learned MAC, a backend's health).
type Dirtier interface {
	Dirty() bool
}

// Synced is told after every sync (affinity pins forgotten, say).
type Synced interface {
	Synced(ctx *controller.Context, x any)
}

// App is a view-driven app built on the kit: a controller.App.
type App[X any] struct {
	spec    Spec[X]
	env     controller.Env
	view    *view.View
	compile prometheus.Histogram
	cur     atomic.Pointer[current[X]]
	seq     atomic.Uint64 // grows with every digest; switches compare it
}

type current[X any] struct {
	snap *view.Snapshot
	x    X
	seq  uint64
}

// NewApp makes the app: it takes the view (kit.View), digests its
// current snapshot and follows it.
func NewApp[X any](env controller.Env, spec Spec[X]) (*App[X], error) {
	v, err := View(env, spec.Name)
	if err != nil {
		return nil, err
	}
	h, err := controller.CompileHistogram(env.Metrics, spec.Name, spec.Name+" flows")
	if err != nil {
		return nil, err
	}
	a := &App[X]{spec: spec, env: env, view: v, compile: h}
	snap := v.Snapshot()
	var zero X
	x, _ := spec.Digest(zero, nil, snap, view.Changes{All: true})
	a.cur.Store(&current[X]{snap: snap, x: x, seq: a.seq.Add(1)})
	v.Follow(env.Context, a.digest)
	return a, nil
}

// Current returns the latest index and its snapshot.
func (a *App[X]) Current() (X, *view.Snapshot) {
	c := a.cur.Load()
	return c.x, c.snap
}

// Env is the app's environment.
func (a *App[X]) Env() controller.Env { return a.env }

// Name is the app's name.
func (a *App[X]) Name() string { return a.spec.Name }

// digest takes a new snapshot: one Changes, the app's index, the wakes.
func (a *App[X]) digest(snap *view.Snapshot) {
	prev := a.cur.Load()
	if prev.snap.Seq == snap.Seq {
		return
	}
	c := Changes(prev.snap, snap)
	px, ps := prev.x, prev.snap
	if !a.declared(c) {
		var zero X
		px, ps = zero, nil
	}
	x, w := a.spec.Digest(px, ps, snap, c)
	if ps == nil {
		w = Wake{All: true}
	}
	a.cur.Store(&current[X]{snap: snap, x: x, seq: a.seq.Add(1)})
	if w.All {
		a.env.Refresh(controller.AllSwitches)
		return
	}
	for _, dpid := range snap.Datapaths(w.Hosts) {
		a.env.Refresh(dpid)
	}
	for _, dpid := range w.DPIDs {
		a.env.Refresh(dpid)
	}
}

// declared tells whether every model kind c touches is one the app
// declared (a full change is not).
func (a *App[X]) declared(c view.Changes) bool {
	if c.All {
		return false
	}
	for k, changed := range c.Kinds {
		if !changed {
			continue
		}
		ok := false
		for _, d := range a.spec.Kinds {
			ok = ok || d == k
		}
		if !ok {
			return false
		}
	}
	return true
}

// Attach puts the app's shell on a switch.
func (a *App[X]) Attach(sw controller.SwitchInfo) controller.SwitchApp {
	return &Switch[X]{a: a, logic: a.spec.NewSwitch(sw)}
}

// Switch is the kit's shell of an app on one switch.
type Switch[X any] struct {
	a     *App[X]
	logic Logic[X]
	seq   uint64 // the digest last compiled
	set   controller.FlowSet
}

// Logic is the app's part on this switch.
func (s *Switch[X]) Logic() Logic[X] { return s.logic }

// Start adopts what the switch has and states the desired state.
func (s *Switch[X]) Start(ctx *controller.Context, found []*flow.Flow) {
	if ad, ok := s.logic.(Adopter); ok {
		ad.Adopt(ctx, found)
	}
	s.Sync(ctx, true)
}

// Handle dispatches an event.
func (s *Switch[X]) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.Update:
		d, ok := s.logic.(Dirtier)
		s.Sync(ctx, ok && d.Dirty())
	case controller.PortStatus:
		if w, ok := s.logic.(PortWatcher); ok && w.PortsChanged(ctx, s.a.cur.Load().snap) {
			s.Sync(ctx, true)
		}
	case controller.PacketIn:
		if h, ok := s.logic.(PacketHandler); ok {
			h.PacketIn(ctx, ev)
			s.syncIfDirty(ctx)
		}
	case controller.Tick:
		if t, ok := s.logic.(Ticker); ok {
			t.Tick(ctx, ev.Now)
			s.syncIfDirty(ctx)
		}
	case controller.Rejected:
		forgot := s.set.ForgetObject(ev.Object)
		if h, ok := s.logic.(RejectHandler); ok {
			handled, resync := h.Rejected(ctx, ev)
			if resync {
				s.Sync(ctx, true)
			}
			if handled {
				return
			}
		}
		ctx.Log().Error("switch refused "+s.a.spec.Name+"'s object", "object", ev.Object, "error", ev.Err,
			"stated_again_on_next_change", forgot)
	}
}

func (s *Switch[X]) syncIfDirty(ctx *controller.Context) {
	if d, ok := s.logic.(Dirtier); ok && d.Dirty() {
		s.Sync(ctx, true)
	}
}

// TickInterval is the logic's, or 0 (no ticks).
func (s *Switch[X]) TickInterval() time.Duration {
	if t, ok := s.logic.(Ticker); ok {
		return t.TickInterval()
	}
	return 0
}

// FoundGroups hands the groups the switch has to the logic, if it adopts
// groups.
func (s *Switch[X]) FoundGroups(groups []*flow.Group) {
	if g, ok := s.logic.(controller.GroupAdopter); ok {
		g.FoundGroups(groups)
	}
}

// Sync compiles the switch's state from the latest index, unless it did
// for that index already (force: anyway), and states the difference.
func (s *Switch[X]) Sync(ctx *controller.Context, force bool) {
	c := s.a.cur.Load()
	if !force && c.seq == s.seq {
		return
	}
	s.seq = c.seq
	start := time.Now()
	st := s.logic.Compile(ctx, c.x, c.snap)
	s.a.compile.Observe(time.Since(start).Seconds())
	s.set.SyncAll(ctx, st.Flows, st.Groups, st.Meters)
	if h, ok := s.logic.(Synced); ok {
		h.Synced(ctx, c.x)
	}
}

// Changes returns the change between two snapshots of a view, computed
// once however many apps ask (they follow the same view).
func Changes(prev, next *view.Snapshot) view.Changes {
	diffs.Lock()
	defer diffs.Unlock()
	for _, d := range diffs.last {
		if d.prev == prev && d.next == next {
			return d.c
		}
	}
	c := view.Diff(prev, next)
	diffs.last[diffs.n%len(diffs.last)] = diff{prev, next, c}
	diffs.n++
	return c
}

type diff struct {
	prev, next *view.Snapshot
	c          view.Changes
}

// diffs caches the last changes computed, by snapshot pair (pointers:
// snapshots of different views never match).
var diffs struct {
	sync.Mutex
	last [16]diff
	n    int
}
