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
	"github.com/loom-sdn/loom/view"
)

// Name is the app's registered name.
const Name = "portpolicy"

func init() { controller.Register(Name, newApp) }

func newApp(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	return kit.NewApp(env, kit.Spec[struct{}]{
		Name:      Name,
		Kinds:     kit.ModelKinds,
		Digest:    digest,
		NewSwitch: func(sw controller.SwitchInfo) kit.Logic[struct{}] { return &switchLogic{dpid: sw.DatapathID} },
	})
}

// digest wakes the switches a view change concerns: the hosts of the
// ports that changed (before and after), or all of them when a port group
// or a host or network changed. Policies compile from the view alone.
func digest(_ struct{}, old, s *view.Snapshot, c view.Changes) (struct{}, kit.Wake) {
	if old == nil || c.All || c.Kinds[model.KindPortGroup] || c.Kinds[model.KindHost] || c.Kinds[model.KindNetwork] {
		return struct{}{}, kit.Wake{All: true}
	}
	hosts := map[string]bool{}
	s.HostsOf(c.Ports, hosts)
	old.HostsOf(c.Ports, hosts)
	return struct{}{}, kit.Wake{Hosts: hosts}
}

func tables(p *controller.Pipeline) Tables {
	return Tables{Security: p.ID(controller.TablePortSecurity), AfterSecurity: p.NextID(controller.TablePortSecurity),
		Out: p.ID(controller.TablePortOut), AfterOut: p.NextID(controller.TablePortOut)}
}

// switchLogic is port policy on one switch.
type switchLogic struct{ dpid uint64 }

func (s *switchLogic) Compile(ctx *controller.Context, _ struct{}, snap *view.Snapshot) kit.State {
	st := Compile(snap, s.dpid, tables(ctx.Pipeline()))
	return kit.State{Flows: st.Flows, Meters: st.Meters}
}
