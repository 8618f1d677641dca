package topology

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loom-sdn/loom/events"
)

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t   *testing.T
	g   *Graph
	clk *clock
	sub *events.Subscription
}

func newFixture(t *testing.T) *fixture {
	bus := events.NewBus()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := &fixture{t: t, clk: clk, sub: bus.Subscribe(1000, nil)}
	f.g = New(Options{Events: bus, Now: clk.Now, LinkTimeout: 3 * time.Second, EndpointTimeout: time.Minute})
	return f
}

func ports(nos ...uint32) []Port {
	var out []Port
	for _, n := range nos {
		out = append(out, Port{Number: n, Name: "p", MAC: MAC{2, 0, 0, 0, byte(n >> 8), byte(n)}, Up: true})
	}
	return out
}

func ref(d DPID, p uint32) PortRef { return PortRef{d, p} }

// events returns the types and ids of the events published since the
// last call.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.sub.C:
			if e.Topic != Topic {
				f.t.Errorf("event on topic %q", e.Topic)
			}
			out = append(out, e.Type+" "+e.ID)
		default:
			return out
		}
	}
}

func (f *fixture) expectEvents(want ...string) {
	f.t.Helper()
	if got := f.events(); !slices.Equal(got, want) {
		f.t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

// cable observes both directions of a cable.
func (f *fixture) cable(a, b PortRef) {
	f.t.Helper()
	if _, ok := f.g.ObserveLink(a, b, 0); !ok {
		f.t.Fatalf("cable %s-%s not accepted", a, b)
	}
	if l, ok := f.g.ObserveLink(b, a, 0); !ok || !l.Bidirectional() {
		f.t.Fatalf("cable %s-%s not accepted", a, b)
	}
}

func TestLinksPairAgeAndGo(t *testing.T) {
	f := newFixture(t)
	f.g.SwitchUp(1, ports(1, 2, 3))
	f.g.SwitchUp(2, ports(1, 2))
	f.expectEvents("switch-added 0000000000000001", "switch-added 0000000000000002")

	// One direction: a link, not yet bidirectional.
	if l, ok := f.g.ObserveLink(ref(2, 1), ref(1, 3), 0); !ok || l.Bidirectional() {
		t.Fatal("observation refused")
	}
	s := f.g.Snapshot()
	if len(s.Links) != 1 {
		t.Fatalf("links: %+v", s.Links)
	}
	l := s.Links[0]
	if l.A != ref(1, 3) || l.B != ref(2, 1) || l.AB.Valid() || !l.BA.Valid() || l.Bidirectional() {
		t.Errorf("one direction seen: %+v", l)
	}
	if l.ID() != "0000000000000001:3-0000000000000002:1" {
		t.Errorf("id %s", l.ID())
	}
	// The other direction a second later pairs with it.
	f.clk.Add(time.Second)
	f.g.ObserveLink(ref(1, 3), ref(2, 1), 0)
	l = f.g.Snapshot().Links[0]
	if !l.Bidirectional() || !l.FirstSeen().Equal(f.clk.Now().Add(-time.Second)) || !l.LastSeen().Equal(f.clk.Now()) {
		t.Errorf("paired: %+v", l)
	}
	f.expectEvents("link-added 0000000000000001:3-0000000000000002:1", "link-changed 0000000000000001:3-0000000000000002:1")
	if !s.IsLinkPort(ref(1, 3)) || s.IsLinkPort(ref(1, 1)) {
		t.Error("IsLinkPort")
	}

	// Refreshes publish nothing; a direction not refreshed expires alone,
	// then the link.
	f.clk.Add(time.Second)
	f.g.ObserveLink(ref(1, 3), ref(2, 1), 0) // AB now expires at t+5s; BA still at t+3s
	f.g.Expire()
	f.expectEvents()
	f.clk.Add(time.Second)
	f.g.Expire()
	l = f.g.Snapshot().Links[0]
	if !l.AB.Valid() || l.BA.Valid() {
		t.Errorf("after BA expired: %+v", l)
	}
	f.expectEvents("link-changed 0000000000000001:3-0000000000000002:1")
	f.clk.Add(2 * time.Second)
	f.g.Expire()
	if n := len(f.g.Snapshot().Links); n != 0 {
		t.Errorf("%d links after both directions expired", n)
	}
	f.expectEvents("link-removed 0000000000000001:3-0000000000000002:1")

	// Invalid observations: unknown switch or port, a port seeing itself,
	// a port that is down.
	for _, o := range [][2]PortRef{{ref(9, 1), ref(1, 1)}, {ref(1, 9), ref(2, 1)}, {ref(1, 1), ref(1, 1)}} {
		if _, ok := f.g.ObserveLink(o[0], o[1], 0); ok {
			t.Errorf("observation %v accepted", o)
		}
	}
	f.g.SetPort(2, Port{Number: 2, Up: false})
	if _, ok := f.g.ObserveLink(ref(1, 1), ref(2, 2), 0); ok {
		t.Error("observation on a down port accepted")
	}
	f.events()
}

func TestPortAndSwitchDownRemoveLinks(t *testing.T) {
	f := newFixture(t)
	f.g.SwitchUp(1, ports(1, 2))
	f.g.SwitchUp(2, ports(1, 2))
	f.g.SwitchUp(3, ports(1))
	f.cable(ref(1, 1), ref(2, 1))
	f.cable(ref(2, 2), ref(3, 1))
	f.events()

	// Link down on 1:1 removes its link at once.
	f.g.SetPort(1, Port{Number: 1, Name: "p", Up: false})
	f.expectEvents("link-removed 0000000000000001:1-0000000000000002:1", "port-changed 0000000000000001:1")
	if p, _ := mustSwitch(t, f.g.Snapshot(), 1).Port(1); p.Up {
		t.Error("port 1:1 still up")
	}
	// Switch 3 disconnects: its link goes with it.
	f.g.SwitchDown(3)
	f.expectEvents("link-removed 0000000000000002:2-0000000000000003:1", "switch-removed 0000000000000003")
	s := f.g.Snapshot()
	if len(s.Links) != 0 || len(s.Switches) != 2 {
		t.Errorf("after switch down: %d links, %d switches", len(s.Links), len(s.Switches))
	}
	// A port deleted from a reconnecting switch's list goes too.
	f.cable(ref(1, 2), ref(2, 2))
	f.events()
	f.g.SwitchUp(2, ports(1))
	f.expectEvents("link-removed 0000000000000001:2-0000000000000002:2", "port-removed 0000000000000002:2")
}

func mustSwitch(t *testing.T, s *Snapshot, d DPID) Switch {
	t.Helper()
	sw, ok := s.Switch(d)
	if !ok {
		t.Fatalf("no switch %s", d)
	}
	return sw
}

func TestShortestPath(t *testing.T) {
	f := newFixture(t)
	// A ring 1-2-3-4-1 plus a spur 4-5; 6 is isolated.
	for d := DPID(1); d <= 6; d++ {
		f.g.SwitchUp(d, ports(1, 2, 3))
	}
	f.cable(ref(1, 1), ref(2, 2))
	f.cable(ref(2, 1), ref(3, 2))
	f.cable(ref(3, 1), ref(4, 2))
	f.cable(ref(4, 1), ref(1, 2))
	f.cable(ref(4, 3), ref(5, 1))
	s := f.g.Snapshot()
	check := func(from, to DPID, want ...Hop) {
		t.Helper()
		got, ok := s.Path(from, to)
		if want == nil {
			if ok {
				t.Errorf("path %s->%s: %+v, want none", from, to, got)
			}
			return
		}
		if !ok || !slices.Equal(got, want) {
			t.Errorf("path %s->%s:\n got %+v\nwant %+v", from, to, got, want)
		}
	}
	check(1, 1, Hop{DPID: 1})
	check(1, 2, Hop{1, 0, 1}, Hop{2, 2, 0})
	check(1, 5, Hop{1, 0, 2}, Hop{4, 1, 3}, Hop{5, 1, 0})
	check(5, 2, Hop{5, 0, 1}, Hop{4, 3, 1}, Hop{1, 2, 1}, Hop{2, 2, 0})
	// Two shortest paths 1->3: the one through the lower port (via 2) is
	// chosen, every time.
	check(1, 3, Hop{1, 0, 1}, Hop{2, 2, 1}, Hop{3, 2, 0})
	check(1, 6)
	check(1, 9)

	// A direction not seen is not used: only 3->4 of the 3-4 cable is
	// fresh after expiry, and 2-1 is cut.
	f.clk.Add(2 * time.Second)
	f.g.ObserveLink(ref(3, 1), ref(4, 2), 0)
	f.g.ObserveLink(ref(1, 1), ref(2, 2), 0)
	f.g.ObserveLink(ref(2, 2), ref(1, 1), 0)
	f.g.ObserveLink(ref(2, 1), ref(3, 2), 0)
	f.clk.Add(2 * time.Second)
	f.g.Expire()
	s = f.g.Snapshot()
	check(1, 4, Hop{1, 0, 1}, Hop{2, 2, 1}, Hop{3, 2, 1}, Hop{4, 2, 0})
	check(4, 1)
	if p, ok := f.g.Path(1, 3); !ok || len(p) != 3 {
		t.Errorf("Graph.Path: %v %v", p, ok)
	}
}

func TestSnapshotsAreImmutable(t *testing.T) {
	f := newFixture(t)
	f.g.SwitchUp(1, ports(1, 2))
	f.g.SwitchUp(2, ports(1))
	s1 := f.g.Snapshot()
	if s1 != f.g.Snapshot() {
		t.Error("unchanged graph: a new snapshot was built")
	}
	f.cable(ref(1, 1), ref(2, 1))
	f.g.SetPort(1, Port{Number: 2, Name: "renamed", Up: true})
	f.g.LearnEndpoint(MAC{2, 0, 0, 0, 0, 9}, netip.MustParseAddr("10.0.0.9"), ref(1, 2))
	s2 := f.g.Snapshot()
	if len(s1.Links) != 0 || len(s1.Endpoints) != 0 || s1.Switches[0].Ports[1].Name != "p" {
		t.Errorf("an old snapshot changed: %+v", s1)
	}
	if s2.Version <= s1.Version || len(s2.Links) != 1 || len(s2.Endpoints) != 1 || s2.Switches[0].Ports[1].Name != "renamed" {
		t.Errorf("new snapshot: %+v", s2)
	}
	// Readers race with writers without locks (run with -race).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				s := f.g.Snapshot()
				for _, sw := range s.Switches {
					_ = len(sw.Ports)
				}
				s.Path(1, 2)
			}
		})
	}
	for i := range 200 {
		f.g.SetPort(1, Port{Number: 2, Up: true, Name: string(rune('a' + i%26))})
		f.g.ObserveLink(ref(1, 1), ref(2, 1), 0)
	}
	wg.Wait()
	if s2.Switches[0].Ports[1].Name != "renamed" {
		t.Error("snapshot changed under its reader")
	}
}

