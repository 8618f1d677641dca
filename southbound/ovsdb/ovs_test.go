package ovsdb

import (
	"fmt"
	osexec "os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/testenv"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// These tests run agents against real OVS hosts of an ovslab lab.

// dbAddress returns the OVSDB address of a lab host.
func dbAddress(h *ovslab.Host) string { return "unix:" + h.Dir + "/db.sock" }

// get runs ovs-vsctl get (or any read) and returns its output without
// surrounding blanks and quotes.
func get(t *testing.T, h *ovslab.Host, args ...string) string {
	t.Helper()
	out, err := h.Vsctl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(strings.TrimSpace(out), `"`)
}

// waitFor polls cond every 10 ms until it holds, and returns how long that
// took; it fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return testenv.WaitFor(t, timeout, what, cond)
}

// newTestManager returns a Manager whose binding events go to the returned
// channel, closed at the end of the test.
func newTestManager(t *testing.T) (*Manager, chan BindingEvent) {
	events := make(chan BindingEvent, 100)
	m := NewManager(Options{Logger: testLogger(t), OnBinding: func(ev BindingEvent) { events <- ev }})
	t.Cleanup(m.Close)
	return m, events
}

func status(t *testing.T, m *Manager, name string) HostStatus {
	t.Helper()
	st, ok := m.HostStatus(name)
	if !ok {
		t.Fatalf("no status for %s", name)
	}
	return st
}

