// Package router is Loom's distributed router: every host that has a VM
// in a subnet attached to a router routes that VM's traffic itself, so
// east-west traffic never hairpins through another host.
//
//	l3-input:   NET,arp request for the gateway   -> ARP reply from the gateway MAC
//	            NET,icmp echo to the gateway      -> echo reply from the gateway
//	            NET,ip,dl_dst=gateway MAC         -> reg6=ROUTER, goto l3-route
//	            miss                               -> goto overlay-forward
//	l3-route:   ROUTER,nw_dst=SUBNET (longest first; static routes too)
//	                -> dec_ttl, dl_src=gateway MAC of SUBNET, metadata=its network, goto l3-resolve
//	            ROUTER (no route)                  -> CONTROLLER: ICMP net unreachable
//	            (TTL expired in dec_ttl)           -> CONTROLLER: ICMP time exceeded
//	l3-resolve: NET,nw_dst=a port's IP            -> dl_dst=its MAC (from the model, no ARP), goto overlay-forward
//	            miss                               -> CONTROLLER: ICMP host unreachable
//
// The gateway MAC of a subnet is view.GatewayMAC(subnet id). The ICMP
// errors come from the gateway of the sender's subnet, through a meter.
package router

import (
	"maps"
	"net/netip"
	"time"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/view"
)

// Name is the app's registered name.
const Name = "router"

// ICMPRate is the rate (packets/s) of the meter on the router's
// packet-ins, per switch.
const ICMPRate = 100

func init() { controller.Register(Name, newApp) }

type app struct {
	kit *kit.App[*index]
}

func newApp(env controller.Env) (controller.App, error) {
	if err := env.CheckOptions(); err != nil {
		return nil, err
	}
	a := &app{}
	var err error
	a.kit, err = kit.NewApp(env, kit.Spec[*index]{
		Name: Name,
		// Every kind it handles: woken wakes every switch on anything
		// but ports.
		Kinds:  kit.ModelKinds,
		Digest: digest,
		NewSwitch: func(sw controller.SwitchInfo) kit.Logic[*index] {
			return &switchApp{a: a, dpid: sw.DatapathID, learned: map[uint64]flow.MAC{}, asked: map[uint64]time.Time{}}
		},
	})
	return a.kit, err
}

// current is the index of the latest snapshot.
func (a *app) current() *index {
	ix, _ := a.kit.Current()
	return ix
}

// digest indexes a view change and says which switches it concerns. A
// port that changed in a routed network concerns every host of its
// routers' networks (their l3-resolve flows list its address) and the
// routers' gateway hosts; a change of anything but ports concerns all.
func digest(prev *index, _, s *view.Snapshot, c view.Changes) (*index, kit.Wake) {
	if prev == nil {
		return newIndex(s), kit.Wake{All: true}
	}
	ix := prev.update(s, c)
	all, hosts := woken(prev, ix, c)
	return ix, kit.Wake{All: all, Hosts: hosts}
}

// woken tells the switches whose router flows may differ from prev to
// next, whose changes are c: all of them, or those of hosts.
func woken(prev, next *index, c view.Changes) (all bool, hosts map[string]bool) {
	if c.All {
		return true, nil
	}
	hosts = maps.Clone(c.Zones)
	for _, k := range []model.Kind{model.KindHost, model.KindNetwork, model.KindSubnet, model.KindRouter, model.KindFloatingIP} {
		if c.Kinds[k] {
			return true, nil
		}
	}
	nets := map[string]bool{} // networks of the routers the changed ports are routed by
	if hosts == nil {
		hosts = map[string]bool{}
	}
	for _, x := range []*index{prev, next} {
		for name := range c.Ports {
			p, ok := x.snap.Model.Ports.ByName(name)
			if !ok {
				continue
			}
			for _, r := range x.routerNets[p.Network] {
				for _, sn := range r.subnets {
					nets[sn.s.Network] = true
				}
				if ext := externalOf(r, x.snap.Model); ext != nil {
					hosts[ext.host.Name] = true
				}
			}
		}
	}
	for _, x := range []*index{prev, next} {
		for n := range nets {
			for name := range x.byNet[n] {
				for _, b := range x.snap.Bindings(name) {
					hosts[b.Host] = true
				}
			}
		}
	}
	return false, hosts
}

type switchApp struct {
	a       *app
	dpid    uint64
	ports   SwitchPorts
	learned map[uint64]flow.MAC  // the outside's MACs, by IPv4 address
	asked   map[uint64]time.Time // when an ARP request last went out for an address
	dirty   bool                 // learned changed: recompile
	buf     []byte
}

func tables(p *controller.Pipeline) Tables {
	return Tables{Ingress: p.ID(controller.TableL3Ingress), Input: p.ID(controller.TableL3Input),
		NATIn: p.ID(controller.TableL3NATIn), Route: p.ID(controller.TableL3Route), SNAT: p.ID(controller.TableL3SNAT),
		Out: p.ID(controller.TableL3Out), Resolve: p.ID(controller.TableL3Resolve), Forward: p.ID(controller.TableOverlayForward)}
}

