package ovsdb

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/internal/ovslab"
)

// TestZones: the agent reports the zones a bridge holds before it
// manages them (and touches none), then keeps the bridge's zone keys
// equal to the configuration (stale ones deleted, others' external_ids
// left alone) and reports every change.
func TestZones(t *testing.T) {
	ovslab.Require(t)
	t.Parallel()
	h := ovslab.New(t).AddHost("hv1", ovslab.HostOptions{NoBridge: true})
	var mu sync.Mutex
	var reported []map[string]uint16
	m := NewManager(Options{Logger: testLogger(t), OnZones: func(host string, zones map[string]uint16) {
		mu.Lock()
		defer mu.Unlock()
		if host == "hv1" {
			reported = append(reported, zones)
		}
	}})
	t.Cleanup(m.Close)
	last := func() (map[string]uint16, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(reported) == 0 {
			return nil, false
		}
		return reported[len(reported)-1], true
	}
	cfg := HostConfig{Name: "hv1", Address: dbAddress(h), DatapathType: "netdev", DatapathID: 0xabc}
	if err := m.Add(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bridge ready", func() bool { return status(t, m, "hv1").BridgeReady })
	// A bridge that a previous loomd left zones in (and someone else an
	// external id of theirs), not yet managed: reported, untouched.
	if out, err := h.Vsctl("set", "Bridge", "br-int", `external_ids:"loom-ct-zone-port:a"=3`, `external_ids:"loom-ct-zone-lb:n"=1`,
		`external_ids:loom-ct-zone-bad=x`, "external_ids:other=kept"); err != nil {
		t.Fatal(out, err)
	}
	old := map[string]uint16{"port:a": 3, "lb:n": 1}
	waitFor(t, 5*time.Second, "the old zones reported", func() bool { z, ok := last(); return ok && maps.Equal(z, old) })
	time.Sleep(100 * time.Millisecond)
	if got := get(t, h, "get", "Bridge", "br-int", `external_ids:"loom-ct-zone-port:a"`); got != "3" {
		t.Fatalf("an unmanaged zone changed: %q", got)
	}
	// Managed: lb:n kept, port:a gone, port:b new.
	cfg.ManageZones, cfg.Zones = true, map[string]uint16{"lb:n": 1, "port:b": 2}
	if err := m.Update(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the new zones reported", func() bool { z, _ := last(); return maps.Equal(z, cfg.Zones) })
	ids := get(t, h, "get", "Bridge", "br-int", "external_ids")
	for _, want := range []string{`"loom-ct-zone-lb:n"="1"`, `"loom-ct-zone-port:b"="2"`, `other=kept`, `loom-owner=loom`} {
		if !strings.Contains(ids, want) {
			t.Errorf("external_ids lack %s: %s", want, ids)
		}
	}
	for _, gone := range []string{"loom-ct-zone-port:a", "loom-ct-zone-bad"} {
		if strings.Contains(ids, gone) {
			t.Errorf("external_ids keep %s: %s", gone, ids)
		}
	}
	// Changed behind the agent's back: repaired.
	if out, err := h.Vsctl("set", "Bridge", "br-int", `external_ids:"loom-ct-zone-port:b"=7`); err != nil {
		t.Fatal(out, err)
	}
	waitFor(t, 5*time.Second, "port:b's zone repaired", func() bool {
		return get(t, h, "get", "Bridge", "br-int", `external_ids:"loom-ct-zone-port:b"`) == "2"
	})
	// Invalid: two users, one zone.
	cfg.Zones = map[string]uint16{"a": 1, "b": 1}
	if err := m.Update(cfg); err == nil {
		t.Error("two users of one zone accepted")
	}
}
