// Package portpolicy enforces, on whatever host a VM port is bound, port
// security and its port group's policies:
//
//   - IP-MAC binding (port security, on for every port unless its port
//     group turns ip_mac_binding off): the port sends only from its model
//     MAC, IPv4 and IPv6 only from its model addresses (and DHCP from
//     0.0.0.0, IPv6 from its link-local address), ARP only with its own
//     sender MAC and address (and probes from 0.0.0.0), nothing else;
//     everything else it sends is dropped, so spoofed addresses and forged
//     gratuitous ARPs never leave the host;
//
//   - DHCP isolation: DHCP server replies (UDP source port 67) the port
//     sends are dropped, so a rogue DHCP server in a VM hands out nothing;
//
//   - priority: IP from the port is marked DSCP class selector
//     CS<priority> (the VXLAN port copies it to the outer header);
//
//   - bandwidth: an OpenFlow meter per port and direction, from the VM in
//     port-security and to it in port-out.
//
//     port-security: in_port=P,dl_src=MAC,ip,nw_src=IP    -> [ip_dscp], [meter], goto next
//     in_port=P,dl_src=MAC,arp,arp_sha=MAC,arp_spa=IP -> [meter], goto next
//     in_port=P,udp,udp_src=67               -> drop (dhcp_isolation)
//     in_port=P                               -> drop
//     miss (other hosts' packets)              -> goto next
//     port-out:      reg7=P                                  -> meter, goto next
package portpolicy

import (
	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
)

// Name is the app's registered name.
const Name = "portpolicy"

func init() { controller.Register(Name, newApp) }

type app struct {
	env  controller.Env
	view *view.View
	last *view.Snapshot // the snapshot digest saw last (its goroutine only)
}

func newApp(env controller.Env) (controller.App, error) {
	v, err := kit.View(env, "port policies")
	if err != nil {
		return nil, err
	}
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	a := &app{env: env, view: v, last: v.Snapshot()}
	v.Follow(env.Context, a.digest)
	return a, nil
}

// digest wakes the switches a view change concerns: the hosts of the
// ports that changed (before and after), or all of them when a port group
// or anything else but ports changed.
func (a *app) digest(s *view.Snapshot) {
	old := a.last
	a.last = s
	c := view.Diff(old, s)
	if c.All || c.Kinds[model.KindPortGroup] || c.Kinds[model.KindHost] || c.Kinds[model.KindNetwork] {
		a.env.Refresh(controller.AllSwitches)
		return
	}
	hosts := map[string]bool{}
	s.HostsOf(c.Ports, hosts)
	old.HostsOf(c.Ports, hosts)
	for _, dpid := range s.Datapaths(hosts) {
		a.env.Refresh(dpid)
	}
}

func (a *app) Name() string { return Name }

func (a *app) Attach(sw controller.SwitchInfo) controller.SwitchApp {
	return &switchApp{a: a, dpid: sw.DatapathID, meters: map[uint32]*flow.Meter{}}
}

type switchApp struct {
	a      *app
	dpid   uint64
	seq    uint64
	set    controller.FlowSet
	meters map[uint32]*flow.Meter
}

func tables(p *controller.Pipeline) Tables {
	return Tables{Security: p.ID(controller.TablePortSecurity), AfterSecurity: p.NextID(controller.TablePortSecurity),
		Out: p.ID(controller.TablePortOut), AfterOut: p.NextID(controller.TablePortOut)}
}

func (s *switchApp) Start(ctx *controller.Context, _ []*flow.Flow) { s.sync(ctx, true) }

func (s *switchApp) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.Update:
		s.sync(ctx, false)
	case controller.Rejected:
		ctx.Log().Error("switch refused a port policy object", "object", ev.Object, "error", ev.Err)
		if f, ok := ev.Object.(*flow.Flow); ok {
			s.set.Forget(f)
		}
	}
}

func (s *switchApp) sync(ctx *controller.Context, force bool) {
	snap := s.a.view.Snapshot()
	if !force && snap.Seq == s.seq {
		return
	}
	s.seq = snap.Seq
	st := Compile(snap, s.dpid, tables(ctx.Pipeline()))
	// Meters before the flows that use them, and removed after.
	want := make(map[uint32]*flow.Meter, len(st.Meters))
	for _, m := range st.Meters {
		want[m.ID] = m
		if old, ok := s.meters[m.ID]; !ok || !old.Equal(m) {
			if err := ctx.SetMeter(m); err != nil {
				ctx.Log().Error("cannot set meter", "meter", m, "error", err)
			}
		}
	}
	s.set.Sync(ctx, st.Flows, nil)
	for id := range s.meters {
		if _, ok := want[id]; !ok {
			ctx.DeleteMeter(id)
		}
	}
	s.meters = want
}
