// Package firewall is Loom's stateful distributed firewall: the model's
// security groups, enforced by conntrack on the host of every VM port
// that has one, for traffic leaving the VM and traffic coming to it.
//
// What a port may do (the OpenStack model, simplified where it says so):
//
//   - A port with no security group is not firewalled at all: no flow
//     looks at its packets.
//   - A port with groups gets default-deny ingress plus the ingress rules
//     of all its groups. Its egress is allowed unless one of its groups
//     has an (IPv4) egress rule; then it is default-deny plus the egress
//     rules of all its groups. (OpenStack's default group carries
//     "allow all egress" rules; in Loom a group without egress rules
//     leaves egress open.)
//   - Rules allow, never deny, and are stateful unless "stateful": false:
//     the first packet of a connection is checked against the rules and
//     the connection committed to conntrack; replies and related packets
//     (ICMP errors) pass both ways, so the return traffic of an egress
//     connection comes in although ingress is default-deny. The
//     originator's later packets are checked against the rules again, so
//     removing a rule (or a remote group member) cuts the connections it
//     allowed, while a change that leaves a connection allowed changes
//     nothing for it. Invalid packets (+inv) are dropped. Stateless rules
//     allow matching packets whatever their state, and nothing else.
//   - A rule matches the protocol (tcp, udp, icmp, a number, or any), the
//     destination port range for tcp and udp (in both directions: the
//     port of the side that accepts the connection; 1-65535 is any), and
//     the remote end: the source of ingress, the destination of egress,
//     as a CIDR or a remote group, which stands for the addresses (of the
//     rule's family) of every port in that group, on any host, bound or
//     not.
//   - DHCP passes: a port's requests (UDP 68 -> 67) out, server replies
//     (67 -> 68) in. ARP and other non-IP traffic is not filtered (port
//     security, apps/portpolicy, is what keeps a VM to its own addresses).
//   - IPv6 is filtered the same way, in the same zone, by the rules of
//     ethertype ipv6 (icmp is ICMPv6; a remote group stands for its
//     members' IPv6 addresses); IPv6 neighbour discovery (ICMPv6
//     133-136) passes both ways, as ARP does. An IPv4 rule never opens
//     IPv6, nor an IPv6 rule IPv4.
//
// Each port's connections live in its own conntrack zone, allocated to it
// on its host (apps/kit: kit.PortZone, view.Snapshot.Zone): two VMs of
// one host are checked each against its own rules, and one's egress
// commit never opens the other's ingress. A port whose zone is not
// allocated yet has its IP dropped both ways.
//
//	fw-egress:        ip,in_port=PORT          -> ct(zone=PORT's, table=fw-egress-rules)
//	                  (priority 1)             -> goto the table after fw-egress-rules
//	fw-egress-rules:  stateless rule           -> next
//	                  ct_state=+inv+trk        -> drop
//	                  +est+rpl, +rel           -> next
//	                  udp 68 -> 67 (DHCP)      -> next
//	                  stateful rule            -> ct(commit,zone=NXM_NX_CT_ZONE[]), next
//	                  in_port=PORT (no egress rules) -> ct(commit), next
//	                  (priority 5)             -> drop
//	fw-ingress:       ip,reg7=PORT             -> ct(zone=PORT's, table=fw-ingress-rules)
//	                  (priority 1)             -> goto the table after fw-ingress-rules
//	fw-ingress-rules: the same, with reg7=PORT, the remote as nw_src, DHCP 67 -> 68
//
// reg7 is the VM port a packet is for (apps/overlay): fw-ingress sees
// unicast by goto from overlay-forward and each flooded copy by resubmit
// from the network's flood group, where conntrack works as well.
//
// A rule with several dimensions (local ports × remote addresses ×
// protocol and port blocks) is one OVS conjunctive match: a flow per
// value of each dimension with conjunction(ID,K/N) and one conj_id=ID
// flow with the actions, so a remote group of N ports and M rules cost
// O(N+M) flows, not O(N×M); see compileRules. The flows follow from the
// view alone (an Index built once per change, shared by all switches);
// only switches whose ports, groups or remote members changed are
// recomputed, and FlowSet sends only the flows that differ, so a rule
// change touches the flows of that rule and nothing else. Conntrack is
// never flushed.
package firewall

import (
	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
)

// Name is the app's registered name.
const Name = "firewall"

func init() { controller.Register(Name, newApp) }

func newApp(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	return kit.NewApp(env, kit.Spec[*Index]{
		Name: Name,
		// Every kind it handles: NewIndex keeps the index when no
		// security group, host or port with groups changed.
		Kinds: kit.ModelKinds,
		Digest: func(prev *Index, _, next *view.Snapshot, _ view.Changes) (*Index, kit.Wake) {
			x := NewIndex(next, prev)
			return x, kit.Wake{DPIDs: x.Changed(prev)}
		},
		NewSwitch: func(sw controller.SwitchInfo) kit.Logic[*Index] { return &switchLogic{dpid: sw.DatapathID} },
	})
}

// PipelineTables are the firewall's tables as the runtime realized them.
func PipelineTables(p *controller.Pipeline) Tables {
	after := func(t *controller.Table) int16 {
		if n, ok := p.Next(t); ok {
			return int16(p.ID(n))
		}
		return flow.NoGoto // the firewall is the end of the pipeline (no overlay): nothing to go on to
	}
	return Tables{
		Egress: p.ID(controller.TableFirewallEgress), EgressRules: p.ID(controller.TableFirewallEgressRules),
		Ingress: p.ID(controller.TableFirewallIngress), IngressRules: p.ID(controller.TableFirewallIngressRules),
		AfterEgress: after(controller.TableFirewallEgressRules), AfterIngress: after(controller.TableFirewallIngressRules),
	}
}

// switchLogic is the firewall on one switch.
type switchLogic struct{ dpid uint64 }

// Compile is the switch's firewall flows: from the view alone (those
// found on the switch stay if they are still wanted).
func (s *switchLogic) Compile(ctx *controller.Context, x *Index, _ *view.Snapshot) kit.State {
	return kit.State{Flows: x.Compile(s.dpid, PipelineTables(ctx.Pipeline()), Options{})}
}
