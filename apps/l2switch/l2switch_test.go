package l2switch_test

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/l2switch"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

const cookie = "cookie=0x1000000000000, "

// lab runs the runtime with l2switch and one emulated switch.
type lab struct {
	t    testing.TB
	sw   *emu.Switch
	outs chan []byte // packet-outs seen by the switch
}

func newLab(t testing.TB, opt emu.Options, seed ...*flow.Flow) *lab {
	t.Helper()
	env := controllertest.Start(t, controller.Config{Apps: []string{l2switch.Name}}, nil)
	lb := &lab{t: t, outs: make(chan []byte, 1024)}
	if opt.OnPacketOut == nil {
		opt.OnPacketOut = func(m []byte) { lb.outs <- m }
	}
	opt.DatapathID = 1
	if opt.Ports == nil {
		for i := uint32(1); i <= 4; i++ {
			opt.Ports = append(opt.Ports, wire.Port{PortNo: i, Name: "p"})
		}
	}
	opt.Flows = seed
	lb.sw = env.Dial(opt)
	env.Ready(1)
	return lb
}

func mac(n byte) packet.MAC { return packet.MAC{2, 0, 0, 0, 0, n} }

var bcast = packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (l *lab) packetIn(port uint32, dst, src packet.MAC) {
	frame := packet.AppendEthernet(nil, dst, src, 0x0800)
	frame = append(frame, make([]byte, 46)...)
	l.sw.PacketIn(port, 0, 0xffff<<48, wire.PacketInNoMatch, frame)
}

// packetOut waits for the next PACKET_OUT and returns its in_port and
// first output port.
func (l *lab) packetOut() (in, out uint32) {
	l.t.Helper()
	select {
	case m := <-l.outs:
		// header(8) buffer_id(4) in_port(4) actions_len(2) pad(6) action: type(2) len(2) port(4)
		return binary.BigEndian.Uint32(m[12:]), binary.BigEndian.Uint32(m[28:])
	case <-time.After(3 * time.Second):
		l.t.Fatal("no packet-out")
		return 0, 0
	}
}

func (l *lab) expectFlows(want ...string) {
	l.t.Helper()
	var got map[string]bool
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		got = l.sw.Flows()
		ok := len(got) == len(want)
		for _, w := range want {
			ok = ok && got[w]
		}
		if ok {
			return
		}
	}
	l.t.Errorf("switch flows:")
	for f := range got {
		l.t.Errorf("  have %s", f)
	}
	for _, w := range want {
		l.t.Errorf("  want %s", w)
	}
	l.t.FailNow()
}

var fixed = []string{
	"cookie=0xffff000000000000, priority=0 actions=CONTROLLER:65535",
	cookie + "priority=200,dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0 actions=drop",
	cookie + "table=1, priority=0 actions=FLOOD",
}

func learned(port int, m string) []string {
	p := string(rune('0' + port))
	return []string{
		cookie + "idle_timeout=300, send_flow_rem priority=100,in_port=" + p + ",dl_src=" + m + " actions=goto_table:1",
		cookie + "table=1, idle_timeout=300, send_flow_rem priority=100,dl_dst=" + m + " actions=output:" + p,
	}
}