// TestEnsureFromScratch has an agent create br-int, its controller and
// vxlan0 in an empty database, checks that a second agent changes nothing,
// then breaks things behind the agent's back and times the repairs, and
// changes the configuration.
func TestEnsureFromScratch(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{NoBridge: true})
	m, _ := newTestManager(t)
	cfg := HostConfig{
		Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", DatapathID: 0xabc,
		// vswitchd only accepts unix targets in its run directory; nothing
		// listens there, which does not matter here.
		Controller: "unix:" + h.Dir + "/loom.sock", VTEPIP: "10.200.0.1",
	}
	start := time.Now()
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bridge ready", func() bool { return status(t, m, "hv1").BridgeReady })
	t.Logf("host ensured from scratch (bridge ready, datapath id read back) in %v", time.Since(start).Round(time.Millisecond))
	st := status(t, m, "hv1")
	if st.Transactions != 1 || st.DatapathID != "0000000000000abc" || !st.Connected {
		t.Errorf("status: want 1 transaction, datapath id 0000000000000abc, connected; got %+v", st)
	}

	checks := [][2]string{
		{"get bridge br-int fail_mode", "secure"},
		{"get bridge br-int protocols", "[OpenFlow13]"},
		{"get bridge br-int datapath_type", "netdev"},
		{"get bridge br-int other_config:disable-in-band", "true"},
		{"get bridge br-int other_config:datapath-id", "0000000000000abc"},
		{"get bridge br-int external_ids:loom-owner", "loom"},
		{"get-controller br-int", cfg.Controller},
		{"--bare --columns=max_backoff,inactivity_probe,external_ids list controller", "1000\n5000\nloom-owner=loom"},
		{"get interface vxlan0 type", "vxlan"},
		{"get interface vxlan0 options", `{key=flow, local_ip="10.200.0.1", remote_ip=flow, tos=inherit}`},
		{"get interface vxlan0 ofport_request", "1000"},
		{"get interface vxlan0 ofport", "1000"},
		{"get interface vxlan0 external_ids:loom-owner", "loom"},
		{"get port vxlan0 external_ids:loom-owner", "loom"},
		{"get port br-int external_ids:loom-owner", "loom"},
		{"list-ports br-int", "vxlan0"},
	}
	check := func(skip string) {
		t.Helper()
		for _, c := range checks {
			if c[0] == skip {
				continue
			}
			if got := get(t, h, strings.Fields(c[0])...); got != c[1] {
				t.Errorf("%s: got %q, want %q", c[0], got, c[1])
			}
		}
	}
	check("")

	// Running it twice changes nothing: a second manager (a restarted
	// loomd) finds the host in sync, and so does the first one told the
	// same configuration again.
	m2, _ := newTestManager(t)
	if err := m2.Add(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "second agent in sync", func() bool { return status(t, m2, "hv1").BridgeReady })
	if st := status(t, m2, "hv1"); st.Transactions != 0 {
		t.Errorf("second agent: %d transactions, want 0", st.Transactions)
	}
	m2.Close()
	before := status(t, m, "hv1").LastSync
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "re-sync", func() bool { return status(t, m, "hv1").LastSync.After(before) })
	if st := status(t, m, "hv1"); st.Transactions != 1 {
		t.Errorf("same config again: %d transactions, want still 1", st.Transactions)
	}

	// Drift repair, each in one transaction.
	wantTxns := 1
	for _, drift := range []struct {
		name, cmd, query, want string
	}{
		{"vxlan0 deleted", "del-port br-int vxlan0", "get interface vxlan0 ofport", "1000"},
		{"fail_mode standalone", "set bridge br-int fail_mode=standalone", "get bridge br-int fail_mode", "secure"},
		{"protocols", "set bridge br-int protocols=OpenFlow10", "get bridge br-int protocols", "[OpenFlow13]"},
		{"in-band", "remove bridge br-int other_config disable-in-band", "get bridge br-int other_config:disable-in-band", "true"},
		{"local_ip", "set interface vxlan0 options:local_ip=10.9.9.9", "get interface vxlan0 options:local_ip", "10.200.0.1"},
		// vswitchd renumbers the port twice in a few ms (to 7, then back to
		// 1000) and may leave the ofport column at 7 although OpenFlow port
		// 1000 is vxlan0 again, so the repair is checked on ofport_request
		// and on the switch's own port list.
		{"ofport_request", "set interface vxlan0 ofport_request=7", "get interface vxlan0 ofport_request", "1000"},
		{"controller max_backoff", "set controller br-int max_backoff=8000", "get controller br-int max_backoff", "1000"},
		{"controller deleted", "del-controller br-int", "get-controller br-int", cfg.Controller},
	} {
		if _, err := h.Vsctl(strings.Fields(drift.cmd)...); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, 5*time.Second, drift.name+" repaired", func() bool {
			out, _ := h.Vsctl(strings.Fields(drift.query)...)
			return strings.Trim(strings.TrimSpace(out), `"`) == drift.want
		})
		wantTxns++
		t.Logf("repaired %-22s in %v", drift.name, d.Round(time.Millisecond))
		if drift.name == "ofport_request" {
			waitFor(t, 5*time.Second, "vxlan0 on OpenFlow port 1000", func() bool {
				out, _ := h.Ofctl("show", "br-int")
				return strings.Contains(out, " 1000(vxlan0):")
			})
		}
	}
	waitFor(t, 5*time.Second, "bridge ready after repairs", func() bool {
		st := status(t, m, "hv1")
		return st.BridgeReady && st.Transactions >= wantTxns
	})
	if st := status(t, m, "hv1"); st.Transactions != wantTxns {
		t.Errorf("after repairs: %d transactions, want %d", st.Transactions, wantTxns)
	}
	check("get interface vxlan0 ofport") // see the ofport_request case

	// An uplink, then neither uplink nor tunnel: Loom's ports go, a port
	// someone else added stays.
	if _, err := h.Vsctl("add-port", "br-int", "foreign0", "--", "set", "interface", "foreign0", "type=internal"); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"link add up0 type veth peer name up0p", "link set up0 up", "link set up0p up"} {
		if out, err := exec(append([]string{"ip", "-n", h.NS}, strings.Fields(cmd)...)...); err != nil {
			t.Fatal(out, err)
		}
	}
	up := cfg
	up.Uplink = "up0"
	if err := m.Update(up); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "uplink port", func() bool {
		out, _ := h.Vsctl("get", "interface", "up0", "ofport")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n > 0
	})
	if got := get(t, h, "get", "port", "up0", "external_ids:loom-owner"); got != "loom" {
		t.Errorf("uplink port owner: %q", got)
	}
	bare := cfg
	bare.VTEPIP = ""
	if err := m.Update(bare); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "loom's ports removed", func() bool {
		out, _ := h.Vsctl("list-ports", "br-int")
		return strings.TrimSpace(out) == "foreign0"
	})
	// The removal is visible in the database a moment before the agent
	// has counted its transaction: wait for the count, then check that
	// it is exact.
	waitFor(t, 5*time.Second, "bridge ready after updates", func() bool {
		st := status(t, m, "hv1")
		return st.BridgeReady && st.Transactions >= wantTxns+2
	})
	if st := status(t, m, "hv1"); st.Transactions != wantTxns+2 {
		t.Errorf("after 2 updates: %d transactions, want %d", st.Transactions, wantTxns+2)
	}
	if out, err := h.Vsctl("list", "interface", "vxlan0"); err == nil {
		t.Errorf("vxlan0's interface row is still there: %s", out)
	}

	// Removing the host deletes nothing.
	if err := m.Remove("hv1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, h, "list-br"); got != "br-int" {
		t.Errorf("after Remove: bridges %q", got)
	}
}

