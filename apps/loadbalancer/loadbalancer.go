// Package loadbalancer is Loom's distributed load balancer: the model's
// load balancers, served on every host that has a client port, by
// conntrack and an OpenFlow select group.
//
// A load balancer's clients are the ports of its network and of the
// networks routed to it (with a subnet on a router that has one of its
// network's); its backends are ports of those networks too. In its own
// network the VIP answers ARP on the local switch with a MAC of its own
// (VIPMAC); routed clients send to their gateway. A client's packets to
// VIP:port are marked (reg3) and go through conntrack in its network's
// load-balancer zone on the client's host; the first packet of a
// connection picks a backend through the select group of the load
// balancer and the client's network (one bucket per backend that is up,
// with its weight: ct(commit, nat(dst=ip:port))) and is sent to the
// backend's MAC, or to the gateway when the backend is in another network
// (the router, further down the pipeline, routes it). Later packets get
// the connection's translation from conntrack, so a connection stays on
// its backend whatever happens to the group. The backend's replies are
// un-NATed on the client's host, on their way to the client's port
// (lb-reply, before the client's firewall), and reach the client from
// VIP:port. A backend that is its own client (hairpin) is also
// source-NATed to the VIP, in a second zone, and both ways reach it
// through its ingress firewall, with in_port cleared.
//
// A known limit, shared with every conntrack-NAT load balancer
// (kube-proxy, OVN): a client that connects to a backend directly from
// the source port of a VIP connection to that backend still in
// conntrack (TIME_WAIT, 30 s) has the backend's replies taken for the
// old connection's and translated back to the VIP. Conntrack cannot tell
// the two apart: the backend picks its new sequence numbers inside the
// old connection's window. Linux clients pick such a port only among
// many connections; tests connect directly from another port range.
//
// Each load balancer's select group on a host takes its id from the
// host's allocator (kit.LBSelectUser, kit.LBGroup), as zones do, so two
// load balancers never share one.
//
// With affinity_seconds, the bucket that takes a client's first
// connection also puts its backend in reg4/reg2 and resubmits to
// lb-learn, whose flow has the switch learn a flow in lb-affinity
// (client address and VIP:port -> the backend in reg4/reg2,
// idle_timeout affinity_seconds; OVS does not run learn inside a bucket);
// lb looks it up, and lb-ct sends the client's new connections to that
// backend while it is up.
//
//	lb:          arp request for VIP (own network)     -> ARP reply from VIPMAC
//	             ip,proto,nw_dst=VIP,tp_dst=PORT        -> reg3=1, [resubmit(lb-affinity)], ct(zone=Z,nat,table=lb-ct)
//	             B:BP -> VIP (hairpin reply), not yet   -> reg3=3, ct(zone=ZH,nat,table=lb)
//	             B:BP -> B                              -> reg3=3, ct(zone=Z,nat,table=lb-ct)
//	lb-ct:       +new+trk to VIP:PORT, reg4=B,reg2=BP   -> ct(commit,zone=Z,nat(dst=B:BP),table=lb-out)   (pinned)
//	             +new+trk to VIP:PORT                   -> group (select: [reg4=B,reg2=BP,resubmit(lb-learn)], ct(commit,zone=Z,nat(dst=B:BP),table=lb-out))
//	             (udp: 64 flows by tp_src & 63, each with a bucket's actions)
//	lb-affinity: (learned) client, VIP:PORT             -> reg4=B, reg2=BP
//	lb-learn:    to VIP:PORT                            -> learn(lb-affinity: client, VIP:PORT -> reg4, reg2)
//	lb-out:      B -> B:BP (hairpin, local B), not yet  -> reg3=5, ct(commit,zone=ZH,nat(src=VIP),table=lb-out)
//	             reg3=1,in_port=B,nw_dst=B              -> dl_src=VIPMAC,dl_dst=B's MAC,in_port=0, next
//	             reg3=1,nw_dst=B (B in the network)     -> dl_dst=B's MAC, next (overlay-arp ... overlay-forward)
//	             reg3=1 (routed network)                -> dl_dst=gateway MAC, next (to the router)
//	lb-reply:    ip,proto,tp_src=BP                     -> ct(zone=Z,nat,table=next)
package loadbalancer

import (
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
)

// Name is the app's registered name.
const Name = "loadbalancer"

func init() { controller.Register(Name, newApp) }

type app struct {
	kit    *kit.App[*index]
	health *health
}

// state is a view snapshot and its index, built once per snapshot for
// every switch.
type state struct {
	snap *view.Snapshot
	ix   *index
}

func newApp(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	a := &app{}
	log := env.Log
	if log == nil {
		log = slog.Default()
	}
	a.health = &health{st: map[hkey]*hstate{}, log: log, onChange: a.healthChanged, events: env.Events}
	var err error
	a.kit, err = kit.NewApp(env, kit.Spec[*index]{
		Name: Name,
		// Every kind it handles: update redoes the networks whose ports
		// changed, and the rest of the model in full.
		Kinds:  kit.ModelKinds,
		Digest: a.digest,
		NewSwitch: func(sw controller.SwitchInfo) kit.Logic[*index] {
			return &switchApp{a: a, dpid: sw.DatapathID, pins: map[uint64]bool{}}
		},
	})
	return &lbApp{a.kit, a}, err
}

