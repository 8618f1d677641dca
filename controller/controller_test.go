package controller

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The test app owns one table, sends its misses to the controller, and
// records every event it gets.
var (
	testTable = declareTable("test", "test-app", MissController)
	testOwner = declareOwner("test-app", 0x7f01)
	// testTableID is testTable's id in the pipeline of the harness's
	// controller (set by newHarness).
	testTableID uint8
)

type testApp struct {
	mu     sync.Mutex
	start  []*flow.Flow        // installed by Start
	found  map[uint64][]string // dpid -> flows found at Start
	events chan Event
}

func (a *testApp) Name() string { return "test-app" }

// The test app watches switches come and go.
var switchesUp, switchesDown atomic.Int64

func (a *testApp) SwitchUp(SwitchInfo)   { switchesUp.Add(1) }
func (a *testApp) SwitchDown(SwitchInfo) { switchesDown.Add(1) }

func (a *testApp) Attach(SwitchInfo) SwitchApp { return (*testSwitch)(a) }

type testSwitch testApp

// The test app ticks fast and counts ticks.
var ticks atomic.Int64

func (t *testSwitch) TickInterval() time.Duration { return time.Duration(tickInterval.Load()) }

// tickInterval is the test app's; 0 (no ticks) for a test where a tick
// would flush what the test checks is sent without one.
var tickInterval = func() *atomic.Int64 { var v atomic.Int64; v.Store(int64(10 * time.Millisecond)); return &v }()

func (t *testSwitch) Start(ctx *Context, found []*flow.Flow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range found {
		t.found[ctx.DatapathID()] = append(t.found[ctx.DatapathID()], f.String())
	}
	for _, f := range t.start {
		if err := ctx.AddFlow(f.Clone()); err != nil {
			panic(err)
		}
	}
}

func (t *testSwitch) Handle(ctx *Context, ev Event) {
	if _, ok := ev.(Tick); ok {
		ticks.Add(1)
		return
	}
	if pi, ok := ev.(PacketIn); ok && pi.Msg.InPort == 666 {
		panic("the test app trips over port 666")
	}
	if pi, ok := ev.(PacketIn); ok && pi.Msg.InPort == 778 {
		time.Sleep(slowAppDelay) // an app slow to answer
	}
	if pi, ok := ev.(PacketIn); ok && pi.Msg.InPort == 777 {
		<-stall // a switch goroutine that falls behind its switch
		return
	}
	if pi, ok := ev.(PacketIn); ok {
		// Learn the in_port as a flow and echo the packet back.
		f := flow.New(testTableID, 10, flow.Match{}.InPort(pi.Msg.InPort)).Act(flow.Output(flow.PortInPort))
		ctx.AddFlow(f)
		ctx.PacketOut(pi.Msg.InPort, pi.Msg.Data, flow.Output(flow.PortInPort))
	}
	select {
	case t.events <- ev:
	default: // a storm test: nobody is looking
	}
}

// stall holds the handler of a packet-in from port 777 until it is closed.
var stall = make(chan struct{})

var testAppInstance = &testApp{found: map[uint64][]string{}, events: make(chan Event, 100)}

func init() {
	Register("test-app", func(Env) (App, error) { return testAppInstance, nil })
}

type harness struct {
	t    testing.TB
	ctl  *Controller
	sock string
	srv  *openflow.Server
	stop context.CancelFunc
}

