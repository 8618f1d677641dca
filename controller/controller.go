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
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Config tunes the runtime.
type Config struct {
	// Apps to run, by registered name.
	Apps []string
	// PacketInRate is the rate (packets/s) of the meter on table-miss
	// flows that go to the controller; 0 disables the meter.
	PacketInRate uint32
	// MaxQueuedPacketIns and MaxQueuedPacketInBytes bound the packet-ins
	// waiting for one switch's goroutine (default 4096 and 4 MiB); more
	// are dropped.
	MaxQueuedPacketIns     int
	MaxQueuedPacketInBytes int
	// MaxQueuedBytes bounds the other messages from one switch (PORT_STATUS,
	// FLOW_REMOVED, ERROR, BARRIER_REPLY) waiting for its goroutine
	// (default 4 MiB). They cannot be dropped without losing state, so a
	// switch that sends more than its goroutine handles is disconnected
	// (loom_openflow_sessions_closed_total{reason="queue_overflow"}).
	MaxQueuedBytes int
	// AuditInterval is how often every switch is re-read and repaired; 0
	// disables audits.
	AuditInterval time.Duration
	// Bundles sends reconciliations as atomic ONF bundles when the switch
	// supports them.
	Bundles bool
	// Events, when set, receives switch and port changes ("switch"
	// topic: up, down; "port" topic: added, deleted, modified).
	Events *events.Bus
	// Observer, when set, is told of every switch connect and disconnect
	// (on the session's goroutine; it must not block for long).
	Observer func(info SwitchInfo, connected bool)
	// Services are what the program shares with its apps, by name, and
	// the runtime passes on without looking (Env.Service): the model's
	// view, the topology graph (apps/kit names them and has typed
	// accessors), or a plugin's own.
	Services map[string]any
	// AppOptions are each app's options, by app name (loomd
	// --app-opt NAME.KEY=VALUE); an app gets its own in Env.Options and
	// refuses keys it does not know.
	AppOptions map[string]map[string]string
	// Mastership, when set, shares the switches with other controllers
	// by OpenFlow roles: it is told of every switch that connects and
	// answers with SetRole; until then, and while it is not the master,
	// this controller computes the switch's desired state and sends
	// nothing. Nil: every switch is this controller's alone.
	Mastership Mastership
}

type appEntry struct {
	id   uint16
	name string
	app  App
}

// Controller is the runtime. It implements openflow.Handler.
type Controller struct {
	cfg     Config
	log     *slog.Logger
	apps    []appEntry
	pipe    *Pipeline
	metrics *metrics
	ctx     context.Context

	mu       sync.Mutex
	switches map[uint64]*Switch
	roles    map[uint64]Role // as SetRole last said
	wg       sync.WaitGroup
}

// New creates the runtime with the configured apps and realizes the
// pipeline for them. ctx bounds every switch goroutine.
func New(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Controller, error) {
	if cfg.MaxQueuedPacketIns == 0 {
		cfg.MaxQueuedPacketIns = 4096
	}
	if cfg.MaxQueuedPacketInBytes == 0 {
		cfg.MaxQueuedPacketInBytes = 4 << 20
	}
	if cfg.MaxQueuedBytes == 0 {
		cfg.MaxQueuedBytes = 4 << 20
	}
	c := &Controller{cfg: cfg, log: log, ctx: ctx, switches: make(map[uint64]*Switch), roles: map[uint64]Role{}, metrics: newMetrics(reg)}
	active := map[string]bool{}
	for name := range cfg.AppOptions {
		if !slices.Contains(cfg.Apps, name) {
			return nil, fmt.Errorf("options for app %q, which does not run (apps: %s)", name, strings.Join(cfg.Apps, ","))
		}
	}
	factories := make([]Factory, len(cfg.Apps))
	ids := make([]uint16, len(cfg.Apps))
	for i, name := range cfg.Apps {
		if active[name] {
			return nil, fmt.Errorf("app %q listed twice", name)
		}
		f, err := lookup(name)
		if err != nil {
			return nil, err
		}
		declMu.Lock()
		id, ok := owners[name]
		declMu.Unlock()
		if !ok {
			return nil, fmt.Errorf("app %q has no owner id: declare one (controller.DeclareOwner)", name)
		}
		active[name], factories[i], ids[i] = true, f, id
	}
	// The pipeline is realized before the apps are made: they get it in
	// Env.
	c.pipe = realize(active)
	for i, name := range cfg.Apps {
		id := ids[i]
		app, err := factories[i](Env{Context: ctx, Log: log.With("app", name), Metrics: reg, Events: cfg.Events, services: cfg.Services,
			Options: cfg.AppOptions[name], Pipeline: c.pipe, Refresh: func(dpid uint64) { c.refresh(id, dpid) }})
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", name, err)
		}
		c.apps = append(c.apps, appEntry{id: id, name: name, app: app})
	}
	return c, nil
}

// learnedFlow tells a flow the switch learned (a non-miss flow of a
// learned table), which the reconciler leaves alone.
func (c *Controller) learnedFlow(f *flow.Flow) bool {
	t := c.pipe.Table(f.Table)
	return t != nil && t.Learned && f.Priority != 0
}

