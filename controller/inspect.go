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
	done := make(chan *SwitchState, 1)
	sw.q.call(func() { done <- sw.snapshot() })
	select {
	case st := <-done:
		return st, nil
	case <-sw.sess.Done():
		return nil, ErrNoSwitch
	case <-ctx.Done():
		return nil, ctx.Err()
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
