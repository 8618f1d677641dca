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
	kit      *kit.App[*Index]
	requests [numResults]prometheus.Counter
}

func newApp(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	a := &app{}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "loom_dhcp_requests_total",
		Help: "DHCP requests by what the server made of them."}, []string{"result"})
	vec, err := controller.RegisterCollector(env.Metrics, vec)
	if err != nil {
		return nil, err
	}
	for r := range numResults {
		a.requests[r] = vec.WithLabelValues(r.String())
	}
	a.kit, err = kit.NewApp(env, kit.Spec[*Index]{
		Name: Name,
		// Every kind it handles: update rebuilds on hosts, networks and
		// subnets, and redoes the ports that changed.
		Kinds:     kit.ModelKinds,
		Digest:    digest,
		NewSwitch: func(sw controller.SwitchInfo) kit.Logic[*Index] { return &switchApp{a: a, dpid: sw.DatapathID} },
	})
	return a.kit, err
}

// digest indexes a new view snapshot once, for all switches, updating
// the previous index with what changed, and wakes the switches whose
// flows change (those whose served networks change). Packet-ins always
// read the latest index.
func digest(old *Index, _, snap *view.Snapshot, _ view.Changes) (*Index, kit.Wake) {
	if old == nil {
		return NewIndex(snap), kit.Wake{All: true}
	}
	x, changed := old.update(snap)
	return x, kit.Wake{DPIDs: changed}
}

// switchApp is the server on one switch.
type switchApp struct {
	a       *app
	dpid    uint64
	noMeter bool // the switch refused the meter: flows go unmetered
	req     packet.DHCP
	buf     []byte
}

// Compile is the switch's DHCP flows and, with any, their meter.
func (s *switchApp) Compile(ctx *controller.Context, x *Index, _ *view.Snapshot) kit.State {
	meter := uint32(MeterID)
	if s.noMeter {
		meter = 0
	}
	st := kit.State{Flows: x.Compile(s.dpid, ctx.Pipeline().ID(controller.TableDHCP), meter)}
	if len(st.Flows) > 0 && meter != 0 {
		st.Meters = []*flow.Meter{{ID: MeterID, Flags: flow.MeterPktps | flow.MeterBurst | flow.MeterStats,
			Bands: []flow.Band{{Rate: Rate, Burst: Burst}}}}
	}
	return st
}

// Rejected: a switch without meters gets the flows unmetered.
func (s *switchApp) Rejected(ctx *controller.Context, ev controller.Rejected) (handled, resync bool) {
	if _, ok := ev.Object.(*flow.Meter); ok && !s.noMeter {
		ctx.Log().Warn("switch refused the DHCP meter; DHCP requests go to the controller unmetered", "error", ev.Err)
		s.noMeter = true
		return true, true
	}
	return false, false
}

// PacketIn answers a DHCP request.
func (s *switchApp) PacketIn(ctx *controller.Context, ev controller.PacketIn) {
	if ev.Msg.TableID != ctx.Pipeline().ID(controller.TableDHCP) {
		return
	}
	x, _ := s.a.kit.Current()
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
