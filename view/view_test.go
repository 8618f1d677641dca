package view

import (
	"strings"
	"testing"

	"github.com/loom-sdn/loom/model"
)

func TestBindingsNewestWins(t *testing.T) {
	v := New()
	var woken int
	v.Watch(func() { woken++ })
	s0 := v.Snapshot()
	if _, ok := s0.Binding("vm1"); ok {
		t.Fatal("empty view has a binding")
	}
	a := Binding{Port: "vm1", Host: "hv1", Interface: "tap1", OFPort: 5, Up: true}
	v.Bind(a)
	v.Bind(a) // no change: no new snapshot, no wake-up
	if woken != 1 {
		t.Errorf("watchers woken %d times, want 1", woken)
	}
	if b, _ := v.Snapshot().Binding("vm1"); b.Host != "hv1" || b.OFPort != 5 {
		t.Errorf("active binding %+v", b)
	}
	if _, ok := s0.Binding("vm1"); ok {
		t.Error("an old snapshot changed")
	}

	// Migration: the interface appears on hv2 while still on hv1.
	v.Bind(Binding{Port: "vm1", Host: "hv2", Interface: "tap9", OFPort: 3, Up: true})
	if b, _ := v.Snapshot().Binding("vm1"); b.Host != "hv2" {
		t.Errorf("after the move the active binding is on %s", b.Host)
	}
	// A change of the old binding (its link going down) does not make it
	// the active one again.
	v.Bind(Binding{Port: "vm1", Host: "hv1", Interface: "tap1", OFPort: 5})
	if b, _ := v.Snapshot().Binding("vm1"); b.Host != "hv2" {
		t.Errorf("a state change on hv1 took the port back: active on %s", b.Host)
	}
	if n := len(v.Snapshot().Bindings("vm1")); n != 2 {
		t.Errorf("%d bindings, want 2", n)
	}
	if ports := v.Snapshot().PortsOf("hv1", "tap1"); len(ports) != 1 || ports[0] != "vm1" {
		t.Errorf("PortsOf(hv1, tap1) = %v", ports)
	}
	// The new one goes (migration aborted): back to hv1.
	v.Unbind("vm1", "hv2", "tap9")
	if b, _ := v.Snapshot().Binding("vm1"); b.Host != "hv1" {
		t.Errorf("after unbinding hv2 the active binding is on %q", b.Host)
	}
	v.Unbind("vm1", "hv1", "tap1")
	v.Unbind("vm1", "hv1", "tap1")
	if _, ok := v.Snapshot().Binding("vm1"); ok {
		t.Error("still bound")
	}
	if s := v.Snapshot(); s.Seq != 5 {
		t.Errorf("seq %d after 5 changes", s.Seq)
	}
}

func TestDatapathIDs(t *testing.T) {
	h1 := &model.Host{Meta: model.Meta{ID: "3f2a", Name: "hv1"}}
	h2 := &model.Host{Meta: model.Meta{ID: "3f2b", Name: "hv1"}}
	d1 := DatapathID(h1)
	if d1>>48 != 0x4c4d || d1 != DatapathID(&model.Host{Meta: model.Meta{ID: "3f2a", Name: "renamed"}}) {
		t.Errorf("datapath id %016x: want 4c4d in the top bits, derived from the id only", d1)
	}
	if d1 == DatapathID(h2) {
		t.Error("two hosts share a datapath id")
	}
	v := New()
	v.SetModel(&model.Snapshot{})
	if _, ok := v.Snapshot().HostByDatapath(d1); ok {
		t.Error("empty model has hosts")
	}
}

func TestBindingsChangedSince(t *testing.T) {
	v := New()
	v.Bind(Binding{Port: "a", Host: "hv1", Interface: "t1", OFPort: 1})
	s1 := v.Snapshot()
	v.SetModel(&model.Snapshot{}) // no binding change
	v.Bind(Binding{Port: "b", Host: "hv1", Interface: "t2", OFPort: 2})
	v.Unbind("a", "hv1", "t1")
	got, ok := v.Snapshot().BindingsChangedSince(s1.Seq)
	if !ok || len(got) != 2 || got[0] != "b" || got[1] != "a" {
		t.Errorf("changed since %d: %v %v, want [b a]", s1.Seq, got, ok)
	}
	if got, ok := v.Snapshot().BindingsChangedSince(v.Snapshot().Seq); !ok || len(got) != 0 {
		t.Errorf("changed since now: %v %v", got, ok)
	}
	// Past the log's reach the answer is "don't know".
	for i := range 2 * logSize {
		v.Bind(Binding{Port: "c", Host: "hv1", Interface: "t3", OFPort: uint32(i%2 + 1)})
	}
	if _, ok := v.Snapshot().BindingsChangedSince(s1.Seq); ok {
		t.Error("a change log of 8192 changes reaches back to the start")
	}
	s := v.Snapshot()
	if got, ok := s.BindingsChangedSince(s.Seq - 10); !ok || len(got) != 10 {
		t.Errorf("last 10 changes: %d, %v", len(got), ok)
	}
}

