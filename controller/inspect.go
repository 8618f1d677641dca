package controller

import (
	"context"
	"fmt"
	"sort"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// SwitchState is a snapshot of one switch as the runtime sees it: its
// ports and the desired state the runtime keeps it in.
type SwitchState struct {
	Info   SwitchInfo
	Ports  []wire.Port
	Flows  []OwnedFlow
	Groups []string
	Meters []string
}

// OwnedFlow is a desired flow and the app that owns it.
type OwnedFlow struct {
	Owner string `json:"owner"`
	Flow  string `json:"flow"`
}

// ErrNoSwitch is returned for a datapath id that is not connected.
var ErrNoSwitch = fmt.Errorf("no such switch")

// Inspect returns a snapshot of a connected switch. It is taken on the
// switch's own goroutine, so it is consistent and needs no locks.
func (c *Controller) Inspect(ctx context.Context, dpid uint64) (*SwitchState, error) {
	sw, ok := c.Switch(dpid)
	if !ok {
		return nil, ErrNoSwitch
	}
	var st *SwitchState
	err := sw.onLoop(ctx, func() { st = sw.snapshot() })
	return st, err
}

// onLoop runs fn on the switch goroutine and waits for it.
func (sw *Switch) onLoop(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	sw.q.call(func() { fn(); close(done) })
	select {
	case <-done:
		return nil
	case <-sw.sess.Done():
		return ErrNoSwitch
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (sw *Switch) snapshot() *SwitchState {
	st := &SwitchState{Info: sw.info}
	for _, p := range sw.ports {
		st.Ports = append(st.Ports, p)
	}
	sort.Slice(st.Ports, func(i, j int) bool { return st.Ports[i].PortNo < st.Ports[j].PortNo })
	flows := make([]*flow.Flow, 0, len(sw.flows))
	for _, f := range sw.flows {
		flows = append(flows, f)
	}
	sortFlows(flows)
	for _, f := range flows {
		st.Flows = append(st.Flows, OwnedFlow{Owner: sw.c.ownerName(uint16(f.Cookie >> CookieShift)), Flow: f.String()})
	}
	for _, g := range sw.groups {
		st.Groups = append(st.Groups, g.obj.String())
	}
	for _, m := range sw.meters {
		st.Meters = append(st.Meters, m.obj.String())
	}
	sort.Strings(st.Groups)
	sort.Strings(st.Meters)
	return st
}

func (c *Controller) ownerName(id uint16) string {
	if id == cookieOwnerRuntime {
		return "runtime"
	}
	for _, a := range c.apps {
		if a.id == id {
			return a.name
		}
	}
	return "unknown"
}

// FlowView compares one flow of a switch's desired state with what the
// switch has installed.
type FlowView struct {
	Flow  string `json:"flow"`
	Owner string `json:"owner"`
	// State is "ok" (installed as desired), "missing" (desired, not
	// installed), "differs" (installed with other actions, cookie or
	// timeouts; Installed shows it), "learned" (written by the switch in
	// a learned table: kept) or "unexpected" (installed, not desired: the
	// next audit removes it).
	State     string `json:"state"`
	Installed string `json:"installed,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
}

// Flows reads the switch's flow table and compares it with the desired
// state, in pipeline order.
func (c *Controller) Flows(ctx context.Context, dpid uint64) ([]FlowView, error) {
	sw, ok := c.Switch(dpid)
	if !ok {
		return nil, ErrNoSwitch
	}
	type installed struct {
		f              *flow.Flow
		packets, bytes uint64
	}
	have := map[flow.Key]installed{}
	err := sw.eachFlow(ctx, func(f *flow.Flow, fs *wire.FlowStats) {
		have[f.Key()] = installed{f, fs.PacketCount, fs.ByteCount}
	})
	if err != nil {
		return nil, err
	}
	var desired []*flow.Flow
	err = sw.onLoop(ctx, func() {
		desired = make([]*flow.Flow, 0, len(sw.flows))
		for _, f := range sw.flows {
			desired = append(desired, f)
		}
	})
	if err != nil {
		return nil, err
	}
	var all []*flow.Flow
	var out []FlowView
	views := map[*flow.Flow]FlowView{}
	for _, d := range desired {
		v := FlowView{Flow: d.String(), Owner: c.ownerName(uint16(d.Cookie >> CookieShift)), State: "missing"}
		if h, ok := have[d.Key()]; ok {
			v.Packets, v.Bytes, v.State = h.packets, h.bytes, "ok"
			if !h.f.SameEntry(d) {
				v.State, v.Installed = "differs", h.f.String()
			}
			delete(have, d.Key())
		}
		views[d] = v
		all = append(all, d)
	}
	for _, h := range have {
		state := "unexpected"
		if c.learnedFlow(h.f) {
			state = "learned"
		}
		views[h.f] = FlowView{Flow: h.f.String(), Owner: c.ownerName(uint16(h.f.Cookie >> CookieShift)),
			State: state, Packets: h.packets, Bytes: h.bytes}
		all = append(all, h.f)
	}
	sortFlows(all)
	for _, f := range all {
		out = append(out, views[f])
	}
	return out, nil
}

// sortFlows orders flows as a packet meets them: by table, then by
// descending priority.
func sortFlows(flows []*flow.Flow) {
	sort.Slice(flows, func(i, j int) bool {
		a, b := flows[i], flows[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.String() < b.String()
	})
}