// ARPInterval is how often a gateway host asks for its external next
// hops' MACs again.
const ARPInterval = 10 * time.Second

// TickInterval is how often it asks again (kit.Ticker).
func (s *switchApp) TickInterval() time.Duration { return ARPInterval }

// Tick asks for the external next hops' MACs again.
func (s *switchApp) Tick(ctx *controller.Context, _ time.Time) {
	clear(s.asked)
	s.askGateways(ctx)
}

// Adopt takes back the outside MACs an earlier loomd learned.
func (s *switchApp) Adopt(ctx *controller.Context, found []*flow.Flow) {
	s.adoptLearned(s.a.current(), found, tables(ctx.Pipeline()).Out)
}

// PortsChanged: the uplink or tunnel port came or went, or changed
// number (kit.PortWatcher).
func (s *switchApp) PortsChanged(ctx *controller.Context, snap *view.Snapshot) bool {
	return kit.FindSwitchPorts(ctx, snap) != s.ports
}

// Dirty tells the shell to compile again: a packet-in taught an outside
// MAC (kit.Dirtier).
func (s *switchApp) Dirty() bool { return s.dirty }

// Compile is the switch's routing flows, with the misses of the tables
// the router ends itself and the meter of its packet-ins (flags and
// burst as OVS reports them back: a meter without burst and stats flags
// comes back with them, and would be sent again after every restart).
func (s *switchApp) Compile(ctx *controller.Context, ix *index, snap *view.Snapshot) kit.State {
	t := tables(ctx.Pipeline())
	s.ports, s.dirty = kit.FindSwitchPorts(ctx, snap), false
	st := compile(ix, s.dpid, t, s.ports, s.learned)
	return kit.State{Flows: append(st.Flows, InputMiss(t), ResolveMiss(t)),
		Meters: []*flow.Meter{{ID: MeterID, Flags: flow.MeterPktps | flow.MeterBurst | flow.MeterStats,
			Bands: []flow.Band{{Rate: ICMPRate, Burst: ICMPRate / 10}}}}}
}

// Synced asks for the outside gateways' MACs not learned yet.
func (s *switchApp) Synced(ctx *controller.Context, _ any) { s.askGateways(ctx) }

// adoptLearned takes the outside MACs a previous controller learned from
// the l3-out flows it left on the switch (a restart or an upgrade of
// loomd): the way out keeps working without waiting for ARP.
func (s *switchApp) adoptLearned(ix *index, found []*flow.Flow, out uint8) {
	for _, f := range found {
		if f.Table != out {
			continue
		}
		var mac flow.MAC
		for _, a := range f.Apply {
			if a.Kind == flow.ActSetField && a.Field == flow.EthDst {
				mac = flow.MAC(a.Value)
			}
		}
		if mac == 0 {
			continue
		}
		if dst, ok := f.Match.Get(flow.IPv4Dst); ok && f.Priority == prioGateway {
			s.learned[dst.Value] = mac // an on-link outside address
			continue
		}
		// The default route's: the router's external gateway.
		if reg, ok := f.Match.Get(regRouter); ok && f.Priority == prioNonIP {
			if r := ix.byKey[reg.Value]; r != nil {
				if x := externalOf(r, ix.snap.Model); x != nil && x.gateway.IsValid() {
					s.learned[ip4(x.gateway)] = mac
				}
			}
		}
	}
}