func newHarness(t testing.TB, cfg Config, ocfg openflow.Config) *harness {
	t.Helper()
	testAppInstance.mu.Lock()
	testAppInstance.found = map[uint64][]string{}
	testAppInstance.mu.Unlock()
	for len(testAppInstance.events) > 0 {
		<-testAppInstance.events
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Apps = []string{"test-app"}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctl, err := New(ctx, cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	testTableID = ctl.Pipeline().ID(testTable)
	sock := filepath.Join(t.TempDir(), "of.sock")
	l, err := openflow.Listen("unix:"+sock, openflow.TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	srv := &openflow.Server{Config: ocfg, Handler: ctl, Log: log}
	go srv.Serve(ctx, l)
	h := &harness{t: t, ctl: ctl, sock: sock, srv: srv, stop: cancel}
	t.Cleanup(func() { cancel(); srv.Wait(); ctl.Wait() })
	return h
}

func (h *harness) dial(opt emu.Options) *emu.Switch {
	h.t.Helper()
	s, err := emu.Dial("unix", h.sock, opt)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(s.Close)
	return s
}

// ready waits until the controller has reconciled the switch.
func (h *harness) ready(dpid uint64) *Switch {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if sw, ok := h.ctl.Switch(dpid); ok {
			select {
			case <-sw.Ready():
				return sw
			case <-time.After(60 * time.Second):
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("switch %x never became ready", dpid)
	return nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func ports(n int) []wire.Port {
	var ps []wire.Port
	for i := 1; i <= n; i++ {
		ps = append(ps, wire.Port{PortNo: uint32(i), Name: "p" + string(rune('0'+i))})
	}
	return ps
}

func TestInitialReconcileRemovesStaleAndAdopts(t *testing.T) {
	h := newHarness(t, Config{PacketInRate: 100, Bundles: true}, openflow.Config{})
	testAppInstance.start = []*flow.Flow{flow.New(testTableID, 50, flow.Match{}.EthType(0x0806)).Act(flow.Output(flow.PortFlood))}

	stale := flow.New(0, 7, flow.Match{}.InPort(9)).Act(flow.Output(1)) // cookie 0: nobody's
	mine := flow.New(testTableID, 50, flow.Match{}.EthType(0x0806)).Act(flow.Output(flow.PortFlood))
	mine.Cookie = uint64(testOwner) << CookieShift // the test app's: adopted, then kept as is
	old := flow.New(testTableID, 60, flow.Match{}.EthType(0x0800)).Act(flow.Output(2))
	old.Cookie = uint64(testOwner)<<CookieShift | 5 // the test app's, not re-added: removed
	sw := h.dial(emu.Options{DatapathID: 1, Ports: ports(2), EntriesPerPart: 1,
		Flows:  []*flow.Flow{stale, mine, old},
		Groups: []*flow.Group{{ID: 3, Type: flow.GroupAll, Buckets: []flow.Bucket{flow.NewBucket(flow.Output(1))}}},
		Meters: []*flow.Meter{{ID: 9, Flags: flow.MeterKbps, Bands: []flow.Band{{Rate: 10}}}},
	})
	h.ready(1)

	got := sw.Flows()
	exp := map[string]bool{
		"cookie=0xffff000000000000, priority=0 actions=meter:1,CONTROLLER:65535": true,
		"cookie=0x7f01000000000000, priority=50,arp actions=FLOOD":               true,
	}
	if len(got) != len(exp) {
		t.Errorf("switch flows: %v", got)
	}
	for f := range exp {
		if !got[f] {
			t.Errorf("missing %s (have %v)", f, got)
		}
	}
	if sw.NumGroups() != 0 || sw.NumMeters() != 1 {
		t.Errorf("groups %d meters %d: stale ones must go, the packet-in meter stay", sw.NumGroups(), sw.NumMeters())
	}
	if sw.Counters.BundleCommits.Load() != 1 {
		t.Errorf("flow changes should go in one bundle, commits=%d", sw.Counters.BundleCommits.Load())
	}
	testAppInstance.mu.Lock()
	found := testAppInstance.found[1]
	testAppInstance.mu.Unlock()
	if len(found) != 2 {
		t.Errorf("the app should have been shown its 2 flows, got %v", found)
	}
	// The one it re-added unchanged cost nothing: 2 adds (miss flow) + 2 deletes.
	if n := sw.Counters.FlowMods.Load(); n != 3 {
		t.Errorf("flow-mods: %d, want 3 (1 add, 2 deletes)", n)
	}
}

func TestReconcileIsIdempotent(t *testing.T) {
	h := newHarness(t, Config{PacketInRate: 100, Bundles: true, AuditInterval: 20 * time.Millisecond}, openflow.Config{})
	testAppInstance.start = []*flow.Flow{flow.New(testTableID, 50, flow.Match{}.EthType(0x0806)).Act(flow.Output(flow.PortFlood))}
	sw := h.dial(emu.Options{DatapathID: 2, Ports: ports(2)})
	h.ready(2)
	mods, meters := sw.Counters.FlowMods.Load(), sw.Counters.MeterMods.Load()
	barriers := sw.Counters.Barriers.Load()
	eventually(t, "three audits", func() bool { return sw.Counters.Barriers.Load() >= barriers+3 })
	if n := sw.Counters.FlowMods.Load() - mods; n != 0 {
		t.Errorf("audits of an unchanged switch sent %d flow-mods", n)
	}
	if n := sw.Counters.MeterMods.Load() - meters; n != 0 {
		t.Errorf("audits of an unchanged switch sent %d meter-mods", n)
	}
	// Someone deletes a flow of ours and the switch says so: restored at once.
	sw.FlowRemoved(testAppInstance.start[0], RemovedDelete)
	eventually(t, "deleted flow restored", func() bool { _, ok := sw.Lookup(testAppInstance.start[0]); return ok })
	// Silent drift: the next audit repairs it.
	miss := flow.New(testTableID, 0, nil).WithMeter(PacketInMeterID).Act(flow.Output(flow.PortController))
	sw.DeleteFlow(miss)
	eventually(t, "audit to restore the miss flow", func() bool { _, ok := sw.Lookup(miss); return ok })
	// A flow that expires is forgotten, and its owner told.
	timed := flow.New(testTableID, 10, flow.Match{}.InPort(1)).Act(flow.Output(flow.PortInPort))
	sw.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60)) // the app learns in_port=1
	eventually(t, "learned flow", func() bool { _, ok := sw.Lookup(timed); return ok })
	learned, _ := sw.Lookup(timed)
	sw.FlowRemoved(learned, RemovedIdle)
	if ev := waitEvent[FlowRemoved](t); ev.Flow.Priority != 10 || ev.Reason != RemovedIdle {
		t.Errorf("flow removed event: %+v", ev)
	}
	time.Sleep(60 * time.Millisecond) // two audits
	if _, ok := sw.Lookup(timed); ok {
		t.Error("an expired flow must not be revived")
	}
}

func TestReconnectSendsNothingWhenNothingChanged(t *testing.T) {
	h := newHarness(t, Config{PacketInRate: 100}, openflow.Config{DuplicateProbe: 100 * time.Millisecond})
	testAppInstance.start = []*flow.Flow{flow.New(testTableID, 50, flow.Match{}.EthType(0x0806)).Act(flow.Output(flow.PortFlood))}
	sw := h.dial(emu.Options{DatapathID: 3, Ports: ports(1), NoEcho: true})
	h.ready(3)
	flows := sw.Flows()
	// The switch loses its connection without noticing (silent, it answers
	// no echo), then reconnects: a new emulated connection with the same
	// tables, which replaces the dead session.
	time.Sleep(150 * time.Millisecond) // silent for longer than the probe
	sw2conn, err := net.Dial("unix", h.sock)
	if err != nil {
		t.Fatal(err)
	}
	var seed []*flow.Flow
	for f := range flows {
		seed = append(seed, parseBack(t, sw, f))
	}
	sw2 := emu.Run(sw2conn, emu.Options{DatapathID: 3, Ports: ports(1), Flows: seed,
		Meters: []*flow.Meter{{ID: PacketInMeterID, Flags: flow.MeterPktps | flow.MeterBurst | flow.MeterStats, Bands: []flow.Band{{Rate: 100, Burst: 10}}}}})
	t.Cleanup(sw2.Close)
	eventually(t, "old session replaced", func() bool {
		s, ok := h.ctl.Switch(3)
		return ok && s.sess.RemoteAddr() != "" && sw2.Counters.Barriers.Load() > 0
	})
	if n := sw2.Counters.FlowMods.Load() + sw2.Counters.MeterMods.Load(); n != 0 {
		t.Errorf("reconnect of an unchanged switch sent %d mods", n)
	}
	select {
	case <-sw.Done():
	case <-time.After(2 * time.Second):
		t.Error("the replaced session should be closed")
	}
}

// parseBack finds the flow object behind a string in sw's table.
func parseBack(t *testing.T, sw *emu.Switch, s string) *flow.Flow {
	t.Helper()
	var found *flow.Flow
	sw.Each(func(f *flow.Flow) {
		if f.String() == s {
			found = f.Clone()
		}
	})
	if found == nil {
		t.Fatalf("no flow %s", s)
	}
	return found
}

func TestPacketInLearnsAndErrorsAreAttributed(t *testing.T) {
	h := newHarness(t, Config{}, openflow.Config{})
	bad := flow.New(testTableID, 40, flow.Match{}.InPort(2)).Act(flow.RawAction([]byte{0xff, 0xff, 0, 4}))
	testAppInstance.start = []*flow.Flow{bad}
	var outs sync.WaitGroup
	outs.Add(1)
	sw := h.dial(emu.Options{DatapathID: 4, Ports: ports(2), NoBundles: true, OnPacketOut: func([]byte) { outs.Done() }})
	h.ready(4)
	// The switch refused the flow with the malformed action: the app is
	// told which flow, and it is gone from the desired state.
	ev := waitEvent[Rejected](t)
	if f, ok := ev.Object.(*flow.Flow); !ok || f.Priority != 40 {
		t.Errorf("rejected object: %v", ev.Object)
	}
	sw2, _ := h.ctl.Switch(4)
	if _, ok := sw2.flows[bad.Key()]; ok {
		t.Error("a rejected flow must leave the desired state")
	}
	frame := make([]byte, 60)
	sw.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, frame)
	if pi := waitEvent[PacketIn](t); pi.Msg.InPort != 1 {
		t.Errorf("packet-in in_port %d", pi.Msg.InPort)
	}
	outs.Wait()
	learned := flow.New(testTableID, 10, flow.Match{}.InPort(1)).Act(flow.Output(flow.PortInPort))
	eventually(t, "learned flow on the switch", func() bool { _, ok := sw.Lookup(learned); return ok })
}

func waitEvent[T Event](t *testing.T) T {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-testAppInstance.events:
			if e, ok := ev.(T); ok {
				return e
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T event", zero)
			return zero
		}
	}
}

func TestEchoTimeoutDropsSilentSwitch(t *testing.T) {
	testAppInstance.start = nil
	h := newHarness(t, Config{}, openflow.Config{EchoInterval: 30 * time.Millisecond})
	sw := h.dial(emu.Options{DatapathID: 5, NoEcho: true})
	h.ready(5)
	up, down := switchesUp.Load(), switchesDown.Load()
	start := time.Now()
	select {
	case <-sw.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("a switch that never answers echo must be dropped")
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("dropped after %v: too early for a 90 ms timeout", d)
	}
	eventually(t, "the app to see the switch go down", func() bool { return switchesDown.Load() == down+1 })
	n := ticks.Load()
	time.Sleep(50 * time.Millisecond)
	if ticks.Load() != n {
		t.Error("ticks must stop with the switch")
	}
	if switchesUp.Load() != up {
		t.Error("no switch came up")
	}
	// A switch that answers stays, and its apps tick.
	ok := h.dial(emu.Options{DatapathID: 6})
	h.ready(6)
	n0 := ticks.Load()
	eventually(t, "ticks", func() bool { return ticks.Load() >= n0+3 })
	select {
	case <-ok.Done():
		t.Fatal("a live switch was dropped")
	case <-time.After(300 * time.Millisecond):
	}
}

func TestIncompatibleSwitchGetsHelloFailed(t *testing.T) {
	testAppInstance.start = nil
	h := newHarness(t, Config{}, openflow.Config{})
	sw := h.dial(emu.Options{DatapathID: 7, HelloVersion: 1, HelloBitmap: 1 << 1})
	select {
	case e := <-sw.Errors:
		if e.Type != wire.ErrHelloFailed || e.Code != wire.HelloFailedIncompatible {
			t.Errorf("got %v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no HELLO_FAILED")
	}
	<-sw.Done()
	if _, ok := h.ctl.Switch(7); ok {
		t.Error("an OF1.0 switch must not be connected")
	}
}

func TestGarbageClientsDoNotDisturbOthers(t *testing.T) {
	testAppInstance.start = nil
	h := newHarness(t, Config{}, openflow.Config{HandshakeTimeout: 500 * time.Millisecond})
	var outs sync.WaitGroup
	good := h.dial(emu.Options{DatapathID: 8, Ports: ports(2), OnPacketOut: func([]byte) { outs.Done() }})
	h.ready(8)
	garbage := []string{
		"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09garbage garbage garbage",
		"\x04\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x04",                 // HELLO, element type 0 len 4
		"\x04\x00\x00\x10\x00\x00\x00\x01\x00\x07\x00\x08\xde\xad\xbe\xef", // HELLO, unknown element: fine, then silence
		"\x04\x02\x00\x04\x00\x00\x00\x01",                                 // length 4
		"\x04\x00\x00\x08\x00\x00\x00\x01\x04\x06\x00\x08\x00\x00\x00\x02", // HELLO then an 8-byte FEATURES_REPLY
	}
	var wg sync.WaitGroup
	for _, g := range garbage {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", h.sock)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.Write([]byte(g))
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return // closed by the controller (or timed out)
				}
			}
		}()
	}
	wg.Wait()
	outs.Add(1)
	good.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	done := make(chan struct{})
	go func() { outs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the real switch stopped being served")
	}
	if len(h.ctl.Switches()) != 1 {
		t.Errorf("switches: %v", h.ctl.Switches())
	}
}

