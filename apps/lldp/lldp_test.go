package lldp_test

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	_ "github.com/loom-sdn/loom/apps/l2switch"
	"github.com/loom-sdn/loom/apps/lldp"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/loom-sdn/loom/topology"
)

// testInterval is the lldp app's interval in these tests (option
// interval; probes' TTL: 1 s).
const testInterval = 100 * time.Millisecond

// net is a set of emulated switches joined by emulated cables: a probe
// sent out of a cabled port arrives as a packet-in on the other end.
type net struct {
	t   *testing.T
	env *controllertest.Env
	g   *topology.Graph

	mu     sync.Mutex
	sws    map[uint64]*emu.Switch
	cables map[topology.PortRef]topology.PortRef
	outs   map[topology.PortRef]int // packet-outs per port
}

func newNet(t *testing.T, apps ...string) *net {
	g := topology.New(topology.Options{})
	n := &net{t: t, g: g, sws: map[uint64]*emu.Switch{}, cables: map[topology.PortRef]topology.PortRef{},
		outs: map[topology.PortRef]int{}}
	n.env = controllertest.Start(t, controller.Config{Apps: apps, Services: kit.Services(nil, g),
		AppOptions: map[string]map[string]string{lldp.Name: {"interval": testInterval.String()}}}, nil)
	return n
}

// add connects a switch with ports 1..nports and LOCAL.
func (n *net) add(dpid uint64, nports uint32) *emu.Switch {
	n.t.Helper()
	opt := emu.Options{DatapathID: dpid, OnPacketOut: func(m []byte) { n.packetOut(dpid, m) }}
	for i := uint32(1); i <= nports; i++ {
		opt.Ports = append(opt.Ports, wire.Port{PortNo: i, Name: "p", HWAddr: [6]byte{2, 0, 0, 0, byte(dpid), byte(i)}})
	}
	opt.Ports = append(opt.Ports, wire.Port{PortNo: flow.PortLocal, Name: "br"})
	sw := n.env.Dial(opt)
	n.mu.Lock()
	n.sws[dpid] = sw
	n.mu.Unlock()
	n.env.Ready(dpid)
	return sw
}

func ref(d uint64, p uint32) topology.PortRef {
	return topology.PortRef{DPID: topology.DPID(d), Port: p}
}

func (n *net) plug(a, b topology.PortRef) {
	n.mu.Lock()
	n.cables[a], n.cables[b] = b, a
	n.mu.Unlock()
}

func (n *net) unplug(a topology.PortRef) {
	n.mu.Lock()
	delete(n.cables, n.cables[a])
	delete(n.cables, a)
	n.mu.Unlock()
}

// packetOut delivers a PACKET_OUT with one output action over its cable.
func (n *net) packetOut(dpid uint64, m []byte) {
	// header(8) buffer_id(4) in_port(4) actions_len(2) pad(6) actions data
	alen := int(binary.BigEndian.Uint16(m[16:]))
	if alen < 16 || binary.BigEndian.Uint16(m[24:]) != 0 {
		return
	}
	out := topology.PortRef{DPID: topology.DPID(dpid), Port: binary.BigEndian.Uint32(m[28:])}
	data := m[24+alen:]
	n.mu.Lock()
	n.outs[out]++
	peer, ok := n.cables[out]
	sw := n.sws[uint64(peer.DPID)]
	n.mu.Unlock()
	if ok && sw != nil {
		sw.PacketIn(peer.Port, n.env.Ctl.Pipeline().ID(controller.TableDiscovery), 0, 1, data)
	}
}

