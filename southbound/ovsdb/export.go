package ovsdb

import (
	"fmt"
	"slices"

	"github.com/loom-sdn/loom/southbound/ovsdb/vswitchd"
)

// ensureExports makes the bridge's sFlow, IPFIX and NetFlow settings those
// cfg asks for. A setting cfg asks for is written into the bridge's row
// (created, owned by Loom, when the bridge has none); one cfg leaves out
// is cleared from the bridge when Loom owns it (OVSDB then deletes the
// row) and left alone otherwise.
func ensureExports(t *txn, s *snapshot, cfg HostConfig) {
	br := s.bridge
	b := &vswitchd.Bridge{UUID: br.UUID}
	var fields []any
	var what []string
	set := func(field any, change string) { fields, what = append(fields, field), append(what, change) }

	// sFlow
	cur := rowOf(s.sflows, br.Sflow)
	if w := cfg.SFlow; w != nil {
		row := vswitchd.SFlow{Targets: sorted(w.Targets), Sampling: optInt(w.Sampling), Polling: optInt(w.Polling),
			Header: optInt(w.Header), Agent: optString(w.Agent)}
		if cur == nil {
			row.UUID, row.ExternalIDs = t.newName("sflow"), ownerIDs()
			ops, err := t.c.Create(&row)
			t.add("create sflow", ops, err)
			b.Sflow = &row.UUID
			set(&b.Sflow, "sflow")
		} else if !slices.Equal(sorted(cur.Targets), row.Targets) || !eqInt(cur.Sampling, row.Sampling) ||
			!eqInt(cur.Polling, row.Polling) || !eqInt(cur.Header, row.Header) || !eqString(cur.Agent, row.Agent) {
			row.UUID = cur.UUID
			ops, err := t.c.Where(&row).Update(&row, &row.Targets, &row.Sampling, &row.Polling, &row.Header, &row.Agent)
			t.add(fmt.Sprintf("set sflow targets %v sampling %d", row.Targets, w.Sampling), ops, err)
		}
	} else if cur != nil && owned(cur.ExternalIDs) {
		b.Sflow = nil
		set(&b.Sflow, "no sflow")
	}

	// IPFIX
	curI := rowOf(s.ipfixes, br.IPFIX)
	if w := cfg.IPFIX; w != nil {
		row := vswitchd.IPFIX{Targets: sorted(w.Targets), Sampling: optInt(w.Sampling), ObsDomainID: optInt(w.ObsDomainID),
			CacheActiveTimeout: optInt(w.CacheActiveTimeout)}
		if curI == nil {
			row.UUID, row.ExternalIDs = t.newName("ipfix"), ownerIDs()
			ops, err := t.c.Create(&row)
			t.add("create ipfix", ops, err)
			b.IPFIX = &row.UUID
			set(&b.IPFIX, "ipfix")
		} else if !slices.Equal(sorted(curI.Targets), row.Targets) || !eqInt(curI.Sampling, row.Sampling) ||
			!eqInt(curI.ObsDomainID, row.ObsDomainID) || !eqInt(curI.CacheActiveTimeout, row.CacheActiveTimeout) {
			row.UUID = curI.UUID
			ops, err := t.c.Where(&row).Update(&row, &row.Targets, &row.Sampling, &row.ObsDomainID, &row.CacheActiveTimeout)
			t.add(fmt.Sprintf("set ipfix targets %v sampling %d", row.Targets, w.Sampling), ops, err)
		}
	} else if curI != nil && owned(curI.ExternalIDs) {
		b.IPFIX = nil
		set(&b.IPFIX, "no ipfix")
	}

	// NetFlow
	curN := rowOf(s.netflows, br.Netflow)
	if w := cfg.NetFlow; w != nil {
		row := vswitchd.NetFlow{Targets: sorted(w.Targets), ActiveTimeout: w.ActiveTimeout, EngineID: optInt(w.EngineID)}
		if curN == nil {
			row.UUID, row.ExternalIDs = t.newName("netflow"), ownerIDs()
			ops, err := t.c.Create(&row)
			t.add("create netflow", ops, err)
			b.Netflow = &row.UUID
			set(&b.Netflow, "netflow")
		} else if !slices.Equal(sorted(curN.Targets), row.Targets) || curN.ActiveTimeout != row.ActiveTimeout ||
			!eqInt(curN.EngineID, row.EngineID) {
			row.UUID = curN.UUID
			ops, err := t.c.Where(&row).Update(&row, &row.Targets, &row.ActiveTimeout, &row.EngineID)
			t.add(fmt.Sprintf("set netflow targets %v", row.Targets), ops, err)
		}
	} else if curN != nil && owned(curN.ExternalIDs) {
		b.Netflow = nil
		set(&b.Netflow, "no netflow")
	}

	if len(fields) > 0 {
		ops, err := t.c.Where(b).Update(b, fields...)
		t.add(fmt.Sprintf("set bridge %s %v", br.Name, what), ops, err)
	}
}

// rowOf is the row a bridge's optional reference names, nil if none.
func rowOf[T any](rows map[string]*T, ref *string) *T {
	if ref == nil {
		return nil
	}
	return rows[*ref]
}

// optInt is an optional integer column: unset for 0.
func optInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func eqInt(a, b *int) bool       { return a == nil && b == nil || a != nil && b != nil && *a == *b }
func eqString(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
