package ovsdb

import (
	"cmp"
	"slices"
	"strings"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// IfaceIDKey is the Interface external_ids key naming the logical port
// (for example the VM's vNIC) an interface is bound to.
const IfaceIDKey = "iface-id"

// A Binding is an interface of a host's integration bridge bound to a
// logical port: it has external_ids:iface-id and an OpenFlow port number.
type Binding struct {
	Host      string `json:"host"`      // HostConfig.Name
	IfaceID   string `json:"iface_id"`  // external_ids:iface-id
	Interface string `json:"interface"` // the OVS interface name
	OFPort    int    `json:"ofport"`    // OpenFlow port number, > 0
	// MAC is external_ids:attached-mac (the VM's MAC) or, without it,
	// mac_in_use (the MAC of the interface OVS sees); lower case.
	MAC     string `json:"mac"`
	AdminUp bool   `json:"admin_up"` // admin_state is up
	LinkUp  bool   `json:"link_up"`  // link_state is up
}

// BindingEventType says what happened to a binding.
type BindingEventType int

const (
	// BindingAdded: an interface became bound (it got an iface-id and a
	// valid ofport, or the agent saw it for the first time).
	BindingAdded BindingEventType = iota + 1
	// BindingChanged: the iface-id, ofport, MAC or a state changed.
	BindingChanged
	// BindingRemoved: the interface is gone, lost its iface-id or its
	// ofport, or the host was removed from the Manager.
	BindingRemoved
)

func (t BindingEventType) String() string {
	switch t {
	case BindingAdded:
		return "added"
	case BindingChanged:
		return "changed"
	case BindingRemoved:
		return "removed"
	}
	return "invalid"
}

// A BindingEvent reports a change of a binding. For BindingRemoved, Binding
// is the last one reported.
type BindingEvent struct {
	Type BindingEventType
	Binding
}

// bindings returns the bound interfaces of s's bridge, by interface name.
//
// admin_state, link_state and mac_in_use are ephemeral columns: after an
// ovsdb-server restart they are empty until ovs-vswitchd writes them again.
// An empty one keeps its value in prev, the bindings last reported, so that
// a restart does not look like links going down.
func bindings(host string, s *snapshot, prev map[string]Binding) map[string]Binding {
	m := map[string]Binding{}
	if s.bridge == nil {
		return m
	}
	for _, pu := range s.bridge.Ports {
		p := s.ports[pu]
		if p == nil {
			continue
		}
		for _, iu := range p.Interfaces {
			if i := s.ifaces[iu]; i != nil {
				if b, ok := binding(host, i, prev[i.Name]); ok {
					m[b.Interface] = b
				}
			}
		}
	}
	return m
}

// binding returns the binding of interface i, if it is bound, taking the
// states OVS has not reported from prev.
func binding(host string, i *vswitchd.Interface, prev Binding) (Binding, bool) {
	id := i.ExternalIDs[IfaceIDKey]
	// ofport is -1 when OVS failed to attach the interface, and empty (or
	// 0) until it has.
	if id == "" || i.Ofport == nil || *i.Ofport <= 0 {
		return Binding{}, false
	}
	b := Binding{Host: host, IfaceID: id, Interface: i.Name, OFPort: *i.Ofport,
		MAC: prev.MAC, AdminUp: prev.AdminUp, LinkUp: prev.LinkUp}
	if mac := i.ExternalIDs["attached-mac"]; mac != "" {
		b.MAC = strings.ToLower(mac)
	} else if i.MACInUse != nil {
		b.MAC = strings.ToLower(*i.MACInUse)
	}
	if i.AdminState != nil {
		b.AdminUp = *i.AdminState == vswitchd.InterfaceAdminStateUp
	}
	if i.LinkState != nil {
		b.LinkUp = *i.LinkState == vswitchd.InterfaceLinkStateUp
	}
	return b, true
}

// diffBindings returns the events that turn old into new, in interface name
// order.
func diffBindings(old, new map[string]Binding) []BindingEvent {
	var evs []BindingEvent
	for name, b := range new {
		switch ob, ok := old[name]; {
		case !ok:
			evs = append(evs, BindingEvent{BindingAdded, b})
		case ob != b:
			evs = append(evs, BindingEvent{BindingChanged, b})
		}
	}
	for name, b := range old {
		if _, ok := new[name]; !ok {
			evs = append(evs, BindingEvent{BindingRemoved, b})
		}
	}
	slices.SortFunc(evs, func(a, b BindingEvent) int { return cmp.Compare(a.Interface, b.Interface) })
	return evs
}
