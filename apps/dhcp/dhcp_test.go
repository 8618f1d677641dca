package dhcp

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/packet"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// fabric is the runtime with the DHCP server and an emulated switch for
// hv1.
type fabric struct {
	*lab
	reg   *prometheus.Registry
	sw    *emu.Switch
	outs  chan []byte
	table uint8 // dhcp's id in the controller's pipeline
}

func newFabric(t testing.TB, l *lab, opt emu.Options) *fabric {
	reg := prometheus.NewRegistry()
	f := &fabric{lab: l, reg: reg, outs: make(chan []byte, 64)}
	env := controllertest.Start(t, controller.Config{Apps: []string{Name}, Services: kit.Services(l.View, nil)}, reg)
	opt.DatapathID = l.DPID("hv1")
	if opt.OnPacketOut == nil {
		opt.OnPacketOut = func(m []byte) { f.outs <- m }
	}
	f.table = env.Ctl.Pipeline().ID(controller.TableDHCP)
	f.sw = env.Dial(opt)
	env.Ready(opt.DatapathID)
	return f
}

// flows waits until the switch's flows in the DHCP table are want.
func (f *fabric) flows(want ...string) {
	f.T.Helper()
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		got = got[:0]
		for s := range f.sw.Flows() {
			if strings.Contains(s, ",tp_dst=67 ") {
				got = append(got, s)
			}
		}
		if len(got) == len(want) {
			ok := true
			for _, w := range want {
				ok = ok && f.sw.Flows()[w]
			}
			if ok {
				return
			}
		}
	}
	f.T.Fatalf("DHCP flows %q, want %q", got, want)
}

// packetIn sends a request from port in as the DHCP flow's packet-in.
func (f *fabric) packetIn(in uint32, frame []byte) {
	f.sw.PacketIn(in, f.table, 0x0005<<48, wire.PacketInAction, frame)
}

// packetOut waits for the next PACKET_OUT and returns its in_port, first
// output port and frame.
func (f *fabric) packetOut() (in, out uint32, frame []byte) {
	f.T.Helper()
	select {
	case m := <-f.outs:
		// header(8) buffer_id(4) in_port(4) actions_len(2) pad(6) actions data
		alen := int(binary.BigEndian.Uint16(m[16:]))
		return binary.BigEndian.Uint32(m[12:]), binary.BigEndian.Uint32(m[28:]), m[24+alen:]
	case <-time.After(3 * time.Second):
		f.T.Fatal("no packet-out")
		return 0, 0, nil
	}
}

func (f *fabric) noPacketOut() {
	f.T.Helper()
	select {
	case m := <-f.outs:
		f.T.Fatalf("unexpected packet-out %x", m)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestAppFollowsTheView(t *testing.T) {
	l := newModel(t)
	f := newFabric(t, l, emu.Options{})
	const blue = "cookie=0x5000000000000, priority=100,udp,metadata=0x1389,tp_src=68,tp_dst=67 actions=meter:17480,CONTROLLER:65535"
	const v100 = "cookie=0x5000000000000, priority=100,udp,metadata=0x1000064,tp_src=68,tp_dst=67 actions=meter:17480,CONTROLLER:65535"
	f.flows()
	if n := f.sw.NumMeters(); n != 0 {
		t.Errorf("%d meters with no DHCP flow", n)
	}
	l.bind("b1", "hv1", 5)
	f.flows(blue)
	l.bind("v1", "hv1", 7)
	l.bind("r1p", "hv1", 9) // red: DHCP off
	f.flows(blue, v100)
	if n := f.sw.NumMeters(); n != 1 {
		t.Errorf("%d meters, want the DHCP meter", n)
	}
	l.bind("b1", "hv2", 5) // b1 moves away
	f.flows(v100)
	l.View.Unbind("v1", "hv1", "tap-v1")
	f.flows()
	for deadline := time.Now().Add(5 * time.Second); f.sw.NumMeters() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the meter stays with no DHCP flow")
		}
	}
}

func TestAppAnswers(t *testing.T) {
	l := newModel(t)
	l.bind("b1", "hv1", 5)
	f := newFabric(t, l, emu.Options{})
	f.packetIn(5, discover(macB1).frame())
	in, out, frame := f.packetOut()
	var fr packet.Frame
	var d packet.DHCP
	if err := fr.Decode(frame); err != nil || d.Decode(fr.Payload) != nil {
		t.Fatalf("reply %x: %v", frame, err)
	}
	if in != flow.PortController || out != 5 || d.MessageType != packet.DHCPOffer || d.YIAddr != ip("10.1.0.11") {
		t.Errorf("packet-out in_port %d out %d: %+v", in, out, d)
	}
	// An unknown MAC and an unbound port: no answer.
	f.packetIn(5, discover(packet.MAC{2, 9, 9, 9, 9, 9}).frame())
	f.packetIn(6, discover(macB1).frame())
	f.noPacketOut()

	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "loom_dhcp_requests_total" {
			for _, m := range mf.GetMetric() {
				counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["offer"] != 1 || counts["unknown_mac"] != 1 || counts["unknown_port"] != 1 {
		t.Errorf("loom_dhcp_requests_total: %v", counts)
	}
}

// BenchmarkAnswers measures DHCP answers per second through the whole
// path over a real socket: an emulated switch sends DISCOVER packet-ins
// (a window of 64 in flight), the runtime decodes them and the app
// answers each with an OFFER packet-out.
func BenchmarkAnswers(b *testing.B) {
	l := newModel(b)
	l.bind("b1", "hv1", 5)
	var mu sync.Mutex
	outs := 0
	cond := sync.NewCond(&mu)
	f := newFabric(b, l, emu.Options{CountOnly: true, OnPacketOut: func([]byte) {
		mu.Lock()
		outs++
		cond.Signal()
		mu.Unlock()
	}})
	msg := emu.AppendPacketIn(nil, 0, 5, f.table, 0x0005<<48, wire.PacketInAction, discover(macB1).frame())
	const window = 64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mu.Lock()
		for i-outs >= window {
			cond.Wait()
		}
		mu.Unlock()
		f.sw.Send(msg)
	}
	mu.Lock()
	for outs < b.N {
		cond.Wait()
	}
	mu.Unlock()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "answers/s")
}
