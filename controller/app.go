// Package controller is Loom's runtime: the app registry, the pipeline,
// the per-switch desired state (flows, groups, meters) and its
// reconciliation with what each switch reports, and event dispatch.
//
// Apps compute; the runtime programs switches. An app never sees a
// connection: it gets events and a Context through which it states what it
// wants on a switch, and the runtime turns the difference between that and
// the switch into the fewest messages, confirmed by barrier.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// App is a controller application. One instance serves all switches.
type App interface {
	Name() string
	// Attach is called on a switch's goroutine when it connects and
	// returns the app's handler for that switch. Everything the handler
	// keeps is per switch and touched only from that goroutine: no locks.
	Attach(sw SwitchInfo) SwitchApp
}

// SwitchWatcher is implemented by apps that want to know when switches
// come and go (a topology app, for example). The calls come from the
// switches' goroutines, concurrently for different switches.
type SwitchWatcher interface {
	SwitchUp(sw SwitchInfo)
	SwitchDown(sw SwitchInfo)
}

// Ticker is implemented by a SwitchApp that wants a Tick event every
// TickInterval (an LLDP sender, an aging table, a health checker).
type Ticker interface {
	TickInterval() time.Duration
}

// Tick is the periodic event of a Ticker.
type Tick struct{ Now time.Time }

func (Tick) event() {}

// GroupAdopter is implemented by a SwitchApp that rebuilds state from the
// groups a switch already has (left by an earlier run of the controller):
// FoundGroups gets every group the switch reported, right before Start.
// Groups the app does not declare again are removed, as flows are.
type GroupAdopter interface {
	FoundGroups(groups []*flow.Group)
}

// SwitchApp is an app's presence on one switch.
type SwitchApp interface {
	// Start declares the app's desired state on a switch that just
	// connected, through ctx. found holds the flows the switch already
	// has with this app's cookie (left by an earlier run of the
	// controller, or kept across a reconnect): an app re-adds the ones it
	// still wants, and rebuilds any state it learned, instead of making
	// the switch relearn. Flows it does not re-add are removed.
	Start(ctx *Context, found []*flow.Flow)
	// Handle handles one event for this switch.
	Handle(ctx *Context, ev Event)
}

// SwitchInfo describes a connected switch.
type SwitchInfo struct {
	DatapathID uint64
	Remote     string
	Desc       wire.Desc
	Features   wire.Features
}

// Env is what an app's factory gets.
type Env struct {
	// Context ends when the controller stops: an app's own goroutines
	// should end with it.
	Context context.Context
	Log     *slog.Logger
	Metrics prometheus.Registerer
	// Options are the app's own options (Config.AppOptions[name]): an
	// app refuses keys it does not know (see CheckOptions).
	Options map[string]string
	// Pipeline is the controller's realized pipeline: the ids of the
	// tables the app declared (Pipeline.ID).
	Pipeline *Pipeline
	services map[string]any
	// Events is the change feed behind /events (Config.Events); nil
	// when none was configured (Publish on a nil Bus does nothing).
	Events *events.Bus
	// Refresh queues an Update event for this app on the switch with
	// the datapath id, or on every connected switch for AllSwitches. It
	// may be called from any goroutine, and calls that come before the
	// event is handled coalesce into one: an app that recomputes from
	// its inputs' latest state on Update can call it on every change.
	Refresh func(dpid uint64)
}

// Service returns what the program shares under name
// (Config.Services), or nil.
func (e Env) Service(name string) any { return e.services[name] }

// CheckOptions refuses an option key that is not one of known.
func (e Env) CheckOptions(known ...string) error {
	for k := range e.Options {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return fmt.Errorf("unknown option %q: the app takes none", k)
			}
			return fmt.Errorf("unknown option %q (options: %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// AllSwitches addresses Env.Refresh to every connected switch.
const AllSwitches uint64 = 0

// Update is the event Env.Refresh queues: something the app computes from
// (the view, for example) changed, and the app should bring the switch's
// desired state up to date.
type Update struct{}

func (Update) event() {}

// Factory creates an app.
type Factory func(env Env) (App, error)

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes an app available under name. Apps call it from init(),
// so linking an app's package into the binary is all it takes to offer it.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("controller: app " + name + " registered twice")
	}
	registry[name] = f
}

// Registered lists the registered app names, sorted.
func Registered() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (Factory, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock() // before Registered, which locks regMu again
	if !ok {
		return nil, fmt.Errorf("unknown app %q (registered: %s)", name, strings.Join(Registered(), ", "))
	}
	return f, nil
}

// CheckApps refuses an empty list or an app no package registered, naming
// the registered ones: what New would refuse, for a program to check its
// command line before it starts anything.
func CheckApps(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no app named (registered: %s)", strings.Join(Registered(), ", "))
	}
	for _, n := range names {
		if _, err := lookup(n); err != nil {
			return err
		}
	}
	return nil
}

// Event is something that happened on a switch.
type Event interface{ event() }

// PortStatus reports a port added, deleted or modified (link up/down).
type PortStatus struct {
	Reason uint8 // wire.PortAdded, PortDeleted or PortModified
	Port   wire.Port
}

// PacketIn is a packet sent to the controller. The frame is decoded once
// by the runtime. Both are valid only during Handle.
type PacketIn struct {
	Msg   *wire.PacketIn
	Frame *packet.Frame
	// FrameErr is set when the frame's upper layers are malformed; what
	// decoded before the error is still in Frame.
	FrameErr error
}

// FlowRemoved reports a flow of the app that expired on the switch (idle
// or hard timeout, or evicted). The runtime has already dropped it from
// the desired state.
type FlowRemoved struct {
	Flow   *flow.Flow
	Reason uint8
}

// Rejected reports that the switch refused one of the app's flows, groups
// or meters. The object is no longer part of the desired state.
type Rejected struct {
	Err    *wire.Error
	Object fmt.Stringer
}

func (PortStatus) event()  {}
func (PacketIn) event()    {}
func (FlowRemoved) event() {}
func (Rejected) event()    {}

// Flow-removed reasons. Only expiry (idle, hard, eviction) takes a flow
// out of the desired state; a flow deleted by anyone else is restored.
const (
	RemovedIdle     uint8 = 0
	RemovedHard     uint8 = 1
	RemovedDelete   uint8 = 2
	RemovedEviction uint8 = 5 // an OpenFlow 1.4 value OVS also sends on 1.3
)
