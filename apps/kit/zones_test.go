package kit

import (
	"fmt"
	"maps"
	"reflect"
	"testing"

	"github.com/loom-sdn/loom/model"
	"github.com/loom-sdn/loom/view/viewtest"
)

// checkZones fails unless zones gives exactly users one zone each, in
// range and all different.
func checkZones(t *testing.T, zones map[string]uint16, users []string) {
	t.Helper()
	if len(zones) != len(users) {
		t.Fatalf("%d zones for %d users: %v", len(zones), len(users), zones)
	}
	holder := map[uint16]string{}
	for _, u := range users {
		z, ok := zones[u]
		if !ok || z < ZoneMin {
			t.Fatalf("user %s: zone %d, %v", u, z, ok)
		}
		if o, ok := holder[z]; ok {
			t.Fatalf("zone %d held by %s and %s", z, o, u)
		}
		holder[z] = u
	}
}

func TestAllocateZones(t *testing.T) {
	// Dense from 1, in name order.
	z, ok := AllocateZones(nil, []string{"port:b", "lb:n1", "port:a"})
	if want := map[string]uint16{"lb:n1": 1, "port:a": 2, "port:b": 3}; !ok || !maps.Equal(z, want) {
		t.Fatalf("fresh: %v, want %v", z, want)
	}
	// Existing users keep theirs; the one gone frees its zone; new
	// users take the lowest free numbers.
	prev := maps.Clone(z)
	z, _ = AllocateZones(z, []string{"port:b", "port:c", "lb:n1", "lbh:n1"})
	if want := map[string]uint16{"lb:n1": 1, "port:b": 3, "lbh:n1": 2, "port:c": 4}; !maps.Equal(z, want) {
		t.Fatalf("after a change: %v, want %v", z, want)
	}
	if !maps.Equal(prev, map[string]uint16{"lb:n1": 1, "port:a": 2, "port:b": 3}) {
		t.Fatalf("have was modified: %v", prev)
	}
	// Same users: same zones.
	again, _ := AllocateZones(z, []string{"lbh:n1", "port:c", "port:b", "lb:n1"})
	if !maps.Equal(again, z) {
		t.Fatalf("unchanged users: %v, want %v", again, z)
	}
	// Reloaded from a bridge: 0 and a number held twice are dropped
	// (the second holder by name gets a new one), a gap is kept.
	bridge := map[string]uint16{"port:a": 7, "port:b": 7, "port:z": 0, "lb:x": 9, "gone": 1}
	z, _ = AllocateZones(bridge, []string{"port:a", "port:b", "port:z", "lb:x"})
	if want := map[string]uint16{"port:a": 7, "lb:x": 9, "port:b": 1, "port:z": 2}; !maps.Equal(z, want) {
		t.Fatalf("reloaded: %v, want %v", z, want)
	}
	// No users: nothing.
	if z, ok := AllocateZones(bridge, nil); !ok || len(z) != 0 {
		t.Fatalf("no users: %v %v", z, ok)
	}
}

// TestAllocateZonesChurn: through random adds and removes, every user
// keeps its zone while it stays, zones stay dense (below the number of
// users ever present at once, plus one), never 0 and never shared.
func TestAllocateZonesChurn(t *testing.T) {
	var z map[string]uint16
	users := map[string]bool{}
	for i := range 2000 {
		u := fmt.Sprintf("port:%d", (i*7919)%300)
		if users[u] && i%3 != 0 {
			delete(users, u)
		} else {
			users[u] = true
		}
		list := make([]string, 0, len(users))
		for u := range users {
			list = append(list, u)
		}
		next, ok := AllocateZones(z, list)
		if !ok {
			t.Fatal("out of zones")
		}
		checkZones(t, next, list)
		for u, n := range z {
			if users[u] && next[u] != n {
				t.Fatalf("step %d: %s moved from %d to %d", i, u, n, next[u])
			}
		}
		for _, n := range next {
			if int(n) > 300 {
				t.Fatalf("step %d: zone %d with at most 300 users", i, n)
			}
		}
		z = next
	}
}

func TestAllocateZonesFull(t *testing.T) {
	users := make([]string, 0, ZoneMax+1)
	for i := range ZoneMax + 1 {
		users = append(users, fmt.Sprintf("u%06d", i))
	}
	z, ok := AllocateZones(nil, users)
	if ok || len(z) != ZoneMax {
		t.Fatalf("%d users: %d zones, ok %v; want %d, false", len(users), len(z), ok, ZoneMax)
	}
	checkZones(t, z, users[:ZoneMax])
}

