// Package lldp discovers the links between switches and feeds the
// topology graph (package topology): switches and their ports as they
// connect, change and leave, links from LLDP probes, and endpoints from
// ARP.
//
//	discovery: dl_type=0x88cc -> CONTROLLER            (probes)
//	           arp            -> CONTROLLER, goto next (endpoint learning)
//	           miss           -> goto next             (runtime)
//
// Every Interval the app sends a probe out of every up port of every
// switch (not LOCAL or other reserved ports): an LLDP frame whose Chassis
// ID is the switch (packet.DPIDChassisID), whose Port ID is the port
// (packet.PortNumberID), whose TTL is three intervals, and which carries a
// signature: an organizationally specific TLV with the send time and an
// HMAC of chassis, port and time under a key drawn when the app starts. A
// probe that arrives on another switch's port proves that direction of the
// link for the TTL, and is answered at once by a probe back when the other
// direction is not seen (yet), so both directions are found within a round
// trip of each other; probes from other chassis, forged ones (a VM can send
// LLDP too) and replays older than the TTL are ignored.
//
// The discovery table comes first in the pipeline, so probes never reach
// another app's tables.
package lldp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/topology"
)

// Name is the app's registered name.
const Name = "lldp"

// DefaultInterval is how often the app probes every port unless its
// option "interval" (a Go duration: loomd --app-opt lldp.interval=2s)
// says otherwise.
const DefaultInterval = 5 * time.Second

// Priorities in the discovery table.
const (
	prioLLDP = 200
	prioARP  = 100
)

// Signature TLV: a locally administered OUI and subtype, then 8 bytes of
// send time (Unix nanoseconds) and 16 bytes of HMAC-SHA256.
var sigOUI = [3]byte{0x02, 'L', 'M'}

const (
	sigSubtype = 1
	sigLen     = 8 + 16
)

func init() {
	controller.Register(Name, func(env controller.Env) (controller.App, error) {
		g, err := kit.Topology(env, "the lldp app")
		if err != nil {
			return nil, err
		}
		if err := env.CheckOptions("interval"); err != nil {
			return nil, err
		}
		interval := DefaultInterval
		if s, ok := env.Options["interval"]; ok {
			if interval, err = time.ParseDuration(s); err != nil || interval <= 0 {
				return nil, fmt.Errorf("option interval=%q: want a positive duration such as 5s", s)
			}
		}
		return New(g, interval, env.Log), nil
	})
}

// App is the link discovery app. It implements controller.App and
// controller.SwitchWatcher.
type App struct {
	g        *topology.Graph
	interval time.Duration
	ttl      uint16 // seconds, in every probe
	key      []byte
	log      *slog.Logger
	now      func() time.Time

	// mu serializes the graph updates about switch presence, so that a
	// switch reconnecting (new session up before the old one is down) is
	// never left out of the graph.
	mu       sync.Mutex
	sessions map[uint64]int             // sessions up per switch
	ports    map[uint64][]topology.Port // latest port list per switch
}

// New returns the app feeding g, probing every interval. log may be nil.
func New(g *topology.Graph, interval time.Duration, log *slog.Logger) *App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := make([]byte, 32)
	rand.Read(key)
	ttl := math.Ceil((3 * interval).Seconds())
	return &App{g: g, interval: interval, ttl: uint16(min(max(ttl, 1), math.MaxUint16)), key: key, log: log,
		now: time.Now, sessions: map[uint64]int{}, ports: map[uint64][]topology.Port{}}
}

// Name implements controller.App.
func (a *App) Name() string { return Name }

// Graph returns the graph the app feeds.
func (a *App) Graph() *topology.Graph { return a.g }

// Attach implements controller.App.
func (a *App) Attach(sw controller.SwitchInfo) controller.SwitchApp {
	return &agent{a: a, dpid: sw.DatapathID}
}

// SwitchUp implements controller.SwitchWatcher: the switch joins the
// graph with the ports it has.
func (a *App) SwitchUp(sw controller.SwitchInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sessions[sw.DatapathID]++
	a.g.SwitchUp(topology.DPID(sw.DatapathID), a.ports[sw.DatapathID])
}

// SwitchDown implements controller.SwitchWatcher: the switch leaves the
// graph with its links, unless a newer session of it is up.
func (a *App) SwitchDown(sw controller.SwitchInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sessions[sw.DatapathID]--; a.sessions[sw.DatapathID] > 0 {
		return
	}
	delete(a.sessions, sw.DatapathID)
	delete(a.ports, sw.DatapathID)
	a.g.SwitchDown(topology.DPID(sw.DatapathID))
}

// portChanged records a port change for SwitchUp and in the graph.
func (a *App) portChanged(dpid uint64, ctx *controller.Context, ev controller.PortStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ports[dpid] = portList(ctx)
	if !physical(ev.Port.PortNo) {
		return
	}
	if ev.Reason == wire.PortDeleted {
		a.g.DeletePort(topology.DPID(dpid), ev.Port.PortNo)
	} else {
		a.g.SetPort(topology.DPID(dpid), toPort(ev.Port))
	}
}

// physical reports whether a port number is a real port (not LOCAL or
// another reserved port).
func physical(no uint32) bool { return no != 0 && no <= flow.PortMax }

func toPort(p wire.Port) topology.Port {
	return topology.Port{Number: p.PortNo, Name: p.Name, MAC: p.HWAddr, Up: p.Up()}
}

func portList(ctx *controller.Context) []topology.Port {
	var out []topology.Port
	ctx.Ports(func(p wire.Port) {
		if physical(p.PortNo) {
			out = append(out, toPort(p))
		}
	})
	return out
}