// lbApp is the app as the runtime runs it: the kit's, with the backends'
// health for the API (BackendStatus).
type lbApp struct {
	*kit.App[*index]
	a *app
}

// BackendStatus is the health of a load balancer's backends.
func (l *lbApp) BackendStatus(lb *model.LoadBalancer) []Status { return l.a.BackendStatus(lb) }

// current is the latest snapshot and its index.
func (a *app) current() state {
	ix, snap := a.kit.Current()
	return state{snap, ix}
}

// BackendStatus returns the health of a load balancer's backends as this
// app sees them: every backend of the model, in its order, up unless its
// health check took it down. loomd hands it to the API
// (northbound.BackendHealth).
func (a *app) BackendStatus(lb *model.LoadBalancer) []Status {
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
	return out
}

// digest indexes a new view snapshot and says which switches its load
// balancer flows may change on: those of the hosts serving, before or
// after, a load balancer that uses a network whose ports changed (any
// other change to the model: every host serving a load balancer), and
// those whose zones changed.
func (a *app) digest(prevIx *index, prevSnap, snap *view.Snapshot, c view.Changes) (*index, kit.Wake) {
	if prevIx == nil {
		ix := buildIndex(snap)
		a.health.prune(ix.lbs)
		return ix, kit.Wake{All: true}
	}
	ix := prevIx.update(prevSnap, snap, c)
	if ix == prevIx {
		// Nothing the load balancers use changed but, maybe, zones.
		return ix, kit.Wake{Hosts: c.Zones}
	}
	a.health.prune(ix.lbs)
	return ix, kit.Wake{Hosts: woken(&state{prevSnap, prevIx}, &state{snap, ix}, c)}
}

// woken are the hosts whose load balancer flows may differ from prev to
// next, whose changes are c (those whose zones changed among them).
func woken(prev, next *state, c view.Changes) map[string]bool {
	hosts := maps.Clone(c.Zones)
	if hosts == nil {
		hosts = map[string]bool{}
	}
	if !portsOnly(c) {
		hostsServing(prev.ix.lbs, hosts)
		hostsServing(next.ix.lbs, hosts)
		return hosts
	}
	for _, s := range []*view.Snapshot{prev.snap, next.snap} {
		for name := range c.Ports {
			if p, ok := s.Model.Ports.ByName(name); ok {
				hostsServing(prev.ix.byNet[p.Network], hosts)
				hostsServing(next.ix.byNet[p.Network], hosts)
			}
		}
	}
	return hosts
}

// healthChanged wakes the switches serving the load balancer whose
// backend went up or down.
func (a *app) healthChanged(lbID string) {
	cur := a.current()
	hosts := map[string]bool{}
	for _, e := range cur.ix.lbs {
		if e.lb.ID == lbID {
			hostsServing([]*lbEntry{e}, hosts)
		}
	}
	for _, dpid := range cur.snap.Datapaths(hosts) {
		a.kit.Env().Refresh(dpid)
	}
}

// PipelineTables are the load balancer's tables as the runtime realized
// them.
func PipelineTables(p *controller.Pipeline) Tables {
	after := func(t *controller.Table) uint8 {
		return p.NextID(t) // the overlay's tables follow lb-out and lb-reply
	}
	return Tables{LB: p.ID(controller.TableLB), CT: p.ID(controller.TableLBCT), Affinity: p.ID(controller.TableLBAffinity),
		Learn: p.ID(controller.TableLBLearn), Out: p.ID(controller.TableLBOut),
		AfterOut: after(controller.TableLBOut), Reply: p.ID(controller.TableLBReply), AfterReply: after(controller.TableLBReply)}
}

type switchApp struct {
	a    *app
	dpid uint64
	hseq uint64 // the health changes last compiled
	// probing are the backends whose probe answers the switch has a flow
	// for (sent by the last sync): only those are probed, so a first
	// probe's answer is never lost to a flow not there yet.
	probing map[hkey]bool
	// pins are the cookies (PinCookie) of the load balancers with
	// affinity this switch serves: their clients' pins are in
	// lb-affinity. A cookie that goes (affinity changed, load balancer
	// gone) has its pins forgotten.
	pins map[uint64]bool
}

// host is the switch's host in snap.
func (s *switchApp) host(snap *view.Snapshot) string {
	if h, ok := snap.HostByDatapath(s.dpid); ok {
		return h.Name
	}
	return ""
}

// checked returns the health-checked backends bound on this switch.
func (s *switchApp) checked() []localBackend {
	cur := s.a.current()
	return cur.ix.checked[s.host(cur.snap)]
}

// probed returns the health-checked backends bound on this switch whose
// probe answers it has a flow for.
func (s *switchApp) probed() []localBackend {
	bes := s.checked()
	for i, b := range bes {
		if !s.probing[b.k] {
			out := append([]localBackend(nil), bes[:i]...)
			for _, b := range bes[i+1:] {
				if s.probing[b.k] {
					out = append(out, b)
				}
			}
			return out
		}
	}
	return bes
}