// Pipeline returns the pipeline this controller realized.
func (c *Controller) Pipeline() *Pipeline { return c.pipe }

// Tables returns the realized pipeline's tables, in order.
func (c *Controller) Tables() []*Table { return c.pipe.Tables() }

func (c *Controller) tableByID(id uint8) *Table { return c.pipe.Table(id) }

// App returns the running app of that name, or nil: what a program
// wires to the app's own API (loomd hands the load balancer's backend
// health to the REST API).
func (c *Controller) App(name string) App {
	for _, a := range c.apps {
		if a.name == name {
			return a.app
		}
	}
	return nil
}

func (c *Controller) appByID(id uint16) App {
	for _, a := range c.apps {
		if a.id == id {
			return a.app
		}
	}
	return nil
}

// Connected starts the switch goroutine for a new session.
func (c *Controller) Connected(s *openflow.Session) {
	sw := newSwitch(c, s)
	c.mu.Lock()
	old := c.switches[sw.dpid]
	c.switches[sw.dpid] = sw
	c.mu.Unlock()
	if old != nil {
		old.sess.Close(fmt.Errorf("replaced by a new connection from %s", s.RemoteAddr()))
	}
	s.Value = sw
	c.metrics.switches.Inc()
	if c.cfg.Observer != nil {
		c.cfg.Observer(sw.info, true)
	}
	sw.log.Info("switch connected", "remote", s.RemoteAddr(), "ports", len(s.Ports),
		"software", s.Desc.Software, "tables", s.Features.NTables)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		sw.run(c.ctx)
	}()
}

// Message hands a switch's asynchronous message to its switch (see
// Switch.message).
func (c *Controller) Message(s *openflow.Session, h wire.Header, msg []byte) {
	s.Value.(*Switch).message(h, msg)
}

// ReasonQueueOverflow labels the sessions closed because their switch
// sent more than the controller could queue (Config.MaxQueuedBytes).
const ReasonQueueOverflow = "queue_overflow"

// The OpenFlow server reports its policy decisions to the controller's
// metrics.
var _ openflow.PolicyObserver = (*Controller)(nil)

// SessionRefused counts a session the OpenFlow server refused or closed
// by policy (openflow.PolicyObserver).
func (c *Controller) SessionRefused(reason string) {
	c.metrics.sessionsClosed.WithLabelValues(reason).Inc()
}

// EchoReplyDropped counts an echo reply not queued for a switch that does
// not read (openflow.PolicyObserver).
func (c *Controller) EchoReplyDropped() { c.metrics.echoRepliesDropped.Inc() }

// Disconnected forgets the switch. Its flows stay on the switch; they are
// reconciled when it comes back.
func (c *Controller) Disconnected(s *openflow.Session, err error) {
	sw := s.Value.(*Switch)
	c.mu.Lock()
	if c.switches[sw.dpid] == sw {
		delete(c.switches, sw.dpid)
	}
	c.mu.Unlock()
	c.metrics.switches.Dec()
	if c.cfg.Observer != nil {
		c.cfg.Observer(sw.info, false)
	}
	if m := c.cfg.Mastership; m != nil {
		c.mu.Lock()
		gone := c.switches[sw.dpid] == nil
		c.mu.Unlock()
		if gone {
			m.Disconnected(sw.dpid)
		}
	}
	c.cfg.Events.Publish(events.Event{Topic: "switch", Type: "down", Kind: "switch", ID: dpidString(sw.dpid),
		Object: map[string]string{"datapath_id": dpidString(sw.dpid), "reason": errString(err)}})
	sw.log.Info("switch disconnected", "reason", errString(err))
}

func dpidString(dpid uint64) string { return fmt.Sprintf("%016x", dpid) }

func errString(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}

// Switch returns a connected switch.
func (c *Controller) Switch(dpid uint64) (*Switch, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sw, ok := c.switches[dpid]
	return sw, ok
}

// Switches describes the connected switches, by datapath id.
func (c *Controller) Switches() []SwitchInfo {
	c.mu.Lock()
	out := make([]SwitchInfo, 0, len(c.switches))
	for _, sw := range c.switches {
		out = append(out, sw.info)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].DatapathID < out[j].DatapathID })
	return out
}

// refresh queues an Update for the app on one switch or all of them,
// unless one is already queued there.
func (c *Controller) refresh(app uint16, dpid uint64) {
	c.mu.Lock()
	var sws []*Switch
	if dpid == AllSwitches {
		sws = make([]*Switch, 0, len(c.switches))
		for _, sw := range c.switches {
			sws = append(sws, sw)
		}
	} else if sw, ok := c.switches[dpid]; ok {
		sws = append(sws, sw)
	}
	c.mu.Unlock()
	for _, sw := range sws {
		if a := sw.slotByID(app); a != nil && a.updatePending.CompareAndSwap(false, true) {
			sw.q.call(func() {
				a.updatePending.Store(false)
				a.handler.Handle(&a.ctx, Update{})
			})
		}
	}
}

// Wait waits for every switch goroutine to end (after ctx is done).
func (c *Controller) Wait() { c.wg.Wait() }