// exec runs a command and returns its combined output.
func exec(argv ...string) (string, error) {
	out, err := osexec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%v: %w", argv, err)
	}
	return string(out), nil
}

// nextEvent returns the first binding event that satisfies want, skipping
// (and logging) others, and how long it took to come.
func nextEvent(t *testing.T, events chan BindingEvent, what string, want func(BindingEvent) bool) (BindingEvent, time.Duration) {
	t.Helper()
	start := time.Now()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if want(ev) {
				return ev, time.Since(start)
			}
			t.Logf("(%s: skipping %s %+v)", what, ev.Type, ev.Binding)
		case <-timeout:
			t.Fatalf("%s: no event after 5s", what)
		}
	}
}

// TestBindings plugs interfaces into a bridge the agent adopted and checks
// the bindings it reports.
func TestBindings(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{})
	m, events := newTestManager(t)
	cfg := HostConfig{Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", DatapathID: h.DPID}
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "bridge ready", func() bool { return status(t, m, "hv1").BridgeReady })
	if st := status(t, m, "hv1"); st.Transactions != 0 {
		t.Errorf("adopting ovslab's br-int: %d transactions, want 0", st.Transactions)
	}

	// OVS cannot open bad0 (no such device): its ofport is -1, and it is
	// never reported bound.
	if _, err := h.Vsctl("add-port", "br-int", "bad0", "--", "set", "interface", "bad0", "external_ids:iface-id=bad"); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"link add tap1 type veth peer name tap1p", "link set tap1 up", "link set tap1p up"} {
		if out, err := exec(append([]string{"ip", "-n", h.NS}, strings.Fields(cmd)...)...); err != nil {
			t.Fatal(out, err)
		}
	}
	if _, err := h.Vsctl("add-port", "br-int", "tap1", "--", "set", "interface", "tap1",
		"external_ids:iface-id=port-1", "external_ids:attached-mac=02:00:00:00:00:AA"); err != nil {
		t.Fatal(err)
	}
	isBad := func(ev BindingEvent) bool { return ev.IfaceID == "bad" }
	ev, d := nextEvent(t, events, "tap1 bound", func(ev BindingEvent) bool { return !isBad(ev) })
	t.Logf("binding reported %v after ovs-vsctl add-port returned", d.Round(time.Millisecond))
	tap1 := Binding{Host: "hv1", IfaceID: "port-1", Interface: "tap1", MAC: "02:00:00:00:00:aa", AdminUp: true, LinkUp: true}
	tap1.OFPort, _ = strconv.Atoi(get(t, h, "get", "interface", "tap1", "ofport"))
	if ev.Type != BindingAdded || ev.Binding != tap1 || tap1.OFPort <= 0 {
		t.Errorf("tap1: got %s %+v, want added %+v", ev.Type, ev.Binding, tap1)
	}

	vm := h.AddVM("vm1", "02:00:00:00:01:01", "10.0.0.1/24")
	ev, _ = nextEvent(t, events, "vm1 bound", func(ev BindingEvent) bool { return !isBad(ev) })
	vm1 := Binding{Host: "hv1", IfaceID: "vm1", Interface: "vm1", OFPort: vm.OFPort, MAC: vm.MAC, AdminUp: true, LinkUp: true}
	if ev.Type != BindingAdded || ev.Binding != vm1 {
		t.Errorf("vm1: got %s %+v, want added %+v", ev.Type, ev.Binding, vm1)
	}
	if got := m.Bindings(); len(got) != 2 || got[0] != tap1 || got[1] != vm1 {
		t.Errorf("Bindings: got %+v, want tap1, vm1", got)
	}

	if err := vm.SetLinkDown(); err != nil {
		t.Fatal(err)
	}
	ev, d = nextEvent(t, events, "vm1 link down", func(ev BindingEvent) bool {
		return ev.Type == BindingChanged && ev.Interface == "vm1" && !ev.LinkUp
	})
	t.Logf("link down reported after %v (admin_up=%v)", d.Round(time.Millisecond), ev.AdminUp)
	if err := vm.SetLinkUp(); err != nil {
		t.Fatal(err)
	}
	_, d = nextEvent(t, events, "vm1 link up", func(ev BindingEvent) bool {
		return ev.Type == BindingChanged && ev.Interface == "vm1" && ev.LinkUp && ev.AdminUp
	})
	t.Logf("link up reported after %v", d.Round(time.Millisecond))

	if err := h.DelVM(vm); err != nil {
		t.Fatal(err)
	}
	ev, d = nextEvent(t, events, "vm1 unbound", func(ev BindingEvent) bool { return ev.Interface == "vm1" })
	if ev.Type != BindingRemoved || ev.IfaceID != "vm1" {
		t.Errorf("vm1 deleted: got %s %+v", ev.Type, ev.Binding)
	}
	t.Logf("unbinding reported after %v", d.Round(time.Millisecond))

	// Removing the host reports its bindings removed, and keeps the bridge.
	if err := m.Remove("hv1"); err != nil {
		t.Fatal(err)
	}
	ev, _ = nextEvent(t, events, "tap1 unbound", func(BindingEvent) bool { return true })
	if ev.Type != BindingRemoved || ev.Binding != tap1 {
		t.Errorf("after Remove: got %s %+v, want tap1 removed", ev.Type, ev.Binding)
	}
	if got := get(t, h, "list-ports", "br-int"); got != "bad0\ntap1" {
		t.Errorf("after Remove: ports %q", got)
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected event %s %+v", ev.Type, ev.Binding)
	default:
	}
}