// packetIn answers a packet the router could not route with an ICMP
// error from the gateway of the sender's subnet: time exceeded (the TTL
// ran out in dec_ttl), net unreachable (no route) or host unreachable (no
// port has the address).
func (s *switchApp) PacketIn(ctx *controller.Context, ev controller.PacketIn) {
	t := tables(ctx.Pipeline())
	f := ev.Frame
	if f == nil || ev.FrameErr != nil {
		return
	}
	switch ev.Msg.TableID {
	case t.Ingress: // an ARP reply from the outside
		if f.Layers&packet.HasARP != 0 && f.ARP.Op == packet.ARPReply && f.ARP.SPA.Is4() {
			ip, mac := ip4(f.ARP.SPA), flow.MACFrom(f.ARP.SHA)
			if s.learned[ip] != mac {
				s.learned[ip] = mac
				s.dirty = true
				ctx.Log().Info("learned an outside address", "ip", f.ARP.SPA, "mac", mac)
			}
		}
		return
	case t.Out: // no MAC yet for the next hop: ask
		if f.Layers&packet.HasIPv4 == 0 {
			return
		}
		for _, x := range s.externals() {
			s.ask(ctx, x, x.nextHop(f.IPv4.Dst))
		}
		return
	}
	if f.Layers&packet.HasIPv4 == 0 {
		return
	}
	var typ, code uint8
	switch {
	case ev.Msg.Reason == wire.PacketInInvalidTTL:
		typ = packet.ICMPv4TimeExceeded
	case ev.Msg.TableID == t.Route:
		typ, code = packet.ICMPv4DestUnreachable, packet.ICMPv4NetUnreachable
	case ev.Msg.TableID == t.Resolve:
		typ, code = packet.ICMPv4DestUnreachable, packet.ICMPv4HostUnreachable
	default:
		return
	}
	if f.IPv4.Proto == packet.ProtoICMP && f.Layers&packet.HasICMP != 0 && isICMPError(f.ICMP.Type) {
		return // never an error about an error
	}
	m, err := flow.DecodeMatch(ev.Msg.Match)
	if err != nil {
		return
	}
	reg, ok := m.Get(regRouter)
	if !ok {
		return
	}
	ix := s.a.current()
	snap := ix.snap
	r := ix.byKey[reg.Value]
	if r == nil {
		return
	}
	sn, ok := r.subnetFor(f.IPv4.Src)
	if !ok {
		return
	}
	// The sender's MAC: the frame's source was rewritten by the time the
	// packet reached the controller, so take its port's from the model.
	dstMAC, ok := senderMAC(snap, s.dpid, ev.Msg.InPort)
	if !ok {
		return
	}
	gw := sn.gw
	s.buf = packet.AppendIPv4ICMPError(s.buf[:0], packet.MAC(dstMAC.Bytes()), packet.MAC(sn.mac.Bytes()),
		netip.AddrFrom4([4]byte{byte(gw >> 24), byte(gw >> 16), byte(gw >> 8), byte(gw)}), f.IPv4.Src, typ, code,
		ev.Msg.Data[f.L3Offset:])
	if err := ctx.PacketOut(flow.PortController, s.buf, flow.Output(ev.Msg.InPort)); err != nil {
		ctx.Log().Warn("cannot send an ICMP error", "error", err)
	}
}

func isICMPError(t uint8) bool { return t == 3 || t == 4 || t == 5 || t == 11 || t == 12 }

// senderMAC returns the MAC of the model port bound to port ofport of the
// switch's host.
func senderMAC(s *view.Snapshot, dpid uint64, ofport uint32) (flow.MAC, bool) {
	host, ok := s.HostByDatapath(dpid)
	if !ok {
		return 0, false
	}
	for _, name := range s.PortsOn(host.Name) {
		p, ok := s.Model.Ports.ByName(name)
		if b, bound := s.Binding(name); ok && bound && b.OFPort == ofport {
			mac, err := flow.ParseMAC(p.MAC)
			return mac, err == nil
		}
	}
	return 0, false
}

// externals lists the ways out this switch is the gateway of.
func (s *switchApp) externals() []*external {
	ix := s.a.current()
	snap := ix.snap
	host, ok := snap.HostByDatapath(s.dpid)
	if !ok {
		return nil
	}
	var out []*external
	for _, r := range ix.routers {
		// Only a way out that is compiled: its zone allocated here (else
		// an ARP asked now is answered to no flow, and asking again waits
		// a second).
		if x := externalOf(r, snap.Model); x != nil && x.host.ID == host.ID {
			if _, ok := snap.Zone(host.Name, kit.RouterZone(r.r.ID)); ok {
				out = append(out, x)
			}
		}
	}
	return out
}

// askGateways sends an ARP request for each external gateway this switch
// has not learned yet.
func (s *switchApp) askGateways(ctx *controller.Context) {
	for _, x := range s.externals() {
		if x.gateway.IsValid() {
			if _, ok := s.learned[ip4(x.gateway)]; !ok {
				s.ask(ctx, x, x.gateway)
			}
		}
	}
}

// ask sends an ARP request for a out of the uplink, from the router's
// external address, at most once a second per address.
func (s *switchApp) ask(ctx *controller.Context, x *external, a netip.Addr) {
	if !a.Is4() || s.ports.Uplink == 0 {
		return
	}
	now := time.Now()
	if t, ok := s.asked[ip4(a)]; ok && now.Sub(t) < time.Second {
		return
	}
	s.asked[ip4(a)] = now
	src := netip.AddrFrom4([4]byte{byte(x.ip >> 24), byte(x.ip >> 16), byte(x.ip >> 8), byte(x.ip)})
	s.buf = packet.AppendARP(s.buf[:0], packet.ARPRequest, packet.MAC(x.mac.Bytes()), src, packet.MAC{}, a)
	acts := []flow.Action{flow.Output(s.ports.Uplink)}
	if x.vlanVID != 0 {
		acts = []flow.Action{flow.PushVLAN(), flow.SetField(flow.VlanVID, x.vlanVID), flow.Output(s.ports.Uplink)}
	}
	if err := ctx.PacketOut(flow.PortController, s.buf, acts...); err != nil {
		ctx.Log().Warn("cannot send an ARP request", "error", err)
	}
}
