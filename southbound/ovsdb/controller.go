package ovsdb

import (
	"strings"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// newController creates Loom's controller row for cfg and returns its
// named UUID, for the bridge to reference in the same transaction.
func newController(t *txn, cfg HostConfig) string {
	c := &vswitchd.Controller{
		UUID:            t.newName("controller"),
		Target:          cfg.Controller,
		MaxBackoff:      ptr(ControllerMaxBackoff),
		InactivityProbe: ptr(ControllerInactivityProbe),
		ExternalIDs:     ownerIDs(),
	}
	ops, err := t.c.Create(c)
	t.add("create controller "+cfg.Controller, ops, err)
	return c.UUID
}

// ensureController makes one of the bridge's controllers target
// cfg.Controller with Loom's settings, and takes Loom's other controllers
// off the bridge (unreferenced, OVSDB deletes them). A controller with
// another target that Loom does not own is left alone.
//
// It prefers the controller that already has the target, then retargets
// one of Loom's: either way the bridge's controller set never becomes empty
// on the way, which would flush its flows. Only a bridge with no controller
// at all gets a new one (and loses its flows, as with ovs-vsctl).
func ensureController(t *txn, s *snapshot, cfg HostConfig) {
	br := s.bridge
	var keep *vswitchd.Controller
	if cfg.Controller != "" {
		for _, u := range br.Controller {
			if c := s.controllers[u]; c != nil && c.Target == cfg.Controller {
				keep = c
				break
			}
		}
	}
	var stale []string
	for _, u := range br.Controller {
		c := s.controllers[u]
		if c == nil || c == keep || !owned(c.ExternalIDs) {
			continue
		}
		if keep == nil && cfg.Controller != "" {
			keep = c
			continue
		}
		stale = append(stale, u)
	}

	b := &vswitchd.Bridge{UUID: br.UUID}
	var mutations []model.Mutation
	switch {
	case cfg.Controller == "":
	case keep == nil:
		u := newController(t, cfg)
		mutations = append(mutations, model.Mutation{Field: &b.Controller, Mutator: ovsdb.MutateOperationInsert, Value: []string{u}})
	default:
		updateController(t, keep, cfg)
	}
	if len(stale) > 0 {
		mutations = append(mutations, model.Mutation{Field: &b.Controller, Mutator: ovsdb.MutateOperationDelete, Value: stale})
	}
	if len(mutations) > 0 {
		ops, err := t.c.Where(b).Mutate(b, mutations...)
		t.add("set bridge "+br.Name+" controllers", ops, err)
	}
}

// updateController fixes the columns of controller have that differ from
// what Loom wants for cfg.
func updateController(t *txn, have *vswitchd.Controller, cfg HostConfig) {
	c := &vswitchd.Controller{UUID: have.UUID}
	var fields []any
	var what []string
	if have.Target != cfg.Controller {
		c.Target = cfg.Controller
		fields, what = append(fields, &c.Target), append(what, "target="+cfg.Controller)
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