func TestEndpoints(t *testing.T) {
	f := newFixture(t)
	f.g.SwitchUp(1, ports(1, 2, 3))
	f.g.SwitchUp(2, ports(1, 2))
	f.events()
	a := MAC{2, 0, 0, 0, 0, 0xa}
	ip := netip.MustParseAddr("10.0.0.10")

	// Learned from an ARP, then moved, then a second address.
	if !f.g.LearnEndpoint(a, ip, ref(1, 1)) {
		t.Fatal("not learned")
	}
	f.g.LearnEndpoint(a, ip, ref(1, 2))
	f.g.LearnEndpoint(a, netip.MustParseAddr("10.0.0.11"), ref(1, 2))
	f.expectEvents("endpoint-added 02:00:00:00:00:0a", "endpoint-moved 02:00:00:00:00:0a", "endpoint-changed 02:00:00:00:00:0a")
	e, _ := f.g.Snapshot().Endpoint(a)
	if e.At != ref(1, 2) || len(e.IPs) != 2 || e.Source != SourceLearned {
		t.Errorf("learned: %+v", e)
	}
	// Broadcast sources and unknown ports are not learned.
	if f.g.LearnEndpoint(MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ip, ref(1, 1)) || f.g.LearnEndpoint(a, ip, ref(1, 7)) {
		t.Error("invalid observation learned")
	}

	// A frame seen on what turns out to be a link port came through the
	// link: when the link is found the endpoint goes back where it was.
	f.g.LearnEndpoint(a, ip, ref(1, 3))
	f.events()
	f.cable(ref(1, 3), ref(2, 1))
	f.expectEvents("link-added 0000000000000001:3-0000000000000002:1", "endpoint-moved 02:00:00:00:00:0a",
		"link-changed 0000000000000001:3-0000000000000002:1")
	if e, _ := f.g.Snapshot().Endpoint(a); e.At != ref(1, 2) {
		t.Errorf("after the link was found: %+v", e)
	}
	// ... and link ports are not learned on any more.
	if f.g.LearnEndpoint(a, ip, ref(2, 1)) {
		t.Error("learned on a link port")
	}

	// Learned endpoints age out.
	f.clk.Add(30 * time.Second)
	f.g.ObserveLink(ref(1, 3), ref(2, 1), time.Hour)
	f.g.ObserveLink(ref(2, 1), ref(1, 3), time.Hour)
	f.g.Expire()
	f.expectEvents()
	f.clk.Add(31 * time.Second)
	f.g.Expire()
	f.expectEvents("endpoint-removed 02:00:00:00:00:0a")

	// Declared endpoints: kept until their source deletes them, never
	// aged, never given learned addresses, but their attachment follows
	// what is seen.
	b := MAC{2, 0, 0, 0, 0, 0xb}
	if err := f.g.SetEndpoint(Endpoint{MAC: b, Source: "model", IPs: []netip.Addr{ip, ip}}); err != nil {
		t.Fatal(err)
	}
	f.g.LearnEndpoint(b, netip.MustParseAddr("10.9.9.9"), ref(2, 2))
	f.clk.Add(time.Hour)
	f.g.Expire()
	e, ok := f.g.Snapshot().Endpoint(b)
	if !ok || e.At != ref(2, 2) || !slices.Equal(e.IPs, []netip.Addr{ip}) || e.Source != "model" {
		t.Errorf("declared: %+v %v", e, ok)
	}
	if f.g.DeleteEndpoint(b, SourceLearned) {
		t.Error("learning deleted a declared endpoint")
	}
	// The port going down keeps a declared endpoint.
	f.g.SetPort(2, Port{Number: 2, Up: false})
	if _, ok := f.g.Snapshot().Endpoint(b); !ok {
		t.Error("declared endpoint removed with its port")
	}
	if !f.g.DeleteEndpoint(b, "model") {
		t.Error("DeleteEndpoint")
	}
	f.expectEvents("endpoint-added 02:00:00:00:00:0b", "endpoint-moved 02:00:00:00:00:0b",
		"link-removed 0000000000000001:3-0000000000000002:1", "port-changed 0000000000000002:2", "endpoint-removed 02:00:00:00:00:0b")
	if err := f.g.SetEndpoint(Endpoint{MAC: b}); err == nil {
		t.Error("endpoint without a source accepted")
	}
	// A learned endpoint goes with its switch.
	f.g.LearnEndpoint(a, ip, ref(1, 1))
	f.g.SwitchDown(1)
	if _, ok := f.g.Snapshot().Endpoint(a); ok {
		t.Error("learned endpoint outlived its switch")
	}
}

func TestParse(t *testing.T) {
	if d, err := ParseDPID("00:00:00:00:0a:c8:00:01"); err != nil || d != 0xac80001 {
		t.Errorf("ParseDPID: %v %v", d, err)
	}
	if _, err := ParseDPID("xyz"); err == nil {
		t.Error("ParseDPID accepted xyz")
	}
	if m, err := ParseMAC("02:00:00:00:00:0A"); err != nil || m.String() != "02:00:00:00:00:0a" {
		t.Errorf("ParseMAC: %v %v", m, err)
	}
	if b, _ := DPID(1).MarshalText(); string(b) != "0000000000000001" {
		t.Errorf("DPID text %s", b)
	}
}
