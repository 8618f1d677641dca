package controller

import (
	"testing"
	"time"

	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// benchFlows builds n distinct flows of the test app, with the actions of
// every changeEvery-th one altered when altered is set.
func benchFlows(n, changeEvery int, altered bool) []*flow.Flow {
	out := make([]*flow.Flow, n)
	for i := range out {
		port := uint32(i%48 + 1)
		if altered && changeEvery > 0 && i%changeEvery == 0 {
			port += 100
		}
		f := flow.New(testTableID, 100, flow.Match{}.EthDst(flow.MAC(0x020000000000+uint64(i))).Reg(0, uint32(i/1000)))
		f.Act(flow.Output(port))
		f.Cookie = uint64(testOwner) << CookieShift
		out[i] = f
	}
	return out
}

// BenchmarkReconcile100k measures a switch reconnecting with 100,000 flows:
// dump, diff, fix, confirmed by barrier. "same" has nothing to change; "1pct"
// has 1% of the flows with other actions. Run with -benchtime=1x (or a few
// x): one op is one whole reconciliation.
func BenchmarkReconcile100k(b *testing.B) {
	const n = 100000
	for _, tc := range []struct {
		name  string
		every int
	}{{"same", 0}, {"1pct", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, Config{}, openflow.Config{})
			testAppInstance.start = benchFlows(n, tc.every, false)
			// The runtime's own miss flow, as it would be on the switch.
			miss := flow.New(testTableID, 0, nil).Act(flow.Output(flow.PortController))
			miss.Cookie = cookieOwnerRuntime << CookieShift
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				have := append(benchFlows(n, tc.every, true), miss)
				b.StartTimer()
				start := time.Now()
				sw, err := emu.Dial("unix", h.sock, emu.Options{DatapathID: uint64(1000 + i), Flows: have, EntriesPerPart: 200})
				if err != nil {
					b.Fatal(err)
				}
				s := h.ready(uint64(1000 + i))
				d := time.Since(start)
				b.StopTimer()
				mods := sw.Counters.FlowMods.Load()
				b.ReportMetric(d.Seconds(), "s/reconcile")
				b.ReportMetric(float64(mods), "flow-mods")
				if st := s.lastReconcile; st.Modifies+st.Adds+st.Deletes != int(mods) {
					b.Errorf("reconcile stats %+v vs %d flow-mods", st, mods)
				}
				sw.Close()
			}
		})
	}
}
