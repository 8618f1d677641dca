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
	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/view"
)

// Name is the app's registered name.
const Name = "overlay"

// TunnelPort is the name of the flow-based VXLAN port Loom creates on
// every host (southbound/ovsdb).
const TunnelPort = kit.TunnelPort

func init() { controller.Register(Name, newApp) }

func newApp(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	return kit.NewApp(env, kit.Spec[*Index]{
		Name: Name,
		// Every kind it handles: NewIndex redoes the networks whose ports
		// changed and rebuilds on host or network changes.
		Kinds:     kit.ModelKinds,
		Digest:    digest,
		NewSwitch: func(sw controller.SwitchInfo) kit.Logic[*Index] { return &switchLogic{dpid: sw.DatapathID} },
	})
}

// digest indexes a new view snapshot once, for all switches, and wakes
// only the switches whose state it may change.
func digest(old *Index, _, snap *view.Snapshot, _ view.Changes) (*Index, kit.Wake) {
	x := NewIndex(snap, old)
	all, hosts := x.Affected(old)
	x.base, x.affected = nil, nil // no chain of old indexes
	return x, kit.Wake{All: all, Hosts: hosts}
}

// PipelineTables are the overlay's tables as the runtime realized them.
func PipelineTables(p *controller.Pipeline) Tables {
	return Tables{Classify: p.ID(controller.TableOverlayClassify), AfterClassify: p.NextID(controller.TableOverlayClassify),
		ARP: p.ID(controller.TableOverlayARP), Forward: p.ID(controller.TableOverlayForward),
		AfterForward: p.NextID(controller.TableOverlayForward), Deliver: p.ID(controller.TableOverlayDeliver)}
}

// switchLogic is the overlay on one switch. Its state depends on the
// switch's tunnel and uplink ports too (kit.PortWatcher).
type switchLogic struct {
	dpid  uint64
	ports SwitchPorts // as the last Compile found them
	cache NetCache    // the networks the last Compile compiled
}

// PortsChanged: the tunnel or uplink port came or went, or changed
// number (kit.PortWatcher).
func (s *switchLogic) PortsChanged(ctx *controller.Context, snap *view.Snapshot) bool {
	return kit.FindSwitchPorts(ctx, snap) != s.ports
}

func (s *switchLogic) Compile(ctx *controller.Context, x *Index, snap *view.Snapshot) kit.State {
	s.ports = kit.FindSwitchPorts(ctx, snap)
	st := x.CompileCached(s.dpid, PipelineTables(ctx.Pipeline()), s.ports, &s.cache)
	return kit.State{Flows: st.Flows, Groups: st.Groups}
}
