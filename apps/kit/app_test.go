package kit_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"
	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/internal/testenv"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/view"
	"github.com/loom-sdn/loom/view/viewtest"
)

// A test app on the kit: a flow per VXLAN network (priority = its VNI's
// low bits) and one meter; a network named "bad" gets a flow the switch
// refuses.
var (
	kitTable    = controller.DeclareTable("kit-test", "kit-test", controller.MissNext, controller.Place{})
	builds      atomic.Int64 // digests from scratch
	incremental atomic.Int64
)

func init() {
	controller.DeclareOwner("kit-test", 0x7f10)
	controller.Register("kit-test", func(env controller.Env) (controller.App, error) {
		return kit.NewApp(env, kit.Spec[int]{
			Name:  "kit-test",
			Kinds: []model.Kind{model.KindHost, model.KindNetwork},
			Digest: func(prev int, prevSnap, next *view.Snapshot, c view.Changes) (int, kit.Wake) {
				if prevSnap == nil {
					builds.Add(1)
				} else {
					incremental.Add(1)
				}
				return prev + 1, kit.Wake{All: true}
			},
			NewSwitch: func(controller.SwitchInfo) kit.Logic[int] { return logic{} },
		})
	})
}

type logic struct{}

func (logic) Compile(ctx *controller.Context, _ int, snap *view.Snapshot) kit.State {
	t := ctx.Pipeline().ID(kitTable)
	st := kit.State{Meters: []*flow.Meter{{ID: 77, Flags: flow.MeterPktps, Bands: []flow.Band{{Rate: 10}}}}}
	for _, n := range snap.Model.Networks.All() {
		f := flow.New(t, uint16(n.VNI%1000), flow.Match{}.TunnelID(uint64(n.VNI))).WithMeter(77).Goto(t + 1)
		if n.Name == "bad" {
			f = flow.New(t, 999, nil).Act(flow.RawAction([]byte{0xff, 0xff, 0, 4}))
		}
		st.Flows = append(st.Flows, f)
	}
	return st
}

// The kit's shell: it follows the view (a change of an undeclared kind
// rebuilds the index), states each switch's flows and meters, and a flow
// the switch refused is forgotten and stated again on the next change.
func TestKitApp(t *testing.T) {
	l := viewtest.New(t)
	l.Create(&model.Host{Meta: viewtest.Meta("hv1"), OVSDB: "tcp:127.0.0.1:6640", Controller: "tcp:127.0.0.1:6653", VTEPIP: "10.200.0.1"},
		&model.Network{Meta: viewtest.Meta("n1"), Type: "vxlan", VNI: 5001})
	env := controllertest.Start(t, controller.Config{Apps: []string{"kit-test"}, Services: kit.Services(l.View, nil)}, nil)
	dpid := l.DPID("hv1")
	sw := env.Dial(emu.Options{DatapathID: dpid})
	env.Ready(dpid)
	controllertest.WaitFlow(t, sw, "hv1", true, "priority=1,", "tun_id=0x1389")
	if sw.NumMeters() != 1 {
		t.Errorf("meters: %d, want 1", sw.NumMeters())
	}
	b, i := builds.Load(), incremental.Load()
	l.Create(&model.Network{Meta: viewtest.Meta("n2"), Type: "vxlan", VNI: 5002})
	controllertest.WaitFlow(t, sw, "hv1", true, "priority=2,", "tun_id=0x138a")
	if builds.Load() != b || incremental.Load() <= i {
		t.Errorf("a declared kind: builds %d -> %d, incremental %d -> %d; want incremental only", b, builds.Load(), i, incremental.Load())
	}
	// A subnet is a kind the app did not declare: a rebuild.
	l.Create(&model.Subnet{Meta: viewtest.Meta("s1"), Network: "n1", CIDR: "10.1.0.0/24"})
	testenv.WaitFor(t, 5*time.Second, "a rebuild after a change of an undeclared kind", func() bool { return builds.Load() > b })
	// Refused: forgotten, stated again with the next change.
	l.Create(&model.Network{Meta: viewtest.Meta("bad"), Type: "vxlan", VNI: 5003})
	controllertest.WaitFlow(t, sw, "hv1", true, "tun_id=0x138a")
	before := sw.Counters.FlowMods.Load()
	l.Create(&model.Network{Meta: viewtest.Meta("n4"), Type: "vxlan", VNI: 5004})
	controllertest.WaitFlow(t, sw, "hv1", true, "tun_id=0x138c")
	if sent := sw.Counters.FlowMods.Load() - before; sent < 2 {
		t.Errorf("%d flow-mods after the refusal, want the new flow and the refused one again", sent)
	}
}

// ModelKinds names every kind the model has today: a kind added to the
// model must be added here once the apps are checked to handle it (until
// then it rebuilds them all, which is correct but slow).
func TestModelKindsAreTodays(t *testing.T) {
	for _, ki := range model.Kinds() {
		found := false
		for _, k := range kit.ModelKinds {
			found = found || k == ki.Kind
		}
		if !found {
			t.Errorf("model kind %s is not in kit.ModelKinds: check which apps handle its changes, then add it", ki.Kind)
		}
	}
}