// TestReconnect kills and restarts a host's ovsdb-server under its agent.
func TestReconnect(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{})
	m, events := newTestManager(t)
	cfg := HostConfig{Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", DatapathID: h.DPID, VTEPIP: "10.200.0.1"}
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "bridge ready", func() bool { return status(t, m, "hv1").BridgeReady })
	vm := h.AddVM("vm1", "02:00:00:00:01:01", "10.0.0.1/24")
	nextEvent(t, events, "vm1 bound", func(ev BindingEvent) bool { return ev.Type == BindingAdded })

	if err := h.KillDB(); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, 5*time.Second, "disconnected", func() bool { return !status(t, m, "hv1").Connected })
	t.Logf("lost connection noticed after %v: %q", d.Round(time.Millisecond), status(t, m, "hv1").LastError)
	time.Sleep(time.Second) // a few failed attempts
	if st := status(t, m, "hv1"); st.Connected || st.BridgeReady || st.ConnectFailures == 0 || st.LastError == "" {
		t.Errorf("while ovsdb-server is down: %+v", st)
	}
	if err := h.StartDB(); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, 10*time.Second, "reconnected", func() bool { return status(t, m, "hv1").Connected })
	t.Logf("reconnected %v after ovsdb-server restarted", d.Round(time.Millisecond))
	d = waitFor(t, 10*time.Second, "reconnected and in sync", func() bool {
		st := status(t, m, "hv1")
		return st.Connected && st.BridgeReady
	})
	t.Logf("bridge ready again %v later (ovs-vswitchd rewrote datapath_id, an ephemeral column)", d.Round(time.Millisecond))
	if st := status(t, m, "hv1"); st.Transactions != 1 {
		t.Errorf("after reconnecting: %d transactions, want still 1", st.Transactions)
	}

	// The new connection monitors too: drift is still repaired, and vm1's
	// binding was neither lost nor reported again.
	if _, err := h.Vsctl("del-port", "br-int", "vxlan0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "vxlan0 restored", func() bool {
		out, _ := h.Vsctl("get", "interface", "vxlan0", "ofport")
		return strings.TrimSpace(out) == "1000"
	})
	if b := m.Bindings(); len(b) != 1 || b[0].Interface != "vm1" || b[0].OFPort != vm.OFPort {
		t.Errorf("bindings after reconnect: %+v", b)
	}

	// A new address takes effect at once, also while retrying.
	bad := cfg
	bad.Address = "unix:" + h.Dir + "/nothing.sock"
	if err := m.Update(bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "disconnected from the old address", func() bool {
		st := status(t, m, "hv1")
		return !st.Connected && st.ConnectFailures > 0 && strings.Contains(st.LastError, "nothing.sock")
	})
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	d = waitFor(t, 5*time.Second, "connected to the good address", func() bool { return status(t, m, "hv1").BridgeReady })
	t.Logf("address fixed: in sync again after %v", d.Round(time.Millisecond))
	select {
	case ev := <-events:
		t.Errorf("unexpected event %s %+v", ev.Type, ev.Binding)
	default:
	}
}

