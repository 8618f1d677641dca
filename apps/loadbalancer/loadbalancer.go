// Package loadbalancer is Loom's distributed load balancer: the model's
// load balancers, served on every host that has a port in a load
// balancer's network, by conntrack and an OpenFlow select group.
//
// The VIP answers ARP on the local switch with a MAC of its own (VIPMAC).
// A client's packets to VIP:port go through conntrack in the network's
// load-balancer zone on the client's host; the first packet of a
// connection picks a backend through the load balancer's select group
// (one bucket per backend, with its weight: ct(commit, nat(dst=ip:port)))
// and is sent to the backend's MAC, known from the model. Later packets
// get the connection's translation from conntrack, so a connection stays
// on its backend whatever happens to the group. The backend's replies are
// un-NATed on the client's host, on their way to the client's port
// (lb-reply, before the client's firewall), and reach the client from
// VIP:port. A backend that is its own client (hairpin) is also
// source-NATed to the VIP, in a second zone, and its packets go back out
// of the port they came in.
//
//	lb:       arp request for VIP (local port)        -> ARP reply from VIPMAC
//	          ip,proto,nw_dst=VIP,tp_dst=PORT          -> ct(zone=Z,nat,table=lb-ct)
//	          B:BP -> VIP (hairpin reply)              -> ct(zone=ZH,nat,table=lb)
//	          B:BP -> B                                -> ct(zone=Z,nat,table=lb-ct)
//	lb-ct:    +new+trk to VIP:PORT                     -> group LB (select: ct(commit,zone=Z,nat(dst=B:BP),table=lb-out))
//	          (udp, or affinity: 64 flows by tp_src or nw_src & 63, each with a bucket's actions)
//	lb-out:   B -> B:BP (hairpin, local B)             -> ct(commit,zone=ZH,nat(src=VIP),table=lb-out)
//	          in_port=B,dl_dst=VIPMAC,nw_dst=B         -> dl_src=VIPMAC,dl_dst=B's MAC,IN_PORT
//	          dl_dst=VIPMAC,nw_dst=B                   -> dl_dst=B's MAC, next (overlay-arp ... overlay-forward)
//	lb-reply: ip,proto,nw_src=B,tp_src=BP              -> ct(zone=Z,nat,table=next)
//
// Clients are the ports of the load balancer's network (routed clients
// from other networks are not balanced).
package loadbalancer

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/view"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// Name is the app's registered name.
const Name = "loadbalancer"

func init() { controller.Register(Name, newApp) }

type app struct {
	env  controller.Env
	snap atomic.Pointer[view.Snapshot]
	// backends are snap's health-checked backends by host, computed once
	// per snapshot for every switch.
	backends atomic.Pointer[map[string][]localBackend]
	health   *health
}

func newApp(env controller.Env) (controller.App, error) {
	if env.View == nil {
		return nil, errors.New("the load balancer needs the model view (controller.Config.View)")
	}
	a := &app{env: env}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	a.health = &health{st: map[hkey]*hstate{}, log: log, onChange: func() { env.Refresh(controller.AllSwitches) },
		events: env.Events}
	a.store(env.View.Snapshot())
	env.View.Follow(env.Context, a.digest)
	running.Store(a)
	return a, nil
}

// running is the app of the running controller, for BackendStatus.
var running atomic.Pointer[app]

// BackendStatus returns the health of a load balancer's backends as the
// running app sees them (every backend of the model, up unless its health
// check took it down), and false when the app does not run.
func BackendStatus(lb *model.LoadBalancer) ([]Status, bool) {
	a := running.Load()
	if a == nil {
		return nil, false
	}
	a.health.mu.Lock()
	defer a.health.mu.Unlock()
	out := []Status{}
	for _, b := range lb.Backends {
		port := b.Port
		if port == 0 {
			port = lb.Port
		}
		st := Status{LoadBalancer: lb.ID, IP: b.IP, Port: port, Up: true}
		if s := a.health.st[hkey{lb.ID, b.IP, port}]; s != nil {
			st.Up, st.Since, st.Checked = s.up, s.since, true
		}
		out = append(out, st)
	}
	return out, true
}

