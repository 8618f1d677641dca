package controller

import (
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/events"
	"github.com/loom-sdn/loom/southbound/openflow"
	"github.com/loom-sdn/loom/southbound/openflow/emu"
	"github.com/loom-sdn/loom/southbound/openflow/flow"
	"github.com/loom-sdn/loom/southbound/openflow/wire"
)

// candidates records what a controller tells its Mastership.
type candidates struct {
	mu        sync.Mutex
	connected map[uint64]bool
}

func (c *candidates) Connected(dpid uint64)    { c.mu.Lock(); c.connected[dpid] = true; c.mu.Unlock() }
func (c *candidates) Disconnected(dpid uint64) { c.mu.Lock(); delete(c.connected, dpid); c.mu.Unlock() }
func (c *candidates) has(dpid uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected[dpid]
}

func roleOf(h *harness, dpid uint64) RoleState {
	sw, ok := h.ctl.Switch(dpid)
	if !ok {
		return RoleState{}
	}
	var st RoleState
	sw.onLoop(h.ctl.ctx, func() { st = sw.roleState() })
	return st
}

// TestRolesTwoControllers: one switch connected to two controllers with
// elections. Until an election says so, neither writes (warm: desired
// state computed). The master's reconciliation installs the flows; the
// slave sends nothing. A failover to the other controller, with a newer
// generation, sends no flow-mod (the flows are right), demotes the old
// master (ROLE_STATUS), and the old master, still believing an older
// election, is refused as stale and writes nothing.
func TestRolesTwoControllers(t *testing.T) {
	tickInterval.Store(0)
	defer tickInterval.Store(int64(10 * time.Millisecond))
	ma, mb := &candidates{connected: map[uint64]bool{}}, &candidates{connected: map[uint64]bool{}}
	bus := events.NewBus()
	roleEvents := bus.Subscribe(64, func(ev events.Event) bool { return ev.Type == "role" })
	defer roleEvents.Close()
	a := newHarness(t, Config{PacketInRate: 100, Bundles: true, Mastership: ma, Events: bus}, openflow.Config{})
	b := newHarness(t, Config{PacketInRate: 100, Bundles: true, Mastership: mb}, openflow.Config{})
	testAppInstance.start = []*flow.Flow{flow.New(testTableID, 50, flow.Match{}.EthType(0x0806)).Act(flow.Output(flow.PortFlood))}
	dp := emu.NewDatapath(nil, nil, nil)
	const dpid = 9
	sa := a.dial(emu.Options{DatapathID: dpid, Ports: ports(2), Datapath: dp})
	sb := b.dial(emu.Options{DatapathID: dpid, Ports: ports(2), Datapath: dp})
	a.ready(dpid)
	b.ready(dpid)
	if !ma.has(dpid) || !mb.has(dpid) {
		t.Fatal("the controllers did not tell their Mastership of the switch")
	}
	if n := dp.NumFlows(); n != 0 || sa.Counters.FlowMods.Load()+sb.Counters.FlowMods.Load() != 0 {
		t.Fatalf("%d flows written before any election", n)
	}

	// Elected: a at generation 10.
	a.ctl.SetRole(dpid, Role{Master: true, Generation: 10})
	b.ctl.SetRole(dpid, Role{Master: false, Generation: 10})
	eventually(t, "a's flows on the switch", func() bool { _, ok := dp.Lookup(testAppInstance.start[0]); return ok })
	eventually(t, "roles", func() bool { return sa.Role() == wire.RoleMaster && sb.Role() == wire.RoleSlave })
	if ev := waitRoleEvent(t, roleEvents, "master"); ev["generation"] != uint64(10) {
		t.Errorf("a's role event: %v", ev)
	}
	if st := roleOf(a, dpid); st.Role != "master" || st.Generation != 10 {
		t.Errorf("a: %+v", st)
	}
	if st := roleOf(b, dpid); st.Role != "slave" {
		t.Errorf("b: %+v", st)
	}
	if n := sb.Counters.FlowMods.Load() + sb.Counters.BundleCommits.Load() + sb.Counters.SlaveRefusals.Load(); n != 0 {
		t.Errorf("the slave sent %d writes", n)
	}

	// Failover: b at 11. Its reconciliation finds the flows right.
	before := dp.NumFlows()
	b.ctl.SetRole(dpid, Role{Master: true, Generation: 11})
	eventually(t, "b master", func() bool { return roleOf(b, dpid).Role == "master" })
	eventually(t, "a deposed by ROLE_STATUS", func() bool { return roleOf(a, dpid).Role == "slave" })
	if n := sb.Counters.FlowMods.Load(); n != 0 {
		t.Errorf("the new master sent %d flow-mods to a switch whose flows were right", n)
	}
	if dp.NumFlows() != before {
		t.Errorf("flows %d -> %d across the failover", before, dp.NumFlows())
	}
	// a, behind on the elections, asks to be master at 10 again: stale.
	a.ctl.SetRole(dpid, Role{Master: true, Generation: 10})
	eventually(t, "a's stale request refused", func() bool { return dp.StaleRoleRequests.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if st := roleOf(a, dpid); st.Role != "slave" || st.Wanted != "master" {
		t.Errorf("a after its stale request: %+v", st)
	}
	// A packet-in makes a's app write (learn a flow, packet-out): nothing
	// leaves a, which is not master.
	outs := sa.Counters.PacketOuts.Load()
	sa.PacketIn(1, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	time.Sleep(50 * time.Millisecond)
	if sa.Counters.PacketOuts.Load() != outs || sa.Counters.SlaveRefusals.Load() != 0 {
		t.Errorf("a wrote as a slave: %d packet-outs, %d refusals", sa.Counters.PacketOuts.Load()-outs, sa.Counters.SlaveRefusals.Load())
	}
	// b writes: a new flow of b's app reaches the switch.
	sb.PacketIn(2, testTableID, 0, wire.PacketInNoMatch, make([]byte, 60))
	learned := flow.New(testTableID, 10, flow.Match{}.InPort(2)).Act(flow.Output(flow.PortInPort))
	eventually(t, "b's learned flow", func() bool { _, ok := dp.Lookup(learned); return ok })
}

// waitRoleEvent waits for a switch role event with role on sub.
func waitRoleEvent(t *testing.T, sub *events.Subscription, role string) map[string]any {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			if o, ok := ev.Object.(map[string]any); ok && ev.Topic == "switch" && ev.Type == "role" && o["role"] == role {
				return o
			}
		case <-timeout:
			t.Fatalf("no switch role event %q", role)
			return nil
		}
	}
}
