package ovsdb

import (
	"fmt"
	"slices"

	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// ensureMirrors makes the bridge's mirrors those cfg asks for: one Mirror
// row per MirrorConfig that selects a port bound here and has its output
// here, owned by Loom, with the selected ports and the output as asked.
// Loom's mirrors no longer asked for leave the bridge (and, unreferenced,
// the database); other mirrors are left alone. ports are the UUIDs of
// the ports cfg asks for (a remote mirror's GRE port), by name.
func ensureMirrors(t *txn, s *snapshot, cfg HostConfig, ports map[string]string) {
	br := s.bridge
	byIfaceID := s.boundPorts()
	have := map[string]*vswitchd.Mirror{}
	for _, u := range br.Mirrors {
		if m := s.mirrors[u]; m != nil {
			have[m.Name] = m
		}
	}
	selected := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			if u, ok := byIfaceID[id]; ok && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
		slices.Sort(out)
		return out
	}
	want := map[string]bool{}
	var add []string
	for _, mc := range cfg.Mirrors {
		src, dst := selected(mc.From), selected(mc.To)
		if mc.Receive {
			src, dst = nil, nil
			if u, ok := ports[MirrorPortName(mc.Name)]; ok {
				src = []string{u}
			}
		}
		out, ok := byIfaceID[mc.OutputIfaceID], mc.OutputIfaceID != ""
		if mc.RemoteIP != "" {
			out, ok = ports[MirrorPortName(mc.Name)]
		}
		if !ok || out == "" || len(src)+len(dst) == 0 {
			continue // nothing to copy here, or nowhere to send it
		}
		want[mc.Name] = true
		m := have[mc.Name]
		if m == nil {
			row := &vswitchd.Mirror{UUID: t.newName("mirror"), Name: mc.Name, SelectSrcPort: src, SelectDstPort: dst,
				OutputPort: &out, ExternalIDs: ownerIDs()}
			ops, err := t.c.Create(row)
			t.add("create mirror "+mc.Name, ops, err)
			add = append(add, row.UUID)
			continue
		}
		row := &vswitchd.Mirror{UUID: m.UUID, SelectSrcPort: src, SelectDstPort: dst, OutputPort: &out}
		var fields []any
		if !slices.Equal(sorted(m.SelectSrcPort), src) {
			fields = append(fields, &row.SelectSrcPort)
		}
		if !slices.Equal(sorted(m.SelectDstPort), dst) {
			fields = append(fields, &row.SelectDstPort)
		}
		if m.OutputPort == nil || *m.OutputPort != out {
			fields = append(fields, &row.OutputPort)
		}
		if m.SelectAll {
			fields = append(fields, &row.SelectAll)
		}
		if len(fields) > 0 {
			ops, err := t.c.Where(row).Update(row, fields...)
			t.add(fmt.Sprintf("set mirror %s: %d ports from, %d to", mc.Name, len(src), len(dst)), ops, err)
		}
	}
	var del []string
	for name, m := range have {
		if !want[name] && owned(m.ExternalIDs) {
			del = append(del, m.UUID)
		}
	}
	b := &vswitchd.Bridge{UUID: br.UUID}
	var mutations []model.Mutation
	if len(add) > 0 {
		mutations = append(mutations, model.Mutation{Field: &b.Mirrors, Mutator: ovsdb.MutateOperationInsert, Value: add})
	}
	if len(del) > 0 {
		mutations = append(mutations, model.Mutation{Field: &b.Mirrors, Mutator: ovsdb.MutateOperationDelete, Value: del})
	}
	if len(mutations) > 0 {
		ops, err := t.c.Where(b).Mutate(b, mutations...)
		t.add(fmt.Sprintf("bridge %s: add %d mirrors, remove %d", br.Name, len(add), len(del)), ops, err)
	}
}

// boundPorts returns the bridge's ports by the iface-id of their
// interface.
func (s *snapshot) boundPorts() map[string]string {
	out := map[string]string{}
	if s.bridge == nil {
		return out
	}
	for _, u := range s.bridge.Ports {
		p := s.ports[u]
		if p == nil {
			continue
		}
		for _, iu := range p.Interfaces {
			if i := s.ifaces[iu]; i != nil && i.ExternalIDs["iface-id"] != "" {
				out[i.ExternalIDs["iface-id"]] = p.UUID
			}
		}
	}
	return out
}

// selectsAny tells whether m selects a port bound here.
func selectsAny(m MirrorConfig, bound map[string]string) bool {
	for _, id := range append(slices.Clone(m.From), m.To...) {
		if _, ok := bound[id]; ok {
			return true
		}
	}
	return false
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