// sign returns the signature TLV value of a probe sent at t.
func (a *App) sign(chassis, port []byte, t time.Time) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, sigLen), uint64(t.UnixNano()))
	return append(v, a.mac(chassis, port, v[:8])...)
}

func (a *App) mac(chassis, port, stamp []byte) []byte {
	m := hmac.New(sha256.New, a.key)
	for _, b := range [][]byte{chassis, {0}, port, {0}, stamp} {
		m.Write(b)
	}
	return m.Sum(nil)[:16]
}

// verify reports whether a probe carries this app's valid signature and is
// not older than its TTL.
func (a *App) verify(l *packet.LLDP, now time.Time) bool {
	for _, o := range l.Org[:l.NumOrg] {
		if o.OUI != sigOUI || o.Subtype != sigSubtype || len(o.Value) != sigLen {
			continue
		}
		if !hmac.Equal(o.Value[8:], a.mac(l.ChassisID.Value, l.PortID.Value, o.Value[:8])) {
			return false
		}
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(o.Value)))
		age := now.Sub(sent)
		return age > -time.Second && age <= time.Duration(l.TTL)*time.Second
	}
	return false
}

// agent is the app on one switch.
type agent struct {
	a     *App
	dpid  uint64
	next  uint8 // the table after discovery, if hasNext
	frame []byte
}

// TickInterval implements controller.Ticker.
func (s *agent) TickInterval() time.Duration { return s.a.interval }

// Start installs the discovery flows and records the switch's ports (it
// joins the graph in SwitchUp, once ready).
func (s *agent) Start(ctx *controller.Context, _ []*flow.Flow) {
	p := ctx.Pipeline()
	table := p.ID(controller.TableDiscovery)
	ctx.AddFlow(flow.New(table, prioLLDP, flow.Match{}.EthType(packet.EtherTypeLLDP)).Act(flow.Output(flow.PortController)))
	arp := flow.New(table, prioARP, flow.Match{}.EthType(packet.EtherTypeARP)).Act(flow.Output(flow.PortController))
	if next, ok := p.Next(controller.TableDiscovery); ok {
		arp.Goto(p.ID(next))
	}
	ctx.AddFlow(arp)
	s.a.mu.Lock()
	s.a.ports[s.dpid] = portList(ctx)
	s.a.mu.Unlock()
}

// Handle probes on ticks, on ports coming up and back to new links, learns
// links from probes
// and endpoints from ARP, and keeps the graph's ports current.
func (s *agent) Handle(ctx *controller.Context, ev controller.Event) {
	switch ev := ev.(type) {
	case controller.Tick:
		ctx.Ports(func(p wire.Port) { s.probe(ctx, p, ev.Now) })
		s.a.g.Expire()
	case controller.PortStatus:
		s.a.portChanged(s.dpid, ctx, ev)
		if ev.Reason != wire.PortDeleted {
			s.probe(ctx, ev.Port, s.a.now())
		}
	case controller.PacketIn:
		s.packetIn(ctx, ev)
	}
}

// probe sends a probe out of p if it is an up physical port.
func (s *agent) probe(ctx *controller.Context, p wire.Port, now time.Time) {
	if !physical(p.PortNo) || !p.Up() {
		return
	}
	chassis, port := packet.DPIDChassisID(s.dpid), packet.PortNumberID(p.PortNo)
	s.frame = packet.AppendLLDP(s.frame[:0], p.HWAddr, packet.LLDPInfo{
		ChassisID: chassis, PortID: port, TTL: s.a.ttl, SystemName: []byte("loom"),
		Org: []packet.OrgTLV{{OUI: sigOUI, Subtype: sigSubtype, Value: s.a.sign(chassis.Value, port.Value, now)}},
	})
	if err := ctx.PacketOut(flow.PortController, s.frame, flow.Output(p.PortNo)); err != nil {
		ctx.Log().Warn("cannot send LLDP probe", "port", p.PortNo, "error", err)
	}
}

func (s *agent) packetIn(ctx *controller.Context, ev controller.PacketIn) {
	if ev.Msg.TableID != ctx.Pipeline().ID(controller.TableDiscovery) {
		return
	}
	fr, in := ev.Frame, ev.Msg.InPort
	switch {
	case fr.Layers&packet.HasLLDP != 0:
		l := &fr.LLDP
		dpid, ok1 := l.ChassisID.DPID()
		port, ok2 := l.PortID.PortNumber()
		if !ok1 || !ok2 {
			return // another chassis's LLDP
		}
		if !s.a.verify(l, s.a.now()) {
			ctx.Log().Debug("ignoring an LLDP probe that this controller did not send recently", "port", in,
				"chassis", string(l.ChassisID.Value), "port_id", string(l.PortID.Value))
			return
		}
		src := topology.PortRef{DPID: topology.DPID(dpid), Port: port}
		dst := topology.PortRef{DPID: topology.DPID(s.dpid), Port: in}
		link, ok := s.a.g.ObserveLink(src, dst, time.Duration(l.TTL)*time.Second)
		if ok && !link.Bidirectional() {
			// A new link, or one whose other direction lapsed: probe
			// back at once instead of at the next tick.
			if p, ok := ctx.Port(in); ok {
				s.probe(ctx, p, s.a.now())
			}
		}
	case fr.Layers&packet.HasARP != 0:
		ip := netip.Addr{}
		if fr.ARP.SHA == fr.Src {
			ip = fr.ARP.SPA
		}
		s.a.g.LearnEndpoint(topology.MAC(fr.Src), ip, topology.PortRef{DPID: topology.DPID(s.dpid), Port: in})
	}
}
