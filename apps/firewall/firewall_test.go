package firewall

import (
	"testing"
	"time"

	"github.com/loom-sdn/loom/apps/kit"

	"github.com/loom-sdn/loom/controller"
	"github.com/loom-sdn/loom/controller/controllertest"
	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/prometheus/client_golang/prometheus"
)

// fabric is the runtime with the firewall, and an emulated switch per
// host of the lab's model.
type fabric struct {
	*lab
	env *controllertest.Env
	sws map[string]*emu.Switch
}

func newFabric(t *testing.T, l *lab, hosts ...string) *fabric {
	f := &fabric{lab: l, sws: map[string]*emu.Switch{},
		env: controllertest.Start(t, controller.Config{Apps: []string{Name}, Services: kit.Services(l.View, nil)}, prometheus.NewRegistry())}
	for _, h := range hosts {
		dpid := l.DPID(h)
		f.sws[h] = f.env.Dial(emu.Options{DatapathID: dpid})
		f.env.Ready(dpid)
	}
	return f
}

// has waits until the host's switch has a flow containing every one of
// parts (or, with want false, none such).
func (f *fabric) has(host string, want bool, parts ...string) {
	f.t.Helper()
	controllertest.WaitFlow(f.t, f.sws[host], host, want, parts...)
}

// TestFirewallFollowsTheView: switches get their ports' flows from the
// view, and a change reaches only the switches it concerns.
func TestFirewallFollowsTheView(t *testing.T) {
	l := newModel(t)
	f := newFabric(t, l, "hv1", "hv2", "hv3")
	f.has("hv1", true, "ip,reg7=0x7 actions=ct(table=")
	f.has("hv2", true, "ip,reg7=0x6 actions=ct(table=")
	if n := f.sws["hv3"].NumFlows(); n != 4 {
		t.Errorf("hv3 without firewalled ports: %d flows, want the 4 table misses", n)
	}
	// A rule of locked, which only l1 on hv1 has: hv2 hears nothing.
	hv2 := f.sws["hv2"].Counters.FlowMods.Load()
	l.Patch(model.KindSecurityGroup, "locked", `{"rules":[{"direction":"egress","protocol":"tcp","port_min":8443}]}`)
	f.has("hv1", true, "tp_dst=8443")
	f.has("hv1", false, "tp_dst=443 ")
	time.Sleep(50 * time.Millisecond)
	if n := f.sws["hv2"].Counters.FlowMods.Load() - hv2; n != 0 {
		t.Errorf("a rule of a group with no port on hv2 sent it %d flow-mods", n)
	}
	// A new member of web on hv3: its address joins web's icmp rule on
	// hv1 and hv2, and hv3 gets its own flows.
	l.Create(&model.Port{Meta: meta("w3"), Network: "blue", MAC: "02:00:00:00:01:33", IPs: []string{"10.1.0.33"}, SecurityGroups: []string{"web"}})
	l.Bind("w3", "hv3", "tap-w3", 3)
	for _, h := range []string{"hv1", "hv2"} {
		f.has(h, true, "nw_src=10.1.0.33 actions=conjunction(")
	}
	f.has("hv3", true, "ip,in_port=3 actions=ct(table=")
	// Its groups gone, the port is open again.
	l.Patch(model.KindPort, "w3", `{"security_groups":[]}`)
	f.has("hv3", false, "in_port=3")
	f.has("hv1", false, "nw_src=10.1.0.33")
	if n := f.sws["hv3"].NumFlows(); n != 4 {
		t.Errorf("hv3 after its firewalled port left: %d flows", n)
	}
}