// TestManyHosts has one Manager ensure three hosts from scratch.
func TestManyHosts(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	l := ovslab.New(t)
	m, _ := newTestManager(t)
	var hosts []*ovslab.Host
	for i := range 3 {
		hosts = append(hosts, l.AddHost(fmt.Sprintf("hv%d", i+1), ovslab.HostOptions{NoBridge: true}))
	}
	start := time.Now()
	for i, h := range hosts {
		if err := m.Add(HostConfig{Name: h.Name, Address: dbAddress(h), DatapathType: "netdev",
			DatapathID: uint64(0x100 + i), VTEPIP: fmt.Sprintf("10.200.0.%d", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "all bridges ready", func() bool {
		for _, st := range m.Status() {
			if !st.BridgeReady {
				return false
			}
		}
		return true
	})
	t.Logf("3 hosts ensured from scratch in %v", time.Since(start).Round(time.Millisecond))
	for i, st := range m.Status() {
		if st.Name != hosts[i].Name || st.DatapathID != fmt.Sprintf("%016x", 0x100+i) || st.Transactions != 1 {
			t.Errorf("status %d: %+v", i, st)
		}
		if got := get(t, hosts[i], "get", "interface", "vxlan0", "options:local_ip"); got != fmt.Sprintf("10.200.0.%d", i+1) {
			t.Errorf("%s: vxlan0 local_ip %q", hosts[i].Name, got)
		}
	}
}

// TestSeveralControllers: a host config with several controller targets
// (every loomd replica's) gets one controller row each, Loom's settings
// on all; going down to one keeps a row the bridge already had, and the
// bridge's controller set is never empty on the way.
func TestSeveralControllers(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{NoBridge: true})
	m, _ := newTestManager(t)
	a, b, c := "unix:"+h.Dir+"/a.sock", "unix:"+h.Dir+"/b.sock", "unix:"+h.Dir+"/c.sock"
	cfg := HostConfig{Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", Controller: a + "," + b + "," + c}
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	targets := func() string {
		out, err := h.Vsctl("get-controller", "br-int")
		if err != nil {
			return "" // no bridge yet
		}
		f := strings.Fields(out)
		slices.Sort(f)
		return strings.Join(f, ",")
	}
	waitFor(t, 10*time.Second, "three controllers", func() bool { return targets() == a+","+b+","+c })
	uuidOf := func(target string) string {
		out, _ := h.Vsctl("--bare", "--columns=_uuid", "find", "controller", "target="+`"`+target+`"`)
		return strings.TrimSpace(out)
	}
	bRow := uuidOf(b)
	if out, _ := h.Vsctl("--bare", "--columns=max_backoff", "list", "controller"); strings.Count(out, "1000") != 3 {
		t.Errorf("max_backoff on each row: %q", out)
	}
	cfg.Controller = b
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "one controller", func() bool { return targets() == b })
	if got := uuidOf(b); got != bRow {
		t.Errorf("b's row %s was replaced by %s", bRow, got)
	}
}

// TestObserve: an agent that only observes a host (another replica
// manages it) writes nothing, not even a missing bridge, and reports the
// bindings and zones the managing agent's bridge holds.
func TestObserve(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{NoBridge: true})
	events := make(chan BindingEvent, 100)
	var zmu sync.Mutex
	var zones map[string]uint16
	obs := NewManager(Options{Logger: testLogger(t), OnBinding: func(ev BindingEvent) { events <- ev },
		OnZones: func(_ string, z map[string]uint16) { zmu.Lock(); zones = z; zmu.Unlock() }})
	t.Cleanup(obs.Close)
	cfg := HostConfig{Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", VTEPIP: "10.200.0.1", Observe: true}
	if err := obs.Add(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "observer connected", func() bool { return status(t, obs, "hv1").Connected })
	time.Sleep(200 * time.Millisecond)
	if out, _ := h.Vsctl("list-br"); strings.TrimSpace(out) != "" || status(t, obs, "hv1").Transactions != 0 {
		t.Fatalf("an observer wrote: bridges %q, %d transactions", out, status(t, obs, "hv1").Transactions)
	}
	mgr, _ := newTestManager(t)
	mcfg := cfg
	mcfg.Observe, mcfg.ManageZones, mcfg.Zones = false, true, map[string]uint16{"port:x": 1}
	if err := mgr.Add(mcfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the observer sees the manager's zones", func() bool {
		zmu.Lock()
		defer zmu.Unlock()
		return zones["port:x"] == 1
	})
	if _, err := h.Vsctl("add-port", "br-int", "tap1", "--", "set", "interface", "tap1", "type=internal", "external_ids:iface-id=port-1"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := nextEvent(t, events, "tap1 bound", func(ev BindingEvent) bool { return ev.IfaceID == "port-1" }); ev.Type != BindingAdded {
		t.Errorf("observer: %+v", ev)
	}
	if n := status(t, obs, "hv1").Transactions; n != 0 {
		t.Errorf("the observer made %d transactions", n)
	}
}
