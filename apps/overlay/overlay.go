// Package overlay is Loom's distributed virtual switch: the model's
// networks (VXLAN, VLAN and flat) across every host's integration bridge,
// computed proactively from the view (model + port bindings), with no MAC
// learning.
//
//	overlay-classify: in_port=VM port          -> metadata=NET, goto overlay-arp
//	                  in_port=vxlan0,tun_id=VNI -> metadata=NET|remote, goto overlay-arp
//	                  in_port=uplink,vlan=VID   -> pop_vlan, metadata=NET|remote, goto overlay-arp
//	                  miss                      -> drop
//	overlay-arp:      in_port=VM,arp_tpa=its IP -> goto overlay-forward (gratuitous ARP, DAD)
//	                  metadata=NET,arp request for a known IP -> reply from the switch, IN_PORT
//	                  miss                      -> goto overlay-forward
//	overlay-forward:  NET,dl_dst=local MAC     -> output:VM port
//	                  NET(local),dl_dst=remote -> tun_id=VNI,tun_dst=VTEP,output:vxlan0 (or tagged, uplink)
//	                  NET(local)               -> group NET*2: local ports + one bucket per remote VTEP
//	                  NET(remote)              -> group NET*2+1: local ports only
//	                  miss                      -> drop
//
// A host gets a network's flows only while one of the network's ports is
// bound to it; networks are isolated by their key in metadata, so their
// address ranges may overlap. When a port's interface appears on another
// host (a VM migrating), its newest binding wins and every switch is
// recomputed: the old host's flows for it go, the others point to the new
// host.
package overlay

import (
	"sync/atomic"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
	"github.com/prometheus/client_golang/prometheus"
)

// Name is the app's registered name.
const Name = "overlay"

// TunnelPort is the name of the flow-based VXLAN port Loom creates on
// every host (southbound/ovsdb).
const TunnelPort = kit.TunnelPort

func init() { controller.Register(Name, newApp) }

type app struct {
	env     controller.Env
	view    *view.View
	compile prometheus.Histogram
	index   atomic.Pointer[Index] // the latest view snapshot, digested
}

func newApp(env controller.Env) (controller.App, error) {
	v, err := kit.View(env, "the overlay")
	if err != nil {
		return nil, err
	}
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	a := &app{env: env, view: v}
	if a.compile, err = controller.CompileHistogram(env.Metrics, "overlay", "overlay flows and groups"); err != nil {
		return nil, err
	}
	a.index.Store(NewIndex(v.Snapshot(), nil))
	v.Follow(env.Context, a.digest)
	return a, nil
}

// digest indexes a new view snapshot once, for all switches, and wakes
// only the switches whose state it may change.
func (a *app) digest(snap *view.Snapshot) {
	old := a.index.Load()
	if snap.Seq == old.Seq {
		return
	}
	x := NewIndex(snap, old)
	a.index.Store(x)
	all, hosts := x.Affected(old)
	x.base, x.affected = nil, nil // no chain of old indexes
	if all {
		a.env.Refresh(controller.AllSwitches)
		return
	}
	for _, dpid := range snap.Datapaths(hosts) {
		a.env.Refresh(dpid)
	}
}

func (a *app) Name() string { return Name }

func (a *app) Attach(sw controller.SwitchInfo) controller.SwitchApp {
	return &switchApp{a: a, dpid: sw.DatapathID}
}

// switchApp is the overlay on one switch: what it last declared there.
type switchApp struct {
	a     *app
	dpid  uint64
	seq   uint64 // Index.Seq last compiled
	ports SwitchPorts
	set   controller.FlowSet
}

func (s *switchApp) Start(ctx *controller.Context, _ []*flow.Flow) {
	// The overlay's flows follow from the view alone: those found on the
	// switch are kept only if they are still wanted (the runtime removes
	// the others without touching the ones re-added unchanged).
	s.sync(ctx, true)
}

func (s *switchApp) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.Update:
		s.sync(ctx, false)
	case controller.PortStatus:
		// The tunnel or uplink port came or went, or changed number.
		s.sync(ctx, false)
	case controller.Rejected:
		ctx.Log().Error("switch refused an overlay object", "object", ev.Object, "error", ev.Err)
	}
}

// PipelineTables are the overlay's tables as the runtime realized them.
func PipelineTables(p *controller.Pipeline) Tables {
	return Tables{Classify: p.ID(controller.TableOverlayClassify), AfterClassify: p.NextID(controller.TableOverlayClassify),
		ARP: p.ID(controller.TableOverlayARP), Forward: p.ID(controller.TableOverlayForward),
		AfterForward: p.NextID(controller.TableOverlayForward), Deliver: p.ID(controller.TableOverlayDeliver)}
}

// sync brings the switch's overlay state up to the current view.
func (s *switchApp) sync(ctx *controller.Context, force bool) {
	x := s.a.index.Load()
	sp := kit.FindSwitchPorts(ctx, x.snap)
	if !force && x.Seq == s.seq && sp == s.ports {
		return
	}
	s.seq, s.ports = x.Seq, sp
	start := time.Now()
	st := x.Compile(s.dpid, PipelineTables(ctx.Pipeline()), sp)
	s.a.compile.Observe(time.Since(start).Seconds())

	s.set.Sync(ctx, st.Flows, st.Groups)
}
