// Package dhcp is Loom's DHCPv4 server: every host answers the DHCP
// requests of its own VMs, with the addresses and options of the model,
// so no DHCP agent runs anywhere and no request crosses the fabric.
//
//	dhcp: metadata=NET (a local VM),udp,udp_src=68,udp_dst=67 -> meter, CONTROLLER
//	      miss                                                -> next table
//
// There is one flow per network that has a DHCP-enabled IPv4 subnet and a
// port bound on the host; other networks' DHCP traffic passes untouched
// (a tenant may run its own server). A request is answered only for the
// model port bound where it came in, from that port's MAC (frame source
// and chaddr): DHCP from unknown MACs is ignored. The port's address in a
// DHCP-enabled subnet of its network is its lease:
//
//	DISCOVER -> OFFER; nothing for a port without such an address
//	REQUEST  -> ACK when the requested address (or ciaddr) is the port's, NAK otherwise
//	INFORM   -> ACK with the subnet's options, no lease
//	RELEASE, DECLINE -> nothing (the address belongs to the port)
//
// Replies come from the subnet's gateway (its address and
// view.GatewayMAC) and carry the mask, the gateway as router (whether
// or not a router is attached yet), the DNS servers, the lease
// (lease_seconds, default one day) with T1 and T2, the MTU (1450 on VXLAN
// networks, 1500 otherwise) and the host routes as classless static
// routes (with the default route via the gateway: clients
// ignore option 3 when option 121 is present).
package dhcp

import (
	"sync/atomic"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
)

// Name is the app's registered name.
const Name = "dhcp"

// MeterID is the meter on the DHCP flows (kit.MeterDHCP).
const MeterID = kit.MeterDHCP

// Rate is that meter's rate (requests/s per switch); Burst its burst.
const (
	Rate  = 100
	Burst = 20
)

func init() { controller.Register(Name, newApp) }

type app struct {
	env      controller.Env
	view     *view.View
	index    atomic.Pointer[Index]
	requests [numResults]prometheus.Counter
}

func newApp(env controller.Env) (controller.App, error) {
	v, err := kit.View(env, "the DHCP server")
	if err != nil {
		return nil, err
	}
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	a := &app{env: env, view: v}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_dhcp_requests_total",
		Help: "DHCP requests by what the server made of them."}, []string{"result"})
	vec, err = controller.RegisterCollector(env.Metrics, vec)
	if err != nil {
		return nil, err
	}
	for r := range numResults {
		a.requests[r] = vec.WithLabelValues(r.String())
	}
	a.index.Store(NewIndex(v.Snapshot()))
	v.Follow(env.Context, a.digest)
	return a, nil
}

// digest indexes a new view snapshot once, for all switches, updating
// the previous index with what changed, and wakes the switches whose
// flows change (those whose served networks change). Packet-ins always
// read the latest index.
func (a *app) digest(snap *view.Snapshot) {
	old := a.index.Load()
	if snap.Seq == old.Seq {
		return
	}
	x, changed := old.update(snap)
	a.index.Store(x)
	for _, dpid := range changed {
		a.env.Refresh(dpid)
	}
}

func (a *app) Name() string { return Name }

func (a *app) Attach(sw controller.SwitchInfo) controller.SwitchApp {
	return &switchApp{a: a, dpid: sw.DatapathID}
}

// switchApp is the server on one switch.
type switchApp struct {
	a       *app
	dpid    uint64
	seq     uint64 // Index.Seq last compiled
	set     controller.FlowSet
	meter   bool // the meter is part of the desired state
	noMeter bool // the switch refused it: flows go unmetered
	req     packet.DHCP
	buf     []byte
}

func (s *switchApp) Start(ctx *controller.Context, _ []*flow.Flow) {
	// The flows follow from the view alone; those found on the switch
	// stay if they are still wanted.
	s.sync(ctx, true)
}

func (s *switchApp) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.Update:
		s.sync(ctx, false)
	case controller.PacketIn:
		s.packetIn(ctx, ev)
	case controller.Rejected:
		s.rejected(ctx, ev)
	}
}

// sync brings the switch's DHCP flows (and meter) up to the latest index.
func (s *switchApp) sync(ctx *controller.Context, force bool) {
	x := s.a.index.Load()
	if !force && x.Seq == s.seq {
		return
	}
	s.seq = x.Seq
	meter := uint32(MeterID)
	if s.noMeter {
		meter = 0
	}
	want := x.Compile(s.dpid, ctx.Pipeline().ID(controller.TableDHCP), meter)
	if len(want) > 0 && meter != 0 && !s.meter {
		if err := ctx.SetMeter(&flow.Meter{ID: MeterID, Flags: flow.MeterPktps | flow.MeterBurst | flow.MeterStats,
			Bands: []flow.Band{{Rate: Rate, Burst: Burst}}}); err != nil {
			ctx.Log().Error("cannot set the DHCP meter", "error", err)
		} else {
			s.meter = true
		}
	}
	s.set.Sync(ctx, want, nil)
	if s.set.Len() == 0 && s.meter {
		ctx.DeleteMeter(MeterID) // after the flows that use it
		s.meter = false
	}
}

// rejected handles a flow or the meter the switch refused. A switch
// without meters gets the flows unmetered.
func (s *switchApp) rejected(ctx *controller.Context, ev controller.Rejected) {
	switch o := ev.Object.(type) {
	case *flow.Meter:
		ctx.Log().Warn("switch refused the DHCP meter; DHCP requests go to the controller unmetered", "error", ev.Err)
		s.noMeter, s.meter = true, false
		s.sync(ctx, true)
	case *flow.Flow:
		if s.set.Forget(o) { // retried on the next change
			ctx.Log().Error("switch refused a DHCP flow", "flow", o, "error", ev.Err)
		}
	}
}

func (s *switchApp) packetIn(ctx *controller.Context, ev controller.PacketIn) {
	if ev.Msg.TableID != ctx.Pipeline().ID(controller.TableDHCP) {
		return
	}
	x := s.a.index.Load()
	out, res := x.Serve(s.buf[:0], &s.req, s.dpid, ev.Msg.InPort, ev.Frame)
	s.buf = out
	s.a.requests[res].Inc()
	switch res {
	case UnknownMAC, UnknownPort, Malformed, NoLease:
		ctx.Log().Debug("DHCP request not answered", "result", res.String(), "in_port", ev.Msg.InPort,
			"src", ev.Frame.Src)
	case Declined:
		ctx.Log().Warn("a VM declined its address: something else uses it", "in_port", ev.Msg.InPort,
			"mac", ev.Frame.Src, "address", s.req.RequestedIP)
	}
	if len(out) == 0 {
		return
	}
	if err := ctx.PacketOut(flow.PortController, out, flow.Output(ev.Msg.InPort)); err != nil {
		ctx.Log().Warn("cannot send a DHCP reply", "error", err)
	}
}