func TestMalformedMessageDropsOnlyThatSession(t *testing.T) {
	testAppInstance.start = nil
	h := newHarness(t, Config{}, openflow.Config{})
	bad := h.dial(emu.Options{DatapathID: 9})
	good := h.dial(emu.Options{DatapathID: 10})
	h.ready(9)
	h.ready(10)
	// A PACKET_IN whose match overruns the message.
	msg := emu.AppendPacketIn(nil, 0, 1, 0, 0, 0, make([]byte, 20))
	msg[27] = 0xff
	bad.Send(msg)
	select {
	case <-bad.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("a malformed message must close its session")
	}
	select {
	case <-good.Done():
		t.Fatal("another switch was dropped")
	case <-time.After(100 * time.Millisecond):
	}
	if err := bad.Err(); err != nil {
		t.Logf("bad switch saw: %v", err)
	}
}

func TestSlowSwitchDoesNotBlockOthers(t *testing.T) {
	h := newHarness(t, Config{}, openflow.Config{WriteTimeout: 300 * time.Millisecond, MaxQueue: 64 << 10})
	testAppInstance.start = nil
	var outs sync.WaitGroup
	good := h.dial(emu.Options{DatapathID: 11, Ports: ports(1), OnPacketOut: func([]byte) { outs.Done() }})
	slow := h.dial(emu.Options{DatapathID: 12, Ports: ports(1)})
	h.ready(11)
	h.ready(12)
	slow.Pause()
	defer slow.Resume()
	// The slow switch asks for megabytes of packet-outs it never reads.
	frame := make([]byte, 1400)
	for i := 0; i < 3000; i++ {
		slow.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, frame)
	}
	// Meanwhile the good switch is served promptly, every time.
	for i := 0; i < 5; i++ {
		outs.Add(1)
		start := time.Now()
		good.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
		done := make(chan struct{})
		go func() { outs.Wait(); close(done) }()
		select {
		case <-done:
			if d := time.Since(start); d > 200*time.Millisecond {
				t.Errorf("good switch answered in %v while another stalled", d)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the good switch is not served while another switch stalls")
		}
	}
	// The stalled switch is dropped by the write timeout.
	eventually(t, "the stalled switch to be dropped", func() bool { _, ok := h.ctl.Switch(12); return !ok })
	if _, ok := h.ctl.Switch(11); !ok {
		t.Error("the good switch was dropped")
	}
}

