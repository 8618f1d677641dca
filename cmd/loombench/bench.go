package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"
)

// options are a benchmark run's parameters (the command's flags).
type options struct {
	controller     string
	switches, macs int
	mode           string
	duration       time.Duration
	loops          int
	warmup         time.Duration
	window         int
	buffered       bool
	connectTimeout time.Duration
	settle         time.Duration
	answerTimeout  time.Duration

	// Conditions a test knows to wait for, instead of trusting a quiet
	// window or a fixed warm-up (nil in the command): the setup is over
	// once setupDone holds for the counters seen so far, and the warm-up
	// lasts until warmedUp holds, each for at most waitLimit.
	setupDone func(setupResult) bool
	warmedUp  func(loopResult) bool
	waitLimit time.Duration
}

func (o *options) check() error {
	switch {
	case o.mode != "throughput" && o.mode != "latency":
		return fmt.Errorf("--mode %q: want throughput or latency", o.mode)
	case o.switches < 1 || o.switches > 65535:
		return errors.New("--switches: 1..65535")
	case o.macs < 2 || o.macs > 1<<24:
		return errors.New("--macs: 2..16777216 (a host needs another host to talk to)")
	case o.window < 1 || o.window > 4096:
		return errors.New("--window: 1..4096")
	case o.buffered && o.window > numBuffers:
		return fmt.Errorf("--window: at most %d buffered (n_buffers)", numBuffers)
	case o.loops < 1 || o.duration <= 0:
		return errors.New("--loops and --duration must be positive")
	}
	_, _, err := splitTarget(o.controller)
	return err
}

// splitTarget parses tcp:HOST:PORT, unix:PATH or HOST:PORT.
func splitTarget(t string) (network, addr string, err error) {
	kind, rest, ok := strings.Cut(t, ":")
	switch {
	case ok && kind == "tcp" && rest != "":
		return "tcp", rest, nil
	case ok && kind == "unix" && rest != "":
		return "unix", rest, nil
	case ok && kind != "" && rest != "" && !strings.Contains(rest, ":"):
		return "tcp", t, nil
	}
	return "", "", fmt.Errorf("controller address %q: want tcp:HOST:PORT or unix:PATH", t)
}