func flows(groups ...[]string) []string {
	out := append([]string(nil), fixed...)
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func TestLearnForwardMoveAndForget(t *testing.T) {
	l := newLab(t, emu.Options{})
	l.expectFlows(fixed...)

	// A (port 1) broadcasts: learned, flooded.
	l.packetIn(1, bcast, mac(1))
	if in, out := l.packetOut(); in != 1 || out != flow.PortFlood {
		t.Errorf("broadcast: packet-out in %d out %x", in, out)
	}
	l.expectFlows(flows(learned(1, "02:00:00:00:00:01"))...)

	// B (port 2) answers A: learned, sent straight to port 1.
	l.packetIn(2, mac(1), mac(2))
	if in, out := l.packetOut(); in != 2 || out != 1 {
		t.Errorf("unicast: packet-out in %d out %d", in, out)
	}
	l.expectFlows(flows(learned(1, "02:00:00:00:00:01"), learned(2, "02:00:00:00:00:02"))...)

	// A moves to port 3: its old entry goes, traffic to it follows.
	l.packetIn(3, mac(2), mac(1))
	if _, out := l.packetOut(); out != 2 {
		t.Errorf("after move: out %d", out)
	}
	l.expectFlows(flows(learned(3, "02:00:00:00:00:01"), learned(2, "02:00:00:00:00:02"))...)

	// B's link goes down: B is forgotten.
	l.sw.PortStatus(wire.PortModified, wire.Port{PortNo: 2, State: wire.PortStateLinkDown})
	l.expectFlows(flows(learned(3, "02:00:00:00:00:01"))...)

	// A's destination flow idles out: A is forgotten entirely.
	dst, _ := l.sw.Lookup(flow.New(1, 100, flow.Match{}.EthDst(0x020000000001)))
	l.sw.FlowRemoved(dst, controller.RemovedIdle)
	l.expectFlows(fixed...)

	// A frame from a multicast source is invalid: neither learned nor forwarded.
	l.packetIn(1, mac(9), packet.MAC{1, 0, 0x5e, 0, 0, 1})
	select {
	case <-l.outs:
		t.Error("a frame from a multicast source was forwarded")
	case <-time.After(50 * time.Millisecond):
	}
	l.expectFlows(fixed...)
}

func TestRestartAdoptsLearnedFlows(t *testing.T) {
	seed := []*flow.Flow{}
	// What an earlier loomd left: A on port 1, B on port 2, and a stray
	// destination flow with no source flow (dropped).
	for _, e := range []struct {
		m    flow.MAC
		port uint32
	}{{0x020000000001, 1}, {0x020000000002, 2}} {
		src := flow.New(0, 100, flow.Match{}.InPort(e.port).EthSrc(e.m)).Goto(1)
		dst := flow.New(1, 100, flow.Match{}.EthDst(e.m)).Act(flow.Output(e.port))
		for _, f := range []*flow.Flow{src, dst} {
			f.Cookie, f.IdleTimeout, f.Flags = 1<<48, 300, flow.FlagSendFlowRem
			seed = append(seed, f)
		}
	}
	stray := flow.New(1, 100, flow.Match{}.EthDst(0x020000000009)).Act(flow.Output(3))
	stray.Cookie = 1 << 48
	seed = append(seed, stray)
	// The runtime and fixed flows too, as the earlier run left them.
	miss := flow.New(0, 0, nil).Act(flow.Output(flow.PortController))
	miss.Cookie = 0xffff << 48
	res := flow.New(0, 200, flow.Match{}.SetMasked(flow.EthDst, 0x0180c2000000, 0xfffffffffff0))
	res.Cookie = 1 << 48
	flood := flow.New(1, 0, nil).Act(flow.Output(flow.PortFlood))
	flood.Cookie = 1 << 48
	seed = append(seed, miss, res, flood)

	l := newLab(t, emu.Options{}, seed...)
	l.expectFlows(flows(learned(1, "02:00:00:00:00:01"), learned(2, "02:00:00:00:00:02"))...)
	if n := l.sw.Counters.FlowMods.Load(); n != 1 {
		t.Errorf("adoption should cost exactly one flow-mod (deleting the stray), got %d", n)
	}
	// A is known without relearning: a frame from C to A goes to port 1.
	l.packetIn(3, mac(1), mac(3))
	if _, out := l.packetOut(); out != 1 {
		t.Errorf("adopted MAC: out %d", out)
	}
}

// BenchmarkPacketInToFlowMod measures the whole reactive path over a real
// socket: an emulated switch sends packet-ins from new source MACs; the
// controller decodes, learns, installs two flows and sends a packet-out.
// One op is one packet-in answered (its two flow-mods and packet-out seen
// by the switch). The emulated switch only counts what it reads, so the
// allocations are the controller's.
func BenchmarkPacketInToFlowMod(b *testing.B) {
	var mu sync.Mutex
	outs := 0
	cond := sync.NewCond(&mu)
	l := newLab(b, emu.Options{CountOnly: true, OnPacketOut: func([]byte) {
		mu.Lock()
		outs++
		cond.Signal()
		mu.Unlock()
	}})
	// One PACKET_IN template; every op patches in a new source MAC, so
	// every op learns (2 flow-mods) and floods (1 packet-out).
	eth := append(packet.AppendEthernet(nil, bcast, mac(0), 0x0800), make([]byte, 46)...)
	msg := emu.AppendPacketIn(nil, 0, 1, 0, 0xffff<<48, 0, eth)
	srcOff := len(msg) - len(eth) + 6
	const window = 256
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		for i-outs >= window {
			cond.Wait()
		}
		mu.Unlock()
		binary.BigEndian.PutUint32(msg[srcOff+2:], uint32(i))
		l.sw.Send(msg)
	}
	mu.Lock()
	for outs < b.N {
		cond.Wait()
	}
	mu.Unlock()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packet-ins/s")
}

