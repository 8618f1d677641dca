package ovsdb

import (
	"slices"
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// Targets returns the controller targets of cfg.Controller: one, or
// several separated by commas (the OpenFlow listeners of every loomd
// replica: the switch connects to all of them, and OpenFlow roles decide
// which one writes).
func (c HostConfig) Targets() []string {
	var out []string
	for _, t := range strings.Split(c.Controller, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// newController creates Loom's controller row for target and returns its
// named UUID, for the bridge to reference in the same transaction.
func newController(t *txn, target string) string {
	c := &vswitchd.Controller{
		UUID:            t.newName("controller"),
		Target:          target,
		MaxBackoff:      ptr(ControllerMaxBackoff),
		InactivityProbe: ptr(ControllerInactivityProbe),
		ExternalIDs:     ownerIDs(),
	}
	ops, err := t.c.Create(c)
	t.add("create controller "+target, ops, err)
	return c.UUID
}

// ensureController makes the bridge's controllers target cfg's targets
// (Targets), one row each with Loom's settings, and takes Loom's other
// controllers off the bridge (unreferenced, OVSDB deletes them). A
// controller with another target that Loom does not own is left alone.
//
// A target keeps the row that already has it; a missing one retargets one
// of Loom's rows left over before a new row is made: either way the
// bridge's controller set never becomes empty on the way, which would
// flush its flows. Only a bridge with no controller at all gets a new one
// (and loses its flows, as with ovs-vsctl).
func ensureController(t *txn, s *snapshot, cfg HostConfig) {
	br := s.bridge
	targets := cfg.Targets()
	kept := map[string]*vswitchd.Controller{} // by target
	var spare []*vswitchd.Controller          // Loom's rows with a target no longer wanted
	for _, u := range br.Controller {
		c := s.controllers[u]
		if c == nil || !owned(c.ExternalIDs) {
			continue
		}
		if slices.Contains(targets, c.Target) && kept[c.Target] == nil {
			kept[c.Target] = c
		} else {
			spare = append(spare, c)
		}
	}
	b := &vswitchd.Bridge{UUID: br.UUID}
	var insert []string
	for _, target := range targets {
		switch {
		case kept[target] != nil:
			updateController(t, kept[target], target)
		case len(spare) > 0:
			updateController(t, spare[0], target)
			spare = spare[1:]
		default:
			insert = append(insert, newController(t, target))
		}
	}
	var mutations []model.Mutation
	if len(insert) > 0 {
		mutations = append(mutations, model.Mutation{Field: &b.Controller, Mutator: ovsdb.MutateOperationInsert, Value: insert})
	}
	if len(spare) > 0 {
		var stale []string
		for _, c := range spare {
			stale = append(stale, c.UUID)
		}
		mutations = append(mutations, model.Mutation{Field: &b.Controller, Mutator: ovsdb.MutateOperationDelete, Value: stale})
	}
	if len(mutations) > 0 {
		ops, err := t.c.Where(b).Mutate(b, mutations...)
		t.add("set bridge "+br.Name+" controllers", ops, err)
	}
}

// updateController fixes the columns of controller have that differ from
// what Loom wants for target.
func updateController(t *txn, have *vswitchd.Controller, target string) {
	c := &vswitchd.Controller{UUID: have.UUID}
	var fields []any
	var what []string
	if have.Target != target {
		c.Target = target
		fields, what = append(fields, &c.Target), append(what, "target="+target)
	}
	if have.MaxBackoff == nil || *have.MaxBackoff != ControllerMaxBackoff {
		c.MaxBackoff = ptr(ControllerMaxBackoff)
		fields, what = append(fields, &c.MaxBackoff), append(what, "max_backoff")
	}
	if have.InactivityProbe == nil || *have.InactivityProbe != ControllerInactivityProbe {
		c.InactivityProbe = ptr(ControllerInactivityProbe)
		fields, what = append(fields, &c.InactivityProbe), append(what, "inactivity_probe")
	}
	if len(fields) > 0 {
		ops, err := t.c.Where(c).Update(c, fields...)
		t.add("set controller "+strings.Join(what, " "), ops, err)
	}
}