// digest takes a new view snapshot and wakes every switch, unless there
// was and is no load balancer (then nothing the app compiles changed).
func (a *app) digest(snap *view.Snapshot) {
	old := a.snap.Load()
	if old != nil && old.Seq == snap.Seq {
		return
	}
	a.store(snap)
	if old != nil && old.Model.LoadBalancers.Len() == 0 && snap.Model.LoadBalancers.Len() == 0 {
		return
	}
	a.env.Refresh(controller.AllSwitches)
}

// store makes snap the app's snapshot, with its health-checked backends.
func (a *app) store(snap *view.Snapshot) {
	bes := checkedBackends(snap)
	a.backends.Store(&bes)
	a.snap.Store(snap)
}

func (a *app) Name() string { return Name }

func (a *app) Attach(sw controller.SwitchInfo) controller.SwitchApp {
	return &switchApp{a: a, dpid: sw.DatapathID}
}

// PipelineTables are the load balancer's tables as the runtime realized
// them.
func PipelineTables() Tables {
	after := func(t *controller.Table) uint8 {
		n, _ := t.Next() // the overlay's tables follow lb-out and lb-reply
		return n.ID()
	}
	return Tables{LB: controller.TableLB.ID(), CT: controller.TableLBCT.ID(), Out: controller.TableLBOut.ID(),
		AfterOut: after(controller.TableLBOut), Reply: controller.TableLBReply.ID(), AfterReply: after(controller.TableLBReply)}
}

type switchApp struct {
	a         *app
	dpid      uint64
	seq, hseq uint64 // view and health changes last compiled
	set       controller.FlowSet
	// The health-checked backends bound on this switch, as of view
	// snapshot checkedSeq.
	checkedSeq  uint64
	checkedList []localBackend
}

// checked returns the health-checked backends bound on this switch.
func (s *switchApp) checked() []localBackend {
	host, ok := s.a.snap.Load().HostByDatapath(s.dpid)
	if !ok {
		return nil
	}
	return (*s.a.backends.Load())[host.Name]
}

// TickInterval paces the health checks' probes and timeouts.
func (s *switchApp) TickInterval() time.Duration { return 50 * time.Millisecond }

// Statuses returns the health of the health-checked backends.
func (a *app) Statuses() []Status { return a.health.Statuses() }

func (s *switchApp) Start(ctx *controller.Context, _ []*flow.Flow) { s.sync(ctx, true) }

func (s *switchApp) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.Update:
		s.sync(ctx, false)
	case controller.Tick:
		s.a.health.tick(ctx, s.checked(), controller.TableLBReply.ID(), ev.Now)
	case controller.PacketIn:
		if ev.Frame != nil {
			s.a.health.answer(ctx, s.checked(), controller.TableLBReply.ID(), ev.Frame, time.Now())
		}
	case controller.Rejected:
		if f, ok := ev.Object.(*flow.Flow); ok && s.set.Forget(f) {
			ctx.Log().Error("switch refused a load balancer flow", "flow", f, "error", ev.Err)
			return
		}
		ctx.Log().Error("switch refused a load balancer object", "object", ev.Object, "error", ev.Err)
	}
}

func (s *switchApp) sync(ctx *controller.Context, force bool) {
	snap := s.a.snap.Load()
	s.a.health.mu.Lock()
	hseq := s.a.health.seq
	s.a.health.mu.Unlock()
	if !force && snap.Seq == s.seq && hseq == s.hseq {
		return
	}
	s.seq, s.hseq = snap.Seq, hseq
	t := PipelineTables()
	flows, groups := Compile(snap, s.dpid, t, s.a.health.up)
	flows = append(flows, probeFlowsOf(s.checked(), t)...)
	s.set.Sync(ctx, flows, groups)
}
