// Package l2switch is a learning Ethernet switch, done the way a
// data-center controller should: two tables instead of one, so that a
// packet-in happens only when a source address is new or has moved, never
// per unknown destination.
//
//	l2-learning:   in_port=P,dl_src=M       -> goto l2-forwarding  (learned)
//	               dl_dst=01:80:c2:00:00:0X -> drop  (802.1D reserved)
//	               miss                     -> meter, controller  (runtime)
//	l2-forwarding: dl_dst=M                 -> output:P           (learned)
//	               miss                     -> FLOOD
//
// A learned MAC owns both flows, with the same idle timeout and
// send_flow_rem: when either expires the MAC is forgotten and the other
// flow removed, so a MAC is known exactly while both flows exist. MAC
// moves, port removal and link down forget the affected MACs. After a
// controller restart the app re-adopts the learned flows it finds on the
// switch instead of making hosts relearn.
package l2switch

import (
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// Name is the app's registered name.
const Name = "l2switch"

// IdleTimeout is how long a learned MAC lives without traffic (seconds).
const IdleTimeout = 300

// Priorities in the app's tables.
const (
	prioLearned  = 100
	prioReserved = 200
)

func init() {
	controller.Register(Name, func(env controller.Env) (controller.App, error) { return app{}, nil })
}

type app struct{}

func (app) Name() string { return Name }

func (app) Attach(controller.SwitchInfo) controller.SwitchApp {
	return &bridge{}
}

// bridge is the app on one switch: its MAC table, each learned MAC's
// port. It holds the port only (the flows are built again to delete them,
// which is rare): the smaller the table, the fewer cache misses its two
// lookups per packet-in cost.
type bridge struct {
	macs         macTable
	learnT, fwdT uint8 // l2-learning and l2-forwarding in the controller's pipeline
}

func (b *bridge) srcFlow(mac flow.MAC, port uint32) *flow.Flow {
	f := flow.New(b.learnT, prioLearned, flow.Match{}.InPort(port).EthSrc(mac))
	f.IdleTimeout, f.Flags = IdleTimeout, flow.FlagSendFlowRem
	return f.Goto(b.fwdT)
}

func (b *bridge) dstFlow(mac flow.MAC, port uint32) *flow.Flow {
	f := flow.New(b.fwdT, prioLearned, flow.Match{}.EthDst(mac))
	f.IdleTimeout, f.Flags = IdleTimeout, flow.FlagSendFlowRem
	return f.Act(flow.Output(port))
}

// Start installs the fixed flows and re-adopts learned MACs whose two
// flows are both still on the switch.
func (b *bridge) Start(ctx *controller.Context, found []*flow.Flow) {
	p := ctx.Pipeline()
	b.learnT, b.fwdT = p.ID(controller.TableL2Learning), p.ID(controller.TableL2Forwarding)
	ctx.AddFlow(flow.New(b.learnT, prioReserved,
		flow.Match{}.SetMasked(flow.EthDst, 0x0180c2000000, 0xfffffffffff0)))
	ctx.AddFlow(flow.New(b.fwdT, 0, nil).Act(flow.Output(flow.PortFlood)))

	dst := make(map[flow.MAC]uint32)
	for _, f := range found {
		if mac, port, ok := b.parseDst(f); ok {
			dst[mac] = port
		}
	}
	for _, f := range found {
		mac, port, ok := b.parseSrc(f)
		if !ok || dst[mac] != port {
			continue
		}
		if _, _, ok := parsePort(ctx, port); !ok {
			continue
		}
		b.learn(ctx, mac, port)
	}
}

// parseSrc recognises a learned l2-learning flow.
func (b *bridge) parseSrc(f *flow.Flow) (flow.MAC, uint32, bool) {
	if f.Table != b.learnT || f.Priority != prioLearned || len(f.Match) != 2 {
		return 0, 0, false
	}
	in, ok1 := f.Match.Get(flow.InPort)
	src, ok2 := f.Match.Get(flow.EthSrc)
	if !ok1 || !ok2 || src.Masked {
		return 0, 0, false
	}
	return flow.MAC(src.Value), uint32(in.Value), true
}

// parseDst recognises a learned l2-forwarding flow.
func (b *bridge) parseDst(f *flow.Flow) (flow.MAC, uint32, bool) {
	if f.Table != b.fwdT || f.Priority != prioLearned || len(f.Match) != 1 ||
		len(f.Apply) != 1 || f.Apply[0].Kind != flow.ActOutput {
		return 0, 0, false
	}
	dst, ok := f.Match.Get(flow.EthDst)
	if !ok || dst.Masked {
		return 0, 0, false
	}
	return flow.MAC(dst.Value), f.Apply[0].Arg, true
}

func parsePort(ctx *controller.Context, no uint32) (wire.Port, uint32, bool) {
	p, ok := ctx.Port(no)
	return p, no, ok && p.Up()
}

// learn records mac on port and installs its flows.
func (b *bridge) learn(ctx *controller.Context, mac flow.MAC, port uint32) {
	if old, ok := b.macs.get(mac); ok && old != port {
		ctx.DeleteFlow(b.srcFlow(mac, old)) // moved: the old port's entry must go
	}
	b.macs.set(mac, port)
	ctx.AddFlow(b.srcFlow(mac, port))
	ctx.AddFlow(b.dstFlow(mac, port))
}

// forget removes mac and both its flows.
func (b *bridge) forget(ctx *controller.Context, mac flow.MAC) {
	port, ok := b.macs.get(mac)
	if !ok {
		return
	}
	b.macs.delete(mac)
	ctx.DeleteFlow(b.srcFlow(mac, port))
	ctx.DeleteFlow(b.dstFlow(mac, port))
}

// Handle reacts to packet-ins (learn and forward), port changes and
// expired flows.
func (b *bridge) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.PacketIn:
		b.packetIn(ctx, ev)
	case controller.PortStatus:
		if ev.Reason == wire.PortDeleted || !ev.Port.Up() {
			b.macs.all(func(mac flow.MAC, port uint32) {
				if port == ev.Port.PortNo {
					b.forget(ctx, mac)
				}
			})
		}
	case controller.FlowRemoved:
		if mac, _, ok := b.parseSrc(ev.Flow); ok {
			b.forget(ctx, mac)
		} else if mac, _, ok := b.parseDst(ev.Flow); ok {
			b.forget(ctx, mac)
		}
	case controller.Rejected:
		if f, ok := ev.Object.(*flow.Flow); ok {
			if mac, _, ok := b.parseSrc(f); ok {
				b.forget(ctx, mac)
			} else if mac, _, ok := b.parseDst(f); ok {
				b.forget(ctx, mac)
			}
		}
	}
}

func (b *bridge) packetIn(ctx *controller.Context, ev controller.PacketIn) {
	pi, fr := ev.Msg, ev.Frame
	if pi.TableID != b.learnT || len(pi.Data) < 14 {
		return
	}
	src, dst := flow.MACFrom(fr.Src), flow.MACFrom(fr.Dst)
	in := pi.InPort
	if src.Multicast() || src == 0 || in == 0 || in > flow.PortMax {
		return // not a valid station address or port: never learn it
	}
	// A known MAC on its port needs nothing: its flows are in the desired
	// state for as long as it is in b.macs, since every way out of it
	// reaches Handle (FlowRemoved when one expires, also when the
	// reconciler finds it gone; Rejected when the switch refuses it) or
	// is forget's own. Asking the desired state (ctx.HasFlow) per
	// packet-in cost a fifth of loomd's CPU under a packet-in load.
	if old, ok := b.macs.get(src); !ok || old != in {
		b.learn(ctx, src, in)
	}
	out := flow.PortFlood
	if port, ok := b.macs.get(dst); ok && !dst.Multicast() {
		if port == in {
			return // the destination is behind the port it came from
		}
		out = port
	}
	ctx.PacketOut(in, pi.Data, flow.Output(out))
}