func TestPacketInStormIsBounded(t *testing.T) {
	h := newHarness(t, Config{MaxQueuedPacketIns: 64}, openflow.Config{})
	testAppInstance.start = nil
	var outs sync.WaitGroup
	storm := h.dial(emu.Options{DatapathID: 13, Ports: ports(1)})
	calm := h.dial(emu.Options{DatapathID: 14, Ports: ports(1), OnPacketOut: func([]byte) { outs.Done() }})
	h.ready(13)
	h.ready(14)
	burst := make([]byte, 0, 1<<20)
	for i := 0; i < 10000; i++ {
		burst = emu.AppendPacketIn(burst, 0, 1, testTableID, 0, 0, make([]byte, 60))
	}
	go func() {
		for i := 0; i < 5; i++ {
			storm.Send(burst)
		}
	}()
	outs.Add(1)
	start := time.Now()
	calm.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	outs.Wait()
	t.Logf("calm switch answered in %v during a 50,000 packet-in storm", time.Since(start))
	eventually(t, "dropped packet-ins to be counted", func() bool {
		return testutil.ToFloat64(h.ctl.metrics.packetInsDropped) > 0
	})
}

func TestPanicInAppClosesOnlyThatSession(t *testing.T) {
	h := newHarness(t, Config{}, openflow.Config{})
	testAppInstance.start = nil
	bad := h.dial(emu.Options{DatapathID: 15})
	var outs sync.WaitGroup
	good := h.dial(emu.Options{DatapathID: 16, OnPacketOut: func([]byte) { outs.Done() }})
	h.ready(15)
	h.ready(16)
	bad.PacketIn(666, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	select {
	case <-bad.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("a panic must close the session it happened on")
	}
	outs.Add(1)
	good.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	outs.Wait()
	if n := testutil.ToFloat64(h.ctl.metrics.panics); n != 1 {
		t.Errorf("panics counted: %v", n)
	}
}

func TestSwitchEventsArePublished(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(16, nil)
	h := newHarness(t, Config{Events: bus}, openflow.Config{})
	testAppInstance.start = nil
	sw := h.dial(emu.Options{DatapathID: 17, Ports: ports(1)})
	h.ready(17)
	next := func() events.Event {
		select {
		case e := <-sub.C:
			return e
		case <-time.After(3 * time.Second):
			t.Fatal("no event")
			return events.Event{}
		}
	}
	if e := next(); e.Topic != "switch" || e.Type != "up" || e.ID != "0000000000000011" {
		t.Errorf("up: %+v", e)
	}
	sw.PortStatus(wire.PortModified, wire.Port{PortNo: 1, Name: "p1", State: wire.PortStateLinkDown})
	if e := next(); e.Topic != "port" || e.Type != "modified" || e.ID != "0000000000000011:1" {
		t.Errorf("port: %+v", e)
	}
	sw.Close()
	if e := next(); e.Topic != "switch" || e.Type != "down" {
		t.Errorf("down: %+v", e)
	}
}

// A switch that floods 65,535-byte ERRORs faster than its goroutine
// handles them is disconnected once its queue holds MaxQueuedBytes; the
// heap stays bounded, the metric counts it, and other switches are served.
func TestErrorFloodIsBounded(t *testing.T) {
	const maxQueued = 4 << 20 // the default
	h := newHarness(t, Config{}, openflow.Config{})
	testAppInstance.start = nil
	var outs sync.WaitGroup
	flood := h.dial(emu.Options{DatapathID: 20, Ports: ports(1)})
	good := h.dial(emu.Options{DatapathID: 21, Ports: ports(1), OnPacketOut: func([]byte) { outs.Done() }})
	h.ready(20)
	h.ready(21)
	// The flooded switch's goroutine stalls (as a slow app would), so
	// nothing drains its queue.
	unstall := sync.OnceFunc(func() { close(stall) }) // one test only: stall stays closed
	t.Cleanup(unstall)
	flood.PacketIn(777, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	fsw, _ := h.ctl.Switch(20)
	eventually(t, "the stalled packet-in to be taken", func() bool { n, _ := fsw.q.queuedBytes(); return n == 0 })

	before, rssBefore := testenv.HeapInuse(), testenv.RSSKB()
	msg := make([]byte, wire.MaxMessageLen) // an ERROR for no request, with 65,523 bytes of data
	wire.PutHeader(msg, wire.TypeError, wire.MaxMessageLen, 0)
	msg[9] = byte(wire.ErrBadRequest)
	var sent, peak int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sent < 400<<20/len(msg) { // 400 MB, as the attacker sent
			select {
			case <-fsw.sess.Done():
				return
			default:
			}
			flood.Send(msg)
			sent++
			if _, b := fsw.q.queuedBytes(); b > peak {
				peak = b
			}
		}
	}()
	select {
	case <-flood.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a switch flooding ERRORs must be disconnected")
	}
	<-done
	during, rssDuring := testenv.HeapInuse(), testenv.RSSKB()
	t.Logf("ERROR flood: %d messages (%d MB) written before the controller closed the session; queue peak %d bytes (cap %d); heap in use %d MB before, %d MB after (+%d KB); RSS %d MB before, %d MB after",
		sent, sent*len(msg)>>20, peak, maxQueued, before>>20, during>>20, (int64(during)-int64(before))>>10, rssBefore>>10, rssDuring>>10)
	if peak > maxQueued {
		t.Errorf("queue held %d bytes, cap %d", peak, maxQueued)
	}
	if grown := int64(during) - int64(before); grown > 3*maxQueued {
		t.Errorf("heap grew %d MB under the flood", grown>>20)
	}
	if n := testutil.ToFloat64(h.ctl.metrics.sessionsClosed.WithLabelValues(ReasonQueueOverflow)); n != 1 {
		t.Errorf("sessions closed for queue overflow: %v", n)
	}
	// Closed even though its goroutine is still stalled; the other switch is served.
	eventually(t, "the flooding switch to be forgotten", func() bool { _, ok := h.ctl.Switch(20); return !ok })
	outs.Add(1)
	good.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	outs.Wait()
	unstall()
}

// The OpenFlow server's policy decisions reach the controller's metrics:
// a second connection claiming a live switch's datapath id is refused
// and counted.
func TestDuplicateDatapathIDIsCounted(t *testing.T) {
	testAppInstance.start = nil
	h := newHarness(t, Config{}, openflow.Config{DuplicateProbe: 200 * time.Millisecond})
	live := h.dial(emu.Options{DatapathID: 22})
	h.ready(22)
	intruder := h.dial(emu.Options{DatapathID: 22})
	select {
	case <-intruder.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the intruder must be refused")
	}
	if n := testutil.ToFloat64(h.ctl.metrics.sessionsClosed.WithLabelValues(openflow.ReasonDuplicateDPID)); n != 1 {
		t.Errorf("duplicate datapath ids counted: %v", n)
	}
	select {
	case <-live.Done():
		t.Fatal("the live switch was dropped")
	default:
	}
	sw, ok := h.ctl.Switch(22)
	if !ok {
		t.Fatal("the live switch must stay connected")
	}
	select {
	case <-sw.sess.Done():
		t.Error("the live switch's session was closed")
	default:
	}
}

// slowAppDelay is how long the test app takes over a packet-in from port
// 778 before it answers: longer than a session lets a handler hold its
// reader.
const slowAppDelay = 100 * time.Millisecond

// A packet-in handled on the session's reader by a slow app does not hold
// the reader: another goroutine takes over reading, so the replies another
// goroutine waits for (here a barrier's) and further packet-ins go on, in
// order; the slow app's answer is sent when it returns, without another
// message to wake anything.
func TestSlowAppDoesNotHoldTheReader(t *testing.T) {
	tickInterval.Store(0)
	defer tickInterval.Store(int64(10 * time.Millisecond))
	h := newHarness(t, Config{}, openflow.Config{})
	testAppInstance.start = nil
	// in_port of every packet-out, checked against its frame: the slow
	// app's message stays intact while another goroutine reads the next.
	outs := make(chan uint32, 16)
	sw := h.dial(emu.Options{DatapathID: 23, Ports: ports(1), OnPacketOut: func(m []byte) {
		in := binary.BigEndian.Uint32(m[12:])
		data := m[24+int(binary.BigEndian.Uint16(m[16:])):]
		if !bytes.Equal(data, frameFor(in)) {
			t.Errorf("packet-out for in_port %d carries another frame: % x", in, data[:8])
		}
		outs <- in
	}})
	s := h.ready(23)
	start := time.Now()
	sw.PacketIn(778, testTableID, 0, wire.PacketInNoMatch, frameFor(778))
	// A barrier's reply (as a flow dump's, a reconciliation's) arrives
	// while the app is still busy.
	if _, err := s.sess.Request(context.Background(), func(dst []byte, xid uint32) []byte {
		return wire.AppendEmpty(dst, wire.TypeBarrierRequest, xid)
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= slowAppDelay {
		t.Errorf("a barrier took %v while an app was slow for %v: the reader waited for the app", d, slowAppDelay)
	}
	// A packet-in sent meanwhile is queued and answered after the slow one, in order.
	sw.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, frameFor(1))
	for _, want := range []uint32{778, 1} {
		select {
		case in := <-outs:
			if in != want {
				t.Fatalf("packet-out for in_port %d, want %d", in, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no packet-out for in_port %d", want)
		}
	}
	// Alone, the slow app's answer is sent when it returns, without
	// another message to wake anything.
	eventually(t, "the switch goroutine to be idle", func() bool {
		if !s.own.TryLock() {
			return false
		}
		s.own.Unlock()
		return true
	})
	sw.PacketIn(778, testTableID, 0, wire.PacketInNoMatch, frameFor(778))
	select {
	case in := <-outs:
		if in != 778 {
			t.Fatalf("packet-out for in_port %d, want 778", in)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the slow app's packet-out was never sent")
	}
	if n := s.sess.Handoffs(); n < 2 {
		t.Errorf("the reader was handed off %d times, want 2", n)
	}
}

// frameFor is a 60-byte frame filled with the low byte of in.
func frameFor(in uint32) []byte { return bytes.Repeat([]byte{byte(in)}, 60) }

// The switch goroutine waiting for a barrier reply (an audit's
// reconciliation) while packet-ins keep arriving: the reader queues the
// packet-ins instead of waiting for the switch, delivers the barrier
// reply, and every packet-in is answered.
func TestAuditDuringPacketIns(t *testing.T) {
	h := newHarness(t, Config{AuditInterval: 5 * time.Millisecond}, openflow.Config{})
	testAppInstance.start = nil
	var answered atomic.Int64
	sw := h.dial(emu.Options{DatapathID: 24, Ports: ports(1), OnPacketOut: func([]byte) { answered.Add(1) }})
	h.ready(24)
	before := testutil.ToFloat64(h.ctl.metrics.reconciles)
	const n = 3000
	for i := 0; i < n; i++ {
		sw.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	eventually(t, "every packet-in answered", func() bool { return answered.Load() == n })
	eventually(t, "audits to go on", func() bool { return testutil.ToFloat64(h.ctl.metrics.reconciles) > before+3 })
}

func TestFlushConntrackZone(t *testing.T) {
	h := newHarness(t, Config{PacketInRate: 100}, openflow.Config{})
	sw := h.dial(emu.Options{DatapathID: 7, Ports: ports(1)})
	h.ready(7)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	barriers := sw.Counters.Barriers.Load()
	if err := h.ctl.FlushConntrackZones(ctx, 7, 3, 65535); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if err := h.ctl.FlushConntrackZones(ctx, 7, 9); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if got := sw.FlushedZones(); !slices.Equal(got, []uint16{3, 65535, 9}) {
		t.Errorf("switch saw flushes of zones %v, want [3 65535 9]", got)
	}
	if n := sw.Counters.Barriers.Load() - barriers; n != 2 {
		t.Errorf("%d barriers for two calls: each call is confirmed by one", n)
	}
	if err := h.ctl.FlushConntrackZones(ctx, 8, 3); !errors.Is(err, ErrNoSwitch) {
		t.Errorf("flush on an unknown switch: %v, want ErrNoSwitch", err)
	}
}

// TestNestedDrainLosesNothing: a queued call that waits on the switch
// (flushSync, as FlushConntrackZones and a new master's reconciliation
// do) drains the queue again from inside a drain; calls queued from
// another goroutine meanwhile must each run exactly once.
func TestNestedDrainLosesNothing(t *testing.T) {
	h := newHarness(t, Config{PacketInRate: 100}, openflow.Config{})
	h.dial(emu.Options{DatapathID: 11, Ports: ports(1)})
	sw := h.ready(11)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ran atomic.Int64
	const n = 20000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			sw.q.call(func() { ran.Add(1) })
		}
	}()
	for range 50 {
		if err := sw.onLoop(ctx, func() { sw.flushSync(ctx) }); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	sw.onLoop(ctx, func() {}) // everything queued before it has run
	eventually(t, "every queued call run once", func() bool { return ran.Load() == n })
	time.Sleep(50 * time.Millisecond)
	if got := ran.Load(); got != n {
		t.Errorf("%d calls ran, %d queued", got, n)
	}
}