// TestZoneUsers: what a host serves, by kind.
func TestZoneUsers(t *testing.T) {
	l := viewtest.New(t)
	meta := viewtest.Meta
	l.Create(
		&model.Host{Meta: meta("hv1"), OVSDB: "unix:/a", VTEPIP: "10.200.0.1", Uplink: "eth1"},
		&model.Host{Meta: meta("hv2"), OVSDB: "unix:/b", VTEPIP: "10.200.0.2"},
		&model.Network{Meta: meta("blue"), Type: "vxlan", VNI: 5001},
		&model.Subnet{Meta: meta("blue-a"), Network: "blue", CIDR: "10.1.0.0/24"},
		&model.Network{Meta: meta("green"), Type: "vxlan", VNI: 5002},
		&model.Subnet{Meta: meta("green-a"), Network: "green", CIDR: "10.2.0.0/24"},
		&model.Network{Meta: meta("red"), Type: "vxlan", VNI: 5003},
		&model.Subnet{Meta: meta("red-a"), Network: "red", CIDR: "10.3.0.0/24"},
		&model.Network{Meta: meta("ext"), Type: "flat"},
		&model.Subnet{Meta: meta("ext-a"), Network: "ext", CIDR: "172.24.0.0/24"},
		&model.Router{Meta: meta("r1"), Subnets: []string{"blue-a", "green-a"}, ExternalNetwork: "ext", SNAT: true},
		&model.SecurityGroup{Meta: meta("web")},
		&model.Port{Meta: meta("b1"), Network: "blue", MAC: "02:00:00:00:01:01", IPs: []string{"10.1.0.11"}, SecurityGroups: []string{"web"}},
		&model.Port{Meta: meta("g1"), Network: "green", MAC: "02:00:00:00:02:01", IPs: []string{"10.2.0.11"}},
		&model.Port{Meta: meta("r1p"), Network: "red", MAC: "02:00:00:00:03:01", IPs: []string{"10.3.0.11"}, SecurityGroups: []string{"web"}},
		&model.LoadBalancer{Meta: meta("lb"), Network: "blue", VIP: "10.1.0.100", Protocol: "tcp", Port: 80},
	)
	l.Bind("b1", "hv1", "tap-b1", 1)
	l.Bind("g1", "hv2", "tap-g1", 1)
	l.Bind("r1p", "hv2", "tap-r1p", 2)
	s := l.View.Snapshot()
	netID := func(name string) string { n, _ := s.Model.Networks.ByName(name); return n.ID }
	portID := func(name string) string { p, _ := s.Model.Ports.ByName(name); return p.ID }
	r1, _ := s.Model.Routers.ByName("r1")
	blue, green := netID("blue"), netID("green")
	lb, _ := s.Model.LoadBalancers.ByName("lb")
	want1 := []string{LBZone(blue), LBHairpinZone(blue), LBSelectUser(lb.ID, blue), PortZone(portID("b1")), RouterZone(r1.ID)}
	// green is a client network of the load balancer (routed to blue by
	// r1); red is not.
	want2 := []string{LBZone(green), LBHairpinZone(green), LBSelectUser(lb.ID, green), PortZone(portID("r1p"))}
	for h, want := range map[string][]string{"hv1": want1, "hv2": want2} {
		got := ZoneUsers(s, h)
		wm := map[string]bool{}
		for _, u := range want {
			wm[u] = true
		}
		gm := map[string]bool{}
		for _, u := range got {
			gm[u] = true
		}
		if !reflect.DeepEqual(gm, wm) {
			t.Errorf("%s: users %v, want %v", h, got, want)
		}
	}
	if ZoneUsers(s, "nohost") != nil {
		t.Error("users on an unknown host")
	}
	AssignZones(l.View)
	s = l.View.Snapshot()
	for _, h := range []string{"hv1", "hv2"} {
		zones, ok := s.Zones(h)
		if !ok {
			t.Fatalf("%s: no zones", h)
		}
		checkZones(t, zones, ZoneUsers(s, h))
		for u, n := range zones {
			if z, ok := s.Zone(h, u); !ok || z != n {
				t.Errorf("%s %s: Zone %d %v, Zones %d", h, u, z, ok, n)
			}
		}
	}
}
