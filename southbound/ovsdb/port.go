package ovsdb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// A portSpec is a port Loom wants on the bridge, with one interface of the
// same name whose non-zero columns (Type, Options, OfportRequest) are
// enforced.
type portSpec struct {
	name  string
	iface vswitchd.Interface
}

// portSpecs returns the ports cfg asks for besides the bridge's local port.
// bound tells the iface-ids bound to a port of the bridge (nil: none).
func portSpecs(cfg HostConfig, bound map[string]string) []portSpec {
	var specs []portSpec
	if cfg.VTEPIP != "" {
		specs = append(specs, portSpec{name: TunnelPortName, iface: vswitchd.Interface{
			Type: "vxlan",
			// Flow-based: flows set tun_dst and tun_id.
			Options:       map[string]string{"remote_ip": "flow", "key": "flow", "local_ip": cfg.VTEPIP, "tos": "inherit"},
			OfportRequest: ptr(cfg.TunnelPort),
		}})
	}
	if cfg.Uplink != "" {
		// Any type: a system device, or for example dpdk.
		specs = append(specs, portSpec{name: cfg.Uplink})
	}
	for _, m := range cfg.Mirrors {
		if _, out := bound[m.OutputIfaceID]; m.Receive && out {
			// The end of other hosts' remote mirrors: GRE from anywhere
			// with the mirror's key, whose packets the mirror copies.
			specs = append(specs, portSpec{name: MirrorPortName(m.Name), iface: vswitchd.Interface{
				Type:    "gre",
				Options: map[string]string{"remote_ip": "flow", "key": strconv.FormatUint(uint64(m.GREKey), 10)},
			}})
		}
		if m.RemoteIP != "" && selectsAny(m, bound) {
			// A remote mirror's GRE port (the mirror is its only user:
			// OVS sends nothing else to a mirror's output port).
			specs = append(specs, portSpec{name: MirrorPortName(m.Name), iface: vswitchd.Interface{
				Type:    "gre",
				Options: map[string]string{"remote_ip": m.RemoteIP, "key": strconv.FormatUint(uint64(m.GREKey), 10)},
			}})
		}
	}
	return specs
}

// newPort creates a port and its interface, both owned by Loom, and returns
// the port's named UUID for the bridge to reference.
func newPort(t *txn, spec portSpec) string {
	i := spec.iface
	i.UUID, i.Name, i.ExternalIDs = t.newName("iface"), spec.name, ownerIDs()
	p := &vswitchd.Port{UUID: t.newName("port"), Name: spec.name, Interfaces: []string{i.UUID}, ExternalIDs: ownerIDs()}
	ops, err := t.c.Create(&i, p)
	t.add("create port "+spec.name, ops, err)
	return p.UUID
}

// ensurePorts adds the ports cfg asks for that the bridge lacks, fixes their
// interfaces, and takes Loom's other ports off the bridge (unreferenced,
// OVSDB deletes them with their interfaces). It returns the UUIDs of the
// ports cfg asks for, by name (a named UUID for a port it creates).
func ensurePorts(t *txn, s *snapshot, cfg HostConfig) map[string]string {
	uuids := map[string]string{}
	br := s.bridge
	onBridge := map[string]bool{}
	for _, u := range br.Ports {
		onBridge[u] = true
	}
	want := map[string]bool{br.Name: true}
	var add, del, added, deleted []string
	for _, spec := range portSpecs(cfg, s.boundPorts()) {
		want[spec.name] = true
		switch p := s.portsByName[spec.name]; {
		case p == nil:
			u := newPort(t, spec)
			add, added, uuids[spec.name] = append(add, u), append(added, spec.name), u
		case !onBridge[p.UUID]:
			t.fail(fmt.Errorf("port %s exists on another bridge", spec.name))
		default:
			ensureInterface(t, s, p, spec)
			uuids[spec.name] = p.UUID
		}
	}
	for _, u := range br.Ports {
		if p := s.ports[u]; p != nil && owned(p.ExternalIDs) && !want[p.Name] {
			del, deleted = append(del, u), append(deleted, p.Name)
		}
	}
	b := &vswitchd.Bridge{UUID: br.UUID}
	var mutations []model.Mutation
	if len(add) > 0 {
		mutations = append(mutations, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationInsert, Value: add})
	}
	if len(del) > 0 {
		mutations = append(mutations, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationDelete, Value: del})
	}
	if len(mutations) > 0 {
		ops, err := t.c.Where(b).Mutate(b, mutations...)
		var what []string
		if len(added) > 0 {
			what = append(what, fmt.Sprintf("add ports %v", added))
		}
		if len(deleted) > 0 {
			what = append(what, fmt.Sprintf("remove ports %v", deleted))
		}
		t.add("bridge "+br.Name+": "+strings.Join(what, ", "), ops, err)
	}
	return uuids
}

// ensureInterface fixes the columns of port p's interface that differ from
// spec.
func ensureInterface(t *txn, s *snapshot, p *vswitchd.Port, spec portSpec) {
	var have *vswitchd.Interface
	for _, u := range p.Interfaces {
		if i := s.ifaces[u]; i != nil && i.Name == spec.name {
			have = i
		}
	}
	if have == nil {
		t.fail(fmt.Errorf("port %s has no interface %s", p.Name, spec.name))
		return
	}
	want := spec.iface
	i := &vswitchd.Interface{UUID: have.UUID}
	var fields []any
	var what []string
	if want.Type != "" && have.Type != want.Type {
		i.Type = want.Type
		fields, what = append(fields, &i.Type), append(what, "type="+want.Type)
	}
	if r := want.OfportRequest; r != nil && (have.OfportRequest == nil || *have.OfportRequest != *r) {
		i.OfportRequest = r
		fields, what = append(fields, &i.OfportRequest), append(what, fmt.Sprintf("ofport_request=%d", *r))
	}
	if len(fields) > 0 {
		ops, err := t.c.Where(i).Update(i, fields...)
		t.add("set interface "+spec.name+" "+strings.Join(what, " "), ops, err)
	}
	if keys := differentKeys(have.Options, want.Options); len(keys) > 0 {
		ops, err := t.c.Where(i).Mutate(i, setKeys(&i.Options, keys)...)
		t.add(fmt.Sprintf("set interface %s options %v", spec.name, keys), ops, err)
	}
}
