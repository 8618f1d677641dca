package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/loom-sdn/loom/apps/l2switch"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// short returns options for a quick run against target.
func short(target, mode string, switches int) *options {
	return &options{controller: target, switches: switches, macs: 50, mode: mode, duration: 300 * time.Millisecond,
		loops: 2, warmup: 100 * time.Millisecond, window: 16, connectTimeout: 5 * time.Second,
		settle: 50 * time.Millisecond, answerTimeout: time.Second}
}

// startCeiling runs the do-nothing controller on a unix socket.
func startCeiling(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ceiling.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ceiling(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "unix:" + sock
}

func checkClean(t *testing.T, r *result) {
	t.Helper()
	if r.Lost != 0 || r.Errors != 0 || r.Unknown != 0 || len(r.Disconnects) != 0 {
		t.Errorf("anomalies: lost %d, errors %d, unknown %d, disconnects %v", r.Lost, r.Errors, r.Unknown, r.Disconnects)
	}
	if len(r.Loops) != 2 {
		t.Fatalf("%d loops, want 2", len(r.Loops))
	}
	for _, l := range r.Loops {
		if l.Responses == 0 || l.Answered == 0 || l.ResponsesPerSec <= 0 || len(l.Samples) == 0 {
			t.Errorf("loop %d counted nothing: %+v", l.Loop, l)
		}
		if l.Responses != l.FlowMods+l.PacketOuts {
			t.Errorf("loop %d: responses %d != flow-mods %d + packet-outs %d", l.Loop, l.Responses, l.FlowMods, l.PacketOuts)
		}
	}
	if r.Responses.Avg <= 0 || r.Responses.Min > r.Responses.Avg || r.Responses.Max < r.Responses.Avg {
		t.Errorf("summary %+v", r.Responses)
	}
}

func TestThroughputAgainstCeiling(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		o := short(startCeiling(t), "throughput", 2)
		o.buffered = buffered
		r, err := bench(o, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		checkClean(t, r)
		// The ceiling answers each PACKET_IN with exactly one FLOW_MOD. The
		// two counters are read one after the other while packet-ins are
		// in flight, so they may differ by at most a window per switch.
		inFlight := int64(o.window * o.switches)
		for _, l := range r.Loops {
			if l.PacketOuts != 0 || abs(l.FlowMods-l.Answered) > inFlight {
				t.Errorf("buffered=%v loop %d: %d flow-mods, %d packet-outs, %d answered", buffered, l.Loop, l.FlowMods, l.PacketOuts, l.Answered)
			}
		}
	}
}

func TestLatencyAgainstCeiling(t *testing.T) {
	r, err := bench(short(startCeiling(t), "latency", 1), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	if r.Window != 1 || r.Latency == nil || r.Latency.Count == 0 || r.Latency.P50Us <= 0 ||
		r.Latency.P50Us > r.Latency.P99Us || r.Latency.P99Us > r.Latency.MaxUs {
		t.Fatalf("latency: window %d, %+v", r.Window, r.Latency)
	}
	var n int
	for _, l := range r.Loops {
		n += l.Latency.Count
	}
	if n != r.Latency.Count {
		t.Errorf("loops hold %d samples, summary %d", n, r.Latency.Count)
	}
}

// Against Loom's runtime with the l2switch app: the switches go through
// its reconciliation (dumps, a bundle, barriers), then every PACKET_IN is
// answered by a PACKET_OUT, and the first of each host by its two flows.
func TestAgainstLoomL2Switch(t *testing.T) {
	env := controllertest.Start(t, controller.Config{Apps: []string{"l2switch"}, Bundles: true}, nil)
	for _, mode := range []string{"throughput", "latency"} {
		t.Run(mode, func(t *testing.T) {
			o := short("unix:"+env.Sock, mode, 2)
			if mode == "latency" {
				o.switches = 1
			}
			// Wait for what the controller must do, not for a quiet
			// window or a fixed warm-up: a loaded machine can pause
			// longer than either (the test failed that way in a full run).
			o.waitLimit = 30 * time.Second
			o.setupDone = func(s setupResult) bool {
				return s.BundleCommits >= int64(o.switches) && s.Barriers >= int64(o.switches) && s.MissTable >= 0
			}
			o.warmedUp = func(r loopResult) bool { return r.FlowMods >= int64(2*o.switches*o.macs) }
			r, err := bench(o, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			checkClean(t, r)
			if r.Setup.Bundled == 0 || r.Setup.BundleCommits != int64(o.switches) || r.Setup.Barriers == 0 || r.Setup.MissTable != 0 {
				t.Errorf("setup %+v: want a bundle per switch, barriers and the table-miss in table 0", r.Setup)
			}
			if r.Warmup == nil || r.Warmup.FlowMods < int64(2*o.switches*o.macs) {
				t.Errorf("warm-up %+v: want every host learned (two flows each)", r.Warmup)
			}
			inFlight := int64(o.window * o.switches) // counters are read while packet-ins are in flight
			for _, l := range r.Loops {
				if abs(l.PacketOuts-l.Answered) > inFlight {
					t.Errorf("loop %d: %d packet-outs for %d answered", l.Loop, l.PacketOuts, l.Answered)
				}
			}
			if mode == "latency" && (r.Latency == nil || r.Latency.Count == 0) {
				t.Errorf("no latency samples")
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	target := startCeiling(t)
	var out, errb bytes.Buffer
	err := run([]string{"--controller", target, "--switches", "1", "--macs", "10", "--loops", "1", "--duration", "200ms",
		"--warmup", "0", "--settle", "20ms", "--json"}, &out, &errb)
	if err != nil {
		t.Fatal(err, errb.String())
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.Warmup != nil || len(r.Loops) != 1 || r.Responses.Avg <= 0 || !strings.Contains(errb.String(), "loop 1/1") {
		t.Errorf("result %+v, log %s", r, errb.String())
	}
}

// scripted is the controller end of a connection to one emulated switch.
type scripted struct {
	t  *testing.T
	c  net.Conn
	sw *fakeSwitch
}

func newScripted(t *testing.T, o *options) *scripted {
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sw := newSwitch(4, a, o)
	go sw.run()
	t.Cleanup(func() { sw.phase.Store(phaseStop); b.Close(); <-sw.done })
	s := &scripted{t, b, sw}
	if h, _ := s.read(); h.Type != wire.TypeHello {
		t.Fatalf("first message %s", wire.TypeName(h.Type))
	}
	return s
}

func (s *scripted) send(b []byte) {
	s.t.Helper()
	if _, err := s.c.Write(b); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scripted) read() (wire.Header, []byte) {
	s.t.Helper()
	s.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	h, msg, err := wire.ReadMessage(s.c)
	if err != nil {
		s.t.Fatal(err)
	}
	return h, msg
}

func (s *scripted) expect(typ uint8, xid uint32) []byte {
	s.t.Helper()
	h, msg := s.read()
	if h.Type != typ || h.Xid != xid {
		s.t.Fatalf("got %s xid %d, want %s xid %d", wire.TypeName(h.Type), h.Xid, wire.TypeName(typ), xid)
	}
	return msg
}

// The switch side of the protocol, message by message.
func TestSwitchProtocol(t *testing.T) {
	o := short("unix:x", "throughput", 1)
	o.buffered = true
	s := newScripted(t, o)

	s.send(wire.AppendHello(nil, 1))
	s.send(wire.AppendEmpty(nil, wire.TypeFeaturesRequest, 2))
	f, err := wire.DecodeFeatures(s.expect(wire.TypeFeaturesReply, 2))
	if err != nil || f.DatapathID != 5 || f.NBuffers != numBuffers {
		t.Fatalf("features %+v, %v", f, err)
	}
	s.send(wire.AppendEcho(nil, wire.TypeEchoRequest, 3, []byte("ping")))
	if msg := s.expect(wire.TypeEchoReply, 3); string(msg[8:]) != "ping" {
		t.Errorf("echo data %q", msg[8:])
	}
	s.send(wire.AppendSetConfig(nil, 4, wire.NoBuffer))
	s.send(wire.AppendSetAsync(nil, 5, wire.AsyncConfig{}))
	s.send(wire.AppendRoleRequest(nil, 6, wire.RoleMaster, 7))
	if rr, _ := wire.DecodeRoleReply(s.expect(wire.TypeRoleReply, 6)); rr.Role != wire.RoleMaster || rr.GenerationID != 7 {
		t.Errorf("role reply %+v", rr)
	}
	s.send(wire.AppendMultipartRequest(nil, 8, wire.MultipartPortDesc, nil))
	mp, _ := wire.DecodeMultipartReply(s.expect(wire.TypeMultipartReply, 8))
	if ports, err := wire.DecodePortDesc(mp.Body); err != nil || len(ports) != numPorts || mp.More() {
		t.Errorf("port desc: %d ports, more %v, %v", len(ports), mp.More(), err)
	}
	s.send(wire.AppendMultipartRequest(nil, 9, wire.MultipartDesc, nil))
	mp, _ = wire.DecodeMultipartReply(s.expect(wire.TypeMultipartReply, 9))
	if d, err := wire.DecodeDesc(mp.Body); err != nil || d.Software != "loombench" {
		t.Errorf("desc %+v, %v", d, err)
	}
	// A request in two parts is answered after the second.
	first := wire.AppendFlowStatsRequest(nil, 10, wire.TableAll, 0, 0)
	be.PutUint16(first[10:], wire.MultipartMore)
	s.send(first)
	s.send(wire.AppendFlowStatsRequest(nil, 10, wire.TableAll, 0, 0))
	mp, _ = wire.DecodeMultipartReply(s.expect(wire.TypeMultipartReply, 10))
	if mp.Type != wire.MultipartFlow || len(mp.Body) != 0 || mp.More() {
		t.Errorf("flow stats %+v", mp)
	}
	for _, typ := range []uint16{wire.MultipartGroupDesc, wire.MultipartMeterConf} {
		s.send(wire.AppendMultipartRequest(nil, 11, typ, make([]byte, 8)))
		if mp, _ = wire.DecodeMultipartReply(s.expect(wire.TypeMultipartReply, 11)); mp.Type != typ || len(mp.Body) != 0 {
			t.Errorf("multipart %d: %+v", typ, mp)
		}
	}
	// A bundle whose flow-mod installs the table-miss in table 3.
	miss := tableMiss(3, 0xabc)
	s.send(wire.AppendBundleControl(nil, 12, 1, wire.BundleOpenRequest, wire.BundleAtomic))
	s.send(wire.AppendBundleAdd(nil, 13, 1, wire.BundleAtomic, miss))
	s.send(wire.AppendBundleControl(nil, 14, 1, wire.BundleCommitRequest, wire.BundleAtomic))
	s.expect(wire.TypeExperimenter, 12)
	if bc, _ := wire.DecodeBundleControl(s.expect(wire.TypeExperimenter, 14)); bc.Type != wire.BundleCommitReply || bc.BundleID != 1 {
		t.Errorf("commit reply %+v", bc)
	}
	s.send(wire.AppendEmpty(nil, wire.TypeBarrierRequest, 15))
	s.expect(wire.TypeBarrierReply, 15)
	s.send(wire.AppendEmpty(nil, wire.TypeGetConfigRequest, 16))
	s.expect(wire.TypeGetConfigReply, 16)
	s.send(wire.AppendEmpty(nil, 99, 17))
	if e, _ := wire.DecodeError(s.expect(wire.TypeError, 17)); e.Type != wire.ErrBadRequest {
		t.Errorf("unknown type answered with %v", e)
	}

	// Traffic: PACKET_INs from the table-miss's table and cookie, buffered,
	// answered by buffer id.
	s.sw.setPhase(phaseTraffic)
	var pi wire.PacketIn
	seen := map[uint32]bool{}
	for range o.window {
		_, msg := s.read()
		if err := wire.DecodePacketIn(msg, &pi); err != nil {
			t.Fatal(err)
		}
		if pi.TableID != 3 || pi.Cookie != 0xabc || pi.BufferID != wire.Xid(msg) || len(pi.Data) != frameLen ||
			pi.InPort < 1 || pi.InPort > numPorts || seen[pi.BufferID] {
			t.Fatalf("packet-in %+v", pi)
		}
		seen[pi.BufferID] = true
		if be.Uint32(pi.Data[frameTagOff:]) != pi.BufferID {
			t.Fatalf("frame tag %x, buffer %x", pi.Data[frameTagOff:frameTagOff+4], pi.BufferID)
		}
		if !bytes.Equal(pi.Data[6:8], []byte{0x02, 0}) || pi.Data[8] != 4 || bytes.Equal(pi.Data[0:6], pi.Data[6:12]) {
			t.Fatalf("MACs dst %x src %x", pi.Data[0:6], pi.Data[6:12])
		}
	}
	// Answer one with a FLOW_MOD naming its buffer: one more is sent.
	fm := append([]byte(nil), miss...)
	be.PutUint16(fm[30:], 1)
	be.PutUint32(fm[32:], pi.BufferID)
	s.send(fm)
	_, msg := s.read()
	if err := wire.DecodePacketIn(msg, &pi); err != nil || seen[pi.BufferID] {
		t.Fatalf("refill %+v, %v", pi, err)
	}
	if a, r := s.sw.c.answered.Load(), s.sw.c.flowMods.Load(); a != 1 || r != 1 {
		t.Errorf("answered %d responses %d, want 1 and 1", a, r)
	}
}

// tableMiss is a FLOW_MOD adding a priority-0 match-all flow to CONTROLLER.
func tableMiss(table uint8, cookie uint64) []byte {
	b := make([]byte, 48, 80)
	b = append(b, 0, 1, 0, 4, 0, 0, 0, 0) // empty match
	b = append(b, 0, 4, 0, 24, 0, 0, 0, 0, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0xfd, 0xff, 0xff, 0, 0, 0, 0, 0, 0)
	wire.PutHeader(b, wire.TypeFlowMod, uint16(len(b)), 1)
	be.PutUint64(b[8:], cookie)
	b[24] = table
	be.PutUint32(b[32:], noBuffer)
	return b
}

// Unbuffered PACKET_INs are answered by the PACKET_OUT carrying their
// frame; the unanswered ones are given up after the answer timeout and
// replaced.
func TestAnswerByFrameAndLoss(t *testing.T) {
	o := short("unix:x", "throughput", 1)
	o.window, o.answerTimeout = 4, 100*time.Millisecond
	s := newScripted(t, o)
	s.send(wire.AppendEmpty(nil, wire.TypeFeaturesRequest, 1))
	s.expect(wire.TypeFeaturesReply, 1)
	s.sw.setPhase(phaseTraffic)
	var pi wire.PacketIn
	var pis [][]byte
	for range 4 {
		_, msg := s.read()
		if err := wire.DecodePacketIn(msg, &pi); err != nil || pi.BufferID != noBuffer {
			t.Fatalf("%+v %v", pi, err)
		}
		pis = append(pis, msg)
	}
	// A PACKET_OUT with the first frame (and a different xid) answers it.
	wire.DecodePacketIn(pis[0], &pi)
	po := make([]byte, 24, 24+16+len(pi.Data))
	wire.PutHeader(po, wire.TypePacketOut, 0, 777)
	be.PutUint32(po[8:], noBuffer)
	be.PutUint32(po[12:], pi.InPort)
	be.PutUint16(po[16:], 16)
	po = append(po, 0, 0, 0, 16, 0, 0, 0, 2, 0xff, 0xff, 0, 0, 0, 0, 0, 0)
	po = append(po, pi.Data...)
	be.PutUint16(po[2:], uint16(len(po)))
	s.send(po)
	s.read() // its replacement
	if a := s.sw.c.answered.Load(); a != 1 {
		t.Fatalf("answered %d", a)
	}
	// The other three time out, are counted lost and replaced.
	for range 3 {
		if h, _ := s.read(); h.Type != wire.TypePacketIn {
			t.Fatalf("got %s", wire.TypeName(h.Type))
		}
	}
	if l := s.sw.c.lost.Load(); l < 3 {
		t.Errorf("lost %d, want at least 3", l)
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[string]string{"tcp:1.2.3.4:5": "tcp 1.2.3.4:5", "unix:/a/b": "unix /a/b", "h:6653": "tcp h:6653"} {
		n, a, err := splitTarget(in)
		if err != nil || n+" "+a != want {
			t.Errorf("splitTarget(%q) = %q %q %v", in, n, a, err)
		}
	}
	for _, bad := range []string{"", "tcp:", "ssl:a:1", "nocolon"} {
		if _, _, err := splitTarget(bad); err == nil {
			t.Errorf("splitTarget(%q) accepted", bad)
		}
	}
	if s := summarize([]float64{1, 2, 3}); s.Min != 1 || s.Max != 3 || s.Avg != 2 || s.Stddev < 0.81 || s.Stddev > 0.82 {
		t.Errorf("summarize %+v", s)
	}
	ns := make([]int64, 100)
	for i := range ns {
		ns[i] = int64(100-i) * 1000
	}
	if l := latencyStats(ns); l.P50Us != 50 || l.P90Us != 90 || l.P99Us != 99 || l.MaxUs != 100 || l.MeanUs != 50.5 {
		t.Errorf("latencyStats %+v", l)
	}
	if !toController(tableMiss(0, 0)[56:]) || toController(ceilingFlowMod[48+32:]) {
		t.Error("toController")
	}
	// Every host sends to a host on another port.
	sw := newSwitch(0, nil, short("unix:x", "throughput", 1))
	for h, d := range sw.dst {
		if hostPort(h) == hostPort(int(d)) {
			t.Errorf("host %d sends to host %d on the same port", h, d)
		}
	}
}

func abs(x int64) int64 { return max(x, -x) }
