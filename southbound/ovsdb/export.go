package ovsdb

import (
	"fmt"
	"slices"

	"github.com/ovn-org/libovsdb/model"

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
	// ensure keeps one of the bridge's optional rows: ref is the bridge's
	// column, cur the row it names (nil: none), owned whether Loom made
	// it, want the row cfg asks for (nil: none) with uuid and ids its
	// _uuid and external_ids, same whether cur already has want's
	// columns, and columns want's columns to update.
	ensure := func(name string, ref **string, cur, want model.Model, owned bool, uuid *string, ids *map[string]string,
		same bool, columns ...any) {
		switch {
		case want != nil && cur == nil:
			*uuid, *ids = t.newName(name), ownerIDs()
			ops, err := t.c.Create(want)
			t.add("create "+name, ops, err)
			*ref = uuid
			fields, what = append(fields, ref), append(what, name)
		case want != nil && !same:
			ops, err := t.c.Where(want).Update(want, columns...)
			t.add("set "+name, ops, err)
		case want == nil && cur != nil && owned:
			*ref = nil
			fields, what = append(fields, ref), append(what, "no "+name)
		}
	}

	if cur, w := rowOf(s.sflows, br.Sflow), cfg.SFlow; w != nil {
		row := &vswitchd.SFlow{Targets: sorted(w.Targets), Sampling: optInt(w.Sampling), Polling: optInt(w.Polling),
			Header: optInt(w.Header), Agent: optString(w.Agent)}
		same := cur != nil && slices.Equal(sorted(cur.Targets), row.Targets) && eqInt(cur.Sampling, row.Sampling) &&
			eqInt(cur.Polling, row.Polling) && eqInt(cur.Header, row.Header) && eqString(cur.Agent, row.Agent)
		if cur != nil {
			row.UUID = cur.UUID
		}
		ensure("sflow", &b.Sflow, modelOf(cur), row, false, &row.UUID, &row.ExternalIDs, same,
			&row.Targets, &row.Sampling, &row.Polling, &row.Header, &row.Agent)
	} else if cur != nil {
		ensure("sflow", &b.Sflow, cur, nil, owned(cur.ExternalIDs), nil, nil, false)
	}

	if cur, w := rowOf(s.ipfixes, br.IPFIX), cfg.IPFIX; w != nil {
		row := &vswitchd.IPFIX{Targets: sorted(w.Targets), Sampling: optInt(w.Sampling), ObsDomainID: optInt(w.ObsDomainID),
			CacheActiveTimeout: optInt(w.CacheActiveTimeout)}
		same := cur != nil && slices.Equal(sorted(cur.Targets), row.Targets) && eqInt(cur.Sampling, row.Sampling) &&
			eqInt(cur.ObsDomainID, row.ObsDomainID) && eqInt(cur.CacheActiveTimeout, row.CacheActiveTimeout)
		if cur != nil {
			row.UUID = cur.UUID
		}
		ensure("ipfix", &b.IPFIX, modelOf(cur), row, false, &row.UUID, &row.ExternalIDs, same,
			&row.Targets, &row.Sampling, &row.ObsDomainID, &row.CacheActiveTimeout)
	} else if cur != nil {
		ensure("ipfix", &b.IPFIX, cur, nil, owned(cur.ExternalIDs), nil, nil, false)
	}

	if cur, w := rowOf(s.netflows, br.Netflow), cfg.NetFlow; w != nil {
		row := &vswitchd.NetFlow{Targets: sorted(w.Targets), ActiveTimeout: w.ActiveTimeout, EngineID: optInt(w.EngineID)}
		same := cur != nil && slices.Equal(sorted(cur.Targets), row.Targets) && cur.ActiveTimeout == row.ActiveTimeout &&
			eqInt(cur.EngineID, row.EngineID)
		if cur != nil {
			row.UUID = cur.UUID
		}
		ensure("netflow", &b.Netflow, modelOf(cur), row, false, &row.UUID, &row.ExternalIDs, same,
			&row.Targets, &row.ActiveTimeout, &row.EngineID)
	} else if cur != nil {
		ensure("netflow", &b.Netflow, cur, nil, owned(cur.ExternalIDs), nil, nil, false)
	}

	if len(fields) > 0 {
		ops, err := t.c.Where(b).Update(b, fields...)
		t.add(fmt.Sprintf("set bridge %s %v", br.Name, what), ops, err)
	}
}

// modelOf is p as a model.Model, or a nil interface for a nil p (a typed
// nil pointer in an interface is not nil).
func modelOf[T any, PT interface {
	*T
	model.Model
}](p PT) model.Model {
	if p == nil {
		return nil
	}
	return p
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
