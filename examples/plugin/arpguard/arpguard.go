// Package arpguard is a Loom app built outside Loom's module, as a plugin
// is: an ARP-storm guard. Every ARP packet that enters a switch's pipeline
// through the overlay's classifier (from a VM port, a tunnel or the
// uplink) goes through a per-switch meter first, so a VM that floods ARP
// cannot take the switch's ARP handling (the overlay's ARP suppression,
// the router's gateway answers, the packet-ins behind them) down with it:
//
//	arp-guard: arp  -> meter:MeterID, goto_table:NEXT
//	           miss -> goto_table:NEXT (the runtime's)
//
// It takes one option, rate (ARP packets per second per switch, default
// DefaultRate): loomd --app-opt arpguard.rate=50.
//
// It needs nothing from Loom but what any app gets: an owner id and a
// table declared with their place in init(), its options and the
// pipeline from its Env, and a Context per switch. It imports no other
// app; cmd/loomd-arpguard is loomd with it linked in.
package arpguard

import (
	"fmt"
	"strconv"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// Name is the app's registered name (--apps, --app-opt).
const Name = "arpguard"

// OwnerID is the top 16 bits of the app's flows' cookies: built-in apps
// hold 0x0001-0x00ff, plugins take theirs from 0x1000 up.
const OwnerID = 0x1001

// MeterID is the guard's meter on every switch. Meter ids share one
// namespace per switch: the runtime's packet-in meter is 1 and the
// built-in apps' ranges (apps/kit/registry.go, Meters) all lie below
// 0x30000, so a plugin takes its ids from its owner id shifted 16 bits
// (0x10010000 here), which no built-in range and no other plugin with
// its own owner id reaches. TestMeterIDIsFree checks it against the
// registry.
const MeterID = uint32(OwnerID) << 16

// DefaultRate is the meter's rate without a rate option (ARP packets per
// second per switch).
const DefaultRate = 100

// Table is the guard's table, right after the overlay's classifier, which
// sends every packet it classifies on to the next table (so to this one).
// Where overlay-classify is not realized, the table lands where the
// pipeline's declaration order puts it (with lldp and l2switch: after
// discovery, before l2-learning).
var Table = controller.DeclareTable("arp-guard", Name, controller.MissNext, controller.Place{After: "overlay-classify"})

// prioGuard is the ARP flow's priority in the table.
const prioGuard = 100

func init() {
	controller.DeclareOwner(Name, OwnerID)
	controller.Register(Name, New)
}

// New is the app's factory: it reads the rate option and refuses a
// pipeline where no table follows the guard's (arpguard alone), since
// the guard only meters and hands packets on.
func New(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions("rate"); err != nil {
		return nil, err
	}
	rate := uint64(DefaultRate)
	if s, ok := env.Options["rate"]; ok {
		r, err := strconv.ParseUint(s, 10, 32)
		if err != nil || r == 0 {
			return nil, fmt.Errorf("option rate=%q: want ARP packets per second, a whole number from 1", s)
		}
		rate = r
	}
	if _, ok := env.Pipeline.Next(Table); !ok {
		return nil, fmt.Errorf("no table follows %s: arpguard guards the tables of other apps (--apps lldp,overlay,...,%s)", Table.Name, Name)
	}
	return &app{rate: uint32(rate)}, nil
}

type app struct{ rate uint32 }

func (a *app) Name() string { return Name }

func (a *app) Attach(controller.SwitchInfo) controller.SwitchApp { return &guard{rate: a.rate} }

// Meter is the guard's meter at rate packets per second: packets above
// the rate are dropped, with a burst of a tenth of a second's worth.
func Meter(rate uint32) *flow.Meter {
	return &flow.Meter{ID: MeterID, Flags: flow.MeterPktps | flow.MeterBurst | flow.MeterStats,
		Bands: []flow.Band{{Rate: rate, Burst: max(rate/10, 1)}}}
}

// guard is the app on one switch.
type guard struct {
	rate uint32
	flow *flow.Flow // the ARP flow, while it is wanted
}

// Start states the meter and the ARP flow. found needs no reading: the
// flow is the same on every start, so the runtime keeps the switch's copy.
func (g *guard) Start(ctx *controller.Context, found []*flow.Flow) {
	p := ctx.Pipeline()
	if err := ctx.SetMeter(Meter(g.rate)); err != nil {
		ctx.Log().Error("cannot set the ARP guard's meter", "error", err)
		return
	}
	g.flow = flow.New(p.ID(Table), prioGuard, flow.Match{}.EthType(0x0806)).WithMeter(MeterID).Goto(p.NextID(Table))
	if err := ctx.AddFlow(g.flow); err != nil {
		ctx.Log().Error("cannot add the ARP guard's flow", "error", err)
		g.flow = nil
	}
}

// Handle deals with what the switch refuses: a switch without meters gets
// no guard (ARP goes on through the table's miss), said once.
func (g *guard) Handle(ctx *controller.Context, ev controller.Event) {
	r, ok := ev.(controller.Rejected)
	if !ok {
		return
	}
	switch r.Object.(type) {
	case *flow.Meter:
		ctx.Log().Warn("switch refused the ARP guard's meter: ARP goes on unmetered", "error", r.Err)
	case *flow.Flow:
		ctx.Log().Warn("switch refused the ARP guard's flow: ARP goes on unmetered", "error", r.Err)
	default:
		return
	}
	if g.flow != nil {
		ctx.DeleteFlow(g.flow)
		g.flow = nil
	}
	ctx.DeleteMeter(MeterID)
}
