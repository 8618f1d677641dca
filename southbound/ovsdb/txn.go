package ovsdb

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	"github.com/ovn-org/libovsdb/ovsdb"
)

// The ownership tag: Loom marks every row it creates with
// external_ids:OwnerKey=OwnerValue and removes only rows that carry it.
const (
	OwnerKey   = "loom-owner"
	OwnerValue = "loom"
)

// owned reports whether a row's external_ids carry the ownership tag.
func owned(externalIDs map[string]string) bool {
	return externalIDs[OwnerKey] == OwnerValue
}

// ownerIDs returns the external_ids of a row Loom creates.
func ownerIDs() map[string]string {
	return map[string]string{OwnerKey: OwnerValue}
}

// A txn collects the operations of one reconciliation, from every table's
// ensure function, to be committed in one transaction.
type txn struct {
	c       client.Client
	ops     []ovsdb.Operation
	changes []string // what the operations do, for the log
	err     error    // the first error building them
	names   int      // named UUIDs handed out
}

// add appends ops, which do change, or records err.
func (t *txn) add(change string, ops []ovsdb.Operation, err error) {
	if err != nil {
		t.fail(fmt.Errorf("%s: %w", change, err))
		return
	}
	t.ops = append(t.ops, ops...)
	t.changes = append(t.changes, change)
}

// fail records err unless an earlier error is recorded.
func (t *txn) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// newName returns a named UUID for a row inserted by the transaction. Named
// UUIDs must be identifiers ([a-zA-Z_][a-zA-Z0-9_]*), unlike row names.
func (t *txn) newName(kind string) string {
	t.names++
	return "loom_" + kind + strconv.Itoa(t.names)
}

// commit sends the operations in one transaction. libovsdb's Transact
// reports only transport errors, so the results are checked too.
func (t *txn) commit(ctx context.Context) error {
	res, err := t.c.Transact(ctx, t.ops...)
	if err == nil {
		_, err = ovsdb.CheckOperationResults(res, t.ops)
	}
	return err
}

// differentKeys returns the entries of want that have has not, or has with
// another value.
func differentKeys(has, want map[string]string) map[string]string {
	diff := map[string]string{}
	for k, v := range want {
		if hv, ok := has[k]; !ok || hv != v {
			diff[k] = v
		}
	}
	return diff
}

// setKeys returns the mutations that set the given keys of a map column
// without touching its other keys: an insert alone would keep a key's old
// value, so the keys are deleted first.
func setKeys(field *map[string]string, keys map[string]string) []model.Mutation {
	return []model.Mutation{
		{Field: field, Mutator: ovsdb.MutateOperationDelete, Value: slices.Sorted(maps.Keys(keys))},
		{Field: field, Mutator: ovsdb.MutateOperationInsert, Value: keys},
	}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