// latStats summarizes latency samples (microseconds).
type latStats struct {
	Count  int     `json:"count"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	MaxUs  float64 `json:"max_us"`
}

func latencyStats(ns []int64) *latStats {
	if len(ns) == 0 {
		return nil
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	q := func(p float64) float64 { return float64(s[int(math.Ceil(p*float64(len(s))))-1]) / 1e3 }
	return &latStats{Count: len(s), MeanUs: sum / float64(len(s)) / 1e3, P50Us: q(0.50), P90Us: q(0.90),
		P99Us: q(0.99), MaxUs: float64(s[len(s)-1]) / 1e3}
}

// snapshot is the sum of every switch's counters at one moment.
type snapshot struct {
	at                                             time.Time
	responses, flowMods, packetOuts, answered      int64
	sent, lost, latSum, errors, unknown, otherMods int64
	perSwitch                                      []int64
}

func take(sws []*fakeSwitch) snapshot {
	s := snapshot{at: time.Now(), perSwitch: make([]int64, len(sws))}
	for i, sw := range sws {
		c := &sw.c
		fm, po := c.flowMods.Load(), c.packetOuts.Load()
		s.perSwitch[i] = fm + po
		s.responses += fm + po
		s.flowMods += fm
		s.packetOuts += po
		s.answered += c.answered.Load()
		s.sent += c.sent.Load()
		s.lost += c.lost.Load()
		s.latSum += c.latSum.Load()
		s.errors += c.errors.Load()
		s.unknown += c.unknown.Load()
		s.otherMods += c.otherMods.Load()
	}
	return s
}

// loopResult is one measured interval (the warm-up or a loop).
type loopResult struct {
	Loop            int       `json:"loop"` // 0: warm-up
	Seconds         float64   `json:"seconds"`
	ResponsesPerSec float64   `json:"responses_per_s"`
	AnsweredPerSec  float64   `json:"answered_per_s"`
	Responses       int64     `json:"responses"`
	FlowMods        int64     `json:"flow_mods"`
	PacketOuts      int64     `json:"packet_outs"`
	PacketIns       int64     `json:"packet_ins_sent"`
	Answered        int64     `json:"packet_ins_answered"`
	Lost            int64     `json:"packet_ins_lost"`
	MeanAnswerUs    float64   `json:"mean_answer_us"` // send to answer, mean
	Samples         []float64 `json:"samples_responses_per_s"`
	PerSwitchMin    int64     `json:"per_switch_responses_min"`
	PerSwitchMax    int64     `json:"per_switch_responses_max"`
	Latency         *latStats `json:"latency,omitempty"`
}

func diff(a, b snapshot, loop int) loopResult {
	sec := b.at.Sub(a.at).Seconds()
	r := loopResult{Loop: loop, Seconds: sec,
		Responses: b.responses - a.responses, FlowMods: b.flowMods - a.flowMods, PacketOuts: b.packetOuts - a.packetOuts,
		PacketIns: b.sent - a.sent, Answered: b.answered - a.answered, Lost: b.lost - a.lost}
	r.ResponsesPerSec, r.AnsweredPerSec = float64(r.Responses)/sec, float64(r.Answered)/sec
	if r.Answered > 0 {
		r.MeanAnswerUs = float64(b.latSum-a.latSum) / float64(r.Answered) / 1e3
	}
	for i := range b.perSwitch {
		d := b.perSwitch[i] - a.perSwitch[i]
		if i == 0 || d < r.PerSwitchMin {
			r.PerSwitchMin = d
		}
		r.PerSwitchMax = max(r.PerSwitchMax, d)
	}
	return r
}

// summary is min/max/avg/stddev over loops.
type summary struct {
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Avg    float64 `json:"avg"`
	Stddev float64 `json:"stddev"`
}

func summarize(v []float64) summary {
	if len(v) == 0 {
		return summary{}
	}
	s := summary{Min: v[0], Max: v[0]}
	for _, x := range v {
		s.Min, s.Max, s.Avg = min(s.Min, x), max(s.Max, x), s.Avg+x
	}
	s.Avg /= float64(len(v))
	for _, x := range v {
		s.Stddev += (x - s.Avg) * (x - s.Avg)
	}
	s.Stddev = math.Sqrt(s.Stddev / float64(len(v)))
	return s
}

// setupResult describes the connection phase.
type setupResult struct {
	Connected     int     `json:"connected"`
	ConnectMs     float64 `json:"connect_ms"` // until every switch had its FEATURES_REPLY sent
	SettleMs      float64 `json:"settle_ms"`  // until the controller had been quiet for --settle
	FlowMods      int64   `json:"flow_mods"`
	OtherMods     int64   `json:"group_meter_port_table_mods"`
	Bundled       int64   `json:"bundled_messages"`
	BundleCommits int64   `json:"bundle_commits"`
	Barriers      int64   `json:"barriers"`
	MissTable     int     `json:"table_miss_table"` // -1: no table-miss to CONTROLLER seen
}

// result is a whole run.
type result struct {
	Controller  string       `json:"controller"`
	Mode        string       `json:"mode"`
	Switches    int          `json:"switches"`
	MACs        int          `json:"macs"`
	Window      int          `json:"window"`
	Buffered    bool         `json:"buffered"`
	Setup       setupResult  `json:"setup"`
	Warmup      *loopResult  `json:"warmup,omitempty"`
	Loops       []loopResult `json:"loops"`
	Responses   summary      `json:"responses_per_s"`
	Answered    summary      `json:"answered_per_s"`
	Latency     *latStats    `json:"latency,omitempty"`
	Lost        int64        `json:"packet_ins_lost"`
	Errors      int64        `json:"errors_from_controller"`
	Unknown     int64        `json:"unsupported_messages"`
	Disconnects []string     `json:"disconnects,omitempty"`
}

// dial connects to the controller, retrying until the deadline (the
// controller may still be starting).
func dial(network, addr string, deadline time.Time) (net.Conn, error) {
	for {
		c, err := net.DialTimeout(network, addr, time.Until(deadline))
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
			return c, nil
		}
		if time.Now().Add(50 * time.Millisecond).After(deadline) {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bench runs one benchmark; progress lines go to logf.
func bench(o *options, logf func(string, ...any)) (*result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	network, addr, _ := splitTarget(o.controller)
	res := &result{Controller: o.controller, Mode: o.mode, Switches: o.switches, MACs: o.macs, Window: o.window,
		Buffered: o.buffered, Setup: setupResult{MissTable: -1}}
	if o.mode == "latency" {
		res.Window = 1
	}
	start := time.Now()
	deadline := start.Add(o.connectTimeout)
	sws := make([]*fakeSwitch, 0, o.switches)
	defer func() {
		for _, sw := range sws {
			sw.phase.Store(phaseStop)
			sw.conn.Close()
			<-sw.done
		}
	}()
	for i := range o.switches {
		c, err := dial(network, addr, deadline)
		if err != nil {
			return nil, fmt.Errorf("switch %d: %w", i+1, err)
		}
		sw := newSwitch(i, c, o)
		sws = append(sws, sw)
		go sw.run()
	}
	// Every switch through the handshake...
	for {
		n := 0
		for _, sw := range sws {
			if sw.featured.Load() {
				n++
			}
			select {
			case <-sw.done:
				return nil, fmt.Errorf("switch %d disconnected during the handshake: %v", sw.idx+1, sw.err)
			default:
			}
		}
		res.Setup.Connected = n
		if n == len(sws) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d switches completed the handshake within %v", n, len(sws), o.connectTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	res.Setup.ConnectMs = ms(time.Since(start))
	// ...then, in tests, what the setup must have done...
	if o.setupDone != nil {
		setupCounts(res, sws)
		for limit := time.Now().Add(o.waitLimit); !o.setupDone(res.Setup); setupCounts(res, sws) {
			if time.Now().After(limit) {
				logf("warning: the setup condition did not hold within %v; measuring anyway", o.waitLimit)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// ...then the controller's initial burst quiet for o.settle.
	for {
		var last int64
		for _, sw := range sws {
			last = max(last, sw.lastRx.Load())
		}
		if quiet := time.Duration(nanotime() - last); quiet >= o.settle {
			break
		} else if time.Now().After(deadline.Add(o.settle)) {
			logf("warning: the controller never went quiet for %v; measuring anyway", o.settle)
			break
		} else {
			time.Sleep(o.settle - quiet)
		}
	}
	res.Setup.SettleMs = ms(time.Since(start))
	setupCounts(res, sws)
	logf("setup: %d switches connected in %.0f ms; controller quiet after %.0f ms (%d flow-mods, %d bundled, %d commits, %d barriers; table-miss in table %d)",
		len(sws), res.Setup.ConnectMs, res.Setup.SettleMs, res.Setup.FlowMods, res.Setup.Bundled,
		res.Setup.BundleCommits, res.Setup.Barriers, res.Setup.MissTable)

	// The baseline is taken before traffic starts: taken after, it missed
	// whatever the controller answered in between (in latency mode, a
	// scheduling delay of a millisecond or two is every host learned).
	first := take(sws)
	for _, sw := range sws {
		sw.setPhase(phaseTraffic)
	}
	if o.warmup > 0 {
		end := measure(sws, first, o.warmup, 0)
		for limit := time.Now().Add(o.waitLimit); o.warmedUp != nil && !o.warmedUp(end.r); {
			if time.Now().After(limit) {
				logf("warning: the warm-up condition did not hold within %v", o.waitLimit)
				break
			}
			end = measure(sws, first, time.Since(first.at)+10*time.Millisecond, 0)
		}
		res.Warmup = &end.r
		logf("warm-up %v: %.0f responses/s, %.0f answered/s", o.warmup, end.r.ResponsesPerSec, end.r.AnsweredPerSec)
		first = end.snap
	}
	var allLat []int64
	var rs, as []float64
	for l := 1; l <= o.loops; l++ {
		for _, sw := range sws {
			sw.loop.Store(int32(l))
		}
		end := measure(sws, first, o.duration, l)
		first = end.snap
		r := end.r
		if o.mode == "latency" {
			var lat []int64
			for _, sw := range sws {
				lat = append(lat, sw.latencies(l)...)
			}
			r.Latency = latencyStats(lat)
			allLat = append(allLat, lat...)
		}
		res.Loops = append(res.Loops, r)
		rs, as = append(rs, r.ResponsesPerSec), append(as, r.AnsweredPerSec)
		line := fmt.Sprintf("loop %d/%d: %.0f responses/s, %.0f answered/s, mean answer %.0f µs", l, o.loops,
			r.ResponsesPerSec, r.AnsweredPerSec, r.MeanAnswerUs)
		if r.Latency != nil {
			line += fmt.Sprintf(", latency p50 %.0f µs p99 %.0f µs", r.Latency.P50Us, r.Latency.P99Us)
		}
		logf("%s [per second: %s]", line, joinFloats(r.Samples))
	}
	res.Responses, res.Answered = summarize(rs), summarize(as)
	res.Latency = latencyStats(allLat)
	end := take(sws)
	res.Lost, res.Errors, res.Unknown = end.lost, end.errors, end.unknown
	for _, sw := range sws {
		select {
		case <-sw.done:
			res.Disconnects = append(res.Disconnects, fmt.Sprintf("switch %d: %v", sw.idx+1, sw.err))
		default:
		}
	}
	return res, nil
}

// setupCounts sums what the switches were sent during the setup.
func setupCounts(res *result, sws []*fakeSwitch) {
	res.Setup.FlowMods, res.Setup.OtherMods, res.Setup.Bundled, res.Setup.BundleCommits, res.Setup.Barriers = 0, 0, 0, 0, 0
	for _, sw := range sws {
		c := &sw.c
		res.Setup.FlowMods += c.flowMods.Load()
		res.Setup.OtherMods += c.otherMods.Load()
		res.Setup.Bundled += c.bundled.Load()
		res.Setup.BundleCommits += c.commits.Load()
		res.Setup.Barriers += c.barriers.Load()
	}
	res.Setup.MissTable = int(sws[0].missReport.Load()) - 1
}

type measured struct {
	r    loopResult
	snap snapshot
}

// measure waits d, sampling every second, and returns the interval's figures.
func measure(sws []*fakeSwitch, from snapshot, d time.Duration, loop int) measured {
	prev := from
	var samples []float64
	end := from.at.Add(d)
	for {
		next := prev.at.Add(time.Second)
		if next.After(end) {
			next = end
		}
		time.Sleep(time.Until(next))
		cur := take(sws)
		if sec := cur.at.Sub(prev.at).Seconds(); sec > 0 {
			samples = append(samples, float64(cur.responses-prev.responses)/sec)
		}
		prev = cur
		if !cur.at.Before(end) {
			break
		}
	}
	r := diff(from, prev, loop)
	r.Samples = samples
	return measured{r, prev}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, " ")
}