// TestWhereFramesGo runs frames through the emulated switch's tables
// (emu.Trace): an unknown source goes to the controller, and once learned
// (the app's flows, exactly as expected) a known destination leaves by its
// port; an unknown one floods.
func TestWhereFramesGo(t *testing.T) {
	l := newLab(t, emu.Options{})
	controllertest.ExpectFlows(t, l.sw, nil,
		"cookie=0xffff000000000000, priority=0 actions=CONTROLLER:65535", // the runtime's miss
		cookie+"priority=200,dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0 actions=drop",
		cookie+"table=1, priority=0 actions=FLOOD")
	frame := func(dst, src packet.MAC) []byte {
		return append(packet.AppendEthernet(nil, dst, src, 0x0800), make([]byte, 46)...)
	}
	if tr := l.sw.Trace(1, frame(mac(2), mac(1))); !tr.ToController() || len(tr.Outputs) != 1 {
		t.Fatalf("unknown source: %v", tr)
	}
	l.packetIn(1, bcast, mac(1))
	l.packetIn(2, bcast, mac(2))
	controllertest.WaitFlow(t, l.sw, "sw", true, "dl_dst=02:00:00:00:00:02")
	if tr := l.sw.Trace(1, frame(mac(2), mac(1))); len(tr.Outputs) != 1 || tr.Outputs[0] != 2 || tr.Stopped != "" {
		t.Errorf("known source to known destination: %v", tr)
	}
	if tr := l.sw.Trace(1, frame(mac(9), mac(1))); len(tr.Outputs) != 1 || tr.Outputs[0] != flow.PortFlood {
		t.Errorf("to an unknown destination: %v", tr)
	}
}

// BenchmarkPacketInRoundTrip is one packet-in in flight, as loombench's
// latency mode: an emulated switch sends a packet-in and waits for the
// packet-out before sending the next. One op is one round trip over a
// unix socket: the emulated switch's write, the controller's read,
// decode, l2switch, encode and write, the switch's read. "known": the
// source MAC is learned already (a packet-out only, the steady state);
// "new": every op learns a new MAC (two flow-mods, a barrier and a
// packet-out). Allocations are the controller's (the emulated switch
// reuses its buffers).
func BenchmarkPacketInRoundTrip(b *testing.B) {
	for _, mode := range []string{"known", "new"} {
		b.Run(mode, func(b *testing.B) {
			got := make(chan struct{}, 1)
			l := newLab(b, emu.Options{CountOnly: true, OnPacketOut: func([]byte) { got <- struct{}{} }})
			// 64-byte IPv4/UDP frames, as loombench sends.
			udp := func(dst, src packet.MAC) []byte {
				return packet.AppendIPv4UDP(nil, dst, src, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
					5000, 5001, make([]byte, 22))
			}
			eth := udp(mac(2), mac(1))
			msg := emu.AppendPacketIn(nil, 0, 1, 0, 0xffff<<48, 0, eth)
			srcOff := len(msg) - len(eth) + 6
			// Learn both hosts first: 02:..:01 on port 1, 02:..:02 on port 2.
			l.sw.Send(msg)
			<-got
			l.sw.Send(emu.AppendPacketIn(nil, 0, 2, 0, 0xffff<<48, 0, udp(mac(1), mac(2))))
			<-got
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "new" {
					binary.BigEndian.PutUint32(msg[srcOff+2:], uint32(i)+1<<24)
				}
				l.sw.Send(msg)
				<-got
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/round-trip")
		})
	}
}
