package kit

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/loom-sdn/loom/view"
)

// Conntrack zones are a per-host resource: each host numbers the zone
// users it serves densely from ZoneMin (AllocateZones), so tenants never
// share a zone by accident of arithmetic (a VNI or a port number folded
// into 16 bits). One writer allocates them, loomd's host manager; the
// host's OVSDB agent keeps them in the integration bridge's external_ids
// (loom-ct-zone-USER=N, as ovn-controller keeps ct-zone-NAME=N), reads
// them back and reports them to the view, where apps find them
// (view.Snapshot.Zone). A restarted loomd reads the bridge's zones before
// it allocates, so an upgrade changes no zone and orphans no conntrack
// entry. An app compiles a conntrack flow only once its zone is there:
// until then the traffic has no flow, never a shared zone.

// ZoneUsers returns the zone users host serves in s, sorted: a superset
// of the zones the apps look up there.
//
//   - PortZone(port id): each port with security groups whose active
//     binding is on host (the firewall).
//   - RouterZone(router id): each router with an external network, an
//     external IP and host (by id) as its gateway host (SNAT, floating
//     IPs).
//   - LBZone and LBHairpinZone(network id): each client network of a
//     load balancer (its own network, and the networks of the subnets of
//     every router that has a subnet in it) with a port bound on host,
//     and LBSelectUser(load balancer id, network id) for the number of
//     its select group there.
func ZoneUsers(s *view.Snapshot, host string) []string {
	m := s.Model
	h, ok := m.Hosts.ByName(host)
	if !ok {
		return nil
	}
	set := map[string]bool{}
	local := map[string]bool{} // networks with a port on host
	for _, name := range s.PortsOn(host) {
		p, ok := m.Ports.ByName(name)
		if !ok {
			continue
		}
		local[p.Network] = true
		if len(p.SecurityGroups) > 0 {
			set[PortZone(p.ID)] = true
		}
	}
	for _, r := range m.Routers.All() {
		if r.ExternalNetwork != "" && r.ExternalIP != "" && r.GatewayHost == h.ID {
			set[RouterZone(r.ID)] = true
		}
	}
	if m.LoadBalancers.Len() > 0 {
		routed := map[string][]string{} // network -> the networks of its routers' subnets
		for _, r := range m.Routers.All() {
			var nets []string
			for _, id := range r.Subnets {
				if sn, ok := m.Subnets.Get(id); ok {
					nets = append(nets, sn.Network)
				}
			}
			for _, n := range nets {
				routed[n] = append(routed[n], nets...)
			}
		}
		for _, lb := range m.LoadBalancers.All() {
			for _, n := range append([]string{lb.Network}, routed[lb.Network]...) {
				if local[n] {
					set[LBZone(n)], set[LBHairpinZone(n)], set[LBSelectUser(lb.ID, n)] = true, true, true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// AllocateZones returns the zones of users: the numbers they have in
// have kept, the lowest free numbers from ZoneMin given to the others in
// name order, and the numbers of have's other users freed. have may be
// read back from a bridge: numbers out of range, and a number held by
// more than one user (all but the first by name), are dropped. It never
// modifies have. ok is false when there are more users than zones (those
// left over get none).
func AllocateZones(have map[string]uint16, users []string) (zones map[string]uint16, ok bool) {
	want := make(map[string]bool, len(users))
	for _, u := range users {
		want[u] = true
	}
	zones = make(map[string]uint16, len(users))
	used := map[uint16]bool{}
	for _, u := range slices.SortedFunc(maps.Keys(have), strings.Compare) {
		z := have[u]
		if !want[u] || z < ZoneMin || used[z] {
			continue
		}
		zones[u], used[z] = z, true
	}
	next := uint32(ZoneMin)
	ok = true
	for _, u := range slices.SortedFunc(maps.Keys(want), cmp.Compare) {
		if _, ok := zones[u]; ok {
			continue
		}
		for next <= ZoneMax && used[uint16(next)] {
			next++
		}
		if next > ZoneMax {
			ok = false
			break
		}
		zones[u], used[uint16(next)] = uint16(next), true
	}
	return zones, ok
}

// AssignZones gives every host of v's model the zones of its users in
// v directly (AllocateZones over the zones v holds), as loomd's host
// manager does through the hosts' bridges: for app tests and anything
// that runs without OVSDB.
func AssignZones(v *view.View) {
	s := v.Snapshot()
	for _, h := range s.Model.Hosts.All() {
		have, _ := s.Zones(h.Name)
		zones, _ := AllocateZones(have, ZoneUsers(s, h.Name))
		v.SetZones(h.Name, zones)
	}
}
