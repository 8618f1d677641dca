package controller

import (
	"testing"

	"github.com/loom-sdn/loom/southbound/openflow/flow"
)

// TestLearnedTable: a learned table is a side table (no table's miss or
// Next leads to it), misses with a drop, and the reconciler keeps the
// flows the switch learned there while removing strays elsewhere.
func TestLearnedTable(t *testing.T) {
	saved := pipeline
	defer func() { pipeline = saved }()
	a := &Table{Name: "a", Owner: "x", Miss: MissNext}
	l := &Table{Name: "l", Owner: "x", Miss: MissDrop, Side: true, Learned: true}
	b := &Table{Name: "b", Owner: "x", Miss: MissNext}
	pipeline = []*Table{a, l, b}
	p := realize(map[string]bool{"x": true})
	if len(p.Tables()) != 3 || p.ID(l) != 1 {
		t.Fatalf("realized %v", p.Tables())
	}
	if n, ok := p.Next(a); !ok || n != b {
		t.Errorf("a's next table is %v, want b (the learned table is skipped)", n)
	}

	c := &Controller{pipe: p}
	desired := flow.New(p.ID(a), 10, flow.Match{}.EthType(0x800)).Act(flow.Output(1))
	learned := flow.New(p.ID(l), 100, flow.Match{}.EthType(0x800).Set(flow.IPv4Src, 0x0a000001)).Act(flow.SetField(flow.Reg4, 7))
	stray := flow.New(p.ID(b), 100, flow.Match{}.EthType(0x800)).Act(flow.Output(2))
	strayMiss := flow.New(p.ID(l), 0, nil).Act(flow.Output(3)) // a miss flow is the runtime's: not learned
	sw := &Switch{c: c, flows: map[flow.Key]*flow.Flow{desired.Key(): desired}}
	actual := map[flow.Key]*flow.Flow{desired.Key(): desired, learned.Key(): learned, stray.Key(): stray, strayMiss.Key(): strayMiss}
	mods, _ := sw.diffFlows(actual, false)
	deleted := map[string]bool{}
	for _, m := range mods {
		if m.cmd != flow.CmdDeleteStrict {
			t.Errorf("unexpected mod %v %s", m.cmd, m.f)
		}
		deleted[m.f.String()] = true
	}
	if len(deleted) != 2 || !deleted[stray.String()] || !deleted[strayMiss.String()] || deleted[learned.String()] {
		t.Errorf("deleted %v, want the two strays and not the learned flow", deleted)
	}
}
