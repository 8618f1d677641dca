package ovsdb

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

func TestHostConfigDefaults(t *testing.T) {
	c, err := HostConfig{Name: "hv1", Address: "unix:/run/openvswitch/db.sock"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Bridge != "br-int" || c.DatapathType != "system" || c.TunnelPort != 1000 {
		t.Errorf("defaults: got %+v", c)
	}
	for _, bad := range []HostConfig{
		{Address: "unix:/x"},
		{Name: "a", Address: "/x"},
		{Name: "a", Address: "ssl:1.2.3.4:6640"},
		{Name: "a", Address: "tcp:1.2.3.4:6640", DatapathType: "dpdk"},
		{Name: "a", Address: "tcp:1.2.3.4:6640", VTEPIP: "10.0.0"},
		{Name: "a", Address: "tcp:1.2.3.4:6640", TunnelPort: 0xff01},
		{Name: "a", Address: "tcp:1.2.3.4:6640", Uplink: "vxlan0"},
		{Name: "a", Address: "tcp:1.2.3.4:6640", Uplink: "a-very-long-interface"},
		{Name: "a", Address: "tcp:1.2.3.4:6640", Controller: "nocolon"},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestDiffBindings(t *testing.T) {
	a := Binding{Host: "h", IfaceID: "a", Interface: "tapa", OFPort: 1, MAC: "02:00:00:00:00:01", AdminUp: true, LinkUp: true}
	b := Binding{Host: "h", IfaceID: "b", Interface: "tapb", OFPort: 2}
	c := Binding{Host: "h", IfaceID: "c", Interface: "tapc", OFPort: 3}
	a2 := a
	a2.LinkUp = false
	got := diffBindings(map[string]Binding{"tapa": a, "tapb": b}, map[string]Binding{"tapa": a2, "tapc": c})
	want := []BindingEvent{{BindingChanged, a2}, {BindingRemoved, b}, {BindingAdded, c}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if evs := diffBindings(map[string]Binding{"tapa": a}, map[string]Binding{"tapa": a}); len(evs) != 0 {
		t.Errorf("no change: got %v", evs)
	}
}

func TestBindingFromInterface(t *testing.T) {
	up, down := "up", "down"
	i := &vswitchd.Interface{Name: "tap1", Ofport: ptr(7), MACInUse: ptr("AA:00:00:00:00:01"), AdminState: &up, LinkState: &down,
		ExternalIDs: map[string]string{IfaceIDKey: "p1"}}
	b, ok := binding("h", i, Binding{})
	want := Binding{Host: "h", IfaceID: "p1", Interface: "tap1", OFPort: 7, MAC: "aa:00:00:00:00:01", AdminUp: true}
	if !ok || b != want {
		t.Errorf("got %+v %v, want %+v", b, ok, want)
	}
	i.ExternalIDs["attached-mac"] = "02:00:00:00:00:02"
	if b, _ := binding("h", i, Binding{}); b.MAC != "02:00:00:00:00:02" {
		t.Errorf("attached-mac: got %q", b.MAC)
	}
	// After an ovsdb-server restart the ephemeral columns are empty for a
	// while: the last reported values stay.
	restarted := &vswitchd.Interface{Name: "tap1", Ofport: ptr(7), ExternalIDs: map[string]string{IfaceIDKey: "p1"}}
	if b, _ := binding("h", restarted, want); b != want {
		t.Errorf("empty ephemeral columns: got %+v, want %+v", b, want)
	}
	for _, ofport := range []*int{nil, ptr(0), ptr(-1)} {
		i.Ofport = ofport
		if _, ok := binding("h", i, Binding{}); ok {
			t.Errorf("ofport %v: bound", ofport)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	var prev time.Duration
	for i := range 10 {
		d := b.next()
		if d < 80*time.Millisecond || d > 1200*time.Millisecond {
			t.Errorf("step %d: %v out of bounds", i, d)
		}
		if i > 0 && i < 3 && d <= prev*8/10 {
			t.Errorf("step %d: %v does not grow from %v", i, d, prev)
		}
		prev = d
	}
	b.reset()
	if d := b.next(); d > 120*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
}

func TestLibovsdbLoggerQuiet(t *testing.T) {
	var buf bytes.Buffer
	l := libovsdbLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	l.V(3).Info("trying to connect")
	l.V(5).Info("transacting")
	if buf.Len() != 0 {
		t.Errorf("libovsdb V(3)/V(5) logged at Info level: %s", buf.String())
	}
	l.WithName("cache").Error(errTest, "error updating cache", "table", "Bridge")
	if s := buf.String(); !strings.Contains(s, "level=WARN") || !strings.Contains(s, "cache: error updating cache") ||
		!strings.Contains(s, "table=Bridge") || !strings.Contains(s, "component=libovsdb") {
		t.Errorf("error log: %s", s)
	}
	buf.Reset()
	debug := libovsdbLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 5})))
	debug.V(4).Info("transacting operations")
	if !strings.Contains(buf.String(), "transacting operations") {
		t.Errorf("V(4) at Debug-5: %q", buf.String())
	}
}

var errTest = bytesError("boom")

type bytesError string

func (e bytesError) Error() string { return string(e) }

func TestManagerErrors(t *testing.T) {
	m := NewManager(Options{Logger: testLogger(t)})
	defer m.Close()
	cfg := HostConfig{Name: "hv1", Address: "unix:/nonexistent/db.sock"}
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(cfg); err == nil {
		t.Error("Add twice: no error")
	}
	if err := m.Update(HostConfig{Name: "hv2", Address: "unix:/x"}); err == nil {
		t.Error("Update of an unknown host: no error")
	}
	if err := m.Remove("hv2"); err == nil {
		t.Error("Remove of an unknown host: no error")
	}
	if err := m.Add(HostConfig{Name: "bad"}); err == nil {
		t.Error("Add of an invalid config: no error")
	}
	if err := m.Remove("hv1"); err != nil {
		t.Error(err)
	}
	if st := m.Status(); len(st) != 0 {
		t.Errorf("Status after Remove: %v", st)
	}
}

// TestUnreachable checks that an agent whose OVSDB cannot be reached
// reports why and retries with backoff, without spinning.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	m := NewManager(Options{Logger: testLogger(t), MaxBackoff: 400 * time.Millisecond})
	defer m.Close()
	for _, addr := range []string{"unix:/nonexistent/db.sock", "tcp:127.0.0.1:1"} {
		if err := m.Add(HostConfig{Name: addr, Address: addr}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	for _, st := range m.Status() {
		// Retries after about 0.25, 0.4, 0.4, ... s: 5 or 6 attempts.
		if st.Connected || st.BridgeReady || !strings.Contains(st.LastError, "connect") ||
			st.ConnectFailures < 3 || st.ConnectFailures > 9 {
			t.Errorf("%s: got %+v", st.Name, st)
		}
		t.Logf("%s: %d attempts in 2s, last error %q", st.Name, st.ConnectFailures, st.LastError)
	}
}

// testLogger returns a logger writing to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu sync.Mutex
	t  testing.TB
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
