package controller

import "github.com/loom-sdn/loom/southbound/openflow/flow"

// FlowSet is what an app declared on one switch, for apps that compute a
// switch's whole state at once (from the view, say): Sync takes the new
// state and states only the difference through the Context, so an
// unchanged flow costs a map lookup and the switch sees nothing. Like the
// rest of a SwitchApp, it belongs to the switch's goroutine.
type FlowSet struct {
	flows  map[flow.Key]*setFlow
	gen    uint32 // the current Sync's: flows not marked with it go
	key    []byte // reused to look flows up without allocating
	groups map[uint32]*flow.Group
	meters map[uint32]*flow.Meter
}

// setFlow is a flow of the set and the last Sync that stated it.
type setFlow struct {
	f   *flow.Flow
	gen uint32
}

// SyncAll is Sync with meters: new and changed meters are set before the
// flows that use them, those no longer wanted deleted after.
func (s *FlowSet) SyncAll(ctx *Context, flows []*flow.Flow, groups []*flow.Group, meters []*flow.Meter) (changed, deleted int) {
	nm := make(map[uint32]*flow.Meter, len(meters))
	for _, m := range meters {
		nm[m.ID] = m
		if old, ok := s.meters[m.ID]; !ok || !old.Equal(m) {
			changed++
			if err := ctx.SetMeter(m); err != nil {
				ctx.Log().Error("cannot set meter", "meter", m, "error", err)
				delete(nm, m.ID)
			}
		} else {
			nm[m.ID] = old
		}
	}
	c, d := s.Sync(ctx, flows, groups)
	for id := range s.meters {
		if _, ok := nm[id]; !ok {
			deleted++
			ctx.DeleteMeter(id)
		}
	}
	s.meters = nm
	return changed + c, deleted + d
}

// Sync makes flows and groups the app's state on the switch: new and
// changed ones are added (groups before the flows that use them), those
// no longer wanted deleted (flows before their groups). It returns how
// many flows and groups it added or changed and deleted; errors (a flow in
// a table the app does not own) are logged. A flow or group handed to
// Sync is the runtime's from then on (it keeps the pointer): never change
// it afterwards; hand the same pointer again to state it unchanged.
func (s *FlowSet) Sync(ctx *Context, flows []*flow.Flow, groups []*flow.Group) (changed, deleted int) {
	ng := make(map[uint32]*flow.Group, len(groups))
	for _, g := range groups {
		ng[g.ID] = g
		if old, ok := s.groups[g.ID]; !ok || old != g && !old.Equal(g) {
			changed++
			if err := ctx.SetGroup(g); err != nil {
				ctx.Log().Error("cannot set group", "group", g, "error", err)
			}
		}
	}
	// Flows are marked with this Sync's generation in place (no map is
	// built): an unchanged flow costs one lookup that allocates nothing.
	if s.flows == nil {
		s.flows = make(map[flow.Key]*setFlow, len(flows))
	}
	s.gen++
	for _, f := range flows {
		s.key = f.AppendKey(s.key[:0])
		e, ok := s.flows[flow.Key(s.key)]
		// The same pointer is the same flow: an app that keeps what it
		// compiled (a cache) costs a map lookup per flow.
		if ok && (e.f == f || sameIgnoringCookie(e.f, f)) {
			e.gen = s.gen
			continue
		}
		changed++
		if err := ctx.AddFlow(f); err != nil {
			ctx.Log().Error("cannot add flow", "flow", f, "error", err)
			if ok { // the old one goes; the new one is tried again on the next Sync
				deleted++
				ctx.DeleteFlow(e.f)
				delete(s.flows, flow.Key(s.key))
			}
			continue
		}
		if ok {
			e.f, e.gen = f, s.gen
		} else {
			s.flows[flow.Key(s.key)] = &setFlow{f: f, gen: s.gen}
		}
	}
	for k, e := range s.flows {
		if e.gen != s.gen {
			deleted++
			ctx.DeleteFlow(e.f)
			delete(s.flows, k)
		}
	}
	for id := range s.groups {
		if _, ok := ng[id]; !ok {
			deleted++
			ctx.DeleteGroup(id)
		}
	}
	s.groups = ng
	return changed, deleted
}

// Forget drops f from the set if it is the flow the set holds under f's
// key (the switch refused it, say): the next Sync adds it again.
func (s *FlowSet) Forget(f *flow.Flow) bool {
	if cur, ok := s.flows[f.Key()]; ok && cur.f == f {
		delete(s.flows, f.Key())
		return true
	}
	return false
}

// ForgetObject drops a flow, group or meter the switch refused (the
// Object of a Rejected event) if the set holds it, so that the next sync
// states it again; it reports whether it did.
func (s *FlowSet) ForgetObject(o any) bool {
	switch o := o.(type) {
	case *flow.Flow:
		return s.Forget(o)
	case *flow.Group:
		if cur, ok := s.groups[o.ID]; ok && cur.Equal(o) {
			delete(s.groups, o.ID)
			return true
		}
	case *flow.Meter:
		if cur, ok := s.meters[o.ID]; ok && cur.Equal(o) {
			delete(s.meters, o.ID)
			return true
		}
	}
	return false
}

// Len is the number of flows in the set.
func (s *FlowSet) Len() int { return len(s.flows) }

// sameIgnoringCookie compares a flow the runtime holds (AddFlow set its
// cookie's owner bits) with a newly computed one.
func sameIgnoringCookie(old, f *flow.Flow) bool {
	g := *f
	g.Cookie = old.Cookie&^CookieLowMask | f.Cookie&CookieLowMask
	return old.Equal(&g)
}