func (n *net) waitFor(what string, timeout time.Duration, cond func(*topology.Snapshot) bool) time.Duration {
	n.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond(n.g.Snapshot()) {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n.t.Fatalf("timed out after %v waiting for %s; topology: %+v", timeout, what, n.g.Snapshot())
	return 0
}

func linked(a, b topology.PortRef) func(*topology.Snapshot) bool {
	return func(s *topology.Snapshot) bool {
		for _, l := range s.LinksAt(a) {
			if p, _ := l.Peer(a); p == b && l.Bidirectional() {
				return true
			}
		}
		return false
	}
}

func noLinks(s *topology.Snapshot) bool { return len(s.Links) == 0 }

func TestDiscoveryAgingPortDownSwitchDown(t *testing.T) {
	n := newNet(t, "lldp")
	n.add(1, 3)
	sw2 := n.add(2, 3)
	n.waitFor("both switches", 2*time.Second, func(s *topology.Snapshot) bool { return len(s.Switches) == 2 })
	if sw, _ := n.g.Snapshot().Switch(1); len(sw.Ports) != 3 {
		t.Errorf("switch 1 ports (LOCAL left out): %+v", sw.Ports)
	}
	want := []string{
		"cookie=0xffff000000000000, priority=0 actions=drop",
		"cookie=0x2000000000000, priority=200,dl_type=0x88cc actions=CONTROLLER:65535",
		"cookie=0x2000000000000, priority=100,arp actions=CONTROLLER:65535",
	}
	for _, f := range want {
		if !sw2.Flows()[f] {
			t.Errorf("missing flow %s; have %v", f, sw2.Flows())
		}
	}

	n.plug(ref(1, 1), ref(2, 3))
	d := n.waitFor("the link", 2*time.Second, linked(ref(1, 1), ref(2, 3)))
	t.Logf("discovery (interval %v): %v", testInterval, d.Round(time.Millisecond))
	if p, ok := n.g.Path(1, 2); !ok || len(p) != 2 || p[0].Out != 1 || p[1].In != 3 {
		t.Errorf("path 1->2: %+v", p)
	}
	n.mu.Lock()
	local := n.outs[ref(1, flow.PortLocal)]
	n.mu.Unlock()
	if local != 0 {
		t.Errorf("%d probes out of LOCAL", local)
	}

	// Cut the cable: the link ages out after the probes' TTL (1 s).
	n.unplug(ref(1, 1))
	d = n.waitFor("the link to age out", 3*time.Second, noLinks)
	t.Logf("aged out after %v", d.Round(time.Millisecond))
	if d < 500*time.Millisecond {
		t.Errorf("link gone after %v, before its TTL", d)
	}

	// Link down removes it at once, and up finds it again at once.
	n.plug(ref(1, 1), ref(2, 3))
	n.waitFor("the link again", 2*time.Second, linked(ref(1, 1), ref(2, 3)))
	sw2.PortStatus(wire.PortModified, wire.Port{PortNo: 3, Name: "p", State: wire.PortStateLinkDown})
	if d := n.waitFor("link down", time.Second, noLinks); d > 300*time.Millisecond {
		t.Errorf("link down took %v", d)
	}
	sw2.PortStatus(wire.PortModified, wire.Port{PortNo: 3, Name: "p"})
	n.waitFor("link up", time.Second, linked(ref(1, 1), ref(2, 3)))

	// The switch leaving takes its links.
	sw2.Close()
	n.waitFor("switch 2 gone", time.Second, func(s *topology.Snapshot) bool {
		_, ok := s.Switch(2)
		return !ok && noLinks(s)
	})
}

// TestForgedAndForeignProbes: LLDP a VM sends (with Loom's chassis format
// but no valid signature, or a foreign chassis) makes no link; ARP makes
// endpoints, but not on link ports.
func TestForgedAndForeignProbes(t *testing.T) {
	n := newNet(t, "lldp", "l2switch")
	sw1 := n.add(1, 3)
	n.add(2, 3)
	if f := "cookie=0x2000000000000, priority=100,arp actions=CONTROLLER:65535,goto_table:1"; !sw1.Flows()[f] {
		t.Errorf("ARP flow missing: %v", sw1.Flows())
	}
	n.plug(ref(1, 1), ref(2, 1))
	n.waitFor("the link", 2*time.Second, linked(ref(1, 1), ref(2, 1)))

	table := n.env.Ctl.Pipeline().ID(controller.TableDiscovery)
	vm := packet.MAC{2, 0, 0, 0, 0, 0x42}
	for _, info := range []packet.LLDPInfo{
		{ChassisID: packet.DPIDChassisID(2), PortID: packet.PortNumberID(2), TTL: 120},
		{ChassisID: packet.LLDPID{Subtype: packet.ChassisSubtypeMAC, Value: vm[:]}, PortID: packet.PortNumberID(2), TTL: 120},
	} {
		sw1.PacketIn(2, table, 0, 1, packet.AppendLLDP(nil, vm, info))
	}
	// ARP from a VM on 1:2 is learned there; the copy flooded over the
	// link to 2:1 is not.
	arp := packet.AppendARP(nil, packet.ARPRequest, vm, netip.MustParseAddr("10.0.0.42"), packet.MAC{}, netip.MustParseAddr("10.0.0.1"))
	sw1.PacketIn(2, table, 0, 1, arp)
	n.sws[2].PacketIn(1, table, 0, 1, arp)
	n.waitFor("the endpoint", time.Second, func(s *topology.Snapshot) bool {
		e, ok := s.Endpoint(topology.MAC(vm))
		return ok && e.At == ref(1, 2) && len(e.IPs) == 1 && e.IPs[0].String() == "10.0.0.42"
	})
	time.Sleep(300 * time.Millisecond) // several probe rounds
	s := n.g.Snapshot()
	if len(s.Links) != 1 {
		t.Errorf("links after forged probes: %+v", s.Links)
	}
	if e, _ := s.Endpoint(topology.MAC(vm)); e.At != ref(1, 2) {
		t.Errorf("endpoint: %+v", e)
	}
}