// TestPortsOn: a port is listed on the host of its active binding only,
// and follows it through a migration and back.
func TestPortsOn(t *testing.T) {
	v := New()
	on := func(host string) string { return strings.Join(v.Snapshot().PortsOn(host), ",") }
	v.Bind(Binding{Port: "a", Host: "hv1", Interface: "tap-a", OFPort: 1})
	v.Bind(Binding{Port: "b", Host: "hv1", Interface: "tap-b", OFPort: 2})
	before := v.Snapshot()
	v.Bind(Binding{Port: "a", Host: "hv2", Interface: "tap-a", OFPort: 7}) // migrating: the newer wins
	if on("hv1") != "b" || on("hv2") != "a" {
		t.Errorf("during the migration: hv1 %q hv2 %q", on("hv1"), on("hv2"))
	}
	if got := strings.Join(before.PortsOn("hv1"), ","); got != "a,b" {
		t.Errorf("an older snapshot changed: hv1 %q", got)
	}
	v.Bind(Binding{Port: "a", Host: "hv2", Interface: "tap-a", OFPort: 8}) // same binding, new ofport
	v.Unbind("a", "hv2", "tap-a")                                          // back: hv1's binding is active again
	if on("hv1") != "a,b" || on("hv2") != "" {
		t.Errorf("after the migration failed back: hv1 %q hv2 %q", on("hv1"), on("hv2"))
	}
	v.Unbind("a", "hv1", "tap-a")
	v.Unbind("b", "hv1", "tap-b")
	if on("hv1") != "" {
		t.Errorf("after unbinding all: hv1 %q", on("hv1"))
	}
}

// TestZones: a host's zones as set, a copy; Diff names the hosts whose
// zones changed; setting the same zones again changes nothing.
func TestZones(t *testing.T) {
	v := New()
	if _, ok := v.Snapshot().Zone("hv1", "port:a"); ok {
		t.Fatal("zone before any was set")
	}
	if _, ok := v.Snapshot().Zones("hv1"); ok {
		t.Fatal("hv1 reported before it was")
	}
	s0 := v.Snapshot()
	in := map[string]uint16{"port:a": 1, "lb:n": 2}
	v.SetZones("hv1", in)
	v.SetZones("hv2", map[string]uint16{})
	in["port:a"] = 9 // the view keeps its own copy
	s1 := v.Snapshot()
	if z, ok := s1.Zone("hv1", "port:a"); !ok || z != 1 {
		t.Fatalf("Zone = %d, %v; want 1", z, ok)
	}
	if zs, ok := s1.Zones("hv2"); !ok || len(zs) != 0 {
		t.Fatalf("hv2: %v %v, want reported and empty", zs, ok)
	}
	if c := Diff(s0, s1); !c.Zones["hv1"] || !c.Zones["hv2"] || len(c.Zones) != 2 {
		t.Fatalf("Diff zones %v", c.Zones)
	}
	v.SetZones("hv1", map[string]uint16{"lb:n": 2, "port:a": 1})
	if v.Snapshot() != s1 {
		t.Fatal("the same zones made a new snapshot")
	}
	v.SetZones("hv1", map[string]uint16{"port:a": 1})
	v.SetZones("hv2", nil)
	s2 := v.Snapshot()
	if c := Diff(s1, s2); !c.Zones["hv1"] || !c.Zones["hv2"] || len(c.Zones) != 2 {
		t.Fatalf("Diff zones %v", c.Zones)
	}
	if _, ok := s2.Zone("hv1", "lb:n"); ok {
		t.Fatal("a removed zone is still there")
	}
	if _, ok := s2.Zones("hv2"); ok {
		t.Fatal("a forgotten host still has zones")
	}
}