// TickInterval paces the health checks' probes and timeouts.
func (s *switchApp) TickInterval() time.Duration { return 50 * time.Millisecond }

// Statuses returns the health of the health-checked backends.
func (a *app) Statuses() []Status { return a.health.Statuses() }

// Adopt takes the pins an earlier loomd's clients learned: kept if their
// load balancer still has the same affinity, else forgotten by Synced.
func (s *switchApp) Adopt(ctx *controller.Context, found []*flow.Flow) {
	aff := PipelineTables(ctx.Pipeline()).Affinity
	for _, f := range found {
		if f.Table == aff && f.Priority != 0 {
			s.pins[f.Cookie] = true
		}
	}
}

// FoundGroups takes back, from the select groups an earlier loomd left on
// the switch (a restart, an upgrade), which health-checked backends were
// down: a backend of the model missing from its group starts down (until
// rise successes), instead of taking new connections until fall probes
// fail again.
func (s *switchApp) FoundGroups(groups []*flow.Group) {
	cur := s.a.current()
	host, t := s.host(cur.snap), PipelineTables(s.a.kit.Env().Pipeline)
	zones := zonesOf(cur.snap, host)
	byID := make(map[uint32]*flow.Group, len(groups))
	for _, g := range groups {
		byID[g.ID] = g
	}
	now := time.Now()
	for _, e := range cur.ix.lbs {
		p, checked := paramsOf(e.lb)
		if !checked {
			continue
		}
		for _, cn := range e.nets {
			gid, gok := zones.group(e.lb.ID, cn.n.id)
			g := byID[gid]
			z, ok := zones(kit.LBZone(cn.n.id))
			if !gok || g == nil || cn.n.local[host] == 0 || !ok {
				continue
			}
			for _, be := range e.backends {
				dnat := flow.CT(flow.CTSpec{Commit: true, Zone: z, Table: t.Out, NAT: flow.NATDst, Addr: uint32(be.ip), Port: be.port})
				if !slices.ContainsFunc(g.Buckets, func(b flow.Bucket) bool { return slices.Contains(b.Actions, dnat) }) {
					s.a.health.adoptDown(hkey{e.lb.ID, formatIP(be.ip), int(be.port)}, p, now)
				}
			}
		}
	}
}

// Tick sends the probes that are due and fails those unanswered.
func (s *switchApp) Tick(ctx *controller.Context, now time.Time) {
	if !ctx.Writes() {
		// Another loomd replica is this switch's master: it probes the
		// backends here; unanswered probes of ours would take them down.
		return
	}
	s.a.health.tick(ctx, s.probed(), ctx.Pipeline().ID(controller.TableLBReply), now)
}

// PacketIn takes a probe's answer.
func (s *switchApp) PacketIn(ctx *controller.Context, ev controller.PacketIn) {
	if ev.Frame != nil {
		s.a.health.answer(ctx, s.checked(), ctx.Pipeline().ID(controller.TableLBReply), ev.Frame, time.Now())
	}
}

// Dirty: a backend went up or down since the last compile (kit.Dirtier).
func (s *switchApp) Dirty() bool {
	s.a.health.mu.Lock()
	defer s.a.health.mu.Unlock()
	return s.a.health.seq != s.hseq
}

// Compile is the switch's load balancer flows and groups, with the flows
// that catch the health checks' answers.
func (s *switchApp) Compile(ctx *controller.Context, ix *index, snap *view.Snapshot) kit.State {
	s.a.health.mu.Lock()
	s.hseq = s.a.health.seq
	s.a.health.mu.Unlock()
	t := PipelineTables(ctx.Pipeline())
	host := s.host(snap)
	zones := zonesOf(snap, host)
	flows, groups := compileHost(ix, snap, host, zones, t, s.a.health.up)
	flows = append(flows, probeFlowsOf(ix.checked[host], t)...)
	// Probes sent once these flows are out find their answers', once the
	// backend's network has its zones here (its load balancer flows are
	// compiled).
	s.probing = map[hkey]bool{}
	for _, b := range ix.checked[host] {
		_, _, s.probing[b.k] = zones.net(b.net)
	}
	return kit.State{Flows: flows, Groups: groups}
}

// Synced forgets the pins of load balancers this switch no longer serves
// with that affinity.
func (s *switchApp) Synced(ctx *controller.Context, x any) {
	ix, host := x.(*index), s.host(s.a.current().snap)
	pins := map[uint64]bool{}
	for _, e := range ix.lbs {
		if e.lb.AffinitySeconds > 0 && e.serves(host) {
			pins[PinCookie(e.lb)] = true
		}
	}
	for c := range s.pins {
		if !pins[c] {
			if err := ctx.ForgetLearned(PipelineTables(ctx.Pipeline()).Affinity, c); err != nil {
				ctx.Log().Error("cannot forget a load balancer's pins", "error", err)
			}
		}
	}
	s.pins = pins
}
